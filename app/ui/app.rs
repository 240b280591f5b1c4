//! The eframe app: the session (data), the jobs (background work) and the
//! view state, glued together once per frame. Widgets never change the
//! session directly: they queue [`Command`]s that `apply_command` runs, which
//! also marks what the map must re-upload.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use eframe::egui;

use super::layers::{LayerId, LayerStack};
use super::prefs::{PREFS_KEY, Prefs, RecentScene};
use super::view_transform::ViewTransform;
use crate::jobs::{
    ClassifyRequest, ClassifySettings, JobEvent, JobKind, Jobs, LoadRequest, LoadedScene,
};
use crate::scene::{LabelLayer, PixelRect};
use crate::session::autosave::{
    AutosaveSnapshot, Recovery, autosave_dir, autosave_interval, data_dir, discard, find_recovery,
    write_autosave,
};
use crate::session::label_files::{load_labels, save_labels};
use crate::session::{ClassificationResult, Command, Session};

/// How the app was started.
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    /// Open the bundled demo scene.
    pub demo: bool,
    /// Rasters to open (cube, SAR, labels: sorted by name).
    pub files: Vec<PathBuf>,
    /// Where autosaves go (default: the app's data folder).
    pub data_dir: Option<PathBuf>,
}

/// The painting tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// Click shows the pixel in the inspector.
    Inspect,
    Brush,
    Eraser,
}

/// A message shown in the window until closed.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub error: bool,
    pub text: String,
}

/// A load or classification in progress.
#[derive(Debug, Clone)]
pub struct Loading {
    pub generation: u64,
    pub step: String,
    pub fraction: f32,
    pub started: Instant,
}

impl Loading {
    pub(crate) fn started(generation: u64) -> Self {
        Self {
            generation,
            step: "starting".into(),
            fraction: 0.0,
            started: Instant::now(),
        }
    }
}

/// What part of a layer's texture must be uploaded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dirty {
    All,
    Rect(PixelRect),
}

/// A file picked in a native dialog, and what it is for.
#[derive(Debug, Clone, PartialEq)]
pub enum FileAction {
    OpenHsi,
    OpenSar,
    OpenLabels(LabelLayer),
    SaveLabels(LabelLayer),
    /// A folder for the class map, probabilities and metrics.
    ExportResults,
    /// A guided-diffusion checkpoint (.pt / .safetensors) as the backbone.
    ImportCheckpoint,
    /// A Stage A adapter for the backbone.
    LoadAdapter,
    /// A PNG of the map as shown, with its legend.
    ExportViewPng,
}

/// A checkpoint checked on a thread: the backbone and its parameter count.
type CheckedBackbone = Result<(crate::model::backbone::BackboneSpec, usize), String>;

/// Counts of the 256 values of each of a rendering's three channels.
pub type ChannelHistograms = [[u32; 256]; 3];

/// The application.
pub struct StudioApp {
    pub session: Option<Session>,
    pub jobs: Jobs,
    pub loading: Option<Loading>,
    pub view: ViewTransform,
    pub fit_pending: bool,
    pub layers: LayerStack,
    pub tool: Tool,
    pub brush_size: f32,
    pub active_class: u8,
    pub paint_layer: LabelLayer,
    pub selected_layer: LayerId,
    pub messages: Vec<Message>,
    pub inspected: Option<(usize, usize)>,
    pub hovered: Option<(usize, usize)>,
    pub recovery: Option<Recovery>,
    pub prefs: Prefs,
    pub show_shortcuts: bool,
    /// The wgpu map pipeline is installed (false on the glow fallback).
    pub gpu_map: bool,
    pub(crate) dirty: HashMap<LayerId, Dirty>,
    pub(crate) palette_dirty: bool,
    pub(crate) commands: Vec<Command>,
    pub(crate) last_autosave: Instant,
    pub(crate) autosaved_revision: u64,
    autosave_busy: Arc<AtomicBool>,
    pub(crate) dialog_tx: crossbeam_channel::Sender<(FileAction, Option<PathBuf>)>,
    /// Checked checkpoints (or why not) from the checking thread.
    backbone_tx: crossbeam_channel::Sender<CheckedBackbone>,
    backbone_rx: crossbeam_channel::Receiver<CheckedBackbone>,
    /// Wakes the UI (threads other than the job workers).
    waker: crate::jobs::Waker,
    dialog_rx: crossbeam_channel::Receiver<(FileAction, Option<PathBuf>)>,
    /// Seconds of CPU-side work of the last frames (the benchmark reads it).
    pub frame_seconds: Vec<f64>,
    /// GPU uploads not yet applied, with their sequence numbers.
    pub(crate) gpu_uploads: Vec<(u64, Arc<super::gpu_map::GpuUpload>)>,
    pub(crate) gpu_seq: u64,
    pub(crate) gpu_applied: Arc<std::sync::atomic::AtomicU64>,
    /// The map's screen rectangle in the last frame.
    pub map_rect: Option<egui::Rect>,
    /// Root of the autosave folders.
    pub data_dir: PathBuf,
    /// The map without wgpu, and the version of the renderings it shows.
    pub(crate) cpu_map: super::cpu_map::CpuMap,
    pub(crate) renderings_version: u64,
    /// Per-channel histograms of the rendering in the stretch editor, for
    /// (layer, renderings version).
    pub(crate) histogram_cache: Option<(LayerId, u64, Box<ChannelHistograms>)>,
    /// Settings of the next classification, and the one running.
    pub classify_settings: ClassifySettings,
    pub classifying: Option<Loading>,
    /// Settings of the next Stage A run, the one running, and the loss of
    /// every step of the current (or last) run.
    pub adapt_settings: crate::jobs::AdaptSettings,
    pub adapting: Option<Loading>,
    pub adapt_curve: Vec<f32>,
    /// The device the last Stage A or Stage B job ran on, and why.
    pub last_device: Option<String>,
    /// The backbone layout and its "Stage A trains ..." line.
    pub(crate) backbone_counts: Option<(crate::model::config::UNetConfig, String)>,
    pub show_results: bool,
    /// Where the next captured frame's map goes (Export view as PNG).
    /// and whether the capture was asked for.
    pub pending_view_png: Option<(PathBuf, bool)>,
    pub explorer: super::explorer::Explorer,
    /// Classify again after each finished stroke (debounced).
    pub auto_classify: bool,
    pub(crate) auto_classify_due: Option<(Instant, u64)>,
    pub(crate) classifying_revision: u64,
    /// "Where to label next": the most uncertain unlabelled squares of the
    /// last result, and the one the N key went to last.
    pub suggestions: Vec<crate::session::UncertainRegion>,
    pub suggestion_index: Option<usize>,
    /// The largest texture side of the GPU (wgpu only).
    pub max_texture_side: Option<u32>,
}

impl StudioApp {
    /// Sets up the app (from eframe, or a test harness).
    pub fn new(cc: &eframe::CreationContext<'_>, options: AppOptions) -> Self {
        let prefs: Prefs = cc
            .storage
            .and_then(|s| eframe::get_value(s, PREFS_KEY))
            .unwrap_or_default();
        cc.egui_ctx.set_theme(if prefs.dark {
            egui::Theme::Dark
        } else {
            egui::Theme::Light
        });
        let gpu_map = match &cc.wgpu_render_state {
            Some(rs) => {
                super::gpu_map::install(rs);
                true
            }
            None => false,
        };
        let max_texture_side = cc
            .wgpu_render_state
            .as_ref()
            .and_then(super::gpu_map::max_texture_side);
        let ctx = cc.egui_ctx.clone();
        let waker: crate::jobs::Waker = Arc::new(move || ctx.request_repaint());
        let jobs = Jobs::start(waker.clone());
        let (dialog_tx, dialog_rx) = crossbeam_channel::unbounded();
        let (backbone_tx, backbone_rx) = crossbeam_channel::unbounded();
        let mut app = Self {
            session: None,
            jobs,
            loading: None,
            view: ViewTransform::default(),
            fit_pending: true,
            layers: LayerStack::default(),
            tool: Tool::Inspect,
            brush_size: prefs.brush_size,
            active_class: 1,
            paint_layer: LabelLayer::Train,
            selected_layer: LayerId::Prgb,
            messages: Vec::new(),
            inspected: None,
            hovered: None,
            recovery: None,
            prefs,
            show_shortcuts: false,
            gpu_map,
            dirty: HashMap::new(),
            palette_dirty: true,
            commands: Vec::new(),
            last_autosave: Instant::now(),
            autosaved_revision: 0,
            autosave_busy: Arc::new(AtomicBool::new(false)),
            dialog_tx,
            dialog_rx,
            backbone_tx,
            backbone_rx,
            waker,
            frame_seconds: Vec::new(),
            map_rect: None,
            gpu_uploads: Vec::new(),
            gpu_seq: 0,
            gpu_applied: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            data_dir: options.data_dir.clone().unwrap_or_else(data_dir),
            cpu_map: Default::default(),
            renderings_version: 0,
            histogram_cache: None,
            classify_settings: ClassifySettings::default(),
            classifying: None,
            adapt_settings: Default::default(),
            adapting: None,
            adapt_curve: Vec::new(),
            last_device: None,
            backbone_counts: None,
            show_results: false,
            pending_view_png: None,
            explorer: Default::default(),
            auto_classify: false,
            auto_classify_due: None,
            classifying_revision: 0,
            max_texture_side,
            suggestions: Vec::new(),
            suggestion_index: None,
        };
        if options.demo {
            app.open(LoadRequest::demo());
        } else if !options.files.is_empty() {
            app.open(LoadRequest::from_files(&options.files));
        }
        app
    }

    /// Starts loading a scene in the background.
    pub fn open(&mut self, request: LoadRequest) {
        let generation = self.jobs.load(request);
        self.loading = Some(Loading::started(generation));
    }

    /// Adds a file to the open scene (or opens it alone).
    pub fn open_with(&mut self, action: &FileAction, path: PathBuf) {
        let mut request = match &self.session {
            Some(s) => LoadRequest {
                hsi: s.sources.hsi.clone(),
                sar: s.sources.sar.clone(),
                ..LoadRequest::default()
            },
            None => LoadRequest::default(),
        };
        match action {
            FileAction::OpenHsi => request.hsi = Some(path),
            FileAction::OpenSar => request.sar = Some(path),
            FileAction::OpenLabels(layer) => {
                self.load_label_file(*layer, &path);
                return;
            }
            FileAction::SaveLabels(layer) => {
                self.save_label_file(*layer, path);
                return;
            }
            FileAction::ExportResults => {
                self.export_results(&path);
                return;
            }
            FileAction::ImportCheckpoint => {
                self.use_checkpoint(path);
                return;
            }
            FileAction::LoadAdapter => {
                self.use_adapter(Some(path));
                return;
            }
            FileAction::ExportViewPng => {
                self.export_view_png(path);
                return;
            }
        }
        request.title = [&request.hsi, &request.sar]
            .into_iter()
            .flatten()
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().to_string())
            .collect::<Vec<_>>()
            .join(" + ");
        self.open(request);
    }

    pub fn error(&mut self, text: impl Into<String>) {
        let text = text.into();
        eprintln!("error: {text}");
        self.messages.push(Message { error: true, text });
    }

    pub fn info(&mut self, text: impl Into<String>) {
        let text = text.into();
        eprintln!("{text}");
        self.messages.push(Message { error: false, text });
    }

    /// Queues a command for the end of this frame.
    pub fn command(&mut self, c: Command) {
        self.commands.push(c);
    }

    /// Runs a command now and marks what changed.
    pub fn apply_command(&mut self, c: Command) {
        let Some(session) = &mut self.session else {
            return;
        };
        let changed = session.apply(c);
        let max = session.classes.iter().map(|c| c.value).max().unwrap_or(1);
        for (layer, rect) in changed.labels {
            self.mark_labels_dirty(layer, Dirty::Rect(rect));
        }
        if changed.classes {
            self.palette_dirty = true;
            self.active_class = self.active_class.clamp(1, max.max(1));
        }
    }

    pub(crate) fn mark_labels_dirty(&mut self, layer: LabelLayer, d: Dirty) {
        let id = match layer {
            LabelLayer::Train => LayerId::TrainLabels,
            LabelLayer::Test => LayerId::TestLabels,
        };
        let merged = match (self.dirty.get(&id), d) {
            (Some(Dirty::All), _) | (_, Dirty::All) => Dirty::All,
            (Some(Dirty::Rect(a)), Dirty::Rect(b)) => Dirty::Rect(a.union(b)),
            (None, d) => d,
        };
        self.dirty.insert(id, merged);
    }

    fn install_session(&mut self, loaded: LoadedScene) {
        let LoadedScene {
            scene,
            renderings,
            sources,
            classes,
            warnings,
            seconds,
        } = loaded;
        let same_grid = self
            .session
            .as_ref()
            .and_then(|s| s.scene.grid())
            .zip(scene.grid())
            .is_some_and(|(a, b)| a == b);
        let mut session = Session::new(scene, renderings, sources, classes);
        // A layer added to the open scene keeps the labels painted so far.
        if same_grid && let Some(old) = self.session.take() {
            session.scene.train_labels = old.scene.train_labels;
            session.scene.test_labels = old.scene.test_labels;
            session.classes = old.classes;
            session.sources.train_labels = old.sources.train_labels;
            session.sources.test_labels = old.sources.test_labels;
            session.labels_revision = old.labels_revision;
            session.saved_revision = old.saved_revision;
            session.recount();
        } else {
            self.fit_pending = true;
            self.inspected = None;
        }
        for w in warnings {
            self.info(w);
        }
        if let (Some(max), Some(g)) = (self.max_texture_side, session.scene.grid())
            && (g.width as u32 > max || g.height as u32 > max)
        {
            self.error(format!(
                "the scene ({} x {} pixels) is larger than this GPU's largest texture ({max} pixels a side): the map cannot show it yet (tiling is not implemented); labels, inspector and classification work",
                g.height, g.width
            ));
        }
        self.prefs.remember(RecentScene {
            title: session.sources.title.clone(),
            hsi: session.sources.hsi.clone(),
            sar: session.sources.sar.clone(),
            demo: session.sources.demo,
        });
        if session.renderings.prgb.is_none() && session.renderings.pauli.is_some() {
            for id in [LayerId::Prgb, LayerId::Pauli] {
                if let Some(l) = self.layers.get_mut(id) {
                    l.visible = id == LayerId::Pauli;
                }
            }
        }
        eprintln!(
            "opened {} ({:.1} s)",
            if session.sources.title.is_empty() {
                "scene"
            } else {
                &session.sources.title
            },
            seconds
        );
        self.autosaved_revision = session.labels_revision;
        self.recovery = session
            .scene
            .grid()
            .and_then(|g| find_recovery(&autosave_dir(&self.data_dir, &session.sources), g))
            .filter(|r| {
                LabelLayer::ALL.iter().any(|&l| {
                    r.labels(l)
                        .zip(session.scene.labels(l))
                        .is_some_and(|(a, b)| a.data != b.data)
                })
            });
        if let Some(r) = &self.recovery {
            eprintln!("autosave found: {} ({})", r.dir.display(), r.age());
        }
        self.session = Some(session);
        for id in [
            LayerId::Prgb,
            LayerId::Pca,
            LayerId::Pauli,
            LayerId::TrainLabels,
            LayerId::TestLabels,
        ] {
            self.dirty.insert(id, Dirty::All);
        }
        self.palette_dirty = true;
        self.renderings_version += 1;
        self.last_autosave = Instant::now();
    }

    /// Takes the autosaved labels (one undo step per layer).
    pub fn recover(&mut self) {
        let (Some(rec), Some(session)) = (self.recovery.take(), self.session.as_mut()) else {
            return;
        };
        for layer in LabelLayer::ALL {
            if let Some(l) = rec.labels(layer) {
                session.replace_labels(
                    layer,
                    l.clone(),
                    format!("recover autosaved {}", layer.name()),
                );
            }
        }
        for c in &rec.manifest.classes {
            match session.classes.iter_mut().find(|o| o.value == c.value) {
                Some(o) => *o = c.clone(),
                None => session.classes.push(c.clone()),
            }
        }
        session.classes.sort_by_key(|c| c.value);
        for layer in LabelLayer::ALL {
            self.mark_labels_dirty(layer, Dirty::All);
        }
        self.palette_dirty = true;
        self.info(format!("recovered the labels autosaved {}", rec.age()));
    }

    /// Forgets the offered autosave.
    pub fn discard_recovery(&mut self) {
        if let Some(rec) = self.recovery.take() {
            discard(&rec.dir);
        }
    }

    /// Reads a label file into a layer (one undo step); unknown classes are
    /// added to the class list with a message.
    pub fn load_label_file(&mut self, layer: LabelLayer, path: &std::path::Path) {
        let Some(session) = &mut self.session else {
            self.error("open a scene before its labels");
            return;
        };
        let Some(grid) = session.scene.grid().cloned() else {
            return;
        };
        match load_labels(path, &grid) {
            Ok(loaded) => {
                for c in &loaded.classes {
                    if let Some(o) = session.classes.iter_mut().find(|o| o.value == c.value) {
                        *o = c.clone();
                    }
                }
                let added = session.add_missing_classes(&loaded.values);
                session.replace_labels(
                    layer,
                    loaded.labels,
                    format!("load {} from {}", layer.name(), path.display()),
                );
                session
                    .sources
                    .set_labels_path(layer, Some(path.to_path_buf()));
                self.mark_labels_dirty(layer, Dirty::All);
                self.palette_dirty = true;
                if !added.is_empty() {
                    let list = added
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(", ");
                    self.info(format!(
                        "{} holds classes the list did not have ({list}): added as \"class N\"; rename them in the class editor",
                        path.display()
                    ));
                }
            }
            Err(e) => self.error(format!("cannot load labels from {}: {e:#}", path.display())),
        }
    }

    /// Writes a label layer as a class GeoTIFF.
    pub fn save_label_file(&mut self, layer: LabelLayer, path: PathBuf) {
        let Some(session) = &mut self.session else {
            return;
        };
        let Some(labels) = session.scene.labels(layer) else {
            return;
        };
        match save_labels(&path, labels, &session.classes) {
            Ok(()) => {
                session.sources.set_labels_path(layer, Some(path.clone()));
                if layer == LabelLayer::Train {
                    session.saved_revision = session.labels_revision;
                }
                self.info(format!("saved {} to {}", layer.name(), path.display()));
            }
            Err(e) => self.error(format!("{e:#}")),
        }
    }

    /// Writes the last classification as `unidiff-studio run` does: class
    /// map GeoTIFF (+ .qml, colour table, names), probability.tif, map.png,
    /// metrics.json / .csv, the forest's under `baseline_rf/`.
    pub fn export_results(&mut self, dir: &std::path::Path) {
        let Some(s) = &self.session else {
            return;
        };
        let (Some(r), Some(grid)) = (&s.result, s.scene.grid()) else {
            self.error("nothing to export: classify first");
            return;
        };
        let names: Vec<String> = s.classes.iter().map(|c| c.name.clone()).collect();
        let written = std::fs::create_dir_all(dir)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                crate::pipeline::export::write_run_outputs(dir, &r.outcome, grid, &names)
                    .map_err(|e| e.to_string())
            });
        match written {
            Ok(files) => self.info(format!(
                "exported {} files to {}",
                files.len(),
                dir.display()
            )),
            Err(e) => self.error(format!("cannot export to {}: {e}", dir.display())),
        }
    }

    /// Opens a native file dialog off the UI thread.
    pub fn pick_file(&self, ctx: &egui::Context, action: FileAction) {
        let tx = self.dialog_tx.clone();
        let ctx = ctx.clone();
        let start_dir = self
            .session
            .as_ref()
            .and_then(|s| s.sources.hsi.as_ref().or(s.sources.sar.as_ref()))
            .and_then(|p| p.parent().map(|p| p.to_path_buf()));
        let _ = std::thread::Builder::new()
            .name("file dialog".into())
            .spawn(move || {
                let mut dialog = rfd::FileDialog::new();
                if let Some(d) = start_dir {
                    dialog = dialog.set_directory(d);
                }
                let picked = match &action {
                    FileAction::SaveLabels(_) => dialog
                        .add_filter("GeoTIFF", &["tif", "tiff"])
                        .set_file_name("labels.tif")
                        .save_file(),
                    FileAction::OpenLabels(_) => dialog
                        .add_filter("label rasters", &["tif", "tiff", "mat", "npy", "img"])
                        .add_filter("all files", &["*"])
                        .pick_file(),
                    FileAction::ExportResults => dialog.pick_folder(),
                    FileAction::ImportCheckpoint => dialog
                        .add_filter("guided-diffusion checkpoints", &["pt", "safetensors"])
                        .pick_file(),
                    FileAction::ExportViewPng => dialog
                        .add_filter("PNG", &["png"])
                        .set_file_name("view.png")
                        .save_file(),
                    FileAction::LoadAdapter => dialog
                        .add_filter("Stage A adapters", &["safetensors"])
                        .pick_file(),
                    _ => dialog.pick_file(),
                };
                let _ = tx.send((action, picked));
                ctx.request_repaint();
            });
    }

    /// Starts a classification of the labels as they are now; one still
    /// running is cancelled (its result would be stale). The map keeps
    /// showing the last result meanwhile.
    pub fn classify(&mut self) {
        self.start_classification(Vec::new(), Vec::new());
    }

    /// Stage B at each of `timesteps` (the explorer's sweep); the map shown
    /// is the best timestep's by mF1, the explorer plots them all.
    pub fn classify_sweep(&mut self, timesteps: Vec<i64>) {
        self.start_classification(Vec::new(), timesteps);
    }

    /// Starts Stage A on the open scene with the panel's settings; the
    /// adapter goes to the data folder.
    pub fn adapt(&mut self) {
        let Some(s) = &self.session else {
            return;
        };
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let slug: String = s
            .sources
            .title
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(48)
            .collect();
        let request = crate::jobs::AdaptRequest {
            renderings: s.renderings.clone(),
            settings: self.adapt_settings.clone(),
            backbone: self.classify_settings.backbone.clone(),
            out: self
                .data_dir
                .join("adapters")
                .join(format!("{slug}-{stamp}.safetensors")),
            device: self.classify_settings.device,
        };
        self.adapt_curve.clear();
        let generation = self.jobs.adapt(request);
        self.adapting = Some(Loading::started(generation));
    }

    /// Cancels Stage A, the classification and the feature projection, where
    /// running (Esc); loading has its own Cancel.
    pub fn cancel_running_jobs(&mut self) {
        if self.adapting.is_some() {
            self.jobs.cancel_adapt();
        }
        if self.classifying.is_some() {
            self.jobs.cancel_classify();
        }
        if self.explorer.projecting.is_some() {
            self.jobs.cancel_features();
        }
    }

    /// Uses the guided-diffusion checkpoint at `path` as the backbone (its
    /// layout recognised by its parameter count); the file is read on a
    /// thread, the backbone changes when it has been checked.
    pub fn use_checkpoint(&mut self, path: PathBuf) {
        let tx = self.backbone_tx.clone();
        let wake = self.waker.clone();
        self.info(format!("reading {} …", path.display()));
        let spawned = std::thread::Builder::new()
            .name("checkpoint check".into())
            .spawn(move || {
                let checked = crate::model::backbone::spec_for_checkpoint(&path)
                    .map_err(|e| format!("cannot use {} as the backbone: {e}", path.display()));
                let _ = tx.send(checked);
                wake();
            });
        if let Err(e) = spawned {
            self.error(format!("cannot start the checkpoint check: {e}"));
        }
    }

    /// Puts `adapter` on the current backbone (None: the base weights),
    /// after checking that it was made for it.
    pub fn use_adapter(&mut self, adapter: Option<PathBuf>) {
        let spec = self
            .classify_settings
            .backbone
            .with_adapter(adapter.clone());
        if let Some(path) = &adapter
            && let Err(e) = crate::model::backbone::adapter_fits(&spec, path)
        {
            self.error(format!("cannot use the adapter: {e}"));
            return;
        }
        self.classify_settings.backbone = spec;
    }

    /// Stage B for each of the seven modality subsets (the paper's Table 5);
    /// the map shown is the last (all three).
    pub fn classify_ablation(&mut self) {
        self.start_classification(crate::jobs::classify::all_subsets(), Vec::new());
    }

    fn start_classification(
        &mut self,
        subsets: Vec<Vec<crate::pipeline::Modality>>,
        timesteps: Vec<i64>,
    ) {
        let Some(s) = &self.session else {
            return;
        };
        let request = ClassifyRequest {
            scene: s.scene.clone(),
            renderings: s.renderings.clone(),
            settings: self.classify_settings.clone(),
            labels_revision: s.labels_revision,
            subsets,
            timesteps,
        };
        self.classifying_revision = s.labels_revision;
        let generation = self.jobs.classify(request);
        self.classifying = Some(Loading::started(generation));
    }

    /// With auto-classify on, a finished edit schedules a classification
    /// after a short pause; further edits push it back (debounce), and a run
    /// still going is superseded.
    fn maybe_auto_classify(&mut self, ctx: &egui::Context) {
        const PAUSE: Duration = Duration::from_millis(300);
        let Some(s) = &self.session else {
            return;
        };
        if !self.auto_classify || s.is_painting() {
            return;
        }
        let revision = s.labels_revision;
        let done_for = s.result.as_ref().map(|r| r.labels_revision);
        let running_for = self.classifying.as_ref().map(|_| self.classifying_revision);
        if done_for == Some(revision) || running_for == Some(revision) {
            self.auto_classify_due = None;
            return;
        }
        match self.auto_classify_due {
            Some((at, rev)) if rev == revision => {
                if Instant::now() >= at {
                    self.auto_classify_due = None;
                    self.classify();
                } else {
                    ctx.request_repaint_after(at - Instant::now());
                }
            }
            _ => {
                self.auto_classify_due = Some((Instant::now() + PAUSE, revision));
                ctx.request_repaint_after(PAUSE);
            }
        }
    }

    /// Recomputes the most uncertain unlabelled squares (32 px) of the last
    /// result.
    pub fn update_suggestions(&mut self) {
        self.suggestions = self
            .session
            .as_ref()
            .and_then(|s| {
                let r = s.result.as_ref()?;
                let width = s.scene.grid()?.width;
                Some(r.uncertain_regions(width, s.scene.train_labels.as_ref(), 5, 32))
            })
            .unwrap_or_default();
        self.suggestion_index = None;
    }

    /// Centres the view on the next suggestion (N).
    pub fn next_suggestion(&mut self) {
        if self.suggestions.is_empty() {
            return;
        }
        let i = self
            .suggestion_index
            .map_or(0, |i| (i + 1) % self.suggestions.len());
        let r = self.suggestions[i];
        self.view.center = [
            r.x as f32 + r.side as f32 / 2.0,
            r.y as f32 + r.side as f32 / 2.0,
        ];
        self.suggestion_index = Some(i);
    }

    fn handle_events(&mut self) {
        for event in self.jobs.poll() {
            let loading = self.loading.as_ref().map(|l| l.generation);
            let classifying = self.classifying.as_ref().map(|l| l.generation);
            let adapting = self.adapting.as_ref().map(|l| l.generation);
            let projecting = self.explorer.projecting.as_ref().map(|l| l.generation);
            let g = Some(event.generation());
            if ![loading, classifying, adapting, projecting].contains(&g) {
                continue;
            }
            match event {
                JobEvent::Progress {
                    kind,
                    step,
                    fraction,
                    ..
                } => {
                    let slot = match kind {
                        JobKind::Load => &mut self.loading,
                        JobKind::Classify => &mut self.classifying,
                        JobKind::Adapt => &mut self.adapting,
                        JobKind::Features => &mut self.explorer.projecting,
                    };
                    if let Some(l) = slot {
                        l.step = step;
                        l.fraction = fraction;
                    }
                }
                JobEvent::Classified { result, .. } => {
                    self.classifying = None;
                    let result = *result;
                    for w in &result.outcome.warnings {
                        self.info(w.clone());
                    }
                    eprintln!("classified in {:.1} s on {}", result.seconds, result.device);
                    self.last_device = Some(result.device.clone());
                    let was_sweep = !result.sweep.is_empty();
                    if was_sweep {
                        self.explorer
                            .merge_sweep(result.sweep, result.labels_revision);
                    }
                    if let Some(s) = &mut self.session {
                        s.result = Some(ClassificationResult {
                            ablation: result
                                .ablation
                                .into_iter()
                                .map(|r| (r.modalities, r.metrics))
                                .collect(),
                            outcome: result.outcome,
                            backbone: result.backbone,
                            labels_revision: result.labels_revision,
                            seconds: result.seconds,
                        });
                    }
                    self.dirty.insert(LayerId::ClassMap, Dirty::All);
                    self.dirty.insert(LayerId::Uncertainty, Dirty::All);
                    self.update_suggestions();
                    self.renderings_version += 1;
                    self.show_results = !was_sweep;
                }
                JobEvent::AdaptStep { step, .. } => {
                    if let Some(l) = &mut self.adapting {
                        let eta = step
                            .eta_seconds
                            .map_or(String::new(), |e| format!(", ETA {e:.0} s"));
                        l.step = format!(
                            "step {}/{}, loss {:.4}{eta}",
                            step.step, step.steps, step.loss
                        );
                        l.fraction = step.step as f32 / step.steps.max(1) as f32;
                    }
                    if step.step == 1 || step.step % 10 == 0 || step.step == step.steps {
                        eprintln!(
                            "Stage A step {}/{}, loss {:.4}",
                            step.step, step.steps, step.loss
                        );
                    }
                    self.adapt_curve.push(step.loss);
                }
                JobEvent::Adapted { result, .. } => {
                    self.adapting = None;
                    self.adapt_curve.clone_from(&result.loss_curve);
                    self.last_device = Some(result.device.clone());
                    self.info(format!(
                        "Stage A done: {} steps in {:.0} s, adapter written to {}; classifications now use it",
                        result.steps_done,
                        result.seconds,
                        result.adapter.display()
                    ));
                    self.use_adapter(Some(result.adapter));
                }
                JobEvent::Projected { result, .. } => {
                    self.explorer.projecting = None;
                    self.explorer.set_projection(*result);
                }
                JobEvent::Loaded { scene, .. } => {
                    self.loading = None;
                    self.install_session(*scene);
                }
                JobEvent::Failed { kind, message, .. } => {
                    let what = match kind {
                        JobKind::Load => {
                            self.loading = None;
                            "cannot open the scene"
                        }
                        JobKind::Classify => {
                            self.classifying = None;
                            "cannot classify"
                        }
                        JobKind::Adapt => {
                            self.adapting = None;
                            "Stage A failed"
                        }
                        JobKind::Features => {
                            self.explorer.projecting = None;
                            "cannot project the features"
                        }
                    };
                    self.error(format!("{what}: {message}"));
                }
                JobEvent::Cancelled { kind, .. } => match kind {
                    JobKind::Load => {
                        self.loading = None;
                        self.info("loading cancelled");
                    }
                    JobKind::Classify => {
                        self.classifying = None;
                        self.info("classification cancelled; the map shows the last result");
                    }
                    JobKind::Adapt => {
                        self.adapting = None;
                        self.info("Stage A cancelled; the backbone is unchanged");
                    }
                    JobKind::Features => self.explorer.projecting = None,
                },
            }
        }
        while let Ok(checked) = self.backbone_rx.try_recv() {
            match checked {
                Ok((spec, count)) => {
                    self.info(format!(
                        "backbone: {} ({count} parameters)",
                        super::training::backbone_words(&spec)
                    ));
                    self.classify_settings.backbone = spec;
                }
                Err(e) => self.error(e),
            }
        }
        while let Ok((action, picked)) = self.dialog_rx.try_recv() {
            if let Some(path) = picked {
                self.open_with(&action, path);
            }
        }
    }

    fn handle_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .filter_map(|f| f.path.clone())
                .collect()
        });
        if dropped.is_empty() {
            return;
        }
        let request = LoadRequest::from_files(&dropped);
        let labels_only = request.hsi.is_none() && request.sar.is_none();
        if labels_only && self.session.is_some() {
            if let Some(p) = &request.train_labels {
                self.load_label_file(LabelLayer::Train, &p.clone());
            }
            if let Some(p) = &request.test_labels {
                self.load_label_file(LabelLayer::Test, &p.clone());
            }
        } else {
            self.open(request);
        }
    }

    /// Writes the labels in the background when they changed and the
    /// interval has passed.
    fn maybe_autosave(&mut self, ctx: &egui::Context) {
        let Some(session) = &self.session else {
            return;
        };
        if session.labels_revision == self.autosaved_revision || session.is_painting() {
            return;
        }
        let interval = autosave_interval();
        let due = self.last_autosave + interval;
        if Instant::now() < due {
            ctx.request_repaint_after(due - Instant::now());
            return;
        }
        if self.autosave_busy.swap(true, Ordering::SeqCst) {
            ctx.request_repaint_after(Duration::from_millis(200));
            return;
        }
        let snap = self.snapshot();
        let dir = autosave_dir(&self.data_dir, &snap.sources);
        self.autosaved_revision = snap.labels_revision;
        self.last_autosave = Instant::now();
        let busy = self.autosave_busy.clone();
        let spawned = std::thread::Builder::new()
            .name("autosave".into())
            .spawn(move || {
                if let Err(e) = write_autosave(&dir, &snap) {
                    eprintln!("autosave failed: {e:#}");
                } else {
                    eprintln!(
                        "autosaved labels (revision {}) to {}",
                        snap.labels_revision,
                        dir.display()
                    );
                }
                busy.store(false, Ordering::SeqCst);
            });
        if spawned.is_err() {
            self.autosave_busy.store(false, Ordering::SeqCst);
        }
    }

    fn snapshot(&self) -> AutosaveSnapshot {
        let s = self.session.as_ref();
        AutosaveSnapshot {
            sources: s.map(|s| s.sources.clone()).unwrap_or_default(),
            classes: s.map(|s| s.classes.clone()).unwrap_or_default(),
            train: s.and_then(|s| s.scene.train_labels.clone()),
            test: s.and_then(|s| s.scene.test_labels.clone()),
            labels_revision: s.map(|s| s.labels_revision).unwrap_or(0),
        }
    }

    /// Writes the autosave now (on exit), waiting for a write in flight.
    pub fn autosave_now(&mut self) {
        let Some(session) = &self.session else {
            return;
        };
        if session.labels_revision == self.autosaved_revision {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.autosave_busy.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let snap = self.snapshot();
        let dir = autosave_dir(&self.data_dir, &snap.sources);
        match write_autosave(&dir, &snap) {
            Ok(()) => self.autosaved_revision = snap.labels_revision,
            Err(e) => eprintln!("autosave failed: {e:#}"),
        }
    }

    /// One frame's logic and layout (eframe calls this through `App::ui`).
    pub fn frame(&mut self, ui: &mut egui::Ui) {
        let t0 = Instant::now();
        let ctx = ui.ctx().clone();
        self.handle_events();
        self.handle_screenshots(&ctx);
        self.handle_dropped_files(&ctx);
        self.handle_keys(&ctx);
        egui::Panel::top("menu").show(ui, |ui| self.menu_bar(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        if self.session.is_some() {
            egui::Panel::left("layers")
                .default_size(260.0)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical().show(ui, |ui| self.layers_panel(ui));
                });
            egui::Panel::right("labels")
                .default_size(300.0)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical().show(ui, |ui| {
                        self.labels_panel(ui);
                        ui.separator();
                        self.training_panel(ui);
                        ui.separator();
                        self.classify_panel(ui);
                        ui.separator();
                        self.inspector_panel(ui);
                    });
                });
        }
        egui::CentralPanel::default().show(ui, |ui| {
            if self.session.is_some() {
                self.map_view(ui);
            } else {
                self.start_page(ui);
            }
        });
        self.windows(&ctx);
        self.results_window(&ctx);
        self.explorer_window(&ctx);
        self.maybe_auto_classify(&ctx);
        for c in std::mem::take(&mut self.commands) {
            self.apply_command(c);
        }
        self.maybe_autosave(&ctx);
        self.frame_seconds.push(t0.elapsed().as_secs_f64());
        if self.frame_seconds.len() > 1000 {
            self.frame_seconds.drain(..500);
        }
    }
}

impl eframe::App for StudioApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.frame(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.prefs.brush_size = self.brush_size;
        eframe::set_value(storage, PREFS_KEY, &self.prefs);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.autosave_now();
    }
}
