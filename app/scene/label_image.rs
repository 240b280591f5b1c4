//! A label layer: one uint8 class per pixel, 0 = unlabelled, classes 1..K
//! ([`LabelImage`]), and which of the two layers it is ([`LabelLayer`]).

use super::grid::PixelGrid;

/// A class image on a pixel grid.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelImage {
    pub grid: PixelGrid,
    /// Row-major classes; 0 = unlabelled.
    pub data: Vec<u8>,
}

impl LabelImage {
    /// Number of labelled pixels of each class value 0..=255 (index = class).
    pub fn histogram(&self) -> [usize; 256] {
        let mut h = [0usize; 256];
        for &c in &self.data {
            h[c as usize] += 1;
        }
        h
    }

    /// (class, count) for every class 1..=255 that occurs.
    pub fn class_counts(&self) -> Vec<(u8, usize)> {
        self.histogram()
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| (c as u8, *n))
            .collect()
    }

    /// Number of labelled (non-zero) pixels.
    pub fn labelled(&self) -> usize {
        self.data.iter().filter(|&&c| c != 0).count()
    }

    /// The largest class value present (K).
    pub fn max_class(&self) -> u8 {
        self.data.iter().copied().max().unwrap_or(0)
    }
}

/// Which label layer an edit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum LabelLayer {
    Train,
    Test,
}

impl LabelLayer {
    pub const ALL: [LabelLayer; 2] = [LabelLayer::Train, LabelLayer::Test];

    pub fn name(self) -> &'static str {
        match self {
            LabelLayer::Train => "training labels",
            LabelLayer::Test => "test labels",
        }
    }
}
