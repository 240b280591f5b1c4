//! The PCA's scatter matrix for integer-valued cubes, exactly and fast.
//!
//! Most hyperspectral cubes hold integers (sensor counts, reflectance x 1e4
//! stored as int16 / uint16). Minus a per-band integer offset (the middle of
//! its range) their values fit in i16, so sum (x - o)(x - o)^T is summed with
//! AVX2's 16-bit multiply-add into i32 lanes, widened to i64 before a lane
//! could overflow: no rounding at all (the f64 product rounds), at four times
//! the multiply rate of f64 FMA. A row of ones beside the bands gives the
//! sums of x - o (hence the mean) and the count in the same product. The PCA
//! uses it when every value is an integer and each band's spread fits;
//! otherwise, or without AVX2, it keeps the f64 product.

use rayon::prelude::*;

use super::fitted_chunks::for_each_chunk;
use crate::scene::HsiCube;

/// Pixels gathered per block (rows of the i16 buffer, 1 MB for 244 bands).
const CHUNK: usize = 2048;
/// Pixels per parallel task (many tasks: the two cores stay balanced).
const SPAN: usize = 8 * CHUNK;
/// x + 1.5 * 2^23 puts an integer |x| < 2^22 in the low mantissa bits.
const ROUND: f32 = 12_582_912.0;
const ROUND_BITS: i32 = 0x4B40_0000;
/// Bands per side of the register-blocked kernel.
const TILE: usize = 3;

/// Per band: whether every value is an integer, and the minimum and maximum
/// (over a superset of the fitted pixels: every value that is not NaN).
#[derive(Debug, Clone, Copy)]
pub struct BandRange {
    pub integral: bool,
    pub min: f32,
    pub max: f32,
}

impl BandRange {
    pub const EMPTY: BandRange = BandRange {
        integral: true,
        min: f32::INFINITY,
        max: f32::NEG_INFINITY,
    };

    /// The range of the values that are not NaN, in 8 lanes without
    /// branches so that it vectorises. A value counts as an integer when
    /// adding and subtracting 1.5 * 2^23 leaves it unchanged: exact for
    /// |x| < 2^22 (beyond, `integral` means nothing: [`integer_offsets`]
    /// refuses such a band).
    pub fn of(values: &[f32]) -> BandRange {
        let mut min = [f32::INFINITY; 8];
        let mut max = [f32::NEG_INFINITY; 8];
        let mut fractional = [0u32; 8];
        let lanes = values.chunks_exact(8);
        let rest = lanes.remainder();
        for chunk in lanes {
            for l in 0..8 {
                let x = chunk[l];
                // Comparisons are false for NaN: it changes nothing.
                min[l] = if x < min[l] { x } else { min[l] };
                max[l] = if x > max[l] { x } else { max[l] };
                fractional[l] |= u32::from(((x + ROUND) - ROUND != x) & !x.is_nan());
            }
        }
        let mut range = BandRange {
            integral: fractional.iter().all(|f| *f == 0),
            min: min.iter().copied().fold(f32::INFINITY, f32::min),
            max: max.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        };
        for &x in rest {
            range = range.merge(BandRange {
                integral: (x + ROUND) - ROUND == x || x.is_nan(),
                min: if x.is_nan() { f32::INFINITY } else { x },
                max: if x.is_nan() { f32::NEG_INFINITY } else { x },
            });
        }
        range
    }

    pub fn merge(self, other: BandRange) -> BandRange {
        BandRange {
            integral: self.integral & other.integral,
            min: self.min.min(other.min),
            max: self.max.max(other.max),
        }
    }
}

/// Offsets (the middle of each band's range) and the largest |x - offset|,
/// or None when a band is not integer-valued, is empty, holds a value of
/// 2^22 or more in magnitude, or spreads over more than i16 holds around its
/// middle.
pub fn integer_offsets(ranges: &[BandRange]) -> Option<(Vec<i32>, u32)> {
    let mut offsets = Vec::with_capacity(ranges.len());
    let mut max_dev = 0f64;
    for r in ranges {
        let (min, max) = (f64::from(r.min), f64::from(r.max));
        let limit = f64::from(1u32 << 22);
        if !r.integral || min > max || min <= -limit || max >= limit {
            return None;
        }
        let o = ((min + max) / 2.0).round();
        max_dev = max_dev.max(o - min).max(max - o);
        if max_dev > f64::from(i16::MAX) {
            return None;
        }
        offsets.push(o as i32);
    }
    Some((offsets, max_dev as u32))
}

/// Exact sums over the fitted pixels, relative to the offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegerSums {
    pub offsets: Vec<i32>,
    /// Pixels summed.
    pub count: i64,
    /// sum of x_i - o_i, per band.
    pub sums: Vec<i64>,
    /// sum of (x_i - o_i)(x_j - o_j) for i >= j, row-major, bands x bands
    /// (the upper triangle is 0).
    pub scatter: Vec<i64>,
}

impl IntegerSums {
    /// Per band mean, o + sum / n.
    pub fn mean(&self) -> Vec<f64> {
        let n = self.count as f64;
        self.offsets
            .iter()
            .zip(&self.sums)
            .map(|(&o, &s)| f64::from(o) + s as f64 / n)
            .collect()
    }

    /// Entry (i, j), i >= j, of the scatter of the mean-centred data:
    /// S - s_i s_j / n, formed exactly in i128 and rounded once.
    pub fn centred(&self, i: usize, j: usize) -> f64 {
        let nb = self.sums.len();
        let n = i128::from(self.count);
        let exact = n * i128::from(self.scatter[i * nb + j])
            - i128::from(self.sums[i]) * i128::from(self.sums[j]);
        exact as f64 / n as f64
    }
}

/// Whether this CPU runs the integer kernel.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The exact sums over the pixels of `mask`, for `offsets` and `max_dev`
/// from [`integer_offsets`]; None when the CPU lacks AVX2.
pub fn integer_scatter(
    cube: &HsiCube,
    bands: &[usize],
    mask: &[bool],
    offsets: &[i32],
    max_dev: u32,
) -> Option<IntegerSums> {
    if !available() || offsets.len() != bands.len() || mask.len() != cube.grid.len() {
        return None;
    }
    let nb = bands.len();
    // Row nb is the row of ones; the rows after it stay 0.
    let padded = (nb + 1).div_ceil(TILE) * TILE;
    // A lane adds two products per step, each at most max_dev^2 (or max_dev
    // against the ones).
    let per_step = 2 * u64::from(max_dev.max(1)).pow(2);
    let flush = (i32::MAX as u64 / per_step).clamp(1, CHUNK as u64) as usize;
    let n = mask.len();
    let sum = (0..n.div_ceil(SPAN))
        .into_par_iter()
        .fold(
            || vec![0i64; padded * padded],
            |mut acc, task| {
                let start = task * SPAN;
                let end = (start + SPAN).min(n);
                add_span(
                    cube,
                    bands,
                    mask,
                    offsets,
                    start..end,
                    flush,
                    padded,
                    &mut acc,
                );
                acc
            },
        )
        .reduce(
            || vec![0i64; padded * padded],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let mut scatter = vec![0i64; nb * nb];
    for i in 0..nb {
        scatter[i * nb..i * nb + i + 1].copy_from_slice(&sum[i * padded..i * padded + i + 1]);
    }
    Some(IntegerSums {
        offsets: offsets.to_vec(),
        count: sum[nb * padded + nb],
        sums: sum[nb * padded..nb * padded + nb].to_vec(),
        scatter,
    })
}

/// Adds the lower triangle of one pixel span's products to `acc` (padded x
/// padded, row-major).
#[allow(clippy::too_many_arguments)]
fn add_span(
    cube: &HsiCube,
    bands: &[usize],
    mask: &[bool],
    offsets: &[i32],
    span: std::ops::Range<usize>,
    flush: usize,
    padded: usize,
    acc: &mut [i64],
) {
    // Rows beyond the bands and the ones stay 0: the padded tiles add nothing.
    let nb = bands.len();
    let mut buf = vec![0i16; padded * CHUNK];
    for_each_chunk(mask, span, CHUNK, |chunk| {
        let m = chunk.rows.len();
        let len = m.div_ceil(16) * 16;
        for (j, (&b, &o)) in bands.iter().zip(offsets).enumerate() {
            let row = &mut buf[j * CHUNK..j * CHUNK + len];
            // x - o is an integer within max_dev <= i16::MAX (the ranges
            // cover every fitted value), exact in f32; adding ROUND leaves
            // it in the low bits, a conversion that vectorises.
            let o = o as f32;
            chunk.gather(cube.band(b), row, |v| {
                ((v - o + ROUND).to_bits() as i32 - ROUND_BITS) as i16
            });
            row[m..].fill(0);
        }
        let ones = &mut buf[nb * CHUNK..nb * CHUNK + len];
        ones[..m].fill(1);
        ones[m..].fill(0);
        for ti in 0..padded / TILE {
            for tj in 0..=ti {
                let a = tile_rows(&buf, ti, len);
                let b = tile_rows(&buf, tj, len);
                let block = tile_products(a, b, flush);
                for (r, row) in block.iter().enumerate() {
                    let base = (ti * TILE + r) * padded + tj * TILE;
                    acc[base..base + TILE]
                        .iter_mut()
                        .zip(row)
                        .for_each(|(x, y)| *x += y);
                }
            }
        }
    });
}

fn tile_rows(buf: &[i16], tile: usize, len: usize) -> [&[i16]; TILE] {
    std::array::from_fn(|r| {
        let s = (tile * TILE + r) * CHUNK;
        &buf[s..s + len]
    })
}

/// out[r][c] = sum_p a[r][p] * b[c][p], all rows of one length, a multiple of 16.
fn tile_products(a: [&[i16]; TILE], b: [&[i16]; TILE], flush: usize) -> [[i64; TILE]; TILE] {
    #[cfg(target_arch = "x86_64")]
    {
        if available() {
            // SAFETY: AVX2 is present (checked above); the kernel reads only
            // within the slices, whose common length it checks.
            return unsafe { avx2::tile_products(a, b, flush) };
        }
    }
    let _ = flush;
    std::array::from_fn(|r| {
        std::array::from_fn(|c| {
            a[r].iter()
                .zip(b[c])
                .map(|(&x, &y)| i64::from(x) * i64::from(y))
                .sum()
        })
    })
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::TILE;

    /// `vpmaddwd` into i32 lanes for `flush` steps of 16 values, then widened
    /// into i64 lanes; `flush` keeps every i32 lane below 2^31.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn tile_products(
        a: [&[i16]; TILE],
        b: [&[i16]; TILE],
        flush: usize,
    ) -> [[i64; TILE]; TILE] {
        let len = a[0].len();
        let same_len = a.iter().chain(b.iter()).all(|r| r.len() == len);
        if !same_len || !len.is_multiple_of(16) || flush == 0 {
            return [[0; TILE]; TILE];
        }
        let load = |row: &[i16], p: usize| {
            // SAFETY: p + 16 <= len == row.len(); unaligned load.
            unsafe { _mm256_loadu_si256(row.as_ptr().add(p).cast::<__m256i>()) }
        };
        let mut wide = [[_mm256_setzero_si256(); TILE]; TILE];
        let mut p = 0;
        while p < len {
            let seg_end = (p + 16 * flush).min(len);
            let mut lanes = [[_mm256_setzero_si256(); TILE]; TILE];
            while p < seg_end {
                let av = [load(a[0], p), load(a[1], p), load(a[2], p)];
                for (c, row) in b.iter().enumerate() {
                    let bv = load(row, p);
                    for r in 0..TILE {
                        lanes[r][c] = _mm256_add_epi32(lanes[r][c], _mm256_madd_epi16(av[r], bv));
                    }
                }
                p += 16;
            }
            for r in 0..TILE {
                for c in 0..TILE {
                    let lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(lanes[r][c]));
                    let hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(lanes[r][c]));
                    wide[r][c] = _mm256_add_epi64(wide[r][c], _mm256_add_epi64(lo, hi));
                }
            }
        }
        let mut out = [[0i64; TILE]; TILE];
        for r in 0..TILE {
            for c in 0..TILE {
                let mut v = [0i64; 4];
                // SAFETY: v holds exactly 32 bytes.
                unsafe { _mm256_storeu_si256(v.as_mut_ptr().cast::<__m256i>(), wide[r][c]) };
                out[r][c] = v.iter().sum();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::PixelGrid;

    fn cube(width: usize, height: usize, bands: usize, f: impl Fn(usize, usize) -> f32) -> HsiCube {
        let n = width * height;
        let data = (0..bands * n).map(|k| f(k / n, k % n)).collect();
        HsiCube {
            grid: PixelGrid::plain(width, height),
            bands,
            data,
            wavelengths_nm: None,
            band_names: vec![String::new(); bands],
        }
    }

    fn reference(cube: &HsiCube, mask: &[bool], offsets: &[i32]) -> Vec<i64> {
        let nb = cube.bands;
        let mut s = vec![0i64; nb * nb];
        for (p, _) in mask.iter().enumerate().filter(|(_, m)| **m) {
            for i in 0..nb {
                for j in 0..=i {
                    let xi = cube.band(i)[p] as i64 - i64::from(offsets[i]);
                    let xj = cube.band(j)[p] as i64 - i64::from(offsets[j]);
                    s[i * nb + j] += xi * xj;
                }
            }
        }
        s
    }

    #[test]
    fn equals_the_exact_sum_with_extreme_values_gaps_and_ragged_sizes() {
        // 7 bands (not a multiple of the tile), 3001 pixels (not of 16 or of
        // the chunk), values at +-32767 around the offset so that every lane
        // flushes after one step, and a masked-out stripe.
        let c = cube(61, 49, 7, |b, p| {
            let v = ((p * 7919 + b * 104_729) % 65_535) as f32 - 32_767.0;
            if p % 13 == 0 { 32_767.0 } else { v }
        });
        let mask: Vec<bool> = (0..c.grid.len()).map(|p| p % 97 > 10).collect();
        let offsets = vec![0; 7];
        let bands: Vec<usize> = (0..7).collect();
        let Some(got) = integer_scatter(&c, &bands, &mask, &offsets, 32_767) else {
            assert!(!available(), "AVX2 is present but the kernel declined");
            return;
        };
        assert_eq!(got.scatter, reference(&c, &mask, &offsets));
        let fitted: Vec<usize> = (0..c.grid.len()).filter(|&p| mask[p]).collect();
        assert_eq!(got.count, fitted.len() as i64);
        for (b, &s) in got.sums.iter().enumerate() {
            let want: i64 = fitted.iter().map(|&p| c.band(b)[p] as i64).sum();
            assert_eq!(s, want, "sum of band {b}");
        }
    }

    #[test]
    fn offsets_need_integers_within_i16() {
        let r = |min: f32, max: f32, integral| BandRange { integral, min, max };
        let (o, dev) =
            integer_offsets(&[r(0.0, 10_000.0, true), r(-3.0, 4.0, true)]).expect("fits");
        assert_eq!((o, dev), (vec![5_000, 1], 5_000));
        // uint16 data over almost its whole range still fits around the middle.
        assert!(integer_offsets(&[r(0.0, 65_534.0, true)]).is_some());
        assert!(integer_offsets(&[r(0.0, 1.0, false)]).is_none());
        assert!(integer_offsets(&[r(0.0, 70_000.0, true)]).is_none());
        assert!(integer_offsets(&[BandRange::EMPTY]).is_none());
        let b = BandRange::of(&[3.0, -2.0, f32::NAN, 7.0]);
        assert!(b.integral && b.min == -2.0 && b.max == 7.0);
        assert!(!b.merge(BandRange::of(&[0.5])).integral);
        assert!(integer_offsets(&[BandRange::of(&[3e9, 3e9 + 256.0])]).is_none());
        assert!(integer_offsets(&[BandRange::of(&[-8_388_607.5, -8_388_607.0])]).is_none());
        let lanes: Vec<f32> = (0..19).map(|k| k as f32 - 9.0).collect();
        let r = BandRange::of(&lanes);
        assert!(r.integral && r.min == -9.0 && r.max == 9.0);
        let mut half = lanes.clone();
        half[3] = 0.5;
        half[4] = f32::NAN;
        assert!(!BandRange::of(&half).integral);
        assert!(BandRange::of(&[1.0]).merge(BandRange::EMPTY).integral);
    }
}
