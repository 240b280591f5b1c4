//! Which classifier to trust, decided on the TRAINING labels only: a part of
//! them (about a fifth, whole 64-pixel blocks where the labels spread over
//! enough of them) is held out, every classifier of the run is trained again
//! on the rest and scored on it, and the best kappa is recommended. Test
//! labels never enter. Every classifier sees the same held-out pixels.

use serde::Serialize;

use super::classification::ClassifierChoice;
use super::classifier::{ValidationSplit, validation_split};
use crate::metrics::summary::MetricsSummary;
use crate::scene::LabelImage;

/// Share of the training labels held out.
pub const HELD_OUT_FRACTION: f64 = 0.2;
/// Side of the held-out blocks, in pixels.
pub const HELD_OUT_BLOCK: usize = 64;

/// The held-out part of a run's training labels.
#[derive(Debug, Clone)]
pub struct HeldOutSplit {
    /// Scene pixels held out (row-major), each with its training class.
    pub pixels: Vec<usize>,
    pub classes: Vec<u8>,
    /// The training labels without the held-out pixels.
    pub rest: LabelImage,
    /// Per scene pixel: held out.
    pub mask: Vec<bool>,
    pub kind: ValidationSplit,
}

/// Holds out about [`HELD_OUT_FRACTION`] of `train` (seeded), keeping at
/// least one pixel of every class on the training side. None when there are
/// too few labels to hold any out.
pub fn held_out_split(train: &LabelImage, seed: u64) -> Option<HeldOutSplit> {
    let w = train.grid.width;
    let labelled: Vec<usize> = (0..train.data.len())
        .filter(|&i| train.data[i] != 0)
        .collect();
    let pixels: Vec<(usize, usize)> = labelled
        .iter()
        .map(|&i| (i / w.max(1), i % w.max(1)))
        .collect();
    let labels: Vec<i64> = labelled
        .iter()
        .map(|&i| i64::from(train.data[i]) - 1)
        .collect();
    let (held, kind) = validation_split(&pixels, &labels, HELD_OUT_FRACTION, HELD_OUT_BLOCK, seed);
    if kind == ValidationSplit::None || !held.iter().any(|&h| h) {
        return None;
    }
    let mut rest = train.clone();
    let mut mask = vec![false; train.data.len()];
    let mut out = Vec::new();
    let mut classes = Vec::new();
    for (&i, &h) in labelled.iter().zip(&held) {
        if h {
            out.push(i);
            classes.push(train.data[i]);
            rest.data[i] = 0;
            mask[i] = true;
        }
    }
    Some(HeldOutSplit {
        pixels: out,
        classes,
        rest,
        mask,
        kind,
    })
}

/// One classifier's score on the held-out training labels.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct HeldOutScore {
    pub classifier: ClassifierChoice,
    pub oa: f64,
    pub kappa: f64,
    pub pixels: usize,
}

impl HeldOutScore {
    /// Scores `predicted` (a class per held-out pixel, 0 = none) for
    /// classes 1..=`classes`.
    pub fn new(
        classifier: ClassifierChoice,
        split: &HeldOutSplit,
        predicted: &[u8],
        classes: usize,
    ) -> Self {
        let m = MetricsSummary::from_labels(&split.classes, predicted, classes);
        Self {
            classifier,
            oa: m.oa,
            kappa: m.kappa,
            pixels: split.pixels.len(),
        }
    }
}

/// The scores of every classifier of a run on the same held-out pixels.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Recommendation {
    pub scores: Vec<HeldOutScore>,
    /// The best kappa (then OA; then the order of `scores`).
    pub best: ClassifierChoice,
    pub held_out_pixels: usize,
    pub split: ValidationSplit,
}

impl Recommendation {
    /// None without scores.
    pub fn from_scores(scores: Vec<HeldOutScore>, split: &HeldOutSplit) -> Option<Self> {
        let best = scores
            .iter()
            .enumerate()
            .max_by(|(i, a), (j, b)| {
                a.kappa
                    .total_cmp(&b.kappa)
                    .then(a.oa.total_cmp(&b.oa))
                    .then(j.cmp(i))
            })
            .map(|(_, s)| s.classifier)?;
        Some(Self {
            scores,
            best,
            held_out_pixels: split.pixels.len(),
            split: split.kind.clone(),
        })
    }

    /// One line for a user: "filter-rf scores best on 80 held-out training
    /// pixels (kappa 0.81; rf 0.80, mlp 0.45)".
    pub fn sentence(&self) -> String {
        let others: Vec<String> = self
            .scores
            .iter()
            .filter(|s| s.classifier != self.best)
            .map(|s| format!("{} {:.2}", s.classifier.name(), s.kappa))
            .collect();
        let best = self
            .scores
            .iter()
            .find(|s| s.classifier == self.best)
            .map_or(0.0, |s| s.kappa);
        let mut line = format!(
            "{} scores best on {} held-out training pixels (kappa {best:.2}",
            self.best.label(),
            self.held_out_pixels
        );
        if !others.is_empty() {
            line.push_str("; ");
            line.push_str(&others.join(", "));
        }
        line.push(')');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::PixelGrid;

    fn labels(w: usize, h: usize, f: impl Fn(usize, usize) -> u8) -> LabelImage {
        LabelImage {
            grid: PixelGrid::plain(w, h),
            data: (0..w * h).map(|i| f(i / w, i % w)).collect(),
        }
    }

    #[test]
    fn split_holds_out_a_fifth_and_keeps_every_class() {
        // Labels every 7th pixel of a 300 x 300 scene, two classes by column.
        let train = labels(300, 300, |r, c| {
            if (r * 300 + c) % 7 == 0 {
                1 + u8::from(c >= 150)
            } else {
                0
            }
        });
        let split = held_out_split(&train, 3).unwrap();
        let n = train.labelled();
        let share = split.pixels.len() as f64 / n as f64;
        assert!((0.1..0.35).contains(&share), "held out {share}");
        assert_eq!(split.rest.labelled() + split.pixels.len(), n);
        assert!(
            split
                .pixels
                .iter()
                .all(|&i| split.rest.data[i] == 0 && split.mask[i])
        );
        assert_eq!(split.rest.class_counts().len(), 2);
        // Same seed, same split.
        assert_eq!(held_out_split(&train, 3).unwrap().pixels, split.pixels);
        // Too few labels: none.
        let few = labels(9, 9, |r, c| if r == c { 1 + (r % 2) as u8 } else { 0 });
        assert!(held_out_split(&few, 0).is_none());
    }

    #[test]
    fn the_best_kappa_is_recommended() {
        let train = labels(300, 300, |r, c| {
            if (r + c) % 11 == 0 {
                1 + u8::from(r > 150)
            } else {
                0
            }
        });
        let split = held_out_split(&train, 0).unwrap();
        let perfect = split.classes.clone();
        let wrong: Vec<u8> = split.classes.iter().map(|&c| 3 - c).collect();
        let scores = vec![
            HeldOutScore::new(ClassifierChoice::Mlp, &split, &wrong, 2),
            HeldOutScore::new(ClassifierChoice::FilterRf, &split, &perfect, 2),
        ];
        let r = Recommendation::from_scores(scores, &split).unwrap();
        assert_eq!(r.best, ClassifierChoice::FilterRf);
        assert!(
            r.sentence().contains("held-out training pixels"),
            "{}",
            r.sentence()
        );
    }
}
