//! guided-diffusion's AttentionBlock with the "new" QKV order
//! (QKVAttention): q, k, v are channel thirds, split head-major; q and k are
//! each scaled by ch^-1/4; softmax over keys.

use super::layers::{GroupNorm32, PointwiseConv1d};
use super::lean_ops::UNetOps;
use super::params::ParamLoader;
use burn::prelude::*;

/// Self-attention over the spatial positions of a feature map.
#[derive(Module, Debug)]
pub struct AttentionBlock<B: Backend> {
    pub norm: GroupNorm32<B>,
    pub qkv: PointwiseConv1d<B>,
    pub proj_out: PointwiseConv1d<B>,
    pub heads: usize,
}

impl<B: Backend> AttentionBlock<B> {
    pub fn load(l: &mut ParamLoader<B>, name: &str, channels: usize, heads: usize) -> Self {
        Self {
            norm: GroupNorm32::load(l, &format!("{name}.norm"), channels),
            qkv: PointwiseConv1d::load(l, &format!("{name}.qkv"), channels, 3 * channels),
            proj_out: PointwiseConv1d::load(l, &format!("{name}.proj_out"), channels, channels),
            heads,
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4>
    where
        B: UNetOps,
    {
        let [b, c, h, w] = x.dims();
        let t = h * w;
        let seq = x.reshape([b, c, t]);
        let qkv = self.qkv.forward(self.norm.forward_seq(seq.clone()));
        let ch = c / self.heads;
        let scale = 1.0 / (ch as f64).sqrt().sqrt();
        let bh = b * self.heads;
        let q = qkv
            .clone()
            .narrow(1, 0, c)
            .mul_scalar(scale)
            .reshape([bh, ch, t]);
        let k = qkv
            .clone()
            .narrow(1, c, c)
            .mul_scalar(scale)
            .reshape([bh, ch, t]);
        let v = qkv.narrow(1, 2 * c, c).reshape([bh, ch, t]);
        // a[b, c, t] = sum_s softmax_s(sum_c q[b, c, t] k[b, c, s]) v[b, c, s]
        let a = B::attention_core(q, k, v).reshape([b, c, t]);
        let out = seq + self.proj_out.forward(a);
        out.reshape([b, c, h, w])
    }
}
