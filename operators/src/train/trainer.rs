//! The trainer: one model's sequential learning loop, independent of any dataflow.
//!
//! For each labelled example, in the order given (the operator sorts each timestamp's examples
//! canonically first):
//!
//! 1. **progressive validation**: predict with the version that was serving when the
//!    impression happened (the newest promoted strictly before it, as the scorer does; the
//!    initial parameters before the first), record log loss / AUC;
//! 2. **guardrail**: while a candidate version waits, score the example with it too; after
//!    [`Guardrail::slice`] examples the candidate is promoted if its log loss on that slice is
//!    at most the serving version's plus [`Guardrail::margin`], otherwise rejected and reported;
//! 3. **train**: forward, loss, backward; sparse rows are updated at once, the dense head's
//!    gradients are averaged over [`TrainerConfig::batch_size`] examples;
//! 4. **publish**: every [`TrainerConfig::publish_every_examples`] examples or
//!    [`TrainerConfig::publish_every_ms`] of event time, the current parameters become a
//!    candidate version (promoted at once without a guardrail).
//!
//! A promoted version is a [`ModelVersion`] stamped with the event time of the example that
//! completed it, written as `.onnx` (plus optimizer state) under [`TrainerConfig::run_dir`].
//! The same code trains offline ([`super::offline`]) and inside the dataflow operator
//! ([`super::operator`]).

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::example::Example;
use super::loss::Loss;
use super::model::{HeadGrads, Model, ModelSpec, Workspace};
use super::optim::Optimizer;
use super::state::{self, OptState};
use super::TrainError;
use crate::eval::{Progressive, Summary, logloss};
use crate::model_version::ModelVersion;

/// Which parameter groups learn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trainable {
    pub linear: bool,
    pub embeddings: bool,
    /// The MLP head and the bias.
    pub head: bool,
}

impl Trainable {
    pub const ALL: Trainable = Trainable { linear: true, embeddings: true, head: true };
    /// Fine-tune only the head (and bias); embedding tables and linear weights stay frozen.
    pub const HEAD_ONLY: Trainable = Trainable { linear: false, embeddings: false, head: true };
}

/// Promotion rule for candidate versions.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Guardrail {
    /// Examples a candidate is evaluated on before promotion (0: promote at once).
    pub slice: usize,
    /// A candidate whose log loss exceeds the serving version's by more than this is rejected.
    pub margin: f64,
}

impl Default for Guardrail {
    fn default() -> Self {
        Guardrail { slice: 2_000, margin: 0.01 }
    }
}

/// Everything that decides what a trainer does.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainerConfig {
    pub spec: ModelSpec,
    /// Optimizer of the embeddings and the head.
    pub optimizer: Optimizer,
    /// Optimizer of the linear part (FTRL-Proximal is the classic choice).
    pub linear_optimizer: Optimizer,
    pub trainable: Trainable,
    /// Examples per dense-head update (sparse rows are updated per example).
    pub batch_size: usize,
    pub publish_every_examples: Option<u64>,
    pub publish_every_ms: Option<i64>,
    pub guardrail: Guardrail,
    /// Promote no version above this one (a run pinned to a version).
    pub pin_version: Option<u64>,
    /// Length of the event-time windows of the progressive metrics.
    pub metrics_every_ms: i64,
    /// Where versions are written (`v000001.onnx`, `v000001.state`, `manifest.jsonl`).
    pub run_dir: Option<PathBuf>,
    /// Also write the optimizer state of every version (needed to resume from it).
    pub save_state: bool,
    /// Start from this state file (written by an earlier run) instead of fresh weights.
    pub init_from: Option<PathBuf>,
    /// Emit one [`TrainerEvent::Prediction`] per example (progressive predictions).
    pub emit_predictions: bool,
    /// Fault injection for tests: corrupt the weights of this candidate version.
    pub corrupt_candidate: Option<u64>,
    /// The longest delay between an impression and its label (the attribution window): how
    /// far back the versions used for progressive predictions are kept.
    pub max_label_delay_ms: i64,
    /// Freeze the version serving at this event time as a baseline, and also predict every
    /// later impression with it ([`Prediction::baseline`]): how much does learning on help?
    pub baseline_from_ms: Option<i64>,
}

impl TrainerConfig {
    pub fn new(spec: ModelSpec) -> Self {
        TrainerConfig {
            spec,
            optimizer: Optimizer::adamw(0.002),
            linear_optimizer: Optimizer::Ftrl { alpha: 0.05, beta: 1.0, l1: 0.0, l2: 0.0 },
            trainable: Trainable::ALL,
            batch_size: 16,
            publish_every_examples: Some(20_000),
            publish_every_ms: None,
            guardrail: Guardrail::default(),
            pin_version: None,
            metrics_every_ms: 60_000,
            run_dir: None,
            save_state: true,
            init_from: None,
            emit_predictions: false,
            corrupt_candidate: None,
            max_label_delay_ms: 30 * 60 * 1000,
            baseline_from_ms: None,
        }
    }
}

/// What a trainer reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TrainerEvent {
    /// A promoted version, for the scorers.
    Version(ModelVersion),
    /// A candidate the guardrail (or a pin) kept from serving.
    Rejected(Rejection),
    /// Progressive metrics of one event-time window.
    Metrics(WindowMetrics),
    /// One progressive prediction (with [`TrainerConfig::emit_predictions`]).
    Prediction(Prediction),
    /// An example that does not fit the model (dead letter).
    Invalid { time: i64, reason: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    pub version: u64,
    pub time: i64,
    pub candidate_logloss: f64,
    pub serving_logloss: f64,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowMetrics {
    pub window_start: i64,
    pub window_end: i64,
    pub serving_version: u64,
    #[serde(flatten)]
    pub summary: Summary,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Label time.
    pub time: i64,
    pub impression_time: i64,
    pub label: f32,
    /// [`Example::key`].
    pub key: u64,
    /// The serving version's first output (probability for binary models).
    pub prediction: f32,
    pub version: u64,
    /// The frozen baseline's first output (see [`TrainerConfig::baseline_from_ms`]).
    pub baseline: Option<f32>,
}

/// A line of `manifest.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub version: u64,
    pub promoted: bool,
    pub published_at: i64,
    pub examples: u64,
    pub candidate_logloss: Option<f64>,
    pub serving_logloss: Option<f64>,
    /// Mean and max event time between a label and the version that first includes it.
    pub version_lag_mean_ms: Option<f64>,
    pub version_lag_max_ms: Option<i64>,
    pub onnx: String,
}

struct Candidate {
    version: u64,
    model: Model<f32>,
    state: Option<OptState>,
    candidate_loss: f64,
    serving_loss: f64,
    seen: usize,
    examples: u64,
    /// Label times of the examples this candidate includes that no promoted version does.
    label_times: Vec<i64>,
}

/// One model's learning loop.
pub struct Trainer {
    config: TrainerConfig,
    model: Model<f32>,
    state: OptState,
    ws: Workspace<f32>,
    serve_ws: Workspace<f32>,
    head_grads: HeadGrads<f32>,
    grad32: Vec<f32>,
    serving: Arc<Model<f32>>,
    serving_version: u64,
    /// Promoted versions that may still serve an impression whose label is pending:
    /// `(published_at, version, model)`, oldest first; the last is the serving one.
    history: VecDeque<(i64, u64, Arc<Model<f32>>)>,
    baseline: Option<Arc<Model<f32>>>,
    candidate: Option<Candidate>,
    next_version: u64,
    examples: u64,
    since_publish: u64,
    last_publish_ms: Option<i64>,
    /// Label times of examples not yet in any candidate.
    pending_label_times: Vec<i64>,
    window: Progressive,
    window_start: Option<i64>,
    last_time: i64,
}

impl Trainer {
    pub fn new(config: TrainerConfig) -> Result<Self, TrainError> {
        let (model, state, serving_version) = match &config.init_from {
            Some(path) => {
                let loaded = state::load(path)?;
                if loaded.model.spec != config.spec {
                    return Err(TrainError::Config(format!("{} holds a model of another shape than the configured one", path.display())));
                }
                // A state written under other optimizers cannot continue: start their slots fresh.
                let fresh = OptState::new(&loaded.model, &config.optimizer, &config.linear_optimizer);
                let state = if fresh.same_layout(&loaded.state) { loaded.state } else { fresh };
                (loaded.model, state, loaded.version)
            }
            None => {
                let model = Model::<f32>::new(config.spec.clone())?;
                let state = OptState::new(&model, &config.optimizer, &config.linear_optimizer);
                (model, state, 0)
            }
        };
        if config.batch_size == 0 {
            return Err(TrainError::Config("batch_size must be at least 1".into()));
        }
        if config.metrics_every_ms <= 0 {
            return Err(TrainError::Config("metrics_every_ms must be positive".into()));
        }
        if let Some(dir) = &config.run_dir {
            std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
        }
        Ok(Trainer {
            ws: model.workspace(),
            serve_ws: model.workspace(),
            head_grads: HeadGrads::zeros(&model.spec),
            grad32: vec![0.0; model.spec.outputs.max(model.spec.embedding_dim)],
            serving: Arc::new(model.clone()),
            serving_version,
            history: VecDeque::from([(i64::MIN, serving_version, Arc::new(model.clone()))]),
            baseline: None,
            candidate: None,
            next_version: serving_version + 1,
            examples: 0,
            since_publish: 0,
            last_publish_ms: None,
            pending_label_times: Vec::new(),
            window: Progressive::default(),
            window_start: None,
            last_time: i64::MIN,
            model,
            state,
            config,
        })
    }

    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }
    /// The parameters being trained (not necessarily served yet).
    pub fn model(&self) -> &Model<f32> {
        &self.model
    }
    /// The version progressive predictions are made with.
    pub fn serving(&self) -> (u64, &Model<f32>) {
        (self.serving_version, self.serving.as_ref())
    }
    pub fn examples(&self) -> u64 {
        self.examples
    }

    /// Processes one example whose label became known at event time `time`.
    pub fn process(&mut self, time: i64, example: &Example, out: &mut Vec<TrainerEvent>) -> Result<(), TrainError> {
        if let Err(e) = self.config.spec.check(example) {
            out.push(TrainerEvent::Invalid { time, reason: e.to_string() });
            return Ok(());
        }
        self.roll_window(time, out);
        self.last_time = self.last_time.max(time);

        // 1. Progressive validation with the version that served the impression.
        self.prune_history(time);
        let (version, at_impression) = self.version_at(example.impression_time);
        at_impression.predict_into(example, &mut self.serve_ws);
        let served = self.serve_ws.logits[0];
        if self.config.spec.loss == Loss::BinaryCrossEntropy {
            self.window.add(served as f64, example.label == 1.0);
        }
        let baseline = self.baseline_prediction(example);
        if self.config.emit_predictions {
            out.push(TrainerEvent::Prediction(Prediction {
                time,
                impression_time: example.impression_time,
                key: example.key,
                label: example.label,
                prediction: served,
                version,
                baseline,
            }));
        }
        // The serving version's loss, for the guardrail (usually the same model: no recompute).
        let serving_loss = if self.candidate.is_none() {
            0.0
        } else {
            if !Arc::ptr_eq(&at_impression, &self.serving) || baseline.is_some() {
                self.serving.predict_into(example, &mut self.serve_ws);
            }
            prediction_loss(self.config.spec.loss, &self.serve_ws.logits, example.label)
        };

        // 2. Guardrail evaluation of a waiting candidate.
        if let Some(candidate) = &mut self.candidate {
            candidate.model.predict_into(example, &mut self.ws);
            let loss = prediction_loss(self.config.spec.loss, &self.ws.logits, example.label);
            candidate.candidate_loss += loss;
            candidate.serving_loss += serving_loss;
            candidate.seen += 1;
            if candidate.seen >= self.config.guardrail.slice {
                self.decide(time, out)?;
            }
        }

        // 3. Train.
        self.train_step(example);
        self.examples += 1;
        self.since_publish += 1;
        self.pending_label_times.push(time);

        // 4. Publish a candidate when due.
        let due_by_count = self.config.publish_every_examples.is_some_and(|k| self.since_publish >= k);
        let due_by_time = self.config.publish_every_ms.is_some_and(|t| time - *self.last_publish_ms.get_or_insert(time) >= t);
        if (due_by_count || due_by_time) && self.candidate.is_none() {
            self.make_candidate(time, out)?;
        }
        Ok(())
    }

    /// The newest version promoted strictly before `time`.
    fn version_at(&self, time: i64) -> (u64, Arc<Model<f32>>) {
        let at = self.history.iter().rposition(|(published, _, _)| *published < time).unwrap_or(0);
        let (_, version, model) = &self.history[at];
        (*version, model.clone())
    }

    /// Drops versions no pending label can need: labels arrive in time order, so impressions
    /// still to come happened after `time - max_label_delay_ms`.
    fn prune_history(&mut self, time: i64) {
        let horizon = time.saturating_sub(self.config.max_label_delay_ms);
        while self.history.len() >= 2 && self.history[1].0 < horizon {
            self.history.pop_front();
        }
    }

    fn baseline_prediction(&mut self, example: &Example) -> Option<f32> {
        let from = self.config.baseline_from_ms?;
        if example.impression_time < from {
            return None;
        }
        if self.baseline.is_none() {
            self.baseline = Some(self.version_at(from).1);
        }
        let model = self.baseline.as_ref().expect("set");
        model.predict_into(example, &mut self.serve_ws);
        Some(self.serve_ws.logits[0])
    }

    fn train_step(&mut self, example: &Example) {
        let spec = &self.model.spec;
        self.model.forward(example, &mut self.ws);
        let logits = std::mem::take(&mut self.ws.logits);
        spec.loss.loss_and_grad(&logits, example.label, &mut self.ws.dlogits);
        self.ws.logits = logits;
        let trainable = self.config.trainable;
        if trainable.head || trainable.embeddings {
            self.model.backward(&mut self.ws, &mut self.head_grads);
        } else {
            self.head_grads.examples += 1;
        }
        let outputs = spec.outputs;
        let e = spec.embedding_dim;
        if trainable.linear && spec.linear {
            for &row in &example.sparse {
                self.config.linear_optimizer.update_row(&mut self.model.params.linear, &mut self.state.linear, row as usize, &self.ws.dlogits[..outputs]);
            }
        }
        if trainable.embeddings && e > 0 && !self.model.params.layers.is_empty() {
            for (f, &row) in example.sparse.iter().enumerate() {
                self.grad32[..e].copy_from_slice(&self.ws.dacts[0][f * e..(f + 1) * e]);
                self.config.optimizer.update_row(&mut self.model.params.embeddings, &mut self.state.embeddings, row as usize, &self.grad32[..e]);
            }
        }
        if self.head_grads.examples >= self.config.batch_size {
            self.apply_head();
        }
    }

    /// Applies the averaged head gradients (if any) and clears them.
    fn apply_head(&mut self) {
        let n = self.head_grads.examples;
        if n == 0 {
            return;
        }
        if self.config.trainable.head {
            let scale = 1.0 / n as f32;
            let opt = self.config.optimizer;
            for (l, (gw, gb)) in self.head_grads.layers.iter_mut().enumerate() {
                gw.iter_mut().for_each(|g| *g *= scale);
                gb.iter_mut().for_each(|g| *g *= scale);
                let layer = &mut self.model.params.layers[l];
                let (sw, sb) = &mut self.state.layers[l];
                opt.update_row(&mut layer.weight, sw, 0, gw);
                if !gb.is_empty() {
                    opt.update_row(&mut layer.bias, sb, 0, gb);
                }
            }
            self.head_grads.bias.iter_mut().for_each(|g| *g *= scale);
            opt.update_row(&mut self.model.params.bias, &mut self.state.bias, 0, &self.head_grads.bias);
        }
        self.head_grads.clear();
    }

    fn make_candidate(&mut self, time: i64, out: &mut Vec<TrainerEvent>) -> Result<(), TrainError> {
        self.apply_head();
        let version = self.next_version;
        self.next_version += 1;
        let mut model = self.model.clone();
        if self.config.corrupt_candidate == Some(version) {
            corrupt(&mut model);
        }
        let state = self.config.save_state.then(|| self.state.clone());
        self.candidate = Some(Candidate {
            version,
            model,
            state,
            candidate_loss: 0.0,
            serving_loss: 0.0,
            seen: 0,
            examples: self.examples,
            label_times: std::mem::take(&mut self.pending_label_times),
        });
        self.since_publish = 0;
        self.last_publish_ms = Some(time);
        if self.config.guardrail.slice == 0 {
            self.decide(time, out)?;
        }
        Ok(())
    }

    /// Promotes or rejects the waiting candidate, at event time `time`.
    fn decide(&mut self, time: i64, out: &mut Vec<TrainerEvent>) -> Result<(), TrainError> {
        let Some(candidate) = self.candidate.take() else { return Ok(()) };
        let seen = candidate.seen.max(1) as f64;
        let (cand_loss, serv_loss) = (candidate.candidate_loss / seen, candidate.serving_loss / seen);
        let evaluated = candidate.seen > 0;
        let worse = evaluated && !(cand_loss <= serv_loss + self.config.guardrail.margin);
        let pinned = self.config.pin_version.is_some_and(|pin| candidate.version > pin);
        let promoted = !worse && !pinned;
        let lags: Vec<i64> = candidate.label_times.iter().map(|&t| time - t).collect();
        let onnx_name = format!("v{:06}.onnx", candidate.version);
        let mut entry = ManifestEntry {
            version: candidate.version,
            promoted,
            published_at: time,
            examples: candidate.examples,
            candidate_logloss: evaluated.then_some(cand_loss),
            serving_logloss: evaluated.then_some(serv_loss),
            version_lag_mean_ms: None,
            version_lag_max_ms: None,
            onnx: onnx_name.clone(),
        };
        if promoted {
            entry.version_lag_mean_ms = (!lags.is_empty()).then(|| lags.iter().sum::<i64>() as f64 / lags.len() as f64);
            entry.version_lag_max_ms = lags.iter().copied().max();
            let onnx = super::onnx::export(&candidate.model, candidate.version, Some(time));
            if let Some(dir) = &self.config.run_dir {
                let path = dir.join(&onnx_name);
                std::fs::write(&path, &onnx).map_err(|e| TrainError::io(&path, e))?;
                if let Some(state) = &candidate.state {
                    let path = dir.join(format!("v{:06}.state", candidate.version));
                    state::save(&path, &candidate.model, state, candidate.version)?;
                }
            }
            self.serving = Arc::new(candidate.model);
            self.serving_version = candidate.version;
            self.history.push_back((time, candidate.version, self.serving.clone()));
            out.push(TrainerEvent::Version(ModelVersion::new(candidate.version, time, onnx)));
        } else {
            // Its examples are still unpublished: the next version that is promoted includes them.
            let mut times = candidate.label_times;
            times.append(&mut self.pending_label_times);
            self.pending_label_times = times;
            let reason = if pinned {
                format!("the run is pinned to version {}", self.config.pin_version.unwrap_or_default())
            } else {
                format!("log loss {cand_loss:.5} on the next {} examples is worse than the serving version's {serv_loss:.5} by more than {}", candidate.seen, self.config.guardrail.margin)
            };
            eprintln!("weir train: version {} not promoted: {reason}", candidate.version);
            out.push(TrainerEvent::Rejected(Rejection {
                version: candidate.version,
                time,
                candidate_logloss: cand_loss,
                serving_logloss: serv_loss,
                reason,
            }));
        }
        if let Some(dir) = &self.config.run_dir {
            let path = dir.join("manifest.jsonl");
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|e| TrainError::io(&path, e))?;
            let line = serde_json::to_string(&entry).expect("a manifest entry serialises");
            writeln!(file, "{line}").map_err(|e| TrainError::io(&path, e))?;
        }
        Ok(())
    }

    fn roll_window(&mut self, time: i64, out: &mut Vec<TrainerEvent>) {
        let len = self.config.metrics_every_ms;
        let start = time.div_euclid(len) * len;
        match self.window_start {
            Some(current) if start > current => {
                self.emit_window(out);
                self.window_start = Some(start);
            }
            None => self.window_start = Some(start),
            _ => {}
        }
    }

    fn emit_window(&mut self, out: &mut Vec<TrainerEvent>) {
        if let Some(start) = self.window_start
            && !self.window.is_empty()
        {
            out.push(TrainerEvent::Metrics(WindowMetrics {
                window_start: start,
                window_end: start + self.config.metrics_every_ms,
                serving_version: self.serving_version,
                summary: self.window.summary(),
            }));
            self.window.clear();
        }
    }

    /// Ends a bounded run: decides a waiting candidate on the examples it has seen, emits the
    /// last metrics window and writes the final parameters (`final.onnx`, `final.state`) to
    /// the run directory; these are what a later run starts from.
    pub fn finish(&mut self, out: &mut Vec<TrainerEvent>) -> Result<(), TrainError> {
        self.apply_head();
        if self.candidate.is_some() {
            self.decide(self.last_time, out)?;
        }
        self.emit_window(out);
        if let Some(dir) = &self.config.run_dir {
            let path = dir.join("final.onnx");
            std::fs::write(&path, super::onnx::export(&self.model, self.next_version, None)).map_err(|e| TrainError::io(&path, e))?;
            state::save(&dir.join("final.state"), &self.model, &self.state, self.next_version)?;
        }
        Ok(())
    }

    /// Trains on `example` without validation, candidates or metrics (offline epochs).
    pub fn fit(&mut self, example: &Example) -> Result<(), TrainError> {
        self.config.spec.check(example)?;
        self.train_step(example);
        self.examples += 1;
        Ok(())
    }

    /// Flushes pending head gradients and makes the current parameters the serving version
    /// without publishing (offline training between epochs).
    pub fn sync_serving(&mut self) {
        self.apply_head();
        self.serving = Arc::new(self.model.clone());
    }

    /// Mean loss of `examples` under the current parameters.
    pub fn evaluate(&mut self, examples: &[Example]) -> Summary {
        let mut acc = Progressive::default();
        let mut loss = 0.0;
        for ex in examples {
            self.model.predict_into(ex, &mut self.ws);
            loss += prediction_loss(self.config.spec.loss, &self.ws.logits, ex.label);
            if self.config.spec.loss == Loss::BinaryCrossEntropy {
                acc.add(self.ws.logits[0] as f64, ex.label == 1.0);
            }
        }
        let mut summary = acc.summary();
        summary.examples = examples.len() as u64;
        summary.logloss = loss / examples.len().max(1) as f64;
        summary
    }

    /// Writes the current parameters and optimizer state (for an offline run's initial version).
    pub fn save(&mut self, path: &std::path::Path) -> Result<(), TrainError> {
        self.apply_head();
        state::save(path, &self.model, &self.state, self.next_version)
    }
}

/// The loss of a prediction (probabilities, not logits) against a label.
fn prediction_loss(loss: Loss, predictions: &[f32], label: f32) -> f64 {
    match loss {
        Loss::BinaryCrossEntropy => logloss(predictions[0] as f64, label == 1.0),
        Loss::SoftmaxCrossEntropy => -(predictions[label as usize] as f64).max(1e-7).ln(),
        Loss::MeanSquaredError => predictions.iter().map(|&p| (p as f64 - label as f64).powi(2)).sum(),
    }
}

/// Fault injection: a version whose weights were damaged (sign-flipped and scaled linear
/// weights and biases, noise in the head) — what a bad deploy looks like.
fn corrupt(model: &mut Model<f32>) {
    for w in model.params.linear.iter_mut() {
        *w *= -4.0;
    }
    for w in model.params.bias.iter_mut() {
        *w += 3.0;
    }
    for (i, layer) in model.params.layers.iter_mut().enumerate() {
        for (j, w) in layer.weight.iter_mut().enumerate() {
            *w = -*w * 3.0 + if (i + j) % 2 == 0 { 0.5 } else { -0.5 };
        }
    }
}

