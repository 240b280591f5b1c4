//! The Stage B head (method.md section 7): a small MLP on frozen features,
//! Linear -> ReLU -> BatchNorm per hidden layer, Kaiming-normal (fan-in)
//! weights and zero biases; cross-entropy, Adam with L2 weight decay, seeded
//! shuffled mini-batches, early stopping on a validation part of the
//! TRAINING labels only (never on test pixels).

use burn::module::{AutodiffModule, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, TensorData};
use serde::Serialize;

use crate::model::params::NormalRng;

/// Hidden layer widths of the MLP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// The classifier.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub layers: Vec<Linear<B>>,
    pub norms: Vec<BatchNorm<B>>,
    pub head: Linear<B>,
}

fn kaiming_linear<B: Backend>(d_in: usize, d_out: usize, device: &B::Device) -> Linear<B> {
    let mut l = LinearConfig::new(d_in, d_out)
        .with_initializer(Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: false,
        })
        .init(device);
    l.bias = Some(Param::from_tensor(Tensor::zeros([d_out], device)));
    l
}

impl<B: Backend> Mlp<B> {
    pub fn new(d_in: usize, classes: usize, cfg: &MlpConfig, device: &B::Device) -> Self {
        let mut layers = Vec::new();
        let mut norms = Vec::new();
        let mut width = d_in;
        for &h in &cfg.hidden {
            layers.push(kaiming_linear(width, h, device));
            norms.push(BatchNormConfig::new(h).init(device));
            width = h;
        }
        Self {
            layers,
            norms,
            head: kaiming_linear(width, classes, device),
        }
    }

    /// Logits (N, K) of features (N, D).
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let mut h = x;
        for (l, n) in self.layers.iter().zip(&self.norms) {
            h = n.forward(relu(l.forward(h)));
        }
        self.head.forward(h)
    }
}

/// Settings of the head's training.
#[derive(Debug, Clone, Serialize)]
pub struct HeadTrainConfig {
    pub lr: f64,
    pub weight_decay: f64,
    pub batch: usize,
    pub max_epochs: usize,
    /// Epochs without a better validation accuracy before stopping.
    pub patience: usize,
    pub seed: u64,
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
        }
    }
}

/// What training did.
#[derive(Debug, Clone, Serialize)]
pub struct HeadTrainReport {
    pub epochs: usize,
    pub best_epoch: usize,
    pub train_loss: Vec<f32>,
    /// Validation accuracy per epoch (empty without validation vectors).
    pub validation_accuracy: Vec<f64>,
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
pub fn predict_classes<B: Backend>(model: &Mlp<B>, features: Tensor<B, 2>) -> Vec<i64> {
    model
        .forward(features)
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .to_vec::<i64>()
        .unwrap_or_default()
}

/// Trains the head; returns the model of the best validation epoch (the last
/// epoch when there is no validation part).
pub fn train_head<B: AutodiffBackend>(
    data: &HeadData,
    cfg: &MlpConfig,
    train: &HeadTrainConfig,
    device: &B::Device,
) -> (Mlp<B::InnerBackend>, HeadTrainReport) {
    B::seed(device, train.seed);
    let mut model = Mlp::<B>::new(data.dim, data.classes, cfg, device);
    let mut optim = AdamConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(Some(WeightDecayConfig::new(train.weight_decay as f32)))
        .init::<B, Mlp<B>>();
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let n = data.labels.len();
    let train_idx: Vec<usize> = (0..n).filter(|&i| !data.validation[i]).collect();
    let val_idx: Vec<usize> = (0..n).filter(|&i| data.validation[i]).collect();
    let val = (!val_idx.is_empty()).then(|| rows::<B::InnerBackend>(data, &val_idx, device));
    let mut rng = NormalRng::new(train.seed ^ 0x5EED);
    let mut report = HeadTrainReport {
        epochs: 0,
        best_epoch: 0,
        train_loss: Vec::new(),
        validation_accuracy: Vec::new(),
    };
    let mut best: Option<(f64, Mlp<B::InnerBackend>)> = None;
    let mut since_best = 0;
    let mut order = train_idx.clone();
    for epoch in 0..train.max_epochs {
        for i in (1..order.len()).rev() {
            let j = ((rng.uniform() * (i + 1) as f64) as usize).min(i);
            order.swap(i, j);
        }
        let mut total = 0.0;
        let mut batches = 0;
        for chunk in order.chunks(train.batch.max(2)) {
            if chunk.len() < 2 {
                continue; // BatchNorm needs two samples
            }
            let (x, y) = rows::<B>(data, chunk, device);
            let loss = loss_fn.forward(model.forward(x), y);
            total += loss.clone().into_scalar().elem::<f64>();
            batches += 1;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(train.lr, model, grads);
        }
        report.epochs = epoch + 1;
        report
            .train_loss
            .push((total / batches.max(1) as f64) as f32);
        let Some((vx, vy)) = &val else {
            continue;
        };
        let eval = model.valid();
        let predicted = predict_classes(&eval, vx.clone());
        let truth = vy
            .clone()
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .unwrap_or_default();
        let acc = predicted.iter().zip(&truth).filter(|(a, b)| a == b).count() as f64
            / truth.len().max(1) as f64;
        report.validation_accuracy.push(acc);
        if best.as_ref().is_none_or(|(b, _)| acc > *b) {
            best = Some((acc, eval));
            report.best_epoch = epoch + 1;
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= train.patience {
                break;
            }
        }
    }
    let model = match best {
        Some((_, m)) => m,
        None => {
            report.best_epoch = report.epochs;
            model.valid()
        }
    };
    (model, report)
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};

    use super::*;

    type AB = Autodiff<NdArray<f32>>;

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
        let (model, report) = train_head::<AB>(&data, &MlpConfig::berlin(), &cfg, &device);
        let best = report.validation_accuracy[report.best_epoch - 1];
        assert!(best > 0.85, "validation accuracy {best}");
        assert!(report.train_loss.last() < report.train_loss.first());
        let all = Tensor::from_data(TensorData::new(x.clone(), [300, 12]), &device);
        let first = predict_classes(&model, all);
        let (model2, _) = train_head::<AB>(&data, &MlpConfig::berlin(), &cfg, &device);
        let all = Tensor::from_data(TensorData::new(x, [300, 12]), &device);
        assert_eq!(
            first,
            predict_classes(&model2, all),
            "same seed, same predictions"
        );
    }
}

/// How the early-stopping vectors were chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
/// labels nothing is held out. Seeded.
pub fn validation_split(
    pixels: &[(usize, usize)],
    labels: &[i64],
    fraction: f64,
    block: usize,
    seed: u64,
) -> (Vec<bool>, ValidationSplit) {
    let n = pixels.len();
    let mut held = vec![false; n];
    if n < 10 {
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
        let j = ((rng.uniform() * (i + 1) as f64) as usize).min(i);
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
