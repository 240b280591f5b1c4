//! `run.json`: what a classification was made from and what it gave, in
//! one record that the command line's `run` and the app's "Export
//! results…" both write, and whose reproducible part (`Reproducible`:
//! inputs with their SHA-256, split, classes, backbone, settings, pRGB
//! bands) `run --from-json` reads back to make the same maps headless.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

use super::classification::{Classification, ClassificationSettings};
use super::split::SparseSplit;
use crate::metrics::export::metrics_json;
use crate::metrics::summary::MetricsSummary;
use crate::model::backbone::{BackboneInfo, BackboneSpec};
use crate::model::checkpoint::file_sha256;
use crate::scene::{LabelImage, Scene, named_classes};

/// The CPU backend of Stage B, as run.json names it.
pub const CPU_BACKEND: &str =
    "cpu (the host forward of unidiff-kernels for the frozen U-Net, burn-flex for the head; f32)";

/// The label layers a classification of the app was trained and scored on,
/// as they were when it started (the session may have changed since). Not
/// serialised: a project writes them as rasters of its own.
#[derive(Debug, Clone, Default)]
pub struct LabelsUsed {
    pub train: Option<LabelImage>,
    pub test: Option<LabelImage>,
}

/// Where a classification was made and how it was started.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub enum Origin {
    /// `unidiff-studio run` with these arguments.
    CommandLine { command: Vec<String> },
    /// The app: by Classify, or as a live update after a stroke (where the
    /// MLP head may continue from the previous one: `classify_settings`),
    /// at this label revision.
    App {
        live: bool,
        labels_revision: u64,
        #[serde(skip)]
        labels: Box<LabelsUsed>,
        /// [`how_read`] of the scene.
        read: serde_json::Map<String, Value>,
    },
}

/// Everything about a classification beside its result that its record
/// needs (a project keeps it as JSON, its label layers as rasters).
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct MadeFrom {
    pub origin: Origin,
    pub spec: BackboneSpec,
    pub info: BackboneInfo,
    /// The settings it ran with.
    pub settings: ClassificationSettings,
    /// For a live update whose head continued from the previous one: the
    /// settings a Classify would have run on the same labels (a fresh head, the full epochs, the held-out check),
    /// which `run --from-json` runs.
    pub classify_settings: Option<ClassificationSettings>,
    /// The pRGB rendering's bands (0-based), when there is one.
    pub prgb_bands: Option<[usize; 3]>,
    /// The device and backend, in words.
    pub backend: String,
}

/// `{path, sha256}` of an input file.
pub fn hashed(path: &Path, recorded_as: &Path) -> Result<Value, RecordError> {
    let sha = file_sha256(path).map_err(|source| RecordError::Read {
        path: path.display().to_string(),
        source,
    })?;
    Ok(json!({ "path": recorded_as.display().to_string(), "sha256": sha }))
}

/// The SAR elements the forests read, by name.
fn sar_columns(sar: &crate::scene::SarImage) -> Vec<String> {
    sar.kind
        .diagonal()
        .into_iter()
        .map(|(name, _)| name.to_string())
        .chain(sar.off_diagonal.iter().map(|(n, _)| n.clone()))
        .collect()
}

/// How each raster of the scene was read, by input name (`hsi`, `sar`):
/// what a reader of run.json needs to know that nothing was dropped.
pub fn how_read(scene: &Scene) -> serde_json::Map<String, Value> {
    let mut read = serde_json::Map::new();
    if let Some(hsi) = &scene.hsi {
        let empty = (0..hsi.bands).filter(|&b| hsi.band_is_empty(b)).count();
        read.insert(
            "hsi".into(),
            json!({ "read": format!(
                "all {} bands; {empty} of them without a valid sample (left out of the forests)",
                hsi.bands
            )}),
        );
    }
    if let Some(sar) = &scene.sar {
        read.insert(
            "sar".into(),
            json!({
                "read": format!("{}: {}", sar.kind_name(), sar.scale_reason),
                "to_the_classifiers": sar_columns(sar),
            }),
        );
    }
    read
}

/// Adds [`how_read`]'s entries to the inputs' (`{path, sha256}`).
pub fn say_how_read(
    read: &serde_json::Map<String, Value>,
    inputs: &mut serde_json::Map<String, Value>,
) {
    for (name, what) in read {
        if let (Some(Value::Object(entry)), Value::Object(what)) = (inputs.get_mut(name), what) {
            entry.extend(what.clone());
        }
    }
}

fn short_metrics(m: &Option<MetricsSummary>) -> Value {
    match m {
        Some(m) => {
            json!({ "oa": m.oa, "aa": m.aa, "kappa": m.kappa, "mf1": m.mf1, "miou": m.miou })
        }
        None => Value::Null,
    }
}

/// What the record holds beside the classification itself.
pub struct RecordParts<'a> {
    pub made: &'a MadeFrom,
    /// `inputs`: per file its path and SHA-256 (and how it was read), the
    /// label offset.
    pub inputs: Value,
    pub split: Option<&'a SparseSplit>,
    pub class_names: &'a [String],
    pub outputs: &'a [PathBuf],
    /// Seconds per step, as the maker measured them.
    pub seconds: Value,
}

/// The whole `run.json` of a classification.
pub fn run_record(parts: &RecordParts<'_>, outcome: &Classification) -> Value {
    let made = parts.made;
    let names: Vec<String> = named_classes(outcome.classes, parts.class_names)
        .into_iter()
        .map(|c| c.name)
        .collect();
    let stage_b = outcome.mlp.as_ref().map(|(r, out)| {
        json!({
            "training_vectors": out.training_vectors,
            "classes_without_training": out.classes_without_training,
            "validation": out.validation,
            "head": out.head,
            "seconds": r.seconds,
            "metrics": short_metrics(&r.metrics),
        })
    });
    let forest = |r: &super::classification::ClassifierResult| json!({ "seconds": r.seconds, "metrics": short_metrics(&r.metrics) });
    let mut record = json!({
        "software": format!("unidiff-studio {}", env!("CARGO_PKG_VERSION")),
        "backend": made.backend,
        "threads": rayon::current_num_threads(),
        "backbone": made.info,
        "backbone_spec": made.spec,
        "inputs": parts.inputs,
        "split": parts.split,
        "classes": names,
        "modalities": outcome.modalities.iter().map(|m| m.name()).collect::<Vec<_>>(),
        "prgb_bands": made.prgb_bands,
        "settings": made.settings,
        "warnings": outcome.warnings,
        "test_pixels_excluded": outcome.test_pixels_excluded,
        "stage_b": stage_b,
        "random_forest": outcome.forest.as_ref().map(forest),
        "filter_random_forest": outcome.filter_forest.as_ref().map(forest),
        "result_classifier": outcome.classifier,
        "recommendation": outcome.recommendation,
        "label_curve": outcome.label_curve,
        "metrics": outcome.main_result().and_then(|r| r.metrics.as_ref()).map(|m| metrics_json(m, &names)),
        "outputs": parts.outputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "seconds": parts.seconds,
        "peak_rss_mib": crate::base::step::peak_rss_mib(),
    });
    match &made.origin {
        Origin::CommandLine { command } => {
            record["made_in"] = json!("command line");
            record["command"] = json!(command);
        }
        Origin::App {
            live,
            labels_revision,
            ..
        } => {
            record["made_in"] = json!("app");
            record["trigger"] = json!(if *live { "live update" } else { "Classify" });
            record["labels_revision"] = json!(labels_revision);
            if let Some(classify) = &made.classify_settings {
                record["head_continued"] = json!(
                    "the MLP head continued from the one trained before this stroke; \
                     `run --from-json` reruns it as Classify would, with `settings_of_classify`"
                );
                record["settings_of_classify"] = json!(classify);
            }
        }
    }
    record
}

/// An input file as run.json records it.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordedFile {
    pub path: PathBuf,
    pub sha256: String,
}

/// The inputs of a record.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordedInputs {
    pub hsi: Option<RecordedFile>,
    pub sar: Option<RecordedFile>,
    pub train_labels: Option<RecordedFile>,
    pub test_labels: Option<RecordedFile>,
    #[serde(default)]
    pub label_offset: i32,
    /// The class attribute of vector labels.
    pub class_field: Option<String>,
}

/// The part of a run.json that reproduces its classification.
#[derive(Debug, Clone, Deserialize)]
pub struct Reproducible {
    pub inputs: RecordedInputs,
    pub split: Option<SparseSplit>,
    #[serde(default)]
    pub classes: Vec<String>,
    pub backbone_spec: BackboneSpec,
    /// The recorded backbone's checkpoint hash, checked on the rebuilt one.
    pub backbone: RecordedBackbone,
    pub settings: ClassificationSettings,
    /// A live update's Classify settings (what a rerun runs).
    pub settings_of_classify: Option<ClassificationSettings>,
    pub prgb_bands: Option<[usize; 3]>,
}

/// What run.json says of the backbone that a rerun checks.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordedBackbone {
    pub name: String,
    pub checkpoint_sha256: Option<String>,
}

/// Why a run.json cannot be made or rerun.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a run.json that can be rerun ({source}); a record written before run.json kept the backbone_spec cannot: give the inputs and settings as flags"
    )]
    Format {
        path: String,
        source: serde_json::Error,
    },
    #[error("{what}: {path} is not found (looked beside {record} and in the current folder)")]
    Missing {
        what: &'static str,
        path: String,
        record: String,
    },
    #[error(
        "{what}: {path} is not the file the run was made from (its SHA-256 is {found}, {record} says {expected})"
    )]
    Changed {
        what: &'static str,
        path: String,
        found: String,
        expected: String,
        record: String,
    },
}

impl Reproducible {
    /// Reads the reproducible part of a run.json.
    pub fn read(path: &Path) -> Result<Self, RecordError> {
        let text = std::fs::read(path).map_err(|source| RecordError::Read {
            path: path.display().to_string(),
            source,
        })?;
        serde_json::from_slice(&text).map_err(|source| RecordError::Format {
            path: path.display().to_string(),
            source,
        })
    }

    /// The settings a rerun runs: a live update's as Classify would.
    pub fn rerun_settings(&self) -> &ClassificationSettings {
        self.settings_of_classify.as_ref().unwrap_or(&self.settings)
    }

    /// Each recorded input found (a relative path beside the record first,
    /// then in the current folder) and checked against its SHA-256.
    pub fn located_inputs(&self, record: &Path) -> Result<LocatedInputs, RecordError> {
        let beside = record.parent().unwrap_or(Path::new("."));
        let locate = |what: &'static str, f: &Option<RecordedFile>| {
            let Some(f) = f else {
                return Ok(None);
            };
            let candidates = if f.path.is_absolute() {
                vec![f.path.clone()]
            } else {
                vec![beside.join(&f.path), f.path.clone()]
            };
            let found = candidates.into_iter().find(|p| p.exists()).ok_or_else(|| {
                RecordError::Missing {
                    what,
                    path: f.path.display().to_string(),
                    record: record.display().to_string(),
                }
            })?;
            let sha = file_sha256(&found).map_err(|source| RecordError::Read {
                path: found.display().to_string(),
                source,
            })?;
            if sha != f.sha256 {
                return Err(RecordError::Changed {
                    what,
                    path: found.display().to_string(),
                    found: sha,
                    expected: f.sha256.clone(),
                    record: record.display().to_string(),
                });
            }
            Ok(Some(found))
        };
        Ok(LocatedInputs {
            hsi: locate("the HSI cube", &self.inputs.hsi)?,
            sar: locate("the SAR image", &self.inputs.sar)?,
            train_labels: locate("the training labels", &self.inputs.train_labels)?,
            test_labels: locate("the test labels", &self.inputs.test_labels)?,
        })
    }
}

/// The recorded inputs where they are now, each checked.
#[derive(Debug, Clone)]
pub struct LocatedInputs {
    pub hsi: Option<PathBuf>,
    pub sar: Option<PathBuf>,
    pub train_labels: Option<PathBuf>,
    pub test_labels: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Modality;
    use crate::pipeline::baseline::ForestConfig;
    use crate::pipeline::classification::ClassifierChoice;
    use crate::pipeline::classifier::HeadTrainConfig;
    use crate::pipeline::label_curve::LabelCurveSpec;
    use crate::pipeline::stage_b::StageBConfig;

    fn settings() -> ClassificationSettings {
        ClassificationSettings {
            modalities: vec![Modality::Sar, Modality::Prgb],
            classifier: ClassifierChoice::FilterRf,
            baseline: false,
            held_out_check: true,
            stage_b: StageBConfig {
                t: 7,
                block: 2,
                patch: 32,
                stride: 16,
                label_curve: Some(LabelCurveSpec::new(vec![10, 5], 2, 3).unwrap()),
                head: HeadTrainConfig {
                    seed: 9,
                    max_epochs: 50,
                    cpu_kernels: false,
                    keep_first_layer: true,
                    ..HeadTrainConfig::default()
                },
                ..StageBConfig::default()
            },
            forest: ForestConfig {
                trees: 7,
                seed: 4,
                ..ForestConfig::default()
            },
        }
    }

    #[test]
    fn settings_read_back_as_written_and_the_unrecorded_at_their_defaults() {
        let json = serde_json::to_value(settings()).unwrap();
        let back: ClassificationSettings = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), json);
        // How the head runs, not what it learns: not recorded, the defaults.
        assert!(back.stage_b.head.cpu_kernels);
        assert!(!back.stage_b.head.keep_first_layer);
        assert!(back.stage_b.head.warm_start.is_none());
    }

    #[test]
    fn settings_a_backbone_cannot_run_are_refused_with_the_reason() {
        let tiny = crate::model::UNetConfig::tiny();
        let mut s = settings();
        s.stage_b.patch = tiny.image_size;
        s.stage_b.stride = tiny.image_size / 2;
        s.stage_b.block = tiny.feature_block(None).unwrap();
        assert_eq!(s.check(&tiny), Ok(()));
        let refused = |change: &dyn Fn(&mut ClassificationSettings)| {
            let mut bad = s.clone();
            change(&mut bad);
            bad.check(&tiny).unwrap_err()
        };
        assert!(refused(&|b| b.stage_b.t = -1).contains("0..999"));
        assert!(refused(&|b| b.stage_b.stride = b.stage_b.patch + 1).contains("stride"));
        assert!(refused(&|b| b.stage_b.patch = 64).contains("patches of"));
        assert!(refused(&|b| b.stage_b.block = 99).contains("block 99"));
        assert!(refused(&|b| b.forest.trees = 0).contains("tree"));
        assert!(refused(&|b| b.stage_b.mlp.hidden = vec![0]).contains("unit"));
        assert!(refused(&|b| b.modalities.clear()).contains("modality"));
    }
}
