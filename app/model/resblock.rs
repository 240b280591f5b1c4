//! guided-diffusion's ResBlock with scale-shift norm: the place where FiLM
//! conditioning on (timestep, modality) enters. `emb_layers` turns the joint
//! embedding into a per-channel (scale, shift) pair:
//! h = GN(h) * (1 + scale) + shift.

use burn::prelude::*;
use burn::tensor::module::{avg_pool2d, interpolate};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Distribution, Tensor};

use super::layers::{Conv, GroupNorm32, Linear};
use super::lean_ops::UNetOps;
use super::params::ParamLoader;

/// Resampling inside a ResBlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    None,
    /// Nearest x2.
    Up,
    /// 2x2 average pool.
    Down,
}

impl Resample {
    fn code(self) -> u8 {
        match self {
            Resample::None => 0,
            Resample::Up => 1,
            Resample::Down => 2,
        }
    }
}

/// A residual block with FiLM conditioning.
#[derive(Module, Debug)]
pub struct ResBlock<B: Backend> {
    pub in_norm: GroupNorm32<B>,
    pub in_conv: Conv<B>,
    /// `emb_layers.1`: SiLU(emb) -> (scale, shift).
    pub emb_linear: Linear<B>,
    pub out_norm: GroupNorm32<B>,
    pub out_conv: Conv<B>,
    pub skip: Option<Conv<B>>,
    /// 0 none, 1 up, 2 down.
    pub resample: u8,
    pub dropout: f64,
}

/// Per-forward settings shared by every block.
#[derive(Debug, Clone, Copy)]
pub struct BlockContext {
    /// Apply dropout (Stage A training).
    pub train: bool,
}

pub fn resample<B: Backend>(x: Tensor<B, 4>, code: u8) -> Tensor<B, 4> {
    match code {
        1 => {
            let [_, _, h, w] = x.dims();
            interpolate(
                x,
                [2 * h, 2 * w],
                InterpolateOptions::new(InterpolateMode::Nearest),
            )
        }
        2 => avg_pool2d(x, [2, 2], [2, 2], [0, 0], true, false),
        _ => x,
    }
}

impl<B: Backend> ResBlock<B> {
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        l: &mut ParamLoader<B>,
        name: &str,
        channels: usize,
        out_channels: usize,
        emb_dim: usize,
        resample: Resample,
        dropout: f64,
    ) -> Self {
        Self {
            in_norm: GroupNorm32::load(l, &format!("{name}.in_layers.0"), channels),
            in_conv: Conv::load(l, &format!("{name}.in_layers.2"), channels, out_channels, 3),
            emb_linear: Linear::load(
                l,
                &format!("{name}.emb_layers.1"),
                emb_dim,
                2 * out_channels,
            ),
            out_norm: GroupNorm32::load(l, &format!("{name}.out_layers.0"), out_channels),
            out_conv: Conv::load(
                l,
                &format!("{name}.out_layers.3"),
                out_channels,
                out_channels,
                3,
            ),
            skip: (channels != out_channels).then(|| {
                Conv::load(
                    l,
                    &format!("{name}.skip_connection"),
                    channels,
                    out_channels,
                    1,
                )
            }),
            resample: resample.code(),
            dropout,
        }
    }

    /// Chooses the convolution algorithm of every conv (see [`super::layers::Conv`]).
    pub fn set_im2col(&mut self, on: bool) {
        self.in_conv.im2col = on;
        self.out_conv.im2col = on;
        if let Some(s) = &mut self.skip {
            s.im2col = on;
        }
    }

    /// The FiLM (scale, shift) pair, (B, 2C), from SiLU(emb).
    pub fn film(&self, emb_silu: Tensor<B, 2>) -> Tensor<B, 2> {
        self.emb_linear.forward(emb_silu)
    }

    /// `emb_silu` is SiLU(emb), shared by all blocks of one forward.
    pub fn forward(
        &self,
        x: Tensor<B, 4>,
        emb_silu: Tensor<B, 2>,
        ctx: BlockContext,
    ) -> Tensor<B, 4>
    where
        B: UNetOps,
    {
        let h = B::silu(self.in_norm.forward(x.clone()));
        let h = resample(h, self.resample);
        let x = resample(x, self.resample);
        let h = self.in_conv.forward(h);
        let [b, c, _, _] = h.dims();
        let film = self.film(emb_silu).reshape([b, 2 * c, 1, 1]);
        let scale = film.clone().narrow(1, 0, c);
        let shift = film.narrow(1, c, c);
        let h = self.out_norm.forward(h) * (scale + 1.0) + shift;
        let mut h = B::silu(h);
        if ctx.train && self.dropout > 0.0 {
            // A boolean mask: autodiff keeps it, a byte per element on the CPU.
            let dropped = Tensor::<B, 4>::random(h.dims(), Distribution::Default, &h.device())
                .lower_elem(self.dropout);
            h = h.mask_fill(dropped, 0.0) / (1.0 - self.dropout);
        }
        let h = self.out_conv.forward(h);
        let skip = match &self.skip {
            Some(conv) => conv.forward(x),
            None => x,
        };
        skip + h
    }
}
