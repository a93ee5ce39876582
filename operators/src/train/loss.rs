//! Losses on the model's logits, with their gradients.

use serde::{Deserialize, Serialize};

use super::real::{Real, sigmoid, softplus};

/// What the model's outputs mean and how they are scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// One logit; the label is 0 or 1; the prediction is `sigmoid(logit)`.
    BinaryCrossEntropy,
    /// `outputs` logits; the label is the class index; the prediction is `softmax(logits)`.
    SoftmaxCrossEntropy,
    /// One output per target; the label is the target; the prediction is the output itself.
    MeanSquaredError,
}

impl Loss {
    /// The loss of `logits` for `label`, and its gradient with respect to the logits in `grad`.
    pub fn loss_and_grad<R: Real>(self, logits: &[R], label: f32, grad: &mut [R]) -> R {
        match self {
            Loss::BinaryCrossEntropy => {
                let z = logits[0];
                let y = R::from_f64(label as f64);
                grad[0] = sigmoid(z) - y;
                softplus(z) - y * z
            }
            Loss::SoftmaxCrossEntropy => {
                let class = label as usize;
                let max = logits.iter().copied().fold(logits[0], R::max);
                let mut total = R::ZERO;
                for (g, &z) in grad.iter_mut().zip(logits) {
                    *g = (z - max).exp();
                    total += *g;
                }
                for g in grad.iter_mut() {
                    *g = *g / total;
                }
                let loss = total.ln() + max - logits[class.min(logits.len() - 1)];
                if class < grad.len() {
                    grad[class] -= R::ONE;
                }
                loss
            }
            Loss::MeanSquaredError => {
                let y = R::from_f64(label as f64);
                let mut loss = R::ZERO;
                for (g, &z) in grad.iter_mut().zip(logits) {
                    let d = z - y;
                    *g = R::from_f64(2.0) * d;
                    loss += d * d;
                }
                loss
            }
        }
    }

    /// The prediction for `logits`, in place.
    pub fn predict_in_place<R: Real>(self, logits: &mut [R]) {
        match self {
            Loss::BinaryCrossEntropy => logits[0] = sigmoid(logits[0]),
            Loss::SoftmaxCrossEntropy => {
                let max = logits.iter().copied().fold(logits[0], R::max);
                let mut total = R::ZERO;
                for z in logits.iter_mut() {
                    *z = (*z - max).exp();
                    total += *z;
                }
                for z in logits.iter_mut() {
                    *z = *z / total;
                }
            }
            Loss::MeanSquaredError => {}
        }
    }

    /// Whether `label` is a valid label for this loss with `outputs` outputs.
    pub fn accepts(self, label: f32, outputs: usize) -> bool {
        match self {
            Loss::BinaryCrossEntropy => label == 0.0 || label == 1.0,
            Loss::SoftmaxCrossEntropy => label >= 0.0 && label.fract() == 0.0 && (label as usize) < outputs,
            Loss::MeanSquaredError => label.is_finite(),
        }
    }
}
