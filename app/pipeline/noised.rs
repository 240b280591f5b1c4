//! What the diffusion timestep does to an input, exactly as Stage B makes it:
//! x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps on a rendering in the network's
//! range [-1, 1], with Stage B's one seeded noise image eps (3 x P x P, drawn
//! from the run's seed) on every patch. The app's timestep explorer shows it.

use crate::base::NormalRng;
use crate::model::schedule::Schedule;
use crate::products::Rgb8Image;
use crate::products::stretch::network_from_u8;

/// Stage B's noise image: 3 x `patch` x `patch` standard normal values from
/// `seed`, channel-major, shared by every patch and modality.
pub fn stage_b_noise(seed: u64, patch: usize) -> Vec<f32> {
    let mut rng = NormalRng::new(seed);
    (0..3 * patch * patch)
        .map(|_| rng.normal() as f32)
        .collect()
}

/// The rendering as Stage B's network input at timestep `t` of the
/// 1000-step cosine schedule, Stage B's noise image tiled from the scene's
/// top-left corner (exact for every patch whose corner is a multiple of
/// `patch`, the stride-P patches), shown back in 8 bits ((x_t + 1) / 2,
/// clipped).
pub fn stage_b_input(image: &Rgb8Image, t: usize, seed: u64, patch: usize) -> Rgb8Image {
    let schedule = Schedule::cosine(1000);
    let t = t.min(schedule.steps() - 1);
    let (a, b) = (
        schedule.sqrt_alphas_cumprod[t] as f32,
        schedule.sqrt_one_minus_alphas_cumprod[t] as f32,
    );
    let patch = patch.max(1);
    let noise = stage_b_noise(seed, patch);
    let mut data = vec![0u8; image.data.len()];
    for (i, (out, &v)) in data.iter_mut().zip(&image.data).enumerate() {
        let (pixel, c) = (i / 3, i % 3);
        let (row, col) = (pixel / image.width.max(1), pixel % image.width.max(1));
        let eps = noise[c * patch * patch + (row % patch) * patch + col % patch];
        let x = a * network_from_u8(v) + b * eps;
        *out = (((x + 1.0) / 2.0).clamp(0.0, 1.0) * 255.0).round() as u8;
    }
    Rgb8Image {
        width: image.width,
        height: image.height,
        data,
        stretch: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::loss::q_sample;
    use burn::backend::NdArray;
    use burn::prelude::*;
    use burn::tensor::TensorData;

    fn mean_abs_diff(a: &Rgb8Image, b: &Rgb8Image) -> f64 {
        let n = a.data.len() as f64;
        a.data
            .iter()
            .zip(&b.data)
            .map(|(x, y)| (*x as f64 - *y as f64).abs())
            .sum::<f64>()
            / n
    }

    fn ramp(width: usize, height: usize) -> Rgb8Image {
        Rgb8Image {
            width,
            height,
            data: (0..width * height * 3)
                .map(|i| (i * 7 % 256) as u8)
                .collect(),
            stretch: Vec::new(),
        }
    }

    #[test]
    fn more_noise_with_larger_t_and_the_same_noise_for_the_same_seed() {
        let image = ramp(64, 64);
        let at = |t| stage_b_input(&image, t, 3, 32);
        let d: Vec<f64> = [0, 100, 400, 900]
            .iter()
            .map(|&t| mean_abs_diff(&image, &at(t)))
            .collect();
        assert!(d[0] < 2.0, "t = 0 is the input: {}", d[0]);
        assert!(d[0] < d[1] && d[1] < d[2] && d[2] < d[3], "{d:?}");
        assert_eq!(at(400).data, at(400).data);
        assert_ne!(stage_b_input(&image, 400, 4, 32).data, at(400).data);
    }

    /// The explorer's patch equals q_sample (Stage B's noising) of the same
    /// patch with Stage B's noise tensor, to 8-bit rounding.
    #[test]
    fn a_patch_of_the_explorer_is_stage_bs_x_t() {
        let (p, t, seed) = (8usize, 300usize, 5u64);
        let image = ramp(2 * p, p);
        let shown = stage_b_input(&image, t, seed, p);
        let device = Default::default();
        // The second patch (columns p..2p), channel-major in network range.
        let mut x0 = vec![0f32; 3 * p * p];
        for c in 0..3 {
            for y in 0..p {
                for x in 0..p {
                    let v = image.data[3 * (y * image.width + p + x) + c];
                    x0[c * p * p + y * p + x] = network_from_u8(v);
                }
            }
        }
        let x0 = Tensor::<NdArray, 4>::from_data(TensorData::new(x0, [1, 3, p, p]), &device);
        let noise = Tensor::<NdArray, 4>::from_data(
            TensorData::new(stage_b_noise(seed, p), [1, 3, p, p]),
            &device,
        );
        let x_t: Vec<f32> = q_sample(&Schedule::cosine(1000), x0, &[t as i64], noise)
            .into_data()
            .to_vec()
            .unwrap();
        for c in 0..3 {
            for y in 0..p {
                for x in 0..p {
                    let want = (((x_t[c * p * p + y * p + x] + 1.0) / 2.0).clamp(0.0, 1.0) * 255.0)
                        .round() as i32;
                    let got = shown.data[3 * (y * image.width + p + x) + c] as i32;
                    assert!(
                        (got - want).abs() <= 1,
                        "c {c} y {y} x {x}: {got} vs {want}"
                    );
                }
            }
        }
    }
}
