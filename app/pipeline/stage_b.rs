//! Stage B end to end on a scene: features of the frozen backbone for the
//! patches that hold training labels (gathered per labelled pixel, never the
//! whole feature map), the MLP head, then features again batch by batch for
//! every patch, merged into a class map. Memory stays at one batch of
//! features plus the labelled vectors.

use std::sync::Arc;
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::softmax;
use rayon::prelude::*;
use serde::Serialize;

use super::classifier::{
    HeadData, HeadTrainConfig, HeadTrainReport, HostHead, MlpConfig, PatchInput, TrainedHead,
    ValidationSplit, train_head, validation_split,
};
use super::feature_store::{FeatureKey, FeatureStore, images_fingerprint};
use super::features::{FeatureExtractor, FeatureSpec, patch_values};
use super::held_out::HeldOutSplit;
use super::label_curve::{CurveSubset, LabelCurveSpec, nested_subsets};
use super::modality::Modality;
use super::patch_grid::PatchGrid;
use super::predict::{MergedPrediction, ProbabilityCanvas};
use crate::base::CancelFlag;
use crate::model::kernel_cache;
use crate::model::lean_ops::{UNetAutodiff, UNetOps};
use crate::model::tensor_read::{TensorReadError, f32_values};
use crate::model::unet::UNet;
use crate::products::Rgb8Image;
use crate::scene::LabelImage;

/// Settings of a Stage B run.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct StageBConfig {
    pub t: i64,
    pub block: usize,
    pub mlp: MlpConfig,
    pub head: HeadTrainConfig,
    /// Patch side and stride (64 and 32 in the method; smaller for tiny models).
    pub patch: usize,
    pub stride: usize,
    /// Patches per feature batch.
    pub batch_patches: usize,
    /// Seed of the one noise tensor shared by all patches and modalities.
    pub noise_seed: u64,
    pub validation_fraction: f64,
    /// Side of the validation blocks, in pixels.
    pub validation_block: usize,
    /// Host memory the features of the labelled patches may keep (f32) so
    /// that the prediction pass does not compute them again; 0 = recompute.
    pub feature_cache_bytes: usize,
    /// Also train the head on nested subsets of the training labels and
    /// map the scene with each (the label-efficiency curve).
    pub label_curve: Option<LabelCurveSpec>,
}

/// Patches per feature batch for a patch side: 64 K pixels a batch (16
/// patches of 64 x 64, 64 of 32 x 32), where the CPU forward's products run
/// at their full rate and a batch's features stay small.
pub fn default_batch_patches(patch: usize) -> usize {
    (65_536 / (patch * patch).max(1)).clamp(1, 256)
}

impl Default for StageBConfig {
    fn default() -> Self {
        Self {
            t: 300,
            block: 11,
            mlp: MlpConfig::berlin(),
            head: HeadTrainConfig::default(),
            patch: 64,
            stride: 32,
            batch_patches: 16,
            noise_seed: 0,
            // Early stopping on a held-out part of a few hundred labels cost
            // 1.6 to 5 kappa points on the visible scene (docs/stage_b_head.md):
            // off by default, the head trains on every label.
            validation_fraction: 0.0,
            validation_block: 64,
            feature_cache_bytes: 1 << 30,
            label_curve: None,
        }
    }
}

/// Why Stage B cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StageBError {
    #[error("no training labels: paint or load some labelled pixels first")]
    NoLabels,
    #[error("no modality to take features from")]
    NoModality,
    #[error("cancelled")]
    Cancelled,
    #[error("the renderings are {found:?} pixels, the labels {labels:?}")]
    SizeMismatch {
        found: (usize, usize),
        labels: (usize, usize),
    },
    #[error("{0}")]
    Backbone(String),
    #[error(transparent)]
    TensorRead(#[from] TensorReadError),
}

/// The result and how it was reached.
#[derive(Debug, Clone)]
pub struct StageBOutput {
    pub prediction: MergedPrediction,
    pub classes: usize,
    /// Classes 1..=K with no training pixel (the head can still predict them
    /// only by chance; reported as a warning).
    pub classes_without_training: Vec<u8>,
    pub training_vectors: usize,
    /// Patches whose features were kept from the training pass.
    pub cached_patches: usize,
    /// Patches mapped from the head's first-layer outputs kept in the
    /// store (a live update that kept the first layer).
    pub first_layer_patches: usize,
    pub validation: ValidationSplit,
    pub head: HeadTrainReport,
    pub seconds_features: f64,
    pub seconds_training: f64,
    pub seconds_prediction: f64,
    /// The class (1..=K, 0 = none) of each held-out training pixel from a
    /// head trained without them, when the run asked for it.
    pub held_out_prediction: Option<Vec<u8>>,
    /// The trained head on the host (CPU path): for a later run on the same
    /// features to start from, and for a saved model.
    pub host_head: Option<Arc<HostHead>>,
    /// The label curve's subsets, each with its merged class map.
    pub label_curve: Vec<(CurveSubset, Vec<u8>)>,
    /// Training the label curve's heads and mapping with them (not in
    /// `seconds_training` or `seconds_prediction`).
    pub seconds_label_curve: f64,
}

/// Where a Stage B run is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageBProgress {
    /// [`PHASE_LABELLED`], [`PHASE_TRAINING`] or [`PHASE_SCENE`]; on a GPU's
    /// first use on this machine [`kernel_cache::PHASE_COMPILING`] first.
    pub phase: &'static str,
    pub done: usize,
    pub total: usize,
    /// Seconds left in the whole run (every phase), once one batch of
    /// patches has been through the backbone.
    pub eta_seconds: Option<f64>,
    /// Share of the run's backbone forwards done, 0..1 (never goes back).
    pub fraction: f32,
    /// With [`PHASE_PREVIEW`]: the first class map (1..=K per scene pixel,
    /// row-major), merged from patches that cover the scene once, while
    /// the overlapping patches are still to come.
    #[serde(skip)]
    pub preview: Option<Arc<Vec<u8>>>,
}

impl StageBProgress {
    /// "phase done/total, ETA s"; a GPU's compile phase by its name alone
    /// (it has no count).
    pub fn describe(&self) -> String {
        if self.phase == kernel_cache::PHASE_COMPILING {
            return self.phase.to_string();
        }
        let eta = self
            .eta_seconds
            .map_or(String::new(), |e| format!(", ETA {e:.0} s"));
        format!("{} {}/{}{eta}", self.phase, self.done, self.total)
    }
}

/// Features of the patches that hold training labels.
pub const PHASE_LABELLED: &str = "features of the labelled patches";
/// The head's training.
pub const PHASE_TRAINING: &str = "training the head";
/// Features of every other patch, each mapped as it comes.
pub const PHASE_SCENE: &str = "features of the whole scene";
/// Every patch's features were kept: a first map from the patches that
/// cover the scene once is out, the overlapping patches are being merged.
pub const PHASE_PREVIEW: &str = "first map out, merging the overlapping patches";

/// One ETA for the whole run: the patches still to go through the backbone
/// at the rate measured so far (training the head and reading stored
/// features are fast next to them). On a GPU the first batch compiles and
/// tunes kernels: it counts as done but not in the rate.
struct RunClock {
    forwards_left: usize,
    forwarded: usize,
    /// Patches and seconds of the batches the rate is taken from.
    timed: usize,
    forward_seconds: f64,
    /// The next batch is left out of the rate (a GPU's first).
    skip_next: bool,
}

impl RunClock {
    fn new(forwards_left: usize, on_gpu: bool) -> Self {
        Self {
            forwards_left,
            forwarded: 0,
            timed: 0,
            forward_seconds: 0.0,
            skip_next: on_gpu,
        }
    }

    fn forwarded(&mut self, patches: usize, seconds: f64) {
        self.forwards_left = self.forwards_left.saturating_sub(patches);
        self.forwarded += patches;
        if std::mem::take(&mut self.skip_next) {
            return;
        }
        self.timed += patches;
        self.forward_seconds += seconds;
    }

    fn eta(&self) -> Option<f64> {
        (self.timed > 0)
            .then(|| self.forward_seconds / self.timed as f64 * self.forwards_left as f64)
    }

    fn progress(&self, phase: &'static str, done: usize, total: usize) -> StageBProgress {
        let all = self.forwarded + self.forwards_left;
        StageBProgress {
            phase,
            done,
            total,
            eta_seconds: self.eta(),
            fraction: if all == 0 {
                done as f32 / total.max(1) as f32
            } else {
                self.forwarded as f32 / all as f32
            },
            preview: None,
        }
    }
}

/// A GPU backend's first batch on this machine: announced as its own phase
/// (kernels compile and tune, minutes on a first run), then recorded in the
/// kernel cache so that later runs go straight to the features.
struct FirstUse {
    /// The backend and device, while their first batch is still to come.
    name: Option<String>,
}

impl FirstUse {
    fn of<B: UNetOps>(device: &B::Device) -> Self {
        Self {
            name: kernel_cache::pending_first_use::<B>(device),
        }
    }

    /// The compile phase, at the run's fraction so far (it never goes back).
    fn announce(&self, clock: &RunClock, progress: &mut dyn FnMut(&StageBProgress)) {
        if self.name.is_some() {
            progress(&clock.progress(kernel_cache::PHASE_COMPILING, 0, 1));
        }
    }

    fn done(&mut self) {
        if let Some(name) = self.name.take() {
            kernel_cache::mark_used(&name);
        }
    }
}

/// Runs Stage B: `images` in concatenation order (pRGB | PCA | SAR); the
/// labelled patches' features are kept for the prediction pass within
/// `cfg.feature_cache_bytes`.
pub fn run_stage_b<B: UNetAutodiff>(
    model: &UNet<B::InnerBackend>,
    images: &[(Modality, &Rgb8Image)],
    train_labels: &LabelImage,
    cfg: &StageBConfig,
    device: &B::Device,
) -> Result<StageBOutput, StageBError> {
    let run = StageBRun {
        model,
        backbone: "",
        images,
        train_labels,
        cfg,
        held_out: None,
    };
    let mut store = FeatureStore::for_one_run(cfg.feature_cache_bytes);
    run_stage_b_stored::<B>(&run, device, &CancelFlag::new(), &mut |_| {}, &mut store)
}

/// The inputs of one Stage B run.
pub struct StageBRun<'a, B: Backend> {
    pub model: &'a UNet<B>,
    /// Names the backbone (weights and adapter) in the feature store's key.
    pub backbone: &'a str,
    /// In concatenation order (pRGB | PCA | SAR).
    pub images: &'a [(Modality, &'a Rgb8Image)],
    pub train_labels: &'a LabelImage,
    pub cfg: &'a StageBConfig,
    /// Also train a head without these training labels and predict them
    /// (the run's comparison of classifiers).
    pub held_out: Option<&'a HeldOutSplit>,
}

/// Stage B reporting progress after every batch, stopping at the next batch
/// once `cancel` is set, taking features from `store` where it has them and
/// keeping there those it computes (all of them, or the labelled patches', as
/// the store says).
pub fn run_stage_b_stored<B: UNetAutodiff>(
    run: &StageBRun<'_, B::InnerBackend>,
    device: &B::Device,
    cancel: &CancelFlag,
    progress: &mut dyn FnMut(&StageBProgress),
    store: &mut FeatureStore,
) -> Result<StageBOutput, StageBError> {
    let StageBRun {
        model,
        backbone,
        images,
        train_labels,
        cfg,
        held_out,
    } = *run;
    let checked = checked_inputs(images, train_labels)?;
    let (h, w, classes) = (checked.height, checked.width, checked.classes);
    let grid = PatchGrid::new(h, w, cfg.patch, cfg.stride);
    let p = grid.patch;
    let noise_values = super::noised::stage_b_noise(cfg.noise_seed, p);
    let spec = FeatureSpec {
        t: cfg.t,
        block: cfg.block,
        size: p,
    };
    // The host copy of the weights waits for the first patch that needs
    // the backbone: after a stroke every patch may come from the store.
    let extractor = FeatureExtractor::deferred(model, spec, noise_values, device);
    let features = |ids: &[usize]| -> Result<Tensor<B::InnerBackend, 4>, StageBError> {
        let inputs = images
            .iter()
            .map(|(m, img)| (*m, patch_values(&grid, img, ids)))
            .collect();
        extractor
            .features(inputs)
            .map_err(|e| StageBError::Backbone(e.to_string()))
    };

    // Pass 1: labelled pixels of the patches that hold any.
    let t0 = Instant::now();
    let labelled_patches = labelled_patches(&grid, train_labels);
    store.prepare(feature_key(backbone, cfg, &grid, images), grid.len());
    let on_gpu = !<B::InnerBackend as UNetOps>::ON_HOST;
    let mut forward = Forward {
        features: &features,
        clock: RunClock::new(
            (0..grid.len()).filter(|&n| !store.contains(n)).count(),
            on_gpu,
        ),
        first_use: FirstUse::of::<B::InnerBackend>(device),
    };
    let (gathered, dim) = labelled_pass(
        &labelled_patches,
        cfg.batch_patches,
        (&grid, train_labels),
        store,
        &mut forward,
        (cancel, progress),
    )?;
    let seconds_features = t0.elapsed().as_secs_f64();
    if cancel.is_cancelled() {
        return Err(StageBError::Cancelled);
    }

    let t1 = Instant::now();
    progress(&forward.clock.progress(PHASE_TRAINING, 0, 1));
    let labelled = LabelledVectors {
        features: &gathered.vectors,
        dim,
        labels: &gathered.labels,
        pixels: &gathered.pixels,
        width: w,
    };
    let TrainedHeads {
        head,
        report: head_report,
        validation,
        held_out_prediction,
    } = train_heads::<B>(&labelled, classes, cfg, held_out, device)?;
    let seconds_training = t1.elapsed().as_secs_f64();

    // The label curve's heads, side by side, on subsets of the same vectors.
    let t_curve = Instant::now();
    let (curve_subsets, curve_heads) =
        train_curve_heads::<B>(&labelled, train_labels, classes, cfg, device)?;
    let seconds_curve_training = t_curve.elapsed().as_secs_f64();

    // Pass 2: every patch, batch by batch, into the probability canvas.
    let t2 = Instant::now();
    let on_host = <B::InnerBackend as UNetOps>::ON_HOST;
    let host_head = on_host.then(|| head.on_host()).transpose()?;
    // The head's first-layer outputs (kept by an earlier run with the same
    // first layer) stand in for a patch's features, except for the label
    // curve's heads, which need the features.
    let first_id = host_head.as_ref().map(HostHead::first_layer_id);
    let (kept, fresh, preview_len) =
        prediction_order(store, &grid, first_id, curve_heads.is_empty());
    // Room the store keeps free for the first-layer outputs of every patch
    // (narrower than the features: a live update then needs features only
    // for the labelled patches).
    let first_layer_bytes = host_head
        .as_ref()
        .filter(|h| store.keeps_all() && h.first_layer_width() < dim)
        .map_or(0, |h| 4 * h.first_layer_width() * p * p);
    // Exact now: labelled patches that did not fit the store go again.
    forward.clock.forwards_left = fresh.len();
    let heads = SceneHeads {
        head: &head,
        host_head: host_head.as_ref(),
        first_id,
        first_layer_bytes,
        curve_heads: &curve_heads,
    };
    let mapped = prediction_pass::<B>(
        (&kept, &fresh, preview_len),
        &heads,
        (grid, dim, classes, cfg.batch_patches),
        store,
        &mut forward,
        device,
        (cancel, progress),
    )?;
    let seconds_curve_mapping = mapped.seconds_curve_mapping;
    let prediction = mapped.canvas.finish();
    let label_curve = curve_subsets
        .into_iter()
        .zip(&mapped.curve_canvases)
        .map(|(subset, canvas)| (subset, canvas.finish().class_map))
        .collect();
    Ok(StageBOutput {
        prediction,
        classes,
        classes_without_training: checked.without_training,
        training_vectors: gathered.labels.len(),
        cached_patches: kept.len(),
        first_layer_patches: mapped.first_layer_patches,
        validation,
        head: head_report,
        seconds_features,
        seconds_training,
        seconds_prediction: t2.elapsed().as_secs_f64() - seconds_curve_mapping,
        held_out_prediction,
        host_head: host_head.map(Arc::new),
        label_curve,
        seconds_label_curve: seconds_curve_training + seconds_curve_mapping,
    })
}

/// The scene's size, its classes and those without a training pixel.
struct CheckedInputs {
    height: usize,
    width: usize,
    classes: usize,
    without_training: Vec<u8>,
}

/// [`CheckedInputs`], once the renderings and the labels are checked to fit.
fn checked_inputs(
    images: &[(Modality, &Rgb8Image)],
    train_labels: &LabelImage,
) -> Result<CheckedInputs, StageBError> {
    let (h, w) = images
        .first()
        .map(|(_, i)| (i.height, i.width))
        .ok_or(StageBError::NoModality)?;
    if (h, w) != (train_labels.grid.height, train_labels.grid.width) {
        return Err(StageBError::SizeMismatch {
            found: (h, w),
            labels: (train_labels.grid.height, train_labels.grid.width),
        });
    }
    let classes = train_labels.max_class() as usize;
    if classes == 0 {
        return Err(StageBError::NoLabels);
    }
    let hist = train_labels.histogram();
    let without = (1..=classes)
        .filter(|&k| hist[k] == 0)
        .map(|k| k as u8)
        .collect();
    Ok(CheckedInputs {
        height: h,
        width: w,
        classes,
        without_training: without,
    })
}

/// What the store's features are of: backbone, timestep, block, grid,
/// noise, modalities and images.
fn feature_key(
    backbone: &str,
    cfg: &StageBConfig,
    grid: &PatchGrid,
    images: &[(Modality, &Rgb8Image)],
) -> FeatureKey {
    let p = grid.patch;
    FeatureKey {
        backbone: backbone.to_string(),
        t: cfg.t,
        block: cfg.block,
        patch: p,
        stride: grid.stride,
        noise_seed: cfg.noise_seed,
        modalities: images.iter().map(|(m, _)| *m).collect(),
        images: images_fingerprint(images),
    }
}

/// The run's head, how its training went, and the held-out comparison's
/// prediction of the held-out labels.
struct TrainedHeads<B: Backend> {
    head: TrainedHead<B>,
    report: HeadTrainReport,
    validation: ValidationSplit,
    held_out_prediction: Option<Vec<u8>>,
}

/// The head on the labelled vectors (a validation part held back when the
/// settings ask for early stopping) and, side by side, the held-out
/// comparison's head and its prediction (each on one core on the CPU path).
fn train_heads<B: UNetAutodiff>(
    labelled: &LabelledVectors<'_>,
    classes: usize,
    cfg: &StageBConfig,
    held_out: Option<&HeldOutSplit>,
    device: &B::Device,
) -> Result<TrainedHeads<B::InnerBackend>, StageBError> {
    let (validation_mask, validation) = validation_split(
        labelled.pixels,
        labelled.labels,
        cfg.validation_fraction,
        cfg.validation_block,
        cfg.head.seed,
    );
    let data = HeadData {
        features: labelled.features,
        dim: labelled.dim,
        labels: labelled.labels,
        classes,
        validation: &validation_mask,
    };
    let (trained, held_out_prediction) = rayon::join(
        || train_head::<B>(&data, &cfg.mlp, &cfg.head, device),
        || {
            held_out
                .map(|split| predict_held_out::<B>(labelled, split, classes, cfg, device))
                .transpose()
        },
    );
    let (head, report) = trained?;
    Ok(TrainedHeads {
        head,
        report,
        validation,
        held_out_prediction: held_out_prediction?,
    })
}

/// The label curve's subsets of the training labels and a head trained on
/// each, side by side (none without a curve).
fn train_curve_heads<B: UNetAutodiff>(
    labelled: &LabelledVectors<'_>,
    train_labels: &LabelImage,
    classes: usize,
    cfg: &StageBConfig,
    device: &B::Device,
) -> Result<(Vec<CurveSubset>, Vec<HostHead>), StageBError> {
    let subsets = cfg
        .label_curve
        .as_ref()
        .map(|spec| nested_subsets(train_labels, spec))
        .unwrap_or_default();
    let heads = subsets
        .par_iter()
        .map(|subset| train_subset_head::<B>(labelled, subset, classes, cfg, device))
        .collect::<Result<_, _>>()?;
    Ok((subsets, heads))
}

/// The heads that map the scene in pass 2, and where their inputs lie.
struct SceneHeads<'a, B: Backend> {
    head: &'a TrainedHead<B>,
    /// The head on the host (CPU backends): it reads stored features and
    /// first-layer outputs.
    host_head: Option<&'a HostHead>,
    first_id: Option<u64>,
    /// Room the store keeps free for each patch's first-layer outputs.
    first_layer_bytes: usize,
    curve_heads: &'a [HostHead],
}

/// What pass 2 made: the scene's probabilities, each curve head's, how
/// many patches came from first-layer outputs, the curve's share of the
/// time.
struct PassTwo {
    canvas: ProbabilityCanvas,
    curve_canvases: Vec<ProbabilityCanvas>,
    first_layer_patches: usize,
    seconds_curve_mapping: f64,
}

/// Pass 2: every patch, batch by batch, into the probability canvas: the
/// `kept` patches (in the store) first, then the `fresh` ones through the
/// backbone; with `preview_len`, the map of that many first patches is sent
/// as a preview.
fn prediction_pass<B: UNetAutodiff>(
    (kept, fresh, preview_len): (&[usize], &[usize], Option<usize>),
    heads: &SceneHeads<'_, B::InnerBackend>,
    (grid, dim, classes, batch_patches): (PatchGrid, usize, usize, usize),
    store: &mut FeatureStore,
    forward: &mut Forward<'_, B::InnerBackend>,
    device: &B::Device,
    (cancel, progress): (&CancelFlag, &mut dyn FnMut(&StageBProgress)),
) -> Result<PassTwo, StageBError> {
    let p = grid.patch;
    let SceneHeads {
        head,
        host_head,
        first_id,
        first_layer_bytes,
        curve_heads,
    } = *heads;
    let mut canvas = ProbabilityCanvas::new(grid, classes);
    let mut curve_canvases: Vec<ProbabilityCanvas> = curve_heads
        .iter()
        .map(|_| ProbabilityCanvas::new(grid, classes))
        .collect();
    // The curve's share of the prediction pass (its heads on each batch).
    let mut seconds_curve_mapping = 0.0;
    let mut preview = preview_len.map(|n| (n, ProbabilityCanvas::new(grid, classes)));
    let batches = kept
        .chunks(batch_patches.max(1))
        .map(|ids| (ids, true))
        .chain(fresh.chunks(batch_patches.max(1)).map(|ids| (ids, false)));
    let mut predicted = 0;
    let mut first_layer_patches = 0;
    for (ids, from_cache) in batches {
        if cancel.is_cancelled() {
            return Err(StageBError::Cancelled);
        }
        let (batch, d) = if from_cache {
            (BatchFeatures::Stored, dim)
        } else {
            let f = forward.run(ids, progress)?;
            let d = f.dims()[1];
            let reserve = |store: &FeatureStore| {
                let missing = grid.len() - first_id.map_or(0, |id| store.first_layer_count(id));
                missing * first_layer_bytes
            };
            let batch = fresh_batch(f, ids, p, host_head.is_some(), store, reserve)?;
            (batch, d)
        };
        if !curve_heads.is_empty() {
            let t_curve = Instant::now();
            let shape = (d, p, classes);
            map_curve_batch(curve_heads, &mut curve_canvases, &batch, ids, shape, store)?;
            seconds_curve_mapping += t_curve.elapsed().as_secs_f64();
        }
        let host = match (host_head.zip(first_id), batch) {
            (Some((h, first_id)), batch @ (BatchFeatures::Stored | BatchFeatures::Host(_))) => {
                let keep_first = first_layer_bytes > 0;
                let (probs, from_first) =
                    host_head_batch(h, first_id, &batch, ids, (d, p), keep_first, store);
                first_layer_patches += from_first;
                probs
            }
            (_, batch) => device_head_batch::<B>(head, batch, ids, (d, p, classes), store, device)?,
        };
        let per = classes * p * p;
        for (b, &n) in ids.iter().enumerate() {
            let probabilities = &host[b * per..(b + 1) * per];
            canvas.add_patch(n, probabilities);
            if let Some((left, first)) = &mut preview
                && *left > 0
            {
                first.add_patch(n, probabilities);
                *left -= 1;
            }
        }
        predicted += ids.len();
        if let Some((0, first)) = &preview {
            let mut news = forward.clock.progress(PHASE_PREVIEW, predicted, grid.len());
            news.preview = Some(Arc::new(first.finish().class_map));
            progress(&news);
            preview = None;
        }
        progress(&forward.clock.progress(PHASE_SCENE, predicted, grid.len()));
    }
    Ok(PassTwo {
        canvas,
        curve_canvases,
        first_layer_patches,
        seconds_curve_mapping,
    })
}

/// The features (N, D, P, P) of a batch of patches, by their ids.
type PatchFeatures<'a, B> = dyn Fn(&[usize]) -> Result<Tensor<B, 4>, StageBError> + 'a;

/// The backbone's forward on a batch of patches, with the run's clock (its
/// ETA) and the notice of a device's first use (its kernels compiling).
struct Forward<'a, B: Backend> {
    features: &'a PatchFeatures<'a, B>,
    clock: RunClock,
    first_use: FirstUse,
}

impl<B: Backend> Forward<'_, B> {
    /// The features (N, D, P, P) of patches `ids`.
    fn run(
        &mut self,
        ids: &[usize],
        progress: &mut dyn FnMut(&StageBProgress),
    ) -> Result<Tensor<B, 4>, StageBError> {
        self.first_use.announce(&self.clock, progress);
        let tf = Instant::now();
        let f = (self.features)(ids)?;
        self.clock.forwarded(ids.len(), tf.elapsed().as_secs_f64());
        self.first_use.done();
        Ok(f)
    }
}

/// Pass 1: the features of the patches that hold labels, batch by batch
/// (from the store, or computed and kept there while they fit), and the
/// vectors of their labelled pixels; with the features' width.
fn labelled_pass<B: Backend>(
    labelled_patches: &[usize],
    batch_patches: usize,
    (grid, train_labels): (&PatchGrid, &LabelImage),
    store: &mut FeatureStore,
    forward: &mut Forward<'_, B>,
    (cancel, progress): (&CancelFlag, &mut dyn FnMut(&StageBProgress)),
) -> Result<(Gathered, usize), StageBError> {
    let p = grid.patch;
    let mut gathered = Gathered::default();
    let mut dim = store.dim();
    let mut done = 0;
    for ids in labelled_patches.chunks(batch_patches.max(1)) {
        if cancel.is_cancelled() {
            return Err(StageBError::Cancelled);
        }
        let fresh: Vec<usize> = ids
            .iter()
            .copied()
            .filter(|&n| !store.contains(n))
            .collect();
        let mut fresh_host = Vec::new();
        if !fresh.is_empty() {
            let f = forward.run(&fresh, progress)?;
            dim = f.dims()[1];
            fresh_host = f32_values(f, "the labelled patches' features")?;
        }
        let d = dim;
        let per = d * p * p;
        let mut next_fresh = 0;
        for &n in ids {
            // The patch's features where they lie: in the store, or fresh
            // (and kept in the store when they fit).
            let patch: &[f32] = match store.get(n) {
                Some(stored) => stored,
                None => {
                    let values = &fresh_host[next_fresh * per..(next_fresh + 1) * per];
                    next_fresh += 1;
                    store.put(n, d, values);
                    values
                }
            };
            gathered.push_patch(grid, n, patch, d, train_labels);
        }
        done += ids.len();
        progress(
            &forward
                .clock
                .progress(PHASE_LABELLED, done, labelled_patches.len()),
        );
    }
    Ok((gathered, dim))
}

/// A computed batch's features (N, D, P, P) as the head takes them: read
/// back for the host head (and kept in a store that keeps every patch,
/// leaving `reserve` bytes for the first-layer outputs still to come), else
/// left on the device.
fn fresh_batch<B: Backend>(
    f: Tensor<B, 4>,
    ids: &[usize],
    p: usize,
    host_head: bool,
    store: &mut FeatureStore,
    reserve: impl Fn(&FeatureStore) -> usize,
) -> Result<BatchFeatures<B>, StageBError> {
    if !store.keeps_all() && !host_head {
        return Ok(BatchFeatures::Device(f));
    }
    let d = f.dims()[1];
    let values = f32_values(f.clone(), "the scene's features")?;
    if store.keeps_all() {
        let per = d * p * p;
        for (b, &n) in ids.iter().enumerate() {
            let leave = reserve(store);
            store.put_leaving(n, d, &values[b * per..(b + 1) * per], leave);
        }
    }
    Ok(if host_head {
        BatchFeatures::Host(values)
    } else {
        BatchFeatures::Device(f)
    })
}

/// The patches that hold at least one training label.
fn labelled_patches(grid: &PatchGrid, train_labels: &LabelImage) -> Vec<usize> {
    let (p, w) = (grid.patch, train_labels.grid.width);
    (0..grid.len())
        .filter(|&n| {
            let (r0, c0) = grid.top_left(n);
            (0..p * p).any(|i| {
                grid.scene_pixel(r0 + i / p, c0 + i % p)
                    .is_some_and(|(r, c)| train_labels.data[r * w + c] != 0)
            })
        })
        .collect()
}

/// What pass 1 gathers: one feature vector per (patch, labelled pixel in
/// it), its 0-based class and its scene pixel.
#[derive(Default)]
struct Gathered {
    vectors: Vec<f32>,
    labels: Vec<i64>,
    pixels: Vec<(usize, usize)>,
}

impl Gathered {
    /// The labelled pixels of patch `n`, whose features (D, P, P) are `patch`.
    fn push_patch(
        &mut self,
        grid: &PatchGrid,
        n: usize,
        patch: &[f32],
        d: usize,
        train_labels: &LabelImage,
    ) {
        let (p, w) = (grid.patch, train_labels.grid.width);
        let (r0, c0) = grid.top_left(n);
        for y in 0..p {
            for x in 0..p {
                let Some((r, c)) = grid.scene_pixel(r0 + y, c0 + x) else {
                    continue;
                };
                let label = train_labels.data[r * w + c];
                if label == 0 {
                    continue;
                }
                self.vectors
                    .extend((0..d).map(|k| patch[(k * p + y) * p + x]));
                self.labels.push(i64::from(label) - 1);
                self.pixels.push((r, c));
            }
        }
    }
}

/// Pass 2's order: the patches whose features (or, with no label curve,
/// the head's first-layer outputs) the store has, then those to compute;
/// when every patch is in the store, the patches that cover the scene once
/// go first, and their map is sent out as a preview (of that many patches)
/// before the overlapping patches are merged in. Another head's first-layer
/// outputs are dropped from the store: they are of no more use.
fn prediction_order(
    store: &mut FeatureStore,
    grid: &PatchGrid,
    first_id: Option<u64>,
    no_curve: bool,
) -> (Vec<usize>, Vec<usize>, Option<usize>) {
    if let Some(id) = first_id {
        store.retain_first_layer(id);
    }
    let mapped_from_store = |store: &FeatureStore, n: usize| {
        store.contains(n)
            || (no_curve && first_id.is_some_and(|id| store.first_layer(id, n).is_some()))
    };
    let (mut kept, fresh): (Vec<usize>, Vec<usize>) =
        (0..grid.len()).partition(|&n| mapped_from_store(store, n));
    let mut preview_len = None;
    if fresh.is_empty() {
        let first = grid.covering_subset();
        if first.len() < kept.len() {
            kept = covering_first(&first, kept, grid.len());
            preview_len = Some(first.len());
        }
    }
    (kept, fresh, preview_len)
}

/// `kept` with the patches of `first` (which cover the scene once) first.
fn covering_first(first: &[usize], kept: Vec<usize>, patches: usize) -> Vec<usize> {
    let mut in_first = vec![false; patches];
    for &n in first {
        in_first[n] = true;
    }
    first
        .iter()
        .copied()
        .chain(kept.into_iter().filter(|&n| !in_first[n]))
        .collect()
}

/// The label curve's heads on one prediction batch, each into its canvas;
/// `shape` is (D, P, K).
fn map_curve_batch<B: Backend>(
    curve_heads: &[HostHead],
    curve_canvases: &mut [ProbabilityCanvas],
    batch: &BatchFeatures<B>,
    ids: &[usize],
    (d, p, classes): (usize, usize, usize),
    store: &FeatureStore,
) -> Result<(), StageBError> {
    let read_back;
    let values: Option<&Vec<f32>> = match batch {
        BatchFeatures::Stored => None,
        BatchFeatures::Host(values) => Some(values),
        BatchFeatures::Device(f) => {
            read_back = f32_values(f.clone(), "the scene's features")?;
            Some(&read_back)
        }
    };
    let stored: Vec<&[f32]> = if values.is_none() {
        ids.iter().filter_map(|&n| store.get(n)).collect()
    } else {
        Vec::new()
    };
    for (h, canvas) in curve_heads.iter().zip(curve_canvases) {
        let probs = match values {
            Some(values) => h.patch_probabilities(values, d, p * p),
            None => h.probabilities_of(&stored, p * p),
        };
        let per = classes * p * p;
        for (b, &n) in ids.iter().enumerate() {
            canvas.add_patch(n, &probs[b * per..(b + 1) * per]);
        }
    }
    Ok(())
}

/// One batch's class probabilities through the host head: each patch from
/// the head's kept first-layer outputs, else from its features (whose
/// first-layer outputs are kept where the store keeps everything and they
/// are narrower: `keep_first`). Returns the probabilities and how many
/// patches came from first-layer outputs.
fn host_head_batch<B: Backend>(
    h: &HostHead,
    first_id: u64,
    batch: &BatchFeatures<B>,
    ids: &[usize],
    (d, p): (usize, usize),
    keep_first: bool,
    store: &mut FeatureStore,
) -> (Vec<f32>, usize) {
    let (probs, firsts, from_first) = {
        let inputs: Vec<PatchInput<'_>> = match batch {
            BatchFeatures::Host(values) => values
                .chunks_exact((d * p * p).max(1))
                .map(PatchInput::Features)
                .collect(),
            _ => ids
                .iter()
                .filter_map(|&n| {
                    store
                        .first_layer(first_id, n)
                        .map(PatchInput::FirstLayer)
                        .or_else(|| store.get(n).map(PatchInput::Features))
                })
                .collect(),
        };
        let from_first = inputs
            .iter()
            .filter(|i| matches!(i, PatchInput::FirstLayer(_)))
            .count();
        let (probs, firsts) = h.probabilities_of_inputs(&inputs, p * p, keep_first);
        (probs, firsts, from_first)
    };
    for (&n, first) in ids.iter().zip(firsts) {
        if let Some(first) = first {
            store.put_first_layer(first_id, n, first);
        }
    }
    (probs, from_first)
}

/// One batch's class probabilities through burn's head on the device;
/// `shape` is (D, P, K).
fn device_head_batch<B: UNetAutodiff>(
    head: &TrainedHead<B::InnerBackend>,
    batch: BatchFeatures<B::InnerBackend>,
    ids: &[usize],
    (d, p, classes): (usize, usize, usize),
    store: &FeatureStore,
    device: &B::Device,
) -> Result<Vec<f32>, StageBError> {
    let bs = ids.len();
    let upload = |values| {
        Tensor::<B::InnerBackend, 4>::from_data(TensorData::new(values, [bs, d, p, p]), device)
    };
    let f = match batch {
        BatchFeatures::Device(f) => f,
        BatchFeatures::Host(values) => upload(values),
        BatchFeatures::Stored => {
            let mut values = Vec::with_capacity(bs * d * p * p);
            for &n in ids {
                store.read_into(n, &mut values);
            }
            upload(values)
        }
    };
    let rows = f.permute([0, 2, 3, 1]).reshape([bs * p * p, d]);
    let probs = softmax(head.forward(rows), 1)
        .reshape([bs, p, p, classes])
        .permute([0, 3, 1, 2]);
    Ok(f32_values(probs, "the class probabilities")?)
}

/// One prediction batch's features (N, D, P, P): in the feature store (the
/// host head reads them there), on the host (read back for the host head) or
/// as the device tensor burn's head takes.
enum BatchFeatures<B: Backend> {
    Stored,
    Host(Vec<f32>),
    Device(Tensor<B, 4>),
}

/// The labelled vectors of a run: one per (patch, labelled pixel in it).
struct LabelledVectors<'a> {
    features: &'a [f32],
    dim: usize,
    /// 0-based classes.
    labels: &'a [i64],
    /// (row, column) of each vector's pixel.
    pixels: &'a [(usize, usize)],
    width: usize,
}

impl LabelledVectors<'_> {
    /// The feature rows of vectors `idx`, one after another.
    fn features_of(&self, idx: &[usize]) -> Vec<f32> {
        idx.iter()
            .flat_map(|&i| {
                self.features[i * self.dim..(i + 1) * self.dim]
                    .iter()
                    .copied()
            })
            .collect()
    }
}

/// Trains a head on the vectors of the pixels of `subset` as the run's own
/// head is trained on all of them (the same validation split of what it
/// keeps, the same seed), on the host.
fn train_subset_head<B: UNetAutodiff>(
    v: &LabelledVectors<'_>,
    subset: &CurveSubset,
    classes: usize,
    cfg: &StageBConfig,
    device: &B::Device,
) -> Result<HostHead, StageBError> {
    let pixel_of = |i: usize| v.pixels[i].0 * v.width + v.pixels[i].1;
    // The subset's pixels are sorted; the vectors keep the run's order.
    let kept: Vec<usize> = (0..v.labels.len())
        .filter(|&i| subset.pixels.binary_search(&pixel_of(i)).is_ok())
        .collect();
    Ok(train_fresh_head::<B>(v, &kept, classes, cfg, device)?.on_host()?)
}

/// Trains a fresh head (never from a warm start: the run's head may have
/// seen labels this one must not) on the vectors `idx`, with the run's
/// validation split of them and its seed.
fn train_fresh_head<B: UNetAutodiff>(
    v: &LabelledVectors<'_>,
    idx: &[usize],
    classes: usize,
    cfg: &StageBConfig,
    device: &B::Device,
) -> Result<TrainedHead<B::InnerBackend>, StageBError> {
    let features = v.features_of(idx);
    let labels: Vec<i64> = idx.iter().map(|&i| v.labels[i]).collect();
    let pixels: Vec<(usize, usize)> = idx.iter().map(|&i| v.pixels[i]).collect();
    let (validation, _) = validation_split(
        &pixels,
        &labels,
        cfg.validation_fraction,
        cfg.validation_block,
        cfg.head.seed,
    );
    let data = HeadData {
        features: &features,
        dim: v.dim,
        labels: &labels,
        classes,
        validation: &validation,
    };
    let fresh = HeadTrainConfig {
        warm_start: None,
        ..cfg.head.clone()
    };
    Ok(train_head::<B>(&data, &cfg.mlp, &fresh, device)?.0)
}

/// Trains a head on the vectors of pixels outside `split` (early stopping
/// as configured, on a part of those) and predicts the held-out pixels: the
/// class of the mean probability over each pixel's vectors (a pixel lies in
/// several patches), 0 for a pixel without any.
fn predict_held_out<B: UNetAutodiff>(
    v: &LabelledVectors<'_>,
    split: &HeldOutSplit,
    classes: usize,
    cfg: &StageBConfig,
    device: &B::Device,
) -> Result<Vec<u8>, StageBError> {
    let pixel_of = |i: usize| v.pixels[i].0 * v.width + v.pixels[i].1;
    let (held, rest): (Vec<usize>, Vec<usize>) =
        (0..v.labels.len()).partition(|&i| split.mask[pixel_of(i)]);
    // Never from a warm start: a head trained on every label has seen the
    // held-out pixels.
    let head = train_fresh_head::<B>(v, &rest, classes, cfg, device)?;
    let position: std::collections::HashMap<usize, usize> = split
        .pixels
        .iter()
        .enumerate()
        .map(|(k, &i)| (i, k))
        .collect();
    let mut sums = vec![0f64; split.pixels.len() * classes];
    if !held.is_empty() {
        let x = Tensor::<B::InnerBackend, 2>::from_data(
            TensorData::new(v.features_of(&held), [held.len(), v.dim]),
            device,
        );
        let probs = f32_values(
            softmax(head.forward(x), 1),
            "the held-out pixels' probabilities",
        )?;
        for (row, &i) in held.iter().enumerate() {
            if let Some(&k) = position.get(&pixel_of(i)) {
                for c in 0..classes {
                    sums[k * classes + c] += f64::from(probs[row * classes + c]);
                }
            }
        }
    }
    Ok(sums
        .chunks(classes.max(1))
        .map(|p| {
            let (best, top) = p
                .iter()
                .enumerate()
                .fold((0, 0.0), |b, (c, &q)| if q > b.1 { (c, q) } else { b });
            if top > 0.0 { best as u8 + 1 } else { 0 }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_eta_and_a_fraction_that_never_goes_back_across_phases() {
        let mut clock = RunClock::new(10, false);
        let start = clock.progress(PHASE_LABELLED, 0, 4);
        assert_eq!(start.eta_seconds, None, "no ETA before a batch is timed");
        assert_eq!(start.fraction, 0.0);
        clock.forwarded(4, 2.0);
        let labelled = clock.progress(PHASE_LABELLED, 4, 4);
        // 6 patches left at 0.5 s each, whatever the phase.
        assert_eq!(labelled.eta_seconds, Some(3.0));
        let training = clock.progress(PHASE_TRAINING, 0, 1);
        assert_eq!(training.eta_seconds, Some(3.0));
        let scene_start = clock.progress(PHASE_SCENE, 0, 10);
        assert!(scene_start.fraction >= labelled.fraction);
        clock.forwarded(6, 3.0);
        let end = clock.progress(PHASE_SCENE, 10, 10);
        assert_eq!((end.fraction, end.eta_seconds), (1.0, Some(0.0)));
    }

    #[test]
    fn a_gpus_first_batch_counts_as_done_but_not_in_the_rate() {
        let mut clock = RunClock::new(10, true);
        // 2 patches in 60 s: kernels compiling.
        clock.forwarded(2, 60.0);
        let first = clock.progress(PHASE_LABELLED, 2, 4);
        assert_eq!(first.eta_seconds, None);
        assert_eq!(first.fraction, 0.2);
        clock.forwarded(2, 1.0);
        // 6 left at 0.5 s each.
        assert_eq!(clock.progress(PHASE_LABELLED, 4, 4).eta_seconds, Some(3.0));
    }
}
