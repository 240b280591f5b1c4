//! MATLAB `.mat` files of the benchmark: v5 (through the `matfile` crate) and
//! v7.3 (HDF5, through GDAL's HDF5 driver). Arrays are H x W [x B] in MATLAB's
//! column-major order and come out band-sequential, row-major.

use std::io::Read;
use std::path::Path;

use super::error::ReadError;
use super::raster;

/// An H x W x B array read from a MATLAB or NumPy file, band-sequential and
/// row-major like [`crate::scene::HsiCube`].
#[derive(Debug, Clone)]
pub struct GridArray {
    /// Variable name it came from.
    pub name: String,
    pub height: usize,
    pub width: usize,
    pub bands: usize,
    pub data: Vec<f32>,
}

/// True when the file is a MATLAB v7.3 (HDF5) file.
fn is_v73(path: &Path) -> Result<bool, ReadError> {
    let mut head = [0u8; 128];
    let mut f = std::fs::File::open(path).map_err(|_| ReadError::NotFound {
        path: path.to_path_buf(),
    })?;
    let n = f
        .read(&mut head)
        .map_err(|e| ReadError::format(path, e.to_string()))?;
    let text = String::from_utf8_lossy(&head[..n.min(116)]);
    if !text.starts_with("MATLAB") {
        return Err(ReadError::format(
            path,
            "not a MATLAB .mat file (no 'MATLAB' header)",
        ));
    }
    Ok(text.starts_with("MATLAB 7.3"))
}

/// Reorders a column-major H x W x B array into band-sequential row-major.
fn bsq_from_column_major(values: &[f32], h: usize, w: usize, b: usize) -> Vec<f32> {
    let mut out = vec![0f32; h * w * b];
    for band in 0..b {
        let src = &values[band * h * w..(band + 1) * h * w];
        let dst = &mut out[band * h * w..(band + 1) * h * w];
        for col in 0..w {
            for row in 0..h {
                dst[row * w + col] = src[col * h + row];
            }
        }
    }
    out
}

fn numeric_to_f32(data: &matfile::NumericData) -> Vec<f32> {
    use matfile::NumericData as N;
    match data {
        N::Int8 { real, .. } => real.iter().map(|&v| v as f32).collect(),
        N::UInt8 { real, .. } => real.iter().map(|&v| v as f32).collect(),
        N::Int16 { real, .. } => real.iter().map(|&v| v as f32).collect(),
        N::UInt16 { real, .. } => real.iter().map(|&v| v as f32).collect(),
        N::Int32 { real, .. } => real.iter().map(|&v| v as f32).collect(),
        N::UInt32 { real, .. } => real.iter().map(|&v| v as f32).collect(),
        N::Int64 { real, .. } => real.iter().map(|&v| v as f32).collect(),
        N::UInt64 { real, .. } => real.iter().map(|&v| v as f32).collect(),
        N::Single { real, .. } => real.clone(),
        N::Double { real, .. } => real.iter().map(|&v| v as f32).collect(),
    }
}

fn read_v5(path: &Path, wanted: &[&str]) -> Result<GridArray, ReadError> {
    let file = std::fs::File::open(path).map_err(|_| ReadError::NotFound {
        path: path.to_path_buf(),
    })?;
    let mat = matfile::MatFile::parse(std::io::BufReader::new(file))
        .map_err(|e| ReadError::format(path, format!("cannot parse the MATLAB v5 file: {e}")))?;
    let found: Vec<String> = mat.arrays().iter().map(|a| a.name().to_string()).collect();
    let array = wanted
        .iter()
        .find_map(|name| mat.find_by_name(name))
        .ok_or_else(|| ReadError::MissingVariable {
            path: path.to_path_buf(),
            wanted: wanted.join("` or `"),
            found: if found.is_empty() {
                "none".to_string()
            } else {
                found.join(", ")
            },
        })?;
    let size = array.size();
    let (h, w, b) = match size.as_slice() {
        [h, w] => (*h, *w, 1),
        [h, w, b] => (*h, *w, *b),
        other => {
            return Err(ReadError::format(
                path,
                format!(
                    "variable `{}` has shape {other:?}; expected H x W or H x W x bands",
                    array.name()
                ),
            ));
        }
    };
    let values = numeric_to_f32(array.data());
    if values.len() != h * w * b {
        return Err(ReadError::format(path, "array data shorter than its size"));
    }
    Ok(GridArray {
        name: array.name().to_string(),
        height: h,
        width: w,
        bands: b,
        data: bsq_from_column_major(&values, h, w, b),
    })
}

fn read_v73(path: &Path, wanted: &[&str]) -> Result<GridArray, ReadError> {
    // HDF5 stores MATLAB arrays with reversed dimensions: GDAL sees x = H,
    // y = W and one band per third-dimension index.
    for name in wanted {
        let sub = format!("HDF5:\"{}\"://{}", path.display(), name);
        let Ok((header, data)) = raster::read_bands(Path::new(&sub), None) else {
            continue;
        };
        let (h, w, b) = (header.grid.width, header.grid.height, header.band_count);
        // Per band, GDAL's row-major (y = col, x = row) is MATLAB's column-major.
        return Ok(GridArray {
            name: name.to_string(),
            height: h,
            width: w,
            bands: b,
            data: bsq_from_column_major(&data, h, w, b),
        });
    }
    let found = raster::read_header(path)
        .map(|hdr| {
            hdr.subdatasets
                .iter()
                .map(|(n, _)| n.rsplit("//").next().unwrap_or(n).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    Err(ReadError::MissingVariable {
        path: path.to_path_buf(),
        wanted: wanted.join("` or `"),
        found: if found.is_empty() {
            "none listed".to_string()
        } else {
            found
        },
    })
}

/// Every numeric 2-D or 3-D variable of the file.
pub fn list_variables(path: &Path) -> Result<Vec<GridArray>, ReadError> {
    if !path.exists() {
        return Err(ReadError::NotFound {
            path: path.to_path_buf(),
        });
    }
    if is_v73(path)? {
        let header = raster::read_header(path)?;
        let names: Vec<String> = if header.subdatasets.is_empty() {
            // A single dataset: GDAL opened it directly; its name is in the
            // metadata only, so try the benchmark names.
            MAT_ALL_VARS.iter().map(|s| s.to_string()).collect()
        } else {
            header
                .subdatasets
                .iter()
                .map(|(n, _)| n.rsplit("//").next().unwrap_or(n).to_string())
                .collect()
        };
        Ok(names
            .iter()
            .filter_map(|n| read_v73(path, &[n.as_str()]).ok())
            .collect())
    } else {
        let file = std::fs::File::open(path).map_err(|_| ReadError::NotFound {
            path: path.to_path_buf(),
        })?;
        let mat = matfile::MatFile::parse(std::io::BufReader::new(file)).map_err(|e| {
            ReadError::format(path, format!("cannot parse the MATLAB v5 file: {e}"))
        })?;
        let names: Vec<String> = mat.arrays().iter().map(|a| a.name().to_string()).collect();
        Ok(names
            .iter()
            .filter_map(|n| read_v5(path, &[n.as_str()]).ok())
            .collect())
    }
}

/// The variable names the benchmark uses.
const MAT_ALL_VARS: &[&str] = &["data_HS_LR", "data_SAR_HR", "TrainImage", "TestImage"];

/// Reads the first of the `wanted` variables that the file holds.
pub fn read_variable(path: &Path, wanted: &[&str]) -> Result<GridArray, ReadError> {
    if !path.exists() {
        return Err(ReadError::NotFound {
            path: path.to_path_buf(),
        });
    }
    if is_v73(path)? {
        read_v73(path, wanted)
    } else {
        read_v5(path, wanted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_major_becomes_row_major_per_band() {
        // 2 x 3 x 2, MATLAB order: first index fastest.
        let cm: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let out = bsq_from_column_major(&cm, 2, 3, 2);
        // band 0, row 0: (0,0)=0, (0,1)=2, (0,2)=4; row 1: 1, 3, 5
        assert_eq!(&out[..6], &[0.0, 2.0, 4.0, 1.0, 3.0, 5.0]);
        assert_eq!(&out[6..], &[6.0, 8.0, 10.0, 7.0, 9.0, 11.0]);
    }
}
