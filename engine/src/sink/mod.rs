//! Sinks: where a pipeline's results go.
//!
//! A sink is chosen by value ([`Sink`]). Every sink writes deterministically: all records are
//! gathered on worker 0, and a tick's records are written only when the frontier has passed it,
//! in **canonical order** — ascending tick, and within a tick sorted by the record's JSON
//! encoding. So the same input gives byte-identical files whatever the number of workers or
//! processes, or the replay speed.
//!
//! A JSONL file is written by a thread of its own: the sink hands it 1 MiB chunks (at most four
//! waiting, so a slow disk slows the sink rather than filling memory) and the worker pays no
//! `write` system calls. A failed write fails the run, reported at the sink's next chunk or when
//! it finishes.

pub mod kafka;
mod operator;
mod writers;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use operator::{SinkContext, SinkExt};
pub use writers::{LineWriter, RecordWriter, open_writer, open_writer_with};

use crate::format::FileFormat;
use crate::time::Tick;

/// Where a pipeline's output goes.
#[derive(Clone, Debug)]
pub enum Sink<T> {
    /// A JSONL, CSV or Parquet file (created or truncated).
    File { path: PathBuf, format: FileFormat },
    /// JSON lines on standard output.
    Stdout,
    /// Captured in memory (tests).
    Memory(MemorySink<T>),
    /// Counted and dropped.
    Discard,
    /// A Kafka topic ([`kafka`]).
    Kafka(kafka::KafkaSink),
}

impl<T> Sink<T> {
    /// A file sink whose format is taken from the extension.
    pub fn file(path: impl Into<PathBuf>) -> Result<Self, crate::EngineError> {
        let path = path.into();
        let format = FileFormat::from_path(&path.to_string_lossy()).ok_or_else(|| {
            crate::EngineError::Config(format!("cannot tell the output format of {} from its name", path.display()))
        })?;
        Ok(Sink::File { path, format })
    }
}

/// An in-memory capture of `(tick, record)` pairs in canonical order.
#[derive(Debug)]
pub struct MemorySink<T> {
    captured: Arc<Mutex<Vec<(Tick, T)>>>,
}

impl<T> Clone for MemorySink<T> {
    fn clone(&self) -> Self {
        MemorySink { captured: self.captured.clone() }
    }
}

impl<T> Default for MemorySink<T> {
    fn default() -> Self {
        MemorySink { captured: Arc::new(Mutex::new(Vec::new())) }
    }
}

impl<T: Clone> MemorySink<T> {
    pub fn new() -> Self {
        Self::default()
    }
    /// Everything captured so far, with ticks.
    pub fn stamped(&self) -> Vec<(Tick, T)> {
        self.captured.lock().unwrap().clone()
    }
    /// Everything captured so far.
    pub fn records(&self) -> Vec<T> {
        self.captured.lock().unwrap().iter().map(|(_, r)| r.clone()).collect()
    }
    pub(crate) fn push(&self, tick: Tick, record: T) {
        self.captured.lock().unwrap().push((tick, record));
    }
}
