//! A trained model (`run --save-model`, the app's Save model…) applied to a
//! scene tile by tile — the scene rendered with the training scene's
//! statistics, every tile classified from the patches of the training grid
//! that touch it — into the class map, probability/entropy raster, polygons
//! and areas of `run`, as Cloud-Optimized GeoTIFFs, and `predict.json`
//! (written last: a folder with one is finished). A GDAL raster is read in
//! windows (the whole scene is never in memory); a shard (i of N) does the
//! i-th of N disjoint sets of tiles, and `mosaic` joins the parts. The CLI's
//! `predict` and the app's "Apply model to scenes…" both run it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use burn::backend::Flex;
use serde_json::json;

use super::model_bundle::ModelBundle;
use super::stage_b::default_batch_patches;
use super::tiled_predict::{
    SceneReader, TileProgress, TiledPredictError, predict_tiles, scene_window, shard_share,
    tiles_of,
};
use crate::base::step::{Step, peak_rss_mib};
use crate::base::{CancelFlag, thousands};
use crate::io::atomic::write_bytes;
use crate::io::memory::size_words;
use crate::io::tiled_map::{CLASS_MAP, TiledMapWriter};
use crate::io::vectorize::vectorize_class_map;
use crate::io::windowed::{WindowedScene, reads_in_windows};
use crate::io::{SceneFiles, open_scene};
use crate::metrics::areas::AreaSums;
use crate::model::backbone::{BackboneSpec, load_backbone};
use crate::scene::{PixelGrid, Scene, Window};

/// The record a finished output folder holds (written last).
pub const RECORD: &str = "predict.json";

/// What to map, with which model, where.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyRequest {
    /// The trained model file.
    pub model: PathBuf,
    /// Hyperspectral or multispectral cube (the model's sensor and bands).
    pub hsi: Option<PathBuf>,
    /// SAR image (the model's kind).
    pub sar: Option<PathBuf>,
    /// The backbone checkpoint, when it is no longer where the model was
    /// trained (checked by its SHA-256).
    pub checkpoint: Option<PathBuf>,
    /// Side of a tile in pixels (at least the model's patch).
    pub tile: usize,
    /// Only shard i of N.
    pub shard: Option<(usize, usize)>,
    /// Patches per feature batch (None: 64 K pixels a batch).
    pub batch_patches: Option<usize>,
    /// The class map's polygons too (`classmap.gpkg`; not for a shard).
    pub polygons: bool,
    /// Output folder.
    pub out: PathBuf,
    /// How it was asked for, for the record (the command line).
    pub command: Vec<String>,
}

/// One scene to map: its cube and/or its SAR image.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SceneInputs {
    pub hsi: Option<PathBuf>,
    pub sar: Option<PathBuf>,
}

impl SceneInputs {
    /// A folder name for its outputs: the first file's stem.
    pub fn name(&self) -> String {
        self.hsi
            .as_ref()
            .or(self.sar.as_ref())
            .and_then(|p| p.file_stem())
            .map_or_else(|| "scene".into(), |s| s.to_string_lossy().to_string())
    }
}

/// Output folders for the scenes: their names, made unique ("a", "a-2").
pub fn scene_folders(out: &Path, scenes: &[SceneInputs]) -> Vec<PathBuf> {
    let mut taken: Vec<String> = Vec::new();
    scenes
        .iter()
        .map(|s| {
            let base = s.name();
            let mut name = base.clone();
            let mut k = 2;
            while taken.contains(&name) {
                name = format!("{base}-{k}");
                k += 1;
            }
            taken.push(name.clone());
            out.join(name)
        })
        .collect()
}

/// Reads a list of scenes: a CSV file whose header names the columns
/// `hsi` and `sar` (either may be left empty on a line, not both), paths
/// relative to the list's folder, `#` lines ignored.
pub fn read_scene_list(path: &Path) -> anyhow::Result<Vec<SceneInputs>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the scene list {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let (_, header) = lines
        .next()
        .with_context(|| format!("{}: the scene list is empty", path.display()))?;
    let columns: Vec<String> = header.split(',').map(|c| c.trim().to_lowercase()).collect();
    let hsi = columns.iter().position(|c| c == "hsi");
    let sar = columns.iter().position(|c| c == "sar");
    if hsi.is_none() && sar.is_none() {
        bail!(
            "{}: the first line must name the columns hsi and/or sar (e.g. `hsi,sar`), not `{}`",
            path.display(),
            header.trim()
        );
    }
    let mut scenes = Vec::new();
    for (n, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let field = |at: Option<usize>| {
            at.and_then(|i| fields.get(i))
                .filter(|f| !f.is_empty())
                .map(|f| base.join(f))
        };
        let scene = SceneInputs {
            hsi: field(hsi),
            sar: field(sar),
        };
        if scene.hsi.is_none() && scene.sar.is_none() {
            bail!("{} line {}: no HSI and no SAR file", path.display(), n + 1);
        }
        scenes.push(scene);
    }
    if scenes.is_empty() {
        bail!("{}: the scene list names no scene", path.display());
    }
    Ok(scenes)
}

/// Whether `dir` holds a finished map of `scene` (its `predict.json` names
/// the same inputs), so a job run again skips it.
pub fn already_mapped(dir: &Path, scene: &SceneInputs) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join(RECORD)) else {
        return false;
    };
    let Ok(record) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    let same = |key: &str, p: &Option<PathBuf>| {
        let recorded = record["inputs"][key].as_str().map(PathBuf::from);
        recorded == *p
    };
    same("hsi", &scene.hsi) && same("sar", &scene.sar)
}

/// What a finished application wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// `predict.json` in the output folder.
    pub record: PathBuf,
    pub width: usize,
    pub height: usize,
    /// Tiles mapped.
    pub tiles: usize,
    pub seconds: f64,
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

/// The scene being mapped: read in windows through GDAL, or (a `.mat` or
/// `.npy` array, a PolSARpro folder) held whole.
enum Source {
    Windows(Box<WindowedScene>),
    Whole(Box<Scene>),
}

impl Source {
    fn open(hsi: Option<&Path>, sar: Option<&Path>) -> anyhow::Result<Self> {
        if [hsi, sar].iter().all(|p| p.is_none_or(reads_in_windows)) {
            return Ok(Self::Windows(Box::new(WindowedScene::open(hsi, sar)?)));
        }
        let files = SceneFiles {
            hsi: hsi.map(Path::to_path_buf),
            sar: sar.map(Path::to_path_buf),
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

/// The windows `predict` reads (a tile and its margin of one patch) must
/// fit what this process may use, its limits too; said in the log.
fn check_windows_fit(args: &ApplyRequest, patch: usize, s: &WindowedScene) -> anyhow::Result<()> {
    let side = args.tile + 2 * patch;
    let named = args
        .hsi
        .as_deref()
        .or(args.sar.as_deref())
        .unwrap_or(&args.model);
    crate::io::memory::check_whole_read(named, side, side, s.bytes_per_pixel().div_ceil(4), 4)
        .with_context(|| {
            format!(
                "a window of --tile {} does not fit in memory: give a smaller --tile",
                args.tile
            )
        })?;
    let grid = s.grid();
    let whole = (grid.width * grid.height * s.bytes_per_pixel()) as u128;
    log::info!(
        "[..] {} x {} pixels ({} as read whole; read here in windows of about {side} x {side})",
        grid.width,
        grid.height,
        size_words(whole),
    );
    Ok(())
}

pub fn apply_model(
    args: &ApplyRequest,
    cancel: &CancelFlag,
    progress: &mut dyn FnMut(&TileProgress),
) -> anyhow::Result<Applied> {
    let started = Instant::now();
    let shard = args.shard;
    if args.hsi.is_none() && args.sar.is_none() {
        bail!("give an HSI and/or a SAR image");
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
    let source = Source::open(args.hsi.as_deref(), args.sar.as_deref())?;
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
        check_windows_fit(args, bundle.patch, s)?;
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
    let tiles = shard_share(all_tiles.clone(), shard)?;
    let step = Step::start(format!(
        "classifying {} of {} tiles of {} x {}",
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
        cancel,
        &mut |p: TileProgress| progress(&p),
        &mut |tile| {
            let m = &tile.prediction;
            areas.add(&m.class_map, tile.window.row0, tile.window.width);
            writer
                .put(tile.window, &m.class_map, &m.max_probability, &m.entropy)
                .map_err(|e| TiledPredictError::Output(e.to_string()))
        },
    )?;
    let seconds_predict = step.done();

    let step = Step::start(format!("writing {}", args.out.display()));
    let mut written = writer.finish()?;
    let areas_csv = args.out.join("areas.csv");
    write_bytes(
        &areas_csv,
        areas.finish(&bundle.classes).to_csv().as_bytes(),
    )?;
    written.push(areas_csv);
    if shard.is_none() && args.polygons {
        let gpkg = args.out.join("classmap.gpkg");
        vectorize_class_map(&args.out.join(CLASS_MAP), &gpkg, &bundle.classes)?;
        written.push(gpkg);
    }
    step.done();
    let record = json!({
        "software": format!("unidiff-studio {}", env!("CARGO_PKG_VERSION")),
        "command": args.command,
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
    Ok(Applied {
        record: record_path,
        width: grid.width,
        height: grid.height,
        tiles: tiles.len(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scene_folders_are_named_by_the_first_file_and_unique() {
        let s = |hsi: Option<&str>, sar: Option<&str>| SceneInputs {
            hsi: hsi.map(PathBuf::from),
            sar: sar.map(PathBuf::from),
        };
        let scenes = [
            s(Some("/d/a.tif"), Some("/d/a_s1.tif")),
            s(None, Some("/e/b.tif")),
            s(Some("/f/a.tif"), None),
            s(None, None),
        ];
        let folders = scene_folders(Path::new("/out"), &scenes);
        let names: Vec<_> = folders.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(names, ["/out/a", "/out/b", "/out/a-2", "/out/scene"]);
    }

    #[test]
    fn a_scene_list_reads_relative_paths_and_says_what_is_wrong() {
        let dir = tempfile::tempdir().expect("temp dir");
        let list = dir.path().join("scenes.csv");
        std::fs::write(
            &list,
            "# region north\nhsi, sar\na/s2.tif, a/s1.tif\n, /abs/s1.tif\n\nb/s2.tif,\n",
        )
        .expect("written");
        let scenes = read_scene_list(&list).expect("read");
        assert_eq!(scenes.len(), 3);
        assert_eq!(scenes[0].hsi, Some(dir.path().join("a/s2.tif")));
        assert_eq!(scenes[1].hsi, None);
        assert_eq!(scenes[1].sar, Some(PathBuf::from("/abs/s1.tif")));
        assert_eq!(scenes[2].sar, None);
        std::fs::write(&list, "cube\nx.tif\n").expect("written");
        let e = read_scene_list(&list).expect_err("no hsi/sar header");
        assert!(e.to_string().contains("hsi and/or sar"), "{e}");
        std::fs::write(&list, "hsi,sar\n,\n").expect("written");
        let e = read_scene_list(&list).expect_err("an empty line of fields");
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}
