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
    let classes_without_training = (1..=classes)
        .filter(|&k| hist[k] == 0)
        .map(|k| k as u8)
        .collect();
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
    let labelled_patches: Vec<usize> = (0..grid.len())
        .filter(|&n| {
            let (r0, c0) = grid.top_left(n);
            (0..p * p).any(|i| {
                grid.scene_pixel(r0 + i / p, c0 + i % p)
                    .is_some_and(|(r, c)| train_labels.data[r * w + c] != 0)
            })
        })
        .collect();
    store.prepare(
        FeatureKey {
            backbone: backbone.to_string(),
            t: cfg.t,
            block: cfg.block,
            patch: p,
            stride: grid.stride,
            noise_seed: cfg.noise_seed,
            modalities: images.iter().map(|(m, _)| *m).collect(),
            images: images_fingerprint(images),
        },
        grid.len(),
    );
    let on_gpu = !<B::InnerBackend as UNetOps>::ON_HOST;
    let mut clock = RunClock::new(
        (0..grid.len()).filter(|&n| !store.contains(n)).count(),
        on_gpu,
    );
    let mut first_use = FirstUse::of::<B::InnerBackend>(device);
    let mut vectors = Vec::new();
    let mut labels = Vec::new();
    let mut pixels = Vec::new();
    let mut dim = store.dim();
    let mut done = 0;
    for ids in labelled_patches.chunks(cfg.batch_patches.max(1)) {
        if cancel.is_cancelled() {
            return Err(StageBError::Cancelled);
        }
        // Features of this chunk: from the store, or computed (and kept
        // there while they fit).
        let fresh: Vec<usize> = ids
            .iter()
            .copied()
            .filter(|&n| !store.contains(n))
            .collect();
        let mut fresh_host = Vec::new();
        if !fresh.is_empty() {
            first_use.announce(&clock, progress);
            let tf = Instant::now();
            let f = features(&fresh)?;
            clock.forwarded(fresh.len(), tf.elapsed().as_secs_f64());
            first_use.done();
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
                    vectors.extend((0..d).map(|k| patch[(k * p + y) * p + x]));
                    labels.push(i64::from(label) - 1);
                    pixels.push((r, c));
                }
            }
        }
        done += ids.len();
        progress(&clock.progress(PHASE_LABELLED, done, labelled_patches.len()));
    }
    let seconds_features = t0.elapsed().as_secs_f64();
    if cancel.is_cancelled() {
        return Err(StageBError::Cancelled);
    }

    let t1 = Instant::now();
    let (validation_mask, validation) = validation_split(
        &pixels,
        &labels,
        cfg.validation_fraction,
        cfg.validation_block,
        cfg.head.seed,
    );
    let data = HeadData {
        features: &vectors,
        dim,
        labels: &labels,
        classes,
        validation: &validation_mask,
    };
    progress(&clock.progress(PHASE_TRAINING, 0, 1));
    let labelled = LabelledVectors {
        features: &vectors,
        dim,
        labels: &labels,
        pixels: &pixels,
        width: w,
    };
    // The head and the held-out comparison's head train side by side (each
    // on one core on the CPU path).
    let (trained, held_out_prediction) = rayon::join(
        || train_head::<B>(&data, &cfg.mlp, &cfg.head, device),
        || {
            held_out
                .map(|split| predict_held_out::<B>(&labelled, split, classes, cfg, device))
                .transpose()
        },
    );
    let (head, head_report) = trained?;
    let held_out_prediction = held_out_prediction?;
    let seconds_training = t1.elapsed().as_secs_f64();

    // The label curve's heads, side by side, on subsets of the same vectors.
    let t_curve = Instant::now();
    let curve_subsets = cfg
        .label_curve
        .as_ref()
        .map(|spec| nested_subsets(train_labels, spec))
        .unwrap_or_default();
    let curve_heads: Vec<HostHead> = curve_subsets
        .par_iter()
        .map(|subset| train_subset_head::<B>(&labelled, subset, classes, cfg, device))
        .collect::<Result<_, _>>()?;
    let mut curve_canvases: Vec<ProbabilityCanvas> = curve_heads
        .iter()
        .map(|_| ProbabilityCanvas::new(grid, classes))
        .collect();
    let seconds_curve_training = t_curve.elapsed().as_secs_f64();
    // The curve's share of the prediction pass (its heads on each batch).
    let mut seconds_curve_mapping = 0.0;

    // Pass 2: every patch, batch by batch, into the probability canvas.
    let t2 = Instant::now();
    let host_head = if <B::InnerBackend as UNetOps>::ON_HOST {
        Some(head.on_host()?)
    } else {
        None
    };
    let mut canvas = ProbabilityCanvas::new(grid, classes);
    // The head's first-layer outputs (kept by an earlier run with the same
    // first layer) stand in for a patch's features, except for the label
    // curve's heads, which need the features.
    let first_id = host_head.as_ref().map(HostHead::first_layer_id);
    let mapped_from_store = |store: &FeatureStore, n: usize| {
        store.contains(n)
            || (curve_heads.is_empty()
                && first_id.is_some_and(|id| store.first_layer(id, n).is_some()))
    };
    if let Some(id) = first_id {
        // Another head's outputs are of no more use.
        store.retain_first_layer(id);
    }
    let (mut kept, fresh): (Vec<usize>, Vec<usize>) =
        (0..grid.len()).partition(|&n| mapped_from_store(store, n));
    // Room the store keeps free for the first-layer outputs of every patch
    // (narrower than the features: a live update then needs features only
    // for the labelled patches).
    let first_layer_bytes = host_head
        .as_ref()
        .filter(|h| store.keeps_all() && h.first_layer_width() < dim)
        .map_or(0, |h| 4 * h.first_layer_width() * p * p);
    // Every patch kept (a run after a stroke): the patches that cover the
    // scene once go first, and their map is sent out as a preview before
    // the overlapping patches are merged in.
    let mut preview = None;
    if fresh.is_empty() {
        let first = grid.covering_subset();
        if first.len() < kept.len() {
            let mut in_first = vec![false; grid.len()];
            for &n in &first {
                in_first[n] = true;
            }
            kept = first
                .iter()
                .copied()
                .chain(kept.into_iter().filter(|&n| !in_first[n]))
                .collect();
            preview = Some((first.len(), ProbabilityCanvas::new(grid, classes)));
        }
    }
    // Exact now: labelled patches that did not fit the store go again.
    clock.forwards_left = fresh.len();
    let batches = kept
        .chunks(cfg.batch_patches.max(1))
        .map(|ids| (ids, true))
        .chain(
            fresh
                .chunks(cfg.batch_patches.max(1))
                .map(|ids| (ids, false)),
        );
    let mut predicted = 0;
    let mut first_layer_patches = 0;
    for (ids, from_cache) in batches {
        if cancel.is_cancelled() {
            return Err(StageBError::Cancelled);
        }
        let (batch, d) = if from_cache {
            (BatchFeatures::Stored, dim)
        } else {
            first_use.announce(&clock, progress);
            let tf = Instant::now();
            let f = features(ids)?;
            clock.forwarded(ids.len(), tf.elapsed().as_secs_f64());
            first_use.done();
            let d = f.dims()[1];
            if !store.keeps_all() && host_head.is_none() {
                (BatchFeatures::Device(f), d)
            } else {
                let values = f32_values(f.clone(), "the scene's features")?;
                if store.keeps_all() {
                    let per = d * p * p;
                    for (b, &n) in ids.iter().enumerate() {
                        let missing =
                            grid.len() - first_id.map_or(0, |id| store.first_layer_count(id));
                        let reserve = missing * first_layer_bytes;
                        store.put_leaving(n, d, &values[b * per..(b + 1) * per], reserve);
                    }
                }
                let batch = if host_head.is_some() {
                    BatchFeatures::Host(values)
                } else {
                    BatchFeatures::Device(f)
                };
                (batch, d)
            }
        };
        if !curve_heads.is_empty() {
            let t_curve = Instant::now();
            let read_back;
            let values: Option<&Vec<f32>> = match &batch {
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
            for (h, canvas) in curve_heads.iter().zip(&mut curve_canvases) {
                let probs = match values {
                    Some(values) => h.patch_probabilities(values, d, p * p),
                    None => h.probabilities_of(&stored, p * p),
                };
                let per = classes * p * p;
                for (b, &n) in ids.iter().enumerate() {
                    canvas.add_patch(n, &probs[b * per..(b + 1) * per]);
                }
            }
            seconds_curve_mapping += t_curve.elapsed().as_secs_f64();
        }
        let host = match (host_head.as_ref().zip(first_id), batch) {
            (Some((h, first_id)), batch @ (BatchFeatures::Stored | BatchFeatures::Host(_))) => {
                // Each patch from the head's kept first-layer outputs, else
                // from its features (whose first-layer outputs are kept
                // where the store keeps everything and they are narrower).
                let keep_first = first_layer_bytes > 0;
                let (probs, firsts) = {
                    let inputs: Vec<PatchInput<'_>> = match &batch {
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
                    first_layer_patches += inputs
                        .iter()
                        .filter(|i| matches!(i, PatchInput::FirstLayer(_)))
                        .count();
                    h.probabilities_of_inputs(&inputs, p * p, keep_first)
                };
                for (&n, first) in ids.iter().zip(firsts) {
                    if let Some(first) = first {
                        store.put_first_layer(first_id, n, first);
                    }
                }
                probs
            }
            (_, batch) => {
                let bs = ids.len();
                let upload = |values| {
                    Tensor::<B::InnerBackend, 4>::from_data(
                        TensorData::new(values, [bs, d, p, p]),
                        device,
                    )
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
                f32_values(probs, "the class probabilities")?
            }
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
            let mut news = clock.progress(PHASE_PREVIEW, predicted, grid.len());
            news.preview = Some(Arc::new(first.finish().class_map));
            progress(&news);
            preview = None;
        }
        progress(&clock.progress(PHASE_SCENE, predicted, grid.len()));
    }
    let prediction = canvas.finish();
    let label_curve = curve_subsets
        .into_iter()
        .zip(&curve_canvases)
        .map(|(subset, canvas)| (subset, canvas.finish().class_map))
        .collect();
    Ok(StageBOutput {
        prediction,
        classes,
        classes_without_training,
        training_vectors: labels.len(),
        cached_patches: kept.len(),
        first_layer_patches,
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
