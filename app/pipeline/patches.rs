//! The pooled 64 x 64 patches of every modality that Stage A trains on, and
//! its augmentation: bicubic zoom to s x s (s uniform in 64..=80), a random
//! 64 x 64 crop and a horizontal flip with p = 0.5.

use super::modality::Modality;
use super::patch_grid::PatchGrid;
use crate::products::Rgb8Image;
use crate::products::stretch::network_from_u8;

/// All patches of the given renderings, channel-planar u8 (3 x P x P each).
pub struct PatchPool {
    pub grid: PatchGrid,
    /// (modality, patch index) of each entry.
    pub entries: Vec<(Modality, usize)>,
    /// Planar u8 data of each entry, 3 * P * P values.
    pub data: Vec<Vec<u8>>,
}

impl PatchPool {
    /// Cuts every rendering into the method's patch grid (64 x 64, stride 32).
    pub fn from_renderings(images: &[(Modality, &Rgb8Image)]) -> Self {
        let (h, w) = images
            .first()
            .map(|(_, i)| (i.height, i.width))
            .unwrap_or((0, 0));
        Self::with_grid(images, PatchGrid::method(h, w))
    }

    /// Cuts every rendering into `grid` (smaller patches for tiny models).
    pub fn with_grid(images: &[(Modality, &Rgb8Image)], grid: PatchGrid) -> Self {
        let p = grid.patch;
        let mut entries = Vec::new();
        let mut data = Vec::new();
        for (m, image) in images {
            for n in 0..grid.len() {
                let mut out = vec![0u8; 3 * p * p];
                grid.extract_u8(&image.data, 3, n, &mut out);
                entries.push((*m, n));
                data.push(out);
            }
        }
        Self {
            grid,
            entries,
            data,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Keys cubic convolution weight with a = -0.75 (PyTorch's bicubic).
fn cubic(x: f64) -> f64 {
    let a = -0.75;
    let x = x.abs();
    if x <= 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    } else {
        0.0
    }
}

/// Bicubic resize of one plane (align_corners = false, clamped borders).
pub fn resize_bicubic(src: &[f32], h: usize, w: usize, oh: usize, ow: usize) -> Vec<f32> {
    let taps = |o: usize, n_in: usize, n_out: usize| -> Vec<([usize; 4], [f64; 4])> {
        (0..o)
            .map(|i| {
                let x = (i as f64 + 0.5) * n_in as f64 / n_out as f64 - 0.5;
                let x0 = x.floor();
                let t = x - x0;
                let mut idx = [0usize; 4];
                let mut wt = [0f64; 4];
                for k in 0..4 {
                    let j = x0 as i64 - 1 + k as i64;
                    idx[k] = j.clamp(0, n_in as i64 - 1) as usize;
                    wt[k] = cubic(t - (k as f64 - 1.0));
                }
                (idx, wt)
            })
            .collect()
    };
    let ty = taps(oh, h, oh);
    let tx = taps(ow, w, ow);
    // Rows first, then columns.
    let mut tmp = vec![0f32; h * ow];
    for r in 0..h {
        for (c, (idx, wt)) in tx.iter().enumerate() {
            let s: f64 = (0..4).map(|k| wt[k] * f64::from(src[r * w + idx[k]])).sum();
            tmp[r * ow + c] = s as f32;
        }
    }
    let mut out = vec![0f32; oh * ow];
    for (r, (idx, wt)) in ty.iter().enumerate() {
        for c in 0..ow {
            let s: f64 = (0..4)
                .map(|k| wt[k] * f64::from(tmp[idx[k] * ow + c]))
                .sum();
            out[r * ow + c] = s as f32;
        }
    }
    out
}

/// An augmented sample in network space (3 x P x P, values in about [-1, 1]).
/// `zoom` is s, `crop` the top-left of the crop in the zoomed patch.
pub fn augment(planar: &[u8], p: usize, zoom: usize, crop: (usize, usize), flip: bool) -> Vec<f32> {
    let mut out = Vec::with_capacity(3 * p * p);
    for ch in 0..3 {
        let plane: Vec<f32> = planar[ch * p * p..(ch + 1) * p * p]
            .iter()
            .map(|&v| network_from_u8(v))
            .collect();
        let zoomed = if zoom == p {
            plane
        } else {
            resize_bicubic(&plane, p, p, zoom, zoom)
        };
        for r in 0..p {
            for c in 0..p {
                let cc = if flip { p - 1 - c } else { c };
                out.push(zoomed[(crop.0 + r) * zoom + crop.1 + cc]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bicubic_keeps_constants_and_identity() {
        let flat = vec![0.25f32; 16];
        assert!(
            resize_bicubic(&flat, 4, 4, 7, 7)
                .iter()
                .all(|v| (v - 0.25).abs() < 1e-6)
        );
        let ramp: Vec<f32> = (0..16).map(|v| v as f32).collect();
        assert_eq!(resize_bicubic(&ramp, 4, 4, 4, 4), ramp);
    }

    #[test]
    fn augmentation_without_zoom_is_a_flip() {
        let p = 2;
        let planar: Vec<u8> = vec![0, 255, 0, 255, 0, 0, 0, 0, 255, 255, 255, 255];
        let same = augment(&planar, p, p, (0, 0), false);
        assert_eq!(&same[..4], &[-1.0, 1.0, -1.0, 1.0]);
        let flipped = augment(&planar, p, p, (0, 0), true);
        assert_eq!(&flipped[..4], &[1.0, -1.0, 1.0, -1.0]);
    }
}
