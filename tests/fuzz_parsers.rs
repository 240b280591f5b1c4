//! Parsers that cannot crash (#21 item 4): property tests that feed every
//! file reader mutated copies of a valid file (bytes flipped, inserted,
//! removed, the file cut short) and `model forward`'s input check random
//! shapes, timesteps and classes. Each asserts "an error or a value, never
//! a panic" (proptest fails a case that panics and shrinks it). The case
//! count is bounded (`UNIDIFF_FUZZ_CASES`, default 48 per target) so that CI
//! stays short; raise it for a longer search.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests stop on the first surprise

mod common;

use std::path::Path;

use burn::backend::NdArray;
use burn::prelude::*;
use burn::tensor::TensorData;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use unidiff_studio::base::NormalRng;
use unidiff_studio::io::mat::{list_variables, read_variable};
use unidiff_studio::io::npy::read_npy;
use unidiff_studio::io::{open_hsi, open_labels};
use unidiff_studio::model::adapter::{AdapterMetadata, read_adapter_metadata, save_adapter};
use unidiff_studio::model::checkpoint::TensorFile;
use unidiff_studio::model::loss::LossKind;
use unidiff_studio::model::params::ParamSource;
use unidiff_studio::model::resblock::BlockContext;
use unidiff_studio::model::{CheckpointTensors, UNet, UNetConfig};
use unidiff_studio::scene::{ClassInfo, LabelImage, PixelGrid};

type B = NdArray<f32>;

fn cases() -> u32 {
    std::env::var("UNIDIFF_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(48)
}

/// One change to a file's bytes, at a position given as a fraction of its
/// length (so that one strategy serves files of any size).
#[derive(Debug, Clone)]
enum Mutation {
    Flip(f64, u8),
    Insert(f64, Vec<u8>),
    Remove(f64, usize),
    Truncate(f64),
    /// A 4- or 8-byte field set to an extreme (sizes, counts, offsets).
    Extreme(f64, u64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = 0.0..1.0f64;
    prop_oneof![
        4 => (at.clone(), any::<u8>()).prop_map(|(a, b)| Mutation::Flip(a, b)),
        1 => (at.clone(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(a, b)| Mutation::Insert(a, b)),
        1 => (at.clone(), 1..64usize).prop_map(|(a, n)| Mutation::Remove(a, n)),
        1 => at.clone().prop_map(Mutation::Truncate),
        2 => (
            at,
            prop_oneof![
                Just(0u64),
                Just(u32::MAX as u64),
                Just(u64::MAX),
                Just(1u64 << 31),
                Just(1u64 << 40)
            ]
        )
            .prop_map(|(a, v)| Mutation::Extreme(a, v)),
    ]
}

/// Mutations that mostly land in the first `head` bytes (headers, tags,
/// sizes), where a parser makes its decisions, and sometimes anywhere.
fn mutate(seed: &[u8], head: usize, changes: &[Mutation]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for (i, m) in changes.iter().enumerate() {
        let span = if i % 3 == 2 {
            bytes.len()
        } else {
            head.min(bytes.len())
        };
        let pos = |f: f64| ((f * span as f64) as usize).min(bytes.len().saturating_sub(1));
        match m {
            Mutation::Flip(f, b) if !bytes.is_empty() => {
                let p = pos(*f);
                bytes[p] ^= b | 1;
            }
            Mutation::Insert(f, b) => {
                let p = pos(*f);
                bytes.splice(p..p, b.iter().copied());
            }
            Mutation::Remove(f, n) if !bytes.is_empty() => {
                let p = pos(*f);
                let end = (p + n).min(bytes.len());
                bytes.drain(p..end);
            }
            Mutation::Truncate(f) => {
                let keep = (f * bytes.len() as f64) as usize;
                bytes.truncate(keep);
            }
            Mutation::Extreme(f, v) if bytes.len() >= 8 => {
                let p = pos(*f).min(bytes.len() - 8);
                if p % 2 == 0 {
                    bytes[p..p + 8].copy_from_slice(&v.to_le_bytes());
                } else {
                    bytes[p..p + 4].copy_from_slice(&(*v as u32).to_le_bytes());
                }
            }
            _ => {}
        }
    }
    bytes
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..6)
}

/// Runs `check` on mutated copies of `seed` written to `name` in a fresh
/// folder; `check` must return (whether the file was read) without
/// panicking. Some copies must be refused: mutations that never reach the
/// parser's checks would test nothing.
fn fuzz_file(name: &str, seed: &[u8], head: usize, check: impl Fn(&Path) -> bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let refused = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&mutations(), |changes| {
            std::fs::write(&path, mutate(seed, head, &changes)).unwrap();
            if !check(&path) {
                refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let refused = refused.into_inner();
    eprintln!("{name}: {refused} of {} mutated copies refused", cases());
    assert!(refused > 0, "{name}: every mutated copy was read");
}

/// A MATLAB v5 file with one double array `name` of `dims` (column-major
/// values 0, 1, 2, …), as MATLAB's `save -v6` writes it.
fn mat_v5(name: &str, dims: &[u32]) -> Vec<u8> {
    fn element(out: &mut Vec<u8>, kind: u32, data: &[u8]) {
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(8), 0);
    }
    let mut header = b"MATLAB 5.0 MAT-file, written by the fuzz test".to_vec();
    header.resize(116, b' ');
    header.extend_from_slice(&[0; 8]);
    header.extend_from_slice(&0x0100u16.to_le_bytes());
    header.extend_from_slice(b"IM");
    let n: u32 = dims.iter().product();
    let mut matrix = Vec::new();
    element(&mut matrix, 6, &[6, 0, 0, 0, 0, 0, 0, 0]); // mxDOUBLE_CLASS
    let dim_bytes: Vec<u8> = dims
        .iter()
        .flat_map(|d| (*d as i32).to_le_bytes())
        .collect();
    element(&mut matrix, 5, &dim_bytes);
    element(&mut matrix, 1, name.as_bytes());
    let values: Vec<u8> = (0..n).flat_map(|v| (v as f64).to_le_bytes()).collect();
    element(&mut matrix, 9, &values);
    let mut out = header;
    element(&mut out, 14, &matrix);
    out
}

/// A NumPy `.npy` file of a 4 x 5 x 3 float32 array.
fn npy() -> Vec<u8> {
    let mut header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 5, 3), }".to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in 0..60 {
        out.extend_from_slice(&(v as f32).to_le_bytes());
    }
    out
}

#[test]
fn the_mat_v5_reader_never_panics() {
    let seed = mat_v5("cube", &[4, 5, 3]);
    // The seed itself reads as what it holds.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("seed.mat");
    std::fs::write(&p, &seed).unwrap();
    let a = read_variable(&p, &["cube"]).unwrap();
    assert_eq!((a.height, a.width, a.bands), (4, 5, 3));
    fuzz_file("cube.mat", &seed, 200, |p| {
        let listed = list_variables(p).is_ok();
        read_variable(p, &["cube"]).is_ok() && listed
    });
}

#[test]
fn the_npy_reader_never_panics() {
    let seed = npy();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("seed.npy");
    std::fs::write(&p, &seed).unwrap();
    let a = read_npy(&p).unwrap();
    assert_eq!((a.height, a.width, a.bands), (4, 5, 3));
    fuzz_file("cube.npy", &seed, 128, |p| read_npy(p).is_ok());
}

#[test]
fn the_envi_header_reader_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let (w, h, b) = (6usize, 5usize, 4usize);
    let values: Vec<u8> = (0..w * h * b)
        .flat_map(|v| (v as f32).to_le_bytes())
        .collect();
    let header = format!(
        "ENVI\ndescription = {{fuzz seed}}\nsamples = {w}\nlines = {h}\nbands = {b}\nheader offset = 0\nfile type = ENVI Standard\ndata type = 4\ninterleave = bsq\nbyte order = 0\nwavelength units = Nanometers\nwavelength = {{450.0, 550.0, 650.0, 800.0}}\n"
    );
    let img = dir.path().join("cube.img");
    std::fs::write(&img, &values).unwrap();
    std::fs::write(dir.path().join("cube.hdr"), &header).unwrap();
    let cube = open_hsi(&img).unwrap();
    assert_eq!((cube.grid.width, cube.grid.height, cube.bands), (w, h, b));
    // The header mutated (the raster beside it stays), then the raster.
    let hdr = dir.path().join("cube.hdr");
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&mutations(), |changes| {
            std::fs::write(&hdr, mutate(header.as_bytes(), header.len(), &changes)).unwrap();
            let _ = open_hsi(&img);
            Ok(())
        })
        .unwrap();
    std::fs::write(&hdr, &header).unwrap();
    runner
        .run(&mutations(), |changes| {
            std::fs::write(&img, mutate(&values, values.len(), &changes)).unwrap();
            let _ = open_hsi(&img);
            Ok(())
        })
        .unwrap();
}

#[test]
fn the_label_raster_reader_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let mut grid = PixelGrid::plain(9, 7);
    grid.geo_transform = Some([500000.0, 10.0, 0.0, 4000000.0, 0.0, -10.0]);
    let labels = LabelImage {
        data: (0..63).map(|i| (i % 4) as u8).collect(),
        grid,
    };
    let path = dir.path().join("labels.tif");
    let classes = vec![ClassInfo::unnamed(1), ClassInfo::unnamed(2)];
    unidiff_studio::session::label_files::save_labels(&path, &labels, &classes).unwrap();
    let seed = std::fs::read(&path).unwrap();
    assert_eq!(open_labels(&path).unwrap().data, labels.data);
    fuzz_file("labels.tif", &seed, seed.len(), |p| open_labels(p).is_ok());
}

#[test]
fn the_checkpoint_and_adapter_readers_never_panic() {
    let device = Default::default();
    let config = UNetConfig::tiny();
    let model = UNet::<B>::build(&config, ParamSource::Random(NormalRng::new(3)), &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let adapter = dir.path().join("adapter.safetensors");
    let meta = AdapterMetadata {
        base: "tiny-random:3".into(),
        base_sha256: None,
        config: config.clone(),
        modalities: vec!["prgb".into()],
        steps: 1,
        lr: 1e-4,
        batch: 2,
        seed: 0,
        loss: LossKind::Mse,
        loss_curve: vec![0.5],
        trainable_parameters: 0,
        trainable_percent: 0.0,
        cancelled: false,
        software: "fuzz seed".into(),
    };
    save_adapter(&adapter, &model, &meta).unwrap();
    let seed = std::fs::read(&adapter).unwrap();
    // The header (its length, then JSON) is where the decisions are.
    fuzz_file("adapter.safetensors", &seed, 4096, |p| {
        let meta = read_adapter_metadata(p).is_ok();
        let Ok(adapter) = CheckpointTensors::open(p) else {
            return false;
        };
        let names: Vec<String> = adapter.names().cloned().collect();
        let values = names.iter().all(|n| adapter.data(n).is_ok());
        let built = UNet::<B>::build(
            &config,
            ParamSource::RandomAdapted {
                rng: NormalRng::new(3),
                adapter: &adapter,
            },
            &device,
        )
        .is_ok();
        meta && values && built
    });
    let fixture_config = tiny_fixture_config();
    for name in ["model.safetensors", "model.pt"] {
        let seed = std::fs::read(common::fixture(&format!("adm_tiny/{name}"))).unwrap();
        fuzz_file(name, &seed, 8192, |p| {
            let Ok(ckpt) = CheckpointTensors::open(p) else {
                return false;
            };
            let names: Vec<String> = ckpt.names().cloned().collect();
            let values = names.iter().all(|n| ckpt.data(n).is_ok());
            values
                && UNet::<B>::build(&fixture_config, ParamSource::Checkpoint(&ckpt), &device)
                    .is_ok()
        });
    }
}

fn tiny_fixture_config() -> UNetConfig {
    let text = std::fs::read_to_string(common::fixture("adm_tiny/config.json")).unwrap();
    UNetConfig::from_json(&text).unwrap()
}

/// `model forward`'s inputs: the input file mutated, and random shapes,
/// timesteps and classes; whatever the check lets through runs through the
/// network without a panic.
#[test]
fn model_forward_inputs_are_refused_or_run() {
    let seed = std::fs::read(common::fixture("adm_tiny/io.safetensors")).unwrap();
    fuzz_file("io.safetensors", &seed, 4096, |p| {
        let Ok(input) = TensorFile::open(p) else {
            return false;
        };
        let x = input.f32("x").is_ok();
        let t = input.i64("t").is_ok();
        input.i64("y").is_ok() && x && t
    });
    let config = tiny_fixture_config();
    let device = Default::default();
    let ckpt = CheckpointTensors::open(&common::fixture("adm_tiny/model.safetensors")).unwrap();
    let model = UNet::<B>::build(&config, ParamSource::Checkpoint(&ckpt), &device).unwrap();
    // Near-valid inputs (4-D, small sides, one t and y per image) with
    // every field sometimes wrong, so that both branches are taken.
    let inputs = (
        0..4usize,
        prop_oneof![Just(3usize), 0..6usize],
        prop::sample::select(vec![0usize, 1, 7, 8, 16, 24]),
        prop::sample::select(vec![0usize, 1, 7, 8, 16, 24]),
        prop_oneof![4 => Just(0usize), 1 => 1..3usize],
        prop_oneof![4 => 0..1000i64, 1 => -5..1100i64],
        prop_oneof![4 => 0..3i64, 1 => -3..300i64],
        prop_oneof![6 => Just(4usize), 1 => 0..6usize],
    );
    let mut runner = TestRunner::new(Config {
        cases: cases() * 2,
        failure_persistence: None,
        ..Config::default()
    });
    let counts = std::sync::Mutex::new((0usize, 0usize));
    runner
        .run(&inputs, |(n, c, h, w, extra, t, y, dims)| {
            let mut shape = vec![n, c, h, w];
            shape.resize(dims, 2);
            let t = vec![t; n + extra];
            let y = vec![y; n];
            let accepted = config.check_input(&shape, &t, &y).is_ok();
            if accepted {
                let len: usize = shape.iter().product();
                let x = Tensor::<B, 4>::from_data(
                    TensorData::new(vec![0.1f32; len], shape.clone()),
                    &device,
                );
                let emb = model.embedding(&t, &y);
                let out = model.forward_blocks(
                    x,
                    emb,
                    BlockContext { train: false },
                    None,
                    &mut |_, _| {},
                );
                assert_eq!(out.dims()[0], n);
            }
            let mut c = counts.lock().unwrap();
            if accepted {
                c.0 += 1
            } else {
                c.1 += 1
            }
            Ok(())
        })
        .unwrap();
    let (accepted, refused) = counts.into_inner().unwrap();
    eprintln!("model forward: {accepted} inputs run, {refused} refused");
    assert!(
        accepted > 0 && refused > 0,
        "{accepted} run, {refused} refused"
    );
}
