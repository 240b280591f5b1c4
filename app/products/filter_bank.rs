//! ilastik's multi-scale filter bank, the pixel features of the classical
//! reference classifier (`filter-rf`): Gaussian smoothing, Laplacian of
//! Gaussian, Gaussian gradient magnitude and differences of Gaussians at a
//! few scales, with scipy.ndimage's conventions exactly (kernel radius
//! `round(4 sigma)`, derivative kernels from the sampled Gaussian, `reflect`
//! borders `d c b a | a b c d`), so that features match the peers' numbers
//! in evaluation.md. Separable 1-D passes in f64; the passes one scale
//! shares (the Gaussian along the rows) are computed once.

/// Sigmas of the Gaussian smoothings.
pub const GAUSSIAN_SIGMAS: [f64; 4] = [0.7, 1.6, 3.5, 5.0];
/// Sigmas of the Laplacians of Gaussian and of the gradient magnitudes.
pub const DERIVATIVE_SIGMAS: [f64; 2] = [1.6, 3.5];
/// (larger, smaller) sigma of each difference of Gaussians.
pub const DOG_SIGMAS: [(f64, f64); 2] = [(1.6, 0.7), (3.5, 1.6)];
/// Images the bank makes from one input image.
pub const FILTERS: usize = GAUSSIAN_SIGMAS.len() + 2 * DERIVATIVE_SIGMAS.len() + DOG_SIGMAS.len();

/// The names of the bank's outputs, in the order [`filter_bank`] returns them.
pub fn filter_names() -> Vec<String> {
    let mut names: Vec<String> = GAUSSIAN_SIGMAS
        .iter()
        .map(|s| format!("gaussian {s:?}"))
        .collect();
    names.extend(DERIVATIVE_SIGMAS.iter().map(|s| format!("log {s:?}")));
    names.extend(DERIVATIVE_SIGMAS.iter().map(|s| format!("gradient {s:?}")));
    names.extend(DOG_SIGMAS.iter().map(|(a, b)| format!("dog {a:?}-{b:?}")));
    names
}

/// scipy's `_gaussian_kernel1d(sigma, order, radius)` with radius
/// `int(4 sigma + 0.5)`: the sampled Gaussian normalised to sum 1, times the
/// polynomial of its `order`-th derivative (order 0, 1 or 2). Index `radius +
/// x` holds the weight at offset x.
pub fn gaussian_kernel(sigma: f64, order: usize) -> Vec<f64> {
    let radius = (4.0 * sigma + 0.5) as i64;
    let s2 = sigma * sigma;
    let phi: Vec<f64> = (-radius..=radius)
        .map(|x| (-0.5 / s2 * (x * x) as f64).exp())
        .collect();
    let sum: f64 = phi.iter().sum();
    (-radius..=radius)
        .zip(&phi)
        .map(|(x, &p)| {
            let x = x as f64;
            let poly = match order {
                0 => 1.0,
                1 => -x / s2,
                _ => x * x / (s2 * s2) - 1.0 / s2,
            };
            poly * p / sum
        })
        .collect()
}

/// scipy's `reflect` mode: the index `i` (possibly outside 0..n) of a
/// half-sample symmetric extension, repeated as often as the kernel needs.
fn reflect(i: i64, n: usize) -> usize {
    let n = n as i64;
    let m = i.rem_euclid(2 * n);
    (if m >= n { 2 * n - 1 - m } else { m }) as usize
}

/// One image, row-major `height` x `width`.
#[derive(Debug, Clone, Copy)]
pub struct Plane<'a> {
    pub values: &'a [f64],
    pub width: usize,
    pub height: usize,
}

/// `out[y][x] = sum_k kernel(k) * in[y - k][x]` (axis 0, scipy's first pass).
fn along_columns(p: Plane<'_>, kernel: &[f64]) -> Vec<f64> {
    let (w, h) = (p.width, p.height);
    let r = (kernel.len() / 2) as i64;
    let mut out = vec![0f64; w * h];
    for y in 0..h {
        let row = &mut out[y * w..(y + 1) * w];
        for (j, &k) in kernel.iter().enumerate() {
            let src = reflect(y as i64 - (j as i64 - r), h);
            for (o, &v) in row.iter_mut().zip(&p.values[src * w..(src + 1) * w]) {
                *o += k * v;
            }
        }
    }
    out
}

/// `out[y][x] = sum_k kernel(k) * in[y][x - k]` (axis 1).
fn along_rows(p: Plane<'_>, kernel: &[f64]) -> Vec<f64> {
    let (w, h) = (p.width, p.height);
    let r = (kernel.len() / 2) as i64;
    let mut out = vec![0f64; w * h];
    let mut padded = vec![0f64; w + 2 * r as usize];
    for y in 0..h {
        let row = &p.values[y * w..(y + 1) * w];
        for (i, v) in padded.iter_mut().enumerate() {
            *v = row[reflect(i as i64 - r, w)];
        }
        for (x, o) in out[y * w..(y + 1) * w].iter_mut().enumerate() {
            // in[x - k] for k = j - r is padded[x + r - k] = padded[x + 2r - j].
            let window = &padded[x..x + 2 * r as usize + 1];
            *o = kernel
                .iter()
                .zip(window.iter().rev())
                .map(|(k, v)| k * v)
                .sum();
        }
    }
    out
}

/// Every filter of the bank on one image, in [`filter_names`]'s order.
pub fn filter_bank(p: Plane<'_>) -> Vec<Vec<f64>> {
    let mut sigmas: Vec<f64> = GAUSSIAN_SIGMAS
        .iter()
        .chain(&DERIVATIVE_SIGMAS)
        .copied()
        .collect();
    sigmas.sort_by(f64::total_cmp);
    sigmas.dedup();
    // Per sigma: the Gaussian along the columns, then along the rows.
    fn plane<'v>(values: &'v [f64], like: Plane<'_>) -> Plane<'v> {
        Plane {
            values,
            width: like.width,
            height: like.height,
        }
    }
    let mut smooth_cols = Vec::new();
    let mut gaussian = Vec::new();
    for &s in &sigmas {
        let g = gaussian_kernel(s, 0);
        let cols = along_columns(p, &g);
        gaussian.push((s, along_rows(plane(&cols, p), &g)));
        smooth_cols.push((s, cols));
    }
    let find = |list: &[(f64, Vec<f64>)], s: f64| -> usize {
        list.iter().position(|(t, _)| *t == s).unwrap_or(0)
    };
    let mut out: Vec<Vec<f64>> = GAUSSIAN_SIGMAS
        .iter()
        .map(|&s| gaussian[find(&gaussian, s)].1.clone())
        .collect();
    let mut gradients = Vec::new();
    for &s in &DERIVATIVE_SIGMAS {
        let g0 = gaussian_kernel(s, 0);
        let g1 = gaussian_kernel(s, 1);
        let g2 = gaussian_kernel(s, 2);
        let cols0 = &smooth_cols[find(&smooth_cols, s)].1;
        // Laplacian: d2/dy2 then smooth x, plus smooth y then d2/dx2.
        let d2y = along_rows(plane(&along_columns(p, &g2), p), &g0);
        let d2x = along_rows(plane(cols0, p), &g2);
        out.push(d2y.iter().zip(&d2x).map(|(a, b)| a + b).collect());
        let d1y = along_rows(plane(&along_columns(p, &g1), p), &g0);
        let d1x = along_rows(plane(cols0, p), &g1);
        gradients.push(
            d1y.iter()
                .zip(&d1x)
                .map(|(a, b)| (a * a + b * b).sqrt())
                .collect(),
        );
    }
    out.extend(gradients);
    for &(a, b) in &DOG_SIGMAS {
        let (ga, gb) = (
            &gaussian[find(&gaussian, a)].1,
            &gaussian[find(&gaussian, b)].1,
        );
        out.push(ga.iter().zip(gb).map(|(x, y)| x - y).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_is_half_sample_symmetric() {
        let idx: Vec<usize> = (-5..9).map(|i| reflect(i, 4)).collect();
        assert_eq!(idx, vec![3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0, 0]);
        assert_eq!(reflect(-7, 1), 0);
    }

    #[test]
    fn kernels_have_the_moments_of_their_derivative() {
        let g0 = gaussian_kernel(1.6, 0);
        assert_eq!(g0.len(), 2 * 6 + 1);
        assert!((g0.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // A first derivative kernel convolved with a ramp gives its slope.
        let g1 = gaussian_kernel(3.5, 1);
        let r = (g1.len() / 2) as f64;
        let slope: f64 = g1
            .iter()
            .enumerate()
            .map(|(j, k)| -k * (j as f64 - r))
            .sum();
        assert!((slope - 1.0).abs() < 1e-3, "{slope}");
        assert_eq!(filter_names().len(), FILTERS);
    }
}
