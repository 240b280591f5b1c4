//! A map's validation sample in the app: the stratified random sample
//! drawn from the shown map (as `unidiff-studio sample` draws it) and, once
//! its points are labelled (in QGIS, the `reference` field), the
//! area-adjusted accuracy of Olofsson et al. (2014) from them with the map
//! classes as strata (as `stats --reference` computes it).

use std::path::{Path, PathBuf};

use crate::io::ReadError;
use crate::io::geotiff::WriteError;
use crate::io::sample_points::{REFERENCE_FIELD, read_reference_points, write_sample};
use crate::metrics::area_accuracy::{AreaAccuracy, area_adjusted_accuracy};
use crate::metrics::areas::class_areas;
use crate::metrics::sample_design::stratified_sample;
use crate::scene::{ClassInfo, PixelGrid};

/// What was drawn and written.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleWritten {
    pub points: usize,
    pub notes: Vec<String>,
}

/// Draws `per_class` points of each class of `map` (seeded) and writes
/// them to the GeoPackage `out` with an empty reference field.
pub fn write_validation_sample(
    out: &Path,
    map: &[u8],
    grid: &PixelGrid,
    classes: &[ClassInfo],
    per_class: usize,
    seed: u64,
) -> Result<SampleWritten, WriteError> {
    let sample = stratified_sample(map, grid.width, per_class.max(1), seed);
    if sample.points.is_empty() {
        return Err(crate::io::geotiff::failed(
            out,
            "the map has no mapped pixel: nothing to sample",
        ));
    }
    write_sample(out, grid, &sample, classes)?;
    Ok(SampleWritten {
        points: sample.points.len(),
        notes: sample.notes.clone(),
    })
}

/// The estimates from a labelled sample, and where it came from.
#[derive(Debug, Clone)]
pub struct SampleAccuracy {
    pub reference: PathBuf,
    /// "ha", or "pixels" for a map without a known pixel size.
    pub area_unit: &'static str,
    pub estimates: AreaAccuracy,
}

/// The area-adjusted accuracy of `map` from the labelled points of the
/// vector file `reference` (its `reference` field, a class number or name).
pub fn accuracy_from_sample(
    reference: &Path,
    map: &[u8],
    grid: &PixelGrid,
    classes: &[ClassInfo],
) -> Result<SampleAccuracy, ReadError> {
    let read = read_reference_points(reference, REFERENCE_FIELD, grid, classes)?;
    let (pairs, mut notes) = read.paired_with_map(map, grid.width, REFERENCE_FIELD);
    if pairs.is_empty() {
        return Err(ReadError::format(
            reference,
            format!(
                "no labelled point on the map: fill in the `{REFERENCE_FIELD}` field of layer {} first",
                read.layer
            ),
        ));
    }
    let areas = class_areas(map, grid, classes);
    let mut estimates = area_adjusted_accuracy(&areas.strata(), &pairs);
    notes.append(&mut estimates.notes);
    estimates.notes = notes;
    Ok(SampleAccuracy {
        reference: reference.to_path_buf(),
        area_unit: areas.area_unit(),
        estimates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::sample_points::{
        read_reference_points, read_sample_points, write_references, write_sample,
    };
    use crate::scene::named_classes;
    use gdal::spatial_ref::SpatialRef;

    #[test]
    fn references_go_back_by_feature_id_whole_or_not_at_all() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (w, h) = (20, 10);
        let grid = PixelGrid {
            width: w,
            height: h,
            geo_transform: Some([500_000.0, 10.0, 0.0, 4_000_000.0, 0.0, -10.0]),
            crs_wkt: Some(
                SpatialRef::from_epsg(32633)
                    .and_then(|s| s.to_wkt())
                    .expect("EPSG:32633"),
            ),
            crs_name: Some("EPSG:32633".into()),
        };
        let map: Vec<u8> = (0..w * h).map(|i| if i % w < 10 { 1 } else { 2 }).collect();
        let classes = named_classes(2, &[]);
        let path = dir.path().join("sample.gpkg");
        write_sample(&path, &grid, &stratified_sample(&map, w, 3, 7), &classes).expect("written");
        let read = read_sample_points(&path, REFERENCE_FIELD, &grid, &classes).expect("read");
        assert_eq!(read.points.len(), 6);
        assert!(read.points.iter().all(|p| p.reference.is_none()));
        // Label all but the last, each as its map class.
        let mut refs: Vec<(u64, Option<u8>)> = read
            .points
            .iter()
            .map(|p| (p.fid, Some(map[p.row * w + p.col])))
            .collect();
        refs[5].1 = None;
        write_references(&path, &read.layer, REFERENCE_FIELD, &refs).expect("labels written");
        let again = read_sample_points(&path, REFERENCE_FIELD, &grid, &classes).expect("read");
        let got: Vec<(u64, Option<u8>)> =
            again.points.iter().map(|p| (p.fid, p.reference)).collect();
        assert_eq!(got, refs);
        let points = read_reference_points(&path, REFERENCE_FIELD, &grid, &classes).expect("read");
        assert_eq!((points.points.len(), points.unlabelled), (5, 1));

        // A feature id the layer lacks: an error, the file as it was, no
        // temporary file left.
        let before = std::fs::read(&path).expect("bytes");
        let e = write_references(
            &path,
            &read.layer,
            REFERENCE_FIELD,
            &[(1, Some(2)), (999, Some(1))],
        )
        .expect_err("no feature 999");
        assert!(e.to_string().contains("999"), "{e}");
        assert_eq!(std::fs::read(&path).expect("bytes"), before);
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
        // Only GeoPackages are written back.
        let e = write_references(
            &dir.path().join("s.geojson"),
            "sample",
            REFERENCE_FIELD,
            &refs,
        )
        .expect_err("not a GeoPackage");
        assert!(e.to_string().contains("only a GeoPackage"), "{e}");
    }
}
