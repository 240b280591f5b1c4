//! `unidiff-studio sample`: a stratified random validation sample of a class
//! map (the map classes as strata, `--per-class` points each, seeded) as a
//! GeoPackage of points with an empty `reference` field, to be labelled in
//! QGIS or the app and given back to `stats --reference`.

use std::path::PathBuf;

use clap::Args;

use crate::io::classmap::read_class_table;
use crate::io::open_labels;
use crate::io::sample_points::{REFERENCE_FIELD, write_sample};
use crate::metrics::sample_design::stratified_sample;

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// The class map (GeoTIFF, 0 = unmapped).
    #[arg(long)]
    pub classmap: PathBuf,
    /// Points per map class (all pixels of a smaller class).
    #[arg(long, default_value_t = 50)]
    pub per_class: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The GeoPackage to write (layers `sample` and `design`).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: &SampleArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.per_class > 0, "--per-class must be at least 1");
    let map = open_labels(&args.classmap)?;
    let classes = read_class_table(&args.classmap);
    let sample = stratified_sample(&map.data, map.grid.width, args.per_class, args.seed);
    anyhow::ensure!(
        !sample.points.is_empty(),
        "{}: no mapped pixel (every pixel is 0), nothing to sample",
        args.classmap.display()
    );
    write_sample(&args.out, &map.grid, &sample, &classes)?;
    for s in &sample.strata {
        log::info!(
            "[ok] class {}: {} of {} mapped pixels",
            s.value,
            s.points,
            s.pixels
        );
    }
    for note in &sample.notes {
        log::info!("note: {note}");
    }
    log::info!(
        "[ok] wrote {} points to {} (layer sample; fill in `{REFERENCE_FIELD}`, then `unidiff-studio stats --reference` it)",
        sample.points.len(),
        args.out.display()
    );
    Ok(())
}
