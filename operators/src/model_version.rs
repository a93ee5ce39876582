//! Model versions as data (DESIGN.md §2).
//!
//! A trained model version is a record with a timestamp: the event time at which it would have
//! been published. A record with event time `t` is scored by the newest version with
//! `published_at < t` (strictly before). The trainer produces these records; the scorer takes
//! them as a second input and holds records until the version stream's frontier has passed
//! their time, so scores do not depend on wall-clock timing.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One published version of a model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelVersion {
    /// Increases by one with every published version of a model (the first is 1).
    pub version: u64,
    /// Event time (Unix ms) at which the version becomes visible: records with a later event
    /// time may be scored by it.
    pub published_at: i64,
    /// The model as a complete, valid ONNX file: any ONNX runtime can serve it. Shared, so that
    /// broadcasting a version to every scorer of a process copies no bytes.
    #[serde(with = "shared_bytes")]
    pub onnx: Arc<Vec<u8>>,
}

/// Serde for `Arc<Vec<u8>>` without serde's `rc` feature (which would rebuild every crate).
mod shared_bytes {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Arc<Vec<u8>>, serializer: S) -> Result<S::Ok, S::Error> {
        bytes.as_slice().serialize(serializer)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Arc<Vec<u8>>, D::Error> {
        Vec::<u8>::deserialize(deserializer).map(Arc::new)
    }
}

impl ModelVersion {
    pub fn new(version: u64, published_at: i64, onnx: Vec<u8>) -> Self {
        ModelVersion { version, published_at, onnx: Arc::new(onnx) }
    }

    /// Whether a record with event time `time` may be scored by this version.
    pub fn serves(&self, time: i64) -> bool {
        self.published_at < time
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_serves_only_strictly_later_records() {
        let v = ModelVersion::new(1, 1_000, vec![]);
        assert!(!v.serves(999));
        assert!(!v.serves(1_000));
        assert!(v.serves(1_001));
    }
}
