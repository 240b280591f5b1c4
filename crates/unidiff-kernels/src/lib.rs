//! UniDiff Studio's CPU inference kernels: the frozen ADM U-Net forward
//! (guided-diffusion's `UNetModel`, eval mode, no gradient) written for the
//! CPU. Classification runs this network over every patch of a scene, and a
//! tensor library's generic CPU kernels spend most of such a forward in
//! strided iterators and copies rather than in matrix products. Here every
//! activation is one contiguous `C x N x H x W` buffer (channels outermost,
//! so that a channel concatenation is an append and a 1x1 convolution is one
//! matrix product over the whole batch); 3x3 convolutions run by Winograd's
//! F(4x4, 3x3) (`winograd`) or, where that is slower, as im2col + one GEMM
//! per group of images (faer's gemm, all cores); GroupNorm, the FiLM
//! scale / shift and SiLU are one pass; attention is two GEMMs per (image,
//! head) with the softmax between them. The element-wise loops are compiled
//! a second time for AVX2 + FMA and chosen at run time.
//!
//! Training on the CPU lives here too: Stage A's step (`train`: the U-Net's
//! backward pass for the FiLM adaptation) and the Stage B head's (`head`).
//!
//! A crate of its own so that it is optimised in every profile (the app's
//! test builds compile the app at opt-level 1, where loops are not
//! vectorised). The app fills these structs from its burn model
//! (`model/host_unet.rs`) and tests the result against the reference.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

mod head;
mod train;
mod winograd;
pub use head::{HeadLinear, HeadMlp, HeadNorm, HeadTrainer};
pub use train::{Adam, TrainTape, Trainer};
pub use winograd::Tile;

/// GroupNorm's group count in the ADM U-Net.
pub const GROUPS: usize = 32;

/// Which block an activation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockId {
    Input(usize),
    Middle,
    Output(usize),
}

/// Why a layer cannot be built from the given weights.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KernelError {
    #[error(
        "a {k}x{k} convolution with padding {padding}: only 1x1 and 3x3 'same' ones run on the CPU path"
    )]
    Convolution { k: usize, padding: usize },
    #[error("{what}: {len} weights, {expected} expected")]
    Size {
        what: &'static str,
        len: usize,
        expected: usize,
    },
    #[error("{channels} channels do not split into {GROUPS} groups")]
    Groups { channels: usize },
    #[error("label row {row}: the class-embedding table has {rows} rows")]
    LabelRow { row: i64, rows: usize },
    #[error("cannot train this network on the CPU path: {0}")]
    Layout(&'static str),
}

fn check_len(what: &'static str, len: usize, expected: usize) -> Result<(), KernelError> {
    if len == expected {
        Ok(())
    } else {
        Err(KernelError::Size {
            what,
            len,
            expected,
        })
    }
}

/// GroupNorm's epsilon.
const EPS: f64 = 1e-5;
/// Largest im2col buffer of one 3x3 convolution, in f32 values (4 MiB, so
/// that the product reads the columns from cache: 30 % faster than 64 MiB):
/// larger batches are convolved a group of images at a time.
const COLUMNS_PER_CHUNK: usize = 1 << 20;
/// Fewest columns of one chunk's product (a 64 x 64 image).
const MIN_COLUMNS: usize = 4096;

thread_local! {
    /// Buffers of activations dropped during the forward running on this
    /// thread, for the next ones: a forward allocates and frees tens of
    /// megabytes per layer, and fresh pages cost more (page faults,
    /// zeroing by the kernel, unmapping) than the layers' element-wise work.
    static POOL: std::cell::RefCell<Option<Vec<Vec<f32>>>> = const { std::cell::RefCell::new(None) };
}

/// Most buffers the pool keeps.
const POOL_BUFFERS: usize = 48;

/// A buffer of `len` values, from the pool when it has one large enough
/// (then holding old values: the caller writes every one of them).
fn buffer(len: usize) -> Vec<f32> {
    let reused = POOL.with(|p| {
        let mut p = p.borrow_mut();
        let pool = p.as_mut()?;
        let best = pool
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= len)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i)?;
        Some(pool.swap_remove(best))
    });
    match reused {
        // Every caller writes each value of its buffer before reading it,
        // so a reused one keeps its old values instead of being zeroed.
        Some(mut b) => {
            if b.len() >= len {
                b.truncate(len);
            } else {
                b.resize(len, 0.0);
            }
            b
        }
        None => vec![0f32; len],
    }
}

/// Gives `b` to the pool while a forward runs on this thread (dropped
/// otherwise).
fn recycle(b: Vec<f32>) {
    if b.capacity() == 0 {
        return;
    }
    POOL.with(|p| {
        if let Some(pool) = p.borrow_mut().as_mut()
            && pool.len() < POOL_BUFFERS
        {
            pool.push(b);
        }
    });
}

/// Keeps freed buffers for reuse until dropped; the outermost one frees them.
struct PoolScope {
    outermost: bool,
}

impl PoolScope {
    fn enter() -> Self {
        let outermost = POOL.with(|p| {
            let mut p = p.borrow_mut();
            let first = p.is_none();
            if first {
                *p = Some(Vec::new());
            }
            first
        });
        Self { outermost }
    }
}

impl Drop for PoolScope {
    fn drop(&mut self) {
        if self.outermost {
            POOL.with(|p| *p.borrow_mut() = None);
        }
    }
}

/// An activation, `C x N x H x W`, contiguous.
#[derive(Debug, PartialEq)]
pub struct Act {
    pub data: Vec<f32>,
    pub c: usize,
    pub n: usize,
    pub h: usize,
    pub w: usize,
}

impl Clone for Act {
    fn clone(&self) -> Self {
        let mut data = buffer(self.data.len());
        data.copy_from_slice(&self.data);
        Self {
            data,
            c: self.c,
            n: self.n,
            h: self.h,
            w: self.w,
        }
    }
}

impl Drop for Act {
    fn drop(&mut self) {
        recycle(std::mem::take(&mut self.data));
    }
}

impl Act {
    /// From `N x C x H x W` values (the layout of burn tensors and of the
    /// reference).
    pub fn from_nchw(values: &[f32], n: usize, c: usize, h: usize, w: usize) -> Self {
        let hw = h * w;
        let mut data = vec![0f32; values.len()];
        for b in 0..n {
            for ci in 0..c {
                let src = &values[(b * c + ci) * hw..(b * c + ci + 1) * hw];
                data[(ci * n + b) * hw..(ci * n + b + 1) * hw].copy_from_slice(src);
            }
        }
        Self { data, c, n, h, w }
    }

    /// The values as `N x C x H x W`.
    pub fn to_nchw(&self) -> Vec<f32> {
        let hw = self.h * self.w;
        let mut out = vec![0f32; self.data.len()];
        for ci in 0..self.c {
            for b in 0..self.n {
                let src = &self.data[(ci * self.n + b) * hw..(ci * self.n + b + 1) * hw];
                out[(b * self.c + ci) * hw..(b * self.c + ci + 1) * hw].copy_from_slice(src);
            }
        }
        out
    }

    fn hw(&self) -> usize {
        self.h * self.w
    }

    /// Images `a..b` of the batch, as their own activation.
    pub fn images(&self, a: usize, b: usize) -> Self {
        let (hw, m) = (self.hw(), b - a);
        let mut data = buffer(self.c * m * hw);
        for (ci, dst) in data.chunks_exact_mut(m * hw).enumerate() {
            dst.copy_from_slice(&self.data[(ci * self.n + a) * hw..(ci * self.n + b) * hw]);
        }
        Self {
            data,
            c: self.c,
            n: m,
            h: self.h,
            w: self.w,
        }
    }

    /// The batches `parts` (of equal channels and size) one after another.
    /// `None` when there are none or they differ in channels or size.
    pub fn concat_images(parts: &[Act]) -> Option<Self> {
        let first = parts.first()?;
        let (c, h, w) = (first.c, first.h, first.w);
        if parts.iter().any(|p| (p.c, p.h, p.w) != (c, h, w)) {
            return None;
        }
        let n: usize = parts.iter().map(|p| p.n).sum();
        let hw = h * w;
        let mut data = buffer(c * n * hw);
        for ci in 0..c {
            let mut at = ci * n * hw;
            for p in parts {
                let len = p.n * hw;
                data[at..at + len].copy_from_slice(&p.data[ci * len..(ci + 1) * len]);
                at += len;
            }
        }
        Some(Self { data, c, n, h, w })
    }

    fn like(&self, c: usize) -> Self {
        Self {
            data: buffer(c * self.n * self.hw()),
            c,
            n: self.n,
            h: self.h,
            w: self.w,
        }
    }
}

/// A convolution (1x1 or 3x3, "same" padding): weight `c_out x (c_in k k)`.
#[derive(Debug, Clone)]
pub struct Conv {
    weight: Vec<f32>,
    bias: Vec<f32>,
    c_in: usize,
    c_out: usize,
    k: usize,
    /// The Winograd weights, kept where small.
    transformed: TransformedWeights,
}

/// A convolution's Winograd weights per tile, computed on first use and
/// kept when they take at most [`KEPT_TRANSFORMED`] bytes (the small
/// networks' layers; the ImageNet-64 network's wide ones are transformed
/// per call, whose cost their products amortise, rather than adding
/// gigabytes to its weights).
#[derive(Debug, Clone, Default)]
struct TransformedWeights([std::sync::OnceLock<Vec<f32>>; 2]);

/// Largest Winograd weights kept with their convolution.
const KEPT_TRANSFORMED: usize = 8 << 20;

impl TransformedWeights {
    /// Whether `conv`'s weights for `tile` are kept.
    fn kept(&self, conv: &Conv, tile: Tile) -> bool {
        winograd::transformed_len(conv.c_in, conv.c_out, tile) * 4 <= KEPT_TRANSFORMED
    }

    fn get<'a>(&'a self, conv: &Conv, tile: Tile) -> Option<&'a [f32]> {
        if !self.kept(conv, tile) {
            return None;
        }
        let slot = &self.0[tile as usize];
        Some(slot.get_or_init(|| {
            winograd::transformed_weights(&conv.weight, conv.c_in, conv.c_out, tile)
        }))
    }
}

impl Conv {
    /// A convolution from PyTorch's layouts: `weight` is `c_out x c_in x k x
    /// k`, `bias` `c_out`; 1x1 without padding or 3x3 with padding 1.
    pub fn new(
        weight: Vec<f32>,
        bias: Vec<f32>,
        c_in: usize,
        c_out: usize,
        k: usize,
        padding: usize,
    ) -> Result<Self, KernelError> {
        if !(k == 1 && padding == 0 || k == 3 && padding == 1) {
            return Err(KernelError::Convolution { k, padding });
        }
        check_len("convolution weight", weight.len(), c_out * c_in * k * k)?;
        check_len("convolution bias", bias.len(), c_out)?;
        Ok(Self {
            weight,
            bias,
            c_in,
            c_out,
            k,
            transformed: TransformedWeights::default(),
        })
    }

    /// The convolution of `x`: a 3x3 one by Winograd's F(4 x 4, 3 x 3)
    /// (`winograd`) where that is faster, else (and a 1x1 one) as
    /// im2col + one product.
    pub fn forward(&self, x: &Act) -> Act {
        if self.k == 3 && self.c_in.min(self.c_out) >= winograd::MIN_CHANNELS && winograd::enabled()
        {
            let tile = Tile::for_image(x.h, x.w);
            let pixels = x.n * x.hw();
            if self.transformed.kept(self, tile) || pixels >= winograd::MIN_PIXELS_F4_TRANSFORMING {
                return self.forward_tile(x, tile);
            }
            if pixels >= winograd::MIN_PIXELS_TRANSFORMING {
                return self.forward_tile(x, Tile::F2);
            }
        }
        self.forward_im2col(x)
    }

    /// A 3x3 convolution of `x` by the given Winograd tile (the 1x1 one as
    /// [`Conv::forward`]).
    pub fn forward_tile(&self, x: &Act, tile: Tile) -> Act {
        if self.k != 3 {
            return self.forward_im2col(x);
        }
        match self.transformed.get(self, tile) {
            Some(u) => winograd::conv3(x, u, &self.bias, self.c_out, tile),
            None => {
                let u = winograd::transformed_weights(&self.weight, self.c_in, self.c_out, tile);
                winograd::conv3(x, &u, &self.bias, self.c_out, tile)
            }
        }
    }

    /// The convolution of `x` as im2col + GEMM (the direct sum, the
    /// reference of the Winograd path).
    pub fn forward_im2col(&self, x: &Act) -> Act {
        let rows = self.c_in * self.k * self.k;
        // At least MIN_COLUMNS columns a product: narrower ones run below
        // the GEMM's rate.
        let per_chunk = (COLUMNS_PER_CHUNK / (rows * x.w).max(1))
            .max(MIN_COLUMNS / x.w.max(1))
            .max(1);
        self.forward_chunked(x, per_chunk)
    }

    /// The convolution; a 3x3 one `per_chunk` image rows at a time (rows of
    /// all images in a row: image b's row y is row b h + y).
    pub fn forward_chunked(&self, x: &Act, per_chunk: usize) -> Act {
        let mut out = x.like(self.c_out);
        let cols = x.n * x.hw();
        // Without a bias (the transposed convolutions of the backward pass)
        // the products write the output instead of adding to it.
        let accum = if self.bias.iter().all(|&b| b == 0.0) {
            Accum::Replace
        } else {
            out.data
                .par_chunks_mut(cols)
                .zip(&self.bias)
                .for_each(|(row, &b)| row.fill(b));
            Accum::Add
        };
        let lhs =
            MatRef::from_row_major_slice(&self.weight, self.c_out, self.c_in * self.k * self.k);
        if self.k == 1 {
            let rhs = MatRef::from_row_major_slice(&x.data, self.c_in, cols);
            let dst = MatMut::from_row_major_slice_mut(&mut out.data, self.c_out, cols);
            matmul(dst, accum, lhs, rhs, 1.0f32, Par::rayon(0));
            return out;
        }
        let rows = self.c_in * self.k * self.k;
        let image_rows = x.n * x.h;
        let per_chunk = per_chunk.clamp(1, image_rows.max(1));
        let mut columns = buffer(rows * per_chunk * x.w);
        for r0 in (0..image_rows).step_by(per_chunk) {
            let r1 = (r0 + per_chunk).min(image_rows);
            let ncols = (r1 - r0) * x.w;
            let columns = &mut columns[..rows * ncols];
            im2col3(x, r0, r1, columns);
            let rhs = MatRef::from_row_major_slice(columns, rows, ncols);
            // Row-major with a row stride, as the transpose of a column-major
            // view: faer 0.24's `from_row_major_slice_with_stride_mut` swaps
            // the two strides.
            let dst = MatMut::from_column_major_slice_with_stride_mut(
                &mut out.data[r0 * x.w..],
                ncols,
                self.c_out,
                cols,
            )
            .transpose_mut();
            matmul(dst, accum, lhs, rhs, 1.0f32, Par::rayon(0));
        }
        recycle(columns);
        out
    }
}

/// The 3x3 columns of image rows `r0..r1` (image b's row y is row b h + y):
/// row `ci * 9 + dy * 3 + dx`, column `(r - r0) * w + x`, zero outside the
/// image.
///
/// Within one image a tap's row of columns is the image plane shifted by a
/// constant offset, so each (tap, image) is one long copy (rows of 8-32
/// values copied one at a time spent more in the copy's call than in
/// moving data), then the column that wrapped around an image row's edge
/// is zeroed.
fn im2col3(x: &Act, r0: usize, r1: usize, columns: &mut [f32]) {
    let (h, w, n) = (x.h, x.w, x.n);
    let hw = h * w;
    let ncols = (r1 - r0) * w;
    columns
        .par_chunks_mut(ncols)
        .enumerate()
        .for_each(|(row, dst)| {
            let (ci, dy, dx) = (row / 9, (row % 9) / 3, row % 3);
            let mut r = r0;
            while r < r1 {
                let b = r / h;
                let end = ((b + 1) * h).min(r1);
                let src = &x.data[(ci * n + b) * hw..(ci * n + b + 1) * hw];
                let out = &mut dst[(r - r0) * w..(end - r0) * w];
                im2col3_image(src, out, (r - b * h, end - b * h), (h, w), (dy, dx));
                r = end;
            }
        });
}

/// One tap's columns of image rows `y0..y1` of one image plane `src`
/// (`h x w`) into `out` ((y1 - y0) x w).
fn im2col3_image(
    src: &[f32],
    out: &mut [f32],
    (y0, y1): (usize, usize),
    (h, w): (usize, usize),
    (dy, dx): (usize, usize),
) {
    // Output row y reads source row y + dy - 1: rows [lo, hi) exist.
    let lo = y0.max(1 - dy.min(1)).min(y1);
    let hi = y1.min(h + 1 - dy).max(lo);
    out[..(lo - y0) * w].fill(0.0);
    out[(hi - y0) * w..].fill(0.0);
    if lo == hi {
        return;
    }
    let (o0, o1) = ((lo - y0) * w, (hi - y0) * w);
    // Source index of output index o: o + (y0 + dy - 1) w + dx - 1.
    let s0 = (lo + dy - 1) * w;
    match dx {
        0 => {
            out[o0 + 1..o1].copy_from_slice(&src[s0..s0 + (o1 - o0) - 1]);
            for v in out[o0..o1].iter_mut().step_by(w) {
                *v = 0.0;
            }
        }
        1 => out[o0..o1].copy_from_slice(&src[s0..s0 + (o1 - o0)]),
        _ => {
            out[o0..o1 - 1].copy_from_slice(&src[s0 + 1..s0 + (o1 - o0)]);
            for v in out[o0 + w - 1..o1].iter_mut().step_by(w) {
                *v = 0.0;
            }
        }
    }
}

/// A linear layer, weight `out x in`.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Vec<f32>,
    bias: Vec<f32>,
    d_in: usize,
    d_out: usize,
}

impl Linear {
    /// A linear layer from PyTorch's layout: `weight` is `d_out x d_in`.
    pub fn new(
        weight: Vec<f32>,
        bias: Vec<f32>,
        d_in: usize,
        d_out: usize,
    ) -> Result<Self, KernelError> {
        check_len("linear weight", weight.len(), d_out * d_in)?;
        check_len("linear bias", bias.len(), d_out)?;
        Ok(Self {
            weight,
            bias,
            d_in,
            d_out,
        })
    }

    /// Rows `x` (N x d_in) to N x d_out. Each output is its row's dot
    /// product with a weight row, summed in one fixed order, so a row's
    /// result does not depend on the other rows: a patch's features are the
    /// same bits in any batch (a general matrix product picks its kernel by
    /// the row count, and one row came out different from sixteen), which
    /// the app's feature store and its equality with the headless run rely
    /// on. Output by output, so that the weights (100 MB of embedding
    /// layers in the ImageNet-64 network) are read once, not once a row.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let d_in = self.d_in.max(1);
        let n = x.len() / d_in;
        if n == 0 {
            return Vec::new();
        }
        let mut by_output = vec![0f32; self.d_out * n];
        by_output
            .par_chunks_mut(n)
            .zip(self.weight.par_chunks(d_in))
            .zip(&self.bias)
            .for_each(|((dst, w), &b)| {
                for (d, row) in dst.iter_mut().zip(x.chunks_exact(d_in)) {
                    *d = b + dot(w, row);
                }
            });
        let mut out = vec![0f32; n * self.d_out];
        for (o, column) in by_output.chunks_exact(n).enumerate() {
            for (r, &v) in column.iter().enumerate() {
                out[r * self.d_out + o] = v;
            }
        }
        out
    }
}

/// The dot product of `a` and `b` in sixteen lanes, in an order fixed by
/// the length alone.
#[inline(always)]
fn dot_body<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let (mut ca, mut cb) = (a.chunks_exact(16), b.chunks_exact(16));
    for (x, y) in (&mut ca).zip(&mut cb) {
        for ((l, &u), &v) in lanes.iter_mut().zip(x).zip(y) {
            *l = if FMA { u.mul_add(v, *l) } else { *l + u * v };
        }
    }
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&u, &v)| u * v)
        .sum();
    lanes.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_body::<true>(a, b)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        return unsafe { dot_avx2(a, b) };
    }
    dot_body::<false>(a, b)
}

/// GroupNorm(32) weights.
#[derive(Debug, Clone)]
pub struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl Norm {
    /// GroupNorm(32) with per-channel `gamma` and `beta`.
    pub fn new(gamma: Vec<f32>, beta: Vec<f32>) -> Result<Self, KernelError> {
        let channels = gamma.len();
        if channels == 0 || !channels.is_multiple_of(GROUPS) {
            return Err(KernelError::Groups { channels });
        }
        check_len("GroupNorm bias", beta.len(), channels)?;
        Ok(Self { gamma, beta })
    }

    /// In place: GroupNorm, then with `film` = (N x 2C: scale | shift) the
    /// FiLM `* (1 + scale) + shift`, then SiLU when `silu`. One pass over
    /// the values after the statistics.
    pub fn apply(&self, x: &mut Act, film: Option<&[f32]>, silu: bool) {
        let stats = self.stats(x);
        self.apply_with(x, &stats, film, silu);
    }

    /// [`Norm::apply`] with the statistics of `x` already computed.
    fn apply_with(&self, x: &mut Act, stats: &[(f32, f32)], film: Option<&[f32]>, silu: bool) {
        let (c, n, hw) = (x.c, x.n, x.hw());
        x.data
            .par_chunks_mut(hw)
            .enumerate()
            .for_each(|(idx, plane)| {
                let (mean, a, shift) = self.plane_affine(stats, film, idx, c, n);
                affine_plane(plane, mean, a, shift, silu);
            });
    }

    /// [`Norm::apply`] into a new activation, `x` left as it is (one pass
    /// instead of a copy and a pass).
    pub fn applied(&self, x: &Act, film: Option<&[f32]>, silu: bool) -> Act {
        self.applied_with(x, &self.stats(x), film, silu)
    }

    /// [`Norm::applied`] with the statistics of `x` already computed.
    fn applied_with(&self, x: &Act, stats: &[(f32, f32)], film: Option<&[f32]>, silu: bool) -> Act {
        let (c, n, hw) = (x.c, x.n, x.hw());
        let mut out = x.like(c);
        out.data
            .par_chunks_mut(hw)
            .zip(x.data.par_chunks(hw))
            .enumerate()
            .for_each(|(idx, (dst, src))| {
                let (mean, a, shift) = self.plane_affine(stats, film, idx, c, n);
                affine_plane_into(dst, src, mean, a, shift, silu);
            });
        out
    }

    /// (mean, a, shift) of plane `idx` (channel idx / n, image idx % n):
    /// y = (x - mean) * a + shift.
    fn plane_affine(
        &self,
        stats: &[(f32, f32)],
        film: Option<&[f32]>,
        idx: usize,
        c: usize,
        n: usize,
    ) -> (f32, f32, f32) {
        let per_group = c / GROUPS;
        let (ci, b) = (idx / n, idx % n);
        let (mean, rstd) = stats[b * GROUPS + ci / per_group];
        let (mut a, mut shift) = (rstd * self.gamma[ci], self.beta[ci]);
        if let Some(f) = film {
            let scale = 1.0 + f[b * 2 * c + ci];
            a *= scale;
            shift = shift * scale + f[b * 2 * c + c + ci];
        }
        (mean, a, shift)
    }

    /// (mean, 1 / std) of every (image, group), image-major.
    fn stats(&self, x: &Act) -> Vec<(f32, f32)> {
        let (c, n, hw) = (x.c, x.n, x.hw());
        let per_group = c / GROUPS;
        let data = &x.data;
        (0..n * GROUPS)
            .into_par_iter()
            .map(|bg| {
                let (b, g) = (bg / GROUPS, bg % GROUPS);
                let planes = || {
                    (g * per_group..(g + 1) * per_group)
                        .map(|ci| &data[(ci * n + b) * hw..(ci * n + b + 1) * hw])
                };
                // Two passes, as the reference centres before squaring.
                let count = (per_group * hw) as f64;
                let mean = planes().map(|p| f64::from(lane_sum(p))).sum::<f64>() / count;
                let centre = mean as f32;
                let sq: f64 = planes().map(|p| f64::from(lane_sq_dev(p, centre))).sum();
                let d = mean - f64::from(centre);
                let var = (sq / count - d * d).max(0.0);
                (mean as f32, (1.0 / (var + EPS).sqrt()) as f32)
            })
            .collect()
    }
}

/// e^x in f32 by range reduction and Cephes' degree-6 polynomial (relative
/// error below 3e-7 over the normal range), in plain arithmetic that the
/// compiler vectorises: libm's scalar `expf` took 30 % of a forward in SiLU
/// and softmax. Below -87 it returns e^-87 (~1.6e-38), not a subnormal.
#[inline(always)]
pub fn fast_exp(x: f32) -> f32 {
    exp_with::<false>(x)
}

/// [`fast_exp`] with fused multiply-adds when `FMA` (only where the CPU
/// has them: elsewhere `mul_add` is a slow library call).
#[inline(always)]
fn exp_with<const FMA: bool>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let fma = |a: f32, b: f32, c: f32| if FMA { a.mul_add(b, c) } else { a * b + c };
    let x = x.clamp(-87.0, 88.0);
    let rounded = fma(x, LOG2E, ROUND);
    let n = rounded - ROUND;
    // rounded = ROUND + n exactly (|n| <= 127 keeps it in ROUND's binade),
    // so its bits minus ROUND's are n: no float-to-int conversion, whose
    // saturating form vectorises poorly.
    let ni = rounded.to_bits().wrapping_sub(ROUND.to_bits());
    let r = fma(n, -LN2_LO, fma(n, -LN2_HI, x));
    let mut p = 1.987_569_2e-4f32;
    p = fma(p, r, 1.398_2e-3);
    p = fma(p, r, 8.333_452e-3);
    p = fma(p, r, 4.166_579_6e-2);
    p = fma(p, r, 1.666_666_5e-1);
    p = fma(p, r, 0.5);
    let y = fma(p * r, r, r + 1.0);
    y * f32::from_bits(ni.wrapping_add(127) << 23)
}

/// x * sigmoid(x).
#[inline(always)]
fn silu_with<const FMA: bool>(x: f32) -> f32 {
    x / (1.0 + exp_with::<FMA>(-x))
}

fn silu_rows(x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| silu_with::<false>(v)).collect()
}

/// Whether this CPU runs the AVX2 + FMA copies of the element-wise loops.
#[inline(always)]
fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `v = (v - mean) * a + shift`, then SiLU when `silu`, over one plane.
#[inline(always)]
fn affine_plane_body<const FMA: bool>(
    plane: &mut [f32],
    mean: f32,
    a: f32,
    shift: f32,
    silu: bool,
) {
    // (v - mean) * a + shift = v * a + (shift - mean * a) loses digits when
    // the mean is large against the spread: the centring stays first.
    if silu {
        for v in plane.iter_mut() {
            *v = silu_with::<FMA>((*v - mean) * a + shift);
        }
    } else {
        for v in plane.iter_mut() {
            *v = (*v - mean) * a + shift;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn affine_plane_avx2(plane: &mut [f32], mean: f32, a: f32, shift: f32, silu: bool) {
    affine_plane_body::<true>(plane, mean, a, shift, silu)
}

fn affine_plane(plane: &mut [f32], mean: f32, a: f32, shift: f32, silu: bool) {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        unsafe { affine_plane_avx2(plane, mean, a, shift, silu) };
        return;
    }
    affine_plane_body::<false>(plane, mean, a, shift, silu)
}

/// `dst = (src - mean) * a + shift`, then SiLU when `silu`.
#[inline(always)]
fn affine_plane_into_body<const FMA: bool>(
    dst: &mut [f32],
    src: &[f32],
    mean: f32,
    a: f32,
    shift: f32,
    silu: bool,
) {
    if silu {
        for (d, &v) in dst.iter_mut().zip(src) {
            *d = silu_with::<FMA>((v - mean) * a + shift);
        }
    } else {
        for (d, &v) in dst.iter_mut().zip(src) {
            *d = (v - mean) * a + shift;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn affine_plane_into_avx2(dst: &mut [f32], src: &[f32], mean: f32, a: f32, shift: f32, silu: bool) {
    affine_plane_into_body::<true>(dst, src, mean, a, shift, silu)
}

fn affine_plane_into(dst: &mut [f32], src: &[f32], mean: f32, a: f32, shift: f32, silu: bool) {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        unsafe { affine_plane_into_avx2(dst, src, mean, a, shift, silu) };
        return;
    }
    affine_plane_into_body::<false>(dst, src, mean, a, shift, silu)
}

/// The softmax of one row of scores, in place.
#[inline(always)]
fn softmax_row_body<const FMA: bool>(row: &mut [f32]) {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l = l.max(v);
        }
    }
    let max = chunks
        .remainder()
        .iter()
        .chain(&lanes)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    for v in row.iter_mut() {
        *v = exp_with::<FMA>(*v - max);
    }
    let inv = 1.0 / lane_sum(row);
    for v in row.iter_mut() {
        *v *= inv;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn softmax_row_avx2(row: &mut [f32]) {
    softmax_row_body::<true>(row)
}

fn softmax_row(row: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        unsafe { softmax_row_avx2(row) };
        return;
    }
    softmax_row_body::<false>(row)
}

/// A sum in eight lanes (vectorised; the order differs from a running sum
/// by rounding only).
#[inline(always)]
fn lane_sum(x: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += v;
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// Sum of (v - centre)^2 in eight lanes.
#[inline(always)]
fn lane_sq_dev(x: &[f32], centre: f32) -> f32 {
    let mut lanes = [0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            let d = v - centre;
            *l += d * d;
        }
    }
    lanes.iter().sum::<f32>()
        + chunks
            .remainder()
            .iter()
            .map(|&v| (v - centre) * (v - centre))
            .sum::<f32>()
}

/// `a += b`, element by element (residual and skip connections, and their
/// gradients).
fn add_into(a: &mut Act, b: &Act) {
    a.data
        .par_iter_mut()
        .zip(&b.data)
        .for_each(|(x, y)| *x += y);
}

/// Resampling inside a ResBlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    None,
    /// Nearest x2.
    Up,
    /// 2x2 average pool.
    Down,
}

/// Applies `how` to every plane of `x`.
pub fn resample(x: Act, how: Resample) -> Act {
    let (h, w) = (x.h, x.w);
    match how {
        Resample::Up => {
            let mut out = Act {
                data: buffer(x.data.len() * 4),
                c: x.c,
                n: x.n,
                h: 2 * h,
                w: 2 * w,
            };
            out.data
                .par_chunks_mut(4 * h * w)
                .zip(x.data.par_chunks(h * w))
                .for_each(|(dst, src)| {
                    for y in 0..2 * h {
                        for xx in 0..2 * w {
                            dst[y * 2 * w + xx] = src[(y / 2) * w + xx / 2];
                        }
                    }
                });
            out
        }
        Resample::Down => {
            let (oh, ow) = (h / 2, w / 2);
            let mut out = Act {
                data: buffer(x.c * x.n * oh * ow),
                c: x.c,
                n: x.n,
                h: oh,
                w: ow,
            };
            out.data
                .par_chunks_mut(oh * ow)
                .zip(x.data.par_chunks(h * w))
                .for_each(|(dst, src)| {
                    for y in 0..oh {
                        for xx in 0..ow {
                            let i = 2 * y * w + 2 * xx;
                            dst[y * ow + xx] =
                                (src[i] + src[i + 1] + src[i + w] + src[i + w + 1]) * 0.25;
                        }
                    }
                });
            out
        }
        Resample::None => x,
    }
}

#[derive(Debug, Clone)]
pub struct ResBlock {
    pub in_norm: Norm,
    pub in_conv: Conv,
    pub emb: Linear,
    pub out_norm: Norm,
    pub out_conv: Conv,
    pub skip: Option<Conv>,
    pub resample: Resample,
}

impl ResBlock {
    pub fn forward(&self, x: Act, emb_silu: &[f32]) -> Act {
        let h = self.in_norm.applied(&x, None, true);
        let h = resample(h, self.resample);
        let x = resample(x, self.resample);
        let mut h = self.in_conv.forward(&h);
        let film = self.emb.forward(emb_silu);
        self.out_norm.apply(&mut h, Some(&film), true);
        let mut h = self.out_conv.forward(&h);
        let skip = match &self.skip {
            Some(conv) => conv.forward(&x),
            None => x,
        };
        add_into(&mut h, &skip);
        h
    }
}

#[derive(Debug, Clone)]
pub struct Attention {
    pub norm: Norm,
    pub qkv: Conv,
    pub proj: Conv,
    pub heads: usize,
}

impl Attention {
    pub fn forward(&self, x: Act) -> Act {
        let normed = self.norm.applied(&x, None, false);
        let qkv = self.qkv.forward(&normed);
        drop(normed);
        let a = self.core(&qkv);
        drop(qkv);
        let mut out = self.proj.forward(&a);
        add_into(&mut out, &x);
        out
    }

    /// softmax(q^T k / sqrt(ch)) applied to v, head by head, for `qkv` (3C
    /// channels: q, k, v, each split into heads): C channels.
    fn core(&self, qkv: &Act) -> Act {
        self.core_keeping(qkv, false).0
    }

    /// [`Attention::core`], and with `keep` every (image, head)'s softmax
    /// (index b * heads + hd).
    fn core_keeping(&self, qkv: &Act, keep: bool) -> (Act, Option<Vec<Vec<f32>>>) {
        let (c, n, t) = (qkv.c / 3, qkv.n, qkv.hw());
        let ch = c / self.heads;
        let heads = self.heads;
        let parts: Vec<(Vec<f32>, Vec<f32>)> = (0..n * heads)
            .into_par_iter()
            .map(|bh| {
                let (b, hd) = (bh / heads, bh % heads);
                let [_, _, v] = head_views(qkv, c, ch, b, hd);
                let scores = self.probabilities(qkv, b, hd);
                // a[c, t] = sum_s v[c, s] p[t, s]
                let mut a = vec![0f32; ch * t];
                let p = MatRef::from_row_major_slice(&scores, t, t);
                let dst = MatMut::from_row_major_slice_mut(&mut a, ch, t);
                matmul(dst, Accum::Replace, v, p.transpose(), 1.0f32, Par::Seq);
                (a, if keep { scores } else { Vec::new() })
            })
            .collect();
        let (parts, probs): (Vec<Vec<f32>>, Vec<Vec<f32>>) = parts.into_iter().unzip();
        let mut a = qkv.like(c);
        scatter_heads(&mut a, &parts, heads, ch);
        (a, keep.then_some(probs))
    }

    /// The softmax of image b's head hd, T x T (row t: query position t).
    fn probabilities(&self, qkv: &Act, b: usize, hd: usize) -> Vec<f32> {
        let (c, t) = (qkv.c / 3, qkv.hw());
        let ch = c / self.heads;
        let [q, k, _] = head_views(qkv, c, ch, b, hd);
        // q and k are each scaled by ch^-1/4 in the reference: ch^-1/2 on
        // the scores.
        let scale = (1.0 / (ch as f64).sqrt()) as f32;
        // scores[t, s] = scale * sum_c q[c, t] k[c, s]
        let mut scores = vec![0f32; t * t];
        let dst = MatMut::from_row_major_slice_mut(&mut scores, t, t);
        matmul(dst, Accum::Replace, q.transpose(), k, scale, Par::Seq);
        for row in scores.chunks_exact_mut(t) {
            softmax_row(row);
        }
        scores
    }
}

/// Views `ch x T` of q, k and v of image b's head hd in `qkv` (3C channels).
fn head_views(qkv: &Act, c: usize, ch: usize, b: usize, hd: usize) -> [MatRef<'_, f32>; 3] {
    let (t, nt) = (qkv.hw(), qkv.n * qkv.hw());
    let view = |third: usize| {
        let start = (third * c + hd * ch) * nt + b * t;
        MatRef::from_row_major_slice_with_stride(&qkv.data[start..], ch, t, nt)
    };
    [view(0), view(1), view(2)]
}

/// Writes per-(image, head) blocks `ch x T` (index b * heads + hd) into
/// the channels hd * ch.. of `dst`.
fn scatter_heads(dst: &mut Act, parts: &[Vec<f32>], heads: usize, ch: usize) {
    let (t, nt) = (dst.hw(), dst.n * dst.hw());
    for (bh, part) in parts.iter().enumerate() {
        let (b, hd) = (bh / heads, bh % heads);
        for ci in 0..ch {
            let row = (hd * ch + ci) * nt + b * t;
            dst.data[row..row + t].copy_from_slice(&part[ci * t..(ci + 1) * t]);
        }
    }
}

#[derive(Debug, Clone)]
pub struct Block {
    pub conv: Option<Conv>,
    pub res: Option<ResBlock>,
    pub attn: Option<Attention>,
    pub res2: Option<ResBlock>,
}

impl Block {
    pub fn forward(&self, mut h: Act, emb_silu: &[f32]) -> Act {
        if let Some(c) = &self.conv {
            h = c.forward(&h);
        }
        if let Some(r) = &self.res {
            h = r.forward(h, emb_silu);
        }
        if let Some(a) = &self.attn {
            h = a.forward(h);
        }
        if let Some(r) = &self.res2 {
            h = r.forward(h, emb_silu);
        }
        h
    }
}

/// guided-diffusion's `timestep_embedding`: per timestep [cos(t f_k),
/// sin(t f_k)] with f_k = exp(-ln(10000) k / half), in f32 in the
/// reference's order; `timesteps.len() x dim` values.
pub fn timestep_embedding(timesteps: &[i64], dim: usize) -> Vec<f32> {
    let half = dim / 2;
    let log_max = -(10000f64.ln()) as f32;
    let freqs: Vec<f32> = (0..half)
        .map(|k| (log_max * k as f32 / half as f32).exp())
        .collect();
    let mut out = Vec::with_capacity(timesteps.len() * dim);
    for &t in timesteps {
        let t = t as f32;
        out.extend(freqs.iter().map(|f| (t * f).cos()));
        out.extend(freqs.iter().map(|f| (t * f).sin()));
    }
    out
}

/// Bytes of a group's first-level activation when a batch is split into
/// groups that run side by side ([`UNet::split_group`]): a core's share
/// of cache. The tiny network's batch of 64 on two cores: whole 400 ms;
/// groups of 1 image: 378, 2: 318, 4 (512 KiB): 307, 8: 330, 16: 350.
const SPLIT_BYTES: usize = 512 << 10;

/// The U-Net's weights on the host, for inference.
#[derive(Debug, Clone)]
pub struct UNet {
    pub time_embed_0: Linear,
    pub time_embed_2: Linear,
    /// Rows x time-embedding width.
    pub label_emb: Option<Vec<f32>>,
    pub input_blocks: Vec<Block>,
    pub middle_block: Block,
    pub output_blocks: Vec<Block>,
    pub out_norm: Norm,
    pub out_conv: Conv,
    pub model_channels: usize,
}

impl UNet {
    /// emb = time_embed(timestep_embedding(t)) + label_emb[y], N x D.
    pub fn embedding(&self, t: &[i64], y: &[i64]) -> Result<Vec<f32>, KernelError> {
        let temb = timestep_embedding(t, self.model_channels);
        let mut emb = self
            .time_embed_2
            .forward(&silu_rows(&self.time_embed_0.forward(&temb)));
        if let Some(table) = &self.label_emb {
            let d = self.time_embed_2.d_out;
            let rows = table.len() / d;
            for (row, &yi) in emb.chunks_exact_mut(d).zip(y) {
                if yi < 0 || yi as usize >= rows {
                    return Err(KernelError::LabelRow { row: yi, rows });
                }
                let r = &table[yi as usize * d..(yi as usize + 1) * d];
                for (e, l) in row.iter_mut().zip(r) {
                    *e += l;
                }
            }
        }
        Ok(emb)
    }

    /// Images per group when a batch of `n` images of `h x w` is split
    /// into groups that run side by side, one per thread: as many as keep
    /// a group's first-level activation within a core's share of cache
    /// (512 KiB; 4 images of 32 x 32 for the tiny network), None where
    /// that is under 2 images (the ImageNet-64 network: its layers are
    /// large enough to split well across the cores), the batch is under
    /// two groups, or there is one thread.
    pub fn split_group(&self, n: usize, h: usize, w: usize) -> Option<usize> {
        let per_image = (self.model_channels * h * w * 4).max(1);
        let group = SPLIT_BYTES / per_image;
        (group >= 2 && n >= 2 * group && rayon::current_num_threads() >= 2).then_some(group)
    }

    /// The image ranges `a..b` of a batch of `n` split into groups of
    /// `group` (the last one shorter), in parallel.
    fn image_groups(n: usize, group: usize) -> impl IndexedParallelIterator<Item = (usize, usize)> {
        (0..n.div_ceil(group))
            .into_par_iter()
            .map(move |g| (g * group, ((g + 1) * group).min(n)))
    }

    /// [`UNet::forward_blocks`] without a visitor, the batch split as
    /// [`UNet::split_group`] says, the groups' forwards side by side: a
    /// small group's activations stay in its core's cache, where a whole
    /// batch's layer would be split across the cores one layer at a time.
    /// An image's result does not depend on its batch, so the values are
    /// the same.
    pub fn forward_split(&self, x: Act, emb: &[f32], stop_after: Option<usize>) -> Act {
        let n = x.n;
        let d = emb.len() / n.max(1);
        let Some(group) = self.split_group(n, x.h, x.w) else {
            return self.forward_blocks(x, emb, stop_after, &mut |_, _| {});
        };
        let _pool = PoolScope::enter();
        let parts: Vec<Act> = Self::image_groups(n, group)
            .map(|(a, b)| {
                let xs = x.images(a, b);
                self.forward_blocks(xs, &emb[a * d..b * d], stop_after, &mut |_, _| {})
            })
            .collect();
        drop(x);
        // Every part comes from the same network on the same sizes.
        Act::concat_images(&parts).unwrap_or_else(|| unreachable!("parts of one network differ"))
    }

    /// Runs the network on `x` (C x N x H x W) with `emb` (N x D), in eval
    /// mode. `visit` sees every block's output; with `stop_after = Some(L)`
    /// the output of `output_blocks[L]` is returned and nothing past it is
    /// computed, otherwise the final output.
    pub fn forward_blocks(
        &self,
        x: Act,
        emb: &[f32],
        stop_after: Option<usize>,
        visit: &mut dyn FnMut(BlockId, &Act),
    ) -> Act {
        let _pool = PoolScope::enter();
        let emb_silu = silu_rows(emb);
        let mut hs = Vec::with_capacity(self.input_blocks.len());
        let mut h = x;
        for (i, b) in self.input_blocks.iter().enumerate() {
            h = b.forward(h, &emb_silu);
            visit(BlockId::Input(i), &h);
            hs.push(h.clone());
        }
        h = self.middle_block.forward(h, &emb_silu);
        visit(BlockId::Middle, &h);
        for (i, b) in self.output_blocks.iter().enumerate() {
            let skip = hs.pop().unwrap_or_else(|| h.clone());
            // Channels outermost: the concatenation is one buffer after the other.
            let mut data = buffer(h.data.len() + skip.data.len());
            data[..h.data.len()].copy_from_slice(&h.data);
            data[h.data.len()..].copy_from_slice(&skip.data);
            h = Act {
                data,
                c: h.c + skip.c,
                n: h.n,
                h: h.h,
                w: h.w,
            };
            h = b.forward(h, &emb_silu);
            visit(BlockId::Output(i), &h);
            if stop_after == Some(i) {
                return h;
            }
        }
        self.out_norm.apply(&mut h, None, true);
        self.out_conv.forward(&h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_as_close_as_libm() {
        let (mut worst, mut worst_x) = (0f64, 0f32);
        for i in -86_900..88_000 {
            let x = i as f32 * 1e-3;
            let want = f64::from(x).exp();
            let rel = ((f64::from(fast_exp(x)) - want) / want).abs();
            if rel > worst {
                worst = rel;
                worst_x = x;
            }
        }
        assert!(worst < 5e-7, "relative error {worst} at {worst_x}");
        assert_eq!(fast_exp(0.0), 1.0);
        assert!(fast_exp(-200.0) < 1e-37 && fast_exp(-200.0) >= 0.0);
    }

    #[test]
    fn columns_equal_their_definition_in_every_chunking() {
        for (n, c, h, w) in [(3, 2, 6, 5), (2, 1, 1, 4), (1, 2, 2, 1), (2, 3, 4, 4)] {
            let x = Act {
                data: (0..n * c * h * w).map(|i| i as f32 + 1.0).collect(),
                c,
                n,
                h,
                w,
            };
            for per_chunk in 1..=n * h {
                for r0 in (0..n * h).step_by(per_chunk) {
                    let r1 = (r0 + per_chunk).min(n * h);
                    let ncols = (r1 - r0) * w;
                    let mut got = vec![f32::NAN; c * 9 * ncols];
                    im2col3(&x, r0, r1, &mut got);
                    for row in 0..c * 9 {
                        let (ci, dy, dx) = (row / 9, (row % 9) / 3, row % 3);
                        for r in r0..r1 {
                            let (b, y) = (r / h, r % h);
                            for xx in 0..w {
                                let (sy, sx) =
                                    (y as isize + dy as isize - 1, xx as isize + dx as isize - 1);
                                let want =
                                    if sy < 0 || sx < 0 || sy >= h as isize || sx >= w as isize {
                                        0.0
                                    } else {
                                        x.data[((ci * n + b) * h + sy as usize) * w + sx as usize]
                                    };
                                let v = got[row * ncols + (r - r0) * w + xx];
                                assert_eq!(
                                    v, want,
                                    "{n}x{c}x{h}x{w} rows {r0}..{r1} tap {row} at ({r}, {xx})"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// A row's output is the same bits alone or among others, and its
    /// definition within rounding.
    #[test]
    fn a_linear_rows_output_does_not_depend_on_the_other_rows() {
        let (d_in, d_out) = (70, 33);
        let value = |i: usize| ((i * 7919 % 1013) as f32 / 1013.0) - 0.5;
        let lin = Linear::new(
            (0..d_in * d_out).map(value).collect(),
            (0..d_out).map(|i| value(i + 5)).collect(),
            d_in,
            d_out,
        )
        .unwrap();
        let rows: Vec<f32> = (0..16 * d_in).map(|i| value(i + 11)).collect();
        let all = lin.forward(&rows);
        for r in 0..16 {
            let one = lin.forward(&rows[r * d_in..(r + 1) * d_in]);
            assert_eq!(one, all[r * d_out..(r + 1) * d_out], "row {r}");
            for (o, &got) in one.iter().enumerate() {
                let want: f64 = f64::from(lin.bias[o])
                    + (0..d_in)
                        .map(|i| {
                            f64::from(lin.weight[o * d_in + i]) * f64::from(rows[r * d_in + i])
                        })
                        .sum::<f64>();
                assert!((f64::from(got) - want).abs() < 1e-5, "row {r} output {o}");
            }
        }
    }

    #[test]
    fn a_batch_split_into_images_and_joined_again_is_the_batch() {
        let x: Vec<f32> = (0..5 * 3 * 2 * 2).map(|i| i as f32).collect();
        let act = Act::from_nchw(&x, 5, 3, 2, 2);
        let parts = [act.images(0, 2), act.images(2, 3), act.images(3, 5)];
        assert_eq!(parts[1].to_nchw(), x[2 * 12..3 * 12]);
        assert_eq!(parts[2].n, 2);
        let joined = Act::concat_images(&parts).unwrap();
        assert_eq!(joined, act);
        let other = Act::from_nchw(&x[..2 * 12], 2, 3, 2, 2);
        let wider = Act::from_nchw(&x[..2 * 12], 2, 6, 1, 2);
        assert!(Act::concat_images(&[other, wider]).is_none());
        assert!(Act::concat_images(&[]).is_none());
    }

    #[test]
    fn layouts_round_trip_and_resampling_matches_its_definition() {
        let x: Vec<f32> = (0..2 * 3 * 4 * 4).map(|i| i as f32).collect();
        let act = Act::from_nchw(&x, 2, 3, 4, 4);
        assert_eq!(act.to_nchw(), x);
        // Channel 1 of image 0 starts after channel 0 of both images.
        assert_eq!(act.data[2 * 16], x[16]);
        let down = resample(act.clone(), Resample::Down);
        assert_eq!((down.h, down.w), (2, 2));
        assert_eq!(down.to_nchw()[0], (0.0 + 1.0 + 4.0 + 5.0) / 4.0);
        let up = resample(down, Resample::Up);
        assert_eq!((up.h, up.w), (4, 4));
        let v = up.to_nchw();
        assert_eq!(v[0], v[1]);
        assert_eq!(v[0], v[4]);
    }
}
