//! Stage B features (method.md section 7): every patch of every modality is
//! noised to x_t with ONE shared noise tensor, run through the frozen U-Net
//! at (t, y = modality row) up to `output_blocks[L]` only, resized
//! bilinearly (align_corners = false) to the patch size, and the modalities'
//! features are concatenated in the order given (pRGB | PCA | SAR).

use burn::prelude::*;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

use super::modality::Modality;
use crate::model::lean_ops::UNetOps;
use crate::model::loss::q_sample;
use crate::model::resblock::BlockContext;
use crate::model::schedule::Schedule;
use crate::model::unet::UNet;

/// Where the features are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureSpec {
    /// Diffusion timestep t.
    pub t: i64,
    /// Output block index L.
    pub block: usize,
    /// Side of the (square) output; the patch size.
    pub size: usize,
}

/// Bilinear resize with half-pixel centres (PyTorch's align_corners = False).
pub fn resize_bilinear<B: Backend>(x: Tensor<B, 4>, size: usize) -> Tensor<B, 4> {
    let [_, _, h, w] = x.dims();
    if h == size && w == size {
        return x;
    }
    interpolate(
        x,
        [size, size],
        InterpolateOptions {
            mode: InterpolateMode::Bilinear,
            align_corners: false,
        },
    )
}

/// Features of a batch of patches of one modality: x0 is (N, 3, P, P) in
/// network space, `noise` (1, 3, P, P) shared by all. Returns (N, C_L, S, S).
pub fn modality_features<B: UNetOps>(
    model: &UNet<B>,
    schedule: &Schedule,
    x0: Tensor<B, 4>,
    modality: Modality,
    noise: Tensor<B, 4>,
    spec: FeatureSpec,
) -> Tensor<B, 4> {
    let [n, c, p, _] = x0.dims();
    let t = vec![spec.t; n];
    let y = vec![modality.label_row(); n];
    let x_t = q_sample(schedule, x0, &t, noise.expand([n, c, p, p]));
    let emb = model.embedding(&t, &y);
    let act = model.forward_blocks(
        x_t,
        emb,
        BlockContext { train: false },
        Some(spec.block),
        &mut |_, _| {},
    );
    resize_bilinear(act, spec.size)
}

/// Features of the same patches in several modalities, concatenated along
/// channels in the order of `inputs`: channel m * C + c is modality m.
pub fn concat_features<B: UNetOps>(
    model: &UNet<B>,
    schedule: &Schedule,
    inputs: Vec<(Modality, Tensor<B, 4>)>,
    noise: Tensor<B, 4>,
    spec: FeatureSpec,
) -> Tensor<B, 4> {
    let parts = inputs
        .into_iter()
        .map(|(m, x0)| modality_features(model, schedule, x0, m, noise.clone(), spec))
        .collect();
    Tensor::cat(parts, 1)
}
