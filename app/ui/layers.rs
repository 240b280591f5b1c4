//! The layer list: which renderings and label layers the map shows, in what
//! order, with what opacity and stretch. View state only: the pixels live in
//! the session.

use crate::products::ChannelStretch;

/// A layer of the map view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum LayerId {
    Prgb,
    Pca,
    Pauli,
    TestLabels,
    TrainLabels,
    /// The land-cover map of the last classification.
    ClassMap,
    /// Its per-pixel entropy.
    Uncertainty,
}

impl LayerId {
    pub fn name(self) -> &'static str {
        match self {
            LayerId::Prgb => "pRGB",
            LayerId::Pca => "PCA",
            LayerId::Pauli => "Pauli (SAR)",
            LayerId::TestLabels => "Test labels",
            LayerId::TrainLabels => "Training labels",
            LayerId::ClassMap => "Class map",
            LayerId::Uncertainty => "Uncertainty (entropy)",
        }
    }

    pub fn is_labels(self) -> bool {
        matches!(
            self,
            LayerId::TestLabels | LayerId::TrainLabels | LayerId::ClassMap
        )
    }
}

/// One entry of the layer list.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerState {
    pub id: LayerId,
    pub visible: bool,
    pub opacity: f32,
    /// Display stretch per channel, as fractions of the rendering's 8-bit
    /// range (0 and 1 = the rendering's own 2-98 % limits).
    pub lo: [f32; 3],
    pub hi: [f32; 3],
}

impl LayerState {
    fn new(id: LayerId, visible: bool, opacity: f32) -> Self {
        Self {
            id,
            visible,
            opacity,
            lo: [0.0; 3],
            hi: [1.0; 3],
        }
    }

    /// Back to the rendering's 2-98 % limits.
    pub fn reset_stretch(&mut self) {
        self.lo = [0.0; 3];
        self.hi = [1.0; 3];
    }

    pub fn is_default_stretch(&self) -> bool {
        self.lo == [0.0; 3] && self.hi == [1.0; 3]
    }
}

/// Whether the session has the data of layer `id`.
pub fn available(s: &crate::session::Session, id: LayerId) -> bool {
    match id {
        LayerId::Prgb => s.renderings.prgb.is_some(),
        LayerId::Pca => s.renderings.pca.is_some(),
        LayerId::Pauli => s.renderings.pauli.is_some(),
        LayerId::TrainLabels => s.scene.train_labels.is_some(),
        LayerId::TestLabels => s.scene.test_labels.is_some(),
        LayerId::ClassMap => s.shown_class_map().is_some(),
        LayerId::Uncertainty => s
            .result
            .as_ref()
            .and_then(|r| r.outcome.mlp.as_ref())
            .is_some_and(|(m, _)| m.uncertainty.is_some()),
    }
}

/// The source value a display fraction stands for, given the 2-98 % limits
/// the rendering was made with.
pub fn source_value(stretch: &ChannelStretch, fraction: f32) -> f64 {
    stretch.p2 + fraction as f64 * (stretch.p98 - stretch.p2)
}

/// The layers, bottom first.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerStack {
    pub layers: Vec<LayerState>,
}

impl Default for LayerStack {
    fn default() -> Self {
        Self {
            layers: vec![
                LayerState::new(LayerId::Pauli, false, 1.0),
                LayerState::new(LayerId::Pca, false, 1.0),
                LayerState::new(LayerId::Prgb, true, 1.0),
                LayerState::new(LayerId::TestLabels, false, 0.6),
                LayerState::new(LayerId::Uncertainty, false, 0.8),
                LayerState::new(LayerId::TrainLabels, true, 0.85),
                LayerState::new(LayerId::ClassMap, true, 0.6),
            ],
        }
    }
}

impl LayerStack {
    pub fn get(&self, id: LayerId) -> Option<&LayerState> {
        self.layers.iter().find(|l| l.id == id)
    }

    pub fn get_mut(&mut self, id: LayerId) -> Option<&mut LayerState> {
        self.layers.iter_mut().find(|l| l.id == id)
    }

    pub fn position(&self, id: LayerId) -> Option<usize> {
        self.layers.iter().position(|l| l.id == id)
    }

    /// Moves a layer one step towards the top (drawn later).
    pub fn raise(&mut self, id: LayerId) {
        if let Some(i) = self.position(id)
            && i + 1 < self.layers.len()
        {
            self.layers.swap(i, i + 1);
        }
    }

    /// Moves a layer one step towards the bottom.
    pub fn lower(&mut self, id: LayerId) {
        if let Some(i) = self.position(id)
            && i > 0
        {
            self.layers.swap(i, i - 1);
        }
    }

    pub fn toggle(&mut self, id: LayerId) {
        if let Some(l) = self.get_mut(id) {
            l.visible = !l.visible;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raise_and_lower_move_one_step_and_stop_at_the_ends() {
        let mut s = LayerStack::default();
        s.raise(LayerId::ClassMap);
        assert_eq!(s.position(LayerId::ClassMap), Some(6));
        s.lower(LayerId::TrainLabels);
        assert_eq!(s.position(LayerId::TrainLabels), Some(4));
        assert_eq!(s.position(LayerId::Uncertainty), Some(5));
        s.lower(LayerId::Pauli);
        assert_eq!(s.position(LayerId::Pauli), Some(0));
    }
}
