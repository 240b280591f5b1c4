//! What the app does when a background job ends: a loaded scene becomes
//! the session, a classification its result (and the explorer's sweep), a
//! Stage A run its adapter, a download its backbone; failures and cancels
//! become messages. [`JobStatus::poll`](super::job_status::JobStatus::poll)
//! has already cleared the job's progress.

use super::app::StudioApp;
use super::command::AppCommand;
use super::layers::LayerId;
use super::vocabulary::Dirty;
use crate::jobs::{JobEvent, JobKind};
use crate::session::ClassificationResult;

impl StudioApp {
    /// Applies the events of the jobs that ended since the last frame.
    pub(crate) fn handle_events(&mut self) {
        for ended in self.jobs.poll() {
            if matches!(
                ended.event,
                JobEvent::Failed {
                    kind: JobKind::Load,
                    ..
                } | JobEvent::Cancelled {
                    kind: JobKind::Load,
                    ..
                }
            ) {
                self.store.scene_preview = None;
            }
            match ended.event {
                JobEvent::Progress { .. } => {}
                JobEvent::LoadPreview { preview, .. } => {
                    self.info(preview.note.clone());
                    // Shown while no scene is open (an open one stays on
                    // the map until the new one replaces it).
                    if self.store.session.is_none() {
                        self.store.scene_preview = Some(*preview);
                        self.map.fit_pending = true;
                    }
                }
                JobEvent::Previewed { preview, .. } => {
                    if let Some(s) = &mut self.store.session {
                        s.preview = Some(preview);
                        self.map.dirty.insert(LayerId::ClassMap, Dirty::All);
                        self.map.renderings_changed();
                    }
                }
                JobEvent::Classified { result, .. } => {
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
                    self.store.last_device = Some(result.device.clone());
                    let was_sweep = !result.sweep.is_empty();
                    if was_sweep {
                        self.views
                            .explorer
                            .merge_sweep(result.sweep, result.labels_revision);
                    }
                    if let Some(s) = &mut self.store.session {
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
                            sample_accuracy: None,
                            cleaned: Vec::new(),
                            made_from: Some(result.made_from),
                        });
                    }
                    self.map.dirty.insert(LayerId::ClassMap, Dirty::All);
                    self.map.dirty.insert(LayerId::Uncertainty, Dirty::All);
                    self.update_suggestions();
                    self.map.renderings_changed();
                    // A live update after a stroke keeps the window as the
                    // user left it (open or closed) instead of raising it
                    // over the layers each time.
                    if !was_sweep && !self.jobs.classifying_live {
                        self.views.results.open = true;
                    }
                }
                JobEvent::AdaptStep { step, .. } => {
                    if step.step == 1 || step.step % 10 == 0 || step.step == step.steps {
                        log::info!(
                            "Stage A step {}/{}, loss {:.4}",
                            step.step,
                            step.steps,
                            step.loss
                        );
                    }
                    self.store.adapt_curve.push(step.loss);
                }
                JobEvent::Adapted { result, .. } => {
                    self.store.adapt_curve.clone_from(&result.loss_curve);
                    self.store.last_device = Some(result.device.clone());
                    self.info(format!(
                        "Stage A done: {} steps in {:.0} s, adapter written to {}; classifications now use it",
                        result.steps_done,
                        result.seconds,
                        result.adapter.display()
                    ));
                    self.handle(AppCommand::UseAdapter(Some(result.adapter)));
                }
                JobEvent::TaskDone { done, .. } => self.task_done(*done),
                JobEvent::Fetched { fetched, .. } => {
                    self.info(format!(
                        "downloaded {} ({:.1} MB, SHA-256 {})",
                        fetched.path.display(),
                        fetched.bytes as f64 / 1e6,
                        fetched.sha256
                    ));
                    self.handle(AppCommand::UseCheckpoint(fetched.path));
                }
                JobEvent::Projected { result, .. } => self.views.explorer.set_projection(*result),
                JobEvent::Applied { result, .. } => {
                    for (name, folder, outcome) in &result.scenes {
                        match outcome {
                            Ok(a) => self.info(format!(
                                "{name}: mapped {} x {} pixels ({} tiles) in {:.0} s into {}",
                                a.width,
                                a.height,
                                a.tiles,
                                a.seconds,
                                folder.display()
                            )),
                            Err(why) => self.error(format!("{name}: not mapped: {why}")),
                        }
                    }
                    self.store.last_applied = Some(*result);
                }
                JobEvent::Loaded { scene, .. } => {
                    self.store.scene_preview = None;
                    self.install_session(*scene);
                }
                JobEvent::Failed { kind, message, .. } => {
                    let what = match kind {
                        JobKind::Load => "cannot open the scene",
                        JobKind::Classify => {
                            self.drop_preview();
                            "cannot classify"
                        }
                        JobKind::Adapt => "Stage A failed",
                        JobKind::Features => "cannot project the features",
                        JobKind::Download => "cannot get the backbone (the one in use stays)",
                        JobKind::Apply => "cannot apply the model",
                        JobKind::Task => {
                            if let Some(kind) = ended.task {
                                self.task_failed(kind, message);
                            }
                            continue;
                        }
                    };
                    self.error(format!("{what}: {message}"));
                }
                JobEvent::Cancelled { kind, .. } => match kind {
                    JobKind::Load => self.info("loading cancelled"),
                    JobKind::Classify => {
                        self.drop_preview();
                        self.info("classification cancelled; the map shows the last result");
                    }
                    JobKind::Adapt => self.info("Stage A cancelled; the backbone is unchanged"),
                    JobKind::Download => self.info("download cancelled; the next try resumes it"),
                    JobKind::Apply => self.info(
                        "applying the model cancelled: the scenes finished are whole (each folder with a predict.json); the one under way is not",
                    ),
                    JobKind::Features | JobKind::Task => {}
                },
            }
        }
    }
}
