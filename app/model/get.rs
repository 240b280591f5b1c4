//! Getting the paper's backbone: the ImageNet 64x64 guided-diffusion
//! checkpoint fetched (resumably) into the data folder's `backbones/`,
//! checked by its layout before it is used (every tensor of the U-Net
//! configuration with its shape, nothing else), recorded with its SHA-256
//! and size in a JSON beside it, and only then renamed into place. A wrong
//! or broken file is deleted; a backbone already there stays until the new
//! one has passed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::checkpoint::{CheckpointError, CheckpointTensors, file_sha256};
use super::config::UNetConfig;
use super::inspect::expected_tensors;
use crate::base::CancelFlag;
use crate::io::atomic::write_bytes;
use crate::io::download::{DownloadError, DownloadProgress, fetch_resumable, part_path};

/// Where the paper's checkpoint is published (OpenAI guided-diffusion).
pub const PAPER_BACKBONE_URL: &str =
    "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/64x64_diffusion.pt";

/// What to get, and where.
#[derive(Debug, Clone)]
pub struct GetRequest {
    pub url: String,
    /// The folder the checkpoint goes to (the data folder's `backbones/`).
    pub dir: PathBuf,
    /// The layout the file must have.
    pub config: UNetConfig,
}

impl GetRequest {
    /// The paper's checkpoint into `dir`.
    pub fn paper(dir: PathBuf) -> Self {
        Self {
            url: PAPER_BACKBONE_URL.to_string(),
            dir,
            config: UNetConfig::imagenet64(),
        }
    }

    /// The file the download becomes: the URL's last path segment.
    pub fn target(&self) -> PathBuf {
        let name = self
            .url
            .split(['?', '#'])
            .next()
            .and_then(|u| u.rsplit('/').next())
            .filter(|n| !n.is_empty())
            .unwrap_or("backbone.pt");
        self.dir.join(name)
    }
}

/// The record kept beside a fetched checkpoint (`NAME.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackboneRecord {
    pub url: String,
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
    pub tensors: usize,
    pub parameters: usize,
}

/// Why the backbone could not be got.
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    #[error(transparent)]
    Download(#[from] DownloadError),
    #[error("the downloaded file is not the expected checkpoint and was deleted: {0}")]
    WrongFile(CheckpointError),
    #[error("cannot create {path}: {message}")]
    Folder { path: String, message: String },
    #[error("cannot finish {path}: {message}")]
    Finish { path: String, message: String },
}

/// Every tensor of `config` present with its shape and nothing more: read
/// from the file's index, without its weights.
pub fn check_layout(ckpt: &CheckpointTensors, config: &UNetConfig) -> Result<(), CheckpointError> {
    let expected = expected_tensors(config)?;
    let mut missing = Vec::new();
    let mut misshaped = Vec::new();
    for (name, shape) in &expected {
        match ckpt.shape(name) {
            None => missing.push(format!("  missing: {name} {shape:?}")),
            Some(found) if found != shape.as_slice() => misshaped.push(format!(
                "  mis-shaped: {name} is {found:?}, expected {shape:?}"
            )),
            Some(_) => {}
        }
    }
    let known: std::collections::HashSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    let unexpected: Vec<String> = ckpt
        .names()
        .filter(|n| !known.contains(n.as_str()))
        .map(|n| format!("  unexpected: {n}"))
        .collect();
    if missing.is_empty() && misshaped.is_empty() && unexpected.is_empty() {
        return Ok(());
    }
    const SHOWN: usize = 8;
    let mut details = Vec::new();
    for list in [&missing, &misshaped, &unexpected] {
        details.extend(list.iter().take(SHOWN).cloned());
        if list.len() > SHOWN {
            details.push(format!("  ... and {} more", list.len() - SHOWN));
        }
    }
    Err(CheckpointError::Mismatch {
        path: ckpt.path.clone(),
        missing_count: missing.len(),
        unexpected_count: unexpected.len(),
        misshaped_count: misshaped.len(),
        details: details.join("\n"),
    })
}

/// The record path beside a checkpoint.
pub fn record_path(checkpoint: &Path) -> PathBuf {
    checkpoint.with_extension("json")
}

/// Fetches, checks, records and renames into place; returns the
/// checkpoint's path and record.
pub fn get_backbone(
    request: &GetRequest,
    cancel: &CancelFlag,
    progress: &mut dyn FnMut(&DownloadProgress),
) -> Result<(PathBuf, BackboneRecord), GetError> {
    let created = !request.dir.exists();
    std::fs::create_dir_all(&request.dir).map_err(|e| GetError::Folder {
        path: request.dir.display().to_string(),
        message: e.to_string(),
    })?;
    let target = request.target();
    let part = part_path(&target);
    let bytes = match fetch_resumable(&request.url, &part, cancel, progress) {
        Ok(bytes) => bytes,
        Err(e) => {
            // A folder made for this download and left empty goes with it
            // (one holding a partial download stays, to be resumed).
            if created {
                let _ = std::fs::remove_dir(&request.dir);
            }
            return Err(e.into());
        }
    };
    let discard = |e: CheckpointError| {
        // A file that is not the checkpoint cannot be resumed into one.
        let _ = std::fs::remove_file(&part);
        GetError::WrongFile(e)
    };
    let ckpt = CheckpointTensors::open(&part).map_err(discard)?;
    check_layout(&ckpt, &request.config).map_err(discard)?;
    let finish = |e: std::io::Error| GetError::Finish {
        path: target.display().to_string(),
        message: e.to_string(),
    };
    let record = BackboneRecord {
        url: request.url.clone(),
        file: target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        bytes,
        sha256: file_sha256(&part).map_err(finish)?,
        tensors: ckpt.len(),
        parameters: ckpt.parameter_count(),
    };
    let text =
        serde_json::to_string_pretty(&record).map_err(|e| finish(std::io::Error::other(e)))?;
    write_bytes(&record_path(&target), format!("{text}\n").as_bytes()).map_err(finish)?;
    std::fs::rename(&part, &target).map_err(finish)?;
    Ok((target, record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_named_after_the_url() {
        let r = GetRequest::paper(PathBuf::from("/d"));
        assert_eq!(r.target(), PathBuf::from("/d/64x64_diffusion.pt"));
        let odd = GetRequest {
            url: "http://127.0.0.1:9/files/tiny.pt?x=1".into(),
            ..r.clone()
        };
        assert_eq!(odd.target(), PathBuf::from("/d/tiny.pt"));
        let bare = GetRequest {
            url: "http://127.0.0.1:9/".into(),
            ..r
        };
        assert_eq!(bare.target(), PathBuf::from("/d/backbone.pt"));
    }
}
