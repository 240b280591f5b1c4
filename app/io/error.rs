//! The typed errors of reading inputs, each with a message a user can act on.

use std::path::PathBuf;

use crate::scene::GridMismatch;

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: no such file or folder")]
    NotFound { path: PathBuf },
    #[error("{path}: not a raster GDAL can open ({message})")]
    NotARaster { path: PathBuf, message: String },
    #[error("{path}: reading band {band} failed; the file may be truncated or corrupt ({message})")]
    BandRead {
        path: PathBuf,
        band: usize,
        message: String,
    },
    #[error(
        "{path}: the ENVI header describes {expected} bytes of data, but the data file {data} has {actual}"
    )]
    EnviSizeMismatch {
        path: PathBuf,
        data: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("{path}: holds {count} subdatasets, open one of them by name:\n{list}")]
    Subdatasets {
        path: PathBuf,
        count: usize,
        list: String,
    },
    #[error("{path}: has no variable `{wanted}` (variables found: {found})")]
    MissingVariable {
        path: PathBuf,
        wanted: String,
        found: String,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error(
        "{path}: {width} x {height} pixels x {bands} bands take {need} to read whole, more than the {available}; UNIDIFF_STUDIO_MEMORY_MIB sets what a read may take. Map a scene this size with `unidiff-studio predict --model M --tile 1024`, which reads it in windows"
    )]
    TooBig {
        path: PathBuf,
        width: usize,
        height: usize,
        bands: usize,
        need: String,
        available: String,
    },
    #[error(
        "{path}: the system refused the {need} needed to read it ({available}): free memory, raise the limit or map it with `unidiff-studio predict --model M --tile 1024`, which reads it in windows"
    )]
    AllocationRefused {
        path: PathBuf,
        need: String,
        available: String,
    },
    #[error(transparent)]
    Grid(#[from] GridMismatch),
}

impl ReadError {
    pub(crate) fn format(path: &std::path::Path, message: impl Into<String>) -> Self {
        ReadError::Format {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}
