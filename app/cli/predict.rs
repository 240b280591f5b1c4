//! `unidiff-studio predict`: a trained model (`run --save-model`) applied to
//! a scene tile by tile — the scene rendered with the training scene's
//! statistics, every tile classified from the patches of the training grid
//! that touch it — into the class map, probability/entropy raster, polygons
//! and areas of `run`, as Cloud-Optimized GeoTIFFs. A GDAL raster is read
//! in windows (the whole scene is never in memory); `--shard i/N` does the
//! i-th of N disjoint sets of tiles (a job array's task): its map holds
//! those tiles and nothing elsewhere, and `mosaic` joins the parts.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use burn::backend::Flex;
use clap::Args;
use serde_json::json;

use super::progress::Step;
use super::run::{cancel_on_ctrl_c, peak_rss_mib};
use crate::base::{CancelFlag, thousands};
use crate::io::atomic::write_bytes;
use crate::io::memory::size_words;
use crate::io::tiled_map::{CLASS_MAP, TiledMapWriter};
use crate::io::vectorize::vectorize_class_map;
use crate::io::windowed::{WindowedScene, reads_in_windows};
use crate::io::{SceneFiles, open_scene};
use crate::metrics::areas::AreaSums;
use crate::model::backbone::{BackboneSpec, load_backbone};
use crate::pipeline::model_bundle::ModelBundle;
use crate::pipeline::stage_b::default_batch_patches;
use crate::pipeline::tiled_predict::{
    SceneReader, TileProgress, TiledPredictError, predict_tiles, scene_window, shard_tiles,
    tiles_of,
};
use crate::scene::{PixelGrid, Scene, Window};

/// The record a finished output folder holds (written last).
pub const RECORD: &str = "predict.json";

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
    /// No polygons of the class map (`classmap.gpkg`): GDAL's polygonize
    /// holds every polygon of the map in memory (894 MiB for the 3.1 M
    /// polygons of a 4096² map), which bounds a large region's peak; clean
    /// the map first (`postprocess --sieve`) and `vectorize` it instead.
    #[arg(long)]
    pub no_polygons: bool,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
}

/// Creates an output folder and removes the record of an earlier run of it
/// first (a folder with a `predict.json` is a finished one); returns the
/// record's path.
pub fn prepare_output(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let record_path = dir.join(RECORD);
    if record_path.exists() {
        std::fs::remove_file(&record_path)
            .with_context(|| format!("cannot replace {}", record_path.display()))?;
    }
    Ok(record_path)
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

/// The scene being mapped: read in windows through GDAL, or (a `.mat` or
/// `.npy` array, a PolSARpro folder) held whole.
enum Source {
    Windows(Box<WindowedScene>),
    Whole(Box<Scene>),
}

impl Source {
    fn open(args: &PredictArgs) -> anyhow::Result<Self> {
        let inputs = [&args.hsi, &args.sar];
        if inputs
            .iter()
            .all(|p| p.as_ref().is_none_or(|p| reads_in_windows(p)))
        {
            return Ok(Self::Windows(Box::new(WindowedScene::open(
                args.hsi.as_deref(),
                args.sar.as_deref(),
            )?)));
        }
        let files = SceneFiles {
            hsi: args.hsi.clone(),
            sar: args.sar.clone(),
            train_labels: None,
            test_labels: None,
            label_offset: 0,
            class_field: None,
            class_names: Vec::new(),
        };
        let opened = open_scene(&files, &CancelFlag::new(), &|_, _| {})?
            .context("the scene was not read")?;
        for note in &opened.notes {
            log::info!("note: {note}");
        }
        Ok(Self::Whole(Box::new(opened.scene)))
    }

    fn grid(&self) -> anyhow::Result<PixelGrid> {
        Ok(match self {
            Self::Windows(s) => s.grid().clone(),
            Self::Whole(s) => s.grid().context("the scene has no layer")?.clone(),
        })
    }

    fn read(&self, window: Window) -> Result<Scene, String> {
        match self {
            Self::Windows(s) => s.read(window).map_err(|e| e.to_string()),
            Self::Whole(s) => Ok(scene_window(s, window)),
        }
    }
}

pub fn run(args: &PredictArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    if args.hsi.is_none() && args.sar.is_none() {
        bail!("give --hsi and/or --sar");
    }
    let step = Step::start(format!("reading the model {}", args.model.display()));
    let (bundle, model_sha256) = ModelBundle::read_with_sha256(&args.model)?;
    step.done();
    if args.tile < bundle.patch {
        return Err(TiledPredictError::TileTooSmall {
            tile: args.tile,
            patch: bundle.patch,
        }
        .into());
    }
    let record_path = prepare_output(&args.out)?;

    let step = Step::start("opening the scene");
    let source = Source::open(args)?;
    let grid = source.grid()?;
    let corner = Window {
        row0: 0,
        col0: 0,
        height: 1,
        width: 1,
    };
    bundle
        .rendering
        .check(&source.read(corner).map_err(anyhow::Error::msg)?)
        .with_context(|| format!("the model {} cannot map this scene", args.model.display()))?;
    if let Source::Windows(s) = &source {
        let whole = (grid.width * grid.height * s.bytes_per_pixel()) as u128;
        log::info!(
            "[..] {} x {} pixels ({} as read whole; read here in windows of about {} x {})",
            grid.width,
            grid.height,
            size_words(whole),
            args.tile + 2 * bundle.patch,
            args.tile + 2 * bundle.patch,
        );
    }
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
        if let BackboneSpec::Checkpoint { path, .. } = &spec {
            bundle.check_backbone(&info, path)?;
        }
        Ok((model, info))
    })();
    if let Some(a) = &adapter {
        let _ = std::fs::remove_file(a);
    }
    let (model, info) = built?;
    log::info!(
        "[..] backbone: {} ({} parameters); device: CPU",
        info.description,
        thousands(info.parameters)
    );
    step.done();

    let all_tiles = tiles_of(grid.height, grid.width, args.tile);
    let tiles = shard_tiles(all_tiles.clone(), shard)?;
    let step = Step::start(format!(
        "classifying {} of {} tiles of {} x {} (Ctrl-C cancels)",
        tiles.len(),
        all_tiles.len(),
        args.tile,
        args.tile
    ));
    let batch = args
        .batch_patches
        .unwrap_or_else(|| default_batch_patches(bundle.patch))
        .max(1);
    let mut writer = TiledMapWriter::create(&args.out, &grid, &bundle.classes)?;
    let mut areas = AreaSums::new(&grid);
    let read = |w: Window| source.read(w);
    let reader = SceneReader {
        height: grid.height,
        width: grid.width,
        read: &read,
    };
    predict_tiles(
        &model,
        &bundle,
        &reader,
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
            let m = &tile.prediction;
            areas.add(&m.class_map, tile.window.row0, tile.window.width);
            writer
                .put(tile.window, &m.class_map, &m.max_probability, &m.entropy)
                .map_err(|e| TiledPredictError::Output(e.to_string()))
        },
    )?;
    eprintln!();
    let seconds_predict = step.done();

    let step = Step::start(format!("writing {}", args.out.display()));
    let mut written = writer.finish()?;
    let areas_csv = args.out.join("areas.csv");
    write_bytes(
        &areas_csv,
        areas.finish(&bundle.classes).to_csv().as_bytes(),
    )?;
    written.push(areas_csv);
    if shard.is_none() && !args.no_polygons {
        let gpkg = args.out.join("classmap.gpkg");
        vectorize_class_map(&args.out.join(CLASS_MAP), &gpkg, &bundle.classes)?;
        written.push(gpkg);
    }
    step.done();
    let record = json!({
        "software": format!("unidiff-studio {}", env!("CARGO_PKG_VERSION")),
        "command": std::env::args().collect::<Vec<_>>(),
        "model": { "path": args.model.display().to_string(), "sha256": model_sha256 },
        "backbone": info,
        "trained_on": bundle.trained_on,
        "inputs": { "hsi": args.hsi, "sar": args.sar },
        "width": grid.width,
        "height": grid.height,
        "tile": args.tile,
        "shard": shard.map(|(i, n)| json!({ "index": i, "count": n })),
        "tiles": tiles.iter().map(|t| [t.row0, t.col0, t.height, t.width]).collect::<Vec<_>>(),
        "tiles_in_scene": all_tiles.len(),
        "outputs": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "seconds": { "predict": seconds_predict, "total": started.elapsed().as_secs_f64() },
        "peak_rss_mib": peak_rss_mib(),
    });
    let text = serde_json::to_string_pretty(&record)?;
    write_bytes(&record_path, format!("{text}\n").as_bytes())?;
    log::info!("[ok] wrote {}", record_path.display());
    Ok(())
}
