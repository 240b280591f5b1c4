//! The command line end to end: `info` and `render` (and `--demo`) run as a
//! user runs them, their files read back with GDAL.

mod common;

use std::process::Command;

use common::{demo, shared_data};
use gdal::Metadata;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_unidiff-studio"))
}

#[test]
fn info_describes_an_enmap_tile() {
    let out = bin()
        .args(["info"])
        .arg(shared_data(
            "enmap_potsdam/images/enmap_potsdam_tile_64_0.tif",
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("size: 32 rows x 32 cols"), "{text}");
    assert!(text.contains("bands: 224, type Float32"), "{text}");
    assert!(text.contains("CRS: EPSG:32633"), "{text}");
    assert!(text.contains("nodata: -32768"), "{text}");
    assert!(text.contains("wavelengths: 224 bands, 418.24 .."), "{text}");
}

#[test]
fn info_counts_label_classes_in_a_mat_file() {
    let out = bin()
        .args(["info", "--json"])
        .arg(shared_data("benchmark_labels/TrainImage.mat"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["arrays"][0]["name"], "TrainImage");
    assert_eq!(v["arrays"][0]["classes"]["labelled_pixels"], 761);
}

#[test]
fn info_on_a_missing_file_fails_with_a_message() {
    let out = bin().args(["info", "/no/such/file.tif"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/file.tif: no such file"), "{err}");
}

#[test]
fn render_writes_images_geotiffs_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["render", "--hsi"])
        .arg(demo("Spain_7370579_S2Hand.tif"))
        .arg("--sar")
        .arg(demo("Spain_7370579_S1Hand.tif"))
        .args(["--preset", "sentinel2", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("render.json")).unwrap()).unwrap();
    assert_eq!(report["prgb"]["bands"], serde_json::json!([3, 2, 1]));
    let evr = report["pca"]["explained_variance_ratio"]
        .as_array()
        .unwrap();
    assert!((evr[0].as_f64().unwrap() - 0.8538794956200668).abs() < 1e-9);
    assert_eq!(report["prgb"]["files"]["stretch"][0]["p2"], 571.0);
    assert_eq!(report["inputs"]["sar_source_scale"], "db");
    for stem in ["prgb", "pca", "pauli"] {
        let png = image::open(dir.path().join(format!("{stem}.png"))).unwrap();
        assert_eq!((png.width(), png.height()), (512, 512), "{stem}");
        let ds = gdal::Dataset::open(dir.path().join(format!("{stem}.tif"))).unwrap();
        assert_eq!(ds.raster_count(), 3);
        assert_eq!(
            ds.spatial_ref().unwrap().auth_code().unwrap(),
            4326,
            "{stem}"
        );
        let gt = ds.geo_transform().unwrap();
        let src = gdal::Dataset::open(demo("Spain_7370579_S2Hand.tif"))
            .unwrap()
            .geo_transform()
            .unwrap();
        assert_eq!(gt, src, "{stem}");
        // The GeoTIFF holds the same pixels as the PNG.
        let band = ds.rasterband(1).unwrap().read_band_as::<u8>().unwrap();
        let rgb = png.to_rgb8();
        assert_eq!(band.data()[1000], rgb.as_raw()[3 * 1000], "{stem}");
        assert_eq!(
            ds.rasterband(1).unwrap().description().unwrap_or_default(),
            ""
        );
    }
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn render_refuses_mismatched_grids() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["render", "--hsi"])
        .arg(shared_data(
            "enmap_potsdam/images/enmap_potsdam_tile_64_0.tif",
        ))
        .arg("--sar")
        .arg(demo("Spain_7370579_S1Hand.tif"))
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("grids of HSI and SAR differ"), "{err}");
    assert!(!dir.path().join("render.json").exists());
}

#[test]
fn demo_runs_headless() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .arg("--demo")
        .arg("--demo-out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("pauli.png").exists());
    assert!(dir.path().join("render.json").exists());
}
