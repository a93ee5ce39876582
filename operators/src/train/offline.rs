//! Offline training on history: the trainer's own loop over a bounded, time-ordered set of
//! examples, with several passes (epochs) and a deterministic train / validation / test split.
//! It writes the initial version (`initial.onnx`, `initial.state`) that a live run starts
//! from with [`TrainerConfig::init_from`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use weir_engine::Timed;

use super::TrainError;
use super::example::Example;
use super::trainer::{Trainer, TrainerConfig};
use crate::eval::Summary;

/// How examples are assigned to train / validation / test.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Split {
    /// Label time `< validation_from`: train; `< test_from`: validation; later: test.
    ByTime { validation_from: i64, test_from: i64 },
    /// By a hash of one sparse field's bucket (e.g. the user: a user's examples all fall in
    /// one part): `validation_percent` and `test_percent` of the keys, the rest trains.
    ByKeyHash { field: usize, validation_percent: u32, test_percent: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Part {
    Train,
    Validation,
    Test,
}

impl Split {
    pub fn part(&self, time: i64, example: &Example) -> Part {
        match *self {
            Split::ByTime { validation_from, test_from } => {
                if time < validation_from {
                    Part::Train
                } else if time < test_from {
                    Part::Validation
                } else {
                    Part::Test
                }
            }
            Split::ByKeyHash { field, validation_percent, test_percent } => {
                let key = example.sparse.get(field).copied().unwrap_or(0);
                let slot = (weir_engine::record::stable_hash(&key) % 100) as u32;
                if slot < validation_percent {
                    Part::Validation
                } else if slot < validation_percent + test_percent {
                    Part::Test
                } else {
                    Part::Train
                }
            }
        }
    }
}

/// Offline settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OfflineConfig {
    pub epochs: usize,
    pub split: Split,
}

/// What an offline run achieved.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OfflineReport {
    pub train_examples: usize,
    /// Validation metrics after each epoch.
    pub validation: Vec<Summary>,
    pub test: Summary,
    /// The written initial state, when the config has a run directory.
    pub initial_state: Option<PathBuf>,
}

/// Trains `epochs` passes over the training part (in label-time order, ties canonical),
/// evaluates after each, and writes the result as the initial version.
pub fn train_offline(config: TrainerConfig, offline: &OfflineConfig, mut examples: Vec<Timed<Example>>) -> Result<OfflineReport, TrainError> {
    if offline.epochs == 0 {
        return Err(TrainError::Config("offline training needs at least one epoch".into()));
    }
    examples.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.data.canonical_cmp(&b.data)));
    let (mut train, mut validation, mut test) = (Vec::new(), Vec::new(), Vec::new());
    for e in examples {
        match offline.split.part(e.time, &e.data) {
            Part::Train => train.push(e.data),
            Part::Validation => validation.push(e.data),
            Part::Test => test.push(e.data),
        }
    }
    let run_dir = config.run_dir.clone();
    let mut trainer = Trainer::new(config)?;
    let mut report = OfflineReport { train_examples: train.len(), validation: Vec::new(), test: Summary { examples: 0, logloss: f64::NAN, auc: None, positive_rate: f64::NAN }, initial_state: None };
    for _ in 0..offline.epochs {
        for e in &train {
            trainer.fit(e)?;
        }
        trainer.sync_serving();
        report.validation.push(trainer.evaluate(&validation));
    }
    report.test = trainer.evaluate(&test);
    if let Some(dir) = run_dir {
        let state = dir.join("initial.state");
        trainer.save(&state)?;
        write_onnx(&dir.join("initial.onnx"), &trainer)?;
        report.initial_state = Some(state);
    }
    Ok(report)
}

fn write_onnx(path: &Path, trainer: &Trainer) -> Result<(), TrainError> {
    std::fs::write(path, super::onnx::export(trainer.model(), 0, None)).map_err(|e| TrainError::io(path, e))
}
