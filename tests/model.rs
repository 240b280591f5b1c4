//! The diffusion backbone against the reference (guided-diffusion, PyTorch)
//! on the tiny fixture model: checkpoint import from `.pt` and safetensors,
//! forward activations, embeddings and FiLM pairs, the cosine schedule, one
//! Stage A step (loss terms, gradients, Adam update), the ImageNet-64 tensor
//! map and counts, clear errors for checkpoints that do not fit, and a tiny
//! Stage A run on the real Sentinel-1/2 scene (loss, cancel, adapter reload).
//!
//! Tolerances: activations and `out` within 1e-4 max abs (the reference's own
//! reorder noise is 1.1e-5); schedule within 1e-12 (f64); loss terms 1e-5
//! relative; gradients 1e-4 relative (norm-wise); Adam update 1e-6.
//! All in one test binary, so burn's generic kernels are compiled once.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::TensorData;
use common::{Tensors, demo, fixture, max_abs_diff};
use unidiff_studio::base::CancelFlag;
use unidiff_studio::base::NormalRng;
use unidiff_studio::io::{SarScaleChoice, open_hsi, open_sar};
use unidiff_studio::model::adapter::{AdapterMetadata, read_adapter_metadata, save_adapter};
use unidiff_studio::model::checkpoint::write_f32_safetensors;
use unidiff_studio::model::host_unet::{Act, HostAdam, HostTrainer, block_id, host_unet};
use unidiff_studio::model::inspect::{expected_tensors, summarize};
use unidiff_studio::model::loss::{LossKind, q_sample, training_losses};
use unidiff_studio::model::params::ParamSource;
use unidiff_studio::model::resblock::BlockContext;
use unidiff_studio::model::schedule::Schedule;
use unidiff_studio::model::trainable::TrainableParam;
use unidiff_studio::model::{CheckpointError, CheckpointTensors, UNet, UNetConfig};
use unidiff_studio::pipeline::features::{
    FeatureSpec, concat_features, concat_features_host, modality_features,
};
use unidiff_studio::pipeline::patches::PatchPool;
use unidiff_studio::pipeline::stage_a::{AdaptConfig, BatchSampler, adapt, burn_adam};
use unidiff_studio::pipeline::{Modality, PatchGrid};
use unidiff_studio::products::renderings::{RenderSettings, render_all};
use unidiff_studio::scene::Scene;

type B = NdArray<f32>;
type AB = Autodiff<NdArray<f32>>;

fn tiny_from(file: &str) -> UNet<B> {
    tiny_on::<B>(file)
}

fn tiny_on<M: Backend>(file: &str) -> UNet<M> {
    let ckpt = CheckpointTensors::open(&fixture(file)).unwrap();
    UNet::<M>::build(
        &UNetConfig::tiny(),
        ParamSource::Checkpoint(&ckpt),
        &Default::default(),
    )
    .unwrap()
}

/// `n` random 32 x 32 patches in network space (n x 3 x 32 x 32) and one
/// noise image (3 x 32 x 32).
fn random_patches(seed: u64, n: usize) -> (Vec<f32>, Vec<f32>) {
    let mut rng = NormalRng::new(seed);
    let per = 3 * 32 * 32;
    let x0 = (0..n * per)
        .map(|_| (rng.uniform() * 2.0 - 1.0) as f32)
        .collect();
    let noise = (0..per).map(|_| rng.normal() as f32).collect();
    (x0, noise)
}

fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

#[test]
fn forward_matches_the_reference_from_the_pytorch_checkpoint() {
    let model = tiny_from("adm_tiny/model.pt");
    let io = Tensors::open("adm_tiny/io.safetensors");
    let (xs, x) = io.f32("x");
    let (_, t) = io.i64("t");
    let (_, y) = io.i64("y");
    let device = Default::default();
    let x = Tensor::<B, 4>::from_data(TensorData::new(x, xs.clone()), &device);

    let temb = model.time_embedding(&t);
    let (_, want) = io.f32("time_embed");
    assert!(max_abs_diff(&values(temb), &want) < 1e-5, "time_embed");
    let emb = model.embedding(&t, &y);
    let (_, want) = io.f32("emb");
    assert!(max_abs_diff(&values(emb.clone()), &want) < 1e-5, "emb");

    let mut seen = Vec::new();
    let out = model.forward_blocks(
        x,
        emb.clone(),
        BlockContext { train: false },
        None,
        &mut |id, act| {
            seen.push((id.name(), act.clone()));
        },
    );
    assert_eq!(seen.len(), 9 + 1 + 9);
    for (name, act) in seen {
        let (shape, want) = io.f32(&name);
        assert_eq!(act.dims().to_vec(), shape, "{name}");
        let d = max_abs_diff(&values(act), &want);
        assert!(d < 1e-4, "{name}: max abs diff {d}");
    }
    let (_, want) = io.f32("out");
    let d = max_abs_diff(&values(out), &want);
    assert!(d < 1e-4, "out: max abs diff {d}");

    // Every ResBlock's FiLM pair (scale, shift).
    let emb_silu = burn::tensor::activation::silu(emb);
    let blocks = model.named_resblocks();
    assert_eq!(blocks.len(), 21);
    for (name, block) in blocks {
        let (_, want) = io.f32(&format!("emb_out.{name}"));
        let d = max_abs_diff(&values(block.film(emb_silu.clone())), &want);
        assert!(d < 1e-5, "emb_out.{name}: {d}");
    }
}

/// The host forward (the CPU's inference path) against the reference at
/// every block and at the output, 1e-4 max abs as burn's forward above.
#[test]
fn host_forward_matches_the_reference_at_every_block() {
    let model = tiny_from("adm_tiny/model.pt");
    let host = host_unet(&model).unwrap();
    let io = Tensors::open("adm_tiny/io.safetensors");
    let (xs, x) = io.f32("x");
    let (_, t) = io.i64("t");
    let (_, y) = io.i64("y");
    let emb = host.embedding(&t, &y).unwrap();
    let (_, want) = io.f32("emb");
    assert!(max_abs_diff(&emb, &want) < 1e-5, "emb");
    let x = Act::from_nchw(&x, xs[0], xs[1], xs[2], xs[3]);
    let mut seen = Vec::new();
    let out = host.forward_blocks(x, &emb, None, &mut |id, act| {
        seen.push((block_id(id).name(), act.clone()))
    });
    assert_eq!(seen.len(), 9 + 1 + 9);
    for (name, act) in seen {
        let (shape, want) = io.f32(&name);
        assert_eq!(vec![act.n, act.c, act.h, act.w], shape, "{name}");
        let d = max_abs_diff(&act.to_nchw(), &want);
        assert!(d < 1e-4, "{name}: max abs diff {d}");
    }
    let (_, want) = io.f32("out");
    let d = max_abs_diff(&out.to_nchw(), &want);
    assert!(d < 1e-4, "out: max abs diff {d}");
    // Stopping after a block returns its activation and computes no more.
    let x = Act::from_nchw(&io.f32("x").1, xs[0], xs[1], xs[2], xs[3]);
    let mut last = String::new();
    let act = host.forward_blocks(x, &emb, Some(4), &mut |id, _| last = block_id(id).name());
    assert_eq!(last, "output_blocks.4");
    let (_, want) = io.f32("output_blocks.4");
    assert!(max_abs_diff(&act.to_nchw(), &want) < 1e-4);
}

/// Stage B's features through the host forward against the reference.
#[test]
fn host_stage_b_features_match_the_reference() {
    let model = tiny_from("adm_tiny/model.pt");
    let host = host_unet(&model).unwrap();
    let f = Tensors::open("adm_tiny/features.safetensors");
    let (_, x0) = f.f32("x0");
    let (_, noise) = f.f32("noise");
    let (_, t) = f.i64("t");
    let s = Schedule::cosine(1000);
    let per = 3 * 32 * 32;
    let inputs: Vec<(Modality, Vec<f32>)> = [Modality::Prgb, Modality::Pca, Modality::Sar]
        .iter()
        .enumerate()
        .map(|(m, &mo)| (mo, x0[m * per..(m + 1) * per].to_vec()))
        .collect();
    for block in [4usize, 7, 8] {
        let spec = FeatureSpec {
            t: t[0],
            block,
            size: 32,
        };
        let (vals, shape) = concat_features_host(&host, &s, &inputs, 32, &noise, spec).unwrap();
        let feats = unidiff_studio::pipeline::features::resize_bilinear(
            Tensor::<B, 4>::from_data(TensorData::new(vals, shape), &Default::default()),
            32,
        );
        let (shape, want) = f.f32(&format!("concat.output_blocks.{block}"));
        let dims = feats.dims();
        assert_eq!(vec![dims[1], dims[2], dims[3]], shape, "block {block}");
        let d = max_abs_diff(&values(feats), &want);
        assert!(d < 1e-4, "host concat.output_blocks.{block}: {d}");
    }
}

/// A batch as Stage B runs it (16 patches of each modality): the host
/// forward and burn's (burn-flex, the CLI's CPU backend before the host
/// path, and burn-ndarray) give the same features.
#[test]
fn host_features_equal_burns_on_a_stage_b_batch() {
    use burn::backend::Flex;
    let flex = tiny_on::<Flex>("adm_tiny/model.pt");
    let nd = tiny_from("adm_tiny/model.pt");
    let host = host_unet(&nd).unwrap();
    let s = Schedule::cosine(1000);
    let n = 16;
    let (x0, noise) = random_patches(3, n);
    let spec = FeatureSpec {
        t: 300,
        block: 8,
        size: 32,
    };
    let (want, shape) =
        concat_features_host(&host, &s, &[(Modality::Sar, x0.clone())], 32, &noise, spec).unwrap();
    assert_eq!(shape, [n, 32, 32, 32]);
    let fx = Tensor::<Flex, 4>::from_data(
        TensorData::new(x0.clone(), [n, 3, 32, 32]),
        &Default::default(),
    );
    let fnoise = Tensor::<Flex, 4>::from_data(
        TensorData::new(noise.clone(), [1, 3, 32, 32]),
        &Default::default(),
    );
    let got_flex: Vec<f32> = modality_features(&flex, &s, fx, Modality::Sar, fnoise, spec)
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let nx = Tensor::<B, 4>::from_data(TensorData::new(x0, [n, 3, 32, 32]), &Default::default());
    let nnoise =
        Tensor::<B, 4>::from_data(TensorData::new(noise, [1, 3, 32, 32]), &Default::default());
    let got_nd = values(modality_features(&nd, &s, nx, Modality::Sar, nnoise, spec));
    let d_nd = max_abs_diff(&got_nd, &want);
    let d_flex = max_abs_diff(&got_flex, &want);
    assert!(d_nd < 1e-4, "burn-ndarray vs host: {d_nd}");
    assert!(d_flex < 1e-4, "burn-flex vs host: {d_flex}");
}

#[test]
fn safetensors_and_pytorch_checkpoints_give_the_same_model() {
    let a = tiny_from("adm_tiny/model.pt");
    let b = tiny_from("adm_tiny/model.safetensors");
    let io = Tensors::open("adm_tiny/io.safetensors");
    let (xs, x) = io.f32("x");
    let x = Tensor::<B, 4>::from_data(TensorData::new(x, xs), &Default::default());
    let d = max_abs_diff(
        &values(a.forward(x.clone(), &[0, 300], &[1, 3])),
        &values(b.forward(x, &[0, 300], &[1, 3])),
    );
    assert_eq!(d, 0.0);
    let ckpt = CheckpointTensors::open(&fixture("adm_tiny/model.pt")).unwrap();
    assert_eq!(ckpt.len(), 307);
    assert_eq!(ckpt.parameter_count(), 2_008_102);
}

#[test]
fn stopping_after_a_block_returns_its_activation() {
    let model = tiny_from("adm_tiny/model.pt");
    let io = Tensors::open("adm_tiny/io.safetensors");
    let (xs, x) = io.f32("x");
    let x = Tensor::<B, 4>::from_data(TensorData::new(x, xs), &Default::default());
    let emb = model.embedding(&[0, 300], &[1, 3]);
    let mut last = String::new();
    let act = model.forward_blocks(
        x,
        emb,
        BlockContext { train: false },
        Some(4),
        &mut |id, _| last = id.name(),
    );
    assert_eq!(last, "output_blocks.4");
    let (_, want) = io.f32("output_blocks.4");
    assert!(max_abs_diff(&values(act), &want) < 1e-4);
}

#[test]
fn schedule_equals_the_reference() {
    let s = Schedule::cosine(1000);
    let t = Tensors::open("adm_tiny/schedule.safetensors");
    for (name, mine) in s.named() {
        let (_, want) = t.f64(&format!("spaced.{name}"));
        assert_eq!(mine.len(), want.len(), "{name}");
        for (i, (a, b)) in mine.iter().zip(&want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                "{name}[{i}]: {a} vs {b}"
            );
        }
    }
}

#[test]
fn a_checkpoint_of_another_configuration_is_refused_with_the_list() {
    let ckpt = CheckpointTensors::open(&fixture("adm_tiny/model.pt")).unwrap();
    let err = UNet::<B>::build(
        &UNetConfig::imagenet64(),
        ParamSource::Checkpoint(&ckpt),
        &Default::default(),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, CheckpointError::Mismatch { .. }), "{text}");
    assert!(
        text.contains("mis-shaped: time_embed.0.weight is [128, 32], expected [768, 192]"),
        "{text}"
    );
    assert!(text.contains("missing: input_blocks.9"), "{text}");
}

#[test]
fn a_truncated_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("adm_tiny/model.pt")).unwrap();
    let cut = dir.path().join("cut.pt");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = match CheckpointTensors::open(&cut) {
        Err(e) => e,
        Ok(ckpt) => UNet::<B>::build(
            &UNetConfig::tiny(),
            ParamSource::Checkpoint(&ckpt),
            &Default::default(),
        )
        .expect_err("a truncated checkpoint must not load"),
    };
    assert!(err.to_string().contains("cut.pt"), "{err}");
}

#[test]
fn a_file_that_is_not_a_state_dict_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.pt");
    std::fs::write(&path, b"not a checkpoint").unwrap();
    let err = CheckpointTensors::open(&path).err().expect("refused");
    assert!(matches!(err, CheckpointError::Unreadable { .. }), "{err}");
    // Tensors of the wrong kind: the forward-pass fixture is a safetensors
    // file, but not a state dict of this model.
    let err = match CheckpointTensors::open(&fixture("adm_tiny/io.safetensors")) {
        Err(e) => e,
        Ok(ckpt) => UNet::<B>::build(
            &UNetConfig::tiny(),
            ParamSource::Checkpoint(&ckpt),
            &Default::default(),
        )
        .expect_err("refused"),
    };
    assert!(
        matches!(
            err,
            CheckpointError::Mismatch { .. } | CheckpointError::BadTensor { .. }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("io.safetensors"), "{err}");
}

fn rel_norm_diff(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum();
    let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    (num / den.max(1e-300)).sqrt()
}

#[test]
fn one_stage_a_step_matches_the_reference() {
    let ckpt = CheckpointTensors::open(&fixture("adm_tiny/model.safetensors")).unwrap();
    let device = Default::default();
    let mut model =
        UNet::<AB>::build(&UNetConfig::tiny(), ParamSource::Checkpoint(&ckpt), &device).unwrap();
    model.set_conv_im2col(true);
    let st = Tensors::open("adm_tiny/stage_a_step.safetensors");
    let (shape, x0) = st.f32("x0");
    let (_, noise) = st.f32("noise");
    let (_, t) = st.i64("t");
    let (_, y) = st.i64("y");
    let s = Schedule::cosine(1000);
    let tensor =
        |v: Vec<f32>| Tensor::<AB, 4>::from_data(TensorData::new(v, shape.clone()), &device);
    let (x0, noise) = (tensor(x0), tensor(noise));
    let x_t = q_sample(&s, x0.clone(), &t, noise.clone());
    let (_, want) = st.f32("x_t");
    assert!(
        max_abs_diff(&x_t.clone().into_data().to_vec::<f32>().unwrap(), &want) < 1e-6,
        "x_t"
    );
    let emb = model.embedding(&t, &y);
    let out = model.forward_blocks(
        x_t.clone(),
        emb,
        BlockContext { train: true },
        None,
        &mut |_, _| {},
    );
    let (_, want) = st.f32("model_out");
    let d = max_abs_diff(&out.clone().into_data().to_vec::<f32>().unwrap(), &want);
    assert!(d < 1e-4, "model_out {d}");
    let terms = training_losses(&s, out, x0, x_t, &t, noise, LossKind::Hybrid);
    for (name, got) in [
        ("mse", &terms.mse),
        ("vb", &terms.vb),
        ("loss", &terms.loss),
    ] {
        let got = got.clone().into_data().to_vec::<f32>().unwrap();
        let (_, want) = st.f32(name);
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() <= 1e-5 * w.abs(),
                "{name}: {got:?} vs {want:?}"
            );
        }
    }
    let loss = terms.loss.mean();
    let grads = loss.backward();
    let params = model.trainable_params();
    assert_eq!(params.len(), 23);
    for (name, p) in &params {
        let g = p
            .grad_values(&grads)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let (_, want) = st.f32(&format!("grad.{name}"));
        let r = rel_norm_diff(&g, &want);
        assert!(r <= 1e-4, "grad.{name}: relative difference {r}");
    }
    // Frozen tensors get no gradient at all.
    assert!(model.out_conv.weight.val().grad(&grads).is_none());
    assert!(model.time_embed_0.weight.val().grad(&grads).is_none());
    let frozen_before = model
        .out_conv
        .weight
        .val()
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let adam = burn_adam::<AB>;

    // The optimizer on the reference gradients: every updated value within 1e-6.
    let mut reference = GradientsParams::new();
    for (name, p) in model.trainable_params() {
        let (shape, g) = st.f32(&format!("grad.{name}"));
        match p {
            TrainableParam::Matrix(p) => reference.register(
                p.id,
                Tensor::<B, 2>::from_data(TensorData::new(g, shape), &device),
            ),
            TrainableParam::Vector(p) => reference.register(
                p.id,
                Tensor::<B, 1>::from_data(TensorData::new(g, shape), &device),
            ),
        }
    }
    let stepped = adam().step(1e-4, model.clone(), reference);
    for (name, p) in stepped.trainable_params() {
        let (_, want) = st.f32(&format!("after.{name}"));
        let d = max_abs_diff(&p.values().unwrap(), &want);
        assert!(d <= 1e-6, "after.{name} from the reference gradients: {d}");
    }

    // The optimizer on our own gradients. Adam's first step is
    // lr * g / (|g| + 1e-8): for entries whose gradient is below ~1e-7 the
    // update swings with the f32 summation noise of the gradient (the
    // reference itself moves by 4e-8 absolute under reordering), so the 1e-6
    // bound is checked where |g| >= 1e-6 and the update bounded by lr elsewhere.
    let gp = GradientsParams::from_grads(grads, &model);
    let model = adam().step(1e-4, model, gp);
    for (name, p) in model.trainable_params() {
        let (_, want) = st.f32(&format!("after.{name}"));
        let (_, before) = Tensors::open("adm_tiny/model.safetensors").f32(&name);
        let (_, g) = st.f32(&format!("grad.{name}"));
        for (i, got) in p.values().unwrap().iter().enumerate() {
            if g[i].abs() >= 1e-6 {
                assert!(
                    (got - want[i]).abs() <= 1e-6,
                    "after.{name}[{i}]: {got} vs {}",
                    want[i]
                );
            } else {
                assert!(
                    (got - before[i]).abs() <= 1.0001e-4,
                    "after.{name}[{i}] moved more than lr"
                );
            }
        }
    }
    assert_eq!(
        model
            .out_conv
            .weight
            .val()
            .into_data()
            .to_vec::<f32>()
            .unwrap(),
        frozen_before
    );
}

/// The loss's gradient with respect to a model output, by burn's autodiff
/// over the loss alone (what the CPU training step does).
fn output_gradient(
    out: &[f32],
    shape: [usize; 4],
    st: &Tensors,
    kind: LossKind,
) -> (Vec<f32>, f32) {
    let device = Default::default();
    let (x_shape, x0) = st.f32("x0");
    let (_, noise) = st.f32("noise");
    let (_, t) = st.i64("t");
    let s = Schedule::cosine(1000);
    let tensor =
        |v: Vec<f32>| Tensor::<AB, 4>::from_data(TensorData::new(v, x_shape.clone()), &device);
    let (x0, noise) = (tensor(x0), tensor(noise));
    let x_t = q_sample(&s, x0.clone(), &t, noise.clone());
    let out =
        Tensor::<AB, 4>::from_data(TensorData::new(out.to_vec(), shape), &device).require_grad();
    let loss = training_losses(&s, out.clone(), x0, x_t, &t, noise, kind)
        .loss
        .mean();
    let grads = loss.backward();
    let g = out
        .grad(&grads)
        .unwrap()
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    (g, loss.into_scalar())
}

#[test]
fn cpu_kernels_stage_a_step_matches_the_reference() {
    let model = tiny_from("adm_tiny/model.safetensors");
    let st = Tensors::open("adm_tiny/stage_a_step.safetensors");
    let (shape, x_t) = st.f32("x_t");
    let (_, t) = st.i64("t");
    let (_, y) = st.i64("y");
    let (n, p) = (shape[0], shape[2]);
    let mut trainer = HostTrainer::new(host_unet(&model).unwrap(), 0.0).unwrap();
    assert!(trainer.tape_bytes_per_sample(p).unwrap() > 0);
    let (out, tape) = trainer
        .forward(Act::from_nchw(&x_t, n, 3, p, p), &t, &y, 0)
        .unwrap();
    let full_tape = tape.bytes();
    let out = out.to_nchw();
    let (_, want) = st.f32("model_out");
    let d = max_abs_diff(&out, &want);
    assert!(d < 1e-4, "model_out {d}");
    let (d_out, loss) = output_gradient(&out, [n, 6, p, p], &st, LossKind::Hybrid);
    let (_, want_loss) = st.f32("loss");
    let want_loss = want_loss.iter().sum::<f32>() / want_loss.len() as f32;
    assert!(
        (loss - want_loss).abs() <= 1e-5 * want_loss.abs(),
        "{loss} vs {want_loss}"
    );
    let grads = trainer.backward(tape, Act::from_nchw(&d_out, n, 6, p, p));
    // With checkpointing the blocks run again in the backward pass: the same
    // operations, the same gradients bit for bit, a smaller tape.
    let recomputing = HostTrainer::new(host_unet(&model).unwrap(), 0.0)
        .unwrap()
        .with_checkpointing(true);
    let (_, small) = recomputing
        .forward(Act::from_nchw(&x_t, n, 3, p, p), &t, &y, 0)
        .unwrap();
    assert!(
        small.bytes() < full_tape / 2,
        "{} vs {full_tape}",
        small.bytes()
    );
    assert_eq!(
        recomputing.backward(small, Act::from_nchw(&d_out, n, 6, p, p)),
        grads
    );
    let names: Vec<String> = model
        .trainable_params()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(grads.len(), names.len());
    for (name, g) in names.iter().zip(&grads) {
        let (_, want) = st.f32(&format!("grad.{name}"));
        let r = rel_norm_diff(g, &want);
        assert!(r <= 1e-4, "grad.{name}: relative difference {r}");
    }
    // The host Adam on the reference gradients: every updated value within
    // 1e-6 of the reference's, as burn's Adam is held to above.
    let reference: Vec<Vec<f32>> = names
        .iter()
        .map(|name| st.f32(&format!("grad.{name}")).1)
        .collect();
    HostAdam::new(0.9, 0.999, 1e-8).step(1e-4, trainer.trainable_mut(), &reference);
    for (name, got) in names.iter().zip(trainer.trainable_mut()) {
        let (_, want) = st.f32(&format!("after.{name}"));
        let d = max_abs_diff(got, &want);
        assert!(d <= 1e-6, "after.{name} from the reference gradients: {d}");
    }
}

/// A training batch of 8 and more runs split into groups of 4, one per
/// thread (`split_group`, on two threads and more): the outputs are the whole batch's bit for
/// bit, dropout included (the mask is drawn for the whole batch), and the
/// gradients the same up to the order of their sums.
#[test]
fn a_split_training_batch_gives_the_whole_batchs_outputs_and_gradients() {
    let model = tiny_from("adm_tiny/model.safetensors");
    let trainer = HostTrainer::new(host_unet(&model).unwrap(), 0.1).unwrap();
    let n = 10;
    let (x0, _) = random_patches(11, n);
    let t: Vec<i64> = (0..n as i64).map(|i| i * 97 % 1000).collect();
    let y: Vec<i64> = (0..n as i64).map(|i| i % 5).collect();
    let d_out: Vec<f32> = random_patches(12, 2 * n).0[..n * 6 * 32 * 32].to_vec();
    let step = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let (out, tape) = trainer
                    .forward(Act::from_nchw(&x0, n, 3, 32, 32), &t, &y, 7)
                    .unwrap();
                let grads = trainer.backward(tape, Act::from_nchw(&d_out, n, 6, 32, 32));
                (out.to_nchw(), grads)
            })
    };
    let (whole_out, whole_grads) = step(1);
    let (split_out, split_grads) = step(2);
    let differ = whole_out
        .iter()
        .zip(&split_out)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    assert_eq!(differ, 0, "{differ} output values differ");
    assert_eq!(whole_grads.len(), split_grads.len());
    for (i, (a, b)) in whole_grads.iter().zip(&split_grads).enumerate() {
        let r = rel_norm_diff(a, b);
        assert!(r <= 1e-5, "gradient {i}: relative difference {r}");
    }
}

#[test]
fn stage_a_on_the_cpu_kernels_follows_burns_autodiff() {
    let pool = demo_pool();
    let device = Default::default();
    let build = || {
        let mut m = UNet::<AB>::build(
            &UNetConfig::tiny(),
            ParamSource::Random(NormalRng::new(3)),
            &device,
        )
        .unwrap();
        m.set_conv_im2col(true);
        m
    };
    let run = |cpu_kernels: bool| {
        let cfg = AdaptConfig {
            steps: 3,
            lr: 1e-3,
            batch: 4,
            seed: 5,
            loss: LossKind::Hybrid,
            max_zoom: 40,
            cpu_kernels,
        };
        adapt(build(), &pool, &cfg, &CancelFlag::new(), |_| {}).unwrap()
    };
    let (host, burn) = (run(true), run(false));
    assert_eq!(host.engine.0, "CPU kernels");
    assert_eq!(burn.engine.0, "burn autodiff");
    // The same batches and the same updates: each step's loss within 1e-4
    // relative (the third one after two Adam steps of either engine).
    for (i, (a, b)) in host.loss_curve.iter().zip(&burn.loss_curve).enumerate() {
        assert!((a - b).abs() <= 1e-4 * b.abs(), "step {i}: {a} vs {b}");
    }
    // The trained tensors were written back into the model: its outputs
    // equal the burn-trained model's within the forward tolerance.
    let held = BatchSampler::new(99, 32, 1000).sample(&pool, 4);
    let x = Tensor::<B, 4>::from_data(TensorData::new(held.x0, [4, 3, 32, 32]), &device);
    let out = |m: UNet<AB>| {
        m.valid()
            .forward(x.clone(), &held.t, &held.y)
            .into_data()
            .to_vec::<f32>()
            .unwrap()
    };
    let untrained = out(build());
    let (a, b) = (out(host.model), out(burn.model));
    assert!(
        max_abs_diff(&a, &untrained) > 1e-3,
        "the host run changed nothing"
    );
    let d = max_abs_diff(&a, &b);
    assert!(d < 1e-4, "host vs burn outputs after 3 steps: {d}");
}

#[test]
fn loss_terms_at_the_edges_of_the_schedule_match() {
    let model = tiny_from("adm_tiny/model.safetensors");
    let st = Tensors::open("adm_tiny/stage_a_step.safetensors");
    let (shape, x0) = st.f32("x0");
    let (_, noise) = st.f32("noise");
    let (_, y) = st.i64("y");
    let (_, t) = st.i64("edge.t");
    let n = 3 * 32 * 32 * 3;
    let shape3 = [3, shape[1], shape[2], shape[3]];
    let device = Default::default();
    let x0 = Tensor::<B, 4>::from_data(TensorData::new(x0[..n].to_vec(), shape3), &device);
    let noise = Tensor::<B, 4>::from_data(TensorData::new(noise[..n].to_vec(), shape3), &device);
    let s = Schedule::cosine(1000);
    let x_t = q_sample(&s, x0.clone(), &t, noise.clone());
    let out = model.forward(x_t.clone(), &t, &y[..3]);
    let terms = training_losses(&s, out, x0, x_t, &t, noise, LossKind::Hybrid);
    for (name, got) in [
        ("edge.mse", terms.mse),
        ("edge.vb", terms.vb),
        ("edge.loss", terms.loss),
    ] {
        let got = got.into_data().to_vec::<f32>().unwrap();
        let (_, want) = st.f32(name);
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() <= 1e-5 * w.abs(),
                "{name}: {got:?} vs {want:?}"
            );
        }
    }
}

#[test]
fn imagenet64_maps_all_541_tensors_and_counts_the_trainable_share() {
    let text = std::fs::read_to_string(fixture("adm64_keys.txt")).unwrap();
    let want: Vec<(String, Vec<usize>)> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (name, shape) = l.split_once('\t').unwrap();
            let dims = shape
                .trim_matches(|c| c == '(' || c == ')')
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.trim().parse().unwrap())
                .collect();
            (name.to_string(), dims)
        })
        .collect();
    assert_eq!(want.len(), 541);
    let got = expected_tensors(&UNetConfig::imagenet64()).unwrap();
    assert_eq!(got, want, "names, shapes and state-dict order");
    let s = summarize(&UNetConfig::imagenet64()).unwrap();
    assert_eq!(s.parameters, 295_904_454);
    assert_eq!(s.trainable_parameters, 15_237_504);
    assert_eq!(s.trainable_tensors, 39);
    assert!(
        (s.trainable_percent - 5.1495).abs() < 1e-3,
        "{}",
        s.trainable_percent
    );
    let tiny = summarize(&UNetConfig::tiny()).unwrap();
    assert_eq!(
        (tiny.parameters, tiny.trainable_parameters),
        (2_008_102, 157_504)
    );
    // The config JSON of the fixtures reads to the same configuration.
    let cfg =
        UNetConfig::from_json(&std::fs::read_to_string(fixture("adm64_config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg, UNetConfig::imagenet64());
    let cfg =
        UNetConfig::from_json(&std::fs::read_to_string(fixture("adm_tiny/config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg, UNetConfig::tiny());
}

/// Small patch pool of the real Sentinel-1/2 scene (a 96 x 96 window, 32 x 32
/// patches, the tiny model's size).
fn demo_pool() -> PatchPool {
    let images = demo_window_renderings(200, 200, 96);
    let refs: Vec<(Modality, &unidiff_studio::products::Rgb8Image)> =
        images.iter().map(|(m, i)| (*m, i)).collect();
    PatchPool::with_grid(&refs, PatchGrid::new(96, 96, 32, 16))
}

fn fixed_batch_loss(model: &UNet<B>, batch: &unidiff_studio::pipeline::stage_a::Batch) -> f32 {
    let device = Default::default();
    let shape = [batch.t.len(), 3, 32, 32];
    let x0 = Tensor::<B, 4>::from_data(TensorData::new(batch.x0.clone(), shape), &device);
    let noise = Tensor::<B, 4>::from_data(TensorData::new(batch.noise.clone(), shape), &device);
    let s = Schedule::cosine(1000);
    let x_t = q_sample(&s, x0.clone(), &batch.t, noise.clone());
    let out = model.forward(x_t.clone(), &batch.t, &batch.y);
    training_losses(&s, out, x0, x_t, &batch.t, noise, LossKind::Mse)
        .loss
        .mean()
        .into_scalar()
}

#[test]
fn tiny_stage_a_run_lowers_the_loss_cancels_and_reloads() {
    let pool = demo_pool();
    assert_eq!(pool.len(), 3 * 36);
    let device = Default::default();
    let mut base = UNet::<AB>::build(
        &UNetConfig::tiny(),
        ParamSource::Random(NormalRng::new(7)),
        &device,
    )
    .unwrap();
    base.set_conv_im2col(true);
    // A fixed evaluation batch from the same pool, without augmentation.
    let held = BatchSampler::new(99, 32, 1000).sample(&pool, 6);
    let before = fixed_batch_loss(&base.valid(), &held);
    let cfg = AdaptConfig {
        steps: 12,
        lr: 3e-3,
        batch: 4,
        seed: 1,
        loss: LossKind::Mse,
        max_zoom: 40,
        cpu_kernels: true,
    };
    let cancel = CancelFlag::new();
    let mut seen = Vec::new();
    let outcome = adapt(base, &pool, &cfg, &cancel, |p| {
        seen.push((p.step, p.eta_seconds.is_some()))
    })
    .unwrap();
    assert_eq!(outcome.engine.0, "CPU kernels");
    assert_eq!(outcome.steps_done, 12);
    assert!(!outcome.cancelled);
    assert_eq!(seen.first(), Some(&(1, false)), "no ETA during warm-up");
    assert!(seen.last().unwrap().1, "an ETA after warm-up");
    let after = fixed_batch_loss(&outcome.model.valid(), &held);
    assert!(after < before, "loss on a fixed batch: {before} -> {after}");

    // The adapter holds only the trainable tensors and reloads to the same outputs.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("adapter.safetensors");
    let meta = AdapterMetadata {
        base: "tiny-random:7".into(),
        base_sha256: None,
        config: UNetConfig::tiny(),
        modalities: vec!["prgb".into(), "pca".into(), "sar".into()],
        steps: outcome.steps_done,
        lr: cfg.lr,
        batch: cfg.batch,
        seed: cfg.seed,
        loss: cfg.loss,
        loss_curve: outcome.loss_curve.clone(),
        trainable_parameters: 157_504,
        trainable_percent: 7.84,
        cancelled: false,
        software: "test".into(),
    };
    save_adapter(&path, &outcome.model, &meta).unwrap();
    assert_eq!(read_adapter_metadata(&path).unwrap(), meta);
    let adapter = CheckpointTensors::open(&path).unwrap();
    assert_eq!(adapter.len(), 23);
    assert_eq!(adapter.parameter_count(), 157_504);
    // The base as a checkpoint file, then base + adapter.
    let base_path = dir.path().join("base.safetensors");
    let base_model = UNet::<B>::build(
        &UNetConfig::tiny(),
        ParamSource::Random(NormalRng::new(7)),
        &device,
    )
    .unwrap();
    write_full_checkpoint(&base_path, &base_model);
    let base_ckpt = CheckpointTensors::open(&base_path).unwrap();
    let mut reloaded = UNet::<B>::build(
        &UNetConfig::tiny(),
        ParamSource::Adapted {
            base: &base_ckpt,
            adapter: &adapter,
        },
        &device,
    )
    .unwrap();
    reloaded.set_conv_im2col(true);
    let x = Tensor::<B, 4>::from_data(TensorData::new(held.x0.clone(), [6, 3, 32, 32]), &device);
    let a = outcome
        .model
        .valid()
        .forward(x.clone(), &held.t, &held.y)
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let b = reloaded
        .forward(x, &held.t, &held.y)
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    assert_eq!(max_abs_diff(&a, &b), 0.0);

    // Cancelled from the progress callback after 2 steps.
    let base = UNet::<AB>::build(
        &UNetConfig::tiny(),
        ParamSource::Random(NormalRng::new(7)),
        &device,
    )
    .unwrap();
    let cancel = CancelFlag::new();
    let flag = cancel.clone();
    let outcome = adapt(base, &pool, &cfg, &cancel, |p| {
        if p.step == 2 {
            flag.cancel();
        }
    })
    .unwrap();
    assert!(outcome.cancelled);
    assert_eq!(outcome.steps_done, 2);
}

/// Writes every parameter of a model as a safetensors checkpoint (names as
/// in guided-diffusion), using the recorded state-dict names.
fn write_full_checkpoint(path: &std::path::Path, model: &UNet<B>) {
    use burn::module::Module;
    let names = expected_tensors(&UNetConfig::tiny()).unwrap();
    let mut values: Vec<Vec<f32>> = Vec::new();
    struct Collect<'a>(&'a mut Vec<Vec<f32>>);
    impl burn::module::ModuleVisitor<B> for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<B, D>>) {
            self.0.push(p.val().into_data().to_vec::<f32>().unwrap());
        }
    }
    model.visit(&mut Collect(&mut values));
    assert_eq!(values.len(), names.len());
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = names
        .into_iter()
        .zip(values)
        .map(|((n, s), v)| (n, s, v))
        .collect();
    write_f32_safetensors(path, &tensors, None).unwrap();
}

#[test]
fn stage_b_features_match_the_reference() {
    let model = tiny_from("adm_tiny/model.pt");
    let f = Tensors::open("adm_tiny/features.safetensors");
    let device = Default::default();
    let (xs, x0) = f.f32("x0");
    let (ns, noise) = f.f32("noise");
    let (_, t) = f.i64("t");
    let x0 = Tensor::<B, 4>::from_data(TensorData::new(x0, xs), &device);
    let noise = Tensor::<B, 4>::from_data(TensorData::new(noise, ns), &device);
    let s = Schedule::cosine(1000);
    let modalities = [Modality::Prgb, Modality::Pca, Modality::Sar];
    // The noised inputs, one shared noise tensor.
    let noisy = q_sample(
        &s,
        x0.clone(),
        &[t[0]; 3],
        noise.clone().expand([3, 3, 32, 32]),
    );
    let (_, want) = f.f32("noisy_x");
    assert!(max_abs_diff(&values(noisy), &want) < 1e-6);
    for block in [4usize, 7, 8] {
        let spec = FeatureSpec {
            t: t[0],
            block,
            size: 32,
        };
        let inputs = modalities
            .iter()
            .enumerate()
            .map(|(m, &mo)| (mo, x0.clone().narrow(0, m, 1)))
            .collect();
        let feats = concat_features(&model, &s, inputs, noise.clone(), spec);
        let (shape, want) = f.f32(&format!("concat.output_blocks.{block}"));
        let dims = feats.dims();
        assert_eq!(vec![dims[1], dims[2], dims[3]], shape, "block {block}");
        let d = max_abs_diff(&values(feats), &want);
        assert!(d < 1e-4, "concat.output_blocks.{block}: {d}");
    }
    // The raw 16 x 16 activation of block 4 before the bilinear resize.
    let spec = FeatureSpec {
        t: t[0],
        block: 4,
        size: 16,
    };
    let raw = modality_features(&model, &s, x0.clone(), Modality::Prgb, noise, spec);
    let (_, want) = f.f32("raw.output_blocks.4");
    // Only the pRGB row of the batch shares y = 1; compare it.
    let got = values(raw.narrow(0, 0, 1));
    assert!(max_abs_diff(&got, &want[..got.len()]) < 1e-4);
}

#[test]
fn stage_b_maps_the_demo_window_deterministically() {
    use unidiff_studio::metrics::MetricsSummary;
    use unidiff_studio::pipeline::classifier::HeadTrainConfig;
    use unidiff_studio::pipeline::stage_b::{StageBConfig, run_stage_b};
    use unidiff_studio::scene::LabelImage;

    let (r0, c0, n) = (200, 200, 64);
    // LabelHand is -1 nodata, 0 dry, 1 water: read raw so that 0 stays a class.
    let (_, raw) =
        unidiff_studio::io::raster::read_bands(&demo("Spain_7370579_LabelHand.tif"), Some(&[0]))
            .unwrap();
    let truth: Vec<u8> = (0..n * n)
        .map(|i| {
            let v = raw[(r0 + i / n) * 512 + c0 + i % n];
            if v.is_nan() || v < 0.0 {
                0
            } else {
                v as u8 + 1
            }
        })
        .collect();
    // Sparse training set: every 13th labelled pixel; the rest is test.
    let mut train = vec![0u8; n * n];
    let mut test = truth.clone();
    for (k, i) in (0..n * n).filter(|&i| truth[i] != 0).enumerate() {
        if k % 13 == 0 {
            train[i] = truth[i];
            test[i] = 0;
        }
    }
    let grid = unidiff_studio::scene::PixelGrid::plain(n, n);
    let train = LabelImage { grid, data: train };
    let pool_images = demo_window_renderings(r0, c0, n);
    let images: Vec<(Modality, &unidiff_studio::products::Rgb8Image)> =
        pool_images.iter().map(|(m, i)| (*m, i)).collect();
    let device = Default::default();
    let mut model = UNet::<B>::build(
        &UNetConfig::tiny(),
        ParamSource::Random(NormalRng::new(3)),
        &device,
    )
    .unwrap();
    model.set_conv_im2col(true);
    let cfg = StageBConfig {
        t: 0,
        block: 7,
        patch: 32,
        stride: 16,
        batch_patches: 12,
        head: HeadTrainConfig {
            max_epochs: 12,
            patience: 4,
            seed: 4,
            ..HeadTrainConfig::default()
        },
        validation_block: 32,
        ..StageBConfig::default()
    };
    let out = run_stage_b::<AB>(&model, &images, &train, &cfg, &device).unwrap();
    eprintln!(
        "features {:.1} s, training {:.1} s ({} vectors, {} epochs), prediction {:.1} s",
        out.seconds_features,
        out.seconds_training,
        out.training_vectors,
        out.head.epochs,
        out.seconds_prediction
    );
    assert_eq!(out.classes, 2);
    assert!(out.classes_without_training.is_empty());
    assert!(
        out.training_vectors > train.labelled(),
        "overlapping patches repeat pixels"
    );
    assert!(out.prediction.class_map.iter().all(|&c| c == 1 || c == 2));
    let m = MetricsSummary::from_labels(&test, &out.prediction.class_map, 2);
    let majority = m.per_class.support.iter().copied().max().unwrap() as f64 / m.n_labelled as f64;
    assert!(m.oa > majority, "OA {} vs majority {majority}", m.oa);
    let again = run_stage_b::<AB>(&model, &images, &train, &cfg, &device).unwrap();
    assert_eq!(
        again.prediction.class_map, out.prediction.class_map,
        "same seed, same map"
    );

    // Twice with one store (the app after a stroke): the second run takes
    // every patch from the store, sends a first map from the patches that
    // cover the window once, then the same map as a run of its own.
    use unidiff_studio::base::CancelFlag;
    use unidiff_studio::pipeline::feature_store::FeatureStore;
    use unidiff_studio::pipeline::stage_b::{PHASE_PREVIEW, StageBRun, run_stage_b_stored};
    let mut store = FeatureStore::across_runs(1 << 30);
    let run = StageBRun {
        model: &model,
        backbone: "tiny, seed 3",
        images: &images,
        train_labels: &train,
        cfg: &cfg,
        held_out: None,
    };
    let mut previews = Vec::new();
    for _ in 0..2 {
        let mut seen = Vec::new();
        let mut progress = |p: &unidiff_studio::pipeline::stage_b::StageBProgress| {
            if let Some(map) = &p.preview {
                assert_eq!(p.phase, PHASE_PREVIEW);
                seen.push(map.as_ref().clone());
            }
        };
        let stored =
            run_stage_b_stored::<AB>(&run, &device, &CancelFlag::new(), &mut progress, &mut store)
                .unwrap();
        assert_eq!(stored.prediction.class_map, out.prediction.class_map);
        previews.push(seen);
    }
    let [first_map] = &previews[1][..] else {
        panic!("one preview after a stroke, not {}", previews[1].len())
    };
    // Here every patch holds labels, so the first run kept them all in its
    // labelled pass and sent the same first map.
    assert_eq!(previews[0], previews[1]);
    assert!(first_map.iter().all(|&c| c == 1 || c == 2));
    let agree = first_map
        .iter()
        .zip(&out.prediction.class_map)
        .filter(|(a, b)| a == b)
        .count() as f64
        / (n * n) as f64;
    eprintln!("the first map agrees with the merged one on {agree:.3} of the pixels");
    assert!(agree > 0.8, "{agree}");

    // A head narrower than the features keeps its first-layer outputs in
    // the store; a live update from it that keeps its first layer maps
    // every patch from them, and (no epoch: the same head) to the same map.
    let narrow = StageBConfig {
        mlp: unidiff_studio::pipeline::classifier::MlpConfig {
            hidden: vec![16, 8],
        },
        ..cfg.clone()
    };
    let narrow_run = StageBRun {
        model: &model,
        backbone: "tiny, seed 3",
        images: &images,
        train_labels: &train,
        cfg: &narrow,
        held_out: None,
    };
    let stored = |run: &StageBRun<'_, B>, store: &mut FeatureStore| {
        run_stage_b_stored::<AB>(run, &device, &CancelFlag::new(), &mut |_| {}, store).unwrap()
    };
    let full = stored(&narrow_run, &mut store);
    assert_eq!(full.first_layer_patches, 0);
    assert!(!full.head.first_layer_kept);
    let patches = PatchGrid::new(n, n, 32, 16).len();
    let live_cfg = |max_epochs| StageBConfig {
        head: HeadTrainConfig {
            warm_start: full.host_head.clone(),
            keep_first_layer: true,
            max_epochs,
            ..narrow.head.clone()
        },
        ..narrow.clone()
    };
    let same_head = live_cfg(0);
    let live = stored(
        &StageBRun {
            cfg: &same_head,
            ..narrow_run
        },
        &mut store,
    );
    assert!(live.head.first_layer_kept);
    assert_eq!(live.first_layer_patches, patches);
    assert_eq!(live.prediction.class_map, full.prediction.class_map);
    // A few epochs: still every patch from the first layer's outputs.
    let trained = live_cfg(3);
    let live = stored(
        &StageBRun {
            cfg: &trained,
            ..narrow_run
        },
        &mut store,
    );
    assert_eq!((live.head.epochs, live.first_layer_patches), (3, patches));
    let agree = live
        .prediction
        .class_map
        .iter()
        .zip(&full.prediction.class_map)
        .filter(|(a, b)| a == b)
        .count() as f64
        / (n * n) as f64;
    assert!(agree > 0.8, "{agree}");
}

/// The three renderings of a window of the demo scene.
fn demo_window_renderings(
    r0: usize,
    c0: usize,
    n: usize,
) -> Vec<(Modality, unidiff_studio::products::Rgb8Image)> {
    let mut hsi = open_hsi(&demo("Spain_7370579_S2Hand.tif")).unwrap();
    let mut sar = open_sar(&demo("Spain_7370579_S1Hand.tif"), SarScaleChoice::Auto).unwrap();
    let crop = |v: &[f32]| -> Vec<f32> {
        (0..n * n)
            .map(|i| v[(r0 + i / n) * 512 + c0 + i % n])
            .collect()
    };
    hsi.data = (0..hsi.bands).flat_map(|b| crop(hsi.band(b))).collect();
    hsi.grid = unidiff_studio::scene::PixelGrid::plain(n, n);
    if let unidiff_studio::scene::SarKind::DualPol { c11, c22 } = &mut sar.kind {
        let crop64 = |v: &[f64]| -> Vec<f64> {
            (0..n * n)
                .map(|i| v[(r0 + i / n) * 512 + c0 + i % n])
                .collect()
        };
        *c11 = crop64(c11);
        *c22 = crop64(c22);
    }
    sar.grid = unidiff_studio::scene::PixelGrid::plain(n, n);
    let scene = Scene::from_layers(Some(hsi), Some(sar), None, None).unwrap();
    let r = render_all(&scene, RenderSettings::default(), |_| {}).unwrap();
    vec![
        (Modality::Prgb, r.prgb.unwrap().0),
        (Modality::Pca, r.pca.unwrap().0),
        (Modality::Sar, r.pauli.unwrap()),
    ]
}

/// A patch's features are the same bits whatever batch it runs in: the
/// app's feature store keeps features from earlier (or cancelled) runs, and
/// the app's map must equal the headless run's.
#[test]
fn a_patchs_host_features_do_not_depend_on_its_batch() {
    let model = tiny_from("adm_tiny/model.pt");
    let host = host_unet(&model).unwrap();
    let s = Schedule::cosine(1000);
    // Batches of 8 and more run split into groups of 4 side by side
    // (`forward_split`, on two threads and more), 18 and 11 with a partial
    // group; smaller ones whole.
    let n = 18;
    let per = 3 * 32 * 32;
    let (x0, noise) = random_patches(5, n);
    let spec = FeatureSpec {
        t: 0,
        block: 8,
        size: 32,
    };
    let features = |from: usize, to: usize| {
        concat_features_host(
            &host,
            &s,
            &[(Modality::Sar, x0[from * per..to * per].to_vec())],
            32,
            &noise,
            spec,
        )
        .unwrap()
        .0
    };
    let all = features(0, n);
    let out = all.len() / n;
    for (from, to) in [(0, 1), (3, 7), (5, 16), (1, 17)] {
        let part = features(from, to);
        let differ = part
            .iter()
            .zip(&all[from * out..to * out])
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(differ, 0, "patches {from}..{to}: {differ} values differ");
    }
}
