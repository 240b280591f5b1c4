//! The Stage B head (method.md section 7): a small MLP on frozen features,
//! Linear -> ReLU -> BatchNorm per hidden layer, Kaiming-normal (fan-in)
//! weights and zero biases; cross-entropy, Adam with L2 weight decay, seeded
//! shuffled mini-batches; early stopping, when asked for, on a validation
//! part of the TRAINING labels only (never on test pixels).
//!
//! The features are standardised first (each dimension to zero mean and unit
//! variance over the training vectors, as scikit-learn's `StandardScaler`):
//! a frozen U-Net's activations can differ in scale by orders of magnitude
//! from channel to channel, and a Kaiming-initialised first layer fed with
//! them raw is ruled by the few loudest channels. What the head gets from
//! the features on the visible scene, against other probes on the same
//! features: docs/stage_b_head.md.

use burn::module::{AutodiffModule, Param, RunningState};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, TensorData};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;

use crate::base::NormalRng;
use crate::model::host_unet::{HeadLinear, HeadMlp, HeadNorm, HeadTrainer};
use crate::model::layers::on_two_rows_if_one;
use crate::model::lean_ops::UNetOps;
use crate::model::tensor_read::{TensorReadError, f32_values, i64_values};

/// Hidden layer widths of the MLP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct MlpConfig {
    pub hidden: Vec<usize>,
}

impl MlpConfig {
    /// The paper's Berlin head: 128, 32.
    pub fn berlin() -> Self {
        Self {
            hidden: vec![128, 32],
        }
    }

    /// The paper's Augsburg head: 128.
    pub fn augsburg() -> Self {
        Self { hidden: vec![128] }
    }
}

/// Per-dimension standardisation fitted on the training vectors:
/// `(x - mean) * inv_std`, with `inv_std = 1` for a dimension that is
/// constant over them (it carries nothing, and must not blow up).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureScaler {
    pub mean: Vec<f32>,
    pub inv_std: Vec<f32>,
}

impl FeatureScaler {
    /// The identity on `dim` dimensions (no standardisation).
    pub fn identity(dim: usize) -> Self {
        Self {
            mean: vec![0.0; dim],
            inv_std: vec![1.0; dim],
        }
    }

    /// Mean and population standard deviation (in f64) of each dimension
    /// over the rows `idx` of `features` (row-major, `dim` columns).
    pub fn fit(features: &[f32], dim: usize, idx: &[usize]) -> Self {
        let mut sum = vec![0f64; dim];
        let mut sq = vec![0f64; dim];
        for &i in idx {
            for (k, &v) in features[i * dim..(i + 1) * dim].iter().enumerate() {
                let v = f64::from(v);
                sum[k] += v;
                sq[k] += v * v;
            }
        }
        let n = idx.len().max(1) as f64;
        let mut mean = Vec::with_capacity(dim);
        let mut inv_std = Vec::with_capacity(dim);
        for k in 0..dim {
            let m = sum[k] / n;
            let var = (sq[k] / n - m * m).max(0.0);
            let sd = var.sqrt();
            mean.push(m as f32);
            // A dimension constant up to rounding keeps its scale.
            inv_std.push(if sd > 1e-6 * (1.0 + m.abs()) {
                (1.0 / sd) as f32
            } else {
                1.0
            });
        }
        Self { mean, inv_std }
    }

    /// Standardises row-major vectors in place.
    pub fn apply(&self, values: &mut [f32]) {
        let dim = self.mean.len();
        for row in values.chunks_exact_mut(dim) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.inv_std) {
                *v = (*v - m) * s;
            }
        }
    }

    /// Standardises the rows (N, D) of a tensor.
    pub fn apply_tensor<B: Backend>(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let device = x.device();
        let dim = self.mean.len();
        let mean = Tensor::<B, 1>::from_data(TensorData::new(self.mean.clone(), [dim]), &device);
        let inv = Tensor::<B, 1>::from_data(TensorData::new(self.inv_std.clone(), [dim]), &device);
        (x - mean.unsqueeze::<2>()) * inv.unsqueeze::<2>()
    }
}

/// A trained head: the standardisation and the MLP on its output.
#[derive(Debug)]
pub struct TrainedHead<B: Backend> {
    pub scaler: FeatureScaler,
    pub mlp: Mlp<B>,
}

impl<B: Backend> TrainedHead<B> {
    /// Logits (N, K) of raw features (N, D).
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.mlp.forward(self.scaler.apply_tensor(x))
    }

    /// This head on the host, for the CPU path's prediction.
    pub fn on_host(&self) -> Result<HostHead, TensorReadError> {
        Ok(HostHead {
            scaler: self.scaler.clone(),
            mlp: host_mlp(&self.mlp)?,
        })
    }
}

/// A trained head on the host: the scaler and the MLP's weights. The same
/// results as [`TrainedHead::forward`] + softmax up to the order of f32 sums,
/// without the burn tensors' copies and permutes (the prediction over every
/// pixel of every patch is a few hundred thousand rows a batch).
#[derive(Debug, Clone)]
pub struct HostHead {
    scaler: FeatureScaler,
    mlp: HeadMlp,
}

impl HostHead {
    /// A head from its parts (a saved model's).
    pub fn new(scaler: FeatureScaler, mlp: HeadMlp) -> Self {
        Self { scaler, mlp }
    }

    /// The standardisation in front of the MLP.
    pub fn scaler(&self) -> &FeatureScaler {
        &self.scaler
    }

    /// The MLP's weights (without the scaler).
    pub fn mlp(&self) -> &HeadMlp {
        &self.mlp
    }

    /// Class probabilities (N, K, P, P) of patch features (N, D, P, P), `pp`
    /// = P * P; patches in parallel.
    pub fn patch_probabilities(&self, features: &[f32], dim: usize, pp: usize) -> Vec<f32> {
        let patches: Vec<&[f32]> = features.chunks_exact((dim * pp).max(1)).collect();
        self.probabilities_of(&patches, pp)
    }

    /// Class probabilities (K, P, P) of each patch's features (D, P, P),
    /// one after another; patches in parallel, each read where it lies (the
    /// feature store's patches are not copied first).
    pub fn probabilities_of(&self, patches: &[&[f32]], pp: usize) -> Vec<f32> {
        let inputs: Vec<PatchInput<'_>> =
            patches.iter().map(|&p| PatchInput::Features(p)).collect();
        self.probabilities_of_inputs(&inputs, pp, false).0
    }

    /// What a head's first layer computes depends on: its weights, its
    /// bias and the standardisation before it (a hash of their bits). Two
    /// heads with the same id give the same first-layer outputs
    /// ([`PatchInput::FirstLayer`]), bit for bit.
    pub fn first_layer_id(&self) -> u64 {
        let mut h = DefaultHasher::new();
        let first = self.mlp.first_layer();
        for values in [
            &first.weight,
            &first.bias,
            &self.scaler.mean,
            &self.scaler.inv_std,
        ] {
            values.len().hash(&mut h);
            for v in values {
                v.to_bits().hash(&mut h);
            }
        }
        h.finish()
    }

    /// Width of the first layer's outputs per pixel.
    pub fn first_layer_width(&self) -> usize {
        self.mlp.first_layer().d_out
    }

    /// Class probabilities (K, P, P) of each patch, one after another, from
    /// its features (D, P, P) or from this head's first-layer outputs
    /// (d_1, P, P) kept from an earlier pass; patches in parallel. With
    /// `keep_first`, the first-layer outputs computed from features come
    /// back too (None for the others), for the caller to keep.
    pub fn probabilities_of_inputs(
        &self,
        patches: &[PatchInput<'_>],
        pp: usize,
        keep_first: bool,
    ) -> (Vec<f32>, Vec<Option<Vec<f32>>>) {
        let k = self.mlp.out.d_out;
        let mut out = vec![0f32; patches.len() * k * pp];
        let mut firsts: Vec<Option<Vec<f32>>> = vec![None; patches.len()];
        out.par_chunks_mut((k * pp).max(1))
            .zip(firsts.par_iter_mut())
            .zip(patches)
            .for_each_init(Vec::new, |scratch, ((dst, kept), src)| {
                let first = match src {
                    PatchInput::Features(x) => {
                        let first = self.mlp.first_layer_columns(
                            x,
                            &self.scaler.mean,
                            &self.scaler.inv_std,
                            scratch,
                        );
                        if keep_first {
                            *kept = Some(first.clone());
                        }
                        first
                    }
                    PatchInput::FirstLayer(first) => first.to_vec(),
                };
                let probs = self.mlp.probabilities_from_first_columns(first, pp);
                dst.copy_from_slice(&probs);
            });
        (out, firsts)
    }
}

/// One patch's input to [`HostHead::probabilities_of_inputs`].
#[derive(Debug, Clone, Copy)]
pub enum PatchInput<'a> {
    /// The backbone's features (D, P, P).
    Features(&'a [f32]),
    /// The head's first-layer outputs (d_1, P, P), as
    /// [`HeadMlp::first_layer_columns`] gives them.
    FirstLayer(&'a [f32]),
}

/// The classifier.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub layers: Vec<Linear<B>>,
    pub norms: Vec<BatchNorm<B>>,
    pub head: Linear<B>,
}

/// A linear layer with Kaiming-normal weights (fan-in, gain sqrt 2, as
/// burn's `Initializer::KaimingNormal`) drawn from `rng`, and zero biases.
fn kaiming_linear<B: Backend>(
    d_in: usize,
    d_out: usize,
    rng: &mut NormalRng,
    device: &B::Device,
) -> Linear<B> {
    let std = std::f64::consts::SQRT_2 / (d_in.max(1) as f64).sqrt();
    let weight: Vec<f32> = (0..d_in * d_out)
        .map(|_| (rng.normal() * std) as f32)
        .collect();
    Linear {
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(weight, [d_in, d_out]),
            device,
        )),
        bias: Some(Param::from_tensor(Tensor::zeros([d_out], device))),
    }
}

impl<B: Backend> Mlp<B> {
    /// A freshly initialised MLP, its weights drawn from a generator of its
    /// own seeded with `seed`: not from the backend's global one, on which
    /// the two heads trained side by side (the map's and the held-out
    /// comparison's) raced, so that one seed gave different weights from
    /// run to run.
    pub fn new(
        d_in: usize,
        classes: usize,
        cfg: &MlpConfig,
        seed: u64,
        device: &B::Device,
    ) -> Self {
        let mut rng = NormalRng::new(seed);
        let mut layers = Vec::new();
        let mut norms = Vec::new();
        let mut width = d_in;
        for &h in &cfg.hidden {
            layers.push(kaiming_linear(width, h, &mut rng, device));
            norms.push(BatchNormConfig::new(h).init(device));
            width = h;
        }
        Self {
            layers,
            norms,
            head: kaiming_linear(width, classes, &mut rng, device),
        }
    }

    /// Logits (N, K) of features (N, D).
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        // One row as two (a GPU's fused matmul of one row is wrong, see
        // `on_two_rows_if_one`).
        on_two_rows_if_one(x, |x| {
            let mut h = x;
            for (l, n) in self.layers.iter().zip(&self.norms) {
                h = n.forward(relu(l.forward(h)));
            }
            self.head.forward(h)
        })
    }
}

/// Settings of the head's training.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct HeadTrainConfig {
    pub lr: f64,
    pub weight_decay: f64,
    pub batch: usize,
    pub max_epochs: usize,
    /// Epochs without a better validation accuracy before stopping.
    pub patience: usize,
    pub seed: u64,
    /// Standardise the features on the training vectors first.
    pub standardize: bool,
    /// On the CPU backends, train on the host (false: through burn's
    /// autodiff, as on a GPU; for comparisons).
    #[serde(skip)]
    pub cpu_kernels: bool,
    /// Start from this head's weights (a head trained on the same features
    /// a moment ago: the app's live update after a stroke) instead of fresh
    /// Kaiming draws, where every layer's shape matches; on the host path.
    #[serde(skip)]
    pub warm_start: Option<Arc<HostHead>>,
    /// With a warm start whose first layer narrows the features: keep its
    /// standardisation and its first layer as they are and train the rest
    /// of the head on that layer's outputs (the live update; the first
    /// layer is most of the head's products, and its outputs over the scene
    /// can then be kept, see [`HostHead::first_layer_id`]).
    #[serde(skip)]
    pub keep_first_layer: bool,
}

impl Default for HeadTrainConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            weight_decay: 5e-4,
            batch: 64,
            max_epochs: 100,
            patience: 10,
            seed: 0,
            standardize: true,
            cpu_kernels: true,
            warm_start: None,
            keep_first_layer: false,
        }
    }
}

/// What training did (Default: nothing yet).
#[derive(Debug, Clone, Default, Serialize)]
pub struct HeadTrainReport {
    pub epochs: usize,
    pub best_epoch: usize,
    pub train_loss: Vec<f32>,
    /// Validation accuracy per epoch (empty without validation vectors).
    pub validation_accuracy: Vec<f64>,
    /// Training started from the config's `warm_start` weights.
    pub warm_started: bool,
    /// ... and kept its standardisation and first layer
    /// (`keep_first_layer`).
    pub first_layer_kept: bool,
}

/// Training vectors: `features` row-major (N x D), `labels` 0-based classes,
/// `validation[i]` true for vectors held out for early stopping.
pub struct HeadData<'a> {
    pub features: &'a [f32],
    pub dim: usize,
    pub labels: &'a [i64],
    pub classes: usize,
    pub validation: &'a [bool],
}

fn rows<B: Backend>(
    d: &HeadData,
    idx: &[usize],
    device: &B::Device,
) -> (Tensor<B, 2>, Tensor<B, 1, Int>) {
    let mut x = Vec::with_capacity(idx.len() * d.dim);
    let mut y = Vec::with_capacity(idx.len());
    for &i in idx {
        x.extend_from_slice(&d.features[i * d.dim..(i + 1) * d.dim]);
        y.push(d.labels[i]);
    }
    (
        Tensor::from_data(TensorData::new(x, [idx.len(), d.dim]), device),
        Tensor::from_data(TensorData::new(y, [idx.len()]), device),
    )
}

/// Class (0-based) of each row of `features`, in eval mode.
pub fn predict_classes<B: Backend>(
    model: &Mlp<B>,
    features: Tensor<B, 2>,
) -> Result<Vec<i64>, TensorReadError> {
    i64_values(model.forward(features).argmax(1), "the predicted classes")
}

/// Class (0-based) of each row of raw `features`, in eval mode.
pub fn predict_head<B: Backend>(
    head: &TrainedHead<B>,
    features: Tensor<B, 2>,
) -> Result<Vec<i64>, TensorReadError> {
    predict_classes(&head.mlp, head.scaler.apply_tensor(features))
}

/// Trains the head; returns the model of the best validation epoch (the last
/// epoch when there is no validation part) with the standardisation fitted
/// on the training vectors (validation vectors excluded).
pub fn train_head<B: AutodiffBackend>(
    data: &HeadData,
    cfg: &MlpConfig,
    train: &HeadTrainConfig,
    device: &B::Device,
) -> Result<(TrainedHead<B::InnerBackend>, HeadTrainReport), TensorReadError>
where
    B::InnerBackend: UNetOps,
{
    if let Some(warm) = kept_first_layer::<B::InnerBackend>(data, cfg, train) {
        return train_on_kept_first_layer::<B>(data, &warm, train, device);
    }
    let n = data.labels.len();
    let train_idx: Vec<usize> = (0..n).filter(|&i| !data.validation[i]).collect();
    let scaler = if train.standardize {
        FeatureScaler::fit(data.features, data.dim, &train_idx)
    } else {
        FeatureScaler::identity(data.dim)
    };
    let mut scaled = data.features.to_vec();
    scaler.apply(&mut scaled);
    let scaled_data = HeadData {
        features: &scaled,
        ..*data
    };
    let (mlp, report) = train_mlp::<B>(&scaled_data, cfg, train, device)?;
    Ok((TrainedHead { scaler, mlp }, report))
}

/// The warm start whose first layer a training keeps: asked for, on the
/// host path, of the shapes this training would make, and with a first
/// layer narrower than the features (where it is not, there are no
/// products to save and, on the demo with the tiny backbone's 96 channels,
/// a kept layer scored about 1 point of OA below the whole head's
/// continuation).
fn kept_first_layer<B: UNetOps>(
    data: &HeadData,
    cfg: &MlpConfig,
    train: &HeadTrainConfig,
) -> Option<Arc<HostHead>> {
    let warm = train.warm_start.as_ref()?;
    let dims: Vec<(usize, usize)> = std::iter::once(data.dim)
        .chain(cfg.hidden.iter().copied())
        .zip(cfg.hidden.iter().copied().chain([data.classes]))
        .collect();
    let ok = train.keep_first_layer
        && B::ON_HOST
        && train.cpu_kernels
        && !cfg.hidden.is_empty()
        && layer_dims(&warm.mlp) == dims
        && warm.mlp.first_layer().d_out < data.dim
        && warm.scaler.mean.len() == data.dim;
    ok.then(|| warm.clone())
}

/// The head trained from `warm` with its standardisation and first layer
/// kept: the training vectors go through that layer once, and the rest of
/// the head trains on its outputs.
fn train_on_kept_first_layer<B: AutodiffBackend>(
    data: &HeadData,
    warm: &HostHead,
    train: &HeadTrainConfig,
    device: &B::Device,
) -> Result<(TrainedHead<B::InnerBackend>, HeadTrainReport), TensorReadError>
where
    B::InnerBackend: UNetOps,
{
    let scaler = warm.scaler.clone();
    let mut scaled = data.features.to_vec();
    scaler.apply(&mut scaled);
    let first = warm.mlp.first_layer_rows(&scaled);
    drop(scaled);
    let first_data = HeadData {
        features: &first,
        dim: warm.mlp.first_layer().d_out,
        ..*data
    };
    let mut host = HostTraining {
        trainer: HeadTrainer::with_first_layer_frozen(
            warm.mlp.clone(),
            1e-8,
            train.weight_decay as f32,
        ),
        x: Vec::new(),
        y: Vec::new(),
    };
    let (best, mut report) = epochs(&mut host, &first_data, train)?;
    report.warm_started = true;
    report.first_layer_kept = true;
    let best = best.unwrap_or_else(|| host.trainer.mlp().clone());
    let mlp = burn_mlp(&best, device);
    Ok((TrainedHead { scaler, mlp }, report))
}

/// Trains the MLP on features as given: on the CPU backends through the
/// host trainer of `unidiff-kernels` (the same initial weights, batches and
/// f32 operations as burn's modules and Adam, without autodiff's per-step
/// overhead), elsewhere through burn.
fn train_mlp<B: AutodiffBackend>(
    data: &HeadData,
    cfg: &MlpConfig,
    train: &HeadTrainConfig,
    device: &B::Device,
) -> Result<(Mlp<B::InnerBackend>, HeadTrainReport), TensorReadError>
where
    B::InnerBackend: UNetOps,
{
    let model = Mlp::<B>::new(data.dim, data.classes, cfg, train.seed, device);
    if <B::InnerBackend as UNetOps>::ON_HOST && train.cpu_kernels {
        let fresh = host_mlp(&model.valid())?;
        let warm = train
            .warm_start
            .as_deref()
            .map(HostHead::mlp)
            .filter(|w| same_shapes(w, &fresh));
        let warm_started = warm.is_some();
        let initial = warm.cloned().unwrap_or(fresh);
        let mut host = HostTraining {
            trainer: HeadTrainer::new(initial, 1e-8, train.weight_decay as f32),
            x: Vec::new(),
            y: Vec::new(),
        };
        let (best, mut report) = epochs(&mut host, data, train)?;
        report.warm_started = warm_started;
        let best = best.unwrap_or_else(|| host.trainer.mlp().clone());
        return Ok((burn_mlp(&best, device), report));
    }
    let mut on_burn = BurnHead::<B> {
        model: Some(model),
        optim: AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(Some(WeightDecayConfig::new(train.weight_decay as f32)))
            .init::<B, Mlp<B>>(),
        loss_fn: CrossEntropyLossConfig::new().init(device),
        device: device.clone(),
    };
    let (best, report) = epochs(&mut on_burn, data, train)?;
    let best = match best {
        Some(m) => m,
        None => on_burn.snapshot()?,
    };
    Ok((best, report))
}

/// Two heads with the same layers (inputs, widths, classes).
fn same_shapes(a: &HeadMlp, b: &HeadMlp) -> bool {
    layer_dims(a) == layer_dims(b)
}

/// (inputs, outputs) of each layer of a head.
fn layer_dims(m: &HeadMlp) -> Vec<(usize, usize)> {
    m.hidden
        .iter()
        .map(|(l, _)| (l.d_in, l.d_out))
        .chain([(m.out.d_in, m.out.d_out)])
        .collect()
}

/// One way of training the head, step by step.
trait HeadTraining {
    type Snapshot;
    /// One step on the rows `idx` of `data`: the batch's mean loss.
    fn step(&mut self, data: &HeadData, idx: &[usize], lr: f64) -> Result<f32, TensorReadError>;
    /// The classes (0-based) of rows x (row-major, `dim` wide) in eval mode.
    fn predict(&self, x: &[f32], dim: usize) -> Result<Vec<i64>, TensorReadError>;
    /// The head as trained so far.
    fn snapshot(&self) -> Result<Self::Snapshot, TensorReadError>;
}

/// The epochs of a head's training: seeded shuffles, mini-batches (a last
/// one of a single row is skipped: BatchNorm needs two), and early stopping
/// on the validation rows when there are any; the best epoch's snapshot.
fn epochs<T: HeadTraining>(
    t: &mut T,
    data: &HeadData,
    train: &HeadTrainConfig,
) -> Result<(Option<T::Snapshot>, HeadTrainReport), TensorReadError> {
    let n = data.labels.len();
    let train_idx: Vec<usize> = (0..n).filter(|&i| !data.validation[i]).collect();
    let val_idx: Vec<usize> = (0..n).filter(|&i| data.validation[i]).collect();
    let val_x: Vec<f32> = val_idx
        .iter()
        .flat_map(|&i| {
            data.features[i * data.dim..(i + 1) * data.dim]
                .iter()
                .copied()
        })
        .collect();
    let mut rng = NormalRng::new(train.seed ^ 0x5EED);
    let mut report = HeadTrainReport::default();
    let mut best: Option<(f64, T::Snapshot)> = None;
    let mut since_best = 0;
    let mut order = train_idx;
    for epoch in 0..train.max_epochs {
        for i in (1..order.len()).rev() {
            let j = rng.below(i + 1);
            order.swap(i, j);
        }
        let mut total = 0.0;
        let mut batches = 0;
        for chunk in order.chunks(train.batch.max(2)) {
            if chunk.len() < 2 {
                continue; // BatchNorm needs two samples
            }
            total += f64::from(t.step(data, chunk, train.lr)?);
            batches += 1;
        }
        report.epochs = epoch + 1;
        report
            .train_loss
            .push((total / batches.max(1) as f64) as f32);
        if val_idx.is_empty() {
            continue;
        }
        let predicted = t.predict(&val_x, data.dim)?;
        let acc = predicted
            .iter()
            .zip(&val_idx)
            .filter(|(p, i)| **p == data.labels[**i])
            .count() as f64
            / val_idx.len() as f64;
        report.validation_accuracy.push(acc);
        if best.as_ref().is_none_or(|(b, _)| acc > *b) {
            best = Some((acc, t.snapshot()?));
            report.best_epoch = epoch + 1;
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= train.patience {
                break;
            }
        }
    }
    if best.is_none() {
        report.best_epoch = report.epochs;
    }
    Ok((best.map(|(_, s)| s), report))
}

/// The head trained through burn's autodiff and Adam.
struct BurnHead<B: AutodiffBackend> {
    /// Taken out for each optimiser step.
    model: Option<Mlp<B>>,
    optim: OptimizerAdaptor<burn::optim::Adam, Mlp<B>, B>,
    loss_fn: CrossEntropyLoss<B>,
    device: B::Device,
}

impl<B: AutodiffBackend> BurnHead<B> {
    fn model(&self) -> Result<&Mlp<B>, TensorReadError> {
        self.model.as_ref().ok_or_else(|| TensorReadError {
            what: "the head",
            reason: "an earlier step failed".into(),
        })
    }
}

impl<B: AutodiffBackend> HeadTraining for BurnHead<B> {
    type Snapshot = Mlp<B::InnerBackend>;

    fn step(&mut self, data: &HeadData, idx: &[usize], lr: f64) -> Result<f32, TensorReadError> {
        let model = self.model.take().ok_or_else(|| TensorReadError {
            what: "the head",
            reason: "an earlier step failed".into(),
        })?;
        let (x, y) = rows::<B>(data, idx, &self.device);
        let loss = self.loss_fn.forward(model.forward(x), y);
        let value = loss.clone().into_scalar().elem::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        self.model = Some(self.optim.step(lr, model, grads));
        Ok(value)
    }

    fn predict(&self, x: &[f32], dim: usize) -> Result<Vec<i64>, TensorReadError> {
        let eval = self.model()?.valid();
        let rows = x.len() / dim.max(1);
        let x = Tensor::from_data(TensorData::new(x.to_vec(), [rows, dim]), &self.device);
        predict_classes(&eval, x)
    }

    fn snapshot(&self) -> Result<Self::Snapshot, TensorReadError> {
        Ok(self.model()?.valid())
    }
}

/// The head trained on the host ([`HeadTrainer`]).
struct HostTraining {
    trainer: HeadTrainer,
    /// The batch's rows and classes, reused between steps.
    x: Vec<f32>,
    y: Vec<i64>,
}

impl HeadTraining for HostTraining {
    type Snapshot = HeadMlp;

    fn step(&mut self, data: &HeadData, idx: &[usize], lr: f64) -> Result<f32, TensorReadError> {
        self.x.clear();
        self.y.clear();
        for &i in idx {
            self.x
                .extend_from_slice(&data.features[i * data.dim..(i + 1) * data.dim]);
            self.y.push(data.labels[i]);
        }
        Ok(self.trainer.step(&self.x, &self.y, lr as f32))
    }

    fn predict(&self, x: &[f32], _dim: usize) -> Result<Vec<i64>, TensorReadError> {
        let mlp = self.trainer.mlp();
        let k = mlp.out.d_out;
        let logits = if self.trainer.first_frozen() {
            mlp.logits_from_first(x)
        } else {
            mlp.logits(x)
        };
        // The first largest logit, as burn's argmax.
        Ok(logits
            .chunks_exact(k)
            .map(|row| {
                let mut best = 0;
                for (j, &v) in row.iter().enumerate() {
                    if v > row[best] {
                        best = j;
                    }
                }
                best as i64
            })
            .collect())
    }

    fn snapshot(&self) -> Result<Self::Snapshot, TensorReadError> {
        Ok(self.trainer.mlp().clone())
    }
}

/// A burn linear layer (row layout, d_in x d_out) on the host.
fn host_linear<B: Backend>(l: &Linear<B>) -> Result<HeadLinear, TensorReadError> {
    let [d_in, d_out] = l.weight.dims();
    let bias = match &l.bias {
        Some(b) => f32_values(b.val(), "a head bias")?,
        None => vec![0.0; d_out],
    };
    Ok(HeadLinear {
        weight: f32_values(l.weight.val(), "a head weight")?,
        bias,
        d_in,
        d_out,
    })
}

/// The head's weights on the host.
fn host_mlp<B: Backend>(m: &Mlp<B>) -> Result<HeadMlp, TensorReadError> {
    let mut hidden = Vec::with_capacity(m.layers.len());
    for (l, n) in m.layers.iter().zip(&m.norms) {
        let norm = HeadNorm {
            gamma: f32_values(n.gamma.val(), "a head norm")?,
            beta: f32_values(n.beta.val(), "a head norm")?,
            running_mean: f32_values(n.running_mean.value(), "a head norm")?,
            running_var: f32_values(n.running_var.value(), "a head norm")?,
            momentum: n.momentum as f32,
            epsilon: n.epsilon as f32,
        };
        hidden.push((host_linear(l)?, norm));
    }
    Ok(HeadMlp {
        hidden,
        out: host_linear(&m.head)?,
    })
}

/// A host head as a burn module (for prediction and export).
fn burn_mlp<B: Backend>(h: &HeadMlp, device: &B::Device) -> Mlp<B> {
    let vector =
        |v: &[f32]| Tensor::<B, 1>::from_data(TensorData::new(v.to_vec(), [v.len()]), device);
    let linear = |l: &HeadLinear| Linear {
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(l.weight.clone(), [l.d_in, l.d_out]),
            device,
        )),
        bias: Some(Param::from_tensor(vector(&l.bias))),
    };
    Mlp {
        layers: h.hidden.iter().map(|(l, _)| linear(l)).collect(),
        norms: h
            .hidden
            .iter()
            .map(|(_, n)| BatchNorm {
                gamma: Param::from_tensor(vector(&n.gamma)),
                beta: Param::from_tensor(vector(&n.beta)),
                running_mean: RunningState::new(vector(&n.running_mean)),
                running_var: RunningState::new(vector(&n.running_var)),
                momentum: f64::from(n.momentum),
                epsilon: f64::from(n.epsilon),
            })
            .collect(),
        head: linear(&h.out),
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::activation::softmax;

    use super::*;

    type AB = Autodiff<NdArray<f32>>;
    type B = NdArray<f32>;

    /// The initial weights depend on the seed alone: not on what else drew
    /// from the backend's random generator before (or beside) them.
    #[test]
    fn a_heads_initial_weights_depend_on_its_seed_alone() {
        let cfg = MlpConfig::berlin();
        let weights = |global: u64, seed: u64| {
            let device = Default::default();
            <B as Backend>::seed(&device, global);
            let _ = Tensor::<B, 1>::random([7], burn::tensor::Distribution::Default, &device);
            let mlp = Mlp::<B>::new(40, 3, &cfg, seed, &device);
            let mut all: Vec<f32> = Vec::new();
            for l in mlp.layers.iter().chain([&mlp.head]) {
                all.extend(l.weight.val().into_data().to_vec::<f32>().unwrap());
            }
            all
        };
        let a = weights(1, 3);
        assert_eq!(a, weights(2, 3));
        assert_ne!(a, weights(1, 4));
        // Kaiming normal with fan-in 40 in the first layer: std sqrt(2 / 40).
        let first: Vec<f64> = a[..40 * cfg.hidden[0]]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let var = first.iter().map(|v| v * v).sum::<f64>() / first.len() as f64;
        assert!(
            (var.sqrt() / (2.0f64 / 40.0).sqrt() - 1.0).abs() < 0.1,
            "{var}"
        );
    }

    fn blobs(n: usize, dim: usize, seed: u64) -> (Vec<f32>, Vec<i64>) {
        let mut rng = NormalRng::new(seed);
        let mut x = Vec::with_capacity(n * dim);
        let mut y = Vec::with_capacity(n);
        for i in 0..n {
            let class = (i % 3) as i64;
            for d in 0..dim {
                let centre = if d % 3 == class as usize { 2.0 } else { 0.0 };
                x.push((centre + rng.normal()) as f32);
            }
            y.push(class);
        }
        (x, y)
    }

    /// Vectors like a frozen U-Net's: two classes told apart by four quiet
    /// dimensions (scale 0.05), drowned in 60 loud class-free ones (scale
    /// 1e3 around offsets of 1e4), 73 % of class 0 as on the visible scene.
    fn loud_and_quiet(n: usize, seed: u64) -> (Vec<f32>, Vec<i64>) {
        let mut rng = NormalRng::new(seed);
        let dim = 64;
        let mut x = Vec::with_capacity(n * dim);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let class = i64::from(rng.uniform() >= 0.73);
            for d in 0..dim {
                let v = if d < 4 {
                    0.05 * (2.0 * class as f64 - 1.0 + 0.5 * rng.normal())
                } else {
                    1e4 * (d % 7) as f64 + 1e3 * rng.normal()
                };
                x.push(v as f32);
            }
            y.push(class);
        }
        (x, y)
    }

    fn held_out_accuracy(train_rows: &[usize], x: &[f32], y: &[i64]) -> f64 {
        let dim = 64;
        let mut tx = Vec::new();
        let mut ty = Vec::new();
        for &i in train_rows {
            tx.extend_from_slice(&x[i * dim..(i + 1) * dim]);
            ty.push(y[i]);
        }
        // As the app trains by default: every label, no early stopping.
        let validation = vec![false; ty.len()];
        let data = HeadData {
            features: &tx,
            dim,
            labels: &ty,
            classes: 2,
            validation: &validation,
        };
        let cfg = HeadTrainConfig {
            max_epochs: 200,
            seed: 2,
            ..HeadTrainConfig::default()
        };
        let device = Default::default();
        let (head, _) = train_head::<AB>(&data, &MlpConfig::berlin(), &cfg, &device).unwrap();
        let is_train: std::collections::HashSet<usize> = train_rows.iter().copied().collect();
        let test: Vec<usize> = (0..y.len()).filter(|i| !is_train.contains(i)).collect();
        let mut rows = Vec::new();
        for &i in &test {
            rows.extend_from_slice(&x[i * dim..(i + 1) * dim]);
        }
        let all = Tensor::from_data(TensorData::new(rows, [test.len(), dim]), &device);
        let predicted = predict_head(&head, all).unwrap();
        let right = test
            .iter()
            .zip(&predicted)
            .filter(|(i, p)| y[**i] == **p)
            .count();
        right as f64 / test.len() as f64
    }

    #[test]
    fn learns_quiet_features_beside_loud_ones_from_sparse_labels() {
        let (x, y) = loud_and_quiet(20_000, 9);
        // 0.5 % of the pool, in proportion to the classes (about 73 / 27).
        let sparse: Vec<usize> = (0..y.len()).step_by(200).collect();
        let acc = held_out_accuracy(&sparse, &x, &y);
        assert!(acc > 0.9, "0.5 % split: held-out accuracy {acc}");
        // 200 per class.
        let mut balanced = Vec::new();
        for class in 0..2 {
            balanced.extend((0..y.len()).filter(|&i| y[i] == class).take(200));
        }
        let acc = held_out_accuracy(&balanced, &x, &y);
        assert!(acc > 0.9, "200 per class: held-out accuracy {acc}");
    }

    #[test]
    fn scaler_standardises_and_leaves_constant_dimensions() {
        let x = [1.0f32, 5.0, 3.0, 5.0, 5.0, 5.0];
        let s = FeatureScaler::fit(&x, 2, &[0, 1]);
        assert_eq!(s.mean, vec![2.0, 5.0]);
        assert_eq!(s.inv_std, vec![1.0, 1.0]);
        let s = FeatureScaler::fit(&x, 2, &[0, 1, 2]);
        let mut v = x.to_vec();
        s.apply(&mut v);
        let m: f32 = (v[0] + v[2] + v[4]) / 3.0;
        let var: f32 = (v[0] * v[0] + v[2] * v[2] + v[4] * v[4]) / 3.0;
        assert!(m.abs() < 1e-6 && (var - 1.0).abs() < 1e-5, "{m} {var}");
        assert!(v[1] == 0.0 && v[3] == 0.0 && v[5] == 0.0);
    }

    #[test]
    fn learns_separable_classes_and_is_deterministic() {
        let (x, y) = blobs(300, 12, 3);
        let validation: Vec<bool> = (0..300).map(|i| i % 5 == 0).collect();
        let data = HeadData {
            features: &x,
            dim: 12,
            labels: &y,
            classes: 3,
            validation: &validation,
        };
        let cfg = HeadTrainConfig {
            max_epochs: 15,
            patience: 5,
            seed: 11,
            ..HeadTrainConfig::default()
        };
        let device = Default::default();
        let (model, report) = train_head::<AB>(&data, &MlpConfig::berlin(), &cfg, &device).unwrap();
        let best = report.validation_accuracy[report.best_epoch - 1];
        assert!(best > 0.85, "validation accuracy {best}");
        assert!(report.train_loss.last() < report.train_loss.first());
        let all = Tensor::from_data(TensorData::new(x.clone(), [300, 12]), &device);
        let first = predict_head(&model, all).unwrap();
        let (model2, _) = train_head::<AB>(&data, &MlpConfig::berlin(), &cfg, &device).unwrap();
        let all = Tensor::from_data(TensorData::new(x, [300, 12]), &device);
        assert_eq!(
            first,
            predict_head(&model2, all).unwrap(),
            "same seed, same predictions"
        );
    }

    /// Training vectors of [`blobs`] (12 dimensions, 3 classes).
    fn blob_data<'a>(x: &'a [f32], y: &'a [i64], validation: &'a [bool]) -> HeadData<'a> {
        HeadData {
            features: x,
            dim: 12,
            labels: y,
            classes: 3,
            validation,
        }
    }

    #[test]
    fn a_warm_start_is_where_training_starts_when_the_shapes_match() {
        let (x, y) = blobs(120, 12, 5);
        let validation = vec![false; 120];
        let data = blob_data(&x, &y, &validation);
        let device = Default::default();
        let cfg = |max_epochs, warm_start| HeadTrainConfig {
            max_epochs,
            seed: 1,
            warm_start,
            ..HeadTrainConfig::default()
        };
        let berlin = MlpConfig::berlin();
        let (trained, report) = train_head::<AB>(&data, &berlin, &cfg(20, None), &device).unwrap();
        assert!(!report.warm_started);
        let weights = Arc::new(trained.on_host().unwrap());
        // No epoch: the head is the warm start itself.
        let (again, report) =
            train_head::<AB>(&data, &berlin, &cfg(0, Some(weights.clone())), &device).unwrap();
        assert!(report.warm_started && !report.first_layer_kept);
        assert_eq!(host_mlp(&again.mlp).unwrap(), *weights.mlp());
        // Another width: a fresh head, the same as without a warm start.
        let other = MlpConfig { hidden: vec![16] };
        let (ignored, report) =
            train_head::<AB>(&data, &other, &cfg(3, Some(weights)), &device).unwrap();
        assert!(!report.warm_started);
        let (plain, _) = train_head::<AB>(&data, &other, &cfg(3, None), &device).unwrap();
        assert_eq!(
            host_mlp(&ignored.mlp).unwrap(),
            host_mlp(&plain.mlp).unwrap()
        );
    }

    #[test]
    fn a_live_update_keeps_the_warm_starts_standardisation_and_first_layer() {
        let (x, y) = blobs(120, 12, 5);
        let validation: Vec<bool> = (0..120).map(|i| i % 5 == 0).collect();
        let data = blob_data(&x, &y, &validation);
        let device = Default::default();
        // A first layer narrower than the 12 features.
        let narrow = MlpConfig { hidden: vec![8, 4] };
        let cfg = |max_epochs, warm_start, keep_first_layer| HeadTrainConfig {
            max_epochs,
            seed: 1,
            warm_start,
            keep_first_layer,
            lr: 1e-2,
            ..HeadTrainConfig::default()
        };
        let (trained, _) =
            train_head::<AB>(&data, &narrow, &cfg(20, None, false), &device).unwrap();
        let warm = Arc::new(trained.on_host().unwrap());
        // Other training vectors (a new stroke): the scaler is not fitted
        // again, the first layer does not move, the rest does.
        let (x2, y2) = blobs(150, 12, 9);
        let validation2 = vec![false; 150];
        let data2 = blob_data(&x2, &y2, &validation2);
        let (live, report) =
            train_head::<AB>(&data2, &narrow, &cfg(4, Some(warm.clone()), true), &device).unwrap();
        assert!(report.warm_started && report.first_layer_kept);
        assert_eq!(report.epochs, 4);
        let live = live.on_host().unwrap();
        assert_eq!(live.scaler(), warm.scaler());
        assert_eq!(live.mlp().hidden[0].0, warm.mlp().hidden[0].0);
        assert_eq!(live.first_layer_id(), warm.first_layer_id());
        assert_ne!(live.mlp().out, warm.mlp().out);
        assert_ne!(
            live.mlp().hidden[0].1,
            warm.mlp().hidden[0].1,
            "its BatchNorm trains"
        );
        // What it learnt: the new vectors' classes, mostly.
        let mut scaled = x2.clone();
        live.scaler().apply(&mut scaled);
        let logits = live.mlp().logits(&scaled);
        let right = logits
            .chunks_exact(3)
            .zip(&y2)
            .filter(|(row, y)| {
                let best = (0..3).fold(0, |b, j| if row[j] > row[b] { j } else { b });
                best as i64 == **y
            })
            .count();
        assert!(right * 10 >= 150 * 9, "{right} of 150");
        // Its first-layer outputs map the scene as the features do.
        let columns: Vec<f32> = (0..12)
            .flat_map(|k| {
                let x2 = &x2;
                (0..150).map(move |i| x2[i * 12 + k])
            })
            .collect();
        let mut scratch = Vec::new();
        let first = live.mlp().first_layer_columns(
            &columns,
            &live.scaler().mean,
            &live.scaler().inv_std,
            &mut scratch,
        );
        let (from_first, kept) =
            live.probabilities_of_inputs(&[PatchInput::FirstLayer(&first)], 150, true);
        let (from_features, firsts) =
            live.probabilities_of_inputs(&[PatchInput::Features(&columns)], 150, true);
        assert_eq!(from_first, from_features);
        assert_eq!(from_first, live.probabilities_of(&[&columns], 150));
        assert_eq!((kept[0].as_ref(), firsts[0].as_ref()), (None, Some(&first)));
        // A first layer as wide as the features or wider is not kept: the
        // whole head continues.
        let berlin = MlpConfig::berlin();
        let (wide, _) = train_head::<AB>(&data, &berlin, &cfg(2, None, false), &device).unwrap();
        let wide = Arc::new(wide.on_host().unwrap());
        let (_, report) =
            train_head::<AB>(&data2, &berlin, &cfg(2, Some(wide), true), &device).unwrap();
        assert!(report.warm_started && !report.first_layer_kept);
        // A head of other widths is not kept from: trained afresh.
        let other = MlpConfig { hidden: vec![16] };
        let (_, report) =
            train_head::<AB>(&data2, &other, &cfg(2, Some(warm), true), &device).unwrap();
        assert!(!report.warm_started && !report.first_layer_kept);
    }

    #[test]
    fn the_host_trainer_follows_burns_autodiff_step_by_step() {
        let (x, y) = blobs(200, 12, 3);
        let validation = vec![false; 200];
        let data = blob_data(&x, &y, &validation);
        let device = Default::default();
        let run = |cpu_kernels: bool, max_epochs: usize| {
            let cfg = HeadTrainConfig {
                max_epochs,
                seed: 4,
                cpu_kernels,
                ..HeadTrainConfig::default()
            };
            train_head::<AB>(&data, &MlpConfig::berlin(), &cfg, &device).unwrap()
        };
        // Three epochs (12 Adam steps with weight decay, BatchNorm's batch
        // statistics and running averages): the same losses and weights up to
        // the order of f32 sums.
        let ((host, host_report), (burn, burn_report)) = (run(true, 3), run(false, 3));
        for (a, b) in host_report.train_loss.iter().zip(&burn_report.train_loss) {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
        }
        let (hw, bw) = (host_mlp(&host.mlp).unwrap(), host_mlp(&burn.mlp).unwrap());
        let pairs = hw
            .hidden
            .iter()
            .zip(&bw.hidden)
            .flat_map(|((hl, hn), (bl, bn))| {
                [
                    (&hl.weight, &bl.weight),
                    (&hn.gamma, &bn.gamma),
                    (&hn.running_mean, &bn.running_mean),
                    (&hn.running_var, &bn.running_var),
                ]
            });
        for (a, b) in pairs.chain([(&hw.out.weight, &bw.out.weight)]) {
            let d = a.iter().zip(b).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
            assert!(d <= 1e-5, "weights differ by {d}");
        }
        // Trained to the end, both separate the blobs equally well.
        let all = Tensor::<B, 2>::from_data(TensorData::new(x.clone(), [200, 12]), &device);
        let accuracy = |h: &TrainedHead<B>| {
            let p = predict_head(h, all.clone()).unwrap();
            p.iter().zip(&y).filter(|(a, b)| a == b).count() as f64 / 200.0
        };
        let (host, burn) = (run(true, 30).0, run(false, 30).0);
        let (a, b) = (accuracy(&host), accuracy(&burn));
        assert!(a > 0.9 && (a - b).abs() <= 0.02, "host {a}, burn {b}");
    }

    #[test]
    fn host_patch_probabilities_equal_burns_head() {
        let (x, y) = blobs(120, 12, 3);
        let validation = vec![false; 120];
        let data = blob_data(&x, &y, &validation);
        let cfg = HeadTrainConfig {
            max_epochs: 5,
            ..HeadTrainConfig::default()
        };
        let device = Default::default();
        let (head, _) = train_head::<AB>(&data, &MlpConfig::berlin(), &cfg, &device).unwrap();
        // Two patches of 2 x 3 pixels, features channel-major per patch.
        let (n, pp) = (2, 6);
        let mut rng = NormalRng::new(9);
        let patches: Vec<f32> = (0..n * 12 * pp)
            .map(|_| rng.normal() as f32 * 3.0)
            .collect();
        let got = head
            .on_host()
            .unwrap()
            .patch_probabilities(&patches, 12, pp);
        let t = Tensor::<B, 4>::from_data(TensorData::new(patches, [n, 12, 2, 3]), &device);
        let rows = t.permute([0, 2, 3, 1]).reshape([n * pp, 12]);
        let want = softmax(head.forward(rows), 1)
            .reshape([n, 2, 3, 3])
            .permute([0, 3, 1, 2])
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert_eq!(got.len(), want.len());
        let d = got
            .iter()
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(d < 1e-5, "probabilities differ by {d}");
    }
}

/// How the early-stopping vectors were chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum ValidationSplit {
    /// Whole spatial blocks (side `block` pixels) of training labels.
    SpatialBlocks { block: usize, blocks: usize },
    /// Too few blocks for a spatial split: single pixels drawn at random.
    RandomPixels,
    /// Too few labels to hold any out: no early stopping.
    None,
}

/// Marks about `fraction` of the labelled pixels (`pixels` = (row, col),
/// `labels` 0-based) as validation. Whole `block` x `block` tiles go to
/// validation so that validation pixels are not neighbours of training
/// pixels; every class keeps at least one training pixel. With fewer than 5
/// occupied tiles the split falls back to random pixels, and with fewer than 10
/// labels (or a fraction of 0) nothing is held out. Seeded.
pub fn validation_split(
    pixels: &[(usize, usize)],
    labels: &[i64],
    fraction: f64,
    block: usize,
    seed: u64,
) -> (Vec<bool>, ValidationSplit) {
    let n = pixels.len();
    let mut held = vec![false; n];
    if n < 10 || fraction <= 0.0 {
        return (held, ValidationSplit::None);
    }
    let mut rng = NormalRng::new(seed);
    let mut tiles: Vec<(usize, usize)> = pixels
        .iter()
        .map(|&(r, c)| (r / block, c / block))
        .collect();
    tiles.sort_unstable();
    tiles.dedup();
    let spatial = tiles.len() >= 5;
    let units: Vec<Vec<usize>> = if spatial {
        tiles
            .iter()
            .map(|t| {
                (0..n)
                    .filter(|&i| (pixels[i].0 / block, pixels[i].1 / block) == *t)
                    .collect()
            })
            .collect()
    } else {
        (0..n).map(|i| vec![i]).collect()
    };
    let mut order: Vec<usize> = (0..units.len()).collect();
    for i in (1..order.len()).rev() {
        let j = rng.below(i + 1);
        order.swap(i, j);
    }
    let classes = labels.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut train_left = vec![0usize; classes];
    for &l in labels {
        train_left[l as usize] += 1;
    }
    let target = (fraction * n as f64).round() as usize;
    let mut taken = 0;
    for u in order {
        if taken >= target {
            break;
        }
        let unit = &units[u];
        // Keep at least one training pixel of every class.
        let mut need = vec![0usize; classes];
        for &i in unit {
            need[labels[i] as usize] += 1;
        }
        if (0..classes).any(|c| need[c] > 0 && need[c] >= train_left[c]) {
            continue;
        }
        for &i in unit {
            held[i] = true;
            train_left[labels[i] as usize] -= 1;
        }
        taken += unit.len();
    }
    let kind = if spatial {
        ValidationSplit::SpatialBlocks {
            block,
            blocks: tiles.len(),
        }
    } else {
        ValidationSplit::RandomPixels
    };
    (held, kind)
}

#[cfg(test)]
mod split_tests {
    use super::*;

    #[test]
    fn validation_takes_whole_blocks_and_keeps_every_class() {
        // Labels on a 10 x 10 lattice spaced 8 px apart: 100 pixels in 25 tiles of 16 px.
        let pixels: Vec<(usize, usize)> = (0..100).map(|i| (8 * (i / 10), 8 * (i % 10))).collect();
        let labels: Vec<i64> = (0..100)
            .map(|i| if i == 0 { 2 } else { (i % 2) as i64 })
            .collect();
        let (held, kind) = validation_split(&pixels, &labels, 0.2, 16, 5);
        assert_eq!(
            kind,
            ValidationSplit::SpatialBlocks {
                block: 16,
                blocks: 25
            }
        );
        let count = held.iter().filter(|h| **h).count();
        assert!((16..=28).contains(&count), "{count}");
        // A tile is either all validation or all training.
        for i in 0..100 {
            for j in 0..100 {
                if (pixels[i].0 / 16, pixels[i].1 / 16) == (pixels[j].0 / 16, pixels[j].1 / 16) {
                    assert_eq!(held[i], held[j]);
                }
            }
        }
        // The only pixel of class 2 stays in training.
        assert!(!held[0]);
        let few: Vec<(usize, usize)> = (0..12).map(|i| (i, 0)).collect();
        let (_, kind) = validation_split(&few, &[0; 12], 0.2, 64, 5);
        assert_eq!(kind, ValidationSplit::RandomPixels);
        let (held, kind) = validation_split(&few[..5], &[0; 5], 0.2, 64, 5);
        assert_eq!(kind, ValidationSplit::None);
        assert!(held.iter().all(|h| !h));
    }
}
