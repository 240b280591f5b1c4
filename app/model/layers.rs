//! The small layers of the ADM U-Net, holding their parameters in PyTorch's
//! layouts so that checkpoints map one to one: convolution, linear (weight
//! out x in), GroupNorm(32) and the sinusoidal timestep embedding.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::ops::PadMode;

use super::lean_ops::{UNetOps, to_dtype, to_f32};
use super::params::{Init, ParamLoader};

/// A 2-D convolution with bias and "same" padding (1x1 or 3x3).
#[derive(Module, Debug)]
pub struct Conv<B: Backend> {
    pub weight: Param<Tensor<B, 4>>,
    pub bias: Param<Tensor<B, 1>>,
    pub padding: usize,
    /// Compute as shifted copies + one matrix product instead of the
    /// backend's convolution. Same result; on the CPU backend its backward pass
    /// is ~30x faster (burn-ndarray's transposed convolution is slow), at the
    /// cost of k*k copies of the input.
    pub im2col: bool,
}

impl<B: Backend> Conv<B> {
    pub fn load(l: &mut ParamLoader<B>, name: &str, c_in: usize, c_out: usize, k: usize) -> Self {
        Self {
            weight: l.param(&format!("{name}.weight"), [c_out, c_in, k, k], Init::Weight),
            bias: l.param(&format!("{name}.bias"), [c_out], Init::Bias),
            padding: k / 2,
            im2col: false,
        }
    }

    /// The weights take no gradient here: the U-Net never trains a
    /// convolution (see `trainable.rs`).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4>
    where
        B: UNetOps,
    {
        if self.im2col {
            return self.forward_im2col(x);
        }
        B::conv2d_frozen(x, self.weight.val(), self.bias.val(), self.padding)
    }
}

impl<B: Backend> Conv<B> {
    /// Stays in NCHW: per image, the columns are (c * k * k, h * w) and the
    /// product is weight (c_out, c * k * k) x columns, so that no tensor is
    /// ever permuted (permuted copies dominated the CPU step) and the weight
    /// is read in place (autodiff keeps no copy of it).
    fn forward_im2col(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        let [c_out, _, k, _] = self.weight.dims();
        let cols = if k == 1 {
            x.reshape([b, c, h * w])
        } else {
            let p = self.padding;
            let x = x.pad((p, p, p, p), PadMode::Constant(0.0));
            let parts = (0..k * k)
                .map(|j| x.clone().narrow(2, j / k, h).narrow(3, j % k, w))
                .collect();
            // Row ci * k * k + dy * k + dx: the order of the weight's layout.
            Tensor::stack::<5>(parts, 2).reshape([b, c * k * k, h * w])
        };
        let wm = self.weight.val().reshape([1, c_out, c * k * k]);
        let y = wm.matmul(cols) + self.bias.val().reshape([1, c_out, 1]);
        y.reshape([b, c_out, h, w])
    }
}

/// A 1x1 convolution over a sequence (B, C, T), stored as PyTorch's Conv1d
/// (weight C_out x C_in x 1).
#[derive(Module, Debug)]
pub struct PointwiseConv1d<B: Backend> {
    pub weight: Param<Tensor<B, 3>>,
    pub bias: Param<Tensor<B, 1>>,
}

impl<B: Backend> PointwiseConv1d<B> {
    pub fn load(l: &mut ParamLoader<B>, name: &str, c_in: usize, c_out: usize) -> Self {
        Self {
            weight: l.param(&format!("{name}.weight"), [c_out, c_in, 1], Init::Weight),
            bias: l.param(&format!("{name}.bias"), [c_out], Init::Bias),
        }
    }

    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, c, t] = x.dims();
        let [c_out, _, _] = self.weight.dims();
        let w = self.weight.val().reshape([c_out, c]);
        let y = x.swap_dims(1, 2).reshape([b * t, c]).matmul(w.transpose());
        let y = y + self.bias.val().unsqueeze_dim::<2>(0);
        y.reshape([b, t, c_out]).swap_dims(1, 2)
    }
}

/// A linear layer with PyTorch's weight layout (out x in).
#[derive(Module, Debug)]
pub struct Linear<B: Backend> {
    pub weight: Param<Tensor<B, 2>>,
    pub bias: Param<Tensor<B, 1>>,
}

impl<B: Backend> Linear<B> {
    pub fn load(l: &mut ParamLoader<B>, name: &str, d_in: usize, d_out: usize) -> Self {
        Self {
            weight: l.param(&format!("{name}.weight"), [d_out, d_in], Init::Weight),
            bias: l.param(&format!("{name}.bias"), [d_out], Init::Bias),
        }
    }

    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        on_two_rows_if_one(x, |x| {
            x.matmul(self.weight.val().transpose()) + self.bias.val().unsqueeze_dim::<2>(0)
        })
    }
}

/// `f(x)` for a row-wise `f`; a single row goes through as two equal rows
/// and the first is kept. burn 0.21's fused matmul on wgpu gives wrong
/// values for one row when both its input (SiLU, a norm) and its output
/// (the bias) are fused elementwise work — the time embedding's second
/// linear, every FiLM linear of a one-patch batch — while two rows come out
/// right (`tests/gpu_wgpu.rs` keeps the case). A copy of a few hundred
/// values on every backend, so that all of them run the same code.
pub fn on_two_rows_if_one<B: Backend>(
    x: Tensor<B, 2>,
    f: impl FnOnce(Tensor<B, 2>) -> Tensor<B, 2>,
) -> Tensor<B, 2> {
    if x.dims()[0] != 1 {
        return f(x);
    }
    f(Tensor::cat(vec![x.clone(), x], 0)).narrow(0, 0, 1)
}

/// GroupNorm with 32 groups, eps 1e-5, biased variance (computed in the
/// backend's float type; f32 on every backend we run the reference on).
#[derive(Module, Debug)]
pub struct GroupNorm32<B: Backend> {
    pub weight: Param<Tensor<B, 1>>,
    pub bias: Param<Tensor<B, 1>>,
}

pub const GROUPS: usize = 32;
const EPS: f64 = 1e-5;

impl<B: Backend> GroupNorm32<B> {
    pub fn load(l: &mut ParamLoader<B>, name: &str, channels: usize) -> Self {
        Self {
            weight: l.param(&format!("{name}.weight"), [channels], Init::NormWeight),
            bias: l.param(&format!("{name}.bias"), [channels], Init::Bias),
        }
    }

    /// Normalises (B, C, H, W); the statistics in f32 whatever the tensor's
    /// precision, as the reference's `GroupNorm32` does.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        // The centred values are computed once: autodiff keeps them once.
        let normed = in_f32(x, |x| {
            let g = x.reshape([b, GROUPS, (c / GROUPS) * h * w]);
            let centred = g.clone() - g.mean_dim(2);
            let var = centred.clone().square().mean_dim(2);
            centred.div((var + EPS).sqrt()).reshape([b, c, h, w])
        });
        normed * self.weight.val().reshape([1, c, 1, 1]) + self.bias.val().reshape([1, c, 1, 1])
    }

    /// Normalises (B, C, T).
    pub fn forward_seq(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, c, t] = x.dims();
        self.forward(x.reshape([b, c, t, 1])).reshape([b, c, t])
    }
}

/// Runs `f` on `x` in f32 and returns the result in `x`'s precision: the
/// reference keeps normalisation statistics and softmax in f32 under half
/// precision. A no-op cast in f32.
pub fn in_f32<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    f: impl FnOnce(Tensor<B, D>) -> Tensor<B, D>,
) -> Tensor<B, D> {
    let dtype = x.dtype();
    to_dtype(f(to_f32(x)), dtype)
}

/// guided-diffusion's `timestep_embedding`: [cos(t f_k), sin(t f_k)] with
/// f_k = exp(-ln(10000) k / half), computed in f32 in the reference's order
/// (the same values as the CPU forward's).
pub fn timestep_embedding<B: Backend>(
    timesteps: &[i64],
    dim: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    let out = unidiff_kernels::timestep_embedding(timesteps, dim);
    Tensor::from_data(TensorData::new(out, [timesteps.len(), dim]), device)
}
