//! The classification job (Stage B and the random-forest baseline) for the
//! app: the same `classify_scene` the CLI's `run` calls, with the same
//! defaults, on the labels painted so far, off the UI thread. A live update
//! after a stroke continues from the last head on the same features for a
//! few epochs instead of training a fresh one.

use crate::pipeline::label_curve::{DEFAULT_REPEATS, LabelCurveSpec};
use crate::pipeline::model_bundle::{ModelBundle, TrainedRun};
use crate::products::renderings::RenderSettings;
use std::sync::Arc;

use burn::backend::{Autodiff, Flex};

use super::loaded_backbone::LoadedBackbone;
use super::{JobContext, JobEvent, on_device_else_cpu};
use crate::model::backbone::{BackboneInfo, BackboneSpec};
use crate::model::device::{DeviceChoice, DeviceReport, Resolved, resolve};
use crate::model::lean_ops::UNetAutodiff;
use crate::pipeline::Modality;
use crate::pipeline::baseline::ForestConfig;
use crate::pipeline::classification::{
    Classification, ClassificationSettings, ClassifierChoice, classify_scene_stored,
};
use crate::pipeline::classifier::{HeadTrainConfig, HostHead, MlpConfig};
use crate::pipeline::feature_store::FeatureStore;
use crate::pipeline::run_record::{CPU_BACKEND, LabelsUsed, MadeFrom, Origin, how_read};
use crate::pipeline::stage_b::StageBConfig;
use crate::products::renderings::Renderings;
use crate::scene::Scene;
use crate::session::MapPreview;

/// What the training panel sets (defaults as `unidiff-studio run`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ClassifySettings {
    pub t: i64,
    /// Output block L (None: 11, or the last block of a smaller backbone).
    pub block: Option<usize>,
    pub modalities: Vec<Modality>,
    /// Hidden layers of the MLP head (the paper: 128, 32 for Berlin; 128
    /// for Augsburg).
    pub mlp_hidden: Vec<usize>,
    pub classifier: ClassifierChoice,
    pub baseline: bool,
    /// Patch stride (None: half the patch, as the method).
    pub stride: Option<usize>,
    pub seed: u64,
    pub backbone: BackboneSpec,
    /// Where the model runs (all jobs use it).
    pub device: DeviceChoice,
    /// Labels per class of each point of the label-efficiency curve (the
    /// MLP head trained again on nested subsets); empty: no curve.
    #[serde(default)]
    pub label_curve: Vec<usize>,
    /// A live update keeps the head's standardisation and first layer and
    /// trains the layers after it, where that layer narrows the features
    /// (see `HeadTrainConfig::keep_first_layer`); false: the whole head
    /// continues.
    pub live_keeps_first_layer: bool,
}

impl Default for ClassifySettings {
    fn default() -> Self {
        Self {
            t: 300,
            block: None,
            modalities: Modality::ALL.to_vec(),
            mlp_hidden: MlpConfig::berlin().hidden,
            classifier: ClassifierChoice::Mlp,
            baseline: true,
            stride: None,
            seed: 0,
            backbone: BackboneSpec::Random {
                name: "tiny-random".into(),
                seed: 0,
                adapter: None,
            },
            device: DeviceChoice::Auto,
            label_curve: Vec::new(),
            live_keeps_first_layer: true,
        }
    }
}

impl ClassifySettings {
    /// The classification these panel settings ask for on a backbone of
    /// `config`: the block and stride it allows, the head's 200 epochs, the
    /// held-out check (a live update changes the head's part).
    pub fn classification_settings(
        &self,
        config: &crate::model::UNetConfig,
    ) -> anyhow::Result<ClassificationSettings> {
        let s = self;
        let block = config.feature_block(s.block).map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            (0..1000).contains(&s.t),
            "t {}: the timestep must be in 0..999",
            s.t
        );
        let patch = config.image_size;
        let stride = s.stride.unwrap_or(patch / 2).clamp(1, patch);
        Ok(ClassificationSettings {
            modalities: s.modalities.clone(),
            classifier: s.classifier,
            baseline: s.baseline,
            held_out_check: true,
            stage_b: StageBConfig {
                t: s.t,
                block,
                mlp: MlpConfig {
                    hidden: s.mlp_hidden.clone(),
                },
                head: HeadTrainConfig {
                    seed: s.seed,
                    max_epochs: 200,
                    ..HeadTrainConfig::default()
                },
                patch,
                stride,
                batch_patches: crate::pipeline::stage_b::default_batch_patches(patch),
                noise_seed: s.seed,
                ..StageBConfig::default()
            },
            forest: ForestConfig {
                seed: s.seed,
                ..ForestConfig::default()
            },
        })
    }
}

/// A classification to run: a copy of the scene with the labels as they
/// were when it was asked for.
#[derive(Debug, Clone)]
pub struct ClassifyRequest {
    pub scene: Scene,
    pub renderings: Renderings,
    pub settings: ClassifySettings,
    /// The session's label revision it was made from.
    pub labels_revision: u64,
    /// Modality subsets to run one after the other (the ablation); empty:
    /// one run with the settings' modalities.
    pub subsets: Vec<Vec<Modality>>,
    /// Timesteps to run one after the other (the sweep); empty: the
    /// settings' t. Not combined with `subsets`.
    pub timesteps: Vec<i64>,
    /// A live update after a stroke ("classify again after each stroke"):
    /// the head continues from the last one trained on the same features
    /// for [`LIVE_EPOCHS`] instead of training afresh for the full count.
    pub live: bool,
}

/// Epochs of a live update's head (a fresh head trains for 200).
pub const LIVE_EPOCHS: usize = 50;

/// The last head the worker trained, and the features it was trained on
/// (backbone, device, t, block, modalities, widths, classes), for a live
/// update to continue from.
#[derive(Default)]
pub struct LastHead {
    trained: Option<(String, Arc<HostHead>)>,
}

impl LastHead {
    fn for_key(&self, key: &str) -> Option<Arc<HostHead>> {
        self.trained
            .as_ref()
            .filter(|(k, _)| k == key)
            .map(|(_, w)| w.clone())
    }
}

/// The timesteps 0, step, 2 step, ... up to 999.
pub fn sweep_timesteps(step: i64) -> Vec<i64> {
    (0..1000).step_by(step.clamp(1, 999) as usize).collect()
}

/// One timestep of a sweep.
#[derive(Debug, Clone)]
pub struct SweepPoint {
    pub t: i64,
    pub metrics: Option<crate::metrics::summary::MetricsSummary>,
    pub class_map: Vec<u8>,
}

/// The sweep point with the best mF1 (None without scores).
pub fn best_of(sweep: &[SweepPoint]) -> Option<&SweepPoint> {
    sweep.iter().filter(|p| p.metrics.is_some()).max_by(|a, b| {
        let f = |p: &SweepPoint| p.metrics.as_ref().map_or(0.0, |m| m.mf1);
        f(a).total_cmp(&f(b))
    })
}

/// The seven non-empty subsets of pRGB, PCA and SAR: singles, pairs, all.
pub fn all_subsets() -> Vec<Vec<Modality>> {
    let mut out: Vec<Vec<Modality>> = (1u8..8)
        .map(|mask| {
            Modality::ALL
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, m)| *m)
                .collect()
        })
        .collect();
    out.sort_by_key(|s| s.len());
    out
}

/// One row of the ablation table.
#[derive(Debug, Clone)]
pub struct AblationRow {
    pub modalities: Vec<Modality>,
    pub metrics: Option<crate::metrics::summary::MetricsSummary>,
}

/// What the job hands back.
#[derive(Debug)]
pub struct Classified {
    pub outcome: Classification,
    /// Filled by an ablation request, one row per subset.
    pub ablation: Vec<AblationRow>,
    /// Filled by a sweep, one point per timestep; the outcome is then the
    /// best timestep's.
    pub sweep: Vec<SweepPoint>,
    pub backbone: String,
    /// The device used, and why.
    pub device: String,
    /// The backbone was the one the worker kept loaded (not read again).
    pub backbone_kept: bool,
    pub labels_revision: u64,
    pub seconds: f64,
    /// The MLP's head continued from the last one (a live update).
    pub warm_started: bool,
    /// Each result's class areas (none without a scene grid).
    pub areas: Vec<(ClassifierChoice, crate::metrics::areas::ClassAreas)>,
    /// The trained model, for "Save model…" and `predict`; or why the run
    /// has none.
    pub model: Result<Arc<ModelBundle>, String>,
    /// What the kept outcome was made from (backbone, settings, labels),
    /// for the exported run.json.
    pub made_from: Arc<MadeFrom>,
}

/// Runs the classification; sends progress, then Classified, Failed or
/// Cancelled.
/// `store` keeps the backbone's features between runs: a run with the same
/// backbone, device, t, block, grid and images only retrains the head.
pub fn run(
    job: &JobContext<'_>,
    req: &ClassifyRequest,
    store: &mut FeatureStore,
    backbone: &mut LoadedBackbone,
    last_head: &mut LastHead,
) {
    job.progress("building the backbone", 0.0);
    let device = resolve(req.settings.device);
    let run = |(store, backbone, last_head): &mut (
        &mut FeatureStore,
        &mut LoadedBackbone,
        &mut LastHead,
    ),
               device: &DeviceReport| {
        let state = (&mut **store, &mut **backbone, &mut **last_head);
        match device.resolved {
            Resolved::Cpu => {
                classify_on::<Autodiff<Flex>>(job, req, &Default::default(), device, state)
            }
            #[cfg(feature = "cuda")]
            Resolved::Cuda => classify_on::<Autodiff<burn::backend::Cuda>>(
                job,
                req,
                &Default::default(),
                device,
                state,
            ),
            #[cfg(feature = "wgpu")]
            Resolved::Wgpu => classify_on::<Autodiff<burn::backend::Wgpu>>(
                job,
                req,
                &Default::default(),
                device,
                state,
            ),
        }
    };
    let result = on_device_else_cpu(job, &device, &mut (store, backbone, last_head), run);
    job.finish(result.map(Some), |generation, result| {
        JobEvent::Classified { generation, result }
    });
}

fn classify_on<B: UNetAutodiff>(
    job: &JobContext<'_>,
    req: &ClassifyRequest,
    device_handle: &B::Device,
    device: &DeviceReport,
    (store, loaded, last_head): (&mut FeatureStore, &mut LoadedBackbone, &mut LastHead),
) -> anyhow::Result<Classified> {
    let cancel = job.cancel;
    let t0 = std::time::Instant::now();
    let s = &req.settings;
    let (model, info, backbone_kept) =
        loaded.get::<B::InnerBackend>(&s.backbone, device.resolved.name(), device_handle)?;
    let info = info.clone();
    let settings = s.classification_settings(&info.config)?;
    let (block, stride) = (settings.stage_b.block, settings.stage_b.stride);
    let backbone_id = format!(
        "{} {:?} {:?} on {}",
        info.name,
        info.checkpoint_sha256,
        info.adapter,
        device.resolved.name()
    );
    // A live update continues from the last head on the same features.
    let head_key = format!(
        "{backbone_id} t {} block {block} stride {stride} seed {} {:?} {:?} {} classes",
        s.t,
        s.seed,
        s.modalities,
        s.mlp_hidden,
        req.scene.train_labels.as_ref().map_or(0, |l| l.max_class())
    );
    let mut settings = settings;
    let single = req.subsets.is_empty() && req.timesteps.is_empty();
    // What a Classify runs on these labels, kept for a live update's record.
    let classify_settings = settings.clone();
    let mut continued = false;
    if let (true, true, Some(weights)) = (req.live, single, last_head.for_key(&head_key)) {
        continued = true;
        settings.stage_b.head.warm_start = Some(weights);
        settings.stage_b.head.max_epochs = LIVE_EPOCHS;
        // As a rule its standardisation and first layer stay: only the
        // layers after it train, and the scene's first-layer outputs kept
        // in the store serve the map.
        settings.stage_b.head.keep_first_layer = s.live_keeps_first_layer;
        // The held-out comparison needs heads that never saw the held-out
        // labels, trained afresh: left to Classify.
        settings.held_out_check = false;
    }
    // The label curve on a Classify of the MLP (not on a live update, a
    // sweep or the ablation, whose runs it would multiply).
    if single && !req.live && s.classifier == ClassifierChoice::Mlp && !s.label_curve.is_empty() {
        let spec = LabelCurveSpec::new(s.label_curve.clone(), DEFAULT_REPEATS, s.seed)
            .map_err(|e| anyhow::anyhow!("label curve: {e}"))?;
        settings.stage_b.label_curve = Some(spec);
    }
    // One run, or one per modality subset (ablation) or per timestep
    // (sweep).
    let runs: Vec<(Option<Vec<Modality>>, Option<i64>)> = if !req.subsets.is_empty() {
        req.subsets
            .iter()
            .map(|m| (Some(m.clone()), None))
            .collect()
    } else if !req.timesteps.is_empty() {
        req.timesteps.iter().map(|&t| (None, Some(t))).collect()
    } else {
        vec![(None, None)]
    };
    let n_runs = runs.len();
    let mut ablation = Vec::new();
    let mut sweep = Vec::new();
    // Each run's outcome with the settings it ran with.
    let mut outcomes = Vec::new();
    for (i, (subset, t)) in runs.into_iter().enumerate() {
        let mut settings = settings.clone();
        let mut prefix = String::new();
        if let Some(mods) = &subset {
            settings.modalities = mods.clone();
            settings.classifier = ClassifierChoice::Mlp;
            settings.baseline = false;
            let names: Vec<&str> = mods.iter().map(|m| m.name()).collect();
            prefix = format!("{}/{n_runs} {}: ", i + 1, names.join("+"));
        }
        if let Some(t) = t {
            anyhow::ensure!(
                (0..1000).contains(&t),
                "t {t}: the timestep must be in 0..999"
            );
            settings.stage_b.t = t;
            settings.classifier = ClassifierChoice::Mlp;
            settings.baseline = false;
            prefix = format!("{}/{n_runs} t = {t}: ", i + 1);
        }
        let mut progress = |p: &crate::pipeline::stage_b::StageBProgress| {
            if let (Some(class_map), 1) = (&p.preview, n_runs) {
                job.send(JobEvent::Previewed {
                    generation: job.generation,
                    preview: MapPreview {
                        labels_revision: req.labels_revision,
                        class_map: class_map.clone(),
                    },
                });
            }
            job.progress(
                format!("{prefix}{}", p.describe()),
                (i as f32 + p.fraction) / n_runs as f32,
            );
        };
        let outcome = classify_scene_stored::<B>(
            (model, &backbone_id),
            &req.scene,
            &req.renderings,
            &settings,
            device_handle,
            cancel,
            &mut progress,
            store,
        )?;
        let mlp = outcome.mlp.as_ref().map(|(r, _)| r);
        if let Some(mods) = subset {
            ablation.push(AblationRow {
                modalities: mods,
                metrics: mlp.and_then(|r| r.metrics.clone()),
            });
        }
        if let (Some(t), Some(r)) = (t, mlp) {
            sweep.push(SweepPoint {
                t,
                metrics: r.metrics.clone(),
                class_map: r.class_map.clone(),
            });
        }
        outcomes.push((outcome, settings));
    }
    // The map shown: the best timestep of a sweep, else the last run.
    let keep = best_of(&sweep)
        .and_then(|b| sweep.iter().position(|p| p.t == b.t))
        .unwrap_or(outcomes.len().saturating_sub(1));
    let (outcome, kept_settings) = outcomes
        .into_iter()
        .nth(keep)
        .ok_or_else(|| anyhow::anyhow!("nothing to run"))?;
    let mlp_out = outcome.mlp.as_ref().map(|(_, o)| o);
    if let (true, Some(head)) = (single, mlp_out.and_then(|o| o.host_head.clone())) {
        last_head.trained = Some((head_key, head));
    }
    let warm_started = mlp_out.is_some_and(|o| o.head.warm_started);
    let classes = crate::scene::named_classes(outcome.classes, &[]);
    let areas = match req.scene.grid() {
        Some(grid) => outcome
            .results()
            .into_iter()
            .map(|(c, r)| {
                (
                    c,
                    crate::metrics::areas::class_areas(&r.class_map, grid, &classes),
                )
            })
            .collect(),
        None => Vec::new(),
    };
    let model = if !single {
        Err("a sweep or an ablation keeps no model: classify once to save one".to_string())
    } else {
        ModelBundle::from_run(&TrainedRun {
            spec: &s.backbone,
            info: &info,
            scene: &req.scene,
            renderings: &req.renderings,
            render_settings: RenderSettings::default(),
            stage_b: &settings.stage_b,
            outcome: &outcome,
            classes: classes.clone(),
            trained_on: serde_json::json!({ "labels_revision": req.labels_revision }),
        })
        .map(Arc::new)
        .map_err(|e| e.to_string())
    };
    let made_from = Arc::new(made_from(
        req,
        info.clone(),
        device,
        kept_settings,
        continued.then_some(classify_settings),
    ));
    Ok(Classified {
        made_from,
        model,
        warm_started,
        device: device.why.clone(),
        backbone_kept,
        areas,
        outcome,
        ablation,
        sweep,
        backbone: info.description,
        labels_revision: req.labels_revision,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// What a classification of `req` was made from, for its run.json.
fn made_from(
    req: &ClassifyRequest,
    info: BackboneInfo,
    device: &DeviceReport,
    settings: ClassificationSettings,
    classify_settings: Option<ClassificationSettings>,
) -> MadeFrom {
    MadeFrom {
        origin: Origin::App {
            live: req.live,
            labels_revision: req.labels_revision,
            labels: Box::new(LabelsUsed {
                train: req.scene.train_labels.clone(),
                test: req.scene.test_labels.clone(),
            }),
            read: how_read(&req.scene),
        },
        spec: req.settings.backbone.clone(),
        info,
        settings,
        classify_settings,
        prgb_bands: req.renderings.prgb.as_ref().map(|(_, b)| b.bands),
        backend: match device.resolved {
            Resolved::Cpu => CPU_BACKEND.to_string(),
            #[allow(unreachable_patterns)] // with a GPU feature
            _ => format!("{}: {}", device.resolved.name(), device.why),
        },
    }
}
