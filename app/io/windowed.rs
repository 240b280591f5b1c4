//! A scene read one window at a time through GDAL, for mapping scenes larger
//! than memory (`predict`): the headers are read once (size, bands,
//! wavelengths, the SAR's polarisations and scale), each window's samples
//! when it is asked for, so what is held is bounded by the window. The
//! samples of a window are those of a whole read, value for value.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gdal::Dataset;

use super::error::ReadError;
use super::open::{SarScaleChoice, decide_scale_counted, polarisation_bands, to_linear};
use super::raster::{RasterHeader, open_for_windows, read_window};
use super::sar_matrix::{MatrixBands, matrix_bands, matrix_from_planes};
use crate::scene::{HsiCube, PixelGrid, PowerScale, SarImage, SarKind, Scene, Window};

/// Rows per block of the SAR's scale pass.
const ROWS_PER_BLOCK: usize = 256;

/// Whether `path` can be read in windows: a GDAL raster (not a `.mat` or
/// `.npy` array, not a PolSARpro folder, which are read whole).
pub fn reads_in_windows(path: &Path) -> bool {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    !path.is_dir() && ext != "mat" && ext != "npy"
}

struct WindowedHsi {
    path: PathBuf,
    ds: Dataset,
    header: RasterHeader,
}

struct WindowedSar {
    path: PathBuf,
    ds: Dataset,
    layout: SarLayout,
    reason: String,
}

/// How a SAR raster's bands are read: two polarisations in a scale, or a
/// polarimetric matrix (linear) named in its band descriptions.
enum SarLayout {
    /// Co- and cross-pol bands, 0-based.
    Polarisations {
        bands: [usize; 2],
        scale: PowerScale,
    },
    Matrix(MatrixBands),
}

/// The HSI and SAR of one scene, read in windows.
pub struct WindowedScene {
    grid: PixelGrid,
    hsi: Option<WindowedHsi>,
    sar: Option<WindowedSar>,
}

impl WindowedScene {
    /// Reads the headers; the SAR's scale (linear or dB) is decided as a
    /// whole read decides it, with a pass over its two bands in blocks
    /// when no name or metadata says dB.
    pub fn open(hsi: Option<&Path>, sar: Option<&Path>) -> Result<Self, ReadError> {
        let hsi = hsi
            .map(|path| {
                let (ds, header) = open_for_windows(path)?;
                Ok::<_, ReadError>(WindowedHsi {
                    path: path.to_path_buf(),
                    ds,
                    header,
                })
            })
            .transpose()?;
        let sar = sar.map(open_sar_windows).transpose()?;
        let sar_grid = sar.as_ref().map(|s| s.1.clone());
        let sar = sar.map(|s| s.0);
        let grid = match (&hsi, &sar_grid) {
            (Some(h), Some(s)) => {
                h.header.grid.check_same("HSI", s, "SAR")?;
                if h.header.grid.geo_transform.is_some() {
                    h.header.grid.clone()
                } else {
                    s.clone()
                }
            }
            (Some(h), None) => h.header.grid.clone(),
            (None, Some(s)) => s.clone(),
            (None, None) => {
                return Err(ReadError::Format {
                    path: PathBuf::new(),
                    message: "give an HSI cube and/or a SAR image".to_string(),
                });
            }
        };
        Ok(Self { grid, hsi, sar })
    }

    /// The grid of the whole scene.
    pub fn grid(&self) -> &PixelGrid {
        &self.grid
    }

    /// Bytes one pixel of the scene takes as read (f32 cube, f64 SAR).
    pub fn bytes_per_pixel(&self) -> usize {
        self.hsi.as_ref().map_or(0, |h| 4 * h.header.band_count)
            + self.sar.as_ref().map_or(0, |s| match &s.layout {
                SarLayout::Polarisations { .. } => 16,
                SarLayout::Matrix(m) => 8 * m.bands().len(),
            })
    }

    /// The scene's layers inside `window` (on the window's grid).
    pub fn read(&self, window: Window) -> Result<Scene, ReadError> {
        let grid = self.grid.window(window);
        let hsi = self
            .hsi
            .as_ref()
            .map(|h| {
                let bands: Vec<usize> = (0..h.header.band_count).collect();
                let data = read_window(&h.path, &h.ds, &bands, window)?;
                Ok::<_, ReadError>(Arc::new(HsiCube {
                    grid: grid.clone(),
                    bands: h.header.band_count,
                    data,
                    wavelengths_nm: h.header.wavelengths_nm.clone(),
                    band_names: h.header.band_names.clone(),
                }))
            })
            .transpose()?;
        let sar = self
            .sar
            .as_ref()
            .map(|s| {
                let n = window.height * window.width;
                let (kind, source_scale, off_diagonal) = match &s.layout {
                    SarLayout::Polarisations { bands, scale } => {
                        let data = read_window(&s.path, &s.ds, bands, window)?;
                        let kind = SarKind::DualPol {
                            c11: to_linear(&data[..n], *scale),
                            c22: to_linear(&data[n..], *scale),
                        };
                        (kind, *scale, Vec::new())
                    }
                    SarLayout::Matrix(layout) => {
                        let data = read_window(&s.path, &s.ds, &layout.bands(), window)?;
                        let (kind, off) = matrix_from_planes(&s.path, layout, &data, n)?;
                        (kind, PowerScale::Linear, off)
                    }
                };
                Ok::<_, ReadError>(Arc::new(SarImage {
                    grid: grid.clone(),
                    kind,
                    source_scale,
                    scale_reason: s.reason.clone(),
                    off_diagonal,
                }))
            })
            .transpose()?;
        Ok(Scene {
            hsi,
            sar,
            train_labels: None,
            test_labels: None,
        })
    }
}

/// The SAR raster's polarisation bands and scale, and its grid.
fn open_sar_windows(path: &Path) -> Result<(WindowedSar, PixelGrid), ReadError> {
    let (ds, header) = open_for_windows(path)?;
    if let Some(layout) = matrix_bands(&header.band_names) {
        let reason = format!("linear matrix elements; {}", layout.describe());
        return Ok((
            WindowedSar {
                path: path.to_path_buf(),
                ds,
                layout: SarLayout::Matrix(layout),
                reason,
            },
            header.grid,
        ));
    }
    let (co, cross, note) = polarisation_bands(path, &header)?;
    let mut hints = vec![
        path.file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default(),
    ];
    hints.extend(header.band_names.iter().cloned());
    let mut negatives = 0;
    let (w, h) = (header.grid.width, header.grid.height);
    for row0 in (0..h).step_by(ROWS_PER_BLOCK) {
        let block = Window {
            row0,
            col0: 0,
            height: ROWS_PER_BLOCK.min(h - row0),
            width: w,
        };
        let values = read_window(path, &ds, &[co, cross], block)?;
        negatives += values.iter().filter(|v| **v < 0.0).count();
    }
    let (scale, reason) = decide_scale_counted(SarScaleChoice::Auto, &hints, negatives);
    Ok((
        WindowedSar {
            path: path.to_path_buf(),
            ds,
            layout: SarLayout::Polarisations {
                bands: [co, cross],
                scale,
            },
            reason: format!("{reason}; {note}"),
        },
        header.grid,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{SarScaleChoice, open_hsi, open_sar};

    /// A window read equals the same window of a whole read, for the
    /// bundled demo's Sentinel-2 cube and Sentinel-1 image.
    #[test]
    fn a_window_holds_the_samples_of_a_whole_read() {
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo");
        let hsi_path = demo.join("Spain_7370579_S2Hand.tif");
        let sar_path = demo.join("Spain_7370579_S1Hand.tif");
        let scene = WindowedScene::open(Some(&hsi_path), Some(&sar_path)).unwrap();
        let w = Window {
            row0: 100,
            col0: 37,
            height: 61,
            width: 90,
        };
        let part = scene.read(w).unwrap();
        let hsi = open_hsi(&hsi_path).unwrap().window(w);
        let got = &part.hsi.as_ref().unwrap().data;
        assert_eq!(got.len(), hsi.data.len());
        assert!(
            got.iter()
                .zip(&hsi.data)
                .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()))
        );
        let sar = open_sar(&sar_path, SarScaleChoice::Auto).unwrap();
        let part_sar = part.sar.as_ref().unwrap();
        assert_eq!(part_sar.source_scale, sar.source_scale);
        let (SarKind::DualPol { c11: a, .. }, SarKind::DualPol { c11: b, .. }) =
            (&part_sar.kind, &sar.window(w).kind)
        else {
            panic!("dual-pol expected");
        };
        assert!(
            a.iter()
                .zip(b)
                .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
        );
        assert_eq!(part.grid().unwrap(), &scene.grid().window(w));
    }
}
