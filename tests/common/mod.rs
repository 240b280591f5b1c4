//! Helpers shared by the integration tests: fixture paths and safetensors
//! readers.
#![allow(dead_code)]

pub mod http;

use std::path::PathBuf;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/fixtures").join(rel)
}

/// The shared data folder beside the checkout (CI has it), or the folder
/// `UNIDIFF_SHARED_DATA` names (CI points it at an empty folder once to
/// check that these tests skip cleanly on a fresh clone).
pub fn shared_data(rel: &str) -> PathBuf {
    std::env::var_os("UNIDIFF_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/data"))
        .join(rel)
}

/// `../shared/data/rel` when it is there; None (and a line saying so) on
/// a fresh clone without `../shared`.
pub fn shared_data_present(rel: &str) -> Option<PathBuf> {
    let path = shared_data(rel);
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "skipped: {} is not here (a clone without ../shared)",
            path.display()
        );
        None
    }
}

/// The shared data file `rel`, or return from the test when the checkout
/// has no `../shared` beside it.
#[macro_export]
macro_rules! shared_or_skip {
    ($rel:expr $(,)?) => {
        match common::shared_data_present($rel) {
            Some(path) => path,
            None => return,
        }
    };
}

/// Steps the app until the load in flight has ended.
pub fn wait_loaded(h: &mut egui_kittest::Harness<'_, unidiff_studio::ui::StudioApp>) {
    let start = std::time::Instant::now();
    h.step();
    while h.state().jobs.loading.is_some() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "loading took over 2 min"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        h.step();
    }
    h.run_steps(3);
}

/// Steps the app until its file and raster tasks (label files, exports,
/// x_t, pRGB renders, checks) have ended.
pub fn wait_tasks(h: &mut egui_kittest::Harness<'_, unidiff_studio::ui::StudioApp>) {
    let start = std::time::Instant::now();
    h.step();
    while h.state().jobs.tasks_pending() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "tasks took over 1 min"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
        h.step();
    }
    h.run_steps(2);
}

pub fn demo(name: &str) -> PathBuf {
    repo().join("assets/demo").join(name)
}

pub struct Tensors {
    bytes: Vec<u8>,
}

impl Tensors {
    pub fn open(rel: &str) -> Self {
        let path = fixture(rel);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self { bytes }
    }

    pub fn open_path(path: &std::path::Path) -> Self {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self { bytes }
    }

    fn view(&self, name: &str) -> (safetensors::Dtype, Vec<usize>, Vec<u8>) {
        let st = safetensors::SafeTensors::deserialize(&self.bytes).expect("safetensors");
        let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        (t.dtype(), t.shape().to_vec(), t.data().to_vec())
    }

    pub fn u8(&self, name: &str) -> (Vec<usize>, Vec<u8>) {
        let (dt, shape, data) = self.view(name);
        assert_eq!(dt, safetensors::Dtype::U8, "{name}");
        (shape, data)
    }

    pub fn f64(&self, name: &str) -> (Vec<usize>, Vec<f64>) {
        let (dt, shape, data) = self.view(name);
        assert_eq!(dt, safetensors::Dtype::F64, "{name}");
        let v = data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        (shape, v)
    }

    pub fn f32(&self, name: &str) -> (Vec<usize>, Vec<f32>) {
        let (dt, shape, data) = self.view(name);
        assert_eq!(dt, safetensors::Dtype::F32, "{name}");
        let v = data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        (shape, v)
    }
}

impl Tensors {
    pub fn i64(&self, name: &str) -> (Vec<usize>, Vec<i64>) {
        let (dt, shape, data) = self.view(name);
        assert_eq!(dt, safetensors::Dtype::I64, "{name}");
        let v = data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        (shape, v)
    }

    pub fn names(&self) -> Vec<String> {
        let st = safetensors::SafeTensors::deserialize(&self.bytes).expect("safetensors");
        st.names().into_iter().map(String::from).collect()
    }
}

/// Largest absolute difference.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub fn json(rel: &str) -> serde_json::Value {
    let path = fixture(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("json")
}

/// |a - b| <= tol * max(|b|, tiny)
pub fn rel_close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1e-300)
}
