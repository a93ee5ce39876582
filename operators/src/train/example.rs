//! Training examples: hashed sparse features, dense features, an optional text embedding, and a
//! label, plus the canonical order in which examples of one timestamp are applied.

use std::cmp::Ordering;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One labelled example, as the trainer consumes it.
///
/// `sparse` holds one hashed bucket per sparse field, in field order (all fields share one
/// hashed space of [`crate::train::ModelSpec::buckets`] rows; the field name is part of the
/// hash, see [`crate::hashing`]). Its length is the model's field count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Event time (Unix ms) of the impression the label belongs to.
    pub impression_time: i64,
    /// Identifies the impression's subject for joins after training (e.g. a stable hash of
    /// user and item); not a feature.
    pub key: u64,
    /// Bucket per sparse field.
    pub sparse: Vec<u32>,
    /// Dense features (length [`crate::train::ModelSpec::dense`]).
    pub dense: Vec<f32>,
    /// Text embedding of the item title (length [`crate::train::ModelSpec::text_dim`]); shared,
    /// since an item's embedding is computed once and reused by every example of the item.
    #[serde(with = "shared_floats")]
    pub text: Option<Arc<Vec<f32>>>,
    /// Binary: 0 or 1; softmax: the class index; regression: the target.
    pub label: f32,
}

impl Example {
    pub fn new(impression_time: i64, sparse: Vec<u32>, label: f32) -> Self {
        Example { impression_time, key: 0, sparse, dense: Vec::new(), text: None, label }
    }

    pub fn with_key(mut self, key: u64) -> Self {
        self.key = key;
        self
    }

    pub fn with_dense(mut self, dense: Vec<f32>) -> Self {
        self.dense = dense;
        self
    }

    /// A total order on the content, used to apply the examples of one timestamp in an order
    /// that does not depend on how they arrived (worker count, source batches, replay speed).
    /// Floats compare by their bits, so the order is total even with NaN.
    pub fn canonical_cmp(&self, other: &Self) -> Ordering {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        self.impression_time
            .cmp(&other.impression_time)
            .then_with(|| self.key.cmp(&other.key))
            .then_with(|| self.sparse.cmp(&other.sparse))
            .then_with(|| self.label.to_bits().cmp(&other.label.to_bits()))
            .then_with(|| self.dense.len().cmp(&other.dense.len()))
            .then_with(|| bits(&self.dense).cmp(&bits(&other.dense)))
            .then_with(|| {
                let a = self.text.as_deref().map(|t| bits(t));
                let b = other.text.as_deref().map(|t| bits(t));
                a.cmp(&b)
            })
    }
}

/// Serde for `Option<Arc<Vec<f32>>>` without serde's `rc` feature.
mod shared_floats {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Arc<Vec<f32>>>, serializer: S) -> Result<S::Ok, S::Error> {
        v.as_deref().serialize(serializer)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Arc<Vec<f32>>>, D::Error> {
        Option::<Vec<f32>>::deserialize(deserializer).map(|v| v.map(Arc::new))
    }
}

/// Log-scale bucket of a price (`0` for prices under 1, then one bucket per factor √2), so
/// that the price becomes a sparse feature whose buckets mean the same in every run.
///
/// ```
/// use weir_operators::train::price_bucket;
/// assert_eq!(price_bucket(0.5), 0);
/// assert!(price_bucket(10.0) < price_bucket(100.0));
/// assert_eq!(price_bucket(f64::NAN), 0);
/// ```
pub fn price_bucket(price: f64) -> u32 {
    if !(price.is_finite() && price >= 1.0) {
        return 0;
    }
    1 + (2.0 * price.log2()).floor().min(62.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_order_is_total_and_content_based() {
        let a = Example::new(5, vec![1, 2], 1.0);
        let b = Example::new(5, vec![1, 3], 0.0);
        let c = Example::new(4, vec![9, 9], 0.0).with_dense(vec![f32::NAN]);
        let mut xs = vec![b.clone(), c.clone(), a.clone()];
        xs.sort_by(Example::canonical_cmp);
        let order: Vec<i64> = xs.iter().map(|e| e.impression_time).collect();
        assert_eq!(order, vec![4, 5, 5]);
        assert_eq!(xs[1], a);
        assert_eq!(xs[2], b);
        // NaN compares by bits: equal to itself, so the order stays total.
        assert_eq!(c.canonical_cmp(&c), Ordering::Equal);
    }
}
