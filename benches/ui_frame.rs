//! Frame cost of the app on a Berlin-size scene (1723 rows x 476 columns):
//! the demo's Sentinel-2 and Sentinel-1 files resampled to that size with
//! gdal_translate, so three renderings and two label layers are on the GPU.
//! Measures the CPU time of one egui frame (our logic, layout and
//! tessellation; the GPU work is not included) while painting a long stroke
//! and while panning with the middle button, then checks that a stroke's
//! pixels are on screen in the frame after it; then frames while Stage B
//! and while Stage A run in the background.
//!
//! Run: `cargo bench --bench ui_frame` (prints one JSON line).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use eframe::egui::{self, Modifiers, PointerButton, pos2, vec2};
use egui_kittest::Harness;
use unidiff_studio::jobs::LoadRequest;
use unidiff_studio::scene::LabelLayer;
use unidiff_studio::ui::{AppCommand, AppOptions, StudioApp};

const ROWS: usize = 1723;
const COLS: usize = 476;

fn resample(src: &Path, dst: &Path) {
    let status = Command::new("gdal_translate")
        .args(["-q", "-r", "bilinear", "-outsize"])
        .args([COLS.to_string(), ROWS.to_string()])
        .arg(src)
        .arg(dst)
        .status()
        .expect("gdal_translate runs");
    assert!(status.success(), "gdal_translate {}", src.display());
}

fn stats(mut v: Vec<f64>) -> serde_json::Value {
    v.sort_by(f64::total_cmp);
    let n = v.len().max(1);
    let mean = v.iter().sum::<f64>() / n as f64;
    let p95 = v[((n as f64 * 0.95) as usize).min(n - 1)];
    serde_json::json!({
        "frames": v.len(),
        "mean_ms": mean * 1e3,
        "p95_ms": p95 * 1e3,
        "max_ms": v.last().copied().unwrap_or(0.0) * 1e3,
    })
}

/// Seconds of each frame while panning with the arrow keys (one press per
/// frame, about 60 frames a second), for at most `frames` frames and as long
/// as `running` says the job still runs.
fn pan_while(
    h: &mut Harness<'_, StudioApp>,
    frames: usize,
    mut running: impl FnMut(&StudioApp) -> Option<()>,
) -> Vec<f64> {
    let mut times = Vec::new();
    while times.len() < frames && running(h.state()).is_some() {
        let key = if times.len() % 2 == 0 {
            egui::Key::ArrowLeft
        } else {
            egui::Key::ArrowRight
        };
        h.key_press(key);
        let t = Instant::now();
        h.step();
        times.push(t.elapsed().as_secs_f64());
        std::thread::sleep(Duration::from_millis(16));
    }
    times
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (s2, s1, _) = unidiff_studio::demo::demo_paths().unwrap();
    let hsi = dir.path().join("berlin_size_s2.tif");
    let sar = dir.path().join("berlin_size_s1.tif");
    resample(&s2, &hsi);
    resample(&s1, &sar);
    let options = AppOptions {
        demo: false,
        files: Vec::new(),
        data_dir: Some(dir.path().join("data")),
    };
    let mut h = Harness::builder()
        .with_size(vec2(1600.0, 1000.0))
        .wgpu()
        .build_eframe(move |cc| StudioApp::new(cc, options));
    h.state_mut().handle(AppCommand::Open(LoadRequest {
        hsi: Some(hsi),
        sar: Some(sar),
        title: "Berlin-size".into(),
        ..LoadRequest::default()
    }));
    let start = Instant::now();
    h.step();
    while h.state().jobs.loading.is_some() {
        assert!(start.elapsed() < Duration::from_secs(300));
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    assert!(
        h.state().store.session.is_some(),
        "{:?}",
        h.state().store.messages
    );
    // Everything visible: three renderings and both label layers.
    for l in &mut h.state_mut().store.layers.layers {
        l.visible = true;
        l.opacity = 0.7;
    }
    h.run_steps(3);
    h.render().expect("first upload");
    let rect = h.state().map.rect.expect("map shown");
    let screen = |h: &Harness<'_, StudioApp>, x: f32, y: f32| {
        h.state().map.view.screen_from_image(rect, pos2(x, y))
    };

    // Painting: a stroke down the scene, one pointer move per frame.
    h.key_press(egui::Key::B);
    h.step();
    h.state_mut().store.brush_size = 9.0;
    let p0 = screen(&h, 200.0, 100.0);
    h.event(egui::Event::PointerMoved(p0));
    h.event(egui::Event::PointerButton {
        pos: p0,
        button: PointerButton::Primary,
        pressed: true,
        modifiers: Modifiers::NONE,
    });
    h.step();
    let mut painting = Vec::new();
    for i in 0..300 {
        let p = screen(
            &h,
            200.0 + (i as f32 * 0.2).sin() * 60.0,
            100.0 + i as f32 * 5.0,
        );
        h.event(egui::Event::PointerMoved(p));
        let t = Instant::now();
        h.step();
        painting.push(t.elapsed().as_secs_f64());
    }
    let last = screen(&h, 200.0, 1600.0);
    h.event(egui::Event::PointerButton {
        pos: last,
        button: PointerButton::Primary,
        pressed: false,
        modifiers: Modifiers::NONE,
    });
    h.step();
    let painted = h
        .state()
        .store
        .session
        .as_ref()
        .map(|s| s.class_counts(LabelLayer::Train)[1]);

    // Panning: middle-drag, one move per frame.
    let mut panning = Vec::new();
    let c = rect.center();
    h.event(egui::Event::PointerMoved(c));
    h.event(egui::Event::PointerButton {
        pos: c,
        button: PointerButton::Middle,
        pressed: true,
        modifiers: Modifiers::NONE,
    });
    h.step();
    for i in 0..300 {
        let p = c + vec2(
            (i as f32 * 0.05).sin() * 200.0,
            (i as f32 * 0.03).cos() * 150.0,
        );
        h.event(egui::Event::PointerMoved(p));
        let t = Instant::now();
        h.step();
        panning.push(t.elapsed().as_secs_f64());
    }
    h.event(egui::Event::PointerButton {
        pos: c,
        button: PointerButton::Middle,
        pressed: false,
        modifiers: Modifiers::NONE,
    });
    h.step();

    // Stroke to screen: one frame after the pointer press, the pixel shows
    // the class colour (the render includes the rectangle upload).
    h.state_mut().map.fit_pending = true;
    h.run_steps(2);
    let rect = h.state().map.rect.expect("map shown");
    for l in &mut h.state_mut().store.layers.layers {
        l.visible = l.id == unidiff_studio::ui::layers::LayerId::TrainLabels;
        l.opacity = 1.0;
    }
    h.state_mut().store.active_class = 2;
    let target = h
        .state()
        .map
        .view
        .screen_from_image(rect, pos2(400.5, 50.5));
    h.event(egui::Event::PointerMoved(target));
    h.event(egui::Event::PointerButton {
        pos: target,
        button: PointerButton::Primary,
        pressed: true,
        modifiers: Modifiers::NONE,
    });
    h.step();
    h.remove_cursor();
    h.step();
    let img = h.render().expect("render");
    let px = img.get_pixel(target.x as u32, target.y as u32).0;
    let colour = h.state().store.session.as_ref().map(|s| s.classes[1].color);
    let on_screen = colour.is_some_and(|c| (0..3).all(|i| (px[i] as i32 - c[i] as i32).abs() <= 2));
    h.event(egui::Event::PointerButton {
        pos: target,
        button: PointerButton::Primary,
        pressed: false,
        modifiers: Modifiers::NONE,
    });
    h.step();
    // Frames while pRGB is rendered from other bands (a task), and while
    // the view is exported as a PNG (the capture, then a task), before the
    // jobs below load the cores (a cancelled job's last batch still runs).
    h.state_mut().handle(AppCommand::SetPrgbBands([7, 3, 1]));
    let while_band_change = pan_while(&mut h, 600, |app| app.jobs.tasks_pending().then_some(()));
    let png = dir.path().join("view.png");
    h.state_mut().handle(AppCommand::ExportViewPng(png.clone()));
    let while_exporting = pan_while(&mut h, 600, |app| {
        (app.jobs.tasks_pending() || app.pending_view_png.is_some()).then_some(())
    });
    // The app's own share of those frames (its `frame`, without the
    // harness's software render of the captured frame).
    let app_frames = &h.state().frame_seconds;
    let export_app_part =
        app_frames[app_frames.len().saturating_sub(while_exporting.len())..].to_vec();
    let band_change_app_part = {
        let end = app_frames.len().saturating_sub(while_exporting.len());
        app_frames[end.saturating_sub(while_band_change.len())..end].to_vec()
    };
    assert!(
        png.exists(),
        "no PNG after {} frames (band change {} frames; capture pending: {:?}, tasks: {:?}): {:?}",
        while_exporting.len(),
        while_band_change.len(),
        h.state().pending_view_png,
        h.state().jobs.queued_tasks(),
        h.state().store.messages
    );
    // Frames while a classification (Stage B on the CPU) runs in the
    // background on both cores, panning with the arrow keys; then cancel.
    {
        let app = h.state_mut();
        app.store.classify_settings.t = 0;
        app.store.classify_settings.stride = Some(32);
        app.handle(AppCommand::Classify);
    }
    let mut phases = std::collections::BTreeSet::new();
    let load_start = Instant::now();
    let under_load = pan_while(&mut h, 900, |app| {
        let c = app.jobs.classifying.as_ref()?;
        phases.insert(c.step.split(' ').next().unwrap_or("").to_string());
        Some(())
    });
    let loaded_seconds = load_start.elapsed().as_secs_f64();
    h.state_mut().jobs.workers.cancel_classify();
    // Frames while Stage A runs (the quick preset), the loss plot growing.
    h.state_mut().handle(AppCommand::Adapt);
    let while_adapting = pan_while(&mut h, 600, |app| app.jobs.adapting.as_ref().map(|_| ()));
    let adapt_steps_seen = h.state().store.adapt_curve.len();
    h.state_mut().jobs.workers.cancel_adapt();
    // Frames while the explorer's feature projection runs, the explorer open.
    h.state_mut().views.explorer.open = true;
    h.state_mut().views.explorer.t = 300;
    h.step();
    {
        let app = h.state_mut();
        let image = app
            .store
            .session
            .as_ref()
            .and_then(|s| s.renderings.prgb.as_ref())
            .map(|(i, _)| i.clone())
            .expect("a pRGB rendering");
        let request = unidiff_studio::jobs::ProjectRequest {
            image,
            modality: unidiff_studio::pipeline::Modality::Prgb,
            t: 300,
            block: None,
            backbone: app.store.classify_settings.backbone.clone(),
            seed: 0,
            device: app.store.classify_settings.device,
        };
        app.handle(AppCommand::ProjectFeatures(Box::new(request)));
    }
    let while_projecting = pan_while(&mut h, 600, |app| app.jobs.projecting.as_ref().map(|_| ()));
    h.state_mut().jobs.workers.cancel_features();
    h.state_mut().views.explorer.open = false;
    println!(
        "{}",
        serde_json::json!({
            "frames_while_classifying": stats(under_load),
            "classifying_phases_seen": phases,
            "classifying_seconds_observed": loaded_seconds,
            "frames_while_adapting": stats(while_adapting),
            "stage_a_steps_seen": adapt_steps_seen,
            "frames_while_projecting_features": stats(while_projecting),
            "frames_while_changing_prgb_bands": stats(while_band_change),
            "frames_while_exporting_the_view": stats(while_exporting),
            "app_part_of_frames_while_exporting": stats(export_app_part),
            "app_part_of_frames_while_changing_bands": stats(band_change_app_part),
            "scene": format!("{ROWS} x {COLS}, 3 renderings + 2 label layers"),
            "painting": stats(painting),
            "panning": stats(panning),
            "painted_pixels": painted,
            "stroke_visible_after_one_frame": on_screen,
        })
    );
}
