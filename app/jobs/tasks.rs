//! The app's short file and raster work, off the UI thread: label files read
//! and written, results and the view exported, pRGB rendered from other
//! bands, a checkpoint or adapter checked, the explorer's x_t made, the
//! labels autosaved. One worker runs them in order (a save then an export
//! keep their order); a task of a kind that only the latest matters for (a
//! band change, the explorer's t) supersedes the one of its kind still
//! queued. Every task ends with `TaskDone` or `Failed` naming its file.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use super::JobContext;
use super::project::{ProjectSnapshot, save_project};
use crate::io::staged_folder::StagedFolder;
use crate::model::backbone::{BackboneSpec, adapter_fits, spec_for_checkpoint};
use crate::pipeline::classification::{Classification, ClassifierChoice};
use crate::pipeline::cleanup::{CleanStep, CleanedMap, ScoringLabels, clean_map};
use crate::pipeline::noised::stage_b_input;
use crate::pipeline::run_record::MadeFrom;
use crate::products::prgb::{RgbBands, render_prgb};
use crate::scene::{ClassInfo, HsiCube, LabelImage, LabelLayer, PixelGrid, Rgb8Image};
use crate::session::autosave::{AutosaveSnapshot, write_autosave};
use crate::session::label_files::{LoadedLabels, load_labels, save_labels};

/// What "Export results…" writes: a classification with its clean-up steps,
/// and what it was made from for run.json.
pub struct ResultsExport {
    pub outcome: Classification,
    /// Clean-up steps of the maps: each classifier's last cleaned map goes
    /// beside its own.
    pub cleaned: Vec<CleanedMap>,
    pub grid: PixelGrid,
    pub classes: Vec<ClassInfo>,
    /// None for a result reopened from a project saved without it.
    pub made_from: Option<Arc<MadeFrom>>,
    /// The scene's HSI and SAR files.
    pub hsi: Option<PathBuf>,
    pub sar: Option<PathBuf>,
    /// How long the classification took.
    pub seconds: f64,
}

/// Writes an export whole (under a hidden name, then put in place; a folder
/// that already holds files keeps them and gets the results in a new
/// subfolder): the maps and metrics as `run` writes them, the cleaned maps,
/// the label layers the classification used and run.json, last.
fn export_results(dir: &std::path::Path, e: &ResultsExport) -> anyhow::Result<TaskDone> {
    use crate::pipeline::export::{app_inputs, write_cleaned_maps, write_run_outputs};
    use crate::pipeline::run_record::{LabelsUsed, Origin, RecordParts, run_record};
    let staged = StagedFolder::prepare(&export_folder(dir)?, false)?;
    let names: Vec<String> = e.classes.iter().map(|c| c.name.clone()).collect();
    let mut files = write_run_outputs(staged.path(), &e.outcome, &e.grid, &names)?;
    files.extend(write_cleaned_maps(
        staged.path(),
        &e.outcome,
        &e.cleaned,
        &e.grid,
        &names,
    )?);
    let record = match e.made_from.as_deref() {
        Some(made) => {
            let (none, nothing_read) = (LabelsUsed::default(), serde_json::Map::new());
            let (labels, read) = match &made.origin {
                Origin::App { labels, read, .. } => (&**labels, read),
                Origin::CommandLine { .. } => (&none, &nothing_read),
            };
            let (inputs, label_files) = app_inputs(
                staged.path(),
                &[("hsi", e.hsi.as_deref()), ("sar", e.sar.as_deref())],
                labels,
                read,
                &e.classes,
            )?;
            files.extend(label_files);
            let outputs: Vec<PathBuf> = files.iter().map(|p| staged.final_path(p)).collect();
            run_record(
                &RecordParts {
                    made,
                    inputs,
                    split: None,
                    class_names: &names,
                    outputs: &outputs,
                    seconds: serde_json::json!({ "classification": e.seconds }),
                },
                &e.outcome,
            )
        }
        None => serde_json::json!({
            "software": format!("unidiff-studio {}", env!("CARGO_PKG_VERSION")),
            "made_in": "app",
            "reopened_from_a_project": NOT_RERUNNABLE,
            "result_classifier": e.outcome.classifier,
            "outputs": files.iter().map(|p| staged.final_path(p).display().to_string()).collect::<Vec<_>>(),
        }),
    };
    crate::pipeline::export::write_run_record(staged.path(), &record)?;
    Ok(TaskDone::ResultsExported {
        files: files.len() + 1,
        rerunnable: e.made_from.is_some(),
        dir: staged.commit()?,
    })
}

/// Why an export of a reopened result has no settings to rerun.
const NOT_RERUNNABLE: &str = "the project was saved by a version that kept the maps but not the settings and labels they were made with: classify again to export a run.json that `unidiff-studio run --from-json` reruns";

/// One piece of file or raster work.
pub enum Task {
    LoadLabels {
        layer: LabelLayer,
        path: PathBuf,
        grid: PixelGrid,
        /// The session's classes (vector labels may name them).
        classes: Vec<ClassInfo>,
    },
    SaveLabels {
        layer: LabelLayer,
        path: PathBuf,
        labels: LabelImage,
        classes: Vec<ClassInfo>,
        /// The label revision saved (the session's "unsaved" mark).
        revision: u64,
    },
    /// The class map GeoTIFF (+ .qml), probabilities, PNG and metrics of a
    /// classification into a folder, as `unidiff-studio run` writes them.
    ExportResults {
        dir: PathBuf,
        export: Box<ResultsExport>,
    },
    /// One clean-up step (sieve, majority) on a map.
    CleanMap {
        source: ClassifierChoice,
        /// The map the step starts from (the source's last cleaned map, or
        /// its own); the step is kept only if it is still the latest.
        before: std::sync::Arc<Vec<u8>>,
        step: CleanStep,
        grid: PixelGrid,
        classes: Vec<ClassInfo>,
        scoring: Option<ScoringLabels>,
    },
    /// A class map as polygons in a GeoPackage.
    ExportPolygons {
        path: PathBuf,
        /// Also a layer of one multipolygon per class.
        dissolve: bool,
        class_map: Vec<u8>,
        grid: PixelGrid,
        classes: Vec<ClassInfo>,
    },
    /// A stratified random validation sample of a map into a GeoPackage.
    WriteValidationSample {
        path: PathBuf,
        class_map: Vec<u8>,
        grid: PixelGrid,
        classes: Vec<ClassInfo>,
        per_class: usize,
        seed: u64,
    },
    /// A map's area-adjusted accuracy from a labelled sample.
    ScoreWithSample {
        path: PathBuf,
        class_map: Vec<u8>,
        grid: PixelGrid,
        classes: Vec<ClassInfo>,
        /// Which map it is, in words.
        map_name: String,
    },
    /// A sample's points on the scene's grid, to label in the app.
    OpenSample {
        path: PathBuf,
        grid: PixelGrid,
        classes: Vec<ClassInfo>,
    },
    /// A sample's reference classes (feature id, class) written back.
    SaveSampleReferences {
        path: PathBuf,
        layer: String,
        references: Vec<(u64, Option<u8>)>,
    },
    /// A trained model as a `.udmodel` file, with the session's classes.
    SaveModel {
        model: std::sync::Arc<crate::pipeline::model_bundle::ModelBundle>,
        classes: Vec<ClassInfo>,
        path: PathBuf,
    },
    /// An RGBA image (the map as shown) as a PNG.
    WritePng {
        path: PathBuf,
        width: u32,
        height: u32,
        rgba: Vec<u8>,
    },
    RenderPrgb {
        cube: std::sync::Arc<HsiCube>,
        bands: [usize; 3],
    },
    CheckCheckpoint {
        path: PathBuf,
    },
    CheckAdapter {
        backbone: BackboneSpec,
        path: PathBuf,
    },
    /// Stage B's network input at `t` (the explorer's x_t).
    NoisedInput {
        image: std::sync::Arc<Rgb8Image>,
        t: usize,
        seed: u64,
        patch: usize,
    },
    Autosave {
        dir: PathBuf,
        snapshot: Box<AutosaveSnapshot>,
    },
    /// The project file and its data folder.
    SaveProject {
        path: PathBuf,
        snapshot: Box<ProjectSnapshot>,
    },
}

/// Kinds of tasks; a new task of a kind where [`TaskKind::latest_only`]
/// holds cancels the queued one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKind {
    LoadLabels,
    SaveLabels,
    ExportResults,
    CleanMap,
    ExportPolygons,
    WriteValidationSample,
    ScoreWithSample,
    OpenSample,
    SaveSampleReferences,
    SaveModel,
    WritePng,
    RenderPrgb,
    CheckCheckpoint,
    CheckAdapter,
    NoisedInput,
    Autosave,
    SaveProject,
}

impl TaskKind {
    /// Whether only the latest task of this kind is worth doing.
    pub fn latest_only(self) -> bool {
        matches!(
            self,
            TaskKind::RenderPrgb | TaskKind::NoisedInput | TaskKind::SaveSampleReferences
        )
    }
}

impl Task {
    pub fn kind(&self) -> TaskKind {
        match self {
            Task::LoadLabels { .. } => TaskKind::LoadLabels,
            Task::SaveLabels { .. } => TaskKind::SaveLabels,
            Task::ExportResults { .. } => TaskKind::ExportResults,
            Task::CleanMap { .. } => TaskKind::CleanMap,
            Task::ExportPolygons { .. } => TaskKind::ExportPolygons,
            Task::WriteValidationSample { .. } => TaskKind::WriteValidationSample,
            Task::ScoreWithSample { .. } => TaskKind::ScoreWithSample,
            Task::OpenSample { .. } => TaskKind::OpenSample,
            Task::SaveSampleReferences { .. } => TaskKind::SaveSampleReferences,
            Task::SaveModel { .. } => TaskKind::SaveModel,
            Task::WritePng { .. } => TaskKind::WritePng,
            Task::RenderPrgb { .. } => TaskKind::RenderPrgb,
            Task::CheckCheckpoint { .. } => TaskKind::CheckCheckpoint,
            Task::CheckAdapter { .. } => TaskKind::CheckAdapter,
            Task::NoisedInput { .. } => TaskKind::NoisedInput,
            Task::Autosave { .. } => TaskKind::Autosave,
            Task::SaveProject { .. } => TaskKind::SaveProject,
        }
    }

    /// What the task does, in the user's words (the start of its error).
    pub fn what(&self) -> String {
        match self {
            Task::LoadLabels { layer, path, .. } => {
                format!("cannot load the {} from {}", layer.name(), path.display())
            }
            Task::SaveLabels { layer, path, .. } => {
                format!("cannot save the {} to {}", layer.name(), path.display())
            }
            Task::ExportResults { dir, .. } => format!("cannot export to {}", dir.display()),
            Task::CleanMap { step, .. } => format!("cannot clean the map ({})", step.describe()),
            Task::ExportPolygons { path, .. } => {
                format!("cannot write the polygons to {}", path.display())
            }
            Task::WriteValidationSample { path, .. } => {
                format!("cannot write the validation sample to {}", path.display())
            }
            Task::ScoreWithSample { path, .. } => {
                format!("cannot score the map with {}", path.display())
            }
            Task::OpenSample { path, .. } => format!("cannot open the sample {}", path.display()),
            Task::SaveSampleReferences { path, .. } => {
                format!("cannot write the sample's labels to {}", path.display())
            }
            Task::SaveModel { path, .. } => format!("cannot save the model to {}", path.display()),
            Task::WritePng { path, .. } => format!("cannot write {}", path.display()),
            Task::RenderPrgb { bands, .. } => format!("cannot render pRGB from bands {bands:?}"),
            Task::CheckCheckpoint { path } => {
                format!("cannot use {} as the backbone", path.display())
            }
            Task::CheckAdapter { path, .. } => {
                format!("cannot use the adapter {}", path.display())
            }
            Task::NoisedInput { t, .. } => format!("cannot make x_t at t = {t}"),
            Task::Autosave { dir, .. } => format!("autosave to {} failed", dir.display()),
            Task::SaveProject { path, .. } => {
                format!("cannot save the project {}", path.display())
            }
        }
    }
}

/// What a finished task hands back.
#[derive(Debug)]
pub enum TaskDone {
    LabelsLoaded {
        layer: LabelLayer,
        path: PathBuf,
        loaded: LoadedLabels,
    },
    LabelsSaved {
        layer: LabelLayer,
        path: PathBuf,
        revision: u64,
    },
    ResultsExported {
        dir: PathBuf,
        files: usize,
        /// Its run.json holds what `run --from-json` needs.
        rerunnable: bool,
    },
    PolygonsExported {
        path: PathBuf,
        polygons: usize,
        /// The layer of one multipolygon per class, when asked for.
        dissolved: Option<&'static str>,
    },
    ValidationSampleWritten {
        path: PathBuf,
        written: crate::pipeline::validation_sample::SampleWritten,
    },
    MapCleaned {
        before: std::sync::Arc<Vec<u8>>,
        cleaned: Box<CleanedMap>,
    },
    SampleScored {
        map_name: String,
        accuracy: Box<crate::pipeline::validation_sample::SampleAccuracy>,
    },
    SampleOpened {
        path: PathBuf,
        points: Box<crate::io::sample_points::SamplePoints>,
    },
    SampleReferencesSaved {
        path: PathBuf,
        /// What was written.
        references: Vec<(u64, Option<u8>)>,
    },
    ModelSaved {
        path: PathBuf,
    },
    PngWritten {
        path: PathBuf,
        width: u32,
        height: u32,
    },
    PrgbRendered {
        image: Rgb8Image,
        bands: RgbBands,
    },
    CheckpointChecked {
        backbone: BackboneSpec,
        parameters: usize,
    },
    AdapterChecked {
        backbone: BackboneSpec,
    },
    NoisedInput {
        image: Rgb8Image,
        t: usize,
    },
    Autosaved {
        dir: PathBuf,
        revision: u64,
    },
    ProjectSaved {
        path: PathBuf,
        /// The label revision saved.
        revision: u64,
        labels: super::project::SavedLabels,
    },
}

/// Runs one task (the worker's body).
pub fn run(job: &JobContext<'_>, task: &Task) {
    job.progress(task.what().replacen("cannot ", "", 1), 0.0);
    let done = perform(task).with_context(|| task.what());
    job.finish(done.map(Some), |generation, done| {
        super::JobEvent::TaskDone { generation, done }
    });
}

/// Where an export into `dir` goes: `dir` itself when it is new or empty,
/// else its first free `results-N` subfolder (nothing of the user's is
/// replaced).
fn export_folder(dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    crate::io::staged_folder::check_not_a_file(dir)?;
    let holds_files = dir.is_dir()
        && std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the folder {}", dir.display()))?
            .next()
            .is_some();
    if !holds_files {
        return Ok(dir.to_path_buf());
    }
    (1..10_000)
        .map(|n| dir.join(format!("results-{n}")))
        .find(|p| !p.exists())
        .with_context(|| format!("{} holds too many results folders", dir.display()))
}

fn perform(task: &Task) -> anyhow::Result<TaskDone> {
    Ok(match task {
        Task::LoadLabels {
            layer,
            path,
            grid,
            classes,
        } => TaskDone::LabelsLoaded {
            layer: *layer,
            path: path.clone(),
            loaded: load_labels(path, grid, classes)?,
        },
        Task::SaveLabels {
            layer,
            path,
            labels,
            classes,
            revision,
        } => {
            save_labels(path, labels, classes)?;
            TaskDone::LabelsSaved {
                layer: *layer,
                path: path.clone(),
                revision: *revision,
            }
        }
        Task::ExportResults { dir, export } => export_results(dir, export)?,
        Task::CleanMap {
            source,
            before,
            step,
            grid,
            classes,
            scoring,
        } => TaskDone::MapCleaned {
            before: before.clone(),
            cleaned: Box::new(clean_map(
                *source,
                before,
                grid,
                *step,
                classes,
                scoring.as_ref(),
            )?),
        },
        Task::ExportPolygons {
            path,
            dissolve,
            class_map,
            grid,
            classes,
        } => {
            // GDAL polygonizes a raster: the map goes to a GeoTIFF (and its
            // sidecars) in a hidden folder beside the target first, removed
            // afterwards.
            let name = path
                .file_name()
                .map_or_else(|| "polygons".into(), |n| n.to_string_lossy().to_string());
            let scratch = path.with_file_name(format!(".{name}.raster-{}", std::process::id()));
            std::fs::create_dir(&scratch)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", scratch.display()))?;
            let raster = scratch.join("classmap.tif");
            let written = crate::io::classmap::write_class_map(&raster, class_map, grid, classes)
                .and_then(|()| {
                    crate::io::vectorize::vectorize_class_map_with(
                        &raster, path, classes, *dissolve,
                    )
                });
            if let Err(e) = std::fs::remove_dir_all(&scratch) {
                log::warn!("could not remove {}: {e}", scratch.display());
            }
            TaskDone::PolygonsExported {
                path: path.clone(),
                polygons: written?.polygons,
                dissolved: dissolve.then_some(crate::io::vectorize::DISSOLVED_LAYER),
            }
        }
        Task::WriteValidationSample {
            path,
            class_map,
            grid,
            classes,
            per_class,
            seed,
        } => TaskDone::ValidationSampleWritten {
            path: path.clone(),
            written: crate::pipeline::validation_sample::write_validation_sample(
                path, class_map, grid, classes, *per_class, *seed,
            )?,
        },
        Task::ScoreWithSample {
            path,
            class_map,
            grid,
            classes,
            map_name,
        } => TaskDone::SampleScored {
            map_name: map_name.clone(),
            accuracy: Box::new(crate::pipeline::validation_sample::accuracy_from_sample(
                path, class_map, grid, classes,
            )?),
        },
        Task::OpenSample {
            path,
            grid,
            classes,
        } => TaskDone::SampleOpened {
            path: path.clone(),
            points: Box::new(crate::io::sample_points::read_sample_points(
                path,
                crate::io::sample_points::REFERENCE_FIELD,
                grid,
                classes,
            )?),
        },
        Task::SaveSampleReferences {
            path,
            layer,
            references,
        } => {
            crate::io::sample_points::write_references(
                path,
                layer,
                crate::io::sample_points::REFERENCE_FIELD,
                references,
            )?;
            TaskDone::SampleReferencesSaved {
                path: path.clone(),
                references: references.clone(),
            }
        }
        Task::SaveModel {
            model,
            classes,
            path,
        } => {
            let mut model = (**model).clone();
            model.classes = classes.clone();
            model.write(path)?;
            TaskDone::ModelSaved { path: path.clone() }
        }
        Task::WritePng {
            path,
            width,
            height,
            rgba,
        } => {
            let image = image::RgbaImage::from_raw(*width, *height, rgba.clone())
                .context("the captured image has the wrong size")?;
            let mut png = Vec::new();
            image.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
            crate::io::atomic::write_bytes(path, &png)?;
            TaskDone::PngWritten {
                path: path.clone(),
                width: *width,
                height: *height,
            }
        }
        Task::RenderPrgb { cube, bands } => TaskDone::PrgbRendered {
            image: render_prgb(cube, *bands)?,
            bands: RgbBands {
                bands: *bands,
                reason: format!("bands {bands:?}, chosen by the user"),
            },
        },
        Task::CheckCheckpoint { path } => {
            let (backbone, parameters) = spec_for_checkpoint(path)?;
            TaskDone::CheckpointChecked {
                backbone,
                parameters,
            }
        }
        Task::CheckAdapter { backbone, path } => {
            let spec = backbone.with_adapter(Some(path.clone()));
            adapter_fits(&spec, path)?;
            TaskDone::AdapterChecked { backbone: spec }
        }
        Task::NoisedInput {
            image,
            t,
            seed,
            patch,
        } => TaskDone::NoisedInput {
            image: stage_b_input(image, *t, *seed, *patch),
            t: *t,
        },
        Task::Autosave { dir, snapshot } => {
            write_autosave(dir, snapshot)?;
            TaskDone::Autosaved {
                dir: dir.clone(),
                revision: snapshot.labels_revision,
            }
        }
        Task::SaveProject { path, snapshot } => {
            let labels = save_project(path, snapshot)?;
            TaskDone::ProjectSaved {
                path: path.clone(),
                revision: snapshot.labels_revision,
                labels,
            }
        }
    })
}
