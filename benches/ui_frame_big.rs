//! Frame cost of the map on a scene the size of a Sentinel-2 tile (10980 x
//! 10980 pixels, larger than a GPU texture): the demo's Sentinel-2 file
//! resampled with gdal_translate to that size (four bands, so the cube fits
//! this machine's memory), opened in the app, every layer drawn from tiles
//! of the pyramid. Measures the CPU time of one egui frame (our logic,
//! the tiles prepared for upload, layout and tessellation; not the GPU
//! work) from the whole scene zoomed out, zooming in one key press a frame
//! to 1:1, panning across tiles at 1:1, zooming out again, and zooming in
//! and out with the mouse wheel; with the tiles and bytes held on the GPU,
//! and the frames until every visible tile is there.
//!
//! Run: `cargo bench --profile test --bench ui_frame_big` (prints one JSON
//! line; about 2 GB of disk in a temporary folder, 6.6 GB of memory).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

use std::process::Command;
use std::time::{Duration, Instant};

use eframe::egui::{self, Modifiers, PointerButton, vec2};
use egui_kittest::Harness;
use unidiff_studio::jobs::LoadRequest;
use unidiff_studio::ui::{AppCommand, AppOptions, StudioApp};

const SIDE: usize = 10980;

fn stats(mut v: Vec<f64>) -> serde_json::Value {
    if v.is_empty() {
        return serde_json::json!({ "frames": 0 });
    }
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

thread_local! {
    /// The map's own part (tiles decided and cut) of each timed frame.
    static MAP_PART: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The app's own part (its `frame`, without the harness's event
    /// handling, accessibility tree and tessellation) of each timed frame.
    static APP_PART: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One frame's time; then the frame is rendered (untimed), as a window
/// would, so that its tile uploads reach the GPU.
fn timed_step(h: &mut Harness<'_, StudioApp>) -> f64 {
    let t = Instant::now();
    h.step();
    let seconds = t.elapsed().as_secs_f64();
    MAP_PART.with(|m| m.borrow_mut().push(h.state().map.tiles.last_frame_seconds));
    let app = h.state().frame_seconds.last().copied().unwrap_or(0.0);
    APP_PART.with(|m| m.borrow_mut().push(app));
    h.render().expect("wgpu renders");
    seconds
}

/// The map's and the app's parts of the frames timed since the last call.
fn map_part() -> serde_json::Value {
    serde_json::json!({
        "map": stats(MAP_PART.with(|m| std::mem::take(&mut *m.borrow_mut()))),
        "app": stats(APP_PART.with(|m| std::mem::take(&mut *m.borrow_mut()))),
    })
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (s2, _, _) = unidiff_studio::demo::demo_paths().unwrap();
    let hsi = dir.path().join("s2_tile_size.tif");
    let made = Instant::now();
    let status = Command::new("gdal_translate")
        .args([
            "-q", "-r", "bilinear", "-b", "2", "-b", "3", "-b", "4", "-b", "8",
        ])
        .args(["-co", "TILED=YES", "-co", "COMPRESS=DEFLATE", "-outsize"])
        .args([SIDE.to_string(), SIDE.to_string()])
        .arg(&s2)
        .arg(&hsi)
        .status()
        .expect("gdal_translate runs");
    assert!(status.success());
    let made_seconds = made.elapsed().as_secs_f64();
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
        title: "S2-tile-size".into(),
        ..LoadRequest::default()
    }));
    let start = Instant::now();
    h.step();
    while h.state().jobs.loading.is_some() {
        assert!(start.elapsed() < Duration::from_secs(1800));
        std::thread::sleep(Duration::from_millis(50));
        h.step();
    }
    let load_seconds = start.elapsed().as_secs_f64();
    assert!(
        h.state().store.session.is_some(),
        "{:?}",
        h.state().store.messages
    );
    for l in &mut h.state_mut().store.layers.layers {
        l.visible = true;
        l.opacity = 0.7;
    }
    // The first frame zoomed out builds the pyramids' upper levels.
    let first_frame = timed_step(&mut h);
    h.run_steps(3);
    h.render().expect("first render");
    let rect = h.state().map.rect.expect("map shown");
    let c = rect.center();
    let zoomed_out_level_zoom = h.state().map.view.zoom;

    // Zoomed out: middle-drag panning.
    let drag = |h: &mut Harness<'_, StudioApp>, pressed: bool| {
        h.event(egui::Event::PointerButton {
            pos: c,
            button: PointerButton::Middle,
            pressed,
            modifiers: Modifiers::NONE,
        });
    };
    h.event(egui::Event::PointerMoved(c));
    drag(&mut h, true);
    h.step();
    map_part();
    let mut panning_out = Vec::new();
    for i in 0..200 {
        let p = c + vec2((i as f32 * 0.05).sin() * 200.0, 0.0);
        h.event(egui::Event::PointerMoved(p));
        panning_out.push(timed_step(&mut h));
    }
    let map_part_panning_out = map_part();
    drag(&mut h, false);
    h.step();

    // Zooming in at the centre, one key press a frame, to 1:1 and a bit.
    let mut zooming_in = Vec::new();
    map_part();
    while h.state().map.view.zoom < 1.2 {
        h.key_press(egui::Key::PageUp);
        zooming_in.push(timed_step(&mut h));
    }
    let map_part_zooming_in = map_part();
    let mut settle = 0;
    while h.state().map.tiles.pending > 0 && settle < 600 {
        timed_step(&mut h);
        settle += 1;
    }

    // At 1:1: a steady pan to the right and down across tiles (8 points a
    // frame), tiles uploaded as they come into view.
    h.event(egui::Event::PointerMoved(c));
    drag(&mut h, true);
    h.step();
    let mut panning_in = Vec::new();
    map_part();
    let mut frames_with_tiles_pending = 0;
    let mut at = c;
    for _ in 0..400 {
        at -= vec2(8.0, 3.0);
        if !rect.contains(at) {
            drag(&mut h, false);
            timed_step(&mut h);
            at = c;
            h.event(egui::Event::PointerMoved(at));
            drag(&mut h, true);
            timed_step(&mut h);
        }
        h.event(egui::Event::PointerMoved(at));
        panning_in.push(timed_step(&mut h));
        frames_with_tiles_pending += usize::from(h.state().map.tiles.pending > 0);
    }
    let map_part_panning_in = map_part();
    drag(&mut h, false);
    h.step();
    let resident_zoomed_in = h.state().map.tiles.resident();

    // Zooming out again to the whole scene.
    let mut zooming_out = Vec::new();
    map_part();
    while h.state().map.view.zoom > zoomed_out_level_zoom {
        h.key_press(egui::Key::PageDown);
        zooming_out.push(timed_step(&mut h));
    }
    let map_part_zooming_out = map_part();
    h.run_steps(3);

    // Zooming with the wheel over the centre (the usual way): a notch every
    // 4 frames (egui spreads each over frames), 20 in, then 20 out.
    h.event(egui::Event::PointerMoved(c));
    let mut zooming_wheel = Vec::new();
    map_part();
    let mut deepest = 0f32;
    for i in 0..160 {
        if i % 4 == 0 {
            h.event(egui::Event::MouseWheel {
                unit: egui::MouseWheelUnit::Point,
                delta: vec2(0.0, if i < 80 { 50.0 } else { -50.0 }),
                phase: egui::TouchPhase::Move,
                modifiers: Modifiers::NONE,
            });
        }
        zooming_wheel.push(timed_step(&mut h));
        deepest = deepest.max(h.state().map.view.zoom);
    }
    let map_part_zooming_wheel = map_part();
    let map = &h.state().map;
    println!(
        "{}",
        serde_json::json!({
            "scene": format!("{SIDE} x {SIDE} x 4 bands (int16 DEFLATE GeoTIFF), pRGB + PCA + training labels"),
            "making_the_scene_s": made_seconds,
            "opening_s": load_seconds,
            "first_frame_zoomed_out_ms": first_frame * 1e3,
            "panning_zoomed_out": stats(panning_out),
            "zooming_in_one_step_a_frame": stats(zooming_in),
            "frames_until_all_tiles_at_1_1": settle,
            "panning_at_1_1": stats(panning_in),
            "frames_at_1_1_with_tiles_still_coming": frames_with_tiles_pending,
            "tiles_on_gpu_at_1_1": resident_zoomed_in,
            "zooming_out_one_step_a_frame": stats(zooming_out),
            "zooming_with_the_wheel_in_and_out": stats(zooming_wheel),
            "wheel_zoom_deepest": deepest,
            "app_and_map_parts_of_frames": {
                "panning_zoomed_out": map_part_panning_out,
                "zooming_in": map_part_zooming_in,
                "panning_at_1_1": map_part_panning_in,
                "zooming_out": map_part_zooming_out,
                "zooming_with_the_wheel": map_part_zooming_wheel,
            },
            "tiles_on_gpu_at_end": map.tiles.resident(),
            "tile_bytes_on_gpu_at_end_mib": map.tiles.resident_bytes() as f64 / 1048576.0,
            "peak_rss_mib": peak_rss_mib(),
        })
    );
}
