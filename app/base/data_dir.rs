//! The app's folders (data: preferences, autosaves, downloaded backbones,
//! the log file; cache: GPU kernels): one place that says where they are.

use std::path::PathBuf;

/// `override_var` when set, else `$xdg_var/unidiff-studio`, else
/// `~/home_rel` (the XDG base-directory rule).
fn app_folder(override_var: &str, xdg_var: &str, home_rel: &str) -> PathBuf {
    if let Some(d) = std::env::var_os(override_var) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os(xdg_var) {
        return PathBuf::from(d).join("unidiff-studio");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(home_rel)
}

/// `UNIDIFF_STUDIO_DATA_DIR`, else `$XDG_DATA_HOME/unidiff-studio`, else
/// `~/.local/share/unidiff-studio`.
pub fn data_dir() -> PathBuf {
    app_folder(
        "UNIDIFF_STUDIO_DATA_DIR",
        "XDG_DATA_HOME",
        ".local/share/unidiff-studio",
    )
}

/// `UNIDIFF_STUDIO_CACHE_DIR`, else `$XDG_CACHE_HOME/unidiff-studio`, else
/// `~/.cache/unidiff-studio`.
pub fn cache_dir() -> PathBuf {
    app_folder(
        "UNIDIFF_STUDIO_CACHE_DIR",
        "XDG_CACHE_HOME",
        ".cache/unidiff-studio",
    )
}
