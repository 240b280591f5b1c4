//! 3x3 convolutions by Winograd's minimal filtering F(m x m, 3 x 3) (Lavin
//! and Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016).
//! The U-Net's time on the CPU is its 3x3 convolutions' matrix products:
//! im2col + GEMM does 9 multiply-adds per output, input channel and output
//! channel; F(4 x 4, 3 x 3) does 36 per 16 outputs (2.25), F(2 x 2, 3 x 3)
//! 16 per 4 (4), the rest being transforms whose cost grows with the
//! channels, not with their square.
//!
//! Per chunk of tiles (an `m x m` block of outputs each, numbered across
//! the images' tile rows): the input tiles (`a x a`, a = m + 2, zero outside
//! the image) are transformed, `V = B^T d B`; the weights, `U = G g G^T`;
//! then for each of the a^2 points one product `M_k = U_k V_k` (c_out x
//! c_in times c_in x tiles) and the output tiles `Y = A^T M A` plus the
//! bias. The transforms run on eight tiles at once, one per SIMD lane.
//!
//! A tile's outputs depend on its own input values and on the product's
//! column alone, so a patch's result does not depend on its batch, as with
//! im2col. The rounding differs from the direct sum: F(4) stays within a
//! few 1e-6 relative of it on the U-Net's layers (tested against im2col).

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::{Act, avx2_fma};

/// Tiles transformed together, one per lane.
const LANES: usize = 8;
type Lanes = [f32; LANES];

/// Largest transformed-input (or product) buffer of one chunk, in f32
/// values (512 KiB, a core's share of cache: 1 MiB and 4 MiB were slower).
const VALUES_PER_CHUNK: usize = 1 << 17;
/// Fewest tiles a chunk: narrower products run below the GEMM's rate.
const MIN_TILES: usize = 64;

/// The three matrices of F(M x M, 3 x 3), A = M + 2 points.
pub(crate) struct Minimal<const M: usize, const A: usize> {
    bt: [[f32; A]; A],
    g: [[f32; 3]; A],
    at: [[f32; A]; M],
}

/// F(2 x 2, 3 x 3): points 0, 1, -1, infinity.
pub(crate) const F2: Minimal<2, 4> = Minimal {
    bt: [
        [1.0, 0.0, -1.0, 0.0],
        [0.0, 1.0, 1.0, 0.0],
        [0.0, -1.0, 1.0, 0.0],
        [0.0, 1.0, 0.0, -1.0],
    ],
    g: [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ],
    at: [[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]],
};

/// F(4 x 4, 3 x 3): points 0, 1, -1, 2, -2, infinity.
pub(crate) const F4: Minimal<4, 6> = Minimal {
    bt: [
        [4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
        [0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
        [0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
        [0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
        [0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
        [0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
    ],
    g: [
        [1.0 / 4.0, 0.0, 0.0],
        [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
        [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
        [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
        [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
        [0.0, 0.0, 1.0],
    ],
    at: [
        [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
        [0.0, 1.0, -1.0, 2.0, -2.0, 0.0],
        [0.0, 1.0, 1.0, 4.0, 4.0, 0.0],
        [0.0, 1.0, -1.0, 8.0, -8.0, 1.0],
    ],
};

/// Which F(m x m, 3 x 3) a convolution runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tile {
    F2,
    F4,
}

impl Tile {
    /// F(4) unless the image is smaller than its tile.
    pub fn for_image(h: usize, w: usize) -> Self {
        if h >= 4 && w >= 4 { Tile::F4 } else { Tile::F2 }
    }
}

/// Fewest channels in and out for which the transforms pay (two cores,
/// 64 images of 32 x 32: 16 channels in and out F(4) 5.2 ms, im2col 10.2;
/// 3 in, 32 out (the first layer) F(4) 5.0, im2col 3.9).
pub(crate) const MIN_CHANNELS: usize = 16;

/// Where a layer's transformed weights are not kept (the ImageNet-64
/// network's wide layers) they are transformed in each call, F(2)'s (16
/// per kernel) at less than half F(4)'s cost (36): im2col below
/// [`MIN_PIXELS_TRANSFORMING`] pixels (images x height x width) a call,
/// F(2) from there, F(4) from [`MIN_PIXELS_F4_TRANSFORMING`]. Two cores
/// (AMD EPYC, AVX-512), 768 -> 768 channels, ms for im2col / F(2) / F(4):
/// 4 x 8 x 8 25.4 / 23.2 / 57.3; 8 x 8 x 8 34.1 / 33.6 / 51.8; 16 x 8 x 8
/// 62.5 / 47.5 / 61.4; 4 x 16 x 16 55.2 / 43.2 / 54.0; 8 x 16 x 16
/// 121.7 / 69.6 / 71.8; 32 x 8 x 8 139.7 / 77.4 / 72.3; 384 -> 384 at
/// 4 x 32 x 32 73.6 / 30.9 / 25.8.
pub(crate) const MIN_PIXELS_TRANSFORMING: usize = 512;
pub(crate) const MIN_PIXELS_F4_TRANSFORMING: usize = 2048;

/// Whether 3x3 convolutions may run by Winograd's algorithm: yes unless the
/// environment sets `UNIDIFF_WINOGRAD=0` (im2col everywhere: the before /
/// after comparison of the benchmarks, and a way round should a layer ever
/// need the direct sum's rounding).
pub fn enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("UNIDIFF_WINOGRAD").map_or(true, |v| v.trim() != "0"))
}

/// `a * b + c`, fused where the CPU has FMA.
#[inline(always)]
fn fma<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// A 3x3 "same" convolution of `x` by F(m x m, 3 x 3), with the weights
/// as [`transformed_weights`] gives them for `tile`.
pub(crate) fn conv3(x: &Act, u: &[f32], bias: &[f32], c_out: usize, tile: Tile) -> Act {
    match tile {
        Tile::F2 => conv3_with::<2, 4>(&F2, x, u, bias, c_out),
        Tile::F4 => conv3_with::<4, 6>(&F4, x, u, bias, c_out),
    }
}

/// `U = G g G^T` of every kernel of `weight` (c_out x c_in x 3 x 3,
/// PyTorch's layout), as [c_out][point][c_in].
pub(crate) fn transformed_weights(
    weight: &[f32],
    c_in: usize,
    c_out: usize,
    tile: Tile,
) -> Vec<f32> {
    match tile {
        Tile::F2 => weights_transformed::<2, 4>(&F2, weight, c_in, c_out),
        Tile::F4 => weights_transformed::<4, 6>(&F4, weight, c_in, c_out),
    }
}

/// The transformed weights' length for `tile`.
pub(crate) fn transformed_len(c_in: usize, c_out: usize, tile: Tile) -> usize {
    let a = match tile {
        Tile::F2 => 4,
        Tile::F4 => 6,
    };
    a * a * c_in * c_out
}

/// Where tile `t` of a chunk lies: (image, first output row, first output
/// column).
#[derive(Clone, Copy)]
struct TileGrid {
    n: usize,
    h: usize,
    w: usize,
    /// Tiles per image row and column.
    th: usize,
    tw: usize,
    m: usize,
}

impl TileGrid {
    fn new(x: &Act, m: usize) -> Self {
        Self {
            n: x.n,
            h: x.h,
            w: x.w,
            th: x.h.div_ceil(m),
            tw: x.w.div_ceil(m),
            m,
        }
    }

    fn tiles(&self) -> usize {
        self.n * self.th * self.tw
    }

    fn place(&self, t: usize) -> (usize, usize, usize) {
        let per_image = self.th * self.tw;
        let (b, r) = (t / per_image, t % per_image);
        (b, (r / self.tw) * self.m, (r % self.tw) * self.m)
    }
}

fn conv3_with<const M: usize, const A: usize>(
    f: &Minimal<M, A>,
    x: &Act,
    u: &[f32],
    bias: &[f32],
    c_out: usize,
) -> Act {
    let c_in = x.c;
    let grid = TileGrid::new(x, M);
    let tiles = grid.tiles();
    let points = A * A;
    // Chunks small enough for a core's cache, and at least one per thread.
    let per_chunk = (VALUES_PER_CHUNK / (points * c_in.max(c_out)).max(1))
        .max(MIN_TILES)
        .min(tiles.div_ceil(rayon::current_num_threads().max(1)))
        .next_multiple_of(LANES)
        .max(LANES);
    let mut out = x.like(c_out);
    let shared = SharedOut {
        ptr: out.data.as_mut_ptr(),
        len: out.data.len(),
    };
    let plane = x.n * x.hw();
    (0..tiles.div_ceil(per_chunk))
        .into_par_iter()
        .for_each(|chunk| {
            let t0 = chunk * per_chunk;
            let tc = (t0 + per_chunk).min(tiles) - t0;
            SCRATCH.with(|scratch| {
                let (v, prod, blocks) = &mut *scratch.borrow_mut();
                v.resize(v.len().max(points * c_in * tc), 0.0);
                prod.resize(prod.len().max(points * c_out * tc), 0.0);
                // V: [c_in][point][tile].
                let v = &mut v[..points * c_in * tc];
                // The chunk's bordered rows are laid out (and zeroed) anew.
                blocks.clear();
                for (dst, src) in v
                    .chunks_exact_mut(points * tc)
                    .zip(x.data.chunks_exact(plane))
                {
                    input_tiles::<M, A>(f, &grid, src, t0, tc, dst, blocks);
                }
                // M_k = U_k V_k: [point][c_out][tile].
                let prod = &mut prod[..points * c_out * tc];
                for (k, dst) in prod.chunks_exact_mut(c_out * tc).enumerate() {
                    // U_k: rows c_out, `points * c_in` apart.
                    let lhs = MatRef::from_column_major_slice_with_stride(
                        &u[k * c_in..][..(c_out - 1) * points * c_in + c_in],
                        c_in,
                        c_out,
                        points * c_in,
                    )
                    .transpose();
                    let rhs = MatRef::from_column_major_slice_with_stride(
                        &v[k * tc..][..(c_in - 1) * points * tc + tc],
                        tc,
                        c_in,
                        points * tc,
                    )
                    .transpose();
                    let dst = MatMut::from_column_major_slice_mut(dst, tc, c_out).transpose_mut();
                    matmul(dst, Accum::Replace, lhs, rhs, 1.0f32, Par::Seq);
                }
                for (co, &b) in bias.iter().enumerate() {
                    output_tiles::<M, A>(f, &grid, prod, co, c_out, t0, tc, b, shared);
                }
            });
        });
    out
}

thread_local! {
    /// Each thread's transformed inputs, products and bordered input rows
    /// ([`input_tiles`]) of its current chunk (kept between calls: fresh
    /// pages cost more than the transforms).
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

/// The output activation, written by the chunks side by side: each writes
/// the pixels of its own tiles, which no other chunk's tiles cover.
#[derive(Clone, Copy)]
struct SharedOut {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: the pointer is to the output buffer, which outlives the parallel
// loop that writes it; writers touch disjoint indices (tiles do not overlap)
// and nothing reads it until the loop has ended.
unsafe impl Send for SharedOut {}
// SAFETY: as for Send: only disjoint writes through shared references.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// Writes `value` at `index` (bounds-checked).
    ///
    /// # Safety
    /// No other thread writes or reads `index` during the call.
    #[inline(always)]
    unsafe fn write(self, index: usize, value: f32) {
        assert!(index < self.len, "output index {index} of {}", self.len);
        // SAFETY: in bounds (checked above); exclusive by the caller's
        // contract.
        unsafe { *self.ptr.add(index) = value };
    }

    /// Calls `store` with the address of values `index..index + 4`
    /// (bounds-checked), for one four-value store.
    ///
    /// # Safety
    /// No other thread writes or reads those values during the call, and
    /// `store` writes at most four values there.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn write4(self, index: usize, store: impl FnOnce(*mut f32)) {
        assert!(
            index + 4 <= self.len,
            "output values {index}.. of {}",
            self.len
        );
        // SAFETY: in bounds (checked above).
        store(unsafe { self.ptr.add(index) });
    }
}

fn weights_transformed<const M: usize, const A: usize>(
    f: &Minimal<M, A>,
    weight: &[f32],
    c_in: usize,
    c_out: usize,
) -> Vec<f32> {
    let points = A * A;
    let mut u = vec![0f32; points * c_out * c_in];
    u.par_chunks_mut(points * c_in)
        .zip(weight.par_chunks(c_in * 9))
        .for_each(|(dst, kernels)| {
            let mut d = [0f32; 36];
            for (ci, g) in kernels.chunks_exact(9).enumerate() {
                kernel_transform(&f.g, g, &mut d[..points]);
                for (k, &v) in d[..points].iter().enumerate() {
                    dst[k * c_in + ci] = v;
                }
            }
        });
    u
}

/// `G g G^T` of one 3x3 kernel `g` into `d` (A x A). Plain products and
/// sums, the same on every CPU: the weights are transformed once a call.
fn kernel_transform<const A: usize>(gm: &[[f32; 3]; A], g: &[f32], d: &mut [f32]) {
    // G g: A x 3, then (G g) G^T: A x A.
    let mut gg = [[0f32; 3]; A];
    for (row, grow) in gg.iter_mut().zip(gm) {
        for (q, v) in row.iter_mut().enumerate() {
            *v = grow[0] * g[q] + grow[1] * g[3 + q] + grow[2] * g[6 + q];
        }
    }
    for (i, row) in gg.iter().enumerate() {
        for (j, grow) in gm.iter().enumerate() {
            d[i * A + j] = row[0] * grow[0] + row[1] * grow[1] + row[2] * grow[2];
        }
    }
}

/// `dst = src` (of equal lengths): a whole group of lanes as one fixed-size
/// move (`copy_from_slice` of eight values was a call into memmove).
#[inline(always)]
fn copy_lanes(dst: &mut [f32], src: &[f32]) {
    match (<&mut Lanes>::try_from(&mut *dst), <&Lanes>::try_from(src)) {
        (Ok(d), Ok(s)) => *d = *s,
        _ => {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = s;
            }
        }
    }
}

/// `a * x + b` on each lane.
#[inline(always)]
fn axpb<const FMA: bool>(a: f32, x: Lanes, b: Lanes) -> Lanes {
    let mut out = [0f32; LANES];
    for ((o, &x), &b) in out.iter_mut().zip(&x).zip(&b) {
        *o = fma::<FMA>(a, x, b);
    }
    out
}

/// `x + y` (and `x - y` by `sub`) on each lane.
#[inline(always)]
fn add(x: Lanes, y: Lanes) -> Lanes {
    let mut out = x;
    for (o, &y) in out.iter_mut().zip(&y) {
        *o += y;
    }
    out
}

#[inline(always)]
fn sub(x: Lanes, y: Lanes) -> Lanes {
    let mut out = x;
    for (o, &y) in out.iter_mut().zip(&y) {
        *o -= y;
    }
    out
}

/// F(4)'s `B^T d` of six values (rows of [`F4`]'s `bt`) with shared terms:
/// 12 operations instead of 22.
#[inline(always)]
fn bt4<const FMA: bool>(d: [Lanes; 6]) -> [Lanes; 6] {
    let a = axpb::<FMA>(-4.0, d[2], d[4]);
    let b = axpb::<FMA>(-4.0, d[1], d[3]);
    let c = sub(d[4], d[2]);
    let e = sub(d[3], d[1]);
    let e2 = add(e, e);
    [
        axpb::<FMA>(4.0, d[0], axpb::<FMA>(-5.0, d[2], d[4])),
        add(a, b),
        sub(a, b),
        add(c, e2),
        sub(c, e2),
        axpb::<FMA>(4.0, d[1], axpb::<FMA>(-5.0, d[3], d[5])),
    ]
}

/// F(4)'s `A^T m` of six values (rows of [`F4`]'s `at`) with shared terms.
#[inline(always)]
fn at4<const FMA: bool>(m: [Lanes; 6]) -> [Lanes; 4] {
    let p = add(m[1], m[2]);
    let q = sub(m[1], m[2]);
    let r = add(m[3], m[4]);
    let s = sub(m[3], m[4]);
    [
        add(add(m[0], p), r),
        axpb::<FMA>(2.0, s, q),
        axpb::<FMA>(4.0, r, p),
        add(axpb::<FMA>(8.0, s, q), m[5]),
    ]
}

/// `y = B^T d B` on each lane.
#[inline(always)]
fn input_transform<const FMA: bool, const A: usize>(
    bt: &[[f32; A]; A],
    d: &[[Lanes; A]; A],
) -> [[Lanes; A]; A] {
    if A == 6 {
        // F(4): B^T's rows in shared terms, columns then rows.
        let mut tmp = [[[0f32; LANES]; A]; A];
        for j in 0..6 {
            let col = bt4::<FMA>([d[0][j], d[1][j], d[2][j], d[3][j], d[4][j], d[5][j]]);
            for (i, v) in col.into_iter().enumerate() {
                tmp[i][j] = v;
            }
        }
        let mut y = [[[0f32; LANES]; A]; A];
        for (yrow, t) in y.iter_mut().zip(&tmp) {
            let row = bt4::<FMA>([t[0], t[1], t[2], t[3], t[4], t[5]]);
            for (o, v) in yrow.iter_mut().zip(row) {
                *o = v;
            }
        }
        return y;
    }
    let mut tmp = [[[0f32; LANES]; A]; A];
    for (trow, brow) in tmp.iter_mut().zip(bt) {
        for (&c, drow) in brow.iter().zip(d) {
            if c != 0.0 {
                for (tv, dv) in trow.iter_mut().zip(drow) {
                    for (t, &x) in tv.iter_mut().zip(dv) {
                        *t = fma::<FMA>(c, x, *t);
                    }
                }
            }
        }
    }
    let mut y = [[[0f32; LANES]; A]; A];
    for (yrow, trow) in y.iter_mut().zip(&tmp) {
        for (yv, brow) in yrow.iter_mut().zip(bt) {
            for (&c, tv) in brow.iter().zip(trow) {
                if c != 0.0 {
                    for (o, &x) in yv.iter_mut().zip(tv) {
                        *o = fma::<FMA>(c, x, *o);
                    }
                }
            }
        }
    }
    y
}

/// The transformed input tiles `t0..t0 + tc` of one channel (`src`, its
/// n x h x w values) into `dst`, [point][tile]; `blocks` is scratch.
fn input_tiles<const M: usize, const A: usize>(
    f: &Minimal<M, A>,
    grid: &TileGrid,
    src: &[f32],
    t0: usize,
    tc: usize,
    dst: &mut [f32],
    blocks: &mut Vec<f32>,
) {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        unsafe { lanes_x86::input_tiles::<M, A>(f, grid, src, t0, tc, dst, blocks) };
        return;
    }
    let _ = blocks;
    input_tiles_body::<false, M, A>(f, grid, src, t0, tc, dst)
}

#[inline(always)]
fn input_tiles_body<const FMA: bool, const M: usize, const A: usize>(
    f: &Minimal<M, A>,
    grid: &TileGrid,
    src: &[f32],
    t0: usize,
    tc: usize,
    dst: &mut [f32],
) {
    for g0 in (0..tc).step_by(LANES) {
        let lanes = (tc - g0).min(LANES);
        let d = gather_tiles::<A>(grid, src, t0 + g0, lanes);
        let v = input_transform::<FMA, A>(&f.bt, &d);
        store_transformed(&v, dst, tc, g0, lanes);
    }
}

/// The `A x A` input values of tiles `t..t + lanes` of one channel, one
/// tile per lane (zero outside the image), value by value.
#[inline(always)]
fn gather_tiles<const A: usize>(
    grid: &TileGrid,
    src: &[f32],
    t: usize,
    lanes: usize,
) -> [[Lanes; A]; A] {
    let (h, w) = (grid.h, grid.w);
    let hw = h * w;
    let mut d = [[[0f32; LANES]; A]; A];
    for l in 0..lanes {
        let (b, y0, x0) = grid.place(t + l);
        let image = &src[b * hw..(b + 1) * hw];
        // Input rows y0 - 1 .. y0 + A - 1, columns x0 - 1 .. x0 + A - 1.
        let interior = y0 >= 1 && x0 >= 1 && y0 + A - 1 <= h && x0 + A - 1 <= w;
        if interior {
            for (i, drow) in d.iter_mut().enumerate() {
                let row = &image[(y0 + i - 1) * w + x0 - 1..][..A];
                for (dv, &v) in drow.iter_mut().zip(row) {
                    dv[l] = v;
                }
            }
        } else {
            for (i, drow) in d.iter_mut().enumerate() {
                let y = (y0 + i).wrapping_sub(1);
                for (j, dv) in drow.iter_mut().enumerate() {
                    let xx = (x0 + j).wrapping_sub(1);
                    dv[l] = if y < h && xx < w {
                        image[y * w + xx]
                    } else {
                        0.0
                    };
                }
            }
        }
    }
    d
}

/// Writes a group's transformed tiles (lanes `..lanes`) at tiles `g0..` of
/// `dst` ([point][tile], `tc` tiles).
#[inline(always)]
fn store_transformed<const A: usize>(
    v: &[[Lanes; A]; A],
    dst: &mut [f32],
    tc: usize,
    g0: usize,
    lanes: usize,
) {
    for (k, vv) in v.iter().flatten().enumerate() {
        copy_lanes(&mut dst[k * tc + g0..][..lanes], &vv[..lanes]);
    }
}

/// `Y = A^T m A` on each lane. The same two-sided product as
/// [`input_transform`], written out again: a shared version taking the
/// one-dimensional step as a closure ran 3x slower, its closures and
/// `array::from_fn` compiled without the caller's AVX2 / FMA (calls into
/// libm's `fmaf`).
#[inline(always)]
fn output_transform<const FMA: bool, const M: usize, const A: usize>(
    at: &[[f32; A]; M],
    m: &[[Lanes; A]; A],
) -> [[Lanes; M]; M] {
    if A == 6 && M == 4 {
        // F(4): A^T's rows in shared terms, columns then rows.
        let mut tmp = [[[0f32; LANES]; A]; M];
        for j in 0..6 {
            let col = at4::<FMA>([m[0][j], m[1][j], m[2][j], m[3][j], m[4][j], m[5][j]]);
            for (i, v) in col.into_iter().enumerate() {
                tmp[i][j] = v;
            }
        }
        let mut y = [[[0f32; LANES]; M]; M];
        for (yrow, t) in y.iter_mut().zip(&tmp) {
            let row = at4::<FMA>([t[0], t[1], t[2], t[3], t[4], t[5]]);
            for (o, v) in yrow.iter_mut().zip(row) {
                *o = v;
            }
        }
        return y;
    }
    let mut tmp = [[[0f32; LANES]; A]; M];
    for (trow, arow) in tmp.iter_mut().zip(at) {
        for (&c, mrow) in arow.iter().zip(m) {
            if c != 0.0 {
                for (tv, mv) in trow.iter_mut().zip(mrow) {
                    for (t, &x) in tv.iter_mut().zip(mv) {
                        *t = fma::<FMA>(c, x, *t);
                    }
                }
            }
        }
    }
    let mut y = [[[0f32; LANES]; M]; M];
    for (yrow, trow) in y.iter_mut().zip(&tmp) {
        for (yv, arow) in yrow.iter_mut().zip(at) {
            for (&c, tv) in arow.iter().zip(trow) {
                if c != 0.0 {
                    for (o, &x) in yv.iter_mut().zip(tv) {
                        *o = fma::<FMA>(c, x, *o);
                    }
                }
            }
        }
    }
    y
}

/// Output channel `co`'s tiles `t0..t0 + tc` from the products `prod`
/// ([point][c_out][tile]), plus `bias`, into the output `dst`.
#[allow(clippy::too_many_arguments)]
fn output_tiles<const M: usize, const A: usize>(
    f: &Minimal<M, A>,
    grid: &TileGrid,
    prod: &[f32],
    co: usize,
    c_out: usize,
    t0: usize,
    tc: usize,
    bias: f32,
    dst: SharedOut,
) {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        unsafe { lanes_x86::output_tiles::<M, A>(f, grid, prod, co, c_out, t0, tc, bias, dst) };
        return;
    }
    output_tiles_body::<false, M, A>(f, grid, prod, co, c_out, t0, tc, bias, dst)
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn output_tiles_body<const FMA: bool, const M: usize, const A: usize>(
    f: &Minimal<M, A>,
    grid: &TileGrid,
    prod: &[f32],
    co: usize,
    c_out: usize,
    t0: usize,
    tc: usize,
    bias: f32,
    dst: SharedOut,
) {
    for g0 in (0..tc).step_by(LANES) {
        let lanes = (tc - g0).min(LANES);
        let y = output_group::<FMA, M, A>(f, prod, co, c_out, tc, g0, lanes);
        store_tiles(grid, &y, co, t0 + g0, lanes, bias, dst);
    }
}

/// `A^T m A` of the group of tiles `g0..g0 + lanes` of output channel
/// `co` from the products `prod` ([point][c_out][tile], `tc` tiles).
#[inline(always)]
fn output_group<const FMA: bool, const M: usize, const A: usize>(
    f: &Minimal<M, A>,
    prod: &[f32],
    co: usize,
    c_out: usize,
    tc: usize,
    g0: usize,
    lanes: usize,
) -> [[Lanes; M]; M] {
    let mut m = [[[0f32; LANES]; A]; A];
    for (k, mv) in m.iter_mut().flatten().enumerate() {
        copy_lanes(
            &mut mv[..lanes],
            &prod[(k * c_out + co) * tc + g0..][..lanes],
        );
    }
    output_transform::<FMA, M, A>(&f.at, &m)
}

/// Writes output tiles `t..t + lanes` of channel `co` (one per lane of
/// `y`) plus `bias`, value by value, leaving out what lies past the image.
#[inline(always)]
fn store_tiles<const M: usize>(
    grid: &TileGrid,
    y: &[[Lanes; M]; M],
    co: usize,
    t: usize,
    lanes: usize,
    bias: f32,
    dst: SharedOut,
) {
    let (h, w) = (grid.h, grid.w);
    for l in 0..lanes {
        let (b, y0, x0) = grid.place(t + l);
        let image = (co * grid.n + b) * h * w;
        let rows = M.min(h - y0);
        let cols = M.min(w - x0);
        for (i, yrow) in y.iter().enumerate().take(rows) {
            let start = image + (y0 + i) * w + x0;
            for (j, yv) in yrow.iter().enumerate().take(cols) {
                // SAFETY: pixel (y0 + i, x0 + j) of image b belongs to
                // this tile alone, and each tile is in one chunk.
                unsafe { dst.write(start + j, yv[l] + bias) };
            }
        }
    }
}

/// The transforms' gathers and scatters by vector loads, stores and
/// transposes (AVX2): value by value they cost more than the transforms,
/// each scalar store then reloaded as part of a vector stalling.
#[cfg(target_arch = "x86_64")]
mod lanes_x86 {
    use std::arch::x86_64::{
        __m256, _mm_storeu_ps, _mm256_add_ps, _mm256_castps256_ps128, _mm256_extractf128_ps,
        _mm256_loadu_ps, _mm256_permute2f128_ps, _mm256_set1_ps, _mm256_setzero_ps,
        _mm256_shuffle_ps, _mm256_storeu_ps, _mm256_unpackhi_ps, _mm256_unpacklo_ps,
    };

    use super::{
        LANES, Lanes, Minimal, SharedOut, TileGrid, input_transform, output_group, store_tiles,
        store_transformed,
    };

    /// `out[j][l] = rows[l][j]`: the 8 x 8 transpose.
    #[target_feature(enable = "avx2,fma")]
    fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ]
    }

    /// `dst = src` by eight values at a time (`copy_from_slice` of an image
    /// row of 8-32 values was a call into memmove).
    #[target_feature(enable = "avx2,fma")]
    fn copy_short(dst: &mut [f32], src: &[f32]) {
        let mut d = dst.chunks_exact_mut(LANES);
        let mut s = src.chunks_exact(LANES);
        for (d, s) in (&mut d).zip(&mut s) {
            super::copy_lanes(d, s);
        }
        for (d, &s) in d.into_remainder().iter_mut().zip(s.remainder()) {
            *d = s;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    fn load8(values: &[f32]) -> __m256 {
        let v = &values[..LANES];
        // SAFETY: `v` is eight f32 values.
        unsafe { _mm256_loadu_ps(v.as_ptr()) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn lanes_of(v: __m256) -> Lanes {
        let mut out = [0f32; LANES];
        // SAFETY: `out` holds eight f32 values.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) };
        out
    }

    /// [`super::input_tiles`] on AVX2: the chunk's tile rows are first
    /// copied into zero-bordered blocks (`A` rows of `M * (tw - 1) + 8`
    /// values each, the first column the image's column -1), so that each
    /// tile's row is one in-bounds load of eight values; eight tiles' rows
    /// transposed give the lanes.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn input_tiles<const M: usize, const A: usize>(
        f: &Minimal<M, A>,
        grid: &TileGrid,
        src: &[f32],
        t0: usize,
        tc: usize,
        dst: &mut [f32],
        blocks: &mut Vec<f32>,
    ) {
        // A tile's row is one load of eight values, transposed with seven
        // others.
        const { assert!(A <= LANES) };
        if tc == 0 {
            return;
        }
        let (h, w, tw) = (grid.h, grid.w, grid.tw);
        let pw = M * (tw - 1) + LANES;
        let block_len = A * pw;
        let (r0, r1) = (t0 / tw, (t0 + tc - 1) / tw + 1);
        // The borders stay zero from channel to channel of a chunk (its
        // caller clears `blocks` at the chunk's start): only the image's
        // rows are written below.
        if blocks.len() != (r1 - r0) * block_len {
            blocks.clear();
            blocks.resize((r1 - r0) * block_len, 0.0);
        }
        for (gr, block) in (r0..r1).zip(blocks.chunks_exact_mut(block_len)) {
            let (b, y0) = (gr / grid.th, (gr % grid.th) * M);
            for (i, row) in block.chunks_exact_mut(pw).enumerate() {
                let y = (y0 + i).wrapping_sub(1);
                if y < h {
                    copy_short(&mut row[1..=w], &src[(b * h + y) * w..][..w]);
                }
            }
        }
        for g0 in (0..tc).step_by(LANES) {
            let lanes = (tc - g0).min(LANES);
            // Lanes past the chunk's end repeat its last tile (not stored).
            let base: [usize; LANES] = std::array::from_fn(|l| {
                let t = t0 + g0 + l.min(lanes - 1);
                (t / tw - r0) * block_len + (t % tw) * M
            });
            let mut d = [[[0f32; LANES]; A]; A];
            for (i, drow) in d.iter_mut().enumerate() {
                // Loops, not closures: a closure does not inherit the
                // target features, and its intrinsics become calls.
                let mut rows = [_mm256_setzero_ps(); LANES];
                for (r, &at) in rows.iter_mut().zip(&base) {
                    *r = load8(&blocks[at + i * pw..]);
                }
                let columns = transpose8(rows);
                for (dv, &c) in drow.iter_mut().zip(&columns) {
                    *dv = lanes_of(c);
                }
            }
            let v = input_transform::<true, A>(&f.bt, &d);
            store_transformed(&v, dst, tc, g0, lanes);
        }
    }

    /// [`super::output_tiles`] on AVX2: a group of eight whole 4 x 4 tiles
    /// is written as one four-value store per tile row, the lanes
    /// transposed; other groups value by value.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn output_tiles<const M: usize, const A: usize>(
        f: &Minimal<M, A>,
        grid: &TileGrid,
        prod: &[f32],
        co: usize,
        c_out: usize,
        t0: usize,
        tc: usize,
        bias: f32,
        dst: SharedOut,
    ) {
        let (h, w) = (grid.h, grid.w);
        let bias8 = _mm256_set1_ps(bias);
        for g0 in (0..tc).step_by(LANES) {
            let lanes = (tc - g0).min(LANES);
            let y = output_group::<true, M, A>(f, prod, co, c_out, tc, g0, lanes);
            let places: [(usize, usize, usize); LANES] =
                std::array::from_fn(|l| grid.place(t0 + g0 + l.min(lanes - 1)));
            let whole = M == 4
                && lanes == LANES
                && places.iter().all(|&(_, y0, x0)| y0 + M <= h && x0 + M <= w);
            if !whole {
                store_tiles(grid, &y, co, t0 + g0, lanes, bias, dst);
                continue;
            }
            for (i, yrow) in y.iter().enumerate() {
                let v: &[Lanes] = yrow;
                let a = _mm256_add_ps(load8(&v[0]), bias8);
                let b = _mm256_add_ps(load8(&v[1]), bias8);
                let c = _mm256_add_ps(load8(&v[2]), bias8);
                let d = _mm256_add_ps(load8(&v[3]), bias8);
                let t0v = _mm256_unpacklo_ps(a, b);
                let t1v = _mm256_unpackhi_ps(a, b);
                let t2v = _mm256_unpacklo_ps(c, d);
                let t3v = _mm256_unpackhi_ps(c, d);
                // Lanes 0-3 in the low halves, 4-7 in the high ones.
                let quads = [
                    _mm256_shuffle_ps::<0x44>(t0v, t2v),
                    _mm256_shuffle_ps::<0xEE>(t0v, t2v),
                    _mm256_shuffle_ps::<0x44>(t1v, t3v),
                    _mm256_shuffle_ps::<0xEE>(t1v, t3v),
                ];
                for (l, &(b, y0, x0)) in places.iter().enumerate() {
                    let q = quads[l % 4];
                    let half = if l < 4 {
                        _mm256_castps256_ps128(q)
                    } else {
                        _mm256_extractf128_ps::<1>(q)
                    };
                    let start = ((co * grid.n + b) * h + y0 + i) * w + x0;
                    // SAFETY: pixels (y0 + i, x0..x0 + 4) of image b belong to
                    // this tile alone, and each tile is in one chunk.
                    unsafe { dst.write4(start, |p| _mm_storeu_ps(p, half)) };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Conv;

    fn pseudo_random(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// `Conv::forward` runs the first layer (3 channels in) by im2col, bit
    /// for bit, and a 64-channel layer by F(4) (not the same bits, the same
    /// values within rounding); the kept weights serve a second call alike.
    #[test]
    fn forward_picks_im2col_or_winograd_by_the_layer() {
        let layer = |c_in: usize, c_out: usize| {
            let weight: Vec<f32> = pseudo_random(c_out * c_in * 9, 5)
                .iter()
                .map(|v| v * (1.0 / (9.0 * c_in as f32)).sqrt())
                .collect();
            let conv = Conv::new(weight, pseudo_random(c_out, 6), c_in, c_out, 3, 1)
                .expect("valid convolution");
            let x = Act {
                data: pseudo_random(c_in * 2 * 16 * 16, 7),
                c: c_in,
                n: 2,
                h: 16,
                w: 16,
            };
            (conv.forward(&x), conv.forward(&x), conv.forward_im2col(&x))
        };
        let (first, again, direct) = layer(3, 32);
        assert_eq!(first.data, direct.data);
        assert_eq!(again.data, direct.data);
        if enabled() {
            let (first, again, direct) = layer(64, 64);
            assert_ne!(
                first.data, direct.data,
                "a 64-channel layer runs by Winograd"
            );
            assert_eq!(first.data, again.data);
            let scale = direct.data.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = first
                .data
                .iter()
                .zip(&direct.data)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(d <= 8e-6 * scale, "max abs diff {d} (scale {scale})");
        }
    }

    /// Both tilings equal im2col's direct sum within f32 rounding, on image
    /// sizes that do and do not divide into tiles, at the U-Net's scale of
    /// values.
    #[test]
    fn winograd_equals_the_direct_convolution() {
        for &(c_in, c_out, n, h, w) in &[
            (3, 32, 2, 32, 32),
            (32, 64, 3, 16, 16),
            (64, 32, 2, 9, 7),
            (16, 16, 1, 3, 5),
            (128, 64, 1, 8, 8),
        ] {
            let x = Act {
                data: pseudo_random(c_in * n * h * w, 1),
                c: c_in,
                n,
                h,
                w,
            };
            let weight: Vec<f32> = pseudo_random(c_out * c_in * 9, 2)
                .iter()
                .map(|v| v * (1.0 / (9.0 * c_in as f32)).sqrt())
                .collect();
            let bias = pseudo_random(c_out, 3);
            let conv = Conv::new(weight.clone(), bias.clone(), c_in, c_out, 3, 1)
                .expect("valid convolution");
            let want = conv.forward_im2col(&x);
            let scale = want.data.iter().fold(0f32, |m, v| m.max(v.abs()));
            for tile in [Tile::F2, Tile::F4] {
                let got = conv.forward_tile(&x, tile);
                assert_eq!((got.c, got.n, got.h, got.w), (c_out, n, h, w));
                let d = got
                    .data
                    .iter()
                    .zip(&want.data)
                    .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                // F(4)'s points +-2 and its 1/24 round more than F(2)'s.
                let bound = match tile {
                    Tile::F2 => 2e-6,
                    Tile::F4 => 8e-6,
                };
                eprintln!("{tile:?} {c_in}->{c_out} {n}x{h}x{w}: {:.2e}", d / scale);
                assert!(
                    d <= bound * scale.max(1.0),
                    "{tile:?} {c_in}->{c_out} {n}x{h}x{w}: max abs diff {d} (scale {scale})"
                );
            }
        }
    }
}
