//! Writing georeferenced GeoTIFFs and PNGs of renderings (atomically).

use std::path::Path;

use gdal::raster::{Buffer, ColorInterpretation, GdalType, RasterCreationOptions};
use gdal::{Dataset, DriverManager, Metadata};

use super::atomic::write_atomically;
use crate::scene::PixelGrid;
use crate::scene::Rgb8Image;

/// Why an output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write {path}: {message}")]
    Failed { path: String, message: String },
    /// The input of the write (a class map to vectorize, sieve, ...)
    /// cannot be read.
    #[error(transparent)]
    Input(#[from] super::ReadError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub(crate) fn failed(path: &Path, e: impl std::fmt::Display) -> WriteError {
    WriteError::Failed {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Creates a deflate-compressed, tiled GeoTIFF of `T` at `tmp` (reported as
/// `path`) of (width, height, bands) with the grid's geotransform and CRS.
pub(crate) fn create_geotiff<T: GdalType>(
    path: &Path,
    tmp: &Path,
    (w, h, bands): (usize, usize, usize),
    extra_options: &[&str],
    grid: &PixelGrid,
) -> Result<Dataset, WriteError> {
    let driver = DriverManager::get_driver_by_name("GTiff").map_err(|e| failed(path, e))?;
    let options = RasterCreationOptions::from_iter(
        ["COMPRESS=DEFLATE", "TILED=YES"]
            .iter()
            .chain(extra_options)
            .copied(),
    );
    let mut ds = driver
        .create_with_band_type_with_options::<T, _>(tmp, w, h, bands, &options)
        .map_err(|e| failed(path, e))?;
    if let Some(gt) = grid.geo_transform {
        ds.set_geo_transform(&gt).map_err(|e| failed(path, e))?;
    }
    if let Some(wkt) = &grid.crs_wkt {
        ds.set_projection(wkt).map_err(|e| failed(path, e))?;
    }
    Ok(ds)
}

/// Writes an RGB rendering as a 3-band uint8 GeoTIFF with the grid's
/// geotransform and CRS (deflate-compressed, tiled).
pub fn write_rgb_geotiff(
    path: &Path,
    image: &Rgb8Image,
    grid: &PixelGrid,
) -> Result<(), WriteError> {
    crate::io::raster::init_gdal();
    write_atomically(path, |tmp| {
        let (w, h) = (image.width, image.height);
        let ds = create_geotiff::<u8>(path, tmp, (w, h, 3), &["PHOTOMETRIC=RGB"], grid)?;
        let interp = [
            ColorInterpretation::RedBand,
            ColorInterpretation::GreenBand,
            ColorInterpretation::BlueBand,
        ];
        for (c, ci) in interp.into_iter().enumerate() {
            let mut band = ds.rasterband(c + 1).map_err(|e| failed(path, e))?;
            let mut buf = Buffer::new((w, h), image.channel(c));
            band.write((0, 0), (w, h), &mut buf)
                .map_err(|e| failed(path, e))?;
            band.set_color_interpretation(ci)
                .map_err(|e| failed(path, e))?;
        }
        ds.close().map_err(|e| failed(path, e))
    })
}

/// Writes an RGB rendering as a PNG.
pub fn write_rgb_png(path: &Path, image: &Rgb8Image) -> Result<(), WriteError> {
    write_atomically(path, |tmp| {
        image::save_buffer_with_format(
            tmp,
            &image.data,
            image.width as u32,
            image.height as u32,
            image::ExtendedColorType::Rgb8,
            image::ImageFormat::Png,
        )
        .map_err(|e| failed(path, e))
    })
}

/// Writes named f32 layers (probability, entropy) as one band each of a
/// float32 GeoTIFF on the grid; NaN is its nodata value.
pub fn write_f32_geotiff(
    path: &Path,
    layers: &[(&str, &[f32])],
    grid: &PixelGrid,
) -> Result<(), WriteError> {
    crate::io::raster::init_gdal();
    let (w, h) = (grid.width, grid.height);
    if layers.iter().any(|(_, v)| v.len() != w * h) {
        return Err(failed(path, "a layer's size differs from its grid"));
    }
    write_atomically(path, |tmp| {
        let ds = create_geotiff::<f32>(path, tmp, (w, h, layers.len()), &["PREDICTOR=3"], grid)?;
        for (i, (name, values)) in layers.iter().enumerate() {
            let mut band = ds.rasterband(i + 1).map_err(|e| failed(path, e))?;
            band.write((0, 0), (w, h), &mut Buffer::new((w, h), values.to_vec()))
                .map_err(|e| failed(path, e))?;
            band.set_description(name).map_err(|e| failed(path, e))?;
            band.set_no_data_value(Some(f64::NAN))
                .map_err(|e| failed(path, e))?;
        }
        ds.close().map_err(|e| failed(path, e))
    })
}
