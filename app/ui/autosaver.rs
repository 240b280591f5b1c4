//! The autosaver: the labels (and an open project's settings and view)
//! written in the background (a task) when they changed and the interval has passed, and once more, waited for, when
//! the window closes. It keeps when it last saved and which label
//! revision; the write itself is `session::autosave`'s.

use std::time::{Duration, Instant};

use super::job_status::JobStatus;
use super::project_settings::project_settings;
use super::store::Store;
use crate::jobs::Task;
use crate::session::autosave::{AutosaveSnapshot, autosave_dir, autosave_interval, write_autosave};

/// When the labels were last autosaved, and from which revision.
pub struct Autosaver {
    last: Instant,
    saved_revision: u64,
    /// The project settings last written (a project's autosave covers them).
    saved_settings: Option<serde_json::Value>,
}

/// What the autosaver asks of the frame.
pub enum AutosaveDue {
    /// Nothing to write.
    No,
    /// Look again after this long.
    After(Duration),
    /// Write these labels now (as a task).
    Now(Box<Task>),
}

impl Autosaver {
    pub fn new() -> Self {
        Self {
            last: Instant::now(),
            saved_revision: 0,
            saved_settings: None,
        }
    }

    /// A scene was opened (its labels are on disk as they are) at `revision`.
    pub fn opened(&mut self, revision: u64, settings: Option<serde_json::Value>) {
        self.saved_revision = revision;
        self.saved_settings = settings;
        self.last = Instant::now();
    }

    /// The last write failed: the next interval tries again.
    pub fn failed(&mut self) {
        // A revision the labels never have.
        self.saved_revision = u64::MAX;
    }

    /// Whether the labels (or an open project's settings) have changed
    /// since the last autosave.
    pub fn behind(&self, store: &Store) -> bool {
        store.session.as_ref().is_some_and(|s| {
            s.labels_revision != self.saved_revision
                || project_settings(store).is_some_and(|p| Some(p) != self.saved_settings)
        })
    }

    /// Whether to write now: labels changed, no stroke in progress, the
    /// interval passed, no autosave in flight.
    pub fn due(&mut self, store: &Store, jobs: &JobStatus) -> AutosaveDue {
        let Some(session) = &store.session else {
            return AutosaveDue::No;
        };
        if !self.behind(store) || session.is_painting() {
            return AutosaveDue::No;
        }
        let due = self.last + autosave_interval();
        let now = Instant::now();
        if now < due {
            return AutosaveDue::After(due - now);
        }
        if jobs.autosaving() {
            return AutosaveDue::After(Duration::from_millis(200));
        }
        let snapshot = snapshot(store);
        let dir = autosave_dir(&store.data_dir, &snapshot.sources);
        self.saved_revision = snapshot.labels_revision;
        self.saved_settings = snapshot.settings.clone();
        self.last = now;
        AutosaveDue::Now(Box::new(Task::Autosave {
            dir,
            snapshot: Box::new(snapshot),
        }))
    }

    /// Writes the labels now, on this thread (the window is closing).
    pub fn write_now(&mut self, store: &Store) {
        let snapshot = snapshot(store);
        let dir = autosave_dir(&store.data_dir, &snapshot.sources);
        match write_autosave(&dir, &snapshot) {
            Ok(()) => {
                self.saved_revision = snapshot.labels_revision;
                self.saved_settings = snapshot.settings;
            }
            Err(e) => log::warn!("autosave to {} failed: {e:#}", dir.display()),
        }
    }
}

impl Default for Autosaver {
    fn default() -> Self {
        Self::new()
    }
}

/// The session's labels and classes as the autosave writes them.
fn snapshot(store: &Store) -> AutosaveSnapshot {
    let s = store.session.as_ref();
    AutosaveSnapshot {
        sources: s.map(|s| s.sources.clone()).unwrap_or_default(),
        classes: s.map(|s| s.classes.clone()).unwrap_or_default(),
        train: s.and_then(|s| s.scene.train_labels.clone()),
        test: s.and_then(|s| s.scene.test_labels.clone()),
        labels_revision: s.map(|s| s.labels_revision).unwrap_or(0),
        project: store.project.clone(),
        settings: project_settings(store),
    }
}
