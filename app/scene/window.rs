//! A rectangular window of a scene's layers on the same georeference: tiled
//! prediction renders and classifies a scene one window at a time, so that
//! what it holds at once is bounded by the tile, not by the scene.

use super::cube::HsiCube;
use super::grid::PixelGrid;
use super::sar::{SarImage, SarKind};

/// Rows `row0..row0 + height`, columns `col0..col0 + width` of a grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub row0: usize,
    pub col0: usize,
    pub height: usize,
    pub width: usize,
}

impl Window {
    /// The window's pixels, row-major, as indices into a row-major layer of
    /// `scene_width` columns.
    fn scene_indices(&self, scene_width: usize) -> impl Iterator<Item = usize> + '_ {
        (self.row0..self.row0 + self.height).flat_map(move |r| {
            let start = r * scene_width + self.col0;
            start..start + self.width
        })
    }

    /// True when the window lies inside a grid of `height` x `width`.
    pub fn fits(&self, height: usize, width: usize) -> bool {
        self.row0 + self.height <= height && self.col0 + self.width <= width
    }
}

impl PixelGrid {
    /// The grid of a window: its size, and the georeference moved to its
    /// top-left corner.
    pub fn window(&self, w: Window) -> PixelGrid {
        let geo_transform = self.geo_transform.map(|gt| {
            let (r, c) = (w.row0 as f64, w.col0 as f64);
            [
                gt[0] + c * gt[1] + r * gt[2],
                gt[1],
                gt[2],
                gt[3] + c * gt[4] + r * gt[5],
                gt[4],
                gt[5],
            ]
        });
        PixelGrid {
            width: w.width,
            height: w.height,
            geo_transform,
            crs_wkt: self.crs_wkt.clone(),
            crs_name: self.crs_name.clone(),
        }
    }
}

/// The window's samples of a row-major layer.
fn cut<T: Copy>(layer: &[T], scene_width: usize, w: Window) -> Vec<T> {
    w.scene_indices(scene_width).map(|i| layer[i]).collect()
}

impl HsiCube {
    /// Every band of the window (the caller keeps the window inside the
    /// cube: [`Window::fits`]).
    pub fn window(&self, w: Window) -> HsiCube {
        let width = self.grid.width;
        let data = (0..self.bands)
            .flat_map(|b| cut(self.band(b), width, w))
            .collect();
        HsiCube {
            grid: self.grid.window(w),
            bands: self.bands,
            data,
            wavelengths_nm: self.wavelengths_nm.clone(),
            band_names: self.band_names.clone(),
        }
    }
}

impl SarImage {
    /// Every channel of the window (inside the image: [`Window::fits`]).
    pub fn window(&self, w: Window) -> SarImage {
        let width = self.grid.width;
        let kind = match &self.kind {
            SarKind::DualPol { c11, c22 } => SarKind::DualPol {
                c11: cut(c11, width, w),
                c22: cut(c22, width, w),
            },
            SarKind::QuadPol { t11, t22, t33 } => SarKind::QuadPol {
                t11: cut(t11, width, w),
                t22: cut(t22, width, w),
                t33: cut(t33, width, w),
            },
        };
        SarImage {
            grid: self.grid.window(w),
            kind,
            source_scale: self.source_scale,
            scale_reason: self.scale_reason.clone(),
            off_diagonal: self
                .off_diagonal
                .iter()
                .map(|(name, v)| (name.clone(), cut(v, width, w)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_keeps_its_pixels_and_moves_the_georeference() {
        let mut grid = PixelGrid::plain(5, 4);
        grid.geo_transform = Some([100.0, 10.0, 0.0, 500.0, 0.0, -10.0]);
        let cube = HsiCube {
            grid,
            bands: 2,
            data: (0..40).map(|v| v as f32).collect(),
            wavelengths_nm: None,
            band_names: vec![String::new(); 2],
        };
        let w = Window {
            row0: 1,
            col0: 2,
            height: 2,
            width: 3,
        };
        assert!(w.fits(4, 5));
        let part = cube.window(w);
        assert_eq!(
            part.data,
            vec![7., 8., 9., 12., 13., 14., 27., 28., 29., 32., 33., 34.]
        );
        assert_eq!(
            part.grid.geo_transform,
            Some([120.0, 10.0, 0.0, 490.0, 0.0, -10.0])
        );
        assert_eq!(part.spectrum(1, 2), cube.spectrum(2, 4));
    }
}
