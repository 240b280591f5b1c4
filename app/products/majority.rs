//! A K x K majority (mode) filter on a class map: each mapped pixel takes
//! the most frequent class of the mapped pixels in the window around it
//! (the window clipped at the borders); a tie keeps the pixel's own class
//! when it is among the tied, else the smallest tied class. Unmapped pixels
//! (class 0) stay unmapped and are not counted.

/// The filtered map; `k` odd and at least 3 (an even k is rounded up).
pub fn majority_filter(map: &[u8], width: usize, height: usize, k: usize) -> Vec<u8> {
    let r = (k.max(3) | 1) / 2;
    let mut out = map.to_vec();
    let mut counts = [0u32; 256];
    for y in 0..height {
        for x in 0..width {
            let own = map[y * width + x];
            if own == 0 {
                continue;
            }
            counts.iter_mut().for_each(|c| *c = 0);
            for yy in y.saturating_sub(r)..(y + r + 1).min(height) {
                for &v in
                    &map[yy * width + x.saturating_sub(r)..yy * width + (x + r + 1).min(width)]
                {
                    counts[v as usize] += 1;
                }
            }
            let top = counts[1..].iter().copied().max().unwrap_or(0);
            out[y * width + x] = if counts[own as usize] == top {
                own
            } else {
                (1..=255u8)
                    .find(|&c| counts[c as usize] == top)
                    .unwrap_or(own)
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salt_goes_edges_stay_and_unmapped_is_kept() {
        // 7 x 5: left half class 1, right half class 2, one speck of 2 in
        // the 1s, a column of unmapped pixels at the right.
        let (w, h) = (7, 5);
        let mut map: Vec<u8> = (0..w * h)
            .map(|i| match i % w {
                0..=2 => 1,
                6 => 0,
                _ => 2,
            })
            .collect();
        map[2 * w + 1] = 2;
        let out = majority_filter(&map, w, h, 3);
        assert_eq!(out[2 * w + 1], 1, "the speck is gone");
        for y in 0..h {
            assert_eq!(out[y * w + 6], 0, "unmapped stays unmapped");
            assert_eq!(out[y * w], 1);
            assert_eq!(out[y * w + 4], 2);
        }
        // The straight edge between the halves is kept.
        assert_eq!(out[2 * w + 2], 1);
        assert_eq!(out[2 * w + 3], 2);
    }
}
