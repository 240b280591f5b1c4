//! A scene: the layers a user opened, checked to lie on one pixel grid.

use std::sync::Arc;

use super::cube::HsiCube;
use super::grid::{GridMismatch, PixelGrid};
use super::label_image::LabelImage;
use super::sar::SarImage;

/// The layers of one study area on one grid.
#[derive(Debug, Clone, Default)]
pub struct Scene {
    /// Shared, not copied: a classification request holds the same cube.
    pub hsi: Option<Arc<HsiCube>>,
    pub sar: Option<Arc<SarImage>>,
    pub train_labels: Option<LabelImage>,
    pub test_labels: Option<LabelImage>,
}

impl Scene {
    /// The grid of the scene: the first georeferenced layer's, else the first
    /// layer's.
    pub fn grid(&self) -> Option<&PixelGrid> {
        let grids = self.grids();
        grids
            .iter()
            .find(|(_, g)| g.geo_transform.is_some())
            .or_else(|| grids.first())
            .map(|(_, g)| *g)
    }

    fn grids(&self) -> Vec<(&'static str, &PixelGrid)> {
        let mut out = Vec::new();
        if let Some(h) = &self.hsi {
            out.push(("HSI", &h.grid));
        }
        if let Some(s) = &self.sar {
            out.push(("SAR", &s.grid));
        }
        if let Some(l) = &self.train_labels {
            out.push(("training labels", &l.grid));
        }
        if let Some(l) = &self.test_labels {
            out.push(("test labels", &l.grid));
        }
        out
    }

    /// The label layer `layer`, if the scene has it.
    pub fn labels(&self, layer: super::label_image::LabelLayer) -> Option<&LabelImage> {
        match layer {
            super::label_image::LabelLayer::Train => self.train_labels.as_ref(),
            super::label_image::LabelLayer::Test => self.test_labels.as_ref(),
        }
    }

    /// The label layer `layer` for editing.
    pub fn labels_mut(&mut self, layer: super::label_image::LabelLayer) -> Option<&mut LabelImage> {
        match layer {
            super::label_image::LabelLayer::Train => self.train_labels.as_mut(),
            super::label_image::LabelLayer::Test => self.test_labels.as_mut(),
        }
    }

    /// Checks that every layer lies on the same grid; the error names the two
    /// layers that differ and shows both grids.
    pub fn check_grids(&self) -> Result<(), GridMismatch> {
        let grids = self.grids();
        for (i, (name_a, a)) in grids.iter().enumerate() {
            for (name_b, b) in &grids[i + 1..] {
                a.check_same(name_a, b, name_b)?;
            }
        }
        Ok(())
    }

    /// Builds a scene from the given layers, refusing layers on different grids.
    pub fn from_layers(
        hsi: Option<HsiCube>,
        sar: Option<SarImage>,
        train_labels: Option<LabelImage>,
        test_labels: Option<LabelImage>,
    ) -> Result<Self, GridMismatch> {
        let scene = Self {
            hsi: hsi.map(Arc::new),
            sar: sar.map(Arc::new),
            train_labels,
            test_labels,
        };
        scene.check_grids()?;
        Ok(scene)
    }
}
