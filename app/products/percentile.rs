//! Percentiles equal to numpy's default (`method="linear"`): linear
//! interpolation between the order statistics at (n - 1) * q, with numpy's
//! two-sided lerp. Found by selection (O(n)), not by sorting.

/// numpy's `_lerp`: a + (b - a) t, computed from b's side when t >= 0.5.
fn numpy_lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// Percentiles `qs` (in 0..=100) of the non-NaN `values`, as numpy computes
/// them in float64. Returns None when no value is valid. `values` is reordered.
pub fn percentiles_in_place(values: &mut [f64], qs: &[f64]) -> Option<Vec<f64>> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    // Highest rank first, so later selections work on the shrinking left part.
    let mut order: Vec<usize> = (0..qs.len()).collect();
    order.sort_by(|&a, &b| qs[b].total_cmp(&qs[a]));
    let mut out = vec![0.0; qs.len()];
    let mut limit = n; // values[..limit] still unpartitioned relative to ranks below
    for &qi in &order {
        let q = qs[qi] / 100.0;
        let virtual_index = (n - 1) as f64 * q;
        let lo = virtual_index.floor();
        let gamma = virtual_index - lo;
        let lo = (lo as usize).min(n - 1);
        let hi = (lo + 1).min(n - 1);
        let part = &mut values[..limit.max(hi + 1).min(n)];
        let (_, &mut a, right) = part.select_nth_unstable_by(lo, f64::total_cmp);
        let b = if hi == lo {
            a
        } else {
            right.iter().copied().fold(f64::INFINITY, f64::min)
        };
        out[qi] = if lo == n - 1 {
            a
        } else {
            numpy_lerp(a, b, gamma)
        };
        limit = lo + 1;
    }
    Some(out)
}

/// An unsigned key with the order of the f32 values (NaN excluded).
fn ordered_key(x: f32) -> u32 {
    let b = x.to_bits();
    if b >> 31 == 1 { !b } else { b | 0x8000_0000 }
}

/// Percentiles of the non-NaN f32 `values`, identical to
/// [`percentiles_in_place`] on their f64 copies, by a two-pass radix select:
/// a 65,536-bin histogram of the keys' top 16 bits finds the bins holding the
/// needed order statistics, and only those bins' values are sorted. Two
/// parallel linear scans and no copy of the data.
pub fn percentiles_f32(values: &[f32], qs: &[f64]) -> Option<(Vec<f64>, usize)> {
    use rayon::prelude::*;
    const BINS: usize = 1 << 16;
    let chunk = values
        .len()
        .div_ceil(rayon::current_num_threads().max(1))
        .max(1 << 16);
    let hist = values
        .par_chunks(chunk)
        .map(|part| {
            let mut h = vec![0u32; BINS];
            for &v in part {
                if !v.is_nan() {
                    h[(ordered_key(v) >> 16) as usize] += 1;
                }
            }
            h
        })
        .reduce(
            || vec![0u32; BINS],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let n: usize = hist.iter().map(|&c| c as usize).sum();
    if n == 0 {
        return None;
    }
    // Ranks needed: floor and floor + 1 of (n - 1) q for every q.
    if qs.len() > 100 {
        return percentiles_of(values, qs);
    }
    let plans: Vec<(usize, usize, f64)> = qs
        .iter()
        .map(|&q| {
            let virtual_index = (n - 1) as f64 * (q / 100.0);
            let lo = virtual_index.floor();
            let gamma = virtual_index - lo;
            let lo = (lo as usize).min(n - 1);
            (lo, (lo + 1).min(n - 1), gamma)
        })
        .collect();
    let mut ranks: Vec<usize> = plans.iter().flat_map(|p| [p.0, p.1]).collect();
    ranks.sort_unstable();
    ranks.dedup();
    // Bin of each rank and the rank's offset inside the bin.
    let mut starts = vec![0usize; BINS + 1];
    for b in 0..BINS {
        starts[b + 1] = starts[b] + hist[b] as usize;
    }
    let bin_of = |r: usize| starts.partition_point(|&s| s <= r) - 1;
    let mut bins: Vec<usize> = ranks.iter().map(|&r| bin_of(r)).collect();
    bins.dedup();
    // Slot of each wanted bin (u8::MAX: not wanted); at most 2 per q.
    let mut slot = vec![u8::MAX; BINS];
    for (i, &b) in bins.iter().enumerate() {
        slot[b] = i as u8;
    }
    let mut members = values
        .par_chunks(chunk)
        .map(|part| {
            let mut m: Vec<Vec<f32>> = vec![Vec::new(); bins.len()];
            for &v in part {
                if v.is_nan() {
                    continue;
                }
                let i = slot[(ordered_key(v) >> 16) as usize];
                if i != u8::MAX {
                    m[i as usize].push(v);
                }
            }
            m
        })
        .reduce(
            || vec![Vec::new(); bins.len()],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| x.extend(y));
                a
            },
        );
    for m in &mut members {
        m.sort_unstable_by(f32::total_cmp);
    }
    let value_at = |r: usize| -> f64 {
        let b = bin_of(r);
        let i = bins.binary_search(&b).unwrap_or(0);
        f64::from(members[i][r - starts[b]])
    };
    let out = plans
        .iter()
        .map(|&(lo, hi, gamma)| {
            let a = value_at(lo);
            if lo == n - 1 {
                a
            } else {
                numpy_lerp(a, value_at(hi), gamma)
            }
        })
        .collect();
    Some((out, n))
}

/// Percentiles of the valid (non-NaN) samples of `values`.
pub fn percentiles_of<T: Copy + Into<f64>>(values: &[T], qs: &[f64]) -> Option<(Vec<f64>, usize)> {
    let mut valid: Vec<f64> = values
        .iter()
        .map(|&v| v.into())
        .filter(|v: &f64| !v.is_nan())
        .collect();
    let n = valid.len();
    percentiles_in_place(&mut valid, qs).map(|p| (p, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_linear_on_small_arrays() {
        // numpy.percentile([1,2,3,4,10], [2, 50, 98]) = [1.08, 3.0, 9.52]
        let mut v = vec![10.0, 3.0, 1.0, 4.0, 2.0];
        let p = percentiles_in_place(&mut v, &[2.0, 50.0, 98.0]).unwrap();
        assert!((p[0] - 1.08).abs() < 1e-12, "{p:?}");
        assert_eq!(p[1], 3.0);
        assert!((p[2] - 9.52).abs() < 1e-12, "{p:?}");
        let mut one = vec![5.0];
        assert_eq!(
            percentiles_in_place(&mut one, &[2.0, 98.0]).unwrap(),
            vec![5.0, 5.0]
        );
        let mut ends = vec![3.0, 1.0, 2.0];
        assert_eq!(
            percentiles_in_place(&mut ends, &[0.0, 100.0]).unwrap(),
            vec![1.0, 3.0]
        );
        assert!(percentiles_in_place(&mut [], &[2.0]).is_none());
    }

    #[test]
    fn radix_select_equals_selection() {
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as f32 / (1u64 << 31) as f32
        };
        for n in [1usize, 2, 7, 1000, 200_003] {
            let mut v: Vec<f32> = (0..n).map(|_| (next() - 0.3) * 5000.0).collect();
            // Duplicates, negatives, zeros of both signs and NaN.
            for i in (0..n).step_by(11) {
                v[i] = v[i / 2];
            }
            if n > 5 {
                v[1] = f32::NAN;
                v[2] = -0.0;
                v[3] = 0.0;
            }
            let qs = [0.0, 2.0, 50.0, 98.0, 100.0];
            let (got, count) = percentiles_f32(&v, &qs).unwrap();
            let (want, count2) = percentiles_of(&v, &qs).unwrap();
            assert_eq!(count, count2);
            assert_eq!(got, want, "n = {n}");
        }
        assert!(percentiles_f32(&[f32::NAN], &[2.0]).is_none());
    }

    #[test]
    fn nan_is_left_out() {
        let (p, n) = percentiles_of(&[f32::NAN, 1.0f32, 3.0], &[50.0]).unwrap();
        assert_eq!((p[0], n), (2.0, 2));
    }
}
