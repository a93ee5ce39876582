//! Running a pipeline: a source, a pipeline function, a sink, on N workers in M processes.
//!
//! ```no_run
//! use weir_engine::prelude::*;
//! # #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)] struct Click { item: String }
//! fn clicks_per_item<'s>(events: EventStream<'s, Click>, ctx: &Context) -> OutputStream<'s, WindowResult<String, u64>> {
//!     events.window_fold(WindowSpec::tumbling(60_000), ctx.tick, |c: &Click| c.item.clone(), |n: &mut u64, _| *n += 1)
//! }
//! let source = Source::Replay(ReplaySource::new("clicks.jsonl", TimeSpec::millis("ts")));
//! let sink = Sink::file("counts.jsonl").unwrap();
//! let report = Pipeline::new(Execution::Threads(2)).run(source, sink, clicks_per_item).unwrap();
//! println!("{} events in", report.metrics.events_in);
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use timely::dataflow::operators::Probe;
use timely::dataflow::operators::probe::Handle as ProbeHandle;

use crate::deadletter::DeadLetters;
use crate::error::EngineError;
use crate::format::FileFormat;
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::record::{EventStream, OutputStream, Timed};
use crate::sink::{Sink, SinkContext, SinkExt};
use crate::source::kafka::skip_before;
use crate::source::{OnRetired, Source, SourceContext, build_source};
use crate::time::{Tick, TickSpec};

/// Where the workers run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Execution {
    /// `n` worker threads in this process.
    Threads(usize),
    /// One process of a timely cluster: `threads` workers here, this is process `process` of
    /// `addresses.len()`, all processes listening at `addresses` (`host:port`, one per process).
    Cluster { threads: usize, process: usize, addresses: Vec<String> },
}

impl Execution {
    /// A cluster process whose peers are listed in a host file (one `host:port` per line).
    pub fn from_hostfile(threads: usize, process: usize, processes: usize, hostfile: &Path) -> Result<Self, EngineError> {
        let text = std::fs::read_to_string(hostfile).map_err(|e| EngineError::read(hostfile, e))?;
        let addresses: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect();
        if addresses.len() < processes {
            return Err(EngineError::Config(format!("{} lists {} hosts but --processes is {processes}", hostfile.display(), addresses.len())));
        }
        if process >= processes {
            return Err(EngineError::Config(format!("--process {process} must be below --processes {processes}")));
        }
        Ok(Execution::Cluster { threads, process, addresses: addresses[..processes].to_vec() })
    }

    fn config(&self) -> timely::Config {
        match self {
            Execution::Threads(1) => timely::Config::thread(),
            Execution::Threads(n) => timely::Config::process(*n),
            Execution::Cluster { threads, process, addresses } => timely::Config {
                communication: timely::CommunicationConfig::Cluster {
                    threads: *threads,
                    process: *process,
                    addresses: addresses.clone(),
                    report: false,
                    zerocopy: false,
                },
                worker: timely::WorkerConfig::default(),
            },
        }
    }

    fn process(&self) -> usize {
        match self {
            Execution::Cluster { process, .. } => *process,
            Execution::Threads(_) => 0,
        }
    }
}

/// What a pipeline function may want to know about the run.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    pub tick: TickSpec,
    /// This worker's index among all workers of all processes.
    pub worker: usize,
    pub workers: usize,
}

/// The outcome of a finished run (for this process).
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub metrics: MetricsSnapshot,
    pub elapsed: Duration,
    pub process: usize,
}

impl RunReport {
    pub fn events_per_second(&self) -> f64 {
        self.metrics.events_in as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A configured run.
#[derive(Clone)]
pub struct Pipeline {
    pub execution: Execution,
    pub tick: TickSpec,
    /// Dead letters as JSON lines (process *p > 0* appends `.p<p>` to the name).
    pub dead_letters: Option<PathBuf>,
    /// Late records as JSON lines; `None` counts and drops them.
    pub late_output: Option<PathBuf>,
    /// Live counters (read them from another thread for progress).
    pub metrics: Metrics,
}

impl Pipeline {
    pub fn new(execution: Execution) -> Self {
        Pipeline { execution, tick: TickSpec::default(), dead_letters: None, late_output: None, metrics: Metrics::default() }
    }
    pub fn tick(mut self, tick: TickSpec) -> Self {
        self.tick = tick;
        self
    }
    pub fn dead_letters(mut self, path: impl Into<PathBuf>) -> Self {
        self.dead_letters = Some(path.into());
        self
    }
    pub fn late_output(mut self, path: impl Into<PathBuf>) -> Self {
        self.late_output = Some(path.into());
        self
    }

    fn per_process(&self, path: &Path) -> PathBuf {
        match self.execution.process() {
            0 => path.to_owned(),
            p => PathBuf::from(format!("{}.p{p}", path.display())),
        }
    }

    /// Runs `logic` over `source` into `sink` until the source is exhausted (bounded sources).
    pub fn run<I, O, F>(&self, source: Source<I>, sink: Sink<O>, logic: F) -> Result<RunReport, EngineError>
    where
        I: DeserializeOwned + timely::ExchangeData + Clone + Sync,
        O: timely::ExchangeData + Serialize + Clone,
        F: for<'s> Fn(EventStream<'s, I>, &Context) -> OutputStream<'s, O> + Send + Sync + 'static,
    {
        let started = Instant::now();
        let dead_letters = match &self.dead_letters {
            Some(path) => DeadLetters::to_file(&self.per_process(path))?,
            None => DeadLetters::discard(),
        };
        let late_sink: Sink<Timed<I>> = match &self.late_output {
            Some(path) => Sink::File { path: self.per_process(path), format: FileFormat::Jsonl },
            None => Sink::Discard,
        };
        if let Source::Replay(replay) = &source {
            replay.segments()?; // fail fast on a missing input, before starting workers
            self.metrics.bytes_total.add(replay.total_bytes());
        }
        // Fail fast when the broker is unreachable; after a restart, skip what was written.
        let resume = match &source {
            Source::Kafka(kafka) => crate::source::kafka::operator_prepare(kafka)?,
            _ => None,
        };
        let errors = Arc::new(Mutex::new(Vec::new()));
        let tick = self.tick;
        let metrics = self.metrics.clone();
        let worker_errors = errors.clone();
        let worker_dead_letters = dead_letters.clone();

        let guards = timely::execute(self.execution.config(), move |worker| {
            let probe = ProbeHandle::<Tick>::new();
            let on_retired = OnRetired::default();
            let ctx = Context { tick, worker: worker.index(), workers: worker.peers() };
            worker.dataflow::<Tick, _, _>(|scope| {
                let source_ctx = SourceContext {
                    tick,
                    metrics: metrics.clone(),
                    dead_letters: worker_dead_letters.clone(),
                    errors: worker_errors.clone(),
                    retired: probe.clone(),
                    on_retired: on_retired.clone(),
                };
                let (events, late) = build_source(scope, &source, &source_ctx);
                let sink_ctx = SinkContext { metrics: metrics.clone(), errors: worker_errors.clone(), count_output: true };
                let (output, late) = match resume {
                    Some(tick) => (skip_before(logic(events, &ctx), tick), skip_before(late, tick)),
                    None => (logic(events, &ctx), late),
                };
                output.sink_to(&sink, &sink_ctx).probe_with(&probe);
                let late_ctx = SinkContext { count_output: false, ..sink_ctx };
                late.sink_to(&late_sink, &late_ctx).probe_with(&probe);
            });
            while !probe.done() {
                worker.step_or_park(Some(Duration::from_millis(1)));
            }
            on_retired.run();
        })
        .map_err(EngineError::Execution)?;
        let failures: Vec<String> = guards.join().into_iter().filter_map(Result::err).collect();
        dead_letters.flush()?;
        let mut messages = errors.lock().unwrap().clone();
        messages.extend(failures);
        if !messages.is_empty() {
            return Err(EngineError::Worker(messages.join("; ")));
        }
        Ok(RunReport { metrics: self.metrics.snapshot(), elapsed: started.elapsed(), process: self.execution.process() })
    }
}
