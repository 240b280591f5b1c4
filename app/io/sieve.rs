//! GDAL's sieve filter on a class map: every connected region (4- or
//! 8-connected) smaller than a minimum mapping unit takes the class of its
//! largest neighbour. Unmapped pixels (class 0) are neither sieved nor
//! grown into. In memory (GDAL's MEM driver); the caller writes the result.

use gdal::DriverManager;
use gdal::raster::Buffer;

use crate::scene::PixelGrid;

/// Why the sieve could not run.
#[derive(Debug, thiserror::Error)]
pub enum SieveError {
    #[error("the sieve needs connectivity 4 or 8, not {0}")]
    Connectivity(u8),
    #[error("the class map has {got} pixels but its grid {width} x {height}")]
    Size {
        got: usize,
        width: usize,
        height: usize,
    },
    #[error("GDAL's sieve filter failed: {0}")]
    Gdal(String),
}

/// The map with regions under `min_pixels` pixels merged into their largest
/// neighbour.
pub fn sieve(
    map: &[u8],
    grid: &PixelGrid,
    min_pixels: usize,
    connectivity: u8,
) -> Result<Vec<u8>, SieveError> {
    if connectivity != 4 && connectivity != 8 {
        return Err(SieveError::Connectivity(connectivity));
    }
    let (w, h) = (grid.width, grid.height);
    if map.len() != w * h {
        return Err(SieveError::Size {
            got: map.len(),
            width: w,
            height: h,
        });
    }
    super::raster::init_gdal();
    let gdal_error = |e: gdal::errors::GdalError| SieveError::Gdal(e.to_string());
    let driver = DriverManager::get_driver_by_name("MEM").map_err(gdal_error)?;
    let src = driver
        .create_with_band_type::<u8, _>("", w, h, 1)
        .map_err(gdal_error)?;
    let dst = driver
        .create_with_band_type::<u8, _>("", w, h, 1)
        .map_err(gdal_error)?;
    let mut band = src.rasterband(1).map_err(gdal_error)?;
    band.write((0, 0), (w, h), &mut Buffer::new((w, h), map.to_vec()))
        .map_err(gdal_error)?;
    band.set_no_data_value(Some(0.0)).map_err(gdal_error)?;
    let mask = band.open_mask_band().map_err(gdal_error)?;
    let out = dst.rasterband(1).map_err(gdal_error)?;
    let threshold = i32::try_from(min_pixels).unwrap_or(i32::MAX);
    // SAFETY: the three band handles belong to datasets alive until the end
    // of this function; no options, no progress callback.
    let err = unsafe {
        gdal_sys::GDALSieveFilter(
            band.c_rasterband(),
            mask.c_rasterband(),
            out.c_rasterband(),
            threshold,
            i32::from(connectivity),
            std::ptr::null_mut(),
            None,
            std::ptr::null_mut(),
        )
    };
    if err != gdal_sys::CPLErr::CE_None {
        let message = super::raster::last_gdal_error();
        return Err(SieveError::Gdal(message));
    }
    let result = out.read_band_as::<u8>().map_err(gdal_error)?;
    // Unmapped pixels stay unmapped.
    Ok(result
        .data()
        .iter()
        .zip(map)
        .map(|(&s, &m)| if m == 0 { 0 } else { s })
        .collect())
}
