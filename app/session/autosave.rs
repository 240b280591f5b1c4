//! Autosave of the label layers (and, for a project, its settings and
//! view): every 30 s while they change and on exit,
//! into a folder of the app's data directory named after the scene, each file
//! written atomically (temp + rename) and the manifest last, with a SHA-256
//! of each label layer. On start the app offers an autosave newer than the
//! user's saved label files only where its content differs from what was
//! just opened (the labels' hashes, the project's settings), never on a time
//! stamp alone ([`Recovery::differences`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::SceneSources;
use super::label_files::{load_labels, save_labels};
use crate::io::atomic::write_bytes;
use crate::scene::ClassInfo;
use crate::scene::{LabelImage, LabelLayer, PixelGrid};

/// How often changed labels are written.
pub const AUTOSAVE_INTERVAL: Duration = Duration::from_secs(30);

/// The interval in use: [`AUTOSAVE_INTERVAL`], or `UNIDIFF_AUTOSAVE_SECS`
/// (tests and users who want it sooner).
pub fn autosave_interval() -> Duration {
    std::env::var("UNIDIFF_AUTOSAVE_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(AUTOSAVE_INTERVAL)
}

pub use crate::base::data_dir::data_dir;

/// The autosave folder of a scene: named by a hash of its input paths.
pub fn autosave_dir(root: &Path, sources: &SceneSources) -> PathBuf {
    let mut h = Sha256::new();
    for p in [&sources.hsi, &sources.sar] {
        let s = p
            .as_ref()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        h.update(s.as_bytes());
        h.update([0]);
    }
    let hex: String = h
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    root.join("autosave").join(hex)
}

/// What an autosave folder's `autosave.json` says.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AutosaveManifest {
    pub sources: SceneSources,
    pub classes: Vec<ClassInfo>,
    /// Seconds since the Unix epoch.
    pub saved_at: f64,
    pub labels_revision: u64,
    /// The project open when it was written.
    #[serde(default)]
    pub project: Option<PathBuf>,
    /// That project's settings and view, as the app writes them.
    #[serde(default)]
    pub settings: Option<serde_json::Value>,
    /// SHA-256 of the training and test layers written ([`labels_sha256`];
    /// absent in autosaves made before it, then hashed from the files).
    #[serde(default)]
    pub train_sha256: Option<String>,
    #[serde(default)]
    pub test_sha256: Option<String>,
}

/// A label layer's content as a hash: its size and its classes.
pub fn labels_sha256(labels: &LabelImage) -> String {
    let mut h = Sha256::new();
    h.update((labels.grid.width as u64).to_le_bytes());
    h.update((labels.grid.height as u64).to_le_bytes());
    h.update(&labels.data);
    format!("{:x}", h.finalize())
}

/// The label layers and classes to write.
#[derive(Debug, Clone)]
pub struct AutosaveSnapshot {
    pub sources: SceneSources,
    pub classes: Vec<ClassInfo>,
    pub train: Option<LabelImage>,
    pub test: Option<LabelImage>,
    pub labels_revision: u64,
    pub project: Option<PathBuf>,
    pub settings: Option<serde_json::Value>,
}

fn file_of(dir: &Path, layer: LabelLayer) -> PathBuf {
    dir.join(match layer {
        LabelLayer::Train => "train.tif",
        LabelLayer::Test => "test.tif",
    })
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Writes the snapshot into `dir`: the layers first, the manifest last.
pub fn write_autosave(dir: &Path, snap: &AutosaveSnapshot) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the autosave folder {}", dir.display()))?;
    for (layer, labels) in [
        (LabelLayer::Train, &snap.train),
        (LabelLayer::Test, &snap.test),
    ] {
        if let Some(labels) = labels {
            save_labels(&file_of(dir, layer), labels, &snap.classes)?;
        }
    }
    let manifest = AutosaveManifest {
        sources: snap.sources.clone(),
        classes: snap.classes.clone(),
        saved_at: now_secs(),
        labels_revision: snap.labels_revision,
        project: snap.project.clone(),
        settings: snap.settings.clone(),
        train_sha256: snap.train.as_ref().map(labels_sha256),
        test_sha256: snap.test.as_ref().map(labels_sha256),
    };
    let json = serde_json::to_vec_pretty(&manifest)?;
    write_bytes(&dir.join("autosave.json"), &json)
        .with_context(|| format!("cannot write {}", dir.display()))?;
    Ok(())
}

/// An autosave read back, to offer to the user.
#[derive(Debug, Clone)]
pub struct Recovery {
    pub dir: PathBuf,
    pub manifest: AutosaveManifest,
    pub train: Option<LabelImage>,
    pub test: Option<LabelImage>,
    /// What differs from the scene just opened ([`Recovery::differences`]).
    pub differs: Vec<String>,
}

impl Recovery {
    pub fn labels(&self, layer: LabelLayer) -> Option<&LabelImage> {
        match layer {
            LabelLayer::Train => self.train.as_ref(),
            LabelLayer::Test => self.test.as_ref(),
        }
    }

    /// The hash of an autosaved layer: the manifest's, else the file's.
    fn layer_sha256(&self, layer: LabelLayer) -> Option<String> {
        let kept = match layer {
            LabelLayer::Train => &self.manifest.train_sha256,
            LabelLayer::Test => &self.manifest.test_sha256,
        };
        kept.clone()
            .or_else(|| self.labels(layer).map(labels_sha256))
    }

    /// What the autosave holds that differs from what was just opened, in
    /// words ("training labels", "the project's settings"); empty: nothing
    /// to offer. A layer differs when its hash does (a layer the scene lacks
    /// differs when it has a label); the settings when the caller, who
    /// knows their type, says they do (`settings_differ`).
    pub fn differences(
        &self,
        opened: impl Fn(LabelLayer) -> Option<String>,
        settings_differ: bool,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for layer in LabelLayer::ALL {
            let Some(saved) = self.layer_sha256(layer) else {
                continue;
            };
            let differs = match opened(layer) {
                Some(now) => now != saved,
                None => self
                    .labels(layer)
                    .is_some_and(|l| l.data.iter().any(|&c| c != 0)),
            };
            if differs {
                out.push(layer.name().to_string());
            }
        }
        if settings_differ {
            out.push("the project's settings".into());
        }
        out
    }

    /// When it was written, as "N s / min / h ago".
    pub fn age(&self) -> String {
        let s = (now_secs() - self.manifest.saved_at).max(0.0);
        if s < 120.0 {
            format!("{s:.0} s ago")
        } else if s < 7200.0 {
            format!("{:.0} min ago", s / 60.0)
        } else {
            format!("{:.1} h ago", s / 3600.0)
        }
    }
}

fn modified_secs(path: &Path) -> Option<f64> {
    let t = std::fs::metadata(path).ok()?.modified().ok()?;
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs_f64())
}

/// The autosave of the scene in `dir`, if it is newer than every saved label
/// file it names and fits `grid`.
pub fn find_recovery(dir: &Path, grid: &PixelGrid) -> Option<Recovery> {
    let text = std::fs::read(dir.join("autosave.json")).ok()?;
    let manifest: AutosaveManifest = serde_json::from_slice(&text).ok()?;
    for layer in LabelLayer::ALL {
        if let Some(saved) = manifest.sources.labels_path(layer)
            && let Some(t) = modified_secs(saved)
            && t >= manifest.saved_at
        {
            return None;
        }
    }
    let read = |layer| {
        let path = file_of(dir, layer);
        path.exists()
            .then(|| load_labels(&path, grid, &[]).ok().map(|l| l.labels))
            .flatten()
    };
    let train = read(LabelLayer::Train);
    let test = read(LabelLayer::Test);
    if train.is_none() && test.is_none() {
        return None;
    }
    Some(Recovery {
        dir: dir.to_path_buf(),
        manifest,
        train,
        test,
        differs: Vec::new(),
    })
}

/// Removes an autosave the user discarded or saved over.
pub fn discard(dir: &Path) {
    let _ = std::fs::remove_file(dir.join("autosave.json"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::named_classes;

    #[test]
    fn an_autosave_is_offered_until_the_labels_are_saved_after_it() {
        let root = tempfile::tempdir().unwrap();
        let grid = PixelGrid::plain(6, 4);
        let mut train = LabelImage {
            data: vec![0; 24],
            grid: grid.clone(),
        };
        train.data[5] = 2;
        let saved = root.path().join("mine.tif");
        let sources = SceneSources {
            hsi: Some(root.path().join("cube.tif")),
            train_labels: Some(saved.clone()),
            ..SceneSources::default()
        };
        let dir = autosave_dir(root.path(), &sources);
        assert_eq!(dir, autosave_dir(root.path(), &sources), "stable");
        let snap = AutosaveSnapshot {
            sources,
            classes: named_classes(2, &[]),
            train: Some(train.clone()),
            test: None,
            labels_revision: 7,
            project: None,
            settings: Some(serde_json::json!({"stage_b": {"t": 5}})),
        };
        write_autosave(&dir, &snap).unwrap();
        let rec = find_recovery(&dir, &grid).expect("offered");
        assert_eq!(rec.train.as_ref().map(|l| &l.data), Some(&train.data));
        assert_eq!(rec.manifest.labels_revision, 7);
        assert_eq!(rec.manifest.settings, snap.settings);
        assert!(rec.test.is_none());
        // The offer rests on content: the same labels are nothing to offer,
        // whatever the times.
        let same = |l: LabelLayer| (l == LabelLayer::Train).then(|| labels_sha256(&train));
        assert!(rec.differences(same, false).is_empty());
        assert_eq!(
            rec.differences(same, true),
            vec!["the project's settings".to_string()]
        );
        let mut painted = train.clone();
        painted.data[6] = 1;
        let differs = rec.differences(
            |l| (l == LabelLayer::Train).then(|| labels_sha256(&painted)),
            false,
        );
        assert_eq!(differs, vec!["training labels".to_string()]);
        // A scene opened without the layer: the autosave's labels differ.
        assert_eq!(
            rec.differences(|_| None, false),
            vec!["training labels".to_string()]
        );
        // An autosave from before the hashes: hashed from its files.
        let mut old = rec.clone();
        old.manifest.train_sha256 = None;
        assert!(old.differences(same, false).is_empty());
        // Saving the user's file afterwards makes the autosave stale.
        std::thread::sleep(Duration::from_millis(20));
        save_labels(&saved, &train, &snap.classes).unwrap();
        assert!(find_recovery(&dir, &grid).is_none());
        discard(&dir);
        assert!(!dir.join("autosave.json").exists());
    }
}
