//! `unidiff-studio postprocess`: a class map cleaned to a minimum mapping
//! unit (GDAL's sieve filter, in pixels or hectares) and/or by a K x K
//! majority filter, written as a new class map GeoTIFF with the same class
//! names and colours (and its polygons beside it).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;

use crate::io::classmap::{read_class_table, write_class_map};
use crate::io::open_labels;
use crate::pipeline::cleanup::CleanStep;
use crate::scene::named_classes;

#[derive(Debug, Args)]
pub struct PostprocessArgs {
    /// The class map (GeoTIFF, 0 = unmapped).
    #[arg(long)]
    pub classmap: PathBuf,
    /// Minimum mapping unit in pixels: smaller regions join their largest
    /// neighbour (GDAL's sieve).
    #[arg(long, conflicts_with = "sieve_ha")]
    pub sieve: Option<usize>,
    /// Minimum mapping unit in hectares (converted with the map's pixel area).
    #[arg(long)]
    pub sieve_ha: Option<f64>,
    /// Connectivity of the sieve's regions: 4 or 8.
    #[arg(long, default_value_t = 4)]
    pub connectivity: u8,
    /// Then a K x K majority filter (odd K >= 3).
    #[arg(long)]
    pub majority: Option<usize>,
    /// The class map to write.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: &PostprocessArgs) -> anyhow::Result<()> {
    if args.sieve.is_none() && args.sieve_ha.is_none() && args.majority.is_none() {
        bail!("give --sieve N, --sieve-ha A and/or --majority K");
    }
    let map = open_labels(&args.classmap)?;
    let (w, h) = (map.grid.width, map.grid.height);
    let mut classes = read_class_table(&args.classmap);
    if classes.is_empty() {
        classes = named_classes(map.max_class() as usize, &[]);
    }
    let mut steps = Vec::new();
    match (args.sieve, args.sieve_ha) {
        (Some(n), _) => steps.push(CleanStep::Sieve {
            min_pixels: n,
            connectivity: args.connectivity,
            hectares: None,
        }),
        (None, Some(ha)) => steps.push(
            CleanStep::sieve_hectares(&map.grid, ha, args.connectivity)
                .with_context(|| format!("--sieve-ha {ha} on {}", args.classmap.display()))?,
        ),
        (None, None) => {}
    }
    if let Some(k) = args.majority {
        steps.push(CleanStep::Majority { k });
    }
    let mut data = map.data.clone();
    for step in steps {
        if let CleanStep::Sieve { min_pixels, .. } = step
            && min_pixels > w * h
        {
            log::info!(
                "[!!] the unit ({min_pixels} pixels) is larger than the map ({} pixels): every region but the largest goes",
                w * h
            );
        }
        data = step
            .apply(&data, &map.grid)
            .with_context(|| format!("{} on {}", step.describe(), args.classmap.display()))?;
        log::info!("[ok] {}", step.describe());
    }
    let changed = data.iter().zip(&map.data).filter(|(a, b)| a != b).count();
    write_class_map(&args.out, &data, &map.grid, &classes)?;
    log::info!(
        "[ok] wrote {} ({changed} of {} pixels changed)",
        args.out.display(),
        w * h
    );
    Ok(())
}
