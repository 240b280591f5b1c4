//! Why this exists: a scene the size of a Sentinel-2 tile takes minutes to
//! read whole, and the user should see what is coming and what it will
//! cost before it is read. Before the whole read of a large scene the load
//! job reads a coarse look at it — the pRGB bands of an optical cube
//! (chosen from the header as the full rendering will choose them), or a
//! SAR image's first band in grey, every few pixels, through GDAL — and
//! says how much memory the whole read will take against what is
//! available. The map shows that look until the scene is in.

use std::path::{Path, PathBuf};

use crate::io::memory::{available_bytes, size_words};
use crate::io::raster::{RasterHeader, read_decimated, read_header};
use crate::products::prgb::{RgbRequest, choose_rgb_bands, render_prgb};
use crate::scene::{HsiCube, PixelGrid, Rgb8Image};

/// Scenes whose whole read in memory takes more than this get a preview.
pub const PREVIEW_ABOVE_BYTES: u128 = 256 << 20;

/// The preview's longer side, at most, in pixels.
pub const PREVIEW_SIDE: usize = 1024;

/// A coarse look at a scene being read.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenePreview {
    /// Every `step`-th pixel across and down of the scene.
    pub image: Rgb8Image,
    pub step: usize,
    /// The scene's size in pixels.
    pub width: usize,
    pub height: usize,
    /// What is read now and what the whole read takes.
    pub note: String,
}

/// A raster about to be read whole: its header (read once) and what the
/// whole read takes in memory, in words, with what is available.
pub struct WholeRead {
    path: PathBuf,
    header: RasterHeader,
    pub bytes: u128,
    pub note: String,
}

impl WholeRead {
    /// None for files GDAL does not read (.mat, .npy) or cannot open.
    pub fn of(path: &Path) -> Option<Self> {
        let header = read_header(path).ok()?;
        let (w, h, b) = (
            header.grid.width,
            header.grid.height,
            header.band_count.max(1),
        );
        let bytes = w as u128 * h as u128 * b as u128 * 4;
        let available = available_bytes()
            .map(|a| format!(" of {} available", size_words(u128::from(a))))
            .unwrap_or_default();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let note = format!(
            "reading {name} whole: {w} x {h} pixels x {b} bands, {} in memory{available}",
            size_words(bytes)
        );
        Some(Self {
            path: path.to_path_buf(),
            header,
            bytes,
            note,
        })
    }

    /// Every how many pixels the preview takes one, and its size; None when
    /// the whole read is small enough to need no preview.
    fn preview_size(&self) -> Option<(usize, usize, usize)> {
        if self.bytes <= PREVIEW_ABOVE_BYTES {
            return None;
        }
        let (w, h) = (self.header.grid.width, self.header.grid.height);
        let step = w.max(h).div_ceil(PREVIEW_SIDE).max(1);
        Some((step, w.div_ceil(step), h.div_ceil(step)))
    }

    /// The preview from three planes of the preview's size, each stretched
    /// 2-98 % into R, G and B.
    fn preview_from(
        &self,
        step: usize,
        size: (usize, usize),
        planes: Vec<f32>,
    ) -> Option<ScenePreview> {
        let cube = HsiCube {
            grid: PixelGrid::plain(size.0, size.1),
            bands: 3,
            data: planes,
            wavelengths_nm: None,
            band_names: vec![String::new(); 3],
        };
        let image = render_prgb(&cube, [0, 1, 2]).ok()?;
        Some(ScenePreview {
            image,
            step,
            width: self.header.grid.width,
            height: self.header.grid.height,
            note: self.note.clone(),
        })
    }
}

/// The preview of an optical cube, when its whole read is large; None when
/// it is small, or when the file cannot be read this way (the whole read
/// then says why).
pub fn preview_of_cube(read: &WholeRead) -> Option<ScenePreview> {
    let (step, pw, ph) = read.preview_size()?;
    // The bands the full rendering will choose, from the header alone (one
    // non-empty sample a band stands for the data).
    let header = &read.header;
    let header_cube = HsiCube {
        grid: PixelGrid::plain(1, 1),
        bands: header.band_count,
        data: vec![0.0; header.band_count],
        wavelengths_nm: header.wavelengths_nm.clone(),
        band_names: header.band_names.clone(),
    };
    let bands = choose_rgb_bands(&header_cube, RgbRequest::Auto).ok()?.bands;
    let (_, planes) = read_decimated(&read.path, &bands, pw, ph).ok()?;
    read.preview_from(step, (pw, ph), planes)
}

/// The preview of a SAR image, when its whole read is large: its first
/// band (VV or HH where the file puts it first) in grey, in decibels when
/// the samples are powers (positive), every few pixels.
pub fn preview_of_sar(read: &WholeRead) -> Option<ScenePreview> {
    let (step, pw, ph) = read.preview_size()?;
    let (_, mut band) = read_decimated(&read.path, &[0], pw, ph).ok()?;
    let positive = band.iter().filter(|v| **v > 0.0).count();
    if positive * 2 > band.len() {
        for v in &mut band {
            *v = if *v > 0.0 { 10.0 * v.log10() } else { f32::NAN };
        }
    }
    let planes = [band.as_slice(), band.as_slice(), band.as_slice()].concat();
    read.preview_from(step, (pw, ph), planes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Float32 GeoTIFF of (width, height, bands), every sample `value`,
    /// written sparse by gdal_create (false, said, without it).
    fn sparse_float_raster(path: &Path, size: (usize, usize, usize), value: &str) -> bool {
        let status = std::process::Command::new("gdal_create")
            .args(["-q", "-of", "GTiff", "-outsize"])
            .args([size.0.to_string(), size.1.to_string()])
            .args(["-bands", &size.2.to_string(), "-ot", "Float32"])
            .args(["-burn", value, "-co", "SPARSE_OK=YES"])
            .arg(path)
            .status();
        let Ok(status) = status else {
            eprintln!("gdal_create not found: test skipped");
            return false;
        };
        assert!(status.success());
        true
    }

    #[test]
    fn a_large_cube_is_previewed_from_its_rgb_bands_and_a_small_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        // 3000 x 2000 x 13 Float32 (312 MB as f32): above the threshold,
        // written sparse (GDAL's MEM-free creation leaves zeros) with
        // values in the bands the rendering picks.
        let path = dir.path().join("large.tif");
        if !sparse_float_raster(&path, (3000, 2000, 13), "100") {
            return;
        }
        let p = WholeRead::of(&path)
            .and_then(|r| preview_of_cube(&r))
            .expect("a preview of a large cube");
        assert_eq!((p.width, p.height, p.step), (3000, 2000, 3));
        assert_eq!((p.image.width, p.image.height), (1000, 667));
        assert!(
            p.note.contains("3000 x 2000 pixels x 13 bands"),
            "{}",
            p.note
        );
        assert!(p.note.contains("312.0 MB in memory"), "{}", p.note);
        // The demo's cube (512 x 512 x 13) is read whole at once.
        if let Ok((s2, _, _)) = crate::demo::demo_paths() {
            assert!(
                WholeRead::of(&s2)
                    .and_then(|r| preview_of_cube(&r))
                    .is_none()
            );
            assert!(WholeRead::of(&s2).is_some_and(|r| r.bytes == 512 * 512 * 13 * 4));
        }
        assert!(WholeRead::of(&dir.path().join("missing.tif")).is_none());
    }

    #[test]
    fn a_large_sar_image_is_previewed_in_grey() {
        let dir = tempfile::tempdir().unwrap();
        // 8200 x 8200 x 1 Float32 (269 MB as f32), powers of 0.05.
        let path = dir.path().join("large_vv.tif");
        if !sparse_float_raster(&path, (8200, 8200, 1), "0.05") {
            return;
        }
        let p = WholeRead::of(&path)
            .and_then(|r| preview_of_sar(&r))
            .expect("a preview of a large SAR image");
        assert_eq!((p.width, p.height, p.step), (8200, 8200, 9));
        assert_eq!((p.image.width, p.image.height), (912, 912));
        assert!(
            p.image
                .data
                .chunks_exact(3)
                .all(|c| c[0] == c[1] && c[1] == c[2]),
            "grey"
        );
        assert!(
            p.note.contains("8200 x 8200 pixels x 1 bands"),
            "{}",
            p.note
        );
    }
}
