//! One way to open a study area from its files, for the CLI and the app's
//! load job alike: the HSI cube and/or SAR image, the label rasters (with a
//! value offset), checked onto one pixel grid; labels without a
//! georeference (`.mat`, `.npy`) take the scene's.

use std::path::PathBuf;

use anyhow::Context;

use super::{SarScaleChoice, open_hsi, open_labels_with_offset, open_sar};
use crate::base::CancelFlag;
use crate::scene::Scene;

/// The files of one scene.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SceneFiles {
    pub hsi: Option<PathBuf>,
    pub sar: Option<PathBuf>,
    pub train_labels: Option<PathBuf>,
    pub test_labels: Option<PathBuf>,
    /// Added to every label value (1 for 0-based files).
    pub label_offset: i32,
}

/// Reads the files into a scene; `progress(step, fraction)` names the file
/// being read (fractions 0 to 0.4 of a load). Ok(None) when cancelled.
pub fn open_scene(
    files: &SceneFiles,
    cancel: &CancelFlag,
    progress: &dyn Fn(&str, f32),
) -> anyhow::Result<Option<Scene>> {
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
    let train = files.train_labels.as_ref().map(read_labels).transpose()?;
    let test = files.test_labels.as_ref().map(read_labels).transpose()?;
    let mut scene = Scene::from_layers(hsi, sar, train, test)
        .context("the inputs are not on one pixel grid")?;
    if let Some(grid) = scene.grid().cloned() {
        for labels in [&mut scene.train_labels, &mut scene.test_labels]
            .into_iter()
            .flatten()
        {
            if labels.grid.geo_transform.is_none() {
                labels.grid = grid.clone();
            }
        }
    }
    Ok((!cancel.is_cancelled()).then_some(scene))
}
