//! Why a rendering could not be made.

/// A rendering the data does not allow.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProductError {
    #[error("band {band} is out of range: the cube has {bands} bands (bands are numbered from 0)")]
    BandOutOfRange { band: usize, bands: usize },
    #[error("band {band} has no valid samples (all nodata or NaN); choose another band")]
    EmptyBand { band: usize },
    #[error(
        "PCA needs at least {needed} bands with data (one per component shown, and at least 2); the cube has {usable}"
    )]
    TooFewBands { usable: usize, needed: usize },
    #[error(
        "PCA needs at least 2 pixels with a complete, non-zero spectrum; the cube has {found} of {pixels} pixels"
    )]
    NoValidPixels { found: usize, pixels: usize },
    #[error("the SAR {channel} channel has no valid samples")]
    EmptySarChannel { channel: &'static str },
    #[error("{0}")]
    Invalid(String),
}
