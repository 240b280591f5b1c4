//! The words every part of the ui speaks, below all of them: the painting
//! tool, a message, a job's progress, what part of a layer's texture is
//! stale, what a picked file is for, a rendering's histograms. It imports
//! nothing of the ui, so the views, the store, the map widget and the
//! commands can all name these without reaching up to the app.

use std::time::Instant;

use crate::scene::{LabelLayer, PixelRect};

/// The painting tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// Click shows the pixel in the inspector.
    Inspect,
    Brush,
    Eraser,
}

/// A message shown in the window until closed.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub error: bool,
    pub text: String,
    /// When it was posted: information disappears after
    /// [`Message::INFO_SECONDS`]; errors stay until closed.
    pub posted: std::time::Instant,
}

impl Message {
    pub const INFO_SECONDS: f32 = 8.0;

    /// Whether an information message has been shown long enough.
    pub fn expired(&self, now: std::time::Instant) -> bool {
        !self.error && now.duration_since(self.posted).as_secs_f32() > Self::INFO_SECONDS
    }
}

/// A background job in progress (a load, classification, Stage A run, download, projection or application): its step, how far it is, since when.
#[derive(Debug, Clone)]
pub struct JobProgress {
    pub generation: u64,
    pub step: String,
    pub fraction: f32,
    pub started: Instant,
}

impl JobProgress {
    pub(crate) fn started(generation: u64) -> Self {
        Self {
            generation,
            step: "starting".into(),
            fraction: 0.0,
            started: Instant::now(),
        }
    }
}

/// What part of a layer's texture must be uploaded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dirty {
    All,
    Rect(PixelRect),
}

/// A file picked in a native dialog, and what it is for.
#[derive(Debug, Clone, PartialEq)]
pub enum FileAction {
    OpenHsi,
    OpenSar,
    OpenLabels(LabelLayer),
    SaveLabels(LabelLayer),
    /// A folder for the class map, probabilities and metrics.
    ExportResults,
    /// A GeoPackage for the shown class map as polygons.
    ExportPolygons {
        /// Also one multipolygon per class.
        dissolve: bool,
    },
    /// A GeoPackage for a validation sample of the shown map, this many
    /// points per class.
    ValidationSample {
        per_class: usize,
    },
    /// A labelled validation sample to score the shown map with.
    SampleAccuracy,
    /// A validation sample (GeoPackage) to label in the app.
    LabelSample,
    /// Scene `index`'s HSI (or, with `sar`, SAR) image for "Apply model to
    /// scenes".
    ApplyInput {
        index: usize,
        sar: bool,
    },
    /// The output folder of "Apply model to scenes".
    ApplyOut,
    /// A `.udmodel` file to apply.
    ApplyModelFile,
    /// A guided-diffusion checkpoint (.pt / .safetensors) as the backbone.
    ImportCheckpoint,
    /// A Stage A adapter for the backbone.
    LoadAdapter,
    /// A PNG of the map as shown, with its legend.
    ExportViewPng,
    /// A `.udmodel` file for the trained model.
    SaveModel,
    /// A `.udproj` project to open.
    OpenProject,
    /// Where to save the project.
    SaveProjectAs,
}

/// Counts of the 256 values of each of a rendering's three channels.
pub type ChannelHistograms = [[u32; 256]; 3];

/// A window the app opens on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Results,
    Explorer,
    Shortcuts,
    Apply,
}

/// Whether a close is being asked about, or was agreed to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClosePurpose {
    /// The window closes.
    #[default]
    Quit,
    /// The scene and project close (File → New project).
    NewProject,
}

/// Whether a close of the window (or of the project) is being asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CloseState {
    /// Nothing asked.
    #[default]
    Open,
    /// The close was held back: the question is on screen.
    Asking,
    /// The user agreed to close without saving.
    Confirmed,
}
