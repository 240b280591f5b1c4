//! The PCA's fitted pixels, a chunk at a time: both scatter sums (the f64
//! product and the exact integer one) copy each band's values at up to a
//! chunk of fitted pixels into a buffer before their product.

use std::ops::Range;

/// A run of pixels and the fitted ones among it.
pub struct FittedChunk<'a> {
    pub pixels: Range<usize>,
    /// The fitted pixels of the run, ascending.
    pub rows: &'a [usize],
}

impl FittedChunk<'_> {
    /// Writes `f(x)` for the values of `band` at the fitted pixels to the
    /// start of `dst`: a straight pass over the run when all of it is fitted.
    pub fn gather<T>(&self, band: &[f32], dst: &mut [T], f: impl Fn(f32) -> T) {
        if self.rows.len() == self.pixels.len() {
            for (d, &x) in dst.iter_mut().zip(&band[self.pixels.clone()]) {
                *d = f(x);
            }
        } else {
            for (d, &r) in dst.iter_mut().zip(self.rows) {
                *d = f(band[r]);
            }
        }
    }
}

/// Visits `span` in consecutive runs holding at most `max` fitted pixels of
/// `mask` each; runs without a fitted pixel are skipped.
pub fn for_each_chunk(
    mask: &[bool],
    span: Range<usize>,
    max: usize,
    mut visit: impl FnMut(&FittedChunk<'_>),
) {
    let mut rows: Vec<usize> = Vec::with_capacity(max);
    let mut start = span.start;
    while start < span.end {
        rows.clear();
        let mut end = start;
        while end < span.end && rows.len() < max {
            if mask[end] {
                rows.push(end);
            }
            end += 1;
        }
        if !rows.is_empty() {
            visit(&FittedChunk {
                pixels: start..end,
                rows: &rows,
            });
        }
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_cover_the_span_with_at_most_max_fitted_pixels() {
        let mask: Vec<bool> = (0..23).map(|p| p % 3 != 0 && p != 10).collect();
        let band: Vec<f32> = (0..23).map(|p| p as f32).collect();
        let mut seen = Vec::new();
        for_each_chunk(&mask, 2..23, 4, |c| {
            assert!(c.rows.len() <= 4);
            let mut out = vec![0f32; c.rows.len()];
            c.gather(&band, &mut out, |x| x * 2.0);
            assert_eq!(
                out,
                c.rows.iter().map(|&r| r as f32 * 2.0).collect::<Vec<_>>()
            );
            seen.extend_from_slice(c.rows);
        });
        let want: Vec<usize> = (2..23).filter(|&p| mask[p]).collect();
        assert_eq!(seen, want);
        // A fully fitted run takes the straight pass and gives the same.
        let all = vec![true; 23];
        for_each_chunk(&all, 0..23, 8, |c| {
            let mut out = vec![0f32; c.rows.len()];
            c.gather(&band, &mut out, |x| x);
            assert_eq!(out, band[c.pixels.clone()]);
        });
    }
}
