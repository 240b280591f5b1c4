//! The Stage B head's training on the CPU: the small MLP (Linear -> ReLU ->
//! BatchNorm per hidden layer, then a linear layer to the class logits)
//! trained with softmax cross-entropy and Adam with L2 weight decay, in the
//! same f32 operations as burn 0.21's modules and optimiser. A head of a few
//! thousand parameters on mini-batches of 64 rows is all overhead in a
//! tensor library with autodiff (about half a millisecond a step, 16,000
//! steps a run); here a step is a handful of small matrix products.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use super::Adam;

/// A linear layer in burn's row layout: `weight` is `d_in x d_out`, the
/// output of rows x is `x W + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadLinear {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub d_in: usize,
    pub d_out: usize,
}

impl HeadLinear {
    /// `x W + b` for rows x (`n x d_in`).
    fn forward(&self, x: &[f32]) -> Vec<f32> {
        let n = x.len() / self.d_in;
        let mut out: Vec<f32> = (0..n).flat_map(|_| self.bias.iter().copied()).collect();
        let lhs = MatRef::from_row_major_slice(x, n, self.d_in);
        let rhs = MatRef::from_row_major_slice(&self.weight, self.d_in, self.d_out);
        let dst = MatMut::from_row_major_slice_mut(&mut out, n, self.d_out);
        matmul(dst, Accum::Add, lhs, rhs, 1.0f32, Par::Seq);
        out
    }

    /// (dW, db, dx) for inputs x and output gradients dy; dx is empty
    /// unless `want_dx` (the first layer's input needs none).
    fn backward(&self, x: &[f32], dy: &[f32], want_dx: bool) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let n = dy.len() / self.d_out;
        let mut dw = vec![0f32; self.d_in * self.d_out];
        let xm = MatRef::from_row_major_slice(x, n, self.d_in);
        let dym = MatRef::from_row_major_slice(dy, n, self.d_out);
        let dst = MatMut::from_row_major_slice_mut(&mut dw, self.d_in, self.d_out);
        matmul(dst, Accum::Replace, xm.transpose(), dym, 1.0f32, Par::Seq);
        let mut db = vec![0f32; self.d_out];
        for row in dy.chunks_exact(self.d_out) {
            for (d, &v) in db.iter_mut().zip(row) {
                *d += v;
            }
        }
        if !want_dx {
            return (dw, db, Vec::new());
        }
        let mut dx = vec![0f32; n * self.d_in];
        let w = MatRef::from_row_major_slice(&self.weight, self.d_in, self.d_out);
        let dst = MatMut::from_row_major_slice_mut(&mut dx, n, self.d_in);
        matmul(dst, Accum::Replace, dym, w.transpose(), 1.0f32, Par::Seq);
        (dw, db, dx)
    }
}

/// `W^T X + b` for columns X (`d_in x n`): `d_out x n`.
fn columns_through(layer: &HeadLinear, x: &[f32], n: usize) -> Vec<f32> {
    columns_through_weights(&layer.weight, &layer.bias, layer.d_in, x, n)
}

/// [`columns_through`] with the layer given as its `d_in x d_out` weights
/// and its bias.
fn columns_through_weights(
    weight: &[f32],
    bias: &[f32],
    d_in: usize,
    x: &[f32],
    n: usize,
) -> Vec<f32> {
    let d_out = bias.len();
    let mut out: Vec<f32> = bias
        .iter()
        .flat_map(|&b| std::iter::repeat_n(b, n))
        .collect();
    let lhs = MatRef::from_row_major_slice(weight, d_in, d_out).transpose();
    let rhs = MatRef::from_row_major_slice(x, d_in, n);
    let dst = MatMut::from_row_major_slice_mut(&mut out, d_out, n);
    matmul(dst, Accum::Add, lhs, rhs, 1.0f32, Par::Seq);
    out
}

/// BatchNorm over the rows of a batch (burn's: biased batch variance,
/// running statistics with momentum).
#[derive(Debug, Clone, PartialEq)]
pub struct HeadNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub running_mean: Vec<f32>,
    pub running_var: Vec<f32>,
    pub momentum: f32,
    pub epsilon: f32,
}

impl HeadNorm {
    /// sqrt(running var + eps), per channel: what eval mode divides by.
    fn running_std(&self) -> Vec<f32> {
        self.running_var
            .iter()
            .map(|v| (v + self.epsilon).sqrt())
            .collect()
    }

    /// In eval mode, in place: (x - running mean) / sqrt(running var + eps)
    /// * gamma + beta.
    fn eval(&self, x: &mut [f32]) {
        let c = self.gamma.len();
        let std = self.running_std();
        for row in x.chunks_exact_mut(c) {
            for (k, v) in row.iter_mut().enumerate() {
                *v = (*v - self.running_mean[k]) / std[k] * self.gamma[k] + self.beta[k];
            }
        }
    }
}

/// The head: hidden layers, each linear -> ReLU -> BatchNorm, then the
/// output layer.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadMlp {
    pub hidden: Vec<(HeadLinear, HeadNorm)>,
    pub out: HeadLinear,
}

impl HeadMlp {
    /// Logits of rows x in eval mode (BatchNorm with running statistics).
    pub fn logits(&self, x: &[f32]) -> Vec<f32> {
        self.logits_from_first(&self.first_layer_rows(x))
    }

    /// Class probabilities of the columns of `x` (`d_in x n`, channel-major
    /// as a patch's features are kept), `K x n`: each column standardised
    /// as `(v - mean) * inv_std` per channel, through the MLP in eval mode,
    /// and a softmax. Channel-major all the way: the products are `W^T X`,
    /// so no transpose of the (large) input is made, and the standardisation
    /// is folded into the first layer's weights (kept in `scratch`) and
    /// bias, so the input is read once, by the product. Sequential (a caller
    /// runs patches side by side); a column's result depends on the column
    /// alone.
    pub fn column_probabilities(
        &self,
        x: &[f32],
        mean: &[f32],
        inv_std: &[f32],
        scratch: &mut Vec<f32>,
    ) -> Vec<f32> {
        let n = x.len() / mean.len().max(1);
        let first = self.first_layer_columns(x, mean, inv_std, scratch);
        self.probabilities_from_first_columns(first, n)
    }

    /// The first layer's outputs (before its ReLU) for the columns of `x`
    /// (`d_in x n`), standardised as in [`Self::column_probabilities`]:
    /// `d_1 x n`. What [`Self::probabilities_from_first_columns`] takes, so
    /// that a head whose first layer stays fixed can keep them.
    pub fn first_layer_columns(
        &self,
        x: &[f32],
        mean: &[f32],
        inv_std: &[f32],
        scratch: &mut Vec<f32>,
    ) -> Vec<f32> {
        let d = mean.len();
        let n = x.len() / d.max(1);
        // The standardisation folded into the first layer (W' = diag(s) W,
        // b' = b - W'^T m): the product reads the features where they lie,
        // with no standardised copy of them written and read back.
        let first = self.hidden_or_out(0);
        scratch.clear();
        scratch.extend(
            first
                .weight
                .chunks_exact(first.d_out.max(1))
                .zip(inv_std)
                .flat_map(|(row, &s)| row.iter().map(move |&w| w * s)),
        );
        let bias: Vec<f32> = (0..first.d_out)
            .map(|j| {
                let shift: f64 = scratch
                    .iter()
                    .skip(j)
                    .step_by(first.d_out.max(1))
                    .zip(mean)
                    .map(|(&w, &m)| f64::from(w) * f64::from(m))
                    .sum();
                (f64::from(first.bias[j]) - shift) as f32
            })
            .collect();
        columns_through_weights(scratch, &bias, d, x, n)
    }

    /// Class probabilities (`K x n`) of `n` columns from the first layer's
    /// outputs ([`Self::first_layer_columns`]): the rest of the MLP in eval
    /// mode and a softmax.
    pub fn probabilities_from_first_columns(&self, first: Vec<f32>, n: usize) -> Vec<f32> {
        let mut h = first;
        for (i, (_, norm)) in self.hidden.iter().enumerate() {
            let std = norm.running_std();
            for (k, row) in h.chunks_exact_mut(n.max(1)).enumerate() {
                let (rm, sd, g, b) = (norm.running_mean[k], std[k], norm.gamma[k], norm.beta[k]);
                for v in row.iter_mut() {
                    *v = (v.max(0.0) - rm) / sd * g + b;
                }
            }
            h = columns_through(self.hidden_or_out(i + 1), &h, n);
        }
        // Softmax down each column (h holds the K logit rows).
        let mut max = vec![f32::NEG_INFINITY; n];
        for row in h.chunks_exact(n.max(1)) {
            for (m, &v) in max.iter_mut().zip(row) {
                *m = m.max(v);
            }
        }
        let mut sum = vec![0f32; n];
        for row in h.chunks_exact_mut(n.max(1)) {
            for ((v, &m), s) in row.iter_mut().zip(&max).zip(sum.iter_mut()) {
                *v = (*v - m).exp();
                *s += *v;
            }
        }
        for row in h.chunks_exact_mut(n.max(1)) {
            for (v, &s) in row.iter_mut().zip(&sum) {
                *v /= s;
            }
        }
        h
    }

    /// The first layer's outputs (before its ReLU) for rows x (`n x d_in`,
    /// standardised): `n x d_1`, what a trainer with the first layer frozen
    /// ([`HeadTrainer::with_first_layer_frozen`]) and
    /// [`Self::logits_from_first`] take.
    pub fn first_layer_rows(&self, x: &[f32]) -> Vec<f32> {
        self.hidden_or_out(0).forward(x)
    }

    /// Logits in eval mode from the first layer's outputs (rows, as
    /// [`Self::first_layer_rows`] gives them).
    pub fn logits_from_first(&self, first: &[f32]) -> Vec<f32> {
        let Some(((_, norm), rest)) = self.hidden.split_first() else {
            return first.to_vec();
        };
        let mut h: Vec<f32> = first.iter().map(|v| v.max(0.0)).collect();
        norm.eval(&mut h);
        for (l, norm) in rest {
            h = l.forward(&h);
            for v in h.iter_mut() {
                *v = v.max(0.0);
            }
            norm.eval(&mut h);
        }
        self.out.forward(&h)
    }

    /// The first layer's weights and bias (the output layer's when there is
    /// no hidden layer).
    pub fn first_layer(&self) -> &HeadLinear {
        self.hidden_or_out(0)
    }

    /// Layer `i` of the chain: the hidden layers, then the output layer.
    fn hidden_or_out(&self, i: usize) -> &HeadLinear {
        self.hidden.get(i).map_or(&self.out, |(l, _)| l)
    }

    /// Every trained tensor, in one fixed order; without the first hidden
    /// layer's weights and bias when `first_frozen`.
    fn params_mut(&mut self, first_frozen: bool) -> Vec<&mut [f32]> {
        let mut out: Vec<&mut [f32]> = Vec::new();
        for (i, (l, n)) in self.hidden.iter_mut().enumerate() {
            if !(first_frozen && i == 0) {
                out.push(&mut l.weight);
                out.push(&mut l.bias);
            }
            out.push(&mut n.gamma);
            out.push(&mut n.beta);
        }
        out.push(&mut self.out.weight);
        out.push(&mut self.out.bias);
        out
    }
}

/// What one hidden layer's backward pass needs.
struct HiddenTape {
    input: Vec<f32>,
    pre_relu: Vec<f32>,
    normalised: Vec<f32>,
    std: Vec<f32>,
}

/// Trains a [`HeadMlp`] step by step: every layer, or all but the first
/// hidden layer's weights and bias (its BatchNorm still trains), on rows
/// given as that layer's outputs.
pub struct HeadTrainer {
    mlp: HeadMlp,
    adam: Adam,
    first_frozen: bool,
}

impl HeadTrainer {
    /// Adam (beta 0.9 / 0.999, `epsilon`) with L2 `weight_decay` on every
    /// tensor, as burn's `AdamConfig::with_weight_decay`.
    pub fn new(mlp: HeadMlp, epsilon: f32, weight_decay: f32) -> Self {
        Self {
            mlp,
            adam: Adam::new(0.9, 0.999, epsilon).with_weight_decay(weight_decay),
            first_frozen: false,
        }
    }

    /// As [`Self::new`], with the first hidden layer's weights and bias kept
    /// as they are: [`Self::step`] then takes that layer's outputs
    /// ([`HeadMlp::first_layer_rows`]) instead of the features, so the
    /// widest product of the head is made once per row, not once per step.
    /// A head without hidden layers trains whole.
    pub fn with_first_layer_frozen(mlp: HeadMlp, epsilon: f32, weight_decay: f32) -> Self {
        let first_frozen = !mlp.hidden.is_empty();
        Self {
            first_frozen,
            ..Self::new(mlp, epsilon, weight_decay)
        }
    }

    /// Whether [`Self::step`] takes the first layer's outputs.
    pub fn first_frozen(&self) -> bool {
        self.first_frozen
    }

    /// The head as trained so far.
    pub fn mlp(&self) -> &HeadMlp {
        &self.mlp
    }

    /// One step on rows `x` (`n x d_in`, n >= 2; with the first layer
    /// frozen, its outputs, `n x d_1`) with 0-based classes `y`: the batch's
    /// mean cross-entropy before the step.
    pub fn step(&mut self, x: &[f32], y: &[i64], lr: f32) -> f32 {
        let n = y.len();
        let first_frozen = self.first_frozen;
        let mut tapes = Vec::with_capacity(self.mlp.hidden.len());
        let mut h = x.to_vec();
        for (i, (l, norm)) in self.mlp.hidden.iter_mut().enumerate() {
            let pre_relu = if first_frozen && i == 0 {
                h.clone()
            } else {
                l.forward(&h)
            };
            let c = l.d_out;
            let relu: Vec<f32> = pre_relu.iter().map(|v| v.max(0.0)).collect();
            let mut mean = vec![0f32; c];
            for row in relu.chunks_exact(c) {
                for (m, &v) in mean.iter_mut().zip(row) {
                    *m += v;
                }
            }
            for m in &mut mean {
                *m /= n as f32;
            }
            let mut var = vec![0f32; c];
            for row in relu.chunks_exact(c) {
                for ((s, &v), &m) in var.iter_mut().zip(row).zip(&mean) {
                    *s += (v - m) * (v - m);
                }
            }
            for s in &mut var {
                *s /= n as f32;
            }
            let keep = 1.0 - norm.momentum;
            for k in 0..c {
                norm.running_mean[k] = norm.running_mean[k] * keep + mean[k] * norm.momentum;
                norm.running_var[k] = norm.running_var[k] * keep + var[k] * norm.momentum;
            }
            let std: Vec<f32> = var.iter().map(|v| (v + norm.epsilon).sqrt()).collect();
            let mut normalised = relu;
            for row in normalised.chunks_exact_mut(c) {
                for (k, v) in row.iter_mut().enumerate() {
                    *v = (*v - mean[k]) / std[k];
                }
            }
            let out: Vec<f32> = normalised
                .chunks_exact(c)
                .flat_map(|row| {
                    row.iter()
                        .enumerate()
                        .map(|(k, &v)| v * norm.gamma[k] + norm.beta[k])
                })
                .collect();
            tapes.push(HiddenTape {
                input: std::mem::replace(&mut h, out),
                pre_relu,
                normalised,
                std,
            });
        }
        let logits = self.mlp.out.forward(&h);
        // Mean cross-entropy and its gradient (softmax - one hot) / n.
        let k = self.mlp.out.d_out;
        let mut d_logits = vec![0f32; n * k];
        let mut loss = 0f64;
        for ((row, d), &yi) in logits
            .chunks_exact(k)
            .zip(d_logits.chunks_exact_mut(k))
            .zip(y)
        {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
            let lse = max + sum.ln();
            let yi = yi as usize;
            loss += f64::from(lse - row[yi]);
            for (j, (dv, &v)) in d.iter_mut().zip(row).enumerate() {
                let p = (v - lse).exp();
                *dv = (p - if j == yi { 1.0 } else { 0.0 }) / n as f32;
            }
        }
        let mut grads: Vec<Vec<f32>> = Vec::new();
        let (dw, db, mut dh) = self.mlp.out.backward(&h, &d_logits, true);
        let mut layer_grads: Vec<Vec<Vec<f32>>> = Vec::with_capacity(tapes.len());
        for (depth, ((l, norm), tape)) in self.mlp.hidden.iter().zip(tapes).enumerate().rev() {
            let c = l.d_out;
            let mut dgamma = vec![0f32; c];
            let mut dbeta = vec![0f32; c];
            let mut m1 = vec![0f32; c];
            let mut m2 = vec![0f32; c];
            for (drow, xrow) in dh.chunks_exact(c).zip(tape.normalised.chunks_exact(c)) {
                for j in 0..c {
                    let (d, xn) = (drow[j], xrow[j]);
                    dgamma[j] += d * xn;
                    dbeta[j] += d;
                    let dxn = d * norm.gamma[j];
                    m1[j] += dxn;
                    m2[j] += dxn * xn;
                }
            }
            if first_frozen && depth == 0 {
                // The frozen layer's weights take no step and its input
                // needs no gradient.
                layer_grads.push(vec![dgamma, dbeta]);
                break;
            }
            let mut da = vec![0f32; n * c];
            for (((darow, drow), xrow), arow) in da
                .chunks_exact_mut(c)
                .zip(dh.chunks_exact(c))
                .zip(tape.normalised.chunks_exact(c))
                .zip(tape.pre_relu.chunks_exact(c))
            {
                for j in 0..c {
                    let dxn = drow[j] * norm.gamma[j];
                    let dr = (dxn - m1[j] / n as f32 - xrow[j] * (m2[j] / n as f32)) / tape.std[j];
                    darow[j] = if arow[j] > 0.0 { dr } else { 0.0 };
                }
            }
            let (dw, db, dx) = l.backward(&tape.input, &da, depth > 0);
            layer_grads.push(vec![dw, db, dgamma, dbeta]);
            dh = dx;
        }
        for g in layer_grads.into_iter().rev() {
            grads.extend(g);
        }
        grads.push(dw);
        grads.push(db);
        self.adam
            .step(lr, self.mlp.params_mut(first_frozen), &grads);
        (loss / n as f64) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values in [-1, 1) from a fixed linear congruential sequence.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn linear(d_in: usize, d_out: usize, seed: u64) -> HeadLinear {
        HeadLinear {
            weight: values(d_in * d_out, seed),
            bias: values(d_out, seed + 1),
            d_in,
            d_out,
        }
    }

    fn norm(c: usize, seed: u64) -> HeadNorm {
        HeadNorm {
            gamma: values(c, seed).iter().map(|v| 1.0 + 0.2 * v).collect(),
            beta: values(c, seed + 1),
            running_mean: values(c, seed + 2).iter().map(|v| v.abs()).collect(),
            running_var: values(c, seed + 3).iter().map(|v| 0.5 + v.abs()).collect(),
            momentum: 0.1,
            epsilon: 1e-5,
        }
    }

    /// 24 -> 8 -> 6 -> 3 classes.
    fn head() -> HeadMlp {
        HeadMlp {
            hidden: vec![
                (linear(24, 8, 1), norm(8, 11)),
                (linear(8, 6, 3), norm(6, 21)),
            ],
            out: linear(6, 3, 5),
        }
    }

    #[test]
    fn the_first_layers_outputs_lead_to_the_same_results_bit_for_bit() {
        let mlp = head();
        let n = 40;
        let x = values(n * 24, 7);
        assert_eq!(
            mlp.logits_from_first(&mlp.first_layer_rows(&x)),
            mlp.logits(&x)
        );
        // Channel-major, with a standardisation folded in.
        let columns = values(24 * n, 9);
        let mean = values(24, 13);
        let inv_std: Vec<f32> = values(24, 17).iter().map(|v| 0.5 + v.abs()).collect();
        let mut scratch = Vec::new();
        let whole = mlp.column_probabilities(&columns, &mean, &inv_std, &mut scratch);
        let first = mlp.first_layer_columns(&columns, &mean, &inv_std, &mut scratch);
        assert_eq!(first.len(), 8 * n);
        assert_eq!(mlp.probabilities_from_first_columns(first, n), whole);
        for column in 0..n {
            let sum: f32 = (0..3).map(|k| whole[k * n + column]).sum();
            assert!((sum - 1.0).abs() < 1e-5, "column {column}: {sum}");
        }
    }

    #[test]
    fn a_frozen_first_layer_keeps_its_weights_and_trains_the_rest_as_a_whole_step_would() {
        let n = 32;
        let x = values(n * 24, 19);
        let y: Vec<i64> = (0..n as i64).map(|i| i % 3).collect();
        let mut whole = HeadTrainer::new(head(), 1e-8, 5e-4);
        let mut frozen = HeadTrainer::with_first_layer_frozen(head(), 1e-8, 5e-4);
        assert!(frozen.first_frozen() && !whole.first_frozen());
        let first = head().first_layer_rows(&x);
        let loss_whole = whole.step(&x, &y, 1e-2);
        let loss_frozen = frozen.step(&first, &y, 1e-2);
        // The same forward pass, and the same gradients for every tensor but
        // the first layer's (Adam steps each tensor on its own).
        assert_eq!(loss_whole, loss_frozen);
        let (w, f) = (whole.mlp(), frozen.mlp());
        assert_eq!(f.hidden[0].0, head().hidden[0].0, "the frozen layer moved");
        assert_ne!(w.hidden[0].0, head().hidden[0].0);
        assert_eq!(f.hidden[0].1, w.hidden[0].1);
        assert_eq!(f.hidden[1], w.hidden[1]);
        assert_eq!(f.out, w.out);
        // Further steps lower the loss with the first layer still fixed.
        let mut last = loss_frozen;
        for _ in 0..200 {
            last = frozen.step(&first, &y, 1e-2);
        }
        assert!(last < 0.5 * loss_frozen, "{loss_frozen} -> {last}");
        assert_eq!(frozen.mlp().hidden[0].0, head().hidden[0].0);
        // A head without hidden layers has no layer to freeze.
        let bare = HeadMlp {
            hidden: Vec::new(),
            out: linear(24, 3, 5),
        };
        assert!(!HeadTrainer::with_first_layer_frozen(bare, 1e-8, 0.0).first_frozen());
    }
}
