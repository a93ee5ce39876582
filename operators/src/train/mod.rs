//! Incremental fine-tuning: a model family defined in Rust, trained online on delayed labels,
//! published as versioned `.onnx` files (DESIGN.md §2).
//!
//! | module | what |
//! |---|---|
//! | [`model`] | hashed sparse features → linear part + embeddings → MLP head; forward/backward by hand |
//! | [`loss`] | binary cross-entropy, softmax cross-entropy, mean squared error |
//! | [`optim`] | SGD, AdaGrad, AdamW (lazy, sparse-aware), FTRL-Proximal |
//! | [`onnx`] | export to a valid `.onnx` file that any ONNX runtime serves |
//! | [`state`] | optimizer state files, so a later run continues from a version |
//! | [`trainer`] | the learning loop: progressive validation, guardrail, publishing |
//! | [`operator`] | [`TrainExt::train`]: the loop as a dataflow operator |
//! | [`offline`] | epochs over history with a train/validation/test split |
//!
//! Route (a) of the issue: the trainable model is defined here and exported to ONNX; a test
//! runs ONNX Runtime on the exported file and compares with [`Model::predict`].

pub mod example;
pub mod loss;
pub mod model;
pub mod offline;
pub mod onnx;
pub mod operator;
pub mod optim;
pub mod real;
pub mod state;
pub mod trainer;

use std::path::{Path, PathBuf};

pub use example::{Example, price_bucket};
pub use loss::Loss;
pub use model::{Model, ModelSpec};
pub use offline::{OfflineConfig, OfflineReport, Split, train_offline};
pub use operator::{TrainExt, VersionsExt};
pub use optim::Optimizer;
pub use trainer::{Guardrail, ManifestEntry, Prediction, Rejection, Trainable, Trainer, TrainerConfig, TrainerEvent, WindowMetrics};

/// What can go wrong when configuring or running a trainer.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid training configuration: {0}")]
    Config(String),
    #[error("example does not fit the model: {0}")]
    Shape(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("bad state file: {0}")]
    Format(String),
}

impl TrainError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        TrainError::Io { path: path.to_owned(), source }
    }
}
