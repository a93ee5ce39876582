//! # weir-operators: machine-learning operators for Weir
//!
//! This crate holds the operators that know about machine learning — featurization,
//! tokenization, ONNX scoring, incremental fine-tuning, evaluation — built on `weir-engine`'s
//! streams and knowing no pipeline. So far it has the feature hashing that the scoring and
//! training operators share, and the [`ModelVersion`] record through which a trainer publishes
//! versions to the scorers; the operators themselves arrive with their issues.

pub mod attribution;
pub mod eval;
pub mod hashing;
pub mod model_version;
pub mod train;

pub use model_version::ModelVersion;

// ONNX scoring, tokenization and text embeddings (issue 4): `runtime` (finding and loading
// ONNX Runtime, devices), `score` (the micro-batched, optionally versioned scoring operator),
// `tokenize`, `encoder` (MiniLM sentence embeddings), `embedding_table`, `arrow_tensor`.
mod batching;
pub mod runtime;
pub mod score;
pub mod tokenize;
pub mod encoder;
pub mod embedding_table;
pub mod arrow_tensor;
/// The `ort` crate at the version the scorer uses (for raw baselines and custom sessions).
pub use ort;
