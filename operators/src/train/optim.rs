//! Optimizers: SGD, AdaGrad, AdamW and FTRL-Proximal, all sparse-aware.
//!
//! A parameter tensor is a set of rows (a hashed table's row, or a whole dense tensor as one
//! row). An update touches one row: its weights and its optimizer state, nothing else, so the
//! cost of a sparse step does not grow with the table. AdamW keeps a step count per row ("lazy"
//! Adam): a row's bias correction and its decoupled weight decay advance only when the row is
//! touched, the usual choice for embedding tables. FTRL-Proximal (McMahan et al., 2013) keeps
//! `z` and `n` per coordinate and derives the weight from them, giving exact zeros under L1.

use serde::{Deserialize, Serialize};

/// An optimizer and its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Optimizer {
    Sgd { lr: f32 },
    AdaGrad { lr: f32, initial_accumulator: f32 },
    AdamW { lr: f32, beta1: f32, beta2: f32, eps: f32, weight_decay: f32 },
    Ftrl { alpha: f32, beta: f32, l1: f32, l2: f32 },
}

impl Optimizer {
    pub fn sgd(lr: f32) -> Self {
        Optimizer::Sgd { lr }
    }
    pub fn adagrad(lr: f32) -> Self {
        Optimizer::AdaGrad { lr, initial_accumulator: 0.1 }
    }
    pub fn adamw(lr: f32) -> Self {
        Optimizer::AdamW { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
    pub fn ftrl(alpha: f32) -> Self {
        Optimizer::Ftrl { alpha, beta: 1.0, l1: 0.0, l2: 0.0 }
    }

    /// Fresh state for a tensor of `len` weights in rows of `row_len`, starting from `weights`.
    pub fn state(&self, weights: &[f32], row_len: usize) -> Slots {
        let len = weights.len();
        let rows = if row_len == 0 { 0 } else { len / row_len };
        match *self {
            Optimizer::Sgd { .. } => Slots::default(),
            Optimizer::AdaGrad { initial_accumulator, .. } => Slots { a: vec![initial_accumulator; len], ..Slots::default() },
            Optimizer::AdamW { .. } => Slots { a: vec![0.0; len], b: vec![0.0; len], steps: vec![0; rows] },
            Optimizer::Ftrl { alpha, beta, l1, l2 } => {
                // Choose z so that the derived weight equals the starting weight (n = 0).
                let z = weights.iter().map(|&w| if w == 0.0 { 0.0 } else { -w * (beta / alpha + l2) - w.signum() * l1 }).collect();
                Slots { a: z, b: vec![0.0; len], steps: Vec::new() }
            }
        }
    }

    /// Applies the gradient `grad` of row `row` (whose weights are `weights[row * grad.len()..]`).
    #[inline]
    pub fn update_row(&self, weights: &mut [f32], slots: &mut Slots, row: usize, grad: &[f32]) {
        let n = grad.len();
        let start = row * n;
        let w = &mut weights[start..start + n];
        match *self {
            Optimizer::Sgd { lr } => {
                for (w, &g) in w.iter_mut().zip(grad) {
                    *w -= lr * g;
                }
            }
            Optimizer::AdaGrad { lr, .. } => {
                let acc = &mut slots.a[start..start + n];
                for ((w, a), &g) in w.iter_mut().zip(acc).zip(grad) {
                    *a += g * g;
                    *w -= lr * g / a.sqrt();
                }
            }
            Optimizer::AdamW { lr, beta1, beta2, eps, weight_decay } => {
                let step = &mut slots.steps[row];
                *step = step.saturating_add(1);
                let t = *step as i32;
                let correction1 = 1.0 - beta1.powi(t);
                let correction2 = 1.0 - beta2.powi(t);
                let m = &mut slots.a[start..start + n];
                let v = &mut slots.b[start..start + n];
                for (((w, m), v), &g) in w.iter_mut().zip(m).zip(v).zip(grad) {
                    *m = beta1 * *m + (1.0 - beta1) * g;
                    *v = beta2 * *v + (1.0 - beta2) * g * g;
                    let m_hat = *m / correction1;
                    let v_hat = *v / correction2;
                    *w -= lr * (m_hat / (v_hat.sqrt() + eps) + weight_decay * *w);
                }
            }
            Optimizer::Ftrl { alpha, beta, l1, l2 } => {
                let z = &mut slots.a[start..start + n];
                let nn = &mut slots.b[start..start + n];
                for (((w, z), nn), &g) in w.iter_mut().zip(z).zip(nn).zip(grad) {
                    let n_new = *nn + g * g;
                    let sigma = (n_new.sqrt() - nn.sqrt()) / alpha;
                    *z += g - sigma * *w;
                    *nn = n_new;
                    *w = if z.abs() <= l1 { 0.0 } else { -(*z - z.signum() * l1) / ((beta + nn.sqrt()) / alpha + l2) };
                }
            }
        }
    }
}

/// Optimizer state of one tensor: up to two per-weight slots and per-row step counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Slots {
    /// AdaGrad: squared-gradient sum; AdamW: first moment; FTRL: `z`.
    pub a: Vec<f32>,
    /// AdamW: second moment; FTRL: `n`.
    pub b: Vec<f32>,
    /// AdamW: steps per row.
    pub steps: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minimises `(w - 3)^2` from 0 with each optimizer; all must get close.
    #[test]
    fn every_optimizer_minimises_a_quadratic() {
        for opt in [Optimizer::sgd(0.1), Optimizer::adagrad(0.5), Optimizer::adamw(0.1), Optimizer::ftrl(0.5)] {
            let mut w = vec![0.0f32];
            let mut slots = opt.state(&w, 1);
            for _ in 0..2000 {
                let g = 2.0 * (w[0] - 3.0);
                opt.update_row(&mut w, &mut slots, 0, &[g]);
            }
            assert!((w[0] - 3.0).abs() < 0.05, "{opt:?} ended at {}", w[0]);
        }
    }

    #[test]
    fn a_sparse_update_touches_only_its_row() {
        for opt in [Optimizer::sgd(0.1), Optimizer::adagrad(0.5), Optimizer::adamw(0.1), Optimizer::ftrl(0.5)] {
            let mut w = vec![1.0f32; 12];
            let mut slots = opt.state(&w, 3);
            let before = (w.clone(), slots.clone());
            opt.update_row(&mut w, &mut slots, 2, &[1.0, -1.0, 0.5]);
            for i in (0..12).filter(|i| !(6..9).contains(i)) {
                assert_eq!(w[i], before.0[i], "{opt:?} changed weight {i}");
                if !slots.a.is_empty() {
                    assert_eq!(slots.a[i], before.1.a[i]);
                }
            }
            assert!(w[6] < 1.0 && w[7] > 1.0, "{opt:?} did not step the touched row");
        }
    }

    #[test]
    fn ftrl_l1_gives_exact_zeros() {
        let opt = Optimizer::Ftrl { alpha: 0.1, beta: 1.0, l1: 10.0, l2: 0.0 };
        let mut w = vec![0.0f32];
        let mut slots = opt.state(&w, 1);
        for _ in 0..10 {
            opt.update_row(&mut w, &mut slots, 0, &[0.3]);
        }
        assert_eq!(w[0], 0.0);
    }
}
