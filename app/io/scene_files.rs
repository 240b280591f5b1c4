//! One way to open a study area from its files, for the CLI and the app's
//! load job alike: the HSI cube and/or SAR image, the label rasters (with a
//! value offset), checked onto one pixel grid; labels without a
//! georeference (`.mat`, `.npy`) take the scene's, and labels drawn as
//! vectors (GeoPackage, Shapefile, GeoJSON) are burnt onto it.

use std::path::PathBuf;

use anyhow::Context;

use super::vector_labels::{is_vector_file, rasterize_labels};
use super::{SarScaleChoice, open_hsi, open_labels_with_offset, open_sar};
use crate::base::CancelFlag;
use crate::scene::{Scene, named_classes};

/// The files of one scene.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SceneFiles {
    pub hsi: Option<PathBuf>,
    pub sar: Option<PathBuf>,
    pub train_labels: Option<PathBuf>,
    pub test_labels: Option<PathBuf>,
    /// Added to every label value (1 for 0-based files; not to vectors).
    pub label_offset: i32,
    /// The class attribute of vector labels (None: the first of
    /// `vector_labels::CLASS_FIELDS` there).
    pub class_field: Option<String>,
    /// Class names 1, 2, ... (vector labels may give the class by name).
    pub class_names: Vec<String>,
}

/// A scene as read, and what the user should know about the reading.
#[derive(Debug)]
pub struct OpenedScene {
    pub scene: Scene,
    pub notes: Vec<String>,
}

/// Reads the files into a scene; `progress(step, fraction)` names the file
/// being read (fractions 0 to 0.4 of a load). Ok(None) when cancelled.
pub fn open_scene(
    files: &SceneFiles,
    cancel: &CancelFlag,
    progress: &dyn Fn(&str, f32),
) -> anyhow::Result<Option<OpenedScene>> {
    if files.hsi.is_none() && files.sar.is_none() {
        anyhow::bail!("open an HSI cube or a SAR image first (labels alone have no image to show)");
    }
    let hsi = match &files.hsi {
        Some(p) => {
            progress(&format!("reading {}", p.display()), 0.0);
            Some(open_hsi(p)?)
        }
        None => None,
    };
    if cancel.is_cancelled() {
        return Ok(None);
    }
    let sar = match &files.sar {
        Some(p) => {
            progress(&format!("reading {}", p.display()), 0.2);
            Some(open_sar(p, SarScaleChoice::Auto)?)
        }
        None => None,
    };
    if cancel.is_cancelled() {
        return Ok(None);
    }
    let read_labels = |p: &PathBuf| {
        progress(&format!("reading {}", p.display()), 0.3);
        open_labels_with_offset(p, files.label_offset)
    };
    let raster = |p: &&PathBuf| !is_vector_file(p);
    let train = files
        .train_labels
        .as_ref()
        .filter(raster)
        .map(read_labels)
        .transpose()?;
    let test = files
        .test_labels
        .as_ref()
        .filter(raster)
        .map(read_labels)
        .transpose()?;
    let mut scene = Scene::from_layers(hsi, sar, train, test)
        .map_err(|mut e| {
            // The message names the files, not only their roles.
            for name in [&mut e.first_name, &mut e.second_name] {
                let path = match name.as_str() {
                    "HSI" => files.hsi.as_ref(),
                    "SAR" => files.sar.as_ref(),
                    "training labels" => files.train_labels.as_ref(),
                    "test labels" => files.test_labels.as_ref(),
                    _ => None,
                };
                if let Some(p) = path {
                    *name = format!("{name} {}", p.display());
                }
            }
            e
        })
        .context("the inputs are not on one pixel grid")?;
    let mut notes = Vec::new();
    if let Some(grid) = scene.grid().cloned() {
        for labels in [&mut scene.train_labels, &mut scene.test_labels]
            .into_iter()
            .flatten()
        {
            if labels.grid.geo_transform.is_none() {
                labels.grid = grid.clone();
            }
        }
        let classes = named_classes(files.class_names.len(), &files.class_names);
        for (path, layer) in [
            (&files.train_labels, &mut scene.train_labels),
            (&files.test_labels, &mut scene.test_labels),
        ] {
            let Some(path) = path.as_ref().filter(|p| is_vector_file(p)) else {
                continue;
            };
            progress(
                &format!("burning {} onto the scene's grid", path.display()),
                0.3,
            );
            let burnt = rasterize_labels(path, files.class_field.as_deref(), &grid, &classes)?;
            notes.extend(burnt.notes(path));
            anyhow::ensure!(
                burnt.features > 0,
                "{}: no feature of layer {} with a class lies on the scene",
                path.display(),
                burnt.layer
            );
            *layer = Some(burnt.labels);
        }
    }
    Ok((!cancel.is_cancelled()).then_some(OpenedScene { scene, notes }))
}
