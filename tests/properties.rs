//! Property: for any input within the allowed disorder, window-stats equals a plain loop,
//! whatever the number of workers and the size of the source's increments.

mod common;

use common::reference_window_stats;
use proptest::prelude::*;
use weir::pipelines::clickstream::EventKind;
use weir::pipelines::window_stats::{ItemEvent, window_stats};
use weir::prelude::*;

fn kind() -> impl Strategy<Value = EventKind> {
    prop_oneof![Just(EventKind::Impression), Just(EventKind::Click), Just(EventKind::Purchase)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn windows_equal_a_plain_loop(
        steps in proptest::collection::vec((0i64..20_000, kind(), 0u8..6), 1..300),
        workers in 1usize..4,
        chunk in 1usize..50,
    ) {
        // Times move forward by random steps, so the input is in order.
        let mut time = 0;
        let mut records = Vec::new();
        let mut triples = Vec::new();
        for (step, kind, item) in steps {
            time += step;
            let item = format!("i{item}");
            records.push(Timed::new(time, ItemEvent { event: kind, item: item.as_str().into() }));
            triples.push((time, kind, item));
        }
        let captured = MemorySink::new();
        Pipeline::new(Execution::Threads(workers))
            .run(Source::Memory(MemorySource::new(records).chunk(chunk)), Sink::Memory(captured.clone()), window_stats)
            .unwrap();
        prop_assert_eq!(captured.records(), reference_window_stats(&triples, 60_000));
    }
}
