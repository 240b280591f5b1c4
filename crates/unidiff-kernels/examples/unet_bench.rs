//! Times the frozen U-Net's inference forward of the tiny fixture's layout
//! (tests/fixtures/adm_tiny: 32 channels, mult 1-2-2, attention at 16x16
//! and 8x8, heads of 16 channels) on deterministic pseudo-random weights,
//! to `output_blocks[8]` as Stage B runs it, without the app around it:
//! `cargo run --release -p unidiff-kernels --example unet_bench -- [BATCH]
//! [ITERS] [SPLIT: 1 = UNet::forward_split]`. For profiling the kernels (perf record) where the full
//! bench's build is not at hand; `unidiff-gpu-bench --backend cpu` is the
//! benchmark of record.

use std::time::Instant;
use unidiff_kernels::{Act, Attention, Block, Conv, Linear, Norm, ResBlock, Resample, UNet};

/// Deterministic values in [-scale, scale).
struct Values(u32);

impl Values {
    fn take(&mut self, len: usize, scale: f32) -> Vec<f32> {
        (0..len)
            .map(|_| {
                self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((self.0 >> 8) as f32 / (1 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    fn conv(&mut self, c_in: usize, c_out: usize, k: usize) -> Conv {
        let w = self.take(c_out * c_in * k * k, 0.05);
        let b = self.take(c_out, 0.02);
        Conv::new(w, b, c_in, c_out, k, k / 2).unwrap_or_else(|e| panic!("{e}"))
    }

    fn norm(&mut self, c: usize) -> Norm {
        let g = self.take(c, 0.1).iter().map(|v| 1.0 + v).collect();
        Norm::new(g, self.take(c, 0.02)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn linear(&mut self, d_in: usize, d_out: usize) -> Linear {
        let w = self.take(d_in * d_out, 0.05);
        Linear::new(w, self.take(d_out, 0.02), d_in, d_out).unwrap_or_else(|e| panic!("{e}"))
    }

    fn res(&mut self, c_in: usize, c_out: usize, resample: Resample) -> ResBlock {
        ResBlock {
            in_norm: self.norm(c_in),
            in_conv: self.conv(c_in, c_out, 3),
            emb: self.linear(128, 2 * c_out),
            out_norm: self.norm(c_out),
            out_conv: self.conv(c_out, c_out, 3),
            skip: (c_in != c_out).then(|| self.conv(c_in, c_out, 1)),
            resample,
        }
    }

    fn attn(&mut self, c: usize) -> Attention {
        Attention {
            norm: self.norm(c),
            qkv: self.conv(c, 3 * c, 1),
            proj: self.conv(c, c, 1),
            heads: c / 16,
        }
    }

    fn block(&mut self, res: (usize, usize), attn: bool, up: bool) -> Block {
        let c = res.1;
        Block {
            conv: None,
            res: Some(self.res(res.0, res.1, Resample::None)),
            attn: attn.then(|| self.attn(c)),
            res2: up.then(|| self.res(c, c, Resample::Up)),
        }
    }
}

fn tiny_unet() -> UNet {
    let mut v = Values(7);
    let mut input_blocks = vec![Block {
        conv: Some(v.conv(3, 32, 3)),
        res: None,
        attn: None,
        res2: None,
    }];
    for (c_in, c_out, attn) in [(32, 32, false), (32, 32, false)] {
        input_blocks.push(v.block((c_in, c_out), attn, false));
    }
    input_blocks.push(Block {
        conv: None,
        res: Some(v.res(32, 32, Resample::Down)),
        attn: None,
        res2: None,
    });
    for (c_in, c_out) in [(32, 64), (64, 64)] {
        input_blocks.push(v.block((c_in, c_out), true, false));
    }
    input_blocks.push(Block {
        conv: None,
        res: Some(v.res(64, 64, Resample::Down)),
        attn: None,
        res2: None,
    });
    for _ in 0..2 {
        input_blocks.push(v.block((64, 64), true, false));
    }
    let middle_block = Block {
        conv: None,
        res: Some(v.res(64, 64, Resample::None)),
        attn: Some(v.attn(64)),
        res2: Some(v.res(64, 64, Resample::None)),
    };
    let layout = [
        (128, 64, true, false),
        (128, 64, true, false),
        (128, 64, true, true),
        (128, 64, true, false),
        (128, 64, true, false),
        (96, 64, true, true),
        (96, 32, false, false),
        (64, 32, false, false),
        (64, 32, false, false),
    ];
    let output_blocks = layout
        .iter()
        .map(|&(c_in, c_out, attn, up)| v.block((c_in, c_out), attn, up))
        .collect();
    UNet {
        time_embed_0: v.linear(32, 128),
        time_embed_2: v.linear(128, 128),
        label_emb: Some(v.take(5 * 128, 0.5)),
        input_blocks,
        middle_block,
        output_blocks,
        out_norm: v.norm(32),
        out_conv: v.conv(32, 6, 3),
        model_channels: 32,
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let batch = args.first().copied().unwrap_or(64);
    let iters = args.get(1).copied().unwrap_or(10);
    let unet = tiny_unet();
    let x = Act {
        data: Values(11).take(3 * batch * 32 * 32, 1.0),
        c: 3,
        n: batch,
        h: 32,
        w: 32,
    };
    let t = vec![100i64; batch];
    let y = vec![0i64; batch];
    let emb = unet.embedding(&t, &y).unwrap_or_else(|e| panic!("{e}"));
    // A third argument 1: the batch split into groups side by side.
    let split = args.get(2) == Some(&1);
    let run = || {
        if split {
            unet.forward_split(x.clone(), &emb, Some(8))
        } else {
            unet.forward_blocks(x.clone(), &emb, Some(8), &mut |_, _| {})
        }
    };
    let _ = run();
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let start = Instant::now();
        let out = run();
        times.push(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(out.c, 32);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "tiny U-Net to output_blocks[8], batch {batch}: median {:.1} ms, min {:.1} ms over {iters}",
        times[iters / 2],
        times[0]
    );
}
