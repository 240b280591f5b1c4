//! The load job: opens an HSI cube, a SAR image and label files, checks that
//! they share one grid, and renders pRGB, PCA and Pauli, off the UI thread.

use std::path::PathBuf;

use super::project::OpenedProject;
use super::{AdaptSettings, CancelFlag, ClassifySettings, JobContext, JobEvent};
use crate::io::classmap::read_class_table;
use crate::io::{SceneFiles, open_scene};
use crate::products::prgb::RgbRequest;
use crate::products::renderings::{RenderSettings, Renderings, render_all};
use crate::scene::Scene;
use crate::scene::{ClassInfo, named_classes};
use crate::session::{ClassificationResult, SceneSources};

/// What to open.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadRequest {
    pub hsi: Option<PathBuf>,
    pub sar: Option<PathBuf>,
    pub train_labels: Option<PathBuf>,
    pub test_labels: Option<PathBuf>,
    /// Added to label values (1 for 0-based masks such as the demo's).
    pub label_offset: i32,
    /// Class names for values 1.. where the label files have none.
    pub class_names: Vec<String>,
    pub title: String,
    /// The bundled demo scene (remembered as such in recent scenes).
    pub demo: bool,
    /// A project being opened: its classes, bands, settings and last
    /// result come with the scene.
    pub project: Option<Box<OpenedProject>>,
}

impl LoadRequest {
    /// The bundled demo: Sentinel-2 as the optical cube, Sentinel-1 VV/VH,
    /// the hand-labelled water mask as test labels (dry = 1, water = 2) and an
    /// empty training layer to paint.
    pub fn demo() -> Result<Self, crate::demo::DemoNotFound> {
        let (hsi, sar, labels) = crate::demo::demo_paths()?;
        Ok(Self {
            hsi: Some(hsi),
            sar: Some(sar),
            train_labels: None,
            test_labels: Some(labels),
            label_offset: 1,
            class_names: vec!["dry".into(), "water".into()],
            title: "demo: Sen1Floods11 Spain_7370579 (Sentinel-1/2)".into(),
            demo: true,
            project: None,
        })
    }

    /// A request for the given files, sorted by what they look like: a file
    /// with "label" or "gt" in its name is labels, one with "s1", "sar", "vv"
    /// or a PolSARpro folder is SAR, anything else the cube.
    pub fn from_files(files: &[PathBuf]) -> Self {
        let mut req = Self::default();
        for f in files {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().to_lowercase())
                .unwrap_or_default();
            let is_labels = ["label", "_gt", "gt_", "truth", "mask"]
                .iter()
                .any(|k| name.contains(k));
            let is_sar = f.is_dir()
                || ["s1", "sar", "_vv", "vv_", "vh", "polsar"]
                    .iter()
                    .any(|k| name.contains(k));
            if is_labels {
                if req.train_labels.is_none() {
                    req.train_labels = Some(f.clone());
                } else {
                    req.test_labels = Some(f.clone());
                }
            } else if is_sar && req.sar.is_none() {
                req.sar = Some(f.clone());
            } else if req.hsi.is_none() {
                req.hsi = Some(f.clone());
            } else {
                req.sar.get_or_insert(f.clone());
            }
        }
        req.title = files
            .iter()
            .filter_map(|f| f.file_name())
            .map(|n| n.to_string_lossy().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        req
    }
}

/// A scene ready for a session.
#[derive(Debug)]
pub struct LoadedScene {
    pub scene: Scene,
    pub renderings: Renderings,
    pub sources: SceneSources,
    pub classes: Vec<ClassInfo>,
    pub warnings: Vec<String>,
    pub seconds: f64,
    /// What the opened project restores besides the scene.
    pub project: Option<RestoredProject>,
}

/// A project's state besides its scene and labels.
#[derive(Debug)]
pub struct RestoredProject {
    pub path: PathBuf,
    pub stage_b: ClassifySettings,
    pub stage_a: AdaptSettings,
    /// The app's view settings, as it saved them.
    pub view: serde_json::Value,
    pub result: Option<ClassificationResult>,
}

/// Loads, reporting each step; sends Loaded, Failed or Cancelled last.
/// A large cube (or SAR image, alone) is first previewed, and what its
/// whole read takes said.
pub fn run(job: &JobContext<'_>, req: &LoadRequest) {
    use super::scene_preview::{WholeRead, preview_of_cube, preview_of_sar};
    // The raster read first: the cube, or the SAR image opened alone.
    let first = req.hsi.as_ref().or(req.sar.as_ref());
    let read = first.and_then(|p| WholeRead::of(p));
    if let Some(read) = &read {
        job.progress(read.note.clone(), 0.0);
    }
    let preview = read.as_ref().and_then(|read| match req.hsi {
        Some(_) => preview_of_cube(read),
        None => preview_of_sar(read),
    });
    if let Some(preview) = preview {
        job.send(JobEvent::LoadPreview {
            generation: job.generation,
            preview: Box::new(preview),
        });
    }
    let result = load(req, job.cancel, &|step, fraction| {
        job.progress(step, fraction)
    });
    job.finish(result, |generation, scene| JobEvent::Loaded {
        generation,
        scene,
    });
}

/// The load itself; None when cancelled.
pub fn load(
    req: &LoadRequest,
    cancel: &CancelFlag,
    progress: &dyn Fn(&str, f32),
) -> anyhow::Result<Option<LoadedScene>> {
    let t0 = std::time::Instant::now();
    let mut warnings = Vec::new();
    let files = SceneFiles {
        hsi: req.hsi.clone(),
        sar: req.sar.clone(),
        train_labels: req.train_labels.clone(),
        test_labels: req.test_labels.clone(),
        label_offset: req.label_offset,
        class_field: None,
        class_names: req.class_names.clone(),
    };
    let Some(opened) = open_scene(&files, cancel, progress)? else {
        return Ok(None);
    };
    let scene = opened.scene;
    warnings.extend(opened.notes);
    let step = std::cell::Cell::new(0.4f32);
    let mut render = RenderSettings::default();
    if let Some(bands) = req.project.as_ref().and_then(|p| p.file.prgb_bands) {
        render.rgb = RgbRequest::Bands(bands);
    }
    let renderings = render_all(&scene, render, |name| {
        progress(&format!("rendering {name}"), step.get());
        step.set(step.get() + 0.2);
    })?;
    if cancel.is_cancelled() {
        return Ok(None);
    }
    let max_class = [&scene.train_labels, &scene.test_labels]
        .into_iter()
        .flatten()
        .map(|l| l.max_class())
        .max()
        .unwrap_or(0) as usize;
    let mut classes = named_classes(
        max_class.max(req.class_names.len()).max(2),
        &req.class_names,
    );
    // Names and colours stored in a label GeoTIFF win (offset 0 only: with an
    // offset the file's values are not our classes).
    if req.label_offset == 0 {
        for p in [&req.train_labels, &req.test_labels].into_iter().flatten() {
            for c in read_class_table(p) {
                if let Some(ours) = classes.iter_mut().find(|o| o.value == c.value) {
                    *ours = c;
                }
            }
        }
    }
    // A SAR raster read as a matrix, or with bands left out, says so.
    if let Some(sar) = &scene.sar
        && (!sar.off_diagonal.is_empty()
            || sar
                .scale_reason
                .contains(crate::io::open::UNUSED_BANDS_NOTE))
    {
        warnings.push(format!(
            "SAR read as {}: {}",
            sar.kind_name(),
            sar.scale_reason
        ));
    }
    if scene
        .hsi
        .as_ref()
        .is_some_and(|h| h.wavelengths_nm.is_none())
    {
        warnings.push("the cube has no wavelengths: bands are shown by index".to_string());
    }
    let project = match &req.project {
        Some(p) => {
            if !p.file.classes.is_empty() {
                classes = p.file.classes.clone();
            }
            progress("reading the project's last result", 0.95);
            let result = scene.grid().map_or(Ok(None), |grid| {
                p.restore_result(
                    grid,
                    scene.train_labels.as_ref(),
                    scene.test_labels.as_ref(),
                    0,
                )
            });
            let result = result.unwrap_or_else(|e| {
                warnings.push(format!(
                    "the project's last result could not be read: {e:#}"
                ));
                None
            });
            Some(RestoredProject {
                path: p.path.clone(),
                stage_b: p.stage_b(),
                stage_a: p.file.stage_a.clone(),
                view: p.file.view.clone(),
                result,
            })
        }
        None => None,
    };
    let sources = SceneSources {
        hsi: req.hsi.clone(),
        sar: req.sar.clone(),
        // Labels read with an offset are not ours to overwrite.
        train_labels: req.train_labels.clone().filter(|_| req.label_offset == 0),
        test_labels: req.test_labels.clone().filter(|_| req.label_offset == 0),
        title: req.title.clone(),
        demo: req.demo,
    };
    progress("done", 1.0);
    Ok(Some(LoadedScene {
        scene,
        renderings,
        sources,
        classes,
        warnings,
        seconds: t0.elapsed().as_secs_f64(),
        project,
    }))
}
