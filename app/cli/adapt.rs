//! `unidiff-studio adapt`: Stage A on a scene from the command line, with a
//! progress line and ETA; Ctrl-C stops it and keeps the steps done.

use std::io::Write;
use std::path::PathBuf;

use anyhow::bail;
use burn::backend::{Autodiff, NdArray};
use clap::Args;

use super::model::BackboneArgs;
use super::parse_modalities;
use crate::base::CancelFlag;
use crate::base::thousands;
use crate::io::{SarScaleChoice, open_hsi, open_sar};
use crate::model::adapter::save_adapter;
use crate::model::backbone::load_backbone;
use crate::model::inspect::summarize;
use crate::model::loss::LossKind;
use crate::pipeline::classification::available_modalities;
use crate::pipeline::patches::PatchPool;
use crate::pipeline::stage_a::{AdaptConfig, adapt};
use crate::products::renderings::{RenderSettings, render_all};
use crate::scene::Scene;

#[derive(Debug, Args)]
pub struct AdaptArgs {
    #[arg(long)]
    pub hsi: Option<PathBuf>,
    #[arg(long)]
    pub sar: Option<PathBuf>,
    #[command(flatten)]
    pub backbone: BackboneArgs,
    #[arg(long, default_value_t = 2000)]
    pub steps: usize,
    #[arg(long, default_value_t = 1e-4, allow_negative_numbers = true)]
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
    let modalities = parse_modalities(&args.modalities)?;
    if args.steps == 0 || args.batch == 0 {
        bail!("--steps and --batch must be at least 1");
    }
    if !(args.lr.is_finite() && args.lr > 0.0 && args.lr <= 1.0) {
        bail!(
            "--lr {}: the learning rate must be a number in (0, 1] (the method's is 1e-4)",
            args.lr
        );
    }
    crate::io::atomic::check_output_file(&args.out)?;
    let hsi = args.hsi.as_deref().map(open_hsi).transpose()?;
    let sar = args
        .sar
        .as_deref()
        .map(|p| open_sar(p, SarScaleChoice::Auto))
        .transpose()?;
    let scene = Scene::from_layers(hsi, sar, None, None)?;
    let renderings = render_all(&scene, RenderSettings::default(), |name| {
        log::info!("[..] rendering {name}")
    })?;
    let (images, notes) = available_modalities(&renderings, &modalities);
    for note in notes {
        log::info!("[--] {note}");
    }
    if images.is_empty() {
        bail!("no modality to adapt on: give --hsi and/or --sar");
    }
    let pool = PatchPool::from_renderings(&images);
    if args.batch > pool.len() {
        bail!(
            "--batch {}: the scene has only {} patches ({} modalities); give --batch {} or less",
            args.batch,
            pool.len(),
            images.len(),
            pool.len()
        );
    }

    let device = Default::default();
    let (model, info) = load_backbone::<Cpu>(&args.backbone.spec(args.seed)?, &device)?;
    let config = info.config.clone();
    let mut model = model;
    // CPU backend: convolutions as matrix products (fast backward pass).
    model.set_conv_im2col(true);
    let summary = summarize(&config)?;
    log::info!(
        "[..] backbone {}: {} parameters, training {} ({:.3} %); device: CPU (the command line runs on the CPU, the app also on a GPU)",
        info.description,
        thousands(summary.parameters),
        thousands(summary.trainable_parameters),
        summary.trainable_percent
    );
    log::info!(
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
    })?;
    eprintln!();
    log::info!("[..] steps computed by {}", outcome.engine.0);
    let modalities: Vec<_> = images.iter().map(|(m, _)| *m).collect();
    let meta = outcome.metadata(&info, &modalities, &cfg, &summary);
    save_adapter(&args.out, &outcome.model, &meta)?;
    log::info!(
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
