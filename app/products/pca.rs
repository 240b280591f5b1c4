//! The PCA modality: 3 principal components of the spectra, fitted in f64
//! over pixels whose spectrum is complete and not all zero, centred and not
//! whitened, with scikit-learn's sign rule; each component stretched p2/p98
//! over the fitted pixels. Unfitted pixels are 0.
//!
//! The scatter matrix is summed chunk by chunk (a few MB at a time), so memory
//! stays near the cube's own size: exactly in integers when every value is an
//! integer (most cubes; `integer_scatter`), else from mean-centred f64 copies,
//! the centring avoiding the cancellation of X^T X - n m m^T.

use faer::linalg::matmul::triangular::{BlockStructure, matmul};
use faer::{Accum, Mat, MatRef, Par, Side};
use rayon::prelude::*;
use serde::Serialize;

use super::error::ProductError;
use super::fitted_chunks::for_each_chunk;
use super::integer_scatter::{BandRange, integer_offsets, integer_scatter};
use super::percentile::percentiles_in_place;
use super::stretch::{quantize, unit_from_percentiles};
use crate::scene::HsiCube;
use crate::scene::{ChannelStretch, Rgb8Image};

/// Pixels per covariance chunk.
const CHUNK: usize = 8192;

/// A fitted PCA, as scikit-learn reports it.
#[derive(Debug, Clone, Serialize)]
pub struct PcaFit {
    /// Cube bands the fit used (bands with no valid sample are left out).
    pub bands_used: Vec<usize>,
    /// Bands left out because they hold no valid sample.
    pub bands_excluded: Vec<usize>,
    /// Pixels the fit used.
    pub n_fit_pixels: usize,
    pub mean: Vec<f64>,
    /// Rows = components, columns = `bands_used`.
    pub components: Vec<Vec<f64>>,
    pub explained_variance: Vec<f64>,
    pub explained_variance_ratio: Vec<f64>,
    pub singular_values: Vec<f64>,
    /// How the scatter matrix was summed.
    pub scatter: ScatterSum,
}

/// How the scatter matrix was summed (render.json says it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScatterSum {
    /// Every value an integer: summed exactly in integers.
    ExactInteger,
    /// Mean-centred f64 products.
    F64,
}

/// Which pixels enter the fit (every used band valid, not all zero), and
/// each used band's range. Computed in parallel over pixel chunks.
fn fit_mask(cube: &HsiCube, bands: &[usize]) -> (Vec<bool>, Vec<BandRange>) {
    let n = cube.grid.len();
    let mut mask = vec![false; n];
    let ranges = mask
        .par_chunks_mut(CHUNK)
        .enumerate()
        .map(|(k, out)| {
            let start = k * CHUNK;
            let mut valid = vec![true; out.len()];
            let mut nonzero = vec![false; out.len()];
            let mut ranges = Vec::with_capacity(bands.len());
            for &b in bands {
                let band = &cube.band(b)[start..start + out.len()];
                for ((v, nz), &x) in valid.iter_mut().zip(nonzero.iter_mut()).zip(band) {
                    *v &= !x.is_nan();
                    *nz |= x != 0.0;
                }
                ranges.push(BandRange::of(band));
            }
            for ((m, v), nz) in out.iter_mut().zip(&valid).zip(&nonzero) {
                *m = *v && *nz;
            }
            ranges
        })
        .reduce(
            || vec![BandRange::EMPTY; bands.len()],
            |a, b| a.into_iter().zip(b).map(|(x, y)| x.merge(y)).collect(),
        );
    (mask, ranges)
}

/// Each band's mean over the fitted pixels, in f64.
fn band_means(cube: &HsiCube, bands: &[usize], mask: &[bool], n_fit: usize) -> Vec<f64> {
    bands
        .par_iter()
        .map(|&b| {
            let s: f64 = cube
                .band(b)
                .iter()
                .zip(mask)
                .filter(|(_, m)| **m)
                .map(|(v, _)| f64::from(*v))
                .sum();
            s / n_fit as f64
        })
        .collect()
}

/// Lower triangle of the scatter matrix of the mean-centred data in f64,
/// chunk by chunk (a few MB of centred copies at a time).
fn f64_scatter(cube: &HsiCube, bands: &[usize], mask: &[bool], mean: &[f64]) -> Mat<f64> {
    let nb = bands.len();
    let mut scatter = Mat::<f64>::zeros(nb, nb);
    let mut buf = vec![0f64; CHUNK * nb];
    for_each_chunk(mask, 0..cube.grid.len(), CHUNK, |chunk| {
        let m = chunk.rows.len();
        for (j, (&b, &mu)) in bands.iter().zip(mean).enumerate() {
            chunk.gather(cube.band(b), &mut buf[j * CHUNK..j * CHUNK + m], |v| {
                f64::from(v) - mu
            });
        }
        let x = MatRef::from_column_major_slice_with_stride(&buf[..], m, nb, CHUNK);
        matmul(
            scatter.as_mut(),
            BlockStructure::TriangularLower,
            Accum::Add,
            x.transpose(),
            BlockStructure::Rectangular,
            x,
            BlockStructure::Rectangular,
            1.0,
            Par::rayon(0),
        );
    });
    scatter
}

/// How the scatter matrix is to be summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScatterPath {
    /// Exact integer sums when the values allow, else f64 (what the app does).
    Auto,
    /// Always the f64 product (tests and benchmarks compare the two).
    F64,
}

/// Fits `n_components` principal components.
pub fn fit_pca(cube: &HsiCube, n_components: usize) -> Result<(PcaFit, Vec<bool>), ProductError> {
    fit_pca_with(cube, n_components, ScatterPath::Auto)
}

/// [`fit_pca`] with the scatter path chosen.
pub fn fit_pca_with(
    cube: &HsiCube,
    n_components: usize,
    path: ScatterPath,
) -> Result<(PcaFit, Vec<bool>), ProductError> {
    let (bands_used, bands_excluded): (Vec<usize>, Vec<usize>) =
        (0..cube.bands).partition(|&b| !cube.band_is_empty(b));
    let nb = bands_used.len();
    if nb < 2 || nb < n_components {
        return Err(ProductError::TooFewBands {
            usable: nb,
            needed: n_components.max(2),
        });
    }
    let (mask, ranges) = fit_mask(cube, &bands_used);
    let n_fit = mask.iter().filter(|m| **m).count();
    if n_fit < 2 {
        return Err(ProductError::NoValidPixels {
            found: n_fit,
            pixels: mask.len(),
        });
    }
    let integer = match (path, integer_offsets(&ranges)) {
        (ScatterPath::Auto, Some((offsets, max_dev))) => {
            integer_scatter(cube, &bands_used, &mask, &offsets, max_dev)
        }
        _ => None,
    };
    let (mean, scatter, sum) = match integer {
        Some(sums) => {
            let scatter =
                Mat::<f64>::from_fn(nb, nb, |i, j| if i >= j { sums.centred(i, j) } else { 0.0 });
            (sums.mean(), scatter, ScatterSum::ExactInteger)
        }
        None => {
            let mean = band_means(cube, &bands_used, &mask, n_fit);
            let scatter = f64_scatter(cube, &bands_used, &mask, &mean);
            (mean, scatter, ScatterSum::F64)
        }
    };
    let denom = (n_fit - 1) as f64;
    let cov = Mat::<f64>::from_fn(nb, nb, |i, j| {
        let (r, c) = if i >= j { (i, j) } else { (j, i) };
        scatter[(r, c)] / denom
    });
    let eig = cov
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| ProductError::Invalid(format!("PCA eigendecomposition failed: {e:?}")))?;
    let values = eig.S().column_vector();
    let vectors = eig.U();
    // Ascending from faer; sklearn reports descending, clipped at 0.
    let all: Vec<f64> = (0..nb).rev().map(|k| values[k].max(0.0)).collect();
    let total: f64 = all.iter().sum();
    let mut components = Vec::with_capacity(n_components);
    for k in 0..n_components {
        let col = nb - 1 - k;
        let mut v: Vec<f64> = (0..nb).map(|r| vectors[(r, col)]).collect();
        // sklearn's svd_flip (u_based_decision=False): the entry of largest
        // magnitude (first one on ties) is made positive.
        let mut arg = 0;
        for (i, x) in v.iter().enumerate() {
            if x.abs() > v[arg].abs() {
                arg = i;
            }
        }
        if v[arg] < 0.0 {
            v.iter_mut().for_each(|x| *x = -*x);
        }
        components.push(v);
    }
    let explained_variance: Vec<f64> = all[..n_components].to_vec();
    let fit = PcaFit {
        bands_used,
        bands_excluded,
        n_fit_pixels: n_fit,
        mean,
        explained_variance_ratio: explained_variance.iter().map(|v| v / total).collect(),
        singular_values: explained_variance
            .iter()
            .map(|v| (v * denom).sqrt())
            .collect(),
        explained_variance,
        components,
        scatter: sum,
    };
    Ok((fit, mask))
}

/// Scores (x - mean) . component of every fitted pixel, per component, in
/// the order of the fitted pixels. Parallel over pixel chunks; each chunk
/// reads every band once and accumulates all components.
pub fn project(cube: &HsiCube, fit: &PcaFit, mask: &[bool]) -> Vec<Vec<f64>> {
    let k = fit.components.len();
    let n = mask.len();
    // Each chunk writes its fitted pixels' scores straight into its own
    // part of the outputs (no second copy of the scores: on a Sentinel-2
    // tile they are 2.9 GB).
    let counts: Vec<usize> = mask
        .chunks(CHUNK)
        .map(|c| c.iter().filter(|&&m| m).count())
        .collect();
    let total: usize = counts.iter().sum();
    let mut out = vec![vec![0f64; total]; k];
    let mut parts: Vec<Vec<&mut [f64]>> = counts.iter().map(|_| Vec::with_capacity(k)).collect();
    for scores in out.iter_mut() {
        let mut rest = scores.as_mut_slice();
        for (part, &count) in parts.iter_mut().zip(&counts) {
            let (mine, after) = rest.split_at_mut(count);
            part.push(mine);
            rest = after;
        }
    }
    parts.into_par_iter().enumerate().for_each(|(c, mut acc)| {
        let start = c * CHUNK;
        let end = (start + CHUNK).min(n);
        let rows: Vec<usize> = (start..end).filter(|&i| mask[i]).collect();
        let full = rows.len() == end - start;
        for (j, &b) in fit.bands_used.iter().enumerate() {
            let band = cube.band(b);
            let mu = fit.mean[j];
            for (comp, scores) in fit.components.iter().zip(acc.iter_mut()) {
                let w = comp[j];
                if full {
                    for (s, &x) in scores.iter_mut().zip(&band[start..end]) {
                        *s += (f64::from(x) - mu) * w;
                    }
                } else {
                    for (s, &i) in scores.iter_mut().zip(&rows) {
                        *s += (f64::from(band[i]) - mu) * w;
                    }
                }
            }
        }
    });
    out
}

/// Fits the PCA and renders PC1..PC3 as R, G, B.
pub fn render_pca(cube: &HsiCube) -> Result<(Rgb8Image, PcaFit), ProductError> {
    let (fit, mask) = fit_pca(cube, 3)?;
    let scores = project(cube, &fit, &mask);
    let n = cube.grid.len();
    let mut data = vec![0u8; 3 * n];
    let mut stretch = Vec::with_capacity(3);
    for (c, s) in scores.iter().enumerate() {
        let mut tmp = s.clone();
        let p =
            percentiles_in_place(&mut tmp, &[2.0, 98.0]).ok_or(ProductError::NoValidPixels {
                found: 0,
                pixels: n,
            })?;
        let (p2, p98) = (p[0], p[1]);
        scores_into(s, &mask, c, (p2, p98), &mut data);
        stretch.push(ChannelStretch::exact(
            c,
            format!("PC{}", c + 1),
            p2,
            p98,
            s.len(),
        ));
    }
    Ok((
        Rgb8Image {
            width: cube.grid.width,
            height: cube.grid.height,
            data,
            stretch,
        },
        fit,
    ))
}

/// Channel `c` of an interleaved RGB image from the scores of the pixels
/// in `mask` (in their order) stretched between `limits`; 0 elsewhere.
fn scores_into(scores: &[f64], mask: &[bool], c: usize, limits: (f64, f64), data: &mut [u8]) {
    let mut k = 0;
    for (i, m) in mask.iter().enumerate() {
        if *m {
            data[3 * i + c] = quantize(unit_from_percentiles(scores[k], limits.0, limits.1));
            k += 1;
        }
    }
}

/// PC1..PC3 of a fit made elsewhere (a trained model's: its bands, mean
/// and components) stretched between given limits, pixel for pixel what
/// [`render_pca`] gives on the cube it was fitted on. Pixels with a NaN or
/// all zeros over the fit's bands are 0, as there.
pub fn render_pca_with(
    cube: &HsiCube,
    fit: &PcaFit,
    limits: &[(f64, f64); 3],
) -> Result<Rgb8Image, ProductError> {
    if let Some(&b) = fit.bands_used.iter().find(|&&b| b >= cube.bands) {
        return Err(ProductError::BandOutOfRange {
            band: b,
            bands: cube.bands,
        });
    }
    let (mask, _) = fit_mask(cube, &fit.bands_used);
    let scores = project(cube, fit, &mask);
    let mut data = vec![0u8; 3 * cube.grid.len()];
    let mut stretch = Vec::with_capacity(3);
    for (c, (s, &lim)) in scores.iter().zip(limits).enumerate() {
        scores_into(s, &mask, c, lim, &mut data);
        stretch.push(ChannelStretch::fixed(
            c,
            format!("PC{}", c + 1),
            lim.0,
            lim.1,
        ));
    }
    Ok(Rgb8Image {
        width: cube.grid.width,
        height: cube.grid.height,
        data,
        stretch,
    })
}

/// A fit of `bands_used`, `mean` and `components` alone (what projecting
/// needs; the fit's statistics are not kept).
pub fn pca_projection(bands_used: Vec<usize>, mean: Vec<f64>, components: Vec<Vec<f64>>) -> PcaFit {
    PcaFit {
        bands_used,
        bands_excluded: Vec::new(),
        n_fit_pixels: 0,
        mean,
        components,
        explained_variance: Vec::new(),
        explained_variance_ratio: Vec::new(),
        singular_values: Vec::new(),
        scatter: ScatterSum::F64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::PixelGrid;

    /// Integer spectra around 3000 with a trend per band, some all-zero
    /// pixels and a NaN, so both the offsets and the mask matter.
    fn integer_cube() -> HsiCube {
        let (w, h, bands) = (53, 41, 11);
        let n = w * h;
        let mut data = vec![0f32; bands * n];
        for b in 0..bands {
            for p in 0..n {
                let (r, c) = ((p / w) as f32, (p % w) as f32);
                let v = 3000.0 + 40.0 * r * (1.0 + b as f32 * 0.1) - 25.0 * c
                    + ((p * 31 + b * 17) % 23) as f32;
                data[b * n + p] = if p % 37 == 0 { 0.0 } else { v.round() };
            }
        }
        data[5 * n + 100] = f32::NAN;
        HsiCube {
            grid: PixelGrid::plain(w, h),
            bands,
            data,
            wavelengths_nm: None,
            band_names: vec![String::new(); bands],
        }
    }

    #[test]
    fn the_exact_integer_sum_agrees_with_the_f64_product() {
        let cube = integer_cube();
        let (exact, mask) = fit_pca_with(&cube, 3, ScatterPath::Auto).unwrap();
        let (float, _) = fit_pca_with(&cube, 3, ScatterPath::F64).unwrap();
        if crate::products::integer_scatter::available() {
            assert_eq!(exact.scatter, ScatterSum::ExactInteger);
        }
        assert_eq!(float.scatter, ScatterSum::F64);
        assert_eq!(exact.n_fit_pixels, mask.iter().filter(|m| **m).count());
        assert!(exact.n_fit_pixels < cube.grid.len() - 50);
        for k in 0..3 {
            let rel = (exact.explained_variance[k] - float.explained_variance[k]).abs()
                / float.explained_variance[k];
            assert!(rel < 1e-10, "variance {k}: {rel}");
            for (a, b) in exact.components[k].iter().zip(&float.components[k]) {
                assert!((a - b).abs() < 1e-9, "component {k}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn fractional_values_take_the_f64_product() {
        let mut cube = integer_cube();
        cube.data.iter_mut().for_each(|v| *v *= 1e-4);
        let (fit, _) = fit_pca(&cube, 3).unwrap();
        assert_eq!(fit.scatter, ScatterSum::F64);
    }
}
