//! The backbone a worker keeps loaded between requests: built again only
//! when the choice, a file behind it (checkpoint or adapter: path, size,
//! modification time) or the device changes, so that a stroke with the
//! paper's 1.2 GB checkpoint does not re-read, re-hash and rebuild it.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use burn::tensor::backend::Backend;

use crate::model::backbone::{BackboneError, BackboneInfo, BackboneSpec, load_backbone};
use crate::model::unet::UNet;

/// A file as last seen: the same path, size and modification time is taken
/// for the same contents.
#[derive(Debug, Clone, PartialEq)]
struct FileStamp {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        path: path.to_path_buf(),
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

#[derive(Debug, Clone, PartialEq)]
struct BackboneKey {
    spec: BackboneSpec,
    files: Vec<Option<FileStamp>>,
    device: String,
}

fn key_of(spec: &BackboneSpec, device: &str) -> BackboneKey {
    let mut files = Vec::new();
    if let BackboneSpec::Checkpoint { path, .. } = spec {
        files.push(stamp(path));
    }
    if let Some(adapter) = spec.adapter() {
        files.push(stamp(adapter));
    }
    BackboneKey {
        spec: spec.clone(),
        files,
        device: device.to_string(),
    }
}

/// At most one loaded backbone (the last one asked for).
#[derive(Default)]
pub struct LoadedBackbone {
    kept: Option<(BackboneKey, Box<dyn Any + Send>, BackboneInfo)>,
}

impl LoadedBackbone {
    /// The backbone for `spec` on `device` (named `device_name`), built
    /// unless it is the one kept; the flag says whether it was kept.
    pub fn get<B: Backend>(
        &mut self,
        spec: &BackboneSpec,
        device_name: &str,
        device: &B::Device,
    ) -> Result<(&UNet<B>, &BackboneInfo, bool), BackboneError> {
        let key = key_of(spec, device_name);
        let kept = matches!(&self.kept, Some((k, model, _)) if *k == key && model.is::<UNet<B>>());
        if !kept {
            // Free the old one before building the new one.
            self.kept = None;
            let (model, info) = load_backbone::<B>(spec, device)?;
            self.kept = Some((key, Box::new(model), info));
        }
        match &self.kept {
            Some((_, model, info)) => match model.downcast_ref::<UNet<B>>() {
                Some(m) => Ok((m, info, kept)),
                None => Err(BackboneError::Io {
                    path: String::new(),
                    message: "the kept backbone is of another backend".into(),
                }),
            },
            None => Err(BackboneError::Io {
                path: String::new(),
                message: "no backbone was built".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn the_backbone_is_kept_until_its_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = dir.path().join("tiny.pt");
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/adm_tiny/model.pt"),
            &ckpt,
        )
        .unwrap();
        let spec = BackboneSpec::Checkpoint {
            path: ckpt.clone(),
            config: crate::model::config::UNetConfig::tiny(),
            adapter: None,
        };
        let mut loaded = LoadedBackbone::default();
        let device = Default::default();
        let (_, info, kept) = loaded.get::<Flex>(&spec, "cpu", &device).unwrap();
        assert!(!kept && info.pretrained);
        let (_, _, kept) = loaded.get::<Flex>(&spec, "cpu", &device).unwrap();
        assert!(kept, "the same file and device: kept");
        let (_, _, kept) = loaded
            .get::<Flex>(&spec, "another device", &device)
            .unwrap();
        assert!(!kept, "another device: built again");
        // The file replaced (another size): built again, and a broken file
        // is an error, not the old network.
        std::fs::write(&ckpt, b"not a checkpoint").unwrap();
        assert!(
            loaded
                .get::<Flex>(&spec, "another device", &device)
                .is_err()
        );
    }
}
