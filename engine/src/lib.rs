//! # weir-engine: the dataflow core of Weir
//!
//! A Weir pipeline is one [timely dataflow](timely): the same pipeline function runs over a
//! bounded replay of historical files or an unbounded live stream; only the [`Source`] differs.
//!
//! * **Time** ([`time`]): a record's timely timestamp is its event time (Unix ms) rounded *up* to
//!   a tick; the exact time stays in the record ([`Timed`]). The input frontier is the watermark.
//! * **Sources** ([`source`]): file replays (JSONL, CSV, Parquet; a file, a glob or a directory),
//!   cut into segments so several workers read one file, with per-segment watermarks, late
//!   records split off, dead letters for bad input, flow control and a replay speed; an
//!   in-memory source for tests.
//! * **Operators** ([`operators`]): event-time windows and running aggregates on insert-only
//!   streams (timely, closed on the frontier), and differential-dataflow collections where data
//!   can change (a join with a table whose updates retract and re-emit results).
//! * **Sinks** ([`sink`]): JSONL, CSV, Parquet, stdout, memory — written in canonical order, so
//!   outputs are byte-identical across worker and process counts.
//! * **Execution** ([`pipeline`]): `N` worker threads, or `M` processes of `N` workers.
//!
//! The engine knows no machine learning and no use case: those live in `weir-operators` and
//! `weir-pipelines`.

pub mod aggregate;
pub mod deadletter;
pub mod error;
pub mod format;
pub mod metrics;
pub mod operators;
pub mod pipeline;
pub mod record;
pub mod sink;
pub mod source;
pub mod time;

pub use error::EngineError;
pub use pipeline::{Context, Execution, Pipeline, RunReport};
pub use record::{EventStream, OutputStream, Timed};
pub use sink::Sink;
pub use source::{Disorder, MemorySource, ReplaySource, Source};

/// Re-exports of the timely and differential crates at the versions Weir uses.
pub use differential_dataflow;
pub use timely;

/// What a pipeline author needs in one `use`.
pub mod prelude {
    pub use crate::aggregate::{ExactSum, Stats, StatsSummary};
    pub use crate::format::FileFormat;
    pub use crate::operators::*;
    pub use crate::pipeline::{Context, Execution, Pipeline, RunReport};
    pub use crate::record::{EventStream, OutputStream, Timed, stable_hash};
    pub use crate::sink::{MemorySink, Sink};
    pub use crate::source::{Disorder, MemorySource, ReplaySource, Source};
    pub use crate::time::{Tick, TickSpec, TimeFormat, TimeSpec};
}
