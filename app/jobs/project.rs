//! Project files (`.udproj`): a user's work kept in one place that can be
//! moved. The JSON file holds the scene's input paths (relative to the
//! project file, with the absolute path as a fallback), the class table,
//! the pRGB bands, the Stage A and Stage B settings with the backbone and
//! adapter, the app's view settings, and of the last classification the
//! held-out comparison, the validation sample's accuracy and what it was made
//! from (backbone, settings: an export's run.json); a data folder beside it
//! holds the label layers, every classifier's map of the last result (with
//! the MLP's uncertainty), each clean-up step's map and the label layers the
//! result was made from as GeoTIFFs, and the trained model.
//!
//! Saving is atomic: the data go into a new folder first, then the project
//! file is replaced by rename (that is the moment the save happens), then
//! the data folders of earlier saves are removed. A save cut off at any
//! point leaves the previous project whole.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use super::{AdaptSettings, ClassifySettings, LoadRequest};
use crate::io::atomic::write_bytes;
use crate::io::classmap::write_class_map;
use crate::io::geotiff::write_f32_geotiff;
use crate::io::open_labels;
use crate::io::raster::read_bands;
use crate::metrics::area_accuracy::AreaAccuracy;
use crate::metrics::areas::class_areas;
use crate::metrics::summary::MetricsSummary;
use crate::model::backbone::BackboneSpec;
use crate::pipeline::Modality;
use crate::pipeline::classification::{
    Classification, ClassifierChoice, ClassifierResult, scoring_labels,
};
use crate::pipeline::classifier::{HeadTrainReport, ValidationSplit};
use crate::pipeline::cleanup::{CleanStep, CleanedMap, StepScores};
use crate::pipeline::held_out::Recommendation;
use crate::pipeline::model_bundle::ModelBundle;
use crate::pipeline::predict::MergedPrediction;
use crate::pipeline::run_record::{LabelsUsed, MadeFrom, Origin};
use crate::pipeline::stage_b::StageBOutput;
use crate::pipeline::validation_sample::SampleAccuracy;
use crate::scene::{ClassInfo, LabelImage, PixelGrid};
use crate::session::{ClassificationResult, SceneSources};

/// The project format this build writes; it reads this one and older.
pub const PROJECT_VERSION: u32 = 1;
/// The project file's extension.
pub const PROJECT_EXTENSION: &str = "udproj";

/// Whether `path` names a project file.
pub fn is_project_file(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(PROJECT_EXTENSION))
}

/// `path` with the project extension (added when it has another one).
pub fn with_project_extension(path: &Path) -> PathBuf {
    if is_project_file(path) {
        path.to_path_buf()
    } else {
        let mut name = path.as_os_str().to_os_string();
        name.push(".");
        name.push(PROJECT_EXTENSION);
        PathBuf::from(name)
    }
}

/// A file the project refers to: relative to the project file's folder
/// (so that a folder moved with its data still opens) and absolute (so
/// that a project moved alone still finds data that stayed).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProjectPath {
    pub relative: PathBuf,
    pub absolute: PathBuf,
}

impl ProjectPath {
    pub fn new(project_dir: &Path, path: &Path) -> Self {
        let absolute = absolute(path);
        Self {
            relative: relative_path(&absolute, &absolute_dir(project_dir)),
            absolute,
        }
    }

    /// The relative path if it exists from `project_dir`, else the absolute
    /// one if that exists, else the relative one (whose absence the reader
    /// of the file reports by name).
    pub fn resolve(&self, project_dir: &Path) -> PathBuf {
        let relative = project_dir.join(&self.relative);
        if relative.exists() || !self.absolute.exists() {
            relative
        } else {
            self.absolute.clone()
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| std::path::absolute(path).unwrap_or(path.into()))
}

fn absolute_dir(dir: &Path) -> PathBuf {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    absolute(dir)
}

/// `path` as seen from `base` (both absolute): `../data/x.tif`; `path`
/// itself when they share no root (another drive).
pub fn relative_path(path: &Path, base: &Path) -> PathBuf {
    let p: Vec<Component> = path.components().collect();
    let b: Vec<Component> = base.components().collect();
    if p.first() != b.first() {
        return path.to_path_buf();
    }
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c.as_os_str());
    }
    out
}

/// The backbone's files, apart from its settings so that they can move.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BackboneFiles {
    pub checkpoint: Option<ProjectPath>,
    pub adapter: Option<ProjectPath>,
}

/// The last result as saved: the map shown, its uncertainty, and how it
/// was made.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedResult {
    pub classifier: ClassifierChoice,
    /// In the data folder, relative to the project file.
    pub class_map: PathBuf,
    /// Max probability and entropy (the MLP's maps).
    pub uncertainty: Option<PathBuf>,
    pub classes: usize,
    pub modalities: Vec<Modality>,
    /// The backbone, in words.
    pub backbone: String,
    pub seconds: f64,
    /// The labels had not changed since the run when it was saved.
    pub current: bool,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The run's other classifiers' maps (the forests beside the MLP).
    #[serde(default)]
    pub others: Vec<SavedMap>,
    /// Every classifier's score on the held-out training labels.
    #[serde(default)]
    pub recommendation: Option<Recommendation>,
    /// Clean-up steps in the order applied, each with its map.
    #[serde(default)]
    pub cleaned: Vec<SavedCleaning>,
    /// The validation sample's accuracy, and which map it scored.
    #[serde(default)]
    pub sample_accuracy: Option<SavedSampleAccuracy>,
    /// What it was made from, for an export's run.json.
    #[serde(default)]
    pub made_from: Option<SavedMadeFrom>,
}

/// What a result was made from, as saved: `run_record::MadeFrom` as JSON
/// (without its label layers) and those layers in the data folder.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedMadeFrom {
    pub kept: serde_json::Value,
    pub train_labels: Option<PathBuf>,
    pub test_labels: Option<PathBuf>,
}

/// Another classifier's map of the same run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedMap {
    pub classifier: ClassifierChoice,
    /// In the data folder, relative to the project file.
    pub class_map: PathBuf,
    pub uncertainty: Option<PathBuf>,
    pub seconds: f64,
}

/// A clean-up step as saved: what it did and its map.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedCleaning {
    pub source: ClassifierChoice,
    pub step: CleanStep,
    /// In the data folder, relative to the project file.
    pub class_map: PathBuf,
    pub changed: usize,
    pub scores: Option<StepScores>,
}

/// The area-adjusted accuracy from a validation sample, as saved.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedSampleAccuracy {
    /// The map it scored, in words ("mlp", "cleaned mlp", …).
    pub map_name: String,
    pub reference: ProjectPath,
    pub area_unit: String,
    pub estimates: AreaAccuracy,
}

/// What a `.udproj` file holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProjectFile {
    pub version: u32,
    /// The scene's title as the app shows it.
    pub title: String,
    /// The scene is the bundled demo (found wherever this installation
    /// keeps it, not by path).
    #[serde(default)]
    pub demo: bool,
    pub hsi: Option<ProjectPath>,
    pub sar: Option<ProjectPath>,
    pub classes: Vec<ClassInfo>,
    /// In the data folder, relative to the project file.
    pub train_labels: Option<PathBuf>,
    pub test_labels: Option<PathBuf>,
    #[serde(default)]
    pub prgb_bands: Option<[usize; 3]>,
    #[serde(default)]
    pub stage_b: ClassifySettings,
    #[serde(default)]
    pub stage_a: AdaptSettings,
    #[serde(default)]
    pub backbone_files: BackboneFiles,
    /// The trained model bundle (`.udmodel`) in the data folder.
    #[serde(default)]
    pub model: Option<PathBuf>,
    #[serde(default)]
    pub result: Option<SavedResult>,
    /// The app's own view settings (layers, stretches), as it wrote them.
    #[serde(default)]
    pub view: serde_json::Value,
}

/// The last result to save.
#[derive(Debug, Clone)]
pub struct ResultSnapshot {
    pub classifier: ClassifierChoice,
    pub class_map: Vec<u8>,
    pub uncertainty: Option<(Vec<f32>, Vec<f32>)>,
    pub model: Option<Arc<ModelBundle>>,
    pub classes: usize,
    pub modalities: Vec<Modality>,
    pub backbone: String,
    pub seconds: f64,
    pub current: bool,
    pub warnings: Vec<String>,
    /// The other classifiers' maps.
    pub others: Vec<OtherMap>,
    pub recommendation: Option<Recommendation>,
    pub cleaned: Vec<CleanedMap>,
    pub sample_accuracy: Option<(String, SampleAccuracy)>,
    pub made_from: Option<Arc<MadeFrom>>,
}

/// Another classifier's result to save: its map, uncertainty and time.
#[derive(Debug, Clone)]
pub struct OtherMap {
    pub classifier: ClassifierChoice,
    pub class_map: Vec<u8>,
    pub uncertainty: Option<(Vec<f32>, Vec<f32>)>,
    pub seconds: f64,
}

/// A result's max probability and entropy planes, where it has them.
fn uncertainty_planes(result: &ClassifierResult) -> Option<(Vec<f32>, Vec<f32>)> {
    result
        .uncertainty
        .as_ref()
        .map(|u| (u.max_probability.clone(), u.entropy.clone()))
}

impl ResultSnapshot {
    /// The map shown of `result` and what to keep of it (None: no map).
    pub fn of(result: &ClassificationResult, labels_revision: u64) -> Option<Self> {
        let shown = result.outcome.result(result.shown)?;
        Some(Self {
            classifier: result.shown,
            class_map: shown.class_map.clone(),
            uncertainty: uncertainty_planes(shown),
            model: result.model.as_ref().ok().cloned(),
            classes: result.outcome.classes,
            modalities: result.outcome.modalities.clone(),
            backbone: result.backbone.clone(),
            seconds: result.seconds,
            current: result.labels_revision == labels_revision,
            warnings: result.outcome.warnings.clone(),
            others: ClassifierChoice::ALL
                .into_iter()
                .filter(|&c| c != result.shown)
                .filter_map(|c| {
                    result.outcome.result(c).map(|r| OtherMap {
                        classifier: c,
                        class_map: r.class_map.clone(),
                        uncertainty: uncertainty_planes(r),
                        seconds: r.seconds,
                    })
                })
                .collect(),
            recommendation: result.outcome.recommendation.clone(),
            made_from: result.made_from.clone(),
            cleaned: result.cleaned.clone(),
            sample_accuracy: result.sample_accuracy.clone(),
        })
    }
}

/// Everything to save, copied on the UI thread.
#[derive(Debug, Clone)]
pub struct ProjectSnapshot {
    pub sources: SceneSources,
    pub classes: Vec<ClassInfo>,
    pub grid: PixelGrid,
    pub train: Option<LabelImage>,
    pub test: Option<LabelImage>,
    pub prgb_bands: Option<[usize; 3]>,
    pub stage_b: ClassifySettings,
    pub stage_a: AdaptSettings,
    pub result: Option<ResultSnapshot>,
    pub view: serde_json::Value,
    pub labels_revision: u64,
}

/// The folder that holds a project's data folders: `<name>_data` beside it.
pub fn data_root(project: &Path) -> PathBuf {
    let stem = project
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "project".into());
    project.with_file_name(format!("{stem}_data"))
}

/// The label files a save wrote (the session's label files from then on).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SavedLabels {
    pub train: Option<PathBuf>,
    pub test: Option<PathBuf>,
}

/// A save's data folder: where each file is written, and the path the
/// project file names it by (`NAME_data/save-…/file`).
struct DataFolder<'a> {
    dir: &'a Path,
    rel: &'a Path,
    grid: &'a PixelGrid,
    classes: &'a [ClassInfo],
}

impl DataFolder<'_> {
    /// (where `name` is written, as the project names it).
    fn file(&self, name: &str) -> (PathBuf, PathBuf) {
        (self.dir.join(name), self.rel.join(name))
    }

    /// A class map (`class_map{suffix}.tif`) and its uncertainty planes
    /// (`uncertainty{suffix}.tif`), as the project names them.
    fn write_map(
        &self,
        suffix: &str,
        class_map: &[u8],
        uncertainty: &Option<(Vec<f32>, Vec<f32>)>,
    ) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
        let rel = self.write_class_map(&format!("class_map{suffix}.tif"), class_map)?;
        let uncertainty = match uncertainty {
            Some((p, e)) => {
                let (file, rel) = self.file(&format!("uncertainty{suffix}.tif"));
                write_f32_geotiff(&file, &[("max_probability", p), ("entropy", e)], self.grid)
                    .with_context(|| format!("cannot write {}", file.display()))?;
                Some(rel)
            }
            None => None,
        };
        Ok((rel, uncertainty))
    }

    /// A class map as `name`; the path the project names it by.
    fn write_class_map(&self, name: &str, class_map: &[u8]) -> anyhow::Result<PathBuf> {
        let (file, rel) = self.file(name);
        write_class_map(&file, class_map, self.grid, self.classes)
            .with_context(|| format!("cannot write the project's map {}", file.display()))?;
        Ok(rel)
    }
}

/// The last result written into the data folder: every classifier's map,
/// the clean-up steps' maps, the model; what the project file says of it,
/// and the model's path. `project_dir` anchors the sample's path.
fn save_result(
    r: &ResultSnapshot,
    folder: &DataFolder<'_>,
    project_dir: &Path,
) -> anyhow::Result<(SavedResult, Option<PathBuf>)> {
    let (rel, uncertainty) = folder.write_map("", &r.class_map, &r.uncertainty)?;
    let model = match &r.model {
        Some(bundle) => {
            let (file, rel) = folder.file("model.udmodel");
            bundle.write(&file)?;
            Some(rel)
        }
        None => None,
    };
    let mut others = Vec::new();
    for other in &r.others {
        let suffix = format!("_{}", other.classifier.name());
        let (rel, uncertainty) = folder.write_map(&suffix, &other.class_map, &other.uncertainty)?;
        others.push(SavedMap {
            classifier: other.classifier,
            class_map: rel,
            uncertainty,
            seconds: other.seconds,
        });
    }
    let mut cleaned = Vec::new();
    for (i, c) in r.cleaned.iter().enumerate() {
        cleaned.push(SavedCleaning {
            source: c.source,
            step: c.step,
            class_map: folder.write_class_map(&format!("cleaned_{i}.tif"), &c.class_map)?,
            changed: c.changed,
            scores: c.scores,
        });
    }
    let sample_accuracy = r
        .sample_accuracy
        .as_ref()
        .map(|(map_name, a)| SavedSampleAccuracy {
            map_name: map_name.clone(),
            reference: ProjectPath::new(project_dir, &a.reference),
            area_unit: a.area_unit.to_string(),
            estimates: a.estimates.clone(),
        });
    let made_from = match &r.made_from {
        Some(made) => Some(save_made_from(made, folder)?),
        None => None,
    };
    let result = SavedResult {
        made_from,
        classifier: r.classifier,
        class_map: rel,
        uncertainty,
        classes: r.classes,
        modalities: r.modalities.clone(),
        backbone: r.backbone.clone(),
        seconds: r.seconds,
        current: r.current,
        warnings: r.warnings.clone(),
        others,
        recommendation: r.recommendation.clone(),
        cleaned,
        sample_accuracy,
    };
    Ok((result, model))
}

/// What `made` holds, with the label layers it was made from written into
/// the data folder.
fn save_made_from(made: &MadeFrom, folder: &DataFolder<'_>) -> anyhow::Result<SavedMadeFrom> {
    let mut saved = SavedMadeFrom {
        kept: serde_json::to_value(made)?,
        train_labels: None,
        test_labels: None,
    };
    if let Origin::App { labels, .. } = &made.origin {
        if let Some(l) = &labels.train {
            saved.train_labels = Some(folder.write_class_map("made_from_train.tif", &l.data)?);
        }
        if let Some(l) = &labels.test {
            saved.test_labels = Some(folder.write_class_map("made_from_test.tif", &l.data)?);
        }
    }
    Ok(saved)
}

/// Writes `snap` as the project `path` (see the module's first lines for
/// the order that keeps it whole).
pub fn save_project(path: &Path, snap: &ProjectSnapshot) -> anyhow::Result<SavedLabels> {
    let dir = path.parent().unwrap_or(Path::new("."));
    if path.is_dir() {
        anyhow::bail!("{} is a folder, not a project file", path.display());
    }
    let root = data_root(path);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut save_dir = root.join(format!("save-{stamp}"));
    let mut n = 1;
    while save_dir.exists() {
        save_dir = root.join(format!("save-{stamp}-{n}"));
        n += 1;
    }
    std::fs::create_dir_all(&save_dir).with_context(|| {
        format!(
            "cannot create the project's data folder {}",
            save_dir.display()
        )
    })?;
    // A data file where it is written, and as the project file names it
    // (`NAME_data/save-…/file`, beside the project file by construction).
    let save_rel = PathBuf::from(root.file_name().unwrap_or_default())
        .join(save_dir.file_name().unwrap_or_default());
    let folder = DataFolder {
        dir: &save_dir,
        rel: &save_rel,
        grid: &snap.grid,
        classes: &snap.classes,
    };
    let write_labels = |layer: &Option<LabelImage>, name: &str| -> anyhow::Result<_> {
        let Some(l) = layer else {
            return Ok(None);
        };
        let (file, rel) = folder.file(name);
        write_class_map(&file, &l.data, &l.grid, &snap.classes)
            .with_context(|| format!("cannot write the project's labels {}", file.display()))?;
        Ok(Some((file, rel)))
    };
    let train = write_labels(&snap.train, "train_labels.tif")?;
    let test = write_labels(&snap.test, "test_labels.tif")?;
    let written = SavedLabels {
        train: train.as_ref().map(|(file, _)| file.clone()),
        test: test.as_ref().map(|(file, _)| file.clone()),
    };
    let (result, model) = match &snap.result {
        Some(r) => {
            let (result, model) = save_result(r, &folder, dir)?;
            (Some(result), model)
        }
        None => (None, None),
    };
    let file_of = |p: Option<&PathBuf>| p.map(|p| ProjectPath::new(dir, p));
    let backbone_files = BackboneFiles {
        checkpoint: match &snap.stage_b.backbone {
            BackboneSpec::Checkpoint { path, .. } => Some(ProjectPath::new(dir, path)),
            BackboneSpec::Random { .. } => None,
        },
        adapter: snap
            .stage_b
            .backbone
            .adapter()
            .map(|a| ProjectPath::new(dir, a)),
    };
    let file = ProjectFile {
        version: PROJECT_VERSION,
        title: snap.sources.title.clone(),
        demo: snap.sources.demo,
        hsi: file_of(snap.sources.hsi.as_ref()).filter(|_| !snap.sources.demo),
        sar: file_of(snap.sources.sar.as_ref()).filter(|_| !snap.sources.demo),
        classes: snap.classes.clone(),
        train_labels: train.map(|(_, rel)| rel),
        test_labels: test.map(|(_, rel)| rel),
        prgb_bands: snap.prgb_bands,
        stage_b: snap.stage_b.clone(),
        stage_a: snap.stage_a.clone(),
        backbone_files,
        model,
        result,
        view: snap.view.clone(),
    };
    let json = serde_json::to_vec_pretty(&file)?;
    write_bytes(path, &json)
        .with_context(|| format!("cannot write the project {}", path.display()))?;
    // The project now names `save_dir`: the earlier saves' data can go.
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries.flatten() {
            let old = e.path();
            if old != save_dir
                && old.is_dir()
                && let Err(err) = std::fs::remove_dir_all(&old)
            {
                log::warn!(
                    "cannot remove the old project data {}: {err}",
                    old.display()
                );
            }
        }
    }
    Ok(written)
}

/// A project file read and its paths resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenedProject {
    pub path: PathBuf,
    pub file: ProjectFile,
}

impl OpenedProject {
    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// A file of the data folder.
    fn data_file(&self, rel: &Path) -> PathBuf {
        self.dir().join(rel)
    }

    /// The scene to load: the inputs, and the project's own label layers.
    pub fn load_request(&self) -> anyhow::Result<LoadRequest> {
        let dir = self.dir();
        let mut req = if self.file.demo {
            LoadRequest::demo().map_err(|e| anyhow::anyhow!("{}: {e}", self.path.display()))?
        } else {
            LoadRequest {
                hsi: self.file.hsi.as_ref().map(|p| p.resolve(dir)),
                sar: self.file.sar.as_ref().map(|p| p.resolve(dir)),
                title: self.file.title.clone(),
                ..LoadRequest::default()
            }
        };
        req.train_labels = self.file.train_labels.as_deref().map(|p| self.data_file(p));
        req.test_labels = self.file.test_labels.as_deref().map(|p| self.data_file(p));
        req.label_offset = 0;
        req.class_names = self.file.classes.iter().map(|c| c.name.clone()).collect();
        req.project = Some(Box::new(self.clone()));
        Ok(req)
    }

    /// The Stage B settings with the backbone's files where they are now.
    pub fn stage_b(&self) -> ClassifySettings {
        let dir = self.dir();
        let mut s = self.file.stage_b.clone();
        if let (BackboneSpec::Checkpoint { path, .. }, Some(p)) =
            (&mut s.backbone, &self.file.backbone_files.checkpoint)
        {
            *path = p.resolve(dir);
        }
        if let Some(a) = &self.file.backbone_files.adapter {
            s.backbone = s.backbone.with_adapter(Some(a.resolve(dir)));
        }
        s
    }

    /// The saved result on the loaded scene: its map, uncertainty and model
    /// read back, its scores computed again on the loaded labels.
    pub fn restore_result(
        &self,
        grid: &PixelGrid,
        train: Option<&LabelImage>,
        test: Option<&LabelImage>,
        labels_revision: u64,
    ) -> anyhow::Result<Option<ClassificationResult>> {
        let Some(saved) = &self.file.result else {
            return Ok(None);
        };
        let (scored, excluded) = match (test, train) {
            (Some(t), Some(l)) => {
                let (s, e) = scoring_labels(t, l);
                (Some(s), e)
            }
            (Some(t), None) => (Some(t.data.clone()), 0),
            _ => (None, 0),
        };
        let mut outcome = Classification {
            classes: saved.classes,
            modalities: saved.modalities.clone(),
            warnings: saved.warnings.clone(),
            classifier: saved.classifier,
            mlp: None,
            forest: None,
            filter_forest: None,
            test_pixels_excluded: excluded,
            recommendation: saved.recommendation.clone(),
            label_curve: None,
        };
        let mut areas = Vec::new();
        let shown = SavedMap {
            classifier: saved.classifier,
            class_map: saved.class_map.clone(),
            uncertainty: saved.uncertainty.clone(),
            seconds: saved.seconds,
        };
        for map in std::iter::once(&shown).chain(&saved.others) {
            let result = self.read_map(map, grid, scored.as_deref(), saved.classes)?;
            areas.push((
                map.classifier,
                class_areas(&result.class_map, grid, &self.file.classes),
            ));
            match map.classifier {
                ClassifierChoice::Mlp => {
                    let stage_b = restored_stage_b(&result, saved.classes);
                    outcome.mlp = Some((result, stage_b));
                }
                ClassifierChoice::Rf => outcome.forest = Some(result),
                ClassifierChoice::FilterRf => outcome.filter_forest = Some(result),
            }
        }
        let model = match &self.file.model {
            Some(rel) => {
                let path = self.data_file(rel);
                ModelBundle::read(&path)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            }
            None => Err("the project holds no trained model".to_string()),
        };
        let mut cleaned = Vec::new();
        for c in &saved.cleaned {
            let map = self.read_class_map(&c.class_map, grid)?;
            cleaned.push(CleanedMap {
                source: c.source,
                step: c.step,
                areas: class_areas(&map.data, grid, &self.file.classes),
                class_map: Arc::new(map.data),
                changed: c.changed,
                scores: c.scores,
            });
        }
        let sample_accuracy = saved.sample_accuracy.as_ref().map(|s| {
            (
                s.map_name.clone(),
                SampleAccuracy {
                    reference: s.reference.resolve(self.dir()),
                    area_unit: if s.area_unit == "ha" { "ha" } else { "pixels" },
                    estimates: s.estimates.clone(),
                },
            )
        });
        Ok(Some(ClassificationResult {
            outcome,
            ablation: Vec::new(),
            backbone: saved.backbone.clone(),
            backbone_kept: false,
            // A result saved after the labels changed stays marked as older.
            labels_revision: if saved.current {
                labels_revision
            } else {
                labels_revision.wrapping_sub(1)
            },
            seconds: saved.seconds,
            areas,
            warm_started: false,
            shown: saved.classifier,
            model,
            sample_accuracy,
            cleaned,
            made_from: match &saved.made_from {
                Some(m) => Some(Arc::new(self.read_made_from(m, grid)?)),
                None => None,
            },
        }))
    }

    /// What a saved result was made from, its label layers read back.
    fn read_made_from(&self, saved: &SavedMadeFrom, grid: &PixelGrid) -> anyhow::Result<MadeFrom> {
        let mut made: MadeFrom = serde_json::from_value(saved.kept.clone())
            .context("the project's record of how its result was made cannot be read")?;
        let layer = |rel: &Option<PathBuf>| -> anyhow::Result<Option<LabelImage>> {
            rel.as_ref()
                .map(|r| self.read_class_map(r, grid))
                .transpose()
        };
        let labels = LabelsUsed {
            train: layer(&saved.train_labels)?,
            test: layer(&saved.test_labels)?,
        };
        if let Origin::App { labels: kept, .. } = &mut made.origin {
            **kept = labels;
        }
        Ok(made)
    }

    /// A class map of the data folder, checked to fit the scene.
    fn read_class_map(&self, rel: &Path, grid: &PixelGrid) -> anyhow::Result<LabelImage> {
        let path = self.data_file(rel);
        let map = open_labels(&path)?;
        grid.check_same("the scene", &map.grid, &path.display().to_string())
            .context("the project's map does not fit the scene")?;
        Ok(map)
    }

    /// One saved map read back with its uncertainty, scored on the test
    /// labels (`scored`) as the run scored it.
    fn read_map(
        &self,
        saved: &SavedMap,
        grid: &PixelGrid,
        scored: Option<&[u8]>,
        classes: usize,
    ) -> anyhow::Result<ClassifierResult> {
        let map = self.read_class_map(&saved.class_map, grid)?;
        let uncertainty = match &saved.uncertainty {
            Some(rel) => {
                let path = self.data_file(rel);
                let (_, values) = read_bands(&path, Some(&[0, 1]))?;
                let n = grid.len();
                anyhow::ensure!(
                    values.len() == 2 * n,
                    "{}: {} values, the scene needs {}",
                    path.display(),
                    values.len(),
                    2 * n
                );
                Some(MergedPrediction {
                    class_map: map.data.clone(),
                    max_probability: values[..n].to_vec(),
                    entropy: values[n..].to_vec(),
                })
            }
            None => None,
        };
        let metrics = scored.map(|t| MetricsSummary::from_labels(t, &map.data, classes));
        Ok(ClassifierResult {
            class_map: map.data,
            uncertainty,
            metrics,
            seconds: saved.seconds,
        })
    }
}

/// The MLP's Stage B output of a restored result: its prediction, nothing
/// of the training (which a project does not keep).
fn restored_stage_b(result: &ClassifierResult, classes: usize) -> StageBOutput {
    StageBOutput {
        prediction: result.uncertainty.clone().unwrap_or(MergedPrediction {
            class_map: result.class_map.clone(),
            max_probability: Vec::new(),
            entropy: Vec::new(),
        }),
        classes,
        classes_without_training: Vec::new(),
        training_vectors: 0,
        cached_patches: 0,
        first_layer_patches: 0,
        validation: ValidationSplit::None,
        head: HeadTrainReport::default(),
        seconds_features: 0.0,
        seconds_training: 0.0,
        seconds_prediction: 0.0,
        held_out_prediction: None,
        host_head: None,
        label_curve: Vec::new(),
        seconds_label_curve: 0.0,
    }
}

/// Reads a project file: refuses a newer format, brings an older one up
/// to this one.
pub fn read_project(path: &Path) -> anyhow::Result<OpenedProject> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the project {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a UniDiff Studio project (not JSON)",
            path.display()
        )
    })?;
    let version = value
        .get("version")
        .and_then(serde_json::Value::as_u64)
        .with_context(|| {
            format!(
                "{} is not a UniDiff Studio project (no version field)",
                path.display()
            )
        })?;
    if version > PROJECT_VERSION as u64 {
        anyhow::bail!(
            "{} was saved by a newer UniDiff Studio (project version {version}; this one reads up to {PROJECT_VERSION}): open it with that version",
            path.display()
        );
    }
    let value = migrate(value, version);
    let file: ProjectFile = serde_json::from_value(value).with_context(|| {
        format!(
            "{} is not a readable UniDiff Studio project",
            path.display()
        )
    })?;
    Ok(OpenedProject {
        path: path.to_path_buf(),
        file,
    })
}

/// Brings a project of an older `version` up to [`PROJECT_VERSION`].
/// Version 1 is the first format; fields added since carry serde
/// defaults, so an older file missing them reads as it was meant. A change
/// that defaults cannot express gets its step here.
fn migrate(mut value: serde_json::Value, version: u64) -> serde_json::Value {
    if version < PROJECT_VERSION as u64
        && let Some(v) = value.get_mut("version")
    {
        *v = serde_json::Value::from(PROJECT_VERSION);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_and_descend() {
        let p = relative_path(Path::new("/a/b/data/x.tif"), Path::new("/a/b/proj"));
        assert_eq!(p, PathBuf::from("../data/x.tif"));
        let p = relative_path(Path::new("/a/b/proj/d/x.tif"), Path::new("/a/b/proj"));
        assert_eq!(p, PathBuf::from("d/x.tif"));
    }

    #[test]
    fn project_extension_is_added_once() {
        assert_eq!(
            with_project_extension(Path::new("/x/my")),
            PathBuf::from("/x/my.udproj")
        );
        assert_eq!(
            with_project_extension(Path::new("/x/my.udproj")),
            PathBuf::from("/x/my.udproj")
        );
        assert!(is_project_file(Path::new("a.UDPROJ")));
    }

    /// A project saved before results kept the forests, clean-up steps
    /// and the sample's accuracy reads as it did: its one map, nothing else.
    #[test]
    fn a_project_from_before_the_kept_results_reads_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("old.udproj");
        std::fs::write(
            &p,
            br#"{"version": 1, "title": "x", "hsi": null, "sar": null, "classes": [],
                "train_labels": null, "test_labels": null,
                "result": {"classifier": "rf", "class_map": "old_data/save-1/class_map.tif",
                           "uncertainty": null, "classes": 2, "modalities": [],
                           "backbone": "tiny", "seconds": 1.5, "current": true}}"#,
        )
        .unwrap();
        let opened = read_project(&p).unwrap();
        let saved = opened.file.result.unwrap();
        assert_eq!(saved.classifier, ClassifierChoice::Rf);
        assert!(saved.others.is_empty() && saved.cleaned.is_empty());
        assert!(saved.recommendation.is_none() && saved.sample_accuracy.is_none());
    }

    #[test]
    fn a_newer_version_is_refused_and_a_file_without_one_is_not_a_project() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new.udproj");
        std::fs::write(&p, br#"{"version": 99, "title": "x"}"#).unwrap();
        let e = format!("{:#}", read_project(&p).unwrap_err());
        assert!(
            e.contains("newer") && e.contains("99") && e.contains("new.udproj"),
            "{e}"
        );
        std::fs::write(&p, br#"{"title": "x"}"#).unwrap();
        let e = format!("{:#}", read_project(&p).unwrap_err());
        assert!(e.contains("no version field"), "{e}");
    }

    #[test]
    fn a_first_version_file_with_only_the_required_fields_reads_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("old.udproj");
        std::fs::write(
            &p,
            br#"{"version": 1, "title": "old", "hsi": null, "sar": null, "classes": [],
                "train_labels": null, "test_labels": null}"#,
        )
        .unwrap();
        let opened = read_project(&p).unwrap();
        assert_eq!(opened.file.stage_b, ClassifySettings::default());
        assert_eq!(opened.file.stage_a, AdaptSettings::default());
        assert!(opened.file.result.is_none() && opened.file.model.is_none());
    }
}
