//! Counters of a run, shared by the workers of one process.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What a run has done so far. Workers update it; the CLI's progress bar reads it.
#[derive(Debug, Default)]
pub struct MetricsInner {
    /// Records decoded by the sources (on time and late).
    pub events_in: Counter,
    /// Records written by the sink.
    pub events_out: Counter,
    /// Records behind their source's watermark.
    pub late: Counter,
    /// Records that could not be decoded.
    pub dead_letters: Counter,
    /// Input bytes consumed (for progress).
    pub bytes_read: Counter,
    /// Input bytes to read in all (known at start for file replays).
    pub bytes_total: Counter,
    /// Output messages a sink could not deliver (Kafka).
    pub delivery_errors: Counter,
}

/// Shared handle to the counters.
pub type Metrics = Arc<MetricsInner>;

impl MetricsInner {
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            events_in: self.events_in.get(),
            events_out: self.events_out.get(),
            late: self.late.get(),
            dead_letters: self.dead_letters.get(),
            bytes_read: self.bytes_read.get(),
            bytes_total: self.bytes_total.get(),
            delivery_errors: self.delivery_errors.get(),
        }
    }
}

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MetricsSnapshot {
    pub events_in: u64,
    pub events_out: u64,
    pub late: u64,
    pub dead_letters: u64,
    pub bytes_read: u64,
    pub bytes_total: u64,
    pub delivery_errors: u64,
}
