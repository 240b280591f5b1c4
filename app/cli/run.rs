//! `unidiff-studio run`: the whole pipeline headless on a co-registered HSI
//! and/or SAR pair with training (and optional test) labels: renderings,
//! Stage B features of the frozen backbone, the MLP head, the random-forest
//! baseline beside it, maps, metrics and `run.json` with every setting,
//! timing and input hash. `--demo` runs it on the bundled Sentinel-1/2 scene
//! with a seeded sparse training set.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use burn::backend::{Autodiff, Flex};
use clap::Args;
use serde_json::json;

use super::model::BackboneArgs;
use super::{demo_paths, parse_modalities};
use crate::base::CancelFlag;
use crate::base::step::Step;
use crate::base::thousands;
use crate::io::atomic::check_output_file;
use crate::io::staged_folder::StagedFolder;
use crate::io::{SceneFiles, open_scene};
use crate::metrics::summary::MetricsSummary;
use crate::model::backbone::{BackboneInfo, BackboneSpec, load_backbone};
use crate::pipeline::Modality;
use crate::pipeline::baseline::ForestConfig;
use crate::pipeline::classification::{
    Classification, ClassificationSettings, ClassifierChoice, classify_scene,
};
use crate::pipeline::classifier::{HeadTrainConfig, MlpConfig};
use crate::pipeline::export::{write_run_outputs, write_run_record};
use crate::pipeline::label_curve::{LabelCurve, LabelCurveSpec, Spread};
use crate::pipeline::model_bundle::{ModelBundle, TrainedRun};
use crate::pipeline::run_record::{
    MadeFrom, Origin, RecordParts, Reproducible, hashed, how_read, run_record, say_how_read,
};
use crate::pipeline::split::{SparseSplit, sparse_split};
use crate::pipeline::stage_b::{StageBConfig, StageBProgress};
use crate::products::prgb::RgbRequest;
use crate::products::renderings::{RenderSettings, Renderings, render_all};
use crate::scene::Scene;
use crate::scene::named_classes;

/// The CPU backend of Stage B: the frozen U-Net runs through the host
/// forward (`model::host_unet`, on every CPU backend), burn-flex holds the
/// features and trains the head.
pub type Cpu = Autodiff<Flex>;

/// Inputs, backbone and Stage B settings shared by `run` and `sweep`.
#[derive(Debug, Args, Clone, Default)]
pub struct RunInputs {
    /// Run on the bundled demo scene (Sentinel-1/2 Spain_7370579, water
    /// mask as reference, a seeded 0.5 % of it for training, the tiny
    /// random backbone unless one is given).
    #[arg(long)]
    pub demo: bool,
    /// Hyperspectral or multispectral cube.
    #[arg(long)]
    pub hsi: Option<PathBuf>,
    /// SAR image (VV, VH bands; or a PolSARpro folder).
    #[arg(long)]
    pub sar: Option<PathBuf>,
    /// Training labels (0 = unlabelled, classes 1..K): a raster, or points
    /// / polygons in a GeoPackage, Shapefile or GeoJSON (any CRS) with the
    /// class in --class-field, burnt onto the scene's grid.
    #[arg(long)]
    pub train_labels: Option<PathBuf>,
    /// Test labels, scored and never trained on.
    #[arg(long)]
    pub test_labels: Option<PathBuf>,
    /// Added to every label value first (1 for masks with classes from 0).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub label_offset: i32,
    /// The class attribute of vector labels (a class number, or a name of
    /// --class-names; default: the first of class, cls, label, reference,
    /// classvalue, mc_id, c_id the layer has).
    #[arg(long)]
    pub class_field: Option<String>,
    /// Take a seeded sparse training set of this fraction of each class
    /// from --train-labels and test on the rest (e.g. 0.005).
    #[arg(long)]
    pub split_fraction: Option<f64>,
    /// Names of classes 1..K, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub class_names: Vec<String>,
    #[command(flatten)]
    pub backbone: BackboneArgs,
    /// Modalities, in concatenation order.
    #[arg(long, value_delimiter = ',', default_value = "prgb,pca,sar")]
    pub modalities: Vec<String>,
    /// Output block L (default 11, or the last block of a smaller backbone).
    #[arg(long)]
    pub block: Option<usize>,
    /// MLP hidden layers: `berlin` (128,32), `augsburg` (128), sizes, or
    /// `linear` (no hidden layer: a logistic-regression probe).
    #[arg(long, default_value = "berlin")]
    pub mlp: String,
    /// Fraction of the training labels held out (in spatial blocks) for the
    /// head's early stopping, e.g. 0.2; 0 (the default) trains on all of
    /// them for --max-epochs.
    #[arg(long, default_value_t = 0.0)]
    pub validation_fraction: f64,
    /// Feed the head the raw features instead of standardised ones (for
    /// comparison only; the default standardises on the training vectors).
    #[arg(long)]
    pub no_standardize: bool,
    /// Patch stride (default half the patch side, as the method).
    #[arg(long)]
    pub stride: Option<usize>,
    /// Patches per feature batch (default: 64 K pixels a batch, 16 patches
    /// of 64 x 64).
    #[arg(long)]
    pub batch_patches: Option<usize>,
    /// Seed of the backbone (random), the noise, the split and the heads.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub seed: u64,
    /// Largest number of head-training epochs.
    #[arg(long, default_value_t = 200)]
    pub max_epochs: usize,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub inputs: RunInputs,
    /// Diffusion timestep t of the features (0..=999; a negative value is
    /// taken only to be refused with the range).
    #[arg(long, default_value_t = 300, allow_negative_numbers = true)]
    pub t: i64,
    /// mlp (diffusion features; both random forests run beside it), rf
    /// (random forest on the raw pixel values) or filter-rf (random forest on
    /// the raw values + multi-scale filter features, ilastik's recipe).
    #[arg(long, default_value = "mlp")]
    pub classifier: String,
    /// Do not run the random forests beside the MLP.
    #[arg(long)]
    pub no_baseline: bool,
    /// Do not score the classifiers on a held-out fifth of the training
    /// labels (each is trained once more without it) to recommend one.
    #[arg(long)]
    pub no_held_out_check: bool,
    /// Trees of the random forests.
    #[arg(long, default_value_t = 200)]
    pub trees: u16,
    /// The label-efficiency curve: the MLP head trained again on nested
    /// seeded subsets of this many training labels per class (e.g.
    /// 10,25,50,100,200), each subset's map scored on the test labels;
    /// label_curve.csv and run.json's label_curve.
    #[arg(long, value_delimiter = ',')]
    pub label_curve: Vec<usize>,
    /// Seeded draws per point of --label-curve (the spread of each point).
    #[arg(long, default_value_t = crate::pipeline::label_curve::DEFAULT_REPEATS)]
    pub label_curve_draws: usize,
    /// Rerun what a run.json records (the app's "Export results…" or a
    /// `run`): the same inputs, found beside it or where recorded and
    /// checked by SHA-256, the same split, classes, backbone and settings;
    /// a live update of the app is rerun as its Classify.
    #[arg(long, conflicts_with_all = ["demo", "hsi", "sar", "train_labels", "test_labels", "split_fraction", "classifier", "t", "label_curve"])]
    pub from_json: Option<PathBuf>,
    /// Output folder: written under a hidden name beside it and renamed
    /// into place when whole; an existing folder with files is refused
    /// unless --overwrite.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing --out folder (as a whole, when the run is done).
    #[arg(long)]
    pub overwrite: bool,
    /// Also save the trained model (backbone reference, adapter, head,
    /// classes, rendering statistics) as one file for `predict`, e.g.
    /// model.udmodel.
    #[arg(long)]
    pub save_model: Option<PathBuf>,
}

/// A scene ready for Stage B, with how long getting there took.
pub struct Prepared {
    pub scene: Scene,
    pub renderings: Renderings,
    /// How the renderings were made (the model bundle makes them so).
    pub render_settings: RenderSettings,
    pub spec: BackboneSpec,
    pub modalities: Vec<Modality>,
    pub class_names: Vec<String>,
    pub inputs: serde_json::Value,
    pub split: Option<SparseSplit>,
    pub seconds_load: f64,
    pub seconds_products: f64,
}

/// Opens the inputs, checks their grids and renders the modalities.
pub fn prepare(args: &RunInputs) -> anyhow::Result<Prepared> {
    prepare_with(args, RenderSettings::default(), None, None)
}

/// [`prepare`] with the renderings' settings and, from a run.json, the
/// split and backbone it recorded (instead of the flags').
pub fn prepare_with(
    args: &RunInputs,
    render: RenderSettings,
    recorded_split: Option<SparseSplit>,
    recorded_spec: Option<BackboneSpec>,
) -> anyhow::Result<Prepared> {
    let mut args = args.clone();
    if args.demo {
        let (hsi, sar, labels) = demo_paths()?;
        args.hsi.get_or_insert(hsi);
        args.sar.get_or_insert(sar);
        if args.train_labels.is_none() {
            args.train_labels = Some(labels);
            args.label_offset = 1;
            args.split_fraction.get_or_insert(0.005);
            if args.class_names.is_empty() {
                args.class_names = vec!["dry".into(), "water".into()];
            }
        }
        if args.backbone.checkpoint.is_none() && args.backbone.backbone.is_none() {
            args.backbone.backbone = Some("tiny-random".into());
        }
    }
    let modalities = parse_modalities(&args.modalities)?;
    let spec = match recorded_spec {
        Some(spec) => spec,
        None => args.backbone.spec(args.seed)?,
    };
    let train_path = args
        .train_labels
        .as_ref()
        .context("give --train-labels (or --demo)")?;
    if args.hsi.is_none() && args.sar.is_none() {
        bail!("give --hsi and/or --sar");
    }
    if let Some(f) = args.split_fraction
        && !(f > 0.0 && f < 1.0)
    {
        bail!("--split-fraction must be between 0 and 1");
    }

    let step = Step::start("reading the inputs");
    let mut inputs = serde_json::Map::new();
    for (name, path) in [
        ("hsi", &args.hsi),
        ("sar", &args.sar),
        ("train_labels", &Some(train_path.clone())),
        ("test_labels", &args.test_labels),
    ] {
        if let Some(p) = path {
            inputs.insert(name.into(), hashed(p, p)?);
        }
    }
    inputs.insert("label_offset".into(), json!(args.label_offset));
    if let Some(field) = &args.class_field {
        inputs.insert("class_field".into(), json!(field));
    }
    let split = recorded_split.or(args.split_fraction.map(|fraction| SparseSplit {
        fraction,
        seed: args.seed,
        ..SparseSplit::default()
    }));
    if split.is_some() && args.test_labels.is_some() {
        bail!("give either --test-labels or --split-fraction, not both");
    }
    let files = SceneFiles {
        hsi: args.hsi.clone(),
        sar: args.sar.clone(),
        train_labels: Some(train_path.clone()),
        test_labels: args.test_labels.clone(),
        label_offset: args.label_offset,
        class_field: args.class_field.clone(),
        class_names: args.class_names.clone(),
    };
    let opened =
        open_scene(&files, &CancelFlag::new(), &|_, _| {})?.context("the inputs were not read")?;
    for note in &opened.notes {
        log::info!("note: {note}");
    }
    let mut scene = opened.scene;
    say_how_read(&how_read(&scene), &mut inputs);
    let highest = [&scene.train_labels, &scene.test_labels]
        .into_iter()
        .flatten()
        .filter_map(|l| l.data.iter().max().copied())
        .max()
        .unwrap_or(0) as usize;
    if args.class_names.len() > highest {
        log::warn!(
            "--class-names gives {} names but the labels hold classes 1..={highest}: {} not used",
            args.class_names.len(),
            args.class_names[highest..].join(", ")
        );
    }
    if let Some(s) = &split
        && let Some(reference) = &scene.train_labels
    {
        let (train, test) = sparse_split(reference, s);
        scene.train_labels = Some(train);
        scene.test_labels = Some(test);
    }
    let seconds_load = step.done();

    let step = Step::start("rendering the modalities");
    let renderings = render_all(&scene, render, |_| {})?;
    let seconds_products = step.done();
    Ok(Prepared {
        scene,
        renderings,
        render_settings: render,
        spec,
        modalities,
        class_names: args.class_names.clone(),
        inputs: serde_json::Value::Object(inputs),
        split,
        seconds_load,
        seconds_products,
    })
}

/// Stage B settings for the backbone: the method's patch 64 / stride 32 and
/// block 11, or the backbone's own patch size and last block when smaller.
pub fn stage_b_config(
    args: &RunInputs,
    info: &BackboneInfo,
    t: i64,
) -> anyhow::Result<StageBConfig> {
    let block = info
        .config
        .feature_block(args.block)
        .map_err(|e| anyhow::anyhow!("--{e}"))?;
    if !(0..1000).contains(&t) {
        bail!("--t {t}: the timestep must be in 0..999");
    }
    let mlp = match args.mlp.as_str() {
        "berlin" => MlpConfig::berlin(),
        "augsburg" => MlpConfig::augsburg(),
        "linear" => MlpConfig { hidden: Vec::new() },
        sizes => MlpConfig {
            hidden: sizes
                .split(',')
                .map(|s| s.trim().parse::<usize>())
                .collect::<Result<_, _>>()
                .with_context(|| {
                    format!("--mlp '{sizes}': berlin, augsburg, linear or sizes like 128,32")
                })?,
        },
    };
    if mlp.hidden.contains(&0) {
        bail!(
            "--mlp '{}': a hidden layer needs at least one unit",
            args.mlp
        );
    }
    if args.max_epochs == 0 {
        bail!("--max-epochs 0: the head needs at least one epoch");
    }
    if args.batch_patches == Some(0) {
        bail!("--batch-patches 0: a batch needs at least one patch");
    }
    if !(0.0..0.9).contains(&args.validation_fraction) {
        bail!(
            "--validation-fraction {}: must be in 0..0.9 (0 = no early stopping)",
            args.validation_fraction
        );
    }
    let patch = info.config.image_size;
    Ok(StageBConfig {
        t,
        block,
        mlp,
        head: HeadTrainConfig {
            seed: args.seed,
            max_epochs: args.max_epochs,
            standardize: !args.no_standardize,
            ..HeadTrainConfig::default()
        },
        patch,
        stride: match args.stride {
            Some(s) if s == 0 || s > patch => bail!("--stride must be in 1..={patch}"),
            Some(s) => s,
            None => patch / 2,
        },
        batch_patches: args
            .batch_patches
            .unwrap_or_else(|| crate::pipeline::stage_b::default_batch_patches(patch))
            .max(1),
        noise_seed: args.seed,
        validation_fraction: args.validation_fraction,
        ..StageBConfig::default()
    })
}

/// Builds the backbone on the CPU and says what it is.
pub fn backbone_on_cpu(
    spec: &BackboneSpec,
) -> anyhow::Result<(crate::model::UNet<Flex>, BackboneInfo)> {
    let step = Step::start("building the backbone");
    let (model, info) = load_backbone::<Flex>(spec, &Default::default())?;
    step.done();
    log::info!(
        "[..] backbone: {} ({} parameters); device: CPU (Stage B through the CPU forward of unidiff-kernels; the command line runs on the CPU, the app also on a GPU)",
        info.description,
        thousands(info.parameters)
    );
    Ok((model, info))
}

/// A cancel flag that Ctrl-C sets.
pub fn cancel_on_ctrl_c() -> CancelFlag {
    let cancel = CancelFlag::new();
    let handler_flag = cancel.clone();
    let _ = ctrlc::set_handler(move || handler_flag.cancel());
    cancel
}

/// Runs the classification on the CPU with a progress line.
pub fn classify(
    model: &crate::model::UNet<Flex>,
    prepared: &Prepared,
    settings: &ClassificationSettings,
    cancel: &CancelFlag,
) -> anyhow::Result<Classification> {
    let outcome = classify_scene::<Cpu>(
        model,
        &prepared.scene,
        &prepared.renderings,
        settings,
        &Default::default(),
        cancel,
        &mut print_progress,
    );
    eprintln!();
    Ok(outcome?)
}

/// One progress line, rewritten in place: phase, batches done, ETA.
pub fn print_progress(p: &StageBProgress) {
    use std::io::Write;
    let eta = p
        .eta_seconds
        .map_or(String::new(), |s| format!(", ETA {s:.0} s"));
    let bar_len = 30;
    let filled = (p.done * bar_len).checked_div(p.total).unwrap_or(0);
    eprint!(
        "\r[..] {:<32} [{}{}] {}/{}{eta}      ",
        p.phase,
        "#".repeat(filled),
        " ".repeat(bar_len - filled),
        p.done,
        p.total
    );
    let _ = std::io::stderr().flush();
}

pub use crate::base::step::peak_rss_mib;

fn print_summary(outcome: &Classification) {
    let line = |what: &str, m: &Option<MetricsSummary>| {
        if let Some(m) = m {
            log::info!(
                "[ok] {what}: OA {:.4}  AA {:.4}  kappa {:.4}  mF1 {:.4}  mIoU {:.4}",
                m.oa,
                m.aa,
                m.kappa,
                m.mf1,
                m.miou
            );
        }
    };
    for (c, r) in outcome.results() {
        line(c.label(), &r.metrics);
    }
    if let Some(r) = &outcome.recommendation {
        log::info!("[ok] {}", r.sentence());
    }
}

/// The label curve as a table in the log: per n, the labels used and the
/// mean (min-max) of OA and mF1 over the draws.
fn print_label_curve(curve: &LabelCurve) {
    log::info!(
        "[ok] label curve ({} draws per point, {:.1} s):",
        curve.spec.repeats,
        curve.seconds
    );
    log::info!("     labels/class   labels   OA (min-max)               mF1 (min-max)");
    let cell = |s: &Option<Spread>| match s {
        Some(s) => format!("{:.4} ({:.4}-{:.4})", s.mean, s.min, s.max),
        None => "-".into(),
    };
    for r in &curve.rows {
        log::info!(
            "     {:>12}   {:>6.0}   {:<26} {}",
            r.per_class,
            r.labels,
            cell(&r.oa),
            cell(&r.mf1)
        );
    }
}

/// What `run` classifies and how: from the flags, or from a run.json.
struct RunPlan {
    prepared: Prepared,
    settings: ClassificationSettings,
    model: crate::model::UNet<Flex>,
    info: BackboneInfo,
}

/// Where `run`'s plan comes from: its flags (with the classifier they
/// name) or a run.json.
enum PlanSource<'a> {
    Flags(ClassifierChoice),
    Record(&'a Path),
}

/// The classifier a `--classifier` names.
fn classifier_named(name: &str) -> anyhow::Result<ClassifierChoice> {
    ClassifierChoice::parse(name)
        .with_context(|| format!("unknown classifier '{name}' (mlp, rf, filter-rf)"))
}

/// The plan of `run` from its flags (`classifier`: its `--classifier`).
fn plan_from_flags(args: &RunArgs, classifier: ClassifierChoice) -> anyhow::Result<RunPlan> {
    if args.trees == 0 {
        bail!("--trees 0: a random forest needs at least one tree");
    }
    let label_curve = if args.label_curve.is_empty() {
        None
    } else {
        if classifier != ClassifierChoice::Mlp {
            bail!("--label-curve trains the MLP head: it needs --classifier mlp");
        }
        Some(
            LabelCurveSpec::new(
                args.label_curve.clone(),
                args.label_curve_draws,
                args.inputs.seed,
            )
            .map_err(|e| anyhow::anyhow!("--label-curve: {e}"))?,
        )
    };
    let prepared = prepare(&args.inputs)?;
    if label_curve.is_some() && prepared.scene.test_labels.is_none() {
        bail!(
            "--label-curve scores each subset's map on test labels: give --test-labels or --split-fraction"
        );
    }
    let (model, info) = backbone_on_cpu(&prepared.spec)?;
    let settings = ClassificationSettings {
        modalities: prepared.modalities.clone(),
        classifier,
        baseline: !args.no_baseline,
        held_out_check: !args.no_held_out_check,
        stage_b: StageBConfig {
            label_curve,
            ..stage_b_config(&args.inputs, &info, args.t)?
        },
        forest: ForestConfig {
            trees: args.trees,
            seed: args.inputs.seed,
            ..ForestConfig::default()
        },
    };
    Ok(RunPlan {
        prepared,
        settings,
        model,
        info,
    })
}

/// The plan of `run --from-json`: the recorded inputs (found beside the
/// record or as recorded, each checked against its SHA-256), split,
/// classes, pRGB bands, backbone and settings.
fn plan_from_record(record_path: &Path) -> anyhow::Result<RunPlan> {
    let record = Reproducible::read(record_path)?;
    let files = record.located_inputs(record_path)?;
    if record.settings_of_classify.is_some() {
        log::warn!(
            "{} records a live update of the app whose MLP head continued from the previous one: rerun as Classify would run it on the same labels",
            record_path.display()
        );
    }
    let settings = record.rerun_settings().clone();
    // What `prepare_with` reads; the Stage B flags stay unset (the
    // recorded settings replace them), as do the backbone and the split.
    let inputs = RunInputs {
        hsi: files.hsi,
        sar: files.sar,
        train_labels: files.train_labels,
        test_labels: files.test_labels,
        label_offset: record.inputs.label_offset,
        class_field: record.inputs.class_field.clone(),
        class_names: record.classes.clone(),
        modalities: settings
            .modalities
            .iter()
            .map(|m| m.name().to_string())
            .collect(),
        ..RunInputs::default()
    };
    let mut render = RenderSettings::default();
    if let Some(bands) = record.prgb_bands {
        render.rgb = RgbRequest::Bands(bands);
    }
    let prepared = prepare_with(
        &inputs,
        render,
        record.split,
        Some(record.backbone_spec.clone()),
    )?;
    let (model, info) = backbone_on_cpu(&prepared.spec)?;
    if info.checkpoint_sha256 != record.backbone.checkpoint_sha256 {
        bail!(
            "{}: the backbone {} is not the one the run was made with ({} has SHA-256 {:?}, the record says {:?})",
            record_path.display(),
            info.name,
            record.backbone.name,
            info.checkpoint_sha256,
            record.backbone.checkpoint_sha256
        );
    }
    settings
        .check(&info.config)
        .map_err(|e| anyhow::anyhow!("{}: {e}", record_path.display()))?;
    Ok(RunPlan {
        prepared,
        settings,
        model,
        info,
    })
}

pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    // The flags' own mistakes, said before any file is touched.
    let source = match &args.from_json {
        Some(record) => PlanSource::Record(record),
        None => PlanSource::Flags(classifier_named(&args.classifier)?),
    };
    // Where the results go, checked before any work.
    let staged = StagedFolder::prepare(&args.out, args.overwrite)?;
    if let Some(model_path) = &args.save_model {
        check_output_file(model_path)
            .with_context(|| format!("--save-model {}", model_path.display()))?;
    }
    let RunPlan {
        prepared,
        settings,
        model,
        info,
    } = match source {
        PlanSource::Record(record) => plan_from_record(record)?,
        PlanSource::Flags(classifier) => plan_from_flags(args, classifier)?,
    };
    let train = prepared
        .scene
        .train_labels
        .as_ref()
        .map_or(0, |l| l.labelled());
    let test = prepared
        .scene
        .test_labels
        .as_ref()
        .map_or(0, |l| l.labelled());
    log::info!(
        "[..] {train} training pixels, {test} test pixels; Stage B at t = {}, block {}",
        settings.stage_b.t,
        settings.stage_b.block
    );
    let step = Step::start("classifying (Ctrl-C cancels)");
    let outcome = classify(&model, &prepared, &settings, &cancel_on_ctrl_c())?;
    step.done();
    for w in &outcome.warnings {
        log::info!("[!!] {w}");
    }
    print_summary(&outcome);
    if let Some(curve) = &outcome.label_curve {
        print_label_curve(curve);
    }

    let step = Step::start(format!("writing {}", args.out.display()));
    let grid = prepared.scene.grid().context("the scene has no layer")?;
    let written: Vec<PathBuf> =
        write_run_outputs(staged.path(), &outcome, grid, &prepared.class_names)
            .map_err(|e| staged.final_words(e))?
            .iter()
            .map(|p| staged.final_path(p))
            .collect();
    let seconds_export = step.done();

    let made = MadeFrom {
        origin: Origin::CommandLine {
            command: std::env::args().collect(),
        },
        spec: prepared.spec.clone(),
        info: info.clone(),
        settings: settings.clone(),
        classify_settings: None,
        prgb_bands: prepared.renderings.prgb.as_ref().map(|(_, b)| b.bands),
        backend: crate::pipeline::run_record::CPU_BACKEND.into(),
    };
    let record = run_record(
        &RecordParts {
            made: &made,
            inputs: prepared.inputs.clone(),
            split: prepared.split.as_ref(),
            class_names: &prepared.class_names,
            outputs: &written,
            seconds: json!({
                "load": prepared.seconds_load,
                "products": prepared.seconds_products,
                "features": outcome.mlp.as_ref().map(|(_, o)| o.seconds_features),
                "training": outcome.mlp.as_ref().map(|(_, o)| o.seconds_training),
                "prediction": outcome.mlp.as_ref().map(|(_, o)| o.seconds_prediction),
                "random_forest": outcome.forest.as_ref().map(|r| r.seconds),
                "filter_random_forest": outcome.filter_forest.as_ref().map(|r| r.seconds),
                "label_curve": outcome.label_curve.as_ref().map(|c| c.seconds),
                "export": seconds_export,
                "total": started.elapsed().as_secs_f64(),
            }),
        },
        &outcome,
    );
    if let Some(model_path) = &args.save_model {
        let bundle = ModelBundle::from_run(&TrainedRun {
            spec: &prepared.spec,
            info: &info,
            scene: &prepared.scene,
            renderings: &prepared.renderings,
            render_settings: prepared.render_settings,
            stage_b: &settings.stage_b,
            outcome: &outcome,
            classes: named_classes(outcome.classes, &prepared.class_names),
            trained_on: prepared.inputs.clone(),
        })?;
        bundle.write(model_path)?;
        log::info!("[ok] wrote the model {}", model_path.display());
    }
    let path = staged
        .final_path(&write_run_record(staged.path(), &record).map_err(|e| staged.final_words(e))?);
    staged.commit()?;
    log::info!("[ok] wrote {}", path.display());
    Ok(())
}
