//! Label layers to and from files: GeoTIFF (uint8, colour table, class names,
//! the scene's CRS) for saving, any label raster `open_labels` reads
//! (GeoTIFF, `.mat`, `.npy`) for loading, checked against the scene's grid,
//! and labels drawn as vectors (GeoPackage, Shapefile, GeoJSON) burnt onto it.

use std::path::Path;

use anyhow::Context;

use crate::io::classmap::{read_class_table, write_class_map};
use crate::io::open_labels;
use crate::io::vector_labels::{is_vector_file, rasterize_labels};
use crate::scene::ClassInfo;
use crate::scene::{LabelImage, PixelGrid};

/// A label file read for a scene.
#[derive(Debug, Clone)]
pub struct LoadedLabels {
    pub labels: LabelImage,
    /// Names and colours the file carries (GeoTIFF written by us or QGIS).
    pub classes: Vec<ClassInfo>,
    /// Class values present in the file.
    pub values: Vec<u8>,
    /// What the user should know (vector features off the scene or without
    /// a class).
    pub notes: Vec<String>,
}

/// Reads a label file and places it on `grid` (files without georeference,
/// such as `.mat`, take the scene's).
pub fn load_labels(
    path: &Path,
    grid: &PixelGrid,
    classes: &[ClassInfo],
) -> anyhow::Result<LoadedLabels> {
    if is_vector_file(path) {
        let burnt = rasterize_labels(path, None, grid, classes)?;
        anyhow::ensure!(
            burnt.features > 0,
            "{}: no feature of layer {} with a class lies on the scene",
            path.display(),
            burnt.layer
        );
        let values = burnt
            .labels
            .class_counts()
            .iter()
            .map(|(v, _)| *v)
            .collect();
        return Ok(LoadedLabels {
            notes: burnt.notes(path),
            labels: burnt.labels,
            classes: Vec::new(),
            values,
        });
    }
    let mut labels = open_labels(path)?;
    grid.check_same("the scene", &labels.grid, &format!("{}", path.display()))
        .context("the label file does not fit the scene")?;
    if labels.grid.geo_transform.is_none() {
        labels.grid = grid.clone();
    }
    let values = labels.class_counts().iter().map(|(v, _)| *v).collect();
    Ok(LoadedLabels {
        classes: read_class_table(path),
        labels,
        values,
        notes: Vec::new(),
    })
}

/// A label file drawn as vectors (read by burning it onto the grid; saving
/// goes to a GeoTIFF of its own).
pub fn is_vector_labels(path: &Path) -> bool {
    is_vector_file(path)
}

/// Writes a label layer as a class GeoTIFF (atomically, with `.qml` and the
/// class names beside it).
pub fn save_labels(path: &Path, labels: &LabelImage, classes: &[ClassInfo]) -> anyhow::Result<()> {
    write_class_map(path, &labels.data, &labels.grid, classes)
        .with_context(|| format!("cannot write the labels to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::named_classes;

    #[test]
    fn labels_round_trip_with_names_colours_and_grid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.tif");
        let mut grid = PixelGrid::plain(7, 5);
        grid.geo_transform = Some([500000.0, 10.0, 0.0, 4000000.0, 0.0, -10.0]);
        let data: Vec<u8> = (0..35).map(|i| (i % 4) as u8).collect();
        let labels = LabelImage {
            data,
            grid: grid.clone(),
        };
        let mut classes = named_classes(3, &["water".into(), "urban".into()]);
        classes[1].color = [1, 2, 3];
        save_labels(&path, &labels, &classes).unwrap();
        let back = load_labels(&path, &grid, &[]).unwrap();
        assert_eq!(back.labels.data, labels.data);
        assert_eq!(back.values, vec![1, 2, 3]);
        assert_eq!(back.classes, classes);
        let other = PixelGrid::plain(5, 7);
        let err = load_labels(&path, &other, &[]).unwrap_err();
        assert!(format!("{err:#}").contains("differ"), "{err:#}");
    }
}
