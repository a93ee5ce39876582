//! Record writers behind the sink operator, one per output kind.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

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
                // A large buffer: with 8 KiB (the default) a sink of a million rows a second
                // spends a visible share of its time in `write` system calls.
                FileFormat::Jsonl => Box::new(JsonlWriter { out: BufWriter::with_capacity(JSONL_BUFFER, Box::new(file)), path: path.clone() }),
                FileFormat::Csv => Box::new(CsvWriter { out: csv::Writer::from_writer(file), path: path.clone() }),
                FileFormat::Parquet => Box::new(ParquetWriter::new(file, path)),
            }
        }
        Sink::Stdout => Box::new(JsonlWriter { out: BufWriter::new(Box::new(std::io::stdout())), path: "<stdout>".into() }),
        Sink::Memory(memory) => Box::new(MemoryWriter(memory.clone())),
        Sink::Discard => Box::new(DiscardWriter),
        Sink::Kafka(kafka) => Box::new(super::kafka::KafkaWriter::open(kafka, metrics.clone())?),
    })
}

/// Bytes a JSONL file sink gathers before each `write` system call.
const JSONL_BUFFER: usize = 1 << 20;

struct JsonlWriter {
    out: BufWriter<Box<dyn Write>>,
    path: PathBuf,
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
