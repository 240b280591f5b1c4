//! The command line end to end: `info` and `render` (and `--demo`) run as a
//! user runs them, their files read back with GDAL.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

mod common;

use std::process::Command;

use common::demo;
use gdal::Metadata;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_unidiff-studio"))
}

#[test]
fn info_describes_an_enmap_tile() {
    let out = bin()
        .args(["info"])
        .arg(shared_or_skip!(
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
        .arg(shared_or_skip!("benchmark_labels/TrainImage.mat"))
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
    // The scene is integer-valued: the report says the scatter was exact.
    if unidiff_studio::products::integer_scatter::available() {
        assert_eq!(report["pca"]["scatter"], "exact_integer");
    }
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
        .arg(shared_or_skip!(
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
        .args(["--demo", "--headless", "--demo-out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let renderings = dir.path().join("renderings");
    assert!(renderings.join("pauli.png").exists());
    assert!(renderings.join("render.json").exists());
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run/run.json")).unwrap()).unwrap();
    assert_eq!(run["classes"], serde_json::json!(["dry", "water"]));
    assert!(dir.path().join("run/baseline_rf/classmap.tif").exists());
}

#[test]
fn model_inspect_counts_the_imagenet_backbone() {
    let out = bin()
        .args(["model", "inspect", "--config", "imagenet64"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("configuration tensors: 541"), "{text}");
    assert!(
        text.contains("15,237,504 of 295,904,454 (5.149 %)"),
        "{text}"
    );
    let out = bin()
        .args(["model", "inspect"])
        .arg(common::fixture("adm_tiny/model.pt"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("tensors: 307"), "{text}");
    assert!(text.contains("fits the configuration: yes"), "{text}");
    assert!(text.contains("157,504 of 2,008,102"), "{text}");
}

#[test]
fn model_forward_writes_the_reference_activations() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("acts.safetensors");
    let out = bin()
        .args(["model", "forward", "--config", "tiny", "--checkpoint"])
        .arg(common::fixture("adm_tiny/model.pt"))
        .arg("--input")
        .arg(common::fixture("adm_tiny/io.safetensors"))
        .arg("--output")
        .arg(&out_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = common::Tensors::open_path(&out_path);
    let want = common::Tensors::open("adm_tiny/io.safetensors");
    for name in ["out", "input_blocks.8", "middle_block", "output_blocks.8"] {
        let (gs, g) = got.f32(name);
        let (ws, w) = want.f32(name);
        assert_eq!(gs, ws, "{name}");
        assert!(common::max_abs_diff(&g, &w) < 1e-4, "{name}");
    }
}

#[test]
fn a_thread_count_of_zero_or_more_than_the_machine_has_is_refused() {
    let cores = std::thread::available_parallelism().unwrap().get();
    for (n, why) in [
        ("0".to_string(), "at least one thread".to_string()),
        (
            (cores + 1).to_string(),
            format!("this machine has {cores} cores"),
        ),
    ] {
        // Before the subcommand and after it: the option is global.
        for args in [
            vec!["--threads", &n, "info", "/no/such/file.tif"],
            vec!["info", "--threads", &n, "/no/such/file.tif"],
        ] {
            let out = bin().args(&args).output().unwrap();
            assert!(!out.status.success(), "{args:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains(&format!("--threads {n}: {why}")),
                "{args:?}: {err}"
            );
        }
    }
    // A valid count before the subcommand runs that subcommand (here its
    // error about the missing file), not the app.
    let out = bin()
        .args(["--threads", "1", "info", "/no/such/file.tif"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/file.tif: no such file"), "{err}");
    // The app's own arguments beside a subcommand are refused.
    let out = bin().args(["--demo", "info", "x.tif"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without a subcommand"), "{err}");
}

#[test]
fn adapt_runs_on_the_demo_scene_and_writes_an_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let adapter = dir.path().join("adapter.safetensors");
    let out = bin()
        .args(["adapt", "--hsi"])
        .arg(demo("Spain_7370579_S2Hand.tif"))
        .arg("--sar")
        .arg(demo("Spain_7370579_S1Hand.tif"))
        .args([
            "--backbone",
            "tiny-random",
            "--steps",
            "2",
            "--batch",
            "2",
            "--threads",
            "1",
            "--out",
        ])
        .arg(&adapter)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("steps computed by CPU kernels"), "{err}");
    assert!(err.contains("training 157,504 (7.843 %)"), "{err}");
    assert!(err.contains("768 patches of 3 modalities"), "{err}");
    let meta = unidiff_studio::model::adapter::read_adapter_metadata(&adapter).unwrap();
    assert_eq!(meta.steps, 2);
    assert_eq!(meta.loss_curve.len(), 2);
    assert_eq!(meta.modalities, vec!["prgb", "pca", "sar"]);
    assert!(!meta.cancelled);
}

#[test]
fn adapt_refuses_a_wrong_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["adapt", "--sar"])
        .arg(demo("Spain_7370579_S1Hand.tif"))
        .arg("--checkpoint")
        .arg(common::fixture("adm_tiny/model.pt"))
        .args(["--config", "imagenet64", "--steps", "1", "--out"])
        .arg(dir.path().join("a.safetensors"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not fit the U-Net configuration"),
        "{err}"
    );
}

#[test]
fn info_lists_a_matlab_v73_variable() {
    let out = bin()
        .args(["info", "--json"])
        .arg(common::fixture("mat73/labels73.mat"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["arrays"][0]["name"], "TrainImage");
    assert_eq!(v["arrays"][0]["rows"], 6);
    assert_eq!(v["arrays"][0]["cols"], 5);
    // (r * 5 + c) % 4 over 6 x 5: 30 values, classes 1..3 labelled = 30 - 8 zeros.
    assert_eq!(v["arrays"][0]["classes"]["labelled_pixels"], 22);
}

/// A `w` x `h` grid in EPSG:`epsg` with geotransform `gt`.
fn georeferenced(w: usize, h: usize, epsg: u32, gt: [f64; 6]) -> unidiff_studio::scene::PixelGrid {
    unidiff_studio::scene::PixelGrid {
        width: w,
        height: h,
        geo_transform: Some(gt),
        crs_wkt: Some(
            gdal::spatial_ref::SpatialRef::from_epsg(epsg)
                .unwrap()
                .to_wkt()
                .unwrap(),
        ),
        crs_name: None,
    }
}

/// `stats`: areas in m² / ha of a 10 m UTM map, and the area-adjusted
/// accuracy of its reference pixels (as the library computes it).
#[test]
fn stats_writes_areas_and_the_area_adjusted_accuracy() {
    use unidiff_studio::scene::named_classes;
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (20usize, 10usize);
    let grid = georeferenced(w, h, 32633, [500000.0, 10.0, 0.0, 4_000_000.0, 0.0, -10.0]);
    // Left 15 columns class 1 (150 px), the rest class 2 (50 px).
    let map: Vec<u8> = (0..w * h).map(|i| if i % w < 15 { 1 } else { 2 }).collect();
    // Reference on every 3rd pixel: right except every 7th point.
    let reference: Vec<u8> = (0..w * h)
        .map(|i| match (i % 3, i % 7) {
            (0, 0) => 3 - map[i],
            (0, _) => map[i],
            _ => 0,
        })
        .collect();
    let classes = named_classes(2, &["water".into(), "land".into()]);
    let map_path = dir.path().join("map.tif");
    let ref_path = dir.path().join("reference.tif");
    unidiff_studio::io::classmap::write_class_map(&map_path, &map, &grid, &classes).unwrap();
    unidiff_studio::io::classmap::write_class_map(&ref_path, &reference, &grid, &classes).unwrap();
    let out_dir = dir.path().join("stats");
    let out = bin()
        .args(["stats", "--classmap"])
        .arg(&map_path)
        .arg("--reference")
        .arg(&ref_path)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(out_dir.join("areas.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "value,name,pixels,m2,ha,km2,share");
    assert!(
        lines[1].starts_with("1,water,150,15000,1.5,0.015,0.75"),
        "{csv}"
    );
    assert!(
        lines[2].starts_with("2,land,50,5000,0.5,0.005,0.25"),
        "{csv}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("accuracy.json")).unwrap()).unwrap();
    assert_eq!(json["area_unit"], "ha");
    let sample: Vec<(u8, u8)> = map
        .iter()
        .zip(&reference)
        .filter(|(_, r)| **r != 0)
        .map(|(m, r)| (*m, *r))
        .collect();
    let want = unidiff_studio::metrics::area_accuracy::area_adjusted_accuracy(
        &[(1, 1.5), (2, 0.5)],
        &sample,
    );
    let got = &json["estimates"];
    assert_eq!(got["sample_size"].as_u64().unwrap() as usize, sample.len());
    let close = |a: &serde_json::Value, b: f64| (a.as_f64().unwrap() - b).abs() < 1e-12;
    assert!(close(&got["overall"]["value"], want.overall.value), "{got}");
    assert!(close(&got["area"][0]["value"], want.area[0].value), "{got}");
    assert!(want.overall.value > 0.7 && want.overall.value < 1.0);
}

/// `vectorize`: GDAL's polygons of a map, with class names and areas equal
/// to `stats`'s: planar in UTM, on the ellipsoid in EPSG:4326 (an island of
/// class 2 inside class 1, plus unmapped pixels that get no polygon).
#[test]
fn vectorize_writes_polygons_with_names_and_true_areas() {
    use unidiff_studio::metrics::areas::class_areas;
    use unidiff_studio::scene::named_classes;
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (30usize, 20usize);
    let map: Vec<u8> = (0..w * h)
        .map(|i| {
            let (r, c) = (i / w, i % w);
            if c >= 27 {
                0
            } else if (5..12).contains(&r) && (8..20).contains(&c) {
                2
            } else {
                1
            }
        })
        .collect();
    let classes = named_classes(2, &["dry".into(), "water".into()]);
    for (epsg, gt) in [
        (32630, [500000.0, 10.0, 0.0, 4_400_000.0, 0.0, -10.0]),
        (4326, [-3.5, 0.0001, 0.0, 40.2, 0.0, -0.0001]),
    ] {
        let grid = georeferenced(w, h, epsg, gt);
        let map_path = dir.path().join(format!("map{epsg}.tif"));
        unidiff_studio::io::classmap::write_class_map(&map_path, &map, &grid, &classes).unwrap();
        let gpkg = dir.path().join(format!("map{epsg}.gpkg"));
        let out = bin()
            .args(["vectorize", "--classmap"])
            .arg(&map_path)
            .arg("--out")
            .arg(&gpkg)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{log}");
        let ds = gdal::Dataset::open(&gpkg).unwrap();
        let mut layer = ds.layer_by_name("landcover").unwrap();
        use gdal::vector::LayerAccess;
        let mut got: Vec<(i32, String, f64)> = layer
            .features()
            .map(|f| {
                (
                    f.field_as_integer(0).unwrap().unwrap(),
                    f.field_as_string(1).unwrap().unwrap(),
                    f.field_as_double(2).unwrap().unwrap(),
                )
            })
            .collect();
        got.sort_by_key(|g| g.0);
        // One ring of dry around one island of water; unmapped: nothing.
        let kinds: Vec<(i32, &str)> = got.iter().map(|(c, n, _)| (*c, n.as_str())).collect();
        assert_eq!(kinds, [(1, "dry"), (2, "water")], "{got:?}");
        let want = class_areas(&map, &grid, &classes);
        for ((_, _, ha), c) in got.iter().zip(&want.classes) {
            let expected = c.ha.unwrap();
            assert!(
                (ha - expected).abs() < 1e-6 * expected,
                "EPSG:{epsg} class {}: polygons {ha} ha, pixels {expected} ha",
                c.value
            );
        }
        // ogrinfo (what QGIS reads through) opens it and sees the CRS.
        let info = Command::new("ogrinfo")
            .args(["-so", "-al"])
            .arg(&gpkg)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&info.stdout);
        assert!(text.contains("Feature Count: 2"), "{text}");
        assert!(text.contains(&format!("\"EPSG\",{epsg}")), "{text}");
        assert!(
            !dir.path().read_dir().unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp"))
        );
    }
}

/// `vectorize --dissolve`: beside the polygons, one multipolygon per class
/// holding all its regions, with their summed area and their count.
#[test]
fn vectorize_dissolves_each_class_into_one_multipolygon() {
    use gdal::vector::LayerAccess;
    use unidiff_studio::scene::named_classes;
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (24usize, 12usize);
    // Dry everywhere but two separate ponds of water.
    let map: Vec<u8> = (0..w * h)
        .map(|i| match (i / w, i % w) {
            (2..=4, 2..=5) | (7..=9, 15..=20) => 2,
            _ => 1,
        })
        .collect();
    let grid = georeferenced(w, h, 32630, [500000.0, 10.0, 0.0, 4_400_000.0, 0.0, -10.0]);
    let classes = named_classes(2, &["dry".into(), "water".into()]);
    let map_path = dir.path().join("map.tif");
    unidiff_studio::io::classmap::write_class_map(&map_path, &map, &grid, &classes).unwrap();
    let gpkg = dir.path().join("map.gpkg");
    let out = bin()
        .args(["vectorize", "--dissolve", "--classmap"])
        .arg(&map_path)
        .arg("--out")
        .arg(&gpkg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ds = gdal::Dataset::open(&gpkg).unwrap();
    assert_eq!(ds.layer_by_name("landcover").unwrap().feature_count(), 3);
    let mut dissolved = ds.layer_by_name("landcover_dissolved").unwrap();
    let rows: Vec<(i32, String, f64, i32, String)> = dissolved
        .features()
        .map(|f| {
            (
                f.field_as_integer(0).unwrap().unwrap(),
                f.field_as_string(1).unwrap().unwrap(),
                f.field_as_double(2).unwrap().unwrap(),
                f.field_as_integer(3).unwrap().unwrap(),
                f.geometry().unwrap().geometry_name(),
            )
        })
        .collect();
    let water_px = map.iter().filter(|&&v| v == 2).count() as f64;
    let dry_px = (w * h) as f64 - water_px;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[0].0, rows[0].1.as_str(), rows[0].3), (1, "dry", 1));
    assert_eq!((rows[1].0, rows[1].1.as_str(), rows[1].3), (2, "water", 2));
    assert!(rows.iter().all(|r| r.4 == "MULTIPOLYGON"), "{rows:?}");
    // 10 m pixels: 0.01 ha each.
    assert!((rows[0].2 - dry_px * 0.01).abs() < 1e-9, "{rows:?}");
    assert!((rows[1].2 - water_px * 0.01).abs() < 1e-9, "{rows:?}");
}

/// `postprocess`: GDAL's sieve merges a 3-pixel speck into its surroundings
/// and keeps a 12-pixel field (unit 5 pixels, or the same in ha); unmapped
/// pixels stay unmapped; bad settings are refused with a reason.
#[test]
fn postprocess_sieves_to_a_minimum_mapping_unit() {
    use unidiff_studio::scene::named_classes;
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (20usize, 12usize);
    let grid = georeferenced(w, h, 32633, [500000.0, 10.0, 0.0, 4_000_000.0, 0.0, -10.0]);
    let mut map = vec![1u8; w * h];
    for c in 0..3 {
        map[2 * w + 3 + c] = 2; // a speck of 3 pixels
    }
    for r in 6..9 {
        for c in 10..14 {
            map[r * w + c] = 2; // a field of 12 pixels
        }
    }
    for r in 0..h {
        map[r * w + w - 1] = 0; // unmapped column
    }
    let classes = named_classes(2, &["dry".into(), "water".into()]);
    let map_path = dir.path().join("map.tif");
    unidiff_studio::io::classmap::write_class_map(&map_path, &map, &grid, &classes).unwrap();
    // 5 pixels of 10 x 10 m = 0.05 ha.
    for (flag, value) in [("--sieve", "5"), ("--sieve-ha", "0.05")] {
        let out_path = dir.path().join(format!("clean{flag}.tif"));
        let out = bin()
            .args(["postprocess", "--classmap"])
            .arg(&map_path)
            .args([flag, value, "--out"])
            .arg(&out_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let clean = unidiff_studio::io::open_labels(&out_path).unwrap();
        for (i, (&got, &was)) in clean.data.iter().zip(&map).enumerate() {
            let want = match was {
                2 if i / w == 2 => 1,
                v => v,
            };
            assert_eq!(got, want, "{flag}: pixel {i}");
        }
        assert_eq!(
            unidiff_studio::io::classmap::read_class_table(&out_path)[1].name,
            "water"
        );
    }
    let bad = bin()
        .args(["postprocess", "--classmap"])
        .arg(&map_path)
        .args(["--sieve", "5", "--connectivity", "6", "--out"])
        .arg(dir.path().join("x.tif"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("connectivity 4 or 8"));
    assert!(!dir.path().join("x.tif").exists());
}

/// `sample` then `stats`: a stratified sample of a 10 m UTM map as a
/// GeoPackage (points at pixel centres, the allocation in `design`), labelled
/// the way an analyst would (here by GDAL: most points right, some wrong, a
/// few left empty, one more off the map), and
/// its area-adjusted accuracy equal to the library's on the same pairs.
#[test]
fn sample_writes_a_stratified_sample_that_stats_reads_back() {
    use gdal::vector::LayerAccess;
    use unidiff_studio::scene::named_classes;
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (60usize, 40usize);
    let gt = [500000.0, 10.0, 0.0, 4_000_000.0, 0.0, -10.0];
    let grid = georeferenced(w, h, 32633, gt);
    // Class 1: the left 40 columns; class 2: the rest but a 3 x 3 block of
    // class 3; two unmapped pixels.
    let map: Vec<u8> = (0..w * h)
        .map(|i| match (i / w, i % w) {
            (0, 0) | (0, 1) => 0,
            (r, c) if (10..13).contains(&r) && (50..53).contains(&c) => 3,
            (_, c) if c < 40 => 1,
            _ => 2,
        })
        .collect();
    let classes = named_classes(3, &["water".into(), "land".into(), "roof".into()]);
    let map_path = dir.path().join("map.tif");
    unidiff_studio::io::classmap::write_class_map(&map_path, &map, &grid, &classes).unwrap();
    let sample_path = dir.path().join("sample.gpkg");
    let out = bin()
        .args(["sample", "--per-class", "30", "--seed", "5", "--classmap"])
        .arg(&map_path)
        .arg("--out")
        .arg(&sample_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("class 3 has only 9 mapped pixels"),
        "{stderr}"
    );
    assert!(!dir.path().join("sample.gpkg.tmp").exists());

    // The analyst's labels.
    let ds = gdal::Dataset::open_ex(
        &sample_path,
        gdal::DatasetOptions {
            open_flags: gdal::GdalOpenFlags::GDAL_OF_UPDATE | gdal::GdalOpenFlags::GDAL_OF_VECTOR,
            ..Default::default()
        },
    )
    .unwrap();
    let int = |f: &gdal::vector::Feature<'_>, name: &str| {
        f.field_as_integer(f.field_index(name).unwrap())
            .unwrap()
            .unwrap()
    };
    let mut design = ds.layer_by_name("design").unwrap();
    let allocation: Vec<(i32, i64, i32)> = design
        .features()
        .map(|f| {
            (
                int(&f, "stratum"),
                f.field_as_integer64(f.field_index("mapped_pixels").unwrap())
                    .unwrap()
                    .unwrap(),
                int(&f, "points"),
            )
        })
        .collect();
    assert_eq!(allocation, [(1, 1598, 30), (2, 791, 30), (3, 9, 9)]);
    let mut layer = ds.layer_by_name("sample").unwrap();
    let mut labelled = Vec::new();
    let mut edits = Vec::new();
    for f in layer.features() {
        let id = int(&f, "id");
        let class = int(&f, "map_class") as u8;
        let (row, col) = (int(&f, "row") as usize, int(&f, "col") as usize);
        assert_eq!(map[row * w + col], class, "point {id}");
        let (x, y, _) = f.geometry().unwrap().get_point(0);
        assert!((x - (gt[0] + (col as f64 + 0.5) * 10.0)).abs() < 1e-6);
        assert!((y - (gt[3] - (row as f64 + 0.5) * 10.0)).abs() < 1e-6);
        // Every 4th point of class 1 is really land; every 10th point is
        // left empty.
        let reference = match (id % 10, id % 4, class) {
            (0, _, _) => None,
            (_, 0, 1) => Some(2),
            _ => Some(class),
        };
        if let Some(r) = reference {
            labelled.push((class, r));
        }
        edits.push((f.fid().unwrap(), reference));
    }
    assert_eq!(edits.len(), 69);
    for (fid, reference) in edits {
        let mut f = layer.feature(fid).unwrap();
        let i = f.field_index("reference").unwrap();
        if let Some(r) = reference {
            f.set_field_integer(i, i32::from(r)).unwrap();
        }
        layer.set_feature(f).unwrap();
    }
    // One more labelled point, off the map.
    let mut off = gdal::vector::Feature::new(layer.defn()).unwrap();
    let mut p = gdal::vector::Geometry::empty(gdal::vector::OGRwkbGeometryType::wkbPoint).unwrap();
    p.set_point_2d(0, (gt[0] - 50.0, gt[3]));
    off.set_geometry(p).unwrap();
    off.set_field_integer(off.field_index("reference").unwrap(), 1)
        .unwrap();
    off.create(&layer).unwrap();
    drop(off);
    // Closing the dataset writes the edits.
    drop(ds);

    let out_dir = dir.path().join("stats");
    let out = bin()
        .args(["stats", "--classmap"])
        .arg(&map_path)
        .arg("--reference")
        .arg(&sample_path)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 points of layer sample lie outside the map"),
        "{stdout}"
    );
    assert!(
        stdout.contains("6 points of layer sample have no `reference` yet"),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("accuracy.json")).unwrap()).unwrap();
    let want = unidiff_studio::metrics::area_accuracy::area_adjusted_accuracy(
        &[(1, 15.98), (2, 7.91), (3, 0.09)],
        &labelled,
    );
    let got = &json["estimates"];
    assert_eq!(
        got["sample_size"].as_u64().unwrap() as usize,
        labelled.len()
    );
    let close = |a: &serde_json::Value, b: f64| (a.as_f64().unwrap() - b).abs() < 1e-12;
    assert!(close(&got["overall"]["value"], want.overall.value), "{got}");
    assert!(
        close(&got["overall"]["se"], want.overall.se.unwrap()),
        "{got}"
    );
    assert!(close(&got["area"][1]["value"], want.area[1].value), "{got}");
    assert!(want.overall.value < 1.0 && want.area[1].value > 7.91);

    // A class field that is not there: the fields it has are listed.
    let out = bin()
        .args(["stats", "--class-field", "cls", "--classmap"])
        .arg(&map_path)
        .arg("--reference")
        .arg(&sample_path)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "has no field `cls` (its fields: id, map_class, map_name, row, col, reference)"
        ),
        "{stderr}"
    );
}

/// `--rgb-bands` as one comma-separated value (as the README writes it) and
/// as three values give the same pRGB; two bands are refused by name.
#[test]
fn rgb_bands_are_taken_with_commas_or_as_three_values() {
    let render = |bands: &[&str], dir: &std::path::Path| {
        bin()
            .args(["render", "--hsi"])
            .arg(demo("Spain_7370579_S2Hand.tif"))
            .arg("--rgb-bands")
            .args(bands)
            .arg("--out")
            .arg(dir)
            .output()
            .unwrap()
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (bands, dir) in [(&["3,2,1"][..], a.path()), (&["3", "2", "1"][..], b.path())] {
        let out = render(bands, dir);
        assert!(
            out.status.success(),
            "{bands:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let png = |d: &std::path::Path| std::fs::read(d.join("prgb.png")).unwrap();
    assert_eq!(png(a.path()), png(b.path()));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.path().join("render.json")).unwrap()).unwrap();
    assert_eq!(
        report["prgb"]["bands"],
        serde_json::json!([3, 2, 1]),
        "{report}"
    );

    let bad = render(&["3,2"], tempfile::tempdir().unwrap().path());
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("--rgb-bands takes three band numbers"),
        "{err}"
    );
}

/// Every command logs to `<data folder>/logs/unidiff-studio.log` (with the
/// final error), and `RUST_LOG` decides what the terminal shows.
#[test]
fn a_command_logs_to_the_data_folder_and_rust_log_filters() {
    let data = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let ok = bin()
        .env("UNIDIFF_STUDIO_DATA_DIR", data.path())
        .env_remove("RUST_LOG")
        .args(["render", "--hsi"])
        .arg(demo("Spain_7370579_S2Hand.tif"))
        .arg("--out")
        .arg(out_dir.path())
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let terminal = String::from_utf8_lossy(&ok.stderr);
    assert!(terminal.contains("[ok] wrote"), "{terminal}");
    let log_path = data.path().join("logs/unidiff-studio.log");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("INFO  unidiff_studio::cli::render: [ok] wrote"),
        "{log}"
    );

    let failed = bin()
        .env("UNIDIFF_STUDIO_DATA_DIR", data.path())
        .env("RUST_LOG", "error")
        .args(["render", "--hsi", "/no/such/cube.tif", "--out"])
        .arg(out_dir.path())
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let terminal = String::from_utf8_lossy(&failed.stderr);
    assert!(
        !terminal.contains("[..]"),
        "RUST_LOG=error still showed progress: {terminal}"
    );
    assert!(terminal.contains("/no/such/cube.tif"), "{terminal}");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("/no/such/cube.tif")),
        "{log}"
    );
}

/// `render` writes its folder whole: an existing folder with files is
/// refused before any reading (naming it and --overwrite) and left as it
/// was; --overwrite replaces it as a whole (no file of the old one stays).
#[test]
fn render_refuses_a_folder_with_files_and_overwrite_replaces_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("renderings");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(out_dir.join("old.txt"), b"an older run's file").unwrap();
    let render = |extra: &[&str]| {
        bin()
            .args(["render", "--hsi"])
            .arg(demo("Spain_7370579_S2Hand.tif"))
            .arg("--out")
            .arg(&out_dir)
            .args(extra)
            .output()
            .unwrap()
    };
    let refused = render(&[]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("renderings") && err.contains("--overwrite") && !err.contains("reading HSI"),
        "{err}"
    );
    assert!(
        out_dir.join("old.txt").exists(),
        "the folder is left as it was"
    );
    let replaced = render(&["--overwrite"]);
    assert!(
        replaced.status.success(),
        "{}",
        String::from_utf8_lossy(&replaced.stderr)
    );
    assert!(!out_dir.join("old.txt").exists(), "replaced as a whole");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("render.json")).unwrap()).unwrap();
    let png = report["prgb"]["files"]["png"].as_str().unwrap();
    assert!(
        std::path::Path::new(png).is_file(),
        "render.json names the final files: {png}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no staging folder stays: {leftovers:?}"
    );
}

/// A full disk, made real with a file-size limit (`ulimit -f`, SIGXFSZ
/// ignored so that a write past it fails with "File too large" as on a full
/// disk): `render` and `run` fail naming the file they could not write,
/// and `--out` does not appear, nor any hidden folder beside it.
#[test]
fn a_full_disk_fails_naming_the_file_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let limited = |kb: &str, args: &[&std::ffi::OsStr]| {
        Command::new("bash")
            .arg("-c")
            .arg("trap '' XFSZ; ulimit -f \"$1\"; shift; exec \"$@\"")
            .arg("limited")
            .arg(kb)
            .arg(env!("CARGO_BIN_EXE_unidiff-studio"))
            .args(args)
            .env("UNIDIFF_STUDIO_DATA_DIR", dir.path().join("data"))
            .output()
            .unwrap()
    };
    let hsi = demo("Spain_7370579_S2Hand.tif");
    let rendered = dir.path().join("renderings");
    let ran = dir.path().join("run");
    for (kb, args, out) in [
        (
            "100",
            vec![
                "render".as_ref(),
                "--hsi".as_ref(),
                hsi.as_os_str(),
                "--out".as_ref(),
                rendered.as_os_str(),
            ],
            &rendered,
        ),
        (
            "300",
            vec![
                "run".as_ref(),
                "--demo".as_ref(),
                "--stride".as_ref(),
                "32".as_ref(),
                "--out".as_ref(),
                ran.as_os_str(),
            ],
            &ran,
        ),
    ] {
        let o = limited(kb, &args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("error: cannot write") && !err.contains("panicked"),
            "{err}"
        );
        // The file is named where the user asked for it, not in the
        // hidden folder it was being written in.
        let named = format!("cannot write {}/", out.display());
        assert!(err.contains(&named) && !err.contains(".partial-"), "{err}");
        assert!(
            !out.exists(),
            "{} appeared after a failed write",
            out.display()
        );
    }
    let hidden: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

/// `run` killed outright (SIGKILL: no handler runs) in the middle of its
/// work leaves `--out` absent and one hidden partial folder beside it; the
/// next run into the same `--out` removes that folder and completes.
#[test]
fn a_killed_run_leaves_no_output_and_the_next_run_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let run = |extra: &[&str]| {
        let mut c = bin();
        c.args(["run", "--demo", "--stride", "32"])
            .args(extra)
            .arg("--out")
            .arg(&out)
            .env("UNIDIFF_STUDIO_DATA_DIR", dir.path().join("data"));
        c
    };
    let hidden = || -> Vec<String> {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with(".run.partial-"))
            .collect()
    };
    let mut child = run(&[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The partial folder appears before any work; kill during the work.
    let t0 = std::time::Instant::now();
    while hidden().is_empty() {
        assert!(t0.elapsed().as_secs() < 60, "no partial folder appeared");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(!out.exists(), "a killed run left --out");
    assert_eq!(hidden().len(), 1, "{:?}", hidden());
    // The next run (the forest alone: seconds) removes it and completes.
    let done = run(&["--classifier", "rf", "--no-baseline"])
        .output()
        .unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(out.join("run.json").is_file());
    assert!(hidden().is_empty(), "{:?}", hidden());
}

/// A cube declared 8000 x 8000 x 60 (15.4 GB as f32; a VRT without
/// sources, read as zeros) given to `run` in a process whose memory is
/// limited below that — by `ulimit -v` always, by a cgroup where this
/// machine lets the test make one — is refused before any sample is read:
/// exit 1 and a message naming the file and the limit, never an abort.
#[test]
fn run_is_refused_under_the_process_memory_limits() {
    let dir = tempfile::tempdir().unwrap();
    let vrt = dir.path().join("big_cube.vrt");
    let bands: String = (1..=60)
        .map(|b| format!("<VRTRasterBand dataType=\"Float32\" band=\"{b}\"/>"))
        .collect();
    std::fs::write(
        &vrt,
        format!("<VRTDataset rasterXSize=\"8000\" rasterYSize=\"8000\">{bands}</VRTDataset>"),
    )
    .unwrap();
    let exe = env!("CARGO_BIN_EXE_unidiff-studio");
    let run_under = |prefix: &str| {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "{prefix} exec \"$0\" run --backbone tiny-random --hsi \"$1\" --train-labels \"$1\" --out \"$2\""
            ))
            .arg(exe)
            .arg(&vrt)
            .arg(dir.path().join("out"))
            .env("UNIDIFF_STUDIO_DATA_DIR", dir.path().join("data"))
            .env_remove(unidiff_studio::io::memory::MEMORY_ENV)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "{prefix}: {text}");
        assert!(
            text.contains("big_cube.vrt") && text.contains("15.4 GB"),
            "{prefix}: {text}"
        );
        assert!(!dir.path().join("out").exists(), "nothing written");
        text
    };
    let text = run_under("ulimit -v 4000000;");
    assert!(text.contains("ulimit -v"), "{text}");

    // A cgroup of 3 GB (v2 memory.max, else v1 memory.limit_in_bytes).
    let name = format!("unidiff_test_{}", std::process::id());
    let made = [
        ("/sys/fs/cgroup", "memory.max"),
        ("/sys/fs/cgroup/memory", "memory.limit_in_bytes"),
    ]
    .iter()
    .find_map(|(root, file)| {
        let group = std::path::Path::new(root).join(&name);
        std::fs::create_dir(&group).ok()?;
        // A real cgroup folder comes with its controller's files.
        if group.join(file).is_file() && std::fs::write(group.join(file), "3000000000").is_ok() {
            Some(group)
        } else {
            let _ = std::fs::remove_dir_all(&group);
            None
        }
    });
    let Some(group) = made else {
        println!("skipped: no cgroup can be made here; the ulimit case ran");
        return;
    };
    let text = run_under(&format!("echo $$ > {}/cgroup.procs &&", group.display()));
    let _ = std::fs::remove_dir(&group);
    assert!(text.contains("the cgroup's memory limit"), "{text}");
}
