//! Kafka topics as sources: bounded topic replays, live consumption, and backfill-then-live.
//!
//! ```text
//! kafka://HOST:PORT/TOPIC?group=G&from=earliest|latest|<rfc3339>|<epoch-ms>&until=end|<time>
//!        &time=<field>|kafka &dlq=TOPIC &idle_ms=N &backfill=<files>
//! ```
//! ([`KafkaSource::from_uri`]; the builder methods say the same in code).
//!
//! # Partitions and workers
//! The topic's partitions are spread over all workers of all processes: partition *p* is read
//! by worker *p mod workers*. Each worker has one consumer with a fixed assignment (no
//! group rebalancing), so which worker reads what depends only on the partition count.
//!
//! # Event time and watermarks
//! Event time comes from a payload field ([`TimeSpec`], `ts` in Unix ms by default: the layout
//! `weir gen` writes) or from the Kafka message timestamp (`time=kafka`). Each partition keeps
//! a watermark: its largest event time minus the allowed out-of-orderness; older records are
//! late (counted, sent to the late output). A worker holds its frontier at the smallest
//! watermark among its partitions, and reads the partition furthest behind first (each
//! partition has its own librdkafka queue: from one shared queue, a whole prefetch of one
//! partition would come before any message of the next, and the frontier would stand still
//! meanwhile). In a **live** read (no `until`), a partition that has
//! delivered nothing for [`KafkaSource::idle_timeout`] (default 10 s) stops holding the
//! frontier back, so one quiet partition does not stall every window; its next record may then
//! be late. When all of a worker's partitions are idle, it releases its frontier up to the
//! largest watermark any worker of its process has reached (a process whose partitions are all
//! idle and empty still holds the cluster back).
//! Bounded reads never treat a partition as idle: they wait for it, so their results do not
//! depend on timing.
//!
//! # Bounded topic replay
//! `until=end` captures each partition's end offset when the run starts and reads up to it;
//! `until=<time>` reads up to the first offset whose message timestamp is at or after that
//! time. Then the input closes and every window becomes final, exactly like a file replay.
//!
//! # Offsets: at-least-once
//! A record's effects are final once the sink's frontier (the source's `retired` probe) has
//! passed its tick plus the pipeline's **state horizon** ([`KafkaSource::state_horizon_ms`]):
//! the longest event time a record can wait in operator state before its results are written
//! (for windows, the window length plus one tick). Only offsets below every record that is not
//! yet final are committed to the consumer group, with the sink frontier at that moment in the
//! commit's metadata (`weir:retired=<tick>`). A restart with the same group resumes from the
//! committed offsets, and drops the outputs before the largest recorded frontier (they were
//! written before): outputs after it are recomputed from all of their inputs, so a restart
//! repeats some whole output rows but never writes a partial one. Without a state horizon,
//! offsets are committed only when a bounded run has finished. That final commit (of
//! everything read, metadata `weir:retired=<u64::MAX>`) is made once the sink has written
//! everything: timely drops the source operator as soon as it has read its last message, so it
//! hands the commit to the pipeline, which makes it when its probe is done. A commit that fails
//! (a broker restart, a coordinator move) is resent with the next one. Exactly-once output needs
//! transactions (a later issue).
//!
//! # Backpressure
//! Like a file replay, the source does not run more than [`KafkaSource::max_ahead_ms`] of
//! event time ahead of what the sink has retired: beyond that it pauses its partitions (the
//! consumer stops fetching) until the pipeline catches up. The consumer's prefetch is capped
//! at [`KafkaSource::prefetch_kbytes`] per worker, so memory stays bounded when the pipeline is
//! slower than the topic.
//!
//! # Bad messages
//! A message that is not valid JSON, lacks a field, or has an unreadable time goes to the
//! pipeline's dead-letter output and, with `dlq=TOPIC`, to that topic as a JSON object with
//! the reason, partition and offset ([`KafkaDeadLetter`]); the run goes on.
//!
//! # Backfill, then live
//! With [`KafkaSource::backfill`] (`backfill=<files>`) and `from=<time>` (the cut), the source
//! first replays the files, keeping records before the cut, and then reads each partition from
//! the first offset whose message timestamp is at or after the cut, keeping records at or
//! after it. The producer must stamp messages with their event time (Kafka's `CreateTime`); then
//! nothing is lost and nothing is read twice, whatever the disorder within a partition.
//!
//! # Tracing
//! With the environment variable `WEIR_TRACE_KAFKA` set (to anything), each worker prints its
//! reading state to stderr twice a second: its frontier tick, the sink's retired frontier,
//! whether it is paused, and per partition the next and end offsets, the watermark, the ticks
//! still pending and the last committed offset. It is what to look at when a frontier or a
//! commit does not move.

pub mod client;
mod operator;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub(crate) use operator::{build_kafka_source, prepare as operator_prepare, skip_before};

use super::ReplaySource;
use crate::error::EngineError;
use crate::time::{TimeFormat, TimeSpec};

/// Where in a topic a read starts, when the group has no committed offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartAt {
    Earliest,
    Latest,
    /// The first offset whose message timestamp is at or after this time (Unix ms).
    Time(i64),
}

/// Where a bounded read stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopAt {
    /// The end offsets seen when the run starts.
    End,
    /// The first offset whose message timestamp is at or after this time (Unix ms).
    Time(i64),
}

/// Where a record's event time comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KafkaTime {
    /// A field of the JSON payload.
    Field(TimeSpec),
    /// The Kafka message timestamp.
    Message,
}

/// A Kafka topic as a source (see the module docs).
#[derive(Clone, Debug)]
pub struct KafkaSource {
    /// `host:port[,host:port…]`
    pub bootstrap: String,
    pub topic: String,
    /// Consumer group for committed offsets (default `weir-<topic>`).
    pub group: String,
    pub start: StartAt,
    /// `None`: a live read that never ends.
    pub stop: Option<StopAt>,
    pub time: KafkaTime,
    /// Allowed out-of-orderness within a partition, ms.
    pub out_of_orderness_ms: u64,
    /// Live reads only: a partition quiet for this long stops holding the frontier back.
    pub idle_timeout: Duration,
    /// Event time the source may run ahead of what the sink has retired (`None`: unlimited).
    pub max_ahead_ms: Option<u64>,
    /// See the module docs; `None` commits only at the end of a bounded run.
    pub state_horizon_ms: Option<u64>,
    /// How often offsets are committed.
    pub commit_interval: Duration,
    /// Topic for dead letters (besides the pipeline's dead-letter file).
    pub dead_letter_topic: Option<String>,
    /// Files replayed first, up to the `from` time (backfill, then live).
    pub backfill: Option<ReplaySource>,
    /// Replay at this multiple of real time (`None`: as fast as possible).
    pub speed: Option<f64>,
    /// Messages handled per activation.
    pub batch: usize,
    /// Cap of the consumer's prefetch queue per worker, KiB.
    pub prefetch_kbytes: u64,
    /// The largest watermark tick any worker of this process has reached: where a worker whose
    /// partitions are all idle releases its frontier to.
    pub(crate) process_watermark: Arc<AtomicU64>,
    /// How often the workers of this process paused their partitions (backpressure).
    pub(crate) pauses: Arc<AtomicU64>,
}

impl KafkaSource {
    pub fn new(bootstrap: impl Into<String>, topic: impl Into<String>) -> Self {
        let topic = topic.into();
        KafkaSource {
            bootstrap: bootstrap.into(),
            group: format!("weir-{topic}"),
            topic,
            start: StartAt::Earliest,
            stop: None,
            time: KafkaTime::Field(TimeSpec::millis("ts")),
            out_of_orderness_ms: 5_000,
            idle_timeout: Duration::from_secs(10),
            max_ahead_ms: Some(3_600_000),
            state_horizon_ms: None,
            commit_interval: Duration::from_millis(500),
            dead_letter_topic: None,
            backfill: None,
            speed: None,
            batch: 4096,
            prefetch_kbytes: 16 * 1024,
            process_watermark: Arc::new(AtomicU64::new(0)),
            pauses: Arc::new(AtomicU64::new(0)),
        }
    }
    /// How often this source's consumers have paused their partitions so far (backpressure).
    pub fn pauses(&self) -> u64 {
        self.pauses.load(std::sync::atomic::Ordering::Relaxed)
    }
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }
    pub fn start(mut self, start: StartAt) -> Self {
        self.start = start;
        self
    }
    pub fn until(mut self, stop: StopAt) -> Self {
        self.stop = Some(stop);
        self
    }
    pub fn time(mut self, time: KafkaTime) -> Self {
        self.time = time;
        self
    }
    pub fn state_horizon_ms(mut self, ms: u64) -> Self {
        self.state_horizon_ms = Some(ms);
        self
    }
    pub fn dead_letter_topic(mut self, topic: impl Into<String>) -> Self {
        self.dead_letter_topic = Some(topic.into());
        self
    }
    /// Backfill from files up to `cut`, then read the topic live from `cut` on.
    pub fn backfill(mut self, files: ReplaySource, cut_ms: i64) -> Self {
        self.backfill = Some(files);
        self.start = StartAt::Time(cut_ms);
        self
    }

    /// The backfill cut, if this is a hybrid source.
    pub(crate) fn cut_ms(&self) -> Option<i64> {
        match (self.backfill.is_some(), self.start) {
            (true, StartAt::Time(ms)) => Some(ms),
            _ => None,
        }
    }

    /// Parses `kafka://HOST:PORT/TOPIC?…`; `time_spec` is the default event-time field.
    /// Returns `Ok(None)` for a URI of another scheme.
    pub fn from_uri(uri: &str, default_time: &TimeSpec) -> Result<Option<Self>, EngineError> {
        let Some((bootstrap, topic, params)) = split_uri(uri)? else { return Ok(None) };
        let mut source = KafkaSource::new(bootstrap, topic);
        source.time = KafkaTime::Field(default_time.clone());
        let mut backfill = None;
        for (key, value) in params {
            match key.as_str() {
                "group" => source.group = value,
                "from" => {
                    source.start = match value.as_str() {
                        "earliest" => StartAt::Earliest,
                        "latest" => StartAt::Latest,
                        time => StartAt::Time(parse_time(time)?),
                    }
                }
                "until" => {
                    source.stop = Some(match value.as_str() {
                        "end" => StopAt::End,
                        time => StopAt::Time(parse_time(time)?),
                    })
                }
                "time" if value == "kafka" => source.time = KafkaTime::Message,
                "time" => source.time = KafkaTime::Field(TimeSpec::new(value, default_time.format)),
                "dlq" => source.dead_letter_topic = Some(value),
                "idle_ms" => source.idle_timeout = Duration::from_millis(parse_number(&key, &value)?),
                "backfill" => backfill = Some(value),
                other => return Err(EngineError::Config(format!("unknown Kafka source option {other:?} in {uri}"))),
            }
        }
        if let Some(files) = backfill {
            let StartAt::Time(cut) = source.start else {
                return Err(EngineError::Config(format!("backfill needs from=<time> (the cut point) in {uri}")));
            };
            let KafkaTime::Field(time) = &source.time else {
                return Err(EngineError::Config("backfill needs the event time from a payload field".into()));
            };
            let time = time.clone();
            source = source.backfill(ReplaySource::new(files, time), cut);
        }
        Ok(Some(source))
    }
}

/// Splits `kafka://HOST:PORT/TOPIC?k=v&…` (`Ok(None)`: not a Kafka URI).
#[allow(clippy::type_complexity)]
pub(crate) fn split_uri(uri: &str) -> Result<Option<(String, String, Vec<(String, String)>)>, EngineError> {
    let Some(rest) = uri.strip_prefix("kafka://") else { return Ok(None) };
    let (address, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (bootstrap, topic) = address
        .split_once('/')
        .filter(|(b, t)| !b.is_empty() && !t.is_empty() && !t.contains('/'))
        .ok_or_else(|| EngineError::Config(format!("a Kafka URI looks like kafka://HOST:PORT/TOPIC?…, not {uri}")))?;
    let mut params = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) =
            pair.split_once('=').ok_or_else(|| EngineError::Config(format!("option {pair:?} in {uri} needs a value (key=value)")))?;
        params.push((key.to_owned(), value.to_owned()));
    }
    Ok(Some((bootstrap.to_owned(), topic.to_owned(), params)))
}

/// A time given as Unix ms or RFC 3339.
fn parse_time(text: &str) -> Result<i64, EngineError> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    TimeSpec::new("from", TimeFormat::Rfc3339)
        .parse_text(text)
        .map_err(|_| EngineError::Config(format!("{text:?} is neither Unix milliseconds nor an RFC 3339 time")))
}

pub(crate) fn parse_number(key: &str, value: &str) -> Result<u64, EngineError> {
    value.parse().map_err(|_| EngineError::Config(format!("Kafka option {key} must be a number, not {value:?}")))
}

/// What a malformed message becomes on the dead-letter topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KafkaDeadLetter {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub reason: String,
    /// The message payload as text (lossy, truncated to 4 KiB).
    pub raw: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_uri() {
        let uri = "kafka://127.0.0.1:9092/clicks?group=g1&from=2026-01-01T00:00:00Z&until=end&dlq=bad&idle_ms=250";
        let source = KafkaSource::from_uri(uri, &TimeSpec::millis("ts")).unwrap().unwrap();
        assert_eq!(source.bootstrap, "127.0.0.1:9092");
        assert_eq!(source.topic, "clicks");
        assert_eq!(source.group, "g1");
        assert_eq!(source.start, StartAt::Time(1_767_225_600_000));
        assert_eq!(source.stop, Some(StopAt::End));
        assert_eq!(source.dead_letter_topic.as_deref(), Some("bad"));
        assert_eq!(source.idle_timeout, Duration::from_millis(250));
        assert_eq!(source.time, KafkaTime::Field(TimeSpec::millis("ts")));
    }

    #[test]
    fn defaults_and_other_schemes() {
        let source = KafkaSource::from_uri("kafka://h:1/t", &TimeSpec::millis("ts")).unwrap().unwrap();
        assert_eq!((source.group.as_str(), source.start, source.stop), ("weir-t", StartAt::Earliest, None));
        let source = KafkaSource::from_uri("kafka://h:1/t?from=latest&until=1767225600000&time=kafka", &TimeSpec::millis("ts")).unwrap().unwrap();
        assert_eq!((source.start, source.stop, source.time), (StartAt::Latest, Some(StopAt::Time(1_767_225_600_000)), KafkaTime::Message));
        assert!(KafkaSource::from_uri("clicks.jsonl", &TimeSpec::millis("ts")).unwrap().is_none());
    }

    #[test]
    fn rejects_bad_uris() {
        for bad in ["kafka://h:1", "kafka:///t", "kafka://h:1/t?from=yesterday", "kafka://h:1/t?colour=red", "kafka://h:1/t?group", "kafka://h:1/t?backfill=x"] {
            assert!(KafkaSource::from_uri(bad, &TimeSpec::millis("ts")).is_err(), "{bad}");
        }
    }

    #[test]
    fn backfill_needs_a_cut() {
        let source = KafkaSource::from_uri("kafka://h:1/t?from=1000&backfill=logs/*.jsonl", &TimeSpec::millis("ts")).unwrap().unwrap();
        assert_eq!(source.cut_ms(), Some(1000));
        assert_eq!(source.backfill.unwrap().input, "logs/*.jsonl");
    }
}
