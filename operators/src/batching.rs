//! Micro-batching shared by the ONNX operators: records wait per worker until `max_batch` of
//! them are ready or the input frontier has passed their ticks, holding a capability for each
//! tick among them; results go out at each record's own tick.

use std::collections::{BTreeMap, HashSet};

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::OutputBuilderSession;
use timely::progress::frontier::MutableAntichain;
use weir_engine::record::Timed;
use weir_engine::time::Tick;

/// Records waiting for their batch, with a capability for every tick among them.
pub(crate) struct Pending<D> {
    pub(crate) records: Vec<(Tick, Timed<D>)>,
    pub(crate) capabilities: BTreeMap<Tick, Capability<Tick>>,
    sorted: bool,
}

impl<D> Pending<D> {
    pub(crate) fn new() -> Self {
        Pending { records: Vec::new(), capabilities: BTreeMap::new(), sorted: true }
    }

    pub(crate) fn absorb(&mut self, capability: Capability<Tick>, containers: std::slice::IterMut<'_, Vec<Timed<D>>>) {
        let tick = *capability.time();
        if self.records.last().is_some_and(|(last, _)| *last > tick) {
            self.sorted = false;
        }
        for container in containers {
            self.records.extend(container.drain(..).map(|record| (tick, record)));
        }
        self.capabilities.entry(tick).or_insert(capability);
    }

    /// Takes the records ready to be scored now: while `max_batch` or more are `eligible`, full
    /// batches of the oldest; then every eligible record whose tick `input` has passed.
    /// `eligible(tick)` says whether a record may be scored at all yet (the versioned scorer
    /// waits for the version frontier).
    pub(crate) fn take_batches(&mut self, max_batch: usize, input: &MutableAntichain<Tick>, eligible: impl Fn(Tick) -> bool) -> Vec<Vec<(Tick, Timed<D>)>> {
        if !self.sorted {
            self.records.sort_by_key(|(tick, _)| *tick); // stable: arrival order within a tick
            self.sorted = true;
        }
        let ready = self.records.partition_point(|(tick, _)| eligible(*tick));
        let complete = self.records[..ready].partition_point(|(tick, _)| !input.less_equal(tick));
        // Full batches first, then the complete remainder; an incomplete partial batch waits.
        let full = (ready / max_batch) * max_batch;
        let take = full.max(complete);
        let mut batches = Vec::new();
        let mut rest = self.records.split_off(take);
        std::mem::swap(&mut rest, &mut self.records);
        let mut taken = rest.into_iter().peekable();
        while taken.peek().is_some() {
            batches.push(taken.by_ref().take(max_batch).collect());
        }
        batches
    }

    /// Drops the capabilities of ticks no pending record needs.
    pub(crate) fn release(&mut self) {
        let oldest = self.records.first().map(|(tick, _)| *tick);
        match oldest {
            None => self.capabilities.clear(),
            Some(oldest) => {
                let needed: HashSet<Tick> = self.records.iter().map(|(tick, _)| *tick).collect();
                self.capabilities.retain(|tick, _| *tick >= oldest && needed.contains(tick));
            }
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

