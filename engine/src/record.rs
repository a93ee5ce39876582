//! Records as they travel through a pipeline.

use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};
use timely::dataflow::StreamVec;

use crate::time::Tick;

/// A record with its exact event time (Unix ms). The timely timestamp it travels at is that time
/// rounded up to the tick; the exact time stays here so windows and joins can use it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timed<T> {
    pub time: i64,
    pub data: T,
}

impl<T> Timed<T> {
    pub fn new(time: i64, data: T) -> Self {
        Timed { time, data }
    }
}

/// A stream of timed records, stamped with ticks.
pub type EventStream<'scope, T> = StreamVec<'scope, Tick, Timed<T>>;

/// A stream of output records, stamped with the tick at which each became final.
pub type OutputStream<'scope, T> = StreamVec<'scope, Tick, T>;

/// A hash that is the same in every process and every run (unlike `RandomState`): it decides
/// which worker owns a key, so it must not change between the processes of a cluster.
#[inline]
pub fn stable_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut hasher = rustc_hash::FxHasher::default();
    key.hash(&mut hasher);
    // Fx leaves the low bits weak for short keys; mix so `% workers` spreads well.
    let mut x = hasher.finish();
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}
