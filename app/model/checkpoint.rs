//! The tensors of a guided-diffusion checkpoint, by name: a PyTorch `.pt`
//! state dict (zip pickle, read lazily by burn-store) or a safetensors file.
//! Building the U-Net takes tensors from here by name and shape, and reports
//! every name that is missing, unexpected or mis-shaped.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use burn::tensor::TensorData;
use sha2::{Digest, Sha256};

/// Why a checkpoint cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: no such file")]
    NotFound { path: String },
    #[error("{path}: not a PyTorch state dict or safetensors file ({message})")]
    Unreadable { path: String, message: String },
    #[error("{path}: holds no tensors")]
    Empty { path: String },
    #[error(
        "{path} does not fit the U-Net configuration:\n{missing_count} missing, {unexpected_count} unexpected, {misshaped_count} mis-shaped tensors\n{details}"
    )]
    Mismatch {
        path: String,
        missing_count: usize,
        unexpected_count: usize,
        misshaped_count: usize,
        details: String,
    },
    #[error("{path}: tensor {name} cannot be read: {message}")]
    BadTensor {
        path: String,
        name: String,
        message: String,
    },
    #[error(transparent)]
    Config(#[from] super::config::ConfigError),
}

enum Entry {
    Snapshot(burn_store::TensorSnapshot),
    Data(TensorData),
}

/// Named tensors of a checkpoint, materialised one at a time.
pub struct CheckpointTensors {
    pub path: String,
    entries: BTreeMap<String, (Vec<usize>, Entry)>,
}

/// SHA-256 of a file, hex; computed once per (path, size, modification
/// time) in this process (the paper's checkpoint takes seconds to hash).
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    type Seen = std::collections::HashMap<(std::path::PathBuf, u64, std::time::SystemTime), String>;
    static SEEN: std::sync::OnceLock<std::sync::Mutex<Seen>> = std::sync::OnceLock::new();
    let meta = std::fs::metadata(path)?;
    let key = meta
        .modified()
        .ok()
        .map(|m| (path.to_path_buf(), meta.len(), m));
    let seen = SEEN.get_or_init(Default::default);
    if let Some(k) = &key
        && let Some(hash) = seen.lock().ok().and_then(|s| s.get(k).cloned())
    {
        return Ok(hash);
    }
    let hash = hash_file(path)?;
    if let (Some(k), Ok(mut s)) = (key, seen.lock()) {
        s.insert(k, hash.clone());
    }
    Ok(hash)
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

impl CheckpointTensors {
    /// Opens a `.pt`/`.pth` (PyTorch) or `.safetensors` file.
    pub fn open(path: &Path) -> Result<Self, CheckpointError> {
        let shown = path.display().to_string();
        if !path.exists() {
            return Err(CheckpointError::NotFound { path: shown });
        }
        let unreadable = |message: String| CheckpointError::Unreadable {
            path: shown.clone(),
            message,
        };
        // A download's `NAME.safetensors.part` is read as what it will be.
        let named = match path.extension() {
            Some(e) if e.eq_ignore_ascii_case("part") => path.with_extension(""),
            _ => path.to_path_buf(),
        };
        let is_safetensors = named
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"));
        let mut entries = BTreeMap::new();
        if is_safetensors {
            let bytes = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
            let st = safetensors::SafeTensors::deserialize(&bytes)
                .map_err(|e| unreadable(e.to_string()))?;
            for (name, view) in st.tensors() {
                let shape = view.shape().to_vec();
                let data = match view.dtype() {
                    safetensors::Dtype::F32 => TensorData::new(
                        view.data()
                            .chunks_exact(4)
                            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                            .collect::<Vec<f32>>(),
                        shape.clone(),
                    ),
                    other => {
                        return Err(CheckpointError::BadTensor {
                            path: shown,
                            name,
                            message: format!("dtype {other:?}, expected F32"),
                        });
                    }
                };
                entries.insert(name, (shape, Entry::Data(data)));
            }
        } else {
            let reader = burn_store::pytorch::PytorchReader::new(path)
                .map_err(|e| unreadable(e.to_string()))?;
            for (name, snap) in reader.into_tensors() {
                let shape = snap.shape.to_vec();
                entries.insert(name, (shape, Entry::Snapshot(snap)));
            }
        }
        if entries.is_empty() {
            return Err(CheckpointError::Empty { path: shown });
        }
        Ok(Self {
            path: shown,
            entries,
        })
    }

    /// Tensor names in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.entries.keys()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Shape of a tensor.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.entries.get(name).map(|(s, _)| s.as_slice())
    }

    /// Total number of values.
    pub fn parameter_count(&self) -> usize {
        self.entries
            .values()
            .map(|(s, _)| s.iter().product::<usize>())
            .sum()
    }

    /// The values of a tensor, as f32.
    pub fn data(&self, name: &str) -> Result<TensorData, CheckpointError> {
        let bad = |message: String| CheckpointError::BadTensor {
            path: self.path.clone(),
            name: name.to_string(),
            message,
        };
        let (_, entry) = self
            .entries
            .get(name)
            .ok_or_else(|| bad("not in the checkpoint".to_string()))?;
        let data = match entry {
            Entry::Data(d) => d.clone(),
            Entry::Snapshot(s) => s.to_data().map_err(|e| bad(format!("{e:?}")))?,
        };
        Ok(data.convert::<f32>())
    }
}

/// A safetensors file of named inputs (f32 and i64 tensors), for the
/// command line's `model forward`.
pub struct TensorFile {
    path: String,
    bytes: Vec<u8>,
}

impl TensorFile {
    pub fn open(path: &Path) -> Result<Self, CheckpointError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|_| CheckpointError::NotFound {
            path: shown.clone(),
        })?;
        safetensors::SafeTensors::deserialize(&bytes).map_err(|e| CheckpointError::Unreadable {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        Ok(Self { path: shown, bytes })
    }

    fn raw(
        &self,
        name: &str,
        dtype: safetensors::Dtype,
    ) -> Result<(Vec<usize>, Vec<u8>), CheckpointError> {
        let bad = |message: String| CheckpointError::BadTensor {
            path: self.path.clone(),
            name: name.to_string(),
            message,
        };
        let st =
            safetensors::SafeTensors::deserialize(&self.bytes).map_err(|e| bad(e.to_string()))?;
        let view = st.tensor(name).map_err(|e| bad(e.to_string()))?;
        if view.dtype() != dtype {
            return Err(bad(format!("dtype {:?}, expected {dtype:?}", view.dtype())));
        }
        Ok((view.shape().to_vec(), view.data().to_vec()))
    }

    pub fn f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), CheckpointError> {
        let (shape, data) = self.raw(name, safetensors::Dtype::F32)?;
        let values = data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok((shape, values))
    }

    pub fn i64(&self, name: &str) -> Result<Vec<i64>, CheckpointError> {
        let (_, data) = self.raw(name, safetensors::Dtype::I64)?;
        Ok(data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect())
    }
}

/// Writes named f32 tensors (name, shape, row-major values) and optional
/// string metadata as a safetensors file, atomically.
pub fn write_f32_safetensors(
    path: &Path,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<(), CheckpointError> {
    let shown = path.display().to_string();
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::with_capacity(tensors.len());
    for ((name, shape, _), b) in tensors.iter().zip(&bytes) {
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
            .map_err(|e| CheckpointError::BadTensor {
                path: shown.clone(),
                name: name.clone(),
                message: e.to_string(),
            })?;
        views.push((name.clone(), view));
    }
    let unwritable = |message: String| CheckpointError::Unreadable {
        path: shown.clone(),
        message,
    };
    let file = safetensors::serialize(views, metadata).map_err(|e| unwritable(e.to_string()))?;
    crate::io::atomic::write_bytes(path, &file).map_err(|e| unwritable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_is_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.bin");
        std::fs::write(&f, b"one").unwrap();
        let first = file_sha256(&f).unwrap();
        assert_eq!(first, file_sha256(&f).unwrap());
        std::fs::write(&f, b"other, longer").unwrap();
        let second = file_sha256(&f).unwrap();
        assert_ne!(first, second);
        assert_eq!(second, hash_file(&f).unwrap());
    }
}
