//! What the diffusion timestep does to an input: x_t = sqrt(a_t) x_0 +
//! sqrt(1 - a_t) eps on a whole rendering (network range [-1, 1]), with one
//! seeded Gaussian noise image, for the app's timestep explorer.

use crate::model::schedule::Schedule;
use crate::products::Rgb8Image;
use crate::products::stretch::network_from_u8;

/// splitmix64 then Box-Muller: seeded standard normal samples.
struct Normal(u64);

impl Normal {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn sample(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// The rendering noised to timestep `t` of the 1000-step cosine schedule,
/// shown back in 8 bits ((x_t + 1) / 2, clipped).
pub fn noised_rendering(image: &Rgb8Image, t: usize, seed: u64) -> Rgb8Image {
    let schedule = Schedule::cosine(1000);
    let t = t.min(schedule.steps() - 1);
    let (a, b) = (
        schedule.sqrt_alphas_cumprod[t],
        schedule.sqrt_one_minus_alphas_cumprod[t],
    );
    let mut noise = Normal(seed);
    let data = image
        .data
        .iter()
        .map(|&v| {
            let x = a * network_from_u8(v) as f64 + b * noise.sample();
            (((x + 1.0) / 2.0).clamp(0.0, 1.0) * 255.0).round() as u8
        })
        .collect();
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

    fn mean_abs_diff(a: &Rgb8Image, b: &Rgb8Image) -> f64 {
        let n = a.data.len() as f64;
        a.data
            .iter()
            .zip(&b.data)
            .map(|(x, y)| (*x as f64 - *y as f64).abs())
            .sum::<f64>()
            / n
    }

    #[test]
    fn more_noise_with_larger_t_and_the_same_noise_for_the_same_seed() {
        let data: Vec<u8> = (0..64 * 64 * 3).map(|i| (i * 7 % 256) as u8).collect();
        let image = Rgb8Image {
            width: 64,
            height: 64,
            data,
            stretch: Vec::new(),
        };
        let at = |t| noised_rendering(&image, t, 3);
        let d: Vec<f64> = [0, 100, 400, 900]
            .iter()
            .map(|&t| mean_abs_diff(&image, &at(t)))
            .collect();
        assert!(d[0] < 2.0, "t = 0 is the input: {}", d[0]);
        assert!(d[0] < d[1] && d[1] < d[2] && d[2] < d[3], "{d:?}");
        assert_eq!(at(400).data, at(400).data);
        assert_ne!(noised_rendering(&image, 400, 4).data, at(400).data);
    }
}
