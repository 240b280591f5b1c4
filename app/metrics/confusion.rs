//! The confusion matrix of classes 1..K (rows = truth, columns = prediction)
//! over the pixels whose truth is not 0.

use serde::Serialize;

/// K x K counts, row-major; class k is index k - 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfusionMatrix {
    pub classes: usize,
    pub counts: Vec<u64>,
    /// Pixels whose truth is labelled but whose prediction is outside 1..K.
    pub predictions_out_of_range: u64,
}

impl ConfusionMatrix {
    /// Counts (truth, prediction) over pixels with truth in 1..=K.
    pub fn from_labels(truth: &[u8], prediction: &[u8], classes: usize) -> Self {
        let mut counts = vec![0u64; classes * classes];
        let mut out = 0;
        for (&t, &p) in truth.iter().zip(prediction) {
            let (t, p) = (t as usize, p as usize);
            if t == 0 || t > classes {
                continue;
            }
            if p == 0 || p > classes {
                out += 1;
                continue;
            }
            counts[(t - 1) * classes + (p - 1)] += 1;
        }
        Self {
            classes,
            counts,
            predictions_out_of_range: out,
        }
    }

    pub fn get(&self, truth: usize, predicted: usize) -> u64 {
        self.counts[truth * self.classes + predicted]
    }

    /// Row sums (support of each true class).
    pub fn row_sums(&self) -> Vec<u64> {
        (0..self.classes)
            .map(|r| (0..self.classes).map(|c| self.get(r, c)).sum())
            .collect()
    }

    /// Column sums (how often each class is predicted).
    pub fn col_sums(&self) -> Vec<u64> {
        (0..self.classes)
            .map(|c| (0..self.classes).map(|r| self.get(r, c)).sum())
            .collect()
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn trace(&self) -> u64 {
        (0..self.classes).map(|k| self.get(k, k)).sum()
    }

    /// The matrix as rows, for reports.
    pub fn rows(&self) -> Vec<Vec<u64>> {
        self.counts
            .chunks(self.classes.max(1))
            .map(|r| r.to_vec())
            .collect()
    }
}
