//! # weir-pipelines: real pipelines written with Weir's public API
//!
//! Each module is one pipeline (or the data it runs on), runnable from the `weir` CLI:
//!
//! | module | what |
//! |---|---|
//! | [`clickstream`] | the e-commerce click-stream schema and its seeded generator (`weir gen`) |
//! | [`ctr_score`] | every click-stream event scored by the CTR model of `models/ctr/` (ONNX) |
//! | [`ctr_train`] | online CTR learning from delayed labels, publishing model versions (`weir train`) |
//! | [`window_stats`] | per-item views, clicks and CTR in 60-second tumbling windows (`weir run window-stats`) |
//!
//! A pipeline is a plain function from an [`weir_engine::EventStream`] to an output stream; the
//! source and sink are chosen by the caller, so the same function runs on a replay or live.

pub mod clickstream;
pub mod ctr_score;
pub mod ctr_train;
pub mod window_stats;

pub use weir_engine::timely;
