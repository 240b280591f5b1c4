//! The eframe app: the session (data), the jobs (background work) and the
//! view state, glued together once per frame. Widgets never change the
//! session or start work: they send [`AppCommand`]s, which `dispatch.rs`
//! runs after the frame's layout, marking what the map must re-upload.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eframe::egui;

use super::command::{AppCommand, CommandSender};
use super::layers::{LayerId, LayerStack};
use super::prefs::{PREFS_KEY, Prefs, RecentScene};
use super::view_transform::ViewTransform;
use crate::jobs::{
    ClassifySettings, JobEvent, JobKind, Jobs, LoadRequest, LoadedScene, Task, TaskKind,
};
use crate::scene::{LabelLayer, PixelRect};
use crate::session::autosave::{
    AutosaveSnapshot, Recovery, autosave_dir, autosave_interval, data_dir, find_recovery,
    write_autosave,
};
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
    /// When it was posted: information disappears after
    /// [`Message::INFO_SECONDS`]; errors stay until closed.
    pub posted: std::time::Instant,
}

impl Message {
    pub const INFO_SECONDS: f32 = 8.0;

    /// Whether an information message has been shown long enough.
    pub fn expired(&self, now: std::time::Instant) -> bool {
        !self.error && now.duration_since(self.posted).as_secs_f32() > Self::INFO_SECONDS
    }
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
    /// A `.udmodel` file for the trained model.
    SaveModel,
}

/// Counts of the 256 values of each of a rendering's three channels.
pub type ChannelHistograms = [[u32; 256]; 3];

/// The map widget's own state: the view transform, which layers must be
/// uploaded (and which part), the GPU uploads in flight with their
/// sequence numbers, the CPU-composited fallback without wgpu, and the
/// renderings version its textures show.
pub struct MapView {
    pub view: ViewTransform,
    /// Fit the scene into the map at the next frame.
    pub fit_pending: bool,
    /// The wgpu map pipeline is installed (false on the glow fallback).
    pub gpu_map: bool,
    /// The largest texture side of the GPU (wgpu only).
    pub max_texture_side: Option<u32>,
    pub(crate) dirty: HashMap<LayerId, Dirty>,
    pub(crate) palette_dirty: bool,
    /// GPU uploads not yet applied, with their sequence numbers.
    pub(crate) gpu_uploads: Vec<(u64, Arc<super::gpu_map::GpuUpload>)>,
    pub(crate) gpu_seq: u64,
    pub(crate) gpu_applied: Arc<std::sync::atomic::AtomicU64>,
    /// The map's screen rectangle in the last frame.
    pub rect: Option<egui::Rect>,
    /// The map without wgpu, and the version of the renderings it shows.
    pub(crate) cpu_map: super::cpu_map::CpuMap,
    pub(crate) renderings_version: u64,
}

impl MapView {
    fn new(gpu_map: bool, max_texture_side: Option<u32>) -> Self {
        Self {
            view: ViewTransform::default(),
            fit_pending: true,
            gpu_map,
            max_texture_side,
            dirty: HashMap::new(),
            palette_dirty: true,
            gpu_uploads: Vec::new(),
            gpu_seq: 0,
            gpu_applied: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            rect: None,
            cpu_map: Default::default(),
            renderings_version: 0,
        }
    }

    /// Marks part of a layer for upload (merged with what is pending).
    pub(crate) fn mark_dirty(&mut self, id: LayerId, d: Dirty) {
        let merged = match (self.dirty.get(&id), d) {
            (Some(Dirty::All), _) | (_, Dirty::All) => Dirty::All,
            (Some(Dirty::Rect(a)), Dirty::Rect(b)) => Dirty::Rect(a.union(b)),
            (None, d) => d,
        };
        self.dirty.insert(id, merged);
    }

    /// New renderings or results: every texture made from them is stale.
    pub(crate) fn renderings_changed(&mut self) {
        self.renderings_version += 1;
    }
}

/// The application.
pub struct StudioApp {
    pub session: Option<Session>,
    /// The map widget's state: transform, what to upload, GPU bookkeeping.
    pub map: MapView,
    pub jobs: Jobs,
    pub loading: Option<Loading>,
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
    /// Where widgets, shortcuts and dialogs send commands, and their queue.
    pub(crate) commands: CommandSender,
    command_rx: crossbeam_channel::Receiver<AppCommand>,
    /// File and raster tasks queued or running, by generation.
    pub(crate) tasks: HashMap<u64, TaskKind>,
    pub(crate) last_autosave: Instant,
    pub(crate) autosaved_revision: u64,
    /// Seconds of CPU-side work of the last frames (the benchmark reads it).
    pub frame_seconds: Vec<f64>,
    /// Root of the autosave folders.
    pub data_dir: PathBuf,
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
    /// The backbone download running, and what "Get the paper's backbone"
    /// fetches (OpenAI's address or the mirror in
    /// `UNIDIFF_STUDIO_BACKBONE_URL`, into the data folder's `backbones/`).
    pub downloading: Option<Loading>,
    /// The title last sent to the window.
    pub(crate) shown_title: String,
    /// A close held back to ask about unsaved work, or agreed to.
    pub close_state: super::desktop::CloseState,
    /// A close asked for by a command, sent at the end of the frame.
    pub(crate) close_pending: bool,
    /// The classification running is a live update after a stroke.
    pub(crate) classifying_live: bool,
    /// A path field shown when no file dialog could be.
    pub path_prompt: Option<super::path_prompt::PathPrompt>,
    pub backbone_request: crate::jobs::GetRequest,
    /// The device the last Stage A or Stage B job ran on, and why.
    pub last_device: Option<String>,
    /// The backbone layout and its "Stage A trains ..." line.
    pub(crate) backbone_counts: Option<(crate::jobs::backbone::UNetConfig, String)>,
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
        let (commands, command_rx) = CommandSender::new(waker);
        let mut app = Self {
            session: None,
            map: MapView::new(gpu_map, max_texture_side),
            jobs,
            loading: None,
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
            commands,
            command_rx,
            tasks: HashMap::new(),
            last_autosave: Instant::now(),
            autosaved_revision: 0,
            frame_seconds: Vec::new(),
            data_dir: options.data_dir.clone().unwrap_or_else(data_dir),
            histogram_cache: None,
            classify_settings: ClassifySettings::default(),
            classifying: None,
            adapt_settings: Default::default(),
            adapting: None,
            downloading: None,
            shown_title: String::new(),
            close_state: Default::default(),
            close_pending: false,
            classifying_live: false,
            path_prompt: None,
            backbone_request: crate::jobs::download::paper_request(
                &options.data_dir.clone().unwrap_or_else(data_dir),
            ),
            adapt_curve: Vec::new(),
            last_device: None,
            backbone_counts: None,
            show_results: false,
            pending_view_png: None,
            explorer: Default::default(),
            auto_classify: false,
            auto_classify_due: None,
            classifying_revision: 0,
            suggestions: Vec::new(),
            suggestion_index: None,
        };
        for e in app.jobs.start_errors().to_vec() {
            app.error(e);
        }
        if options.demo {
            app.handle(AppCommand::OpenDemo);
        } else if !options.files.is_empty() {
            app.handle(AppCommand::Open(LoadRequest::from_files(&options.files)));
        }
        app
    }

    /// Queues a command for the end of this frame (widgets and shortcuts).
    pub fn send(&self, command: AppCommand) {
        self.commands.send(command);
    }

    pub fn error(&mut self, text: impl Into<String>) {
        let text = text.into();
        log::error!("{text}");
        self.messages.push(Message {
            error: true,
            text,
            posted: std::time::Instant::now(),
        });
    }

    pub fn info(&mut self, text: impl Into<String>) {
        let text = text.into();
        log::info!("{text}");
        self.messages.push(Message {
            error: false,
            text,
            posted: std::time::Instant::now(),
        });
    }

    /// Runs a label edit now and marks what changed.
    pub(crate) fn apply_command(&mut self, c: Command) {
        let Some(session) = &mut self.session else {
            return;
        };
        let changed = session.apply(c);
        let max = session.classes.iter().map(|c| c.value).max().unwrap_or(1);
        for (layer, rect) in changed.labels {
            self.mark_labels_dirty(layer, Dirty::Rect(rect));
        }
        if changed.classes {
            self.map.palette_dirty = true;
            self.active_class = self.active_class.clamp(1, max.max(1));
        }
    }

    pub(crate) fn mark_labels_dirty(&mut self, layer: LabelLayer, d: Dirty) {
        let id = match layer {
            LabelLayer::Train => LayerId::TrainLabels,
            LabelLayer::Test => LayerId::TestLabels,
        };
        self.map.mark_dirty(id, d);
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
            self.map.fit_pending = true;
            self.inspected = None;
        }
        for w in warnings {
            self.info(w);
        }
        if let (Some(max), Some(g)) = (self.map.max_texture_side, session.scene.grid())
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
        log::info!(
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
            log::info!("autosave found: {} ({})", r.dir.display(), r.age());
        }
        self.session = Some(session);
        for id in [
            LayerId::Prgb,
            LayerId::Pca,
            LayerId::Pauli,
            LayerId::TrainLabels,
            LayerId::TestLabels,
        ] {
            self.map.dirty.insert(id, Dirty::All);
        }
        self.map.palette_dirty = true;
        self.map.renderings_changed();
        self.last_autosave = Instant::now();
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
                    self.start_classification(Vec::new(), Vec::new(), true);
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

    /// Back to the last result's map: a preview goes with its run.
    fn drop_preview(&mut self) {
        if let Some(s) = &mut self.session
            && s.preview.take().is_some()
        {
            self.map.dirty.insert(LayerId::ClassMap, Dirty::All);
            self.map.renderings_changed();
        }
    }

    fn handle_events(&mut self) {
        for event in self.jobs.poll() {
            let loading = self.loading.as_ref().map(|l| l.generation);
            let classifying = self.classifying.as_ref().map(|l| l.generation);
            let adapting = self.adapting.as_ref().map(|l| l.generation);
            let projecting = self.explorer.projecting.as_ref().map(|l| l.generation);
            let downloading = self.downloading.as_ref().map(|l| l.generation);
            let event_generation = event.generation();
            let g = Some(event_generation);
            let task = self.tasks.get(&event.generation()).copied();
            if task.is_none()
                && ![loading, classifying, adapting, projecting, downloading].contains(&g)
            {
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
                        JobKind::Download => &mut self.downloading,
                        JobKind::Task => continue,
                    };
                    if let Some(l) = slot {
                        l.step = step;
                        l.fraction = fraction;
                    }
                }
                JobEvent::Previewed { preview, .. } => {
                    if let Some(s) = &mut self.session {
                        s.preview = Some(preview);
                        self.map.dirty.insert(LayerId::ClassMap, Dirty::All);
                        self.map.renderings_changed();
                    }
                }
                JobEvent::Classified { result, .. } => {
                    self.classifying = None;
                    self.drop_preview();
                    let result = *result;
                    for w in &result.outcome.warnings {
                        self.info(w.clone());
                    }
                    log::info!(
                        "classified in {:.1} s on {}{}",
                        result.seconds,
                        result.device,
                        if result.backbone_kept {
                            " (the backbone kept loaded)"
                        } else {
                            ""
                        }
                    );
                    self.last_device = Some(result.device.clone());
                    let was_sweep = !result.sweep.is_empty();
                    if was_sweep {
                        self.explorer
                            .merge_sweep(result.sweep, result.labels_revision);
                    }
                    if let Some(s) = &mut self.session {
                        s.result = Some(ClassificationResult {
                            shown: result.outcome.classifier,
                            ablation: result
                                .ablation
                                .into_iter()
                                .map(|r| (r.modalities, r.metrics))
                                .collect(),
                            outcome: result.outcome,
                            backbone: result.backbone,
                            backbone_kept: result.backbone_kept,
                            labels_revision: result.labels_revision,
                            seconds: result.seconds,
                            areas: result.areas,
                            warm_started: result.warm_started,
                            model: result.model,
                        });
                    }
                    self.map.dirty.insert(LayerId::ClassMap, Dirty::All);
                    self.map.dirty.insert(LayerId::Uncertainty, Dirty::All);
                    self.update_suggestions();
                    self.map.renderings_changed();
                    // A live update after a stroke keeps the window as the
                    // user left it (open or closed) instead of raising it
                    // over the layers each time.
                    if !was_sweep && !self.classifying_live {
                        self.show_results = true;
                    }
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
                        log::info!(
                            "Stage A step {}/{}, loss {:.4}",
                            step.step,
                            step.steps,
                            step.loss
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
                    self.handle(AppCommand::UseAdapter(Some(result.adapter)));
                }
                JobEvent::TaskDone { generation, done } => {
                    self.tasks.remove(&generation);
                    self.task_done(*done);
                }
                JobEvent::Fetched { fetched, .. } => {
                    self.downloading = None;
                    self.info(format!(
                        "downloaded {} ({:.1} MB, SHA-256 {})",
                        fetched.path.display(),
                        fetched.bytes as f64 / 1e6,
                        fetched.sha256
                    ));
                    self.handle(AppCommand::UseCheckpoint(fetched.path));
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
                            self.drop_preview();
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
                        JobKind::Download => {
                            self.downloading = None;
                            "cannot get the backbone (the one in use stays)"
                        }
                        JobKind::Task => {
                            // Only events of tasks still listed get here.
                            if let Some(kind) = self.tasks.remove(&event_generation) {
                                self.task_failed(kind, message);
                            }
                            continue;
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
                        self.drop_preview();
                        self.info("classification cancelled; the map shows the last result");
                    }
                    JobKind::Adapt => {
                        self.adapting = None;
                        self.info("Stage A cancelled; the backbone is unchanged");
                    }
                    JobKind::Features => self.explorer.projecting = None,
                    JobKind::Download => {
                        self.downloading = None;
                        self.info("download cancelled; the next try resumes it");
                    }
                    JobKind::Task => {
                        self.tasks.remove(&event_generation);
                    }
                },
            }
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
        if self.tasks.values().any(|k| *k == TaskKind::Autosave) {
            ctx.request_repaint_after(Duration::from_millis(200));
            return;
        }
        let snap = self.snapshot();
        let dir = autosave_dir(&self.data_dir, &snap.sources);
        self.autosaved_revision = snap.labels_revision;
        self.last_autosave = Instant::now();
        self.start_task(Task::Autosave {
            dir,
            snapshot: Box::new(snap),
        });
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
        // An autosave task in flight writes the same files: let it end.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.tasks.values().any(|k| *k == TaskKind::Autosave) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            self.handle_events();
        }
        let snap = self.snapshot();
        let dir = autosave_dir(&self.data_dir, &snap.sources);
        match write_autosave(&dir, &snap) {
            Ok(()) => self.autosaved_revision = snap.labels_revision,
            Err(e) => log::warn!("autosave failed: {e:#}"),
        }
    }

    /// Runs the commands sent so far (by widgets, dialogs, drops).
    fn handle_queued_commands(&mut self) {
        while let Ok(c) = self.command_rx.try_recv() {
            self.handle(c);
        }
    }

    /// One frame's logic and layout (eframe calls this through `App::ui`).
    pub fn frame(&mut self, ui: &mut egui::Ui) {
        let t0 = Instant::now();
        let ctx = ui.ctx().clone();
        self.handle_events();
        self.guard_close(&ctx);
        self.handle_screenshots(&ctx);
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .filter_map(|f| f.path.clone())
                .collect()
        });
        if !dropped.is_empty() {
            self.send(AppCommand::OpenDropped(dropped));
        }
        // Keys act before the layout, as their effects did before there were
        // commands: a key and a click in one frame see the key's tool.
        if !ctx.egui_wants_keyboard_input() {
            for c in super::shortcuts::commands_for_keys(&ctx, self.shortcut_context()) {
                self.handle(c);
            }
        }
        self.handle_queued_commands();
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
        let central = egui::CentralPanel::default()
            .show(ui, |ui| {
                if self.session.is_some() {
                    self.map_view(ui);
                } else {
                    self.start_page(ui);
                }
            })
            .response
            .rect;
        self.windows(&ctx, central);
        self.results_window(&ctx);
        self.explorer_window(&ctx);
        self.maybe_auto_classify(&ctx);
        self.path_prompt_window(&ctx);
        self.close_dialog(&ctx);
        self.handle_queued_commands();
        self.close_if_asked(&ctx);
        self.update_title(&ctx);
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
