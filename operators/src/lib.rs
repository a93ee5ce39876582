//! # weir-operators: machine-learning operators for Weir
//!
//! Operators that know about machine learning, built on `weir-engine`'s streams and collections
//! and knowing no pipeline. Each is an extension trait in its own module:
//!
//! | module | what |
//! |---|---|
//! | [`runtime`] | finding and loading the ONNX Runtime library (never a panic), CPU / CUDA device choice |
//! | [`score`] | micro-batched ONNX scoring, with a fixed model or a stream of [`ModelVersion`]s |
//! | [`tokenize`], [`encoder`] | WordPiece tokenization and the MiniLM sentence encoder (384-d embeddings) |
//! | [`embedding_table`] | an id → embedding collection that re-encodes only new or changed texts |
//! | [`score_columns`] | ONNX scoring of Arrow record batches: feature columns read in place, scores appended as columns |
//! | [`arrow_tensor`] | zero-copy tensors from Arrow `FixedSizeList<Float32>` columns |
//! | [`attribution`] | impressions joined with later clicks: labelled examples at the time labels are known |
//! | [`train`] | the hashed model family, losses, optimizers, ONNX export and the incremental trainer |
//! | [`eval`] | logloss, AUC and progressive validation |
//! | [`hashing`] | feature hashing shared by scoring and training |
//! | [`model_version`] | the record through which a trainer publishes versions to the scorers |

mod arrival;
pub mod arrow_tensor;
pub mod attribution;
mod batching;
pub mod embedding_table;
pub mod encoder;
pub mod eval;
pub mod hashing;
pub mod model_version;
pub mod runtime;
pub mod score;
pub mod score_columns;
pub mod tokenize;
pub mod train;

pub use model_version::ModelVersion;
pub use ort;
