//! A trained model applied to a scene tile by tile (`predict`): each tile is
//! classified from every patch of the training run's grid that touches it,
//! rendered from the scene window under those patches (a halo of up to one
//! patch) with the model's rendering fit, and merged with the same exact
//! fixed-point averaging as a whole-scene run, so the tiled map equals the
//! untiled one pixel for pixel whatever the tile size. What one tile holds
//! (its window's renderings, one batch of features, its canvas) is bounded
//! by the tile, not by the scene.

use std::time::Instant;

use super::features::{FeatureExtractor, FeatureSpec, patch_values_in};
use super::model_bundle::ModelBundle;
use super::noised::stage_b_noise;
use super::patch_grid::PatchGrid;
use super::predict::{MergedPrediction, ProbabilityCanvas};
use crate::base::CancelFlag;
use crate::model::lean_ops::UNetOps;
use crate::model::tensor_read::f32_values;
use crate::model::unet::UNet;
use crate::products::rendering_fit::RenderFitError;
use crate::scene::{Scene, Window};

/// Why a tiled prediction stopped.
#[derive(Debug, thiserror::Error)]
pub enum TiledPredictError {
    #[error("{0}")]
    Read(String),
    #[error("{0}")]
    Output(String),
    #[error(
        "a tile of {tile} pixels is smaller than the model's patch ({patch}): give --tile {patch} or more"
    )]
    TileTooSmall { tile: usize, patch: usize },
    #[error("shard {index}/{count}: the index must be below the count (0-based)")]
    BadShard { index: usize, count: usize },
    #[error("the scene cannot be rendered as the model's training scene: {0}")]
    Render(#[from] RenderFitError),
    #[error("the model uses the {0} modality, which this scene cannot give")]
    MissingModality(&'static str),
    #[error("{0}")]
    Backbone(String),
    #[error("cancelled")]
    Cancelled,
}

/// The tiles of a scene: row-major, `tile` pixels square (smaller at the
/// right and bottom edges).
pub fn tiles_of(height: usize, width: usize, tile: usize) -> Vec<Window> {
    let t = tile.max(1);
    (0..height.div_ceil(t))
        .flat_map(|i| {
            (0..width.div_ceil(t)).map(move |j| Window {
                row0: i * t,
                col0: j * t,
                height: t.min(height - i * t),
                width: t.min(width - j * t),
            })
        })
        .collect()
}

/// The share of shard `index` of `count` (of a scene's tiles, or of a
/// list's scenes): every count-th item from `index`, so that the shards are
/// disjoint and together cover them all.
pub fn shard_share<T>(
    items: Vec<T>,
    shard: Option<(usize, usize)>,
) -> Result<Vec<T>, TiledPredictError> {
    match shard {
        None => Ok(items),
        Some((index, count)) if index >= count => Err(TiledPredictError::BadShard { index, count }),
        Some((index, count)) => Ok(items.into_iter().skip(index).step_by(count).collect()),
    }
}

/// Where a tiled prediction is.
#[derive(Debug, Clone, Copy)]
pub struct TileProgress {
    pub tiles_done: usize,
    pub tiles: usize,
    pub eta_seconds: Option<f64>,
}

/// One finished tile: its window and merged result.
pub struct TileResult {
    pub window: Window,
    pub prediction: MergedPrediction,
}

/// The layers inside `window` of a scene held in memory.
pub fn scene_window(scene: &Scene, window: Window) -> Scene {
    Scene {
        hsi: scene
            .hsi
            .as_ref()
            .map(|c| std::sync::Arc::new(c.window(window))),
        sar: scene
            .sar
            .as_ref()
            .map(|s| std::sync::Arc::new(s.window(window))),
        train_labels: None,
        test_labels: None,
    }
}

/// Where a tiled prediction reads the scene: its size (height, width) and
/// the layers of any window of it.
pub struct SceneReader<'a> {
    pub height: usize,
    pub width: usize,
    pub read: &'a dyn Fn(Window) -> Result<Scene, String>,
}

/// Classifies `tiles` of the scene `reader` reads with `bundle` on the
/// backbone `model`, handing each finished tile to `tile_done` (which
/// writes it out); patches go through the backbone `batch_patches` at a
/// time.
#[allow(clippy::too_many_arguments)]
pub fn predict_tiles<B: UNetOps>(
    model: &UNet<B>,
    bundle: &ModelBundle,
    reader: &SceneReader<'_>,
    tiles: &[Window],
    batch_patches: usize,
    device: &B::Device,
    cancel: &CancelFlag,
    progress: &mut dyn FnMut(TileProgress),
    tile_done: &mut dyn FnMut(TileResult) -> Result<(), TiledPredictError>,
) -> Result<(), TiledPredictError> {
    let grid = PatchGrid::new(reader.height, reader.width, bundle.patch, bundle.stride);
    let p = grid.patch;
    let spec = FeatureSpec {
        t: bundle.t,
        block: bundle.block,
        size: p,
    };
    let extractor = FeatureExtractor::new(model, spec, stage_b_noise(bundle.noise_seed, p), device)
        .map_err(|e| TiledPredictError::Backbone(e.to_string()))?;
    let classes = bundle.classes.len();
    let started = Instant::now();
    for (k, &tile) in tiles.iter().enumerate() {
        if cancel.is_cancelled() {
            return Err(TiledPredictError::Cancelled);
        }
        let patches = grid.patches_touching(tile);
        let mut canvas = ProbabilityCanvas::for_window(grid, classes, tile);
        if let Some(footprint) = grid.footprint(&patches) {
            let window = (reader.read)(footprint).map_err(TiledPredictError::Read)?;
            let renderings = bundle.rendering.render(&window)?;
            let images = bundle
                .modalities
                .iter()
                .map(|&m| {
                    m.image_in(&renderings)
                        .map(|i| (m, i))
                        .ok_or(TiledPredictError::MissingModality(m.name()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            for ids in patches.chunks(batch_patches.max(1)) {
                if cancel.is_cancelled() {
                    return Err(TiledPredictError::Cancelled);
                }
                let inputs = images
                    .iter()
                    .map(|(m, image)| (*m, patch_values_in(&grid, image, footprint, ids)))
                    .collect();
                let f = extractor
                    .features(inputs)
                    .map_err(|e| TiledPredictError::Backbone(e.to_string()))?;
                let d = f.dims()[1];
                let values = f32_values(f, "the tile's features")
                    .map_err(|e| TiledPredictError::Backbone(e.to_string()))?;
                let probs = bundle.head.patch_probabilities(&values, d, p * p);
                let per = classes * p * p;
                for (b, &n) in ids.iter().enumerate() {
                    canvas.add_patch(n, &probs[b * per..(b + 1) * per]);
                }
            }
        }
        tile_done(TileResult {
            window: tile,
            prediction: canvas.finish(),
        })?;
        let done = k + 1;
        let rate = started.elapsed().as_secs_f64() / done as f64;
        progress(TileProgress {
            tiles_done: done,
            tiles: tiles.len(),
            eta_seconds: Some(rate * (tiles.len() - done) as f64),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_the_scene_once_and_shards_split_them() {
        let tiles = tiles_of(70, 45, 32);
        assert_eq!(tiles.len(), 3 * 2);
        let mut covered = vec![0u8; 70 * 45];
        for t in &tiles {
            for r in t.row0..t.row0 + t.height {
                for c in t.col0..t.col0 + t.width {
                    covered[r * 45 + c] += 1;
                }
            }
        }
        assert!(covered.iter().all(|&c| c == 1));
        let a = shard_share(tiles.clone(), Some((0, 4))).unwrap();
        let b = shard_share(tiles.clone(), Some((3, 4))).unwrap();
        assert_eq!((a.len(), b.len()), (2, 1));
        let all: usize = (0..4)
            .map(|i| shard_share(tiles.clone(), Some((i, 4))).unwrap().len())
            .sum();
        assert_eq!(all, tiles.len());
        assert!(shard_share(tiles, Some((4, 4))).is_err());
    }
}
