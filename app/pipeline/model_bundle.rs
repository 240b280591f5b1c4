//! A trained model in one file (`.udmodel`, safetensors with a JSON header):
//! the backbone reference (checkpoint name, SHA-256 and where it was found,
//! or the seeded random layout), the Stage A adapter itself, the head's
//! scaler and weights, the class table, Stage B's settings (modalities, t,
//! block, patch, stride, noise seed) and everything that renders the inputs
//! (`RenderingFit`), so that `predict` renders and classifies another scene
//! as the training scene was. Numbers that must come back bit for bit (the
//! stretch limits, the PCA, the weights) are tensors, not JSON text.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::classification::Classification;
use super::classifier::{FeatureScaler, HostHead};
use super::modality::Modality;
use super::stage_b::StageBConfig;
use crate::model::backbone::{BackboneInfo, BackboneSpec, file_name};
use crate::model::config::UNetConfig;
use crate::model::host_unet::{HeadLinear, HeadMlp, HeadNorm};
use crate::products::pauli::PauliSettings;
use crate::products::pca::pca_projection;
use crate::products::rendering_fit::{Limits, PauliFit, PcaRenderFit, PrgbFit, RenderingFit};
use crate::products::renderings::{RenderSettings, Renderings};
use crate::scene::{ClassInfo, Scene};

/// What the header's `format` says.
const FORMAT: &str = "unidiff-studio model";
/// The bundle layout this build writes and reads.
pub const BUNDLE_VERSION: u32 = 1;
/// The safetensors metadata key holding the JSON header.
const HEADER_KEY: &str = "unidiff_model";
/// The tensor holding the adapter file's bytes.
const ADAPTER_TENSOR: &str = "adapter.file";

/// The frozen backbone a model was trained with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BackboneRef {
    /// A guided-diffusion checkpoint: found again by `path`, or by the name
    /// in the folder the user gives, and checked by its SHA-256.
    Checkpoint {
        file_name: String,
        path: String,
        sha256: String,
        config: UNetConfig,
    },
    /// Seeded random weights of a named layout (not the paper's).
    Random { name: String, seed: u64 },
}

/// A class of the model's table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ClassRecord {
    value: u8,
    name: String,
    color: [u8; 3],
}

/// The JSON header: everything but the tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    software: String,
    backbone: BackboneRef,
    /// The adapter file's name, when the backbone was adapted.
    adapter: Option<String>,
    modalities: Vec<Modality>,
    t: i64,
    block: usize,
    patch: usize,
    stride: usize,
    noise_seed: u64,
    classes: Vec<ClassRecord>,
    hidden_layers: usize,
    cube_bands: Option<usize>,
    wavelengths_nm: Option<Vec<f64>>,
    prgb_bands: Option<[usize; 3]>,
    pca_bands: Option<Vec<usize>>,
    pauli_quad_pol: Option<bool>,
    /// Where the model was trained, for people.
    trained_on: serde_json::Value,
}

/// The Stage A adapter of a model: its bytes once read from a bundle, or
/// the adapter file of the run that trained the model, read only when the
/// bundle is written (a live classification after every stroke builds a
/// bundle it may never save).
#[derive(Debug, Clone, PartialEq)]
pub enum AdapterBytes {
    Read(Vec<u8>),
    InFile(PathBuf),
}

impl AdapterBytes {
    /// The bytes, reading the file when they are not in memory.
    fn bytes(&self) -> Result<std::borrow::Cow<'_, [u8]>, BundleError> {
        match self {
            AdapterBytes::Read(b) => Ok(std::borrow::Cow::Borrowed(b)),
            AdapterBytes::InFile(path) => {
                std::fs::read(path)
                    .map(std::borrow::Cow::Owned)
                    .map_err(|e| BundleError::Unreadable {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    })
            }
        }
    }
}

/// A trained model.
#[derive(Debug, Clone)]
pub struct ModelBundle {
    pub backbone: BackboneRef,
    /// The adapter file's name and bytes.
    pub adapter: Option<(String, AdapterBytes)>,
    pub modalities: Vec<Modality>,
    pub t: i64,
    pub block: usize,
    pub patch: usize,
    pub stride: usize,
    pub noise_seed: u64,
    pub classes: Vec<ClassInfo>,
    pub rendering: RenderingFit,
    pub head: HostHead,
    /// The training inputs, as `run.json` names them.
    pub trained_on: serde_json::Value,
}

/// A bundle that cannot be written or read, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read the model {path}: {message}")]
    Unreadable { path: String, message: String },
    #[error("{path} is not a UniDiff Studio model ({message})")]
    NotAModel { path: String, message: String },
    #[error(
        "the model {path} has layout version {found}; this build reads version {BUNDLE_VERSION} (made by {software}): use that version of UniDiff Studio, or train the model again"
    )]
    Version {
        path: String,
        found: u32,
        software: String,
    },
    #[error("the model {path} is damaged: {message}")]
    Damaged { path: String, message: String },
    #[error("cannot write the model {path}: {message}")]
    Unwritable { path: String, message: String },
    #[error(
        "no model to save: the run's result is not the diffusion MLP's on the CPU path (a model keeps the MLP head; the forests are not saved)"
    )]
    NoHead,
    #[error(
        "the model's backbone {file_name} is not at {path}: give the checkpoint's path (its SHA-256 is {sha256})"
    )]
    BackboneMissing {
        file_name: String,
        path: String,
        sha256: String,
    },
    #[error(
        "{path} is not the model's backbone: its SHA-256 is {found}, the model was trained on {file_name} with SHA-256 {sha256}"
    )]
    BackboneChanged {
        file_name: String,
        path: String,
        sha256: String,
        found: String,
    },
}

/// What a run leaves for its model: the scene and how it was rendered,
/// the backbone, Stage B's settings and the result.
pub struct TrainedRun<'a> {
    pub spec: &'a BackboneSpec,
    pub info: &'a BackboneInfo,
    pub scene: &'a Scene,
    pub renderings: &'a Renderings,
    pub render_settings: RenderSettings,
    pub stage_b: &'a StageBConfig,
    pub outcome: &'a Classification,
    pub classes: Vec<ClassInfo>,
    /// The training inputs, as `run.json` names them.
    pub trained_on: serde_json::Value,
}

/// One tensor to write: name, dtype, shape, little-endian bytes.
type RawTensor = (String, Dtype, Vec<usize>, Vec<u8>);

fn f32_tensor(name: impl Into<String>, shape: Vec<usize>, v: &[f32]) -> RawTensor {
    let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    (name.into(), Dtype::F32, shape, bytes)
}

fn f64_tensor(name: impl Into<String>, shape: Vec<usize>, v: &[f64]) -> RawTensor {
    let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    (name.into(), Dtype::F64, shape, bytes)
}

fn limits_tensor(name: &str, l: &Limits) -> RawTensor {
    let flat: Vec<f64> = l.iter().flat_map(|&(a, b)| [a, b]).collect();
    f64_tensor(name, vec![3, 2], &flat)
}

fn linear_tensors(prefix: &str, l: &HeadLinear, out: &mut Vec<RawTensor>) {
    out.push(f32_tensor(
        format!("{prefix}.weight"),
        vec![l.d_in, l.d_out],
        &l.weight,
    ));
    out.push(f32_tensor(format!("{prefix}.bias"), vec![l.d_out], &l.bias));
}

impl ModelBundle {
    /// The model of a finished run: its MLP head (trained on the CPU path)
    /// and what it needs around it; the adapter file is read when the
    /// bundle is written.
    pub fn from_run(run: &TrainedRun<'_>) -> Result<Self, BundleError> {
        let (_, out) = run.outcome.mlp.as_ref().ok_or(BundleError::NoHead)?;
        let head = out.host_head.as_ref().ok_or(BundleError::NoHead)?;
        let backbone = match run.spec {
            BackboneSpec::Checkpoint { path, config, .. } => BackboneRef::Checkpoint {
                file_name: file_name(path),
                path: std::fs::canonicalize(path)
                    .unwrap_or_else(|_| path.clone())
                    .display()
                    .to_string(),
                sha256: run.info.checkpoint_sha256.clone().unwrap_or_default(),
                config: config.clone(),
            },
            BackboneSpec::Random { name, seed, .. } => BackboneRef::Random {
                name: name.clone(),
                seed: *seed,
            },
        };
        let adapter = run
            .spec
            .adapter()
            .map(|path| (file_name(path), AdapterBytes::InFile(path.to_path_buf())));
        Ok(Self {
            backbone,
            adapter,
            modalities: run.outcome.modalities.clone(),
            t: run.stage_b.t,
            block: run.stage_b.block,
            patch: run.stage_b.patch,
            stride: run.stage_b.stride,
            noise_seed: run.stage_b.noise_seed,
            classes: run.classes.clone(),
            rendering: RenderingFit::of(run.scene, run.renderings, run.render_settings),
            head: (**head).clone(),
            trained_on: run.trained_on.clone(),
        })
    }

    /// The backbone to build for this model: the checkpoint at `checkpoint`
    /// (or where it was found at training), with `adapter` (the bundle's
    /// adapter written out by [`Self::adapter_file_in`]).
    pub fn backbone_spec(
        &self,
        checkpoint: Option<&Path>,
        adapter: Option<PathBuf>,
    ) -> Result<BackboneSpec, BundleError> {
        Ok(match &self.backbone {
            BackboneRef::Checkpoint {
                file_name,
                path,
                sha256,
                config,
            } => {
                let path = checkpoint.map_or_else(|| PathBuf::from(path), Path::to_path_buf);
                if !path.is_file() {
                    return Err(BundleError::BackboneMissing {
                        file_name: file_name.clone(),
                        path: path.display().to_string(),
                        sha256: sha256.clone(),
                    });
                }
                BackboneSpec::Checkpoint {
                    path,
                    config: config.clone(),
                    adapter,
                }
            }
            BackboneRef::Random { name, seed } => BackboneSpec::Random {
                name: name.clone(),
                seed: *seed,
                adapter,
            },
        })
    }

    /// Refuses a built backbone whose checkpoint is not the model's.
    pub fn check_backbone(&self, info: &BackboneInfo, path: &Path) -> Result<(), BundleError> {
        if let BackboneRef::Checkpoint {
            file_name, sha256, ..
        } = &self.backbone
            && info.checkpoint_sha256.as_deref() != Some(sha256.as_str())
        {
            return Err(BundleError::BackboneChanged {
                file_name: file_name.clone(),
                path: path.display().to_string(),
                sha256: sha256.clone(),
                found: info.checkpoint_sha256.clone().unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// Writes the bundle to `path` atomically (a temporary file beside it,
    /// renamed when whole).
    pub fn write(&self, path: &Path) -> Result<(), BundleError> {
        let shown = path.display().to_string();
        let unwritable = |message: String| BundleError::Unwritable {
            path: shown.clone(),
            message,
        };
        let r = &self.rendering;
        let header = Header {
            format: FORMAT.to_string(),
            version: BUNDLE_VERSION,
            software: format!("unidiff-studio {}", env!("CARGO_PKG_VERSION")),
            backbone: self.backbone.clone(),
            adapter: self.adapter.as_ref().map(|(n, _)| n.clone()),
            modalities: self.modalities.clone(),
            t: self.t,
            block: self.block,
            patch: self.patch,
            stride: self.stride,
            noise_seed: self.noise_seed,
            classes: self
                .classes
                .iter()
                .map(|c| ClassRecord {
                    value: c.value,
                    name: c.name.clone(),
                    color: c.color,
                })
                .collect(),
            hidden_layers: self.head.mlp().hidden.len(),
            cube_bands: r.cube_bands,
            wavelengths_nm: r.wavelengths_nm.clone(),
            prgb_bands: r.prgb.as_ref().map(|p| p.bands),
            pca_bands: r.pca.as_ref().map(|p| p.fit.bands_used.clone()),
            pauli_quad_pol: r.pauli.as_ref().map(|p| p.quad_pol),
            trained_on: self.trained_on.clone(),
        };
        let json = serde_json::to_string(&header).map_err(|e| unwritable(e.to_string()))?;
        let mut tensors = Vec::new();
        let scaler = self.head.scaler();
        let dim = scaler.mean.len();
        tensors.push(f32_tensor("head.scaler.mean", vec![dim], &scaler.mean));
        tensors.push(f32_tensor(
            "head.scaler.inv_std",
            vec![dim],
            &scaler.inv_std,
        ));
        let mlp = self.head.mlp();
        for (i, (l, n)) in mlp.hidden.iter().enumerate() {
            linear_tensors(&format!("head.hidden.{i}.linear"), l, &mut tensors);
            let c = n.gamma.len();
            let p = format!("head.hidden.{i}.norm");
            tensors.push(f32_tensor(format!("{p}.gamma"), vec![c], &n.gamma));
            tensors.push(f32_tensor(format!("{p}.beta"), vec![c], &n.beta));
            tensors.push(f32_tensor(
                format!("{p}.running_mean"),
                vec![c],
                &n.running_mean,
            ));
            tensors.push(f32_tensor(
                format!("{p}.running_var"),
                vec![c],
                &n.running_var,
            ));
            tensors.push(f32_tensor(
                format!("{p}.momentum_epsilon"),
                vec![2],
                &[n.momentum, n.epsilon],
            ));
        }
        linear_tensors("head.out", &mlp.out, &mut tensors);
        if let Some(p) = &r.prgb {
            tensors.push(limits_tensor("render.prgb.limits", &p.limits));
        }
        if let Some(p) = &r.pca {
            let nb = p.fit.bands_used.len();
            tensors.push(f64_tensor("render.pca.mean", vec![nb], &p.fit.mean));
            let comps: Vec<f64> = p.fit.components.iter().flatten().copied().collect();
            tensors.push(f64_tensor(
                "render.pca.components",
                vec![p.fit.components.len(), nb],
                &comps,
            ));
            tensors.push(limits_tensor("render.pca.limits", &p.limits));
        }
        if let Some(p) = &r.pauli {
            tensors.push(limits_tensor("render.pauli.limits", &p.limits));
            let s = &p.settings;
            tensors.push(f64_tensor(
                "render.pauli.gains_gamma",
                vec![4],
                &[s.gains[0], s.gains[1], s.gains[2], s.gamma],
            ));
        }
        if let Some((_, adapter)) = &self.adapter {
            let bytes = adapter.bytes()?.into_owned();
            tensors.push((
                ADAPTER_TENSOR.to_string(),
                Dtype::U8,
                vec![bytes.len()],
                bytes,
            ));
        }
        let mut views = Vec::with_capacity(tensors.len());
        for (name, dtype, shape, bytes) in &tensors {
            let view = safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)
                .map_err(|e| unwritable(format!("tensor {name}: {e}")))?;
            views.push((name.clone(), view));
        }
        let meta = HashMap::from([(HEADER_KEY.to_string(), json)]);
        let file =
            safetensors::serialize(views, Some(meta)).map_err(|e| unwritable(e.to_string()))?;
        crate::io::atomic::write_bytes(path, &file).map_err(|e| unwritable(e.to_string()))
    }

    /// Reads a bundle, refusing another layout version and naming what is
    /// missing or damaged.
    pub fn read(path: &Path) -> Result<Self, BundleError> {
        Self::read_with_sha256(path).map(|(bundle, _)| bundle)
    }

    /// [`ModelBundle::read`], with the SHA-256 (hex) of the bytes read: the
    /// file is read once.
    pub fn read_with_sha256(path: &Path) -> Result<(Self, String), BundleError> {
        use sha2::Digest;
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| BundleError::Unreadable {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        let sha256 = format!("{:x}", sha2::Sha256::digest(&bytes));
        Ok((Self::from_bytes(shown, &bytes)?, sha256))
    }

    /// A bundle from the bytes of the file `shown`.
    fn from_bytes(shown: String, bytes: &[u8]) -> Result<Self, BundleError> {
        let not_a_model = |message: String| BundleError::NotAModel {
            path: shown.clone(),
            message,
        };
        let (_, meta) =
            SafeTensors::read_metadata(bytes).map_err(|e| not_a_model(e.to_string()))?;
        let json = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get(HEADER_KEY))
            .ok_or_else(|| not_a_model("no model header".to_string()))?;
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| not_a_model(e.to_string()))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(not_a_model("another format".to_string()));
        }
        let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version != u64::from(BUNDLE_VERSION) {
            return Err(BundleError::Version {
                path: shown,
                found: u32::try_from(version).unwrap_or(u32::MAX),
                software: value
                    .get("software")
                    .and_then(|s| s.as_str())
                    .unwrap_or("an unknown version")
                    .to_string(),
            });
        }
        let damaged = |message: String| BundleError::Damaged {
            path: shown.clone(),
            message,
        };
        let header: Header =
            serde_json::from_value(value).map_err(|e| damaged(format!("header: {e}")))?;
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| damaged(e.to_string()))?;
        let reader = Tensors {
            tensors: &tensors,
            damaged: &damaged,
        };
        let mut hidden = Vec::with_capacity(header.hidden_layers);
        for i in 0..header.hidden_layers {
            let linear = reader.linear(&format!("head.hidden.{i}.linear"))?;
            let p = format!("head.hidden.{i}.norm");
            let me = reader.f32(&format!("{p}.momentum_epsilon"), Some(2))?;
            let c = linear.d_out;
            hidden.push((
                linear,
                HeadNorm {
                    gamma: reader.f32(&format!("{p}.gamma"), Some(c))?,
                    beta: reader.f32(&format!("{p}.beta"), Some(c))?,
                    running_mean: reader.f32(&format!("{p}.running_mean"), Some(c))?,
                    running_var: reader.f32(&format!("{p}.running_var"), Some(c))?,
                    momentum: me[0],
                    epsilon: me[1],
                },
            ));
        }
        let out = reader.linear("head.out")?;
        let dim = hidden.first().map_or(out.d_in, |(l, _)| l.d_in);
        let scaler = FeatureScaler {
            mean: reader.f32("head.scaler.mean", Some(dim))?,
            inv_std: reader.f32("head.scaler.inv_std", Some(dim))?,
        };
        let chained = hidden
            .iter()
            .map(|(l, _)| (l.d_in, l.d_out))
            .chain([(out.d_in, out.d_out)])
            .collect::<Vec<_>>();
        if chained.windows(2).any(|w| w[0].1 != w[1].0) {
            return Err(damaged(format!(
                "the head's layers do not chain: {chained:?}"
            )));
        }
        if out.d_out != header.classes.len() {
            return Err(damaged(format!(
                "the head predicts {} classes, the class table has {}",
                out.d_out,
                header.classes.len()
            )));
        }
        let head = HostHead::new(scaler, HeadMlp { hidden, out });
        let prgb = match header.prgb_bands {
            Some(bands) => Some(PrgbFit {
                bands,
                limits: reader.limits("render.prgb.limits")?,
            }),
            None => None,
        };
        let pca = match &header.pca_bands {
            Some(bands) => {
                let nb = bands.len();
                let mean = reader.f64("render.pca.mean", Some(nb))?;
                let flat = reader.f64("render.pca.components", Some(3 * nb))?;
                let components = flat.chunks(nb.max(1)).map(<[f64]>::to_vec).collect();
                Some(PcaRenderFit {
                    fit: pca_projection(bands.clone(), mean, components),
                    limits: reader.limits("render.pca.limits")?,
                })
            }
            None => None,
        };
        let pauli = match header.pauli_quad_pol {
            Some(quad_pol) => {
                let g = reader.f64("render.pauli.gains_gamma", Some(4))?;
                Some(PauliFit {
                    quad_pol,
                    settings: PauliSettings {
                        gains: [g[0], g[1], g[2]],
                        gamma: g[3],
                    },
                    limits: reader.limits("render.pauli.limits")?,
                })
            }
            None => None,
        };
        let adapter = match &header.adapter {
            Some(name) => {
                let t = tensors
                    .tensor(ADAPTER_TENSOR)
                    .map_err(|e| damaged(format!("the adapter: {e}")))?;
                Some((name.clone(), AdapterBytes::Read(t.data().to_vec())))
            }
            None => None,
        };
        Ok(Self {
            backbone: header.backbone,
            adapter,
            modalities: header.modalities,
            t: header.t,
            block: header.block,
            patch: header.patch,
            stride: header.stride,
            noise_seed: header.noise_seed,
            classes: header
                .classes
                .into_iter()
                .map(|c| ClassInfo {
                    value: c.value,
                    name: c.name,
                    color: c.color,
                })
                .collect(),
            rendering: RenderingFit {
                cube_bands: header.cube_bands,
                wavelengths_nm: header.wavelengths_nm,
                prgb,
                pca,
                pauli,
            },
            head,
            trained_on: header.trained_on,
        })
    }

    /// Writes the adapter into `dir` (hidden, removed by the caller) so that
    /// the backbone loader can read it; None without an adapter.
    pub fn adapter_file_in(&self, dir: &Path) -> std::io::Result<Option<PathBuf>> {
        let Some((name, adapter)) = &self.adapter else {
            return Ok(None);
        };
        let bytes = adapter.bytes().map_err(std::io::Error::other)?;
        let path = dir.join(format!(".{}.{}", std::process::id(), name));
        crate::io::atomic::write_bytes(&path, &bytes)?;
        Ok(Some(path))
    }
}

/// Typed reads of a bundle's tensors, naming the one that is missing or of
/// the wrong size.
struct Tensors<'a, 'b> {
    tensors: &'a SafeTensors<'b>,
    damaged: &'a dyn Fn(String) -> BundleError,
}

impl Tensors<'_, '_> {
    fn raw(
        &self,
        name: &str,
        dtype: Dtype,
        width: usize,
        len: Option<usize>,
    ) -> Result<Vec<[u8; 8]>, BundleError> {
        let t = self
            .tensors
            .tensor(name)
            .map_err(|_| (self.damaged)(format!("tensor {name} is missing")))?;
        let n = t.shape().iter().product::<usize>();
        if t.dtype() != dtype || len.is_some_and(|l| l != n) || t.data().len() != n * width {
            return Err((self.damaged)(format!(
                "tensor {name} is {:?} {:?}, expected {dtype:?} of {len:?} values",
                t.dtype(),
                t.shape()
            )));
        }
        Ok(t.data()
            .chunks_exact(width)
            .map(|c| {
                let mut b = [0u8; 8];
                b[..width].copy_from_slice(c);
                b
            })
            .collect())
    }

    fn f32(&self, name: &str, len: Option<usize>) -> Result<Vec<f32>, BundleError> {
        Ok(self
            .raw(name, Dtype::F32, 4, len)?
            .into_iter()
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    fn f64(&self, name: &str, len: Option<usize>) -> Result<Vec<f64>, BundleError> {
        Ok(self
            .raw(name, Dtype::F64, 8, len)?
            .into_iter()
            .map(f64::from_le_bytes)
            .collect())
    }

    fn limits(&self, name: &str) -> Result<Limits, BundleError> {
        let v = self.f64(name, Some(6))?;
        Ok([(v[0], v[1]), (v[2], v[3]), (v[4], v[5])])
    }

    fn linear(&self, prefix: &str) -> Result<HeadLinear, BundleError> {
        let name = format!("{prefix}.weight");
        let shape = self
            .tensors
            .tensor(&name)
            .map_err(|_| (self.damaged)(format!("tensor {name} is missing")))?
            .shape()
            .to_vec();
        let [d_in, d_out] = shape[..] else {
            return Err((self.damaged)(format!("tensor {name} has shape {shape:?}")));
        };
        Ok(HeadLinear {
            weight: self.f32(&name, Some(d_in * d_out))?,
            bias: self.f32(&format!("{prefix}.bias"), Some(d_out))?,
            d_in,
            d_out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::products::pca::pca_projection;

    fn linear(d_in: usize, d_out: usize, seed: f32) -> HeadLinear {
        HeadLinear {
            weight: (0..d_in * d_out)
                .map(|i| (i as f32 * 0.37 + seed).sin())
                .collect(),
            bias: (0..d_out).map(|i| i as f32 * 1e-3 - seed).collect(),
            d_in,
            d_out,
        }
    }

    fn bundle() -> ModelBundle {
        let norm = HeadNorm {
            gamma: vec![1.1; 4],
            beta: vec![0.1; 4],
            running_mean: vec![0.3, -0.2, 0.0, 1.0],
            running_var: vec![1.0, 2.0, 0.5, 0.25],
            momentum: 0.1,
            epsilon: 1e-5,
        };
        ModelBundle {
            backbone: BackboneRef::Random {
                name: "tiny-random".into(),
                seed: 3,
            },
            adapter: Some((
                "a.safetensors".into(),
                AdapterBytes::Read(vec![1, 2, 3, 255]),
            )),
            modalities: vec![Modality::Prgb, Modality::Sar],
            t: 0,
            block: 5,
            patch: 32,
            stride: 16,
            noise_seed: 3,
            classes: crate::scene::named_classes(2, &["dry".into(), "water".into()]),
            rendering: RenderingFit {
                cube_bands: Some(13),
                wavelengths_nm: None,
                prgb: Some(PrgbFit {
                    bands: [3, 2, 1],
                    limits: [(0.1, 0.7), (1.0 / 3.0, 2e-7), (-5.5, 1e300)],
                }),
                pca: Some(PcaRenderFit {
                    fit: pca_projection(
                        vec![0, 1, 3],
                        vec![0.1, 0.2, std::f64::consts::PI],
                        vec![
                            vec![1.0, 2.0, 3.0],
                            vec![4.0, 5.0, 6.0],
                            vec![7.0, 8.0, 9.5],
                        ],
                    ),
                    limits: [(-1.0, 1.0), (0.0, 2.0), (1e-17, 3.0)],
                }),
                pauli: Some(PauliFit {
                    quad_pol: false,
                    settings: PauliSettings::default(),
                    limits: [(0.01, 0.5), (0.2, 0.9), (0.0, 1.7)],
                }),
            },
            head: HostHead::new(
                FeatureScaler {
                    mean: vec![0.5; 6],
                    inv_std: vec![2.0; 6],
                },
                HeadMlp {
                    hidden: vec![(linear(6, 4, 0.2), norm)],
                    out: linear(4, 2, 0.9),
                },
            ),
            trained_on: serde_json::json!({ "hsi": "x.tif" }),
        }
    }

    #[test]
    fn an_adapter_in_a_file_is_read_when_the_bundle_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let adapter = dir.path().join("run_adapter.safetensors");
        std::fs::write(&adapter, [9u8, 8, 7]).unwrap();
        let mut b = bundle();
        b.adapter = Some((
            "run_adapter.safetensors".into(),
            AdapterBytes::InFile(adapter.clone()),
        ));
        let path = dir.path().join("m.udmodel");
        b.write(&path).unwrap();
        let r = ModelBundle::read(&path).unwrap();
        assert_eq!(
            r.adapter,
            Some((
                "run_adapter.safetensors".into(),
                AdapterBytes::Read(vec![9, 8, 7])
            ))
        );
        // Gone by the time the model is saved: said, and nothing written.
        std::fs::remove_file(&adapter).unwrap();
        let other = dir.path().join("n.udmodel");
        let e = b.write(&other).unwrap_err().to_string();
        assert!(e.contains("run_adapter.safetensors"), "{e}");
        assert!(!other.exists());
    }

    #[test]
    fn a_bundle_comes_back_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.udmodel");
        let b = bundle();
        b.write(&path).unwrap();
        let (r, sha256) = ModelBundle::read_with_sha256(&path).unwrap();
        // The hash of the bytes read is the file's.
        assert_eq!(
            sha256,
            crate::model::checkpoint::file_sha256(&path).unwrap()
        );
        assert_eq!(r.backbone, b.backbone);
        assert_eq!(r.adapter, b.adapter);
        assert_eq!((r.t, r.block, r.patch, r.stride), (0, 5, 32, 16));
        assert_eq!(r.modalities, b.modalities);
        assert_eq!(r.classes, b.classes);
        assert_eq!(r.head.mlp(), b.head.mlp());
        assert_eq!(r.head.scaler(), b.head.scaler());
        assert_eq!(r.rendering.prgb, b.rendering.prgb);
        assert_eq!(r.rendering.pauli, b.rendering.pauli);
        let (rp, bp) = (
            r.rendering.pca.as_ref().unwrap(),
            b.rendering.pca.as_ref().unwrap(),
        );
        assert_eq!(rp.limits, bp.limits);
        assert_eq!(
            (&rp.fit.bands_used, &rp.fit.mean, &rp.fit.components),
            (&bp.fit.bands_used, &bp.fit.mean, &bp.fit.components)
        );
        // Nothing but the file at the end: the temporary name is gone.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn another_version_a_foreign_file_and_a_damaged_one_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.udmodel");
        bundle().write(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();

        // A newer layout: the header says version 2.
        // The header is a JSON string inside safetensors' own JSON header.
        let key = br#"version\":1"#;
        let at = bytes
            .windows(key.len())
            .position(|w| w == key)
            .expect("the header's version");
        let mut newer_bytes = bytes.clone();
        newer_bytes[at + key.len() - 1] = b'2';
        let newer = dir.path().join("newer.udmodel");
        std::fs::write(&newer, &newer_bytes).unwrap();
        let e = ModelBundle::read(&newer).unwrap_err().to_string();
        assert!(
            e.contains("newer.udmodel") && e.contains("version 2"),
            "{e}"
        );

        // A safetensors file that is not a model.
        let other = dir.path().join("adapter.safetensors");
        crate::model::checkpoint::write_f32_safetensors(
            &other,
            &[("w".into(), vec![2], vec![1.0, 2.0])],
            None,
        )
        .unwrap();
        let e = ModelBundle::read(&other).unwrap_err().to_string();
        assert!(
            e.contains("adapter.safetensors") && e.contains("not a UniDiff Studio model"),
            "{e}"
        );

        // Cut short: named as damaged or unreadable, never a panic.
        let cut = dir.path().join("cut.udmodel");
        std::fs::write(&cut, &bytes[..bytes.len() - 40]).unwrap();
        let e = ModelBundle::read(&cut).unwrap_err().to_string();
        assert!(e.contains("cut.udmodel"), "{e}");

        // A missing file.
        let e = ModelBundle::read(&dir.path().join("none.udmodel"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.udmodel"), "{e}");
    }

    #[test]
    fn a_moved_checkpoint_is_named_and_another_one_refused() {
        let mut b = bundle();
        b.backbone = BackboneRef::Checkpoint {
            file_name: "64x64_diffusion.pt".into(),
            path: "/nowhere/64x64_diffusion.pt".into(),
            sha256: "ab".repeat(32),
            config: UNetConfig::tiny(),
        };
        let e = b.backbone_spec(None, None).unwrap_err().to_string();
        assert!(
            e.contains("64x64_diffusion.pt") && e.contains("/nowhere"),
            "{e}"
        );
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/adm_tiny/model.pt");
        let spec = b.backbone_spec(Some(&fixture), None).unwrap();
        let (_, info) = crate::model::backbone::load_backbone::<burn::backend::Flex>(
            &spec,
            &Default::default(),
        )
        .unwrap();
        let e = b.check_backbone(&info, &fixture).unwrap_err().to_string();
        assert!(e.contains("model.pt") && e.contains("SHA-256"), "{e}");
    }
}
