//! `unidiff-studio mosaic`: joins the output folders of the shards of one
//! `predict --shard i/N` job array into one map, after checking that they
//! are the N shards of the same model on the same scene with the same
//! tiles, every tile in exactly one finished part; the joined class map and
//! probability raster are bit for bit those of one `predict` without shards.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};

use super::predict::{RECORD, prepare_output};
use crate::base::step::Step;
use crate::io::atomic::write_bytes;
use crate::io::classmap::read_class_table;
use crate::io::raster::{open_for_windows, read_window};
use crate::io::tiled_map::{CLASS_MAP, PROBABILITY, TiledMapWriter};
use crate::io::vectorize::vectorize_class_map;
use crate::metrics::areas::AreaSums;
use crate::pipeline::tiled_predict::tiles_of;
use crate::scene::Window;

#[derive(Debug, Args)]
pub struct MosaicArgs {
    /// The output folders of the shards (`predict --shard i/N --out DIR`).
    #[arg(required = true)]
    pub parts: Vec<PathBuf>,
    /// Output folder of the joined map.
    #[arg(long)]
    pub out: PathBuf,
}

/// One finished shard.
struct Part {
    dir: PathBuf,
    record: Value,
    index: usize,
    tiles: Vec<Window>,
}

fn read_part(dir: &Path) -> anyhow::Result<Part> {
    let path = dir.join(RECORD);
    let text = std::fs::read_to_string(&path).map_err(|_| {
        anyhow::anyhow!(
            "{}: no {RECORD}: this shard did not finish (a job killed half-way); run it again",
            dir.display()
        )
    })?;
    let record: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is damaged", path.display()))?;
    let index = record["shard"]["index"].as_u64().with_context(|| {
        format!(
            "{}: not a shard (predict ran without --shard)",
            dir.display()
        )
    })? as usize;
    let tiles = record["tiles"]
        .as_array()
        .with_context(|| format!("{}: no tile list", path.display()))?
        .iter()
        .map(|t| {
            let v: Option<Vec<usize>> = t.as_array().map(|a| {
                a.iter()
                    .filter_map(|x| x.as_u64().map(|x| x as usize))
                    .collect()
            });
            match v.as_deref() {
                Some(&[row0, col0, height, width]) => Ok(Window {
                    row0,
                    col0,
                    height,
                    width,
                }),
                _ => bail!("{}: a damaged tile entry {t}", path.display()),
            }
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Part {
        dir: dir.to_path_buf(),
        record,
        index,
        tiles,
    })
}

/// Refuses parts that are not the shards of one prediction, or that leave
/// out or repeat a tile.
fn check_parts(parts: &[Part]) -> anyhow::Result<Vec<Window>> {
    let first = &parts[0];
    for key in [
        "/model/sha256",
        "/width",
        "/height",
        "/tile",
        "/shard/count",
    ] {
        let want = first.record.pointer(key);
        if let Some(other) = parts.iter().find(|p| p.record.pointer(key) != want) {
            bail!(
                "{} and {} are not shards of one prediction: {} differs ({} vs {})",
                first.dir.display(),
                other.dir.display(),
                key.trim_start_matches('/').replace('/', " "),
                want.unwrap_or(&Value::Null),
                other.record.pointer(key).unwrap_or(&Value::Null)
            );
        }
    }
    let number = |key: &str| first.record[key].as_u64().map(|v| v as usize);
    let (Some(width), Some(height), Some(tile)) =
        (number("width"), number("height"), number("tile"))
    else {
        bail!(
            "{}: the record has no scene size or tile",
            first.dir.display()
        );
    };
    let all = tiles_of(height, width, tile);
    let mut owner: HashMap<(usize, usize), &Part> = HashMap::new();
    for part in parts {
        for t in &part.tiles {
            if !all.contains(t) {
                bail!(
                    "{}: tile at row {}, column {} is not a tile of this scene",
                    part.dir.display(),
                    t.row0,
                    t.col0
                );
            }
            if let Some(other) = owner.insert((t.row0, t.col0), part) {
                bail!(
                    "shards overlap: the tile at row {}, column {} is in {} and {}",
                    t.row0,
                    t.col0,
                    other.dir.display(),
                    part.dir.display()
                );
            }
        }
    }
    let count = first.record["shard"]["count"].as_u64().unwrap_or(0) as usize;
    let missing: Vec<(usize, &Window)> = all
        .iter()
        .enumerate()
        .filter(|(_, t)| !owner.contains_key(&(t.row0, t.col0)))
        .collect();
    if let Some((k, t)) = missing.first() {
        let shards: std::collections::BTreeSet<usize> =
            missing.iter().map(|(k, _)| k % count.max(1)).collect();
        let shards: Vec<String> = shards.iter().map(|s| format!("{s}/{count}")).collect();
        bail!(
            "{} of {} tiles are in no part (the first at row {}, column {}, tile {k}): run --shard {} and give its folder too",
            missing.len(),
            all.len(),
            t.row0,
            t.col0,
            shards.join(", --shard ")
        );
    }
    Ok(all)
}

pub fn run(args: &MosaicArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let parts = args
        .parts
        .iter()
        .map(|d| read_part(d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let all = check_parts(&parts)?;
    let first_map = parts[0].dir.join(CLASS_MAP);
    let (_, header) = open_for_windows(&first_map)?;
    let grid = header.grid;
    let classes = read_class_table(&first_map);
    let record_path = prepare_output(&args.out)?;
    let step = Step::start(format!(
        "joining {} tiles from {} parts",
        all.len(),
        parts.len()
    ));
    let mut writer = TiledMapWriter::create(&args.out, &grid, &classes)?;
    let mut areas = AreaSums::new(&grid);
    for part in &parts {
        let (class_ds, class_header) = open_for_windows(&part.dir.join(CLASS_MAP))?;
        let prob_path = part.dir.join(PROBABILITY);
        let (prob_ds, prob_header) = open_for_windows(&prob_path)?;
        for h in [&class_header, &prob_header] {
            if (h.grid.width, h.grid.height) != (grid.width, grid.height) {
                bail!(
                    "{}: {} x {} pixels, the other parts {} x {}",
                    h.path.display(),
                    h.grid.width,
                    h.grid.height,
                    grid.width,
                    grid.height
                );
            }
        }
        for &t in &part.tiles {
            let classes_f = read_window(&class_header.path, &class_ds, &[0], t)?;
            let class_map: Vec<u8> = classes_f
                .iter()
                .map(|&v| if v.is_nan() { 0 } else { v as u8 })
                .collect();
            let prob = read_window(&prob_path, &prob_ds, &[0, 1], t)?;
            let n = t.height * t.width;
            areas.add(&class_map, t.row0, t.width);
            writer.put(t, &class_map, &prob[..n], &prob[n..])?;
        }
    }
    let mut written = writer.finish()?;
    let areas_csv = args.out.join("areas.csv");
    write_bytes(&areas_csv, areas.finish(&classes).to_csv().as_bytes())?;
    written.push(areas_csv);
    let gpkg = args.out.join("classmap.gpkg");
    vectorize_class_map(&args.out.join(CLASS_MAP), &gpkg, &classes)?;
    written.push(gpkg);
    step.done();
    let first = &parts[0].record;
    let record = json!({
        "software": format!("unidiff-studio {}", env!("CARGO_PKG_VERSION")),
        "command": std::env::args().collect::<Vec<_>>(),
        "mosaic_of": parts.iter().map(|p| json!({ "folder": p.dir.display().to_string(), "shard": p.index })).collect::<Vec<_>>(),
        "model": first["model"],
        "backbone": first["backbone"],
        "trained_on": first["trained_on"],
        "inputs": first["inputs"],
        "width": grid.width,
        "height": grid.height,
        "tile": first["tile"],
        "shard": Value::Null,
        "tiles_in_scene": all.len(),
        "outputs": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "seconds": { "total": started.elapsed().as_secs_f64() },
    });
    let text = serde_json::to_string_pretty(&record)?;
    write_bytes(&record_path, format!("{text}\n").as_bytes())?;
    log::info!("[ok] wrote {}", record_path.display());
    Ok(())
}
