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
    fn nan_is_left_out() {
        let (p, n) = percentiles_of(&[f32::NAN, 1.0f32, 3.0], &[50.0]).unwrap();
        assert_eq!((p[0], n), (2.0, 2));
    }
}
