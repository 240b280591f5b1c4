//! `unidiff-studio model inspect` and `model forward`: what a backbone
//! holds, and one forward pass with every block's activation written out.

use crate::base::thousands;
use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::backend::NdArray;
use burn::prelude::*;
use burn::tensor::TensorData;
use clap::{Args, Subcommand};

use crate::model::checkpoint::{TensorFile, write_f32_safetensors};
use crate::model::inspect::{expected_tensors, summarize};
use crate::model::params::ParamSource;
use crate::model::resblock::BlockContext;
use crate::model::{CheckpointTensors, UNet, UNetConfig};

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Tensor count, parameters and the Stage A trainable share.
    Inspect(InspectArgs),
    /// One forward pass: reads x, t, y; writes out and every block activation.
    Forward(ForwardArgs),
    /// Downloads the paper's backbone (resumable), checks its layout and
    /// records its SHA-256; prints the checkpoint's path.
    Get(GetArgs),
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Where the checkpoint is published.
    #[arg(long, default_value = crate::model::get::PAPER_BACKBONE_URL)]
    pub url: String,
    /// Folder to put it in (default: the data folder's backbones/).
    #[arg(long)]
    pub to: Option<PathBuf>,
    /// The layout the file must have: `imagenet64` (default), `tiny` or JSON.
    #[arg(long, default_value = "imagenet64")]
    pub config: String,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A guided-diffusion checkpoint (.pt or .safetensors); optional with --config.
    pub checkpoint: Option<PathBuf>,
    /// Config JSON (guided-diffusion argument names), or `imagenet64` / `tiny`.
    #[arg(long)]
    pub config: Option<String>,
}

#[derive(Debug, Args)]
pub struct ForwardArgs {
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Config JSON, or `imagenet64` / `tiny`.
    #[arg(long)]
    pub config: String,
    /// safetensors with `x` (N,3,H,W f32), `t` and `y` (N, i64).
    #[arg(long)]
    pub input: PathBuf,
    #[arg(long)]
    pub output: PathBuf,
}

/// Reads a config by name or from a JSON file.
pub fn load_config(spec: &str) -> anyhow::Result<UNetConfig> {
    match spec {
        "imagenet64" => Ok(UNetConfig::imagenet64()),
        "tiny" => Ok(UNetConfig::tiny()),
        path => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the config {path}"))?;
            Ok(UNetConfig::from_json(&text).with_context(|| format!("config {path}"))?)
        }
    }
}

/// The backbone options shared by `adapt`, `run` and `sweep`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BackboneArgs {
    /// guided-diffusion checkpoint (.pt or .safetensors).
    #[arg(long, conflicts_with = "backbone")]
    pub checkpoint: Option<std::path::PathBuf>,
    /// Config of the checkpoint: JSON, `imagenet64` (default) or `tiny`.
    #[arg(long)]
    pub config: Option<String>,
    /// Stage A adapter made for this backbone.
    #[arg(long)]
    pub adapter: Option<std::path::PathBuf>,
    /// A backbone without a checkpoint: `random` (ImageNet-64 layout) or
    /// `tiny-random`; seeded random weights, not the paper's.
    #[arg(long)]
    pub backbone: Option<String>,
}

impl BackboneArgs {
    /// What the options ask for; `seed` seeds a random backbone.
    pub fn spec(&self, seed: u64) -> anyhow::Result<crate::model::backbone::BackboneSpec> {
        use crate::model::backbone::BackboneSpec;
        let spec = match (&self.checkpoint, &self.backbone) {
            (Some(path), _) => BackboneSpec::Checkpoint {
                path: path.clone(),
                config: load_config(self.config.as_deref().unwrap_or("imagenet64"))?,
                adapter: self.adapter.clone(),
            },
            (None, Some(name)) => BackboneSpec::Random {
                name: name.clone(),
                seed,
                adapter: self.adapter.clone(),
            },
            (None, None) => anyhow::bail!(
                "give --checkpoint CKPT (the paper's 64x64_diffusion.pt) or --backbone tiny-random|random"
            ),
        };
        spec.config()?;
        Ok(spec)
    }
}

fn inspect(args: &InspectArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.checkpoint {
        let ckpt = CheckpointTensors::open(path)?;
        println!("{}", path.display());
        println!("  tensors: {}", ckpt.len());
        println!("  parameters: {}", thousands(ckpt.parameter_count()));
        let config = match &args.config {
            Some(spec) => Some(load_config(spec)?),
            None => [UNetConfig::imagenet64(), UNetConfig::tiny()]
                .into_iter()
                .find(|c| {
                    expected_tensors(c)
                        .map(|e| {
                            e.len() == ckpt.len()
                                && e.iter().all(|(n, s)| ckpt.shape(n) == Some(s.as_slice()))
                        })
                        .unwrap_or(false)
                }),
        };
        let Some(config) = config else {
            println!("  configuration: not one of the known ones (give --config)");
            return Ok(());
        };
        let expected = expected_tensors(&config)?;
        let missing: Vec<&String> = expected
            .iter()
            .filter(|(n, _)| ckpt.shape(n).is_none())
            .map(|(n, _)| n)
            .collect();
        let misshaped: Vec<&String> = expected
            .iter()
            .filter(|(n, s)| ckpt.shape(n).is_some_and(|f| f != s.as_slice()))
            .map(|(n, _)| n)
            .collect();
        let unexpected = ckpt
            .names()
            .filter(|n| !expected.iter().any(|(e, _)| e == *n))
            .count();
        println!(
            "  fits the configuration: {} ({} missing, {} mis-shaped, {} unexpected)",
            if missing.is_empty() && misshaped.is_empty() && unexpected == 0 {
                "yes"
            } else {
                "no"
            },
            missing.len(),
            misshaped.len(),
            unexpected
        );
        print_summary(&config)
    } else {
        let spec = args
            .config
            .as_deref()
            .context("give a checkpoint, --config, or both")?;
        print_summary(&load_config(spec)?)
    }
}

fn print_summary(config: &UNetConfig) -> anyhow::Result<()> {
    let s = summarize(config)?;
    println!("  configuration tensors: {}", s.tensors);
    println!("  configuration parameters: {}", thousands(s.parameters));
    println!(
        "  Stage A trainable (label_emb + output-block emb_layers): {} of {} ({:.3} %) in {} tensors",
        thousands(s.trainable_parameters),
        thousands(s.parameters),
        s.trainable_percent,
        s.trainable_tensors
    );
    Ok(())
}

fn forward(args: &ForwardArgs) -> anyhow::Result<()> {
    type B = NdArray<f32>;
    let config = load_config(&args.config)?;
    let ckpt = CheckpointTensors::open(&args.checkpoint)?;
    let device = Default::default();
    let model = UNet::<B>::build(&config, ParamSource::Checkpoint(&ckpt), &device)?;
    let input = TensorFile::open(&args.input)?;
    let (xs, x) = input.f32("x")?;
    let t = input.i64("t")?;
    let y = input.i64("y")?;
    config
        .check_input(&xs, &t, &y)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.input.display()))?;
    let x = Tensor::<B, 4>::from_data(TensorData::new(x, xs), &device);
    let emb = model.embedding(&t, &y);
    let mut acts: Vec<(String, Tensor<B, 4>)> = Vec::new();
    let out = model.forward_blocks(x, emb, BlockContext { train: false }, None, &mut |id, a| {
        acts.push((id.name(), a.clone()));
    });
    acts.push(("out".to_string(), out));
    write_tensors(&args.output, &acts)?;
    log::info!(
        "[ok] wrote {} tensors to {}",
        acts.len(),
        args.output.display()
    );
    Ok(())
}

fn write_tensors<B: Backend>(
    path: &Path,
    tensors: &[(String, Tensor<B, 4>)],
) -> anyhow::Result<()> {
    let raw = tensors
        .iter()
        .map(|(n, t)| {
            let values = crate::model::tensor_read::f32_values(t.clone(), "an activation")?;
            Ok((n.clone(), t.dims().to_vec(), values))
        })
        .collect::<anyhow::Result<Vec<(String, Vec<usize>, Vec<f32>)>>>()?;
    write_f32_safetensors(path, &raw, None)?;
    Ok(())
}

fn get(args: &GetArgs) -> anyhow::Result<()> {
    use crate::model::get::{GetRequest, get_backbone};
    let request = GetRequest {
        url: args.url.clone(),
        dir: args
            .to
            .clone()
            .unwrap_or_else(|| crate::session::autosave::data_dir().join("backbones")),
        config: load_config(&args.config)?,
    };
    log::info!("[..] {} -> {}", request.url, request.target().display());
    let cancel = super::run::cancel_on_ctrl_c();
    let mut last = None;
    let (path, record) = get_backbone(&request, &cancel, &mut |p| {
        let line = format!("[..] {}", p.describe());
        if last.as_ref() != Some(&line) {
            eprint!("\r{line}      ");
            last = Some(line);
        }
    })?;
    eprintln!();
    log::info!(
        "[ok] {} ({} bytes, {} tensors, {} parameters, sha256 {})",
        path.display(),
        thousands(record.bytes as usize),
        record.tensors,
        thousands(record.parameters),
        record.sha256
    );
    println!("{}", path.display());
    Ok(())
}

pub fn run(cmd: &ModelCommand) -> anyhow::Result<()> {
    match cmd {
        ModelCommand::Inspect(a) => inspect(a),
        ModelCommand::Forward(a) => forward(a),
        ModelCommand::Get(a) => get(a),
    }
}
