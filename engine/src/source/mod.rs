//! Sources: where a pipeline's records come from.
//!
//! A source is chosen by value ([`Source`]); the pipeline function never knows which one feeds it.
//!
//! # Bounded replays
//! A replay reads historical files (one file, a glob, or a directory; JSONL, CSV or Parquet) and
//! closes when they are exhausted, so every window and result becomes final and the job ends.
//!
//! The input is cut into **segments** whose boundaries depend only on the files, never on the
//! number of workers: a JSONL file into byte ranges of [`ReplaySource::segment_bytes`] (a line
//! belongs to the segment in which it starts), a Parquet file into its row groups, a CSV file
//! stays whole (quoted newlines make byte splits unsafe). Segment *i* is read by worker
//! *i mod workers*, so several workers parse one big file in parallel.
//!
//! # Event time, watermarks and late records
//! Each segment keeps a watermark: the largest event time read so far from it, minus the allowed
//! out-of-orderness ([`Disorder::Bounded`]). A record older than its segment's watermark is
//! **late**: it is counted and sent to the late side output (written to a file or dropped, see
//! [`crate::pipeline::Pipeline::late_output`]); it never enters windows. Because watermarks are
//! per segment, which records are late depends only on the input, not on the worker count.
//! Records need not arrive in order within the allowed disorder: each travels at its own tick.
//! For small logs that are not in time order at all (MovieLens is sorted by user), choose
//! [`Disorder::SortFile`]: each file is loaded whole and sorted by event time (stable), and no
//! record is late. Memory then grows with the file: use it only for files that fit.
//!
//! A worker reads its segments merged by watermark (always the segment that is furthest behind),
//! and holds its capability at the smallest watermark among unfinished segments; that is the
//! source's contribution to the frontier.
//!
//! A JSONL segment that is being read in full flow gets a read-ahead thread (up to four in a
//! process, two 1 MiB chunks ahead each), so the worker does not wait on `read` system calls;
//! the bytes and their order are those of plain reads.
//!
//! # Flow control and speed
//! A source does not read more than [`ReplaySource::max_ahead_ms`] of event time ahead of what the
//! pipeline's sink has retired, so memory stays bounded on long replays. With
//! [`ReplaySource::speed`] it replays at a multiple of real time instead of as fast as possible.
//!
//! # Bad input
//! A line that does not parse, lacks the time field, or has a time that cannot be read goes to
//! the dead-letter output with the reason and its position (file, line or byte, row group); the
//! run goes on. JSON lines are decoded by [`crate::format::flat_json`], which parses only the
//! fields the record type reads: a malformed value in a field the pipeline does not read is
//! stepped over rather than dead-lettered (the line's structure is still checked).
//!
//! # Kafka
//! [`kafka::KafkaSource`] reads a topic: bounded (to the end offsets seen at start) or live, or
//! backfills from files and then continues live; see [`kafka`].

pub mod kafka;
pub mod reader;
mod replay;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::error::EngineError;
use crate::format::FileFormat;
use crate::metrics::Metrics;
use crate::record::Timed;
use crate::time::TimeSpec;
use reader::{CsvReader, JsonLinesReader, MemoryReader, ParquetReader, SegmentReader, SortedReader};

pub use replay::{OnRetired, SourceContext, build_source};

/// How far out of event-time order the input may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disorder {
    /// Records may be up to this many ms older than the newest record before them (in the same
    /// segment); older ones are late.
    Bounded(u64),
    /// Load each file whole and sort it by event time; nothing is late.
    SortFile,
}

impl Default for Disorder {
    fn default() -> Self {
        Disorder::Bounded(5_000)
    }
}

/// A bounded replay of files.
#[derive(Clone, Debug)]
pub struct ReplaySource {
    /// A file, a glob (`logs/*.jsonl`) or a directory (all files in it, sorted by name).
    pub input: String,
    /// The format; `None` guesses it from each file's extension.
    pub format: Option<FileFormat>,
    pub time: TimeSpec,
    pub disorder: Disorder,
    /// Replay at this multiple of real time (`None`: as fast as possible).
    pub speed: Option<f64>,
    /// Event time the source may run ahead of what the sink has retired (`None`: unlimited).
    pub max_ahead_ms: Option<u64>,
    /// Size of the byte ranges JSONL files are cut into.
    pub segment_bytes: u64,
    /// Records decoded per activation of the source.
    pub batch: usize,
}

impl ReplaySource {
    pub fn new(input: impl Into<String>, time: TimeSpec) -> Self {
        ReplaySource {
            input: input.into(),
            format: None,
            time,
            disorder: Disorder::default(),
            speed: None,
            max_ahead_ms: Some(3_600_000),
            segment_bytes: 16 << 20,
            batch: 4096,
        }
    }
    pub fn format(mut self, format: FileFormat) -> Self {
        self.format = Some(format);
        self
    }
    pub fn disorder(mut self, disorder: Disorder) -> Self {
        self.disorder = disorder;
        self
    }
    pub fn speed(mut self, speed: f64) -> Self {
        self.speed = Some(speed);
        self
    }
    pub fn max_ahead_ms(mut self, ms: Option<u64>) -> Self {
        self.max_ahead_ms = ms;
        self
    }
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes.max(1);
        self
    }

    /// The input files, sorted by path.
    pub fn files(&self) -> Result<Vec<PathBuf>, EngineError> {
        let path = Path::new(&self.input);
        let mut files = if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| EngineError::read(path, e))?;
            let mut files = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| EngineError::read(path, e))?;
                if entry.file_type().map(|t| t.is_file()).unwrap_or(false)
                    && !entry.file_name().to_string_lossy().starts_with('.')
                {
                    files.push(entry.path());
                }
            }
            files
        } else if path.is_file() {
            vec![path.to_owned()]
        } else {
            let pattern = glob::glob(&self.input)
                .map_err(|e| EngineError::Glob { pattern: self.input.clone(), message: e.to_string() })?;
            pattern.filter_map(Result::ok).filter(|p| p.is_file()).collect()
        };
        files.sort();
        if files.is_empty() {
            return Err(EngineError::NoInputFiles(self.input.clone()));
        }
        Ok(files)
    }

    fn format_of(&self, path: &Path) -> Result<FileFormat, EngineError> {
        self.format.or_else(|| FileFormat::from_path(&path.to_string_lossy())).ok_or_else(|| {
            EngineError::Config(format!("cannot tell the format of {} from its name; give it explicitly", path.display()))
        })
    }

    /// Cuts the input into segments. Deterministic: depends on the files only.
    pub fn segments(&self) -> Result<Vec<Segment>, EngineError> {
        let mut segments = Vec::new();
        for path in self.files()? {
            let format = self.format_of(&path)?;
            let whole = SegmentRange::Whole;
            match (format, self.disorder) {
                (_, Disorder::SortFile) | (FileFormat::Csv, _) => segments.push(Segment { path, format, range: whole }),
                (FileFormat::Jsonl, _) => {
                    let len = std::fs::metadata(&path).map_err(|e| EngineError::read(&path, e))?.len();
                    let mut start = 0;
                    while start < len.max(1) {
                        let end = (start + self.segment_bytes).min(len);
                        segments.push(Segment { path: path.clone(), format, range: SegmentRange::Bytes(start, end) });
                        start = end.max(start + 1);
                    }
                }
                (FileFormat::Parquet, _) => {
                    for group in 0..parquet_row_groups(&path)? {
                        segments.push(Segment { path: path.clone(), format, range: SegmentRange::RowGroup(group) });
                    }
                }
            }
        }
        Ok(segments)
    }

    /// Total bytes of input (for progress).
    pub fn total_bytes(&self) -> u64 {
        self.files().map(|files| files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum()).unwrap_or(0)
    }
}

fn parquet_row_groups(path: &Path) -> Result<usize, EngineError> {
    let file = std::fs::File::open(path).map_err(|e| EngineError::read(path, e))?;
    let reader = parquet::file::reader::SerializedFileReader::new(file)
        .map_err(|e| EngineError::Parquet { path: path.to_owned(), message: e.to_string() })?;
    use parquet::file::reader::FileReader;
    Ok(reader.metadata().num_row_groups())
}

/// A piece of the input read by one worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub path: PathBuf,
    pub format: FileFormat,
    pub range: SegmentRange,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentRange {
    Whole,
    /// Lines starting in `[start, end)`.
    Bytes(u64, u64),
    RowGroup(usize),
}

impl Segment {
    fn open<T: DeserializeOwned + 'static>(
        &self,
        time: &TimeSpec,
        disorder: Disorder,
        metrics: &Metrics,
    ) -> Result<Box<dyn SegmentReader<T>>, EngineError> {
        let time = time.clone();
        let metrics = metrics.clone();
        let reader: Box<dyn SegmentReader<T>> = match (self.format, self.range) {
            (FileFormat::Jsonl, SegmentRange::Bytes(start, end)) => {
                Box::new(JsonLinesReader::open(&self.path, start, end, time, metrics)?)
            }
            (FileFormat::Jsonl, _) => Box::new(JsonLinesReader::open(&self.path, 0, u64::MAX, time, metrics)?),
            (FileFormat::Csv, _) => Box::new(CsvReader::open(&self.path, time, metrics)?),
            (FileFormat::Parquet, SegmentRange::RowGroup(group)) => {
                Box::new(ParquetReader::open(&self.path, group, time, metrics)?)
            }
            (FileFormat::Parquet, _) => {
                let groups = parquet_row_groups(&self.path)?;
                let mut readers = Vec::new();
                for group in 0..groups {
                    readers.push(Box::new(ParquetReader::open(&self.path, group, time.clone(), metrics.clone())?) as Box<dyn SegmentReader<T>>);
                }
                Box::new(Chain { readers, name: self.path.display().to_string() })
            }
        };
        Ok(if disorder == Disorder::SortFile { Box::new(SortedReader::load(reader)?) } else { reader })
    }
}

/// Readers one after the other (a whole Parquet file under `SortFile`).
struct Chain<T> {
    readers: Vec<Box<dyn SegmentReader<T>>>,
    name: String,
}

impl<T> SegmentReader<T> for Chain<T> {
    fn read(&mut self, max: usize, out: &mut Vec<reader::Decoded<T>>) -> Result<bool, EngineError> {
        while let Some(first) = self.readers.first_mut() {
            if first.read(max, out)? {
                self.readers.remove(0);
            }
            if !out.is_empty() {
                break;
            }
        }
        Ok(self.readers.is_empty())
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// Records held in memory: for tests and examples. All are read by worker 0, `chunk` records
/// per activation (so a test can feed the same records all at once or in many small steps).
#[derive(Clone, Debug)]
pub struct MemorySource<T> {
    pub records: Arc<Vec<Timed<T>>>,
    pub chunk: usize,
    pub disorder: Disorder,
}

impl<T> MemorySource<T> {
    pub fn new(records: Vec<Timed<T>>) -> Self {
        MemorySource { records: Arc::new(records), chunk: usize::MAX, disorder: Disorder::default() }
    }
    pub fn chunk(mut self, chunk: usize) -> Self {
        self.chunk = chunk.max(1);
        self
    }
    pub fn disorder(mut self, disorder: Disorder) -> Self {
        self.disorder = disorder;
        self
    }
}

/// Where a pipeline's input comes from.
#[derive(Clone, Debug)]
pub enum Source<T> {
    Replay(ReplaySource),
    Memory(MemorySource<T>),
    /// A Kafka topic (bounded, live, or backfill then live).
    Kafka(kafka::KafkaSource),
}

impl<T: DeserializeOwned + Clone + 'static> Source<T> {
    /// The readers worker `index` of `peers` owns, and the source's disorder settings.
    pub(crate) fn open_for_worker(&self, index: usize, peers: usize, metrics: &Metrics) -> Result<Vec<Box<dyn SegmentReader<T>>>, EngineError> {
        match self {
            Source::Replay(replay) => {
                let mut readers = Vec::new();
                for (i, segment) in replay.segments()?.into_iter().enumerate() {
                    if i % peers == index {
                        readers.push(segment.open::<T>(&replay.time, replay.disorder, metrics)?);
                    }
                }
                Ok(readers)
            }
            Source::Memory(memory) if index == 0 => {
                Ok(vec![Box::new(MemoryReader::new(memory.records.clone(), memory.chunk)) as Box<dyn SegmentReader<T>>])
            }
            Source::Memory(_) | Source::Kafka(_) => Ok(Vec::new()),
        }
    }

    pub(crate) fn out_of_orderness_ms(&self) -> u64 {
        let disorder = match self {
            Source::Replay(replay) => replay.disorder,
            Source::Memory(memory) => memory.disorder,
            Source::Kafka(kafka) => return kafka.out_of_orderness_ms,
        };
        match disorder {
            Disorder::Bounded(ms) => ms,
            Disorder::SortFile => 0,
        }
    }
    pub(crate) fn max_ahead_ms(&self) -> Option<u64> {
        match self {
            Source::Replay(replay) => replay.max_ahead_ms,
            Source::Memory(_) => None,
            Source::Kafka(kafka) => kafka.max_ahead_ms,
        }
    }
    pub(crate) fn speed(&self) -> Option<f64> {
        match self {
            Source::Replay(replay) => replay.speed,
            Source::Memory(_) => None,
            Source::Kafka(kafka) => kafka.speed,
        }
    }
    pub(crate) fn batch(&self) -> usize {
        match self {
            Source::Replay(replay) => replay.batch,
            Source::Memory(_) => 4096,
            Source::Kafka(kafka) => kafka.batch,
        }
    }
}
