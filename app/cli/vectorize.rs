//! `unidiff-studio vectorize`: a class map as a GeoPackage of polygons
//! (class id, class name, area in ha) for QGIS, by GDAL's polygonize.

use std::path::PathBuf;

use clap::Args;

use crate::io::classmap::read_class_table;
use crate::io::vectorize::{DISSOLVED_LAYER, vectorize_class_map_with};

#[derive(Debug, Args)]
pub struct VectorizeArgs {
    /// The class map (GeoTIFF, 0 = unmapped).
    #[arg(long)]
    pub classmap: PathBuf,
    /// The GeoPackage to write (layer `landcover`).
    #[arg(long)]
    pub out: PathBuf,
    /// Also a layer `landcover_dissolved`: one multipolygon per class.
    #[arg(long)]
    pub dissolve: bool,
}

pub fn run(args: &VectorizeArgs) -> anyhow::Result<()> {
    let classes = read_class_table(&args.classmap);
    let summary = vectorize_class_map_with(&args.classmap, &args.out, &classes, args.dissolve)?;
    for (value, ha) in &summary.hectares {
        let name = crate::scene::class_name(&classes, *value);
        log::info!("[ok] {name}: {ha:.2} ha");
    }
    log::info!(
        "[ok] wrote {} polygons to {} (layer landcover{})",
        summary.polygons,
        args.out.display(),
        if args.dissolve {
            format!(", and one per class in layer {DISSOLVED_LAYER}")
        } else {
            String::new()
        }
    );
    Ok(())
}
