//! Scores from a confusion matrix. Undefined ratios are NaN (written as null
//! in JSON): recall of a class absent from the truth, precision of a class
//! never predicted. F1 = 2TP / (2TP + FP + FN) and IoU = TP / (TP + FP + FN), as
//! scikit-learn computes them. AA, mF1 and mIoU average over the classes that
//! occur in the truth (nanmean-like); kappa is Cohen's, unweighted.

use serde::Serialize;

use super::confusion::ConfusionMatrix;

/// Per-class scores; index k is class k + 1.
#[derive(Debug, Clone, Serialize)]
pub struct ClassScores {
    pub recall: Vec<f64>,
    pub precision: Vec<f64>,
    pub f1: Vec<f64>,
    pub iou: Vec<f64>,
    pub support: Vec<u64>,
    pub predicted: Vec<u64>,
}

/// Every figure a result panel or `metrics.json` shows.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsSummary {
    pub n_labelled: u64,
    pub oa: f64,
    pub aa: f64,
    pub kappa: f64,
    pub mf1: f64,
    pub miou: f64,
    /// Mean precision over classes present in the truth and ever predicted.
    pub mprecision: f64,
    pub per_class: ClassScores,
    pub confusion: ConfusionMatrix,
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        f64::NAN
    } else {
        num as f64 / den as f64
    }
}

fn mean_where(values: &[f64], keep: impl Fn(usize) -> bool) -> f64 {
    let kept: Vec<f64> = values
        .iter()
        .enumerate()
        .filter(|(k, v)| keep(*k) && !v.is_nan())
        .map(|(_, v)| *v)
        .collect();
    if kept.is_empty() {
        f64::NAN
    } else {
        kept.iter().sum::<f64>() / kept.len() as f64
    }
}

impl MetricsSummary {
    /// Scores of `prediction` against `truth` for classes 1..=K.
    pub fn from_labels(truth: &[u8], prediction: &[u8], classes: usize) -> Self {
        Self::from_confusion(ConfusionMatrix::from_labels(truth, prediction, classes))
    }

    pub fn from_confusion(cm: ConfusionMatrix) -> Self {
        let k = cm.classes;
        let rows = cm.row_sums();
        let cols = cm.col_sums();
        let n = cm.total();
        let mut scores = ClassScores {
            recall: Vec::with_capacity(k),
            precision: Vec::with_capacity(k),
            f1: Vec::with_capacity(k),
            iou: Vec::with_capacity(k),
            support: rows.clone(),
            predicted: cols.clone(),
        };
        for c in 0..k {
            let tp = cm.get(c, c);
            scores.recall.push(ratio(tp, rows[c]));
            scores.precision.push(ratio(tp, cols[c]));
            scores.f1.push(ratio(2 * tp, rows[c] + cols[c]));
            scores.iou.push(ratio(tp, rows[c] + cols[c] - tp));
        }
        let present = |c: usize| rows[c] > 0;
        // scikit-learn's cohen_kappa_score: 1 - sum(w * C) / sum(w * E), with
        // E = outer(col sums, row sums) / N and w = 1 off the diagonal.
        let kappa = if n == 0 {
            f64::NAN
        } else {
            let nf = n as f64;
            let mut observed = 0.0;
            let mut expected = 0.0;
            for (i, &col) in cols.iter().enumerate() {
                for (j, &row) in rows.iter().enumerate() {
                    if i != j {
                        observed += cm.get(i, j) as f64;
                        expected += col as f64 * row as f64 / nf;
                    }
                }
            }
            1.0 - observed / expected
        };
        Self {
            n_labelled: n,
            oa: ratio(cm.trace(), n),
            aa: mean_where(&scores.recall, present),
            kappa,
            mf1: mean_where(&scores.f1, present),
            miou: mean_where(&scores.iou, present),
            mprecision: mean_where(&scores.precision, present),
            per_class: scores,
            confusion: cm,
        }
    }
}
