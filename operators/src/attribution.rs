//! Attribution: impressions joined with their later clicks (or purchases) become labelled
//! training examples, each available at the event time its label becomes known
//! (DESIGN.md §2, "delayed labels are data too").
//!
//! * A **positive** is emitted at the event time of the first click (or purchase, see
//!   [`AttributionSpec::positive`]) of the same key (user, item) within
//!   [`AttributionSpec::window_ms`] after the impression: `t_imp <= t_click < t_imp + window`.
//!   A click is credited to the earliest open impression of its key.
//! * A **negative** is emitted at `t_imp + window` for an impression no click claimed.
//!
//! Records are exchanged by key and processed one complete tick at a time, sorted by
//! (time, impression before click, key, content), so which impression a click is credited to
//! never depends on arrival order or worker count. Positives travel at the click's tick, and a
//! pending negative holds a capability for its deadline only, so the output frontier follows
//! the input frontier: positives are not delayed by a window. At the end of a bounded input
//! every open impression becomes a negative.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;
use weir_engine::operators::TickStash;
use weir_engine::time::{Tick, TickSpec};
use weir_engine::{EventStream, Timed};

/// What an input record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Touch {
    Impression,
    Click,
    Purchase,
}

/// One input record: an impression or a later interaction, with the key that joins them
/// (a stable hash of user and item, e.g. [`weir_engine::record::stable_hash`]) and a payload
/// (for impressions: what the label will be attached to, typically the example's features).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Touched<D> {
    pub touch: Touch,
    pub key: u64,
    pub data: D,
}

/// An impression with its label; its [`Timed::time`] is when the label became known.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attributed<D> {
    pub impression_time: i64,
    pub impression: D,
    pub positive: bool,
}

/// Attribution settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributionSpec {
    /// Event-time window after the impression, ms.
    pub window_ms: i64,
    /// Which interaction makes an impression positive (the other one is ignored).
    pub positive: Touch,
}

impl AttributionSpec {
    pub fn clicks_within(window_ms: i64) -> Self {
        AttributionSpec { window_ms, positive: Touch::Click }
    }
}

/// Impressions × clicks → labelled impressions.
///
/// ```
/// use weir_engine::prelude::*;
/// use weir_operators::attribution::{AttributeExt, AttributionSpec, Touch, Touched};
/// use timely::dataflow::operators::{ToStream, Capture, capture::Event};
///
/// let input = vec![
///     Timed::new(1_000, Touched { touch: Touch::Impression, key: 7, data: 1u32 }),
///     Timed::new(2_000, Touched { touch: Touch::Impression, key: 8, data: 2 }),
///     Timed::new(5_000, Touched { touch: Touch::Click, key: 7, data: 0 }),
/// ];
/// let captured = timely::example(move |scope| {
///     input.to_stream(scope).attribute(AttributionSpec::clicks_within(60_000), TickSpec::new(1_000)).capture()
/// });
/// let mut out: Vec<_> = captured.try_iter()
///     .flat_map(|e| if let Event::Messages(_, d) = e { d } else { Vec::new() })
///     .map(|t| (t.time, t.data.impression, t.data.positive))
///     .collect();
/// out.sort();
/// assert_eq!(out, vec![(5_000, 1, true), (62_000, 2, false)]);
/// ```
pub trait AttributeExt<'scope, D> {
    fn attribute(self, spec: AttributionSpec, tick: TickSpec) -> EventStream<'scope, Attributed<D>>;
}

struct OpenImpression<D> {
    id: u64,
    time: i64,
    data: D,
}

/// Sort order within a tick: time, impressions first, key, then content (serialised, only
/// on ties) so the order is total.
fn canonical<D: Serialize>(a: &Timed<Touched<D>>, b: &Timed<Touched<D>>) -> Ordering {
    a.time
        .cmp(&b.time)
        .then_with(|| a.data.touch.cmp(&b.data.touch))
        .then_with(|| a.data.key.cmp(&b.data.key))
        .then_with(|| {
            let bytes = |d: &D| serde_json::to_vec(d).unwrap_or_default();
            bytes(&a.data.data).cmp(&bytes(&b.data.data))
        })
}

impl<'scope, D> AttributeExt<'scope, D> for EventStream<'scope, Touched<D>>
where
    D: timely::ExchangeData + Serialize,
{
    fn attribute(self, spec: AttributionSpec, tick: TickSpec) -> EventStream<'scope, Attributed<D>> {
        assert!(spec.window_ms > 0, "the attribution window must be positive");
        let pact = Exchange::new(|r: &Timed<Touched<D>>| r.data.key);
        self.unary_frontier::<CapacityContainerBuilder<Vec<_>>, _, _, _>(pact, "Attribute", move |_cap, _info| {
            let mut pending: TickStash<Timed<Touched<D>>> = TickStash::default();
            let mut open: HashMap<u64, VecDeque<OpenImpression<D>>> = HashMap::new();
            // Deadline tick -> capability and the impressions (key, id) whose window ends there.
            let mut deadlines: BTreeMap<Tick, (Capability<Tick>, Vec<(u64, u64, i64)>)> = BTreeMap::new();
            let mut next_id = 0u64;
            move |(input, frontier), output| {
                input.for_each_stamp(|cap, containers| {
                    let Some(cap) = cap.retain_least(0) else { return };
                    pending.add(cap, containers);
                });
                loop {
                    let input_tick = pending.first_complete(frontier);
                    let deadline_tick = deadlines.first_key_value().map(|(t, _)| *t).filter(|t| !frontier.less_equal(t));
                    match (input_tick, deadline_tick) {
                        (Some(i), d) if d.is_none_or(|d| i <= d) => {
                            let (cap, mut records) = pending.remove(i).expect("present");
                            records.sort_by(canonical);
                            let mut session = output.session(&cap);
                            for record in records {
                                let Touched { touch, key, data } = record.data;
                                if touch == Touch::Impression {
                                    let id = next_id;
                                    next_id += 1;
                                    let end = record.time.saturating_add(spec.window_ms);
                                    let deadline = tick.tick_of(end).max(*cap.time());
                                    deadlines.entry(deadline).or_insert_with(|| (cap.delayed(&deadline), Vec::new())).1.push((key, id, end));
                                    open.entry(key).or_default().push_back(OpenImpression { id, time: record.time, data });
                                } else if touch == spec.positive {
                                    let Some(queue) = open.get_mut(&key) else { continue };
                                    // The earliest impression whose window still covers the click.
                                    let found = queue.iter().position(|imp| imp.time <= record.time && record.time < imp.time + spec.window_ms);
                                    if let Some(at) = found {
                                        let imp = queue.remove(at).expect("in range");
                                        if queue.is_empty() {
                                            open.remove(&key);
                                        }
                                        session.give(Timed::new(record.time, Attributed { impression_time: imp.time, impression: imp.data, positive: true }));
                                    }
                                }
                            }
                        }
                        (_, Some(d)) => {
                            let (cap, due) = deadlines.remove(&d).expect("present");
                            let mut session = output.session(&cap);
                            for (key, id, end) in due {
                                let Some(queue) = open.get_mut(&key) else { continue };
                                if let Some(at) = queue.iter().position(|imp| imp.id == id) {
                                    let imp = queue.remove(at).expect("in range");
                                    if queue.is_empty() {
                                        open.remove(&key);
                                    }
                                    session.give(Timed::new(end, Attributed { impression_time: imp.time, impression: imp.data, positive: false }));
                                }
                            }
                        }
                        _ => break,
                    }
                }
            }
        })
    }
}
