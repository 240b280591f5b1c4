//! The 64 x 64 / stride 32 patch grid of method.md section 3: the scene is
//! zero-padded at the top and left to ((n - 64) // 32 + 1) * 32 + 64 per
//! dimension, and patch r * n_cols + c starts at (32 r, 32 c) in padded space.

use serde::Serialize;

/// Patches over a padded scene.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PatchGrid {
    pub height: usize,
    pub width: usize,
    pub patch: usize,
    pub stride: usize,
    pub padded_height: usize,
    pub padded_width: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub n_rows: usize,
    pub n_cols: usize,
}

/// The padded length of one dimension. Scenes smaller than a patch pad up to
/// one patch.
fn padded_len(n: usize, patch: usize, stride: usize) -> usize {
    (n.saturating_sub(patch) / stride + 1) * stride + patch
}

impl PatchGrid {
    /// The grid of the method (64 x 64, stride 32).
    pub fn method(height: usize, width: usize) -> Self {
        Self::new(height, width, 64, 32)
    }

    pub fn new(height: usize, width: usize, patch: usize, stride: usize) -> Self {
        let padded_height = padded_len(height, patch, stride);
        let padded_width = padded_len(width, patch, stride);
        Self {
            height,
            width,
            patch,
            stride,
            padded_height,
            padded_width,
            pad_top: padded_height - height,
            pad_left: padded_width - width,
            n_rows: (padded_height - patch) / stride + 1,
            n_cols: (padded_width - patch) / stride + 1,
        }
    }

    pub fn len(&self) -> usize {
        self.n_rows * self.n_cols
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Top-left corner (row, col) of patch `n` in the padded grid.
    pub fn top_left(&self, n: usize) -> (usize, usize) {
        (
            self.stride * (n / self.n_cols),
            self.stride * (n % self.n_cols),
        )
    }

    /// The scene pixel under padded position (row, col), or None in padding.
    pub fn scene_pixel(&self, padded_row: usize, padded_col: usize) -> Option<(usize, usize)> {
        let r = padded_row.checked_sub(self.pad_top)?;
        let c = padded_col.checked_sub(self.pad_left)?;
        (r < self.height && c < self.width).then_some((r, c))
    }

    /// Copies patch `n` of a row-major, channel-interleaved u8 image (`channels`
    /// per pixel) into `out` as channel-planar (C x patch x patch); padding is 0.
    pub fn extract_u8(&self, image: &[u8], channels: usize, n: usize, out: &mut [u8]) {
        let p = self.patch;
        let (r0, c0) = self.top_left(n);
        for ch in 0..channels {
            for y in 0..p {
                for x in 0..p {
                    out[(ch * p + y) * p + x] = match self.scene_pixel(r0 + y, c0 + x) {
                        Some((r, c)) => image[(r * self.width + c) * channels + ch],
                        None => 0,
                    };
                }
            }
        }
    }

    /// How many patches cover each padded pixel (row-major, padded size).
    pub fn coverage(&self) -> Vec<u32> {
        let mut cov = vec![0u32; self.padded_height * self.padded_width];
        for n in 0..self.len() {
            let (r0, c0) = self.top_left(n);
            for y in r0..r0 + self.patch {
                for x in c0..c0 + self.patch {
                    cov[y * self.padded_width + x] += 1;
                }
            }
        }
        cov
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scene_pixel_is_covered() {
        let g = PatchGrid::method(100, 70);
        let cov = g.coverage();
        for r in 0..g.padded_height {
            for c in 0..g.padded_width {
                if g.scene_pixel(r, c).is_some() {
                    assert!(cov[r * g.padded_width + c] > 0, "({r},{c})");
                }
            }
        }
    }

    #[test]
    fn extraction_puts_padding_at_top_left() {
        let g = PatchGrid::new(3, 3, 2, 1);
        // padded 4 x 4 with pad 1 at top/left
        assert_eq!((g.padded_height, g.pad_top, g.n_rows), (4, 1, 3));
        let img: Vec<u8> = (1..=9).collect();
        let mut out = [0u8; 4];
        g.extract_u8(&img, 1, 0, &mut out);
        assert_eq!(out, [0, 0, 0, 1]);
        g.extract_u8(&img, 1, 8, &mut out);
        assert_eq!(out, [5, 6, 8, 9]);
    }
}
