//! PolSARpro folders: one float32 ENVI `.bin` + `.hdr` per matrix element.
//! T3 and C3 folders give the quad-pol coherency diagonal, C2 folders (dual-
//! or compact-pol) the dual-pol covariance diagonal, and every off-diagonal
//! part found goes to the classifiers beside it. All values are linear.

use std::path::Path;

use super::error::ReadError;
use super::raster;
use super::sar_matrix::{MatrixBands, MatrixKind, classifiers_note, matrix_from_planes};
use crate::scene::grid::is_unit_transform;
use crate::scene::{PixelGrid, PowerScale, SarImage};

fn element(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    let p = dir.join(format!("{name}.bin"));
    p.exists().then_some(p)
}

fn read_element(
    dir: &Path,
    name: &str,
    grid: &mut Option<PixelGrid>,
) -> Result<Vec<f32>, ReadError> {
    let path = element(dir, name).ok_or_else(|| ReadError::NotFound {
        path: dir.join(format!("{name}.bin")),
    })?;
    let (header, data) = raster::read_bands(&path, Some(&[0]))?;
    // Elements of one folder share a grid by construction; only their sizes
    // are checked. PolSARpro often writes a placeholder `map info` (a unit
    // transform) into some headers, so the georeference is taken from the
    // first element that has a real one.
    match grid {
        Some(g) => {
            let sized = |g: &PixelGrid| PixelGrid::plain(g.width, g.height);
            sized(g).check_same("first element", &sized(&header.grid), name)?;
            if !has_real_transform(g) && has_real_transform(&header.grid) {
                *g = header.grid;
            }
        }
        None => *grid = Some(header.grid),
    }
    Ok(data)
}

fn has_real_transform(g: &PixelGrid) -> bool {
    g.geo_transform.is_some_and(|gt| !is_unit_transform(&gt))
}

/// True when `dir` looks like a PolSARpro T3, C3 or C2 folder.
pub fn is_polsar_folder(dir: &Path) -> bool {
    dir.is_dir() && (element(dir, "T11").is_some() || element(dir, "C11").is_some())
}

/// Reads a PolSARpro folder.
pub fn read_polsar_folder(dir: &Path) -> Result<SarImage, ReadError> {
    if !dir.exists() {
        return Err(ReadError::NotFound {
            path: dir.to_path_buf(),
        });
    }
    let kind = if element(dir, "T11").is_some() {
        MatrixKind::T3
    } else if element(dir, "C33").is_some() {
        MatrixKind::C3
    } else if element(dir, "C11").is_some() {
        MatrixKind::C2
    } else {
        return Err(ReadError::format(
            dir,
            "not a PolSARpro folder (no T11.bin or C11.bin)",
        ));
    };
    // The diagonal (and C13_real for a C3 folder) must be there; the other
    // off-diagonal parts are read where they are, the missing ones said.
    let (diagonal, off) = kind.elements();
    let mut grid = None;
    let mut data = Vec::new();
    for name in diagonal {
        data.extend(read_element(dir, name, &mut grid)?);
    }
    let mut off_diagonal = Vec::new();
    let mut missing = Vec::new();
    for name in off {
        if element(dir, name).is_some() || *name == "C13_real" {
            data.extend(read_element(dir, name, &mut grid)?);
            off_diagonal.push((name.to_string(), diagonal.len() + off_diagonal.len()));
        } else {
            missing.push(*name);
        }
    }
    let layout = MatrixBands {
        kind,
        diagonal: (0..diagonal.len()).collect(),
        off_diagonal,
        unused: Vec::new(),
    };
    let n = grid.as_ref().map_or(0, |g| g.len());
    let (sar_kind, off_diagonal) = matrix_from_planes(dir, &layout, &data, n)?;
    let mut what = format!(
        "PolSARpro {} folder: linear matrix elements, {} for the Pauli rendering",
        kind.name(),
        diagonal.join(", ")
    );
    what.push_str(&classifiers_note(&off_diagonal));
    if !missing.is_empty() {
        what.push_str(&format!("; not in the folder: {}", missing.join(", ")));
    }
    let mut grid = grid.ok_or_else(|| ReadError::format(dir, "no matrix element read"))?;
    if !has_real_transform(&grid) {
        grid = PixelGrid::plain(grid.width, grid.height);
    }
    Ok(SarImage {
        grid,
        kind: sar_kind,
        source_scale: PowerScale::Linear,
        scale_reason: what,
        off_diagonal,
    })
}
