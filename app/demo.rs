//! The bundled demo scene (Sen1Floods11 `Spain_7370579`, CC BY 4.0): the
//! files the CLI and the app open for `--demo`, found wherever the program
//! was put — beside the binary (an unpacked folder), in the installed
//! package's data folder, or in the source tree it was built from.

use std::path::{Path, PathBuf};

/// The demo's three files, by name, inside a demo folder.
const HSI: &str = "Spain_7370579_S2Hand.tif";
const SAR: &str = "Spain_7370579_S1Hand.tif";
const LABELS: &str = "Spain_7370579_LabelHand.tif";

/// Where the Debian package puts the demo.
pub const SYSTEM_DEMO_DIR: &str = "/usr/share/unidiff-studio/demo";

/// No folder holding the demo's files was found.
#[derive(Debug, thiserror::Error)]
#[error(
    "the bundled demo scene ({HSI}, {SAR}, {LABELS}) was not found; looked in: {}",
    looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
)]
pub struct DemoNotFound {
    pub looked: Vec<PathBuf>,
}

/// The folders that may hold the demo, in the order they are tried:
/// `demo/` beside the binary, `../share/unidiff-studio/demo` from the
/// binary's folder (an install under any prefix), the system data folder,
/// and the source tree's `assets/demo`.
pub fn demo_dir_candidates(exe: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(bin_dir) = exe.and_then(Path::parent) {
        dirs.push(bin_dir.join("demo"));
        if let Some(prefix) = bin_dir.parent() {
            dirs.push(prefix.join("share/unidiff-studio/demo"));
        }
    }
    dirs.push(PathBuf::from(SYSTEM_DEMO_DIR));
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo"));
    dirs.dedup();
    dirs
}

/// The first of `candidates` that holds all three files.
pub fn find_demo_dir(candidates: Vec<PathBuf>) -> Result<PathBuf, DemoNotFound> {
    match candidates
        .iter()
        .find(|d| [HSI, SAR, LABELS].iter().all(|f| d.join(f).is_file()))
    {
        Some(d) => Ok(d.clone()),
        None => Err(DemoNotFound { looked: candidates }),
    }
}

/// (Sentinel-2 cube, Sentinel-1 VV/VH, hand-labelled water mask).
pub fn demo_paths() -> Result<(PathBuf, PathBuf, PathBuf), DemoNotFound> {
    let exe = std::env::current_exe().ok();
    let root = find_demo_dir(demo_dir_candidates(exe.as_deref()))?;
    log::info!("the demo scene from {}", root.display());
    Ok((root.join(HSI), root.join(SAR), root.join(LABELS)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_folder(at: &Path) {
        std::fs::create_dir_all(at).unwrap();
        for f in [HSI, SAR, LABELS] {
            std::fs::write(at.join(f), b"x").unwrap();
        }
    }

    #[test]
    fn the_demo_is_looked_for_beside_the_binary_then_under_share_then_in_the_source_tree() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("usr/bin/unidiff-studio");
        let dirs = demo_dir_candidates(Some(&exe));
        assert_eq!(dirs[0], dir.path().join("usr/bin/demo"));
        assert_eq!(dirs[1], dir.path().join("usr/share/unidiff-studio/demo"));
        assert_eq!(dirs[2], PathBuf::from(SYSTEM_DEMO_DIR));
        assert!(dirs[3].ends_with("assets/demo"));

        // Only the prefix's share folder holds it: that one is found.
        demo_folder(&dir.path().join("usr/share/unidiff-studio/demo"));
        let found = find_demo_dir(dirs.clone()).unwrap();
        assert_eq!(found, dir.path().join("usr/share/unidiff-studio/demo"));
        // A folder beside the binary wins; one missing a file does not count.
        std::fs::create_dir_all(dir.path().join("usr/bin/demo")).unwrap();
        std::fs::write(dir.path().join("usr/bin/demo").join(HSI), b"x").unwrap();
        assert_eq!(find_demo_dir(dirs.clone()).unwrap(), found);
        demo_folder(&dir.path().join("usr/bin/demo"));
        assert_eq!(
            find_demo_dir(dirs).unwrap(),
            dir.path().join("usr/bin/demo")
        );
    }

    #[test]
    fn a_missing_demo_names_every_place_looked() {
        let dir = tempfile::tempdir().unwrap();
        let looked = vec![dir.path().join("a"), dir.path().join("b")];
        let e = find_demo_dir(looked).unwrap_err().to_string();
        assert!(e.contains(HSI), "{e}");
        assert!(
            e.contains(&dir.path().join("a").display().to_string()),
            "{e}"
        );
        assert!(
            e.contains(&dir.path().join("b").display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn the_source_trees_demo_is_found() {
        let (hsi, sar, labels) = demo_paths().unwrap();
        assert!(hsi.is_file() && sar.is_file() && labels.is_file());
    }
}
