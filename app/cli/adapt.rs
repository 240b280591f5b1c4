//! `unidiff-studio adapt`: Stage A on a scene from the command line, with a
//! progress line and ETA; Ctrl-C stops it and keeps the steps done.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use burn::backend::{Autodiff, NdArray};
use clap::Args;

use super::model::{load_config, thousands};
use crate::io::{SarScaleChoice, open_hsi, open_sar};
use crate::model::adapter::{AdapterMetadata, save_adapter};
use crate::model::checkpoint::file_sha256;
use crate::model::inspect::summarize;
use crate::model::loss::LossKind;
use crate::model::params::{NormalRng, ParamSource};
use crate::model::{CheckpointTensors, UNet, UNetConfig};
use crate::pipeline::Modality;
use crate::pipeline::patches::PatchPool;
use crate::pipeline::stage_a::{AdaptConfig, CancelFlag, adapt};
use crate::products::renderings::{RenderSettings, render_all};
use crate::scene::Scene;

#[derive(Debug, Args)]
pub struct AdaptArgs {
    #[arg(long)]
    pub hsi: Option<PathBuf>,
    #[arg(long)]
    pub sar: Option<PathBuf>,
    /// guided-diffusion checkpoint (.pt or .safetensors).
    #[arg(long, conflicts_with = "backbone")]
    pub checkpoint: Option<PathBuf>,
    /// Config of the checkpoint: JSON, `imagenet64` (default) or `tiny`.
    #[arg(long)]
    pub config: Option<String>,
    /// A backbone without a checkpoint: `random` (ImageNet 64 layout) or
    /// `tiny-random`, seeded random weights (for teaching and tests).
    #[arg(long)]
    pub backbone: Option<String>,
    #[arg(long, default_value_t = 2000)]
    pub steps: usize,
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// hybrid (mse + vb) or mse.
    #[arg(long, default_value = "hybrid")]
    pub loss: String,
    /// Modalities to adapt on.
    #[arg(long, value_delimiter = ',', default_value = "prgb,pca,sar")]
    pub modalities: Vec<String>,
    /// Output adapter file (.safetensors).
    #[arg(long)]
    pub out: PathBuf,
}

type Cpu = Autodiff<NdArray<f32>>;

pub fn run(args: &AdaptArgs) -> anyhow::Result<()> {
    let loss = match args.loss.as_str() {
        "hybrid" => LossKind::Hybrid,
        "mse" => LossKind::Mse,
        other => bail!("unknown loss '{other}' (hybrid, mse)"),
    };
    let modalities: Vec<Modality> = args
        .modalities
        .iter()
        .map(|m| {
            Modality::parse(m).with_context(|| format!("unknown modality '{m}' (prgb, pca, sar)"))
        })
        .collect::<anyhow::Result<_>>()?;
    if args.steps == 0 || args.batch == 0 {
        bail!("--steps and --batch must be at least 1");
    }
    let hsi = args.hsi.as_deref().map(open_hsi).transpose()?;
    let sar = args
        .sar
        .as_deref()
        .map(|p| open_sar(p, SarScaleChoice::Auto))
        .transpose()?;
    let scene = Scene::from_layers(hsi, sar, None, None)?;
    let renderings = render_all(&scene, RenderSettings::default(), |name| {
        eprintln!("[..] rendering {name}")
    })?;
    let mut images = Vec::new();
    for m in &modalities {
        let image = match m {
            Modality::Prgb => renderings.prgb.as_ref().map(|(i, _)| i),
            Modality::Pca => renderings.pca.as_ref().map(|(i, _)| i),
            Modality::Sar => renderings.pauli.as_ref(),
        };
        match image {
            Some(i) => images.push((*m, i)),
            None => eprintln!(
                "[--] {} needs {} input; left out",
                m.name(),
                if *m == Modality::Sar {
                    "a SAR"
                } else {
                    "an HSI"
                }
            ),
        }
    }
    if images.is_empty() {
        bail!("no modality to adapt on: give --hsi and/or --sar");
    }
    let pool = PatchPool::from_renderings(&images);

    let device = Default::default();
    let (config, model, base, base_sha) = match (&args.checkpoint, args.backbone.as_deref()) {
        (Some(path), _) => {
            let config = load_config(args.config.as_deref().unwrap_or("imagenet64"))?;
            let ckpt = CheckpointTensors::open(path)?;
            let model = UNet::<Cpu>::build(&config, ParamSource::Checkpoint(&ckpt), &device)?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            (config, model, name, Some(file_sha256(path)?))
        }
        (None, Some(name @ ("random" | "tiny-random"))) => {
            let config = if name == "random" {
                UNetConfig::imagenet64()
            } else {
                UNetConfig::tiny()
            };
            let model = UNet::<Cpu>::build(
                &config,
                ParamSource::Random(NormalRng::new(args.seed)),
                &device,
            )?;
            (config, model, format!("{name}:{}", args.seed), None)
        }
        (None, Some(other)) => bail!("unknown backbone '{other}' (random, tiny-random)"),
        (None, None) => bail!("give --checkpoint CKPT or --backbone NAME"),
    };
    let mut model = model;
    // CPU backend: convolutions as matrix products (fast backward pass).
    model.set_conv_im2col(true);
    let summary = summarize(&config)?;
    eprintln!(
        "[..] backbone {base}: {} parameters, training {} ({:.3} %); device: CPU (burn-ndarray; this build has no GPU backend)",
        thousands(summary.parameters),
        thousands(summary.trainable_parameters),
        summary.trainable_percent
    );
    eprintln!(
        "[..] {} patches of {} modalities; Ctrl-C stops and keeps the steps done",
        pool.len(),
        images.len()
    );
    let cfg = AdaptConfig {
        steps: args.steps,
        lr: args.lr,
        batch: args.batch,
        seed: args.seed,
        loss,
        ..AdaptConfig::default()
    };
    let cancel = CancelFlag::new();
    let handler_flag = cancel.clone();
    let _ = ctrlc::set_handler(move || handler_flag.cancel());
    let outcome = adapt(model, &pool, &cfg, &cancel, |p| {
        let speed = match p.eta_seconds {
            Some(eta) => format!("{:.2} steps/s, ETA {eta:.0} s", p.steps_per_second),
            None => "warming up".to_string(),
        };
        eprint!(
            "\r[..] step {}/{} loss {:.4} (mse {:.4}, vb {:.4}), {speed}   ",
            p.step, p.steps, p.loss, p.mse, p.vb
        );
        let _ = std::io::stderr().flush();
    });
    eprintln!();
    let meta = AdapterMetadata {
        base,
        base_sha256: base_sha,
        config,
        modalities: images.iter().map(|(m, _)| m.name().to_string()).collect(),
        steps: outcome.steps_done,
        lr: cfg.lr,
        batch: cfg.batch,
        seed: cfg.seed,
        loss,
        loss_curve: outcome.loss_curve.clone(),
        trainable_parameters: summary.trainable_parameters,
        trainable_percent: summary.trainable_percent,
        cancelled: outcome.cancelled,
        software: format!("unidiff-studio {}", env!("CARGO_PKG_VERSION")),
    };
    save_adapter(&args.out, &outcome.model, &meta)?;
    eprintln!(
        "[ok] {} after {} steps; adapter written to {}",
        if outcome.cancelled {
            "cancelled"
        } else {
            "done"
        },
        outcome.steps_done,
        args.out.display()
    );
    Ok(())
}
