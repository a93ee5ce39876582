//! Evaluation metrics: log loss and ROC AUC, and a progressive-validation accumulator.
//!
//! Progressive validation scores every example with the model that was serving when the
//! example arrived, *before* training on it, so the figure is what the live system would have
//! achieved and needs no held-out set.

/// Predictions are clipped to `[EPS, 1 - EPS]` before taking logs.
const EPS: f64 = 1e-7;

/// Binary log loss of one prediction.
///
/// ```
/// use weir_operators::eval::logloss;
/// assert!((logloss(0.5, true) - std::f64::consts::LN_2).abs() < 1e-12);
/// assert!(logloss(1.0, false).is_finite());
/// ```
pub fn logloss(p: f64, label: bool) -> f64 {
    let p = p.clamp(EPS, 1.0 - EPS);
    if label { -p.ln() } else { -(1.0 - p).ln() }
}

/// ROC AUC of `(score, label)` pairs: the probability that a random positive scores above a
/// random negative, ties counting one half (Mann–Whitney U with average ranks). `None` when
/// the pairs hold no positive or no negative. Sorts `pairs` in place.
///
/// ```
/// use weir_operators::eval::auc;
/// let mut pairs = vec![(0.9, true), (0.8, false), (0.3, true), (0.1, false)];
/// assert_eq!(auc(&mut pairs), Some(0.75));
/// ```
pub fn auc(pairs: &mut [(f64, bool)]) -> Option<f64> {
    pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let positives = pairs.iter().filter(|p| p.1).count() as f64;
    let negatives = pairs.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j share their average.
        let average_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += average_rank * pairs[i..j].iter().filter(|p| p.1).count() as f64;
        i = j;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

/// Accumulates progressive log loss and AUC over a run of binary predictions.
#[derive(Clone, Debug, Default)]
pub struct Progressive {
    pairs: Vec<(f64, bool)>,
    loss_sum: f64,
}

/// A summary of a [`Progressive`] accumulator.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub examples: u64,
    pub logloss: f64,
    /// `None` without both classes.
    pub auc: Option<f64>,
    pub positive_rate: f64,
}

impl Progressive {
    pub fn add(&mut self, p: f64, label: bool) {
        self.loss_sum += logloss(p, label);
        self.pairs.push((p, label));
    }
    pub fn len(&self) -> usize {
        self.pairs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
    /// The summary so far (sorts the stored pairs; adding more afterwards is fine).
    pub fn summary(&mut self) -> Summary {
        let n = self.pairs.len();
        let positives = self.pairs.iter().filter(|p| p.1).count();
        Summary {
            examples: n as u64,
            logloss: if n == 0 { f64::NAN } else { self.loss_sum / n as f64 },
            auc: auc(&mut self.pairs),
            positive_rate: if n == 0 { f64::NAN } else { positives as f64 / n as f64 },
        }
    }
    pub fn clear(&mut self) {
        self.pairs.clear();
        self.loss_sum = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AUC by the definition (all pairs), to check the rank formula.
    fn auc_by_pairs(pairs: &[(f64, bool)]) -> f64 {
        let (mut wins, mut total) = (0.0, 0.0);
        for a in pairs.iter().filter(|p| p.1) {
            for b in pairs.iter().filter(|p| !p.1) {
                total += 1.0;
                wins += if a.0 > b.0 { 1.0 } else if a.0 == b.0 { 0.5 } else { 0.0 };
            }
        }
        wins / total
    }

    #[test]
    fn rank_auc_equals_pairwise_auc_with_ties() {
        let mut state = 7u64;
        let mut pairs: Vec<(f64, bool)> = (0..300)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let score = ((state >> 40) % 20) as f64 / 20.0; // many ties
                (score, (state >> 20) % 3 == 0)
            })
            .collect();
        let expected = auc_by_pairs(&pairs);
        assert!((auc(&mut pairs).unwrap() - expected).abs() < 1e-12);
    }

    #[test]
    fn one_class_has_no_auc() {
        assert_eq!(auc(&mut [(0.1, true), (0.2, true)]), None);
    }
}
