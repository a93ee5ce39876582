//! Dead letters: records that could not be decoded, with the reason and where they came from.
//!
//! A bad record never stops a pipeline. It is written here, counted, and the run goes on.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::error::EngineError;
use crate::metrics::Metrics;

/// One rejected input record.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct DeadLetter {
    /// The file (or topic) it came from.
    pub source: String,
    /// Where in the source: `line 17`, `row 3 of row group 0`, …
    pub position: String,
    /// Why it was rejected.
    pub reason: String,
    /// The raw record, as text (truncated to 4 KiB).
    pub raw: String,
}

/// Where dead letters go. Shared by the workers of one process; cheap to clone.
#[derive(Clone, Default)]
pub struct DeadLetters {
    writer: Option<Arc<Mutex<BufWriter<File>>>>,
    path: Option<PathBuf>,
}

impl DeadLetters {
    /// Dead letters are counted but not kept.
    pub fn discard() -> Self {
        DeadLetters::default()
    }

    /// Dead letters are appended as JSON lines to `path` (created or truncated).
    pub fn to_file(path: &Path) -> Result<Self, EngineError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| EngineError::write(dir, e))?;
        }
        let file = File::create(path).map_err(|e| EngineError::write(path, e))?;
        Ok(DeadLetters { writer: Some(Arc::new(Mutex::new(BufWriter::new(file)))), path: Some(path.to_owned()) })
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Records one dead letter; counts it in `metrics`.
    pub fn reject(&self, metrics: &Metrics, source: &str, position: String, reason: String, raw: &[u8]) {
        metrics.dead_letters.add(1);
        let Some(writer) = &self.writer else { return };
        let raw = String::from_utf8_lossy(&raw[..raw.len().min(4096)]).into_owned();
        let letter = DeadLetter { source: source.to_owned(), position, reason, raw };
        let mut line = serde_json::to_vec(&letter).expect("a dead letter always serializes");
        line.push(b'\n');
        // A poisoned lock only means another worker panicked mid-write; keep writing.
        let mut guard = writer.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Err(error) = guard.write_all(&line) {
            eprintln!("weir: cannot write dead letter to {:?}: {error}", self.path);
        }
    }

    /// Flushes buffered dead letters to disk.
    pub fn flush(&self) -> Result<(), EngineError> {
        if let (Some(writer), Some(path)) = (&self.writer, &self.path) {
            let mut guard = writer.lock().unwrap_or_else(|poison| poison.into_inner());
            guard.flush().map_err(|e| EngineError::write(path, e))?;
        }
        Ok(())
    }
}
