//! Prediction merging (method.md section 3): per-patch class probabilities
//! are summed on the padded canvas, divided by the number of patches covering
//! each pixel, and reduced to a class map (argmax), the maximum probability
//! and the entropy of the merged distribution, with the padding cropped off.
//! The sums are kept in fixed point (integers in units of 2^-40), whose
//! addition is exact: the merged map does not depend on the order in which
//! the patches arrive (the app reads stored patches before computing the
//! others; the headless run goes in grid order), where f32 sums differed in
//! the last bits and so, now and then, in a pixel's class.

use super::patch_grid::PatchGrid;
use crate::scene::Window;

/// The merged result on the scene grid (row-major, H x W).
#[derive(Debug, Clone, PartialEq)]
pub struct MergedPrediction {
    /// Classes 1..=K (0 never appears: every scene pixel is covered).
    pub class_map: Vec<u8>,
    /// Probability of the chosen class.
    pub max_probability: Vec<f32>,
    /// Entropy (nats) of the merged distribution.
    pub entropy: Vec<f32>,
}

/// Units of a probability in the canvas's fixed-point sums: 2^40, so that
/// the sums of 2^23 patches' probabilities fit in a u64 and what rounding
/// drops (below 1e-12) is far below what an f32 mean keeps.
const FIXED_ONE: f64 = (1u64 << 40) as f64;

/// Sums of patch probabilities over the padded canvas, or over one window
/// of the scene (a tile of a tiled prediction: every patch that touches it
/// is added, and its pixels come out as they do from the whole canvas).
pub struct ProbabilityCanvas {
    grid: PatchGrid,
    classes: usize,
    /// The region kept, in padded coordinates: top, left, height, width.
    region: (usize, usize, usize, usize),
    /// classes x region, in units of 1 / FIXED_ONE
    sum: Vec<u64>,
    coverage: Vec<u32>,
}

impl ProbabilityCanvas {
    pub fn new(grid: PatchGrid, classes: usize) -> Self {
        Self::over(grid, classes, (0, 0, grid.padded_height, grid.padded_width))
    }

    /// A canvas that keeps only the scene pixels of `window`.
    pub fn for_window(grid: PatchGrid, classes: usize, window: Window) -> Self {
        let region = (
            window.row0 + grid.pad_top,
            window.col0 + grid.pad_left,
            window.height,
            window.width,
        );
        Self::over(grid, classes, region)
    }

    fn over(grid: PatchGrid, classes: usize, region: (usize, usize, usize, usize)) -> Self {
        let pixels = region.2 * region.3;
        Self {
            sum: vec![0; classes * pixels],
            coverage: vec![0; pixels],
            grid,
            classes,
            region,
        }
    }

    /// Adds patch `n`'s probabilities, laid out classes x P x P (the part
    /// inside the canvas's region).
    pub fn add_patch(&mut self, n: usize, probabilities: &[f32]) {
        let p = self.grid.patch;
        let (r0, c0) = self.grid.top_left(n);
        let (top, left, height, width) = self.region;
        let plane = height * width;
        for y in 0..p {
            let Some(row) = (r0 + y).checked_sub(top).filter(|&r| r < height) else {
                continue;
            };
            for x in 0..p {
                let Some(col) = (c0 + x).checked_sub(left).filter(|&c| c < width) else {
                    continue;
                };
                let at = row * width + col;
                self.coverage[at] += 1;
                for k in 0..self.classes {
                    // Softmax gives [0, 1]; the clamp keeps the integer
                    // sums from overflowing whatever comes.
                    let q = (f64::from(probabilities[(k * p + y) * p + x]) * FIXED_ONE).round();
                    self.sum[k * plane + at] += q.min(FIXED_ONE) as u64;
                }
            }
        }
    }

    /// Averages, crops the padding and reduces per pixel: the scene (or
    /// the window) row-major.
    pub fn finish(&self) -> MergedPrediction {
        let g = &self.grid;
        let (top, left, height, width) = self.region;
        let plane = height * width;
        // The scene pixels of the region.
        let rows = top.max(g.pad_top) - g.pad_top..(top + height).min(g.padded_height) - g.pad_top;
        let cols =
            left.max(g.pad_left) - g.pad_left..(left + width).min(g.padded_width) - g.pad_left;
        let out_width = cols.len();
        let n = rows.len() * out_width;
        let mut out = MergedPrediction {
            class_map: vec![0; n],
            max_probability: vec![0.0; n],
            entropy: vec![0.0; n],
        };
        for (i_r, r) in rows.clone().enumerate() {
            for (i_c, c) in cols.clone().enumerate() {
                let at = (r + g.pad_top - top) * width + c + g.pad_left - left;
                let cov = f64::from(self.coverage[at].max(1)) * FIXED_ONE;
                let mut best = (0usize, f32::NEG_INFINITY);
                let mut h = 0f32;
                for k in 0..self.classes {
                    let p = (self.sum[k * plane + at] as f64 / cov) as f32;
                    if p > best.1 {
                        best = (k, p);
                    }
                    if p > 0.0 {
                        h -= p * p.ln();
                    }
                }
                let i = i_r * out_width + i_c;
                out.class_map[i] = (best.0 + 1) as u8;
                out.max_probability[i] = best.1;
                out.entropy[i] = h;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same patches in grid order and in another give the same bits.
    #[test]
    fn the_merged_map_does_not_depend_on_the_order_of_the_patches() {
        let g = PatchGrid::new(13, 11, 6, 2);
        let classes = 3;
        let probs = |n: usize| -> Vec<f32> {
            (0..36)
                .flat_map(|i| {
                    // Values whose f32 sums round differently by order.
                    let a = 0.1 + ((n * 37 + i * 11) % 97) as f32 / 97.0 * 0.7;
                    let b = (1.0 - a) * (0.3 + ((n + i) % 7) as f32 / 17.0);
                    [a, b, 1.0 - a - b]
                })
                .enumerate()
                .fold(vec![0f32; classes * 36], |mut out, (j, v)| {
                    out[(j % 3) * 36 + j / 3] = v;
                    out
                })
        };
        let mut forward = ProbabilityCanvas::new(g, classes);
        let mut backward = ProbabilityCanvas::new(g, classes);
        for n in 0..g.len() {
            forward.add_patch(n, &probs(n));
            backward.add_patch(g.len() - 1 - n, &probs(g.len() - 1 - n));
        }
        assert_eq!(forward.finish(), backward.finish());
    }

    #[test]
    fn overlaps_of_one_two_and_four_patches_average_exactly() {
        // 3 x 3 scene, 2 x 2 patches, stride 1: padded 4 x 4 with one row and
        // column of padding; 9 patches. Scene pixel (0, 0) = padded (1, 1) is
        // covered by 4 patches, padded corners by 1, padded edges by 2.
        let g = PatchGrid::new(3, 3, 2, 1);
        assert_eq!((g.padded_height, g.pad_top, g.len()), (4, 1, 9));
        let classes = 2;
        let mut canvas = ProbabilityCanvas::new(g, classes);
        // Patch n predicts class 1 with probability q_n = n / 8 (exact in f32).
        let q = |n: usize| n as f32 / 8.0;
        for n in 0..g.len() {
            let mut probs = vec![0f32; classes * 4];
            probs[..4].iter_mut().for_each(|v| *v = q(n));
            probs[4..].iter_mut().for_each(|v| *v = 1.0 - q(n));
            canvas.add_patch(n, &probs);
        }
        let merged = canvas.finish();
        // The patches covering padded (R, C) are those with top-left (R-1..=R, C-1..=C) in range.
        for r in 0..3 {
            for c in 0..3 {
                let (pr, pc): (usize, usize) = (r + 1, c + 1);
                let mut covering = Vec::new();
                for tr in pr.saturating_sub(1)..=pr.min(2) {
                    for tc in pc.saturating_sub(1)..=pc.min(2) {
                        covering.push(tr * 3 + tc);
                    }
                }
                let p1: f32 = covering.iter().map(|&n| q(n)).sum::<f32>() / covering.len() as f32;
                let want_class = if p1 > 1.0 - p1 { 1 } else { 2 };
                let i = r * 3 + c;
                assert_eq!(merged.class_map[i], want_class, "({r},{c})");
                assert_eq!(merged.max_probability[i], p1.max(1.0 - p1), "({r},{c})");
            }
        }
        // Coverage 4 inside, 2 on the bottom/right edge, 1 at the bottom-right corner.
        assert_eq!(canvas.coverage[5], 4);
        assert_eq!(canvas.coverage[4 * 4 - 1], 1);
        assert_eq!(canvas.coverage[3 * 4 + 1], 2);
        // Entropy of a certain pixel is 0, of a 50/50 pixel ln 2.
        let mut c2 = ProbabilityCanvas::new(PatchGrid::new(2, 2, 2, 1), 2);
        c2.add_patch(3, &[1.0, 1.0, 1.0, 0.5, 0.0, 0.0, 0.0, 0.5]);
        let m = c2.finish();
        assert_eq!(m.entropy[0], 0.0);
        assert!((m.entropy[3] - std::f32::consts::LN_2).abs() < 1e-7);
    }
}
