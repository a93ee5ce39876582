//! A record-by-record map that keeps the input's containers: one output container per input
//! container, built at its final size and handed on whole.
//!
//! timely's `Map::map` pushes each result into a container builder that cuts containers at
//! 8 KiB (about 80 output records of 100 bytes), so a tick of a few thousand records reaches
//! the next operator as dozens of messages, and each record pays a capacity check. Between a
//! scorer or a window and the sink, that was a visible share of a pipeline at a million
//! records a second.

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use crate::record::OutputStream;

/// Maps every record, container by container.
///
/// ```
/// use timely::dataflow::operators::{ToStream, Capture, capture::Extract};
/// use weir_engine::operators::MapRecordsExt;
///
/// let captured = timely::example(|scope| vec![1u32, 2, 3].to_stream(scope).map_records(|x| x * 10).capture());
/// let doubled: Vec<u32> = captured.extract().into_iter().flat_map(|(_, data)| data).collect();
/// assert_eq!(doubled, vec![10, 20, 30]);
/// ```
pub trait MapRecordsExt<'scope, D> {
    fn map_records<R: Clone + 'static, F: FnMut(D) -> R + 'static>(self, f: F) -> OutputStream<'scope, R>;
}

impl<'scope, D: Clone + 'static> MapRecordsExt<'scope, D> for OutputStream<'scope, D> {
    fn map_records<R: Clone + 'static, F: FnMut(D) -> R + 'static>(self, mut f: F) -> OutputStream<'scope, R> {
        self.unary::<CapacityContainerBuilder<Vec<R>>, _, _, _>(Pipeline, "MapRecords", move |_capability, _info| {
            move |input, output| {
                input.for_each_stamp(|capability, containers| {
                    let mut session = output.session(&capability);
                    for container in containers {
                        let mut mapped: Vec<R> = container.drain(..).map(&mut f).collect();
                        session.give_container(&mut mapped);
                    }
                });
            }
        })
    }
}
