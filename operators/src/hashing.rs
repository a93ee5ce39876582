//! Feature hashing: maps `(field, value)` pairs to bucket indices, the same in every process.
//!
//! A hashed sparse feature needs no vocabulary: new users and items get a bucket the moment they
//! appear. The hash is FNV-1a over the field name, a separator and the value, so a model trained
//! in one run sees the same indices in every later run and on every worker.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= b as u64;
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// The bucket of `value` of feature `field` among `buckets`.
///
/// ```
/// use weir_operators::hashing::bucket;
/// let b = bucket("item", "i42", 1 << 20);
/// assert!(b < 1 << 20);
/// assert_eq!(b, bucket("item", "i42", 1 << 20));
/// assert_ne!(bucket("item", "i42", 1 << 20), bucket("user", "i42", 1 << 20));
/// ```
pub fn bucket(field: &str, value: &str, buckets: u32) -> u32 {
    FieldHasher::new(field).bucket(value, buckets)
}

/// [`bucket`] for one field, with the field's part of the hash computed once: a hashed
/// feature's field name is as long as its value, so this halves the work per value.
///
/// ```
/// use weir_operators::hashing::{FieldHasher, bucket};
/// let items = FieldHasher::new("item");
/// assert_eq!(items.bucket("i42", 4096), bucket("item", "i42", 4096));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct FieldHasher {
    /// FNV-1a over the field name and the separator.
    prefix: u64,
}

impl FieldHasher {
    pub fn new(field: &str) -> Self {
        FieldHasher { prefix: fnv1a(fnv1a(FNV_OFFSET, field.as_bytes()), &[0xff]) }
    }

    /// The bucket of `value` among `buckets`.
    #[inline]
    pub fn bucket(&self, value: &str, buckets: u32) -> u32 {
        Self::fold(fnv1a(self.prefix, value.as_bytes()), buckets)
    }

    /// The bucket of a finished hash among `buckets`.
    #[inline]
    fn fold(hash: u64, buckets: u32) -> u32 {
        assert!(buckets > 0, "a hashed feature needs at least one bucket");
        // Fold the high bits in: FNV's low bits alone correlate for short, similar strings.
        let folded = hash ^ (hash >> 32);
        if buckets.is_power_of_two() {
            // The same as the remainder, without a division.
            (folded & (buckets as u64 - 1)) as u32
        } else {
            (folded % buckets as u64) as u32
        }
    }
}

/// The bucket of a cross of two features (e.g. user segment × category): the bucket of
/// `left`, a unit separator (`\u{1f}`) and `right` as one value, hashed straight through
/// (FNV-1a is a stream) rather than joined into a new string per example.
pub fn cross_bucket(field: &str, left: &str, right: &str, buckets: u32) -> u32 {
    let hasher = FieldHasher::new(field);
    let hash = fnv1a(fnv1a(fnv1a(hasher.prefix, left.as_bytes()), &[0x1f]), right.as_bytes());
    FieldHasher::fold(hash, buckets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_similar_ids() {
        let buckets = 1024;
        let mut counts = vec![0u32; buckets as usize];
        for id in 0..100_000 {
            counts[bucket("item", &format!("i{id}"), buckets) as usize] += 1;
        }
        let expected = 100_000.0 / buckets as f64;
        let max = *counts.iter().max().unwrap() as f64;
        assert!(max < expected * 1.5, "max bucket load {max} vs mean {expected}");
    }

    #[test]
    fn the_field_hasher_is_the_plain_bucket() {
        // The reference: FNV-1a over field, separator and value in one pass, then the remainder.
        let reference = |field: &str, value: &str, buckets: u32| {
            let bytes: Vec<u8> = field.bytes().chain([0xff]).chain(value.bytes()).collect();
            let hash = fnv1a(FNV_OFFSET, &bytes);
            ((hash ^ (hash >> 32)) % buckets as u64) as u32
        };
        for buckets in [1, 7, 1000, 4096, 1 << 20, u32::MAX] {
            for value in ["", "i42", "u123456", "électronique"] {
                assert_eq!(FieldHasher::new("user").bucket(value, buckets), reference("user", value, buckets));
            }
        }
    }

    #[test]
    fn a_cross_is_the_bucket_of_the_joined_value() {
        for (left, right) in [("", ""), ("books", "3"), ("électronique", "12")] {
            let joined = format!("{left}\u{1f}{right}");
            assert_eq!(cross_bucket("price", left, right, 1000), bucket("price", &joined, 1000));
            assert_eq!(cross_bucket("price", left, right, 4096), bucket("price", &joined, 4096));
        }
    }

    #[test]
    fn cross_is_not_concatenation() {
        assert_ne!(cross_bucket("x", "ab", "c", 1 << 20), cross_bucket("x", "a", "bc", 1 << 20));
    }
}
