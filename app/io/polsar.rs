//! PolSARpro folders: one float32 ENVI `.bin` + `.hdr` per matrix element.
//! T3 and C3 folders give the quad-pol coherency diagonal, C2 folders (dual-
//! or compact-pol) the dual-pol covariance diagonal. All values are linear.

use std::path::Path;

use super::error::ReadError;
use super::raster;
use crate::scene::grid::is_unit_transform;
use crate::scene::{PixelGrid, PowerScale, SarImage, SarKind};

fn element(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    let p = dir.join(format!("{name}.bin"));
    p.exists().then_some(p)
}

fn read_element(
    dir: &Path,
    name: &str,
    grid: &mut Option<PixelGrid>,
) -> Result<Vec<f64>, ReadError> {
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
    Ok(data.into_iter().map(f64::from).collect())
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
    let mut grid = None;
    let (kind, what) = if element(dir, "T11").is_some() {
        let t11 = read_element(dir, "T11", &mut grid)?;
        let t22 = read_element(dir, "T22", &mut grid)?;
        let t33 = read_element(dir, "T33", &mut grid)?;
        (SarKind::QuadPol { t11, t22, t33 }, "T3 folder")
    } else if element(dir, "C33").is_some() {
        let c11 = read_element(dir, "C11", &mut grid)?;
        let c22 = read_element(dir, "C22", &mut grid)?;
        let c33 = read_element(dir, "C33", &mut grid)?;
        let c13 = read_element(dir, "C13_real", &mut grid)?;
        // k_L = [HH, sqrt2 HV, VV] -> Pauli diagonal.
        let t11 = (0..c11.len())
            .map(|i| 0.5 * (c11[i] + c33[i] + 2.0 * c13[i]))
            .collect();
        let t22 = (0..c11.len())
            .map(|i| 0.5 * (c11[i] + c33[i] - 2.0 * c13[i]))
            .collect();
        (SarKind::QuadPol { t11, t22, t33: c22 }, "C3 folder")
    } else if element(dir, "C11").is_some() {
        let c11 = read_element(dir, "C11", &mut grid)?;
        let c22 = read_element(dir, "C22", &mut grid)?;
        (SarKind::DualPol { c11, c22 }, "C2 folder")
    } else {
        return Err(ReadError::format(
            dir,
            "not a PolSARpro folder (no T11.bin or C11.bin)",
        ));
    };
    let mut grid = grid.ok_or_else(|| ReadError::format(dir, "no matrix element read"))?;
    if !has_real_transform(&grid) {
        grid = PixelGrid::plain(grid.width, grid.height);
    }
    Ok(SarImage {
        grid,
        kind,
        source_scale: PowerScale::Linear,
        scale_reason: format!("PolSARpro {what}: linear matrix elements"),
    })
}
