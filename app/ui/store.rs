//! The app's store, as in rerun's viewer: everything the views read (the
//! open session, the layer stack, the painting tool, the settings of the
//! next classification and Stage A run, messages), apart from the views
//! themselves and from the jobs. Views only read it; commands
//! (`dispatch.rs`) and job events (`events.rs`) change it. What is kept
//! across runs is [`Prefs`]; everything else lives for one run.

use std::path::PathBuf;

use super::layers::{LayerId, LayerStack};
use super::prefs::Prefs;
use super::vocabulary::{ClosePurpose, CloseState};
use super::vocabulary::{Message, Tool};
use crate::jobs::apply::ApplySettings;
use crate::jobs::scene_preview::ScenePreview;
use crate::jobs::{AdaptSettings, AppliedScenes, ClassifySettings, GetRequest};
use crate::scene::LabelLayer;
use crate::session::autosave::Recovery;
use crate::session::sample_labelling::SampleLabelling;
use crate::session::{Session, UncertainRegion};

/// What the views show and the commands change.
pub struct Store {
    /// The open scene, its labels, classes and last classification.
    pub session: Option<Session>,
    pub layers: LayerStack,
    pub tool: Tool,
    pub brush_size: f32,
    /// The class the brush paints.
    pub active_class: u8,
    /// The label layer the brush paints into.
    pub paint_layer: LabelLayer,
    /// The layer whose stretch the layers panel edits.
    pub selected_layer: LayerId,
    pub messages: Vec<Message>,
    /// The pixel shown in the inspector, and the one under the pointer.
    pub inspected: Option<(usize, usize)>,
    pub hovered: Option<(usize, usize)>,
    /// Autosaved labels that differ from the ones opened, on offer.
    pub recovery: Option<Recovery>,
    /// Kept across runs (eframe's storage).
    pub prefs: Prefs,
    /// Settings of the next classification.
    pub classify_settings: ClassifySettings,
    /// Settings of the next Stage A run, and the loss of every step of the
    /// current (or last) run.
    pub adapt_settings: AdaptSettings,
    pub adapt_curve: Vec<f32>,
    /// What "Get the paper's backbone" fetches (OpenAI's address or the
    /// mirror in `UNIDIFF_STUDIO_BACKBONE_URL`, into the data folder's
    /// `backbones/`).
    pub backbone_request: GetRequest,
    /// The device the last Stage A or Stage B job ran on, and why.
    pub last_device: Option<String>,
    /// Classify again after each finished stroke (debounced).
    pub auto_classify: bool,
    /// "Where to label next": the most uncertain unlabelled squares of the
    /// last result, and the one the N key went to last.
    pub suggestions: Vec<UncertainRegion>,
    pub suggestion_index: Option<usize>,
    /// A close held back to ask about unsaved work, or agreed to.
    pub close_state: CloseState,
    /// What the close question is about (the window, or the project).
    pub close_purpose: ClosePurpose,
    /// Root of the autosave folders and downloads.
    pub data_dir: PathBuf,
    /// The project file the work was opened from or last saved to.
    pub project: Option<PathBuf>,
    /// A validation sample being labelled (the sample window).
    pub sample: Option<SampleLabelling>,
    /// Settings of the next "Apply model to scenes", and how the last went.
    pub apply_settings: ApplySettings,
    pub last_applied: Option<AppliedScenes>,
    /// A coarse look at the large scene being read while none is open.
    pub scene_preview: Option<ScenePreview>,
}

impl Store {
    /// The state of a new window: no scene, the remembered preferences.
    pub fn new(prefs: Prefs, data_dir: PathBuf) -> Self {
        Self {
            session: None,
            layers: LayerStack::default(),
            tool: Tool::Inspect,
            brush_size: prefs.brush_size,
            active_class: 1,
            paint_layer: LabelLayer::Train,
            selected_layer: LayerId::Prgb,
            messages: Vec::new(),
            inspected: None,
            hovered: None,
            recovery: None,
            prefs,
            classify_settings: ClassifySettings::default(),
            adapt_settings: AdaptSettings::default(),
            adapt_curve: Vec::new(),
            backbone_request: crate::jobs::download::paper_request(&data_dir),
            last_device: None,
            auto_classify: false,
            suggestions: Vec::new(),
            suggestion_index: None,
            close_state: CloseState::default(),
            close_purpose: ClosePurpose::default(),
            data_dir,
            project: None,
            sample: None,
            apply_settings: ApplySettings::default(),
            last_applied: None,
            scene_preview: None,
        }
    }

    /// Whether closing now would lose work that is not saved.
    pub fn has_unsaved_work(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| s.has_unsaved_labels())
    }

    /// The project's name ("flood.udproj"), when one is open.
    pub fn project_name(&self) -> Option<String> {
        self.project
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().to_string())
    }

    /// The palette of the label layers: class colours, 0 transparent.
    pub fn palette(&self) -> [[u8; 4]; 256] {
        let mut p = [[0u8; 4]; 256];
        if let Some(s) = &self.session {
            for c in &s.classes {
                p[c.value as usize] = [c.color[0], c.color[1], c.color[2], 255];
            }
        }
        p
    }
}
