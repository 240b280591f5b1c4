//! The three 3-channel renderings of method.md section 2 (pRGB, PCA, SAR
//! Pauli), each stretched per channel to [0, 1] and quantised to 8 bits.
//! Pure CPU functions over scene data; they keep their stretch limits so that
//! a view can re-stretch and a report can state them.

pub mod error;
pub mod filter_bank;
pub mod fitted_chunks;
pub mod integer_scatter;
pub mod majority;
pub mod pauli;
pub mod pca;
pub mod percentile;
pub mod prgb;
pub mod rendering_fit;
pub mod renderings;
pub mod stretch;

pub use crate::scene::{ChannelStretch, Rgb8Image};
pub use error::ProductError;
