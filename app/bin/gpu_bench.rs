//! The model benchmark: builds the U-Net of a configuration with seeded
//! random weights on one backend and precision, times a Stage A step (the
//! real adaptation loop) and a Stage B feature batch, and checks the tiny
//! fixture's forward parity on the same device. It links no GDAL, so it runs
//! on machines that have nothing but a GPU driver.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use burn::tensor::{FloatDType, TensorData};
use clap::{Parser, ValueEnum};
use serde::Serialize;

use unidiff_studio::base::CancelFlag;
use unidiff_studio::base::NormalRng;
use unidiff_studio::cli::model::load_config;
use unidiff_studio::model::checkpoint::TensorFile;
use unidiff_studio::model::lean_ops::{UNetAutodiff, UNetOps};
use unidiff_studio::model::params::ParamSource;
use unidiff_studio::model::resblock::BlockContext;
use unidiff_studio::model::{CheckpointTensors, UNet, UNetConfig};
use unidiff_studio::pipeline::features::{FeatureExtractor, FeatureSpec};
use unidiff_studio::pipeline::modality::Modality;
use unidiff_studio::pipeline::patch_grid::PatchGrid;
use unidiff_studio::pipeline::patches::PatchPool;
use unidiff_studio::pipeline::stage_a::{AdaptConfig, adapt};
use unidiff_studio::products::Rgb8Image;

/// Patches x modalities of the Berlin scene: the reference's scene workload.
const BERLIN_SAMPLES: usize = 742 * 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum BackendChoice {
    Cpu,
    Flex,
    Cuda,
    Wgpu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Precision {
    F32,
    F16,
    Bf16,
}

#[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(dead_code))]
impl Precision {
    fn dtype(self) -> FloatDType {
        match self {
            Precision::F32 => FloatDType::F32,
            Precision::F16 => FloatDType::F16,
            Precision::Bf16 => FloatDType::BF16,
        }
    }
}

/// What burn's autodiff keeps for the backward pass: every saved tensor
/// (`none`), or only those of compute-bound operations, recomputing the
/// element-wise ones from their inputs (`balanced`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Checkpointing {
    None,
    Balanced,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Part {
    StageA,
    StageB,
    Parity,
}

/// Times Stage A and Stage B of the diffusion backbone on one device.
#[derive(Parser, Debug)]
#[command(name = "unidiff-gpu-bench", version)]
struct Args {
    #[arg(long, value_enum, default_value = "cpu")]
    backend: BackendChoice,
    #[arg(long, value_enum, default_value = "f32")]
    precision: Precision,
    /// Autodiff checkpointing of Stage A.
    #[arg(long, value_enum, default_value = "none")]
    checkpointing: Checkpointing,
    /// `imagenet64`, `tiny`, or a guided-diffusion config JSON.
    #[arg(long, default_value = "imagenet64")]
    config: String,
    /// What to run, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "stage-a,stage-b,parity"
    )]
    what: Vec<Part>,
    /// Stage A batch (samples per step).
    #[arg(long, default_value_t = 32)]
    batch_a: usize,
    /// Stage B batch (patches per forward).
    #[arg(long, default_value_t = 64)]
    batch_b: usize,
    /// Stage B output block L.
    #[arg(long, default_value_t = 11)]
    block: usize,
    /// Untimed iterations first (autotune, allocation).
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed iterations.
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// The adm_tiny fixture folder (config.json, model.safetensors, io.safetensors).
    #[arg(long, default_value = "tests/fixtures/adm_tiny")]
    fixtures: PathBuf,
    /// Convolutions as shifted copies + one matrix product (CPU backend).
    #[arg(long)]
    im2col: bool,
    /// Stage A through burn's autodiff on the CPU backends too (by default
    /// they run it on the CPU kernels).
    #[arg(long)]
    burn_stage_a: bool,
    /// Also write the report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Worker threads for the CPU work (default: every core).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Debug, Serialize)]
struct Timing {
    median_ms: f64,
    min_ms: f64,
    all_ms: Vec<f64>,
}

impl Timing {
    fn from_ms(all_ms: Vec<f64>) -> Self {
        let mut sorted = all_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let median_ms = match sorted.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => sorted[n / 2],
            n => 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]),
        };
        Self {
            median_ms,
            min_ms: sorted.first().copied().unwrap_or(f64::NAN),
            all_ms,
        }
    }
}

#[derive(Debug, Serialize)]
struct StageAReport {
    batch: usize,
    /// Which engine computed the steps (the CPU kernels or burn's autodiff).
    engine: String,
    trainable_parameters: usize,
    step: Timing,
    build_seconds: f64,
}

#[derive(Debug, Serialize)]
struct StageBReport {
    batch: usize,
    block: usize,
    feature_shape: Vec<usize>,
    batch_time: Timing,
    /// Projected time of the Berlin scene (742 patches x 3 modalities).
    berlin_projected_s: f64,
    build_seconds: f64,
    /// "host forward" (the CPU inference path) or "burn".
    forward: &'static str,
    /// Threads of the pool the CPU work runs on.
    threads: usize,
}

#[derive(Debug, Serialize)]
struct ParityReport {
    /// Largest |ours - reference| over all blocks and the output.
    max_abs_diff: f64,
    /// Largest per-tensor max |diff| / max |reference|.
    max_rel_diff: f64,
    worst_tensor: String,
    tolerance: String,
    pass: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    backend: BackendChoice,
    precision: Precision,
    checkpointing: Checkpointing,
    config: String,
    parameters: usize,
    stage_a: Option<StageAReport>,
    stage_b: Option<StageBReport>,
    parity: Option<ParityReport>,
}

fn main() -> ExitCode {
    unidiff_studio::base::allocator::keep_freed_memory();
    let args = Args::parse();
    match run(&args) {
        Ok(report) => {
            let pass = report.parity.as_ref().is_none_or(|p| p.pass);
            if pass {
                ExitCode::SUCCESS
            } else {
                eprintln!("parity check failed");
                ExitCode::from(3)
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<Report> {
    unidiff_studio::base::threads::use_threads(args.threads)?;
    // Compiled kernels and autotune results in ~/.cache/unidiff-studio, as
    // the app keeps them (carried between runs on a GPU machine).
    unidiff_studio::model::kernel_cache::use_kernel_cache();
    let report = match args.backend {
        BackendChoice::Cpu => {
            if args.precision != Precision::F32 {
                bail!("the CPU backend runs in f32 only");
            }
            type B = burn::backend::NdArray<f32>;
            bench_autodiff::<B>(args, &Default::default(), true)?
        }
        BackendChoice::Flex => {
            if args.precision != Precision::F32 {
                bail!("the benchmark runs burn-flex in f32 only");
            }
            type B = burn::backend::Flex;
            bench_autodiff::<B>(args, &Default::default(), false)?
        }
        BackendChoice::Cuda => cuda(args)?,
        BackendChoice::Wgpu => wgpu(args)?,
    };
    let text = serde_json::to_string_pretty(&report)?;
    println!("{text}");
    if let Some(path) = &args.json {
        std::fs::write(path, format!("{text}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

#[cfg(feature = "cuda")]
fn cuda(args: &Args) -> Result<Report> {
    use burn::backend::Cuda;
    use burn::backend::cuda::CudaDevice;
    let device = CudaDevice::default();
    burn::tensor::set_default_dtypes::<Cuda>(
        &device,
        args.precision.dtype(),
        burn::tensor::IntDType::I32,
    )
    .map_err(|e| anyhow::anyhow!("setting {:?} on the GPU: {e:?}", args.precision))?;
    match args.precision {
        Precision::F32 => bench_autodiff::<Cuda<f32>>(args, &device, false),
        Precision::F16 => bench_autodiff::<Cuda<burn::tensor::f16>>(args, &device, false),
        Precision::Bf16 => bench_autodiff::<Cuda<burn::tensor::bf16>>(args, &device, false),
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda(_args: &Args) -> Result<Report> {
    bail!("this build has no CUDA backend: rebuild with `--features cuda`")
}

#[cfg(feature = "wgpu")]
fn wgpu(args: &Args) -> Result<Report> {
    use burn::backend::Wgpu;
    use burn::backend::wgpu::WgpuDevice;
    let device = WgpuDevice::default();
    burn::tensor::set_default_dtypes::<Wgpu>(
        &device,
        args.precision.dtype(),
        burn::tensor::IntDType::I32,
    )
    .map_err(|e| anyhow::anyhow!("setting {:?} on the GPU: {e:?}", args.precision))?;
    match args.precision {
        Precision::F32 => bench_autodiff::<Wgpu<f32>>(args, &device, false),
        Precision::F16 => bench_autodiff::<Wgpu<burn::tensor::f16>>(args, &device, false),
        Precision::Bf16 => bail!("wgpu has no bf16"),
    }
}

#[cfg(not(feature = "wgpu"))]
fn wgpu(_args: &Args) -> Result<Report> {
    bail!("this build has no wgpu backend: rebuild with `--features wgpu`")
}

/// Runs the benchmark on `B` under the chosen autodiff checkpointing.
fn bench_autodiff<B: UNetOps>(args: &Args, device: &B::Device, cpu: bool) -> Result<Report> {
    use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
    match args.checkpointing {
        Checkpointing::None => bench::<burn::backend::Autodiff<B>>(args, device, cpu),
        Checkpointing::Balanced => {
            bench::<burn::backend::Autodiff<B, BalancedCheckpointing>>(args, device, cpu)
        }
    }
}

fn bench<AB: UNetAutodiff>(args: &Args, device: &AB::Device, cpu: bool) -> Result<Report> {
    let config = load_config(&args.config)?;
    let mut report = Report {
        backend: args.backend,
        precision: args.precision,
        checkpointing: args.checkpointing,
        config: args.config.clone(),
        parameters: 0,
        stage_a: None,
        stage_b: None,
        parity: None,
    };
    if args.what.contains(&Part::Parity) {
        let parity = parity::<AB::InnerBackend>(&args.fixtures, args.precision, device)?;
        eprintln!(
            "parity: max abs {:.3e}, max rel {:.3e} ({}) -> {}",
            parity.max_abs_diff,
            parity.max_rel_diff,
            parity.worst_tensor,
            if parity.pass { "pass" } else { "FAIL" }
        );
        report.parity = Some(parity);
    }
    if args.what.contains(&Part::StageB) {
        let t0 = Instant::now();
        let mut model = UNet::<AB::InnerBackend>::build(
            &config,
            ParamSource::Random(NormalRng::new(0)),
            device,
        )?;
        model.set_conv_im2col(args.im2col);
        report.parameters = model.num_params();
        let build_seconds = t0.elapsed().as_secs_f64();
        eprintln!("stage B model built in {build_seconds:.1} s");
        let b = stage_b(&model, &config, args, device, build_seconds);
        eprintln!(
            "stage B: {:.1} ms per batch of {} -> Berlin scene {:.2} s",
            b.batch_time.median_ms, b.batch, b.berlin_projected_s
        );
        report.stage_b = Some(b);
    }
    if args.what.contains(&Part::StageA) {
        let t0 = Instant::now();
        let mut model = UNet::<AB>::build(&config, ParamSource::Random(NormalRng::new(0)), device)?;
        if cpu {
            model.set_conv_im2col(true);
        }
        report.parameters = model.num_params();
        let build_seconds = t0.elapsed().as_secs_f64();
        eprintln!("stage A model built in {build_seconds:.1} s");
        let a = stage_a(model, &config, args, build_seconds)?;
        eprintln!(
            "stage A: {:.1} ms per step of {} ({})",
            a.step.median_ms, a.batch, a.engine
        );
        report.stage_a = Some(a);
    }
    Ok(report)
}

/// A pool of random renderings, large enough for a few shuffled epochs.
fn random_pool(patch: usize) -> PatchPool {
    let side = 4 * patch;
    let mut rng = NormalRng::new(7);
    let images: Vec<(Modality, Rgb8Image)> = Modality::ALL
        .iter()
        .map(|&m| {
            let data = (0..side * side * 3)
                .map(|_| (rng.uniform() * 255.0) as u8)
                .collect();
            let image = Rgb8Image {
                width: side,
                height: side,
                data,
                stretch: Vec::new(),
            };
            (m, image)
        })
        .collect();
    let refs: Vec<(Modality, &Rgb8Image)> = images.iter().map(|(m, i)| (*m, i)).collect();
    PatchPool::with_grid(&refs, PatchGrid::new(side, side, patch, patch / 2))
}

fn stage_a<AB: UNetAutodiff>(
    model: UNet<AB>,
    config: &UNetConfig,
    args: &Args,
    build_seconds: f64,
) -> Result<StageAReport> {
    let trainable_parameters = model
        .trainable_params()
        .iter()
        .map(|(_, p)| p.shape().iter().product::<usize>())
        .sum();
    let patch = config.image_size;
    let pool = random_pool(patch);
    let cfg = AdaptConfig {
        steps: args.warmup + args.iters,
        batch: args.batch_a,
        max_zoom: patch + patch / 4,
        cpu_kernels: !args.burn_stage_a,
        ..AdaptConfig::default()
    };
    // Every step ends by reading its loss back, so the time between two
    // progress events is one synchronised step.
    let mut marks = vec![Instant::now()];
    let outcome = adapt(model, &pool, &cfg, &CancelFlag::new(), |p| {
        marks.push(Instant::now());
        eprintln!("  stage A step {}/{}: loss {:.4}", p.step, p.steps, p.loss);
    })?;
    let ms: Vec<f64> = marks
        .windows(2)
        .skip(args.warmup)
        .map(|w| (w[1] - w[0]).as_secs_f64() * 1e3)
        .collect();
    Ok(StageAReport {
        batch: args.batch_a,
        engine: outcome.engine.0,
        trainable_parameters,
        step: Timing::from_ms(ms),
        build_seconds,
    })
}

fn stage_b<B: UNetOps>(
    model: &UNet<B>,
    config: &UNetConfig,
    args: &Args,
    device: &B::Device,
    build_seconds: f64,
) -> StageBReport {
    let p = config.image_size;
    let n = args.batch_b;
    let mut rng = NormalRng::new(11);
    let mut draw = |len: usize, uniform: bool| -> Vec<f32> {
        (0..len)
            .map(|_| {
                if uniform {
                    (rng.uniform() * 2.0 - 1.0) as f32
                } else {
                    rng.normal() as f32
                }
            })
            .collect()
    };
    let x0_values = draw(n * 3 * p * p, true);
    let noise_values = draw(3 * p * p, false);
    let spec = FeatureSpec {
        t: 300,
        block: args.block,
        size: p,
    };
    // Stage B's own feature function: the host forward on the CPU backends.
    let extractor = match FeatureExtractor::new(model, spec, noise_values.clone(), device) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("  {e}; timing burn's forward instead");
            FeatureExtractor::burn(model, spec, noise_values, device)
        }
    };
    let mut feature_shape = Vec::new();
    let mut ms = Vec::new();
    for i in 0..args.warmup + args.iters {
        let t0 = Instant::now();
        let modality = Modality::ALL[i % 3];
        let features = match extractor.features(vec![(modality, x0_values.clone())]) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("  stage B batch {}: {e}", i + 1);
                break;
            }
        };
        feature_shape = features.dims().to_vec();
        // Reading one value back waits for the whole batch.
        let _ = features.sum().into_scalar();
        let elapsed = t0.elapsed().as_secs_f64() * 1e3;
        eprintln!(
            "  stage B batch {}/{}: {elapsed:.1} ms",
            i + 1,
            args.warmup + args.iters
        );
        if i >= args.warmup {
            ms.push(elapsed);
        }
    }
    let batch_time = Timing::from_ms(ms);
    StageBReport {
        batch: n,
        block: args.block,
        feature_shape,
        berlin_projected_s: batch_time.median_ms / 1e3 * BERLIN_SAMPLES as f64 / n as f64,
        batch_time,
        build_seconds,
        forward: if extractor.on_host() {
            "host forward"
        } else {
            "burn"
        },
        threads: rayon::current_num_threads(),
    }
}

fn parity<B: UNetOps>(
    dir: &Path,
    precision: Precision,
    device: &B::Device,
) -> Result<ParityReport> {
    let config = load_config(&dir.join("config.json").to_string_lossy())?;
    let ckpt = CheckpointTensors::open(&dir.join("model.safetensors"))?;
    let model = UNet::<B>::build(&config, ParamSource::Checkpoint(&ckpt), device)?;
    let io = TensorFile::open(&dir.join("io.safetensors"))?;
    let (shape, x) = io.f32("x")?;
    let (t, y) = (io.i64("t")?, io.i64("y")?);
    let x = Tensor::<B, 4>::from_data(TensorData::new(x, shape), device);
    let emb = model.embedding(&t, &y);
    let mut seen: Vec<(String, Tensor<B, 4>)> = Vec::new();
    let out = model.forward_blocks(x, emb, BlockContext { train: false }, None, &mut |id, a| {
        seen.push((id.name(), a.clone()))
    });
    seen.push(("out".to_string(), out));
    let (mut max_abs, mut max_rel, mut worst) = (0.0f64, 0.0f64, String::new());
    for (name, act) in seen {
        let (_, want) = io.f32(&name)?;
        let got: Vec<f32> = act
            .into_data()
            .convert::<f32>()
            .into_vec()
            .map_err(|e| anyhow::anyhow!("{name}: {e:?}"))?;
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
        let diff = got
            .iter()
            .zip(&want)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs() as f64));
        max_abs = max_abs.max(diff);
        let rel = diff / scale.max(1e-12);
        if rel > max_rel {
            max_rel = rel;
            worst = name;
        }
    }
    let (tolerance, pass) = match precision {
        Precision::F32 => ("max abs diff <= 1e-4".to_string(), max_abs <= 1e-4),
        _ => ("max rel diff <= 2e-2".to_string(), max_rel <= 2e-2),
    };
    Ok(ParityReport {
        max_abs_diff: max_abs,
        max_rel_diff: max_rel,
        worst_tensor: worst,
        tolerance,
        pass,
    })
}
