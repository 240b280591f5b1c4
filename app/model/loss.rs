//! guided-diffusion's training loss for a model with learned-range variance
//! predicting epsilon: per sample, mse = mean (eps - eps_hat)^2 plus the
//! variational-bound term vb (KL to the true posterior for t > 0, the
//! discretised-Gaussian decoder NLL at t = 0, in bits), computed with the
//! predicted mean detached so that vb trains only the variance.

use burn::prelude::*;
use burn::tensor::TensorData;

use super::schedule::Schedule;

/// The loss to train with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// mse + vb (the default, as the reference trains).
    Hybrid,
    /// mse only.
    Mse,
}

/// Per-sample loss terms, each (B,).
pub struct LossTerms<B: Backend> {
    pub mse: Tensor<B, 1>,
    pub vb: Tensor<B, 1>,
    pub loss: Tensor<B, 1>,
}

/// Per-sample schedule values at t, cast to f32, shaped (B, 1, 1, 1).
pub fn extract<B: Backend>(arr: &[f64], t: &[i64], device: &B::Device) -> Tensor<B, 4> {
    let v: Vec<f32> = t.iter().map(|&i| arr[i as usize] as f32).collect();
    Tensor::from_data(TensorData::new(v, [t.len(), 1, 1, 1]), device)
}

/// x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise.
pub fn q_sample<B: Backend>(
    s: &Schedule,
    x0: Tensor<B, 4>,
    t: &[i64],
    noise: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let d = x0.device();
    extract::<B>(&s.sqrt_alphas_cumprod, t, &d) * x0
        + extract::<B>(&s.sqrt_one_minus_alphas_cumprod, t, &d) * noise
}

fn mean_flat<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 1> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c * h * w]).mean_dim(1).reshape([b])
}

fn approx_standard_normal_cdf<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let k = (2.0 / std::f64::consts::PI).sqrt();
    let inner = (x.clone() + x.powi_scalar(3) * 0.044715) * k;
    (inner.tanh() + 1.0) * 0.5
}

/// log p(x | N(means, exp(log_scales)^2)) discretised to bins of 2/255.
fn discretized_gaussian_log_likelihood<B: Backend>(
    x: Tensor<B, 4>,
    means: Tensor<B, 4>,
    log_scales: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let centered = x.clone() - means;
    let inv_stdv = log_scales.neg().exp();
    let cdf_plus = approx_standard_normal_cdf(inv_stdv.clone() * (centered.clone() + 1.0 / 255.0));
    let cdf_min = approx_standard_normal_cdf(inv_stdv * (centered - 1.0 / 255.0));
    let log_cdf_plus = cdf_plus.clone().clamp_min(1e-12).log();
    let log_one_minus_cdf_min = (cdf_min.clone().neg() + 1.0).clamp_min(1e-12).log();
    let log_cdf_delta = (cdf_plus - cdf_min).clamp_min(1e-12).log();
    let high = x.clone().greater_elem(0.999);
    let low = x.lower_elem(-0.999);
    log_cdf_delta
        .mask_where(high, log_one_minus_cdf_min)
        .mask_where(low, log_cdf_plus)
}

/// The loss terms for a model output (B, 6, H, W) at x_t.
pub fn training_losses<B: Backend>(
    s: &Schedule,
    model_out: Tensor<B, 4>,
    x0: Tensor<B, 4>,
    x_t: Tensor<B, 4>,
    t: &[i64],
    noise: Tensor<B, 4>,
    kind: LossKind,
) -> LossTerms<B> {
    let d = x0.device();
    let [b, c2, _, _] = model_out.dims();
    let c = c2 / 2;
    let eps = model_out.clone().narrow(1, 0, c);
    let var_values = model_out.narrow(1, c, c);
    let mse = mean_flat((noise - eps.clone()).powi_scalar(2));
    let vb = match kind {
        LossKind::Mse => Tensor::<B, 1>::zeros([b], &d),
        LossKind::Hybrid => {
            let eps = eps.detach();
            let ex = |arr: &[f64]| extract::<B>(arr, t, &d);
            // True posterior q(x_{t-1} | x_t, x_0).
            let true_mean = ex(&s.posterior_mean_coef1) * x0.clone()
                + ex(&s.posterior_mean_coef2) * x_t.clone();
            let true_logvar = ex(&s.posterior_log_variance_clipped);
            // Model: learned range between posterior variance and beta.
            let min_log = ex(&s.posterior_log_variance_clipped);
            let max_log = ex(&s.log_betas);
            let frac = (var_values + 1.0) / 2.0;
            let model_logvar = frac.clone() * max_log + (frac.neg() + 1.0) * min_log;
            let pred_x0 = ex(&s.sqrt_recip_alphas_cumprod) * x_t.clone()
                - ex(&s.sqrt_recipm1_alphas_cumprod) * eps;
            let model_mean =
                ex(&s.posterior_mean_coef1) * pred_x0 + ex(&s.posterior_mean_coef2) * x_t;
            // normal_kl(true, model)
            let kl = ((model_logvar.clone() - true_logvar.clone()) - 1.0
                + (true_logvar - model_logvar.clone()).exp()
                + (true_mean - model_mean.clone()).powi_scalar(2)
                    * model_logvar.clone().neg().exp())
                * 0.5;
            let ln2 = std::f64::consts::LN_2;
            let kl = mean_flat(kl) / ln2;
            let nll = mean_flat(
                discretized_gaussian_log_likelihood(x0, model_mean, model_logvar * 0.5).neg(),
            ) / ln2;
            let t0: Vec<bool> = t.iter().map(|&v| v == 0).collect();
            let is_t0 = Tensor::<B, 1, burn::tensor::Bool>::from_data(TensorData::new(t0, [b]), &d);
            kl.mask_where(is_t0, nll)
        }
    };
    LossTerms {
        loss: mse.clone() + vb.clone(),
        mse,
        vb,
    }
}
