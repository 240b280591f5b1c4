//! Opening a file as a scene layer: picks the reader by what the path is
//! (PolSARpro folder, `.mat`, `.npy`, anything else through GDAL) and turns
//! its samples into an HSI cube, a SAR image or a label image.

use std::path::Path;

use super::error::ReadError;
use super::mat::{self, GridArray};
use super::{npy, polsar, raster, sar_matrix};
use crate::scene::{HsiCube, LabelImage, PixelGrid, PowerScale, SarImage, SarKind};

/// MATLAB variable names of the benchmark, in the order they are tried.
pub const MAT_HSI_VARS: &[&str] = &["data_HS_LR", "data_HS_HR", "data_HS", "HSI", "hsi"];
pub const MAT_SAR_VARS: &[&str] = &["data_SAR_HR", "data_SAR", "SAR", "sar"];
pub const MAT_LABEL_VARS: &[&str] = &["TrainImage", "TestImage", "label", "labels", "gt"];

/// How to read SAR values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SarScaleChoice {
    /// Decide from metadata, the file name and the data.
    #[default]
    Auto,
    Linear,
    Db,
}

fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

fn array_of(path: &Path, mat_vars: &[&str]) -> Result<Option<GridArray>, ReadError> {
    match extension(path).as_str() {
        "mat" => mat::read_variable(path, mat_vars).map(Some),
        "npy" => npy::read_npy(path).map(Some),
        _ => Ok(None),
    }
}

/// Opens an optical cube (hyperspectral or multispectral).
pub fn open_hsi(path: &Path) -> Result<HsiCube, ReadError> {
    let cube = match array_of(path, MAT_HSI_VARS)? {
        Some(mut a) => {
            raster::mask_invalid(&mut a.data, None);
            HsiCube {
                grid: PixelGrid::plain(a.width, a.height),
                bands: a.bands,
                data: a.data,
                wavelengths_nm: None,
                band_names: vec![String::new(); a.bands],
            }
        }
        None => {
            let (header, data) = raster::read_bands(path, None)?;
            HsiCube {
                grid: header.grid,
                bands: header.band_count,
                data,
                wavelengths_nm: header.wavelengths_nm,
                band_names: header.band_names,
            }
        }
    };
    if cube.data.iter().all(|v| v.is_nan()) {
        return Err(ReadError::format(
            path,
            "every sample is nodata or NaN; nothing to show",
        ));
    }
    Ok(cube)
}

fn looks_like_db_name(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|token| token == "db" || token == "decibel" || token == "decibels")
}

/// Decides whether SAR values are dB, and says why.
fn decide_scale(
    choice: SarScaleChoice,
    hints: &[String],
    c11: &[f32],
    c22: &[f32],
) -> (PowerScale, String) {
    let negatives = c11.iter().chain(c22).filter(|v| **v < 0.0).count();
    decide_scale_counted(choice, hints, negatives)
}

/// [`decide_scale`] from the count of negative samples (a scene read in
/// windows counts them in a pass of its own).
pub(crate) fn decide_scale_counted(
    choice: SarScaleChoice,
    hints: &[String],
    negatives: usize,
) -> (PowerScale, String) {
    match choice {
        SarScaleChoice::Db => return (PowerScale::Db, "chosen by the user".to_string()),
        SarScaleChoice::Linear => return (PowerScale::Linear, "chosen by the user".to_string()),
        SarScaleChoice::Auto => {}
    }
    if let Some(h) = hints.iter().find(|h| looks_like_db_name(h)) {
        return (
            PowerScale::Db,
            format!("metadata or file name says dB ('{h}')"),
        );
    }
    if negatives > 0 {
        return (
            PowerScale::Db,
            format!(
                "{negatives} negative values: intensities cannot be negative, so the data is in dB"
            ),
        );
    }
    (
        PowerScale::Linear,
        "no dB hint and no negative values: read as linear intensity".to_string(),
    )
}

pub(crate) fn to_linear(values: &[f32], scale: PowerScale) -> Vec<f64> {
    values
        .iter()
        .map(|&v| {
            let v = f64::from(v);
            match scale {
                PowerScale::Db => 10f64.powf(v / 10.0),
                PowerScale::Linear => v,
            }
        })
        .collect()
}

/// How a SAR read says that bands of its raster were left out.
pub const UNUSED_BANDS_NOTE: &str =
    "not used (name T3, C3 or C2 elements in the band descriptions to have a matrix read whole)";

/// The (co-pol, cross-pol) bands of a SAR raster and how they were found,
/// the bands left out said; a raster of fewer than two bands is refused.
pub(crate) fn polarisation_bands(
    path: &Path,
    header: &raster::RasterHeader,
) -> Result<(usize, usize, String), ReadError> {
    if header.band_count < 2 {
        return Err(ReadError::format(
            path,
            format!(
                "SAR needs two polarisations (VV and VH, or HH and HV); the file has {} band(s)",
                header.band_count
            ),
        ));
    }
    let (co, cross, mut note) = dual_pol_bands(&header.band_names);
    let unused: Vec<String> = (0..header.band_count)
        .filter(|&b| b != co && b != cross)
        .map(
            |b| match header.band_names.get(b).filter(|n| !n.is_empty()) {
                Some(name) => format!("{} ({name})", b + 1),
                None => (b + 1).to_string(),
            },
        )
        .collect();
    if !unused.is_empty() {
        note.push_str(&format!(
            "; bands {} of {} {UNUSED_BANDS_NOTE}",
            unused.join(", "),
            header.band_count
        ));
        log::warn!("{}: {note}", path.display());
    }
    Ok((co, cross, note))
}

/// Picks (co-pol, cross-pol) band indices from band names, else (0, 1).
fn dual_pol_bands(names: &[String]) -> (usize, usize, String) {
    let find = |keys: &[&str]| {
        names.iter().position(|n| {
            let up = n.to_ascii_uppercase();
            keys.iter().any(|k| {
                up.split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|t| t == *k || t.starts_with(&format!("SIGMA0{k}")))
            })
        })
    };
    match (find(&["VV", "HH"]), find(&["VH", "HV"])) {
        (Some(co), Some(cross)) if co != cross => (
            co,
            cross,
            format!(
                "bands {} (co-pol) and {} (cross-pol) by name",
                co + 1,
                cross + 1
            ),
        ),
        _ => (
            0,
            1,
            "bands 1 (co-pol, VV) and 2 (cross-pol, VH) by position".to_string(),
        ),
    }
}

/// Opens a SAR image: a PolSARpro folder, a benchmark `.mat` (bands 0 and 1),
/// or a raster of at least two bands (VV, VH; linear or dB).
pub fn open_sar(path: &Path, choice: SarScaleChoice) -> Result<SarImage, ReadError> {
    if path.is_dir() {
        return polsar::read_polsar_folder(path);
    }
    let mut hints = vec![
        path.file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default(),
    ];
    let (grid, data, bands, band_note) = match array_of(path, MAT_SAR_VARS)? {
        Some(mut a) => {
            raster::mask_invalid(&mut a.data, None);
            (
                PixelGrid::plain(a.width, a.height),
                a.data,
                a.bands,
                "bands 1 and 2 of the array".to_string(),
            )
        }
        None => {
            let header = raster::read_header(path)?;
            if let Some(layout) = sar_matrix::matrix_bands(&header.band_names) {
                return read_sar_matrix(path, &layout);
            }
            let (co, cross, note) = polarisation_bands(path, &header)?;
            let (header, data) = raster::read_bands(path, Some(&[co, cross]))?;
            hints.extend(header.band_names.iter().cloned());
            (header.grid, data, 2, note)
        }
    };
    if bands < 2 {
        return Err(ReadError::format(
            path,
            format!("SAR needs two polarisations; the array has {bands} band(s)"),
        ));
    }
    let n = grid.len();
    let (c11, c22) = (&data[..n], &data[n..2 * n]);
    if c11.iter().all(|v| v.is_nan()) || c22.iter().all(|v| v.is_nan()) {
        return Err(ReadError::format(
            path,
            "a SAR band has no valid samples (all nodata or NaN)",
        ));
    }
    let (scale, reason) = decide_scale(choice, &hints, c11, c22);
    let kind = SarKind::DualPol {
        c11: to_linear(c11, scale),
        c22: to_linear(c22, scale),
    };
    Ok(SarImage {
        grid,
        kind,
        source_scale: scale,
        scale_reason: format!("{reason}; {band_note}"),
        off_diagonal: Vec::new(),
    })
}

/// A raster holding a polarimetric matrix (T3, C3, C2 by band
/// description): every element read at once, linear as the matrices are.
fn read_sar_matrix(path: &Path, layout: &sar_matrix::MatrixBands) -> Result<SarImage, ReadError> {
    let (header, data) = raster::read_bands(path, Some(&layout.bands()))?;
    let n = header.grid.len();
    let (kind, off_diagonal) = sar_matrix::matrix_from_planes(path, layout, &data, n)?;
    if kind
        .diagonal()
        .iter()
        .any(|(_, v)| v.iter().all(|x| x.is_nan()))
    {
        return Err(ReadError::format(
            path,
            "a diagonal element of the matrix has no valid samples (all nodata or NaN)",
        ));
    }
    let note = format!("linear matrix elements; {}", layout.describe());
    log::info!("{}: {note}", path.display());
    Ok(SarImage {
        grid: header.grid,
        kind,
        source_scale: PowerScale::Linear,
        scale_reason: note,
        off_diagonal,
    })
}

/// Turns label samples into classes: each value plus `offset`; nodata, NaN
/// and results below 1 become 0 (unlabelled); anything not an integer in
/// 0..=255 is refused.
fn classes_from(path: &Path, values: &[f32], offset: i32) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::with_capacity(values.len());
    for &v in values {
        let v = v + offset as f32;
        if v.is_nan() || v < 1.0 {
            out.push(0);
        } else if v.fract() != 0.0 || v > 255.0 {
            return Err(ReadError::format(
                path,
                format!("label value {v} is not a class number in 0..255"),
            ));
        } else {
            out.push(v as u8);
        }
    }
    Ok(out)
}

/// Opens a label image (GeoTIFF or any GDAL raster, `.mat`, `.npy`); 0,
/// negative values and nodata are unlabelled.
pub fn open_labels(path: &Path) -> Result<LabelImage, ReadError> {
    open_labels_with_offset(path, 0)
}

/// [`open_labels`] for files whose classes start at 0 (such as water masks,
/// 0 = dry, 1 = water, -1 = nodata): `offset` is added to every value first,
/// so with 1 they become 1, 2 and unlabelled.
pub fn open_labels_with_offset(path: &Path, offset: i32) -> Result<LabelImage, ReadError> {
    let (grid, values) = match array_of(path, MAT_LABEL_VARS)? {
        Some(a) if a.bands > 1 => {
            return Err(ReadError::format(
                path,
                format!(
                    "labels are one band of class numbers; this array is {} x {} x {}",
                    a.height, a.width, a.bands
                ),
            ));
        }
        Some(a) => (
            PixelGrid::plain(a.width, a.height),
            a.data[..a.width * a.height].to_vec(),
        ),
        None => {
            let (header, data) = raster::read_bands(path, Some(&[0]))?;
            (header.grid, data)
        }
    };
    let negative = values
        .iter()
        .filter(|&&v| v + (offset as f32) < 0.0)
        .count();
    if negative > 0 {
        let lowest = values.iter().copied().fold(f32::INFINITY, f32::min);
        log::warn!(
            "{}: {negative} pixels with negative label values (lowest {lowest}{}) are taken as unlabelled",
            path.display(),
            if offset != 0 {
                format!(", before the offset {offset}")
            } else {
                String::new()
            }
        );
    }
    Ok(LabelImage {
        data: classes_from(path, &values, offset)?,
        grid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_is_detected_from_names_and_negative_values() {
        let pos = [0.1f32, 0.2];
        let (s, why) = decide_scale(SarScaleChoice::Auto, &["x_norm_db.tif".into()], &pos, &pos);
        assert_eq!(s, PowerScale::Db, "{why}");
        let (s, _) = decide_scale(SarScaleChoice::Auto, &["s1.tif".into()], &[-12.0], &pos);
        assert_eq!(s, PowerScale::Db);
        let (s, _) = decide_scale(SarScaleChoice::Auto, &["s1.tif".into()], &pos, &pos);
        assert_eq!(s, PowerScale::Linear);
        let (s, why) = decide_scale(SarScaleChoice::Linear, &["a_db.tif".into()], &[-1.0], &pos);
        assert_eq!(s, PowerScale::Linear);
        assert!(why.contains("user"));
    }

    #[test]
    fn polarisations_are_found_by_name() {
        let names = vec!["VH".to_string(), "VV".to_string()];
        let (co, cross, _) = dual_pol_bands(&names);
        assert_eq!((co, cross), (1, 0));
        let (co, cross, _) = dual_pol_bands(&["".to_string(), "".to_string()]);
        assert_eq!((co, cross), (0, 1));
    }
}
