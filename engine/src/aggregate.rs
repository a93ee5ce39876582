//! Order-independent accumulators for windows and running aggregates.
//!
//! Records of one key reach its worker in an order that depends on the number of workers and on
//! scheduling. Weir promises bit-identical results whatever that order, so every accumulator here
//! is exactly commutative: counts, min, max, and [`ExactSum`], which keeps the exact sum of its
//! `f64` inputs (Shewchuk's non-overlapping partials, as in Python's `math.fsum`) and rounds
//! once at the end. A user-written fold must have the same property.

use serde::{Deserialize, Serialize};

/// The exact sum of a multiset of `f64`, rounded once: the result does not depend on the order
/// in which values were added.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExactSum {
    partials: Vec<f64>,
    /// Non-finite inputs are kept aside: their sum is order-independent anyway.
    special: f64,
}

impl ExactSum {
    pub fn add(&mut self, mut x: f64) {
        if !x.is_finite() {
            self.special += x;
            return;
        }
        let mut kept = 0;
        for i in 0..self.partials.len() {
            let mut y = self.partials[i];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                self.partials[kept] = lo;
                kept += 1;
            }
            x = hi;
        }
        self.partials.truncate(kept);
        self.partials.push(x);
    }

    /// Merges another exact sum into this one.
    pub fn merge(&mut self, other: &ExactSum) {
        for &p in &other.partials {
            self.add(p);
        }
        self.special += other.special;
    }

    /// The correctly rounded sum.
    pub fn value(&self) -> f64 {
        if self.special != 0.0 || self.special.is_nan() {
            return self.special;
        }
        let parts = &self.partials;
        let Some(mut n) = parts.len().checked_sub(1) else { return 0.0 };
        let mut hi = parts[n];
        let mut lo = 0.0;
        while n > 0 {
            let x = hi;
            n -= 1;
            let y = parts[n];
            hi = x + y;
            let y_rounded = hi - x;
            lo = y - y_rounded;
            if lo != 0.0 {
                break;
            }
        }
        // Round half-even correctly when the remaining partials push past a tie.
        if n > 0 && ((lo < 0.0 && parts[n - 1] < 0.0) || (lo > 0.0 && parts[n - 1] > 0.0)) {
            let y = lo * 2.0;
            let x = hi + y;
            if y == x - hi {
                hi = x;
            }
        }
        hi
    }
}

/// Count, sum, min, max and mean of `f64` values, exactly and order-independently.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub count: u64,
    sum: ExactSum,
    min: Option<f64>,
    max: Option<f64>,
}

impl Stats {
    pub fn add(&mut self, value: f64) {
        self.count += 1;
        self.sum.add(value);
        self.min = Some(self.min.map_or(value, |m| m.min(value)));
        self.max = Some(self.max.map_or(value, |m| m.max(value)));
    }
    pub fn merge(&mut self, other: &Stats) {
        self.count += other.count;
        self.sum.merge(&other.sum);
        for v in other.min.iter().chain(other.max.iter()) {
            self.min = Some(self.min.map_or(*v, |m| m.min(*v)));
            self.max = Some(self.max.map_or(*v, |m| m.max(*v)));
        }
    }
    pub fn sum(&self) -> f64 {
        self.sum.value()
    }
    pub fn min(&self) -> Option<f64> {
        self.min
    }
    pub fn max(&self) -> Option<f64> {
        self.max
    }
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum() / self.count as f64)
    }
    /// A flat, serializable summary.
    pub fn summary(&self) -> StatsSummary {
        StatsSummary { count: self.count, sum: self.sum(), min: self.min, max: self.max, mean: self.mean() }
    }
}

/// What a [`Stats`] accumulator reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatsSummary {
    pub count: u64,
    pub sum: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exact_sum_beats_naive_rounding() {
        let mut sum = ExactSum::default();
        for v in [1e100, 1.0, -1e100, 1e-3] {
            sum.add(v);
        }
        assert_eq!(sum.value(), 1.001);
    }

    proptest! {
        #[test]
        fn sum_is_order_independent(mut values in proptest::collection::vec(-1e12f64..1e12, 0..60), seed in any::<u64>()) {
            let mut forward = ExactSum::default();
            values.iter().for_each(|v| forward.add(*v));
            // A seeded shuffle.
            let mut state = seed | 1;
            for i in (1..values.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                values.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let mut shuffled = ExactSum::default();
            values.iter().for_each(|v| shuffled.add(*v));
            prop_assert_eq!(forward.value().to_bits(), shuffled.value().to_bits());
        }

        #[test]
        fn stats_merge_equals_adding(a in proptest::collection::vec(-1e6f64..1e6, 0..30), b in proptest::collection::vec(-1e6f64..1e6, 0..30)) {
            let mut left = Stats::default();
            a.iter().for_each(|v| left.add(*v));
            let mut right = Stats::default();
            b.iter().for_each(|v| right.add(*v));
            left.merge(&right);
            let mut all = Stats::default();
            a.iter().chain(b.iter()).for_each(|v| all.add(*v));
            prop_assert_eq!(left.summary(), all.summary());
        }
    }
}
