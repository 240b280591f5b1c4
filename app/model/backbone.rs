//! Which backbone a run uses and how it is built: a guided-diffusion
//! checkpoint (optionally with a Stage A adapter, which must have been made
//! for that very checkpoint), or a seeded random network for teaching and
//! tests. Every output names the backbone through [`BackboneInfo`], so a
//! random network's numbers are never mistaken for the paper's.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use serde::Serialize;

use super::adapter::{AdapterMetadata, read_adapter_metadata};
use super::checkpoint::{CheckpointError, CheckpointTensors, file_sha256};
use super::config::UNetConfig;
use super::params::ParamSource;
use super::unet::UNet;
use crate::base::NormalRng;

/// The backbone the user asked for.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum BackboneSpec {
    /// A guided-diffusion checkpoint of `config`, optionally adapted.
    Checkpoint {
        path: PathBuf,
        config: UNetConfig,
        adapter: Option<PathBuf>,
    },
    /// Seeded random weights: `random` (ImageNet-64 layout) or `tiny-random`.
    Random {
        name: String,
        seed: u64,
        adapter: Option<PathBuf>,
    },
}

/// The names `--backbone` accepts.
pub const RANDOM_BACKBONES: [&str; 2] = ["random", "tiny-random"];

/// What was built, for run records and the UI.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BackboneInfo {
    /// `model.pt`, or `tiny-random:0`.
    pub name: String,
    /// Plain words: pretrained, or random and not the paper's.
    pub description: String,
    pub pretrained: bool,
    pub checkpoint_sha256: Option<String>,
    pub adapter: Option<String>,
    pub adapter_steps: Option<usize>,
    pub parameters: usize,
    pub config: UNetConfig,
}

/// Why a backbone could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BackboneError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("unknown backbone '{0}' (random, tiny-random, or give a checkpoint)")]
    Unknown(String),
    #[error(
        "the adapter {adapter} was made for the backbone {made_for} ({made_sha}), not for {base} ({base_sha}): run Stage A on this backbone or pick the matching one"
    )]
    AdapterMismatch {
        adapter: String,
        made_for: String,
        made_sha: String,
        base: String,
        base_sha: String,
    },
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
}

impl BackboneSpec {
    /// The configuration the network will have.
    pub fn config(&self) -> Result<UNetConfig, BackboneError> {
        match self {
            BackboneSpec::Checkpoint { config, .. } => Ok(config.clone()),
            BackboneSpec::Random { name, .. } => match name.as_str() {
                "random" => Ok(UNetConfig::imagenet64()),
                "tiny-random" => Ok(UNetConfig::tiny()),
                other => Err(BackboneError::Unknown(other.to_string())),
            },
        }
    }

    /// The Stage A adapter on the base weights, if any.
    pub fn adapter(&self) -> Option<&Path> {
        match self {
            BackboneSpec::Checkpoint { adapter, .. } | BackboneSpec::Random { adapter, .. } => {
                adapter.as_deref()
            }
        }
    }

    /// The same base weights with `adapter` (None: the base alone).
    pub fn with_adapter(&self, adapter: Option<PathBuf>) -> Self {
        let mut spec = self.clone();
        match &mut spec {
            BackboneSpec::Checkpoint { adapter: a, .. }
            | BackboneSpec::Random { adapter: a, .. } => *a = adapter,
        }
        spec
    }
}

/// The file name of `path` (the whole path when it has none).
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| path.display().to_string())
}

/// The error for an adapter made for another backbone.
fn mismatch(path: &Path, meta: &AdapterMetadata, base: String, base_sha: String) -> BackboneError {
    BackboneError::AdapterMismatch {
        adapter: path.display().to_string(),
        made_for: meta.base.clone(),
        made_sha: meta
            .base_sha256
            .clone()
            .unwrap_or_else(|| "random weights".to_string()),
        base,
        base_sha,
    }
}

/// Refuses an adapter whose recorded base is not this backbone.
fn check_adapter(
    path: &Path,
    meta: &AdapterMetadata,
    base: &str,
    base_sha: Option<&str>,
    config: &UNetConfig,
) -> Result<(), BackboneError> {
    let same = match (meta.base_sha256.as_deref(), base_sha) {
        (Some(a), Some(b)) => a == b,
        (None, None) => meta.base == base,
        _ => false,
    };
    if same && meta.config == *config {
        return Ok(());
    }
    Err(mismatch(
        path,
        meta,
        base.to_string(),
        base_sha.unwrap_or("random weights").to_string(),
    ))
}

/// The backbone a guided-diffusion checkpoint file makes: its layout
/// (ImageNet-64 or tiny) recognised by its parameter count; the count too.
/// Reads the whole file: call it off the UI thread.
pub fn spec_for_checkpoint(path: &Path) -> Result<(BackboneSpec, usize), BackboneError> {
    let tensors = CheckpointTensors::open(path)?;
    let count = tensors.parameter_count();
    let config = [UNetConfig::imagenet64(), UNetConfig::tiny()]
        .into_iter()
        .find(|c| super::inspect::summarize(c).is_ok_and(|s| s.parameters == count))
        .ok_or_else(|| BackboneError::Io {
            path: path.display().to_string(),
            message: format!(
                "{count} parameters fit neither the ImageNet-64 nor the tiny U-Net layout"
            ),
        })?;
    Ok((
        BackboneSpec::Checkpoint {
            path: path.to_path_buf(),
            config,
            adapter: None,
        },
        count,
    ))
}

/// A quick check, without reading the weights, that the adapter at `path`
/// was made for `spec` (same layout, same base name); the full check of
/// the checkpoint's SHA-256 happens when the backbone is built.
pub fn adapter_fits(spec: &BackboneSpec, path: &Path) -> Result<AdapterMetadata, BackboneError> {
    let meta = read_adapter_metadata(path)?;
    let config = spec.config()?;
    let base = match spec {
        BackboneSpec::Checkpoint { path, .. } => file_name(path),
        BackboneSpec::Random { name, seed, .. } => format!("{name}:{seed}"),
    };
    if meta.base == base && meta.config == config {
        return Ok(meta);
    }
    let base_sha = match spec {
        BackboneSpec::Checkpoint { .. } => "its checkpoint",
        BackboneSpec::Random { .. } => "random weights",
    };
    Err(mismatch(path, &meta, base, base_sha.to_string()))
}

/// Builds the backbone on `device`.
pub fn load_backbone<B: Backend>(
    spec: &BackboneSpec,
    device: &B::Device,
) -> Result<(UNet<B>, BackboneInfo), BackboneError> {
    let config = spec.config()?;
    let (base, base_sha, pretrained, description) = match spec {
        BackboneSpec::Checkpoint { path, .. } => {
            let sha = file_sha256(path).map_err(|e| BackboneError::Io {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            let name = file_name(path);
            let words = format!("pretrained checkpoint {name}");
            (name, Some(sha), true, words)
        }
        BackboneSpec::Random { name, seed, .. } => (
            format!("{name}:{seed}"),
            None,
            false,
            format!(
                "{name}:{seed}: a randomly initialised ADM U-Net (seed {seed}), NOT the paper's pretrained backbone; its results are not the paper's"
            ),
        ),
    };
    let adapter = match spec.adapter() {
        Some(path) => {
            let meta = read_adapter_metadata(path)?;
            check_adapter(path, &meta, &base, base_sha.as_deref(), &config)?;
            Some((path, meta, CheckpointTensors::open(path)?))
        }
        None => None,
    };
    let model = match (spec, &adapter) {
        (BackboneSpec::Checkpoint { path, .. }, Some((_, _, tensors))) => {
            let ckpt = CheckpointTensors::open(path)?;
            UNet::build(
                &config,
                ParamSource::Adapted {
                    base: &ckpt,
                    adapter: tensors,
                },
                device,
            )?
        }
        (BackboneSpec::Checkpoint { path, .. }, None) => {
            let ckpt = CheckpointTensors::open(path)?;
            UNet::build(&config, ParamSource::Checkpoint(&ckpt), device)?
        }
        (BackboneSpec::Random { seed, .. }, Some((_, _, tensors))) => UNet::build(
            &config,
            ParamSource::RandomAdapted {
                rng: NormalRng::new(*seed),
                adapter: tensors,
            },
            device,
        )?,
        (BackboneSpec::Random { seed, .. }, None) => {
            UNet::build(&config, ParamSource::Random(NormalRng::new(*seed)), device)?
        }
    };
    let info = BackboneInfo {
        name: base,
        description: match &adapter {
            Some((path, meta, _)) => format!(
                "{description}, adapted by {} ({} Stage A steps)",
                file_name(path),
                meta.steps
            ),
            None => description,
        },
        pretrained,
        checkpoint_sha256: base_sha,
        adapter: adapter.as_ref().map(|(p, _, _)| p.display().to_string()),
        adapter_steps: adapter.as_ref().map(|(_, m, _)| m.steps),
        parameters: model.num_params(),
        config,
    };
    Ok((model, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_file_is_recognised_by_its_layout() {
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/adm_tiny/model.pt");
        let (spec, count) = spec_for_checkpoint(&fixture).unwrap();
        assert_eq!(count, 2_008_102);
        assert_eq!(spec.config().unwrap(), UNetConfig::tiny());
        let not_a_checkpoint =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/adm_tiny/config.json");
        let e = spec_for_checkpoint(&not_a_checkpoint)
            .unwrap_err()
            .to_string();
        assert!(e.contains("config.json"), "{e}");
    }
}
