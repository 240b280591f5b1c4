//! The layer list: which renderings and label layers the map shows, in what
//! order, with what opacity and stretch. View state only: the pixels live in
//! the session.

use crate::products::ChannelStretch;

/// A layer of the map view.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
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
    /// The class map after its clean-up steps (sieve, majority).
    CleanedMap,
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
            LayerId::CleanedMap => "Cleaned map",
        }
    }

    pub fn is_labels(self) -> bool {
        matches!(
            self,
            LayerId::TestLabels | LayerId::TrainLabels | LayerId::ClassMap | LayerId::CleanedMap
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
        LayerId::CleanedMap => s.cleaned_class_map().is_some(),
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
                LayerState::new(LayerId::CleanedMap, true, 0.6),
            ],
        }
    }
}

impl LayerStack {
    /// A stack as saved (a project's, the preferences'), with the layers
    /// it lacks (saved by an older version) added where the default stack
    /// has them: above the layer below them there, else at the top.
    pub fn from_saved(saved: Vec<LayerState>) -> Self {
        let mut stack = Self { layers: saved };
        let default = Self::default().layers;
        for (i, layer) in default.iter().enumerate() {
            if stack.position(layer.id).is_some() {
                continue;
            }
            let at = i
                .checked_sub(1)
                .and_then(|below| stack.position(default[below].id))
                .map_or(stack.layers.len(), |p| p + 1);
            stack.layers.insert(at, layer.clone());
        }
        stack
    }

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
    fn a_saved_stack_gets_the_layers_it_lacks_above_their_neighbours() {
        let mut saved = LayerStack::default().layers;
        saved.retain(|l| l.id != LayerId::CleanedMap);
        saved[0].visible = true;
        let stack = LayerStack::from_saved(saved);
        assert_eq!(stack.layers.len(), LayerStack::default().layers.len());
        assert_eq!(
            stack.position(LayerId::CleanedMap),
            stack.position(LayerId::ClassMap).map(|p| p + 1)
        );
        assert!(stack.layers[0].visible, "the saved settings are kept");
    }

    #[test]
    fn raise_and_lower_move_one_step_and_stop_at_the_ends() {
        let mut s = LayerStack::default();
        s.raise(LayerId::ClassMap);
        assert_eq!(s.position(LayerId::ClassMap), Some(7));
        s.raise(LayerId::ClassMap);
        assert_eq!(
            s.position(LayerId::ClassMap),
            Some(7),
            "the top stays the top"
        );
        s.lower(LayerId::TrainLabels);
        assert_eq!(s.position(LayerId::TrainLabels), Some(4));
        assert_eq!(s.position(LayerId::Uncertainty), Some(5));
        s.lower(LayerId::Pauli);
        assert_eq!(s.position(LayerId::Pauli), Some(0));
    }
}
