//! `unidiff-studio run` end to end on the real Sentinel-1/2 demo scene, as a
//! user runs it: a seeded sparse training set (< 1 % of the labelled
//! pixels), the rest as test, patches without overlap (`--stride 32`) to
//! keep CI in minutes on the CPU, features at t = 0 (the bundled backbone is
//! random: noise only hides what its features carry); the written class map is read back with GDAL
//! and `gdalinfo`, its metrics recomputed and compared with metrics.json,
//! both classifiers compared with the majority class; and the bad inputs a
//! run must refuse or warn about.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::demo;
use unidiff_studio::io::classmap::write_class_map;
use unidiff_studio::io::{open_labels, open_labels_with_offset};
use unidiff_studio::metrics::summary::MetricsSummary;
use unidiff_studio::pipeline::split::{SparseSplit, sparse_split};
use unidiff_studio::scene::default_classes;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_unidiff-studio"))
}

fn ok(out: Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    err
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The demo's reference split, recomputed here as the run does it.
fn demo_test_labels() -> Vec<u8> {
    let reference = open_labels_with_offset(&demo("Spain_7370579_LabelHand.tif"), 1).unwrap();
    let split = SparseSplit {
        fraction: 0.005,
        ..SparseSplit::default()
    };
    sparse_split(&reference, &split).1.data
}

fn majority_accuracy(test: &[u8]) -> f64 {
    let mut counts = [0usize; 256];
    for &c in test.iter().filter(|&&c| c != 0) {
        counts[c as usize] += 1;
    }
    let total: usize = counts.iter().sum();
    *counts.iter().max().unwrap() as f64 / total as f64
}

#[test]
fn demo_run_writes_a_checked_map_and_beats_the_majority_class() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let log = ok(bin()
        .args(["run", "--demo", "--stride", "32", "--t", "0", "--out"])
        .arg(&out)
        .output()
        .unwrap());
    assert!(log.contains("NOT the paper's"), "{log}");

    // The class map GeoTIFF: CRS, colour table and class names for QGIS.
    let info = Command::new("gdalinfo")
        .arg(out.join("classmap.tif"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("ID[\"EPSG\",4326]"), "{text}");
    assert!(text.contains("Color Table"), "{text}");
    assert!(text.contains("dry") && text.contains("water"), "{text}");
    assert!(out.join("classmap.qml").exists());
    // The map as polygons, opened by GDAL's vector side as QGIS would.
    let gpkg = gdal::Dataset::open(out.join("classmap.gpkg")).unwrap();
    assert!(gpkg.layer_by_name("landcover").is_ok());
    assert!(out.join("probability.tif").exists());
    assert!(out.join("map.png").exists());

    // Metrics recomputed from the written map equal metrics.json.
    let test = demo_test_labels();
    let labelled = test.iter().filter(|&&c| c != 0).count();
    let written = open_labels(&out.join("classmap.tif")).unwrap().data;
    let mine = MetricsSummary::from_labels(&test, &written, 2);
    let json = read_json(&out.join("metrics.json"));
    assert_eq!(json["n_labelled"], labelled as u64);
    assert!((json["OA"].as_f64().unwrap() - mine.oa).abs() < 1e-12);
    assert!((json["mF1"].as_f64().unwrap() - mine.mf1).abs() < 1e-12);

    // The training set is sparse: under 1 % of the labelled pixels.
    let run = read_json(&out.join("run.json"));
    let train = run["stage_b"]["training_vectors"].as_u64().unwrap() as f64;
    assert!(train / (train + labelled as f64) < 0.01, "{train}");
    assert_eq!(run["backbone"]["pretrained"], false);
    assert!(run["inputs"]["hsi"]["sha256"].as_str().unwrap().len() == 64);
    for stage in [
        "load",
        "products",
        "features",
        "training",
        "prediction",
        "export",
    ] {
        assert!(run["seconds"][stage].as_f64().is_some(), "{stage}");
    }

    // Both classifiers beat always answering the majority class.
    let majority = majority_accuracy(&test);
    let mlp = json["OA"].as_f64().unwrap();
    let rf = read_json(&out.join("baseline_rf/metrics.json"))["OA"]
        .as_f64()
        .unwrap();
    assert!(mlp > majority, "MLP OA {mlp} vs majority {majority}");
    assert!(rf > majority, "RF OA {rf} vs majority {majority}");
    // The forest on raw + filter features, beside them, scored from its map.
    let filter_map = open_labels(&out.join("baseline_filter_rf/classmap.tif"))
        .unwrap()
        .data;
    let filter = MetricsSummary::from_labels(&test, &filter_map, 2);
    let filter_json = read_json(&out.join("baseline_filter_rf/metrics.json"));
    assert!((filter_json["OA"].as_f64().unwrap() - filter.oa).abs() < 1e-12);
    assert!(
        filter.oa > majority,
        "filter-rf OA {} vs majority {majority}",
        filter.oa
    );

    // The recommendation: every classifier scored on the same held-out
    // training pixels, the best named.
    let rec = &run["recommendation"];
    let scores = rec["scores"].as_array().unwrap();
    let names: Vec<&str> = scores
        .iter()
        .map(|s| s["classifier"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mlp", "filter-rf", "rf"], "{rec}");
    let held = rec["held_out_pixels"].as_u64().unwrap();
    assert!(held > 0 && (held as f64) < 0.35 * train, "{rec}");
    assert!(scores.iter().all(|s| s["pixels"] == held));
    let best = scores
        .iter()
        .max_by(|a, b| {
            a["kappa"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["kappa"].as_f64().unwrap())
        })
        .unwrap();
    assert_eq!(rec["best"], best["classifier"], "{rec}");
    assert!(log.contains("held-out training pixels"), "{log}");
}

/// Tries `run --from-json` on a copy of `record` changed by `change`; the
/// run's log.
fn rerun_changed(
    dir: &Path,
    record: &serde_json::Value,
    change: impl FnOnce(&mut serde_json::Value),
) -> String {
    let mut changed = record.clone();
    change(&mut changed);
    let path = dir.join("changed.json");
    std::fs::write(&path, serde_json::to_vec(&changed).unwrap()).unwrap();
    let out = bin()
        .arg("run")
        .arg("--from-json")
        .arg(&path)
        .arg("--out")
        .arg(dir.join("never"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.join("never").exists());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_sar_only_run_and_its_rerun_from_run_json_give_the_same_map() {
    // No HSI: the run falls back to the SAR modality alone; the run again
    // from its run.json (inputs checked by SHA-256, the recorded split,
    // seed and settings) gives the same map.
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("a");
    let rerun = dir.path().join("b");
    ok(bin()
        .args(["run", "--backbone", "tiny-random", "--sar"])
        .arg(demo("Spain_7370579_S1Hand.tif"))
        .arg("--train-labels")
        .arg(demo("Spain_7370579_LabelHand.tif"))
        .args([
            "--label-offset",
            "1",
            "--split-fraction",
            "0.005",
            "--stride",
            "32",
        ])
        .args(["--no-baseline", "--seed", "5", "--out"])
        .arg(&first)
        .output()
        .unwrap());
    let record = read_json(&first.join("run.json"));
    assert_eq!(record["made_in"], "command line");
    ok(bin()
        .arg("run")
        .arg("--from-json")
        .arg(first.join("run.json"))
        .arg("--out")
        .arg(&rerun)
        .output()
        .unwrap());
    let maps: Vec<Vec<u8>> = [&first, &rerun]
        .iter()
        .map(|out| {
            let run = read_json(&out.join("run.json"));
            assert_eq!(run["modalities"], serde_json::json!(["sar"]));
            assert!(
                run["warnings"]
                    .to_string()
                    .contains("modality prgb left out")
            );
            open_labels(&out.join("classmap.tif")).unwrap().data
        })
        .collect();
    assert_eq!(maps[0], maps[1]);
    let again = read_json(&rerun.join("run.json"));
    for key in ["settings", "split", "inputs", "backbone_spec", "classes"] {
        assert_eq!(again[key], record[key], "{key}");
    }

    // A changed input, a missing one or a record without the backbone's
    // spec is refused before any work, naming the file.
    let log = rerun_changed(dir.path(), &record, |r| {
        r["inputs"]["train_labels"]["sha256"] = "0".repeat(64).into();
    });
    assert!(
        log.contains("not the file the run was made from") && log.contains("LabelHand"),
        "{log}"
    );
    let log = rerun_changed(dir.path(), &record, |r| {
        r["inputs"]["sar"]["path"] = "gone/S1.tif".into();
    });
    assert!(
        log.contains("gone/S1.tif") && log.contains("not found"),
        "{log}"
    );
    let log = rerun_changed(dir.path(), &record, |r| {
        r.as_object_mut().unwrap().remove("backbone_spec");
    });
    assert!(log.contains("backbone_spec"), "{log}");
    let log = rerun_changed(dir.path(), &record, |r| {
        r["settings"]["stage_b"]["t"] = 1000.into();
    });
    assert!(log.contains("t 1000"), "{log}");
}

/// `run --label-curve`: a row per n with the spread over the draws; a
/// point at or above every class's count is the run's own training set,
/// so its map scores exactly as the run's map.
#[test]
fn the_label_curve_grows_on_nested_subsets_and_ends_at_the_runs_map() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("curve");
    let log = ok(bin()
        .args(["run", "--backbone", "tiny-random", "--sar"])
        .arg(demo("Spain_7370579_S1Hand.tif"))
        .arg("--train-labels")
        .arg(demo("Spain_7370579_LabelHand.tif"))
        .args(["--label-offset", "1", "--split-fraction", "0.005"])
        .args(["--stride", "32", "--no-baseline", "--no-held-out-check"])
        .args(["--label-curve", "100000,4,20", "--label-curve-draws", "2"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap());
    assert!(log.contains("label curve (2 draws per point"), "{log}");
    let run = read_json(&out.join("run.json"));
    let curve = &run["label_curve"];
    let points = curve["points"].as_array().unwrap();
    assert_eq!(points.len(), 6, "{curve}");
    let per_class: Vec<u64> = points
        .iter()
        .map(|p| p["per_class"].as_u64().unwrap())
        .collect();
    assert_eq!(per_class, [4, 20, 100000, 4, 20, 100000]);
    let train = run["stage_b"]["training_vectors"].as_u64().unwrap();
    let all_labels = points[2]["labels"].as_u64().unwrap();
    for p in points {
        let n = p["per_class"].as_u64().unwrap();
        let labels = p["labels"].as_u64().unwrap();
        // Two classes, each with more than 20 training pixels.
        if n < 100000 {
            assert_eq!(labels, 2 * n, "{p}");
        } else {
            assert_eq!(labels, all_labels);
        }
        let oa = p["metrics"]["oa"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&oa));
    }
    assert!(
        all_labels > 40 && all_labels <= train,
        "{all_labels} of {train} vectors"
    );
    // Every label: the run's own head and map.
    let metrics = read_json(&out.join("metrics.json"));
    for p in [&points[2], &points[5]] {
        let oa = p["metrics"]["oa"].as_f64().unwrap();
        assert_eq!(oa, metrics["OA"].as_f64().unwrap(), "{p}");
    }
    // The CSV: a header and a line per n, ascending.
    let csv = std::fs::read_to_string(out.join("label_curve.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[1].starts_with("4,8.0,2,"), "{csv}");
    assert!(lines[3].starts_with("100000,"), "{csv}");
    let last: Vec<&str> = lines[3].split(',').collect();
    assert_eq!(last[4], "0.000000", "two draws of every label agree: {csv}");

    // A curve without test labels, or for a forest, is refused up front.
    let refused = bin()
        .args(["run", "--demo", "--classifier", "rf", "--label-curve", "5"])
        .arg("--out")
        .arg(dir.path().join("refused"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--classifier mlp"));
}

#[test]
fn a_labels_raster_on_another_grid_is_refused_with_both_grids() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["run", "--backbone", "tiny-random", "--sar"])
        .arg(demo("Spain_7370579_S1Hand.tif"))
        .arg("--train-labels")
        .arg(shared_or_skip!(
            "enmap_potsdam/labels/enmap_potsdam_tile_128_32.tif",
        ))
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not on one pixel grid"), "{err}");
}

#[test]
fn an_adapter_for_another_backbone_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // An adapter of the tiny random backbone with seed 1 ...
    let adapter = dir.path().join("seed1.safetensors");
    ok(bin()
        .args([
            "adapt",
            "--backbone",
            "tiny-random",
            "--seed",
            "1",
            "--steps",
            "1",
            "--batch",
            "2",
            "--modalities",
            "sar",
            "--sar",
        ])
        .arg(demo("Spain_7370579_S1Hand.tif"))
        .arg("--out")
        .arg(&adapter)
        .output()
        .unwrap());
    // ... offered to the one with seed 0.
    let out = bin()
        .args(["run", "--demo", "--seed", "0", "--adapter"])
        .arg(&adapter)
        .arg("--out")
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("was made for the backbone tiny-random:1"),
        "{err}"
    );
}

#[test]
fn unknown_test_classes_are_warned_about_and_one_class_training_refused() {
    let dir = tempfile::tempdir().unwrap();
    let reference = open_labels_with_offset(&demo("Spain_7370579_LabelHand.tif"), 1).unwrap();
    let split = SparseSplit {
        fraction: 0.005,
        ..SparseSplit::default()
    };
    let (train, mut test) = sparse_split(&reference, &split);
    // The test labels also hold a class 3 that no training pixel has.
    let w = reference.grid.width;
    let mut unknown = 0;
    for r in 100..150 {
        for c in 100..150 {
            if test.data[r * w + c] != 0 {
                test.data[r * w + c] = 3;
                unknown += 1;
            }
        }
    }
    let dry_only: Vec<u8> = train
        .data
        .iter()
        .map(|&c| if c == 2 { 0 } else { c })
        .collect();
    let classes = default_classes(3);
    let tif = |name: &str, data: &[u8]| {
        let path = dir.path().join(name);
        write_class_map(&path, data, &reference.grid, &classes).unwrap();
        path
    };
    let (train_tif, dry_tif, test_tif) = (
        tif("train.tif", &train.data),
        tif("dry.tif", &dry_only),
        tif("test.tif", &test.data),
    );
    let run = |train: &Path, out: &Path| {
        bin()
            .args([
                "run",
                "--backbone",
                "tiny-random",
                "--classifier",
                "rf",
                "--sar",
            ])
            .arg(demo("Spain_7370579_S1Hand.tif"))
            .arg("--train-labels")
            .arg(train)
            .arg("--test-labels")
            .arg(&test_tif)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let out = dir.path().join("run");
    let log = ok(run(&train_tif, &out));
    let warning = format!("class 3 has no training pixels but {unknown} test pixels");
    assert!(log.contains(&warning), "{log}");
    let record = read_json(&out.join("run.json"));
    assert!(record["warnings"].to_string().contains(&warning));
    let metrics = read_json(&out.join("metrics.json"));
    assert_eq!(metrics["per_class"][2]["recall"].as_f64(), Some(0.0));
    assert_eq!(metrics["per_class"][2]["support"], unknown as u64);

    // Training labels of one class only: a clear error, no panic.
    let refused = run(&dry_tif, &dir.path().join("dry"));
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("only class 1"), "{err}");
}

/// `sweep` on the demo: a row per t with the held-out kappa, the t it
/// suggests from those alone, the forests once (they do not depend on t),
/// and the plot.
#[test]
fn the_sweep_suggests_a_t_from_the_held_out_training_labels() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let log = ok(bin()
        .args(["sweep", "--demo", "--stride", "32", "--t", "0,500", "--out"])
        .arg(&out)
        .output()
        .unwrap());
    let s = read_json(&out.join("sweep.json"));
    let rows = s["results"].as_array().unwrap();
    let ts: Vec<i64> = rows.iter().map(|r| r["t"].as_i64().unwrap()).collect();
    assert_eq!(ts, [0, 500]);
    let held: Vec<f64> = rows
        .iter()
        .map(|r| r["held_out_kappa"].as_f64().unwrap())
        .collect();
    let best = if held[1] > held[0] { 500 } else { 0 };
    assert_eq!(s["suggested_t"]["t"], best, "{s}");
    assert!(log.contains("the test labels were not used"), "{log}");
    for forest in ["rf", "filter-rf"] {
        let oa = s["forests"][forest]["oa"].as_f64().unwrap();
        assert!(oa > 0.85, "{forest} OA {oa}");
    }
    assert!(out.join("sweep.png").exists());
}

/// Band `b` (1-based) of a raster as f64, read with GDAL.
fn band_f64(path: &Path, b: usize) -> Vec<f64> {
    let ds = gdal::Dataset::open(path).unwrap();
    ds.rasterband(b)
        .unwrap()
        .read_band_as::<f64>()
        .unwrap()
        .data()
        .to_vec()
}

/// A model saved by `run` maps its own scene as `run` did, pixel for pixel,
/// whatever the tile size (tiles that cut through patches, a stride that
/// pads the grid), and the shards of a job array split the tiles so that
/// together they give that map and each pixel comes from one shard.
#[test]
fn a_saved_model_maps_its_scene_as_the_run_did_in_tiles_and_shards() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let model = dir.path().join("demo.udmodel");
    ok(bin()
        .args([
            "run",
            "--demo",
            "--stride",
            "24",
            "--t",
            "0",
            "--no-baseline",
        ])
        .args(["--no-held-out-check", "--save-model"])
        .arg(&model)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap());
    let predict = |out: &Path, extra: &[&str]| {
        ok(bin()
            .arg("predict")
            .arg("--model")
            .arg(&model)
            .arg("--hsi")
            .arg(demo("Spain_7370579_S2Hand.tif"))
            .arg("--sar")
            .arg(demo("Spain_7370579_S1Hand.tif"))
            .args(extra)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap())
    };
    let whole = dir.path().join("tiled");
    let log = predict(&whole, &["--tile", "100"]);
    assert!(log.contains("read here in windows"), "{log}");
    let want = band_f64(&run.join("classmap.tif"), 1);
    assert_eq!(band_f64(&whole.join("classmap.tif"), 1), want);
    for b in [1, 2] {
        assert_eq!(
            band_f64(&whole.join("probability.tif"), b),
            band_f64(&run.join("probability.tif"), b),
            "probability band {b}"
        );
    }
    let names = Command::new("gdalinfo")
        .arg(whole.join("classmap.tif"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&names.stdout);
    assert!(text.contains("dry") && text.contains("water"), "{text}");
    assert!(whole.join("classmap.gpkg").is_file());
    // Without polygons: the same map, no GeoPackage.
    let bare = dir.path().join("bare");
    predict(&bare, &["--tile", "256", "--no-polygons"]);
    assert_eq!(band_f64(&bare.join("classmap.tif"), 1), want);
    assert!(!bare.join("classmap.gpkg").exists());

    // Three shards of a job array, then their mosaic: the same map.
    let mut parts = Vec::new();
    for i in 0..3 {
        let out = dir.path().join(format!("shard{i}"));
        predict(&out, &["--tile", "200", "--shard", &format!("{i}/3")]);
        let record = read_json(&out.join("predict.json"));
        assert_eq!(record["shard"]["count"], 3);
        parts.push(out);
    }
    let mosaic = |parts: &[&Path], out: &Path| {
        bin()
            .arg("mosaic")
            .args(parts)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let joined = dir.path().join("joined");
    let all: Vec<&Path> = parts.iter().map(|p| p.as_path()).collect();
    ok(mosaic(&all, &joined));
    assert_eq!(band_f64(&joined.join("classmap.tif"), 1), want);
    for b in [1, 2] {
        assert_eq!(
            band_f64(&joined.join("probability.tif"), b),
            band_f64(&run.join("probability.tif"), b),
            "mosaic probability band {b}"
        );
    }
    // A list of scenes split over a job array of 2: each task maps its
    // scene whole into the folder named after it; run again, it skips it.
    let list = dir.path().join("scenes.csv");
    let line = format!(
        "{},{}",
        demo("Spain_7370579_S2Hand.tif").display(),
        demo("Spain_7370579_S1Hand.tif").display()
    );
    std::fs::write(&list, format!("hsi,sar\n{line}\n{line}\n")).unwrap();
    let region = dir.path().join("region");
    let by_list = |i: usize| {
        ok(bin()
            .args(["predict", "--tile", "256", "--no-polygons", "--model"])
            .arg(&model)
            .arg("--scenes")
            .arg(&list)
            .args(["--shard", &format!("{i}/2"), "--out"])
            .arg(&region)
            .output()
            .unwrap())
    };
    by_list(0);
    by_list(1);
    for name in ["Spain_7370579_S2Hand", "Spain_7370579_S2Hand-2"] {
        assert_eq!(
            band_f64(&region.join(name).join("classmap.tif"), 1),
            want,
            "{name}"
        );
    }
    let again = by_list(1);
    assert!(again.contains("already mapped"), "{again}");

    // A missing shard, a shard given twice, a shard that did not finish.
    let refused = |parts: &[&Path], words: &str| {
        let out = mosaic(parts, &dir.path().join("refused"));
        let e = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success() && e.contains(words), "{words}: {e}");
    };
    refused(&all[..2], "run --shard 2/3");
    refused(&[all[0], all[1], all[2], all[1]], "shards overlap");
    std::fs::remove_file(parts[2].join("predict.json")).unwrap();
    refused(&all, "did not finish");
    assert!(!dir.path().join("refused/predict.json").exists());

    // SIGTERM (a scheduler ending the job) half-way: no map, no record, no
    // working file left; the same command again completes it.
    let stopped = dir.path().join("stopped");
    let child = bin()
        .args(["predict", "--tile", "40", "--model"])
        .arg(&model)
        .arg("--hsi")
        .arg(demo("Spain_7370579_S2Hand.tif"))
        .arg("--sar")
        .arg(demo("Spain_7370579_S1Hand.tif"))
        .arg("--out")
        .arg(&stopped)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.contains("cancelled"), "{e}");
    let left: Vec<String> = std::fs::read_dir(&stopped)
        .unwrap()
        .map(|f| f.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    predict(&stopped, &["--tile", "160"]);
    assert_eq!(band_f64(&stopped.join("classmap.tif"), 1), want);

    // Another sensor is refused with the difference.
    let e = String::from_utf8_lossy(
        &bin()
            .args(["predict", "--model"])
            .arg(&model)
            .arg("--sar")
            .arg(demo("Spain_7370579_S1Hand.tif"))
            .arg("--out")
            .arg(dir.path().join("no_hsi"))
            .output()
            .unwrap()
            .stderr,
    )
    .to_string();
    assert!(e.contains("an HSI input"), "{e}");
    // A tile smaller than a patch is refused.
    let small = bin()
        .args(["predict", "--tile", "8", "--model"])
        .arg(&model)
        .arg("--sar")
        .arg(demo("Spain_7370579_S1Hand.tif"))
        .arg("--out")
        .arg(dir.path().join("small"))
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&small.stderr);
    assert!(
        !small.status.success() && e.contains("smaller than the model's patch"),
        "{e}"
    );
}
