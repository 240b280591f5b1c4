//! The real `unidiff-studio` binary in a window under Xvfb, driven with
//! xdotool: the demo scene opens, a stroke is painted and autosaved, the app
//! is killed (SIGKILL) in the middle of the next stroke, and on restart it
//! offers the autosave, which holds the first stroke; on a corner of the
//! demo, Stage A is started and cancelled from the keyboard and a
//! classification shows the results window. Screenshots of the window are
//! kept (UNIDIFF_SCREENSHOT_DIR, else the temp folder).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Xvfb on a free display; returns it with the display name.
fn xvfb() -> (Killed, String) {
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1400x900x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb runs (apt-get install xvfb; scripts/dev.sh installs it)");
    let mut out = child.stdout.take().expect("Xvfb's stdout");
    let mut number = String::new();
    let mut byte = [0u8; 1];
    while out.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
        number.push(byte[0] as char);
    }
    assert!(!number.trim().is_empty(), "Xvfb gave no display number");
    (Killed(child), format!(":{}", number.trim()))
}

fn app(display: &str, data: &Path, log: &Path) -> Killed {
    app_with(display, data, log, &["--demo".as_ref()])
}

fn app_with(display: &str, data: &Path, log: &Path, args: &[&std::ffi::OsStr]) -> Killed {
    let log_file = std::fs::File::create(log).unwrap();
    Killed(
        Command::new(env!("CARGO_BIN_EXE_unidiff-studio"))
            .args(args)
            .env("DISPLAY", display)
            .env_remove("WAYLAND_DISPLAY")
            .env("UNIDIFF_STUDIO_DATA_DIR", data)
            .env("UNIDIFF_AUTOSAVE_SECS", "1")
            .env("XDG_CONFIG_HOME", data.join("config"))
            .env("XDG_DATA_HOME", data.join("share"))
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("the app starts"),
    )
}

fn wait_for(log: &Path, text: &str, after: usize, timeout: Duration) -> usize {
    let start = Instant::now();
    loop {
        let s = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(i) = s[after.min(s.len())..].find(text) {
            return after + i + text.len();
        }
        assert!(
            start.elapsed() < timeout,
            "no '{text}' in the app's log after {timeout:?}:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn xdotool(display: &str, args: &[&str]) {
    let status = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", display)
        .status()
        .expect("xdotool runs (apt-get install xdotool)");
    assert!(status.success(), "xdotool {args:?}");
}

fn screenshot(display: &str, path: &Path) {
    let status = Command::new("import")
        .args(["-window", "root"])
        .arg(path)
        .env("DISPLAY", display)
        .status()
        .expect("ImageMagick's import runs");
    assert!(status.success());
}

fn shots_dir(tmp: &Path) -> PathBuf {
    let dir = std::env::var_os("UNIDIFF_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Labelled pixels per class in the autosaved training layer.
fn autosaved_counts(data: &Path) -> [usize; 256] {
    let mut counts = [0usize; 256];
    for entry in walk(&data.join("autosave")) {
        if entry.file_name().is_some_and(|n| n == "train.tif") {
            let l = unidiff_studio::io::open_labels(&entry).unwrap();
            counts = l.histogram();
        }
    }
    counts
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn killed_while_painting_the_app_offers_the_last_autosave() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let shots = shots_dir(tmp.path());
    let (_x, display) = xvfb();
    let log = tmp.path().join("app1.log");
    let mut first = app(&display, &data, &log);
    let pos = wait_for(&log, "opened demo", 0, Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(2));
    screenshot(&display, &shots.join("demo_scene.png"));

    focus(&display);
    // First stroke: brush (B), class 2, a drag across the map's middle.
    xdotool(&display, &["mousemove", "700", "450"]);
    xdotool(&display, &["key", "b", "key", "2"]);
    xdotool(&display, &["mousedown", "1"]);
    for x in (700..=820).step_by(10) {
        xdotool(&display, &["mousemove", &x.to_string(), "460"]);
    }
    xdotool(&display, &["mouseup", "1"]);
    wait_for(&log, "autosaved labels", pos, Duration::from_secs(20));
    let saved = autosaved_counts(&data);
    assert!(saved[2] > 50, "the first stroke is autosaved: {}", saved[2]);
    std::thread::sleep(Duration::from_millis(500));
    screenshot(&display, &shots.join("demo_painted.png"));

    // Second stroke, killed half way.
    xdotool(&display, &["mousemove", "600", "300", "mousedown", "1"]);
    for y in (300..=380).step_by(10) {
        xdotool(&display, &["mousemove", "600", &y.to_string()]);
    }
    first.0.kill().unwrap();
    let _ = first.0.wait();
    assert_eq!(
        autosaved_counts(&data)[2],
        saved[2],
        "the kill lost nothing saved"
    );

    let log2 = tmp.path().join("app2.log");
    let _second = app(&display, &data, &log2);
    wait_for(&log2, "opened demo", 0, Duration::from_secs(120));
    wait_for(&log2, "autosave found", 0, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    screenshot(&display, &shots.join("recovery_offer.png"));
    let shot = image::open(shots.join("demo_scene.png")).unwrap().to_rgb8();
    let mut colours = std::collections::HashSet::new();
    for p in shot.pixels() {
        colours.insert(p.0);
    }
    assert!(
        colours.len() > 1000,
        "the screenshot shows the scene: {} colours",
        colours.len()
    );
}

fn focus(display: &str) {
    // Keys go to the focused window (there is no window manager).
    xdotool(
        display,
        &[
            "search",
            "--sync",
            "--name",
            "UniDiff Studio",
            "windowfocus",
            "--sync",
            "%1",
        ],
    );
}

#[test]
fn stage_a_and_a_classification_from_the_keyboard_show_their_panels() {
    use unidiff_studio::scene::named_classes;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let shots = shots_dir(tmp.path());
    // A 128 x 128 corner of the demo; sparse training labels (every 8th
    // pixel of the reference) and the reference as test labels.
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/demo");
    let crop = |name: &str, out: &str| {
        let out = tmp.path().join(out);
        let status = Command::new("gdal_translate")
            .args(["-q", "-srcwin", "0", "0", "128", "128"])
            .arg(demo.join(name))
            .arg(&out)
            .status()
            .expect("gdal_translate runs");
        assert!(status.success());
        out
    };
    let s2 = crop("Spain_7370579_S2Hand.tif", "corner_S2.tif");
    let s1 = crop("Spain_7370579_S1Hand.tif", "corner_S1.tif");
    let reference = crop("Spain_7370579_LabelHand.tif", "reference.tif");
    let test = unidiff_studio::io::open_labels_with_offset(&reference, 1).unwrap();
    let mut train = test.clone();
    for (i, v) in train.data.iter_mut().enumerate() {
        if (i / 128) % 8 != 0 || (i % 128) % 8 != 0 {
            *v = 0;
        }
    }
    let classes = named_classes(2, &["dry".into(), "water".into()]);
    let train_path = tmp.path().join("corner_labels_train.tif");
    let test_path = tmp.path().join("corner_labels_test.tif");
    unidiff_studio::session::label_files::save_labels(&train_path, &train, &classes).unwrap();
    unidiff_studio::session::label_files::save_labels(&test_path, &test, &classes).unwrap();

    let (_x, display) = xvfb();
    let log = tmp.path().join("app.log");
    let files = [&s2, &s1, &train_path, &test_path];
    let args: Vec<&std::ffi::OsStr> = files.iter().map(|p| p.as_os_str()).collect();
    let _app = app_with(&display, &data, &log, &args);
    let pos = wait_for(&log, "opened corner_S2.tif", 0, Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(1));
    focus(&display);
    xdotool(&display, &["mousemove", "700", "450"]);
    // Stage A (the quick preset): the panel mid-run, then Esc cancels it.
    xdotool(&display, &["key", "ctrl+shift+Return"]);
    let pos = wait_for(&log, "Stage A step 1/40", pos, Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(1500));
    screenshot(&display, &shots.join("training_panel_mid_run_xvfb.png"));
    xdotool(&display, &["key", "Escape"]);
    let pos = wait_for(&log, "Stage A cancelled", pos, Duration::from_secs(120));
    // Stage B (MLP and the forest beside it): the results window opens.
    xdotool(&display, &["key", "ctrl+Return"]);
    wait_for(&log, "classified in", pos, Duration::from_secs(600));
    std::thread::sleep(Duration::from_secs(2));
    let shot = shots.join("results_panel_xvfb.png");
    screenshot(&display, &shot);
    let img = image::open(&shot).unwrap().to_rgb8();
    assert_eq!((img.width(), img.height()), (1400, 900));
    let colours: std::collections::HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    assert!(colours.len() > 500, "{} colours", colours.len());
}
