//! An 8-bit RGB rendering with the stretch limits that made it.

use serde::Serialize;

/// The p2/p98 limits one output channel was stretched with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelStretch {
    /// "R", "G" or "B".
    pub channel: &'static str,
    /// What fed the channel ("band 40 (640.0 nm)", "PC1", "|C11 - C22|").
    pub source: String,
    pub p2: f64,
    pub p98: f64,
    /// Valid samples the percentiles were taken over.
    pub samples: usize,
    /// Exact (numpy's linear percentile over all samples) or a note.
    pub exact: bool,
}

impl ChannelStretch {
    /// Limits from numpy-equal percentiles over all `samples` valid values.
    pub fn exact(
        channel: usize,
        source: impl Into<String>,
        p2: f64,
        p98: f64,
        samples: usize,
    ) -> Self {
        Self {
            channel: ["R", "G", "B"][channel.min(2)],
            source: source.into(),
            p2,
            p98,
            samples,
            exact: true,
        }
    }

    /// Limits given from elsewhere (a trained model's, fitted on its
    /// training scene): no samples of this image were taken.
    pub fn fixed(channel: usize, source: impl Into<String>, p2: f64, p98: f64) -> Self {
        Self {
            samples: 0,
            exact: false,
            ..Self::exact(channel, source, p2, p98, 0)
        }
    }

    /// (p2, p98).
    pub fn limits(&self) -> (f64, f64) {
        (self.p2, self.p98)
    }
}

/// An H x W x 3 image, row-major, channels interleaved (R, G, B).
#[derive(Debug, Clone, PartialEq)]
pub struct Rgb8Image {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
    pub stretch: Vec<ChannelStretch>,
}

impl Rgb8Image {
    /// The (r, g, b) of pixel (row, col).
    pub fn pixel(&self, row: usize, col: usize) -> [u8; 3] {
        let i = 3 * (row * self.width + col);
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// One channel as a row-major plane.
    pub fn channel(&self, c: usize) -> Vec<u8> {
        self.data.iter().skip(c).step_by(3).copied().collect()
    }
}
