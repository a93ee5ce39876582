//! Small Kafka client helpers shared by the source, the sink, the tests and `weir bench`:
//! client settings, a reachability check that fails in seconds, topic creation, and reading or
//! writing a whole topic.

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::error::EngineError;

/// How long a metadata request may take before the broker counts as unreachable.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// The settings every Weir client shares.
pub fn base_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        // Fail over quickly between reconnect attempts while a broker restarts.
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "1000")
        .set("socket.connection.setup.timeout.ms", "5000")
        .set("log_level", "3");
    config
}

pub(crate) fn kafka_error(bootstrap: &str, what: &str, error: impl std::fmt::Display) -> EngineError {
    EngineError::Kafka(format!("{what} (Kafka at {bootstrap}): {error}"))
}

/// How long a request that keeps failing with a [transient](is_transient) error is retried.
pub const TRANSIENT_RETRY: Duration = Duration::from_secs(30);

/// Errors that clear up on their own: a group coordinator that is still being chosen or is
/// loading its state (a fresh broker creates its offsets topic on the first group request and
/// answers `NotCoordinator` meanwhile), a partition leader that is moving, a request that
/// timed out on a busy broker.
pub fn is_transient(error: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        error.rdkafka_error_code(),
        Some(
            NotCoordinator
                | CoordinatorLoadInProgress
                | CoordinatorNotAvailable
                | LeaderNotAvailable
                | NotLeaderForPartition
                | RequestTimedOut
                | OperationTimedOut
                | BrokerTransportFailure
        )
    )
}

/// Runs `request` again (with a growing pause) while it fails with a transient error, for up
/// to [`TRANSIENT_RETRY`]; returns its first success or its last error.
pub fn retry_transient<R>(mut request: impl FnMut() -> KafkaResult<R>) -> KafkaResult<R> {
    let deadline = Instant::now() + TRANSIENT_RETRY;
    let mut pause = Duration::from_millis(50);
    loop {
        match request() {
            Err(error) if is_transient(&error) && Instant::now() + pause < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            result => return result,
        }
    }
}

/// Fails within [`METADATA_TIMEOUT`] when no broker answers at `bootstrap`; returns the number
/// of partitions of `topic` (0 when it does not exist).
pub fn partition_count(bootstrap: &str, topic: &str) -> Result<usize, EngineError> {
    let consumer: BaseConsumer = base_config(bootstrap)
        .set("allow.auto.create.topics", "false")
        .create()
        .map_err(|e| kafka_error(bootstrap, "cannot create a Kafka client", e))?;
    let metadata = consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT).map_err(|e| {
        kafka_error(bootstrap, "cannot reach the Kafka broker (is it running? scripts/kafka/start.sh starts one)", e)
    })?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map_or(0, |t| t.partitions().len()))
}

/// Creates `topic` with `partitions` partitions unless it exists; waits until its metadata
/// shows all of them.
pub fn ensure_topic(bootstrap: &str, topic: &str, partitions: usize) -> Result<usize, EngineError> {
    let existing = partition_count(bootstrap, topic)?;
    if existing > 0 {
        return Ok(existing);
    }
    let admin: AdminClient<DefaultClientContext> =
        base_config(bootstrap).create().map_err(|e| kafka_error(bootstrap, "cannot create a Kafka admin client", e))?;
    let new_topic = NewTopic::new(topic, partitions as i32, TopicReplication::Fixed(1));
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
    let results = futures_executor::block_on(admin.create_topics([&new_topic], &options))
        .map_err(|e| kafka_error(bootstrap, &format!("cannot create topic {topic}"), e))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(kafka_error(bootstrap, &format!("cannot create topic {name}"), code)),
        }
    }
    // Creation is asynchronous on the broker: poll its metadata until every partition is there.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let count = partition_count(bootstrap, topic)?;
        if count >= partitions {
            return Ok(count);
        }
        if Instant::now() > deadline {
            return Err(kafka_error(bootstrap, &format!("topic {topic} did not appear"), "timed out after 30 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An idempotent producer with Weir's settings: `acks=all`, retries through broker restarts
/// for up to two minutes per message.
pub fn producer_config(bootstrap: &str) -> ClientConfig {
    let mut config = base_config(bootstrap);
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.kbytes", "65536")
        .set("message.timeout.ms", "120000")
        .set("compression.type", "lz4");
    config
}

/// One message to write with [`produce`].
pub struct Outgoing<'a> {
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
    /// Message timestamp (ms); `None` lets the producer stamp the current time.
    pub timestamp: Option<i64>,
    /// Partition; `None` lets the key decide.
    pub partition: Option<i32>,
}

/// Writes messages to `topic` and waits until the broker has acknowledged all of them.
pub fn produce<'a>(bootstrap: &str, topic: &str, messages: impl IntoIterator<Item = Outgoing<'a>>) -> Result<u64, EngineError> {
    let producer: BaseProducer =
        producer_config(bootstrap).create().map_err(|e| kafka_error(bootstrap, "cannot create a Kafka producer", e))?;
    let mut count = 0;
    for message in messages {
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).payload(message.payload);
        if let Some(key) = message.key {
            record = record.key(key);
        }
        if let Some(ts) = message.timestamp {
            record = record.timestamp(ts);
        }
        if let Some(partition) = message.partition {
            record = record.partition(partition);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((error, returned)) if error.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    producer.poll(Duration::from_millis(10));
                    record = returned;
                }
                Err((error, _)) => return Err(kafka_error(bootstrap, &format!("cannot produce to {topic}"), error)),
            }
        }
        count += 1;
    }
    producer.flush(Duration::from_secs(120)).map_err(|e| kafka_error(bootstrap, &format!("cannot flush messages to {topic}"), e))?;
    Ok(count)
}

/// A message read back by [`read_topic`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub timestamp: Option<i64>,
}

/// Reads every message of `topic` up to its end offsets at the time of the call, partition by
/// partition (0, 1, …) in offset order.
pub fn read_topic(bootstrap: &str, topic: &str) -> Result<Vec<Incoming>, EngineError> {
    let partitions = partition_count(bootstrap, topic)?;
    let consumer: BaseConsumer = base_config(bootstrap)
        .set("group.id", "weir-read-topic")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| kafka_error(bootstrap, "cannot create a Kafka consumer", e))?;
    let mut ends = Vec::new();
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, METADATA_TIMEOUT)
            .map_err(|e| kafka_error(bootstrap, &format!("cannot read the offsets of {topic}"), e))?;
        ends.push(high);
        assignment.add_partition_offset(topic, p, Offset::Offset(low)).expect("a fresh partition list");
    }
    consumer.assign(&assignment).map_err(|e| kafka_error(bootstrap, "cannot assign partitions", e))?;
    let mut per_partition: Vec<Vec<Incoming>> = vec![Vec::new(); partitions];
    let mut next: Vec<i64> = (0..partitions).map(|p| assignment.elements()[p].offset().to_raw().unwrap_or(0)).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while (0..partitions).any(|p| next[p] < ends[p]) {
        if Instant::now() > deadline {
            return Err(kafka_error(bootstrap, &format!("reading {topic}"), "timed out after 120 s"));
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let p = message.partition() as usize;
                if message.offset() < ends[p] && message.offset() >= next[p] {
                    next[p] = message.offset() + 1;
                    per_partition[p].push(Incoming {
                        partition: message.partition(),
                        offset: message.offset(),
                        key: message.key().map(<[u8]>::to_vec),
                        payload: message.payload().unwrap_or_default().to_vec(),
                        timestamp: message.timestamp().to_millis(),
                    });
                }
            }
            Some(Err(error)) => eprintln!("weir: while reading {topic}: {error}"),
            None => {}
        }
    }
    Ok(per_partition.into_iter().flatten().collect())
}

/// The offsets `group` has committed for `topic`, by partition (`None`: nothing committed),
/// with the metadata string stored next to each.
pub fn committed_offsets(bootstrap: &str, group: &str, topic: &str) -> Result<Vec<(Option<i64>, String)>, EngineError> {
    let partitions = partition_count(bootstrap, topic)?;
    let consumer: BaseConsumer = base_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| kafka_error(bootstrap, "cannot create a Kafka consumer", e))?;
    let mut list = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        list.add_partition(topic, p);
    }
    let committed = retry_transient(|| consumer.committed_offsets(list.clone(), Duration::from_secs(10)))
        .map_err(|e| kafka_error(bootstrap, &format!("cannot read the committed offsets of group {group}"), e))?;
    Ok(committed
        .elements()
        .iter()
        .map(|e| (match e.offset() { Offset::Offset(o) => Some(o), _ => None }, e.metadata().to_owned()))
        .collect())
}
