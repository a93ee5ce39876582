//! Segment readers: each turns one piece of an input (a byte range of a JSONL file, a CSV file,
//! a Parquet row group, an in-memory vector) into decoded records or dead letters.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use serde::de::DeserializeOwned;

use crate::error::EngineError;
use crate::format::arrow_serde::deserialize_row;
use crate::format::flat_json;
use crate::format::json_time::{RawValue, find_top_level, leading_integer};
use crate::metrics::Metrics;
use crate::record::Timed;
use crate::time::{TimeFormat, TimeSpec};

/// One decoded input item.
pub enum Decoded<T> {
    Record(Timed<T>),
    /// Boxed: bad input is rare, and every record moves through vectors of these.
    Bad(Box<BadInput>),
}

/// Input that did not decode, for the dead-letter output.
pub struct BadInput {
    pub position: String,
    pub reason: String,
    pub raw: Vec<u8>,
}

impl<T> Decoded<T> {
    pub fn bad(position: String, reason: String, raw: Vec<u8>) -> Self {
        Decoded::Bad(Box::new(BadInput { position, reason, raw }))
    }
}

/// A reader of one segment. `read` appends at most `max` items and returns `true` once the
/// segment is exhausted.
pub trait SegmentReader<T> {
    fn read(&mut self, max: usize, out: &mut Vec<Decoded<T>>) -> Result<bool, EngineError>;
    /// The name of the source, for dead letters.
    fn name(&self) -> &str;
}

/// Decodes one JSON line: the event time from the configured top-level field, the record with
/// serde.
pub fn decode_json_line<T: DeserializeOwned>(line: &[u8], time: &TimeSpec) -> Result<Timed<T>, String> {
    let leading = match time.format {
        TimeFormat::EpochMillis => leading_integer(line, &time.field),
        _ => None,
    };
    let ms = match leading {
        Some(ms) => time.check_millis(ms)?,
        None => decode_time_field(line, time)?,
    };
    // Only the fields `T` reads are parsed; the others are stepped over (see `flat_json`).
    let data = flat_json::from_line::<T>(line).map_err(|e| format!("invalid record: {e}"))?;
    Ok(Timed::new(ms, data))
}

/// The event time of a JSON line, from its configured top-level field, whatever its layout.
fn decode_time_field(line: &[u8], time: &TimeSpec) -> Result<i64, String> {
    Ok(match find_top_level(line, &time.field) {
        Some(RawValue::Number(text)) | Some(RawValue::Str(text)) => time.parse_text(text)?,
        Some(RawValue::Other) => return Err(format!("time field {:?} is not a number or string", time.field)),
        None => {
            // Tell "not JSON at all" apart from "no time field".
            return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(line) {
                Err(e) => format!("invalid JSON: {e}"),
                Ok(_) => format!("missing time field {:?}", time.field),
            });
        }
    })
}

/// The lines of a JSONL file that *start* in the byte range `[start, end)`.
///
/// Lines are sliced out of a large buffer in place (no copy per line): the reader refills the
/// buffer with big reads, so the per-line cost is a `memchr` and the decode. Once its reads are
/// full-sized, a segment's file is read by a [`ReadAhead`] thread (at most
/// `MAX_READ_AHEAD_THREADS` in a process), whose chunks become the buffer in turn.
pub struct JsonLinesReader<T> {
    name: String,
    /// Read by the worker itself (`None` while a read-ahead thread has the file).
    file: Option<File>,
    /// The thread reading the file ahead of the worker, once the segment is in full flow.
    ahead: Option<ReadAhead>,
    /// Whether a read-ahead thread has been tried: a segment gets one at most.
    ahead_tried: bool,
    path: PathBuf,
    /// Bytes read from the file; `buf[consumed..filled]` is not yet split into lines.
    buf: Vec<u8>,
    consumed: usize,
    filled: usize,
    eof: bool,
    /// Byte offset (in the file) of `buf[consumed]`: where the next line starts.
    offset: u64,
    end: u64,
    line_no: Option<u64>,
    time: TimeSpec,
    metrics: Metrics,
    _marker: std::marker::PhantomData<fn() -> T>,
}

/// Largest regular read from a JSONL file (a longer line still grows the buffer).
const READ_CHUNK: usize = 1 << 20;
/// The first reads are small and grow to [`READ_CHUNK`]: a replay opens every segment of its
/// input at the start (to learn its watermark), and 1,000 segments with a full buffer each
/// would cost a gigabyte before any record has been processed.
const FIRST_READ: usize = 16 << 10;

impl<T: DeserializeOwned> JsonLinesReader<T> {
    pub fn open(path: &Path, start: u64, end: u64, time: TimeSpec, metrics: Metrics) -> Result<Self, EngineError> {
        let mut file = File::open(path).map_err(|e| EngineError::read(path, e))?;
        let mut offset = start;
        if start > 0 {
            // The line that straddles `start` belongs to the previous segment: skip to the
            // first line beginning at or after `start`.
            file.seek(SeekFrom::Start(start - 1)).map_err(|e| EngineError::read(path, e))?;
            let mut skipped = Vec::new();
            let n = BufReader::new(&mut file).read_until(b'\n', &mut skipped).map_err(|e| EngineError::read(path, e))?;
            offset = start - 1 + n as u64;
            file.seek(SeekFrom::Start(offset)).map_err(|e| EngineError::read(path, e))?;
        }
        Ok(JsonLinesReader {
            name: path.display().to_string(),
            file: Some(file),
            ahead: None,
            ahead_tried: false,
            path: path.to_owned(),
            buf: vec![0; FIRST_READ],
            consumed: 0,
            filled: 0,
            eof: false,
            offset,
            end,
            // Line numbers are only known when the segment starts at the top of the file.
            line_no: (start == 0).then_some(0),
            time,
            metrics,
            _marker: std::marker::PhantomData,
        })
    }

    fn position(&self, line_start: u64) -> String {
        match self.line_no {
            Some(n) => format!("line {n} (byte {line_start})"),
            None => format!("byte {line_start}"),
        }
    }

    /// Moves the unconsumed tail to the front and reads more; grows the buffer when one line
    /// fills it. Sets `eof` when the file has no more bytes. Once the reads are full-sized, a
    /// read-ahead thread takes over the file (see [`ReadAhead`]) until the segment's end.
    fn refill(&mut self) -> Result<(), EngineError> {
        if !self.ahead_tried && self.buf.len() >= READ_CHUNK && self.offset < self.end {
            self.ahead_tried = true;
            self.start_read_ahead();
        }
        if let Some(ahead) = &self.ahead {
            let failure = match ahead.chunks.recv() {
                Ok(AheadChunk::Bytes(chunk)) => {
                    self.take_chunk(chunk);
                    return Ok(());
                }
                Ok(AheadChunk::Stopped(file)) => {
                    self.file = Some(file);
                    None
                }
                Ok(AheadChunk::Failed(error)) => Some(error),
                Err(_) => Some(std::io::Error::other("the read-ahead thread stopped")),
            };
            self.ahead = None;
            if let Some(error) = failure {
                self.eof = true;
                return Err(EngineError::read(&self.path, error));
            }
        }
        let Some(file) = self.file.as_mut() else {
            self.eof = true;
            return Err(EngineError::read(&self.path, std::io::Error::other("the file was lost to a failed read")));
        };
        self.buf.copy_within(self.consumed..self.filled, 0);
        self.filled -= self.consumed;
        self.consumed = 0;
        if self.filled == self.buf.len() || self.buf.len() < READ_CHUNK {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match file.read(&mut self.buf[self.filled..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.filled += n;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(EngineError::read(&self.path, e)),
            }
        }
    }

    /// Hands the file to a read-ahead thread, when one may start: it reads from where the
    /// worker's reads have got to, up to the segment's end.
    fn start_read_ahead(&mut self) {
        let read_to = self.offset + (self.filled - self.consumed) as u64;
        if self.end.saturating_sub(read_to) < 2 * READ_CHUNK as u64 {
            return; // little left: not worth a thread
        }
        let Some(file) = self.file.take() else { return };
        match ReadAhead::start(file, read_to, self.end) {
            Ok(ahead) => self.ahead = Some(ahead),
            Err(file) => self.file = Some(file),
        }
    }

    /// Continues the buffer with a chunk from the read-ahead thread: the unconsumed tail (the
    /// start of a line) goes into the chunk's headroom just before its bytes, so the chunk
    /// becomes the buffer without copying it.
    fn take_chunk(&mut self, mut chunk: Vec<u8>) {
        let tail = self.filled - self.consumed;
        if tail <= READ_AHEAD_HEADROOM {
            let at = READ_AHEAD_HEADROOM - tail;
            chunk[at..READ_AHEAD_HEADROOM].copy_from_slice(&self.buf[self.consumed..self.filled]);
            let used = std::mem::replace(&mut self.buf, chunk);
            self.consumed = at;
            self.filled = self.buf.len();
            self.ahead.as_ref().expect("reading ahead").give_back(used);
        } else {
            // A line longer than the headroom so far: append the chunk to it.
            self.buf.copy_within(self.consumed..self.filled, 0);
            self.buf.truncate(tail);
            self.buf.extend_from_slice(&chunk[READ_AHEAD_HEADROOM..]);
            self.consumed = 0;
            self.filled = self.buf.len();
            self.ahead.as_ref().expect("reading ahead").give_back(chunk);
        }
    }

    /// The next whole line (without its newline) and its file offset, or `None` at the end of
    /// the file. The last line may lack a newline.
    fn next_line(&mut self) -> Result<Option<(u64, std::ops::Range<usize>)>, EngineError> {
        loop {
            let pending = &self.buf[self.consumed..self.filled];
            if let Some(newline) = memchr::memchr(b'\n', pending) {
                let range = self.consumed..self.consumed + newline;
                return Ok(Some(self.take_line(range, newline + 1)));
            }
            if self.eof {
                if pending.is_empty() {
                    return Ok(None);
                }
                let range = self.consumed..self.filled;
                let len = range.len();
                return Ok(Some(self.take_line(range, len)));
            }
            self.refill()?;
        }
    }

    fn take_line(&mut self, range: std::ops::Range<usize>, consumed: usize) -> (u64, std::ops::Range<usize>) {
        let line_start = self.offset;
        self.offset += consumed as u64;
        self.consumed += consumed;
        if let Some(no) = self.line_no.as_mut() {
            *no += 1;
        }
        (line_start, range)
    }
}

impl<T: DeserializeOwned> SegmentReader<T> for JsonLinesReader<T> {
    fn read(&mut self, max: usize, out: &mut Vec<Decoded<T>>) -> Result<bool, EngineError> {
        let mut produced = 0;
        let started_at = self.offset;
        let result = loop {
            if produced >= max {
                break Ok(false);
            }
            if self.offset >= self.end {
                break Ok(true);
            }
            let (line_start, range) = match self.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => break Ok(true),
                Err(error) => break Err(error),
            };
            let line = trim_line_end(&self.buf[range]);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            produced += 1;
            match decode_json_line(line, &self.time) {
                Ok(record) => out.push(Decoded::Record(record)),
                Err(reason) => {
                    let raw = line.to_vec();
                    out.push(Decoded::bad(self.position(line_start), reason, raw));
                }
            }
        };
        // One shared-counter update per call, not per line: workers share the counters.
        self.metrics.bytes_read.add(self.offset - started_at);
        if matches!(result, Ok(true)) {
            self.buf = Vec::new(); // a finished segment keeps no buffer, nor a thread
            self.ahead = None;
        }
        result
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// Bytes free at the start of each read-ahead chunk, for the start of a line that the
/// previous chunk ended in the middle of.
const READ_AHEAD_HEADROOM: usize = 64 << 10;
/// Chunks read ahead that may wait for the worker. With the one being read, the worker's
/// buffer and as many emptied ones kept for reuse, a reading segment holds at most
/// `2 * READ_AHEAD_CHUNKS + 2` chunks of a little over 1 MiB.
const READ_AHEAD_CHUNKS: usize = 2;
/// Read-ahead threads in the process at most. A replay reads its segments in turns (the one
/// furthest behind first); segments beyond this many read on their worker, as before.
const MAX_READ_AHEAD_THREADS: usize = 4;
static READ_AHEAD_THREADS: AtomicUsize = AtomicUsize::new(0);

/// A thread that reads a JSONL segment ahead of its worker, so that the worker does not pay
/// the `read` system calls (the kernel's copy from the page cache: several percent of a
/// replay) and finds the next megabyte ready. It reads `READ_CHUNK` bytes at a time after
/// [`READ_AHEAD_HEADROOM`] free bytes, stops at the segment's end and hands the file back
/// (the worker reads the rest of the last line itself), or passes on a read error.
struct ReadAhead {
    chunks: Receiver<AheadChunk>,
    recycled: SyncSender<Vec<u8>>,
}

enum AheadChunk {
    /// The next bytes of the file, in `chunk[READ_AHEAD_HEADROOM..]`.
    Bytes(Vec<u8>),
    /// The thread has read past the segment's end or to the end of the file: the file, at the
    /// position after the last chunk.
    Stopped(File),
    Failed(std::io::Error),
}

impl ReadAhead {
    /// Starts reading `file` from `position` (where it is) to `end`; gives the file back if
    /// no thread may or can start.
    fn start(file: File, position: u64, end: u64) -> Result<Self, File> {
        if READ_AHEAD_THREADS.fetch_add(1, Ordering::AcqRel) >= MAX_READ_AHEAD_THREADS {
            READ_AHEAD_THREADS.fetch_sub(1, Ordering::AcqRel);
            return Err(file);
        }
        let (send_chunk, chunks) = sync_channel(READ_AHEAD_CHUNKS);
        let (recycled, reuse) = sync_channel::<Vec<u8>>(READ_AHEAD_CHUNKS);
        // The file is sent once the thread runs, so that it stays here if none can start.
        let (send_file, take_file) = sync_channel::<File>(1);
        let started = std::thread::Builder::new().name("weir-read-ahead".into()).spawn(move || {
            if let Ok(file) = take_file.recv() {
                read_ahead(file, position, end, &send_chunk, &reuse);
            }
            READ_AHEAD_THREADS.fetch_sub(1, Ordering::AcqRel);
        });
        if started.is_err() {
            READ_AHEAD_THREADS.fetch_sub(1, Ordering::AcqRel);
            return Err(file);
        }
        send_file.send(file).expect("the thread waits for its file");
        Ok(ReadAhead { chunks, recycled })
    }

    /// Returns a used buffer for the thread to fill again (dropped when it has enough).
    fn give_back(&self, buffer: Vec<u8>) {
        if buffer.capacity() == READ_AHEAD_HEADROOM + READ_CHUNK {
            let _ = self.recycled.try_send(buffer);
        }
    }
}

/// The read-ahead thread's loop. It ends when the worker drops its [`ReadAhead`] (the channel
/// closes), at the segment's end, at the end of the file, or at a read error.
fn read_ahead(mut file: File, mut position: u64, end: u64, chunks: &SyncSender<AheadChunk>, reuse: &Receiver<Vec<u8>>) {
    loop {
        if position >= end {
            let _ = chunks.send(AheadChunk::Stopped(file));
            return;
        }
        let mut chunk = reuse.try_recv().unwrap_or_else(|_| Vec::with_capacity(READ_AHEAD_HEADROOM + READ_CHUNK));
        chunk.resize(READ_AHEAD_HEADROOM + READ_CHUNK, 0);
        let read = loop {
            match file.read(&mut chunk[READ_AHEAD_HEADROOM..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let sent = match read {
            Ok(0) => {
                let _ = chunks.send(AheadChunk::Stopped(file));
                return;
            }
            Ok(n) => {
                chunk.truncate(READ_AHEAD_HEADROOM + n);
                position += n as u64;
                chunks.send(AheadChunk::Bytes(chunk))
            }
            Err(error) => {
                let _ = chunks.send(AheadChunk::Failed(error));
                return;
            }
        };
        if sent.is_err() {
            return; // the worker has let go of the segment
        }
    }
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &line[..end]
}

/// A whole CSV file with a header line. Records are decoded with serde by column name.
pub struct CsvReader<T> {
    name: String,
    reader: csv::Reader<File>,
    headers: csv::StringRecord,
    time_column: usize,
    time: TimeSpec,
    record: csv::StringRecord,
    last_byte: u64,
    metrics: Metrics,
    _marker: std::marker::PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> CsvReader<T> {
    pub fn open(path: &Path, time: TimeSpec, metrics: Metrics) -> Result<Self, EngineError> {
        let file = File::open(path).map_err(|e| EngineError::read(path, e))?;
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
        let headers = reader.headers().map_err(|e| EngineError::read(path, std::io::Error::other(e)))?.clone();
        let time_column = headers
            .iter()
            .position(|h| h == time.field)
            .ok_or_else(|| EngineError::MissingTimeColumn { path: path.to_owned(), column: time.field.clone() })?;
        Ok(CsvReader {
            name: path.display().to_string(),
            reader,
            headers,
            time_column,
            time,
            record: csv::StringRecord::new(),
            last_byte: 0,
            metrics,
            _marker: std::marker::PhantomData,
        })
    }
}

impl<T: DeserializeOwned> SegmentReader<T> for CsvReader<T> {
    fn read(&mut self, max: usize, out: &mut Vec<Decoded<T>>) -> Result<bool, EngineError> {
        for _ in 0..max {
            let more = match self.reader.read_record(&mut self.record) {
                Ok(more) => more,
                Err(e) => {
                    // A broken row (e.g. invalid UTF-8): dead-letter it and keep reading.
                    let position = e.position().map_or("unknown".into(), |p| format!("line {}", p.line()));
                    out.push(Decoded::bad(position, format!("unreadable CSV row: {e}"), Vec::new()));
                    continue;
                }
            };
            let byte = self.reader.position().byte();
            self.metrics.bytes_read.add(byte - self.last_byte);
            self.last_byte = byte;
            if !more {
                return Ok(true);
            }
            let line = self.record.position().map_or(0, |p| p.line());
            let decoded = self
                .record
                .get(self.time_column)
                .ok_or_else(|| format!("row has no column {:?}", self.time.field))
                .and_then(|text| self.time.parse_text(text))
                .and_then(|ms| {
                    self.record
                        .deserialize::<T>(Some(&self.headers))
                        .map(|data| Timed::new(ms, data))
                        .map_err(|e| format!("invalid record: {e}"))
                });
            out.push(match decoded {
                Ok(record) => Decoded::Record(record),
                Err(reason) => Decoded::bad(format!("line {line}"), reason, self.record.iter().collect::<Vec<_>>().join(",").into_bytes()),
            });
        }
        Ok(false)
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// One row group of a Parquet file, decoded row by row through the Arrow ↔ serde bridge.
pub struct ParquetReader<T> {
    name: String,
    path: PathBuf,
    row_group: usize,
    batches: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    current: Option<(arrow::record_batch::RecordBatch, usize)>,
    rows_done: u64,
    bytes_per_row: u64,
    time: TimeSpec,
    metrics: Metrics,
    _marker: std::marker::PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> ParquetReader<T> {
    pub fn open(path: &Path, row_group: usize, time: TimeSpec, metrics: Metrics) -> Result<Self, EngineError> {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let file = File::open(path).map_err(|e| EngineError::read(path, e))?;
        let parquet_error = |e: parquet::errors::ParquetError| EngineError::Parquet { path: path.to_owned(), message: e.to_string() };
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error)?;
        let group = builder.metadata().row_group(row_group);
        let bytes_per_row = (group.compressed_size().max(0) as u64) / (group.num_rows().max(1) as u64);
        let batches = builder.with_row_groups(vec![row_group]).with_batch_size(8192).build().map_err(parquet_error)?;
        Ok(ParquetReader {
            name: path.display().to_string(),
            path: path.to_owned(),
            row_group,
            batches,
            current: None,
            rows_done: 0,
            bytes_per_row,
            time,
            metrics,
            _marker: std::marker::PhantomData,
        })
    }

    fn decode(&self, batch: &arrow::record_batch::RecordBatch, row: usize) -> Result<Timed<T>, String> {
        let column = batch.column_by_name(&self.time.field).ok_or_else(|| format!("missing time column {:?}", self.time.field))?;
        let ms = time_cell(column.as_ref(), row, &self.time)?;
        let data = deserialize_row::<T>(batch, row).map_err(|e| format!("invalid record: {e}"))?;
        Ok(Timed::new(ms, data))
    }
}

/// Reads an event time from an Arrow cell: integers and floats per the time format, Arrow
/// timestamps by their unit, strings parsed as text.
fn time_cell(column: &dyn arrow::array::Array, row: usize, time: &TimeSpec) -> Result<i64, String> {
    use arrow::array::*;
    use arrow::datatypes::{DataType, TimeUnit};
    if column.is_null(row) {
        return Err(format!("time field {:?} is null", time.field));
    }
    let any = column.as_any();
    match column.data_type() {
        DataType::Int64 => time.from_number(any.downcast_ref::<Int64Array>().unwrap().value(row) as f64),
        DataType::Int32 => time.from_number(any.downcast_ref::<Int32Array>().unwrap().value(row) as f64),
        DataType::UInt64 => time.from_number(any.downcast_ref::<UInt64Array>().unwrap().value(row) as f64),
        DataType::Float64 => time.from_number(any.downcast_ref::<Float64Array>().unwrap().value(row)),
        DataType::Utf8 => time.parse_text(any.downcast_ref::<StringArray>().unwrap().value(row)),
        DataType::LargeUtf8 => time.parse_text(any.downcast_ref::<LargeStringArray>().unwrap().value(row)),
        DataType::Timestamp(unit, _) => {
            let raw = match unit {
                TimeUnit::Second => any.downcast_ref::<TimestampSecondArray>().unwrap().value(row) * 1000,
                TimeUnit::Millisecond => any.downcast_ref::<TimestampMillisecondArray>().unwrap().value(row),
                TimeUnit::Microsecond => any.downcast_ref::<TimestampMicrosecondArray>().unwrap().value(row) / 1000,
                TimeUnit::Nanosecond => any.downcast_ref::<TimestampNanosecondArray>().unwrap().value(row) / 1_000_000,
            };
            TimeSpec::millis(&time.field).from_number(raw as f64)
        }
        other => Err(format!("time column {:?} has unsupported type {other}", time.field)),
    }
}

impl<T: DeserializeOwned> SegmentReader<T> for ParquetReader<T> {
    fn read(&mut self, max: usize, out: &mut Vec<Decoded<T>>) -> Result<bool, EngineError> {
        let mut produced = 0;
        while produced < max {
            if self.current.as_ref().is_none_or(|(batch, row)| *row >= batch.num_rows()) {
                match self.batches.next() {
                    None => return Ok(true),
                    Some(Err(e)) => return Err(EngineError::Parquet { path: self.path.clone(), message: e.to_string() }),
                    Some(Ok(batch)) => self.current = Some((batch, 0)),
                }
                continue;
            }
            let (batch, row) = self.current.as_ref().unwrap();
            let (batch, row) = (batch.clone(), *row);
            out.push(match self.decode(&batch, row) {
                Ok(record) => Decoded::Record(record),
                Err(reason) => Decoded::bad(format!("row {} of row group {}", self.rows_done, self.row_group), reason, Vec::new()),
            });
            self.current.as_mut().unwrap().1 += 1;
            self.rows_done += 1;
            self.metrics.bytes_read.add(self.bytes_per_row);
            produced += 1;
        }
        Ok(false)
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// Records held in memory (tests, examples), handed out `max` at a time.
pub struct MemoryReader<T> {
    records: Arc<Vec<Timed<T>>>,
    next: usize,
    chunk: usize,
}

impl<T> MemoryReader<T> {
    pub fn new(records: Arc<Vec<Timed<T>>>, chunk: usize) -> Self {
        MemoryReader { records, next: 0, chunk: chunk.max(1) }
    }
}

impl<T: Clone> SegmentReader<T> for MemoryReader<T> {
    fn read(&mut self, max: usize, out: &mut Vec<Decoded<T>>) -> Result<bool, EngineError> {
        let end = (self.next + max.min(self.chunk)).min(self.records.len());
        out.extend(self.records[self.next..end].iter().cloned().map(Decoded::Record));
        self.next = end;
        Ok(self.next >= self.records.len())
    }
    fn name(&self) -> &str {
        "memory"
    }
}

/// A reader whose records were all loaded and sorted by event time first (stable, so ties keep
/// file order): for small logs that are not in time order at all.
pub struct SortedReader<T> {
    name: String,
    items: std::vec::IntoIter<Decoded<T>>,
}

impl<T> SortedReader<T> {
    pub fn load(mut inner: Box<dyn SegmentReader<T>>) -> Result<Self, EngineError> {
        let mut items = Vec::new();
        while !inner.read(64 * 1024, &mut items)? {}
        // Dead letters first (they have no time), then records by time.
        items.sort_by_key(|item| match item {
            Decoded::Record(r) => Some(r.time),
            Decoded::Bad(_) => None,
        });
        Ok(SortedReader { name: inner.name().to_owned(), items: items.into_iter() })
    }
}

impl<T> SegmentReader<T> for SortedReader<T> {
    fn read(&mut self, max: usize, out: &mut Vec<Decoded<T>>) -> Result<bool, EngineError> {
        out.extend(self.items.by_ref().take(max));
        Ok(self.items.len() == 0)
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// Reads a whole file's bytes (for small helpers and tests).
pub fn read_to_end(path: &Path) -> Result<Vec<u8>, EngineError> {
    let mut bytes = Vec::new();
    File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(|e| EngineError::read(path, e))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Row {
        ts: i64,
        pad: String,
    }

    fn read_all(path: &Path, start: u64, end: u64) -> Vec<Result<(i64, usize), String>> {
        let mut reader = JsonLinesReader::<Row>::open(path, start, end, TimeSpec::millis("ts"), Metrics::default()).unwrap();
        let mut out = Vec::new();
        while !reader.read(3, &mut out).unwrap() {}
        out.into_iter()
            .map(|item| match item {
                Decoded::Record(r) => Ok((r.time, r.data.pad.len())),
                Decoded::Bad(bad) => Err(bad.position),
            })
            .collect()
    }

    #[test]
    fn lines_longer_than_the_buffer_and_a_missing_final_newline_are_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.jsonl");
        let long = "x".repeat(READ_CHUNK * 2 + 17);
        let text = format!("{{\"ts\":1,\"pad\":\"{long}\"}}\n\nnot json\n{{\"ts\":2,\"pad\":\"ab\"}}\n{{\"ts\":3,\"pad\":\"c\"}}");
        std::fs::write(&path, &text).unwrap();
        let got = read_all(&path, 0, u64::MAX);
        assert_eq!(got, vec![Ok((1, long.len())), Err(format!("line 3 (byte {})", long.len() + 19)), Ok((2, 2)), Ok((3, 1))]);
    }

    /// A file of several read-ahead chunks, with lines longer than a chunk's headroom and one
    /// longer than a chunk: every line once, in order, whether a segment reads ahead or not
    /// (more segments at once than read-ahead threads may run).
    #[test]
    fn segments_read_ahead_give_every_line_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.jsonl");
        let pad = |i: usize| match i % 1000 {
            7 => READ_AHEAD_HEADROOM + 5,
            500 => 3 * READ_AHEAD_HEADROOM,
            _ if i == 2345 => READ_CHUNK + 11,
            _ => i % 97,
        };
        let rows = 40_000;
        let text: String = (0..rows).map(|i| format!("{{\"ts\":{i},\"pad\":\"{}\"}}\n", "z".repeat(pad(i)))).collect();
        std::fs::write(&path, &text).unwrap();
        let len = text.len() as u64;
        assert!(len > 8 * READ_CHUNK as u64);
        let expected: Vec<(i64, usize)> = (0..rows).map(|i| (i as i64, pad(i))).collect();
        for pieces in [1u64, 3, 8] {
            let size = len.div_ceil(pieces);
            let bounds: Vec<(u64, u64)> = (0..pieces).map(|p| (p * size, ((p + 1) * size).min(len))).collect();
            // All segments open at once and read in turns, as a replay reads them.
            let mut readers: Vec<_> = bounds.iter().map(|&(start, end)| JsonLinesReader::<Row>::open(&path, start, end, TimeSpec::millis("ts"), Metrics::default()).unwrap()).collect();
            let mut outs: Vec<Vec<Decoded<Row>>> = readers.iter().map(|_| Vec::new()).collect();
            let mut done = vec![false; readers.len()];
            while done.iter().any(|d| !d) {
                for (i, reader) in readers.iter_mut().enumerate() {
                    if !done[i] {
                        done[i] = reader.read(700, &mut outs[i]).unwrap();
                    }
                }
            }
            let got: Vec<(i64, usize)> = outs
                .into_iter()
                .flatten()
                .map(|item| match item {
                    Decoded::Record(r) => (r.time, r.data.pad.len()),
                    Decoded::Bad(bad) => panic!("{} {}", bad.position, bad.reason),
                })
                .collect();
            assert_eq!(got, expected, "{pieces} pieces");
        }
    }

    #[test]
    fn byte_ranges_split_lines_by_where_they_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lines.jsonl");
        let lines: Vec<String> = (0..500).map(|i| format!("{{\"ts\":{i},\"pad\":\"{}\"}}\n", "y".repeat(i % 37))).collect();
        std::fs::write(&path, lines.concat()).unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        for pieces in [1u64, 2, 7, 64] {
            let size = len.div_ceil(pieces);
            let mut times = Vec::new();
            let mut start = 0;
            while start < len {
                let end = (start + size).min(len);
                times.extend(read_all(&path, start, end).into_iter().map(|r| r.unwrap().0));
                start = end;
            }
            assert_eq!(times, (0..500).collect::<Vec<i64>>(), "{pieces} pieces");
        }
    }
}
