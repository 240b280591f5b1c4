//! Why the diffusion classifier scored at chance on the visible scene, and
//! what the head gets out of the features now: on the sparse-label protocol
//! of `evaluation.md` (Sen1Floods11 Spain, 200 + 200 training pixels, seeds
//! 0-2), the SAME frozen-U-Net features feed (a) the MLP head as `run`
//! trains it, with and without standardised features and early stopping,
//! (b) a linear probe (multinomial logistic regression, the same training
//! loop without hidden layers), (c) a random forest on each pixel's features
//! (averaged over the patches that cover it), beside the raw-pixel forest.
//! Prints a markdown table of OA / kappa / mF1 (mean ± sample std over the
//! seeds) and per-class F1, and writes it with every per-seed number as JSON.
//!
//! Run (one command, split included): `bash scripts/head_probe.sh`; or
//! `cargo bench --profile test --bench head_probe -- SPLIT_DIR [OUT.json]`
//! with the split of `scripts/protocol_split.py`. Environment: `T=300,0`,
//! `SEEDS=0,1,2`, `STRIDE` (default: half the patch),
//! `BACKBONE=tiny-random|random`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use unidiff_studio::base::CancelFlag;
use unidiff_studio::cli::run::{Cpu, RunInputs, backbone_on_cpu, prepare, stage_b_config};
use unidiff_studio::metrics::summary::MetricsSummary;
use unidiff_studio::pipeline::baseline::{ForestConfig, PixelFeatures, random_forest_map};
use unidiff_studio::pipeline::classification::{
    ClassificationSettings, ClassifierChoice, classify_scene_stored,
};
use unidiff_studio::pipeline::feature_store::FeatureStore;
use unidiff_studio::pipeline::patch_grid::PatchGrid;

#[derive(Parser)]
struct Inputs {
    #[command(flatten)]
    inputs: RunInputs,
}

/// One head variant: its name and the `run` options that make it.
const VARIANTS: [(&str, &[&str]); 5] = [
    (
        "MLP 128-32, standardised, all labels, 200 epochs (the default)",
        &[],
    ),
    (
        "MLP 128-32, raw features, early stopping on 20 % (the head before)",
        &["--no-standardize", "--validation-fraction", "0.2"],
    ),
    (
        "MLP 128-32, standardised, early stopping on 20 %",
        &["--validation-fraction", "0.2"],
    ),
    (
        "linear probe, standardised, early stopping on 20 %",
        &["--mlp", "linear", "--validation-fraction", "0.2"],
    ),
    (
        "linear probe, raw features, early stopping on 20 %",
        &[
            "--mlp",
            "linear",
            "--no-standardize",
            "--validation-fraction",
            "0.2",
        ],
    ),
];

#[derive(Default, serde::Serialize)]
struct Scores {
    oa: Vec<f64>,
    kappa: Vec<f64>,
    mf1: Vec<f64>,
    f1_per_class: Vec<Vec<f64>>,
}

impl Scores {
    fn push(&mut self, m: &MetricsSummary) {
        self.oa.push(100.0 * m.oa);
        self.kappa.push(100.0 * m.kappa);
        self.mf1.push(100.0 * m.mf1);
        self.f1_per_class
            .push(m.per_class.f1.iter().map(|f| 100.0 * f).collect());
    }
}

fn mean_std(v: &[f64]) -> String {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return format!("{m:.2}");
    }
    let s = (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)).sqrt();
    format!("{m:.2} ± {s:.2}")
}

/// Each pixel's feature vector averaged over the stored patches that cover it.
fn averaged_features(
    store: &FeatureStore,
    grid: &PatchGrid,
    h: usize,
    w: usize,
) -> (Vec<f32>, usize) {
    let d = store.dim();
    let p = grid.patch;
    let mut sum = vec![0f32; h * w * d];
    let mut count = vec![0u32; h * w];
    let mut buf = Vec::new();
    for n in 0..grid.len() {
        buf.clear();
        if !store.read_into(n, &mut buf) {
            continue;
        }
        let (r0, c0) = grid.top_left(n);
        for y in 0..p {
            for x in 0..p {
                let Some((r, c)) = grid.scene_pixel(r0 + y, c0 + x) else {
                    continue;
                };
                let i = r * w + c;
                count[i] += 1;
                for k in 0..d {
                    sum[i * d + k] += buf[(k * p + y) * p + x];
                }
            }
        }
    }
    for (i, &c) in count.iter().enumerate() {
        for v in &mut sum[i * d..(i + 1) * d] {
            *v /= c.max(1) as f32;
        }
    }
    (sum, d)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(split_dir) = args.first().map(PathBuf::from) else {
        eprintln!(
            "usage: head_probe SPLIT_DIR [OUT.json] (make SPLIT_DIR with scripts/protocol_split.py)"
        );
        std::process::exit(2);
    };
    let out_json = args.get(1).map(PathBuf::from);
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/sen1floods11_spain");
    if !data.exists() {
        eprintln!("skipped: {} is not here", data.display());
        return Ok(());
    }
    let ts: Vec<i64> = std::env::var("T")
        .unwrap_or_else(|_| "300,0".into())
        .split(',')
        .map(|t| t.trim().parse().context("T: comma-separated timesteps"))
        .collect::<anyhow::Result<_>>()?;
    let backbone = std::env::var("BACKBONE").unwrap_or_else(|_| "tiny-random".into());
    let seeds: Vec<u64> = std::env::var("SEEDS")
        .unwrap_or_else(|_| "0,1,2".into())
        .split(',')
        .map(|t| t.trim().parse().context("SEEDS: comma-separated seeds"))
        .collect::<anyhow::Result<_>>()?;
    let stride = std::env::var("STRIDE").ok();
    let mut table: BTreeMap<String, Scores> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut record = |name: String, m: &MetricsSummary| {
        if !order.contains(&name) {
            order.push(name.clone());
        }
        table.entry(name).or_default().push(m);
    };
    for &seed in &seeds {
        let base = |extra: &[&str]| -> RunInputs {
            let mut argv: Vec<String> = vec!["probe".into()];
            for (k, v) in [
                ("--hsi", data.join("Spain_7370579_S2Hand.tif")),
                ("--sar", data.join("Spain_7370579_S1Hand.tif")),
                (
                    "--train-labels",
                    split_dir.join(format!("train_seed{seed}.npy")),
                ),
                (
                    "--test-labels",
                    split_dir.join(format!("test_seed{seed}.npy")),
                ),
            ] {
                argv.push(k.into());
                argv.push(v.display().to_string());
            }
            argv.extend(["--backbone".into(), backbone.clone()]);
            argv.extend(["--seed".into(), seed.to_string()]);
            if let Some(s) = &stride {
                argv.extend(["--stride".into(), s.clone()]);
            }
            argv.extend(extra.iter().map(|s| s.to_string()));
            Inputs::parse_from(argv).inputs
        };
        let inputs = base(&[]);
        let prepared = prepare(&inputs)?;
        let (model, info) = backbone_on_cpu(&prepared.spec)?;
        let test = prepared.scene.test_labels.clone().context("test labels")?;
        let train = prepared
            .scene
            .train_labels
            .clone()
            .context("training labels")?;
        let (h, w) = (train.grid.height, train.grid.width);
        for &t in &ts {
            let mut store = FeatureStore::across_runs(8 << 30);
            for (v, (name, extra)) in VARIANTS.iter().enumerate() {
                let vin = base(extra);
                let settings = ClassificationSettings {
                    modalities: prepared.modalities.clone(),
                    classifier: ClassifierChoice::Mlp,
                    baseline: v == 0 && t == ts[0],
                    held_out_check: false,
                    stage_b: stage_b_config(&vin, &info, t)?,
                    forest: ForestConfig {
                        seed,
                        ..ForestConfig::default()
                    },
                };
                let t0 = Instant::now();
                let outcome = classify_scene_stored::<Cpu>(
                    (&model, &backbone),
                    &prepared.scene,
                    &prepared.renderings,
                    &settings,
                    &Default::default(),
                    &CancelFlag::new(),
                    &mut |_| {},
                    &mut store,
                )?;
                let (mlp, out) = outcome.mlp.as_ref().context("no diffusion result")?;
                let m = mlp.metrics.as_ref().context("not scored")?;
                eprintln!(
                    "seed {seed} t {t} {name}: OA {:.2} kappa {:.2} ({:.0} s, best epoch {} of {})",
                    100.0 * m.oa,
                    100.0 * m.kappa,
                    t0.elapsed().as_secs_f64(),
                    out.head.best_epoch,
                    out.head.epochs
                );
                record(format!("t = {t}: {name}"), m);
                let trees = settings.forest.trees;
                if let Some(f) = outcome.forest.as_ref().and_then(|f| f.metrics.as_ref()) {
                    record(format!("raw-pixel random forest ({trees} trees)"), f);
                }
                if let Some(f) = outcome
                    .filter_forest
                    .as_ref()
                    .and_then(|f| f.metrics.as_ref())
                {
                    record(
                        format!("filter-rf: raw + filter features ({trees} trees)"),
                        f,
                    );
                }
            }
            // (c) a forest on the same features, one vector per pixel.
            let stride = stage_b_config(&inputs, &info, t)?.stride;
            let grid = PatchGrid::new(h, w, info.config.image_size, stride);
            let (features, d) = averaged_features(&store, &grid, h, w);
            // `run`'s own forest (100 trees, sqrt(d) features a split).
            let pixels = PixelFeatures {
                values: features,
                dim: d,
                names: (0..d).map(|k| format!("feature {k}")).collect(),
                empty: vec![false; h * w],
            };
            let forest = ForestConfig {
                seed,
                ..ForestConfig::default()
            };
            let map = random_forest_map(&pixels, &train, &forest)?;
            let m = MetricsSummary::from_labels(&test.data, &map, 2);
            eprintln!(
                "seed {seed} t {t} forest on diffusion features: OA {:.2} kappa {:.2}",
                100.0 * m.oa,
                100.0 * m.kappa
            );
            record(
                format!("t = {t}: random forest on the diffusion features"),
                &m,
            );
        }
    }
    println!("| head ({backbone}) | OA | kappa x 100 | mF1 | F1 not water | F1 water |");
    println!("|---|---|---|---|---|---|");
    for name in &order {
        let s = &table[name];
        let f1 = |k: usize| -> Vec<f64> { s.f1_per_class.iter().map(|f| f[k]).collect() };
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            mean_std(&s.oa),
            mean_std(&s.kappa),
            mean_std(&s.mf1),
            mean_std(&f1(0)),
            mean_std(&f1(1))
        );
    }
    if let Some(path) = out_json {
        let json = serde_json::json!({ "backbone": backbone, "t": ts, "stride": stride, "rows": order.iter().map(|n| (n.clone(), &table[n])).collect::<Vec<_>>() });
        std::fs::write(&path, serde_json::to_vec_pretty(&json)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
