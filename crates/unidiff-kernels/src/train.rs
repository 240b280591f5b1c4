//! Stage A's training step on the CPU: the U-Net forward that keeps what its
//! backward pass needs, and that backward pass. Stage A trains only the
//! class-embedding table and the FiLM generators (`emb` linears) of the
//! output blocks' ResBlocks, so every other layer is frozen: a convolution
//! passes its input gradient back (the forward of a convolution with the
//! kernel flipped and the channels swapped) and computes no weight gradient;
//! GroupNorm, FiLM and SiLU go back in two fused passes per activation; the
//! attention recomputes its softmax from the kept q, k, v instead of keeping
//! a T x T matrix per head. The embedding's gradient gathers the FiLM
//! gradients of every ResBlock, frozen or not, and lands on the label rows.
//!
//! The optimiser is Adam as burn 0.21 writes it (the same order of f32
//! operations), so a run on the CPU path matches one through burn's autodiff.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::{
    Act, Attention, Block, Conv, GROUPS, KernelError, Linear, Norm, ResBlock, Resample, UNet,
    add_into, avx2_fma, buffer, exp_with, head_views, resample, silu_rows,
};

impl Conv {
    /// The convolution whose forward is this one's gradient with respect
    /// to its input: channels swapped, kernel flipped, no bias (for a stride
    /// 1 "same" convolution, dx = conv(dy, W flipped and transposed)).
    pub fn transposed(&self) -> Conv {
        let taps = self.k * self.k;
        let mut weight = vec![0f32; self.weight.len()];
        for co in 0..self.c_out {
            for ci in 0..self.c_in {
                for tap in 0..taps {
                    weight[(ci * self.c_out + co) * taps + (taps - 1 - tap)] =
                        self.weight[(co * self.c_in + ci) * taps + tap];
                }
            }
        }
        Conv {
            weight,
            bias: vec![0.0; self.c_in],
            c_in: self.c_out,
            c_out: self.c_in,
            k: self.k,
            transformed: Default::default(),
        }
    }
}

impl Linear {
    /// dx += dy W for rows dy (N x d_out) into dx (N x d_in).
    fn input_grad_into(&self, dy: &[f32], dx: &mut [f32]) {
        let n = dy.len() / self.d_out;
        let lhs = MatRef::from_row_major_slice(dy, n, self.d_out);
        let rhs = MatRef::from_row_major_slice(&self.weight, self.d_out, self.d_in);
        let dst = MatMut::from_row_major_slice_mut(dx, n, self.d_in);
        matmul(dst, Accum::Add, lhs, rhs, 1.0f32, Par::rayon(0));
    }

    /// (dW, db) = (dy^T x, sum of the rows of dy) for inputs x (N x d_in).
    fn param_grads(&self, dy: &[f32], x: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let n = dy.len() / self.d_out;
        let mut dw = vec![0f32; self.d_out * self.d_in];
        let lhs = MatRef::from_row_major_slice(dy, n, self.d_out).transpose();
        let rhs = MatRef::from_row_major_slice(x, n, self.d_in);
        let dst = MatMut::from_row_major_slice_mut(&mut dw, self.d_out, self.d_in);
        matmul(dst, Accum::Replace, lhs, rhs, 1.0f32, Par::rayon(0));
        let mut db = vec![0f32; self.d_out];
        for row in dy.chunks_exact(self.d_out) {
            for (d, &v) in db.iter_mut().zip(row) {
                *d += v;
            }
        }
        (dw, db)
    }
}

/// Per-plane sums of a GroupNorm backward: [sum dz, sum dz u, sum dxhat,
/// sum dxhat xhat] (u: the normalised value before FiLM).
type PlaneSums = [f32; 4];

/// First pass over one plane: dxhat into `dst`, the plane's sums returned.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn norm_grad_plane_body<const FMA: bool>(
    dst: &mut [f32],
    xs: &[f32],
    dys: &[f32],
    (mean, rstd): (f32, f32),
    (gamma, beta): (f32, f32),
    (scale, shift): (f32, f32),
    silu: bool,
) -> PlaneSums {
    let one_s = 1.0 + scale;
    let g = gamma * one_s;
    let mut lanes = [[0f32; 8]; 4];
    let mut step = |d: &mut f32, x: f32, dy: f32, l: usize| {
        let xhat = (x - mean) * rstd;
        let u = xhat * gamma + beta;
        let dz = if silu {
            let z = u * one_s + shift;
            let sig = 1.0 / (1.0 + exp_with::<FMA>(-z));
            dy * sig * (1.0 + z * (1.0 - sig))
        } else {
            dy
        };
        let dxhat = dz * g;
        *d = dxhat;
        lanes[0][l] += dz;
        lanes[1][l] += dz * u;
        lanes[2][l] += dxhat;
        lanes[3][l] += dxhat * xhat;
    };
    let mut d8 = dst.chunks_exact_mut(8);
    let mut x8 = xs.chunks_exact(8);
    let mut y8 = dys.chunks_exact(8);
    for ((d, x), y) in (&mut d8).zip(&mut x8).zip(&mut y8) {
        for l in 0..8 {
            step(&mut d[l], x[l], y[l], l);
        }
    }
    for ((d, &x), &y) in d8
        .into_remainder()
        .iter_mut()
        .zip(x8.remainder())
        .zip(y8.remainder())
    {
        step(d, x, y, 0);
    }
    lanes.map(|l| l.iter().sum())
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn norm_grad_plane_avx2(
    dst: &mut [f32],
    xs: &[f32],
    dys: &[f32],
    stats: (f32, f32),
    affine: (f32, f32),
    film: (f32, f32),
    silu: bool,
) -> PlaneSums {
    norm_grad_plane_body::<true>(dst, xs, dys, stats, affine, film, silu)
}

fn norm_grad_plane(
    dst: &mut [f32],
    xs: &[f32],
    dys: &[f32],
    stats: (f32, f32),
    affine: (f32, f32),
    film: (f32, f32),
    silu: bool,
) -> PlaneSums {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        return unsafe { norm_grad_plane_avx2(dst, xs, dys, stats, affine, film, silu) };
    }
    norm_grad_plane_body::<false>(dst, xs, dys, stats, affine, film, silu)
}

impl Norm {
    /// The gradient of [`Norm::apply`] (GroupNorm, then FiLM with `film`,
    /// then SiLU when `silu`) at input `x` with statistics `stats`, given
    /// the output's gradient `dy`: dx, and d film (N x 2C) with `film`.
    fn backward(
        &self,
        x: &Act,
        stats: &[(f32, f32)],
        film: Option<&[f32]>,
        silu: bool,
        dy: &Act,
    ) -> (Act, Option<Vec<f32>>) {
        let (c, n, hw) = (x.c, x.n, x.hw());
        let per_group = c / GROUPS;
        let film_of = |b: usize, ci: usize| {
            film.map_or((0.0, 0.0), |f| (f[b * 2 * c + ci], f[b * 2 * c + c + ci]))
        };
        let mut dx = x.like(c);
        let sums: Vec<PlaneSums> = dx
            .data
            .par_chunks_mut(hw)
            .zip(x.data.par_chunks(hw))
            .zip(dy.data.par_chunks(hw))
            .enumerate()
            .map(|(idx, ((dst, xs), dys))| {
                let (ci, b) = (idx / n, idx % n);
                norm_grad_plane(
                    dst,
                    xs,
                    dys,
                    stats[b * GROUPS + ci / per_group],
                    (self.gamma[ci], self.beta[ci]),
                    film_of(b, ci),
                    silu,
                )
            })
            .collect();
        // dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) over each
        // (image, group).
        let count = (per_group * hw) as f64;
        let group_means: Vec<(f32, f32)> = (0..n * GROUPS)
            .map(|bg| {
                let (b, g) = (bg / GROUPS, bg % GROUPS);
                let (mut s1, mut s2) = (0f64, 0f64);
                for ci in g * per_group..(g + 1) * per_group {
                    let s = sums[ci * n + b];
                    s1 += f64::from(s[2]);
                    s2 += f64::from(s[3]);
                }
                ((s1 / count) as f32, (s2 / count) as f32)
            })
            .collect();
        dx.data
            .par_chunks_mut(hw)
            .zip(x.data.par_chunks(hw))
            .enumerate()
            .for_each(|(idx, (dst, xs))| {
                let (ci, b) = (idx / n, idx % n);
                let bg = b * GROUPS + ci / per_group;
                let (mean, rstd) = stats[bg];
                let (m1, m2) = group_means[bg];
                for (d, &v) in dst.iter_mut().zip(xs) {
                    let xhat = (v - mean) * rstd;
                    *d = rstd * (*d - m1 - xhat * m2);
                }
            });
        let dfilm = film.map(|_| {
            let mut out = vec![0f32; n * 2 * c];
            for ci in 0..c {
                for b in 0..n {
                    let s = sums[ci * n + b];
                    out[b * 2 * c + ci] = s[1];
                    out[b * 2 * c + c + ci] = s[0];
                }
            }
            out
        });
        (dx, dfilm)
    }
}

/// The gradient of [`resample`] with respect to its input of `h x w`.
fn resample_backward(d: Act, how: Resample, h: usize, w: usize) -> Act {
    match how {
        Resample::None => d,
        Resample::Up => {
            // Each input pixel was copied to a 2 x 2 square.
            let (ow, hw) = (d.w, h * w);
            let mut out = Act {
                data: buffer(d.c * d.n * hw),
                c: d.c,
                n: d.n,
                h,
                w,
            };
            out.data
                .par_chunks_mut(hw)
                .zip(d.data.par_chunks(d.h * d.w))
                .for_each(|(dst, src)| {
                    for y in 0..h {
                        for x in 0..w {
                            let i = 2 * y * ow + 2 * x;
                            dst[y * w + x] = src[i] + src[i + 1] + src[i + ow] + src[i + ow + 1];
                        }
                    }
                });
            out
        }
        Resample::Down => {
            // Each output pixel averaged a 2 x 2 square; rows and columns
            // past an odd edge took no part.
            let (oh, ow, hw) = (d.h, d.w, h * w);
            let mut out = Act {
                data: buffer(d.c * d.n * hw),
                c: d.c,
                n: d.n,
                h,
                w,
            };
            out.data
                .par_chunks_mut(hw)
                .zip(d.data.par_chunks(oh * ow))
                .for_each(|(dst, src)| {
                    dst.fill(0.0);
                    for y in 0..oh {
                        for x in 0..ow {
                            let v = src[y * ow + x] * 0.25;
                            let i = 2 * y * w + 2 * x;
                            dst[i] = v;
                            dst[i + 1] = v;
                            dst[i + w] = v;
                            dst[i + w + 1] = v;
                        }
                    }
                });
            out
        }
    }
}

/// Dropout after a ResBlock's second SiLU (training only): a counter-based
/// mask, so that the backward pass regenerates it instead of keeping it.
#[derive(Debug, Clone, Copy)]
struct Dropout {
    p: f32,
    seed: u64,
    /// The images of this forward within the step's batch: the first and
    /// the batch's size (a batch split into groups draws the mask of the
    /// whole batch).
    first: usize,
    batch: usize,
}

impl Dropout {
    /// Whether element `i` of ResBlock `block`'s activation `x` (of this
    /// forward's images) is kept: element `i` of the batch's activation,
    /// numbered as if the batch ran whole.
    #[inline(always)]
    fn kept_in(self, block: usize, i: usize, n: usize, hw: usize) -> bool {
        let group = (n * hw).max(1);
        let (c, rest) = (i / group, i % group);
        self.kept(block, c * self.batch * hw + self.first * hw + rest)
    }

    /// Whether element `i` of ResBlock `block`'s activation of the whole
    /// batch is kept.
    #[inline(always)]
    fn kept(self, block: usize, i: usize) -> bool {
        // splitmix64 of (seed, block, i).
        let mut z = self
            .seed
            .wrapping_add((block as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) << 1)
            .wrapping_add((i as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 40) as f32 / (1u64 << 24) as f32) >= self.p
    }

    /// Zeroes the dropped elements and scales the kept ones by 1 / (1 - p).
    fn apply(self, block: usize, x: &mut Act) {
        let keep = 1.0 / (1.0 - self.p);
        let (n, hw) = (x.n, x.hw());
        x.data.par_iter_mut().enumerate().for_each(|(i, v)| {
            *v = if self.kept_in(block, i, n, hw) {
                *v * keep
            } else {
                0.0
            };
        });
    }
}

/// What a ResBlock's backward pass needs of its forward.
struct ResTape {
    /// The block's input.
    x: Act,
    in_stats: Vec<(f32, f32)>,
    /// The first convolution's output (the second norm's input).
    h2: Act,
    out_stats: Vec<(f32, f32)>,
    film: Vec<f32>,
    /// This block's number for the dropout mask.
    index: usize,
}

/// What an attention block's backward pass needs of its forward.
struct AttnTape {
    x: Act,
    stats: Vec<(f32, f32)>,
    qkv: Act,
    /// Every (image, head)'s softmax when they fit [`KEPT_SOFTMAX_BYTES`]
    /// (else the backward pass recomputes them).
    probs: Option<Vec<Vec<f32>>>,
}

/// Most bytes of softmax matrices one attention block keeps for its
/// backward pass: the tiny U-Net's fit, the ImageNet-64 one's at 32 x 32
/// positions (1.5 GB a block at batch 32) are recomputed.
const KEPT_SOFTMAX_BYTES: usize = 64 << 20;

#[derive(Default)]
struct BlockTape {
    res: Option<ResTape>,
    attn: Option<AttnTape>,
    res2: Option<ResTape>,
}

/// The transposed convolutions of a ResBlock.
struct ResT {
    in_conv: Conv,
    out_conv: Conv,
    skip: Option<Conv>,
}

impl ResT {
    fn of(r: &ResBlock) -> Self {
        Self {
            in_conv: r.in_conv.transposed(),
            out_conv: r.out_conv.transposed(),
            skip: r.skip.as_ref().map(Conv::transposed),
        }
    }
}

struct AttnT {
    qkv: Conv,
    proj: Conv,
}

struct BlockT {
    conv: Option<Conv>,
    res: Option<ResT>,
    attn: Option<AttnT>,
    res2: Option<ResT>,
}

impl BlockT {
    fn of(b: &Block) -> Self {
        Self {
            conv: b.conv.as_ref().map(Conv::transposed),
            res: b.res.as_ref().map(ResT::of),
            attn: b.attn.as_ref().map(|a| AttnT {
                qkv: a.qkv.transposed(),
                proj: a.proj.transposed(),
            }),
            res2: b.res2.as_ref().map(ResT::of),
        }
    }
}

/// The gradients a backward pass shares between blocks: d SiLU(emb), and
/// the trainable linears' (dW, db) in order.
struct EmbGrads<'a> {
    emb_silu: &'a [f32],
    d_emb_silu: Vec<f32>,
    linears: Vec<(Vec<f32>, Vec<f32>)>,
}

impl ResBlock {
    fn forward_train(
        &self,
        x: Act,
        emb_silu: &[f32],
        dropout: Option<Dropout>,
        index: usize,
    ) -> (Act, ResTape) {
        let in_stats = self.in_norm.stats(&x);
        let h = self.in_norm.applied_with(&x, &in_stats, None, true);
        let h = resample(h, self.resample);
        let h2 = self.in_conv.forward(&h);
        drop(h);
        let film = self.emb.forward(emb_silu);
        let out_stats = self.out_norm.stats(&h2);
        let mut h3 = self
            .out_norm
            .applied_with(&h2, &out_stats, Some(&film), true);
        if let Some(d) = dropout {
            d.apply(index, &mut h3);
        }
        let mut out = self.out_conv.forward(&h3);
        drop(h3);
        let resampled;
        let xr = match self.resample {
            Resample::None => &x,
            how => {
                resampled = resample(x.clone(), how);
                &resampled
            }
        };
        match &self.skip {
            Some(conv) => add_into(&mut out, &conv.forward(xr)),
            None => add_into(&mut out, xr),
        }
        let tape = ResTape {
            x,
            in_stats,
            h2,
            out_stats,
            film,
            index,
        };
        (out, tape)
    }

    /// dx from d out; adds to `grads.d_emb_silu`, and pushes (dW, db) of
    /// the emb linear when `trainable`.
    fn backward(
        &self,
        t: &ResT,
        tape: ResTape,
        dout: Act,
        dropout: Option<Dropout>,
        grads: &mut EmbGrads,
        trainable: bool,
    ) -> Act {
        let (h, w) = (tape.x.h, tape.x.w);
        let mut dh3 = t.out_conv.forward(&dout);
        let dxr = match &t.skip {
            Some(conv) => conv.forward(&dout),
            None => dout,
        };
        if let Some(d) = dropout {
            d.apply(tape.index, &mut dh3);
        }
        let (dh2, dfilm) =
            self.out_norm
                .backward(&tape.h2, &tape.out_stats, Some(&tape.film), true, &dh3);
        drop(dh3);
        let dfilm = dfilm.unwrap_or_default();
        self.emb.input_grad_into(&dfilm, &mut grads.d_emb_silu);
        if trainable {
            grads
                .linears
                .push(self.emb.param_grads(&dfilm, grads.emb_silu));
        }
        let dh1 = resample_backward(t.in_conv.forward(&dh2), self.resample, h, w);
        drop(dh2);
        let (mut dx, _) = self
            .in_norm
            .backward(&tape.x, &tape.in_stats, None, true, &dh1);
        add_into(&mut dx, &resample_backward(dxr, self.resample, h, w));
        dx
    }
}

impl Attention {
    fn forward_train(&self, x: Act) -> (Act, AttnTape) {
        let stats = self.norm.stats(&x);
        let normed = self.norm.applied_with(&x, &stats, None, false);
        let qkv = self.qkv.forward(&normed);
        drop(normed);
        let t = qkv.hw();
        let keep = qkv.n * self.heads * t * t * 4 <= KEPT_SOFTMAX_BYTES;
        let (a, probs) = self.core_keeping(&qkv, keep);
        let mut out = self.proj.forward(&a);
        drop(a);
        add_into(&mut out, &x);
        let tape = AttnTape {
            x,
            stats,
            qkv,
            probs,
        };
        (out, tape)
    }

    fn backward(&self, t: &AttnT, tape: AttnTape, dout: Act) -> Act {
        let da = t.proj.forward(&dout);
        let qkv = &tape.qkv;
        let (c, n, tt) = (qkv.c / 3, qkv.n, qkv.hw());
        let heads = self.heads;
        let ch = c / heads;
        let scale = (1.0 / (ch as f64).sqrt()) as f32;
        let parts: Vec<[Vec<f32>; 3]> = (0..n * heads)
            .into_par_iter()
            .map(|bh| {
                let (b, hd) = (bh / heads, bh % heads);
                let [q, k, v] = head_views(qkv, c, ch, b, hd);
                let start = hd * ch * n * tt + b * tt;
                let da =
                    MatRef::from_row_major_slice_with_stride(&da.data[start..], ch, tt, n * tt);
                let recomputed;
                let p = match &tape.probs {
                    Some(probs) => &probs[bh],
                    None => {
                        recomputed = self.probabilities(qkv, b, hd);
                        &recomputed
                    }
                };
                let pm = MatRef::from_row_major_slice(p, tt, tt);
                // dv[c, s] = sum_t da[c, t] p[t, s]
                let mut dv = vec![0f32; ch * tt];
                let dst = MatMut::from_row_major_slice_mut(&mut dv, ch, tt);
                matmul(dst, Accum::Replace, da, pm, 1.0f32, Par::Seq);
                // dp[t, s] = sum_c da[c, t] v[c, s]
                let mut ds = vec![0f32; tt * tt];
                let dst = MatMut::from_row_major_slice_mut(&mut ds, tt, tt);
                matmul(dst, Accum::Replace, da.transpose(), v, 1.0f32, Par::Seq);
                // ds = p (dp - sum_s p dp), row by row.
                for (drow, prow) in ds.chunks_exact_mut(tt).zip(p.chunks_exact(tt)) {
                    let dot: f32 = drow.iter().zip(prow).map(|(a, b)| a * b).sum();
                    for (d, &pv) in drow.iter_mut().zip(prow) {
                        *d = pv * (*d - dot);
                    }
                }
                let dsm = MatRef::from_row_major_slice(&ds, tt, tt);
                // dq[c, t] = scale sum_s k[c, s] ds[t, s]
                let mut dq = vec![0f32; ch * tt];
                let dst = MatMut::from_row_major_slice_mut(&mut dq, ch, tt);
                matmul(dst, Accum::Replace, k, dsm.transpose(), scale, Par::Seq);
                // dk[c, s] = scale sum_t q[c, t] ds[t, s]
                let mut dk = vec![0f32; ch * tt];
                let dst = MatMut::from_row_major_slice_mut(&mut dk, ch, tt);
                matmul(dst, Accum::Replace, q, dsm, scale, Par::Seq);
                [dq, dk, dv]
            })
            .collect();
        drop(da);
        let mut dqkv = qkv.like(3 * c);
        let nt = n * tt;
        for (bh, grads) in parts.iter().enumerate() {
            let (b, hd) = (bh / heads, bh % heads);
            for (third, part) in grads.iter().enumerate() {
                for ci in 0..ch {
                    let row = (third * c + hd * ch + ci) * nt + b * tt;
                    dqkv.data[row..row + tt].copy_from_slice(&part[ci * tt..(ci + 1) * tt]);
                }
            }
        }
        let dnormed = t.qkv.forward(&dqkv);
        drop(dqkv);
        let (mut dx, _) = self
            .norm
            .backward(&tape.x, &tape.stats, None, false, &dnormed);
        add_into(&mut dx, &dout);
        dx
    }
}

impl Act {
    fn bytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<f32>()
    }
}

impl ResTape {
    fn bytes(&self) -> usize {
        self.x.bytes()
            + self.h2.bytes()
            + 4 * self.film.len()
            + 8 * (self.in_stats.len() + self.out_stats.len())
    }
}

impl AttnTape {
    fn bytes(&self) -> usize {
        let probs: usize = self.probs.iter().flatten().map(|p| 4 * p.len()).sum();
        self.x.bytes() + self.qkv.bytes() + 8 * self.stats.len() + probs
    }
}

impl Kept {
    fn bytes(&self) -> usize {
        match self {
            Kept::Tape(t) => {
                t.res.as_ref().map_or(0, ResTape::bytes)
                    + t.attn.as_ref().map_or(0, AttnTape::bytes)
                    + t.res2.as_ref().map_or(0, ResTape::bytes)
            }
            Kept::Input { x, .. } => x.bytes(),
        }
    }
}

impl TrainTape {
    /// What this tape holds, in bytes.
    pub fn bytes(&self) -> usize {
        self.groups.iter().map(|(_, g)| g.bytes()).sum()
    }
}

impl GroupTape {
    fn bytes(&self) -> usize {
        self.inputs
            .iter()
            .chain(&self.outputs)
            .map(Kept::bytes)
            .sum::<usize>()
            + self.middle.bytes()
            + self.last.bytes()
            + 4 * (self.emb.len() + self.emb_silu.len())
    }
}

/// What a block keeps for its backward pass: its tape, or with
/// checkpointing only its input (and its first ResBlock's number, for the
/// dropout mask), from which the backward pass runs it again.
enum Kept {
    Tape(Box<BlockTape>),
    Input { x: Act, first: usize },
}

/// A block's training forward; `index` numbers its ResBlocks (dropout).
fn block_forward_train(
    b: &Block,
    mut h: Act,
    emb_silu: &[f32],
    dropout: Option<Dropout>,
    index: &mut usize,
) -> (Act, BlockTape) {
    let mut tape = BlockTape::default();
    if let Some(c) = &b.conv {
        h = c.forward(&h);
    }
    if let Some(r) = &b.res {
        let (o, t) = r.forward_train(h, emb_silu, dropout, *index);
        *index += 1;
        h = o;
        tape.res = Some(t);
    }
    if let Some(a) = &b.attn {
        let (o, t) = a.forward_train(h);
        h = o;
        tape.attn = Some(t);
    }
    if let Some(r) = &b.res2 {
        let (o, t) = r.forward_train(h, emb_silu, dropout, *index);
        *index += 1;
        h = o;
        tape.res2 = Some(t);
    }
    (h, tape)
}

/// What the backward pass of one training forward needs: per group of
/// images that ran side by side, its first image and its tape.
///
/// A training batch is split as [`UNet::split_group`] says, each group's
/// forward and backward on one thread: its activations stay in that core's
/// cache, where the whole batch's layers would be split across the cores
/// one at a time. The gradients are the groups' sums added (the same values
/// up to the order of the sums); the dropout mask is the whole batch's.
pub struct TrainTape {
    groups: Vec<(usize, GroupTape)>,
}

/// What the backward pass of one group's training forward needs.
struct GroupTape {
    y: Vec<i64>,
    emb: Vec<f32>,
    emb_silu: Vec<f32>,
    dropout: Option<Dropout>,
    inputs: Vec<Kept>,
    middle: Kept,
    outputs: Vec<Kept>,
    /// Channels of h (before the skip) in each output block's concatenation.
    split: Vec<usize>,
    /// The input of the final norm and its statistics.
    last: Act,
    last_stats: Vec<(f32, f32)>,
}

/// The U-Net with what Stage A's training step needs: the transposed
/// convolutions and the trainable set's place.
pub struct Trainer {
    net: UNet,
    inputs_t: Vec<BlockT>,
    middle_t: BlockT,
    outputs_t: Vec<BlockT>,
    out_conv_t: Conv,
    dropout: f32,
    checkpoint: bool,
}

impl Trainer {
    /// A trainer for `net` with dropout probability `dropout` after each
    /// ResBlock's second activation.
    pub fn new(net: UNet, dropout: f32) -> Result<Self, KernelError> {
        if net.input_blocks.len() != net.output_blocks.len() {
            return Err(KernelError::Layout(
                "the output blocks do not pair with the input blocks",
            ));
        }
        if !(0.0..1.0).contains(&dropout) {
            return Err(KernelError::Layout("dropout must be in [0, 1)"));
        }
        Ok(Self {
            inputs_t: net.input_blocks.iter().map(BlockT::of).collect(),
            middle_t: BlockT::of(&net.middle_block),
            outputs_t: net.output_blocks.iter().map(BlockT::of).collect(),
            out_conv_t: net.out_conv.transposed(),
            net,
            dropout,
            checkpoint: false,
        })
    }

    /// With `on`, each block keeps only its input and runs again in the
    /// backward pass: about a third more time, a fraction of the memory.
    pub fn with_checkpointing(mut self, on: bool) -> Self {
        self.checkpoint = on;
        self
    }

    /// Bytes the training forward keeps per sample of `size x size` without
    /// checkpointing (measured on one zero image).
    pub fn tape_bytes_per_sample(&self, size: usize) -> Result<usize, KernelError> {
        let x = Act {
            data: vec![0.0; 3 * size * size],
            c: 3,
            n: 1,
            h: size,
            w: size,
        };
        let (_, tape) = self.forward_group(x, &[0], &[0], 0, (0, 1), false)?;
        Ok(tape.bytes())
    }

    /// The trainable tensors in the reference's state-dict order: the
    /// class-embedding table, then for each output block's ResBlocks (in
    /// order) the emb linear's weight and bias.
    pub fn trainable_mut(&mut self) -> Vec<&mut [f32]> {
        let mut out: Vec<&mut [f32]> = Vec::new();
        if let Some(t) = &mut self.net.label_emb {
            out.push(t);
        }
        for b in &mut self.net.output_blocks {
            for r in b.res.iter_mut().chain(b.res2.iter_mut()) {
                out.push(&mut r.emb.weight);
                out.push(&mut r.emb.bias);
            }
        }
        out
    }

    /// The training forward of `x` (C x N x H x W) at timesteps `t` and
    /// labels `y`: the output and what the backward pass needs. `seed`
    /// draws this step's dropout mask.
    pub fn forward(
        &self,
        x: Act,
        t: &[i64],
        y: &[i64],
        seed: u64,
    ) -> Result<(Act, TrainTape), KernelError> {
        let n = x.n;
        if t.len() != n || y.len() != n {
            return Err(KernelError::Layout(
                "a timestep and a label per image are needed",
            ));
        }
        let Some(group) = self.net.split_group(n, x.h, x.w) else {
            let (out, tape) = self.forward_group(x, t, y, seed, (0, n), self.checkpoint)?;
            return Ok((
                out,
                TrainTape {
                    groups: vec![(0, tape)],
                },
            ));
        };
        let _pool = super::PoolScope::enter();
        let groups: Vec<(Act, (usize, GroupTape))> = UNet::image_groups(n, group)
            .map(|(a, b)| {
                let x = x.images(a, b);
                let (out, tape) =
                    self.forward_group(x, &t[a..b], &y[a..b], seed, (a, n), self.checkpoint)?;
                Ok((out, (a, tape)))
            })
            .collect::<Result<_, KernelError>>()?;
        drop(x);
        let (outs, groups): (Vec<Act>, Vec<(usize, GroupTape)>) = groups.into_iter().unzip();
        let out = Act::concat_images(&outs)
            .ok_or(KernelError::Layout("the groups' outputs differ in shape"))?;
        Ok((out, TrainTape { groups }))
    }

    /// The training forward of the images `x`, `(first, batch)`: their
    /// place in the step's batch (for the dropout mask).
    fn forward_group(
        &self,
        x: Act,
        t: &[i64],
        y: &[i64],
        seed: u64,
        (first, batch): (usize, usize),
        checkpoint: bool,
    ) -> Result<(Act, GroupTape), KernelError> {
        let _pool = super::PoolScope::enter();
        let emb = self.net.embedding(t, y)?;
        let emb_silu = silu_rows(&emb);
        let dropout = (self.dropout > 0.0).then_some(Dropout {
            p: self.dropout,
            seed,
            first,
            batch,
        });
        let mut index = 0;
        let mut run = |b: &Block, h: Act| -> (Act, Kept) {
            let first = index;
            let input = checkpoint.then(|| h.clone());
            let (out, tape) = block_forward_train(b, h, &emb_silu, dropout, &mut index);
            let kept = match input {
                Some(x) => {
                    drop(tape);
                    Kept::Input { x, first }
                }
                None => Kept::Tape(Box::new(tape)),
            };
            (out, kept)
        };
        let mut h = x;
        let mut hs = Vec::with_capacity(self.net.input_blocks.len());
        let mut inputs = Vec::with_capacity(self.net.input_blocks.len());
        for b in &self.net.input_blocks {
            let (o, tape) = run(b, h);
            hs.push(o.clone());
            inputs.push(tape);
            h = o;
        }
        let (o, middle) = run(&self.net.middle_block, h);
        h = o;
        let mut outputs = Vec::with_capacity(self.net.output_blocks.len());
        let mut split = Vec::with_capacity(self.net.output_blocks.len());
        for b in &self.net.output_blocks {
            let skip = hs
                .pop()
                .ok_or(KernelError::Layout("an output block without its skip"))?;
            split.push(h.c);
            let mut data = buffer(h.data.len() + skip.data.len());
            data[..h.data.len()].copy_from_slice(&h.data);
            data[h.data.len()..].copy_from_slice(&skip.data);
            let cat = Act {
                data,
                c: h.c + skip.c,
                n: h.n,
                h: h.h,
                w: h.w,
            };
            let (o, tape) = run(b, cat);
            outputs.push(tape);
            h = o;
        }
        let last_stats = self.net.out_norm.stats(&h);
        let normed = self.net.out_norm.applied_with(&h, &last_stats, None, true);
        let out = self.net.out_conv.forward(&normed);
        let tape = GroupTape {
            y: y.to_vec(),
            emb,
            emb_silu,
            dropout,
            inputs,
            middle,
            outputs,
            split,
            last: h,
            last_stats,
        };
        Ok((out, tape))
    }

    /// The trainable tensors' gradients (in [`Trainer::trainable_mut`]'s
    /// order) from the gradient of the output.
    pub fn backward(&self, tape: TrainTape, dout: Act) -> Vec<Vec<f32>> {
        let mut groups = tape.groups;
        if groups.len() == 1
            && let Some((_, only)) = groups.pop()
        {
            return self.backward_group(only, dout);
        }
        let _pool = super::PoolScope::enter();
        let n = dout.n;
        let parts: Vec<Vec<Vec<f32>>> = groups
            .into_par_iter()
            .map(|(first, g)| {
                let last = (first + g.y.len()).min(n);
                self.backward_group(g, dout.images(first, last))
            })
            .collect();
        drop(dout);
        // The groups' sums added in the groups' order.
        let mut parts = parts.into_iter();
        let mut sum = parts.next().unwrap_or_default();
        for part in parts {
            for (s, p) in sum.iter_mut().zip(part) {
                for (a, b) in s.iter_mut().zip(p) {
                    *a += b;
                }
            }
        }
        sum
    }

    /// [`Trainer::backward`] of one group's forward.
    fn backward_group(&self, tape: GroupTape, dout: Act) -> Vec<Vec<f32>> {
        let _pool = super::PoolScope::enter();
        let GroupTape {
            y,
            emb,
            emb_silu,
            dropout,
            inputs,
            middle,
            outputs,
            split,
            last,
            last_stats,
        } = tape;
        let mut grads = EmbGrads {
            emb_silu: &emb_silu,
            d_emb_silu: vec![0f32; emb_silu.len()],
            linears: Vec::new(),
        };
        let dnormed = self.out_conv_t.forward(&dout);
        drop(dout);
        let (mut dh, _) = self
            .net
            .out_norm
            .backward(&last, &last_stats, None, true, &dnormed);
        drop((dnormed, last));
        let n_in = inputs.len();
        let mut dskips: Vec<Option<Act>> = (0..n_in).map(|_| None).collect();
        let mut output_linears = Vec::new();
        for (i, tape) in outputs.into_iter().enumerate().rev() {
            grads.linears.clear();
            let dcat = self.block_backward(
                &self.net.output_blocks[i],
                &self.outputs_t[i],
                tape,
                dh,
                dropout,
                &mut grads,
                (true, true),
            );
            // The block's ResBlocks went back res2 first.
            let mut block_linears = std::mem::take(&mut grads.linears);
            block_linears.reverse();
            output_linears.push((i, block_linears));
            let mut dcat = dcat;
            let (c_h, n, hw) = (split[i], dcat.n, dcat.hw());
            let mut data = std::mem::take(&mut dcat.data);
            let rest = data.split_off(c_h * n * hw);
            dh = Act {
                data,
                c: c_h,
                n,
                h: dcat.h,
                w: dcat.w,
            };
            dskips[n_in - 1 - i] = Some(Act {
                data: rest,
                c: dcat.c - c_h,
                n,
                h: dcat.h,
                w: dcat.w,
            });
        }
        let mut dh = self.block_backward(
            &self.net.middle_block,
            &self.middle_t,
            middle,
            dh,
            dropout,
            &mut grads,
            (false, true),
        );
        for (j, tape) in inputs.into_iter().enumerate().rev() {
            if let Some(skip) = dskips[j].take() {
                add_into(&mut dh, &skip);
            }
            dh = self.block_backward(
                &self.net.input_blocks[j],
                &self.inputs_t[j],
                tape,
                dh,
                dropout,
                &mut grads,
                (false, j > 0),
            );
        }
        // d emb = d SiLU(emb) * SiLU'(emb); the label rows take it.
        let mut out = Vec::new();
        if let Some(table) = &self.net.label_emb {
            let dim = self.net.time_embed_2.d_out;
            let mut dtable = vec![0f32; table.len()];
            for ((&yi, e), de) in y
                .iter()
                .zip(emb.chunks_exact(dim))
                .zip(grads.d_emb_silu.chunks_exact(dim))
            {
                // `forward` checked every label row.
                let row = &mut dtable[yi as usize * dim..(yi as usize + 1) * dim];
                for ((r, &ev), &d) in row.iter_mut().zip(e).zip(de) {
                    let sig = 1.0 / (1.0 + (-ev).exp());
                    *r += d * sig * (1.0 + ev * (1.0 - sig));
                }
            }
            out.push(dtable);
        }
        output_linears.sort_by_key(|(i, _)| *i);
        for (_, linears) in output_linears {
            for (dw, db) in linears {
                out.push(dw);
                out.push(db);
            }
        }
        out
    }

    /// One block's backward pass: the gradient of its input; `(trainable,
    /// need_dx)`: whether its ResBlocks' linears train, and whether its
    /// input's gradient is needed (not for the stem, whose convolution is
    /// then skipped and whose result nobody reads).
    #[allow(clippy::too_many_arguments)]
    fn block_backward(
        &self,
        b: &Block,
        t: &BlockT,
        kept: Kept,
        mut d: Act,
        dropout: Option<Dropout>,
        grads: &mut EmbGrads,
        (trainable, need_dx): (bool, bool),
    ) -> Act {
        let tape = match kept {
            Kept::Tape(tape) => *tape,
            Kept::Input { x, mut first } => {
                block_forward_train(b, x, grads.emb_silu, dropout, &mut first).1
            }
        };
        if let (Some(r), Some(rt), Some(tp)) = (&b.res2, &t.res2, tape.res2) {
            d = r.backward(rt, tp, d, dropout, grads, trainable);
        }
        if let (Some(a), Some(at), Some(tp)) = (&b.attn, &t.attn, tape.attn) {
            d = a.backward(at, tp, d);
        }
        if let (Some(r), Some(rt), Some(tp)) = (&b.res, &t.res, tape.res) {
            d = r.backward(rt, tp, d, dropout, grads, trainable);
        }
        if let Some(c) = &t.conv
            && need_dx
        {
            d = c.forward(&d);
        }
        d
    }
}

/// Adam as burn 0.21 computes it (moments, bias corrections folded into one
/// factor, epsilon scaled by the second correction's root; L2 weight decay
/// added to the gradient first), in f32.
#[derive(Debug, Clone)]
pub struct Adam {
    beta1: f32,
    beta2: f32,
    epsilon: f32,
    weight_decay: f32,
    time: i32,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

/// Tensors below this many values are stepped on the calling thread.
const PARALLEL_STEP: usize = 1 << 14;

impl Adam {
    pub fn new(beta1: f32, beta2: f32, epsilon: f32) -> Self {
        Self {
            beta1,
            beta2,
            epsilon,
            weight_decay: 0.0,
            time: 0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }

    /// With L2 weight decay: the gradient becomes `param * decay + grad`.
    pub fn with_weight_decay(mut self, decay: f32) -> Self {
        self.weight_decay = decay;
        self
    }

    /// One step of every tensor `params[i]` along `grads[i]`.
    pub fn step(&mut self, lr: f32, params: Vec<&mut [f32]>, grads: &[Vec<f32>]) {
        if self.m.is_empty() {
            self.m = grads.iter().map(|g| vec![0f32; g.len()]).collect();
            self.v = grads.iter().map(|g| vec![0f32; g.len()]).collect();
        }
        self.time += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let bc2 = (1.0 - b2.powi(self.time)).sqrt();
        let factor = bc2 / (1.0 - b1.powi(self.time));
        let eps = self.epsilon * bc2;
        let step = AdamStep {
            b1,
            b2,
            factor,
            eps,
            lr,
            decay: self.weight_decay,
        };
        let first = self.time == 1;
        for (((p, g), m), v) in params
            .into_iter()
            .zip(grads)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            if p.len() < PARALLEL_STEP {
                step.apply(first, p, g, m, v);
            } else {
                p.par_chunks_mut(PARALLEL_STEP)
                    .zip(g.par_chunks(PARALLEL_STEP))
                    .zip(m.par_chunks_mut(PARALLEL_STEP))
                    .zip(v.par_chunks_mut(PARALLEL_STEP))
                    .for_each(|(((p, g), m), v)| step.apply(first, p, g, m, v));
            }
        }
    }
}

/// The constants of one Adam step.
struct AdamStep {
    b1: f32,
    b2: f32,
    factor: f32,
    eps: f32,
    lr: f32,
    decay: f32,
}

impl AdamStep {
    /// The step on one run of values, with AVX2's eight lanes where the
    /// CPU has them (no FMA: the same roundings either way).
    fn apply(&self, first: bool, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { self.apply_avx2(first, p, g, m, v) };
            return;
        }
        self.apply_body(first, p, g, m, v);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn apply_avx2(&self, first: bool, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        self.apply_body(first, p, g, m, v);
    }

    /// Plain loops over equal-length slices, the first step's and the
    /// decay's branches taken outside them, so that the compiler vectorises
    /// the square roots and divisions (IEEE operations, in the same order
    /// as element by element).
    #[inline(always)]
    fn apply_body(&self, first: bool, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        let n = p.len().min(g.len()).min(m.len()).min(v.len());
        let (p, g, m, v) = (&mut p[..n], &g[..n], &mut m[..n], &mut v[..n]);
        let Self {
            b1,
            b2,
            factor,
            eps,
            lr,
            decay,
        } = *self;
        let (c1, c2) = (1.0 - b1, 1.0 - b2);
        match (first, decay != 0.0) {
            (true, true) => {
                for i in 0..n {
                    let gi = p[i] * decay + g[i];
                    m[i] = gi * c1;
                    v[i] = gi * gi * c2;
                    p[i] -= m[i] * factor / (v[i].sqrt() + eps) * lr;
                }
            }
            (true, false) => {
                for i in 0..n {
                    let gi = g[i];
                    m[i] = gi * c1;
                    v[i] = gi * gi * c2;
                    p[i] -= m[i] * factor / (v[i].sqrt() + eps) * lr;
                }
            }
            (false, true) => {
                for i in 0..n {
                    let gi = p[i] * decay + g[i];
                    m[i] = m[i] * b1 + gi * c1;
                    v[i] = v[i] * b2 + gi * gi * c2;
                    p[i] -= m[i] * factor / (v[i].sqrt() + eps) * lr;
                }
            }
            (false, false) => {
                for i in 0..n {
                    let gi = g[i];
                    m[i] = m[i] * b1 + gi * c1;
                    v[i] = v[i] * b2 + gi * gi * c2;
                    p[i] -= m[i] * factor / (v[i].sqrt() + eps) * lr;
                }
            }
        }
    }
}
