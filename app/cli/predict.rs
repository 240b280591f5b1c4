//! `unidiff-studio predict`: a trained model applied to a scene tile by tile
//! (`pipeline::apply_model`), with a progress line and Ctrl-C / SIGTERM to
//! stop; `--shard i/N` does the i-th of N disjoint sets of tiles (a job
//! array's task), and `mosaic` joins the parts.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use super::run::cancel_on_ctrl_c;
use crate::base::CancelFlag;
use crate::pipeline::apply_model::{
    Applied, ApplyRequest, SceneInputs, already_mapped, apply_model, read_scene_list, scene_folders,
};
use crate::pipeline::tiled_predict::{TileProgress, shard_share};

pub use crate::pipeline::apply_model::{RECORD, prepare_output};

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
    /// A list of scenes instead of one (CSV, header `hsi,sar`, paths
    /// relative to the list): each mapped whole into a folder of --out
    /// named after its first file; with --shard i/N every N-th scene from
    /// the i-th. A scene whose folder already holds its finished map is
    /// skipped (a job run again completes the list).
    #[arg(long, conflicts_with_all = ["hsi", "sar"])]
    pub scenes: Option<PathBuf>,
    /// The backbone checkpoint, when it is no longer where the model was
    /// trained (checked by its SHA-256).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Side of a tile in pixels (at least the model's patch); the map does
    /// not depend on it.
    #[arg(long, default_value_t = 1024)]
    pub tile: usize,
    /// Do only shard i of N (0-based, e.g. 2/8): every N-th tile (with
    /// --scenes: scene) from the i-th; `$SLURM_ARRAY_TASK_ID/N` in a job
    /// array.
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
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    if let Some(list) = &args.scenes {
        return run_list(args, list, shard);
    }
    if args.hsi.is_none() && args.sar.is_none() {
        bail!("give --hsi and/or --sar (or --scenes LIST)");
    }
    let scene = SceneInputs {
        hsi: args.hsi.clone(),
        sar: args.sar.clone(),
    };
    let request = request_for(args, &scene, shard, &args.out);
    log::info!("[..] mapping into {} (Ctrl-C cancels)", args.out.display());
    apply_with_progress(&request, &cancel_on_ctrl_c()).map(|_| ())
}

/// What `predict` asks of [`apply_model`] for `scene` (its `shard` of
/// tiles) into `out`.
fn request_for(
    args: &PredictArgs,
    scene: &SceneInputs,
    shard: Option<(usize, usize)>,
    out: &Path,
) -> ApplyRequest {
    ApplyRequest {
        model: args.model.clone(),
        hsi: scene.hsi.clone(),
        sar: scene.sar.clone(),
        checkpoint: args.checkpoint.clone(),
        tile: args.tile,
        shard,
        batch_patches: args.batch_patches,
        polygons: !args.no_polygons,
        out: out.to_path_buf(),
        command: std::env::args().collect(),
    }
}

/// [`apply_model`] with a progress line on stderr.
fn apply_with_progress(request: &ApplyRequest, cancel: &CancelFlag) -> anyhow::Result<Applied> {
    let mut tiles_seen = false;
    let applied = apply_model(request, cancel, &mut |p: &TileProgress| {
        tiles_seen = true;
        let eta = p
            .eta_seconds
            .map_or(String::new(), |s| format!(", ETA {s:.0} s"));
        eprint!("\r[..] tile {}/{}{eta}      ", p.tiles_done, p.tiles);
    });
    if tiles_seen {
        eprintln!();
    }
    applied
}

/// `--scenes LIST`: the list's scenes (the shard's share of them), each
/// whole into its folder of --out; finished ones skipped; stops at the
/// first scene that fails (the ones before it are whole).
fn run_list(args: &PredictArgs, list: &Path, shard: Option<(usize, usize)>) -> anyhow::Result<()> {
    let scenes = read_scene_list(list)?;
    // Folder names come from the whole list: the same in every shard.
    let folders = scene_folders(&args.out, &scenes);
    let mine = shard_share(scenes.iter().zip(&folders).enumerate().collect(), shard)?;
    log::info!(
        "[..] {} of the {} scenes of {} into {} (Ctrl-C cancels)",
        mine.len(),
        scenes.len(),
        list.display(),
        args.out.display()
    );
    let cancel = cancel_on_ctrl_c();
    for (k, (scene, folder)) in mine {
        if already_mapped(folder, scene) {
            log::info!(
                "[ok] scene {} ({}): already mapped",
                k + 1,
                folder.display()
            );
            continue;
        }
        log::info!("[..] scene {} of {}: {}", k + 1, scenes.len(), scene.name());
        let request = request_for(args, scene, None, folder);
        apply_with_progress(&request, &cancel)
            .with_context(|| format!("scene {} of {}", k + 1, list.display()))?;
    }
    Ok(())
}
