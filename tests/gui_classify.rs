//! Classification from the app (egui_kittest, CPU, the tiny random backbone):
//! labels painted on the demo scene, "Classify" clicked, progress seen,
//! the run cancelled and started again, the class map shown, and the
//! numbers in the results equal to `metrics.json` of the headless `run` on
//! the same labels, settings and seed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{demo, wait_loaded};
use eframe::egui::vec2;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use unidiff_studio::pipeline::classification::ClassifierChoice;
use unidiff_studio::scene::{Brush, LabelLayer};
use unidiff_studio::session::Command as SessionCommand;
use unidiff_studio::ui::layers::LayerId;
use unidiff_studio::ui::{AppCommand, AppOptions, StudioApp};

/// The app with the demo scene loaded.
fn harness(data_dir: &Path) -> Harness<'static, StudioApp> {
    let options = AppOptions {
        demo: true,
        files: Vec::new(),
        data_dir: Some(data_dir.to_path_buf()),
    };
    let mut h = Harness::builder()
        .with_size(vec2(1400.0, 1000.0))
        .wgpu()
        .build_eframe(move |cc| StudioApp::new(cc, options));
    wait_loaded(&mut h);
    h
}

/// Centres of `n` 5 x 5 blocks of the test layer that hold only `class`.
fn blocks_of(test: &[u8], class: u8, n: usize) -> Vec<(usize, usize)> {
    blocks_of_in(test, 512, class, n, 37)
}

fn blocks_of_in(test: &[u8], w: usize, class: u8, n: usize, step: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let h = test.len() / w;
    'search: for y in (10..h - 10).step_by(step) {
        for x in (10..w - 10).step_by(step + 4) {
            let pure =
                (y - 2..=y + 2).all(|yy| (x - 2..=x + 2).all(|xx| test[yy * w + xx] == class));
            if pure {
                out.push((x, y));
                if out.len() == n {
                    break 'search;
                }
            }
        }
    }
    out
}

fn paint(h: &mut Harness<'_, StudioApp>, class: u8, at: &[(usize, usize)]) {
    for &(x, y) in at {
        let app = h.state_mut();
        app.handle(AppCommand::Label(SessionCommand::BeginStroke {
            layer: LabelLayer::Train,
            brush: Brush {
                value: class,
                size: 3.0,
            },
            x: x as f32 + 0.5,
            y: y as f32 + 0.5,
        }));
        app.handle(AppCommand::Label(SessionCommand::EndStroke));
    }
}

/// Keeps a picture of the window where UNIDIFF_SCREENSHOT_DIR says.
fn save_render(h: &mut Harness<'_, StudioApp>, name: &str) {
    if let Some(dir) = std::env::var_os("UNIDIFF_SCREENSHOT_DIR") {
        let img = h.render().expect("wgpu renders");
        let _ = std::fs::create_dir_all(&dir);
        img.save(Path::new(&dir).join(name)).unwrap();
    }
}

#[test]
fn classify_from_the_app_matches_the_headless_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(dir.path());
    let test = h
        .state()
        .store
        .session
        .as_ref()
        .unwrap()
        .scene
        .test_labels
        .clone()
        .unwrap();
    let dry = blocks_of(&test.data, 1, 12);
    let water = blocks_of(&test.data, 2, 12);
    assert!(
        dry.len() == 12 && water.len() >= 6,
        "{} {}",
        dry.len(),
        water.len()
    );
    paint(&mut h, 1, &dry);
    paint(&mut h, 2, &water);
    {
        let s = &mut h.state_mut().store.classify_settings;
        s.t = 0;
        s.stride = Some(32);
        s.seed = 0;
    }
    h.run_steps(2);

    // Start, see progress, cancel.
    h.get_by_label("Classify").click();
    h.run_steps(2);
    assert!(h.state().jobs.classifying.is_some());
    let t0 = Instant::now();
    while h
        .state()
        .jobs
        .classifying
        .as_ref()
        .is_some_and(|c| c.fraction == 0.0)
    {
        assert!(t0.elapsed() < Duration::from_secs(300), "no progress");
        std::thread::sleep(Duration::from_millis(50));
        h.step();
    }
    save_render(&mut h, "classify_mid_run.png");
    h.get_by_label("Cancel").click();
    step_until(&mut h, Duration::from_secs(60), "cancel", |a| {
        a.jobs.classifying.is_none()
    });
    assert!(h.state().store.session.as_ref().unwrap().result.is_none());
    assert!(
        h.state()
            .store
            .messages
            .iter()
            .any(|m| m.text.contains("cancelled"))
    );

    // Again, to the end.
    h.get_by_label("Classify").click();
    h.run_steps(2);
    step_until(&mut h, Duration::from_secs(900), "classification", |a| {
        a.jobs.classifying.is_none()
    });
    h.run_steps(3);
    let app = h.state();
    let s = app.store.session.as_ref().unwrap();
    let result = s
        .result
        .as_ref()
        .unwrap_or_else(|| panic!("{:?}", app.store.messages));
    let (mlp, _) = result.outcome.mlp.as_ref().unwrap();
    let m = mlp.metrics.as_ref().unwrap();
    assert!(app.views.results.open);
    assert!(app.store.layers.get(LayerId::ClassMap).unwrap().visible);
    let oa_text = format!("{:.4}", m.oa);
    let (oa, kappa, mf1) = (m.oa, m.kappa, m.mf1);
    let class_map = mlp.class_map.clone();
    let labels_revision = result.labels_revision;
    let train = s.scene.train_labels.clone().unwrap();
    let classes = s.classes.clone();
    // The painted pixels lie on the reference layer: they are not scored.
    let overlap = test
        .data
        .iter()
        .zip(&train.data)
        .filter(|(t, l)| **t != 0 && **l != 0)
        .count();
    assert!(overlap > 0);
    assert_eq!(result.outcome.test_pixels_excluded, overlap);
    assert_eq!(m.n_labelled as usize, test.labelled() - overlap);
    // The results window shows the numbers.
    h.get_all_by_label(&oa_text)
        .next()
        .expect("OA shown in the results");
    // The confusion matrix's totals: per truth row, and every scored pixel
    // (beside the summary's pixel count).
    let scored = m.n_labelled.to_string();
    assert!(
        h.get_all_by_label(&scored).count() >= 2,
        "the scored pixels ({scored}) in the summary and as the matrix's total"
    );
    for i in 0..m.confusion.classes {
        let k = m.confusion.classes;
        let row: u64 = m.confusion.counts[i * k..(i + 1) * k].iter().sum();
        h.get_all_by_label(&row.to_string())
            .next()
            .expect("a row total in the confusion matrix");
    }
    save_render(&mut h, "classify_results.png");

    // The same labels through the headless run.
    let train_path = dir.path().join("train.tif");
    let test_path = dir.path().join("test.tif");
    unidiff_studio::session::label_files::save_labels(&train_path, &train, &classes).unwrap();
    unidiff_studio::session::label_files::save_labels(&test_path, &test, &classes).unwrap();
    let out = dir.path().join("run");
    let status = Command::new(env!("CARGO_BIN_EXE_unidiff-studio"))
        .arg("run")
        .arg("--hsi")
        .arg(demo("Spain_7370579_S2Hand.tif"))
        .arg("--sar")
        .arg(demo("Spain_7370579_S1Hand.tif"))
        .arg("--train-labels")
        .arg(&train_path)
        .arg("--test-labels")
        .arg(&test_path)
        .args([
            "--backbone",
            "tiny-random",
            "--t",
            "0",
            "--stride",
            "32",
            "--seed",
            "0",
        ])
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    for (key, ours) in [("OA", oa), ("kappa", kappa), ("mF1", mf1)] {
        let theirs = json[key].as_f64().unwrap();
        assert!(
            (theirs - ours).abs() < 1e-12,
            "{key}: app {ours} vs run {theirs}"
        );
    }
    let written = unidiff_studio::io::open_labels(&out.join("classmap.tif")).unwrap();
    let differ = written
        .data
        .iter()
        .zip(&class_map)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(differ, 0, "class maps differ in {differ} pixels");
    // Results -> Save model…, then `predict` with it maps the scene as the
    // app did, with the session's class names.
    h.get_by_label("Save model…");
    let model_path = dir.path().join("app.udmodel");
    h.state_mut()
        .handle(AppCommand::SaveModel(model_path.clone()));
    common::wait_tasks(&mut h);
    let model = unidiff_studio::pipeline::model_bundle::ModelBundle::read(&model_path)
        .unwrap_or_else(|e| panic!("{e}: {:?}", h.state().store.messages));
    let names: Vec<&str> = model.classes.iter().map(|c| c.name.as_str()).collect();
    let session_names: Vec<&str> = classes
        .iter()
        .take(names.len())
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, session_names);
    let predicted = dir.path().join("predicted");
    let status = Command::new(env!("CARGO_BIN_EXE_unidiff-studio"))
        .args(["predict", "--tile", "128", "--model"])
        .arg(&model_path)
        .arg("--hsi")
        .arg(demo("Spain_7370579_S2Hand.tif"))
        .arg("--sar")
        .arg(demo("Spain_7370579_S1Hand.tif"))
        .arg("--out")
        .arg(&predicted)
        .status()
        .unwrap();
    assert!(status.success());
    let mapped = unidiff_studio::io::open_labels(&predicted.join("classmap.tif")).unwrap();
    assert_eq!(mapped.data, class_map, "predict with the app's model");
    // The results window's class areas are the run's areas.csv.
    h.get_by_label("Class areas");
    let csv = std::fs::read_to_string(out.join("areas.csv")).unwrap();
    {
        let app = h.state();
        let areas = app.store.session.as_ref().unwrap().result.as_ref().unwrap();
        let areas = areas.areas().expect("class areas");
        assert!(areas.note.is_none(), "the demo is in UTM: {:?}", areas.note);
        for (line, c) in csv.lines().skip(1).zip(&areas.classes) {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f[0].parse::<u8>().unwrap(), c.value, "{line}");
            assert_eq!(f[2].parse::<u64>().unwrap(), c.pixels, "{line}");
            let ha: f64 = f[4].parse().unwrap();
            assert!((ha - c.ha.unwrap()).abs() < 1e-9, "{line}");
        }
        assert_eq!(csv.lines().count(), areas.classes.len() + 1, "{csv}");
    }

    // Both forests and the recommendation equal the headless run's; a click
    // shows the filter forest's map on the class-map layer.
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    {
        let app = h.state();
        let r = app.store.session.as_ref().unwrap().result.as_ref().unwrap();
        let rec = r.outcome.recommendation.as_ref().expect("a recommendation");
        assert_eq!(record["recommendation"]["best"], rec.best.name());
        assert_eq!(
            record["recommendation"]["held_out_pixels"],
            rec.held_out_pixels as u64
        );
        let filter = r.outcome.filter_forest.as_ref().expect("filter-rf beside");
        let theirs = record["filter_random_forest"]["metrics"]["oa"]
            .as_f64()
            .unwrap();
        assert!((filter.metrics.as_ref().unwrap().oa - theirs).abs() < 1e-12);
    }
    h.get_by_label(ClassifierChoice::FilterRf.label()).click();
    h.run_steps(3);
    {
        let app = h.state();
        let r = app.store.session.as_ref().unwrap().result.as_ref().unwrap();
        assert_eq!(r.shown, ClassifierChoice::FilterRf);
        let written =
            unidiff_studio::io::open_labels(&out.join("baseline_filter_rf/classmap.tif")).unwrap();
        // The class-map layer draws `class_map()` (map_view.rs, cpu_map.rs).
        assert_eq!(r.class_map().unwrap(), written.data.as_slice());
        assert_ne!(r.class_map().unwrap(), class_map.as_slice());
    }

    // Uncertainty and where to label next.
    {
        let app = h.state();
        let s = app.store.session.as_ref().unwrap();
        assert!(unidiff_studio::ui::layers::available(
            s,
            LayerId::Uncertainty
        ));
        let sug = &app.store.suggestions;
        assert_eq!(sug.len(), 5);
        assert!(sug.windows(2).all(|w| w[0].uncertainty >= w[1].uncertainty));
        let train = s.scene.train_labels.as_ref().unwrap();
        for r in sug {
            for y in r.y..(r.y + r.side).min(512) {
                for x in r.x..(r.x + r.side).min(512) {
                    assert_eq!(train.data[y * 512 + x], 0, "a suggestion holds labels");
                }
            }
        }
    }
    h.key_press(eframe::egui::Key::N);
    h.run_steps(2);
    {
        let app = h.state();
        let first = app.store.suggestions[0];
        let c = app.map.view.center;
        assert_eq!(app.store.suggestion_index, Some(0));
        assert!(
            (c[0] - (first.x as f32 + 16.0)).abs() < 1.0
                && (c[1] - (first.y as f32 + 16.0)).abs() < 1.0
        );
    }

    // Export from the app writes the same map.
    let exported = dir.path().join("exported");
    h.state_mut()
        .handle(AppCommand::ExportResults(exported.clone()));
    common::wait_tasks(&mut h);
    let from_app = unidiff_studio::io::open_labels(&exported.join("classmap.tif")).unwrap();
    assert_eq!(from_app.data, written.data);
    assert!(exported.join("metrics.json").exists() && exported.join("baseline_rf").exists());
    // Again into the same folder: its files stay, the new export goes
    // into a subfolder of its own, whole.
    let before = std::fs::read(exported.join("metrics.json")).unwrap();
    h.state_mut()
        .handle(AppCommand::ExportResults(exported.clone()));
    common::wait_tasks(&mut h);
    assert_eq!(
        std::fs::read(exported.join("metrics.json")).unwrap(),
        before
    );
    let again = unidiff_studio::io::open_labels(&exported.join("results-1/classmap.tif")).unwrap();
    assert_eq!(again.data, written.data);
    let last = &h.state().store.messages.last().unwrap().text;
    assert!(
        last.contains("results-1") && last.contains("--from-json"),
        "{last}"
    );

    // The export's run.json says where and how the result was made, keeps
    // the labels it was made from, and reruns headless to the same maps.
    let record = read_json(&exported.join("run.json"));
    assert_eq!(record["made_in"], "app");
    assert_eq!(record["trigger"], "Classify");
    assert_eq!(record["labels_revision"], labels_revision);
    assert_eq!(record["settings"]["stage_b"]["t"], 0);
    assert_eq!(
        record["inputs"]["train_labels"]["path"],
        "labels/train_labels.tif"
    );
    let kept = unidiff_studio::io::open_labels(&exported.join("labels/train_labels.tif")).unwrap();
    assert_eq!(kept.data, train.data);
    let rerun = dir.path().join("rerun");
    rerun_to_the_same_maps(&exported, &rerun);
    let again = read_json(&rerun.join("run.json"));
    assert_eq!(again["made_in"], "command line");
    assert_eq!(again["settings"], record["settings"]);
    assert_eq!(again["metrics"], record["metrics"]);
}

fn wait_for_result(h: &mut Harness<'_, StudioApp>, revision: u64) {
    let t0 = Instant::now();
    loop {
        h.step();
        let done = h
            .state()
            .store
            .session
            .as_ref()
            .unwrap()
            .result
            .as_ref()
            .map(|r| r.labels_revision);
        if done == Some(revision) && h.state().jobs.classifying.is_none() {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "no result for revision {revision}; classifying {:?}, messages {:?}",
            h.state().jobs.classifying,
            h.state().store.messages
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn with_auto_classify_a_stroke_replaces_the_map() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(dir.path());
    let test = h
        .state()
        .store
        .session
        .as_ref()
        .unwrap()
        .scene
        .test_labels
        .clone()
        .unwrap();
    let dry = blocks_of(&test.data, 1, 8);
    let water = blocks_of(&test.data, 2, 8);
    {
        let app = h.state_mut();
        // The random forest alone: seconds per run on this CPU.
        app.store.classify_settings.classifier =
            unidiff_studio::pipeline::classification::ClassifierChoice::Rf;
        app.store.auto_classify = true;
    }
    paint(&mut h, 1, &dry[..4]);
    paint(&mut h, 2, &water[..4]);
    let first = h.state().store.session.as_ref().unwrap().labels_revision;
    wait_for_result(&mut h, first);
    let map_before = h
        .state()
        .store
        .session
        .as_ref()
        .unwrap()
        .result
        .as_ref()
        .unwrap()
        .class_map()
        .unwrap()
        .to_vec();
    // More strokes: a new run, whose map replaces the old one.
    paint(&mut h, 2, &water[4..]);
    paint(&mut h, 1, &dry[4..]);
    let second = h.state().store.session.as_ref().unwrap().labels_revision;
    assert!(second > first);
    wait_for_result(&mut h, second);
    let app = h.state();
    let r = app.store.session.as_ref().unwrap().result.as_ref().unwrap();
    assert_eq!(r.labels_revision, second);
    let map_after = r.class_map().unwrap();
    let differ = map_before
        .iter()
        .zip(map_after)
        .filter(|(a, b)| a != b)
        .count();
    assert!(differ > 0, "the new labels changed the map");
}

/// The app with a 128 x 128 corner of the demo loaded (short Stage B runs),
/// and that corner's test labels.
fn corner_harness(dir: &Path) -> (Harness<'static, StudioApp>, Vec<u8>) {
    let crop = |name: &str| {
        let out = dir.join(name);
        let status = Command::new("gdal_translate")
            .args(["-q", "-srcwin", "0", "0", "128", "128"])
            .arg(demo(name))
            .arg(&out)
            .status()
            .expect("gdal_translate runs");
        assert!(status.success());
        out
    };
    let (s2, s1, labels) = (
        crop("Spain_7370579_S2Hand.tif"),
        crop("Spain_7370579_S1Hand.tif"),
        crop("Spain_7370579_LabelHand.tif"),
    );
    let options = AppOptions {
        demo: false,
        files: Vec::new(),
        data_dir: Some(dir.join("data")),
    };
    let mut h = Harness::builder()
        .with_size(vec2(1400.0, 1000.0))
        .wgpu()
        .build_eframe(move |cc| StudioApp::new(cc, options));
    h.state_mut()
        .handle(AppCommand::Open(unidiff_studio::jobs::LoadRequest {
            hsi: Some(s2),
            sar: Some(s1),
            test_labels: Some(labels),
            label_offset: 1,
            class_names: vec!["dry".into(), "water".into()],
            ..Default::default()
        }));
    wait_loaded(&mut h);
    let test = h
        .state()
        .store
        .session
        .as_ref()
        .unwrap()
        .scene
        .test_labels
        .clone()
        .unwrap();
    (h, test.data)
}

#[test]
fn live_retraining_reuses_the_features_of_the_last_run() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, test) = corner_harness(dir.path());
    let dry = blocks_of_in(&test, 128, 1, 4, 11);
    let water = blocks_of_in(&test, 128, 2, 4, 11);
    assert!(dry.len() >= 2 && water.len() >= 2, "{dry:?} {water:?}");
    {
        let app = h.state_mut();
        let s = &mut app.store.classify_settings;
        s.t = 0;
        s.stride = Some(32);
        s.baseline = false;
        app.store.auto_classify = true;
    }
    paint(&mut h, 1, &dry[..1]);
    paint(&mut h, 2, &water[..1]);
    let first = h.state().store.session.as_ref().unwrap().labels_revision;
    let t0 = Instant::now();
    wait_for_result(&mut h, first);
    let first_seconds = t0.elapsed().as_secs_f64();
    let mlp = |h: &Harness<'_, StudioApp>| {
        let r = h
            .state()
            .store
            .session
            .as_ref()
            .unwrap()
            .result
            .as_ref()
            .unwrap();
        let (c, out) = r.outcome.mlp.as_ref().unwrap();
        (
            c.class_map.clone(),
            out.cached_patches,
            out.training_vectors,
        )
    };
    let (map_before, _, vectors_before) = mlp(&h);
    {
        let r = h
            .state()
            .store
            .session
            .as_ref()
            .unwrap()
            .result
            .as_ref()
            .unwrap();
        assert!(!r.backbone_kept, "the first run builds the backbone");
        assert!(!r.warm_started, "the first head is a fresh one");
    }
    // One more stroke: the head is retrained on features already computed.
    paint(&mut h, 1, &dry[1..]);
    paint(&mut h, 2, &water[1..]);
    let second = h.state().store.session.as_ref().unwrap().labels_revision;
    let t1 = Instant::now();
    wait_for_result(&mut h, second);
    let second_seconds = t1.elapsed().as_secs_f64();
    let (map_after, cached, vectors_after) = mlp(&h);
    let patches = unidiff_studio::pipeline::PatchGrid::new(128, 128, 32, 32).len();
    assert_eq!(
        cached, patches,
        "every patch's features came from the store"
    );
    assert!(vectors_after > vectors_before);
    let kept = |h: &Harness<'_, StudioApp>| {
        let r = h
            .state()
            .store
            .session
            .as_ref()
            .unwrap()
            .result
            .as_ref()
            .unwrap();
        r.backbone_kept
    };
    assert!(kept(&h), "the second run used the backbone kept loaded");
    {
        // A live update: the head went on from the first run's.
        let r = h
            .state()
            .store
            .session
            .as_ref()
            .unwrap()
            .result
            .as_ref()
            .unwrap();
        assert!(r.warm_started);
        let out = &r.outcome.mlp.as_ref().unwrap().1;
        assert_eq!(out.head.epochs, unidiff_studio::jobs::classify::LIVE_EPOCHS);
        // ... the whole head: the tiny backbone's 96 channels are narrower
        // than the head's first layer (128), so that layer is not kept.
        assert!(!out.head.first_layer_kept);
        assert_eq!(out.first_layer_patches, 0);
        // No held-out comparison from a head that saw every label.
        assert!(out.held_out_prediction.is_none());
    }
    let differ = map_before
        .iter()
        .zip(&map_after)
        .filter(|(a, b)| a != b)
        .count();
    assert!(differ > 0, "the new labels changed the map");
    eprintln!(
        "live retraining, 128 x 128, stride 32, {patches} patches: first run {first_seconds:.1} s, after a stroke {second_seconds:.1} s"
    );

    // Its export says it was a live update whose head continued, with the
    // settings a Classify would run; `run --from-json` runs those, and
    // gives the map that Classify gives in the app on the same labels.
    let exported = dir.path().join("exported");
    h.state_mut()
        .handle(AppCommand::ExportResults(exported.clone()));
    common::wait_tasks(&mut h);
    let record = read_json(&exported.join("run.json"));
    assert_eq!(record["made_in"], "app");
    assert_eq!(record["trigger"], "live update");
    assert_eq!(record["labels_revision"], second);
    assert_eq!(
        record["settings"]["stage_b"]["head"]["max_epochs"],
        unidiff_studio::jobs::classify::LIVE_EPOCHS
    );
    assert_eq!(
        record["settings_of_classify"]["stage_b"]["head"]["max_epochs"],
        200
    );
    let rerun = dir.path().join("rerun");
    rerun_from_json(&exported, &rerun);
    h.state_mut().store.auto_classify = false;
    h.state_mut().handle(AppCommand::Classify);
    h.run_steps(2);
    step_until(&mut h, Duration::from_secs(300), "classification", |a| {
        a.jobs.classifying.is_none()
    });
    h.run_steps(2);
    let (map_classify, _, _) = mlp(&h);
    {
        let r = h.state().store.session.as_ref().unwrap();
        let r = r.result.as_ref().unwrap();
        assert!(!r.warm_started, "Classify trains a fresh head");
        assert_eq!(r.labels_revision, second);
    }
    let rerun_map = unidiff_studio::io::open_labels(&rerun.join("classmap.tif"))
        .unwrap()
        .data;
    let differ = rerun_map
        .iter()
        .zip(&map_classify)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(
        differ, 0,
        "the rerun of a live update is the app's Classify: {differ} pixels differ"
    );
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{e}: {path:?}")))
        .unwrap()
}

/// `run --from-json` of an export gives its maps (the asked-for
/// classifier's and both forests').
fn rerun_to_the_same_maps(exported: &Path, rerun: &Path) {
    rerun_from_json(exported, rerun);
    for sub in ["", "baseline_rf", "baseline_filter_rf"] {
        let map = |d: &Path| {
            unidiff_studio::io::open_labels(&d.join(sub).join("classmap.tif"))
                .unwrap()
                .data
        };
        assert_eq!(map(rerun), map(exported), "{sub}");
    }
}

/// `unidiff-studio run --from-json exported/run.json --out rerun`.
fn rerun_from_json(exported: &Path, rerun: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_unidiff-studio"))
        .arg("run")
        .arg("--from-json")
        .arg(exported.join("run.json"))
        .arg("--out")
        .arg(rerun)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_modality_ablation_runs_all_seven_subsets() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, test) = corner_harness(dir.path());
    let dry = blocks_of_in(&test, 128, 1, 4, 11);
    let water = blocks_of_in(&test, 128, 2, 4, 11);
    assert!(!dry.is_empty() && !water.is_empty(), "{dry:?} {water:?}");
    paint(&mut h, 1, &dry);
    paint(&mut h, 2, &water);
    {
        let s = &mut h.state_mut().store.classify_settings;
        s.t = 0;
        s.stride = Some(32);
    }
    h.get_by_label("Modality ablation (7 runs)").click();
    h.run_steps(2);
    step_until(&mut h, Duration::from_secs(900), "ablation", |a| {
        a.jobs.classifying.is_none()
    });
    h.run_steps(2);
    let app = h.state();
    let r = app
        .store
        .session
        .as_ref()
        .unwrap()
        .result
        .as_ref()
        .unwrap_or_else(|| panic!("{:?}", app.store.messages));
    assert_eq!(r.ablation.len(), 7);
    let subsets: Vec<usize> = r.ablation.iter().map(|(m, _)| m.len()).collect();
    assert_eq!(subsets, vec![1, 1, 1, 2, 2, 2, 3]);
    assert!(r.ablation.iter().all(|(_, m)| m.is_some()));
    // The map shown is the run with all three modalities.
    let all = r.ablation[6].1.as_ref().unwrap().oa;
    let shown = r
        .outcome
        .mlp
        .as_ref()
        .unwrap()
        .0
        .metrics
        .as_ref()
        .unwrap()
        .oa;
    assert_eq!(all, shown);
    let table = format!("{:.4}", r.ablation[0].1.as_ref().unwrap().mf1);
    h.get_all_by_label(&table)
        .next()
        .expect("the table is shown");
}

/// The label curve from the panel's checkbox: a row per n in the results,
/// the n that takes every painted label giving the run's own map.
#[test]
fn the_label_curve_from_the_panel_shows_accuracy_against_labels() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, test) = corner_harness(dir.path());
    let dry = blocks_of_in(&test, 128, 1, 4, 11);
    let water = blocks_of_in(&test, 128, 2, 4, 11);
    assert!(dry.len() >= 2 && water.len() >= 2, "{dry:?} {water:?}");
    paint(&mut h, 1, &dry);
    paint(&mut h, 2, &water);
    {
        let s = &mut h.state_mut().store.classify_settings;
        s.t = 0;
        s.stride = Some(32);
        s.baseline = false;
    }
    h.run_steps(2);
    h.get_by_label("label curve").click();
    h.run_steps(2);
    assert_eq!(
        h.state().store.classify_settings.label_curve,
        vec![10, 25, 50, 100, 200]
    );
    classify_to_the_end(&mut h);
    let app = h.state();
    let r = app
        .store
        .session
        .as_ref()
        .unwrap()
        .result
        .as_ref()
        .unwrap_or_else(|| panic!("{:?}", app.store.messages));
    let curve = r.outcome.label_curve.as_ref().expect("a label curve");
    assert_eq!(curve.points.len(), 15);
    let per_class: Vec<usize> = curve.rows.iter().map(|r| r.per_class).collect();
    assert_eq!(per_class, vec![10, 25, 50, 100, 200]);
    // Painted blocks hold at most 4 x 25 pixels a class: 200 takes them all.
    let painted = r.outcome.mlp.as_ref().unwrap().1.training_vectors;
    assert!(painted > 0);
    let all = curve.rows[4].oa.clone().expect("scored");
    let oa = r
        .outcome
        .mlp
        .as_ref()
        .unwrap()
        .0
        .metrics
        .as_ref()
        .unwrap()
        .oa;
    assert_eq!((all.mean, all.sd), (oa, Some(0.0)));
    let first = curve.rows[0].labels;
    assert_eq!(first, 20.0, "10 labels of each of 2 classes");
    // In the results window, under its header.
    h.get_by_label("Label curve (accuracy against labels per class)")
        .click();
    h.run_steps(2);
    h.get_by_label("labels / class");
    h.get_all_by_label(&format!("{:.4} ({:.4}-{:.4})", all.mean, all.min, all.max))
        .next()
        .expect("the last row's OA shown");
    save_render(&mut h, "label_curve.png");
}

/// Results → Export polygons…: the shown map as a GeoPackage layer with
/// the session's class names and areas; a folder that does not exist is
/// named in the error and leaves nothing behind.
#[test]
fn export_polygons_writes_the_shown_map_as_a_geopackage() {
    use gdal::vector::LayerAccess;
    use unidiff_studio::ui::FileAction;
    let dir = tempfile::tempdir().unwrap();
    let mut h = classified_corner(dir.path());
    h.get_by_label("Export polygons…");
    let out = dir.path().join("map.gpkg");
    h.state_mut().handle(AppCommand::FilePicked(
        FileAction::ExportPolygons { dissolve: false },
        out.clone(),
    ));
    common::wait_tasks(&mut h);
    let messages: Vec<String> = h
        .state()
        .store
        .messages
        .iter()
        .map(|m| m.text.clone())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("polygons to") && m.contains("map.gpkg")),
        "{messages:?}"
    );
    let map = h
        .state()
        .store
        .session
        .as_ref()
        .unwrap()
        .result
        .as_ref()
        .unwrap()
        .class_map()
        .unwrap()
        .to_vec();
    let gpkg = gdal::Dataset::open(&out).unwrap();
    let mut layer = gpkg.layer_by_name("landcover").unwrap();
    let mut names = std::collections::BTreeSet::new();
    let mut count = 0;
    for f in layer.features() {
        count += 1;
        let name = f.field_index("name").unwrap();
        names.insert(f.field_as_string(name).unwrap().unwrap_or_default());
    }
    assert!(count > 0);
    let classes_in_map: std::collections::BTreeSet<u8> = map.iter().copied().collect();
    let expected: std::collections::BTreeSet<String> = classes_in_map
        .iter()
        .map(|&c| ["", "dry", "water"][c as usize].to_string())
        .collect();
    assert_eq!(names, expected);
    // Only the GeoPackage: the temporary raster is gone.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("map.gpkg"))
        .collect();
    assert_eq!(left, vec!["map.gpkg".to_string()]);

    // Into a folder that does not exist: the error names the file.
    let missing = dir.path().join("no/such/folder/map.gpkg");
    h.state_mut().handle(AppCommand::FilePicked(
        FileAction::ExportPolygons { dissolve: false },
        missing.clone(),
    ));
    common::wait_tasks(&mut h);
    let text = missing.display().to_string();
    assert!(
        h.state()
            .store
            .messages
            .iter()
            .any(|m| m.text.contains("cannot write the polygons to") && m.text.contains(&text)),
        "{:?}",
        h.state().store.messages
    );
    assert!(!missing.exists());

    // Results → Validation sample…: 10 points per class of the shown map.
    let sample = dir.path().join("sample.gpkg");
    h.state_mut().handle(AppCommand::FilePicked(
        FileAction::ValidationSample { per_class: 10 },
        sample.clone(),
    ));
    common::wait_tasks(&mut h);
    // The analyst labels every point but the first as the map says.
    {
        let ds = gdal::Dataset::open_ex(
            &sample,
            gdal::DatasetOptions {
                open_flags: gdal::GdalOpenFlags::GDAL_OF_UPDATE
                    | gdal::GdalOpenFlags::GDAL_OF_VECTOR,
                ..Default::default()
            },
        )
        .unwrap();
        let mut layer = ds.layer_by_name("sample").unwrap();
        let edits: Vec<(u64, i32)> = layer
            .features()
            .map(|f| {
                let class = f.field_as_integer(f.field_index("map_class").unwrap());
                (f.fid().unwrap(), class.unwrap().unwrap())
            })
            .collect();
        let classes_in_map = map.iter().collect::<std::collections::BTreeSet<_>>().len();
        assert_eq!(edits.len(), 10 * classes_in_map);
        for &(fid, class) in &edits[1..] {
            let mut f = layer.feature(fid).unwrap();
            let i = f.field_index("reference").unwrap();
            f.set_field_integer(i, class).unwrap();
            layer.set_feature(f).unwrap();
        }
    }
    // Results → Accuracy from sample…: a map that agrees with every
    // labelled point, the unlabelled one said.
    h.state_mut().handle(AppCommand::FilePicked(
        FileAction::SampleAccuracy,
        sample.clone(),
    ));
    common::wait_tasks(&mut h);
    let app = h.state();
    let r = app.store.session.as_ref().unwrap().result.as_ref().unwrap();
    let (_, accuracy) = r
        .sample_accuracy
        .as_ref()
        .unwrap_or_else(|| panic!("{:?}", app.store.messages));
    let e = &accuracy.estimates;
    let used = e.sample_size;
    assert_eq!(e.sample_size, 10 * e.classes.len() - 1);
    assert!((e.overall.value - 1.0).abs() < 1e-12, "{:?}", e.overall);
    assert!(
        e.notes
            .iter()
            .any(|n| n.contains("have no `reference` yet")),
        "{:?}",
        e.notes
    );
    h.get_by_label("Validation sample (area-adjusted accuracy)")
        .click();
    h.run_steps(2);
    // Every point agrees: the interval is Wilson's at the points used,
    // not the zero-width 1.0000-1.0000 of the normal one.
    let lower = unidiff_studio::metrics::area_accuracy::wilson_interval(1.0, used as f64)[0];
    assert!(lower < 0.9, "{lower}");
    h.get_all_by_label(&format!("overall accuracy 1.0000 ({lower:.4}-1.0000)"))
        .next()
        .expect("the overall accuracy shown");
    save_render(&mut h, "validation_sample.png");
}

/// Results → Clean-up: a sieve then a majority filter, each a step on the
/// cleaned-map layer (equal to GDAL's sieve and the majority filter run on
/// their own), the class areas, Export results and Export polygons made
/// from the cleaned map, then both steps undone back to the class map.
#[test]
fn cleanup_steps_make_a_cleaned_layer_that_exports_and_undoes() {
    use gdal::vector::LayerAccess;
    use unidiff_studio::pipeline::cleanup::CleanStep;
    use unidiff_studio::ui::FileAction;
    let dir = tempfile::tempdir().unwrap();
    let mut h = classified_corner(dir.path());
    let (raw, grid) = {
        let s = h.state().store.session.as_ref().unwrap();
        let r = s.result.as_ref().unwrap();
        (
            r.class_map().unwrap().to_vec(),
            s.scene.grid().unwrap().clone(),
        )
    };
    let layer_visible =
        |h: &Harness<'_, StudioApp>, id: LayerId| h.state().store.layers.get(id).unwrap().visible;
    assert!(layer_visible(&h, LayerId::ClassMap));

    h.get_by_label("Clean-up (minimum mapping unit)").click();
    h.run_steps(2);
    h.state_mut().views.results.sieve_unit = 20.0;
    h.get_by_label("Sieve").click();
    h.run_steps(2);
    common::wait_tasks(&mut h);
    h.run_steps(2);
    let sieve = CleanStep::Sieve {
        min_pixels: 20,
        connectivity: 4,
        hectares: None,
    };
    let sieved = sieve.apply(&raw, &grid).unwrap();
    let changed = sieved.iter().zip(&raw).filter(|(a, b)| a != b).count();
    assert!(changed > 0, "the sieve has specks to remove");
    {
        let s = h.state().store.session.as_ref().unwrap();
        let r = s.result.as_ref().unwrap();
        let c = r
            .cleaned_map()
            .unwrap_or_else(|| panic!("{:?}", h.state().store.messages));
        assert_eq!(c.class_map.as_slice(), sieved.as_slice());
        assert_eq!(c.changed, changed);
        assert!(c.scores.is_some(), "scored on the test labels");
        assert_eq!(s.cleaned_class_map(), Some(sieved.as_slice()));
        assert_eq!(r.class_map(), Some(raw.as_slice()), "the class map stays");
    }
    assert!(layer_visible(&h, LayerId::CleanedMap));
    assert!(!layer_visible(&h, LayerId::ClassMap));
    h.get_by_label("1. sieve: regions under 20 px, 4-connected");
    h.get_by_label("Class areas (cleaned map)");

    // A 3 x 3 majority on top of the sieved map.
    h.get_by_label("Majority filter").click();
    h.run_steps(2);
    common::wait_tasks(&mut h);
    h.run_steps(2);
    let both = CleanStep::Majority { k: 3 }.apply(&sieved, &grid).unwrap();
    h.get_by_label("2. 3 x 3 majority");
    save_render(&mut h, "cleanup.png");

    // Export results: the cleaned map beside the run's own.
    let out = dir.path().join("export");
    h.state_mut().handle(AppCommand::FilePicked(
        FileAction::ExportResults,
        out.clone(),
    ));
    common::wait_tasks(&mut h);
    let written = unidiff_studio::io::open_labels(&out.join("classmap_cleaned.tif")).unwrap();
    assert_eq!(written.data, both);
    let record = std::fs::read_to_string(out.join("cleanup.txt")).unwrap();
    assert!(
        record.contains("1. sieve: regions under 20 px") && record.contains("2. 3 x 3 majority")
    );
    assert_eq!(
        unidiff_studio::io::open_labels(&out.join("classmap.tif"))
            .unwrap()
            .data,
        raw
    );

    // Export polygons: the cleaned map's, their areas summing to its
    // class areas.
    let gpkg_path = dir.path().join("clean.gpkg");
    h.state_mut().handle(AppCommand::FilePicked(
        FileAction::ExportPolygons { dissolve: true },
        gpkg_path.clone(),
    ));
    common::wait_tasks(&mut h);
    let gpkg = gdal::Dataset::open(&gpkg_path).unwrap();
    let mut layer = gpkg.layer_by_name("landcover").unwrap();
    let mut ha_of = std::collections::BTreeMap::<i32, f64>::new();
    for f in layer.features() {
        let class = f
            .field_as_integer(f.field_index("class").unwrap())
            .unwrap()
            .unwrap();
        let ha = f
            .field_as_double(f.field_index("area_ha").unwrap())
            .unwrap()
            .unwrap();
        *ha_of.entry(class).or_default() += ha;
    }
    {
        let r = h
            .state()
            .store
            .session
            .as_ref()
            .unwrap()
            .result
            .as_ref()
            .unwrap();
        for a in &r.delivered_areas().unwrap().classes {
            let (Some(want), Some(&got)) = (a.ha, ha_of.get(&i32::from(a.value))) else {
                continue;
            };
            assert!(
                (got - want).abs() <= 1e-3 * want,
                "class {}: {got} ha, {want} ha",
                a.value
            );
        }
        let pixels: u64 = r
            .delivered_areas()
            .unwrap()
            .classes
            .iter()
            .map(|a| a.pixels)
            .sum();
        assert_eq!(pixels as usize, both.iter().filter(|&&v| v != 0).count());
    }
    // Dissolved: one multipolygon per class, its area the sum of the
    // class's polygons.
    let mut dissolved = gpkg.layer_by_name("landcover_dissolved").unwrap();
    let per_class: Vec<(i32, f64)> = dissolved
        .features()
        .map(|f| {
            (
                f.field_as_integer(0).unwrap().unwrap(),
                f.field_as_double(2).unwrap().unwrap(),
            )
        })
        .collect();
    assert_eq!(per_class.len(), ha_of.len());
    for (class, ha) in per_class {
        assert!((ha - ha_of[&class]).abs() < 1e-9, "class {class}");
    }

    // Undo, twice: back to the class map.
    h.get_by_label("Undo last step").click();
    h.run_steps(2);
    assert_eq!(
        h.state()
            .store
            .session
            .as_ref()
            .unwrap()
            .cleaned_class_map(),
        Some(sieved.as_slice())
    );
    h.get_by_label("Undo last step").click();
    h.run_steps(2);
    assert_eq!(
        h.state()
            .store
            .session
            .as_ref()
            .unwrap()
            .cleaned_class_map(),
        None
    );
    assert!(layer_visible(&h, LayerId::ClassMap));
    h.get_by_label("no step yet on the diffusion features + MLP map");
}

/// Results → Validation sample…: the sample opens in the sample window
/// with the class maps hidden; its points are labelled there (class
/// buttons, then on to the next unlabelled point), each label written to
/// the GeoPackage at once, and "Accuracy from these points" scores the map.
#[test]
fn a_validation_sample_is_labelled_in_the_app_and_scores_the_map() {
    use unidiff_studio::io::sample_points::{REFERENCE_FIELD, read_sample_points};
    use unidiff_studio::ui::FileAction;
    let dir = tempfile::tempdir().unwrap();
    let mut h = classified_corner(dir.path());
    let sample_path = dir.path().join("sample.gpkg");
    h.state_mut().handle(AppCommand::FilePicked(
        FileAction::ValidationSample { per_class: 4 },
        sample_path.clone(),
    ));
    common::wait_tasks(&mut h);
    h.run_steps(2);
    let (map, width, classes) = {
        let s = h.state().store.session.as_ref().unwrap();
        let r = s.result.as_ref().unwrap();
        (
            r.class_map().unwrap().to_vec(),
            s.scene.grid().unwrap().width,
            s.classes.clone(),
        )
    };
    let n = {
        let app = h.state();
        let sample = app
            .store
            .sample
            .as_ref()
            .unwrap_or_else(|| panic!("{:?}", app.store.messages));
        assert_eq!(sample.labelled(), 0);
        let p = sample.points[sample.current];
        assert_eq!(
            app.map.view.center,
            [p.col as f32 + 0.5, p.row as f32 + 0.5]
        );
        assert!(
            !app.store.layers.get(LayerId::ClassMap).unwrap().visible,
            "blind labelling"
        );
        sample.points.len()
    };
    let classes_in_map = map.iter().collect::<std::collections::BTreeSet<_>>().len();
    assert_eq!(n, 4 * classes_in_map);
    h.get_by_label(&format!(
        "point 1 of {n}: row {}, column {}",
        { h.state().store.sample.as_ref().unwrap().points[0].row },
        h.state().store.sample.as_ref().unwrap().points[0].col
    ));
    // Every point but the last labelled as the map says: the first by its
    // button, the others by command; each goes on to the next point.
    for k in 0..n - 1 {
        let (current, truth) = {
            let s = h.state().store.sample.as_ref().unwrap();
            let p = s.points[s.current];
            (s.current, map[p.row * width + p.col])
        };
        assert_eq!(current, k);
        if k == 0 {
            let name = classes
                .iter()
                .find(|c| c.value == truth)
                .unwrap()
                .name
                .clone();
            h.get_by_role_and_label(eframe::egui::accesskit::Role::Button, &name)
                .click();
            h.run_steps(2);
        } else {
            h.state_mut()
                .handle(AppCommand::SetSampleReference(Some(truth)));
        }
    }
    common::wait_tasks(&mut h);
    h.run_steps(2);
    let app = h.state();
    let sample = app.store.sample.as_ref().unwrap();
    assert_eq!(sample.labelled(), n - 1);
    assert!(!sample.unsaved, "every label written");
    assert_eq!(sample.current, n - 1, "on the one point left");
    let grid = app
        .store
        .session
        .as_ref()
        .unwrap()
        .scene
        .grid()
        .unwrap()
        .clone();
    let on_disk = read_sample_points(&sample_path, REFERENCE_FIELD, &grid, &classes).unwrap();
    assert_eq!(on_disk.points, sample.points);
    h.get_by_label(&format!("sample.gpkg: {} of {n} points labelled", n - 1));
    save_render(&mut h, "sample_labelling.png");
    h.get_by_label("Accuracy from these points").click();
    h.run_steps(2);
    common::wait_tasks(&mut h);
    let app = h.state();
    let r = app.store.session.as_ref().unwrap().result.as_ref().unwrap();
    let (_, accuracy) = r
        .sample_accuracy
        .as_ref()
        .unwrap_or_else(|| panic!("{:?}", app.store.messages));
    assert_eq!(accuracy.estimates.sample_size, n - 1);
    assert!((accuracy.estimates.overall.value - 1.0).abs() < 1e-12);
}

/// File → Apply model to scenes…: the last classification's model applied
/// (in tiles of 64) to the scene it was trained on reproduces its map pixel
/// for pixel, into a folder named after the scene, with the model beside.
#[test]
fn apply_model_to_scenes_maps_the_training_scene_as_the_classification_did() {
    use unidiff_studio::jobs::SceneInputs;
    use unidiff_studio::ui::vocabulary::Window;
    let dir = tempfile::tempdir().unwrap();
    let mut h = classified_corner(dir.path());
    let map = {
        let r = h
            .state()
            .store
            .session
            .as_ref()
            .unwrap()
            .result
            .as_ref()
            .unwrap();
        r.outcome.main_class_map().unwrap().to_vec()
    };
    // Nothing to map yet: said, nothing started.
    h.state_mut().handle(AppCommand::ShowWindow(Window::Apply));
    h.run_steps(2);
    h.get_by_label("Apply").click();
    h.run_steps(2);
    assert!(h.state().jobs.applying.is_none());
    assert!(
        h.state()
            .store
            .messages
            .iter()
            .any(|m| m.text.contains("has no file")),
        "{:?}",
        h.state().store.messages
    );
    let out = dir.path().join("maps");
    {
        let a = &mut h.state_mut().store.apply_settings;
        // The second scene's file is missing: said for it, the first mapped.
        a.scenes = vec![
            SceneInputs {
                hsi: Some(dir.path().join("Spain_7370579_S2Hand.tif")),
                sar: Some(dir.path().join("Spain_7370579_S1Hand.tif")),
            },
            SceneInputs {
                hsi: Some(dir.path().join("missing.tif")),
                sar: None,
            },
        ];
        a.out = Some(out.clone());
        a.tile = 64;
    }
    // The message's notice would sit over the window's button.
    h.state_mut().store.messages.clear();
    h.run_steps(2);
    h.state_mut().handle(AppCommand::ApplyModel);
    h.run_steps(2);
    step_until(&mut h, Duration::from_secs(600), "applying", |a| {
        a.jobs.applying.is_none()
    });
    h.run_steps(2);
    let folder = out.join("Spain_7370579_S2Hand");
    let written = unidiff_studio::io::open_labels(&folder.join("classmap.tif"))
        .unwrap_or_else(|e| panic!("{e}: {:?}", h.state().store.messages));
    assert_eq!(
        written.data, map,
        "the applied model's map is the classification's"
    );
    assert!(folder.join("predict.json").exists());
    assert!(out.join("model.udmodel").exists());
    let last = h.state().store.last_applied.as_ref().unwrap();
    assert!(last.scenes[0].2.is_ok());
    let why = last.scenes[1].2.as_ref().unwrap_err();
    assert!(why.contains("missing.tif"), "{why}");
    assert!(!out.join("missing").join("predict.json").exists());
    h.get_by_label_contains("Spain_7370579_S2Hand: 128 x 128 px");
    save_render(&mut h, "apply.png");
}

/// The corner scene with two blocks of each class painted, classified by
/// the MLP alone (t = 0, stride 32).
fn classified_corner(dir: &Path) -> Harness<'static, StudioApp> {
    classified_corner_with(dir, false)
}

/// The same, with both forests beside the MLP when `baseline`.
fn classified_corner_with(dir: &Path, baseline: bool) -> Harness<'static, StudioApp> {
    let (mut h, test) = corner_harness(dir);
    paint(&mut h, 1, &blocks_of_in(&test, 128, 1, 2, 11));
    paint(&mut h, 2, &blocks_of_in(&test, 128, 2, 2, 11));
    {
        let s = &mut h.state_mut().store.classify_settings;
        s.t = 0;
        s.stride = Some(32);
        s.baseline = baseline;
    }
    h.run_steps(2);
    classify_to_the_end(&mut h);
    h
}

/// Clicks Classify and steps the app until the classification has ended.
fn classify_to_the_end(h: &mut Harness<'_, StudioApp>) {
    h.get_by_label("Classify").click();
    h.run_steps(2);
    step_until(h, Duration::from_secs(900), "classification", |a| {
        a.jobs.classifying.is_none()
    });
    h.run_steps(2);
}

/// Steps the app until `done` holds (at most `limit`).
fn step_until(
    h: &mut Harness<'_, StudioApp>,
    limit: Duration,
    what: &str,
    done: impl Fn(&StudioApp) -> bool,
) {
    let t0 = Instant::now();
    while !done(h.state()) {
        assert!(
            t0.elapsed() < limit,
            "{what}: not within {limit:?}; messages {:?}",
            h.state().store.messages
        );
        std::thread::sleep(Duration::from_millis(50));
        h.step();
    }
}

#[test]
fn stage_a_from_the_panel_runs_cancels_runs_again_and_feeds_stage_b() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, test) = corner_harness(dir.path());
    let adapter_of = |app: &StudioApp| {
        app.store
            .classify_settings
            .backbone
            .adapter()
            .map(Path::to_path_buf)
    };
    // The panel names the backbone and its trainable fraction.
    h.get_by_label("Stage A trains 157,504 of 2,008,102 parameters (7.84 %)");
    // A long run: progress moves, then Cancel stops it and keeps the backbone.
    {
        let s = &mut h.state_mut().store.adapt_settings;
        s.steps = 500;
        s.batch = 2;
    }
    h.get_by_label("Run Stage A").click();
    step_until(&mut h, Duration::from_secs(120), "three steps", |a| {
        a.store.adapt_curve.len() >= 3
    });
    let step = h.state().jobs.adapting.as_ref().unwrap().step.clone();
    assert!(
        step.starts_with("step ") && step.contains("/500, loss "),
        "{step}"
    );
    save_render(&mut h, "training_panel_mid_run.png");
    h.get_by_label("Cancel Stage A").click();
    step_until(&mut h, Duration::from_secs(60), "cancelled", |a| {
        a.jobs.adapting.is_none()
    });
    assert!(adapter_of(h.state()).is_none());
    assert!(
        h.state()
            .store
            .messages
            .iter()
            .any(|m| m.text.contains("Stage A cancelled")),
        "{:?}",
        h.state().store.messages
    );
    // Again, to the end: the adapter is written and used by Stage B.
    h.state_mut().store.adapt_settings.steps = 3;
    h.get_by_label("Run Stage A").click();
    h.step();
    assert!(h.state().jobs.adapting.is_some());
    step_until(&mut h, Duration::from_secs(180), "Stage A done", |a| {
        a.jobs.adapting.is_none()
    });
    // The adapter is checked against the backbone (a task), then used.
    common::wait_tasks(&mut h);
    let adapter = adapter_of(h.state()).expect("the new adapter is in use");
    let meta = unidiff_studio::model::adapter::read_adapter_metadata(&adapter).unwrap();
    assert_eq!((meta.steps, meta.batch), (3, 2));
    assert_eq!(meta.loss_curve, h.state().store.adapt_curve);
    assert!(meta.loss_curve.iter().all(|l| l.is_finite()));
    // Stage B on the adapted backbone.
    let dry = blocks_of_in(&test, 128, 1, 2, 11);
    let water = blocks_of_in(&test, 128, 2, 2, 11);
    paint(&mut h, 1, &dry);
    paint(&mut h, 2, &water);
    {
        let s = &mut h.state_mut().store.classify_settings;
        s.t = 0;
        s.stride = Some(32);
        s.baseline = false;
    }
    h.get_by_label("Classify").click();
    let revision = h.state().store.session.as_ref().unwrap().labels_revision;
    wait_for_result(&mut h, revision);
    let r = h
        .state()
        .store
        .session
        .as_ref()
        .unwrap()
        .result
        .as_ref()
        .unwrap();
    assert!(
        r.backbone.contains("adapted by") && r.backbone.contains("3 Stage A steps"),
        "{}",
        r.backbone
    );
    assert!(r.class_map().is_some());
}

#[test]
fn the_timestep_sweep_plots_scores_against_t_and_marks_the_best() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, test) = corner_harness(dir.path());
    paint(&mut h, 1, &blocks_of_in(&test, 128, 1, 3, 11));
    paint(&mut h, 2, &blocks_of_in(&test, 128, 2, 3, 11));
    {
        let app = h.state_mut();
        app.store.classify_settings.stride = Some(32);
        app.views.explorer.open = true;
        app.views.explorer.sweep_step = 500;
    }
    h.run_steps(2);
    // x_t arrives from a task and moves the buttons below it: wait for it.
    common::wait_tasks(&mut h);
    h.get_by_label("Sweep (2 runs)").click();
    h.step();
    let revision = h.state().store.session.as_ref().unwrap().labels_revision;
    wait_for_result(&mut h, revision);
    let app = h.state();
    let sweep = &app.views.explorer.sweep;
    let ts: Vec<i64> = sweep.iter().map(|p| p.t).collect();
    assert_eq!(ts, vec![0, 500]);
    assert!(sweep.iter().all(|p| p.metrics.is_some()));
    let best = unidiff_studio::jobs::classify::best_of(sweep).unwrap();
    let best_mf1 = best.metrics.as_ref().unwrap().mf1;
    assert!(
        sweep
            .iter()
            .all(|p| p.metrics.as_ref().unwrap().mf1 <= best_mf1)
    );
    // The map shown is the best timestep's.
    let shown = app.store.session.as_ref().unwrap().result.as_ref().unwrap();
    assert_eq!(shown.class_map().unwrap(), best.class_map.as_slice());
    let label = format!("best t = {} (mF1 {best_mf1:.3})", best.t);
    let best_t = best.t;
    h.get_by_label(&label);
    // The class map beside x_t follows the slider to the nearest swept t.
    h.state_mut().views.explorer.t = 420;
    h.run_steps(2);
    assert_eq!(h.state().views.explorer.class_map_from, Some(500));
    h.get_by_label("class map at t = 500 (nearest swept)");
    save_render(&mut h, "timestep_sweep.png");
    h.get_by_label("Use this t").click();
    h.run_steps(1);
    assert_eq!(h.state().store.classify_settings.t, best_t);
    // The class map at the slider's own t: one more point joins the sweep.
    h.get_by_label("Class map at t = 420").click();
    h.step();
    wait_for_result(&mut h, revision);
    h.run_steps(2);
    let ts: Vec<i64> = h.state().views.explorer.sweep.iter().map(|p| p.t).collect();
    assert_eq!(ts, vec![0, 420, 500]);
    assert_eq!(h.state().views.explorer.class_map_from, Some(420));
    h.get_by_label("class map at t = 420 (nearest swept)");
}

#[test]
fn the_explorer_projects_the_features_at_the_slider_timestep() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, _) = corner_harness(dir.path());
    {
        let app = h.state_mut();
        app.views.explorer.open = true;
        app.views.explorer.t = 200;
    }
    h.run_steps(2);
    common::wait_tasks(&mut h);
    h.get_by_label("Features at t = 200").click();
    h.step();
    assert!(h.state().jobs.projecting.is_some());
    step_until(&mut h, Duration::from_secs(120), "pRGB projection", |a| {
        a.views.explorer.projection.is_some()
    });
    h.run_steps(2);
    let prgb = h.state().views.explorer.projection.clone().unwrap();
    assert_eq!((prgb.t, prgb.block), (200, 8));
    assert_eq!((prgb.image.width, prgb.image.height), (128, 128));
    h.get_by_label("prgb features at t = 200, block 8 (3 PCs)");
    // Another modality, another picture.
    h.state_mut().views.explorer.layer = Some(LayerId::Pauli);
    h.run_steps(2);
    h.get_by_label("Features at t = 200").click();
    h.step();
    step_until(&mut h, Duration::from_secs(120), "SAR projection", |a| {
        a.jobs.projecting.is_none()
    });
    h.run_steps(2);
    let sar = h.state().views.explorer.projection.clone().unwrap();
    assert_eq!(sar.modality, unidiff_studio::pipeline::Modality::Sar);
    assert_ne!(sar.image.data, prgb.image.data);
    h.get_by_label("sar features at t = 200, block 8 (3 PCs)");
    save_render(&mut h, "explorer_features.png");
}

/// A project saved from the app (labels painted, a classification, changed
/// settings and layers), its whole folder moved, and opened again: the
/// same labels, classes, settings, layers, model and map, pixel for pixel.
#[test]
fn a_project_saved_moved_and_reopened_gives_back_labels_settings_model_and_map() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("site_a");
    std::fs::create_dir_all(&a).unwrap();
    let (mut h, test) = corner_harness(&a);
    let dry = blocks_of_in(&test, 128, 1, 2, 11);
    let water = blocks_of_in(&test, 128, 2, 2, 11);
    assert!(dry.len() == 2 && water.len() == 2, "{dry:?} {water:?}");
    {
        let app = h.state_mut();
        let s = &mut app.store.classify_settings;
        s.t = 0;
        s.stride = Some(32);
        s.baseline = false;
        app.store.adapt_settings.steps = 7;
        app.store.layers.get_mut(LayerId::Pauli).unwrap().visible = true;
        app.store.layers.get_mut(LayerId::Prgb).unwrap().opacity = 0.5;
        // A stretch moved by hand: values no f32 holds exactly.
        app.store.layers.get_mut(LayerId::Pca).unwrap().lo = [0.1, 0.15, 0.2];
    }
    paint(&mut h, 1, &dry);
    paint(&mut h, 2, &water);
    let revision = h.state().store.session.as_ref().unwrap().labels_revision;
    h.state_mut().handle(AppCommand::Classify);
    wait_for_result(&mut h, revision);
    h.state_mut()
        .handle(AppCommand::SaveProjectAs(a.join("flood")));
    common::wait_tasks(&mut h);
    let project = a.join("flood.udproj");
    assert!(project.is_file(), "{:?}", h.state().store.messages);
    assert_eq!(h.state().store.project.as_deref(), Some(project.as_path()));
    assert!(
        !h.state().store.has_unsaved_work(),
        "saving the project saves the labels"
    );
    assert!(h.state().window_title().starts_with("flood.udproj"));

    let snapshot = |h: &Harness<'_, StudioApp>| {
        let app = h.state();
        let s = app.store.session.as_ref().unwrap();
        let r = s
            .result
            .as_ref()
            .unwrap_or_else(|| panic!("no result; messages {:?}", app.store.messages));
        (
            s.scene.train_labels.as_ref().unwrap().data.clone(),
            s.scene.test_labels.as_ref().unwrap().data.clone(),
            s.classes.clone(),
            app.store.classify_settings.clone(),
            app.store.adapt_settings.clone(),
            app.store.layers.layers.clone(),
            r.class_map().unwrap().to_vec(),
            r.shown,
            {
                // The model as its file holds it.
                let file = tempfile::NamedTempFile::new().unwrap();
                r.model.as_ref().unwrap().write(file.path()).unwrap();
                std::fs::read(file.path()).unwrap()
            },
            r.outcome
                .result(r.shown)
                .unwrap()
                .metrics
                .as_ref()
                .unwrap()
                .oa,
        )
    };
    let before = snapshot(&h);

    // An autosave written right after the save holds what the project
    // holds: opening the project again at once offers nothing (the offer
    // compares content, not times).
    h.state_mut().autosave_now();
    let autosaves = h.state().store.data_dir.join("autosave");
    let written = std::fs::read_dir(&autosaves)
        .map(|d| {
            d.flatten()
                .any(|e| e.path().join("autosave.json").is_file())
        })
        .unwrap_or(false);
    assert!(written, "an autosave in {}", autosaves.display());
    {
        // The project opened again from the command line, as a user does.
        let options = AppOptions {
            demo: false,
            files: vec![project.clone()],
            data_dir: Some(h.state().store.data_dir.clone()),
        };
        let mut again = Harness::builder()
            .with_size(vec2(1400.0, 1000.0))
            .wgpu()
            .build_eframe(move |cc| StudioApp::new(cc, options));
        wait_loaded(&mut again);
        assert_eq!(
            again.state().store.project.as_deref(),
            Some(project.as_path())
        );
        assert!(
            again.state().store.recovery.is_none(),
            "no recovery offered after a save and an open: {:?}",
            again.state().store.recovery.as_ref().map(|r| &r.differs)
        );
    }

    // Closing the project: nothing unsaved, so nothing asked.
    h.state_mut()
        .handle(AppCommand::NewProject { confirmed: false });
    h.run_steps(2);
    assert!(h.state().store.session.is_none() && h.state().store.project.is_none());

    // The whole folder moves; the old place is gone.
    let b = dir.path().join("site_b");
    std::fs::rename(&a, &b).unwrap();
    let moved = b.join("flood.udproj");
    h.state_mut().handle(AppCommand::OpenProject(moved.clone()));
    wait_loaded(&mut h);
    let errors: Vec<_> = h
        .state()
        .store
        .messages
        .iter()
        .filter(|m| m.error)
        .map(|m| m.text.clone())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let after = snapshot(&h);
    assert_eq!(before.0, after.0, "training labels");
    assert_eq!(before.1, after.1, "test labels");
    assert_eq!(before.2, after.2, "classes");
    assert_eq!(before.3, after.3, "Stage B settings");
    assert_eq!(before.4, after.4, "Stage A settings");
    assert_eq!(before.5, after.5, "layers");
    assert!(before.6 == after.6, "the map, pixel for pixel");
    assert_eq!(before.7, after.7);
    assert!(before.8 == after.8, "the trained model, byte for byte");
    assert_eq!(before.9, after.9, "the map's scores");
    let app = h.state();
    assert_eq!(app.store.project.as_deref(), Some(moved.as_path()));
    let sources = &app.store.session.as_ref().unwrap().sources;
    assert!(sources.hsi.as_ref().unwrap().starts_with(&b), "{sources:?}");
    assert!(app.store.prefs.recent[0].project.as_deref() == Some(moved.as_path()));
    assert!(
        !app.store.prefs.recent[1..]
            .iter()
            .any(|r| r.project.is_none() && r.hsi == sources.hsi),
        "the project's scene is not listed again beside it: {:?}",
        app.store.prefs.recent
    );

    // A stroke makes the work unsaved: New project asks first.
    paint(&mut h, 2, &dry[..1]);
    h.state_mut()
        .handle(AppCommand::NewProject { confirmed: false });
    assert!(h.state().store.session.is_some());
    assert_eq!(
        h.state().store.close_state,
        unidiff_studio::ui::vocabulary::CloseState::Asking
    );
    h.state_mut().handle(AppCommand::KeepOpen);

    // The autosave covers the project: the stroke and a changed setting
    // come back when the project is opened again from the command line.
    h.state_mut().handle(AppCommand::SetTimestep(123));
    let painted = h
        .state()
        .store
        .session
        .as_ref()
        .unwrap()
        .scene
        .train_labels
        .clone();
    h.state_mut().autosave_now();
    let data_dir = h.state().store.data_dir.clone();
    drop(h);
    let options = AppOptions {
        demo: false,
        files: vec![moved.clone()],
        data_dir: Some(data_dir),
    };
    let mut h = Harness::builder()
        .with_size(vec2(1400.0, 1000.0))
        .wgpu()
        .build_eframe(move |cc| StudioApp::new(cc, options));
    wait_loaded(&mut h);
    assert_eq!(h.state().store.project.as_deref(), Some(moved.as_path()));
    assert_eq!(
        h.state().store.classify_settings.t,
        0,
        "the project as saved"
    );
    assert!(
        h.state().store.recovery.is_some(),
        "the autosave is offered"
    );
    h.state_mut().handle(AppCommand::Recover(true));
    h.run_steps(2);
    let app = h.state();
    assert_eq!(app.store.classify_settings.t, 123, "the autosaved setting");
    assert_eq!(
        app.store.session.as_ref().unwrap().scene.train_labels,
        painted,
        "the autosaved labels"
    );
}

/// A project keeps every result of the last classification: the MLP's map
/// and both forests', the held-out comparison, a clean-up step with its
/// cleaned map, and a validation sample's accuracy; opened in a fresh app,
/// each comes back as it was.
#[test]
fn a_project_keeps_the_forests_the_clean_up_and_the_sample_accuracy() {
    use unidiff_studio::ui::FileAction;
    use unidiff_studio::ui::command::CleanRequest;
    let dir = tempfile::tempdir().unwrap();
    let mut h = classified_corner_with(dir.path(), true);
    h.state_mut()
        .handle(AppCommand::CleanMap(CleanRequest::Majority { k: 3 }));
    common::wait_tasks(&mut h);
    h.run_steps(2);
    // A validation sample, every point labelled as the map says, scored.
    let sample_path = dir.path().join("sample.gpkg");
    h.state_mut().handle(AppCommand::FilePicked(
        FileAction::ValidationSample { per_class: 3 },
        sample_path.clone(),
    ));
    common::wait_tasks(&mut h);
    h.run_steps(2);
    let (map, width) = {
        let s = h.state().store.session.as_ref().unwrap();
        let r = s.result.as_ref().unwrap();
        (
            r.class_map().unwrap().to_vec(),
            s.scene.grid().unwrap().width,
        )
    };
    let n = h.state().store.sample.as_ref().unwrap().points.len();
    for _ in 0..n {
        let truth = {
            let s = h.state().store.sample.as_ref().unwrap();
            let p = s.points[s.current];
            map[p.row * width + p.col]
        };
        h.state_mut()
            .handle(AppCommand::SetSampleReference(Some(truth)));
    }
    common::wait_tasks(&mut h);
    h.state_mut()
        .handle(AppCommand::ScoreWithSample(sample_path.clone()));
    common::wait_tasks(&mut h);
    h.run_steps(2);
    h.state_mut().handle(AppCommand::CloseSample);
    h.run_steps(2);

    let kept = |h: &Harness<'_, StudioApp>| {
        let app = h.state();
        let r = app
            .store
            .session
            .as_ref()
            .unwrap()
            .result
            .as_ref()
            .unwrap_or_else(|| panic!("no result; messages {:?}", app.store.messages));
        let maps: Vec<(ClassifierChoice, Vec<u8>)> = ClassifierChoice::ALL
            .into_iter()
            .filter_map(|c| r.outcome.result(c).map(|m| (c, m.class_map.clone())))
            .collect();
        let scores: Vec<Option<f64>> = ClassifierChoice::ALL
            .into_iter()
            .map(|c| {
                r.outcome
                    .result(c)
                    .and_then(|m| m.metrics.as_ref())
                    .map(|m| m.oa)
            })
            .collect();
        let cleaned: Vec<(ClassifierChoice, Vec<u8>, usize)> = r
            .cleaned
            .iter()
            .map(|c| (c.source, c.class_map.to_vec(), c.changed))
            .collect();
        let areas = r.areas.len();
        let sample = r
            .sample_accuracy
            .as_ref()
            .map(|(name, a)| (name.clone(), a.reference.clone(), a.estimates.clone()));
        let comparison = r.outcome.recommendation.clone();
        (maps, scores, cleaned, areas, sample, comparison, r.shown)
    };
    let before = kept(&h);
    assert_eq!(before.0.len(), 3, "the MLP and both forests");
    assert_eq!(before.2.len(), 1, "one clean-up step");
    assert!(before.5.is_some(), "a held-out comparison");
    assert!(before.4.is_some(), "{:?}", h.state().store.messages);
    h.state_mut()
        .handle(AppCommand::SaveProjectAs(dir.path().join("kept")));
    common::wait_tasks(&mut h);
    let project = dir.path().join("kept.udproj");
    assert!(project.is_file(), "{:?}", h.state().store.messages);
    let options = AppOptions {
        demo: false,
        files: vec![project.clone()],
        data_dir: Some(h.state().store.data_dir.clone()),
    };
    drop(h);
    let mut again = Harness::builder()
        .with_size(vec2(1400.0, 1000.0))
        .wgpu()
        .build_eframe(move |cc| StudioApp::new(cc, options));
    wait_loaded(&mut again);
    let after = kept(&again);
    assert_eq!(before.0, after.0, "every classifier's map");
    assert_eq!(before.1, after.1, "their scores on the test labels");
    assert_eq!(before.2, after.2, "the clean-up step and its map");
    assert_eq!(before.3, after.3, "each map's areas");
    // JSON keeps each f64 to within an ulp or two (serde_json's default
    // parsing), the rest exactly.
    let (a, b) = (before.4.unwrap(), after.4.unwrap());
    assert_eq!(
        (&a.0, &a.1),
        (&b.0, &b.1),
        "the sample and the map it scored"
    );
    json_close(
        &serde_json::to_value(&a.2).unwrap(),
        &serde_json::to_value(&b.2).unwrap(),
        "the sample's accuracy",
    );
    assert_eq!(before.5, after.5, "the held-out comparison");
    assert_eq!(before.6, after.6, "the map shown");

    // Exported from the reopened project, the result still reruns headless
    // to the same maps: the project kept its settings and labels.
    let exported = dir.path().join("exported");
    again
        .state_mut()
        .handle(AppCommand::ExportResults(exported.clone()));
    common::wait_tasks(&mut again);
    let record = read_json(&exported.join("run.json"));
    assert_eq!(record["made_in"], "app");
    assert_eq!(record["trigger"], "Classify");
    let rerun = dir.path().join("rerun");
    rerun_to_the_same_maps(&exported, &rerun);
}

/// The same JSON, numbers to 1e-12 relative.
fn json_close(a: &serde_json::Value, b: &serde_json::Value, what: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-12 * x.abs().max(1.0),
                "{what}: {x} vs {y}"
            );
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{what}");
            for (p, q) in x.iter().zip(y) {
                json_close(p, q, what);
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{what}"
            );
            for (k, p) in x {
                json_close(p, &y[k], &format!("{what}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{what}"),
    }
}
