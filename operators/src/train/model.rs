//! The trainable model family, defined in Rust with hand-written forward and backward passes.
//!
//! ```text
//! sparse fields (user, item, category, price bucket, crosses, ...) ─ hashed to rows of one
//!        shared table of `buckets` rows
//!   ├─ linear part:  logits += Σ_f linear[row_f]                 (the hashed logistic model)
//!   ├─ embeddings:   x = [emb[row_0] … emb[row_F-1], dense…, text embedding…]
//!   │                MLP head: x → (Gemm → ReLU)* → Gemm → logits
//!   └─ optional factorization-machine term: logit += Σ_{i<j} <emb[row_i], emb[row_j]>
//! logits += bias
//! ```
//!
//! The hashed logistic model is the member with `embedding_dim = 0`, no dense and no text
//! features. A sparse example touches `F` rows only, so a training step costs the same whatever
//! the table size. The same graph is exported to ONNX by [`super::onnx`]; a test checks that ONNX
//! Runtime computes what [`Model::predict`] computes.

use serde::{Deserialize, Serialize};

use super::example::Example;
use super::loss::Loss;
use super::real::Real;
use super::TrainError;

/// The shape of a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Names of the sparse fields, in the order of [`Example::sparse`] (documentation and ONNX
    /// metadata; the hash of a value includes its field name).
    pub fields: Vec<String>,
    /// Rows of the hashed table shared by all sparse fields.
    pub buckets: u32,
    /// Whether the model has a linear weight per row (the "wide" part).
    pub linear: bool,
    /// Embedding width per row (0: no embeddings).
    pub embedding_dim: usize,
    /// Number of dense features.
    pub dense: usize,
    /// Width of the text embedding input (0: none; 384 for all-MiniLM-L6-v2).
    pub text_dim: usize,
    /// Hidden layer widths of the MLP head (ReLU after each).
    pub hidden: Vec<usize>,
    /// Adds the factorization-machine term `Σ_{i<j} <emb_i, emb_j>` (pairwise dot products of
    /// the fields' embeddings) to the logit: user × category affinities learned through shared
    /// embeddings rather than one weight per cross.
    #[serde(default)]
    pub interactions: bool,
    /// Number of outputs (1 for binary and regression, the class count for softmax).
    pub outputs: usize,
    pub loss: Loss,
    /// Embeddings start uniform in `±init_scale`.
    pub init_scale: f32,
    /// Seed of the initial weights.
    pub seed: u64,
}

impl ModelSpec {
    /// The hashed logistic model: one weight per hashed row, plus a bias.
    pub fn logistic(fields: &[&str], buckets: u32) -> Self {
        ModelSpec {
            fields: fields.iter().map(|f| f.to_string()).collect(),
            buckets,
            linear: true,
            embedding_dim: 0,
            dense: 0,
            text_dim: 0,
            hidden: Vec::new(),
            interactions: false,
            outputs: 1,
            loss: Loss::BinaryCrossEntropy,
            init_scale: 0.05,
            seed: 1,
        }
    }

    /// Linear part plus embeddings of width `embedding_dim` into an MLP head.
    pub fn mlp(fields: &[&str], buckets: u32, embedding_dim: usize, hidden: &[usize]) -> Self {
        ModelSpec { embedding_dim, hidden: hidden.to_vec(), ..Self::logistic(fields, buckets) }
    }

    /// Width of the MLP head's input.
    pub fn head_input(&self) -> usize {
        self.fields.len() * self.embedding_dim + self.dense + self.text_dim
    }

    /// `(inputs, outputs, has_bias)` of each head layer; empty when the head has no input.
    pub fn layer_shapes(&self) -> Vec<(usize, usize, bool)> {
        if self.head_input() == 0 {
            return Vec::new();
        }
        let mut shapes = Vec::new();
        let mut width = self.head_input();
        for &h in &self.hidden {
            shapes.push((width, h, true));
            width = h;
        }
        // The output layer has no bias of its own: the model's global bias plays that part.
        shapes.push((width, self.outputs, false));
        shapes
    }

    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Config(m));
        if self.fields.is_empty() && self.head_input() == 0 {
            return bad("a model needs at least one sparse field or a dense/text input".into());
        }
        if self.buckets == 0 && !self.fields.is_empty() {
            return bad("buckets must be at least 1".into());
        }
        if self.outputs == 0 {
            return bad("outputs must be at least 1".into());
        }
        if self.loss == Loss::BinaryCrossEntropy && self.outputs != 1 {
            return bad("binary cross-entropy needs exactly one output".into());
        }
        if self.loss == Loss::SoftmaxCrossEntropy && self.outputs < 2 {
            return bad("softmax cross-entropy needs at least two outputs".into());
        }
        if !self.linear && self.embedding_dim == 0 && self.dense == 0 && self.text_dim == 0 {
            return bad("a model with neither a linear part nor head inputs learns only a bias".into());
        }
        if self.interactions && (self.embedding_dim == 0 || self.outputs != 1) {
            return bad("interactions need embeddings and a single output".into());
        }
        if self.hidden.contains(&0) {
            return bad("hidden layers must have at least one unit".into());
        }
        Ok(())
    }

    /// Checks that an example fits this model (a clear error, never a panic at training time).
    pub fn check(&self, example: &Example) -> Result<(), TrainError> {
        if example.sparse.len() != self.fields.len() {
            return Err(TrainError::Shape(format!("{} sparse features, the model has {} fields", example.sparse.len(), self.fields.len())));
        }
        if let Some(&row) = example.sparse.iter().find(|&&r| r >= self.buckets) {
            return Err(TrainError::Shape(format!("bucket {row} outside the table of {} rows", self.buckets)));
        }
        if example.dense.len() != self.dense {
            return Err(TrainError::Shape(format!("{} dense features, the model has {}", example.dense.len(), self.dense)));
        }
        if example.dense.iter().any(|x| !x.is_finite()) {
            return Err(TrainError::Shape("a dense feature is NaN or infinite".into()));
        }
        let text = example.text.as_ref().map_or(0, |t| t.len());
        if text != self.text_dim {
            return Err(TrainError::Shape(format!("text embedding of width {text}, the model takes {}", self.text_dim)));
        }
        if example.text.as_ref().is_some_and(|t| t.iter().any(|x| !x.is_finite())) {
            return Err(TrainError::Shape("the text embedding holds NaN or infinite values".into()));
        }
        if !self.loss.accepts(example.label, self.outputs) {
            return Err(TrainError::Shape(format!("label {} is not valid for {:?} with {} outputs", example.label, self.loss, self.outputs)));
        }
        Ok(())
    }
}

/// One dense layer of the head: `y = x · weight (+ bias)`, `weight` row-major `[inputs][outputs]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Layer<R> {
    pub inputs: usize,
    pub outputs: usize,
    pub weight: Vec<R>,
    /// Empty for the output layer.
    pub bias: Vec<R>,
}

/// All parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Params<R> {
    /// `buckets × outputs` (empty without a linear part).
    pub linear: Vec<R>,
    /// `buckets × embedding_dim`.
    pub embeddings: Vec<R>,
    pub layers: Vec<Layer<R>>,
    /// `outputs`.
    pub bias: Vec<R>,
}

/// A model: its shape and its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Model<R> {
    pub spec: ModelSpec,
    pub params: Params<R>,
}

/// Scratch space for one forward/backward pass (reused: no allocation per example).
#[derive(Clone, Debug, Default)]
pub struct Workspace<R> {
    /// `acts[0]` is the head input, `acts[l + 1]` the output of layer `l` (after ReLU).
    pub acts: Vec<Vec<R>>,
    pub logits: Vec<R>,
    pub dlogits: Vec<R>,
    /// Gradient with respect to `acts[l]`.
    pub dacts: Vec<Vec<R>>,
    /// Sum of the fields' embeddings (factorization-machine term).
    pub fm_sum: Vec<R>,
}

/// Gradients of the dense part (head layers and bias), accumulated over a mini-batch.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadGrads<R> {
    pub layers: Vec<(Vec<R>, Vec<R>)>,
    pub bias: Vec<R>,
    pub examples: usize,
}

impl<R: Real> HeadGrads<R> {
    pub fn zeros(spec: &ModelSpec) -> Self {
        HeadGrads {
            layers: spec.layer_shapes().iter().map(|&(i, o, b)| (vec![R::ZERO; i * o], vec![R::ZERO; if b { o } else { 0 }])).collect(),
            bias: vec![R::ZERO; spec.outputs],
            examples: 0,
        }
    }
    pub fn clear(&mut self) {
        for (w, b) in &mut self.layers {
            w.iter_mut().for_each(|x| *x = R::ZERO);
            b.iter_mut().for_each(|x| *x = R::ZERO);
        }
        self.bias.iter_mut().for_each(|x| *x = R::ZERO);
        self.examples = 0;
    }
}

/// A deterministic PRNG for the initial weights (SplitMix64).
struct SplitMix(u64);

impl SplitMix {
    fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // Uniform in [-1, 1).
        (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

impl<R: Real> Model<R> {
    /// A freshly initialised model: linear weights and biases zero, embeddings uniform in
    /// `±init_scale`, head weights He-uniform. A function of the spec only.
    pub fn new(spec: ModelSpec) -> Result<Self, TrainError> {
        spec.validate()?;
        let mut rng = SplitMix(spec.seed);
        let rows = spec.buckets as usize;
        let linear = if spec.linear { vec![R::ZERO; rows * spec.outputs] } else { Vec::new() };
        let scale = spec.init_scale as f64;
        let embeddings = (0..rows * spec.embedding_dim).map(|_| R::from_f64(scale * rng.next_unit())).collect();
        let layers = spec
            .layer_shapes()
            .into_iter()
            .map(|(inputs, outputs, has_bias)| {
                let limit = (6.0 / inputs as f64).sqrt();
                Layer {
                    inputs,
                    outputs,
                    weight: (0..inputs * outputs).map(|_| R::from_f64(limit * rng.next_unit())).collect(),
                    bias: vec![R::ZERO; if has_bias { outputs } else { 0 }],
                }
            })
            .collect();
        let bias = vec![R::ZERO; spec.outputs];
        Ok(Model { params: Params { linear, embeddings, layers, bias }, spec })
    }

    pub fn workspace(&self) -> Workspace<R> {
        let mut acts = vec![vec![R::ZERO; self.spec.head_input()]];
        acts.extend(self.params.layers.iter().map(|l| vec![R::ZERO; l.outputs]));
        Workspace {
            dacts: acts.clone(),
            acts,
            logits: vec![R::ZERO; self.spec.outputs],
            dlogits: vec![R::ZERO; self.spec.outputs],
            fm_sum: vec![R::ZERO; self.spec.embedding_dim],
        }
    }

    /// Computes the logits of `example` into `ws.logits`. The example must pass
    /// [`ModelSpec::check`].
    pub fn forward(&self, example: &Example, ws: &mut Workspace<R>) {
        let outputs = self.spec.outputs;
        let p = &self.params;
        ws.logits.copy_from_slice(&p.bias);
        if self.spec.linear {
            for &row in &example.sparse {
                let w = &p.linear[row as usize * outputs..][..outputs];
                for (z, &w) in ws.logits.iter_mut().zip(w) {
                    *z += w;
                }
            }
        }
        if p.layers.is_empty() {
            return;
        }
        self.fill_input(example, &mut ws.acts[0]);
        let last = p.layers.len() - 1;
        for (l, layer) in p.layers.iter().enumerate() {
            let (before, after) = ws.acts.split_at_mut(l + 1);
            let input = &before[l];
            let out = &mut after[0];
            if layer.bias.is_empty() {
                out.iter_mut().for_each(|x| *x = R::ZERO);
            } else {
                out.copy_from_slice(&layer.bias);
            }
            for (i, &x) in input.iter().enumerate() {
                if x == R::ZERO {
                    continue;
                }
                let row = &layer.weight[i * layer.outputs..][..layer.outputs];
                for (o, &w) in out.iter_mut().zip(row) {
                    *o += x * w;
                }
            }
            if l < last {
                out.iter_mut().for_each(|x| *x = x.max(R::ZERO));
            }
        }
        for (z, &h) in ws.logits.iter_mut().zip(&ws.acts[last + 1]) {
            *z += h;
        }
        if self.spec.interactions {
            ws.logits[0] += self.interaction(&ws.acts[0], &mut ws.fm_sum);
        }
    }

    /// `½ (‖Σ_f e_f‖² − Σ_f ‖e_f‖²)` over the embedding part of the head input; leaves `Σ_f e_f`
    /// in `sum` for the backward pass.
    fn interaction(&self, input: &[R], sum: &mut Vec<R>) -> R {
        let e = self.spec.embedding_dim;
        sum.clear();
        sum.resize(e, R::ZERO);
        let mut squares = R::ZERO;
        for field in input[..self.spec.fields.len() * e].chunks(e) {
            for (s, &v) in sum.iter_mut().zip(field) {
                *s += v;
                squares += v * v;
            }
        }
        let total: R = sum.iter().fold(R::ZERO, |acc, &s| acc + s * s);
        R::from_f64(0.5) * (total - squares)
    }

    fn fill_input(&self, example: &Example, input: &mut [R]) {
        let e = self.spec.embedding_dim;
        let mut at = 0;
        if e > 0 {
            for &row in &example.sparse {
                for (x, &v) in input[at..at + e].iter_mut().zip(&self.params.embeddings[row as usize * e..][..e]) {
                    *x = v;
                }
                at += e;
            }
        }
        for &d in &example.dense {
            input[at] = R::from_f64(d as f64);
            at += 1;
        }
        if let Some(text) = &example.text {
            for &t in text.iter() {
                input[at] = R::from_f64(t as f64);
                at += 1;
            }
        }
    }

    /// Back-propagates `ws.dlogits` (after [`Model::forward`] on the same example): adds the
    /// head's gradients to `grads` and leaves the gradient of the head input in `ws.dacts[0]`
    /// (whose first `fields × embedding_dim` entries are the embedding rows' gradients). The
    /// linear rows' gradient is `ws.dlogits` itself, once per field.
    pub fn backward(&self, ws: &mut Workspace<R>, grads: &mut HeadGrads<R>) {
        for (g, &d) in grads.bias.iter_mut().zip(&ws.dlogits) {
            *g += d;
        }
        grads.examples += 1;
        let layers = &self.params.layers;
        if layers.is_empty() {
            return;
        }
        let last = layers.len() - 1;
        ws.dacts[last + 1].copy_from_slice(&ws.dlogits);
        for l in (0..layers.len()).rev() {
            let layer = &layers[l];
            let (lower, upper) = ws.dacts.split_at_mut(l + 1);
            let dout = &mut upper[0];
            if l < last {
                // ReLU: no gradient where the unit was off.
                for (d, &a) in dout.iter_mut().zip(&ws.acts[l + 1]) {
                    if a <= R::ZERO {
                        *d = R::ZERO;
                    }
                }
            }
            let (gw, gb) = &mut grads.layers[l];
            for (g, &d) in gb.iter_mut().zip(dout.iter()) {
                *g += d;
            }
            let input = &ws.acts[l];
            let din = &mut lower[l];
            for (i, &x) in input.iter().enumerate() {
                let row = &layer.weight[i * layer.outputs..][..layer.outputs];
                let grow = &mut gw[i * layer.outputs..][..layer.outputs];
                let mut acc = R::ZERO;
                for ((g, &w), &d) in grow.iter_mut().zip(row).zip(dout.iter()) {
                    *g += x * d;
                    acc += w * d;
                }
                din[i] = acc;
            }
        }
        if self.spec.interactions {
            // d/d e_f of the pairwise term is (Σ e) − e_f.
            let e = self.spec.embedding_dim;
            let d = ws.dlogits[0];
            for f in 0..self.spec.fields.len() {
                for k in 0..e {
                    ws.dacts[0][f * e + k] += d * (ws.fm_sum[k] - ws.acts[0][f * e + k]);
                }
            }
        }
    }

    /// The prediction for one example: probability (binary), class probabilities (softmax) or
    /// the value (regression), written to `ws.logits`.
    pub fn predict_into(&self, example: &Example, ws: &mut Workspace<R>) {
        self.forward(example, ws);
        self.spec.loss.predict_in_place(&mut ws.logits);
    }

    /// The first output's prediction for one example (allocates a workspace: for tests and
    /// one-off use; loops should reuse a [`Workspace`]).
    pub fn predict(&self, example: &Example) -> Vec<R> {
        let mut ws = self.workspace();
        self.predict_into(example, &mut ws);
        ws.logits
    }

    /// The loss of one example and its full gradient (dense arrays shaped like the params):
    /// what the gradient checks compare with finite differences.
    pub fn loss_and_gradient(&self, example: &Example) -> (R, Params<R>) {
        let mut ws = self.workspace();
        self.forward(example, &mut ws);
        let logits = ws.logits.clone();
        let loss = self.spec.loss.loss_and_grad(&logits, example.label, &mut ws.dlogits);
        let mut head = HeadGrads::zeros(&self.spec);
        self.backward(&mut ws, &mut head);
        let outputs = self.spec.outputs;
        let mut linear = vec![R::ZERO; self.params.linear.len()];
        let mut embeddings = vec![R::ZERO; self.params.embeddings.len()];
        let e = self.spec.embedding_dim;
        for (f, &row) in example.sparse.iter().enumerate() {
            if self.spec.linear {
                for o in 0..outputs {
                    linear[row as usize * outputs + o] += ws.dlogits[o];
                }
            }
            for k in 0..e {
                embeddings[row as usize * e + k] += ws.dacts[0][f * e + k];
            }
        }
        let layers = self
            .params
            .layers
            .iter()
            .zip(head.layers)
            .map(|(l, (w, b))| Layer { inputs: l.inputs, outputs: l.outputs, weight: w, bias: b })
            .collect();
        (loss, Params { linear, embeddings, layers, bias: head.bias })
    }

    /// Converts the parameters to another scalar type.
    pub fn cast<S: Real>(&self) -> Model<S> {
        let c = |v: &[R]| v.iter().map(|x| S::from_f64(x.to_f64())).collect::<Vec<S>>();
        Model {
            spec: self.spec.clone(),
            params: Params {
                linear: c(&self.params.linear),
                embeddings: c(&self.params.embeddings),
                layers: self.params.layers.iter().map(|l| Layer { inputs: l.inputs, outputs: l.outputs, weight: c(&l.weight), bias: c(&l.bias) }).collect(),
                bias: c(&self.params.bias),
            },
        }
    }
}

impl<R> Params<R> {
    /// Every parameter tensor, mutable, in a fixed order (for checks and optimizers).
    pub fn tensors_mut(&mut self) -> Vec<&mut Vec<R>> {
        let mut all = vec![&mut self.linear, &mut self.embeddings];
        for layer in &mut self.layers {
            all.push(&mut layer.weight);
            all.push(&mut layer.bias);
        }
        all.push(&mut self.bias);
        all
    }

    pub fn tensors(&self) -> Vec<&Vec<R>> {
        let mut all = vec![&self.linear, &self.embeddings];
        for layer in &self.layers {
            all.push(&layer.weight);
            all.push(&layer.bias);
        }
        all.push(&self.bias);
        all
    }
}
