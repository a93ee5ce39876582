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
    assert!(buckets > 0, "a hashed feature needs at least one bucket");
    let hash = fnv1a(fnv1a(fnv1a(FNV_OFFSET, field.as_bytes()), &[0xff]), value.as_bytes());
    // Fold the high bits in: FNV's low bits alone correlate for short, similar strings.
    ((hash ^ (hash >> 32)) % buckets as u64) as u32
}

/// The bucket of a cross of two features (e.g. user segment × category).
pub fn cross_bucket(field: &str, left: &str, right: &str, buckets: u32) -> u32 {
    let mut value = String::with_capacity(left.len() + right.len() + 1);
    value.push_str(left);
    value.push('\u{1f}');
    value.push_str(right);
    bucket(field, &value, buckets)
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
    fn cross_is_not_concatenation() {
        assert_ne!(cross_bucket("x", "ab", "c", 1 << 20), cross_bucket("x", "a", "bc", 1 << 20));
    }
}
