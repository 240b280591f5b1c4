//! The Stage A job for the app: the same `adapt` loop the CLI's `adapt`
//! runs, on the open scene's renderings, off the UI thread. Every step's loss
//! goes to the UI (the live loss plot); the adapter is written atomically to
//! the data folder when the run ends, and the next classification uses it.
//! A cancelled run writes nothing: the backbone stays as it was.

use std::path::PathBuf;
use std::time::Instant;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::AutodiffBackend;

use super::{JobContext, JobEvent, on_device_else_cpu};
use crate::model::adapter::save_adapter;
use crate::model::backbone::{BackboneSpec, load_backbone};
use crate::model::device::{DeviceChoice, DeviceReport, Resolved, resolve};
use crate::model::inspect::summarize;
use crate::model::kernel_cache;
use crate::model::lean_ops::UNetOps;
use crate::model::loss::LossKind;
use crate::pipeline::Modality;
use crate::pipeline::classification::available_modalities;
use crate::pipeline::patches::PatchPool;
use crate::pipeline::stage_a::{AdaptConfig, adapt};
use crate::products::renderings::Renderings;

/// What the Stage A part of the training panel sets.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AdaptSettings {
    pub steps: usize,
    pub lr: f64,
    pub batch: usize,
    pub seed: u64,
    pub modalities: Vec<Modality>,
}

impl AdaptSettings {
    /// The paper's run: 2000 steps of batch 32 at lr 1e-4.
    pub fn paper() -> Self {
        Self {
            steps: 2000,
            lr: 1e-4,
            batch: 32,
            seed: 0,
            modalities: Modality::ALL.to_vec(),
        }
    }

    /// A short run to watch the loss move (teaching, the CPU).
    pub fn quick() -> Self {
        Self {
            steps: 40,
            batch: 4,
            ..Self::paper()
        }
    }
}

impl Default for AdaptSettings {
    fn default() -> Self {
        Self::quick()
    }
}

/// A Stage A run to do.
#[derive(Debug, Clone)]
pub struct AdaptRequest {
    pub renderings: Renderings,
    pub settings: AdaptSettings,
    /// The backbone to adapt (an adapter it names is not used: Stage A starts
    /// from the base weights).
    pub backbone: BackboneSpec,
    /// Where the adapter goes (.safetensors).
    pub out: PathBuf,
    pub device: DeviceChoice,
}

/// One step of the run, for the progress bar and the loss plot.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptStep {
    pub step: usize,
    pub steps: usize,
    pub loss: f32,
    pub eta_seconds: Option<f64>,
}

/// What a finished run hands back.
#[derive(Debug, Clone)]
pub struct Adapted {
    pub adapter: PathBuf,
    pub steps_done: usize,
    pub loss_curve: Vec<f32>,
    pub seconds: f64,
    /// The device used, and why.
    pub device: String,
}

/// Runs Stage A; sends a step event per step, then Adapted, Failed or
/// Cancelled.
pub fn run(job: &JobContext<'_>, req: &AdaptRequest) {
    let device = resolve(req.device);
    let run = |_: &mut (), device: &DeviceReport| match device.resolved {
        Resolved::Cpu => adapt_on::<Autodiff<NdArray<f32>>>(job, req, &Default::default(), device),
        #[cfg(feature = "cuda")]
        Resolved::Cuda => {
            adapt_on::<Autodiff<burn::backend::Cuda>>(job, req, &Default::default(), device)
        }
        #[cfg(feature = "wgpu")]
        Resolved::Wgpu => {
            adapt_on::<Autodiff<burn::backend::Wgpu>>(job, req, &Default::default(), device)
        }
    };
    let result = on_device_else_cpu(job, &device, &mut (), run);
    job.finish(result, |generation, result| JobEvent::Adapted {
        generation,
        result,
    });
}

/// Stage A on backend `B` (the CPU backend computes convolutions as matrix
/// products: a fast backward pass there). None when cancelled.
fn adapt_on<B: AutodiffBackend + UNetOps>(
    job: &JobContext<'_>,
    req: &AdaptRequest,
    handle: &B::Device,
    device: &DeviceReport,
) -> anyhow::Result<Option<Adapted>> {
    let t0 = Instant::now();
    // Stage A's fraction comes with each step's loss (AdaptStep).
    let progress = |step: &str| job.progress(step, 0.0);
    progress(&format!("device: {}", device.why));
    let s = &req.settings;
    anyhow::ensure!(
        s.steps > 0 && s.batch > 0,
        "steps and batch must be at least 1"
    );
    let (images, _) = available_modalities(&req.renderings, &s.modalities);
    anyhow::ensure!(
        !images.is_empty(),
        "no modality to adapt on: pick one whose input is open"
    );
    progress("cutting patches");
    let pool = PatchPool::from_renderings(&images);
    progress("building the backbone");
    let spec = req.backbone.with_adapter(None);
    let (mut model, info) = load_backbone::<B>(&spec, handle)?;
    model.set_conv_im2col(device.resolved == Resolved::Cpu);
    let summary = summarize(&info.config)?;
    let cfg = AdaptConfig {
        steps: s.steps,
        lr: s.lr,
        batch: s.batch,
        seed: s.seed,
        loss: LossKind::Hybrid,
        ..AdaptConfig::default()
    };
    // A GPU's first run on this machine compiles its kernels first.
    let mut first_use = kernel_cache::pending_first_use::<B>(handle);
    if first_use.is_some() {
        progress(kernel_cache::PHASE_COMPILING);
    }
    let outcome = adapt(model, &pool, &cfg, job.cancel, |p| {
        if let Some(key) = first_use.take() {
            kernel_cache::mark_used(&key);
        }
        job.send(JobEvent::AdaptStep {
            generation: job.generation,
            step: AdaptStep {
                step: p.step,
                steps: p.steps,
                loss: p.loss,
                eta_seconds: p.eta_seconds,
            },
        })
    })?;
    if outcome.cancelled {
        return Ok(None);
    }
    let modalities: Vec<Modality> = images.iter().map(|(m, _)| *m).collect();
    let meta = outcome.metadata(&info, &modalities, &cfg, &summary);
    if let Some(dir) = req.out.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    save_adapter(&req.out, &outcome.model, &meta)?;
    Ok(Some(Adapted {
        adapter: req.out.clone(),
        steps_done: outcome.steps_done,
        loss_curve: outcome.loss_curve,
        seconds: t0.elapsed().as_secs_f64(),
        device: device.why.clone(),
    }))
}
