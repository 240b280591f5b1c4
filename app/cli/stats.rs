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
use crate::metrics::area_accuracy::area_adjusted_accuracy;
use crate::metrics::areas::class_areas;

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The class map (GeoTIFF, 0 = unmapped).
    #[arg(long)]
    pub classmap: PathBuf,
    /// Reference labels on the map's grid (0 = no reference): every
    /// labelled pixel is a sample point, the map classes are the strata.
    #[arg(long)]
    pub reference: Option<PathBuf>,
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
    // Strata: the mapped area of each class, in ha where known.
    let in_ha = areas.mapped_m2.is_some();
    let strata: Vec<(u8, f64)> = areas
        .classes
        .iter()
        .map(|c| (c.value, c.ha.unwrap_or(c.pixels as f64)))
        .collect();
    let sample: Vec<(u8, u8)> = map
        .data
        .iter()
        .zip(&reference.data)
        .filter(|(_, r)| **r != 0)
        .map(|(m, r)| (*m, *r))
        .collect();
    let estimates = area_adjusted_accuracy(&strata, &sample);
    let json = serde_json::json!({
        "method": "Olofsson et al. (2014), Remote Sensing of Environment 148: 42-57, eqs. 2-10; map classes as strata",
        "classmap": args.classmap.display().to_string(),
        "reference": reference_path.display().to_string(),
        "area_unit": if in_ha { "ha" } else { "pixels" },
        "caveat": "every labelled reference pixel is taken as a point of a stratified random sample; labels drawn otherwise (benchmark test sets, hand-picked polygons) are not one, and the intervals then do not hold",
        "estimates": estimates,
    });
    let path = args.out.join("accuracy.json");
    let text = serde_json::to_string_pretty(&json)?;
    write_bytes(&path, format!("{text}\n").as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "overall accuracy {:.4} (SE {}), {} sample points; wrote {}",
        estimates.overall.value,
        estimates
            .overall
            .se
            .map_or("undefined".to_string(), |s| format!("{s:.4}")),
        estimates.sample_size,
        path.display()
    );
    for note in &estimates.notes {
        println!("note: {note}");
    }
    Ok(())
}
