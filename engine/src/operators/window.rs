//! Tumbling and sliding event-time windows over insert-only streams (the fast path).
//!
//! Records are exchanged by key, folded into per-(window, key) accumulators as they arrive, and
//! a window's results are emitted once the input frontier has passed the tick of the window's
//! last millisecond. Results are stamped with that *closing tick*, so they are the same whatever
//! the arrival order or worker count (the fold must be order-insensitive: see
//! [`crate::aggregate`]). [`crate::operators::window_differential`] computes the same counts
//! through differential dataflow, for inputs that may be retracted.

use std::collections::BTreeMap;
use std::hash::Hash;

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, ParallelizationContract, Pipeline};
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::record::{EventStream, OutputStream, Timed, stable_hash};

/// Keys of one window: Fx hashing, since keys were already spread over workers by [`stable_hash`]
/// and SipHash's DoS resistance buys nothing here.
type Groups<K, A> = rustc_hash::FxHashMap<K, A>;
use crate::time::{Tick, TickSpec};

/// Window shape: `size` ms long, a new one every `slide` ms (`slide == size`: tumbling).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSpec {
    pub size_ms: i64,
    pub slide_ms: i64,
}

/// One window: event times in `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

impl WindowSpec {
    pub fn tumbling(size_ms: i64) -> Self {
        Self::sliding(size_ms, size_ms)
    }
    pub fn sliding(size_ms: i64, slide_ms: i64) -> Self {
        assert!(size_ms > 0 && slide_ms > 0, "window size and slide must be positive");
        WindowSpec { size_ms, slide_ms }
    }
    /// The windows that contain event time `time`, earliest first.
    pub fn windows_of(&self, time: i64) -> impl Iterator<Item = Window> + use<> {
        let WindowSpec { size_ms, slide_ms } = *self;
        let last_start = time.div_euclid(slide_ms) * slide_ms;
        let first_start = last_start - ((size_ms - 1) / slide_ms) * slide_ms;
        (0..)
            .map(move |i| first_start + i * slide_ms)
            .take_while(move |start| *start <= last_start)
            .filter(move |start| time < start + size_ms)
            .map(move |start| Window { start, end: start + size_ms })
    }
}

/// The result of one window for one key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WindowResult<K, A> {
    pub key: K,
    pub window: Window,
    pub value: A,
}

/// Keyed event-time windows.
///
/// ```
/// use weir_engine::prelude::*;
/// use timely::dataflow::operators::{ToStream, Capture, capture::Extract};
///
/// let events: Vec<Timed<String>> = [(500, "a"), (1500, "a"), (61_000, "b")].map(|(t, k)| Timed::new(t, k.to_string())).into();
/// let captured = timely::example(move |scope| {
///     events.to_stream(scope)
///         .window_fold(WindowSpec::tumbling(60_000), TickSpec::new(1), |s: &String| s.clone(), |n: &mut u64, _| *n += 1)
///         .capture()
/// });
/// let results: Vec<_> = captured.extract().into_iter().flat_map(|(_, data)| data).collect();
/// assert_eq!(results.len(), 2);
/// assert_eq!((results[0].key.as_str(), results[0].value), ("a", 2));
/// ```
pub trait WindowExt<'scope, D> {
    /// Folds each key's records per window with `fold`, starting from `A::default()`.
    fn window_fold<K, A, KF, FF>(self, spec: WindowSpec, tick: TickSpec, key: KF, fold: FF) -> OutputStream<'scope, WindowResult<K, A>>
    where
        K: timely::ExchangeData + Hash + Eq + Ord + Clone,
        A: timely::ExchangeData + Default + Clone,
        KF: Fn(&D) -> K + Clone + 'static,
        FF: Fn(&mut A, &Timed<D>) + 'static;
}

struct OpenWindow<K, A> {
    cap: Capability<Tick>,
    window: Window,
    groups: Groups<K, A>,
}

impl<'scope, D: timely::ExchangeData> WindowExt<'scope, D> for EventStream<'scope, D> {
    fn window_fold<K, A, KF, FF>(self, spec: WindowSpec, tick: TickSpec, key: KF, fold: FF) -> OutputStream<'scope, WindowResult<K, A>>
    where
        K: timely::ExchangeData + Hash + Eq + Ord + Clone,
        A: timely::ExchangeData + Default + Clone,
        KF: Fn(&D) -> K + Clone + 'static,
        FF: Fn(&mut A, &Timed<D>) + 'static,
    {
        if self.scope().peers() == 1 {
            // One worker owns every key: skip the exchange's hashing and re-buffering.
            return fold_windows(self, Pipeline, spec, tick, key, fold);
        }
        let route = key.clone();
        let pact = Exchange::new(move |record: &Timed<D>| stable_hash(&route(&record.data)));
        fold_windows(self, pact, spec, tick, key, fold)
    }
}

/// The window operator over any pact that routes each key to one worker.
fn fold_windows<'scope, D, K, A, KF, FF, P>(
    stream: EventStream<'scope, D>,
    pact: P,
    spec: WindowSpec,
    tick: TickSpec,
    key: KF,
    fold: FF,
) -> OutputStream<'scope, WindowResult<K, A>>
where
    D: timely::ExchangeData,
    K: timely::ExchangeData + Hash + Eq + Ord + Clone,
    A: timely::ExchangeData + Default + Clone,
    KF: Fn(&D) -> K + 'static,
    FF: Fn(&mut A, &Timed<D>) + 'static,
    P: ParallelizationContract<Tick, Vec<Timed<D>>>,
{
    stream.unary_frontier::<CapacityContainerBuilder<Vec<_>>, _, _, _>(pact, "WindowFold", move |_cap, _info| {
        // Open windows by end time.
        let mut open: BTreeMap<i64, OpenWindow<K, A>> = BTreeMap::new();
        move |(input, frontier), output| {
            input.for_each_stamp(|cap, containers| {
                for container in containers {
                    for record in container.drain(..) {
                        let record_key = key(&record.data);
                        for window in spec.windows_of(record.time) {
                            let slot = open.entry(window.end).or_insert_with(|| OpenWindow {
                                cap: cap.delayed(&tick.closing_tick(window.end), 0),
                                window,
                                groups: Groups::default(),
                            });
                            let state = match slot.groups.get_mut(&record_key) {
                                Some(state) => state,
                                None => slot.groups.entry(record_key.clone()).or_default(),
                            };
                            fold(state, &record);
                        }
                    }
                }
            });
            while let Some(entry) = open.first_entry() {
                if frontier.less_equal(entry.get().cap.time()) {
                    break;
                }
                let OpenWindow { cap, window, groups } = entry.remove();
                let mut results: Vec<_> = groups.into_iter().collect();
                results.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                output.session(&cap).give_iterator(results.into_iter().map(|(key, value)| WindowResult { key, window, value }));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_windows_partition_time() {
        let spec = WindowSpec::tumbling(60_000);
        assert_eq!(spec.windows_of(0).collect::<Vec<_>>(), vec![Window { start: 0, end: 60_000 }]);
        assert_eq!(spec.windows_of(59_999).collect::<Vec<_>>(), vec![Window { start: 0, end: 60_000 }]);
        assert_eq!(spec.windows_of(60_000).collect::<Vec<_>>(), vec![Window { start: 60_000, end: 120_000 }]);
    }

    #[test]
    fn sliding_windows_overlap() {
        let spec = WindowSpec::sliding(60_000, 20_000);
        let starts: Vec<i64> = spec.windows_of(65_000).map(|w| w.start).collect();
        assert_eq!(starts, vec![20_000, 40_000, 60_000]);
        let spec = WindowSpec::sliding(50_000, 20_000);
        let starts: Vec<i64> = spec.windows_of(65_000).map(|w| w.start).collect();
        assert_eq!(starts, vec![20_000, 40_000, 60_000]);
        let starts: Vec<i64> = spec.windows_of(70_000).map(|w| w.start).collect();
        assert_eq!(starts, vec![40_000, 60_000]);
        // Gaps: slide larger than size.
        let spec = WindowSpec::sliding(10_000, 30_000);
        assert_eq!(spec.windows_of(15_000).count(), 0);
        assert_eq!(spec.windows_of(31_000).count(), 1);
    }
}
