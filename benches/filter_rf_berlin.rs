//! Benchmark of the classical reference classifier (`filter-rf`) on a
//! Berlin-size scene: 1723 x 476 pixels, 248 values each (244 HSI bands and 4
//! SAR values, seeded smooth fields plus noise), 8 classes with 200 training
//! pixels each (the evaluation protocol's cap). Times the filter features
//! (standardisation, PCA to 10 components, the filter bank), the forest's fit
//! (200 trees) and the prediction of every pixel.
//!
//! Run: `cargo bench --bench filter_rf_berlin`; prints one JSON line.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

use std::time::Instant;

use unidiff_studio::pipeline::baseline::{ForestConfig, PixelFeatures, fit_forest};
use unidiff_studio::pipeline::filter_features::filter_features;
use unidiff_studio::scene::{LabelImage, PixelGrid};

const H: usize = 1723;
const W: usize = 476;
const D: usize = 248;
const CLASSES: usize = 8;

/// splitmix64: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn main() {
    let mut rng = Rng(7);
    // The class of a pixel: bands of a smooth field; each class its spectrum.
    let class_of = |r: usize, c: usize| -> usize {
        let v = ((r as f64 / 97.0).sin() + (c as f64 / 41.0).cos() + 2.0) / 4.0;
        ((v * CLASSES as f64) as usize).min(CLASSES - 1)
    };
    let spectra: Vec<Vec<f32>> = (0..CLASSES)
        .map(|k| {
            (0..D)
                .map(|b| {
                    (1000.0 + 400.0 * k as f64 + 300.0 * (b as f64 / 20.0 + k as f64).sin()) as f32
                })
                .collect()
        })
        .collect();
    let mut values = vec![0f32; H * W * D];
    for r in 0..H {
        for c in 0..W {
            let k = class_of(r, c);
            let px = &mut values[(r * W + c) * D..(r * W + c + 1) * D];
            for (v, s) in px.iter_mut().zip(&spectra[k]) {
                *v = s + (rng.uniform() * 800.0) as f32;
            }
        }
    }
    let raw = PixelFeatures {
        values,
        dim: D,
        names: (0..D).map(|b| format!("value {b}")).collect(),
        empty: vec![false; H * W],
    };
    let mut train = LabelImage {
        grid: PixelGrid::plain(W, H),
        data: vec![0; H * W],
    };
    let mut per_class = [0usize; CLASSES];
    while per_class.iter().any(|&n| n < 200) {
        let i = ((rng.uniform() * (H * W) as f64) as usize).min(H * W - 1);
        let k = class_of(i / W, i % W);
        if per_class[k] < 200 && train.data[i] == 0 {
            train.data[i] = k as u8 + 1;
            per_class[k] += 1;
        }
    }

    let t0 = Instant::now();
    let features = filter_features(&raw, &train).unwrap();
    let s_features = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let forest = fit_forest(
        &features,
        &train,
        &ForestConfig {
            trees: 200,
            ..ForestConfig::default()
        },
    )
    .unwrap();
    let s_fit = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let map = forest.predict_map(&features).unwrap();
    let s_predict = t2.elapsed().as_secs_f64();
    let correct = map
        .iter()
        .enumerate()
        .filter(|&(i, &p)| p as usize == class_of(i / W, i % W) + 1)
        .count();
    println!(
        "{{\"scene\": \"{H} x {W} x {D}\", \"features\": {}, \"threads\": {}, \"seconds_filter_features\": {s_features:.2}, \"seconds_fit_200_trees\": {s_fit:.2}, \"seconds_predict\": {s_predict:.2}, \"seconds_total\": {:.2}, \"accuracy_on_synthetic\": {:.4}}}",
        features.names().len(),
        rayon::current_num_threads(),
        s_features + s_fit + s_predict,
        correct as f64 / map.len() as f64
    );
}
