//! `unidiff-studio info FILE`: what a file holds, without rendering it.

use std::path::Path;

use serde_json::{Value, json};

use super::InfoArgs;
use crate::io::{mat, npy, polsar, raster, sar_matrix};
use crate::scene::PixelGrid;

fn grid_json(grid: &PixelGrid) -> Value {
    json!({
        "rows": grid.height,
        "cols": grid.width,
        "geotransform": grid.geo_transform,
        "crs": grid.crs_name,
        "crs_wkt": grid.crs_wkt,
    })
}

/// Class counts of an integral single-band array (a label image), else None.
fn class_counts(values: &[f32]) -> Option<Value> {
    let mut counts = [0usize; 256];
    for &v in values {
        if v.is_nan() || v < 0.0 {
            continue;
        }
        if v.fract() != 0.0 || v > 255.0 {
            return None;
        }
        counts[v as usize] += 1;
    }
    let labelled: usize = counts[1..].iter().sum();
    let per_class: serde_json::Map<String, Value> = counts
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| (c.to_string(), json!(n)))
        .collect();
    Some(json!({"labelled_pixels": labelled, "per_class": per_class}))
}

fn describe(path: &Path) -> anyhow::Result<Value> {
    if path.is_dir() {
        let sar = polsar::read_polsar_folder(path)?;
        return Ok(json!({
            "path": path.display().to_string(),
            "format": "PolSARpro folder",
            "content": sar.scale_reason,
            "grid": grid_json(&sar.grid),
            "values": "linear",
        }));
    }
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if ext == "mat" || ext == "npy" {
        let arrays = if ext == "mat" {
            mat::list_variables(path)?
        } else {
            vec![npy::read_npy(path)?]
        };
        let vars: Vec<Value> = arrays
            .iter()
            .map(|a| {
                let mut v = json!({
                    "name": a.name,
                    "rows": a.height,
                    "cols": a.width,
                    "bands": a.bands,
                });
                if let Some(c) = (a.bands == 1).then(|| class_counts(&a.data)).flatten() {
                    v["classes"] = c;
                }
                v
            })
            .collect();
        return Ok(json!({
            "path": path.display().to_string(),
            "format": if ext == "mat" { "MATLAB" } else { "NumPy" },
            "arrays": vars,
        }));
    }
    let h = raster::read_header(path)?;
    let wl = h.wavelengths_nm.as_ref().map(|w| {
        let min = w.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        json!({"count": w.len(), "min_nm": min, "max_nm": max, "source": h.wavelength_source})
    });
    // What a SAR read takes of these bands: a matrix by band description.
    let content = sar_matrix::matrix_bands(&h.band_names).map(|m| {
        format!(
            "{} polarimetric matrix; read as SAR: {}",
            if m.kind == sar_matrix::MatrixKind::C2 {
                "dual- or compact-pol"
            } else {
                "quad-pol"
            },
            m.describe()
        )
    });
    Ok(json!({
        "path": path.display().to_string(),
        "format": h.driver,
        "content": content,
        "grid": grid_json(&h.grid),
        "bands": h.band_count,
        "dtype": h.dtype,
        "nodata": h.nodata,
        "band_names": h.band_names,
        "wavelengths": wl,
        "subdatasets": h.subdatasets.iter().map(|(n, d)| json!({"name": n, "description": d})).collect::<Vec<_>>(),
    }))
}

fn print_text(v: &Value) {
    let s = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    println!("{}", s("path").as_str().unwrap_or_default());
    println!("  format: {}", s("format").as_str().unwrap_or_default());
    if let Some(g) = v.get("grid") {
        println!("  size: {} rows x {} cols", g["rows"], g["cols"]);
        match g["crs"].as_str() {
            Some(c) => println!("  CRS: {c}"),
            None if g["crs_wkt"].is_string() => println!("  CRS: (unnamed, WKT given)"),
            None => println!("  CRS: none"),
        }
        if let Some(gt) = g["geotransform"].as_array() {
            println!(
                "  origin: ({}, {}), pixel: ({}, {})",
                gt[0], gt[3], gt[1], gt[5]
            );
        }
    }
    if let Some(b) = v.get("bands") {
        println!(
            "  bands: {b}, type {}",
            s("dtype").as_str().unwrap_or_default()
        );
        match v["nodata"].as_f64() {
            Some(nd) => println!("  nodata: {nd}"),
            None => println!("  nodata: none"),
        }
    }
    match v.get("wavelengths") {
        Some(Value::Object(w)) => println!(
            "  wavelengths: {} bands, {:.2} .. {:.2} nm ({})",
            w["count"],
            w["min_nm"].as_f64().unwrap_or(f64::NAN),
            w["max_nm"].as_f64().unwrap_or(f64::NAN),
            w["source"].as_str().unwrap_or_default()
        ),
        Some(_) => println!("  wavelengths: unknown"),
        None => {}
    }
    if let Some(c) = v.get("content").and_then(Value::as_str) {
        println!("  content: {c}");
    }
    for sd in v["subdatasets"].as_array().into_iter().flatten() {
        println!(
            "  subdataset: {}  ({})",
            sd["name"].as_str().unwrap_or_default(),
            sd["description"].as_str().unwrap_or_default()
        );
    }
    for a in v["arrays"].as_array().into_iter().flatten() {
        println!(
            "  variable {}: {} rows x {} cols x {} bands",
            a["name"].as_str().unwrap_or_default(),
            a["rows"],
            a["cols"],
            a["bands"]
        );
        if let Some(c) = a.get("classes") {
            println!("    labelled pixels: {}", c["labelled_pixels"]);
            for (k, n) in c["per_class"].as_object().into_iter().flatten() {
                println!("    class {k}: {n}");
            }
        }
    }
}

pub fn run(args: &InfoArgs) -> anyhow::Result<()> {
    let v = describe(&args.file)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_text(&v);
    }
    Ok(())
}
