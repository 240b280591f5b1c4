//! The app's data folder (preferences, autosaves, downloaded backbones, the
//! log file): one place that says where it is.

use std::path::PathBuf;

/// `UNIDIFF_STUDIO_DATA_DIR`, else `$XDG_DATA_HOME/unidiff-studio`, else
/// `~/.local/share/unidiff-studio`.
pub fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("UNIDIFF_STUDIO_DATA_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("unidiff-studio");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".local/share/unidiff-studio")
}
