//! Background work for the app: one worker thread per kind of job, fed over
//! crossbeam channels. Workers send [`JobEvent`]s and call the waker (the UI's
//! `request_repaint`), so the UI never blocks and never polls. Every request
//! carries a generation; the UI drops events of superseded requests.

pub mod adapt;
pub mod apply;
pub mod backbone;
pub mod classify;
pub mod download;
pub mod features;
pub mod load;
pub mod loaded_backbone;
pub mod project;
pub mod scene_preview;
pub mod tasks;

use std::sync::Arc;
use std::thread;

use crossbeam_channel::{Receiver, Sender, unbounded};

pub use crate::base::CancelFlag;
use crate::model::device::{DeviceReport, Resolved, panic_message};
use crate::pipeline::feature_store::FeatureStore;
use crate::pipeline::stage_b::StageBConfig;
pub use adapt::{AdaptRequest, AdaptSettings, AdaptStep, Adapted};
pub use apply::{AppliedScenes, ApplyScenesRequest, ModelSource, SceneInputs};
pub use classify::{Classified, ClassifyRequest, ClassifySettings};
pub use download::{Fetched, GetRequest};
pub use features::{ProjectRequest, Projection};
pub use load::{LoadRequest, LoadedScene};
pub use tasks::{ResultsExport, Task, TaskDone, TaskKind};

/// Wakes the UI when an event arrives.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Kinds of background jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Load,
    Adapt,
    Classify,
    Features,
    /// File and raster work of the app (`tasks`).
    Task,
    /// Fetching a backbone.
    Download,
    /// A trained model mapping other scenes.
    Apply,
}

/// What a worker reports.
#[derive(Debug)]
pub enum JobEvent {
    /// A step started; `fraction` of the job done so far.
    Progress {
        kind: JobKind,
        generation: u64,
        step: String,
        fraction: f32,
    },
    Loaded {
        generation: u64,
        scene: Box<LoadedScene>,
    },
    /// A coarse look at a large scene before its whole read.
    LoadPreview {
        generation: u64,
        preview: Box<scene_preview::ScenePreview>,
    },
    Classified {
        generation: u64,
        result: Box<Classified>,
    },
    /// A classification's first map, before its overlapping patches are
    /// merged in (a run whose features were all kept).
    Previewed {
        generation: u64,
        preview: crate::session::MapPreview,
    },
    /// One Stage A step (its loss feeds the live plot).
    AdaptStep {
        generation: u64,
        step: AdaptStep,
    },
    Adapted {
        generation: u64,
        result: Box<Adapted>,
    },
    Projected {
        generation: u64,
        result: Box<Projection>,
    },
    TaskDone {
        generation: u64,
        done: Box<TaskDone>,
    },
    /// Scenes mapped with a trained model.
    Applied {
        generation: u64,
        result: Box<AppliedScenes>,
    },
    /// A backbone downloaded, checked and in place.
    Fetched {
        generation: u64,
        fetched: Box<Fetched>,
    },
    Failed {
        kind: JobKind,
        generation: u64,
        message: String,
    },
    Cancelled {
        kind: JobKind,
        generation: u64,
    },
}

impl JobEvent {
    pub fn generation(&self) -> u64 {
        match self {
            JobEvent::Progress { generation, .. }
            | JobEvent::Loaded { generation, .. }
            | JobEvent::LoadPreview { generation, .. }
            | JobEvent::Classified { generation, .. }
            | JobEvent::Previewed { generation, .. }
            | JobEvent::AdaptStep { generation, .. }
            | JobEvent::Adapted { generation, .. }
            | JobEvent::Projected { generation, .. }
            | JobEvent::TaskDone { generation, .. }
            | JobEvent::Fetched { generation, .. }
            | JobEvent::Applied { generation, .. }
            | JobEvent::Failed { generation, .. }
            | JobEvent::Cancelled { generation, .. } => *generation,
        }
    }
}

/// One running job as its worker sees it: which job it is, its cancel flag,
/// and where its events go. Every job reports progress and ends through it.
pub struct JobContext<'a> {
    pub kind: JobKind,
    pub generation: u64,
    pub cancel: &'a CancelFlag,
    send: &'a dyn Fn(JobEvent),
}

impl JobContext<'_> {
    /// A step started; `fraction` of the job done so far.
    pub fn progress(&self, step: impl Into<String>, fraction: f32) {
        self.send(JobEvent::Progress {
            kind: self.kind,
            generation: self.generation,
            step: step.into(),
            fraction,
        });
    }

    pub fn send(&self, event: JobEvent) {
        (self.send)(event);
    }

    /// Sends the job's last event: Cancelled when the flag is raised
    /// (whatever came out) or the work gave up (`Ok(None)`), the result's
    /// event from `done`, or Failed with the error's chain of causes.
    pub fn finish<T>(
        &self,
        result: anyhow::Result<Option<T>>,
        done: impl FnOnce(u64, Box<T>) -> JobEvent,
    ) {
        let (kind, generation) = (self.kind, self.generation);
        self.send(match result {
            _ if self.cancel.is_cancelled() => JobEvent::Cancelled { kind, generation },
            Ok(None) => JobEvent::Cancelled { kind, generation },
            Ok(Some(value)) => done(generation, Box::new(value)),
            Err(e) => JobEvent::Failed {
                kind,
                generation,
                message: format!("{e:#}"),
            },
        });
    }
}

/// A thread running `work` on each request of `rx` not cancelled while queued.
/// A job that panics (a GPU runtime out of memory, a bug) is reported as
/// failed, and the worker goes on with the next request.
fn spawn_worker<R: Send + 'static>(
    name: &str,
    kind: JobKind,
    rx: Receiver<(u64, R, CancelFlag)>,
    send: impl Fn(JobEvent) + Send + 'static,
    mut work: impl FnMut(&JobContext<'_>, &R) + Send + 'static,
) -> Result<(), String> {
    let spawned = thread::Builder::new().name(name.into()).spawn(move || {
        for (generation, request, cancel) in rx {
            if cancel.is_cancelled() {
                continue;
            }
            let job = JobContext {
                kind,
                generation,
                cancel: &cancel,
                send: &send,
            };
            let run =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&job, &request)));
            if let Err(payload) = run {
                job.send(JobEvent::Failed {
                    kind,
                    generation,
                    message: panic_words(&panic_message(payload.as_ref())),
                });
            }
            // What the job freed goes back to the system while the app
            // waits for the next request.
            crate::base::allocator::give_back_freed_memory();
        }
    });
    spawned
        .map(|_| ())
        .map_err(|e| format!("cannot start the background worker {name}: {e}"))
}

/// Host memory the classification worker keeps features in between runs:
/// `UNIDIFF_STUDIO_FEATURE_CACHE_MIB` when set (the paper's backbone needs
/// about 4.3 GB for every patch of a 512 x 512 scene at stride 32), else
/// 1 GiB.
pub fn feature_cache_bytes() -> usize {
    std::env::var("UNIDIFF_STUDIO_FEATURE_CACHE_MIB")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map_or(StageBConfig::default().feature_cache_bytes, |mib| {
            mib.saturating_mul(1 << 20)
        })
}

/// Whether a runtime's message reports device memory running out: CUDA's
/// `CUDA_ERROR_OUT_OF_MEMORY` / "out of memory", cubecl's "An out-of-memory
/// error happened during launch" and `OutOfMemory`, wgpu's "Not enough memory
/// left.". Words that merely contain "oom" (zoom, room) are not.
pub fn is_out_of_memory(message: &str) -> bool {
    const MARKS: [&str; 5] = [
        "out of memory",
        "out-of-memory",
        "outofmemory",
        "cuda_error_out_of_memory",
        "not enough memory left",
    ];
    let lower = message.to_lowercase();
    MARKS.iter().any(|m| lower.contains(m))
}

/// Runs a job on `device` (`run` picks the backend from the report), and
/// when a GPU runs out of memory (a panic or an error that says so) runs it
/// again on the CPU, with the device report saying why and a progress line
/// telling the user; nothing is lost, the inputs are untouched and the
/// outputs come whole from the CPU run. Any other error is the job's, any
/// other panic goes on to the worker, which reports it. `state` is what the
/// runs work on (a feature store, a loaded backbone).
pub fn on_device_else_cpu<S, T>(
    job: &JobContext<'_>,
    device: &DeviceReport,
    state: &mut S,
    mut run: impl FnMut(&mut S, &DeviceReport) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    if device.resolved == Resolved::Cpu {
        return run(state, device);
    }
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&mut *state, device)));
    let message = match first {
        Ok(Ok(value)) => return Ok(value),
        Ok(Err(e)) if is_out_of_memory(&format!("{e:#}")) => format!("{e:#}"),
        Ok(Err(e)) => return Err(e),
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            if !is_out_of_memory(&message) {
                std::panic::resume_unwind(payload);
            }
            message
        }
    };
    let cpu = DeviceReport {
        resolved: Resolved::Cpu,
        why: format!(
            "the CPU: {} ran out of memory ({message})",
            device.resolved.name()
        ),
    };
    job.progress(format!("{}; running on the CPU", cpu.why), 0.0);
    run(state, &cpu)
}

/// A panic message in the user's words.
fn panic_words(message: &str) -> String {
    if is_out_of_memory(message) {
        format!(
            "the device ran out of memory ({message}): use a smaller batch or patch stride, or the CPU"
        )
    } else {
        format!("the job stopped on an internal error: {message}")
    }
}

/// Cancels the request of this kind still running, and hands out the next
/// generation with the new request's cancel flag.
fn supersede(generation: &mut u64, running: &mut Option<CancelFlag>) -> (u64, CancelFlag) {
    if let Some(c) = running.take() {
        c.cancel();
    }
    *generation += 1;
    let cancel = CancelFlag::new();
    *running = Some(cancel.clone());
    (*generation, cancel)
}

/// The workers and the channel their events come back on.
pub struct Jobs {
    load_tx: Sender<(u64, LoadRequest, CancelFlag)>,
    classify_tx: Sender<(u64, Box<ClassifyRequest>, CancelFlag)>,
    adapt_tx: Sender<(u64, Box<AdaptRequest>, CancelFlag)>,
    features_tx: Sender<(u64, Box<ProjectRequest>, CancelFlag)>,
    task_tx: Sender<(u64, Box<Task>, CancelFlag)>,
    download_tx: Sender<(u64, Box<GetRequest>, CancelFlag)>,
    apply_tx: Sender<(u64, Box<ApplyScenesRequest>, CancelFlag)>,
    /// The queued task of each latest-only kind.
    task_cancel: std::collections::HashMap<TaskKind, CancelFlag>,
    events: Receiver<JobEvent>,
    /// Where a request that no worker can take is reported as failed.
    events_tx: Sender<JobEvent>,
    /// Workers that could not start (the app shows why).
    start_errors: Vec<String>,
    generation: u64,
    load_cancel: Option<CancelFlag>,
    classify_cancel: Option<CancelFlag>,
    adapt_cancel: Option<CancelFlag>,
    features_cancel: Option<CancelFlag>,
    download_cancel: Option<CancelFlag>,
    apply_cancel: Option<CancelFlag>,
}

impl Jobs {
    /// Starts the workers; `waker` is called after every event.
    pub fn start(waker: Waker) -> Self {
        let (events_tx, events) = unbounded::<JobEvent>();
        let (load_tx, load_rx) = unbounded::<(u64, LoadRequest, CancelFlag)>();
        let worker_events = events_tx.clone();
        let send = move |e: JobEvent| {
            // The receiver lives in `Jobs`: when it is gone nobody waits.
            let _ = worker_events.send(e);
            waker();
        };
        let mut start_errors = Vec::new();
        let (classify_tx, classify_rx) = unbounded::<(u64, Box<ClassifyRequest>, CancelFlag)>();
        // Features stay in the worker between runs (1 GiB at most), so that
        // a label stroke only retrains the head.
        let mut store = FeatureStore::across_runs(feature_cache_bytes());
        // So does the backbone, until the choice, its file or the device
        // changes.
        let mut backbone = loaded_backbone::LoadedBackbone::default();
        // And the last head, for a live update to continue from.
        let mut last_head = classify::LastHead::default();
        start_errors.extend(
            spawn_worker(
                "unidiff-classify",
                JobKind::Classify,
                classify_rx,
                send.clone(),
                move |job, r| classify::run(job, r, &mut store, &mut backbone, &mut last_head),
            )
            .err(),
        );
        let (adapt_tx, adapt_rx) = unbounded::<(u64, Box<AdaptRequest>, CancelFlag)>();
        start_errors.extend(
            spawn_worker(
                "unidiff-adapt",
                JobKind::Adapt,
                adapt_rx,
                send.clone(),
                |job, r| adapt::run(job, r),
            )
            .err(),
        );
        let (features_tx, features_rx) = unbounded::<(u64, Box<ProjectRequest>, CancelFlag)>();
        start_errors.extend(
            spawn_worker(
                "unidiff-features",
                JobKind::Features,
                features_rx,
                send.clone(),
                |job, r| features::run(job, r),
            )
            .err(),
        );
        let (task_tx, task_rx) = unbounded::<(u64, Box<Task>, CancelFlag)>();
        start_errors.extend(
            spawn_worker(
                "unidiff-tasks",
                JobKind::Task,
                task_rx,
                send.clone(),
                |job, t| tasks::run(job, t),
            )
            .err(),
        );
        let (download_tx, download_rx) = unbounded::<(u64, Box<GetRequest>, CancelFlag)>();
        start_errors.extend(
            spawn_worker(
                "unidiff-download",
                JobKind::Download,
                download_rx,
                send.clone(),
                |job, r| download::run(job, r),
            )
            .err(),
        );
        let (apply_tx, apply_rx) = unbounded::<(u64, Box<ApplyScenesRequest>, CancelFlag)>();
        start_errors.extend(
            spawn_worker(
                "unidiff-apply",
                JobKind::Apply,
                apply_rx,
                send.clone(),
                |job, r| apply::run(job, r),
            )
            .err(),
        );
        start_errors
            .extend(spawn_worker("unidiff-load", JobKind::Load, load_rx, send, load::run).err());
        Self {
            load_tx,
            classify_tx,
            adapt_tx,
            features_tx,
            task_tx,
            download_tx,
            apply_tx,
            task_cancel: Default::default(),
            events,
            events_tx,
            start_errors,
            generation: 0,
            load_cancel: None,
            classify_cancel: None,
            adapt_cancel: None,
            features_cancel: None,
            download_cancel: None,
            apply_cancel: None,
        }
    }

    /// Queues a backbone download, cancelling one still running (its
    /// `.part` is resumed by this one).
    pub fn download(&mut self, request: GetRequest) -> u64 {
        let (generation, cancel) = supersede(&mut self.generation, &mut self.download_cancel);
        let sent = self
            .download_tx
            .send((generation, Box::new(request), cancel))
            .is_ok();
        self.unless_sent(sent, JobKind::Download, generation)
    }

    /// Queues a model application to scenes, cancelling one still running.
    pub fn apply(&mut self, request: ApplyScenesRequest) -> u64 {
        let (generation, cancel) = supersede(&mut self.generation, &mut self.apply_cancel);
        let sent = self
            .apply_tx
            .send((generation, Box::new(request), cancel))
            .is_ok();
        self.unless_sent(sent, JobKind::Apply, generation)
    }

    /// Cancels the running model application, if any.
    pub fn cancel_apply(&mut self) {
        if let Some(c) = self.apply_cancel.take() {
            c.cancel();
        }
    }

    /// Cancels the running download, if any.
    pub fn cancel_download(&mut self) {
        if let Some(c) = self.download_cancel.take() {
            c.cancel();
        }
    }

    /// Queues a load; a load still running is cancelled (its result would be
    /// superseded). Returns the request's generation.
    pub fn load(&mut self, request: LoadRequest) -> u64 {
        let (generation, cancel) = supersede(&mut self.generation, &mut self.load_cancel);
        let sent = self.load_tx.send((generation, request, cancel)).is_ok();
        self.unless_sent(sent, JobKind::Load, generation)
    }

    /// Queues a classification, cancelling one still running (superseded).
    pub fn classify(&mut self, request: ClassifyRequest) -> u64 {
        let (generation, cancel) = supersede(&mut self.generation, &mut self.classify_cancel);
        let sent = self
            .classify_tx
            .send((generation, Box::new(request), cancel))
            .is_ok();
        self.unless_sent(sent, JobKind::Classify, generation)
    }

    /// Queues a Stage A run, cancelling one still running.
    pub fn adapt(&mut self, request: AdaptRequest) -> u64 {
        let (generation, cancel) = supersede(&mut self.generation, &mut self.adapt_cancel);
        let sent = self
            .adapt_tx
            .send((generation, Box::new(request), cancel))
            .is_ok();
        self.unless_sent(sent, JobKind::Adapt, generation)
    }

    /// Queues a feature projection, cancelling one still running.
    pub fn project(&mut self, request: ProjectRequest) -> u64 {
        let (generation, cancel) = supersede(&mut self.generation, &mut self.features_cancel);
        let sent = self
            .features_tx
            .send((generation, Box::new(request), cancel))
            .is_ok();
        self.unless_sent(sent, JobKind::Features, generation)
    }

    /// Queues file or raster work; a queued task of the same latest-only
    /// kind is cancelled. Returns the task's generation.
    pub fn task(&mut self, task: Task) -> u64 {
        let kind = task.kind();
        let cancel = CancelFlag::new();
        if kind.latest_only()
            && let Some(old) = self.task_cancel.insert(kind, cancel.clone())
        {
            old.cancel();
        }
        self.generation += 1;
        let sent = self
            .task_tx
            .send((self.generation, Box::new(task), cancel))
            .is_ok();
        self.unless_sent(sent, JobKind::Task, self.generation)
    }

    /// Cancels the running feature projection, if any.
    pub fn cancel_features(&mut self) {
        if let Some(c) = self.features_cancel.take() {
            c.cancel();
        }
    }

    /// Cancels the running Stage A run, if any.
    pub fn cancel_adapt(&mut self) {
        if let Some(c) = self.adapt_cancel.take() {
            c.cancel();
        }
    }

    /// Cancels the running classification, if any.
    pub fn cancel_classify(&mut self) {
        if let Some(c) = self.classify_cancel.take() {
            c.cancel();
        }
    }

    /// Cancels the running load, if any.
    pub fn cancel_load(&mut self) {
        if let Some(c) = self.load_cancel.take() {
            c.cancel();
        }
    }

    /// Returns `generation`; when its request could not be queued (the
    /// worker never started or has gone) it fails at once, so the app does
    /// not wait for it.
    fn unless_sent(&self, sent: bool, kind: JobKind, generation: u64) -> u64 {
        if !sent {
            let _ = self.events_tx.send(JobEvent::Failed {
                kind,
                generation,
                message: "its background worker is not running (see the first message)".into(),
            });
        }
        generation
    }

    /// Workers that could not start, in words.
    pub fn start_errors(&self) -> &[String] {
        &self.start_errors
    }

    /// The latest generation handed out.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Events that arrived since the last call.
    pub fn poll(&self) -> Vec<JobEvent> {
        self.events.try_iter().collect()
    }

    /// Waits for the next event (tests and headless use).
    pub fn wait(&self, timeout: std::time::Duration) -> Option<JobEvent> {
        self.events.recv_timeout(timeout).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GPU out of memory (cubecl's launch message as a panic, CUDA's as an
    /// error) runs the job again on the CPU with the reason said; other
    /// failures are the job's own. The runtimes' messages are the real ones;
    /// no GPU here can run out of memory on demand.
    #[cfg(feature = "wgpu")]
    #[test]
    fn a_gpu_out_of_memory_runs_on_the_cpu_and_says_why() {
        let events = std::sync::Mutex::new(Vec::new());
        let send = |e: JobEvent| events.lock().unwrap().push(e);
        let cancel = CancelFlag::new();
        let job = JobContext {
            kind: JobKind::Classify,
            generation: 1,
            cancel: &cancel,
            send: &send,
        };
        let gpu = DeviceReport {
            resolved: Resolved::Wgpu,
            why: "a GPU".into(),
        };
        let on_cpu = |d: &DeviceReport| d.resolved == Resolved::Cpu;
        let mut runs = Vec::new();
        let out = on_device_else_cpu(&job, &gpu, &mut runs, |runs, d| {
            if !on_cpu(d) {
                panic!("An out-of-memory error happened during launch")
            }
            runs.push(d.why.clone());
            Ok("from the CPU")
        });
        assert_eq!(out.unwrap(), "from the CPU");
        assert_eq!(runs.len(), 1);
        assert!(
            runs[0].contains("ran out of memory (An out-of-memory error"),
            "{}",
            runs[0]
        );
        let said = events.lock().unwrap().iter().any(|e| {
            matches!(e, JobEvent::Progress { step, .. } if step.ends_with("; running on the CPU"))
        });
        assert!(said, "the user is told");

        let out = on_device_else_cpu(&job, &gpu, &mut (), |_, d| {
            if !on_cpu(d) {
                anyhow::bail!("CUDA_ERROR_OUT_OF_MEMORY")
            }
            Ok(7)
        });
        assert_eq!(out.unwrap(), 7);

        // Another error is the job's; the CPU run does not happen.
        let out = on_device_else_cpu(&job, &gpu, &mut (), |_, d| -> anyhow::Result<u8> {
            assert!(!on_cpu(d), "must not run on the CPU");
            anyhow::bail!("the checkpoint does not fit")
        });
        assert_eq!(out.unwrap_err().to_string(), "the checkpoint does not fit");
        // Another panic goes on to the worker.
        let other = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            on_device_else_cpu(&job, &gpu, &mut (), |_, d| -> anyhow::Result<u8> {
                if !on_cpu(d) {
                    panic!("index out of bounds")
                }
                Ok(0)
            })
        }));
        assert!(other.is_err());
    }

    /// Jobs whose workers are gone (their receivers dropped), as when a
    /// worker thread could not be started.
    fn jobs_without_workers() -> Jobs {
        let (events_tx, events) = unbounded::<JobEvent>();
        Jobs {
            load_tx: unbounded().0,
            classify_tx: unbounded().0,
            adapt_tx: unbounded().0,
            features_tx: unbounded().0,
            task_tx: unbounded().0,
            download_tx: unbounded().0,
            apply_tx: unbounded().0,
            task_cancel: Default::default(),
            events,
            events_tx,
            start_errors: vec!["cannot start the background worker unidiff-load".into()],
            generation: 0,
            load_cancel: None,
            classify_cancel: None,
            adapt_cancel: None,
            features_cancel: None,
            download_cancel: None,
            apply_cancel: None,
        }
    }

    #[test]
    fn a_request_no_worker_takes_fails_at_once_instead_of_hanging() {
        let mut jobs = jobs_without_workers();
        assert_eq!(jobs.start_errors().len(), 1);
        let generation = jobs.load(LoadRequest::demo().unwrap());
        match jobs.wait(std::time::Duration::from_secs(1)) {
            Some(JobEvent::Failed {
                kind,
                generation: g,
                message,
            }) => {
                assert_eq!((kind, g), (JobKind::Load, generation));
                assert!(message.contains("not running"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let task = jobs.task(Task::CheckCheckpoint {
            path: "x.pt".into(),
        });
        let event = jobs.wait(std::time::Duration::from_secs(1));
        assert!(
            matches!(
                &event,
                Some(JobEvent::Failed { kind: JobKind::Task, generation, .. }) if *generation == task
            ),
            "{event:?}"
        );
    }

    #[test]
    fn out_of_memory_is_told_by_the_runtimes_words_not_by_any_oom() {
        for m in [
            "CUDA_ERROR_OUT_OF_MEMORY",
            "An out-of-memory error happened during launch\nCaused by:\n  alloc",
            "Not enough memory left.",
            "IoError(OutOfMemory)",
            "cuMemAlloc failed: out of memory",
        ] {
            assert!(is_out_of_memory(m), "{m}");
        }
        for m in [
            "zoom level out of range",
            "the room is full",
            "bloom filter",
        ] {
            assert!(!is_out_of_memory(m), "{m}");
        }
    }

    #[test]
    fn a_job_that_panics_is_reported_and_the_worker_goes_on() {
        let (tx, rx) = unbounded::<(u64, u32, CancelFlag)>();
        let (events_tx, events) = unbounded::<JobEvent>();
        spawn_worker(
            "test-worker",
            JobKind::Adapt,
            rx,
            move |e| {
                let _ = events_tx.send(e);
            },
            |job, r: &u32| {
                assert!(*r != 1, "CUDA_ERROR_OUT_OF_MEMORY: out of memory");
                job.progress("the next request runs", 1.0);
            },
        )
        .unwrap();
        tx.send((1, 1, CancelFlag::new())).unwrap();
        tx.send((2, 2, CancelFlag::new())).unwrap();
        let timeout = std::time::Duration::from_secs(10);
        match events.recv_timeout(timeout).unwrap() {
            JobEvent::Failed {
                kind,
                generation,
                message,
            } => {
                assert_eq!((kind, generation), (JobKind::Adapt, 1));
                assert!(
                    message.starts_with("the device ran out of memory"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(events.recv_timeout(timeout).unwrap().generation(), 2);
    }

    #[test]
    fn a_job_ends_with_its_result_failed_or_cancelled() {
        let (tx, rx) = unbounded::<JobEvent>();
        let send = move |e: JobEvent| {
            let _ = tx.send(e);
        };
        let cancel = CancelFlag::new();
        let job = JobContext {
            kind: JobKind::Features,
            generation: 7,
            cancel: &cancel,
            send: &send,
        };
        let projected = |generation, _: Box<u8>| JobEvent::Cancelled {
            kind: JobKind::Load,
            generation,
        };
        job.finish(Ok(Some(1u8)), projected);
        assert!(matches!(
            rx.try_recv().unwrap(),
            JobEvent::Cancelled {
                kind: JobKind::Load,
                generation: 7
            }
        ));
        job.finish(
            Err(anyhow::anyhow!("no disk").context("writing x")),
            projected,
        );
        match rx.try_recv().unwrap() {
            JobEvent::Failed { kind, message, .. } => {
                assert_eq!(kind, JobKind::Features);
                assert_eq!(message, "writing x: no disk");
            }
            other => panic!("{other:?}"),
        }
        job.finish(Ok(None), projected);
        assert!(matches!(
            rx.try_recv().unwrap(),
            JobEvent::Cancelled {
                kind: JobKind::Features,
                ..
            }
        ));
        // A raised flag wins over whatever came out.
        cancel.cancel();
        job.finish(Ok(Some(1u8)), projected);
        assert!(matches!(
            rx.try_recv().unwrap(),
            JobEvent::Cancelled {
                kind: JobKind::Features,
                ..
            }
        ));
    }
}
