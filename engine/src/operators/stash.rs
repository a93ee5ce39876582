//! Records held by tick until the input frontier has passed it: the buffer of every operator
//! that must see a whole tick before it acts on any of it (running aggregates, the sink's
//! canonical order, attribution, the trainer).

use std::collections::BTreeMap;

use timely::dataflow::operators::Capability;
use timely::progress::frontier::MutableAntichain;

use crate::time::Tick;

/// Records by tick, each tick with the capability to send its results at.
pub struct TickStash<D> {
    ticks: BTreeMap<Tick, (Capability<Tick>, Vec<D>)>,
}

impl<D> Default for TickStash<D> {
    fn default() -> Self {
        TickStash { ticks: BTreeMap::new() }
    }
}

impl<D> TickStash<D> {
    /// Adds one input stamp's containers (emptied) under its capability.
    pub fn add<'a>(&mut self, cap: Capability<Tick>, containers: impl IntoIterator<Item = &'a mut Vec<D>>)
    where
        D: 'a,
    {
        let entry = self.ticks.entry(*cap.time()).or_insert_with(|| (cap, Vec::new()));
        for container in containers {
            if entry.1.is_empty() {
                // The first container of a tick is taken whole rather than copied.
                std::mem::swap(&mut entry.1, container);
            } else {
                entry.1.append(container);
            }
        }
    }

    /// The earliest held tick that `frontier` has passed (no more records can arrive for it).
    pub fn first_complete(&self, frontier: &MutableAntichain<Tick>) -> Option<Tick> {
        self.ticks.first_key_value().map(|(tick, _)| *tick).filter(|tick| !frontier.less_equal(tick))
    }

    /// Removes the earliest complete tick: call in a loop to handle complete ticks in order.
    pub fn pop_complete(&mut self, frontier: &MutableAntichain<Tick>) -> Option<(Capability<Tick>, Vec<D>)> {
        let tick = self.first_complete(frontier)?;
        self.ticks.remove(&tick)
    }

    /// Removes `tick` (a tick [`TickStash::first_complete`] returned).
    pub fn remove(&mut self, tick: Tick) -> Option<(Capability<Tick>, Vec<D>)> {
        self.ticks.remove(&tick)
    }

    pub fn is_empty(&self) -> bool {
        self.ticks.is_empty()
    }

    /// Drops everything held, capabilities included.
    pub fn clear(&mut self) {
        self.ticks.clear();
    }
}
