//! The desktop app driven through egui_kittest with the real wgpu renderer
//! (lavapipe / llvmpipe in CI): the demo opened through the real loading
//! job, layers toggled and reordered, a stroke painted with pointer events,
//! undo / redo and brush keys, labels saved and reloaded, bad input shown in
//! the window, and the map view's pixels checked against the renderings.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

mod common;

use std::path::{Path, PathBuf};

use common::{demo, wait_loaded};
use eframe::egui::{self, Key, Modifiers, PointerButton, Pos2, pos2, vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use unidiff_studio::jobs::LoadRequest;
use unidiff_studio::scene::LabelLayer;
use unidiff_studio::ui::layers::LayerId;
use unidiff_studio::ui::{AppCommand, AppOptions, StudioApp, Tool};

fn harness(data_dir: &Path, demo: bool) -> Harness<'static, StudioApp> {
    let options = AppOptions {
        demo,
        files: Vec::new(),
        data_dir: Some(data_dir.to_path_buf()),
    };
    Harness::builder()
        .with_size(vec2(1280.0, 800.0))
        .wgpu()
        .build_eframe(move |cc| StudioApp::new(cc, options))
}

fn with_demo(dir: &Path) -> Harness<'static, StudioApp> {
    let mut h = harness(dir, true);
    wait_loaded(&mut h);
    assert!(
        h.state().store.session.is_some(),
        "messages: {:?}",
        h.state().store.messages
    );
    h
}

/// The screen position of image position (x, y) in the last frame.
fn screen(h: &Harness<'_, StudioApp>, x: f32, y: f32) -> Pos2 {
    let app = h.state();
    let rect = app.map.rect.expect("the map was shown");
    app.map.view.screen_from_image(rect, pos2(x, y))
}

fn pointer(h: &Harness<'_, StudioApp>, pos: Pos2, pressed: Option<bool>) {
    h.event(egui::Event::PointerMoved(pos));
    if let Some(pressed) = pressed {
        h.event(egui::Event::PointerButton {
            pos,
            button: PointerButton::Primary,
            pressed,
            modifiers: Modifiers::NONE,
        });
    }
}

/// Paints a stroke through image positions with the pointer.
fn stroke(h: &mut Harness<'_, StudioApp>, points: &[(f32, f32)]) {
    let screen_points: Vec<Pos2> = points.iter().map(|&(x, y)| screen(h, x, y)).collect();
    pointer(h, screen_points[0], Some(true));
    h.step();
    for p in &screen_points[1..] {
        pointer(h, *p, None);
        h.step();
    }
    pointer(h, *screen_points.last().unwrap_or(&Pos2::ZERO), Some(false));
    h.step();
    h.step();
}

fn train_count(h: &Harness<'_, StudioApp>, class: u8) -> usize {
    h.state()
        .store
        .session
        .as_ref()
        .unwrap()
        .class_counts(LabelLayer::Train)[class as usize]
}

/// Asserts two label images are equal, naming how many pixels differ.
fn assert_same(a: &[u8], b: &[u8], what: &str) {
    let differ = a.iter().zip(b).filter(|(x, y)| x != y).count();
    assert!(
        a.len() == b.len() && differ == 0,
        "{what}: {differ} pixels differ"
    );
}

fn train_data(h: &Harness<'_, StudioApp>) -> Vec<u8> {
    let s = h.state().store.session.as_ref().unwrap();
    s.scene.train_labels.as_ref().unwrap().data.clone()
}

/// Distance from pixel centre (x+0.5, y+0.5) to the segment a-b.
fn distance_to_segment(x: usize, y: usize, a: (f32, f32), b: (f32, f32)) -> f32 {
    let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let t = (((px - a.0) * dx + (py - a.1) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
    let (cx, cy) = (a.0 + t * dx, a.1 + t * dy);
    ((px - cx).powi(2) + (py - cy).powi(2)).sqrt()
}

#[test]
fn demo_opens_layers_toggle_and_reorder() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = with_demo(dir.path());
    {
        let s = h.state().store.session.as_ref().unwrap();
        assert!(s.renderings.prgb.is_some() && s.renderings.pca.is_some());
        assert!(s.renderings.pauli.is_some());
        assert_eq!(s.classes[1].name, "water");
        // The demo's reference mask is the test layer (dry = 1, water = 2).
        let test = s.class_counts(LabelLayer::Test);
        assert_eq!(test[1] + test[2], 262_045);
    }
    assert!(!h.state().store.layers.get(LayerId::Pca).unwrap().visible);
    h.get_by_label("PCA").click();
    h.run_steps(2);
    assert!(h.state().store.layers.get(LayerId::Pca).unwrap().visible);
    // The list shows the top layer first: the test labels' row is
    // (layers - 1 - position); its "raise" swaps it with the layer above.
    let layers = h.state().store.layers.layers.len();
    let before = h
        .state()
        .store
        .layers
        .position(LayerId::TestLabels)
        .unwrap();
    let above = h.state().store.layers.layers[before + 1].id;
    h.get_all_by_label("⏶")
        .nth(layers - 1 - before)
        .unwrap()
        .click();
    h.run_steps(2);
    assert_eq!(
        h.state().store.layers.position(LayerId::TestLabels),
        Some(before + 1)
    );
    assert_eq!(h.state().store.layers.position(above), Some(before));
}

#[test]
fn a_painted_stroke_counts_undoes_and_redoes() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = with_demo(dir.path());
    h.key_press(Key::B);
    h.key_press(Key::Num2);
    h.run_steps(2);
    assert_eq!(h.state().store.tool, Tool::Brush);
    assert_eq!(h.state().store.active_class, 2);
    // Brush size keys: ] grows, [ shrinks.
    let size = h.state().store.brush_size;
    h.key_press(Key::CloseBracket);
    h.step();
    assert!(h.state().store.brush_size > size);
    h.key_press(Key::OpenBracket);
    h.step();
    assert_eq!(h.state().store.brush_size, size);
    assert_eq!(size, 5.0);

    let (a, b) = ((100.5, 200.5), (160.5, 230.5));
    let points: Vec<(f32, f32)> = (0..=12)
        .map(|i| {
            let f = i as f32 / 12.0;
            (a.0 + f * (b.0 - a.0), a.1 + f * (b.1 - a.1))
        })
        .collect();
    stroke(&mut h, &points);
    let data = train_data(&h);
    let w = 512;
    let radius = size / 2.0;
    let mut painted = 0;
    for (i, &v) in data.iter().enumerate() {
        let d = distance_to_segment(i % w, i / w, a, b);
        // Pointer positions go through screen coordinates at the fit zoom:
        // allow a quarter pixel either way at the brush's edge.
        if v == 2 {
            painted += 1;
            assert!(
                d <= radius + 0.25,
                "pixel {i} painted {d} px from the stroke"
            );
        } else if d <= radius - 0.25 {
            panic!("pixel {i} {d} px from the stroke was not painted");
        }
    }
    assert_eq!(train_count(&h, 2), painted);
    assert!(painted > 300, "{painted}");
    let state = h.state();
    let counts_shown = state
        .store
        .session
        .as_ref()
        .unwrap()
        .class_counts(LabelLayer::Train);
    assert_eq!(counts_shown[2], painted);
    // The class table shows the count.
    h.get_by_label(&painted.to_string());

    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run_steps(2);
    assert_eq!(train_count(&h, 2), 0, "undo removes the whole stroke");
    h.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z);
    h.run_steps(2);
    assert_same(&train_data(&h), &data, "redo puts it back pixel for pixel");
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run_steps(2);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Y);
    h.run_steps(2);
    assert_same(&train_data(&h), &data, "Ctrl+Y redoes too");

    // The eraser removes what it passes over, as one more step.
    h.key_press(Key::E);
    h.step();
    stroke(&mut h, &[(130.5, 215.5), (131.5, 215.5)]);
    assert!(train_count(&h, 2) < painted);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run_steps(2);
    assert_eq!(train_count(&h, 2), painted);
}

#[test]
fn labels_save_and_reload_pixel_for_pixel() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = with_demo(dir.path());
    h.key_press(Key::B);
    h.key_press(Key::Num1);
    h.step();
    stroke(&mut h, &[(20.5, 20.5), (60.5, 25.5)]);
    h.key_press(Key::Num2);
    h.step();
    stroke(&mut h, &[(300.5, 400.5), (310.5, 420.5)]);
    let painted = train_data(&h);
    let path = dir.path().join("my labels.tif");
    h.state_mut()
        .handle(AppCommand::SaveLabels(LabelLayer::Train, path.clone()));
    common::wait_tasks(&mut h);
    assert!(
        !h.state()
            .store
            .session
            .as_ref()
            .unwrap()
            .has_unsaved_labels()
    );
    // Change the layer, then load the file back.
    h.key_press(Key::E);
    h.step();
    stroke(&mut h, &[(20.5, 20.5), (60.5, 25.5)]);
    assert!(train_data(&h) != painted, "the eraser changed the layer");
    h.state_mut()
        .handle(AppCommand::LoadLabels(LabelLayer::Train, path.clone()));
    common::wait_tasks(&mut h);
    assert_same(&train_data(&h), &painted, "reloaded labels");
    assert!(
        h.state().store.messages.iter().all(|m| !m.error),
        "{:?}",
        h.state().store.messages
    );
}

#[test]
fn bad_input_is_reported_in_the_window_and_the_session_survives() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = with_demo(dir.path());
    h.key_press(Key::B);
    h.step();
    stroke(&mut h, &[(50.5, 50.5), (70.5, 50.5)]);
    let painted = train_data(&h);

    // A corrupt file.
    let corrupt = dir.path().join("corrupt.tif");
    std::fs::write(&corrupt, b"II*\0 this is not a GeoTIFF").unwrap();
    h.state_mut().handle(AppCommand::Open(LoadRequest {
        hsi: Some(corrupt.clone()),
        ..LoadRequest::default()
    }));
    wait_loaded(&mut h);
    let last = h.state().store.messages.last().cloned().expect("a message");
    assert!(last.error && last.text.contains("corrupt.tif"), "{last:?}");
    h.get_by_label_contains("corrupt.tif");
    assert_same(&train_data(&h), &painted, "the session is intact");

    // A SAR image on another grid.
    let cropped = dir.path().join("s1_cropped.tif");
    let status = std::process::Command::new("gdal_translate")
        .args(["-q", "-srcwin", "0", "0", "256", "256"])
        .arg(demo("Spain_7370579_S1Hand.tif"))
        .arg(&cropped)
        .status()
        .expect("gdal_translate runs");
    assert!(status.success());
    h.state_mut().handle(AppCommand::Open(LoadRequest {
        hsi: Some(demo("Spain_7370579_S2Hand.tif")),
        sar: Some(cropped),
        ..LoadRequest::default()
    }));
    wait_loaded(&mut h);
    let last = h.state().store.messages.last().cloned().expect("a message");
    assert!(last.error && last.text.contains("differ"), "{last:?}");
    assert!(
        last.text.contains("256 x 256"),
        "both grids shown: {last:?}"
    );
    assert_same(&train_data(&h), &painted, "labels after the bad input");

    // A label file with classes the list does not have.
    let labels = dir.path().join("labels_with_7.tif");
    let mut data = vec![0u8; 512 * 512];
    data[0] = 7;
    data[1] = 1;
    let grid = h
        .state()
        .store
        .session
        .as_ref()
        .unwrap()
        .scene
        .grid()
        .unwrap()
        .clone();
    unidiff_studio::io::classmap::write_class_map(&labels, &data, &grid, &[]).unwrap();
    h.state_mut()
        .handle(AppCommand::LoadLabels(LabelLayer::Test, labels.clone()));
    common::wait_tasks(&mut h);
    h.run_steps(2);
    let last = h.state().store.messages.last().cloned().expect("a message");
    assert!(!last.error && last.text.contains("(7)"), "{last:?}");
    let s = h.state().store.session.as_ref().unwrap();
    assert!(
        s.classes
            .iter()
            .any(|c| c.value == 7 && c.name == "class 7")
    );
    assert_eq!(s.class_counts(LabelLayer::Test)[7], 1);
    assert_same(&train_data(&h), &painted, "labels after the bad input");
}

fn pixel(img: &image::RgbaImage, p: Pos2, ppp: f32) -> [u8; 4] {
    img.get_pixel((p.x * ppp) as u32, (p.y * ppp) as u32).0
}

#[test]
fn the_map_view_composites_renderings_and_labels_on_the_gpu() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = with_demo(dir.path());
    // Zoom in so each image pixel covers several screen pixels.
    for _ in 0..6 {
        h.key_press(Key::PageUp);
    }
    h.run_steps(2);
    let zoom = h.state().map.view.zoom;
    assert!(zoom > 3.0, "{zoom}");
    let center = h.state().map.view.center;
    let (cx, cy) = (center[0].floor(), center[1].floor());
    h.key_press(Key::B);
    h.key_press(Key::Num2);
    h.step();
    stroke(&mut h, &[(cx + 0.5, cy + 0.5)]);
    // No pointer (nor brush circle) over the pixels checked.
    h.remove_cursor();
    h.run_steps(2);
    let img = h.render().expect("wgpu renders");
    let ppp = 1.0;
    let app = h.state();
    let s = app.store.session.as_ref().unwrap();
    let (prgb, _) = s.renderings.prgb.as_ref().unwrap();
    // A pixel left of the painted disc shows the pRGB rendering as it is.
    let (ox, oy) = (cx as usize - 10, cy as usize);
    let at = screen(&h, ox as f32 + 0.5, oy as f32 + 0.5);
    let got = pixel(&img, at, ppp);
    let want = prgb.pixel(oy, ox);
    for c in 0..3 {
        assert!(
            (got[c] as i32 - want[c] as i32).abs() <= 1,
            "pRGB {got:?} vs {want:?}"
        );
    }
    // The painted pixel: class colour over pRGB at the layer's opacity.
    let layer = app.store.layers.get(LayerId::TrainLabels).unwrap();
    let color = s.classes[1].color;
    let under = prgb.pixel(cy as usize, cx as usize);
    let got = pixel(&img, screen(&h, cx + 0.5, cy + 0.5), ppp);
    let value = s.scene.train_labels.as_ref().unwrap().data[cy as usize * 512 + cx as usize];
    assert_eq!(value, 2, "the stroke painted the pixel");
    for c in 0..3 {
        let want = layer.opacity * color[c] as f32 + (1.0 - layer.opacity) * under[c] as f32;
        assert!(
            (got[c] as f32 - want).abs() <= 2.0,
            "overlay {got:?} vs {want}"
        );
    }
    // Hiding the labels (L) shows the rendering again there.
    drop(img);
    h.key_press(Key::L);
    h.run_steps(2);
    let img = h.render().expect("wgpu renders");
    let got = pixel(&img, screen(&h, cx + 0.5, cy + 0.5), ppp);
    for c in 0..3 {
        assert!(
            (got[c] as i32 - under[c] as i32).abs() <= 1,
            "{got:?} vs {under:?}"
        );
    }
    img.save(dir.path().join("map.png")).unwrap();
    if let Ok(out) = std::env::var("UNIDIFF_SCREENSHOT_DIR") {
        let _ = std::fs::create_dir_all(&out);
        let _ = img.save(PathBuf::from(out).join("kittest_map.png"));
    }
}

/// The map's pixels (its rectangle of a fresh render), without the
/// pointer, once every visible tile is on the GPU (one comes a frame).
fn map_pixels(h: &mut Harness<'_, StudioApp>) -> Vec<[u8; 4]> {
    h.remove_cursor();
    h.run_steps(3);
    let mut frames = 0;
    while h.state().map.tiles.pending > 0 {
        assert!(frames < 5000, "tiles still coming after {frames} frames");
        h.step();
        frames += 1;
    }
    let img = h.render().expect("wgpu renders");
    let r = h.state().map.rect.expect("the map was shown");
    let mut out = Vec::new();
    for y in r.min.y.ceil() as u32..r.max.y.floor() as u32 {
        for x in r.min.x.ceil() as u32..r.max.x.floor() as u32 {
            out.push(img.get_pixel(x, y).0);
        }
    }
    out
}

fn pixels_differing(a: &[[u8; 4]], b: &[[u8; 4]]) -> usize {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).filter(|(x, y)| x != y).count()
}

#[test]
fn a_layer_larger_than_a_tile_is_drawn_from_tiles_as_one_texture_draws_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = with_demo(dir.path());
    for l in &mut h.state_mut().store.layers.layers {
        l.visible = true;
        l.opacity = 0.6;
    }
    // Zoomed in over a corner where tiles of 64 pixels meet (no screen
    // pixel's centre exactly on a scene pixel's edge, where two draws may
    // round to either side).
    h.state_mut().map.view.zoom = 2.0;
    h.state_mut().map.view.center = [128.3, 100.3];
    let one_texture = map_pixels(&mut h);
    assert!(h.state().map.tiles.resident() >= 3, "one tile per layer");
    h.state_mut().map.tiles.side = Some(64);
    let tiled = map_pixels(&mut h);
    let resident = h.state().map.tiles.resident();
    assert!(resident > 20, "tiles of 64 on the GPU: {resident}");
    assert_eq!(
        pixels_differing(&one_texture, &tiled),
        0,
        "tiles draw what one texture draws"
    );
    // A stroke across a tile border patches both tiles (and the levels
    // above) in the frame after it.
    h.key_press(Key::B);
    h.key_press(Key::Num2);
    h.step();
    h.state_mut().store.brush_size = 5.0;
    stroke(&mut h, &[(118.5, 100.5), (139.5, 100.5)]);
    let painted = map_pixels(&mut h);
    assert!(pixels_differing(&tiled, &painted) > 100, "the stroke shows");
    h.state_mut().map.tiles.side = None;
    let painted_one = map_pixels(&mut h);
    assert_eq!(
        pixels_differing(&painted_one, &painted),
        0,
        "the stroke in tiles as in one texture"
    );
    // Zoomed out, a tiled layer is drawn from a level above (each pixel
    // the mean of 2 x 2 or more), close to one texture sampled down.
    h.state_mut().map.tiles.side = Some(64);
    h.state_mut().map.view.zoom = 0.3;
    h.state_mut().map.view.center = [256.0, 256.0];
    let overview = map_pixels(&mut h);
    h.state_mut().map.tiles.side = None;
    let sampled = map_pixels(&mut h);
    let mean_difference = overview
        .iter()
        .zip(&sampled)
        .map(|(a, b)| {
            (0..3)
                .map(|c| (a[c] as i32 - b[c] as i32).abs())
                .sum::<i32>() as f64
        })
        .sum::<f64>()
        / (overview.len() * 3) as f64;
    let drawn = overview
        .iter()
        .filter(|p| p[..3] != sampled[0][..3])
        .count();
    assert!(drawn > 1000, "the scene is drawn zoomed out: {drawn}");
    assert!(
        mean_difference < 8.0,
        "overview vs one texture: mean difference {mean_difference:.2} levels"
    );
    if let Ok(out) = std::env::var("UNIDIFF_SCREENSHOT_DIR") {
        let _ = std::fs::create_dir_all(&out);
        let img = h.render().expect("wgpu renders");
        let _ = img.save(PathBuf::from(out).join("kittest_map_zoomed_out.png"));
    }
}

#[test]
fn a_large_scene_shows_a_preview_and_what_its_whole_read_takes_before_it_is_in() {
    let dir = tempfile::tempdir().unwrap();
    // The demo's 13-band cube resampled to 3000 x 2000: 312 MB as f32,
    // above the size that gets a preview.
    let big = dir.path().join("large_s2.tif");
    let status = std::process::Command::new("gdal_translate")
        .args(["-q", "-outsize", "3000", "2000"])
        .arg(demo("Spain_7370579_S2Hand.tif"))
        .arg(&big)
        .status()
        .unwrap();
    assert!(status.success());
    let mut h = harness(dir.path(), false);
    h.state_mut().handle(AppCommand::Open(LoadRequest {
        hsi: Some(big),
        title: "large".into(),
        ..LoadRequest::default()
    }));
    let start = std::time::Instant::now();
    let mut preview_seen = None;
    while h.state().jobs.loading.is_some() {
        assert!(start.elapsed() < std::time::Duration::from_secs(300));
        h.step();
        if preview_seen.is_none()
            && let Some(p) = h.state().store.scene_preview.clone()
        {
            h.remove_cursor();
            h.run_steps(2);
            let img = h.render().expect("wgpu renders");
            let at = screen(&h, 1500.5, 1000.5);
            preview_seen = Some((p, pixel(&img, at, 1.0)));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (p, shown) = preview_seen.expect("a preview while the cube was read");
    assert_eq!((p.width, p.height, p.step), (3000, 2000, 3));
    assert!(
        p.note
            .contains("3000 x 2000 pixels x 13 bands, 312.0 MB in memory"),
        "{}",
        p.note
    );
    // The map showed the preview there (every 3rd pixel; zoomed out the
    // screen pixel blends the preview's pixels around it).
    for c in 0..3 {
        let around: Vec<i32> = (332..335)
            .flat_map(|r| (499..502).map(move |q| (r, q)))
            .map(|(r, q)| p.image.pixel(r, q)[c] as i32)
            .collect();
        let (lo, hi) = (around.iter().min().unwrap(), around.iter().max().unwrap());
        let v = shown[c] as i32;
        assert!(v >= lo - 2 && v <= hi + 2, "{shown:?} vs {lo}..{hi}");
    }
    let messages: Vec<String> = h
        .state()
        .store
        .messages
        .iter()
        .map(|m| m.text.clone())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("312.0 MB in memory")),
        "{messages:?}"
    );
    // Then the scene itself replaces it.
    h.run_steps(3);
    assert!(h.state().store.session.is_some(), "{messages:?}");
    assert!(h.state().store.scene_preview.is_none());
}

#[test]
fn an_autosave_is_offered_and_recovered_on_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let painted = {
        let mut h = with_demo(dir.path());
        h.key_press(Key::B);
        h.step();
        stroke(&mut h, &[(200.5, 100.5), (240.5, 140.5)]);
        h.state_mut().autosave_now();
        train_data(&h)
    };
    let mut h = with_demo(dir.path());
    assert!(
        h.state().store.recovery.is_some(),
        "the autosave is offered"
    );
    h.get_by_label("Recover").click();
    h.run_steps(2);
    assert_same(&train_data(&h), &painted, "labels after the bad input");
    // Recovering is one undo step.
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run_steps(2);
    assert_eq!(train_count(&h, 1), 0);
}

#[test]
fn without_wgpu_the_map_is_composited_on_the_cpu_with_the_same_rules() {
    let dir = tempfile::tempdir().unwrap();
    let options = AppOptions {
        demo: true,
        files: Vec::new(),
        data_dir: Some(dir.path().to_path_buf()),
    };
    // No renderer: the app falls back to the CPU compositor.
    let mut h = Harness::builder()
        .with_size(vec2(1280.0, 800.0))
        .build_eframe(move |cc| StudioApp::new(cc, options));
    wait_loaded(&mut h);
    assert!(!h.state().map.gpu_map);
    h.key_press(Key::B);
    h.step();
    stroke(&mut h, &[(300.5, 300.5)]);
    let app = h.state();
    let s = app.store.session.as_ref().unwrap();
    let image = unidiff_studio::ui::cpu_map::composite(s, &app.store.layers, 1);
    let (prgb, _) = s.renderings.prgb.as_ref().unwrap();
    let at = |x: usize, y: usize| image.pixels[y * 512 + x].to_array();
    let plain = at(290, 300);
    let want = prgb.pixel(300, 290);
    assert_eq!(&plain[..3], &want[..]);
    let layer = app.store.layers.get(LayerId::TrainLabels).unwrap();
    let color = s.classes[0].color;
    let under = prgb.pixel(300, 300);
    let got = at(300, 300);
    for c in 0..3 {
        let want = layer.opacity * color[c] as f32 + (1.0 - layer.opacity) * under[c] as f32;
        assert!((got[c] as f32 - want).abs() <= 1.0, "{got:?} vs {want}");
    }
    // A scene larger than the largest texture is composited from every
    // step-th pixel: the same pixels, fewer of them.
    let halved = unidiff_studio::ui::cpu_map::composite(s, &app.store.layers, 3);
    assert_eq!(halved.size, [171, 171]);
    for (y, x) in [(0, 0), (100, 100), (170, 3), (3, 170)] {
        assert_eq!(
            halved.pixels[y * 171 + x],
            image.pixels[y * 3 * 512 + x * 3]
        );
    }
    assert_eq!(unidiff_studio::ui::cpu_map::step_for(10980, 5000, 8192), 2);
    assert_eq!(unidiff_studio::ui::cpu_map::step_for(512, 512, 8192), 1);
}

#[test]
fn prgb_bands_picked_in_the_panel_re_render_and_reach_the_gpu() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = with_demo(dir.path());
    h.state_mut().handle(AppCommand::SetPrgbBands([7, 3, 1]));
    common::wait_tasks(&mut h);
    h.remove_cursor();
    h.run_steps(2);
    let img = h.render().expect("wgpu renders");
    let app = h.state();
    let s = app.store.session.as_ref().unwrap();
    let (prgb, bands) = s.renderings.prgb.as_ref().unwrap();
    assert_eq!(bands.bands, [7, 3, 1]);
    let direct =
        unidiff_studio::products::prgb::render_prgb(s.scene.hsi.as_ref().unwrap(), [7, 3, 1])
            .unwrap();
    assert_eq!(prgb.data, direct.data);
    let got = pixel(&img, screen(&h, 100.5, 400.5), 1.0);
    let want = direct.pixel(400, 100);
    for c in 0..3 {
        assert!(
            (got[c] as i32 - want[c] as i32).abs() <= 1,
            "{got:?} vs {want:?}"
        );
    }
}

#[test]
fn the_timestep_explorer_shows_x_t_for_the_slider_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = with_demo(dir.path());
    h.get_by_label("Timestep explorer…").click();
    common::wait_tasks(&mut h);
    assert!(h.state().views.explorer.open);
    let at_zero = h.state().views.explorer.image.clone().expect("x_0 shown");
    h.state_mut().views.explorer.t = 600;
    h.run_steps(2);
    common::wait_tasks(&mut h);
    let app = h.state();
    let at_600 = app.views.explorer.image.clone().expect("x_600 shown");
    let (prgb, _) = app
        .store
        .session
        .as_ref()
        .unwrap()
        .renderings
        .prgb
        .as_ref()
        .unwrap();
    // Stage B's input: its noise image (the run's seed, one patch of the
    // backbone) on every patch.
    let seed = app.store.classify_settings.seed;
    let patch = app
        .store
        .classify_settings
        .backbone
        .config()
        .unwrap()
        .image_size;
    let want = unidiff_studio::pipeline::noised::stage_b_input(prgb, 600, seed, patch);
    assert_eq!(at_600.data, want.data);
    h.get_by_label_contains("Stage B's noise image");
    let differ = at_zero
        .data
        .iter()
        .zip(&at_600.data)
        .filter(|(a, b)| a != b)
        .count();
    assert!(differ > at_zero.data.len() / 2, "{differ}");
}

#[test]
fn export_view_as_png_writes_the_map_as_shown_with_its_legend() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = with_demo(dir.path());
    let center = h.state().map.view.center;
    h.key_press(Key::B);
    h.key_press(Key::Num2);
    h.step();
    stroke(
        &mut h,
        &[(center[0], center[1]), (center[0] + 20.0, center[1])],
    );
    h.remove_cursor();
    h.run_steps(2);
    let out = dir.path().join("view.png");
    h.state_mut().handle(AppCommand::ExportViewPng(out.clone()));
    h.run_steps(4);
    common::wait_tasks(&mut h);
    assert!(h.state().pending_view_png.is_none());
    let png = image::open(&out).expect("the PNG is written").to_rgba8();
    let app = h.state();
    let rect = app.map.rect.unwrap();
    assert_eq!(
        (png.width(), png.height()),
        (rect.width().round() as u32, rect.height().round() as u32)
    );
    assert!(
        app.store
            .messages
            .iter()
            .any(|m| m.text.contains("view written to")),
        "{:?}",
        app.store.messages
    );
    // The PNG is the map's part of the frame on screen.
    let classes = app.store.session.as_ref().unwrap().classes.clone();
    let frame = h.render().expect("wgpu renders");
    for (x, y) in [
        (center[0] - 30.0, center[1] + 0.5),
        (center[0] + 10.0, center[1] + 0.5),
    ] {
        let p = screen(&h, x, y);
        let inside = [(p.x - rect.left()) as u32, (p.y - rect.top()) as u32];
        let a = png.get_pixel(inside[0], inside[1]).0;
        let b = pixel(&frame, p, 1.0);
        for c in 0..3 {
            assert!((a[c] as i32 - b[c] as i32).abs() <= 1, "{a:?} vs {b:?}");
        }
    }
    // The legend: the first swatch in the bottom-left corner has class 1's colour.
    let legend_h = 10.0 + 18.0 * (1 + classes.len()) as f32;
    let swatch = (
        8.0 + 8.0 + 6.0,
        rect.height() - 8.0 - legend_h + 5.0 + 18.0 + 8.0,
    );
    let got = png.get_pixel(swatch.0 as u32, swatch.1 as u32).0;
    assert_eq!(&got[..3], &classes[0].color[..], "legend swatch");
    // Windows over the map (here the shortcut sheet) are not in the PNG:
    // the export is the map alone, the same as without them.
    h.state_mut().handle(AppCommand::ToggleShortcuts);
    h.run_steps(2);
    assert!(
        h.query_by_label("this sheet").is_some(),
        "the sheet is open"
    );
    let again = dir.path().join("view_with_window.png");
    h.state_mut()
        .handle(AppCommand::ExportViewPng(again.clone()));
    h.run_steps(4);
    common::wait_tasks(&mut h);
    let png_again = image::open(&again).expect("written").to_rgba8();
    let differ = png
        .pixels()
        .zip(png_again.pixels())
        .filter(|(a, b)| {
            a.0.iter()
                .zip(b.0)
                .any(|(x, y)| (*x as i32 - y as i32).abs() > 1)
        })
        .count();
    assert_eq!(differ, 0, "pixels under the window differ");
    if let Ok(shots) = std::env::var("UNIDIFF_SCREENSHOT_DIR") {
        let _ = std::fs::create_dir_all(&shots);
        let _ = std::fs::copy(&out, PathBuf::from(shots).join("view_export.png"));
    }
}

#[test]
fn an_imported_checkpoint_becomes_the_backbone_and_a_wrong_file_is_refused() {
    use unidiff_studio::model::backbone::BackboneSpec;
    let dir = tempfile::tempdir().unwrap();
    let mut h = with_demo(dir.path());
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/adm_tiny");
    let wait_messages = |h: &mut Harness<'_, StudioApp>, n: usize| {
        let t0 = std::time::Instant::now();
        while h.state().store.messages.len() < n {
            assert!(
                t0.elapsed().as_secs() < 60,
                "{:?}",
                h.state().store.messages
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
            h.step();
        }
    };
    let before = h.state().store.messages.len();
    h.state_mut()
        .handle(AppCommand::UseCheckpoint(fixtures.join("model.pt")));
    // "reading …", then the result.
    wait_messages(&mut h, before + 2);
    h.run_steps(2);
    match &h.state().store.classify_settings.backbone {
        BackboneSpec::Checkpoint { path, adapter, .. } => {
            assert!(path.ends_with("model.pt") && adapter.is_none())
        }
        other => panic!("{other:?}"),
    }
    h.get_by_label("checkpoint model.pt");
    h.get_by_label("Stage A trains 157,504 of 2,008,102 parameters (7.84 %)");
    // Not a checkpoint: an error, the backbone stays.
    let before = h.state().store.messages.len();
    h.state_mut()
        .handle(AppCommand::UseCheckpoint(fixtures.join("config.json")));
    wait_messages(&mut h, before + 2);
    let last = h.state().store.messages.last().unwrap().clone();
    assert!(last.error && last.text.contains("config.json"), "{last:?}");
    assert!(matches!(
        h.state().store.classify_settings.backbone,
        BackboneSpec::Checkpoint { .. }
    ));
}

/// File work runs as tasks: a label save into a folder that does not exist
/// and an export with nothing to export end in messages that name the file
/// or the reason; the session's unsaved mark stays, nothing is half-written.
#[test]
fn failed_file_tasks_report_the_file_and_keep_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = with_demo(dir.path());
    let center = h.state().map.view.center;
    h.key_press(Key::B);
    h.step();
    stroke(
        &mut h,
        &[(center[0], center[1]), (center[0] + 10.0, center[1])],
    );
    assert!(
        h.state()
            .store
            .session
            .as_ref()
            .unwrap()
            .has_unsaved_labels()
    );
    let missing = dir.path().join("no such folder").join("labels.tif");
    h.state_mut()
        .handle(AppCommand::SaveLabels(LabelLayer::Train, missing.clone()));
    assert!(h.state().jobs.tasks_pending(), "the save is a task");
    common::wait_tasks(&mut h);
    let last = h.state().store.messages.last().cloned().expect("a message");
    assert!(
        last.error && last.text.contains("no such folder"),
        "{last:?}"
    );
    assert!(!missing.exists() && !missing.parent().unwrap().exists());
    assert!(
        h.state()
            .store
            .session
            .as_ref()
            .unwrap()
            .has_unsaved_labels()
    );
    h.state_mut()
        .handle(AppCommand::ExportResults(dir.path().join("out")));
    let last = h.state().store.messages.last().cloned().expect("a message");
    assert!(
        last.error && last.text.contains("classify first"),
        "{last:?}"
    );
    assert!(!dir.path().join("out").exists());
}

/// Steps the app until the backbone download and the checks after it end.
fn wait_download(h: &mut Harness<'_, StudioApp>) {
    let start = std::time::Instant::now();
    h.run_steps(2);
    while h.state().jobs.downloading.is_some() || h.state().jobs.tasks_pending() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the download took over 1 min"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
        h.step();
    }
    h.run_steps(2);
}

#[test]
fn get_the_backbone_downloads_checks_and_uses_it() {
    use unidiff_studio::jobs::GetRequest;
    use unidiff_studio::jobs::backbone::{BackboneSpec, UNetConfig};
    let tiny = std::fs::read(common::fixture("adm_tiny/model.pt")).unwrap();
    let (base, _) = common::http::serve(tiny.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut h = with_demo(dir.path());
    let backbones = dir.path().join("backbones");
    // The button fetches the request the app holds: here the tiny layout
    // from the test's server instead of the paper's 1.2 GB file.
    h.state_mut().store.backbone_request = GetRequest {
        url: format!("{base}/files/tiny.pt"),
        dir: backbones.clone(),
        config: UNetConfig::tiny(),
    };
    h.get_by_label("Get the paper's backbone").click();
    wait_download(&mut h);
    let app = h.state();
    let errors: Vec<_> = app.store.messages.iter().filter(|m| m.error).collect();
    assert!(errors.is_empty(), "{errors:?}");
    match &app.store.classify_settings.backbone {
        BackboneSpec::Checkpoint { path, config, .. } => {
            assert_eq!(path, &backbones.join("tiny.pt"));
            assert_eq!(config, &UNetConfig::tiny());
        }
        other => panic!("the backbone is {other:?}"),
    }
    assert_eq!(std::fs::read(backbones.join("tiny.pt")).unwrap(), tiny);
    let before = app.store.classify_settings.backbone.clone();

    // A web page instead of the file: said in the window, backbone unchanged.
    h.state_mut().store.backbone_request.url = format!("{base}/page.pt");
    h.get_by_label("Get the paper's backbone").click();
    wait_download(&mut h);
    let app = h.state();
    assert!(
        app.store
            .messages
            .iter()
            .any(|m| m.error && m.text.contains("web page")),
        "{:?}",
        app.store.messages
    );
    assert_eq!(app.store.classify_settings.backbone, before);
}

/// The viewport commands the app sent in the last frame.
fn sent_commands(h: &Harness<'_, StudioApp>) -> Vec<egui::ViewportCommand> {
    h.output()
        .viewport_output
        .get(&egui::ViewportId::ROOT)
        .map(|v| v.commands.clone())
        .unwrap_or_default()
}

/// The window's close button, as the window system reports it.
fn request_close(h: &mut Harness<'_, StudioApp>) {
    h.input_mut()
        .viewports
        .entry(egui::ViewportId::ROOT)
        .or_default()
        .events
        .push(egui::ViewportEvent::Close);
    h.step();
}

#[test]
fn the_title_says_what_is_open_and_closing_with_unsaved_labels_asks_first() {
    use unidiff_studio::ui::vocabulary::CloseState;
    let dir = tempfile::tempdir().unwrap();
    let mut h = with_demo(dir.path());
    h.run_steps(2);
    let title = h.state().window_title();
    assert_eq!(
        title,
        "demo: Sen1Floods11 Spain_7370579 (Sentinel-1/2) — UniDiff Studio"
    );
    // Nothing unsaved: a close goes through without a question.
    request_close(&mut h);
    assert_eq!(h.state().store.close_state, CloseState::Open);
    assert!(!sent_commands(&h).contains(&egui::ViewportCommand::CancelClose));

    h.key_press(Key::B);
    h.step();
    stroke(&mut h, &[(100.5, 100.5), (120.5, 110.5)]);
    let title = h.state().window_title();
    assert!(
        title.contains("(Sentinel-1/2) * — UniDiff Studio"),
        "{title}"
    );
    assert!(
        sent_commands(&h)
            .iter()
            .any(|c| matches!(c, egui::ViewportCommand::Title(t) if *t == title))
            || h.state().window_title() == title,
        "the window was not given the title"
    );

    // The close button with unsaved labels: held back, and asked.
    request_close(&mut h);
    assert_eq!(h.state().store.close_state, CloseState::Asking);
    assert!(sent_commands(&h).contains(&egui::ViewportCommand::CancelClose));
    h.step();
    h.get_by_label("Close with unsaved labels?");
    h.get_by_label("Cancel").click();
    h.run_steps(2);
    assert_eq!(h.state().store.close_state, CloseState::Open);

    // File → Quit (and Ctrl+Q, the same command: shortcuts' unit test)
    // asks the window to close, which is held back the same way.
    h.state_mut().handle(AppCommand::Quit { confirmed: false });
    h.step();
    assert!(sent_commands(&h).contains(&egui::ViewportCommand::Close));
    request_close(&mut h);
    assert_eq!(h.state().store.close_state, CloseState::Asking);
    h.step();
    h.get_by_label("Close without saving").click();
    h.run_steps(2);
    assert_eq!(h.state().store.close_state, CloseState::Confirmed);
    request_close(&mut h);
    assert!(!sent_commands(&h).contains(&egui::ViewportCommand::CancelClose));
}

#[test]
fn without_a_file_dialog_the_app_says_so_and_takes_a_typed_path() {
    use unidiff_studio::ui::FileAction;
    let dir = tempfile::tempdir().unwrap();
    let mut h = with_demo(dir.path());
    // What rfd reports when neither a portal nor zenity answers.
    h.state_mut().handle(AppCommand::DialogFailed(
        FileAction::SaveLabels(LabelLayer::Train),
        "Failed to save file with zenity: No such file or directory".into(),
    ));
    h.run_steps(2);
    assert!(
        h.state().store.messages.iter().any(|m| m.error
            && m.text.contains("no file dialog could be shown")
            && m.text.contains("zenity")),
        "{:?}",
        h.state().store.messages
    );
    assert!(h.state().views.path_prompt.prompt.is_some());
    h.get_by_label("Type a path");

    // A folder that does not exist is refused in the field.
    let target = dir.path().join("typed_labels.tif");
    h.state_mut()
        .views
        .path_prompt
        .prompt
        .as_mut()
        .unwrap()
        .text = dir.path().join("no/such/labels.tif").display().to_string();
    h.step();
    h.get_by_label("OK").click();
    h.run_steps(2);
    let problem = h
        .state()
        .views
        .path_prompt
        .prompt
        .as_ref()
        .unwrap()
        .problem
        .clone();
    assert!(
        problem.as_deref().unwrap_or("").contains("does not exist"),
        "{problem:?}"
    );

    // A good path saves the labels there, as the dialog's would.
    h.state_mut()
        .views
        .path_prompt
        .prompt
        .as_mut()
        .unwrap()
        .text = target.display().to_string();
    h.step();
    h.get_by_label("OK").click();
    h.run_steps(2);
    assert!(h.state().views.path_prompt.prompt.is_none());
    common::wait_tasks(&mut h);
    assert!(target.is_file(), "{:?}", h.state().store.messages);
}

/// The demo as a project: the scene is found wherever this installation
/// keeps its demo, not by path; the painted labels, the test layer and the
/// class names come back; Ctrl+S saves to the open project.
#[test]
fn the_demo_saved_as_a_project_opens_again_with_its_labels() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = with_demo(dir.path());
    h.key_press(Key::B);
    h.step();
    stroke(&mut h, &[(200.5, 100.5), (240.5, 140.5)]);
    let painted = train_data(&h);
    let test = h
        .state()
        .store
        .session
        .as_ref()
        .unwrap()
        .scene
        .test_labels
        .clone();
    let project = dir.path().join("demo project.udproj");
    h.state_mut()
        .handle(AppCommand::SaveProjectAs(project.clone()));
    common::wait_tasks(&mut h);
    assert!(!h.state().store.has_unsaved_work());
    // Another stroke, saved with Ctrl+S into the same project.
    stroke(&mut h, &[(300.5, 300.5), (320.5, 330.5)]);
    assert!(h.state().store.has_unsaved_work());
    let painted_more = train_data(&h);
    assert_ne!(painted, painted_more);
    h.key_press_modifiers(Modifiers::COMMAND, Key::S);
    common::wait_tasks(&mut h);
    assert!(
        !h.state().store.has_unsaved_work(),
        "{:?}",
        h.state().store.messages
    );
    let data_folders = std::fs::read_dir(dir.path().join("demo project_data"))
        .unwrap()
        .count();
    assert_eq!(data_folders, 1, "the first save's data was removed");

    h.state_mut()
        .handle(AppCommand::NewProject { confirmed: false });
    h.run_steps(2);
    assert!(h.state().store.session.is_none());
    h.state_mut()
        .handle(AppCommand::OpenProject(project.clone()));
    wait_loaded(&mut h);
    let app = h.state();
    let s = app.store.session.as_ref().unwrap();
    assert!(s.sources.demo);
    assert_eq!(train_data(&h), painted_more);
    assert_eq!(s.scene.test_labels, test);
    let names: Vec<_> = s.classes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["dry", "water"]);
    assert!(app.window_title().starts_with("demo project.udproj"));

    // A project from a newer version is refused, naming the file.
    let newer = dir.path().join("newer.udproj");
    std::fs::write(&newer, br#"{"version": 9, "title": "x"}"#).unwrap();
    h.state_mut().handle(AppCommand::OpenProject(newer));
    let last = h.state().store.messages.last().unwrap();
    assert!(
        last.error && last.text.contains("newer.udproj") && last.text.contains("newer"),
        "{}",
        last.text
    );
    assert!(h.state().store.session.is_some(), "the open project stays");
}
