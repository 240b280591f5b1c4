//! A Stage A result: only the trainable tensors (safetensors) with metadata
//! saying which base checkpoint they belong to and how they were trained.
//! Loading one builds the base model with these tensors in place.

use std::collections::HashMap;
use std::path::Path;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::checkpoint::{CheckpointError, write_f32_safetensors};
use super::config::UNetConfig;
use super::loss::LossKind;
use super::unet::UNet;

/// The safetensors metadata key holding [`AdapterMetadata`] as JSON.
pub const METADATA_KEY: &str = "unidiff_adapter";

/// What an adapter file says about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AdapterMetadata {
    /// The base backbone: a checkpoint file name, or `random:<seed>`.
    pub base: String,
    /// SHA-256 of the base checkpoint file (None for a random base).
    pub base_sha256: Option<String>,
    pub config: UNetConfig,
    /// Modalities adapted on ("prgb", "pca", "sar").
    pub modalities: Vec<String>,
    pub steps: usize,
    pub lr: f64,
    pub batch: usize,
    pub seed: u64,
    pub loss: LossKind,
    /// Mean loss of every step.
    pub loss_curve: Vec<f32>,
    pub trainable_parameters: usize,
    pub trainable_percent: f64,
    pub cancelled: bool,
    pub software: String,
}

/// Writes the trainable tensors of `model` and `meta` to `path` (atomically).
pub fn save_adapter<B: Backend>(
    path: &Path,
    model: &UNet<B>,
    meta: &AdapterMetadata,
) -> Result<(), CheckpointError> {
    let tensors = model
        .trainable_params()
        .iter()
        .map(|(name, p)| Ok((name.clone(), p.shape(), p.values()?)))
        .collect::<Result<Vec<(String, Vec<usize>, Vec<f32>)>, super::tensor_read::TensorReadError>>()
        .map_err(|e| CheckpointError::Unreadable {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    // An adapter with NaN or infinite weights would be refused by every run
    // that loads it: it is never written.
    if let Some((name, _, _)) = tensors
        .iter()
        .find(|(_, _, v)| v.iter().any(|x| !x.is_finite()))
    {
        return Err(CheckpointError::Unreadable {
            path: path.display().to_string(),
            message: format!(
                "not written: the trained tensor {name} holds values that are not finite (the training diverged)"
            ),
        });
    }
    let json = serde_json::to_string(meta).map_err(|e| CheckpointError::Unreadable {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let info = HashMap::from([(METADATA_KEY.to_string(), json)]);
    write_f32_safetensors(path, &tensors, Some(info))
}

/// Reads the metadata of an adapter file.
pub fn read_adapter_metadata(path: &Path) -> Result<AdapterMetadata, CheckpointError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|_| CheckpointError::NotFound {
        path: shown.clone(),
    })?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| {
        CheckpointError::Unreadable {
            path: shown.clone(),
            message: e.to_string(),
        }
    })?;
    let json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(METADATA_KEY))
        .ok_or_else(|| CheckpointError::Unreadable {
            path: shown.clone(),
            message: "no UniDiff adapter metadata; not an adapter file".to_string(),
        })?;
    serde_json::from_str(json).map_err(|e| CheckpointError::Unreadable {
        path: shown,
        message: format!("adapter metadata: {e}"),
    })
}
