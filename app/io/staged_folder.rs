//! An output folder written as one unit: checked before the work starts,
//! filled under a hidden sibling name, and renamed into place only when
//! every file in it is whole. A failed, cancelled or killed run leaves the
//! folder as it was (and at most one hidden sibling, which the next run
//! removes); an existing folder with files is replaced only when asked.

use std::path::{Path, PathBuf};

/// Why an output folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("{path} is a file, not a folder; give a folder for the outputs")]
    IsAFile { path: String },
    #[error(
        "{path} already holds files ({first} …); give an empty or new folder, or --overwrite to replace it as a whole"
    )]
    NotEmpty { path: String, first: String },
    #[error("cannot write the outputs to {path}: {message}")]
    Unwritable { path: String, message: String },
}

/// The folder being written, and where it goes when done.
#[derive(Debug)]
pub struct StagedFolder {
    target: PathBuf,
    staging: PathBuf,
    committed: bool,
}

/// The hidden siblings of `target` that runs writing it use.
fn staging_prefix(target: &Path) -> String {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    format!(".{name}.partial-")
}

/// Refuses, before any work, a file (or anything but a folder) where an
/// output folder is asked for.
pub fn check_not_a_file(target: &Path) -> Result<(), FolderError> {
    if target.exists() && !target.is_dir() {
        return Err(FolderError::IsAFile {
            path: target.display().to_string(),
        });
    }
    Ok(())
}

impl StagedFolder {
    /// Checks `target` before any work — not a file, empty or missing
    /// unless `overwrite`, its parent writable — removes what killed runs
    /// left beside it, and creates the hidden folder to write into.
    pub fn prepare(target: &Path, overwrite: bool) -> Result<Self, FolderError> {
        let shown = target.display().to_string();
        let unwritable = |e: std::io::Error| FolderError::Unwritable {
            path: shown.clone(),
            message: e.to_string(),
        };
        check_not_a_file(target)?;
        if target.is_dir() && !overwrite {
            let first = std::fs::read_dir(target)
                .map_err(unwritable)?
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .min();
            if let Some(first) = first {
                return Err(FolderError::NotEmpty { path: shown, first });
            }
        }
        let parent = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        std::fs::create_dir_all(&parent).map_err(unwritable)?;
        let prefix = staging_prefix(target);
        if let Ok(entries) = std::fs::read_dir(&parent) {
            for e in entries.filter_map(Result::ok) {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    // Left by a run that was killed: nothing in it is whole.
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let staging = parent.join(format!("{prefix}{}", std::process::id()));
        std::fs::create_dir(&staging).map_err(unwritable)?;
        Ok(Self {
            target: target.to_path_buf(),
            staging,
            committed: false,
        })
    }

    /// Where the files are written until [`StagedFolder::commit`].
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// A failed write's error in the user's words: the hidden folder's
    /// path in its message becomes the output folder's (nothing of it is
    /// left; the message names the file as the user asked for it).
    pub fn final_words(&self, error: impl Into<anyhow::Error>) -> anyhow::Error {
        let error = error.into();
        let staging = self.staging.display().to_string();
        let text = format!("{error:#}");
        if text.contains(&staging) {
            anyhow::anyhow!(text.replace(&staging, &self.target.display().to_string()))
        } else {
            error
        }
    }

    /// Where a file written under [`StagedFolder::path`] will be.
    pub fn final_path(&self, written: &Path) -> PathBuf {
        written
            .strip_prefix(&self.staging)
            .map(|rel| self.target.join(rel))
            .unwrap_or_else(|_| written.to_path_buf())
    }

    /// Puts the finished folder in place of the target (an old one, when
    /// overwriting, is moved aside first and removed after).
    pub fn commit(mut self) -> Result<PathBuf, FolderError> {
        let shown = self.target.display().to_string();
        let unwritable = |e: std::io::Error| FolderError::Unwritable {
            path: shown.clone(),
            message: e.to_string(),
        };
        let old = if self.target.exists() {
            let aside = self
                .staging
                .with_file_name(format!("{}old", staging_prefix(&self.target)));
            let _ = std::fs::remove_dir_all(&aside);
            std::fs::rename(&self.target, &aside).map_err(unwritable)?;
            Some(aside)
        } else {
            None
        };
        if let Err(e) = std::fs::rename(&self.staging, &self.target) {
            if let Some(aside) = &old {
                // Put the old folder back: nothing is lost.
                let _ = std::fs::rename(aside, &self.target);
            }
            return Err(unwritable(e));
        }
        self.committed = true;
        if let Some(aside) = old {
            let _ = std::fs::remove_dir_all(aside);
        }
        Ok(self.target.clone())
    }
}

impl Drop for StagedFolder {
    /// A run that fails or is cancelled leaves nothing half-written.
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_folder_appears_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let staged = StagedFolder::prepare(&out, false).unwrap();
        std::fs::write(staged.path().join("map.tif"), b"x").unwrap();
        assert!(!out.exists(), "nothing at the target until done");
        assert_eq!(
            staged.final_path(&staged.path().join("map.tif")),
            out.join("map.tif")
        );
        staged.commit().unwrap();
        assert_eq!(entries(&out), vec!["map.tif"]);
        assert_eq!(entries(dir.path()), vec!["run"]);

        // A failed run: dropped before commit, the old folder untouched.
        let staged = StagedFolder::prepare(&out, true).unwrap();
        std::fs::write(staged.path().join("half.tif"), b"x").unwrap();
        drop(staged);
        assert_eq!(entries(&out), vec!["map.tif"]);
        assert_eq!(entries(dir.path()), vec!["run"]);
    }

    #[test]
    fn a_folder_with_files_is_replaced_only_when_asked_and_then_as_a_whole() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        std::fs::create_dir(&out).unwrap();
        // An empty folder is taken.
        StagedFolder::prepare(&out, false).unwrap();
        std::fs::write(out.join("old_metrics.json"), b"x").unwrap();
        let e = StagedFolder::prepare(&out, false).unwrap_err().to_string();
        assert!(
            e.contains("old_metrics.json") && e.contains("--overwrite"),
            "{e}"
        );
        let staged = StagedFolder::prepare(&out, true).unwrap();
        std::fs::write(staged.path().join("run.json"), b"{}").unwrap();
        staged.commit().unwrap();
        // The older run's files are gone with it, not mixed in.
        assert_eq!(entries(&out), vec!["run.json"]);
        assert_eq!(entries(dir.path()), vec!["run"]);
    }

    #[test]
    fn a_file_in_the_way_is_refused_and_a_killed_runs_leftovers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out");
        std::fs::write(&file, b"x").unwrap();
        let e = StagedFolder::prepare(&file, true).unwrap_err().to_string();
        assert!(e.contains("is a file"), "{e}");

        let out = dir.path().join("run");
        // What a SIGKILLed run leaves: its hidden folder, half full.
        let left = dir.path().join(".run.partial-99999");
        std::fs::create_dir(&left).unwrap();
        std::fs::write(left.join("half.tif"), b"x").unwrap();
        let staged = StagedFolder::prepare(&out, false).unwrap();
        assert!(!left.exists());
        drop(staged);
        assert_eq!(entries(dir.path()), vec!["out"]);
    }
}
