//! Micro-batching shared by the ONNX operators: records wait per worker until `max_batch` of
//! them are ready or the input frontier has passed their ticks, holding a capability for each
//! tick among them; results go out at each record's own tick.
//!
//! The waiting records live in one `VecDeque` that keeps its allocation: batches are drained
//! from its front in place, so a record is moved once into it and once out of it, and the
//! steady state allocates nothing per batch.

use std::collections::{BTreeMap, VecDeque};

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::OutputBuilderSession;
use timely::progress::frontier::MutableAntichain;
use weir_engine::record::Timed;
use weir_engine::time::Tick;

/// Records waiting for their batch, with a capability for every tick among them.
pub(crate) struct Pending<D> {
    pub(crate) records: VecDeque<(Tick, Timed<D>)>,
    pub(crate) capabilities: BTreeMap<Tick, Capability<Tick>>,
    sorted: bool,
}

impl<D> Pending<D> {
    pub(crate) fn new() -> Self {
        Pending { records: VecDeque::new(), capabilities: BTreeMap::new(), sorted: true }
    }

    pub(crate) fn absorb(&mut self, capability: Capability<Tick>, containers: std::slice::IterMut<'_, Vec<Timed<D>>>) {
        let tick = *capability.time();
        if self.records.back().is_some_and(|(last, _)| *last > tick) {
            self.sorted = false;
        }
        for container in containers {
            self.records.extend(container.drain(..).map(|record| (tick, record)));
        }
        self.capabilities.entry(tick).or_insert(capability);
    }

    /// How many of the oldest records are ready to be scored now: while `max_batch` or more
    /// are `eligible`, whole batches of them; and every eligible record whose tick `input` has
    /// passed. `eligible(tick)` says whether a record may be scored at all yet (the versioned
    /// scorer waits for the version frontier). Take them with [`Pending::drain_batch`].
    pub(crate) fn ready(&mut self, max_batch: usize, input: &MutableAntichain<Tick>, eligible: impl Fn(Tick) -> bool) -> usize {
        if !self.sorted {
            self.records.make_contiguous().sort_by_key(|(tick, _)| *tick); // stable: arrival order within a tick
            self.sorted = true;
        }
        let ready = self.records.partition_point(|(tick, _)| eligible(*tick));
        // Both predicates hold for a prefix of the records (sorted by tick), so the complete
        // eligible records are the shorter of the two prefixes.
        let complete = ready.min(self.records.partition_point(|(tick, _)| !input.less_equal(tick)));
        // Full batches first, then the complete remainder; an incomplete partial batch waits.
        let full = (ready / max_batch) * max_batch;
        full.max(complete)
    }

    /// The next batch of at most `max_batch` of the `ready` records (see [`Pending::ready`]),
    /// drained from the front in place; `ready` is decremented.
    pub(crate) fn drain_batch(&mut self, max_batch: usize, ready: &mut usize) -> std::collections::vec_deque::Drain<'_, (Tick, Timed<D>)> {
        let n = max_batch.min(*ready);
        *ready -= n;
        self.records.drain(..n)
    }

    /// The ready records as batches of at most `max_batch` (for operators that want owned batches).
    pub(crate) fn take_batches(&mut self, max_batch: usize, input: &MutableAntichain<Tick>, eligible: impl Fn(Tick) -> bool) -> Vec<Vec<(Tick, Timed<D>)>> {
        let mut ready = self.ready(max_batch, input, eligible);
        let mut batches = Vec::new();
        while ready > 0 {
            batches.push(self.drain_batch(max_batch, &mut ready).collect());
        }
        batches
    }

    /// Drops the capabilities of ticks no pending record needs.
    pub(crate) fn release(&mut self) {
        if self.records.is_empty() {
            self.capabilities.clear();
            return;
        }
        if self.sorted {
            // Sorted by tick: a tick is needed when a binary search finds a record at it.
            let records = &self.records;
            self.capabilities.retain(|tick, _| {
                let at = records.partition_point(|(t, _)| t < tick);
                records.get(at).is_some_and(|(t, _)| t == tick)
            });
        } else {
            let needed: std::collections::BTreeSet<Tick> = self.records.iter().map(|(tick, _)| *tick).collect();
            self.capabilities.retain(|tick, _| needed.contains(tick));
        }
    }
}

/// Sends scored records, each at its own tick.
pub(crate) fn send<O: Clone + 'static>(
    output: &mut OutputBuilderSession<'_, Tick, CapacityContainerBuilder<Vec<O>>>,
    capabilities: &BTreeMap<Tick, Capability<Tick>>,
    results: &mut Vec<(Tick, O)>,
) {
    let mut results = results.drain(..).peekable();
    while let Some((tick, first)) = results.next() {
        // `Pending` holds a capability for every tick of its records until they are sent.
        let mut session = output.session(&capabilities[&tick]);
        session.give(first);
        while let Some((_, result)) = results.next_if(|(next, _)| *next == tick) {
            session.give(result);
        }
    }
}

