//! Stage A: unsupervised joint adaptation (method.md section 6). Pooled,
//! shuffled, augmented patches of all modalities; t uniform in 0..T per
//! sample; the hybrid loss; Adam on the FiLM generators and the modality
//! embedding only. Seeded, reports progress, and stops at any step when
//! cancelled.

use std::time::Instant;

use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::backend::AutodiffBackend;
use serde::Serialize;

use super::patches::{PatchPool, augment};
use crate::base::{CancelFlag, NormalRng};
use crate::model::host_unet::{Act, HostAdam as Adam, HostTrainer as Trainer, host_unet};
use crate::model::lean_ops::UNetOps;
use crate::model::loss::{LossKind, q_sample, training_losses};
use crate::model::resblock::BlockContext;
use crate::model::schedule::Schedule;
use crate::model::tensor_read::f32_values;
use crate::model::unet::UNet;

/// Settings of a Stage A run.
#[derive(Debug, Clone, Serialize)]
pub struct AdaptConfig {
    pub steps: usize,
    pub lr: f64,
    pub batch: usize,
    pub seed: u64,
    pub loss: LossKind,
    /// Largest zoom s of the augmentation (64 = no zoom).
    pub max_zoom: usize,
    /// On the CPU backends, compute the steps with the CPU kernels (false:
    /// with burn's autodiff, as on a GPU; for comparisons).
    pub cpu_kernels: bool,
}

impl Default for AdaptConfig {
    fn default() -> Self {
        Self {
            steps: 2000,
            lr: 1e-4,
            batch: 32,
            seed: 0,
            loss: LossKind::Hybrid,
            max_zoom: 80,
            cpu_kernels: true,
        }
    }
}

/// Progress after one step.
#[derive(Debug, Clone, Serialize)]
pub struct AdaptProgress {
    /// Steps done (1-based).
    pub step: usize,
    pub steps: usize,
    pub loss: f32,
    pub mse: f32,
    pub vb: f32,
    pub steps_per_second: f64,
    /// Seconds left; None during the warm-up steps.
    pub eta_seconds: Option<f64>,
}

/// How a run ended.
pub struct AdaptOutcome<B: AutodiffBackend> {
    pub model: UNet<B>,
    pub loss_curve: Vec<f32>,
    pub steps_done: usize,
    pub cancelled: bool,
    /// Which engine computed the steps.
    pub engine: EngineChoice,
}

impl<B: AutodiffBackend> AdaptOutcome<B> {
    /// What the adapter file says about this run on backbone `info`.
    pub fn metadata(
        &self,
        info: &crate::model::backbone::BackboneInfo,
        modalities: &[super::Modality],
        cfg: &AdaptConfig,
        summary: &crate::model::inspect::ModelSummary,
    ) -> crate::model::adapter::AdapterMetadata {
        crate::model::adapter::AdapterMetadata {
            base: info.name.clone(),
            base_sha256: info.checkpoint_sha256.clone(),
            config: info.config.clone(),
            modalities: modalities.iter().map(|m| m.name().to_string()).collect(),
            steps: self.steps_done,
            lr: cfg.lr,
            batch: cfg.batch,
            seed: cfg.seed,
            loss: cfg.loss,
            loss_curve: self.loss_curve.clone(),
            trainable_parameters: summary.trainable_parameters,
            trainable_percent: summary.trainable_percent,
            cancelled: self.cancelled,
            software: format!("unidiff-studio {}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Steps before an ETA is shown (the first steps include start-up costs).
const WARMUP_STEPS: usize = 3;

/// One augmented batch drawn from the pool: (x0, y, t, noise).
pub struct Batch {
    pub x0: Vec<f32>,
    pub y: Vec<i64>,
    pub t: Vec<i64>,
    pub noise: Vec<f32>,
}

/// Draws batches: an epoch is a shuffled pass over the pool.
pub struct BatchSampler {
    rng: NormalRng,
    order: Vec<usize>,
    next: usize,
    max_zoom: usize,
    timesteps: usize,
}

impl BatchSampler {
    pub fn new(seed: u64, max_zoom: usize, timesteps: usize) -> Self {
        Self {
            rng: NormalRng::new(seed),
            order: Vec::new(),
            next: 0,
            max_zoom,
            timesteps,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        self.rng.below(n)
    }

    fn next_index(&mut self, pool: &PatchPool) -> usize {
        if self.next >= self.order.len() {
            self.order = (0..pool.len()).collect();
            for i in (1..self.order.len()).rev() {
                let j = self.below(i + 1);
                self.order.swap(i, j);
            }
            self.next = 0;
        }
        self.next += 1;
        self.order[self.next - 1]
    }

    pub fn sample(&mut self, pool: &PatchPool, batch: usize) -> Batch {
        let p = pool.grid.patch;
        let mut b = Batch {
            x0: Vec::with_capacity(batch * 3 * p * p),
            y: Vec::with_capacity(batch),
            t: Vec::with_capacity(batch),
            noise: Vec::with_capacity(batch * 3 * p * p),
        };
        for _ in 0..batch {
            let i = self.next_index(pool);
            let zoom = p + self.below(self.max_zoom.max(p) - p + 1);
            let crop = (self.below(zoom - p + 1), self.below(zoom - p + 1));
            let flip = self.rng.uniform() < 0.5;
            b.x0.extend(augment(&pool.data[i], p, zoom, crop, flip));
            b.y.push(pool.entries[i].0.label_row());
            b.t.push(self.below(self.timesteps) as i64);
            for _ in 0..3 * p * p {
                b.noise.push(self.rng.normal() as f32);
            }
        }
        b
    }
}

/// Stage A's optimiser as burn runs it: Adam, betas 0.9 / 0.999, epsilon
/// 1e-8 (the CPU engine's [`Adam`] computes the same).
pub fn burn_adam<B: AutodiffBackend>() -> OptimizerAdaptor<burn::optim::Adam, UNet<B>, B> {
    AdamConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .init::<B, UNet<B>>()
}

/// Largest tape a CPU Stage A step keeps whole; past it each block keeps
/// only its input and runs again in the backward pass (the ImageNet-64
/// U-Net's step grows by about 0.35 GB a sample: some 11 GB at the paper's
/// batch of 32).
const TAPE_BUDGET_BYTES: usize = 4 << 30;

/// How Stage A's steps are computed: on the CPU by `unidiff-kernels`'
/// training step (the U-Net's forward and backward on contiguous buffers,
/// Adam on the host copy of the trainable tensors), or by burn's autodiff
/// with its Adam (GPU backends, and networks the CPU path does not run).
enum Engine<B: AutodiffBackend> {
    Host { trainer: Box<Trainer>, adam: Adam },
    Burn(OptimizerAdaptor<burn::optim::Adam, UNet<B>, B>),
}

/// The loss terms of one step, averaged over the batch.
struct StepLoss {
    loss: f32,
    mse: f32,
    vb: f32,
}

/// Which engine ran a Stage A run, in words (the CLI and the bench say it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineChoice(pub String);

impl<B: AutodiffBackend + UNetOps> Engine<B> {
    fn choose(
        model: &UNet<B>,
        cpu_kernels: bool,
        patch: usize,
        batch: usize,
    ) -> (Self, EngineChoice) {
        let burn = burn_adam::<B>;
        if !B::ON_HOST || !cpu_kernels {
            return (Engine::Burn(burn()), EngineChoice("burn autodiff".into()));
        }
        let dropout = model
            .named_resblocks()
            .first()
            .map_or(0.0, |(_, r)| r.dropout as f32);
        let trainer = host_unet(model)
            .map_err(|e| e.to_string())
            .and_then(|net| Trainer::new(net, dropout).map_err(|e| e.to_string()))
            .and_then(|t| {
                let tape = t.tape_bytes_per_sample(patch).map_err(|e| e.to_string())? * batch;
                let checkpoint = tape > TAPE_BUDGET_BYTES;
                Ok((t.with_checkpointing(checkpoint), tape, checkpoint))
            });
        match trainer {
            Ok((trainer, tape, checkpoint)) => (
                Engine::Host {
                    trainer: Box::new(trainer),
                    adam: Adam::new(0.9, 0.999, 1e-8),
                },
                EngineChoice(if checkpoint {
                    format!(
                        "CPU kernels, each block run again in the backward pass (its full tape would hold {:.1} GB)",
                        tape as f64 / 1e9
                    )
                } else {
                    "CPU kernels".into()
                }),
            ),
            Err(why) => (
                Engine::Burn(burn()),
                EngineChoice(format!("burn autodiff ({why})")),
            ),
        }
    }

    /// Step `step` on batch `b` of `p x p` patches; the model changes on the burn engine only
    /// (the host engine writes its tensors back in [`Engine::finish`]).
    fn step(
        &mut self,
        model: UNet<B>,
        b: Batch,
        cfg: &AdaptConfig,
        schedule: &Schedule,
        (step, p): (usize, usize),
    ) -> anyhow::Result<(UNet<B>, StepLoss)> {
        let device = model.out_conv.weight.device();
        let shape = [cfg.batch, 3, p, p];
        let x0 = Tensor::<B, 4>::from_data(TensorData::new(b.x0, shape), &device);
        let noise = Tensor::<B, 4>::from_data(TensorData::new(b.noise, shape), &device);
        let x_t = q_sample(schedule, x0.clone(), &b.t, noise.clone());
        let scalar = |t: Tensor<B, 1>| t.mean().into_scalar().elem::<f32>();
        match self {
            Engine::Burn(optim) => {
                let emb = model.embedding(&b.t, &b.y);
                let out = model.forward_blocks(
                    x_t.clone(),
                    emb,
                    BlockContext { train: true },
                    None,
                    &mut |_, _| {},
                );
                let terms = training_losses(schedule, out, x0, x_t, &b.t, noise, cfg.loss);
                let loss = terms.loss.mean();
                let grads = loss.backward();
                let losses = StepLoss {
                    mse: scalar(terms.mse.detach()),
                    vb: scalar(terms.vb.detach()),
                    loss: loss.detach().into_scalar().elem::<f32>(),
                };
                let grads = GradientsParams::from_grads(grads, &model);
                Ok((optim.step(cfg.lr, model, grads), losses))
            }
            Engine::Host { trainer, adam } => {
                let values = f32_values(x_t.clone().detach(), "x_t")?;
                let x = Act::from_nchw(&values, cfg.batch, 3, p, p);
                let seed = cfg.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ step as u64;
                let (out, tape) = trainer.forward(x, &b.t, &b.y, seed)?;
                let c_out = out.c;
                // The loss and its gradient with respect to the output:
                // burn's autodiff over the loss alone.
                let out = Tensor::<B, 4>::from_data(
                    TensorData::new(out.to_nchw(), [cfg.batch, c_out, p, p]),
                    &device,
                )
                .require_grad();
                let terms = training_losses(schedule, out.clone(), x0, x_t, &b.t, noise, cfg.loss);
                let loss = terms.loss.mean();
                let grads = loss.backward();
                let d_out = out.grad(&grads).ok_or_else(|| {
                    anyhow::anyhow!("the loss has no gradient for the model output")
                })?;
                let d_out = f32_values(d_out, "the output's gradient")?;
                let losses = StepLoss {
                    mse: scalar(terms.mse.detach()),
                    vb: scalar(terms.vb.detach()),
                    loss: loss.detach().into_scalar().elem::<f32>(),
                };
                let grads = trainer.backward(tape, Act::from_nchw(&d_out, cfg.batch, c_out, p, p));
                adam.step(cfg.lr as f32, trainer.trainable_mut(), &grads);
                Ok((model, losses))
            }
        }
    }

    /// The model with every step applied.
    fn finish(self, model: UNet<B>) -> anyhow::Result<UNet<B>> {
        match self {
            Engine::Burn(_) => Ok(model),
            Engine::Host { mut trainer, .. } => {
                let values = trainer.trainable_mut();
                let values: Vec<&[f32]> = values.into_iter().map(|v| &*v).collect();
                Ok(model.with_trainable_values(&values)?)
            }
        }
    }
}

/// Adapts `model` on `pool`. `on_progress` hears every step; `cancel` stops
/// the run before the next step (the model keeps the steps done so far).
/// On the CPU backends the steps run through `unidiff-kernels` (see
/// [`Engine`]); the outcome says which engine ran.
pub fn adapt<B: AutodiffBackend + UNetOps>(
    mut model: UNet<B>,
    pool: &PatchPool,
    cfg: &AdaptConfig,
    cancel: &CancelFlag,
    mut on_progress: impl FnMut(&AdaptProgress),
) -> anyhow::Result<AdaptOutcome<B>> {
    let device = model.out_conv.weight.device();
    B::seed(&device, cfg.seed);
    let schedule = Schedule::cosine(1000);
    let (mut engine, engine_choice) =
        Engine::choose(&model, cfg.cpu_kernels, pool.grid.patch, cfg.batch);
    let mut sampler = BatchSampler::new(cfg.seed, cfg.max_zoom, schedule.steps());
    let mut curve = Vec::with_capacity(cfg.steps);
    let mut warm_start: Option<Instant> = None;
    let mut cancelled = false;
    for step in 0..cfg.steps {
        if cancel.is_cancelled() {
            cancelled = true;
            break;
        }
        if step == WARMUP_STEPS.min(cfg.steps.saturating_sub(1)) {
            warm_start = Some(Instant::now());
        }
        let b = sampler.sample(pool, cfg.batch);
        let (stepped, losses) = engine.step(model, b, cfg, &schedule, (step, pool.grid.patch))?;
        model = stepped;
        let done = step + 1;
        if !losses.loss.is_finite() {
            anyhow::bail!(
                "Stage A stopped at step {done}: the loss is {} (the training diverged; a smaller learning rate than {} may help); no adapter is written",
                losses.loss,
                cfg.lr
            );
        }
        curve.push(losses.loss);
        let (rate, eta) = match warm_start {
            Some(t0) if done > WARMUP_STEPS => {
                let rate = (done - WARMUP_STEPS) as f64 / t0.elapsed().as_secs_f64().max(1e-9);
                (rate, Some((cfg.steps - done) as f64 / rate))
            }
            _ => (0.0, None),
        };
        on_progress(&AdaptProgress {
            step: done,
            steps: cfg.steps,
            loss: losses.loss,
            mse: losses.mse,
            vb: losses.vb,
            steps_per_second: rate,
            eta_seconds: eta,
        });
    }
    Ok(AdaptOutcome {
        steps_done: curve.len(),
        model: engine.finish(model)?,
        loss_curve: curve,
        cancelled,
        engine: engine_choice,
    })
}
