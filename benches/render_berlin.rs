//! Benchmark of the scene-core hot paths on a Berlin-size cube
//! (1723 x 476 x 244 float32, seeded synthetic spectra): the p2/p98 of one band
//! and the whole PCA (fit + projection). It also writes the cube as an ENVI
//! file so that `scripts/bench_reference.py` times numpy / scikit-learn on the
//! same values and `unidiff-studio render` can be measured for peak memory.
//!
//! Run: `cargo bench --bench render_berlin -- [OUT_DIR]` (default
//! /tmp/unidiff_bench); prints one JSON line.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

use std::io::Write;
use std::time::Instant;

use unidiff_studio::products::pca::{ScatterPath, fit_pca_with, project};
use unidiff_studio::products::percentile::percentiles_f32;
use unidiff_studio::scene::{HsiCube, PixelGrid};

const H: usize = 1723;
const W: usize = 476;
const B: usize = 244;

/// splitmix64: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Five smooth endmember spectra mixed by smooth abundance fields, plus noise,
/// scaled like reflectance x 1e4.
fn synthetic_cube(seed: u64) -> Vec<f32> {
    let mut rng = Rng(seed);
    let endmembers: Vec<Vec<f64>> = (0..5)
        .map(|e| {
            let (a, f, p) = (
                rng.uniform(),
                1.0 + rng.uniform() * 4.0,
                rng.uniform() * 6.0,
            );
            (0..B)
                .map(|b| {
                    let x = b as f64 / B as f64;
                    1000.0 + 3000.0 * (a + 0.5 * (f * x * 6.3 + p).sin()).abs() + 200.0 * e as f64
                })
                .collect()
        })
        .collect();
    let centres: Vec<(f64, f64, f64)> = (0..5)
        .map(|_| {
            (
                rng.uniform() * H as f64,
                rng.uniform() * W as f64,
                80.0 + rng.uniform() * 300.0,
            )
        })
        .collect();
    let mut abundance = vec![0f64; H * W * 5];
    for r in 0..H {
        for c in 0..W {
            let mut sum = 0.0;
            for (e, (cr, cc, s)) in centres.iter().enumerate() {
                let d2 = ((r as f64 - cr).powi(2) + (c as f64 - cc).powi(2)) / (s * s);
                let v = (-d2).exp() + 0.05;
                abundance[(r * W + c) * 5 + e] = v;
                sum += v;
            }
            for e in 0..5 {
                abundance[(r * W + c) * 5 + e] /= sum;
            }
        }
    }
    let mut data = vec![0f32; B * H * W];
    for (b, band) in data.chunks_mut(H * W).enumerate() {
        for (i, v) in band.iter_mut().enumerate() {
            let mut x = 0.0;
            for (e, spectrum) in endmembers.iter().enumerate() {
                x += abundance[i * 5 + e] * spectrum[b];
            }
            *v = (x + (rng.uniform() - 0.5) * 100.0).round() as f32;
        }
    }
    data
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> std::io::Result<()> {
    let out = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "/tmp/unidiff_bench".to_string());
    std::fs::create_dir_all(&out)?;
    let data = synthetic_cube(20261127);
    let bin = format!("{out}/berlin_synth.bin");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&bin)?);
        for v in &data {
            f.write_all(&v.to_le_bytes())?;
        }
    }
    std::fs::write(
        format!("{out}/berlin_synth.hdr"),
        format!(
            "ENVI\nsamples = {W}\nlines = {H}\nbands = {B}\nheader offset = 0\nfile type = ENVI Standard\ndata type = 4\ninterleave = bsq\nbyte order = 0\n"
        ),
    )?;
    let cube = HsiCube {
        grid: PixelGrid::plain(W, H),
        bands: B,
        data,
        wavelengths_nm: None,
        band_names: vec![String::new(); B],
    };
    let mut pct = Vec::new();
    let mut p = vec![];
    for _ in 0..7 {
        let t = Instant::now();
        p = percentiles_f32(cube.band(40), &[2.0, 98.0])
            .map(|x| x.0)
            .unwrap_or_default();
        pct.push(t.elapsed().as_secs_f64());
    }
    // The app's path (exact integer sums: the cube is integer-valued, like
    // reflectance x 1e4) and the f64 product that non-integer cubes take.
    let mut timings = Vec::new();
    let mut evr = vec![];
    let mut scatter = Vec::new();
    for path in [ScatterPath::Auto, ScatterPath::F64] {
        let mut runs = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let (fit, mask) = fit_pca_with(&cube, 3, path).expect("PCA");
            let scores = project(&cube, &fit, &mask);
            runs.push(t.elapsed().as_secs_f64());
            assert_eq!(scores.len(), 3);
            evr.push(fit.explained_variance_ratio);
            scatter.push(fit.scatter);
        }
        timings.push(median(runs));
    }
    println!(
        "{}",
        serde_json::json!({
            "cube": [H, W, B],
            "threads": rayon::current_num_threads(),
            "percentile_band40_s": median(pct),
            "percentile_band40": p,
            "pca_fit_project_s": timings[0],
            "pca_fit_project_f64_s": timings[1],
            "pca_scatter": [scatter[0], scatter[3]],
            "pca_explained_variance_ratio": [&evr[0], &evr[3]],
            "envi": bin,
        })
    );
    Ok(())
}
