//! The validation sample that makes a map's area-adjusted accuracy honest
//! (Olofsson et al. 2014, section 5): a stratified random sample of pixels
//! with the map classes as strata, `per_class` points from each (every
//! pixel of a class smaller than that), drawn without replacement and
//! seeded. The allocation is kept with the points, because the estimator
//! needs each stratum's mapped area and its number of points.
//!
//! One pass over the map whatever its size: a reservoir per class
//! (Vitter's algorithm R), so memory is the sample, not the map.

use crate::base::NormalRng;
use crate::scene::sample::{SamplePoint, StratifiedSample, StratumAllocation};

/// Draws `per_class` pixels of each class of `map` (row-major, `width`
/// columns; 0 = unmapped, not sampled), uniformly without replacement.
pub fn stratified_sample(
    map: &[u8],
    width: usize,
    per_class: usize,
    seed: u64,
) -> StratifiedSample {
    let mut rng = NormalRng::new(seed);
    let mut seen = [0usize; 256];
    let mut reservoirs: Vec<Vec<usize>> = vec![Vec::new(); 256];
    for (i, &v) in map.iter().enumerate() {
        if v == 0 {
            continue;
        }
        let k = usize::from(v);
        seen[k] += 1;
        let reservoir = &mut reservoirs[k];
        if reservoir.len() < per_class {
            reservoir.push(i);
        } else {
            // Keep pixel i with probability per_class / seen, in place of
            // a uniformly chosen one.
            let j = (rng.uniform() * seen[k] as f64) as usize;
            if j < per_class {
                reservoir[j] = i;
            }
        }
    }
    let mut strata = Vec::new();
    let mut points = Vec::new();
    let mut notes = Vec::new();
    for (k, reservoir) in reservoirs.iter_mut().enumerate().skip(1) {
        if seen[k] == 0 {
            continue;
        }
        let value = k as u8;
        reservoir.sort_unstable();
        if reservoir.len() < per_class {
            notes.push(format!(
                "class {value} has only {} mapped pixels: all of them are in the sample",
                seen[k]
            ));
        }
        if reservoir.len() < 2 {
            notes.push(format!(
                "class {value} has fewer than 2 sample points: its user's accuracy will have no standard error"
            ));
        }
        strata.push(StratumAllocation {
            value,
            pixels: seen[k],
            points: reservoir.len(),
        });
        points.extend(reservoir.iter().map(|&i| SamplePoint {
            row: i / width.max(1),
            col: i % width.max(1),
            stratum: value,
        }));
    }
    StratifiedSample {
        seed,
        per_class,
        strata,
        points,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_gets_its_points_from_its_own_pixels() {
        let (w, h) = (40usize, 30usize);
        // Class 1: 1,000 px, class 2: 180, class 3: 19, class 5: 1; 0 elsewhere.
        let mut map = vec![0u8; w * h];
        for (i, v) in map.iter_mut().enumerate() {
            *v = match i {
                0..1000 => 1,
                1000..1180 => 2,
                1180..1199 => 3,
                1199 => 5,
                _ => 0,
            };
        }
        let s = stratified_sample(&map, w, 50, 7);
        let alloc: Vec<(u8, usize, usize)> = s
            .strata
            .iter()
            .map(|a| (a.value, a.pixels, a.points))
            .collect();
        assert_eq!(alloc, [(1, 1000, 50), (2, 180, 50), (3, 19, 19), (5, 1, 1)]);
        assert_eq!(s.points.len(), 120);
        for p in &s.points {
            assert_eq!(map[p.row * w + p.col], p.stratum);
        }
        let mut pixels: Vec<(usize, usize)> = s.points.iter().map(|p| (p.row, p.col)).collect();
        pixels.dedup();
        assert_eq!(pixels.len(), 120, "no pixel twice");
        assert_eq!(s.notes.len(), 3, "{:?}", s.notes);
        assert_eq!(stratified_sample(&map, w, 50, 7), s, "seeded");
        assert_ne!(stratified_sample(&map, w, 50, 8).points, s.points);
    }

    /// Every pixel of a stratum is equally likely: over many seeds each of
    /// 100 pixels is drawn about 10 times in 100 draws of 10.
    #[test]
    fn the_draw_is_uniform_within_a_stratum() {
        let map = vec![1u8; 100];
        let mut hits = [0usize; 100];
        for seed in 0..100 {
            for p in stratified_sample(&map, 10, 10, seed).points {
                hits[p.row * 10 + p.col] += 1;
            }
        }
        let (lo, hi) = (hits.iter().min().unwrap(), hits.iter().max().unwrap());
        // Binomial(100, 0.1): mean 10, sd 3; all 100 within 0..=22.
        assert!(*lo >= 1 && *hi <= 22, "{lo}..{hi}");
        assert_eq!(hits.iter().sum::<usize>(), 1000);
    }
}
