//! The 64 x 64 / stride 32 patch grid of method.md section 3: the scene is
//! zero-padded at the top and left to ((n - 64) // 32 + 1) * 32 + 64 per
//! dimension, and patch r * n_cols + c starts at (32 r, 32 c) in padded space.

use serde::Serialize;

use crate::scene::Window;

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
        self.extract_u8_in(image, self.whole(), channels, n, out);
    }

    /// The whole scene as a window.
    pub fn whole(&self) -> Window {
        Window {
            row0: 0,
            col0: 0,
            height: self.height,
            width: self.width,
        }
    }

    /// [`Self::extract_u8`] from an image of the scene's `window` only (it
    /// must hold the patch's scene pixels: [`Self::footprint`]).
    pub fn extract_u8_in(
        &self,
        image: &[u8],
        window: Window,
        channels: usize,
        n: usize,
        out: &mut [u8],
    ) {
        let p = self.patch;
        let (r0, c0) = self.top_left(n);
        for ch in 0..channels {
            for y in 0..p {
                for x in 0..p {
                    out[(ch * p + y) * p + x] = match self.scene_pixel(r0 + y, c0 + x) {
                        Some((r, c)) => {
                            let at = (r - window.row0) * window.width + c - window.col0;
                            image[at * channels + ch]
                        }
                        None => 0,
                    };
                }
            }
        }
    }

    /// The patches that hold any pixel of `window` (of the scene), in grid
    /// order.
    pub fn patches_touching(&self, window: Window) -> Vec<usize> {
        let stride = self.stride.max(1);
        // Patch i spans padded [i * stride, i * stride + patch).
        let span = |first: usize, len: usize, count: usize| {
            let end = first + len;
            let lo = (first + 1).saturating_sub(self.patch).div_ceil(stride);
            let hi = end.div_ceil(stride).min(count);
            lo..hi
        };
        let rows = span(window.row0 + self.pad_top, window.height, self.n_rows);
        let cols = span(window.col0 + self.pad_left, window.width, self.n_cols);
        rows.flat_map(|r| cols.clone().map(move |c| r * self.n_cols + c))
            .collect()
    }

    /// The scene pixels under `patches`: the smallest window that holds
    /// them (None when they lie in the padding only).
    pub fn footprint(&self, patches: &[usize]) -> Option<Window> {
        let mut lo = (usize::MAX, usize::MAX);
        let mut hi = (0, 0);
        for &n in patches {
            let (r0, c0) = self.top_left(n);
            let rows = r0.max(self.pad_top)..(r0 + self.patch).min(self.padded_height);
            let cols = c0.max(self.pad_left)..(c0 + self.patch).min(self.padded_width);
            if rows.is_empty() || cols.is_empty() {
                continue;
            }
            lo = (lo.0.min(rows.start), lo.1.min(cols.start));
            hi = (hi.0.max(rows.end), hi.1.max(cols.end));
        }
        (lo.0 < hi.0).then(|| Window {
            row0: lo.0 - self.pad_top,
            col0: lo.1 - self.pad_left,
            height: hi.0 - lo.0,
            width: hi.1 - lo.1,
        })
    }

    /// Patches that together cover every scene pixel, as few as the grid
    /// allows: along each axis, greedily the patch that starts furthest on
    /// while still covering the first pixel not yet covered (padding is not
    /// sought). On the demo's grid (512 pixels, patches of 64 at stride 32)
    /// that is 8 x 8 of the 16 x 16 patches, each pixel in exactly one. In
    /// grid order.
    pub fn covering_subset(&self) -> Vec<usize> {
        let stride = self.stride.max(1);
        let pick = |n: usize, pad: usize, padded: usize| -> Vec<usize> {
            let mut out = Vec::new();
            let mut covered_to = pad;
            while covered_to < padded && n > 0 {
                let i = (covered_to / stride).min(n - 1);
                if out.last() == Some(&i) {
                    break; // the grid's last patch reaches no further
                }
                out.push(i);
                covered_to = i * stride + self.patch;
            }
            out
        };
        let cols = pick(self.n_cols, self.pad_left, self.padded_width);
        pick(self.n_rows, self.pad_top, self.padded_height)
            .into_iter()
            .flat_map(|r| cols.iter().map(move |&c| r * self.n_cols + c))
            .collect()
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

    /// Against the definition: a patch touches a window when one of its
    /// pixels is a scene pixel inside it; the footprint holds every scene
    /// pixel of those patches.
    #[test]
    fn the_patches_touching_a_window_and_their_footprint() {
        for (h, w, p, s) in [
            (50, 37, 16, 8),
            (13, 70, 8, 3),
            (9, 9, 16, 8),
            (64, 64, 16, 16),
        ] {
            let g = PatchGrid::new(h, w, p, s);
            for (row0, col0, wh, ww) in [
                (0, 0, h, w),
                (5, 3, 7, 11),
                (h - 1, w - 1, 1, 1),
                (2, 0, 1, w),
            ] {
                let win = Window {
                    row0,
                    col0,
                    height: wh,
                    width: ww,
                };
                let pixels = |n: usize| {
                    let (r0, c0) = g.top_left(n);
                    (0..p * p).filter_map(move |i| g.scene_pixel(r0 + i / p, c0 + i % p))
                };
                let inside = |(r, c): (usize, usize)| {
                    (row0..row0 + wh).contains(&r) && (col0..col0 + ww).contains(&c)
                };
                let want: Vec<usize> = (0..g.len()).filter(|&n| pixels(n).any(inside)).collect();
                let got = g.patches_touching(win);
                assert_eq!(got, want, "{h}x{w} p{p} s{s} window {win:?}");
                let fp = g.footprint(&got).unwrap();
                assert!(fp.fits(h, w));
                for n in got {
                    for (r, c) in pixels(n) {
                        assert!((fp.row0..fp.row0 + fp.height).contains(&r));
                        assert!((fp.col0..fp.col0 + fp.width).contains(&c));
                    }
                }
            }
        }
    }

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
    fn the_covering_subset_covers_every_scene_pixel_with_few_patches() {
        for (h, w, patch, stride) in [
            (512, 512, 64, 32),
            (100, 70, 64, 32),
            (13, 11, 6, 4),
            (9, 9, 4, 4),
            (40, 30, 8, 3),
            (3, 2, 8, 4),
        ] {
            let g = PatchGrid::new(h, w, patch, stride);
            let subset = g.covering_subset();
            let mut cov = vec![0u32; g.padded_height * g.padded_width];
            for &n in &subset {
                let (r0, c0) = g.top_left(n);
                for y in r0..r0 + patch {
                    for x in c0..c0 + patch {
                        cov[y * g.padded_width + x] += 1;
                    }
                }
            }
            let scene = |i: usize| g.scene_pixel(i / g.padded_width, i % g.padded_width);
            let what = format!("{h} x {w}, patch {patch}, stride {stride}");
            assert!(
                (0..cov.len()).all(|i| scene(i).is_none() || cov[i] > 0),
                "{what}"
            );
            assert!(subset.windows(2).all(|p| p[0] < p[1]), "{what}");
            // Each patch along an axis reaches at least patch - stride + 1
            // further than the one before.
            let reach = patch - stride + 1;
            let most = (h.div_ceil(reach) + 1) * (w.div_ceil(reach) + 1);
            assert!(
                subset.len() <= most.min(g.len()),
                "{what}: {}",
                subset.len()
            );
        }
        // The demo's grid: each pixel in exactly one of 64 patches.
        let g = PatchGrid::new(512, 512, 64, 32);
        assert_eq!(g.covering_subset().len(), 64);
        assert_eq!(g.covering_subset()[..3], [17, 19, 21]);
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
