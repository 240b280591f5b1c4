//! Three operations of the U-Net with backward passes that keep less than
//! burn's composed versions, so that Stage A's autodiff tape of the ImageNet-64
//! U-Net at batch 32 fits a 24 GB GPU:
//!
//! - the attention core softmax(q^T k) v keeps q, k, v and one row statistic
//!   instead of two T x T matrices per head (at 32 x 32 positions those were
//!   the largest tensors of the whole tape), recomputing the softmax in the
//!   backward pass, in chunks of heads so that its transient stays bounded;
//! - SiLU keeps its input only (burn's x * sigmoid(x) keeps two tensors);
//! - a convolution with frozen weights keeps no activation at all (burn's
//!   keeps its input for the weight gradient that nobody asks for).
//!
//! Backends without autodiff run the plain forward; `Autodiff<B, C>` adds the
//! lean backward. Every backend the app runs on implements [`UNetOps`].

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::prelude::*;
use burn::tensor::module::{conv_transpose2d, conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, FloatTensor};
use burn::tensor::{TensorMetadata, TensorPrimitive, activation};

/// Largest number of T x T score elements one chunk of the attention core
/// materialises at once (64 MiB in f32).
const SCORES_PER_CHUNK: usize = 1 << 24;

/// The U-Net's operations with memory-lean backward passes (see the module
/// documentation). The provided methods are the plain forward passes.
pub trait UNetOps: Backend {
    /// The backend computes on the host CPU: inference runs through
    /// `host_unet::HostUNet`, which is several times faster there.
    const ON_HOST: bool = false;

    /// softmax over keys of (q^T k), applied to v: q, k, v are (N, ch, T)
    /// with the scales already applied; returns (N, ch, T). The scores and the
    /// softmax run in f32 whatever the tensors' precision.
    fn attention_core(
        q: Tensor<Self, 3>,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
    ) -> Tensor<Self, 3> {
        attention_forward(q, k, v).0
    }

    /// x * sigmoid(x).
    fn silu<const D: usize>(x: Tensor<Self, D>) -> Tensor<Self, D> {
        activation::silu(x)
    }

    /// A stride-1 "same" convolution whose weight and bias take no gradient.
    fn conv2d_frozen(
        x: Tensor<Self, 4>,
        weight: Tensor<Self, 4>,
        bias: Tensor<Self, 1>,
        padding: usize,
    ) -> Tensor<Self, 4> {
        conv2d(x, weight, Some(bias), conv_options(padding))
    }
}

fn conv_options(padding: usize) -> ConvOptions<2> {
    ConvOptions::new([1, 1], [padding, padding], [1, 1], 1)
}

/// Rows of (N, ch, T) tensors per chunk so that a chunk's scores stay under
/// [`SCORES_PER_CHUNK`].
fn chunk_rows(n: usize, t: usize) -> usize {
    (SCORES_PER_CHUNK / (t * t).max(1)).clamp(1, n.max(1))
}

/// The attention core's forward pass, chunked over N: the output (N, ch, T)
/// and the log-sum-exp of every score row (N, T, 1) in f32, from which the
/// backward pass recomputes the softmax.
fn attention_forward<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
) -> (Tensor<B, 3>, Tensor<B, 3>) {
    let [n, _, t] = q.dims();
    attention_forward_in_chunks(q, k, v, chunk_rows(n, t))
}

fn attention_forward_in_chunks<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    rows: usize,
) -> (Tensor<B, 3>, Tensor<B, 3>) {
    let n = q.dims()[0];
    let dtype = q.dtype();
    let mut outs = Vec::with_capacity(n.div_ceil(rows));
    let mut lses = Vec::with_capacity(n.div_ceil(rows));
    for start in (0..n).step_by(rows) {
        let len = rows.min(n - start);
        let qc = q.clone().narrow(0, start, len);
        let kc = k.clone().narrow(0, start, len);
        let vc = v.clone().narrow(0, start, len);
        // scores[n, t, s] = sum_c q[n, c, t] k[n, c, s]
        let scores = to_f32(qc.swap_dims(1, 2).matmul(kc));
        let max = scores.clone().max_dim(2);
        let e = (scores - max.clone()).exp();
        let sum = e.clone().sum_dim(2);
        let p = to_dtype(e / sum.clone(), dtype);
        // out[n, c, t] = sum_s p[n, t, s] v[n, c, s]
        outs.push(vc.matmul(p.swap_dims(1, 2)));
        lses.push(max + sum.log());
    }
    (Tensor::cat(outs, 0), Tensor::cat(lses, 0))
}

/// Gradients of the attention core with respect to q, k and v, recomputing
/// the softmax from the saved log-sum-exp, chunk by chunk.
fn attention_backward<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    lse: Tensor<B, 3>,
    grad: Tensor<B, 3>,
) -> [Tensor<B, 3>; 3] {
    let [n, _, t] = q.dims();
    attention_backward_in_chunks(q, k, v, lse, grad, chunk_rows(n, t))
}

fn attention_backward_in_chunks<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    lse: Tensor<B, 3>,
    grad: Tensor<B, 3>,
    rows: usize,
) -> [Tensor<B, 3>; 3] {
    let n = q.dims()[0];
    let dtype = q.dtype();
    let chunks = n.div_ceil(rows);
    let (mut dqs, mut dks, mut dvs) = (
        Vec::with_capacity(chunks),
        Vec::with_capacity(chunks),
        Vec::with_capacity(chunks),
    );
    for start in (0..n).step_by(rows) {
        let len = rows.min(n - start);
        let qc = q.clone().narrow(0, start, len);
        let kc = k.clone().narrow(0, start, len);
        let vc = v.clone().narrow(0, start, len);
        let gc = grad.clone().narrow(0, start, len);
        let scores = to_f32(qc.clone().swap_dims(1, 2).matmul(kc.clone()));
        let p32 = (scores - lse.clone().narrow(0, start, len)).exp();
        let p = to_dtype(p32.clone(), dtype);
        // dv[n, c, s] = sum_t g[n, c, t] p[n, t, s]
        dvs.push(gc.clone().matmul(p));
        // dp[n, t, s] = sum_c g[n, c, t] v[n, c, s]
        let dp = to_f32(gc.swap_dims(1, 2).matmul(vc));
        let row = (dp.clone() * p32.clone()).sum_dim(2);
        let ds = to_dtype(p32 * (dp - row), dtype);
        // dq[n, c, t] = sum_s k[n, c, s] ds[n, t, s]; dk[n, c, s] = sum_t q[n, c, t] ds[n, t, s]
        dqs.push(kc.matmul(ds.clone().swap_dims(1, 2)));
        dks.push(qc.matmul(ds));
    }
    [
        Tensor::cat(dqs, 0),
        Tensor::cat(dks, 0),
        Tensor::cat(dvs, 0),
    ]
}

fn tensor<B: Backend, const D: usize>(p: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

fn primitive<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

#[derive(Debug)]
struct AttentionCoreBackward;

impl<B: Backend> Backward<B, 3> for AttentionCoreBackward {
    /// q, k, v and the log-sum-exp rows.
    type State = (NodeId, NodeId, NodeId, FloatTensor<B>);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_q, node_k, node_v] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (q, k, v, lse) = ops.state;
        let q: FloatTensor<B> = checkpointer.retrieve_node_output(q);
        let k: FloatTensor<B> = checkpointer.retrieve_node_output(k);
        let v: FloatTensor<B> = checkpointer.retrieve_node_output(v);
        let [dq, dk, dv] =
            attention_backward::<B>(tensor(q), tensor(k), tensor(v), tensor(lse), tensor(grad));
        for (node, g) in [(node_q, dq), (node_k, dk), (node_v, dv)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, primitive(g));
            }
        }
    }
}

#[derive(Debug)]
struct SiluBackward;

impl<B: Backend> Backward<B, 1> for SiluBackward {
    /// The input.
    type State = NodeId;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let x: FloatTensor<B> = checkpointer.retrieve_node_output(ops.state);
        if let Some(node) = node_x {
            // d/dx x s(x) = s (1 + x (1 - s)), element-wise on flat views.
            let shape = x.shape();
            let flat = |p: FloatTensor<B>| {
                tensor::<B, 1>(B::float_reshape(p, [shape.num_elements()].into()))
            };
            let x = flat(x);
            let s = activation::sigmoid(x.clone());
            let d = s.clone() * (x * (s.neg() + 1.0) + 1.0);
            let g = primitive(d * flat(grad));
            grads.register::<B>(node.id, B::float_reshape(g, shape));
        }
    }
}

#[derive(Debug)]
struct FrozenConvBackward;

impl<B: Backend> Backward<B, 1> for FrozenConvBackward {
    /// The weight and the padding.
    type State = (FloatTensor<B>, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (weight, padding) = ops.state;
        if let Some(node) = node_x {
            // The input gradient of a stride-1 convolution is the transposed
            // convolution of the output gradient with the same weight.
            let g = conv_transpose2d(
                tensor::<B, 4>(grad),
                tensor::<B, 4>(weight),
                None,
                ConvTransposeOptions::new([1, 1], [padding, padding], [0, 0], [1, 1], 1),
            );
            grads.register::<B>(node.id, primitive(g));
        }
    }
}

impl<B: UNetOps, C: CheckpointStrategy> UNetOps for Autodiff<B, C> {
    const ON_HOST: bool = B::ON_HOST;

    fn attention_core(
        q: Tensor<Self, 3>,
        k: Tensor<Self, 3>,
        v: Tensor<Self, 3>,
    ) -> Tensor<Self, 3> {
        let (q, k, v) = (primitive(q), primitive(k), primitive(v));
        let out = match AttentionCoreBackward
            .prepare::<C>([q.node.clone(), k.node.clone(), v.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let (out, lse) = attention_forward::<B>(
                    tensor(q.primitive.clone()),
                    tensor(k.primitive.clone()),
                    tensor(v.primitive.clone()),
                );
                let state = (
                    prep.checkpoint(&q),
                    prep.checkpoint(&k),
                    prep.checkpoint(&v),
                    primitive(lse),
                );
                prep.finish(state, primitive(out))
            }
            OpsKind::UnTracked(prep) => {
                let out = B::attention_core(
                    tensor(q.primitive),
                    tensor(k.primitive),
                    tensor(v.primitive),
                );
                prep.finish(primitive(out))
            }
        };
        tensor(out)
    }

    fn silu<const D: usize>(x: Tensor<Self, D>) -> Tensor<Self, D> {
        let x = primitive(x);
        let out = match SiluBackward
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let y = B::silu(tensor::<B, D>(x.primitive.clone()));
                let state = prep.checkpoint(&x);
                prep.finish(state, primitive(y))
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(primitive(B::silu(tensor::<B, D>(x.primitive))))
            }
        };
        tensor(out)
    }

    fn conv2d_frozen(
        x: Tensor<Self, 4>,
        weight: Tensor<Self, 4>,
        bias: Tensor<Self, 1>,
        padding: usize,
    ) -> Tensor<Self, 4> {
        let (x, weight, bias) = (primitive(x), primitive(weight), primitive(bias));
        if weight.is_tracked() || bias.is_tracked() {
            // Not frozen after all: burn's convolution, with every gradient.
            return conv2d(
                tensor(x),
                tensor(weight),
                Some(tensor(bias)),
                conv_options(padding),
            );
        }
        let y = |x: FloatTensor<B>, w: FloatTensor<B>, b: FloatTensor<B>| {
            primitive(B::conv2d_frozen(tensor(x), tensor(w), tensor(b), padding))
        };
        let out = match FrozenConvBackward
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = y(x.primitive, weight.primitive.clone(), bias.primitive);
                prep.finish((weight.primitive, padding), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(y(x.primitive, weight.primitive, bias.primitive))
            }
        };
        tensor(out)
    }
}

impl UNetOps for burn::backend::NdArray<f32> {
    const ON_HOST: bool = true;
}
impl UNetOps for burn::backend::Flex {
    const ON_HOST: bool = true;
}
#[cfg(feature = "cuda")]
impl UNetOps for burn::backend::Cuda<f32> {}
#[cfg(feature = "cuda")]
impl UNetOps for burn::backend::Cuda<burn::tensor::f16> {}
#[cfg(feature = "cuda")]
impl UNetOps for burn::backend::Cuda<burn::tensor::bf16> {}
#[cfg(feature = "wgpu")]
impl UNetOps for burn::backend::Wgpu<f32> {}
#[cfg(feature = "wgpu")]
impl UNetOps for burn::backend::Wgpu<burn::tensor::f16> {}

/// An autodiff backend whose inner backend also runs the U-Net (Stage A
/// trains on the former, Stage B and inference run on the latter).
pub trait UNetAutodiff:
    burn::tensor::backend::AutodiffBackend<InnerBackend: UNetOps> + UNetOps
{
}

impl<T> UNetAutodiff for T
where
    T: burn::tensor::backend::AutodiffBackend + UNetOps,
    T::InnerBackend: UNetOps,
{
}

/// `x` in f32 (itself when it is already).
pub fn to_f32<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    to_dtype(x, burn::tensor::DType::F32)
}

/// `x` in `dtype` (itself when it is already).
pub fn to_dtype<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    dtype: burn::tensor::DType,
) -> Tensor<B, D> {
    if x.dtype() == dtype {
        x
    } else {
        x.cast(burn::tensor::FloatDType::from(dtype))
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::activation::softmax;
    use burn::tensor::{Distribution, Tolerance};

    use super::*;

    type B = NdArray<f32>;
    type AB = Autodiff<B>;

    fn random<const D: usize>(dims: [usize; D], seed: u64) -> Tensor<B, D> {
        <B as Backend>::seed(&Default::default(), seed);
        Tensor::random(dims, Distribution::Normal(0.0, 1.0), &Default::default())
    }

    fn close<const D: usize>(ours: Tensor<B, D>, reference: Tensor<B, D>) {
        ours.into_data()
            .assert_approx_eq::<f32>(&reference.into_data(), Tolerance::absolute(1e-5));
    }

    /// burn's composed attention, the reference for the lean one.
    fn composed_attention(q: Tensor<AB, 3>, k: Tensor<AB, 3>, v: Tensor<AB, 3>) -> Tensor<AB, 3> {
        let w = softmax(q.swap_dims(1, 2).matmul(k), 2);
        v.matmul(w.swap_dims(1, 2))
    }

    /// Output and input gradients of `f` under the loss sum(out * weights).
    fn output_and_grads<const D: usize, const N: usize>(
        inputs: [Tensor<B, D>; N],
        weights: Tensor<B, D>,
        f: impl Fn([Tensor<AB, D>; N]) -> Tensor<AB, D>,
    ) -> (Tensor<B, D>, [Tensor<B, D>; N]) {
        let tracked = inputs.map(|x| Tensor::<AB, D>::from_inner(x).require_grad());
        let out = f(tracked.clone());
        let grads = (out.clone() * Tensor::from_inner(weights)).sum().backward();
        let g = tracked.map(|x| x.grad(&grads).expect("every input is tracked"));
        (out.inner(), g)
    }

    #[test]
    fn lean_attention_matches_the_composed_one_with_its_gradients() {
        let (q, k, v) = (
            random([5, 4, 7], 1),
            random([5, 4, 7], 2),
            random([5, 4, 7], 3),
        );
        let weights = random([5, 4, 7], 4);
        let (lean, lean_g) = output_and_grads(
            [q.clone(), k.clone(), v.clone()],
            weights.clone(),
            |[q, k, v]| AB::attention_core(q, k, v),
        );
        let (reference, reference_g) = output_and_grads(
            [q.clone(), k.clone(), v.clone()],
            weights.clone(),
            |[q, k, v]| composed_attention(q, k, v),
        );
        close(lean, reference.clone());
        for (a, b) in lean_g.into_iter().zip(reference_g) {
            close(a, b);
        }
        // Chunks of two rows (three chunks, the last ragged) give the same.
        let (out, lse) = attention_forward_in_chunks(q.clone(), k.clone(), v.clone(), 2);
        close(out, reference);
        let chunked = attention_backward_in_chunks(
            q.clone(),
            k.clone(),
            v.clone(),
            lse.clone(),
            weights.clone(),
            2,
        );
        let whole = attention_backward_in_chunks(q, k, v, lse, weights, 5);
        for (a, b) in chunked.into_iter().zip(whole) {
            close(a, b);
        }
    }

    #[test]
    fn lean_silu_matches_burns_with_its_gradient() {
        let x = random([2, 3, 4, 5], 5);
        let weights = random([2, 3, 4, 5], 6);
        let (lean, [lean_g]) = output_and_grads([x.clone()], weights.clone(), |[x]| AB::silu(x));
        let (reference, [reference_g]) = output_and_grads([x], weights, |[x]| activation::silu(x));
        close(lean, reference);
        close(lean_g, reference_g);
    }

    #[test]
    fn frozen_convolution_matches_burns_with_the_input_gradient() {
        for (k, padding) in [(3, 1), (1, 0)] {
            let x = random([2, 3, 6, 5], 7);
            let weight = random([4, 3, k, k], 8);
            let bias = random([4], 9);
            let weights = random([2, 4, 6, 5], 10);
            let frozen = |[x]: [Tensor<AB, 4>; 1]| {
                AB::conv2d_frozen(
                    x,
                    Tensor::from_inner(weight.clone()),
                    Tensor::from_inner(bias.clone()),
                    padding,
                )
            };
            let plain = |[x]: [Tensor<AB, 4>; 1]| {
                conv2d(
                    x,
                    Tensor::from_inner(weight.clone()),
                    Some(Tensor::from_inner(bias.clone())),
                    conv_options(padding),
                )
            };
            let (lean, [lean_g]) = output_and_grads([x.clone()], weights.clone(), frozen);
            let (reference, [reference_g]) = output_and_grads([x], weights, plain);
            close(lean, reference);
            close(lean_g, reference_g);
        }
    }

    #[test]
    fn a_convolution_whose_weight_trains_still_gets_its_gradient() {
        let x = Tensor::<AB, 4>::from_inner(random([1, 2, 4, 4], 11));
        let weight = Tensor::<AB, 4>::from_inner(random([3, 2, 3, 3], 12)).require_grad();
        let bias = Tensor::<AB, 1>::from_inner(random([3], 13));
        let grads = AB::conv2d_frozen(x, weight.clone(), bias, 1)
            .sum()
            .backward();
        let g = weight.grad(&grads).expect("the weight is tracked");
        assert!(g.abs().sum().into_scalar() > 0.0);
    }
}
