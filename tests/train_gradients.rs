//! Gradient checks: every layer type (hashed linear rows, embedding rows, dense layers with
//! ReLU, the output layer, the bias; dense and text inputs) and every loss, in f64 against
//! central finite differences.

use std::sync::Arc;

use weir::operators::train::model::{Model, ModelSpec};
use weir::operators::train::{Example, Loss};

fn spec(loss: Loss, outputs: usize, embedding_dim: usize, hidden: &[usize], dense: usize, text: usize) -> ModelSpec {
    let mut spec = ModelSpec::mlp(&["user", "item", "cross"], 16, embedding_dim, hidden);
    spec.loss = loss;
    spec.outputs = outputs;
    spec.dense = dense;
    spec.text_dim = text;
    spec.init_scale = 0.5;
    spec.seed = 11;
    spec
}

fn example(label: f32, dense: usize, text: usize) -> Example {
    // Two fields share row 3: the gradient of a row is the sum over the fields that hit it.
    let mut e = Example::new(0, vec![3, 7, 3], label).with_dense((0..dense).map(|i| 0.3 * i as f32 - 0.4).collect());
    if text > 0 {
        e.text = Some(Arc::new((0..text).map(|i| ((i * 7 % 11) as f32 - 5.0) / 10.0).collect()));
    }
    e
}

/// Compares the analytic gradient of every parameter with a central difference.
fn check(model: Model<f64>, example: &Example) {
    let (_, analytic) = model.loss_and_gradient(example);
    let analytic: Vec<Vec<f64>> = analytic.tensors().into_iter().cloned().collect();
    let h = 1e-6;
    let mut checked = 0;
    for t in 0..analytic.len() {
        for i in 0..analytic[t].len() {
            let mut plus = model.clone();
            plus.params.tensors_mut()[t][i] += h;
            let mut minus = model.clone();
            minus.params.tensors_mut()[t][i] -= h;
            let numeric = (plus.loss_and_gradient(example).0 - minus.loss_and_gradient(example).0) / (2.0 * h);
            let a = analytic[t][i];
            let err = (a - numeric).abs() / (1e-8 + a.abs().max(numeric.abs()));
            assert!(err < 1e-5 || (a - numeric).abs() < 1e-9, "tensor {t} index {i}: analytic {a} numeric {numeric}");
            checked += 1;
        }
    }
    assert!(checked > 0);
    // Every layer takes part: each non-empty tensor has a non-zero gradient somewhere (a dead
    // ReLU layer would make the check vacuous for the layers below it).
    for (t, g) in analytic.iter().enumerate() {
        assert!(g.is_empty() || g.iter().any(|x| x.abs() > 1e-6), "tensor {t} has an all-zero gradient: the check would prove nothing");
    }
}

fn model(spec: ModelSpec) -> Model<f64> {
    let mut model = Model::<f32>::new(spec).unwrap().cast::<f64>();
    // Non-zero linear weights and biases, so every term matters.
    for (i, w) in model.params.linear.iter_mut().enumerate() {
        *w = ((i * 37 % 17) as f64 - 8.0) / 20.0;
    }
    for (i, b) in model.params.bias.iter_mut().enumerate() {
        *b = 0.1 * i as f64 - 0.05;
    }
    for layer in &mut model.params.layers {
        for (i, b) in layer.bias.iter_mut().enumerate() {
            *b = 0.05 * (i % 3) as f64;
        }
    }
    model
}

#[test]
fn hashed_logistic_with_binary_cross_entropy() {
    let s = spec(Loss::BinaryCrossEntropy, 1, 0, &[], 0, 0);
    check(model(s.clone()), &example(1.0, 0, 0));
    check(model(s), &example(0.0, 0, 0));
}

#[test]
fn embeddings_and_mlp_head_with_binary_cross_entropy() {
    let s = spec(Loss::BinaryCrossEntropy, 1, 4, &[6, 5], 0, 0);
    check(model(s.clone()), &example(1.0, 0, 0));
    check(model(s), &example(0.0, 0, 0));
}

#[test]
fn dense_and_text_inputs() {
    let s = spec(Loss::BinaryCrossEntropy, 1, 2, &[8], 3, 8);
    check(model(s), &example(1.0, 3, 8));
}

#[test]
fn embeddings_without_linear_part() {
    let mut s = spec(Loss::BinaryCrossEntropy, 1, 3, &[4], 0, 0);
    s.linear = false;
    check(model(s), &example(0.0, 0, 0));
}

#[test]
fn softmax_cross_entropy() {
    let s = spec(Loss::SoftmaxCrossEntropy, 3, 3, &[5], 2, 0);
    for class in 0..3 {
        check(model(s.clone()), &example(class as f32, 2, 0));
    }
    let linear_only = spec(Loss::SoftmaxCrossEntropy, 3, 0, &[], 0, 0);
    check(model(linear_only), &example(2.0, 0, 0));
}

#[test]
fn mean_squared_error() {
    let s = spec(Loss::MeanSquaredError, 1, 3, &[4], 1, 0);
    check(model(s), &example(2.5, 1, 0));
    let linear_only = spec(Loss::MeanSquaredError, 1, 0, &[], 0, 0);
    check(model(linear_only), &example(-1.0, 0, 0));
}

#[test]
fn a_sparse_gradient_touches_only_the_example_rows() {
    let s = spec(Loss::BinaryCrossEntropy, 1, 4, &[6], 0, 0);
    let m = model(s);
    let (_, g) = m.loss_and_gradient(&example(1.0, 0, 0));
    for (row, chunk) in g.embeddings.chunks(4).enumerate() {
        let touched = row == 3 || row == 7;
        assert_eq!(chunk.iter().any(|x| *x != 0.0), touched, "row {row}");
    }
    for (row, x) in g.linear.iter().enumerate() {
        assert_eq!(*x != 0.0, row == 3 || row == 7, "linear row {row}");
    }
}

#[test]
fn factorization_machine_interactions() {
    let mut s = spec(Loss::BinaryCrossEntropy, 1, 4, &[6], 0, 0);
    s.interactions = true;
    check(model(s.clone()), &example(1.0, 0, 0));
    check(model(s), &example(0.0, 0, 0));
}
