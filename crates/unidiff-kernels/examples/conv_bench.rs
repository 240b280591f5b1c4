//! Times one 3x3 convolution by im2col + GEMM and by Winograd's F(2) and
//! F(4), at the U-Net's shapes: `cargo run --release -p unidiff-kernels
//! --example conv_bench -- C_IN C_OUT N H W [ITERS]`.

use std::time::Instant;
use unidiff_kernels::{Act, Conv, Tile};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let [c_in, c_out, n, h, w] = match args[..] {
        [a, b, c, d, e, ..] => [a, b, c, d, e],
        _ => [64, 64, 64, 16, 16],
    };
    let iters = args.get(5).copied().unwrap_or(20);
    let values = |len: usize, seed: u32| -> Vec<f32> {
        (0..len)
            .map(|i| {
                ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32
                    / (1 << 24) as f32
                    - 0.5
            })
            .collect()
    };
    let x = Act {
        data: values(c_in * n * h * w, 1),
        c: c_in,
        n,
        h,
        w,
    };
    let Ok(conv) = Conv::new(
        values(c_out * c_in * 9, 2),
        values(c_out, 3),
        c_in,
        c_out,
        3,
        1,
    ) else {
        eprintln!("bad convolution");
        return;
    };
    let time = |name: &str, f: &dyn Fn() -> Act| {
        let _ = f();
        let start = Instant::now();
        for _ in 0..iters {
            let _ = f();
        }
        let ms = start.elapsed().as_secs_f64() * 1e3 / iters as f64;
        let gflop = 2.0 * (c_in * c_out * 9 * n * h * w) as f64 / 1e9;
        println!(
            "{name:8} {ms:8.3} ms  ({:.1} direct-GFLOP/s)",
            gflop / ms * 1e3
        );
    };
    // A seventh argument runs one of them: 0 im2col, 2 F(2), 4 F(4).
    let only = args.get(6).copied();
    println!("conv {c_in}->{c_out}, {n}x{h}x{w}");
    if only.is_none_or(|o| o == 0) {
        time("im2col", &|| conv.forward_im2col(&x));
    }
    if only.is_none_or(|o| o == 2) {
        time("F2", &|| conv.forward_tile(&x, Tile::F2));
    }
    if only.is_none_or(|o| o == 4) {
        time("F4", &|| conv.forward_tile(&x, Tile::F4));
    }
}
