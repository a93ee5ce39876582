//! The timely operator that reads a Kafka topic on each worker: its partitions (and, for a
//! hybrid source, its share of the backfill files first), per-partition watermarks, late
//! records, dead letters, backpressure, and offset commits behind the sink's frontier.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::de::DeserializeOwned;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::{Operator, OutputBuilder};
use timely::dataflow::{Scope, StreamVec};

use super::client::{self, METADATA_TIMEOUT, kafka_error};
use super::{KafkaDeadLetter, KafkaSource, KafkaTime, StartAt, StopAt};
use crate::error::EngineError;
use crate::record::{EventStream, Timed};
use crate::source::replay::send_grouped_by_tick;
use crate::source::reader::{Decoded, SegmentReader, decode_json_line};
use crate::source::{Source, SourceContext};
use crate::time::{Tick, Watermark};

type Output<T> = OutputBuilder<Tick, CapacityContainerBuilder<Vec<Timed<T>>>>;

/// The prefix of the sink frontier stored in commit metadata.
const RETIRED_PREFIX: &str = "weir:retired=";

/// Reads the committed offsets of `source`'s group and returns the largest sink frontier
/// recorded with them: outputs before it were written by an earlier run. Also the check that
/// fails fast (in seconds) when no broker answers or the topic is missing.
pub(crate) fn prepare(source: &KafkaSource) -> Result<Option<Tick>, EngineError> {
    let partitions = client::partition_count(&source.bootstrap, &source.topic)?;
    if partitions == 0 {
        return Err(kafka_error(&source.bootstrap, &format!("cannot read topic {:?}", source.topic), "it does not exist"));
    }
    let committed = client::committed_offsets(&source.bootstrap, &source.group, &source.topic)?;
    Ok(committed.iter().filter_map(|(_, metadata)| metadata.strip_prefix(RETIRED_PREFIX)?.parse::<Tick>().ok()).max())
}

/// One partition this worker reads.
struct PartitionState {
    partition: i32,
    watermark: Watermark,
    /// The next offset to hand on.
    next_offset: i64,
    /// Exclusive end offset of a bounded read (`None`: none, or found by timestamp as we go).
    end: Option<i64>,
    /// A bounded read by time whose end offset was not known at start.
    stop_time: Option<i64>,
    done: bool,
    last_message: Instant,
    /// Records handed on but not yet final: tick → smallest offset at that tick.
    pending: BTreeMap<Tick, i64>,
    committed: i64,
}

/// One backfill file segment.
struct SegmentState<T> {
    reader: Box<dyn SegmentReader<T>>,
    watermark: Watermark,
    done: bool,
}

/// Learns whether asynchronous offset commits succeeded. Their results arrive while the
/// consumer is polled; a failed one makes the next commit resend every partition's offset, so
/// a commit lost to a broker restart or a coordinator move is retried instead of forgotten.
#[derive(Default)]
struct CommitTracker {
    failed: AtomicBool,
}

impl ClientContext for CommitTracker {}

impl ConsumerContext for CommitTracker {
    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(error) = result {
            eprintln!("weir: an offset commit failed, it will be retried: {error}");
            self.failed.store(true, Ordering::Relaxed);
        }
    }
}

type TrackedConsumer = BaseConsumer<CommitTracker>;

/// The dead-letter topic's producer.
struct DeadLetterTopic {
    producer: BaseProducer,
    topic: String,
}

/// Everything one worker's source owns. Timely drops it with the operator, as soon as
/// everything is read; it then leaves its final offset commit to [`SourceContext::on_retired`],
/// which runs once the sink has written everything.
struct Reader<T> {
    source: KafkaSource,
    ctx: SourceContext,
    consumer: Option<Arc<TrackedConsumer>>,
    partitions: Vec<PartitionState>,
    /// One message queue per partition (parallel to `partitions`; empty until assigned), so
    /// the partition furthest behind can be read first: from one shared queue, librdkafka hands
    /// out a partition's whole prefetch before the next one's, and the watermark (the minimum
    /// over partitions) would stand still meanwhile.
    queues: Vec<Option<PartitionQueue<CommitTracker>>>,
    index_of: HashMap<i32, usize>,
    backfill: Vec<SegmentState<T>>,
    assigned: bool,
    paused: bool,
    dead_letter_topic: Option<DeadLetterTopic>,
    last_commit: Instant,
    /// Every partition (and backfill file) has been read to its end.
    all_read: bool,
    name: String,
    worker: usize,
    /// With `WEIR_TRACE_KAFKA` set: when this worker last printed its state.
    traced: Option<Instant>,
}

impl<T: DeserializeOwned + Clone + 'static> Reader<T> {
    fn open(source: &KafkaSource, worker: usize, workers: usize, ctx: &SourceContext) -> Result<Self, EngineError> {
        let bootstrap = &source.bootstrap;
        let count = client::partition_count(bootstrap, &source.topic)?;
        let mine: Vec<i32> = (0..count as i32).filter(|p| *p as usize % workers == worker).collect();
        let backfill = match &source.backfill {
            Some(files) => Source::<T>::Replay(files.clone())
                .open_for_worker(worker, workers, &ctx.metrics)?
                .into_iter()
                .map(|reader| SegmentState { reader, watermark: Watermark::new(files_disorder(files)), done: false })
                .collect(),
            None => Vec::new(),
        };
        let mut reader = Reader {
            source: source.clone(),
            ctx: ctx.clone(),
            consumer: None,
            queues: Vec::new(),
            partitions: Vec::new(),
            index_of: HashMap::new(),
            backfill,
            assigned: false,
            paused: false,
            dead_letter_topic: None,
            last_commit: Instant::now(),
            all_read: false,
            name: format!("kafka://{}/{}", source.bootstrap, source.topic),
            worker,
            traced: std::env::var_os(TRACE_VARIABLE).map(|_| Instant::now() - TRACE_EVERY),
        };
        if let Some(topic) = &source.dead_letter_topic {
            client::ensure_topic(bootstrap, topic, 1)?;
            let producer = client::producer_config(bootstrap)
                .create()
                .map_err(|e| kafka_error(bootstrap, "cannot create the dead-letter producer", e))?;
            reader.dead_letter_topic = Some(DeadLetterTopic { producer, topic: topic.clone() });
        }
        if mine.is_empty() {
            return Ok(reader);
        }
        let consumer: TrackedConsumer = client::base_config(bootstrap)
            .set("group.id", &source.group)
            .set("client.id", format!("weir-{}-w{worker}", source.topic))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("allow.auto.create.topics", "false")
            .set("fetch.wait.max.ms", "100")
            .set("queued.max.messages.kbytes", source.prefetch_kbytes.max(1024).to_string())
            .create_with_context(CommitTracker::default())
            .map_err(|e| kafka_error(bootstrap, "cannot create a Kafka consumer", e))?;
        reader.partitions = start_positions(&consumer, source, &mine)?;
        reader.index_of = reader.partitions.iter().enumerate().map(|(i, p)| (p.partition, i)).collect();
        reader.consumer = Some(Arc::new(consumer));
        Ok(reader)
    }

    /// Assigns the partitions (after the backfill): fetching starts.
    fn assign(&mut self) -> Result<(), EngineError> {
        self.assigned = true;
        let Some(consumer) = &self.consumer else { return Ok(()) };
        let mut list = TopicPartitionList::new();
        for p in self.partitions.iter_mut() {
            p.last_message = Instant::now();
            p.done = p.done || p.end.is_some_and(|end| p.next_offset >= end);
            list.add_partition_offset(&self.source.topic, p.partition, Offset::Offset(p.next_offset)).expect("a valid offset");
        }
        consumer.assign(&list).map_err(|e| kafka_error(&self.source.bootstrap, "cannot assign partitions", e))?;
        // After `assign`, which deactivates earlier splits. Messages fetched in between (and of
        // a partition that cannot be split) arrive on the consumer's own queue, read too.
        self.queues = self.partitions.iter().map(|p| consumer.split_partition_queue(&self.source.topic, p.partition)).collect();
        Ok(())
    }

    /// Pauses (or resumes) fetching for all partitions: backpressure.
    fn set_paused(&mut self, pause: bool) {
        if self.paused == pause {
            return;
        }
        let Some(consumer) = &self.consumer else { return };
        let mut list = TopicPartitionList::new();
        for p in self.partitions.iter().filter(|p| !p.done) {
            list.add_partition(&self.source.topic, p.partition);
        }
        let result = if pause { consumer.pause(&list) } else { consumer.resume(&list) };
        match result {
            Ok(()) => {
                self.paused = pause;
                if pause {
                    self.source.pauses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Err(error) => eprintln!("weir: cannot {} {}: {error}", if pause { "pause" } else { "resume" }, self.name),
        }
    }

    fn reject(&mut self, partition: i32, offset: i64, reason: String, raw: &[u8]) {
        let position = format!("partition {partition} offset {offset}");
        self.ctx.dead_letters.reject(&self.ctx.metrics, &self.name, position, reason.clone(), raw);
        if let Some(dlq) = &self.dead_letter_topic {
            let letter = KafkaDeadLetter {
                topic: self.source.topic.clone(),
                partition,
                offset,
                reason,
                raw: String::from_utf8_lossy(&raw[..raw.len().min(4096)]).into_owned(),
            };
            let payload = serde_json::to_vec(&letter).expect("a dead letter always serializes");
            let key = format!("{partition}:{offset}");
            let mut record = BaseRecord::<str, [u8]>::to(&dlq.topic).key(&key).payload(&payload);
            loop {
                match dlq.producer.send(record) {
                    Ok(()) => break,
                    Err((error, returned)) if error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) => {
                        dlq.producer.poll(Duration::from_millis(10));
                        record = returned;
                    }
                    Err((error, _)) => {
                        self.ctx.errors.lock().unwrap().push(format!("cannot write a dead letter to {}: {error}", dlq.topic));
                        break;
                    }
                }
            }
        }
    }

    /// Commits, for each partition, the offset below every record that is not yet final
    /// (asynchronously; the final commit is [`FinalCommit`]).
    fn commit(&mut self) {
        let Some(consumer) = &self.consumer else { return };
        let Some(horizon) = self.source.state_horizon_ms else { return };
        if !self.assigned || !self.ctx.errors.lock().unwrap().is_empty() {
            return;
        }
        let Some(frontier) = self.ctx.retired.with_frontier(|f| f.first().copied()) else {
            return; // all retired: the final commit follows
        };
        if consumer.context().failed.swap(false, Ordering::Relaxed) {
            // Resend everything: the failed commit may have held any partition's offset.
            for p in self.partitions.iter_mut() {
                p.committed = -1;
            }
        }
        let mut list = TopicPartitionList::new();
        let metadata = format!("{RETIRED_PREFIX}{frontier}");
        for p in self.partitions.iter_mut() {
            p.pending = p.pending.split_off(&frontier.saturating_sub(horizon));
            let offset = p.pending.values().min().copied().unwrap_or(p.next_offset);
            if offset > p.committed {
                let mut entry = list.add_partition(&self.source.topic, p.partition);
                entry.set_offset(Offset::Offset(offset)).expect("a valid offset");
                entry.set_metadata(metadata.clone());
                p.committed = offset;
            }
        }
        if list.count() == 0 {
            return;
        }
        // Dead letters of the committed messages must be safe before their offsets are.
        if let Some(dlq) = &self.dead_letter_topic {
            if let Err(error) = dlq.producer.flush(Duration::from_secs(60)) {
                self.ctx.errors.lock().unwrap().push(format!("cannot flush dead letters to {}: {error}", dlq.topic));
                return;
            }
        }
        if let Err(error) = consumer.commit(&list, CommitMode::Async) {
            // At-least-once: a failed commit only means more to re-read after a restart.
            eprintln!("weir: cannot commit offsets of {} for group {}: {error}", self.name, self.source.group);
        }
        self.last_commit = Instant::now();
    }
}

impl<T> Reader<T> {
    fn backfill_done(&self) -> bool {
        self.backfill.iter().all(|s| s.done)
    }

    /// With `WEIR_TRACE_KAFKA` set, prints this worker's reading state to stderr (at most every
    /// [`TRACE_EVERY`]): what to look at when a frontier or a commit does not move.
    fn trace(&mut self, cap_tick: Tick, why: &str) {
        let Some(last) = self.traced else { return };
        if last.elapsed() < TRACE_EVERY {
            return;
        }
        self.traced = Some(Instant::now());
        let retired = self.ctx.retired.with_frontier(|f| f.first().copied());
        let partitions: Vec<String> = self
            .partitions
            .iter()
            .map(|p| {
                let end = p.end.map_or("-".to_owned(), |e| e.to_string());
                let mark = p.watermark.current().map_or("none".to_owned(), |m| m.to_string());
                let state = if p.done { " done" } else { "" };
                format!("p{} next {} end {end} mark {mark} pending {} committed {}{state}", p.partition, p.next_offset, p.pending.len(), p.committed)
            })
            .collect();
        eprintln!(
            "weir trace: worker {} {why}: tick {cap_tick}, retired {retired:?}, assigned {}, paused {}, backfill done {}; {}",
            self.worker,
            self.assigned,
            self.paused,
            self.backfill_done(),
            partitions.join("; ")
        );
    }
}

/// The environment variable that turns on [`Reader::trace`].
const TRACE_VARIABLE: &str = "WEIR_TRACE_KAFKA";
const TRACE_EVERY: Duration = Duration::from_millis(500);

impl<T> Drop for Reader<T> {
    fn drop(&mut self) {
        if !self.all_read || !self.assigned {
            return; // an early end (an error): nothing is final
        }
        self.queues.clear();
        let Some(consumer) = self.consumer.take() else { return };
        let commit = FinalCommit {
            consumer,
            dead_letters: self.dead_letter_topic.take(),
            offsets: self.partitions.iter().map(|p| (p.partition, p.next_offset)).collect(),
            topic: self.source.topic.clone(),
            name: self.name.clone(),
            errors: self.ctx.errors.clone(),
        };
        self.ctx.on_retired.defer(move || commit.run());
    }
}

/// The commit of everything a worker has read, made once the sink has written all of it.
struct FinalCommit {
    consumer: Arc<TrackedConsumer>,
    dead_letters: Option<DeadLetterTopic>,
    /// Partition → the offset after the last message read.
    offsets: Vec<(i32, i64)>,
    topic: String,
    name: String,
    errors: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FinalCommit {
    fn run(self) {
        if !self.errors.lock().unwrap().is_empty() {
            return; // the run failed: its outputs may be incomplete
        }
        // Dead letters of the committed messages must be safe before their offsets are.
        if let Some(dlq) = &self.dead_letters {
            if let Err(error) = dlq.producer.flush(Duration::from_secs(60)) {
                self.errors.lock().unwrap().push(format!("cannot flush dead letters to {}: {error}", dlq.topic));
                return;
            }
        }
        let mut list = TopicPartitionList::new();
        let metadata = format!("{RETIRED_PREFIX}{}", Tick::MAX);
        for (partition, offset) in &self.offsets {
            let mut entry = list.add_partition(&self.topic, *partition);
            entry.set_offset(Offset::Offset(*offset)).expect("a valid offset");
            entry.set_metadata(metadata.clone());
        }
        if let Err(error) = client::retry_transient(|| self.consumer.commit(&list, CommitMode::Sync)) {
            // At-least-once: a restart with this group re-reads what was not committed.
            eprintln!("weir: cannot commit the final offsets of {}: {error}", self.name);
        }
    }
}

fn files_disorder(files: &crate::source::ReplaySource) -> u64 {
    match files.disorder {
        crate::source::Disorder::Bounded(ms) => ms,
        crate::source::Disorder::SortFile => 0,
    }
}

/// Where each of `partitions` starts (the group's committed offset, else `source.start`) and,
/// for a bounded read, ends.
fn start_positions(consumer: &TrackedConsumer, source: &KafkaSource, partitions: &[i32]) -> Result<Vec<PartitionState>, EngineError> {
    let bootstrap = &source.bootstrap;
    let topic = &source.topic;
    let mut list = TopicPartitionList::new();
    for p in partitions {
        list.add_partition(topic, *p);
    }
    let committed = client::retry_transient(|| consumer.committed_offsets(list.clone(), Duration::from_secs(10)))
        .map_err(|e| kafka_error(bootstrap, &format!("cannot read the committed offsets of group {}", source.group), e))?;
    let by_time = |ms: i64| -> Result<HashMap<i32, i64>, EngineError> {
        let mut query = TopicPartitionList::new();
        for p in partitions {
            query.add_partition_offset(topic, *p, Offset::Offset(ms)).expect("a valid timestamp");
        }
        let found = client::retry_transient(|| consumer.offsets_for_times(query.clone(), Duration::from_secs(10)))
            .map_err(|e| kafka_error(bootstrap, "cannot look up offsets by time", e))?;
        Ok(found.elements().iter().filter_map(|e| Some((e.partition(), e.offset().to_raw().filter(|o| *o >= 0)?))).collect())
    };
    let start_by_time = match (source.start, source.backfill.is_some()) {
        (StartAt::Time(ms), _) => Some(by_time(ms)?),
        _ => None,
    };
    let stop_by_time = match source.stop {
        Some(StopAt::Time(ms)) => Some(by_time(ms)?),
        _ => None,
    };
    let mut states = Vec::new();
    for p in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, *p, METADATA_TIMEOUT)
            .map_err(|e| kafka_error(bootstrap, &format!("cannot read the offsets of {topic}"), e))?;
        let resumed = committed.find_partition(topic, *p).and_then(|e| match e.offset() {
            Offset::Offset(o) if o >= 0 => Some(o),
            _ => None,
        });
        let start = match (resumed, source.start) {
            (Some(offset), _) => offset.clamp(low, high),
            (None, StartAt::Earliest) => low,
            (None, StartAt::Latest) => high,
            (None, StartAt::Time(_)) => start_by_time.as_ref().and_then(|m| m.get(p).copied()).unwrap_or(high),
        };
        let (end, stop_time) = match source.stop {
            None => (None, None),
            Some(StopAt::End) => (Some(high), None),
            Some(StopAt::Time(ms)) => match stop_by_time.as_ref().and_then(|m| m.get(p).copied()) {
                Some(offset) => (Some(offset), None),
                None => (None, Some(ms)),
            },
        };
        states.push(PartitionState {
            partition: *p,
            watermark: Watermark::new(source.out_of_orderness_ms),
            next_offset: start,
            end,
            stop_time,
            done: end.is_some_and(|end| start >= end),
            last_message: Instant::now(),
            pending: BTreeMap::new(),
            committed: resumed.unwrap_or(-1),
        });
    }
    Ok(states)
}

/// What one message decodes to.
enum Item<T> {
    Record(Timed<T>),
    /// Beyond a bounded read's stop time: the partition is done.
    Stop,
    /// Before the backfill cut: the files had it.
    Skip,
    Bad(String),
}

fn decode_message<T: DeserializeOwned>(message: &BorrowedMessage<'_>, source: &KafkaSource, cut: Option<i64>, stop_time: Option<i64>) -> Item<T> {
    let timestamp = message.timestamp().to_millis();
    if let (Some(stop), Some(ts)) = (stop_time, timestamp) {
        if ts >= stop {
            return Item::Stop;
        }
    }
    let Some(payload) = message.payload() else { return Item::Bad("message has no payload".into()) };
    let record = match &source.time {
        KafkaTime::Field(spec) => decode_json_line::<T>(payload, spec),
        KafkaTime::Message => match timestamp.filter(|ts| *ts >= 0) {
            None => Err("message has no timestamp".into()),
            Some(ts) => serde_json::from_slice::<T>(payload).map(|data| Timed::new(ts, data)).map_err(|e| format!("invalid record: {e}")),
        },
    };
    match record {
        Ok(record) if cut.is_some_and(|cut| record.time < cut) => Item::Skip,
        Ok(record) => Item::Record(record),
        Err(reason) => Item::Bad(reason),
    }
}

/// Builds the Kafka source operator on this worker: returns the on-time records and the late
/// ones (see the module docs of [`super`]).
pub(crate) fn build_kafka_source<'scope, T>(
    scope: Scope<'scope, Tick>,
    source: &KafkaSource,
    ctx: &SourceContext,
) -> (EventStream<'scope, T>, EventStream<'scope, T>)
where
    T: DeserializeOwned + Clone + timely::ExchangeData,
{
    let mut builder = OperatorBuilder::new("KafkaSource".to_owned(), scope);
    let activator = scope.activator_for(builder.operator_info().address);
    let (output, stream) = builder.new_output::<Vec<Timed<T>>>();
    let (late_output, late_stream) = builder.new_output::<Vec<Timed<T>>>();
    let mut output = Output::<T>::from(output);
    let mut late_output = Output::<T>::from(late_output);

    let opened = Reader::<T>::open(source, scope.index(), scope.peers(), ctx);
    let ctx = ctx.clone();
    let cut = source.cut_ms();
    let bounded = source.stop.is_some();

    builder.build(move |mut capabilities| {
        let late_cap = capabilities.pop();
        let cap = capabilities.pop();
        let mut caps = cap.zip(late_cap);
        let mut reader = match opened {
            Ok(reader) => Some(reader),
            Err(error) => {
                ctx.errors.lock().unwrap().push(error.to_string());
                caps = None;
                None
            }
        };
        let mut clock: Option<(Instant, i64)> = None;
        let mut on_time: Vec<(Tick, Timed<T>)> = Vec::new();
        let mut late: Vec<Timed<T>> = Vec::new();

        move |_frontiers| {
            let Some(reader) = reader.as_mut() else { return };
            let Some((cap, late_cap)) = caps.as_mut() else { return };

            // Backpressure: do not run further ahead of the sink than allowed.
            if let Some(ahead) = reader.source.max_ahead_ms {
                let tick = *cap.time();
                let behind = tick > ahead && ctx.retired.less_than(&(tick - ahead));
                reader.set_paused(behind);
                if behind {
                    reader.trace(tick, "paused, ahead of the sink");
                    reader.commit();
                    activator.activate_after(Duration::from_millis(1));
                    return;
                }
            }
            // Replay speed: hold back until the wall clock has caught up with event time, and
            // read no further than one message past it (a poll may return thousands at once;
            // reading them all would hold the other partitions back until the clock catches up).
            let mut paced_until = None;
            if let Some(speed) = reader.source.speed {
                match clock {
                    // The first message starts the clock.
                    None => paced_until = Some(i64::MIN),
                    Some((wall, first)) => {
                        let allowed = first + (wall.elapsed().as_secs_f64() * 1000.0 * speed) as i64;
                        let seen = reader.partitions.iter().filter_map(|p| p.watermark.max_seen()).max().unwrap_or(first);
                        if seen > allowed {
                            let wait = ((seen - allowed) as f64 / speed).ceil() as u64;
                            reader.trace(*cap.time(), "waiting for the replay clock");
                            activator.activate_after(Duration::from_millis(wait.clamp(1, 100)));
                            return;
                        }
                        paced_until = Some(allowed);
                    }
                }
            }

            let mut idle_wait = false;
            if !reader.backfill_done() {
                read_backfill(reader, cut, *cap.time(), &ctx, &mut on_time, &mut late);
            } else {
                if !reader.assigned {
                    if let Err(error) = reader.assign() {
                        ctx.errors.lock().unwrap().push(error.to_string());
                        caps = None;
                        return;
                    }
                }
                idle_wait = read_messages(reader, cut, *cap.time(), paced_until, &ctx, &mut on_time, &mut late) == 0;
            }
            if clock.is_none() && reader.source.speed.is_some() {
                clock = reader.partitions.iter().filter_map(|p| p.watermark.max_seen()).min().map(|first| (Instant::now(), first));
            }
            send_grouped_by_tick(&mut output, cap, &mut on_time);
            if !late.is_empty() {
                late_output.activate().session(&*late_cap).give_iterator(late.drain(..));
            }
            if reader.last_commit.elapsed() >= reader.source.commit_interval {
                reader.commit();
            }

            reader.trace(*cap.time(), "reading");
            match hold(reader, bounded, &ctx) {
                None => {
                    // Everything read: dropping the capabilities ends this operator.
                    reader.all_read = true;
                    caps = None;
                }
                Some(tick) => {
                    let tick = tick.max(*cap.time());
                    cap.downgrade(&tick);
                    late_cap.downgrade(&tick);
                    if idle_wait {
                        // Nothing arrived: poll again soon rather than spin.
                        activator.activate_after(Duration::from_millis(2));
                    } else {
                        activator.activate();
                    }
                }
            }
        }
    });
    (stream, late_stream)
}

/// Where this worker holds its frontier: the smallest watermark among what is still being
/// read (see the module docs for idle partitions); `None` once everything is read.
fn hold<T>(reader: &Reader<T>, bounded: bool, ctx: &SourceContext) -> Option<Tick> {
    let tick_of = |mark: Option<i64>| mark.map_or(0, |m| ctx.tick.tick_of(m));
    if !reader.backfill_done() {
        return reader.backfill.iter().filter(|s| !s.done).map(|s| tick_of(s.watermark.current())).min();
    }
    let reading: Vec<&PartitionState> = reader.partitions.iter().filter(|p| !p.done).collect();
    if reading.is_empty() {
        return None;
    }
    let idle_after = reader.source.idle_timeout;
    let busy = reading.iter().filter(|p| bounded || p.last_message.elapsed() < idle_after).map(|p| tick_of(p.watermark.current())).min();
    let own = reading.iter().map(|p| tick_of(p.watermark.current())).max().unwrap_or(0);
    let shared = &reader.source.process_watermark;
    shared.fetch_max(own, std::sync::atomic::Ordering::Relaxed);
    // All idle: release up to what the process has seen, so windows close while it is quiet.
    Some(busy.unwrap_or_else(|| own.max(shared.load(std::sync::atomic::Ordering::Relaxed))))
}

/// Reads from the backfill segment furthest behind; keeps records before the cut.
fn read_backfill<T: DeserializeOwned + Clone + 'static>(
    reader: &mut Reader<T>,
    cut: Option<i64>,
    cap_tick: Tick,
    ctx: &SourceContext,
    on_time: &mut Vec<(Tick, Timed<T>)>,
    late: &mut Vec<Timed<T>>,
) {
    let next = reader
        .backfill
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.done)
        .min_by_key(|(_, s)| s.watermark.current().unwrap_or(i64::MIN))
        .map(|(i, _)| i);
    let Some(next) = next else { return };
    let mut items = Vec::new();
    let segment = &mut reader.backfill[next];
    match segment.reader.read(reader.source.batch, &mut items) {
        Ok(done) => segment.done = done,
        Err(error) => {
            ctx.errors.lock().unwrap().push(error.to_string());
            segment.done = true;
        }
    }
    for item in items {
        match item {
            Decoded::Record(record) if cut.is_some_and(|cut| record.time >= cut) => {}
            Decoded::Record(record) => {
                ctx.metrics.events_in.add(1);
                let tick = ctx.tick.tick_of(record.time);
                if segment.watermark.observe(record.time) && tick >= cap_tick {
                    on_time.push((tick, record));
                } else {
                    ctx.metrics.late.add(1);
                    late.push(record);
                }
            }
            Decoded::Bad(bad) => ctx.dead_letters.reject(&ctx.metrics, segment.reader.name(), bad.position, bad.reason, &bad.raw),
        }
    }
}

/// Polls up to a batch of messages, from the partition furthest behind first; returns how many
/// arrived.
fn read_messages<T: DeserializeOwned + Clone + 'static>(
    reader: &mut Reader<T>,
    cut: Option<i64>,
    cap_tick: Tick,
    paced_until: Option<i64>,
    ctx: &SourceContext,
    on_time: &mut Vec<(Tick, Timed<T>)>,
    late: &mut Vec<Timed<T>>,
) -> usize {
    let Some(consumer) = reader.consumer.take() else { return 0 };
    let queues = std::mem::take(&mut reader.queues);
    let mut batch = MessageBatch { cut, cap_tick, paced_until, received: 0, paced_out: false, rejected: Vec::new() };
    let limit = reader.source.batch;
    // The consumer's own queue: callbacks (commit results), errors, unsplit messages.
    while batch.received < limit && !batch.paced_out {
        match consumer.poll(Duration::ZERO) {
            None => break,
            Some(Ok(message)) => batch.take(reader, &message, ctx, on_time, late),
            Some(Err(error)) => {
                // Transient (a broker restarting, say): librdkafka reconnects on its own.
                eprintln!("weir: reading {}: {error}", reader.name);
                break;
            }
        }
    }
    // Then the partitions, furthest behind first, a chunk at a time.
    let mut drained = vec![false; queues.len()];
    while batch.received < limit && !batch.paced_out {
        let behind = (0..queues.len())
            .filter(|i| !drained[*i] && !reader.partitions[*i].done && queues[*i].is_some())
            .min_by_key(|i| reader.partitions[*i].watermark.current().unwrap_or(i64::MIN));
        let Some(index) = behind else { break };
        let queue = queues[index].as_ref().expect("filtered above");
        for _ in 0..PARTITION_CHUNK.min(limit - batch.received) {
            match queue.poll(Duration::ZERO) {
                None => {
                    drained[index] = true;
                    break;
                }
                Some(Ok(message)) => batch.take(reader, &message, ctx, on_time, late),
                Some(Err(error)) => {
                    eprintln!("weir: reading {}: {error}", reader.name);
                    drained[index] = true;
                    break;
                }
            }
            if batch.paced_out || reader.partitions[index].done {
                break;
            }
        }
    }
    reader.queues = queues;
    reader.consumer = Some(consumer);
    for (partition, offset, reason, raw) in batch.rejected {
        reader.reject(partition, offset, reason, &raw);
    }
    batch.received
}

/// Messages read from one partition before the furthest-behind one is chosen again.
const PARTITION_CHUNK: usize = 256;

/// One activation's reading: where its records go, and when it stops.
struct MessageBatch {
    cut: Option<i64>,
    cap_tick: Tick,
    paced_until: Option<i64>,
    received: usize,
    /// A record later than `paced_until` was read: stop reading for now.
    paced_out: bool,
    /// Dead letters: (partition, offset, reason, payload).
    rejected: Vec<(i32, i64, String, Vec<u8>)>,
}

impl MessageBatch {
    fn take<T: DeserializeOwned + Clone + 'static>(
        &mut self,
        reader: &mut Reader<T>,
        message: &BorrowedMessage<'_>,
        ctx: &SourceContext,
        on_time: &mut Vec<(Tick, Timed<T>)>,
        late: &mut Vec<Timed<T>>,
    ) {
        self.received += 1;
        let Some(&index) = reader.index_of.get(&message.partition()) else { return };
        let state = &mut reader.partitions[index];
        let offset = message.offset();
        if state.done || offset < state.next_offset || state.end.is_some_and(|end| offset >= end) {
            return;
        }
        state.next_offset = offset + 1;
        state.last_message = Instant::now();
        match decode_message::<T>(message, &reader.source, self.cut, state.stop_time) {
            Item::Record(record) => {
                ctx.metrics.events_in.add(1);
                self.paced_out = self.paced_until.is_some_and(|until| record.time > until);
                let tick = ctx.tick.tick_of(record.time);
                let at = if state.watermark.observe(record.time) && tick >= self.cap_tick {
                    on_time.push((tick, record));
                    tick
                } else {
                    ctx.metrics.late.add(1);
                    late.push(record);
                    self.cap_tick
                };
                let least = state.pending.entry(at).or_insert(offset);
                *least = (*least).min(offset);
            }
            Item::Stop => state.done = true,
            Item::Skip => {}
            Item::Bad(reason) => self.rejected.push((message.partition(), offset, reason, message.payload().unwrap_or_default().to_vec())),
        }
        if state.end.is_some_and(|end| state.next_offset >= end) {
            state.done = true;
        }
    }
}

/// Drops records stamped before `tick`: after a restart, the outputs an earlier run has
/// already written (see the module docs of [`super`]).
pub(crate) fn skip_before<'scope, D: Clone + 'static>(stream: StreamVec<'scope, Tick, D>, tick: Tick) -> StreamVec<'scope, Tick, D> {
    stream.unary::<CapacityContainerBuilder<Vec<D>>, _, _, _>(Pipeline, "SkipWritten", move |_cap, _info| {
        move |input, output| {
            input.for_each_stamp(|cap, containers| {
                let Some(cap) = cap.retain_least(0) else { return };
                if *cap.time() < tick {
                    return;
                }
                let mut session = output.session(&cap);
                for container in containers {
                    session.give_iterator(container.drain(..));
                }
            });
        }
    })
}
