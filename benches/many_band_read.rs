//! Benchmark of opening many-band cubes stored pixel-interleaved in one-row
//! strips (as EnMAP mosaics and many exports are): a 224-band 200 x 330 and
//! a 198-band 100 x 100 DEFLATE GeoTIFF of smooth synthetic spectra, written
//! here by GDAL, read whole by the app's reader (`open_hsi`: one
//! dataset-level RasterIO over the band list) and, for comparison, band by
//! band as the reader did before (one RasterIO per band, the app's 128 MB
//! block cache). Both reads are checked to give the same samples.
//!
//! Run: `cargo bench --bench many_band_read -- [OUT_DIR]` (default
//! /tmp/unidiff_bench); prints one line per file and way of reading.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

use std::path::{Path, PathBuf};
use std::time::Instant;

use gdal::raster::{Buffer, RasterCreationOptions};
use unidiff_studio::io::open_hsi;
use unidiff_studio::io::raster::init_gdal;

fn write_cube(path: &Path, width: usize, height: usize, bands: usize) {
    let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
    let options =
        RasterCreationOptions::from_iter(["INTERLEAVE=PIXEL", "BLOCKYSIZE=1", "COMPRESS=DEFLATE"]);
    let ds = driver
        .create_with_band_type_with_options::<f32, _>(path, width, height, bands, &options)
        .unwrap();
    for b in 0..bands {
        let data: Vec<f32> = (0..width * height)
            .map(|i| {
                let (r, c) = ((i / width) as f32, (i % width) as f32);
                1000.0 + 300.0 * ((b as f32) * 0.03 + r * 0.05).sin() + 200.0 * (c * 0.07).cos()
            })
            .collect();
        let mut buffer = Buffer::new((width, height), data);
        ds.rasterband(b + 1)
            .unwrap()
            .write((0, 0), (width, height), &mut buffer)
            .unwrap();
    }
}

/// The reader before: each band read whole on its own.
fn read_band_by_band(path: &Path) -> Vec<f32> {
    let ds = gdal::Dataset::open(path).unwrap();
    let (w, h) = ds.raster_size();
    let n = w * h;
    let mut data = vec![0f32; n * ds.raster_count()];
    for b in 0..ds.raster_count() {
        ds.rasterband(b + 1)
            .unwrap()
            .read_into_slice::<f32>((0, 0), (w, h), (w, h), &mut data[b * n..(b + 1) * n], None)
            .unwrap();
    }
    data
}

fn main() {
    let out = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or_else(|| PathBuf::from("/tmp/unidiff_bench"), PathBuf::from);
    std::fs::create_dir_all(&out).unwrap();
    init_gdal();
    for (width, height, bands) in [(200, 330, 224), (100, 100, 198)] {
        let path = out.join(format!("pixel_interleaved_{bands}.tif"));
        write_cube(&path, width, height, bands);
        let t = Instant::now();
        let cube = open_hsi(&path).unwrap();
        let app = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let before = read_band_by_band(&path);
        let by_band = t.elapsed().as_secs_f64();
        assert!(
            cube.data
                .iter()
                .zip(&before)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "the same samples"
        );
        println!(
            "{width} x {height} x {bands}, pixel-interleaved, one-row strips: open_hsi {app:.3} s, band by band {by_band:.2} s"
        );
    }
}
