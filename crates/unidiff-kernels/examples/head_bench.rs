//! Times the head's class probabilities of patch features (the live
//! update's prediction pass): the ImageNet-64 layout's 1152 -> 128 -> 32 ->
//! 2 head over 64 x 64 patches, patches on both threads as the app runs
//! them. `cargo run --release -p unidiff-kernels --example head_bench`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark stops on the first surprise

use std::time::Instant;

use unidiff_kernels::{HeadLinear, HeadMlp, HeadNorm};

fn lcg(state: &mut u64) -> f32 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
}

fn linear(d_in: usize, d_out: usize, s: &mut u64) -> HeadLinear {
    HeadLinear {
        weight: (0..d_in * d_out).map(|_| lcg(s) * 0.1).collect(),
        bias: (0..d_out).map(|_| lcg(s) * 0.1).collect(),
        d_in,
        d_out,
    }
}

fn norm(c: usize, s: &mut u64) -> HeadNorm {
    HeadNorm {
        gamma: (0..c).map(|_| 1.0 + lcg(s) * 0.1).collect(),
        beta: (0..c).map(|_| lcg(s) * 0.1).collect(),
        running_mean: (0..c).map(|_| lcg(s)).collect(),
        running_var: (0..c).map(|_| 1.0 + lcg(s).abs()).collect(),
        momentum: 0.1,
        epsilon: 1e-5,
    }
}

fn main() {
    let mut s = 7u64;
    let (d, pp, patches) = (1152, 64 * 64, 64);
    let mlp = HeadMlp {
        hidden: vec![
            (linear(d, 128, &mut s), norm(128, &mut s)),
            (linear(128, 32, &mut s), norm(32, &mut s)),
        ],
        out: linear(32, 2, &mut s),
    };
    let mean: Vec<f32> = (0..d).map(|_| lcg(&mut s) * 4.0).collect();
    let inv_std: Vec<f32> = (0..d).map(|_| 1.0 / (0.5 + lcg(&mut s).abs())).collect();
    let features: Vec<Vec<f32>> = (0..patches)
        .map(|_| (0..d * pp).map(|_| lcg(&mut s) * 3.0).collect())
        .collect();
    for round in 0..3 {
        let t0 = Instant::now();
        let sums: Vec<f32> = std::thread::scope(|scope| {
            let halves: Vec<_> = features
                .chunks(patches / 2)
                .map(|half| {
                    let (mlp, mean, inv_std) = (&mlp, &mean, &inv_std);
                    scope.spawn(move || {
                        let mut scratch = Vec::new();
                        half.iter()
                            .map(|f| mlp.column_probabilities(f, mean, inv_std, &mut scratch)[0])
                            .sum::<f32>()
                    })
                })
                .collect();
            halves.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "round {round}: {patches} patches in {secs:.3} s ({:.2} ms a patch, {:.1} GFLOP/s); check {:.6}",
            secs * 1e3 / patches as f64,
            patches as f64 * pp as f64 * 2.0 * (d * 128 + 128 * 32 + 32 * 2) as f64 / secs / 1e9,
            sums.iter().sum::<f32>()
        );
    }
}
