//! What the backbone "sees" at a timestep, as a picture: the block-L
//! features of one modality over the whole scene (patches side by side, no
//! overlap, the Stage B noise), reduced to their first three principal
//! components and stretched 2-98 % to RGB — the same PCA rendering the HSI
//! cube gets, with the feature channels as bands. For the timestep explorer.

use super::features::{FeatureExtractor, FeatureSpec, patch_values};
use super::modality::Modality;
use super::patch_grid::PatchGrid;
use crate::base::CancelFlag;
use crate::model::lean_ops::UNetOps;
use crate::model::unet::UNet;
use crate::products::Rgb8Image;
use crate::products::pca::render_pca;
use crate::scene::{HsiCube, PixelGrid};

/// Why no projection was made.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("cancelled")]
    Cancelled,
    #[error("the features hold too little variation to project: {0}")]
    Degenerate(String),
    #[error("{0}")]
    Backbone(String),
    #[error(transparent)]
    TensorRead(#[from] crate::model::tensor_read::TensorReadError),
}

/// Where the features are taken and with which noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectionSpec {
    pub t: i64,
    pub block: usize,
    /// Patch side (the backbone's image size).
    pub patch: usize,
    pub noise_seed: u64,
    /// Patches per forward pass.
    pub batch: usize,
}

/// The 3-component projection of `image`'s features; `progress` hears
/// (patches done, patches) after every batch.
pub fn project_features<B: UNetOps>(
    model: &UNet<B>,
    image: &Rgb8Image,
    modality: Modality,
    spec: ProjectionSpec,
    device: &B::Device,
    cancel: &CancelFlag,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Rgb8Image, ProjectionError> {
    let (h, w, p) = (image.height, image.width, spec.patch);
    let grid = PatchGrid::new(h, w, p, p);
    // The one noise image of Stage B.
    let noise = super::noised::stage_b_noise(spec.noise_seed, p);
    let feature_spec = FeatureSpec {
        t: spec.t,
        block: spec.block,
        size: p,
    };
    let extractor = FeatureExtractor::new(model, feature_spec, noise, device)
        .map_err(|e| ProjectionError::Backbone(e.to_string()))?;
    let ids: Vec<usize> = (0..grid.len()).collect();
    let mut cube: Option<HsiCube> = None;
    for (k, chunk) in ids.chunks(spec.batch.max(1)).enumerate() {
        if cancel.is_cancelled() {
            return Err(ProjectionError::Cancelled);
        }
        let x0 = patch_values(&grid, image, chunk);
        let f = extractor
            .features(vec![(modality, x0)])
            .map_err(|e| ProjectionError::Backbone(e.to_string()))?;
        let d = f.dims()[1];
        let host = crate::model::tensor_read::f32_values(f, "the features")?;
        let cube = cube.get_or_insert_with(|| HsiCube {
            grid: PixelGrid::plain(w, h),
            bands: d,
            data: vec![0.0; d * h * w],
            wavelengths_nm: None,
            band_names: Vec::new(),
        });
        for (b, &n) in chunk.iter().enumerate() {
            let (r0, c0) = grid.top_left(n);
            for y in 0..p {
                for x in 0..p {
                    let Some((r, c)) = grid.scene_pixel(r0 + y, c0 + x) else {
                        continue;
                    };
                    for ch in 0..d {
                        cube.data[ch * h * w + r * w + c] = host[((b * d + ch) * p + y) * p + x];
                    }
                }
            }
        }
        progress(((k + 1) * spec.batch.max(1)).min(grid.len()), grid.len());
    }
    let cube = cube.ok_or_else(|| ProjectionError::Degenerate("an empty scene".into()))?;
    render_pca(&cube)
        .map(|(image, _)| image)
        .map_err(|e| ProjectionError::Degenerate(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::UNetConfig;
    use crate::model::params::ParamSource;
    use burn::backend::Flex;

    #[test]
    fn projects_the_features_of_a_small_image_to_rgb() {
        let device = Default::default();
        let model = UNet::<Flex>::build(
            &UNetConfig::tiny(),
            ParamSource::Random(crate::base::NormalRng::new(0)),
            &device,
        )
        .unwrap();
        // Two halves of different colour: the projection tells them apart.
        let (w, h) = (40, 32);
        let mut data = Vec::with_capacity(3 * w * h);
        for _r in 0..h {
            for c in 0..w {
                data.extend(if c < w / 2 {
                    [200, 40, 40]
                } else {
                    [30, 90, 220]
                });
            }
        }
        let image = Rgb8Image {
            width: w,
            height: h,
            data,
            stretch: Vec::new(),
        };
        let spec = ProjectionSpec {
            t: 100,
            block: 3,
            patch: 32,
            noise_seed: 0,
            batch: 2,
        };
        let mut seen = Vec::new();
        let out = project_features(
            &model,
            &image,
            Modality::Prgb,
            spec,
            &device,
            &CancelFlag::new(),
            &mut |done, total| seen.push((done, total)),
        )
        .unwrap();
        assert_eq!((out.width, out.height, out.data.len()), (w, h, 3 * w * h));
        let patches = PatchGrid::new(h, w, 32, 32).len();
        assert_eq!(seen.last(), Some(&(patches, patches)));
        let mean = |c0: usize, c1: usize| -> Vec<f64> {
            (0..3)
                .map(|k| {
                    let mut s = 0.0;
                    for r in 8..24 {
                        for c in c0..c1 {
                            s += f64::from(out.data[3 * (r * w + c) + k]);
                        }
                    }
                    s / (16 * (c1 - c0)) as f64
                })
                .collect()
        };
        let (left, right) = (mean(2, 14), mean(26, 38));
        let gap: f64 = left.iter().zip(&right).map(|(a, b)| (a - b).abs()).sum();
        assert!(gap > 60.0, "{left:?} {right:?}");
        // Cancelled before the first batch: no image.
        let cancel = CancelFlag::new();
        cancel.cancel();
        let r = project_features(
            &model,
            &image,
            Modality::Prgb,
            spec,
            &device,
            &cancel,
            &mut |_, _| {},
        );
        assert!(matches!(r, Err(ProjectionError::Cancelled)));
    }
}
