//! The features of the classical reference classifier (`filter-rf`, the peer
//! of evaluation.md that ilastik users know): each pixel's raw values
//! standardised on the training pixels, beside the multi-scale filter bank
//! (`products::filter_bank`) of their first principal components (at most
//! 10, fitted on every pixel that has values). The filtered images are kept
//! per column; rows are assembled chunk by chunk when the forest reads them,
//! so a scene's features never exist twice.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par, Side};
use rayon::prelude::*;

use super::baseline::{BaselineError, PixelFeatures, PixelRows};
use crate::products::filter_bank::{FILTERS, Plane, filter_bank, filter_names};
use crate::scene::LabelImage;

/// Principal components the filter bank runs on.
pub const MAX_COMPONENTS: usize = 10;

/// Pixels per chunk of the scatter and the projection.
const CHUNK: usize = 4096;

/// The standardised raw values and the filtered component images.
#[derive(Debug, Clone)]
pub struct FilterFeatures<'a> {
    raw: &'a PixelFeatures,
    mean: Vec<f32>,
    scale: Vec<f32>,
    /// One image per (component, filter), each a value per pixel.
    filtered: Vec<Vec<f32>>,
    names: Vec<String>,
}

impl FilterFeatures<'_> {
    /// Names of the columns: the raw values', then "PC1 gaussian 0.7", ...
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

impl PixelRows for FilterFeatures<'_> {
    fn dim(&self) -> usize {
        self.raw.dim + self.filtered.len()
    }

    fn pixels(&self) -> usize {
        self.raw.empty.len()
    }

    fn is_empty(&self, pixel: usize) -> bool {
        self.raw.empty[pixel]
    }

    fn rows_into(&self, start: usize, end: usize, out: &mut Vec<f32>) {
        let d = self.raw.dim;
        for i in start..end {
            let raw = &self.raw.values[i * d..(i + 1) * d];
            out.extend(
                raw.iter()
                    .zip(self.mean.iter().zip(&self.scale))
                    .map(|(v, (m, s))| (v - m) / s),
            );
            out.extend(self.filtered.iter().map(|f| f[i]));
        }
    }
}

/// The mean and the population standard deviation (1 where it is 0) of each
/// column over the training pixels, as scikit-learn's `StandardScaler`.
fn training_standardisation(raw: &PixelFeatures, train: &[usize]) -> (Vec<f32>, Vec<f32>) {
    let d = raw.dim;
    let n = train.len().max(1) as f64;
    let mut mean = vec![0f64; d];
    for &i in train {
        for (m, &v) in mean.iter_mut().zip(&raw.values[i * d..(i + 1) * d]) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0f64; d];
    for &i in train {
        for ((s, &v), m) in var
            .iter_mut()
            .zip(&raw.values[i * d..(i + 1) * d])
            .zip(&mean)
        {
            *s += (f64::from(v) - m).powi(2);
        }
    }
    let scale = var
        .iter()
        .map(|s| {
            let sd = (s / n).sqrt();
            if sd > 0.0 { sd as f32 } else { 1.0 }
        })
        .collect();
    (mean.iter().map(|&m| m as f32).collect(), scale)
}

/// Builds the features of every pixel of a `width` x `height` scene whose
/// raw values are `raw`, standardised on the labelled pixels of `train`.
pub fn filter_features<'a>(
    raw: &'a PixelFeatures,
    train: &LabelImage,
) -> Result<FilterFeatures<'a>, BaselineError> {
    let (width, height) = (train.grid.width, train.grid.height);
    let n = width * height;
    if raw.empty.len() != n {
        return Err(BaselineError::Forest(format!(
            "the scene has {} pixels but its labels {width} x {height}",
            raw.empty.len()
        )));
    }
    let d = raw.dim;
    let train_px: Vec<usize> = (0..n)
        .filter(|&i| train.data[i] != 0 && !raw.empty[i])
        .collect();
    if train_px.is_empty() {
        return Err(BaselineError::NoLabels);
    }
    let (mean, scale) = training_standardisation(raw, &train_px);
    let standardised =
        |i: usize, k: usize| -> f64 { f64::from((raw.values[i * d + k] - mean[k]) / scale[k]) };

    // PCA of the standardised values over the pixels that have any.
    let fit: Vec<usize> = (0..n).filter(|&i| !raw.empty[i]).collect();
    if fit.len() < 2 {
        return Err(BaselineError::NoInput);
    }
    let mut centre = vec![0f64; d];
    for &i in &fit {
        for (k, c) in centre.iter_mut().enumerate() {
            *c += standardised(i, k);
        }
    }
    centre.iter_mut().for_each(|c| *c /= fit.len() as f64);
    let chunk_matrix = |pixels: &[usize]| {
        Mat::<f64>::from_fn(pixels.len(), d, |r, k| {
            standardised(pixels[r], k) - centre[k]
        })
    };
    let scatter = fit
        .par_chunks(CHUNK)
        .map(|pixels| {
            let x = chunk_matrix(pixels);
            let mut s = Mat::<f64>::zeros(d, d);
            matmul(
                s.as_mut(),
                Accum::Replace,
                x.transpose(),
                x.as_ref(),
                1.0,
                Par::Seq,
            );
            s
        })
        .reduce(|| Mat::<f64>::zeros(d, d), |a, b| a + b);
    let eig = scatter
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| BaselineError::Forest(format!("PCA of the filter features failed: {e:?}")))?;
    let comps = MAX_COMPONENTS.min(d);
    // faer's eigenvalues ascend: the last columns are the leading components.
    let u = eig.U();
    let basis = Mat::<f64>::from_fn(d, comps, |k, c| u[(k, d - 1 - c)]);

    // Scores of every pixel (empty pixels at the centre: score 0).
    let all: Vec<usize> = (0..n).collect();
    let mut scores = vec![vec![0f64; n]; comps];
    let chunks: Vec<(usize, Mat<f64>)> = all
        .par_chunks(CHUNK)
        .map(|pixels| {
            let x = chunk_matrix(pixels);
            let mut s = Mat::<f64>::zeros(pixels.len(), comps);
            matmul(
                s.as_mut(),
                Accum::Replace,
                x.as_ref(),
                basis.as_ref(),
                1.0,
                Par::Seq,
            );
            (pixels[0], s)
        })
        .collect();
    for (start, s) in chunks {
        for r in 0..s.nrows() {
            if raw.empty[start + r] {
                continue;
            }
            for (c, img) in scores.iter_mut().enumerate() {
                img[start + r] = s[(r, c)];
            }
        }
    }

    let filtered: Vec<Vec<f32>> = scores
        .par_iter()
        .flat_map_iter(|img| {
            filter_bank(Plane {
                values: img,
                width,
                height,
            })
            .into_iter()
            .map(|f| f.into_iter().map(|v| v as f32).collect::<Vec<f32>>())
        })
        .collect();
    debug_assert_eq!(filtered.len(), comps * FILTERS);
    let mut names = raw.names.clone();
    for c in 0..comps {
        names.extend(filter_names().iter().map(|f| format!("PC{} {f}", c + 1)));
    }
    Ok(FilterFeatures {
        raw,
        mean,
        scale,
        filtered,
        names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::PixelGrid;

    #[test]
    fn rows_hold_standardised_values_then_filters() {
        // 6 x 5 scene, two columns: a ramp and its square.
        let (w, h) = (6, 5);
        let n = w * h;
        let values: Vec<f32> = (0..n)
            .flat_map(|i| [i as f32, (i * i) as f32 / 10.0])
            .collect();
        let raw = PixelFeatures {
            values,
            dim: 2,
            names: vec!["a".into(), "b".into()],
            empty: vec![false; n],
        };
        let mut train = LabelImage {
            grid: PixelGrid::plain(w, h),
            data: vec![0; n],
        };
        train.data[3] = 1;
        train.data[20] = 2;
        let f = filter_features(&raw, &train).unwrap();
        assert_eq!(f.dim(), 2 + 2 * FILTERS);
        assert_eq!(f.names().len(), f.dim());
        let mut rows = Vec::new();
        f.rows_into(3, 4, &mut rows);
        f.rows_into(20, 21, &mut rows);
        // The two training pixels standardise to -1 and +1 in each column.
        assert!((rows[0] + 1.0).abs() < 1e-6 && (rows[1] + 1.0).abs() < 1e-6);
        let d = f.dim();
        assert!((rows[d] - 1.0).abs() < 1e-6 && (rows[d + 1] - 1.0).abs() < 1e-6);
        assert!(rows.iter().all(|v| v.is_finite()));
    }
}
