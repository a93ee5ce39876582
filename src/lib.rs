//! # Weir
//!
//! A stream-processing engine with machine-learning operators built in. One timely-dataflow
//! graph runs both the bounded replay of historical logs and the live stream.
//!
//! This is the facade crate: [`prelude`] has what a pipeline author needs; the `weir` binary is
//! the command-line tool (`weir run`, `weir gen`, `weir bench`).
//!
//! ```no_run
//! use weir::prelude::*;
//! use weir::pipelines::window_stats::{ItemEvent, window_stats};
//!
//! let source = Source::Replay(ReplaySource::new("clicks.jsonl", TimeSpec::millis("ts")));
//! let sink = Sink::file("stats.jsonl").unwrap();
//! let report = Pipeline::new(Execution::Threads(2)).run::<ItemEvent, _, _>(source, sink, window_stats).unwrap();
//! println!("{:.0} events/s", report.events_per_second());
//! ```

pub use weir_engine as engine;
pub use weir_operators as operators;
pub use weir_pipelines as pipelines;

/// Everything a pipeline author needs in one `use`.
pub mod prelude {
    pub use weir_engine::prelude::*;
}
