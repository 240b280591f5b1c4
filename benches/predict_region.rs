//! A region-size scene through `predict`: a synthetic Sentinel-2-like cube of
//! SIZE x SIZE pixels (default 10980, one S2 tile) x 13 int16 bands (DEFLATE
//! GeoTIFF, UTM, 10 m), a model trained by `run --save-model` on a labelled
//! 1024 x 1024 crop of it (tiny random backbone, pRGB + PCA, stride 32),
//! then `predict --tile 1024` on the whole scene. Prints one JSON line with
//! the scene's size as read whole, predict's seconds and its peak resident
//! memory (from predict.json), and the class map's size on disk.
//!
//! Run: `cargo bench --bench predict_region --profile test` (the scene,
//! ~1-3 GB, goes to a temporary folder; `SIZE=4096` for a quicker run;
//! `KEEP=DIR` keeps the files there; `POLYGONS=0` runs `predict
//! --no-polygons`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use gdal::DriverManager;
use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::spatial_ref::SpatialRef;

const BANDS: usize = 13;
const CLASSES: usize = 4;

/// The land-cover class of pixel (row, col): blobs of a few hundred metres.
fn class_at(row: usize, col: usize) -> usize {
    let (y, x) = (row as f64 / 97.0, col as f64 / 131.0);
    let v = (y.sin() + (x * 0.7).cos() + ((x + y) * 0.31).sin()) * 0.5 + 1.5;
    (v.max(0.0) as usize).min(CLASSES - 1)
}

/// Reflectance (x 10000) of a class in a band, with texture.
fn sample(class: usize, band: usize, row: usize, col: usize) -> i16 {
    let base = [
        [300.0, 500.0, 400.0, 2500.0],
        [600.0, 900.0, 1200.0, 2000.0],
        [200.0, 250.0, 150.0, 100.0],
        [1500.0, 1700.0, 1900.0, 2300.0],
    ][class];
    let b = band as f64 / (BANDS - 1) as f64;
    let spectrum = base[0] + (base[3] - base[0]) * b + (base[1] - base[2]) * (b * 6.0).sin();
    let hash = (row.wrapping_mul(2_654_435_761) ^ col.wrapping_mul(40_503) ^ (band * 97)) % 211;
    (spectrum + hash as f64 - 105.0).round() as i16
}

/// Writes `size` x `size` x 13 int16 (and, with `labels`, a sparse label
/// raster of every 61st pixel) with the given origin offset in pixels.
fn write_scene(path: &Path, labels: Option<&Path>, size: usize, offset: usize) {
    let driver = DriverManager::get_driver_by_name("GTiff").unwrap();
    let options = RasterCreationOptions::from_iter([
        "TILED=YES",
        "COMPRESS=DEFLATE",
        "PREDICTOR=2",
        "BIGTIFF=YES",
    ]);
    let mut ds = driver
        .create_with_band_type_with_options::<i16, _>(path, size, size, BANDS, &options)
        .unwrap();
    let gt = [
        400_000.0 + offset as f64 * 10.0,
        10.0,
        0.0,
        4_500_000.0 - offset as f64 * 10.0,
        0.0,
        -10.0,
    ];
    ds.set_geo_transform(&gt).unwrap();
    ds.set_spatial_ref(&SpatialRef::from_epsg(32633).unwrap())
        .unwrap();
    let mut label_ds = labels.map(|p| {
        let mut l = driver
            .create_with_band_type_with_options::<u8, _>(p, size, size, 1, &options)
            .unwrap();
        l.set_geo_transform(&gt).unwrap();
        l.set_spatial_ref(&SpatialRef::from_epsg(32633).unwrap())
            .unwrap();
        l
    });
    let strip = 256;
    for row0 in (0..size).step_by(strip) {
        let rows = strip.min(size - row0);
        let classes: Vec<usize> = (0..rows * size)
            .map(|i| class_at(offset + row0 + i / size, offset + i % size))
            .collect();
        for b in 0..BANDS {
            let values: Vec<i16> = classes
                .iter()
                .enumerate()
                .map(|(i, &c)| sample(c, b, offset + row0 + i / size, offset + i % size))
                .collect();
            ds.rasterband(b + 1)
                .unwrap()
                .write(
                    (0, row0 as isize),
                    (size, rows),
                    &mut Buffer::new((size, rows), values),
                )
                .unwrap();
        }
        if let Some(l) = &mut label_ds {
            let values: Vec<u8> = classes
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    if (row0 * size + i).is_multiple_of(61) {
                        c as u8 + 1
                    } else {
                        0
                    }
                })
                .collect();
            l.rasterband(1)
                .unwrap()
                .write(
                    (0, row0 as isize),
                    (size, rows),
                    &mut Buffer::new((size, rows), values),
                )
                .unwrap();
        }
    }
}

fn main() {
    let size: usize = std::env::var("SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_980);
    let temp = tempfile::tempdir().unwrap();
    let dir = std::env::var("KEEP")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    let bin = env!("CARGO_BIN_EXE_unidiff-studio");

    let t = Instant::now();
    let crop = dir.join("crop.tif");
    let labels = dir.join("crop_labels.tif");
    write_scene(&crop, Some(&labels), 1024, 0);
    let scene = dir.join("scene.tif");
    write_scene(&scene, None, size, 0);
    let seconds_write = t.elapsed().as_secs_f64();

    let model = dir.join("region.udmodel");
    let run = Command::new(bin)
        .args([
            "run",
            "--backbone",
            "tiny-random",
            "--modalities",
            "prgb,pca",
        ])
        .args([
            "--stride",
            "32",
            "--no-baseline",
            "--no-held-out-check",
            "--hsi",
        ])
        .arg(&crop)
        .arg("--train-labels")
        .arg(&labels)
        .arg("--save-model")
        .arg(&model)
        .arg("--out")
        .arg(dir.join("train"))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let out = dir.join("predict");
    // POLYGONS=0: no classmap.gpkg (GDAL's polygonize holds every polygon
    // of the map in memory; see `predict --no-polygons`).
    let polygons = std::env::var("POLYGONS").map_or(true, |v| v != "0");
    let t = Instant::now();
    let predict = Command::new(bin)
        .args(["predict", "--tile", "1024"])
        .args((!polygons).then_some("--no-polygons"))
        .arg("--model")
        .arg(&model)
        .arg("--hsi")
        .arg(&scene)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let seconds_predict = t.elapsed().as_secs_f64();
    assert!(
        predict.status.success(),
        "{}",
        String::from_utf8_lossy(&predict.stderr)
    );
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("predict.json")).unwrap()).unwrap();
    let map_bytes = std::fs::metadata(out.join("classmap.tif")).unwrap().len();
    println!(
        "{}",
        serde_json::json!({
            "size": size,
            "bands": BANDS,
            "scene_gb_as_f32": (size * size * BANDS * 4) as f64 / 1e9,
            "seconds_writing_the_scene": seconds_write,
            "seconds_predict": seconds_predict,
            "seconds_classifying": record["seconds"]["predict"],
            "peak_rss_mib": record["peak_rss_mib"],
            "classmap_mb": map_bytes as f64 / 1e6,
            "tiles": record["tiles_in_scene"],
            "polygons": polygons,
            "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        })
    );
}
