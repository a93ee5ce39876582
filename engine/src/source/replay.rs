//! The timely operator that runs a [`Source`]: reads this worker's segments, stamps records
//! with ticks, splits off late records and dead letters, and holds back the frontier.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Scope;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::probe::Handle as ProbeHandle;

use super::Source;
use super::reader::{Decoded, SegmentReader};
use crate::deadletter::DeadLetters;
use crate::metrics::Metrics;
use crate::record::{EventStream, Timed};
use crate::time::{Tick, TickMemo, TickSpec, Watermark};

/// What a source needs from the run around it.
#[derive(Clone)]
pub struct SourceContext {
    pub tick: TickSpec,
    pub metrics: Metrics,
    pub dead_letters: DeadLetters,
    /// Failures that end a segment early (an unreadable file); the run reports them.
    pub errors: Arc<Mutex<Vec<String>>>,
    /// The frontier of what the pipeline has retired (its sink's input), for flow control.
    pub retired: ProbeHandle<Tick>,
    /// Work to do once everything has been retired (the Kafka source's final offset commit).
    pub on_retired: OnRetired,
}

/// Work a source leaves for the end of the run, when `retired` is done.
///
/// A timely operator is dropped as soon as it holds no capabilities, so a source that has read
/// everything is gone before its last records reach the sink: it cannot wait for that itself.
/// It hands the work here instead, and the pipeline runs it once the probe is done.
#[derive(Clone, Default)]
pub struct OnRetired(Arc<Mutex<Vec<Box<dyn FnOnce() + Send>>>>);

impl OnRetired {
    pub fn defer(&self, work: impl FnOnce() + Send + 'static) {
        self.0.lock().unwrap().push(Box::new(work));
    }
    /// Runs (and forgets) everything deferred so far.
    pub fn run(&self) {
        let work = std::mem::take(&mut *self.0.lock().unwrap());
        for item in work {
            item();
        }
    }
}

struct SegmentState<T> {
    reader: Box<dyn SegmentReader<T>>,
    watermark: Watermark,
    done: bool,
}

/// Builds the source operator on this worker: returns the on-time records and the late ones.
pub fn build_source<'scope, T>(
    scope: Scope<'scope, Tick>,
    source: &Source<T>,
    ctx: &SourceContext,
) -> (EventStream<'scope, T>, EventStream<'scope, T>)
where
    T: DeserializeOwned + Clone + timely::ExchangeData,
{
    if let Source::Kafka(kafka) = source {
        return super::kafka::build_kafka_source(scope, kafka, ctx);
    }
    let mut builder = OperatorBuilder::new("Source".to_owned(), scope);
    let activator = scope.activator_for(builder.operator_info().address);
    let (output, stream) = builder.new_output::<Vec<Timed<T>>>();
    let (late_output, late_stream) = builder.new_output::<Vec<Timed<T>>>();
    let mut output = OutputBuilder::<_, CapacityContainerBuilder<Vec<Timed<T>>>>::from(output);
    let mut late_output = OutputBuilder::<_, CapacityContainerBuilder<Vec<Timed<T>>>>::from(late_output);

    let ctx = ctx.clone();
    let bound = source.out_of_orderness_ms();
    let max_ahead = source.max_ahead_ms();
    let speed = source.speed();
    let batch = source.batch();
    let readers = source.open_for_worker(scope.index(), scope.peers(), &ctx.metrics);

    builder.build(move |mut capabilities| {
        let late_cap = capabilities.pop();
        let cap = capabilities.pop();
        let mut caps = cap.zip(late_cap);
        let mut segments: Vec<SegmentState<T>> = match readers {
            Ok(readers) => readers
                .into_iter()
                .map(|reader| SegmentState { reader, watermark: Watermark::new(bound), done: false })
                .collect(),
            Err(error) => {
                ctx.errors.lock().unwrap().push(error.to_string());
                Vec::new()
            }
        };
        let mut primed = false;
        let mut clock: Option<(Instant, i64)> = None;
        let mut items = Vec::with_capacity(batch);
        let mut on_time: Vec<(Tick, Timed<T>)> = Vec::with_capacity(batch);
        let mut late = Vec::new();
        let mut ticks = TickMemo::new(ctx.tick);

        move |_frontiers| {
            let Some((cap, late_cap)) = caps.as_mut() else { return };
            // Read every segment once first, so that each has a watermark before we choose
            // which one is furthest behind.
            let mut turns: Vec<usize> = if primed { Vec::new() } else { (0..segments.len()).collect() };
            // With a replay speed: the latest event time that may be read by now.
            let mut paced_until = None;
            if primed {
                if let Some(next) = furthest_behind(&segments) {
                    let mark = segments[next].watermark.current().unwrap_or(i64::MIN);
                    if let Some(ahead) = max_ahead {
                        let tick = ctx.tick.tick_of(mark);
                        if tick > ahead && ctx.retired.less_than(&(tick - ahead)) {
                            // Downstream has not caught up: try again on the next step.
                            activator.activate();
                            return;
                        }
                    }
                    if let (Some(speed), Some((wall, first))) = (speed, clock) {
                        let allowed = first + (wall.elapsed().as_secs_f64() * 1000.0 * speed) as i64;
                        let seen = segments[next].watermark.max_seen().unwrap_or(first);
                        if seen > allowed {
                            let wait = ((seen - allowed) as f64 / speed).ceil() as u64;
                            activator.activate_after(Duration::from_millis(wait.clamp(1, 1000)));
                            return;
                        }
                        paced_until = Some(allowed);
                    }
                    turns.push(next);
                }
            }
            // The first read of a segment only learns its watermark: one record is enough,
            // and keeps the memory of a replay with many segments small.
            let max = if primed { batch } else { 1 };
            for index in turns {
                let segment = &mut segments[index];
                match read_segment(segment.reader.as_mut(), max, paced_until, &mut items) {
                    Ok(done) => segment.done = done,
                    Err(error) => {
                        ctx.errors.lock().unwrap().push(error.to_string());
                        segment.done = true;
                    }
                }
                // Counters are shared by all workers: update them once per batch, not per record.
                let (mut records_in, late_before) = (0, late.len());
                for item in items.drain(..) {
                    match item {
                        Decoded::Record(record) => {
                            records_in += 1;
                            if segment.watermark.observe(record.time) {
                                on_time.push((ticks.tick_of(record.time), record));
                            } else {
                                late.push(record);
                            }
                        }
                        Decoded::Bad(bad) => ctx.dead_letters.reject(&ctx.metrics, segment.reader.name(), bad.position, bad.reason, &bad.raw),
                    }
                }
                ctx.metrics.events_in.add(records_in);
                ctx.metrics.late.add((late.len() - late_before) as u64);
            }
            primed = true;
            if clock.is_none() && speed.is_some() {
                let first = segments.iter().filter_map(|s| s.watermark.max_seen()).min();
                clock = first.map(|first| (Instant::now(), first));
            }
            send_grouped_by_tick(&mut output, cap, &mut on_time);
            if !late.is_empty() {
                late_output.activate().session(&*late_cap).give_iterator(late.drain(..));
            }

            // Hold the capability at the smallest watermark among unfinished segments.
            let unfinished = segments.iter().filter(|s| !s.done);
            let hold = unfinished.map(|s| s.watermark.current().map_or(0, |mark| ctx.tick.tick_of(mark))).min();
            match hold {
                None => caps = None,
                Some(tick) => {
                    let tick = tick.max(*cap.time());
                    cap.downgrade(&tick);
                    late_cap.downgrade(&tick);
                    activator.activate();
                }
            }
        }
    });
    (stream, late_stream)
}

/// Reads up to `max` items; with `paced_until`, stops after the first record later than it, so
/// a paced replay runs ahead of its clock by one record at most.
fn read_segment<T>(reader: &mut dyn SegmentReader<T>, max: usize, paced_until: Option<i64>, items: &mut Vec<Decoded<T>>) -> Result<bool, crate::EngineError> {
    let Some(allowed) = paced_until else { return reader.read(max, items) };
    for _ in 0..max {
        if reader.read(1, items)? {
            return Ok(true);
        }
        if matches!(items.last(), Some(Decoded::Record(record)) if record.time > allowed) {
            break;
        }
    }
    Ok(false)
}

/// The unfinished segment with the smallest watermark (a segment with none yet comes first).
fn furthest_behind<T>(segments: &[SegmentState<T>]) -> Option<usize> {
    segments
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.done)
        .min_by_key(|(_, s)| s.watermark.current().unwrap_or(i64::MIN))
        .map(|(i, _)| i)
}

/// Sends records at their own ticks: one session per distinct tick (the file and Kafka sources).
pub(crate) fn send_grouped_by_tick<T: 'static>(
    output: &mut OutputBuilder<Tick, CapacityContainerBuilder<Vec<Timed<T>>>>,
    cap: &Capability<Tick>,
    records: &mut Vec<(Tick, Timed<T>)>,
) {
    if records.is_empty() {
        return;
    }
    // A segment's records are mostly in order already; a stable sort would still allocate.
    if !records.is_sorted_by_key(|(tick, _)| *tick) {
        records.sort_by_key(|(tick, _)| *tick);
    }
    let mut output = output.activate();
    let mut drain = records.drain(..).peekable();
    // A whole tick's records as one container: no per-record push, and no containers cut at
    // timely's default 8 KiB (a few dozen records), which downstream would handle one by one.
    let mut group = Vec::new();
    while let Some((tick, record)) = drain.next() {
        group.push(record);
        while let Some((_, record)) = drain.next_if(|(t, _)| *t == tick) {
            group.push(record);
        }
        let at = cap.delayed(&tick);
        output.session(&at).give_container(&mut group);
        group.clear(); // timely may hand back a recycled container that still holds records
    }
}
