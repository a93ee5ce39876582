//! Running per-key aggregates: after each tick, the updated state of every key it touched.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;

use crate::record::{EventStream, OutputStream, Timed, stable_hash};
use super::stash::TickStash;
use crate::time::Tick;

/// A key's aggregate over all its records up to and including tick `as_of`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Running<K, A> {
    pub key: K,
    pub as_of: Tick,
    pub value: A,
}

/// Running aggregates per key, emitted once per tick and key, when the tick is complete.
///
/// ```
/// use weir_engine::prelude::*;
/// use timely::dataflow::operators::{ToStream, Capture, capture::Extract};
///
/// let events = vec![Timed::new(1, 5u64), Timed::new(2, 7)];
/// let captured = timely::example(move |scope| {
///     events.to_stream(scope).running_fold(|_: &u64| 0u8, |sum: &mut u64, r| *sum += r.data).capture()
/// });
/// let results: Vec<_> = captured.extract().into_iter().flat_map(|(_, data)| data).collect();
/// assert_eq!(results.last().unwrap().value, 12);
/// ```
pub trait RunningExt<'scope, D> {
    fn running_fold<K, A, KF, FF>(self, key: KF, fold: FF) -> OutputStream<'scope, Running<K, A>>
    where
        K: timely::ExchangeData + Hash + Eq + Ord + Clone,
        A: timely::ExchangeData + Default + Clone,
        KF: Fn(&D) -> K + Clone + 'static,
        FF: Fn(&mut A, &Timed<D>) + 'static;
}

impl<'scope, D: timely::ExchangeData> RunningExt<'scope, D> for EventStream<'scope, D> {
    fn running_fold<K, A, KF, FF>(self, key: KF, fold: FF) -> OutputStream<'scope, Running<K, A>>
    where
        K: timely::ExchangeData + Hash + Eq + Ord + Clone,
        A: timely::ExchangeData + Default + Clone,
        KF: Fn(&D) -> K + Clone + 'static,
        FF: Fn(&mut A, &Timed<D>) + 'static,
    {
        let route = key.clone();
        let pact = Exchange::new(move |record: &Timed<D>| stable_hash(&route(&record.data)));
        self.unary_frontier::<CapacityContainerBuilder<Vec<_>>, _, _, _>(pact, "RunningFold", move |_cap, _info| {
            let mut state: HashMap<K, A> = HashMap::new();
            // Records wait for their tick to complete, so each emitted value is final for it.
            let mut pending: TickStash<Timed<D>> = TickStash::default();
            move |(input, frontier), output| {
                input.for_each_stamp(|cap, containers| {
                    let Some(cap) = cap.retain_least(0) else { return };
                    pending.add(cap, containers);
                });
                while let Some((cap, records)) = pending.pop_complete(frontier) {
                    let tick = *cap.time();
                    let mut touched = HashSet::new();
                    for record in &records {
                        let record_key = key(&record.data);
                        fold(state.entry(record_key.clone()).or_default(), record);
                        touched.insert(record_key);
                    }
                    let mut touched: Vec<K> = touched.into_iter().collect();
                    touched.sort_unstable();
                    let mut session = output.session(&cap);
                    for key in touched {
                        let value = state[&key].clone();
                        session.give(Running { key, as_of: tick, value });
                    }
                }
            }
        })
    }
}
