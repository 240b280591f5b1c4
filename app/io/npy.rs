//! NumPy `.npy` arrays (the benchmark's dense label images, H x W, any
//! integer or float dtype; also H x W x B cubes), C or Fortran order.

use std::path::Path;

use super::error::ReadError;
use super::mat::GridArray;

fn values_as_f32(
    path: &Path,
    npy: npyz::NpyFile<std::io::BufReader<std::fs::File>>,
) -> Result<Vec<f32>, ReadError> {
    let descr = match npy.dtype() {
        npyz::DType::Plain(ty) => ty.to_string(),
        other => {
            return Err(ReadError::format(
                path,
                format!("unsupported record dtype {}", other.descr()),
            ));
        }
    };
    let err = |e: std::io::Error| ReadError::format(path, format!("cannot read the array: {e}"));
    let code = descr.trim_start_matches(['<', '>', '|', '=']);
    let v: Vec<f32> = match code {
        "u1" => npy
            .into_vec::<u8>()
            .map_err(err)?
            .into_iter()
            .map(f32::from)
            .collect(),
        "i1" => npy
            .into_vec::<i8>()
            .map_err(err)?
            .into_iter()
            .map(f32::from)
            .collect(),
        "u2" => npy
            .into_vec::<u16>()
            .map_err(err)?
            .into_iter()
            .map(f32::from)
            .collect(),
        "i2" => npy
            .into_vec::<i16>()
            .map_err(err)?
            .into_iter()
            .map(f32::from)
            .collect(),
        "u4" => npy
            .into_vec::<u32>()
            .map_err(err)?
            .into_iter()
            .map(|x| x as f32)
            .collect(),
        "i4" => npy
            .into_vec::<i32>()
            .map_err(err)?
            .into_iter()
            .map(|x| x as f32)
            .collect(),
        "u8" => npy
            .into_vec::<u64>()
            .map_err(err)?
            .into_iter()
            .map(|x| x as f32)
            .collect(),
        "i8" => npy
            .into_vec::<i64>()
            .map_err(err)?
            .into_iter()
            .map(|x| x as f32)
            .collect(),
        "f4" => npy.into_vec::<f32>().map_err(err)?,
        "f8" => npy
            .into_vec::<f64>()
            .map_err(err)?
            .into_iter()
            .map(|x| x as f32)
            .collect(),
        "b1" => npy
            .into_vec::<bool>()
            .map_err(err)?
            .into_iter()
            .map(|x| x as u8 as f32)
            .collect(),
        _ => {
            return Err(ReadError::format(
                path,
                format!("unsupported dtype {descr}"),
            ));
        }
    };
    Ok(v)
}

/// Reads an H x W or H x W x B array.
pub fn read_npy(path: &Path) -> Result<GridArray, ReadError> {
    let file = std::fs::File::open(path).map_err(|_| ReadError::NotFound {
        path: path.to_path_buf(),
    })?;
    let npy = npyz::NpyFile::new(std::io::BufReader::new(file))
        .map_err(|e| ReadError::format(path, format!("not a NumPy .npy file: {e}")))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let fortran = npy.order() == npyz::Order::Fortran;
    let (h, w, b) = match shape.as_slice() {
        [h, w] => (*h, *w, 1),
        [h, w, b] => (*h, *w, *b),
        other => {
            return Err(ReadError::format(
                path,
                format!("array of shape {other:?}; expected H x W or H x W x bands"),
            ));
        }
    };
    let values = values_as_f32(path, npy)?;
    if values.len() != h * w * b {
        return Err(ReadError::format(path, "array data shorter than its shape"));
    }
    // C order H x W x B is band-interleaved by pixel; Fortran order is
    // column-major per band.
    let mut data = vec![0f32; h * w * b];
    for row in 0..h {
        for col in 0..w {
            for band in 0..b {
                let src = if fortran {
                    row + h * (col + w * band)
                } else {
                    (row * w + col) * b + band
                };
                data[band * h * w + row * w + col] = values[src];
            }
        }
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    Ok(GridArray {
        name,
        height: h,
        width: w,
        bands: b,
        data,
    })
}
