//! Atomic file writes: write beside the target under a temporary name, then
//! rename, so a crash or a full disk never leaves a half-written output.

use std::path::{Path, PathBuf};

/// A temporary path in the same folder as `target` (same file system, so the
/// final rename is atomic).
pub fn temp_path_for(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "output".to_string());
    target.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes through `write` to a temporary file, then renames it onto `target`.
/// On error the temporary file is removed and `target` is left as it was.
pub fn write_atomically<E: From<std::io::Error>>(
    target: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let tmp = temp_path_for(target);
    if let Err(e) = write(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, target).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        E::from(e)
    })
}

/// Writes bytes atomically.
pub fn write_bytes(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically(target, |tmp| std::fs::write(tmp, bytes))
}
