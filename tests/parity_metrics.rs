//! Metrics equal (1e-12) to scikit-learn's on the three label cases of
//! `tests/fixtures/metrics`, including a class absent from the truth and a
//! class never predicted.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benchmarks stop on the first surprise

mod common;

use common::{Tensors, json};
use unidiff_studio::metrics::MetricsSummary;

fn close(got: f64, want: &serde_json::Value, what: &str) {
    match want.as_f64() {
        Some(w) => assert!((got - w).abs() <= 1e-12, "{what}: {got} vs {w}"),
        None => assert!(got.is_nan(), "{what}: {got} vs NaN"),
    }
}

#[test]
fn metrics_equal_scikit_learn() {
    let expected = json("metrics/expected.json");
    let t = Tensors::open("metrics/labels.safetensors");
    for case in [
        "case0_all_classes",
        "case1_class7_absent_from_y_true",
        "case2_class5_never_predicted",
    ] {
        let e = &expected[case];
        let (_, truth) = t.u8(&format!("{case}.y_true"));
        let (_, pred) = t.u8(&format!("{case}.y_pred"));
        let m = MetricsSummary::from_labels(&truth, &pred, 8);
        assert_eq!(m.n_labelled, e["n_labelled"].as_u64().unwrap(), "{case}");
        let rows: Vec<Vec<u64>> = serde_json::from_value(e["confusion_matrix"].clone()).unwrap();
        assert_eq!(m.confusion.rows(), rows, "{case}");
        close(m.oa, &e["OA"], case);
        close(m.aa, &e["AA"], case);
        close(m.mf1, &e["mF1"], case);
        close(m.miou, &e["mIoU"], case);
        close(m.kappa, &e["kappa"], case);
        close(
            m.mprecision,
            &e["mPrecision_over_present_and_defined"],
            case,
        );
        for (name, got) in [
            ("recall", &m.per_class.recall),
            ("precision", &m.per_class.precision),
            ("f1", &m.per_class.f1),
            ("iou", &m.per_class.iou),
        ] {
            let want = e["per_class"][name].as_array().unwrap();
            for (k, (g, w)) in got.iter().zip(want).enumerate() {
                close(*g, w, &format!("{case} {name} class {}", k + 1));
            }
        }
        let support: Vec<u64> = serde_json::from_value(e["support"].clone()).unwrap();
        assert_eq!(m.per_class.support, support);
    }
}

#[test]
fn metrics_files_hold_the_same_numbers() {
    let t = Tensors::open("metrics/labels.safetensors");
    let case = "case1_class7_absent_from_y_true";
    let (_, truth) = t.u8(&format!("{case}.y_true"));
    let (_, pred) = t.u8(&format!("{case}.y_pred"));
    let m = MetricsSummary::from_labels(&truth, &pred, 8);
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (1..=8).map(|k| format!("land cover {k}")).collect();
    unidiff_studio::metrics::export::write_metrics(dir.path(), &m, &names).unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("metrics.json")).unwrap()).unwrap();
    let expected = json("metrics/expected.json");
    close(v["OA"].as_f64().unwrap(), &expected[case]["OA"], "OA");
    close(
        v["kappa"].as_f64().unwrap(),
        &expected[case]["kappa"],
        "kappa",
    );
    assert!(
        v["per_class"][6]["recall"].is_null(),
        "class 7 is absent from the truth"
    );
    assert_eq!(v["per_class"][6]["name"], "land cover 7");
    assert_eq!(v["confusion_matrix"][0][0], 1765);
    let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 8 + 5);
    assert!(
        csv.lines()
            .nth(7)
            .unwrap()
            .starts_with("7,\"land cover 7\",0,77,,0.000000,"),
        "{csv}"
    );
}
