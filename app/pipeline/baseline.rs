//! The classical baseline users know from ilastik and EnMAP-Box: a random
//! forest on each pixel's raw values (HSI bands, then SAR intensities in
//! dB), trained on the same labels and scored with the same metrics as the
//! diffusion-feature classifier. The forest is [`super::forest`]'s; the
//! scene's pixels are classified in chunks side by side.

use rayon::prelude::*;
use serde::Serialize;

use super::forest::{Forest, ForestParams};

use crate::scene::{LabelImage, Scene};

/// Settings of the forest.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ForestConfig {
    pub trees: u16,
    /// Deepest tree (None = grow until pure).
    pub max_depth: Option<u16>,
    pub min_samples_leaf: usize,
    pub seed: u64,
}

impl Default for ForestConfig {
    fn default() -> Self {
        Self {
            // evaluation.md's peers: 200 trees.
            trees: 200,
            max_depth: None,
            min_samples_leaf: 1,
            seed: 0,
        }
    }
}

/// Per-pixel feature vectors of a scene, row-major pixels x `dim`.
#[derive(Debug, Clone)]
pub struct PixelFeatures {
    pub values: Vec<f32>,
    pub dim: usize,
    /// Names of the columns ("band 3", "C11 dB").
    pub names: Vec<String>,
    /// Pixels whose every value was missing (nodata): left unclassified.
    pub empty: Vec<bool>,
}

/// Why the baseline cannot run.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("the scene has no HSI or SAR values to classify")]
    NoInput,
    #[error("no training labels")]
    NoLabels,
    #[error("the random forest failed: {0}")]
    Forest(String),
}

/// The raw values of every pixel; missing values (NaN) are replaced by
/// their column's mean so that one missing band does not drop a pixel.
pub fn pixel_features(scene: &Scene) -> Result<PixelFeatures, BaselineError> {
    let mut columns: Vec<(String, Vec<f32>)> = Vec::new();
    if let Some(hsi) = &scene.hsi {
        for b in 0..hsi.bands {
            if !hsi.band_is_empty(b) {
                columns.push((format!("band {}", b + 1), hsi.band(b).to_vec()));
            }
        }
    }
    if let Some(sar) = &scene.sar {
        let db = |v: &[f64]| -> Vec<f32> {
            v.iter()
                .map(|&x| {
                    if x > 0.0 {
                        (10.0 * x.log10()) as f32
                    } else {
                        f32::NAN
                    }
                })
                .collect()
        };
        for (name, values) in sar.kind.diagonal() {
            columns.push((format!("{name} dB"), db(values)));
        }
        // The off-diagonal parts as read (signed, linear).
        for (name, values) in &sar.off_diagonal {
            columns.push((name.clone(), values.iter().map(|&v| v as f32).collect()));
        }
    }
    let n = columns
        .first()
        .map(|(_, c)| c.len())
        .ok_or(BaselineError::NoInput)?;
    let dim = columns.len();
    let mut empty = vec![true; n];
    for (_, col) in &columns {
        for (e, v) in empty.iter_mut().zip(col) {
            if v.is_finite() {
                *e = false;
            }
        }
    }
    let mut values = vec![0f32; n * dim];
    for (k, (_, col)) in columns.iter().enumerate() {
        let (sum, count) = col
            .iter()
            .filter(|v| v.is_finite())
            .fold((0f64, 0usize), |(s, c), &v| (s + v as f64, c + 1));
        let mean = if count > 0 {
            (sum / count as f64) as f32
        } else {
            0.0
        };
        for (i, &v) in col.iter().enumerate() {
            values[i * dim + k] = if v.is_finite() { v } else { mean };
        }
    }
    Ok(PixelFeatures {
        values,
        dim,
        names: columns.into_iter().map(|(n, _)| n).collect(),
        empty,
    })
}

/// Per-pixel feature rows as a forest reads them, a chunk of pixels at a
/// time (the raw values, or the filter features assembled on the fly).
pub trait PixelRows: Sync {
    /// Values per pixel.
    fn dim(&self) -> usize;
    /// Pixels of the scene.
    fn pixels(&self) -> usize;
    /// The pixel has no values at all (left unclassified).
    fn is_empty(&self, pixel: usize) -> bool;
    /// Appends the rows of pixels `start..end` to `out`.
    fn rows_into(&self, start: usize, end: usize, out: &mut Vec<f32>);
}

impl PixelRows for PixelFeatures {
    fn dim(&self) -> usize {
        self.dim
    }

    fn pixels(&self) -> usize {
        self.empty.len()
    }

    fn is_empty(&self, pixel: usize) -> bool {
        self.empty[pixel]
    }

    fn rows_into(&self, start: usize, end: usize, out: &mut Vec<f32>) {
        out.extend_from_slice(&self.values[start * self.dim..end * self.dim]);
    }
}

/// A forest trained on some labelled pixels of a scene's features.
pub struct TrainedForest {
    forest: Forest,
}

/// Trains a forest on the labelled pixels of `train` (pixels without values
/// are skipped).
pub fn fit_forest(
    features: &dyn PixelRows,
    train: &LabelImage,
    cfg: &ForestConfig,
) -> Result<TrainedForest, BaselineError> {
    let dim = features.dim();
    let rows: Vec<usize> = (0..train.data.len())
        .filter(|&i| train.data[i] != 0 && !features.is_empty(i))
        .collect();
    if rows.is_empty() {
        return Err(BaselineError::NoLabels);
    }
    let mut x = Vec::with_capacity(rows.len() * dim);
    for &i in &rows {
        features.rows_into(i, i + 1, &mut x);
    }
    let y: Vec<u8> = rows.iter().map(|&i| train.data[i]).collect();
    let params = ForestParams {
        trees: usize::from(cfg.trees),
        max_depth: cfg.max_depth.map(usize::from),
        min_samples_leaf: cfg.min_samples_leaf,
        // scikit-learn's max_features="sqrt".
        mtry: ((dim as f64).sqrt().round() as usize).max(1),
        seed: cfg.seed,
    };
    let forest =
        Forest::fit(&x, &y, dim, &params).map_err(|e| BaselineError::Forest(e.to_string()))?;
    Ok(TrainedForest { forest })
}

impl TrainedForest {
    fn predict_rows(&self, values: Vec<f32>, rows: usize) -> Result<Vec<u8>, BaselineError> {
        let dim = self.forest.dim();
        if values.len() != rows * dim {
            return Err(BaselineError::Forest(format!(
                "{} values are not {rows} rows of {dim}",
                values.len()
            )));
        }
        Ok(self.forest.predict(&values))
    }

    /// The class of every pixel of the scene (0 where it has no values),
    /// chunks of pixels in parallel.
    pub fn predict_map(&self, features: &dyn PixelRows) -> Result<Vec<u8>, BaselineError> {
        const CHUNK: usize = 8192;
        let n = features.pixels();
        let parts: Result<Vec<Vec<u8>>, BaselineError> = (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let (a, b) = (c * CHUNK, ((c + 1) * CHUNK).min(n));
                let mut values = Vec::with_capacity((b - a) * self.forest.dim());
                features.rows_into(a, b, &mut values);
                let mut pred = self.predict_rows(values, b - a)?;
                for (i, p) in pred.iter_mut().enumerate() {
                    if features.is_empty(a + i) {
                        *p = 0;
                    }
                }
                Ok(pred)
            })
            .collect();
        Ok(parts?.concat())
    }

    /// The class of each of `pixels` (0 where it has no values).
    pub fn predict_pixels(
        &self,
        features: &dyn PixelRows,
        pixels: &[usize],
    ) -> Result<Vec<u8>, BaselineError> {
        if pixels.is_empty() {
            return Ok(Vec::new());
        }
        let mut values = Vec::with_capacity(pixels.len() * self.forest.dim());
        for &i in pixels {
            features.rows_into(i, i + 1, &mut values);
        }
        let mut pred = self.predict_rows(values, pixels.len())?;
        for (p, &i) in pred.iter_mut().zip(pixels) {
            if features.is_empty(i) {
                *p = 0;
            }
        }
        Ok(pred)
    }
}

/// Trains on the labelled pixels of `train` and classifies every pixel
/// (0 where the pixel has no values at all).
pub fn random_forest_map(
    features: &dyn PixelRows,
    train: &LabelImage,
    cfg: &ForestConfig,
) -> Result<Vec<u8>, BaselineError> {
    fit_forest(features, train, cfg)?.predict_map(features)
}
