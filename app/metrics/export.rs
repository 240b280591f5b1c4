//! `metrics.json` and `metrics.csv`: every figure of a result, per class and
//! overall, written atomically. Undefined ratios are `null` in JSON and empty
//! in CSV.

use std::path::Path;

use serde_json::{Value, json};

use super::summary::MetricsSummary;
use crate::io::atomic::write_bytes;

fn number(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

fn name_of(names: &[String], k: usize) -> String {
    names
        .get(k)
        .cloned()
        .unwrap_or_else(|| format!("class {}", k + 1))
}

/// The JSON document of a summary; `names[k]` names class k + 1.
pub fn metrics_json(m: &MetricsSummary, names: &[String]) -> Value {
    let per_class: Vec<Value> = (0..m.confusion.classes)
        .map(|k| {
            json!({
                "class": k + 1,
                "name": name_of(names, k),
                "support": m.per_class.support[k],
                "predicted": m.per_class.predicted[k],
                "recall": number(m.per_class.recall[k]),
                "precision": number(m.per_class.precision[k]),
                "f1": number(m.per_class.f1[k]),
                "iou": number(m.per_class.iou[k]),
            })
        })
        .collect();
    json!({
        "n_labelled": m.n_labelled,
        "OA": number(m.oa),
        "AA": number(m.aa),
        "kappa": number(m.kappa),
        "mF1": number(m.mf1),
        "mIoU": number(m.miou),
        "averages_over": "classes present in the test labels",
        "per_class": per_class,
        "confusion_matrix": m.confusion.rows(),
        "confusion_matrix_axes": "rows = truth, columns = prediction, classes in order",
        "predictions_outside_classes": m.confusion.predictions_out_of_range,
    })
}

/// The CSV table: one row per class, then the overall figures.
pub fn metrics_csv(m: &MetricsSummary, names: &[String]) -> String {
    let cell = |v: f64| {
        if v.is_finite() {
            format!("{v:.6}")
        } else {
            String::new()
        }
    };
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut out = String::from("class,name,support,predicted,recall,precision,f1,iou\n");
    for k in 0..m.confusion.classes {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            k + 1,
            quote(&name_of(names, k)),
            m.per_class.support[k],
            m.per_class.predicted[k],
            cell(m.per_class.recall[k]),
            cell(m.per_class.precision[k]),
            cell(m.per_class.f1[k]),
            cell(m.per_class.iou[k]),
        ));
    }
    for (label, v) in [
        ("OA", m.oa),
        ("AA", m.aa),
        ("kappa", m.kappa),
        ("mF1", m.mf1),
        ("mIoU", m.miou),
    ] {
        out.push_str(&format!("{label},,,,{},,,\n", cell(v)));
    }
    out
}

/// Writes `metrics.json` and `metrics.csv` into `dir`.
pub fn write_metrics(dir: &Path, m: &MetricsSummary, names: &[String]) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(&metrics_json(m, names)).map_err(std::io::Error::other)?;
    write_bytes(&dir.join("metrics.json"), &json)?;
    write_bytes(&dir.join("metrics.csv"), metrics_csv(m, names).as_bytes())
}
