//! `unidiff-studio stats`: a class map's areas (`areas.csv`) and, with a
//! reference layer, its area-adjusted accuracy (`accuracy.json`, Olofsson
//! et al. 2014; areas in ha, proportions in 0..1, standard errors and 95 %
//! intervals) with the reference pixels as the sample.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::io::atomic::write_bytes;
use crate::io::classmap::read_class_table;
use crate::io::open_labels;
use crate::io::sample_points::{REFERENCE_FIELD, read_reference_points};
use crate::io::vector_labels::is_vector_file;
use crate::metrics::area_accuracy::area_adjusted_accuracy;
use crate::metrics::areas::class_areas;
use crate::scene::LabelImage;

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The class map (GeoTIFF, 0 = unmapped).
    #[arg(long)]
    pub classmap: PathBuf,
    /// The reference: labels on the map's grid (a raster, 0 = no
    /// reference: every labelled pixel is a sample point), or a vector
    /// file of points (GeoPackage, Shapefile, GeoJSON; any CRS) with the
    /// class in `--class-field`, such as `unidiff-studio sample` writes.
    /// The map classes are the strata.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// The reference points' class field (a class number or name).
    #[arg(long, default_value = REFERENCE_FIELD)]
    pub class_field: String,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: &StatsArgs) -> anyhow::Result<()> {
    let map = open_labels(&args.classmap)?;
    let classes = read_class_table(&args.classmap);
    let areas = class_areas(&map.data, &map.grid, &classes);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let csv = args.out.join("areas.csv");
    write_bytes(&csv, areas.to_csv().as_bytes())
        .with_context(|| format!("cannot write {}", csv.display()))?;
    println!("wrote {}", csv.display());
    if let Some(note) = &areas.note {
        println!("note: {note}");
    }
    let Some(reference_path) = &args.reference else {
        return Ok(());
    };
    let (sample, mut notes) = if is_vector_file(reference_path) {
        reference_points(args, reference_path, &map, &classes)?
    } else {
        (reference_pixels(args, reference_path, &map)?, Vec::new())
    };
    // Strata: the mapped area of each class, in ha where known.
    let mut estimates = area_adjusted_accuracy(&areas.strata(), &sample);
    notes.append(&mut estimates.notes);
    estimates.notes = notes;
    let json = serde_json::json!({
        "method": "Olofsson et al. (2014), Remote Sensing of Environment 148: 42-57, eqs. 2-10; map classes as strata",
        "classmap": args.classmap.display().to_string(),
        "reference": reference_path.display().to_string(),
        "area_unit": areas.area_unit(),
        "caveat": "every labelled reference pixel is taken as a point of a stratified random sample; labels drawn otherwise (benchmark test sets, hand-picked polygons) are not one, and the intervals then do not hold",
        "estimates": estimates,
    });
    let path = args.out.join("accuracy.json");
    let text = serde_json::to_string_pretty(&json)?;
    write_bytes(&path, format!("{text}\n").as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "overall accuracy {:.4} (SE {}, 95 % interval {}), {} sample points; wrote {}",
        estimates.overall.value,
        estimates
            .overall
            .se
            .map_or("undefined".to_string(), |s| format!("{s:.4}")),
        estimates
            .overall
            .ci95
            .map_or("undefined".to_string(), |[lo, hi]| format!(
                "{lo:.4}-{hi:.4}"
            )),
        estimates.sample_size,
        path.display()
    );
    println!("intervals: {}", estimates.interval_method);
    for note in &estimates.notes {
        println!("note: {note}");
    }
    Ok(())
}

/// (map class, reference class) of each sample point.
type Sample = Vec<(u8, u8)>;

/// (map class, reference class) of every labelled pixel of a reference
/// raster on the map's grid.
fn reference_pixels(
    args: &StatsArgs,
    reference_path: &std::path::Path,
    map: &LabelImage,
) -> anyhow::Result<Sample> {
    let reference = open_labels(reference_path)?;
    if reference.grid.geo_transform.is_some() {
        map.grid
            .check_same(
                &args.classmap.display().to_string(),
                &reference.grid,
                &reference_path.display().to_string(),
            )
            .context("the reference is not on the map's grid")?;
    } else if (reference.grid.width, reference.grid.height) != (map.grid.width, map.grid.height) {
        anyhow::bail!(
            "{} is {} x {} pixels, the map {} x {}",
            reference_path.display(),
            reference.grid.height,
            reference.grid.width,
            map.grid.height,
            map.grid.width
        );
    }
    Ok(map
        .data
        .iter()
        .zip(&reference.data)
        .filter(|(_, r)| **r != 0)
        .map(|(m, r)| (*m, *r))
        .collect())
}

/// (map class, reference class) at every labelled reference point, and
/// notes on the points left out and on reference classes the map lacks.
fn reference_points(
    args: &StatsArgs,
    reference_path: &std::path::Path,
    map: &LabelImage,
    classes: &[crate::scene::ClassInfo],
) -> anyhow::Result<(Sample, Vec<String>)> {
    let read = read_reference_points(reference_path, &args.class_field, &map.grid, classes)?;
    Ok(read.paired_with_map(&map.data, map.grid.width, &args.class_field))
}
