//! A seeded sparse training set drawn from a fully labelled reference: a
//! fraction of each class's pixels (at least a few) for training, all other
//! labelled pixels for testing. The demo and the end-to-end test use it to
//! mimic a user's sparse hand labels while keeping an honest test set.

use serde::Serialize;

use crate::base::NormalRng;
use crate::scene::LabelImage;

/// How the training pixels are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SparseSplit {
    /// Share of each class's labelled pixels taken for training.
    pub fraction: f64,
    /// At least this many training pixels per class (when it has them).
    pub min_per_class: usize,
    pub seed: u64,
}

impl Default for SparseSplit {
    fn default() -> Self {
        Self {
            fraction: 0.005,
            min_per_class: 20,
            seed: 0,
        }
    }
}

/// Splits `reference` into (train, test), disjoint, covering every labelled
/// pixel; same seed, same split.
pub fn sparse_split(reference: &LabelImage, split: &SparseSplit) -> (LabelImage, LabelImage) {
    let mut rng = NormalRng::new(split.seed);
    let mut train = LabelImage {
        grid: reference.grid.clone(),
        data: vec![0; reference.data.len()],
    };
    let mut test = reference.clone();
    for (class, count) in reference.class_counts() {
        let mut pixels: Vec<usize> = reference
            .data
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == class)
            .map(|(i, _)| i)
            .collect();
        let take = ((count as f64 * split.fraction).round() as usize)
            .max(split.min_per_class)
            .min(count);
        // Partial Fisher-Yates: the first `take` entries are the sample.
        for i in 0..take {
            let j = i + rng.below(count - i);
            pixels.swap(i, j);
        }
        for &p in &pixels[..take] {
            train.data[p] = class;
            test.data[p] = 0;
        }
    }
    (train, test)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::PixelGrid;

    #[test]
    fn split_is_sparse_disjoint_complete_and_seeded() {
        let data: Vec<u8> = (0..10_000).map(|i| (i % 7 % 3) as u8).collect();
        let reference = LabelImage {
            grid: PixelGrid::plain(100, 100),
            data,
        };
        let split = SparseSplit {
            fraction: 0.01,
            min_per_class: 5,
            seed: 3,
        };
        let (train, test) = sparse_split(&reference, &split);
        for i in 0..reference.data.len() {
            assert!(train.data[i] == 0 || test.data[i] == 0);
            assert_eq!(train.data[i].max(test.data[i]), reference.data[i]);
        }
        let counts = reference.class_counts();
        for ((c, n), (c2, t)) in counts.iter().zip(train.class_counts()) {
            assert_eq!(*c, c2);
            assert_eq!(t, ((*n as f64 * 0.01).round() as usize).max(5));
        }
        assert_eq!(sparse_split(&reference, &split).0, train);
        let other = SparseSplit { seed: 4, ..split };
        assert_ne!(sparse_split(&reference, &other).0, train);
    }
}
