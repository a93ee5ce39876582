//! Joining a stream with a table that is itself a differential collection.
//!
//! The table (an item catalog replayed from files, a changelog, a batch job's output) may change:
//! an update retracts the old row and inserts the new one, and the join retracts and re-emits
//! exactly the join results of the affected key — for every event seen so far, not only for
//! events after the update. That is what a backtest over corrected data needs.

use std::hash::Hash;

use differential_dataflow::VecCollection;

use super::collection::ToCollectionExt;
use crate::record::{EventStream, Timed};
use crate::time::Tick;

/// Joins events with a table by key.
///
/// ```no_run
/// use weir_engine::prelude::*;
/// use differential_dataflow::input::Input;
/// use timely::dataflow::operators::ToStream;
///
/// timely::example(|scope| {
///     let events = vec![Timed::new(5, ("i1".to_string(), 1u32))].to_stream(scope);
///     let (mut table, catalog) = scope.new_collection::<(String, String), isize>();
///     table.insert(("i1".to_string(), "shoes".to_string()));
///     table.close();
///     events.join_table(catalog, |e: &(String, u32)| e.0.clone())
///         .inspect(|x| println!("{x:?}"));
/// });
/// ```
pub trait JoinTableExt<'scope, D> {
    fn join_table<K, V, KF>(self, table: VecCollection<'scope, Tick, (K, V), isize>, key: KF) -> VecCollection<'scope, Tick, (Timed<D>, V), isize>
    where
        K: differential_dataflow::ExchangeData + Hash,
        V: differential_dataflow::ExchangeData,
        KF: Fn(&D) -> K + 'static;
}

impl<'scope, D: differential_dataflow::ExchangeData + timely::ExchangeData> JoinTableExt<'scope, D> for EventStream<'scope, D> {
    fn join_table<K, V, KF>(self, table: VecCollection<'scope, Tick, (K, V), isize>, key: KF) -> VecCollection<'scope, Tick, (Timed<D>, V), isize>
    where
        K: differential_dataflow::ExchangeData + Hash,
        V: differential_dataflow::ExchangeData,
        KF: Fn(&D) -> K + 'static,
    {
        self.to_collection().map(move |record| (key(&record.data), record)).join(table).map(|(_key, (record, value))| (record, value))
    }
}
