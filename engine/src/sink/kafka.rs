//! A Kafka topic as a sink: `kafka://HOST:PORT/TOPIC?key=FIELD&partitions=N`.
//!
//! Records are written as JSON messages by an **idempotent** producer (`acks=all`, retried
//! through broker restarts, no duplicates from retries), keyed by a top-level field of the
//! record (`key=item`; no key: the partitioner spreads them), stamped with the tick at which
//! they became final. Like every sink, it writes a tick's records once the frontier has passed
//! the tick, in canonical order; then it **flushes**: the sink's frontier (which the sources use
//! to commit offsets) passes a tick only after the broker has acknowledged its records. A
//! message the broker does not take is counted ([`crate::metrics::MetricsInner::delivery_errors`]),
//! logged, and fails the run: nothing is dropped silently.
//!
//! The topic is created (with `partitions`, default 1) when it does not exist. With one
//! partition, the topic holds the same lines in the same order as a JSONL file sink would.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};

use super::writers::{LineWriter, RecordWriter};
use crate::error::EngineError;
use crate::format::json_time::{RawValue, find_top_level};
use crate::metrics::Metrics;
use crate::source::kafka::client::{self, kafka_error};
use crate::source::kafka::{parse_number, split_uri};
use crate::time::Tick;

/// Where and how to write (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaSink {
    pub bootstrap: String,
    pub topic: String,
    /// Top-level field of the record used as the message key.
    pub key: Option<String>,
    /// Partitions of the topic when the sink has to create it.
    pub partitions: usize,
    /// How long a flush may wait for the broker (a restart takes seconds).
    pub flush_timeout: Duration,
}

impl KafkaSink {
    pub fn new(bootstrap: impl Into<String>, topic: impl Into<String>) -> Self {
        KafkaSink { bootstrap: bootstrap.into(), topic: topic.into(), key: None, partitions: 1, flush_timeout: Duration::from_secs(120) }
    }
    pub fn key(mut self, field: impl Into<String>) -> Self {
        self.key = Some(field.into());
        self
    }

    /// Parses `kafka://HOST:PORT/TOPIC?key=FIELD&partitions=N` (`Ok(None)`: another scheme).
    pub fn from_uri(uri: &str) -> Result<Option<Self>, EngineError> {
        let Some((bootstrap, topic, params)) = split_uri(uri)? else { return Ok(None) };
        let mut sink = KafkaSink::new(bootstrap, topic);
        for (key, value) in params {
            match key.as_str() {
                "key" => sink.key = Some(value),
                "partitions" => sink.partitions = parse_number(&key, &value)?.max(1) as usize,
                other => return Err(EngineError::Config(format!("unknown Kafka sink option {other:?} in {uri}"))),
            }
        }
        Ok(Some(sink))
    }
}

/// Collects delivery failures reported by librdkafka's delivery callbacks.
struct DeliveryReports {
    failures: Arc<Mutex<Vec<String>>>,
    metrics: Metrics,
}

impl ClientContext for DeliveryReports {}

impl ProducerContext for DeliveryReports {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        if let Err((error, message)) = result {
            self.metrics.delivery_errors.add(1);
            let text = format!("message to {} partition {} not delivered: {error}", message.topic(), message.partition());
            eprintln!("weir: {text}");
            let mut failures = self.failures.lock().unwrap();
            if failures.len() < 10 {
                failures.push(text);
            }
        }
    }
}

pub(crate) struct KafkaWriter {
    sink: KafkaSink,
    producer: BaseProducer<DeliveryReports>,
    failures: Arc<Mutex<Vec<String>>>,
    unflushed: bool,
}

impl KafkaWriter {
    pub(crate) fn open(sink: &KafkaSink, metrics: Metrics) -> Result<Self, EngineError> {
        client::ensure_topic(&sink.bootstrap, &sink.topic, sink.partitions)?;
        let failures = Arc::new(Mutex::new(Vec::new()));
        let context = DeliveryReports { failures: failures.clone(), metrics };
        let producer = client::producer_config(&sink.bootstrap)
            .create_with_context(context)
            .map_err(|e| kafka_error(&sink.bootstrap, "cannot create a Kafka producer", e))?;
        Ok(KafkaWriter { sink: sink.clone(), producer, failures, unflushed: false })
    }

    fn check_failures(&self) -> Result<(), EngineError> {
        let failures = self.failures.lock().unwrap();
        match failures.first() {
            None => Ok(()),
            Some(_) => Err(kafka_error(&self.sink.bootstrap, &format!("writing to {}", self.sink.topic), failures.join("; "))),
        }
    }
}

impl<T> RecordWriter<T> for KafkaWriter {
    fn write(&mut self, tick: Tick, json: &str, _record: T) -> Result<(), EngineError> {
        self.produce(tick, json)
    }

    fn as_line_writer(&mut self) -> Option<&mut dyn LineWriter> {
        Some(self)
    }

    fn flush(&mut self) -> Result<(), EngineError> {
        if self.unflushed {
            self.producer
                .flush(self.sink.flush_timeout)
                .map_err(|e| kafka_error(&self.sink.bootstrap, &format!("cannot flush messages to {}", self.sink.topic), e))?;
            self.unflushed = false;
        }
        self.check_failures()
    }

    fn finish(&mut self) -> Result<(), EngineError> {
        <Self as RecordWriter<T>>::flush(self)
    }
}

impl LineWriter for KafkaWriter {
    /// One message per line (a JSON line holds no raw newline: JSON escapes them in strings).
    fn write_lines(&mut self, tick: Tick, lines: &str) -> Result<(), EngineError> {
        lines.lines().try_for_each(|line| self.produce(tick, line))
    }
}

impl KafkaWriter {
    /// Produces one message, with the key field of its JSON as the key.
    fn produce(&mut self, tick: Tick, json: &str) -> Result<(), EngineError> {
        let key = self.sink.key.as_deref().and_then(|field| match find_top_level(json.as_bytes(), field) {
            Some(RawValue::Str(text)) | Some(RawValue::Number(text)) => Some(text),
            _ => None,
        });
        let mut record = BaseRecord::<str, str>::to(&self.sink.topic).payload(json).timestamp(tick.min(i64::MAX as u64) as i64);
        if let Some(key) = key {
            record = record.key(key);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((error, returned)) if error.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    // The local queue is full: serve delivery reports until there is room.
                    self.producer.poll(Duration::from_millis(10));
                    record = returned;
                }
                Err((error, _)) => return Err(kafka_error(&self.sink.bootstrap, &format!("cannot produce to {}", self.sink.topic), error)),
            }
        }
        self.unflushed = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sink_uris() {
        let sink = KafkaSink::from_uri("kafka://127.0.0.1:9092/stats?key=item&partitions=3").unwrap().unwrap();
        assert_eq!((sink.bootstrap.as_str(), sink.topic.as_str(), sink.key.as_deref(), sink.partitions), ("127.0.0.1:9092", "stats", Some("item"), 3));
        assert!(KafkaSink::from_uri("stats.jsonl").unwrap().is_none());
        assert!(KafkaSink::from_uri("kafka://h:1/t?colour=red").is_err());
    }
}
