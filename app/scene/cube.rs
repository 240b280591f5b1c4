//! The hyperspectral (or any multiband optical) cube of a scene, held
//! band-sequential in f32 with invalid samples (nodata, non-finite) as NaN.

use super::grid::PixelGrid;

/// An H x W x B optical cube.
#[derive(Debug, Clone)]
pub struct HsiCube {
    pub grid: PixelGrid,
    /// Number of bands.
    pub bands: usize,
    /// Band-sequential samples: `data[b * H * W + row * W + col]`; NaN marks
    /// nodata and non-finite input.
    pub data: Vec<f32>,
    /// Centre wavelength of each band in nanometres, when the file gives them.
    pub wavelengths_nm: Option<Vec<f64>>,
    /// Band names or descriptions (may be empty strings).
    pub band_names: Vec<String>,
}

impl HsiCube {
    /// The samples of band `b` (0-based), row-major.
    pub fn band(&self, b: usize) -> &[f32] {
        let n = self.grid.len();
        &self.data[b * n..(b + 1) * n]
    }

    /// The spectrum of pixel (row, col).
    pub fn spectrum(&self, row: usize, col: usize) -> Vec<f32> {
        let i = row * self.grid.width + col;
        (0..self.bands).map(|b| self.band(b)[i]).collect()
    }

    /// True when band `b` has no valid sample at all.
    pub fn band_is_empty(&self, b: usize) -> bool {
        self.band(b).iter().all(|v| v.is_nan())
    }
}
