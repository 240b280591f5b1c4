//! The eframe app: the store (what is open and set), the jobs (background
//! work), the map widget and the views, glued together once per frame.
//! Views read the store and send [`AppCommand`]s, which `dispatch.rs` runs
//! after the frame's layout, marking what the map must re-upload; job ends
//! are applied in `events.rs`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eframe::egui;

use super::autosaver::{AutosaveDue, Autosaver};
use super::command::{AppCommand, CommandSender};
use super::job_status::JobStatus;
use super::layers::LayerId;
use super::map_view::MapView;
use super::prefs::{PREFS_KEY, Prefs, RecentScene};
use super::store::Store;
use super::view_context::ViewContext;
use super::views::Views;
use super::vocabulary::{Dirty, Message};
use crate::jobs::{Jobs, LoadRequest, LoadedScene};
use crate::scene::LabelLayer;
use crate::session::autosave::{autosave_dir, data_dir, find_recovery, labels_sha256};
use crate::session::{Command, Session};

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

/// The application: the store the views read, the jobs, the map widget,
/// the views, and the command queue that connects them.
pub struct StudioApp {
    /// What the views show and the commands change.
    pub store: Store,
    /// Background work: the workers, progress, queued tasks.
    pub jobs: JobStatus,
    /// The map widget's state: transform, what to upload, GPU bookkeeping.
    pub map: MapView,
    /// The panels and windows, each with its own state.
    pub views: Views,
    /// Where widgets, shortcuts and dialogs send commands, and their queue.
    pub(crate) commands: CommandSender,
    command_rx: crossbeam_channel::Receiver<AppCommand>,
    /// When the labels were last autosaved, and from which revision.
    pub(crate) autosaver: Autosaver,
    /// Seconds of CPU-side work of the last frames (the benchmark reads it).
    pub frame_seconds: Vec<f64>,
    /// The title last sent to the window.
    pub(crate) shown_title: String,
    /// A close asked for by a command, sent at the end of the frame.
    pub(crate) close_pending: bool,
    /// Where the next captured frame's map goes (Export view as PNG).
    /// and whether the capture was asked for.
    pub pending_view_png: Option<(PathBuf, bool)>,
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
        let data_dir = options.data_dir.clone().unwrap_or_else(data_dir);
        let mut app = Self {
            store: Store::new(prefs, data_dir),
            jobs: JobStatus::new(jobs),
            map: MapView::new(gpu_map, max_texture_side),
            views: Views::default(),
            commands,
            command_rx,
            autosaver: Autosaver::new(),
            frame_seconds: Vec::new(),
            shown_title: String::new(),
            close_pending: false,
            pending_view_png: None,
        };
        for e in app.jobs.workers.start_errors().to_vec() {
            app.error(e);
        }
        if options.demo {
            app.handle(AppCommand::OpenDemo);
        } else if let [file] = options.files.as_slice()
            && crate::jobs::project::is_project_file(file)
        {
            app.handle(AppCommand::OpenProject(file.clone()));
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
        self.store.messages.push(Message {
            error: true,
            text,
            posted: std::time::Instant::now(),
        });
    }

    pub fn info(&mut self, text: impl Into<String>) {
        let text = text.into();
        log::info!("{text}");
        self.store.messages.push(Message {
            error: false,
            text,
            posted: std::time::Instant::now(),
        });
    }

    /// Runs a label edit now and marks what changed.
    pub(crate) fn apply_command(&mut self, c: Command) {
        let Some(session) = &mut self.store.session else {
            return;
        };
        let changed = session.apply(c);
        let max = session.classes.iter().map(|c| c.value).max().unwrap_or(1);
        for (layer, rect) in changed.labels {
            self.mark_labels_dirty(layer, Dirty::Rect(rect));
        }
        if changed.classes {
            self.map.palette_dirty = true;
            self.store.active_class = self.store.active_class.clamp(1, max.max(1));
        }
    }

    pub(crate) fn mark_labels_dirty(&mut self, layer: LabelLayer, d: Dirty) {
        let id = match layer {
            LabelLayer::Train => LayerId::TrainLabels,
            LabelLayer::Test => LayerId::TestLabels,
        };
        self.map.mark_dirty(id, d);
    }

    pub(crate) fn install_session(&mut self, loaded: LoadedScene) {
        let LoadedScene {
            scene,
            renderings,
            sources,
            classes,
            warnings,
            seconds,
            project,
        } = loaded;
        let same_grid = self
            .store
            .session
            .as_ref()
            .and_then(|s| s.scene.grid())
            .zip(scene.grid())
            .is_some_and(|(a, b)| a == b);
        let mut session = Session::new(scene, renderings, sources, classes);
        // A layer added to the open scene keeps the labels painted so far.
        if same_grid
            && project.is_none()
            && let Some(old) = self.store.session.take()
        {
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
            self.store.inspected = None;
            self.store.project = None;
        }
        for w in warnings {
            self.info(w);
        }
        // A project is remembered as the project (when it is applied).
        if project.is_none() {
            self.store.prefs.remember(RecentScene {
                title: session.sources.title.clone(),
                hsi: session.sources.hsi.clone(),
                sar: session.sources.sar.clone(),
                demo: session.sources.demo,
                project: None,
            });
        }
        if session.renderings.prgb.is_none() && session.renderings.pauli.is_some() {
            for id in [LayerId::Prgb, LayerId::Pauli] {
                if let Some(l) = self.store.layers.get_mut(id) {
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
        if let Some(project) = project {
            self.apply_project(&mut session, project);
        }
        let settings = super::project_settings::project_settings(&self.store);
        self.autosaver
            .opened(session.labels_revision, settings.clone());
        self.store.recovery = session
            .scene
            .grid()
            .and_then(|g| find_recovery(&autosave_dir(&self.store.data_dir, &session.sources), g))
            .and_then(|mut r| {
                let settings_differ = r.manifest.project == self.store.project
                    && r.manifest.settings.as_ref().is_some_and(|kept| {
                        super::project_settings::autosaved_settings_differ(&self.store, kept)
                    });
                r.differs = r.differences(
                    |l| session.scene.labels(l).map(labels_sha256),
                    settings_differ,
                );
                (!r.differs.is_empty()).then_some(r)
            });
        if let Some(r) = &self.store.recovery {
            log::info!(
                "autosave found: {} ({}; differs: {})",
                r.dir.display(),
                r.age(),
                r.differs.join(", ")
            );
        }
        if !same_grid {
            // A sample's points were placed on the old scene's grid.
            self.store.sample = None;
        }
        self.store.session = Some(session);
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
        if self
            .store
            .session
            .as_ref()
            .is_some_and(|s| s.result.is_some())
        {
            self.update_suggestions();
        }
    }

    /// With auto-classify on, a finished edit schedules a classification
    /// after a short pause; further edits push it back (debounce), and a run
    /// still going is superseded.
    fn maybe_auto_classify(&mut self, ctx: &egui::Context) {
        const PAUSE: Duration = Duration::from_millis(300);
        let Some(s) = &self.store.session else {
            return;
        };
        if !self.store.auto_classify || s.is_painting() {
            return;
        }
        let revision = s.labels_revision;
        let done_for = s.result.as_ref().map(|r| r.labels_revision);
        let running_for = self
            .jobs
            .classifying
            .as_ref()
            .map(|_| self.jobs.classifying_revision);
        if done_for == Some(revision) || running_for == Some(revision) {
            self.jobs.auto_classify_due = None;
            return;
        }
        match self.jobs.auto_classify_due {
            Some((at, rev)) if rev == revision => {
                if Instant::now() >= at {
                    self.jobs.auto_classify_due = None;
                    self.start_classification(Vec::new(), Vec::new(), true);
                } else {
                    ctx.request_repaint_after(at - Instant::now());
                }
            }
            _ => {
                self.jobs.auto_classify_due = Some((Instant::now() + PAUSE, revision));
                ctx.request_repaint_after(PAUSE);
            }
        }
    }

    /// Recomputes the most uncertain unlabelled squares (32 px) of the last
    /// result.
    pub fn update_suggestions(&mut self) {
        self.store.suggestions = self
            .store
            .session
            .as_ref()
            .and_then(|s| {
                let r = s.result.as_ref()?;
                let width = s.scene.grid()?.width;
                Some(r.uncertain_regions(width, s.scene.train_labels.as_ref(), 5, 32))
            })
            .unwrap_or_default();
        self.store.suggestion_index = None;
    }

    /// Back to the last result's map: a preview goes with its run.
    pub(crate) fn drop_preview(&mut self) {
        if let Some(s) = &mut self.store.session
            && s.preview.take().is_some()
        {
            self.map.dirty.insert(LayerId::ClassMap, Dirty::All);
            self.map.renderings_changed();
        }
    }

    /// Writes the labels in the background when they changed and the
    /// interval has passed.
    fn maybe_autosave(&mut self, ctx: &egui::Context) {
        match self.autosaver.due(&self.store, &self.jobs) {
            AutosaveDue::No => {}
            AutosaveDue::After(wait) => ctx.request_repaint_after(wait),
            AutosaveDue::Now(task) => self.jobs.start_task(*task),
        }
    }

    /// Writes the autosave now (on exit), waiting for a write in flight.
    pub fn autosave_now(&mut self) {
        if !self.autosaver.behind(&self.store) {
            return;
        }
        // An autosave task in flight writes the same files: let it end.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.jobs.autosaving() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            self.handle_events();
        }
        self.autosaver.write_now(&self.store);
    }

    /// Runs the commands sent so far (by widgets, dialogs, drops).
    fn handle_queued_commands(&mut self) {
        while let Ok(c) = self.command_rx.try_recv() {
            self.handle(c);
        }
    }

    /// Takes away information shown long enough (errors stay until
    /// closed), and wakes up to do so.
    fn expire_messages(&mut self, ctx: &egui::Context) {
        let now = Instant::now();
        self.store.messages.retain(|m| !m.expired(now));
        if self.store.messages.iter().any(|m| !m.error) {
            ctx.request_repaint_after(Duration::from_millis(500));
        }
    }

    /// The window's theme as the preferences say.
    fn apply_theme(&self, ctx: &egui::Context) {
        let theme = if self.store.prefs.dark {
            egui::Theme::Dark
        } else {
            egui::Theme::Light
        };
        if ctx.theme() != theme {
            ctx.set_theme(theme);
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
        self.expire_messages(&ctx);
        self.apply_theme(&ctx);
        {
            let views = &mut self.views;
            let cx = ViewContext::new(&self.store, &self.jobs, &self.map, &self.commands);
            egui::Panel::top("menu").show(ui, |ui| views.menu.ui(ui, &cx));
            egui::Panel::bottom("status").show(ui, |ui| views.status.ui(ui, &cx));
            if cx.store.session.is_some() {
                egui::Panel::left("layers")
                    .default_size(260.0)
                    .show(ui, |ui| {
                        egui::ScrollArea::vertical().show(ui, |ui| views.layers.ui(ui, &cx));
                    });
                egui::Panel::right("labels")
                    .default_size(300.0)
                    .show(ui, |ui| {
                        egui::ScrollArea::vertical().show(ui, |ui| {
                            views.labels.ui(ui, &cx);
                            ui.separator();
                            views.backbone.ui(ui, &cx);
                            ui.separator();
                            views.stage_b.ui(ui, &cx);
                            ui.separator();
                            views.inspector.ui(ui, &cx);
                        });
                    });
            }
        }
        let central = egui::CentralPanel::default()
            .show(ui, |ui| {
                if self.store.session.is_some() || self.store.scene_preview.is_some() {
                    self.map.ui(ui, &self.store, &self.commands);
                } else {
                    let cx = ViewContext::new(&self.store, &self.jobs, &self.map, &self.commands);
                    self.views.start.ui(ui, &cx);
                }
            })
            .response
            .rect;
        // The panels' commands run before the windows are drawn: a window
        // a button opened shows in the same frame.
        self.handle_queued_commands();
        {
            let views = &mut self.views;
            let cx = ViewContext::new(&self.store, &self.jobs, &self.map, &self.commands);
            let capturing = self.pending_view_png.is_some();
            views.notices.ui(&ctx, &cx, central, capturing);
            // "Export view as PNG" captures the map alone: the floating
            // windows sit out the captured frame (egui keeps their places).
            if !capturing {
                views.shortcuts.ui(&ctx);
                views.results.ui(&ctx, &cx);
                views.sample.ui(&ctx, &cx);
                views.apply.ui(&ctx, &cx);
                views.explorer.ui(&ctx, &cx);
            }
            views.path_prompt.ui(&ctx, &cx);
            views.close.ui(&ctx, &cx);
        }
        self.maybe_auto_classify(&ctx);
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
        self.store.prefs.brush_size = self.store.brush_size;
        eframe::set_value(storage, PREFS_KEY, &self.store.prefs);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.autosave_now();
    }
}

impl StudioApp {
    pub(crate) fn shortcut_context(&self) -> super::shortcuts::ShortcutContext {
        super::shortcuts::ShortcutContext {
            has_scene: self.store.session.is_some(),
            classes: self.store.session.as_ref().map_or(0, |s| s.classes.len()),
            adapting: self.jobs.adapting.is_some(),
            labelling_sample: self.store.sample.is_some(),
        }
    }
}
