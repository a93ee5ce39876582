//! Record writers behind the sink operator, one per output kind.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use serde::Serialize;

use super::{MemorySink, Sink};
use crate::error::EngineError;
use crate::format::FileFormat;
use crate::format::arrow_serde::BatchBuilder;
use crate::metrics::Metrics;
use crate::time::Tick;

/// Writes records in the order given; `json` is each record's JSON encoding (the JSONL
/// writer writes it as is). [`open_writer`] opens one for a [`Sink`].
pub trait RecordWriter<T> {
    fn write(&mut self, tick: Tick, json: &str, record: T) -> Result<(), EngineError>;
    /// The writer as a [`LineWriter`], when it writes only each record's JSON (JSONL files,
    /// stdout, Kafka): the sink then hands it a tick's lines at once and drops the records.
    fn as_line_writer(&mut self) -> Option<&mut dyn LineWriter> {
        None
    }
    /// Makes what was written durable before the sink's frontier moves on (the Kafka sink
    /// waits for the broker's acknowledgements); called after each batch of ticks.
    fn flush(&mut self) -> Result<(), EngineError> {
        Ok(())
    }
    fn finish(&mut self) -> Result<(), EngineError>;
}

/// A writer of JSON lines.
pub trait LineWriter {
    /// Writes `lines`: whole lines, each ending in `\n`, in the order given.
    fn write_lines(&mut self, tick: Tick, lines: &str) -> Result<(), EngineError>;
}

pub fn open_writer<T: Serialize + Clone + 'static>(sink: &Sink<T>) -> Result<Box<dyn RecordWriter<T>>, EngineError> {
    open_writer_with(sink, &Metrics::default())
}

/// [`open_writer`], counting delivery failures in `metrics`.
pub fn open_writer_with<T: Serialize + Clone + 'static>(sink: &Sink<T>, metrics: &Metrics) -> Result<Box<dyn RecordWriter<T>>, EngineError> {
    Ok(match sink {
        Sink::File { path, format } => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| EngineError::write(dir, e))?;
            }
            let file = File::create(path).map_err(|e| EngineError::write(path, e))?;
            match format {
                FileFormat::Jsonl => Box::new(JsonlWriter { out: BackgroundFile::start(file, path)?, path: path.clone() }),
                FileFormat::Csv => Box::new(CsvWriter { out: csv::Writer::from_writer(file), path: path.clone() }),
                FileFormat::Parquet => Box::new(ParquetWriter::new(file, path)),
            }
        }
        Sink::Stdout => Box::new(JsonlWriter { out: Box::new(BufWriter::new(std::io::stdout())), path: "<stdout>".into() }),
        Sink::Memory(memory) => Box::new(MemoryWriter(memory.clone())),
        Sink::Discard => Box::new(DiscardWriter),
        Sink::Kafka(kafka) => Box::new(super::kafka::KafkaWriter::open(kafka, metrics.clone())?),
    })
}

struct JsonlWriter {
    out: Box<dyn Write>,
    path: PathBuf,
}

/// Bytes a JSONL file sink gathers before it hands them to its writer thread.
const FILE_CHUNK: usize = 1 << 20;
/// Full chunks that may wait for the writer thread: when the disk is slower than the sink, the
/// sink waits rather than gathering the whole output in memory.
const CHUNKS_IN_FLIGHT: usize = 4;

/// A file written by a thread of its own: the worker gathers bytes into a large chunk (the one
/// copy a `BufWriter` makes too) and hands the full chunk over, so it does not pay the `write`
/// system calls (the kernel's copy into the page cache and the file system's bookkeeping, a few
/// percent of a scoring pipeline). Emptied chunks come back to be filled again. A failed write ends the
/// thread, and the sink learns of it at the next chunk it hands over, or at [`Write::flush`].
struct BackgroundFile {
    chunk: Vec<u8>,
    full: Option<SyncSender<Vec<u8>>>,
    emptied: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl BackgroundFile {
    fn start(mut file: File, path: &Path) -> Result<Box<dyn Write>, EngineError> {
        let (full, chunks) = sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
        let (give_back, emptied) = sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT + 1);
        let thread = std::thread::Builder::new()
            .name("weir-file-writer".into())
            .spawn(move || {
                for mut chunk in chunks {
                    file.write_all(&chunk)?;
                    chunk.clear();
                    let _ = give_back.try_send(chunk); // the sink may have enough already
                }
                file.flush()
            })
            .map_err(|e| EngineError::write(path, e))?;
        Ok(Box::new(BackgroundFile { chunk: Vec::with_capacity(FILE_CHUNK), full: Some(full), emptied, thread: Some(thread) }))
    }

    /// Hands the current chunk to the thread and takes an empty one.
    fn hand_over(&mut self) -> std::io::Result<()> {
        let next = self.emptied.try_recv().unwrap_or_else(|_| Vec::with_capacity(FILE_CHUNK));
        let chunk = std::mem::replace(&mut self.chunk, next);
        let sent = self.full.as_ref().map(|full| full.send(chunk));
        match sent {
            Some(Ok(())) => Ok(()),
            // The thread has stopped: it failed to write, and its error says why.
            _ => Err(self.join().err().unwrap_or_else(|| std::io::Error::other("the file's writer thread has stopped"))),
        }
    }

    /// Closes the channel and waits for the thread to write what it has.
    fn join(&mut self) -> std::io::Result<()> {
        self.full = None;
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(error))) => Err(error),
            Some(Err(_)) => Err(std::io::Error::other("the file's writer thread panicked")),
        }
    }
}

impl Write for BackgroundFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.chunk.extend_from_slice(bytes);
        if self.chunk.len() >= FILE_CHUNK {
            self.hand_over()?;
        }
        Ok(bytes.len())
    }

    /// Writes everything and ends the thread: the sink flushes once, when it finishes.
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.chunk.is_empty() {
            self.hand_over()?;
        }
        self.join()
    }
}

impl Drop for BackgroundFile {
    /// A sink dropped without finishing (its run failed) still leaves no thread behind.
    fn drop(&mut self) {
        let _ = self.join();
    }
}

impl<T> RecordWriter<T> for JsonlWriter {
    fn write(&mut self, _tick: Tick, json: &str, _record: T) -> Result<(), EngineError> {
        self.out.write_all(json.as_bytes()).and_then(|_| self.out.write_all(b"\n")).map_err(|e| EngineError::write(&self.path, e))
    }
    fn as_line_writer(&mut self) -> Option<&mut dyn LineWriter> {
        Some(self)
    }
    fn finish(&mut self) -> Result<(), EngineError> {
        self.out.flush().map_err(|e| EngineError::write(&self.path, e))
    }
}

impl LineWriter for JsonlWriter {
    fn write_lines(&mut self, _tick: Tick, lines: &str) -> Result<(), EngineError> {
        self.out.write_all(lines.as_bytes()).map_err(|e| EngineError::write(&self.path, e))
    }
}

struct CsvWriter {
    out: csv::Writer<File>,
    path: PathBuf,
}

impl<T: Serialize> RecordWriter<T> for CsvWriter {
    fn write(&mut self, _tick: Tick, _json: &str, record: T) -> Result<(), EngineError> {
        self.out.serialize(record).map_err(|e| EngineError::Encode(format!("{}: {e}", self.path.display())))
    }
    fn finish(&mut self) -> Result<(), EngineError> {
        self.out.flush().map_err(|e| EngineError::write(&self.path, e))
    }
}

struct ParquetWriter {
    file: Option<File>,
    writer: Option<parquet::arrow::ArrowWriter<File>>,
    rows: BatchBuilder,
    path: PathBuf,
}

impl ParquetWriter {
    const ROWS_PER_BATCH: usize = 64 * 1024;

    fn new(file: File, path: &Path) -> Self {
        ParquetWriter { file: Some(file), writer: None, rows: BatchBuilder::new(), path: path.to_owned() }
    }

    fn flush_rows(&mut self) -> Result<(), EngineError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let batch = self.rows.finish().map_err(|e| EngineError::Encode(e.to_string()))?;
        let error = |e: parquet::errors::ParquetError| EngineError::Parquet { path: self.path.clone(), message: e.to_string() };
        if self.writer.is_none() {
            let file = self.file.take().expect("the file is kept until the writer exists");
            self.writer = Some(parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).map_err(error)?);
        }
        self.writer.as_mut().unwrap().write(&batch).map_err(error)
    }
}

impl<T: Serialize> RecordWriter<T> for ParquetWriter {
    fn write(&mut self, _tick: Tick, _json: &str, record: T) -> Result<(), EngineError> {
        self.rows.push(&record).map_err(|e| EngineError::Encode(e.to_string()))?;
        if self.rows.len() >= Self::ROWS_PER_BATCH {
            self.flush_rows()?;
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<(), EngineError> {
        self.flush_rows()?;
        match self.writer.take() {
            Some(writer) => writer.close().map(|_| ()).map_err(|e| EngineError::Parquet { path: self.path.clone(), message: e.to_string() }),
            // No rows at all: leave an empty file rather than a Parquet file with no schema.
            None => Ok(()),
        }
    }
}

struct MemoryWriter<T>(MemorySink<T>);

impl<T: Clone> RecordWriter<T> for MemoryWriter<T> {
    fn write(&mut self, tick: Tick, _json: &str, record: T) -> Result<(), EngineError> {
        self.0.push(tick, record);
        Ok(())
    }
    fn finish(&mut self) -> Result<(), EngineError> {
        Ok(())
    }
}

struct DiscardWriter;

impl<T> RecordWriter<T> for DiscardWriter {
    fn write(&mut self, _tick: Tick, _json: &str, _record: T) -> Result<(), EngineError> {
        Ok(())
    }
    fn finish(&mut self) -> Result<(), EngineError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jsonl_file(path: &Path) -> Box<dyn RecordWriter<u32>> {
        open_writer(&Sink::File { path: path.to_owned(), format: FileFormat::Jsonl }).expect("the file opens")
    }

    #[test]
    fn a_jsonl_file_gets_every_line_in_order_across_many_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let mut writer = jsonl_file(&path);
        let mut expected = String::new();
        // Ticks of uneven sizes, about 5 chunks in all, some larger than a chunk.
        for tick in 0..200u64 {
            let lines: String = (0..(tick % 7) * 1500).map(|i| format!("{{\"tick\":{tick},\"row\":{i}}}\n")).collect();
            writer.as_line_writer().unwrap().write_lines(tick, &lines).unwrap();
            expected.push_str(&lines);
        }
        writer.finish().unwrap();
        assert!(expected.len() > 4 * FILE_CHUNK);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
    }

    /// `/dev/full` accepts the open and refuses every write (ENOSPC): the error reaches the
    /// sink, from the writer thread, at the latest when it finishes.
    #[test]
    fn a_failed_write_is_an_error_of_the_sink() {
        let full = Path::new("/dev/full");
        if !full.exists() {
            return;
        }
        let mut small = jsonl_file(full);
        small.as_line_writer().unwrap().write_lines(1, "{\"a\":1}\n").unwrap();
        let error = small.finish().unwrap_err().to_string();
        assert!(error.contains("/dev/full") && error.contains("No space left"), "{error}");

        // Mid-stream: the thread stops at its first chunk, so at the latest once the channel
        // is full, a hand-over finds it gone and reports its error (long before 100 chunks).
        let mut large = jsonl_file(full);
        let line = "x".repeat(1000) + "\n";
        let failed = (0..100 * FILE_CHUNK / line.len()).map(|tick| large.as_line_writer().unwrap().write_lines(tick as u64, &line)).find_map(Result::err);
        let error = failed.expect("a write fails before the end").to_string();
        assert!(error.contains("No space left"), "{error}");
    }
}
