//! The sink operator: gathers a stream on worker 0 and writes it tick by tick in canonical order.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::{Exchange, ParallelizationContract, Pipeline};
use timely::dataflow::operators::generic::Operator;

use super::Sink;
use crate::format::json_line::write_json;
use super::writers::{RecordWriter, open_writer_with};
use crate::metrics::Metrics;
use crate::record::OutputStream;
use crate::operators::TickStash;
use crate::time::Tick;

/// What a sink needs from the run around it.
#[derive(Clone)]
pub struct SinkContext {
    pub metrics: Metrics,
    /// Write failures; the run reports them and fails.
    pub errors: Arc<Mutex<Vec<String>>>,
    /// Count written records as the run's output (`false` for side outputs such as late records).
    pub count_output: bool,
}

/// Writes a stream to a [`Sink`].
///
/// ```
/// use timely::dataflow::operators::{ToStream, Probe};
/// use weir_engine::sink::{MemorySink, Sink, SinkContext, SinkExt};
///
/// let captured = MemorySink::new();
/// let sink = Sink::Memory(captured.clone());
/// timely::example(move |scope| {
///     let ctx = SinkContext { metrics: Default::default(), errors: Default::default(), count_output: true };
///     vec![3u32, 1, 2].to_stream(scope).sink_to(&sink, &ctx);
/// });
/// assert_eq!(captured.records(), vec![1, 2, 3]); // canonical order within a tick
/// ```
pub trait SinkExt<'scope, T> {
    /// Writes every record; returns an empty stream whose frontier tells what has been written.
    fn sink_to(self, sink: &Sink<T>, ctx: &SinkContext) -> StreamVec<'scope, Tick, ()>;
}

impl<'scope, T> SinkExt<'scope, T> for OutputStream<'scope, T>
where
    T: timely::ExchangeData + Serialize + Clone,
{
    fn sink_to(self, sink: &Sink<T>, ctx: &SinkContext) -> StreamVec<'scope, Tick, ()> {
        let writes_here = self.scope().index() == 0;
        let sink = sink.clone();
        let ctx = ctx.clone();
        if self.scope().peers() == 1 {
            // One worker: it writes everything already, so skip the exchange's copy of every record.
            return sink_operator(self, Pipeline, sink, ctx, writes_here);
        }
        sink_operator(self, Exchange::new(|_: &T| 0), sink, ctx, writes_here)
    }
}

/// The sink over a pact that brings every record to worker 0.
fn sink_operator<'scope, T, P>(stream: OutputStream<'scope, T>, pact: P, sink: Sink<T>, ctx: SinkContext, writes_here: bool) -> StreamVec<'scope, Tick, ()>
where
    T: timely::ExchangeData + Serialize + Clone,
    P: ParallelizationContract<Tick, Vec<T>>,
{
    let encode = !matches!(sink, Sink::Discard);
    stream.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(pact, "Sink", move |_cap, _info| {
        let mut writer: Option<Box<dyn RecordWriter<T>>> = None;
        let mut failed = false;
        let mut finished = false;
        let mut pending: TickStash<T> = TickStash::default();
        let mut json = Vec::new();
        let fail = move |ctx: &SinkContext, message: String| ctx.errors.lock().unwrap().push(message);
        move |(input, frontier), _output| {
            input.for_each_stamp(|cap, containers| {
                let Some(cap) = cap.retain_least(0) else { return };
                pending.add(cap, containers);
            });
            if !writes_here || failed {
                pending.clear();
                return;
            }
            if writer.is_none() && !finished {
                match open_writer_with(&sink, &ctx.metrics) {
                    Ok(opened) => writer = Some(opened),
                    Err(error) => {
                        failed = true;
                        fail(&ctx, error.to_string());
                        pending.clear();
                        return;
                    }
                }
            }
            let mut wrote = false;
            while let Some((cap, records)) = pending.pop_complete(frontier) {
                let tick = *cap.time();
                let count = records.len() as u64;
                if let Err(message) = write_tick(writer.as_mut().unwrap().as_mut(), tick, records, encode, &mut json) {
                    failed = true;
                    fail(&ctx, message);
                    pending.clear();
                    return;
                }
                if ctx.count_output {
                    ctx.metrics.events_out.add(count);
                }
                wrote = true;
            }
            // Durable before the dropped capabilities let the frontier move on.
            if wrote {
                if let Err(error) = writer.as_mut().unwrap().flush() {
                    failed = true;
                    fail(&ctx, error.to_string());
                    pending.clear();
                    return;
                }
            }
            if frontier.is_empty() && pending.is_empty() && !finished {
                finished = true;
                if let Some(mut done) = writer.take() {
                    if let Err(error) = done.finish() {
                        fail(&ctx, error.to_string());
                    }
                }
            }
        }
    })
}

/// Writes one tick's records sorted by their JSON encoding.
///
/// The records are encoded ([`write_json`]: serde_json's bytes, faster) back to back into
/// `json`, each line ending in `\n`, one buffer reused tick after tick rather than a `String`
/// per row: at a million rows a second the allocation per row was a visible share of the sink.
/// Ticks usually arrive in order already (a leading time field), which one pass of comparisons
/// confirms; otherwise the order is found by sorting row numbers, not the records themselves
/// (a scored event is a hundred bytes or more to move at every step). A writer that needs only
/// the JSON ([`RecordWriter::as_line_writer`]) gets the tick's lines in one call.
fn write_tick<T: Serialize>(writer: &mut dyn RecordWriter<T>, tick: Tick, records: Vec<T>, encode: bool, json: &mut Vec<u8>) -> Result<(), String> {
    if !encode {
        for record in records {
            writer.write(tick, "", record).map_err(|e| e.to_string())?;
        }
        return Ok(());
    }
    json.clear();
    // Each row's line without its newline.
    let mut spans = Vec::with_capacity(records.len());
    for record in &records {
        let start = json.len();
        write_json(record, json).map_err(|e| format!("cannot encode output: {e}"))?;
        spans.push(start..json.len());
        json.push(b'\n');
    }
    let text = std::str::from_utf8(json).map_err(|e| format!("cannot encode output: {e}"))?;
    let line = |row: usize| &text[spans[row].clone()];
    let order = canonical_order(records.len(), line);
    if let Some(lines) = writer.as_line_writer() {
        let result = match &order {
            None => lines.write_lines(tick, text),
            Some(order) => {
                let mut sorted = String::with_capacity(text.len());
                for &row in order {
                    sorted.push_str(&text[spans[row].start..spans[row].end + 1]);
                }
                lines.write_lines(tick, &sorted)
            }
        };
        return result.map_err(|e| e.to_string());
    }
    match order {
        None => {
            for (row, record) in records.into_iter().enumerate() {
                writer.write(tick, line(row), record).map_err(|e| e.to_string())?;
            }
        }
        Some(order) => {
            let mut records: Vec<Option<T>> = records.into_iter().map(Some).collect();
            for row in order {
                let record = records[row].take().expect("each row once");
                writer.write(tick, line(row), record).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

/// The rows in the order of their lines; `None` when they are in that order already.
fn canonical_order<'a>(rows: usize, line: impl Fn(usize) -> &'a str) -> Option<Vec<usize>> {
    if (1..rows).all(|row| line(row - 1) <= line(row)) {
        return None;
    }
    let mut order: Vec<usize> = (0..rows).collect();
    // Rows arrive in event-time order with ties in any order (a replay's ticks hold hundreds
    // of events per millisecond), so a few short moves put them in place; a full sort is the
    // fallback for rows in no particular order. Unstable is enough: rows whose lines are equal
    // write the same bytes in either order.
    if !insertion_sort_within(&mut order, 4 * rows, |a, b| line(a) < line(b)) {
        order.sort_unstable_by(|a, b| line(*a).cmp(line(*b)));
    }
    Some(order)
}

/// Insertion sort of `items` by `less`, giving up (`false`, `items` still a permutation) once
/// it has moved elements `budget` places in all: linear in the length plus the number of
/// inversions, so it is the fast sort for items that are nearly in order and only those.
fn insertion_sort_within<T: Copy>(items: &mut [T], mut budget: usize, less: impl Fn(T, T) -> bool) -> bool {
    for i in 1..items.len() {
        let item = items[i];
        let mut at = i;
        while at > 0 && less(item, items[at - 1]) {
            if budget == 0 {
                items[at] = item;
                return false;
            }
            budget -= 1;
            items[at] = items[at - 1];
            at -= 1;
        }
        items[at] = item;
    }
    true
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::insertion_sort_within;

    proptest! {
        #[test]
        fn insertion_sort_sorts_or_gives_up_with_a_permutation(mut items in prop::collection::vec(0u8..20, 0..200), budget in 0usize..400) {
            let mut expected = items.clone();
            expected.sort();
            let sorted = insertion_sort_within(&mut items, budget, |a, b| a < b);
            let mut permutation = items.clone();
            permutation.sort();
            prop_assert_eq!(&permutation, &expected, "still a permutation");
            if sorted {
                prop_assert_eq!(items, expected);
            }
        }
    }
}
