//! Exported `.onnx` versions score in the official ONNX Runtime (Python `onnxruntime` 1.31.1)
//! exactly like the trainer's own forward pass (1e-5), for every member of the model family.
//! The reference script is `scripts/train/onnx_predict.py`; the venv comes from
//! `scripts/setup/python.sh` (which `scripts/test.sh` runs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use weir::operators::train::model::{Model, ModelSpec};
use weir::operators::train::onnx::export;
use weir::operators::train::{Example, Loss, Optimizer, Trainer, TrainerConfig, Guardrail};

fn python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".cache/venv/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/setup/python.sh (creates the reference Python with onnxruntime)", python.display());
    python
}

/// Runs ONNX Runtime on `bytes` for `examples`; returns (logits, predictions) per example.
fn onnx_runtime(bytes: &[u8], spec: &ModelSpec, examples: &[Example]) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("model.onnx");
    std::fs::write(&model_path, bytes).unwrap();
    let mut inputs = serde_json::Map::new();
    inputs.insert("sparse".into(), serde_json::json!(examples.iter().map(|e| e.sparse.clone()).collect::<Vec<_>>()));
    if spec.dense > 0 {
        inputs.insert("dense".into(), serde_json::json!(examples.iter().map(|e| e.dense.clone()).collect::<Vec<_>>()));
    }
    if spec.text_dim > 0 {
        inputs.insert("text".into(), serde_json::json!(examples.iter().map(|e| e.text.as_deref().unwrap().clone()).collect::<Vec<_>>()));
    }
    let inputs_path = dir.path().join("inputs.json");
    std::fs::write(&inputs_path, serde_json::to_vec(&inputs).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/train/onnx_predict.py");
    let out = Command::new(python()).arg(&script).arg(&model_path).arg(&inputs_path).output().unwrap();
    assert!(out.status.success(), "onnx_predict.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = |name: &str| -> Vec<Vec<f32>> { serde_json::from_value(parsed[name].clone()).unwrap() };
    (rows("logit"), rows("prediction"))
}

fn examples(spec: &ModelSpec, n: usize) -> Vec<Example> {
    let mut state = 5u64;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    (0..n)
        .map(|i| {
            let sparse = (0..spec.fields.len()).map(|_| next() % spec.buckets).collect();
            let dense = (0..spec.dense).map(|_| (next() % 1000) as f32 / 500.0 - 1.0).collect();
            let label = match spec.loss {
                Loss::BinaryCrossEntropy => (next() % 2) as f32,
                Loss::SoftmaxCrossEntropy => (next() % spec.outputs as u32) as f32,
                Loss::MeanSquaredError => (next() % 100) as f32 / 10.0,
            };
            let mut e = Example::new(i as i64, sparse, label).with_dense(dense);
            if spec.text_dim > 0 {
                e.text = Some(Arc::new((0..spec.text_dim).map(|_| (next() % 1000) as f32 / 1000.0 - 0.5).collect()));
            }
            e
        })
        .collect()
}

/// Trains a little (so the weights are not the initial ones), exports, compares.
fn parity(spec: ModelSpec) {
    let data = examples(&spec, 600);
    let mut config = TrainerConfig::new(spec.clone());
    config.optimizer = Optimizer::adamw(0.01);
    config.linear_optimizer = Optimizer::adagrad(0.1);
    config.guardrail = Guardrail { slice: 0, margin: 0.0 };
    let mut trainer = Trainer::new(config).unwrap();
    for e in &data[..500] {
        trainer.fit(e).unwrap();
    }
    trainer.sync_serving();
    let model: &Model<f32> = trainer.model();
    let bytes = export(model, 1, Some(123));
    let probe = &data[500..];
    let (logits, predictions) = onnx_runtime(&bytes, &spec, probe);
    let mut worst = 0.0f32;
    for (i, e) in probe.iter().enumerate() {
        let mut ws = model.workspace();
        model.forward(e, &mut ws);
        let ours_logit = ws.logits.clone();
        let ours = model.predict(e);
        for o in 0..spec.outputs {
            worst = worst.max((ours[o] - predictions[i][o]).abs());
            assert!((ours[o] - predictions[i][o]).abs() <= 1e-5, "example {i} output {o}: weir {} onnxruntime {}", ours[o], predictions[i][o]);
            assert!((ours_logit[o] - logits[i][o]).abs() <= 1e-4 * (1.0 + ours_logit[o].abs()), "logit {i}/{o}: {} vs {}", ours_logit[o], logits[i][o]);
        }
    }
    eprintln!("{:?} with {} outputs, embedding {}, hidden {:?}: max |weir - onnxruntime| = {worst:e}", spec.loss, spec.outputs, spec.embedding_dim, spec.hidden);
}

#[test]
fn hashed_logistic_model_matches_onnx_runtime() {
    parity(ModelSpec::logistic(&["user", "item", "category", "price", "user_x_category"], 1 << 12));
}

#[test]
fn mlp_head_over_embeddings_dense_and_text_matches_onnx_runtime() {
    let mut spec = ModelSpec::mlp(&["user", "item", "category"], 1 << 10, 8, &[32, 16]);
    spec.dense = 3;
    spec.text_dim = 384;
    parity(spec);
}

#[test]
fn factorization_machine_interactions_match_onnx_runtime() {
    let mut spec = ModelSpec::mlp(&["user", "item", "category", "price", "user_x_category"], 1 << 10, 8, &[16]);
    spec.interactions = true;
    parity(spec);
}

#[test]
fn softmax_and_regression_heads_match_onnx_runtime() {
    let mut softmax = ModelSpec::mlp(&["user", "item"], 256, 4, &[8]);
    softmax.loss = Loss::SoftmaxCrossEntropy;
    softmax.outputs = 4;
    parity(softmax);
    let mut regression = ModelSpec::mlp(&["user", "item"], 256, 4, &[8]);
    regression.loss = Loss::MeanSquaredError;
    regression.linear = false;
    regression.dense = 2;
    parity(regression);
}
