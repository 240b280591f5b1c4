//! Stage B features (method.md section 7): every patch of every modality is
//! noised to x_t with ONE shared noise tensor, run through the frozen U-Net
//! at (t, y = modality row) up to `output_blocks[L]` only, resized
//! bilinearly (align_corners = false) to the patch size, and the modalities'
//! features are concatenated in the order given (pRGB | PCA | SAR).

use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

use super::modality::Modality;
use super::patch_grid::PatchGrid;
use crate::model::host_unet::{Act, HostUNet, HostWeightsError, KernelError, host_unet};
use crate::model::lean_ops::UNetOps;
use crate::model::loss::q_sample;
use crate::model::resblock::BlockContext;
use crate::model::schedule::Schedule;
use crate::model::unet::UNet;
use crate::products::Rgb8Image;
use crate::products::stretch::network_from_u8;
use crate::scene::Window;

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

/// x0 of patches `ids` of one rendering, N x 3 x P x P values in network
/// space (padding pixels at -1).
pub fn patch_values(grid: &PatchGrid, image: &Rgb8Image, ids: &[usize]) -> Vec<f32> {
    patch_values_in(grid, image, grid.whole(), ids)
}

/// [`patch_values`] from a rendering of the scene's `window` only (it holds
/// the patches' scene pixels: [`PatchGrid::footprint`]).
pub fn patch_values_in(
    grid: &PatchGrid,
    image: &Rgb8Image,
    window: Window,
    ids: &[usize],
) -> Vec<f32> {
    let p = grid.patch;
    let mut values = Vec::with_capacity(ids.len() * 3 * p * p);
    let mut buf = vec![0u8; 3 * p * p];
    for &n in ids {
        grid.extract_u8_in(&image.data, window, 3, n, &mut buf);
        values.extend(buf.iter().map(|&v| network_from_u8(v)));
    }
    values
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

/// [`concat_features`] through the host forward ([`HostUNet`]): `inputs`
/// hold each modality's x0 as `n x 3 x p x p` values in network space,
/// `noise` the one `3 x p x p` noise tensor. Returns the concatenated
/// features `n x (M C_L) x S x S` at the block's own size S (resize them
/// with [`resize_bilinear`]) and that shape.
pub fn concat_features_host(
    host: &HostUNet,
    schedule: &Schedule,
    inputs: &[(Modality, Vec<f32>)],
    p: usize,
    noise: &[f32],
    spec: FeatureSpec,
) -> Result<(Vec<f32>, [usize; 4]), KernelError> {
    // In f32, as q_sample multiplies: the schedule's values are cast first
    // (t is checked by the callers, as for q_sample).
    let t = spec.t as usize;
    let a = schedule.sqrt_alphas_cumprod[t] as f32;
    let b = schedule.sqrt_one_minus_alphas_cumprod[t] as f32;
    let per = 3 * p * p;
    let mut parts = Vec::with_capacity(inputs.len());
    for (m, x0) in inputs {
        let n = x0.len() / per;
        let x_t: Vec<f32> = x0
            .iter()
            .enumerate()
            .map(|(i, &v)| a * v + b * noise[i % per])
            .collect();
        let emb = host.embedding(&vec![spec.t; n], &vec![m.label_row(); n])?;
        let x = Act::from_nchw(&x_t, n, 3, p, p);
        parts.push(host.forward_split(x, &emb, Some(spec.block)));
    }
    let Some(first) = parts.first() else {
        return Ok((Vec::new(), [0, 0, spec.size, spec.size]));
    };
    let (n, c, h, w) = (first.n, first.c, first.h, first.w);
    let hw = h * w;
    let total_c = c * parts.len();
    let mut out = vec![0f32; n * total_c * hw];
    for (m, act) in parts.iter().enumerate() {
        for ci in 0..c {
            for img in 0..n {
                let src = &act.data[(ci * n + img) * hw..(ci * n + img + 1) * hw];
                let at = (img * total_c + m * c + ci) * hw;
                out[at..at + hw].copy_from_slice(src);
            }
        }
    }
    Ok((out, [n, total_c, h, w]))
}

/// Stage B's feature function for one run: the frozen network at one
/// (t, block) with the one shared noise image, through the host forward on
/// the CPU backends (`UNetOps::ON_HOST`) and through burn elsewhere. Stage B,
/// the explorer's projection and the benchmark all take features here.
pub struct FeatureExtractor<'a, B: UNetOps> {
    model: &'a UNet<B>,
    /// Whether the host forward runs.
    host_forward: bool,
    /// The host copy of the weights, when the host forward runs: made in
    /// `new`, or at the first batch of features for `deferred` (a live
    /// update whose features are all kept needs none, and the paper's
    /// backbone takes most of a second to copy).
    host: std::sync::OnceLock<HostUNet>,
    schedule: Schedule,
    spec: FeatureSpec,
    /// The noise image, 3 x p x p, and as a tensor (1, 3, p, p).
    noise_values: Vec<f32>,
    noise: Tensor<B, 4>,
    device: B::Device,
}

impl<'a, B: UNetOps> FeatureExtractor<'a, B> {
    /// The extractor for `model`; on the CPU backends it copies the weights
    /// to the host once.
    pub fn new(
        model: &'a UNet<B>,
        spec: FeatureSpec,
        noise_values: Vec<f32>,
        device: &B::Device,
    ) -> Result<Self, HostWeightsError> {
        let extractor = Self::with_host(model, B::ON_HOST, spec, noise_values, device);
        if B::ON_HOST {
            extractor.host()?;
        }
        Ok(extractor)
    }

    /// [`Self::new`] with the host copy of the weights made when the first
    /// features are asked for (its error comes from [`Self::features`]).
    pub fn deferred(
        model: &'a UNet<B>,
        spec: FeatureSpec,
        noise_values: Vec<f32>,
        device: &B::Device,
    ) -> Self {
        Self::with_host(model, B::ON_HOST, spec, noise_values, device)
    }

    /// The extractor running burn's forward whatever the backend.
    pub fn burn(
        model: &'a UNet<B>,
        spec: FeatureSpec,
        noise_values: Vec<f32>,
        device: &B::Device,
    ) -> Self {
        Self::with_host(model, false, spec, noise_values, device)
    }

    fn with_host(
        model: &'a UNet<B>,
        host_forward: bool,
        spec: FeatureSpec,
        noise_values: Vec<f32>,
        device: &B::Device,
    ) -> Self {
        let p = spec.size;
        let noise = Tensor::from_data(TensorData::new(noise_values.clone(), [1, 3, p, p]), device);
        Self {
            model,
            host_forward,
            host: std::sync::OnceLock::new(),
            schedule: Schedule::cosine(1000),
            spec,
            noise_values,
            noise,
            device: device.clone(),
        }
    }

    /// Whether the host forward runs.
    pub fn on_host(&self) -> bool {
        self.host_forward
    }

    /// The host copy of the weights, made on first use.
    fn host(&self) -> Result<&HostUNet, HostWeightsError> {
        if let Some(host) = self.host.get() {
            return Ok(host);
        }
        let host = host_unet(self.model)?;
        Ok(self.host.get_or_init(|| host))
    }

    /// The concatenated features (N, M C_L, P, P) of the same N patches in
    /// each modality of `inputs` (x0 as N x 3 x P x P values in network
    /// space), in the order given.
    pub fn features(
        &self,
        inputs: Vec<(Modality, Vec<f32>)>,
    ) -> Result<Tensor<B, 4>, HostWeightsError> {
        let p = self.spec.size;
        if self.host_forward {
            let (values, shape) = concat_features_host(
                self.host()?,
                &self.schedule,
                &inputs,
                p,
                &self.noise_values,
                self.spec,
            )?;
            let f = Tensor::from_data(TensorData::new(values, shape), &self.device);
            return Ok(resize_bilinear(f, p));
        }
        let tensors = inputs
            .into_iter()
            .map(|(m, x0)| {
                let n = x0.len() / (3 * p * p);
                let x0 = Tensor::from_data(TensorData::new(x0, [n, 3, p, p]), &self.device);
                (m, x0)
            })
            .collect();
        Ok(concat_features(
            self.model,
            &self.schedule,
            tensors,
            self.noise.clone(),
            self.spec,
        ))
    }
}
