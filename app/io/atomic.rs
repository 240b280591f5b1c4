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

/// Checks, before any work, that a file can be written at `target`: it is
/// not a folder, its folder exists and takes a new file (a probe file is
/// created there and removed). The error names the path and the problem.
pub fn check_output_file(target: &Path) -> std::io::Result<()> {
    let shown = target.display();
    if target.is_dir() {
        return Err(std::io::Error::other(format!(
            "{shown} is a folder; give a file name"
        )));
    }
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(std::io::Error::other(format!(
            "cannot write {shown}: the folder {} does not exist",
            parent.display()
        )));
    }
    let probe = temp_path_for(target);
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| std::io::Error::other(format!("cannot write {shown}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_file_is_checked_before_the_work() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_output_file(&dir.path().join("a.safetensors")).is_ok());
        // The probe leaves nothing behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let e = check_output_file(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is a folder"), "{e}");
        let e = check_output_file(&dir.path().join("no/a.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
    }
}
