//! Live retraining on the demo scene (512 x 512, tiny random backbone, the
//! CPU): with "classify again after each stroke" on, the first classification
//! computes the backbone's features of every patch; after one more stroke the
//! features come from the store and only the MLP head is retrained and
//! applied. Prints one JSON line: seconds of the first run and of the run
//! after the stroke (job time, and stroke to new map including the 0.8 s
//! pause that waits for the user to stop painting), and stroke to the first
//! map (the preview from patches that cover the scene once), and the map's
//! scores on the demo's test labels after each run.
//!
//! Run: `cargo bench --bench live_retrain` (add `--profile test` to share
//! the test build); `STRIDE=16` for the method's overlap (default 32);
//! `BACKBONE=random` for the paper's ImageNet-64 layout (random weights; with
//! `UNIDIFF_STUDIO_FEATURE_CACHE_MIB=6000` every patch's features stay),
//! `BACKBONE=/path/to/checkpoint.pt` for a checkpoint;
//! `LIVE_KEEPS_FIRST_LAYER=0` for live updates that train the whole head.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

use std::time::{Duration, Instant};

use eframe::egui::vec2;
use egui_kittest::Harness;
use unidiff_studio::scene::{Brush, LabelLayer};
use unidiff_studio::session::Command as SessionCommand;
use unidiff_studio::ui::{AppCommand, AppOptions, StudioApp};

/// Centres of up to `n` 5 x 5 blocks of the test layer that hold only `class`.
fn spots(test: &[u8], w: usize, class: u8, n: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let h = test.len() / w;
    for y in (10..h - 10).step_by(37) {
        for x in (10..w - 10).step_by(41) {
            if (y - 2..=y + 2).all(|yy| (x - 2..=x + 2).all(|xx| test[yy * w + xx] == class)) {
                out.push((x, y));
            }
            if out.len() == n {
                return out;
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

/// Steps until the result for the current labels is in: seconds waited
/// until the first map for them (a preview, or the result itself) and until
/// the result.
fn wait_for_map(h: &mut Harness<'_, StudioApp>) -> (f64, f64) {
    let t0 = Instant::now();
    let revision = h
        .state()
        .store
        .session
        .as_ref()
        .map_or(0, |s| s.labels_revision);
    let mut first = None;
    loop {
        h.step();
        let s = h.state().store.session.as_ref();
        let done = s.and_then(|s| s.result.as_ref()).map(|r| r.labels_revision);
        let previewed = s
            .and_then(|s| s.preview.as_ref())
            .map(|p| p.labels_revision);
        if first.is_none() && (done == Some(revision) || previewed == Some(revision)) {
            first = Some(t0.elapsed().as_secs_f64());
        }
        if done == Some(revision) && h.state().jobs.classifying.is_none() {
            let all = t0.elapsed().as_secs_f64();
            return (first.unwrap_or(all), all);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(3600),
            "{:?}",
            h.state().store.messages
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn main() {
    // As the app's main does.
    unidiff_studio::base::allocator::keep_freed_memory();
    let stride: usize = std::env::var("STRIDE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let dir = tempfile::tempdir().expect("temp dir");
    let options = AppOptions {
        demo: true,
        files: Vec::new(),
        data_dir: Some(dir.path().join("data")),
    };
    let mut h = Harness::builder()
        .with_size(vec2(1400.0, 1000.0))
        .wgpu()
        .build_eframe(move |cc| StudioApp::new(cc, options));
    let t0 = Instant::now();
    while h.state().store.session.is_none() || h.state().jobs.loading.is_some() {
        h.step();
        assert!(t0.elapsed() < Duration::from_secs(120), "the demo loads");
        std::thread::sleep(Duration::from_millis(20));
    }
    let test = h
        .state()
        .store
        .session
        .as_ref()
        .and_then(|s| s.scene.test_labels.clone())
        .expect("the demo has test labels");
    let (dry, water) = (spots(&test.data, 512, 1, 16), spots(&test.data, 512, 2, 16));
    let backbone = std::env::var("BACKBONE").unwrap_or_else(|_| "tiny-random".into());
    {
        let app = h.state_mut();
        app.store.classify_settings.backbone = if backbone.contains('/') {
            let path = std::path::PathBuf::from(&backbone);
            unidiff_studio::jobs::backbone::BackboneSpec::Checkpoint {
                path,
                config: unidiff_studio::jobs::backbone::UNetConfig::imagenet64(),
                adapter: None,
            }
        } else {
            unidiff_studio::jobs::backbone::BackboneSpec::Random {
                name: backbone.clone(),
                seed: 0,
                adapter: None,
            }
        };
        app.store.classify_settings.t = 0;
        app.store.classify_settings.stride = Some(stride);
        app.store.classify_settings.baseline = false;
        app.store.auto_classify = true;
        app.store.classify_settings.live_keeps_first_layer =
            std::env::var("LIVE_KEEPS_FIRST_LAYER").map_or(true, |v| v != "0");
    }
    paint(&mut h, 1, &dry[..12.min(dry.len())]);
    paint(&mut h, 2, &water[..12.min(water.len())]);
    let (_, first) = wait_for_map(&mut h);
    let first_scores = h
        .state()
        .store
        .session
        .as_ref()
        .and_then(|s| s.result.as_ref())
        .and_then(|r| r.outcome.mlp.as_ref())
        .and_then(|(m, _)| m.metrics.as_ref())
        .map(|m| (m.oa, m.mf1));
    let first_job = h
        .state()
        .store
        .session
        .as_ref()
        .and_then(|s| s.result.as_ref())
        .map_or(0.0, |r| r.seconds);
    let mut retrains = Vec::new();
    for k in 0..3 {
        let extra = [dry.get(12 + k).copied(), water.get(12 + k).copied()];
        for (class, at) in [(1u8, extra[0]), (2u8, extra[1])] {
            if let Some(at) = at {
                paint(&mut h, class, &[at]);
            }
        }
        let (to_first_map, to_map) = wait_for_map(&mut h);
        let r = h
            .state()
            .store
            .session
            .as_ref()
            .and_then(|s| s.result.as_ref())
            .expect("a result");
        let o = r.outcome.mlp.as_ref().map(|(_, o)| o);
        let scored = r.outcome.mlp.as_ref().and_then(|(m, _)| m.metrics.as_ref());
        let cached = o.map_or(0, |o| o.cached_patches);
        retrains.push(serde_json::json!({
            "stroke_to_first_map_s": to_first_map,
            "stroke_to_map_s": to_map,
            "job_s": r.seconds,
            "labelled_pass_s": o.map(|o| o.seconds_features),
            "head_training_s": o.map(|o| o.seconds_training),
            "prediction_s": o.map(|o| o.seconds_prediction),
            "training_vectors": o.map(|o| o.training_vectors),
            "head_epochs": o.map(|o| o.head.epochs),
            "patches_from_store": cached,
            "patches_from_first_layer_outputs": o.map(|o| o.first_layer_patches),
            "first_layer_kept": o.map(|o| o.head.first_layer_kept),
            "test_oa": scored.map(|m| m.oa),
            "test_mf1": scored.map(|m| m.mf1),
            "backbone_kept": r.backbone_kept,
            "head_warm_started": r.warm_started,
        }));
    }
    println!(
        "{}",
        serde_json::json!({
            "scene": "demo 512 x 512, t = 0, pRGB|PCA|SAR, MLP only (held-out check on)",
            "backbone": backbone,
            "threads": rayon::current_num_threads(),
            "stride": stride,
            "live_keeps_first_layer": h.state().store.classify_settings.live_keeps_first_layer,
            "first_run_s": first,
            "first_job_s": first_job,
            "first_test_oa_mf1": first_scores,
            "after_a_stroke": retrains,
        })
    );
}
