//! `unidiff-studio predict`: a trained model (`run --save-model`) applied to
//! a scene tile by tile — the scene rendered with the training scene's
//! statistics, every tile classified from the patches of the training grid
//! that touch it — into the class map, probability/entropy raster, polygons
//! and areas of `run`. `--shard i/N` does the i-th of N disjoint sets of
//! tiles (a job array's task): its map holds those tiles and 0 elsewhere.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use burn::backend::Flex;
use clap::Args;
use serde_json::json;

use super::progress::Step;
use super::run::{cancel_on_ctrl_c, peak_rss_mib};
use crate::base::thousands;
use crate::io::{SceneFiles, open_scene};
use crate::model::backbone::load_backbone;
use crate::pipeline::export::{write_result, write_run_record};
use crate::pipeline::model_bundle::ModelBundle;
use crate::pipeline::run::ClassifierResult;
use crate::pipeline::stage_b::default_batch_patches;
use crate::pipeline::tiled_predict::{
    MapAssembly, TileProgress, TiledPredictError, predict_tiles, shard_tiles, tiles_of,
};

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The trained model (`run --save-model`).
    #[arg(long)]
    pub model: PathBuf,
    /// Hyperspectral or multispectral cube (the model's sensor and bands).
    #[arg(long)]
    pub hsi: Option<PathBuf>,
    /// SAR image (the model's kind: dual- or quad-pol).
    #[arg(long)]
    pub sar: Option<PathBuf>,
    /// The backbone checkpoint, when it is no longer where the model was
    /// trained (checked by its SHA-256).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Side of a tile in pixels (at least the model's patch); the map does
    /// not depend on it.
    #[arg(long, default_value_t = 1024)]
    pub tile: usize,
    /// Do only shard i of N (0-based, e.g. 2/8): every N-th tile from the
    /// i-th; `$SLURM_ARRAY_TASK_ID/N` in a job array.
    #[arg(long)]
    pub shard: Option<String>,
    /// Patches per feature batch (default: 64 K pixels a batch).
    #[arg(long)]
    pub batch_patches: Option<usize>,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
}

/// "i/N" as (i, N).
fn parse_shard(text: &str) -> anyhow::Result<(usize, usize)> {
    let parsed = text
        .split_once('/')
        .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
    match parsed {
        Some((i, n)) if n > 0 && i < n => Ok((i, n)),
        _ => bail!("--shard '{text}': give i/N with 0 <= i < N, e.g. 0/4"),
    }
}

pub fn run(args: &PredictArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    if args.hsi.is_none() && args.sar.is_none() {
        bail!("give --hsi and/or --sar");
    }
    let step = Step::start(format!("reading the model {}", args.model.display()));
    let bundle = ModelBundle::read(&args.model)?;
    step.done();
    if args.tile < bundle.patch {
        return Err(TiledPredictError::TileTooSmall {
            tile: args.tile,
            patch: bundle.patch,
        }
        .into());
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;

    let step = Step::start("reading the scene");
    let files = SceneFiles {
        hsi: args.hsi.clone(),
        sar: args.sar.clone(),
        train_labels: None,
        test_labels: None,
        label_offset: 0,
        class_field: None,
        class_names: Vec::new(),
    };
    let opened = open_scene(&files, &crate::base::CancelFlag::new(), &|_, _| {})?
        .context("the scene was not read")?;
    for note in &opened.notes {
        eprintln!("note: {note}");
    }
    let scene = opened.scene;
    bundle
        .rendering
        .check(&scene)
        .with_context(|| format!("the model {} cannot map this scene", args.model.display()))?;
    let grid = scene.grid().context("the scene has no layer")?.clone();
    step.done();

    let step = Step::start("building the backbone");
    let adapter = bundle.adapter_file_in(&args.out).with_context(|| {
        format!(
            "cannot write the model's adapter into {}",
            args.out.display()
        )
    })?;
    let built = (|| -> anyhow::Result<_> {
        let spec = bundle.backbone_spec(args.checkpoint.as_deref(), adapter.clone())?;
        let (model, info) = load_backbone::<Flex>(&spec, &Default::default())?;
        if let crate::model::backbone::BackboneSpec::Checkpoint { path, .. } = &spec {
            bundle.check_backbone(&info, path)?;
        }
        Ok((model, info))
    })();
    if let Some(a) = &adapter {
        let _ = std::fs::remove_file(a);
    }
    let (model, info) = built?;
    eprintln!(
        "[..] backbone: {} ({} parameters); device: CPU",
        info.description,
        thousands(info.parameters)
    );
    step.done();

    let tiles = shard_tiles(tiles_of(grid.height, grid.width, args.tile), shard)?;
    let all_tiles = tiles_of(grid.height, grid.width, args.tile).len();
    let step = Step::start(format!(
        "classifying {} of {all_tiles} tiles of {} x {} (Ctrl-C cancels)",
        tiles.len(),
        args.tile,
        args.tile
    ));
    let batch = args
        .batch_patches
        .unwrap_or_else(|| default_batch_patches(bundle.patch))
        .max(1);
    let mut assembly = MapAssembly::new(grid.height, grid.width);
    predict_tiles(
        &model,
        &bundle,
        &scene,
        &tiles,
        batch,
        &Default::default(),
        &cancel_on_ctrl_c(),
        &mut |p: TileProgress| {
            let eta = p
                .eta_seconds
                .map_or(String::new(), |s| format!(", ETA {s:.0} s"));
            eprint!("\r[..] tile {}/{}{eta}      ", p.tiles_done, p.tiles);
        },
        &mut |tile| {
            assembly.put(&tile);
            Ok(())
        },
    )?;
    eprintln!();
    let seconds_predict = step.done();

    let step = Step::start(format!("writing {}", args.out.display()));
    let result = ClassifierResult {
        class_map: assembly.prediction.class_map.clone(),
        uncertainty: Some(assembly.prediction),
        metrics: None,
        seconds: seconds_predict,
    };
    let written = write_result(&args.out, &result, &grid, &bundle.classes)?;
    step.done();
    let record = json!({
        "software": format!("unidiff-studio {}", env!("CARGO_PKG_VERSION")),
        "command": std::env::args().collect::<Vec<_>>(),
        "model": args.model.display().to_string(),
        "backbone": info,
        "trained_on": bundle.trained_on,
        "inputs": { "hsi": args.hsi, "sar": args.sar },
        "tile": args.tile,
        "shard": shard.map(|(i, n)| json!({ "index": i, "count": n })),
        "tiles": tiles.iter().map(|t| [t.row0, t.col0, t.height, t.width]).collect::<Vec<_>>(),
        "tiles_in_scene": all_tiles,
        "outputs": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "seconds": { "predict": seconds_predict, "total": started.elapsed().as_secs_f64() },
        "peak_rss_mib": peak_rss_mib(),
    });
    let path = write_run_record(&args.out, &record)?;
    eprintln!("[ok] wrote {}", path.display());
    Ok(())
}
