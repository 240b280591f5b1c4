//! The files of a finished run: the class map GeoTIFF (colour table, class
//! names, `.qml`), the probability / entropy GeoTIFF, `map.png`, metrics
//! and, for the random-forest baseline, the same under `baseline_rf/`.
//! Every file is written atomically; `run.json` is written last by the
//! caller, so a folder with a `run.json` is a complete run. An export of the
//! app also writes the label layers it was made from ([`app_inputs`]).

use std::path::{Path, PathBuf};

use super::classification::{Classification, ClassifierChoice, ClassifierResult};
use super::cleanup::CleanedMap;
use super::run_record::{LabelsUsed, hashed, say_how_read};
use crate::io::atomic::write_bytes;
use crate::io::classmap::write_class_map;
use crate::io::geotiff::{WriteError, write_f32_geotiff, write_rgb_png};
use crate::metrics::export::write_metrics;
use crate::products::Rgb8Image;
use crate::scene::PixelGrid;
use crate::scene::{ClassInfo, named_classes};

/// The class map in its palette colours (0 = black).
pub fn class_map_image(map: &[u8], grid: &PixelGrid, classes: &[ClassInfo]) -> Rgb8Image {
    let mut data = Vec::with_capacity(map.len() * 3);
    for &v in map {
        let c = classes
            .iter()
            .find(|c| c.value == v)
            .map_or([0, 0, 0], |c| c.color);
        data.extend_from_slice(&c);
    }
    Rgb8Image {
        width: grid.width,
        height: grid.height,
        data,
        stretch: Vec::new(),
    }
}

/// Writes one classifier's files into `dir`; returns the paths written.
pub fn write_result(
    dir: &Path,
    result: &ClassifierResult,
    grid: &PixelGrid,
    classes: &[ClassInfo],
) -> Result<Vec<PathBuf>, WriteError> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let map_tif = dir.join("classmap.tif");
    write_class_map(&map_tif, &result.class_map, grid, classes)?;
    // The same map as polygons (class, name, area in ha) for QGIS.
    let gpkg = dir.join("classmap.gpkg");
    crate::io::vectorize::vectorize_class_map(&map_tif, &gpkg, classes)?;
    written.push(map_tif);
    written.push(gpkg);
    let png = dir.join("map.png");
    write_rgb_png(&png, &class_map_image(&result.class_map, grid, classes))?;
    written.push(png);
    if let Some(u) = &result.uncertainty {
        let tif = dir.join("probability.tif");
        write_f32_geotiff(
            &tif,
            &[
                ("max probability", &u.max_probability),
                ("entropy (nats)", &u.entropy),
            ],
            grid,
        )?;
        written.push(tif);
    }
    let areas = dir.join("areas.csv");
    let table = crate::metrics::areas::class_areas(&result.class_map, grid, classes);
    write_bytes(&areas, table.to_csv().as_bytes())?;
    written.push(areas);
    if let Some(m) = &result.metrics {
        let names: Vec<String> = classes.iter().map(|c| c.name.clone()).collect();
        write_metrics(dir, m, &names)?;
        written.push(dir.join("metrics.json"));
        written.push(dir.join("metrics.csv"));
    }
    Ok(written)
}

/// Writes the run's maps and metrics: the asked-for classifier's into `dir`,
/// the others' (the forests beside the MLP) into `dir/baseline_rf` and
/// `dir/baseline_filter_rf`.
pub fn write_run_outputs(
    dir: &Path,
    outcome: &Classification,
    grid: &PixelGrid,
    class_names: &[String],
) -> Result<Vec<PathBuf>, WriteError> {
    let classes = named_classes(outcome.classes, class_names);
    let mut written = Vec::new();
    // The asked-for classifier's result at the top, the others beside it
    // in baseline_rf/ and baseline_filter_rf/.
    for (c, result) in outcome.results() {
        let folder = result_folder(dir, outcome, c);
        written.extend(write_result(&folder, result, grid, &classes)?);
    }
    if let Some(curve) = &outcome.label_curve {
        let path = dir.join("label_curve.csv");
        write_bytes(&path, curve.to_csv().as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

/// Where a classifier's files go: the asked-for one's into `dir`, the
/// others' into `dir/baseline_<name>`.
fn result_folder(dir: &Path, outcome: &Classification, c: ClassifierChoice) -> PathBuf {
    if outcome
        .results()
        .first()
        .is_some_and(|(first, _)| *first == c)
    {
        dir.to_path_buf()
    } else {
        dir.join(format!("baseline_{}", c.name().replace('-', "_")))
    }
}

/// Writes each classifier's map after its last clean-up step beside its
/// own files: `classmap_cleaned.tif` (+ `.gpkg` polygons), `areas_cleaned.csv`
/// and `cleanup.txt` (the steps, in order, with the pixels each changed).
pub fn write_cleaned_maps(
    dir: &Path,
    outcome: &Classification,
    cleaned: &[CleanedMap],
    grid: &PixelGrid,
    class_names: &[String],
) -> Result<Vec<PathBuf>, WriteError> {
    let classes = named_classes(outcome.classes, class_names);
    let mut written = Vec::new();
    for (c, _) in outcome.results() {
        let steps: Vec<&CleanedMap> = cleaned.iter().filter(|m| m.source == c).collect();
        let Some(last) = steps.last() else {
            continue;
        };
        let folder = result_folder(dir, outcome, c);
        std::fs::create_dir_all(&folder)?;
        let tif = folder.join("classmap_cleaned.tif");
        write_class_map(&tif, &last.class_map, grid, &classes)?;
        let gpkg = folder.join("classmap_cleaned.gpkg");
        crate::io::vectorize::vectorize_class_map(&tif, &gpkg, &classes)?;
        let areas = folder.join("areas_cleaned.csv");
        write_bytes(&areas, last.areas.to_csv().as_bytes())?;
        let mut text = format!("clean-up of the {} map, in order:\n", c.label());
        for (i, m) in steps.iter().enumerate() {
            text.push_str(&format!(
                "{}. {}: {} pixels changed\n",
                i + 1,
                m.step.describe(),
                m.changed
            ));
        }
        let record = folder.join("cleanup.txt");
        write_bytes(&record, text.as_bytes())?;
        written.extend([tif, gpkg, areas, record]);
    }
    Ok(written)
}

/// Writes `run.json` (last, atomically).
pub fn write_run_record(dir: &Path, record: &serde_json::Value) -> std::io::Result<PathBuf> {
    let path = dir.join("run.json");
    let text = serde_json::to_string_pretty(record).map_err(std::io::Error::other)?;
    write_bytes(&path, format!("{text}\n").as_bytes())?;
    Ok(path)
}

/// run.json's `inputs` for a classification of the app: the scene's files
/// (`hsi`, `sar`: absolute path and SHA-256, how each was read) and the
/// label layers as the classification took them, written into
/// `dir/labels/` (`train_labels.tif`, `test_labels.tif`, with the class
/// table) and recorded by their path inside `dir`. Returns the inputs and
/// the label files written.
pub fn app_inputs(
    dir: &Path,
    scene_files: &[(&str, Option<&Path>)],
    labels: &LabelsUsed,
    read: &serde_json::Map<String, serde_json::Value>,
    classes: &[ClassInfo],
) -> anyhow::Result<(serde_json::Value, Vec<PathBuf>)> {
    let mut inputs = serde_json::Map::new();
    for (name, path) in scene_files {
        if let Some(path) = path {
            let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            inputs.insert((*name).into(), hashed(path, &absolute)?);
        }
    }
    say_how_read(read, &mut inputs);
    let mut written = Vec::new();
    for (name, layer) in [
        ("train_labels", &labels.train),
        ("test_labels", &labels.test),
    ] {
        let Some(layer) = layer else {
            continue;
        };
        let relative = Path::new("labels").join(format!("{name}.tif"));
        let path = dir.join(&relative);
        std::fs::create_dir_all(dir.join("labels"))?;
        write_class_map(&path, &layer.data, &layer.grid, classes)?;
        inputs.insert(name.into(), hashed(&path, &relative)?);
        written.push(path);
    }
    inputs.insert("label_offset".into(), serde_json::json!(0));
    Ok((serde_json::Value::Object(inputs), written))
}
