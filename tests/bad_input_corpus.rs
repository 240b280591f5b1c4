//! The bad-input corpus: the real binary run as a user would, on broken
//! files, wrong grids, arguments out of range and output locations that
//! cannot take the results. Every case must end with a non-zero exit code,
//! no panic, a message that names the file or option and the problem, and
//! nothing half-written where the output was asked for. The fixtures are
//! made here from the bundled demo and a few bytes written by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{demo, fixture};

/// One bad input: the arguments (`@` is the fixture folder), the exit code,
/// what the message must say, and an output path that must not appear.
struct Case {
    args: &'static str,
    exit: i32,
    says: &'static [&'static str],
    no_output: Option<&'static str>,
}

const fn case(args: &'static str, exit: i32, says: &'static [&'static str]) -> Case {
    Case {
        args,
        exit,
        says,
        no_output: None,
    }
}

const fn out(
    args: &'static str,
    exit: i32,
    says: &'static [&'static str],
    output: &'static str,
) -> Case {
    Case {
        args,
        exit,
        says,
        no_output: Some(output),
    }
}

/// A `.npy` file of little-endian values (`descr` as numpy writes it).
fn npy(path: &Path, descr: &str, shape: &[usize], data: &[u8]) {
    let shape_text = match shape {
        [n] => format!("({n},)"),
        s => format!(
            "({})",
            s.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    std::fs::write(path, bytes).unwrap();
}

/// An ENVI cube of f32 zeros-and-ones with its header.
fn envi(dir: &Path, stem: &str, (lines, samples, bands): (usize, usize, usize), data_bytes: usize) {
    let data: Vec<u8> = (0..data_bytes / 4)
        .flat_map(|i| ((i % 7) as f32 + 1.0).to_le_bytes())
        .collect();
    std::fs::write(dir.join(format!("{stem}.img")), data).unwrap();
    std::fs::write(
        dir.join(format!("{stem}.hdr")),
        format!(
            "ENVI\nsamples = {samples}\nlines = {lines}\nbands = {bands}\nheader offset = 0\nfile type = ENVI Standard\ndata type = 4\ninterleave = bsq\nbyte order = 0\n"
        ),
    )
    .unwrap();
}

/// A safetensors file of the given (name, dtype, shape, bytes).
fn safetensors(path: &Path, tensors: &[(&str, &str, Vec<usize>, Vec<u8>)]) {
    let mut offset = 0;
    let mut entries = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        entries.push(format!(
            "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{offset},{}]}}",
            offset + bytes.len()
        ));
        offset += bytes.len();
    }
    let mut header = format!("{{{}}}", entries.join(","));
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    for (_, _, _, bytes) in tensors {
        out.extend(bytes);
    }
    std::fs::write(path, out).unwrap();
}

fn gdal_translate(args: &[&str], src: &Path, dst: &Path) {
    let status = Command::new("gdal_translate")
        .arg("-q")
        .args(args)
        .arg(src)
        .arg(dst)
        .status()
        .expect("gdal_translate runs (gdal-bin; scripts/dev.sh installs it)");
    assert!(status.success());
}

fn fixtures(dir: &Path) {
    std::fs::write(dir.join("empty.tif"), b"").unwrap();
    std::fs::write(dir.join("text.tif"), b"hello, not a raster\n").unwrap();
    std::fs::write(dir.join("nonsense.json"), b"{ not json").unwrap();
    std::fs::write(dir.join("outfile"), b"a file where a folder is asked for").unwrap();
    std::fs::create_dir(dir.join("adir")).unwrap();
    std::fs::create_dir(dir.join("full")).unwrap();
    std::fs::write(dir.join("full/old_metrics.json"), b"{}").unwrap();
    let s2 = std::fs::read(demo("Spain_7370579_S2Hand.tif")).unwrap();
    std::fs::write(dir.join("cut.tif"), &s2[..30_000]).unwrap();
    std::fs::write(dir.join("garbage.npy"), b"\x93NUMPY\x01\x00garbage").unwrap();
    std::fs::write(dir.join("nohdr.img"), vec![0u8; 1200]).unwrap();
    std::fs::write(dir.join("trunc.mat"), b"MATLAB 5.0 MAT-file, cut short").unwrap();
    // Labels: a 64 x 64 x 2 stack, all zeros (nothing labelled).
    npy(
        &dir.join("labels3d.npy"),
        "|u1",
        &[64, 64, 2],
        &[1u8; 64 * 64 * 2],
    );
    npy(&dir.join("zero.npy"), "|u1", &[64, 64], &[0u8; 64 * 64]);
    // ENVI: 1 x 1 x 3, 20 x 20 x 2, and a header smaller than its data.
    envi(dir, "one", (1, 1, 3), 12);
    envi(dir, "two", (20, 20, 2), 20 * 20 * 2 * 4);
    envi(dir, "small", (10, 10, 3), 20 * 20 * 3 * 4);
    // 64 x 64 crops of the demo, a one-band SAR, a 256 x 256 label crop.
    let crop = ["-srcwin", "0", "0", "64", "64"];
    gdal_translate(
        &crop,
        &demo("Spain_7370579_S2Hand.tif"),
        &dir.join("s2_64.tif"),
    );
    gdal_translate(
        &crop,
        &demo("Spain_7370579_S1Hand.tif"),
        &dir.join("s1_64.tif"),
    );
    gdal_translate(
        &crop,
        &demo("Spain_7370579_LabelHand.tif"),
        &dir.join("lab_64.tif"),
    );
    gdal_translate(
        &["-b", "1"],
        &demo("Spain_7370579_S1Hand.tif"),
        &dir.join("sar1.tif"),
    );
    gdal_translate(
        &["-srcwin", "0", "0", "256", "256"],
        &demo("Spain_7370579_LabelHand.tif"),
        &dir.join("label_256.tif"),
    );
    // `model forward` inputs: 4 channels; t out of range.
    let x = |c: usize| (0..c * 8 * 8).flat_map(|_| 0.5f32.to_le_bytes()).collect();
    let i64s = |v: i64| v.to_le_bytes().to_vec();
    safetensors(
        &dir.join("x4.safetensors"),
        &[
            ("x", "F32", vec![1, 4, 8, 8], x(4)),
            ("t", "I64", vec![1], i64s(10)),
            ("y", "I64", vec![1], i64s(0)),
        ],
    );
    safetensors(
        &dir.join("t5000.safetensors"),
        &[
            ("x", "F32", vec![1, 3, 8, 8], x(3)),
            ("t", "I64", vec![1], i64s(5000)),
            ("y", "I64", vec![1], i64s(0)),
        ],
    );
    std::fs::copy(fixture("adm_tiny/model.pt"), dir.join("tiny.pt")).unwrap();
}

/// The demo scene at full size (another grid than the 64 x 64 crops).
fn demo_s1() -> String {
    demo("Spain_7370579_S1Hand.tif").display().to_string()
}

const RUN: &str =
    "run --backbone tiny-random --hsi @/s2_64.tif --train-labels @/lab_64.tif --label-offset 1";

fn cases() -> Vec<(String, Case)> {
    let plain: Vec<Case> = vec![
        // info
        case(
            "info /no/such/file.tif",
            1,
            &["/no/such/file.tif", "no such file"],
        ),
        case("info @/empty.tif", 1, &["empty.tif", "the file is empty"]),
        case("info @/text.tif", 1, &["text.tif", "not a raster"]),
        case("info --json @/text.tif", 1, &["text.tif", "not a raster"]),
        case("info @/adir", 1, &["adir", "not a PolSARpro folder"]),
        case(
            "info @/garbage.npy",
            1,
            &["garbage.npy", "not a NumPy .npy file"],
        ),
        case(
            "info @/nohdr.img",
            1,
            &["nohdr.img", "needs its header", "nohdr.hdr"],
        ),
        case("info @/trunc.mat", 1, &["trunc.mat"]),
        case("info", 2, &["<FILE"]),
        // render
        case("render", 2, &["--out"]),
        out("render --out @/r", 1, &["--hsi", "--sar"], "r"),
        out(
            "render --hsi @/text.tif --out @/r",
            1,
            &["text.tif", "not a raster"],
            "r",
        ),
        out(
            "render --hsi @/empty.tif --out @/r",
            1,
            &["empty.tif", "empty"],
            "r",
        ),
        out(
            "render --hsi /no/cube.tif --out @/r",
            1,
            &["/no/cube.tif", "no such file"],
            "r",
        ),
        out("render --hsi @/cut.tif --out @/r", 1, &["cut.tif"], "r"),
        out(
            "render --hsi @/small.img --out @/r",
            1,
            &["small.img", "header describes", "has 4800"],
            "r",
        ),
        out(
            "render --hsi @/s2_64.tif --rgb-bands 99,1,2 --out @/r",
            1,
            &["band 99", "13 bands"],
            "r",
        ),
        out(
            "render --hsi @/s2_64.tif --rgb-bands 1,2 --out @/r",
            1,
            &["--rgb-bands", "three band numbers"],
            "r",
        ),
        out(
            "render --hsi @/s2_64.tif --gamma 0 --out @/r",
            1,
            &["--gamma", "positive"],
            "r",
        ),
        out(
            "render --hsi @/s2_64.tif --gamma NaN --out @/r",
            1,
            &["--gamma", "positive"],
            "r",
        ),
        out(
            "render --hsi @/s2_64.tif --preset nonsense --out @/r",
            1,
            &["unknown preset 'nonsense'"],
            "r",
        ),
        case(
            "render --hsi @/s2_64.tif --out @/outfile",
            1,
            &["outfile", "is a file"],
        ),
        out(
            "render --hsi @/two.img --out @/r",
            1,
            &["PCA needs at least 3 bands", "has 2"],
            "r",
        ),
        out(
            "render --hsi @/one.img --out @/r",
            1,
            &["PCA needs at least 2 pixels", "1 of 1"],
            "r",
        ),
        out(
            "render --sar @/sar1.tif --out @/r",
            1,
            &["sar1.tif", "two polarisations"],
            "r",
        ),
        out(
            "render --sar @/text.tif --out @/r",
            1,
            &["text.tif", "not a raster"],
            "r",
        ),
        out(
            "render --hsi @/s2_64.tif --sar-db --sar-linear --out @/r",
            2,
            &["--sar-linear", "cannot be used with"],
            "r",
        ),
        out(
            "render --hsi @/s2_64.tif --rgb-bands 1,2,3 --preset sentinel2 --out @/r",
            2,
            &["--preset", "cannot be used with"],
            "r",
        ),
        // run: arguments checked before any work
        out("RUN --t -1 --out @/o", 1, &["--t -1", "0..999"], "o"),
        out("RUN --t 1000 --out @/o", 1, &["--t 1000", "0..999"], "o"),
        out(
            "RUN --mlp 0 --out @/o",
            1,
            &["--mlp '0'", "at least one unit"],
            "o",
        ),
        out("RUN --mlp abc --out @/o", 1, &["--mlp 'abc'"], "o"),
        out(
            "RUN --modalities pca,sar,pca --out @/o",
            1,
            &["--modalities", "'pca' is given twice"],
            "o",
        ),
        out(
            "RUN --modalities foo --out @/o",
            1,
            &["unknown modality 'foo'"],
            "o",
        ),
        out("RUN --modalities= --out @/o", 1, &["modalit"], "o"),
        out("RUN --stride 0 --out @/o", 1, &["--stride", "1..=32"], "o"),
        out(
            "RUN --stride 100 --out @/o",
            1,
            &["--stride", "1..=32"],
            "o",
        ),
        out(
            "RUN --split-fraction 2 --out @/o",
            1,
            &["--split-fraction"],
            "o",
        ),
        out(
            "RUN --split-fraction 0 --out @/o",
            1,
            &["--split-fraction"],
            "o",
        ),
        out(
            "RUN --validation-fraction 1.5 --out @/o",
            1,
            &["--validation-fraction 1.5"],
            "o",
        ),
        out("RUN --max-epochs 0 --out @/o", 1, &["--max-epochs 0"], "o"),
        // Names for classes the labels do not have: said (then the epochs
        // are refused).
        out(
            "RUN --class-names a,b,c,d --max-epochs 0 --out @/o",
            1,
            &[
                "--class-names gives 4 names",
                "c, d not used",
                "--max-epochs 0",
            ],
            "o",
        ),
        out(
            "RUN --batch-patches 0 --out @/o",
            1,
            &["--batch-patches 0"],
            "o",
        ),
        out(
            "RUN --classifier foo --out @/o",
            1,
            &["unknown classifier 'foo'"],
            "o",
        ),
        out("RUN --block 99 --out @/o", 1, &["--block 99", "0..8"], "o"),
        out(
            "run --backbone tiny-random --hsi @/s2_64.tif --train-labels @/lab_64.tif --label-offset 300 --out @/o",
            1,
            &["lab_64.tif", "label value 301"],
            "o",
        ),
        out("RUN --seed -3 --out @/o", 2, &["'-3'", "--seed"], "o"),
        out("RUN --trees 0 --out @/o", 1, &["--trees"], "o"),
        out(
            "run --backbone nonsense --hsi @/s2_64.tif --train-labels @/lab_64.tif --out @/o",
            1,
            &["unknown backbone 'nonsense'"],
            "o",
        ),
        out(
            "run --checkpoint @/text.tif --hsi @/s2_64.tif --train-labels @/lab_64.tif --out @/o",
            1,
            &["text.tif", "not a PyTorch"],
            "o",
        ),
        out("RUN --adapter @/text.tif --out @/o", 1, &["text.tif"], "o"),
        out(
            "RUN --save-model @/adir --out @/o",
            1,
            &["--save-model", "is a folder"],
            "o",
        ),
        out(
            "RUN --save-model @/no/such/m.udmodel --out @/o",
            1,
            &["--save-model", "does not exist"],
            "o",
        ),
        case("RUN --out @/outfile", 1, &["outfile", "is a file"]),
        case(
            "RUN --out @/full",
            1,
            &["full", "already holds files", "--overwrite"],
        ),
        // run: inputs
        out(
            "run --backbone tiny-random --hsi @/s2_64.tif --out @/o",
            1,
            &["--train-labels"],
            "o",
        ),
        out(
            "run --hsi @/s2_64.tif --train-labels @/lab_64.tif --out @/o",
            1,
            &["--checkpoint", "--backbone"],
            "o",
        ),
        out(
            "run --backbone tiny-random --hsi @/s2_64.tif --train-labels @/lab_64.tif --out @/o",
            1,
            &["at least two classes"],
            "o",
        ),
        out(
            "run --backbone tiny-random --hsi @/s2_64.tif --train-labels @/labels3d.npy --out @/o",
            1,
            &["labels3d.npy", "one band", "64 x 64 x 2"],
            "o",
        ),
        out(
            "run --backbone tiny-random --hsi @/s2_64.tif --train-labels @/zero.npy --out @/o",
            1,
            &["no training labels"],
            "o",
        ),
        out(
            "run --backbone tiny-random --hsi @/s2_64.tif --train-labels @/garbage.npy --out @/o",
            1,
            &["garbage.npy"],
            "o",
        ),
        out(
            "run --backbone tiny-random --hsi @/s2_64.tif --train-labels @/label_256.tif --out @/o",
            1,
            &["grids", "differ", "256 x 256"],
            "o",
        ),
        out(
            "run --backbone tiny-random --hsi @/text.tif --train-labels @/lab_64.tif --out @/o",
            1,
            &["text.tif", "not a raster"],
            "o",
        ),
        out(
            "RUN --test-labels @/label_256.tif --out @/o",
            1,
            &["grids", "differ"],
            "o",
        ),
        out(
            "RUN --sar @/sar1.tif --out @/o",
            1,
            &["sar1.tif", "two polarisations"],
            "o",
        ),
        // sweep
        out(
            "sweep --backbone tiny-random --hsi @/s2_64.tif --train-labels @/lab_64.tif --label-offset 1 --split-fraction 0.1 --t 0,5000 --out @/o",
            1,
            &["--t 5000", "0..999"],
            "o",
        ),
        out(
            "sweep --backbone tiny-random --hsi @/s2_64.tif --train-labels @/lab_64.tif --label-offset 1 --split-fraction 0.1 --t -5 --out @/o",
            1,
            &["--t -5", "0..999"],
            "o",
        ),
        out(
            "sweep --backbone tiny-random --hsi @/s2_64.tif --train-labels @/lab_64.tif --split-fraction 0.1 --t abc --out @/o",
            2,
            &["invalid value 'abc'"],
            "o",
        ),
        out(
            "sweep --backbone tiny-random --hsi @/s2_64.tif --train-labels @/lab_64.tif --label-offset 1 --t 0 --out @/o",
            1,
            &["--test-labels or --split-fraction"],
            "o",
        ),
        case(
            "sweep --backbone tiny-random --hsi @/s2_64.tif --train-labels @/lab_64.tif --label-offset 1 --split-fraction 0.1 --t 0,300 --out @/outfile",
            1,
            &["outfile", "is a file"],
        ),
        // adapt
        out(
            "adapt --hsi @/s2_64.tif --lr NaN --out @/a.safetensors",
            1,
            &["--lr NaN", "learning rate"],
            "a.safetensors",
        ),
        out(
            "adapt --hsi @/s2_64.tif --lr 1e30 --out @/a.safetensors",
            1,
            &["--lr", "learning rate"],
            "a.safetensors",
        ),
        out(
            "adapt --hsi @/s2_64.tif --lr -1 --out @/a.safetensors",
            1,
            &["--lr -1", "learning rate"],
            "a.safetensors",
        ),
        out(
            "adapt --hsi @/s2_64.tif --batch 0 --out @/a.safetensors",
            1,
            &["--batch"],
            "a.safetensors",
        ),
        out(
            "adapt --hsi @/s2_64.tif --steps 0 --out @/a.safetensors",
            1,
            &["--steps"],
            "a.safetensors",
        ),
        out(
            "adapt --hsi @/s2_64.tif --backbone tiny-random --batch 100000 --out @/a.safetensors",
            1,
            &["--batch 100000", "only 8 patches"],
            "a.safetensors",
        ),
        out(
            "adapt --hsi @/s2_64.tif --loss foo --out @/a.safetensors",
            1,
            &["unknown loss 'foo'"],
            "a.safetensors",
        ),
        out(
            "adapt --hsi @/s2_64.tif --modalities pca,pca --out @/a.safetensors",
            1,
            &["'pca' is given twice"],
            "a.safetensors",
        ),
        out(
            "adapt --backbone tiny-random --out @/a.safetensors",
            1,
            &["no modality to adapt on"],
            "a.safetensors",
        ),
        case(
            "adapt --hsi @/s2_64.tif --out @/adir",
            1,
            &["adir", "is a folder"],
        ),
        out(
            "adapt --hsi @/s2_64.tif --out @/no/such/a.safetensors",
            1,
            &["does not exist"],
            "no",
        ),
        out(
            "adapt --hsi @/text.tif --out @/a.safetensors",
            1,
            &["text.tif", "not a raster"],
            "a.safetensors",
        ),
        // model
        case(
            "model inspect @/text.tif",
            1,
            &["text.tif", "not a PyTorch"],
        ),
        case(
            "model inspect --config @/nonsense.json",
            1,
            &["nonsense.json"],
        ),
        case(
            "model inspect --config @/missing.json",
            1,
            &["missing.json"],
        ),
        out(
            "model forward --checkpoint @/text.tif --config tiny --input @/x4.safetensors --output @/f.safetensors",
            1,
            &["text.tif", "not a PyTorch"],
            "f.safetensors",
        ),
        out(
            "model forward --checkpoint @/tiny.pt --config tiny --input @/x4.safetensors --output @/f.safetensors",
            1,
            &["x4.safetensors", "4 channels", "takes 3"],
            "f.safetensors",
        ),
        out(
            "model forward --checkpoint @/tiny.pt --config tiny --input @/t5000.safetensors --output @/f.safetensors",
            1,
            &["t5000.safetensors", "t = 5000"],
            "f.safetensors",
        ),
        out(
            "model forward --checkpoint @/tiny.pt --config tiny --input @/text.tif --output @/f.safetensors",
            1,
            &["text.tif"],
            "f.safetensors",
        ),
        out(
            "model get --url http://127.0.0.1:1/x.pt --to @/got",
            1,
            &["http://127.0.0.1:1/x.pt", "no network"],
            "got",
        ),
        out("model get --url notaurl --to @/got", 1, &["notaurl"], "got"),
        // predict, mosaic
        out(
            "predict --model /no/model.udmodel --hsi @/s2_64.tif --out @/p",
            1,
            &["/no/model.udmodel"],
            "p",
        ),
        out(
            "predict --model @/text.tif --hsi @/s2_64.tif --out @/p",
            1,
            &["text.tif", "not a UniDiff Studio model"],
            "p",
        ),
        out(
            "predict --model @/text.tif --hsi @/s2_64.tif --shard 3/3 --out @/p",
            1,
            &["--shard '3/3'"],
            "p",
        ),
        case("mosaic @/adir --out @/m", 1, &["adir", "no predict.json"]),
        case("mosaic --out @/m", 2, &["<PARTS>"]),
        // map products
        out(
            "stats --classmap /no/map.tif --out @/s",
            1,
            &["/no/map.tif", "no such file"],
            "s",
        ),
        out(
            "stats --classmap @/text.tif --out @/s",
            1,
            &["text.tif", "not a raster"],
            "s",
        ),
        out(
            "sample --classmap @/lab_64.tif --per-class 0 --out @/s.gpkg",
            1,
            &["--per-class"],
            "s.gpkg",
        ),
        out(
            "vectorize --classmap @/text.tif --out @/v.gpkg",
            1,
            &["text.tif", "not a raster"],
            "v.gpkg",
        ),
        out(
            "vectorize --classmap /no/map.tif --out @/v.gpkg",
            1,
            &["/no/map.tif", "no such file"],
            "v.gpkg",
        ),
    ];
    let mut all: Vec<(String, Case)> = plain
        .into_iter()
        .map(|c| (c.args.replace("RUN", RUN), c))
        .collect();
    // The same SAR twice on another grid than the cube.
    all.push((
        format!("render --hsi @/s2_64.tif --sar {} --out @/r", demo_s1()),
        case(
            "",
            1,
            &["grids of HSI and SAR differ", "64 x 64 vs 512 x 512"],
        ),
    ));
    all
}

fn run_case(dir: &Path, args: &str, c: &Case) -> Result<(), String> {
    let argv: Vec<String> = args
        .split_whitespace()
        .map(|a| a.replace('@', &dir.display().to_string()))
        .collect();
    let before = c.no_output.map(|o| dir.join(o).exists());
    let output = Command::new(env!("CARGO_BIN_EXE_unidiff-studio"))
        .args(&argv)
        .env("UNIDIFF_STUDIO_DATA_DIR", dir.join("data"))
        .env_remove("RUST_LOG")
        .output()
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut problems = Vec::new();
    if output.status.code() != Some(c.exit) {
        problems.push(format!(
            "exit {:?}, expected {}",
            output.status.code(),
            c.exit
        ));
    }
    for bad in [
        "panicked",
        "RUST_BACKTRACE",
        "memory allocation of",
        "Custom {",
    ] {
        if stderr.contains(bad) {
            problems.push(format!("'{bad}' in the message"));
        }
    }
    for want in c.says {
        if !stderr.contains(want) {
            problems.push(format!("the message does not say '{want}'"));
        }
    }
    if let (Some(o), Some(false)) = (c.no_output, before) {
        let p = dir.join(o);
        if p.exists() {
            problems.push(format!("{} was left behind", p.display()));
        }
    }
    // No hidden half-written sibling either.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && (name.contains(".partial-") || name.ends_with(".tmp")) {
                problems.push(format!("{name} was left behind"));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n    {}", problems.join("; "), stderr.trim()))
    }
}

#[test]
fn every_bad_input_fails_cleanly_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    fixtures(dir.path());
    let cases = cases();
    assert!(cases.len() >= 80, "{} cases", cases.len());
    // Each case in its own copy of the fixture folder's outputs: cases run
    // two at a time, each with its own folder holding links to the inputs.
    let failures: Vec<String> = std::thread::scope(|s| {
        let chunks: Vec<Vec<&(String, Case)>> = (0..2)
            .map(|k| cases.iter().skip(k).step_by(2).collect())
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .enumerate()
            .map(|(k, chunk)| {
                let base = dir.path().to_path_buf();
                s.spawn(move || {
                    let mut failed = Vec::new();
                    for (i, (args, c)) in chunk.into_iter().enumerate() {
                        let own = base.join(format!("case_{k}_{i}"));
                        link_inputs(&base, &own);
                        if let Err(e) = run_case(&own, args, c) {
                            failed.push(format!("{args}\n  {e}"));
                        }
                    }
                    failed
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} bad inputs were not handled cleanly:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// A folder for one case: the inputs as symbolic links (folders copied
/// empty or with their files), so that what a case leaves is its own.
fn link_inputs(base: &Path, own: &Path) {
    std::fs::create_dir(own).unwrap();
    for e in std::fs::read_dir(base).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name.to_string_lossy().starts_with("case_") {
            continue;
        }
        let src: PathBuf = e.path();
        if src.is_dir() {
            std::fs::create_dir(own.join(&name)).unwrap();
            for f in std::fs::read_dir(&src).unwrap() {
                let f = f.unwrap();
                std::fs::copy(f.path(), own.join(&name).join(f.file_name())).unwrap();
            }
        } else {
            std::os::unix::fs::symlink(&src, own.join(&name)).unwrap();
        }
    }
}

/// The app's load job (what File → Open, drops, recent scenes and projects
/// run) on the same bad files: an error naming the file and the problem,
/// never a panic, for each.
#[test]
fn the_app_load_job_refuses_bad_inputs_naming_the_file() {
    use unidiff_studio::jobs::LoadRequest;
    use unidiff_studio::jobs::load::load;
    let dir = tempfile::tempdir().unwrap();
    fixtures(dir.path());
    let at = |name: &str| Some(dir.path().join(name));
    let hsi = |name: &str| LoadRequest {
        hsi: at(name),
        ..LoadRequest::default()
    };
    let with_s2 = |f: &dyn Fn(&mut LoadRequest)| {
        let mut r = hsi("s2_64.tif");
        f(&mut r);
        r
    };
    let cases: Vec<(LoadRequest, &[&str])> = vec![
        (LoadRequest::default(), &["HSI", "SAR"]),
        (
            LoadRequest {
                hsi: Some("/no/such/cube.tif".into()),
                ..LoadRequest::default()
            },
            &["/no/such/cube.tif", "no such file"],
        ),
        (hsi("empty.tif"), &["empty.tif", "empty"]),
        (hsi("text.tif"), &["text.tif", "not a raster"]),
        (hsi("cut.tif"), &["cut.tif"]),
        (hsi("small.img"), &["small.img", "header describes"]),
        (hsi("nohdr.img"), &["nohdr.img", "nohdr.hdr"]),
        (
            hsi("garbage.npy"),
            &["garbage.npy", "not a NumPy .npy file"],
        ),
        (hsi("trunc.mat"), &["trunc.mat"]),
        (
            LoadRequest {
                sar: at("adir"),
                ..LoadRequest::default()
            },
            &["adir", "PolSARpro"],
        ),
        (
            with_s2(&|r| r.sar = Some(demo("Spain_7370579_S1Hand.tif"))),
            &["Spain_7370579_S1Hand.tif", "differ"],
        ),
        (
            with_s2(&|r| r.train_labels = at("label_256.tif")),
            &["label_256.tif"],
        ),
        (
            with_s2(&|r| r.train_labels = at("labels3d.npy")),
            &["labels3d.npy"],
        ),
        (
            with_s2(&|r| r.test_labels = at("text.tif")),
            &["text.tif", "not a raster"],
        ),
        (
            with_s2(&|r| r.train_labels = at("nonsense.json")),
            &["nonsense.json"],
        ),
    ];
    let cancel = unidiff_studio::base::CancelFlag::new();
    let mut failures = Vec::new();
    for (req, says) in &cases {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            load(req, &cancel, &|_, _| {})
        }));
        match outcome {
            Err(_) => failures.push(format!("{req:?}: panicked")),
            Ok(Ok(_)) => failures.push(format!("{req:?}: loaded")),
            Ok(Err(e)) => {
                let message = format!("{e:#}");
                if let Some(missing) = says.iter().find(|s| !message.contains(*s)) {
                    failures.push(format!("{req:?}: '{missing}' not in: {message}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad loads:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
