//! The one place where the app's effects happen: [`StudioApp::handle`] runs
//! each [`AppCommand`] (widgets, shortcuts, dialogs and drops send them), and
//! [`StudioApp::task_done`] takes back what the file and raster tasks made.
//! Work that reads or writes files or rasters is queued as a job here; only
//! the session's label edits run on the UI thread.

use std::path::PathBuf;

use crate::pipeline::cleanup::{CleanStep, CleanedMap, ScoringLabels};
use crate::scene::{ClassInfo, PixelGrid};

use super::app::StudioApp;
use super::command::{AppCommand, CleanRequest};
use super::layers::LayerId;
use super::view_transform::{MAX_ZOOM, MIN_ZOOM};
use super::vocabulary::CloseState;
use super::vocabulary::Window;
use super::vocabulary::{Dirty, FileAction, JobProgress};
use crate::jobs::{ClassifyRequest, LoadRequest, ResultsExport, Task, TaskDone, TaskKind};
use crate::scene::LabelLayer;
use crate::session::label_files::is_vector_labels;

/// A model's classes with the session's names and colours (a class the
/// session lacks keeps the model's).
fn named_as_session(model: &[ClassInfo], session: &[ClassInfo]) -> Vec<ClassInfo> {
    model
        .iter()
        .map(|c| {
            session
                .iter()
                .find(|named| named.value == c.value)
                .cloned()
                .unwrap_or_else(|| c.clone())
        })
        .collect()
}

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
            AppCommand::ExportPolygons(path, dissolve) => self.export_polygons(path, dissolve),
            AppCommand::CleanMap(request) => self.clean_map(request),
            AppCommand::OpenSample(path) => self.open_sample(path),
            AppCommand::SetSampleReference(class) => self.set_sample_reference(class),
            AppCommand::GoToSamplePoint(i) => self.go_to_sample_point(i),
            AppCommand::CloseSample => self.store.sample = None,
            AppCommand::SetApplySettings(settings) => self.store.apply_settings = *settings,
            AppCommand::ApplyModel => self.apply_model(),
            AppCommand::CancelApply => self.jobs.workers.cancel_apply(),
            AppCommand::UndoCleanStep => self.undo_clean_step(),
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
                self.jobs.downloading = Some(JobProgress::started(generation));
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
            AppCommand::ProjectFeatures(request) => {
                let generation = self.jobs.workers.project(*request);
                self.jobs.projecting = Some(JobProgress::started(generation));
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
                if self.store.tool == super::vocabulary::Tool::Inspect {
                    self.store.tool = super::vocabulary::Tool::Brush;
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
                    let cleaned = r.cleaned_map().is_some();
                    self.map.dirty.insert(LayerId::ClassMap, Dirty::All);
                    self.map.dirty.insert(LayerId::CleanedMap, Dirty::All);
                    self.show_cleaned_layer(cleaned);
                }
            }
            AppCommand::ToggleShortcuts => self.views.shortcuts.open = !self.views.shortcuts.open,
            AppCommand::ShowWindow(Window::Results) => self.views.results.open = true,
            AppCommand::ShowWindow(Window::Explorer) => self.views.explorer.open = true,
            AppCommand::ShowWindow(Window::Shortcuts) => self.views.shortcuts.open = true,
            AppCommand::ShowWindow(Window::Apply) => self.views.apply.open = true,
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
        self.jobs.loading = Some(JobProgress::started(generation));
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
            FileAction::ExportPolygons { dissolve } => AppCommand::ExportPolygons(path, *dissolve),
            FileAction::ValidationSample { per_class } => AppCommand::WriteValidationSample(
                path,
                *per_class,
                self.store.classify_settings.seed,
            ),
            FileAction::SampleAccuracy => AppCommand::ScoreWithSample(path),
            FileAction::LabelSample => AppCommand::OpenSample(path),
            FileAction::ApplyInput { index, sar } => {
                let mut settings = self.store.apply_settings.clone();
                if let Some(scene) = settings.scenes.get_mut(*index) {
                    if *sar {
                        scene.sar = Some(path);
                    } else {
                        scene.hsi = Some(path);
                    }
                }
                AppCommand::SetApplySettings(Box::new(settings))
            }
            FileAction::ApplyOut => {
                let mut settings = self.store.apply_settings.clone();
                settings.out = Some(path);
                AppCommand::SetApplySettings(Box::new(settings))
            }
            FileAction::ApplyModelFile => {
                let mut settings = self.store.apply_settings.clone();
                settings.model_file = Some(path);
                AppCommand::SetApplySettings(Box::new(settings))
            }
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
                    FileAction::ExportPolygons { .. } => dialog
                        .add_filter("GeoPackage", &["gpkg"])
                        .set_file_name("classmap.gpkg")
                        .save_file(),
                    FileAction::ValidationSample { .. } => dialog
                        .add_filter("GeoPackage", &["gpkg"])
                        .set_file_name("sample.gpkg")
                        .save_file(),
                    FileAction::ApplyInput { .. } => dialog
                        .add_filter(
                            "rasters",
                            &["tif", "tiff", "img", "hdr", "vrt", "jp2", "mat", "npy"],
                        )
                        .add_filter("all files", &["*"])
                        .pick_file(),
                    FileAction::ApplyOut => dialog.pick_folder(),
                    FileAction::ApplyModelFile => dialog
                        .add_filter("UniDiff Studio models", &["udmodel"])
                        .pick_file(),
                    FileAction::LabelSample => {
                        dialog.add_filter("GeoPackage", &["gpkg"]).pick_file()
                    }
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
    /// metrics.json / .csv, the forest's under `baseline_rf/`, the labels it
    /// was made from and run.json.
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
            export: Box::new(ResultsExport {
                outcome: r.outcome.clone(),
                cleaned: r.cleaned.clone(),
                grid: grid.clone(),
                classes: s.classes.clone(),
                made_from: r.made_from.clone(),
                hsi: s.sources.hsi.clone(),
                sar: s.sources.sar.clone(),
                seconds: r.seconds,
            }),
        };
        self.jobs.start_task(task);
    }

    /// Writes the delivered map (the shown classifier's, after its clean-up
    /// steps) as polygons with the session's class names.
    fn export_polygons(&mut self, path: PathBuf, dissolve: bool) {
        if let Some((class_map, grid, classes, _)) = self.shown_map() {
            self.jobs.start_task(Task::ExportPolygons {
                path,
                dissolve,
                class_map,
                grid,
                classes,
            });
        }
    }

    /// Starts one clean-up step on the shown map's latest version.
    fn clean_map(&mut self, request: CleanRequest) {
        let Some(s) = &self.store.session else {
            return;
        };
        if s.preview.is_some() {
            return self.error("a classification is under way: clean its map when it has finished");
        }
        let (Some(r), Some(grid)) = (&s.result, s.scene.grid()) else {
            return self.error("no map to clean: classify first");
        };
        let step = match request {
            CleanRequest::SievePixels {
                min_pixels,
                connectivity,
            } => CleanStep::Sieve {
                min_pixels,
                connectivity,
                hectares: None,
            },
            CleanRequest::SieveHectares { ha, connectivity } => {
                match CleanStep::sieve_hectares(grid, ha, connectivity) {
                    Ok(step) => step,
                    Err(e) => return self.error(format!("cannot sieve to {ha} ha: {e}")),
                }
            }
            CleanRequest::Majority { k } => CleanStep::Majority { k },
        };
        let before = match (r.cleaned_map(), r.class_map()) {
            (Some(c), _) => c.class_map.clone(),
            (None, Some(map)) => std::sync::Arc::new(map.to_vec()),
            (None, None) => return self.error("no map to clean: the classification has none"),
        };
        // Scored on the test labels as they are now, with the training
        // pixels left out as the run scores them.
        let scoring = s.scene.test_labels.as_ref().map(|t| ScoringLabels {
            labels: match &s.scene.train_labels {
                Some(train) => crate::pipeline::classification::scoring_labels(t, train).0,
                None => t.data.clone(),
            },
            classes: r.outcome.classes,
        });
        let task = Task::CleanMap {
            source: r.shown,
            before,
            step,
            grid: grid.clone(),
            classes: s.classes.clone(),
            scoring,
        };
        self.jobs.start_task(task);
    }

    /// Reads a sample's points onto the scene's grid, to label them here.
    fn open_sample(&mut self, path: PathBuf) {
        let Some(s) = &self.store.session else {
            return self.error("open a scene first: a sample's points are labelled on it");
        };
        let Some(grid) = s.scene.grid() else {
            return;
        };
        let task = Task::OpenSample {
            path,
            grid: grid.clone(),
            classes: s.classes.clone(),
        };
        self.jobs.start_task(task);
    }

    /// Labels the sample point on show, writes the labels back, and goes on
    /// to the next unlabelled point.
    fn set_sample_reference(&mut self, class: Option<u8>) {
        let Some(sample) = &mut self.store.sample else {
            return;
        };
        let i = sample.current;
        if sample.set_reference(i, class) {
            let task = Task::SaveSampleReferences {
                path: sample.path.clone(),
                layer: sample.layer.clone(),
                references: sample.references(),
            };
            self.jobs.start_task(task);
        }
        if class.is_some()
            && let Some(next) = sample.next_unlabelled(i + 1)
        {
            self.go_to_sample_point(next);
        }
    }

    /// Shows sample point `i` and centres the map on it, close enough to
    /// see its neighbourhood pixel by pixel.
    fn go_to_sample_point(&mut self, i: usize) {
        let Some(sample) = &mut self.store.sample else {
            return;
        };
        let Some(p) = sample.points.get(i) else {
            return;
        };
        sample.current = i;
        self.map.view.center = [p.col as f32 + 0.5, p.row as f32 + 0.5];
        self.map.view.zoom = self.map.view.zoom.clamp(4.0, MAX_ZOOM);
    }

    /// Starts mapping the apply settings' scenes (what is missing said).
    fn apply_model(&mut self) {
        let session_model = match self.store.session.as_ref().and_then(|s| s.result.as_ref()) {
            Some(r) => r.model.clone().map(|m| {
                let mut m = (*m).clone();
                if let Some(s) = &self.store.session {
                    m.classes = named_as_session(&m.classes, &s.classes);
                }
                std::sync::Arc::new(m)
            }),
            None => Err("classify first, or choose a saved model file".to_string()),
        };
        match self.store.apply_settings.request(session_model) {
            Ok(request) => {
                let generation = self.jobs.workers.apply(request);
                self.jobs.applying = Some(JobProgress::started(generation));
            }
            Err(why) => self.error(why),
        }
    }

    /// Drops the shown map's last clean-up step.
    fn undo_clean_step(&mut self) {
        let Some(r) = self.store.session.as_mut().and_then(|s| s.result.as_mut()) else {
            return;
        };
        let Some(last) = r.undo_cleanup() else {
            return self.error("the shown map has no clean-up step to undo");
        };
        let cleaned = r.cleaned_map().is_some();
        self.map.dirty.insert(LayerId::CleanedMap, Dirty::All);
        self.show_cleaned_layer(cleaned);
        self.info(format!("undid the clean-up step: {}", last.step.describe()));
    }

    /// Shows the cleaned-map layer instead of the class map when the shown
    /// map has one, the class map again when it has none.
    fn show_cleaned_layer(&mut self, cleaned: bool) {
        if let Some(l) = self.store.layers.get_mut(LayerId::ClassMap) {
            l.visible = !cleaned;
        }
        if cleaned && let Some(l) = self.store.layers.get_mut(LayerId::CleanedMap) {
            l.visible = true;
        }
    }

    /// The delivered map (the shown classifier's after its clean-up
    /// steps), its grid, the session's classes and the map in words (an
    /// error said when there is none).
    fn shown_map(&mut self) -> Option<(Vec<u8>, PixelGrid, Vec<ClassInfo>, String)> {
        let found = self.store.session.as_ref().and_then(|s| {
            let r = s.result.as_ref()?;
            let grid = s.scene.grid()?;
            let map = r.delivered_map()?;
            Some((
                map.to_vec(),
                grid.clone(),
                s.classes.clone(),
                r.delivered_name(),
            ))
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
        if let Some((class_map, grid, classes, map_name)) = self.shown_map() {
            self.jobs.start_task(Task::ScoreWithSample {
                path,
                class_map,
                grid,
                classes,
                map_name,
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
        let classes = named_as_session(&model.classes, &s.classes);
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
        self.jobs.classifying = Some(JobProgress::started(generation));
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
        self.jobs.adapting = Some(JobProgress::started(generation));
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
            TaskDone::ResultsExported {
                dir,
                files,
                rerunnable,
            } => self.info(if rerunnable {
                format!(
                    "exported {files} files to {}; `unidiff-studio run --from-json {}` reruns it headless",
                    dir.display(),
                    dir.join("run.json").display()
                )
            } else {
                format!(
                    "exported {files} files to {} (a result reopened from a project saved by an older version: its run.json holds no settings to rerun; classify again for one that does)",
                    dir.display()
                )
            }),
            TaskDone::PolygonsExported {
                path,
                polygons,
                dissolved,
            } => self.info(format!(
                "wrote {polygons} polygons to {} (layer landcover{})",
                path.display(),
                dissolved.map_or(String::new(), |layer| format!(
                    "; one per class in layer {layer}"
                ))
            )),
            TaskDone::ValidationSampleWritten { path, written } => {
                for note in &written.notes {
                    self.info(note.clone());
                }
                self.info(format!(
                    "wrote {} sample points to {}: label them in the sample window (or their `reference` field in QGIS), then \"Accuracy from these points\"",
                    written.points,
                    path.display()
                ));
                self.open_sample(path);
            }
            TaskDone::MapCleaned { before, cleaned } => self.map_cleaned(&before, *cleaned),
            TaskDone::SampleOpened { path, points } => {
                if points.points.is_empty() {
                    return self.error(format!(
                        "no point of layer {} of {} lies on the scene ({} outside)",
                        points.layer,
                        path.display(),
                        points.outside
                    ));
                }
                let sample = crate::session::sample_labelling::SampleLabelling::new(path, *points);
                let current = sample.current;
                self.info(format!(
                    "labelling {}: {} of {} points labelled; the class maps are hidden while you label",
                    sample.path.display(),
                    sample.labelled(),
                    sample.points.len()
                ));
                self.store.sample = Some(sample);
                for id in [LayerId::ClassMap, LayerId::CleanedMap] {
                    if let Some(l) = self.store.layers.get_mut(id) {
                        l.visible = false;
                    }
                }
                self.go_to_sample_point(current);
            }
            TaskDone::SampleReferencesSaved { path, references } => {
                if let Some(s) = &mut self.store.sample
                    && s.path == path
                    && s.references() == references
                {
                    s.unsaved = false;
                }
            }
            TaskDone::SampleScored { map_name, accuracy } => {
                let overall = accuracy.estimates.overall.clone();
                let points = accuracy.estimates.sample_size;
                if let Some(r) = self.store.session.as_mut().and_then(|s| s.result.as_mut()) {
                    r.sample_accuracy = Some((map_name, *accuracy));
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

    /// Keeps a finished clean-up step when the map it started from is
    /// still its classifier's latest; says what it changed.
    fn map_cleaned(&mut self, before: &[u8], cleaned: CleanedMap) {
        let Some(r) = self.store.session.as_mut().and_then(|s| s.result.as_mut()) else {
            return;
        };
        if r.latest_map_of(cleaned.source) != Some(before) {
            return self.error(format!(
                "the map changed while it was being cleaned ({}): the step was not kept, apply it again",
                cleaned.step.describe()
            ));
        }
        let total = cleaned.class_map.len().max(1);
        let mut said = format!(
            "{}: {} pixels changed ({:.2} % of the map)",
            cleaned.step.describe(),
            cleaned.changed,
            100.0 * cleaned.changed as f64 / total as f64
        );
        if let CleanStep::Sieve { min_pixels, .. } = cleaned.step
            && min_pixels > cleaned.class_map.len()
        {
            said.push_str(&format!(
                "; the unit ({min_pixels} px) is larger than the map ({} px): every region but the largest went",
                cleaned.class_map.len()
            ));
        }
        if let Some(sc) = &cleaned.scores {
            said.push_str(&format!(
                "; on {} test pixels OA {:.4} -> {:.4}, mF1 {:.4} -> {:.4}",
                sc.pixels, sc.oa_before, sc.oa_after, sc.mf1_before, sc.mf1_after
            ));
        }
        let shown = cleaned.source == r.shown;
        r.cleaned.push(cleaned);
        if shown {
            self.map.dirty.insert(LayerId::CleanedMap, Dirty::All);
            self.show_cleaned_layer(true);
        }
        self.info(said);
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
