//! The app's side of project files (File → New / Open / Save / Save As
//! project): what goes into a save, taken from the store on the UI thread
//! and written by a task, and what an opened project gives back once its
//! scene has loaded. The file format is `jobs::project`'s.

use std::path::PathBuf;

use super::app::StudioApp;
use super::command::AppCommand;
use super::layers::{LayerId, LayerStack};
use super::prefs::RecentScene;
use super::project_settings::{AutosavedSettings, ViewSettings, view_settings};
use super::vocabulary::{ClosePurpose, CloseState, Dirty, FileAction};
use crate::jobs::Task;
use crate::jobs::load::RestoredProject;
use crate::jobs::project::{
    ProjectSnapshot, ResultSnapshot, SavedLabels, read_project, with_project_extension,
};
use crate::scene::LabelLayer;
use crate::session::{SceneSources, Session};

impl StudioApp {
    /// Reads a project file and opens its scene; the rest of the project
    /// comes back when the scene has loaded.
    pub(crate) fn open_project(&mut self, path: PathBuf) {
        let opened = read_project(&path).and_then(|p| p.load_request());
        match opened {
            Ok(request) => {
                self.info(format!("opening the project {} …", path.display()));
                self.open(request);
            }
            Err(e) => self.error(format!("cannot open the project: {e:#}")),
        }
    }

    /// Saves to the open project's file, or asks for one.
    pub(crate) fn save_project(&mut self) {
        match self.store.project.clone() {
            Some(path) => self.save_project_as(path),
            None => self.handle(AppCommand::PickFile(FileAction::SaveProjectAs)),
        }
    }

    /// Writes the project to `path` (the extension added if missing).
    pub(crate) fn save_project_as(&mut self, path: PathBuf) {
        let path = with_project_extension(&path);
        match self.project_snapshot() {
            Some(snapshot) => self.jobs.start_task(Task::SaveProject {
                path,
                snapshot: Box::new(snapshot),
            }),
            None => self.error("nothing to save as a project: open a scene first"),
        }
    }

    /// Closes the scene and the project (asked first when labels are
    /// unsaved, unless `confirmed`).
    pub(crate) fn new_project(&mut self, confirmed: bool) {
        if !confirmed && self.store.has_unsaved_work() {
            self.store.close_state = CloseState::Asking;
            self.store.close_purpose = ClosePurpose::NewProject;
            return;
        }
        self.store.close_state = CloseState::Open;
        self.jobs.workers.cancel_load();
        self.handle(AppCommand::CancelJobs);
        self.store.session = None;
        self.store.sample = None;
        self.store.project = None;
        self.store.recovery = None;
        self.store.suggestions.clear();
        self.store.suggestion_index = None;
        self.store.inspected = None;
        self.store.layers = LayerStack::default();
        self.map.renderings_changed();
    }

    /// Everything a save writes, copied now (the task writes it while the
    /// user goes on).
    fn project_snapshot(&self) -> Option<ProjectSnapshot> {
        let s = self.store.session.as_ref()?;
        let grid = s.scene.grid()?.clone();
        let view = view_settings(&self.store);
        Some(ProjectSnapshot {
            sources: s.sources.clone(),
            classes: s.classes.clone(),
            grid,
            train: s.scene.labels(LabelLayer::Train).cloned(),
            test: s.scene.labels(LabelLayer::Test).cloned(),
            prgb_bands: s.renderings.prgb.as_ref().map(|(_, b)| b.bands),
            stage_b: self.store.classify_settings.clone(),
            stage_a: self.store.adapt_settings.clone(),
            result: s
                .result
                .as_ref()
                .and_then(|r| ResultSnapshot::of(r, s.labels_revision)),
            view: serde_json::to_value(view).unwrap_or_default(),
            labels_revision: s.labels_revision,
        })
    }

    /// A project's settings, view and last result onto the session that
    /// its scene became.
    pub(crate) fn apply_project(&mut self, session: &mut Session, project: RestoredProject) {
        let RestoredProject {
            path,
            stage_b,
            stage_a,
            view,
            result,
        } = project;
        self.store.classify_settings = stage_b;
        self.store.adapt_settings = stage_a;
        match serde_json::from_value::<ViewSettings>(view) {
            Ok(v) if !v.layers.is_empty() => self.store.layers = LayerStack::from_saved(v.layers),
            Ok(_) => {}
            Err(e) => self.info(format!(
                "{}: the layer settings could not be read ({e}); the defaults are shown",
                path.display()
            )),
        }
        let has_result = result.is_some();
        session.result = result;
        session.saved_revision = session.labels_revision;
        if has_result {
            self.map.dirty.insert(LayerId::ClassMap, Dirty::All);
            self.map.dirty.insert(LayerId::Uncertainty, Dirty::All);
        }
        self.store
            .prefs
            .remember(recent_entry(&session.sources, &path));
        self.store.project = Some(path);
    }

    /// The settings and view of a recovered project autosave.
    pub(crate) fn recover_project_settings(&mut self, settings: serde_json::Value) {
        match serde_json::from_value::<AutosavedSettings>(settings) {
            Ok(s) => {
                self.store.classify_settings = s.stage_b;
                self.store.adapt_settings = s.stage_a;
                if !s.view.layers.is_empty() {
                    self.store.layers = LayerStack::from_saved(s.view.layers);
                }
                self.map.renderings_changed();
            }
            Err(e) => self.error(format!(
                "the autosaved project settings could not be read ({e}); the labels were recovered"
            )),
        }
    }

    /// A saved project: the file is now the open project, and its labels
    /// are saved as of `revision`.
    pub(crate) fn project_saved(&mut self, path: PathBuf, revision: u64, labels: SavedLabels) {
        if let Some(s) = &mut self.store.session {
            self.store.prefs.remember(recent_entry(&s.sources, &path));
            s.saved_revision = s.saved_revision.max(revision);
            // The layers now live in the project's data folder.
            s.sources.train_labels = labels.train;
            s.sources.test_labels = labels.test;
        }
        self.info(format!("project saved to {}", path.display()));
        self.store.project = Some(path);
    }
}

/// The recent-list entry of the project at `path` over a scene.
fn recent_entry(sources: &SceneSources, path: &std::path::Path) -> RecentScene {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    RecentScene {
        title: format!("{name} ({})", sources.title),
        hsi: sources.hsi.clone(),
        sar: sources.sar.clone(),
        demo: sources.demo,
        project: Some(path.to_path_buf()),
    }
}
