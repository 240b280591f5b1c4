//! The one place where the app's effects happen: [`StudioApp::handle`] runs
//! each [`AppCommand`] (widgets, shortcuts, dialogs and drops send them), and
//! [`StudioApp::task_done`] takes back what the file and raster tasks made.
//! Work that reads or writes files or rasters is queued as a job here; only
//! the session's label edits run on the UI thread.

use std::path::PathBuf;

use crate::pipeline::classification::ClassifierChoice;
use crate::scene::{ClassInfo, PixelGrid};

use super::app::{Dirty, FileAction, Loading, StudioApp};
use super::command::AppCommand;
use super::desktop::CloseState;
use super::layers::LayerId;
use super::view_transform::{MAX_ZOOM, MIN_ZOOM};
use super::views::Window;
use crate::jobs::{ClassifyRequest, LoadRequest, Task, TaskDone, TaskKind};
use crate::scene::LabelLayer;
use crate::session::label_files::is_vector_labels;

/// Zoom factor of one PgUp / PgDn.
const KEY_ZOOM: f32 = 1.25;

impl StudioApp {
    /// Runs one command now. Widgets send commands instead
    /// ([`StudioApp::send`]); the frame runs them all after the layout.
    pub fn handle(&mut self, command: AppCommand) {
        match command {
            AppCommand::Open(request) => self.open(request),
            AppCommand::Quit { confirmed } => self.request_quit(confirmed),
            AppCommand::KeepOpen => self.store.close_state = CloseState::Open,
            AppCommand::OpenDemo => match LoadRequest::demo() {
                Ok(request) => self.open(request),
                Err(e) => self.error(e.to_string()),
            },
            AppCommand::OpenProject(path) => self.open_project(path),
            AppCommand::SaveProject => self.save_project(),
            AppCommand::SaveProjectAs(path) => self.save_project_as(path),
            AppCommand::NewProject { confirmed } => self.new_project(confirmed),
            AppCommand::OpenDropped(files) => self.open_dropped(&files),
            AppCommand::CancelLoad => self.jobs.workers.cancel_load(),
            AppCommand::PickFile(action) => self.pick_file(action),
            AppCommand::FilePicked(action, path) => self.open_with(&action, path),
            AppCommand::DialogFailed(action, reason) => {
                self.error(format!(
                    "no file dialog could be shown ({reason}); type the path instead"
                ));
                let start = self.dialog_start_dir();
                self.views.path_prompt.prompt = Some(super::path_prompt::PathPrompt::new(
                    action,
                    start.as_deref(),
                    reason,
                ));
            }
            AppCommand::LoadLabels(layer, path) => self.load_label_file(layer, path),
            AppCommand::SaveLabels(layer, path) => self.save_label_file(layer, path),
            AppCommand::ExportResults(dir) => self.export_results(dir),
            AppCommand::ExportPolygons(path) => self.export_polygons(path),
            AppCommand::WriteValidationSample(path, per_class, seed) => {
                self.write_validation_sample(path, per_class, seed)
            }
            AppCommand::ScoreWithSample(path) => self.score_with_sample(path),
            AppCommand::SaveModel(path) => self.save_model(path),
            AppCommand::ExportViewPng(path) => self.pending_view_png = Some((path, false)),
            AppCommand::UseCheckpoint(path) => {
                self.info(format!("reading {} …", path.display()));
                self.jobs.start_task(Task::CheckCheckpoint { path });
            }
            AppCommand::GetBackbone(request) => {
                let generation = self.jobs.workers.download(*request);
                self.jobs.downloading = Some(Loading::started(generation));
            }
            AppCommand::CancelGetBackbone => self.jobs.workers.cancel_download(),
            AppCommand::UseAdapter(None) => {
                self.store.classify_settings.backbone =
                    self.store.classify_settings.backbone.with_adapter(None)
            }
            AppCommand::UseAdapter(Some(path)) => self.jobs.start_task(Task::CheckAdapter {
                backbone: self.store.classify_settings.backbone.clone(),
                path,
            }),
            AppCommand::SetPrgbBands(bands) => {
                if let Some(cube) = self
                    .store
                    .session
                    .as_ref()
                    .and_then(|s| s.scene.hsi.clone())
                {
                    self.jobs.start_task(Task::RenderPrgb { cube, bands });
                }
            }
            AppCommand::SetClassifySettings(settings) => self.store.classify_settings = *settings,
            AppCommand::SetTimestep(t) => self.store.classify_settings.t = t,
            AppCommand::SetAdaptSettings(settings) => self.store.adapt_settings = *settings,
            AppCommand::SetAutoClassify(on) => self.store.auto_classify = on,
            AppCommand::MakeNoisedInput {
                image,
                t,
                seed,
                patch,
            } => self.jobs.start_task(Task::NoisedInput {
                image,
                t,
                seed,
                patch,
            }),
            AppCommand::Classify => self.start_classification(Vec::new(), Vec::new(), false),
            AppCommand::ClassifySweep(timesteps) => {
                self.start_classification(Vec::new(), timesteps, false)
            }
            AppCommand::ClassifyAblation => {
                self.start_classification(crate::jobs::classify::all_subsets(), Vec::new(), false)
            }
            AppCommand::CancelClassify => self.jobs.workers.cancel_classify(),
            AppCommand::Adapt => self.adapt(),
            AppCommand::CancelAdapt => self.jobs.workers.cancel_adapt(),
            AppCommand::Project(request) => {
                let generation = self.jobs.workers.project(*request);
                self.jobs.projecting = Some(Loading::started(generation));
            }
            AppCommand::CancelProjection => self.jobs.workers.cancel_features(),
            AppCommand::CancelJobs => {
                if self.jobs.adapting.is_some() {
                    self.jobs.workers.cancel_adapt();
                }
                if self.jobs.classifying.is_some() {
                    self.jobs.workers.cancel_classify();
                }
                if self.jobs.projecting.is_some() {
                    self.jobs.workers.cancel_features();
                }
                if self.jobs.downloading.is_some() {
                    self.jobs.workers.cancel_download();
                }
            }
            AppCommand::Recover(true) => self.recover(),
            AppCommand::Recover(false) => {
                if let Some(rec) = self.store.recovery.take() {
                    crate::session::autosave::discard(&rec.dir);
                }
            }
            AppCommand::NextSuggestion => self.next_suggestion(),
            AppCommand::GoToSuggestion(i) => self.go_to_suggestion(i),
            AppCommand::Label(c) => self.apply_command(c),
            AppCommand::SetTool(tool) => self.store.tool = tool,
            AppCommand::SetBrushSize(size) => self.store.brush_size = size.clamp(1.0, 256.0),
            AppCommand::SetPaintLayer(layer) => self.store.paint_layer = layer,
            AppCommand::StepBrush(up) => {
                self.store.brush_size = if up {
                    (self.store.brush_size * 1.25)
                        .min(256.0)
                        .round()
                        .max(self.store.brush_size + 1.0)
                } else {
                    (self.store.brush_size / 1.25).max(1.0).round()
                }
            }
            AppCommand::SelectClass(value) => {
                self.store.active_class = value;
                if self.store.tool == super::app::Tool::Inspect {
                    self.store.tool = super::app::Tool::Brush;
                }
            }
            AppCommand::ToggleLayer(id) => self.store.layers.toggle(id),
            AppCommand::EditLayer(edited) => {
                if let Some(layer) = self.store.layers.get_mut(edited.id) {
                    *layer = edited;
                }
            }
            AppCommand::MoveLayer(id, true) => self.store.layers.raise(id),
            AppCommand::MoveLayer(id, false) => self.store.layers.lower(id),
            AppCommand::SelectLayer(id) => self.store.selected_layer = id,
            AppCommand::ShowResultMap(classifier) => {
                if let Some(r) = self.store.session.as_mut().and_then(|s| s.result.as_mut())
                    && r.outcome.result(classifier).is_some()
                {
                    r.shown = classifier;
                    self.map.dirty.insert(LayerId::ClassMap, Dirty::All);
                }
            }
            AppCommand::ToggleShortcuts => self.views.shortcuts.open = !self.views.shortcuts.open,
            AppCommand::ShowWindow(Window::Results) => self.views.results.open = true,
            AppCommand::ShowWindow(Window::Explorer) => self.views.explorer.open = true,
            AppCommand::ShowWindow(Window::Shortcuts) => self.views.shortcuts.open = true,
            AppCommand::DismissMessage(i) => {
                if i < self.store.messages.len() {
                    self.store.messages.remove(i);
                }
            }
            AppCommand::SetDarkTheme(dark) => self.store.prefs.dark = dark,
            AppCommand::FitView => self.map.fit_pending = true,
            AppCommand::Hover(pixel) => self.store.hovered = pixel,
            AppCommand::InspectPixel(pixel) => self.store.inspected = Some(pixel),
            AppCommand::Pan([x, y]) => self.map.view.pan(eframe::egui::vec2(x, y)),
            AppCommand::StepZoom(true) => {
                self.map.view.zoom = (self.map.view.zoom * KEY_ZOOM).min(MAX_ZOOM)
            }
            AppCommand::StepZoom(false) => {
                self.map.view.zoom = (self.map.view.zoom / KEY_ZOOM).max(MIN_ZOOM)
            }
        }
    }

    /// Starts loading a scene in the background.
    pub(crate) fn open(&mut self, request: LoadRequest) {
        let generation = self.jobs.workers.load(request);
        self.jobs.loading = Some(Loading::started(generation));
    }

    /// Adds a file to the open scene (or opens it alone), or does with it
    /// what the dialog was for.
    fn open_with(&mut self, action: &FileAction, path: PathBuf) {
        let command = match action {
            FileAction::OpenHsi | FileAction::OpenSar => {
                let mut request = match &self.store.session {
                    Some(s) => LoadRequest {
                        hsi: s.sources.hsi.clone(),
                        sar: s.sources.sar.clone(),
                        ..LoadRequest::default()
                    },
                    None => LoadRequest::default(),
                };
                if *action == FileAction::OpenHsi {
                    request.hsi = Some(path);
                } else {
                    request.sar = Some(path);
                }
                request.title = [&request.hsi, &request.sar]
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.file_name())
                    .map(|n| n.to_string_lossy().to_string())
                    .collect::<Vec<_>>()
                    .join(" + ");
                AppCommand::Open(request)
            }
            FileAction::OpenLabels(layer) => AppCommand::LoadLabels(*layer, path),
            FileAction::SaveLabels(layer) => AppCommand::SaveLabels(*layer, path),
            FileAction::ExportResults => AppCommand::ExportResults(path),
            FileAction::ExportPolygons => AppCommand::ExportPolygons(path),
            FileAction::ValidationSample { per_class } => AppCommand::WriteValidationSample(
                path,
                *per_class,
                self.store.classify_settings.seed,
            ),
            FileAction::SampleAccuracy => AppCommand::ScoreWithSample(path),
            FileAction::ImportCheckpoint => AppCommand::UseCheckpoint(path),
            FileAction::LoadAdapter => AppCommand::UseAdapter(Some(path)),
            FileAction::ExportViewPng => AppCommand::ExportViewPng(path),
            FileAction::OpenProject => AppCommand::OpenProject(path),
            FileAction::SaveProjectAs => AppCommand::SaveProjectAs(path),
            FileAction::SaveModel => AppCommand::SaveModel(path),
        };
        self.handle(command);
    }

    fn open_dropped(&mut self, files: &[PathBuf]) {
        if let Some(project) = files
            .iter()
            .find(|f| crate::jobs::project::is_project_file(f))
        {
            return self.open_project(project.clone());
        }
        let request = LoadRequest::from_files(files);
        let labels_only = request.hsi.is_none() && request.sar.is_none();
        if labels_only && self.store.session.is_some() {
            if let Some(p) = request.train_labels {
                self.load_label_file(LabelLayer::Train, p);
            }
            if let Some(p) = request.test_labels {
                self.load_label_file(LabelLayer::Test, p);
            }
        } else {
            self.open(request);
        }
    }

    /// Opens a native file dialog on a thread; the pick comes back as
    /// [`AppCommand::FilePicked`].
    /// Where file dialogs start: the folder of the open scene's files.
    fn dialog_start_dir(&self) -> Option<PathBuf> {
        self.store
            .session
            .as_ref()
            .and_then(|s| s.sources.hsi.as_ref().or(s.sources.sar.as_ref()))
            .and_then(|p| p.parent().map(|p| p.to_path_buf()))
    }

    /// A native dialog (XDG portal, else zenity) on its own thread; when
    /// none can be shown, rfd only logs why, so its errors are captured and
    /// turned into [`AppCommand::DialogFailed`].
    fn pick_file(&mut self, action: FileAction) {
        let commands = self.commands.clone();
        let start_dir = self.dialog_start_dir();
        let spawned = std::thread::Builder::new()
            .name("file dialog".into())
            .spawn(move || {
                let mut dialog = rfd::FileDialog::new();
                if let Some(d) = start_dir {
                    dialog = dialog.set_directory(d);
                }
                let (picked, errors) = crate::base::logging::capture_errors(|| match &action {
                    FileAction::SaveLabels(_) => dialog
                        .add_filter("GeoTIFF", &["tif", "tiff"])
                        .set_file_name("labels.tif")
                        .save_file(),
                    FileAction::OpenLabels(_) => dialog
                        .add_filter(
                            "labels (rasters; points or polygons with a class field)",
                            &[
                                "tif", "tiff", "mat", "npy", "img", "gpkg", "shp", "geojson",
                                "json",
                            ],
                        )
                        .add_filter("all files", &["*"])
                        .pick_file(),
                    FileAction::ExportResults => dialog.pick_folder(),
                    FileAction::ExportPolygons => dialog
                        .add_filter("GeoPackage", &["gpkg"])
                        .set_file_name("classmap.gpkg")
                        .save_file(),
                    FileAction::ValidationSample { .. } => dialog
                        .add_filter("GeoPackage", &["gpkg"])
                        .set_file_name("sample.gpkg")
                        .save_file(),
                    FileAction::SampleAccuracy => dialog
                        .add_filter("points", &["gpkg", "shp", "geojson", "json"])
                        .add_filter("all files", &["*"])
                        .pick_file(),
                    FileAction::OpenProject => dialog
                        .add_filter("UniDiff Studio projects", &["udproj"])
                        .pick_file(),
                    FileAction::SaveProjectAs => dialog
                        .add_filter("UniDiff Studio projects", &["udproj"])
                        .set_file_name("project.udproj")
                        .save_file(),
                    FileAction::ImportCheckpoint => dialog
                        .add_filter("guided-diffusion checkpoints", &["pt", "safetensors"])
                        .pick_file(),
                    FileAction::ExportViewPng => dialog
                        .add_filter("PNG", &["png"])
                        .set_file_name("view.png")
                        .save_file(),
                    FileAction::SaveModel => dialog
                        .add_filter("UniDiff models", &["udmodel"])
                        .set_file_name("model.udmodel")
                        .save_file(),
                    FileAction::LoadAdapter => dialog
                        .add_filter("Stage A adapters", &["safetensors"])
                        .pick_file(),
                    FileAction::OpenHsi | FileAction::OpenSar => dialog.pick_file(),
                });
                match picked {
                    Some(path) => commands.send(AppCommand::FilePicked(action, path)),
                    None if !errors.is_empty() => {
                        commands.send(AppCommand::DialogFailed(action, errors.join("; ")));
                    }
                    // Cancelled by the user.
                    None => {}
                }
            });
        if let Err(e) = spawned {
            self.error(format!("cannot open the file dialog: {e}"));
        }
    }

    /// Reads a label file into a layer in the background.
    fn load_label_file(&mut self, layer: LabelLayer, path: PathBuf) {
        let Some((grid, classes)) = self
            .store
            .session
            .as_ref()
            .and_then(|s| Some((s.scene.grid().cloned()?, s.classes.clone())))
        else {
            self.error("open a scene before its labels");
            return;
        };
        self.jobs.start_task(Task::LoadLabels {
            layer,
            path,
            grid,
            classes,
        });
    }

    /// Writes a label layer as a class GeoTIFF in the background.
    fn save_label_file(&mut self, layer: LabelLayer, path: PathBuf) {
        let Some(session) = &self.store.session else {
            return;
        };
        let Some(labels) = session.scene.labels(layer) else {
            self.error(format!("there are no {} to save", layer.name()));
            return;
        };
        let task = Task::SaveLabels {
            layer,
            path,
            labels: labels.clone(),
            classes: session.classes.clone(),
            revision: session.labels_revision,
        };
        self.jobs.start_task(task);
    }

    /// Writes the last classification as `unidiff-studio run` does: class
    /// map GeoTIFF (+ .qml, colour table, names), probability.tif, map.png,
    /// metrics.json / .csv, the forest's under `baseline_rf/`.
    fn export_results(&mut self, dir: PathBuf) {
        let Some(s) = &self.store.session else {
            return;
        };
        let (Some(r), Some(grid)) = (&s.result, s.scene.grid()) else {
            self.error("nothing to export: classify first");
            return;
        };
        let task = Task::ExportResults {
            dir,
            outcome: Box::new(r.outcome.clone()),
            grid: grid.clone(),
            class_names: s.classes.iter().map(|c| c.name.clone()).collect(),
        };
        self.jobs.start_task(task);
    }

    /// Writes the class map on show (the classifier the results window
    /// picked) as polygons with the session's class names.
    fn export_polygons(&mut self, path: PathBuf) {
        let Some(s) = &self.store.session else {
            return;
        };
        let (Some(r), Some(grid)) = (&s.result, s.scene.grid()) else {
            self.error("nothing to export: classify first");
            return;
        };
        let Some(shown) = r.outcome.result(r.shown).or(r.outcome.main_result()) else {
            self.error("nothing to export: the classification has no map");
            return;
        };
        let task = Task::ExportPolygons {
            path,
            class_map: shown.class_map.clone(),
            grid: grid.clone(),
            classes: s.classes.clone(),
        };
        self.jobs.start_task(task);
    }

    /// The shown map, its grid and the session's classes (an error said
    /// when there is none).
    fn shown_map(&mut self) -> Option<(Vec<u8>, PixelGrid, Vec<ClassInfo>, ClassifierChoice)> {
        let found = self.store.session.as_ref().and_then(|s| {
            let r = s.result.as_ref()?;
            let grid = s.scene.grid()?;
            let map = r.class_map()?;
            Some((map.to_vec(), grid.clone(), s.classes.clone(), r.shown))
        });
        if found.is_none() {
            self.error("no map: classify first");
        }
        found
    }

    /// Draws a validation sample of the shown map into `path`.
    fn write_validation_sample(&mut self, path: PathBuf, per_class: usize, seed: u64) {
        if let Some((class_map, grid, classes, _)) = self.shown_map() {
            self.jobs.start_task(Task::WriteValidationSample {
                path,
                class_map,
                grid,
                classes,
                per_class,
                seed,
            });
        }
    }

    /// Scores the shown map with the labelled sample at `path`.
    fn score_with_sample(&mut self, path: PathBuf) {
        if let Some((class_map, grid, classes, shown)) = self.shown_map() {
            self.jobs.start_task(Task::ScoreWithSample {
                path,
                class_map,
                grid,
                classes,
                shown,
            });
        }
    }

    /// Writes the last classification's model, with the session's class
    /// names and colours.
    fn save_model(&mut self, path: PathBuf) {
        let Some(s) = &self.store.session else {
            return;
        };
        let model = match s.result.as_ref().map(|r| &r.model) {
            Some(Ok(model)) => model,
            Some(Err(why)) => return self.error(format!("no model to save: {why}")),
            None => return self.error("no model to save: classify first"),
        };
        let classes = model
            .classes
            .iter()
            .map(|c| {
                s.classes
                    .iter()
                    .find(|named| named.value == c.value)
                    .cloned()
                    .unwrap_or_else(|| c.clone())
            })
            .collect();
        self.jobs.start_task(Task::SaveModel {
            model: model.clone(),
            classes,
            path,
        });
    }

    /// Starts a classification of the labels as they are now; one still
    /// running is cancelled (its result would be stale). The map keeps
    /// showing the last result meanwhile. `live`: an update after a stroke
    /// (the head continues from the last one).
    pub(crate) fn start_classification(
        &mut self,
        subsets: Vec<Vec<crate::pipeline::Modality>>,
        timesteps: Vec<i64>,
        live: bool,
    ) {
        let Some(s) = &self.store.session else {
            return;
        };
        let request = ClassifyRequest {
            scene: s.scene.clone(),
            renderings: s.renderings.clone(),
            settings: self.store.classify_settings.clone(),
            labels_revision: s.labels_revision,
            subsets,
            timesteps,
            live,
        };
        self.jobs.classifying_revision = s.labels_revision;
        self.jobs.classifying_live = live;
        let generation = self.jobs.workers.classify(request);
        self.jobs.classifying = Some(Loading::started(generation));
    }

    /// Starts Stage A on the open scene with the panel's settings; the
    /// adapter goes to the data folder.
    fn adapt(&mut self) {
        if self.jobs.adapting.is_some() {
            return;
        }
        let Some(s) = &self.store.session else {
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
            settings: self.store.adapt_settings.clone(),
            backbone: self.store.classify_settings.backbone.clone(),
            out: self
                .store
                .data_dir
                .join("adapters")
                .join(format!("{slug}-{stamp}.safetensors")),
            device: self.store.classify_settings.device,
        };
        self.store.adapt_curve.clear();
        let generation = self.jobs.workers.adapt(request);
        self.jobs.adapting = Some(Loading::started(generation));
    }

    /// Takes the autosaved labels (one undo step per layer).
    fn recover(&mut self) {
        let (Some(rec), Some(session)) = (self.store.recovery.take(), self.store.session.as_mut())
        else {
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
        if let Some(settings) = rec.manifest.settings.clone()
            && self.store.project.is_some()
            && rec.manifest.project == self.store.project
        {
            self.recover_project_settings(settings);
        }
        self.map.palette_dirty = true;
        self.info(format!("recovered the labels autosaved {}", rec.age()));
    }

    /// Centres the view on the next suggestion (N).
    fn next_suggestion(&mut self) {
        if self.store.suggestions.is_empty() {
            return;
        }
        let i = self
            .store
            .suggestion_index
            .map_or(0, |i| (i + 1) % self.store.suggestions.len());
        self.go_to_suggestion(i);
    }

    /// Centres the view on suggestion `i` (none past the list's end).
    fn go_to_suggestion(&mut self, i: usize) {
        let Some(&r) = self.store.suggestions.get(i) else {
            return;
        };
        self.map.view.center = [
            r.x as f32 + r.side as f32 / 2.0,
            r.y as f32 + r.side as f32 / 2.0,
        ];
        self.store.suggestion_index = Some(i);
    }

    /// Takes what a finished task made.
    pub(crate) fn task_done(&mut self, done: TaskDone) {
        match done {
            TaskDone::LabelsLoaded {
                layer,
                path,
                loaded,
            } => {
                let Some(session) = &mut self.store.session else {
                    return;
                };
                // Another scene may have been opened while the file was read.
                let name = path.display().to_string();
                let fits = match session.scene.grid() {
                    Some(g) => g
                        .check_same("the open scene", &loaded.labels.grid, &name)
                        .map_err(|e| e.to_string()),
                    None => Err("the open scene has no grid".to_string()),
                };
                if let Err(e) = fits {
                    self.error(format!("cannot load the {} from {name}: {e}", layer.name()));
                    return;
                }
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
                // Saving writes a GeoTIFF: never over the vector file.
                let source = (!is_vector_labels(&path)).then(|| path.clone());
                session.sources.set_labels_path(layer, source);
                for note in loaded.notes {
                    self.info(note);
                }
                self.mark_labels_dirty(layer, Dirty::All);
                self.map.palette_dirty = true;
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
            TaskDone::LabelsSaved {
                layer,
                path,
                revision,
            } => {
                if let Some(session) = &mut self.store.session {
                    session.sources.set_labels_path(layer, Some(path.clone()));
                    if layer == LabelLayer::Train {
                        session.saved_revision = revision;
                    }
                }
                self.info(format!("saved {} to {}", layer.name(), path.display()));
            }
            TaskDone::ResultsExported { dir, files } => {
                self.info(format!("exported {files} files to {}", dir.display()))
            }
            TaskDone::PolygonsExported { path, polygons } => self.info(format!(
                "wrote {polygons} polygons to {} (layer landcover)",
                path.display()
            )),
            TaskDone::ValidationSampleWritten { path, written } => {
                for note in &written.notes {
                    self.info(note.clone());
                }
                self.info(format!(
                    "wrote {} sample points to {}: fill in their `reference` field (in QGIS), then \"Accuracy from sample…\" in the results window",
                    written.points,
                    path.display()
                ));
            }
            TaskDone::SampleScored { shown, accuracy } => {
                let overall = accuracy.estimates.overall.clone();
                let points = accuracy.estimates.sample_size;
                if let Some(r) = self.store.session.as_mut().and_then(|s| s.result.as_mut()) {
                    r.sample_accuracy = Some((shown, *accuracy));
                    self.views.results.open = true;
                }
                self.info(format!(
                    "area-adjusted overall accuracy {:.4} (SE {}) from {points} sample points",
                    overall.value,
                    overall.se.map_or("undefined".into(), |s| format!("{s:.4}"))
                ));
            }
            TaskDone::ModelSaved { path } => self.info(format!(
                "model saved to {}: map other scenes with `unidiff-studio predict --model {}`",
                path.display(),
                path.display()
            )),
            TaskDone::PngWritten {
                path,
                width,
                height,
            } => self.info(format!(
                "view written to {} ({width} x {height})",
                path.display()
            )),
            TaskDone::PrgbRendered { image, bands } => {
                let Some(session) = &mut self.store.session else {
                    return;
                };
                session.renderings.prgb = Some((image, bands));
                self.map.dirty.insert(LayerId::Prgb, Dirty::All);
                self.map.renderings_changed();
                if let Some(l) = self.store.layers.get_mut(LayerId::Prgb) {
                    l.reset_stretch();
                }
            }
            TaskDone::CheckpointChecked {
                backbone,
                parameters,
            } => {
                self.info(format!(
                    "backbone: {} ({parameters} parameters)",
                    super::backbone_panel::backbone_words(&backbone)
                ));
                self.store.classify_settings.backbone = backbone;
            }
            TaskDone::AdapterChecked { backbone } => {
                self.store.classify_settings.backbone = backbone
            }
            TaskDone::NoisedInput { image, t } => self.views.explorer.set_noised(image, t),
            TaskDone::ProjectSaved {
                path,
                revision,
                labels,
            } => self.project_saved(path, revision, labels),
            TaskDone::Autosaved { dir, revision } => {
                log::info!(
                    "autosaved labels (revision {revision}) to {}",
                    dir.display()
                );
            }
        }
    }

    /// A failed task: its message names the file; an autosave that failed
    /// is tried again at the next interval.
    pub(crate) fn task_failed(&mut self, kind: TaskKind, message: String) {
        if kind == TaskKind::Autosave {
            self.autosaver.failed();
        }
        self.error(message);
    }
}
