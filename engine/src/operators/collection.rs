//! Between timely streams and differential collections.
//!
//! Insert-only streams become collections (each record `+1` at its tick) when they meet data that
//! can change, such as a table; a collection's changes come back as a stream of [`Change`]s, each
//! at its own tick, so sinks write them deterministically.

use differential_dataflow::VecCollection;
use differential_dataflow::collection::AsCollection;
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use crate::record::{EventStream, OutputStream, Timed};
use crate::time::Tick;

/// One update of a collection: `data` gained `diff` copies at tick `time` (negative: retracted).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Change<D> {
    pub time: Tick,
    pub diff: isize,
    pub data: D,
}

/// Turns an insert-only stream into a differential collection.
pub trait ToCollectionExt<'scope, D> {
    /// Each record is inserted (`+1`) at its tick.
    fn to_collection(self) -> VecCollection<'scope, Tick, Timed<D>, isize>;
}

impl<'scope, D: timely::ExchangeData> ToCollectionExt<'scope, D> for EventStream<'scope, D> {
    fn to_collection(self) -> VecCollection<'scope, Tick, Timed<D>, isize> {
        self.unary::<CapacityContainerBuilder<Vec<_>>, _, _, _>(Pipeline, "ToCollection", |_cap, _info| {
            move |input, output| {
                input.for_each_stamp(|cap, containers| {
                    let Some(cap) = cap.retain_least(0) else { return };
                    let time = *cap.time();
                    let mut session = output.session(&cap);
                    for container in containers {
                        session.give_iterator(container.drain(..).map(|record| (record, time, 1isize)));
                    }
                });
            }
        })
        .as_collection()
    }
}

/// Turns a collection's updates into a stream of [`Change`]s, each sent at its own tick.
pub trait ChangesExt<'scope, D> {
    fn changes(self) -> OutputStream<'scope, Change<D>>;
}

impl<'scope, D: differential_dataflow::ExchangeData + std::hash::Hash> ChangesExt<'scope, D> for VecCollection<'scope, Tick, D, isize> {
    fn changes(self) -> OutputStream<'scope, Change<D>> {
        self.consolidate().inner.unary::<CapacityContainerBuilder<Vec<_>>, _, _, _>(Pipeline, "Changes", |_cap, _info| {
            move |input, output| {
                input.for_each_stamp(|cap, containers| {
                    for container in containers {
                        for (data, time, diff) in container.drain(..) {
                            if diff != 0 {
                                output.session(&cap.delayed(&time, 0)).give(Change { time, diff, data });
                            }
                        }
                    }
                });
            }
        })
    }
}
