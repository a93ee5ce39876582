//! Windowed counts through differential dataflow: the path for inputs that can be retracted.
//!
//! It gives the same final counts as [`super::window::WindowExt::window_fold`] with a counting
//! fold (a test checks it), but it keeps every window's key in its arrangement and pays a fixed
//! cost per step, so it runs several times slower (see STACK.md): use it when the input is a
//! collection whose records can be retracted, and the timely operator otherwise.

use std::hash::Hash;

use differential_dataflow::VecCollection;

use super::window::{Window, WindowSpec};
use crate::record::Timed;
use crate::time::Tick;

/// Counts records per key and window; the count is updated (retract + insert) on every change.
pub trait WindowCountExt<'scope, D> {
    fn window_count<K, KF>(self, spec: WindowSpec, key: KF) -> VecCollection<'scope, Tick, ((K, Window), isize), isize>
    where
        K: differential_dataflow::ExchangeData + Hash,
        KF: Fn(&D) -> K + 'static;
}

impl<'scope, D: differential_dataflow::ExchangeData> WindowCountExt<'scope, D> for VecCollection<'scope, Tick, Timed<D>, isize> {
    fn window_count<K, KF>(self, spec: WindowSpec, key: KF) -> VecCollection<'scope, Tick, ((K, Window), isize), isize>
    where
        K: differential_dataflow::ExchangeData + Hash,
        KF: Fn(&D) -> K + 'static,
    {
        self.flat_map(move |record| {
            let key = key(&record.data);
            spec.windows_of(record.time).map(move |window| (key.clone(), window))
        })
        .count()
    }
}
