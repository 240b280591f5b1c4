//! The cosine noise schedule (T = 1000) and the arrays guided-diffusion
//! derives from it, in f64 as the reference keeps them; a value indexed at
//! timestep t is cast to f32 at use, as `_extract_into_tensor` does.
//!
//! The reference scripts build a `SpacedDiffusion` over all steps, which
//! recomputes the betas from alphas_cumprod; we do the same.

/// The diffusion schedule's arrays, indexed by timestep.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub betas: Vec<f64>,
    pub alphas_cumprod: Vec<f64>,
    pub alphas_cumprod_prev: Vec<f64>,
    pub alphas_cumprod_next: Vec<f64>,
    pub sqrt_alphas_cumprod: Vec<f64>,
    pub sqrt_one_minus_alphas_cumprod: Vec<f64>,
    pub log_one_minus_alphas_cumprod: Vec<f64>,
    pub sqrt_recip_alphas_cumprod: Vec<f64>,
    pub sqrt_recipm1_alphas_cumprod: Vec<f64>,
    pub posterior_variance: Vec<f64>,
    pub posterior_log_variance_clipped: Vec<f64>,
    pub posterior_mean_coef1: Vec<f64>,
    pub posterior_mean_coef2: Vec<f64>,
    /// log(betas), the upper end of the learned log-variance range.
    pub log_betas: Vec<f64>,
}

fn alpha_bar(t: f64) -> f64 {
    ((t + 0.008) / 1.008 * std::f64::consts::PI / 2.0)
        .cos()
        .powi(2)
}

/// guided-diffusion's `betas_for_alpha_bar` with the cosine alpha_bar.
pub fn cosine_betas(steps: usize) -> Vec<f64> {
    (0..steps)
        .map(|i| {
            let t1 = i as f64 / steps as f64;
            let t2 = (i + 1) as f64 / steps as f64;
            (1.0 - alpha_bar(t2) / alpha_bar(t1)).min(0.999)
        })
        .collect()
}

impl Schedule {
    /// The schedule of `SpacedDiffusion(use_timesteps = all, cosine betas)`.
    pub fn cosine(steps: usize) -> Self {
        let base = Self::from_betas(cosine_betas(steps));
        // SpacedDiffusion: betas recomputed from alphas_cumprod.
        let mut last = 1.0;
        let betas = base
            .alphas_cumprod
            .iter()
            .map(|&ac| {
                let b = 1.0 - ac / last;
                last = ac;
                b
            })
            .collect();
        Self::from_betas(betas)
    }

    /// guided-diffusion's `GaussianDiffusion.__init__` arrays.
    pub fn from_betas(betas: Vec<f64>) -> Self {
        let n = betas.len();
        let mut alphas_cumprod = Vec::with_capacity(n);
        let mut acc = 1.0;
        for b in &betas {
            acc *= 1.0 - b;
            alphas_cumprod.push(acc);
        }
        let alphas_cumprod_prev: Vec<f64> = std::iter::once(1.0)
            .chain(alphas_cumprod[..n - 1].iter().copied())
            .collect();
        let alphas_cumprod_next: Vec<f64> = alphas_cumprod[1..]
            .iter()
            .copied()
            .chain(std::iter::once(0.0))
            .collect();
        let map = |f: &dyn Fn(usize) -> f64| (0..n).map(f).collect::<Vec<f64>>();
        let ac = &alphas_cumprod;
        let acp = &alphas_cumprod_prev;
        let posterior_variance = map(&|i| betas[i] * (1.0 - acp[i]) / (1.0 - ac[i]));
        let posterior_log_variance_clipped = map(&|i| {
            let v = if i == 0 {
                posterior_variance[1]
            } else {
                posterior_variance[i]
            };
            v.ln()
        });
        Self {
            sqrt_alphas_cumprod: map(&|i| ac[i].sqrt()),
            sqrt_one_minus_alphas_cumprod: map(&|i| (1.0 - ac[i]).sqrt()),
            log_one_minus_alphas_cumprod: map(&|i| (1.0 - ac[i]).ln()),
            sqrt_recip_alphas_cumprod: map(&|i| (1.0 / ac[i]).sqrt()),
            sqrt_recipm1_alphas_cumprod: map(&|i| (1.0 / ac[i] - 1.0).sqrt()),
            posterior_mean_coef1: map(&|i| betas[i] * acp[i].sqrt() / (1.0 - ac[i])),
            posterior_mean_coef2: map(&|i| {
                (1.0 - acp[i]) * (1.0 - betas[i]).sqrt() / (1.0 - ac[i])
            }),
            log_betas: betas.iter().map(|b| b.ln()).collect(),
            posterior_log_variance_clipped,
            posterior_variance,
            alphas_cumprod_prev,
            alphas_cumprod_next,
            alphas_cumprod,
            betas,
        }
    }

    pub fn steps(&self) -> usize {
        self.betas.len()
    }

    /// The named arrays, in the reference fixture's names.
    pub fn named(&self) -> Vec<(&'static str, &[f64])> {
        vec![
            ("betas", &self.betas),
            ("alphas_cumprod", &self.alphas_cumprod),
            ("alphas_cumprod_prev", &self.alphas_cumprod_prev),
            ("alphas_cumprod_next", &self.alphas_cumprod_next),
            ("sqrt_alphas_cumprod", &self.sqrt_alphas_cumprod),
            (
                "sqrt_one_minus_alphas_cumprod",
                &self.sqrt_one_minus_alphas_cumprod,
            ),
            (
                "log_one_minus_alphas_cumprod",
                &self.log_one_minus_alphas_cumprod,
            ),
            ("sqrt_recip_alphas_cumprod", &self.sqrt_recip_alphas_cumprod),
            (
                "sqrt_recipm1_alphas_cumprod",
                &self.sqrt_recipm1_alphas_cumprod,
            ),
            ("posterior_variance", &self.posterior_variance),
            (
                "posterior_log_variance_clipped",
                &self.posterior_log_variance_clipped,
            ),
            ("posterior_mean_coef1", &self.posterior_mean_coef1),
            ("posterior_mean_coef2", &self.posterior_mean_coef2),
        ]
    }
}
