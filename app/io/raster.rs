//! Any raster GDAL opens, as a header (size, bands, type, georeference,
//! wavelengths) and as band-sequential f32 samples with invalid values as NaN.

use std::path::{Path, PathBuf};

use gdal::Dataset;
use gdal::Metadata;
use gdal::raster::GdalDataType;

use super::error::ReadError;
use crate::scene::grid::is_unit_transform;
use crate::scene::wavelength;
use crate::scene::{PixelGrid, Window};

/// What a raster file holds, read without its samples.
#[derive(Debug, Clone)]
pub struct RasterHeader {
    pub path: PathBuf,
    pub driver: String,
    pub grid: PixelGrid,
    pub band_count: usize,
    /// GDAL type name of band 1 ("Float32", "Int16", ...).
    pub dtype: String,
    /// Nodata value of band 1, if any.
    pub nodata: Option<f64>,
    pub band_names: Vec<String>,
    pub wavelengths_nm: Option<Vec<f64>>,
    /// How the wavelength units were decided.
    pub wavelength_source: Option<String>,
    /// Scale factors GDAL reports per band (not applied to the samples).
    pub scales: Vec<Option<f64>>,
    /// (name, description) of subdatasets (HDF5, NetCDF containers).
    pub subdatasets: Vec<(String, String)>,
}

/// Configures GDAL once: a bounded block cache (the cube is held by us, so
/// GDAL's own cache need not be large) and errors returned rather than printed.
pub fn init_gdal() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = gdal::config::set_config_option("GDAL_CACHEMAX", "128");
        gdal::config::set_error_handler(|_class, _code, _msg| {});
    });
}

/// GDAL's last error message on this thread (for the raw algorithm calls
/// the gdal crate does not wrap: polygonize, sieve).
pub(crate) fn last_gdal_error() -> String {
    // SAFETY: GDAL returns a pointer to its thread-local message buffer
    // (never null), copied out at once.
    unsafe {
        std::ffi::CStr::from_ptr(gdal_sys::CPLGetLastErrorMsg())
            .to_string_lossy()
            .into_owned()
    }
}

fn open_dataset(path: &Path) -> Result<Dataset, ReadError> {
    init_gdal();
    let name = path.to_string_lossy();
    let is_gdal_syntax = name.contains(':') && !path.exists();
    if !is_gdal_syntax && !path.exists() {
        return Err(ReadError::NotFound {
            path: path.to_path_buf(),
        });
    }
    Dataset::open(path).map_err(|e| ReadError::NotARaster {
        path: path.to_path_buf(),
        message: why_not_a_raster(path, &e.to_string()),
    })
}

/// What to say when GDAL opens nothing: GDAL's own message when it has
/// one, else what the file looks like (empty, an ENVI data file without
/// its header, text).
fn why_not_a_raster(path: &Path, gdal_message: &str) -> String {
    let said = gdal_message
        .split_once("Error msg: '")
        .map(|(_, m)| m.trim_end_matches('\'').trim())
        .unwrap_or(gdal_message)
        .trim();
    if !said.is_empty() {
        return said.to_string();
    }
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let header_missing = ["img", "bin", "dat", "raw", "bsq", "bil", "bip"].contains(&ext.as_str())
        && !path.with_extension("hdr").exists()
        && !path.with_extension(format!("{ext}.hdr")).exists();
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() == 0 => "the file is empty (0 bytes)".into(),
        _ if header_missing => format!(
            "an ENVI data file needs its header beside it: no {} or {}",
            path.with_extension("hdr").display(),
            path.with_extension(format!("{ext}.hdr")).display()
        ),
        _ => "no raster format GDAL knows matches its contents".into(),
    }
}

fn subdatasets(ds: &Dataset) -> Vec<(String, String)> {
    let items = ds.metadata_domain("SUBDATASETS").unwrap_or_default();
    let mut names = Vec::new();
    let mut descs = Vec::new();
    for item in items {
        if let Some((k, v)) = item.split_once('=') {
            if k.ends_with("_NAME") {
                names.push(v.to_string());
            } else if k.ends_with("_DESC") {
                descs.push(v.to_string());
            }
        }
    }
    names
        .into_iter()
        .enumerate()
        .map(|(i, n)| (n, descs.get(i).cloned().unwrap_or_default()))
        .collect()
}

fn read_wavelengths(ds: &Dataset, band_count: usize) -> (Option<Vec<f64>>, Option<String>) {
    // Per-band metadata first.
    let mut values = Vec::with_capacity(band_count);
    let mut units: Option<String> = None;
    for b in 1..=band_count {
        let Ok(band) = ds.rasterband(b) else { break };
        let w = band
            .metadata_item("wavelength", "")
            .or_else(|| band.metadata_item("WAVELENGTH", ""))
            .and_then(|s| s.trim().parse::<f64>().ok());
        match w {
            Some(w) => values.push(w),
            None => break,
        }
        if units.is_none() {
            units = band
                .metadata_item("wavelength_units", "")
                .or_else(|| band.metadata_item("WAVELENGTH_UNITS", ""));
        }
    }
    if values.len() == band_count && band_count > 0 {
        let (nm, why) = wavelength::to_nm(&values, units.as_deref());
        return (Some(nm), Some(format!("band metadata, {why}")));
    }
    // The ENVI header's list.
    let list = ds
        .metadata_item("wavelength", "ENVI")
        .and_then(|s| wavelength::parse_envi_list(&s));
    if let Some(list) = list.filter(|l| l.len() == band_count && band_count > 0) {
        let units = ds.metadata_item("wavelength_units", "ENVI");
        let (nm, why) = wavelength::to_nm(&list, units.as_deref());
        return (Some(nm), Some(format!("ENVI header, {why}")));
    }
    (None, None)
}

fn crs_of(ds: &Dataset) -> (Option<String>, Option<String>) {
    let wkt = ds.projection();
    if wkt.trim().is_empty() {
        return (None, None);
    }
    let name = ds
        .spatial_ref()
        .ok()
        .and_then(|srs| match (srs.auth_name(), srs.auth_code()) {
            (Some(a), Ok(c)) => Some(format!("{a}:{c}")),
            _ => srs.name(),
        });
    (Some(wkt), name)
}

fn header_of(path: &Path, ds: &Dataset) -> RasterHeader {
    let (width, height) = ds.raster_size();
    let band_count = ds.raster_count();
    let (crs_wkt, crs_name) = crs_of(ds);
    // GDAL reports a unit transform for files without georeference (ENVI
    // headers without `map info` give (0, 1, 0, 0, 0, -1)): not a georeference.
    let geo_transform = ds
        .geo_transform()
        .ok()
        .filter(|gt| !(is_unit_transform(gt) && crs_wkt.is_none()));
    let mut band_names = Vec::with_capacity(band_count);
    let mut scales = Vec::with_capacity(band_count);
    let mut dtype = String::new();
    let mut nodata = None;
    for b in 1..=band_count {
        if let Ok(band) = ds.rasterband(b) {
            if b == 1 {
                dtype = band.band_type().name();
                nodata = band.no_data_value();
            }
            band_names.push(band.description().unwrap_or_default());
            scales.push(band.scale());
        }
    }
    let (wavelengths_nm, wavelength_source) = read_wavelengths(ds, band_count);
    RasterHeader {
        path: path.to_path_buf(),
        driver: ds.driver().short_name(),
        grid: PixelGrid {
            width,
            height,
            geo_transform,
            crs_wkt,
            crs_name,
        },
        band_count,
        dtype,
        nodata,
        band_names,
        wavelengths_nm,
        wavelength_source,
        scales,
        subdatasets: subdatasets(ds),
    }
}

/// Reads the header of a raster without its samples.
pub fn read_header(path: &Path) -> Result<RasterHeader, ReadError> {
    let ds = open_dataset(path)?;
    Ok(header_of(path, &ds))
}

/// ENVI rasters: refuse data files of another size than their header says.
fn check_envi_size(path: &Path, ds: &Dataset, header: &RasterHeader) -> Result<(), ReadError> {
    if header.driver != "ENVI" {
        return Ok(());
    }
    let data = path.to_path_buf();
    let offset = ds
        .metadata_item("header_offset", "ENVI")
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let bytes = GdalDataType::from_name(&header.dtype)
        .map(|t| t.bytes() as u64)
        .unwrap_or(1);
    let expected = offset + (header.grid.len() as u64) * (header.band_count as u64) * bytes;
    let actual = std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0);
    // Shorter: GDAL would read zeros past the end; longer: the header's
    // size or data type is not the file's, and every band would be read
    // from the wrong place.
    if actual != expected {
        return Err(ReadError::EnviSizeMismatch {
            path: path.to_path_buf(),
            data,
            expected,
            actual,
        });
    }
    Ok(())
}

/// Reads the given 0-based bands (all when `bands` is None) as band-sequential
/// f32, with each band's nodata value and non-finite samples set to NaN.
pub fn read_bands(
    path: &Path,
    bands: Option<&[usize]>,
) -> Result<(RasterHeader, Vec<f32>), ReadError> {
    let ds = open_dataset(path)?;
    let header = header_of(path, &ds);
    if header.band_count == 0 {
        if !header.subdatasets.is_empty() {
            let list = header
                .subdatasets
                .iter()
                .map(|(n, d)| format!("  {n}  ({d})"))
                .collect::<Vec<_>>()
                .join("\n");
            return Err(ReadError::Subdatasets {
                path: path.to_path_buf(),
                count: header.subdatasets.len(),
                list,
            });
        }
        return Err(ReadError::format(path, "the raster has no bands"));
    }
    check_envi_size(path, &ds, &header)?;
    let all: Vec<usize> = (0..header.band_count).collect();
    let wanted = bands.unwrap_or(&all);
    if let Some(&bad) = wanted.iter().find(|&&b| b >= header.band_count) {
        return Err(ReadError::format(
            path,
            format!(
                "band {} requested, but the raster has {} bands",
                bad + 1,
                header.band_count
            ),
        ));
    }
    let (w, h) = (header.grid.width, header.grid.height);
    super::memory::check_whole_read(path, w, h, wanted.len(), 4)?;
    let whole = Window {
        row0: 0,
        col0: 0,
        height: h,
        width: w,
    };
    let data = read_window(path, &ds, wanted, whole)?;
    Ok((header, data))
}

/// Reads `window` of the given 0-based bands of an open raster as
/// band-sequential f32, invalid samples as NaN.
pub fn read_window(
    path: &Path,
    ds: &Dataset,
    bands: &[usize],
    window: Window,
) -> Result<Vec<f32>, ReadError> {
    let buffer = (window.width, window.height);
    read_bands_into(path, ds, bands, window, buffer)
}

/// Reads the given 0-based bands of the whole raster sampled down to
/// `out_width` x `out_height` (GDAL's nearest sampling, from its overviews
/// when the file has them), band-sequential f32, invalid samples as NaN:
/// a quick look at a raster too large to read whole at once.
pub fn read_decimated(
    path: &Path,
    bands: &[usize],
    out_width: usize,
    out_height: usize,
) -> Result<(RasterHeader, Vec<f32>), ReadError> {
    let (ds, header) = open_for_windows(path)?;
    let whole = Window {
        row0: 0,
        col0: 0,
        height: header.grid.height,
        width: header.grid.width,
    };
    let data = read_bands_into(path, &ds, bands, whole, (out_width, out_height))?;
    Ok((header, data))
}

/// `window` of each band resampled by GDAL into a `buffer`-sized plane
/// (the window's own size: as it is), band-sequential, invalid samples NaN.
///
/// One dataset-level `RasterIO` over the band list: GDAL reads each block
/// of a pixel-interleaved file once for all bands (a 224-band EnMAP mosaic
/// in one-row strips took 20-30 s band by band), and a band-sequential file
/// band by band as before.
fn read_bands_into(
    path: &Path,
    ds: &Dataset,
    bands: &[usize],
    window: Window,
    buffer: (usize, usize),
) -> Result<Vec<f32>, ReadError> {
    let n = buffer.0 * buffer.1;
    let mut data = super::memory::zeroed_samples(path, n * bands.len())?;
    if bands.is_empty() || n == 0 {
        return Ok(data);
    }
    let first = bands[0] + 1;
    let read_error = |message: String| ReadError::BandRead {
        path: path.to_path_buf(),
        band: first,
        message,
    };
    let int = |v: usize| i32::try_from(v).map_err(|e| read_error(format!("{v}: {e}")));
    let mut band_map = bands
        .iter()
        .map(|&b| int(b + 1))
        .collect::<Result<Vec<i32>, _>>()?;
    let (x, y, w, h) = (
        int(window.col0)?,
        int(window.row0)?,
        int(window.width)?,
        int(window.height)?,
    );
    let (bw, bh) = (int(buffer.0)?, int(buffer.1)?);
    let sample = std::mem::size_of::<f32>() as i64;
    let line = sample * buffer.0 as i64;
    let plane = line * buffer.1 as i64;
    // SAFETY: `data` holds bands.len() planes of buffer.0 x buffer.1 f32,
    // exactly what the spacings below address (pixel 4 bytes, line
    // buffer.0 pixels, band one plane); `band_map` holds bands.len() 1-based
    // band numbers and outlives the call (GDAL checks each number and the
    // window against the dataset and fails the call otherwise); GDAL reads
    // into the buffer and keeps neither pointer. A null extra argument is
    // GDAL's default (nearest sampling).
    let err = unsafe {
        gdal_sys::GDALDatasetRasterIOEx(
            ds.c_dataset(),
            gdal_sys::GDALRWFlag::GF_Read,
            x,
            y,
            w,
            h,
            data.as_mut_ptr().cast::<std::ffi::c_void>(),
            bw,
            bh,
            gdal_sys::GDALDataType::GDT_Float32,
            int(bands.len())?,
            band_map.as_mut_ptr(),
            sample,
            line,
            plane,
            std::ptr::null_mut(),
        )
    };
    if err != gdal_sys::CPLErr::CE_None {
        return Err(read_error(last_gdal_error()));
    }
    for (slot, &b) in bands.iter().enumerate() {
        let nodata = ds
            .rasterband(b + 1)
            .map_err(|e| read_error(e.to_string()))?
            .no_data_value();
        mask_invalid(&mut data[slot * n..(slot + 1) * n], nodata);
    }
    Ok(data)
}

/// Opens a raster for reads in windows: its dataset and header, refused
/// when it has no bands or (ENVI) less data than its header says.
pub fn open_for_windows(path: &Path) -> Result<(Dataset, RasterHeader), ReadError> {
    let ds = open_dataset(path)?;
    let header = header_of(path, &ds);
    if header.band_count == 0 {
        return Err(ReadError::format(path, "the raster has no bands"));
    }
    check_envi_size(path, &ds, &header)?;
    Ok((ds, header))
}

/// Sets non-finite samples and those equal to `nodata` to NaN.
pub fn mask_invalid(values: &mut [f32], nodata: Option<f64>) {
    match nodata {
        Some(nd) if nd.is_finite() => {
            let nd = nd as f32;
            for v in values.iter_mut() {
                if *v == nd || !v.is_finite() {
                    *v = f32::NAN;
                }
            }
        }
        _ => {
            for v in values.iter_mut() {
                if !v.is_finite() {
                    *v = f32::NAN;
                }
            }
        }
    }
}
