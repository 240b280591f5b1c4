//! What the app knows of its background work: the workers, the progress
//! of each kind of job running (load, classification, Stage A, download,
//! feature projection) and the file and raster tasks queued. Its `poll`
//! keeps that bookkeeping — progress into the job's slot, a slot cleared
//! when its job ends — and hands the ends back for the app to apply to the
//! store (`events.rs`). Views read it for progress bars and busy states.

use std::collections::HashMap;
use std::time::Instant;

use super::vocabulary::JobProgress;
use crate::jobs::{JobEvent, JobKind, Jobs, Task, TaskKind};

/// The jobs running and the tasks queued.
pub struct JobStatus {
    /// The worker threads (requests go in, events come back).
    pub workers: Jobs,
    pub loading: Option<JobProgress>,
    pub classifying: Option<JobProgress>,
    pub adapting: Option<JobProgress>,
    pub downloading: Option<JobProgress>,
    /// The explorer's feature projection.
    pub projecting: Option<JobProgress>,
    /// A trained model mapping other scenes.
    pub applying: Option<JobProgress>,
    /// File and raster tasks queued or running, by generation.
    pub(crate) tasks: HashMap<u64, TaskKind>,
    /// The classification running is a live update after a stroke.
    pub(crate) classifying_live: bool,
    /// The label revision the classification running was started from.
    pub(crate) classifying_revision: u64,
    /// A live update due at this time for this label revision (debounce).
    pub(crate) auto_classify_due: Option<(Instant, u64)>,
}

/// A job event the app must act on, with the kind of the task it ends
/// (task events only).
pub struct Ended {
    pub event: JobEvent,
    pub task: Option<TaskKind>,
}

impl JobStatus {
    pub fn new(workers: Jobs) -> Self {
        Self {
            workers,
            loading: None,
            classifying: None,
            adapting: None,
            downloading: None,
            projecting: None,
            applying: None,
            tasks: HashMap::new(),
            classifying_live: false,
            classifying_revision: 0,
            auto_classify_due: None,
        }
    }

    /// The progress slot of a kind of job (tasks have none).
    fn slot(&mut self, kind: JobKind) -> Option<&mut Option<JobProgress>> {
        match kind {
            JobKind::Load => Some(&mut self.loading),
            JobKind::Classify => Some(&mut self.classifying),
            JobKind::Adapt => Some(&mut self.adapting),
            JobKind::Features => Some(&mut self.projecting),
            JobKind::Download => Some(&mut self.downloading),
            JobKind::Apply => Some(&mut self.applying),
            JobKind::Task => None,
        }
    }

    /// Whether an event belongs to a job or task this app still waits for
    /// (a superseded or cancelled one's late events are dropped).
    fn waits_for(&self, generation: u64) -> bool {
        self.tasks.contains_key(&generation)
            || [
                &self.loading,
                &self.classifying,
                &self.adapting,
                &self.projecting,
                &self.downloading,
                &self.applying,
            ]
            .iter()
            .any(|slot| slot.as_ref().map(|l| l.generation) == Some(generation))
    }

    /// The workers' new events: progress is kept here; every other event of
    /// a job still waited for ends it (its slot cleared, its task
    /// forgotten) and is returned. Stage A's steps are returned too (their
    /// loss feeds the plot) and stay in the slot as progress.
    pub fn poll(&mut self) -> Vec<Ended> {
        let mut ended = Vec::new();
        for event in self.workers.poll() {
            let generation = event.generation();
            if !self.waits_for(generation) {
                continue;
            }
            let kind = match &event {
                JobEvent::Progress {
                    kind,
                    step,
                    fraction,
                    ..
                } => {
                    if let Some(Some(l)) = self.slot(*kind) {
                        l.step.clone_from(step);
                        l.fraction = *fraction;
                    }
                    continue;
                }
                JobEvent::Previewed { .. } | JobEvent::LoadPreview { .. } => None,
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
                    None
                }
                JobEvent::Loaded { .. } => Some(JobKind::Load),
                JobEvent::Classified { .. } => Some(JobKind::Classify),
                JobEvent::Adapted { .. } => Some(JobKind::Adapt),
                JobEvent::Projected { .. } => Some(JobKind::Features),
                JobEvent::Fetched { .. } => Some(JobKind::Download),
                JobEvent::Applied { .. } => Some(JobKind::Apply),
                JobEvent::TaskDone { .. } => Some(JobKind::Task),
                JobEvent::Failed { kind, .. } | JobEvent::Cancelled { kind, .. } => Some(*kind),
            };
            let mut task = None;
            if let Some(kind) = kind {
                match self.slot(kind) {
                    Some(slot) => *slot = None,
                    None => task = self.tasks.remove(&generation),
                }
            }
            ended.push(Ended { event, task });
        }
        ended
    }

    /// Queues file or raster work and remembers it until its event; a
    /// latest-only kind supersedes its queued predecessor.
    pub(crate) fn start_task(&mut self, task: Task) {
        let kind = task.kind();
        if kind.latest_only() {
            self.tasks.retain(|_, k| *k != kind);
        }
        let generation = self.workers.task(task);
        self.tasks.insert(generation, kind);
    }

    /// Whether file or raster work of the app is queued or running.
    pub fn tasks_pending(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// The kinds of the tasks queued or running.
    pub fn queued_tasks(&self) -> Vec<TaskKind> {
        self.tasks.values().copied().collect()
    }

    /// Whether an autosave is queued or being written.
    pub fn autosaving(&self) -> bool {
        self.tasks.values().any(|k| *k == TaskKind::Autosave)
    }

    /// The running job shown in the title: the first of load, Stage A,
    /// classification, download, projection.
    pub fn title_job(&self) -> Option<(&'static str, f32)> {
        [
            ("opening", &self.loading),
            ("Stage A", &self.adapting),
            ("classifying", &self.classifying),
            ("downloading", &self.downloading),
            ("projecting", &self.projecting),
        ]
        .into_iter()
        .find_map(|(what, l)| l.as_ref().map(|l| (what, l.fraction)))
    }
}
