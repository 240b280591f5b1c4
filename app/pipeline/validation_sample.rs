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
