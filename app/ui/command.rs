//! Every effect a widget, a shortcut, a file dialog or a drop can ask for,
//! as one [`AppCommand`] sent through one queue ([`CommandSender`]) and run
//! in one place ([`StudioApp::handle`](crate::ui::StudioApp::handle), in
//! `dispatch.rs`). Widgets read state and send commands; they never change
//! the session or start work themselves.

use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender};

use super::layers::{LayerId, LayerState};
use super::vocabulary::Window;
use super::vocabulary::{FileAction, Tool};
use crate::jobs::{AdaptSettings, ClassifySettings, GetRequest, LoadRequest, Waker};
use crate::pipeline::classification::ClassifierChoice;
use crate::products::Rgb8Image;
use crate::scene::LabelLayer;
use crate::session::Command;

/// One effect asked of the app.
#[derive(Debug, Clone)]
pub enum AppCommand {
    /// Open a scene (replacing the open one).
    Open(LoadRequest),
    /// Open the bundled demo scene (or say where it was looked for).
    OpenDemo,
    /// Open a `.udproj` project: its scene, labels, settings and last result.
    OpenProject(PathBuf),
    /// Save to the open project's file (or ask where, the first time).
    SaveProject,
    /// Save the project to this file (it becomes the open project).
    SaveProjectAs(PathBuf),
    /// Close the scene and the project (asked first when labels are
    /// unsaved, unless `confirmed`).
    NewProject {
        confirmed: bool,
    },
    /// Close the window (asked first when labels are unsaved, unless
    /// `confirmed`).
    Quit {
        confirmed: bool,
    },
    /// Keep the window open after all (the close question's Cancel, or
    /// Save labels first).
    KeepOpen,
    /// Files dropped on the window: a scene, or label files for the open one.
    OpenDropped(Vec<PathBuf>),
    CancelLoad,
    /// Show a native file dialog for `FileAction`.
    PickFile(FileAction),
    /// A file picked in a dialog, and what it is for.
    FilePicked(FileAction, PathBuf),
    /// No file dialog could be shown for `FileAction` (rfd's message):
    /// the app says so and offers a path field instead.
    DialogFailed(FileAction, String),
    LoadLabels(LabelLayer, PathBuf),
    SaveLabels(LabelLayer, PathBuf),
    /// The last classification's files into a folder.
    ExportResults(PathBuf),
    /// One clean-up step on the shown map (or on its last cleaned map): a
    /// new cleaned-map layer.
    CleanMap(CleanRequest),
    /// Drop the shown map's last clean-up step.
    UndoCleanStep,
    /// The shown class map as polygons (class, name, area) in a GeoPackage.
    /// (and, when `bool`, one multipolygon per class in a second layer).
    ExportPolygons(PathBuf, bool),
    /// A stratified random validation sample of the shown map (points per
    /// class, seed) into a GeoPackage.
    WriteValidationSample(PathBuf, usize, u64),
    /// The shown map's area-adjusted accuracy from a labelled sample.
    ScoreWithSample(PathBuf),
    /// Open a validation sample's points to label them in the app.
    OpenSample(PathBuf),
    /// The reference class of the sample point on show (None clears it);
    /// written back to the sample's file, then on to the next unlabelled.
    SetSampleReference(Option<u8>),
    /// Show sample point `i` (0-based) and centre the map on it.
    GoToSamplePoint(usize),
    /// Stop labelling the sample (its labels are in its file).
    CloseSample,
    /// The settings of the next "Apply model to scenes" (the window edits a
    /// copy).
    SetApplySettings(Box<crate::jobs::apply::ApplySettings>),
    /// Map the scenes of the apply settings in the background.
    ApplyModel,
    CancelApply,
    /// Write the last classification's trained model (for `predict`).
    SaveModel(PathBuf),
    /// The map as shown (layers, legend) as a PNG, from the next frame.
    ExportViewPng(PathBuf),
    /// A guided-diffusion checkpoint as the backbone (checked first).
    UseCheckpoint(PathBuf),
    /// Download a backbone, check it and use it.
    GetBackbone(Box<GetRequest>),
    CancelGetBackbone,
    /// A Stage A adapter on the backbone (checked first); None: the base
    /// weights.
    UseAdapter(Option<PathBuf>),
    /// Render pRGB from these bands.
    SetPrgbBands([usize; 3]),
    /// The settings of the next classification (the panels edit a copy).
    SetClassifySettings(Box<ClassifySettings>),
    /// Only the timestep of the next classification (the explorer's "Use
    /// this t").
    SetTimestep(i64),
    /// The settings of the next Stage A run.
    SetAdaptSettings(Box<AdaptSettings>),
    /// Classify again after each finished stroke.
    SetAutoClassify(bool),
    /// Make the explorer's x_t of `image` at `t` as Stage B does (its
    /// noise image of `seed`, `patch` pixels a side).
    MakeNoisedInput {
        image: std::sync::Arc<Rgb8Image>,
        t: usize,
        seed: u64,
        patch: usize,
    },
    Classify,
    /// Stage B at each of these timesteps (the explorer's sweep).
    ClassifySweep(Vec<i64>),
    /// Stage B for each modality subset (the paper's Table 5).
    ClassifyAblation,
    CancelClassify,
    Adapt,
    CancelAdapt,
    /// The explorer's feature projection at its t and block.
    ProjectFeatures(Box<crate::jobs::ProjectRequest>),
    CancelProjection,
    /// Cancel Stage A, the classification and the projection (Esc).
    CancelJobs,
    /// Take the autosaved labels (true) or forget them (false).
    Recover(bool),
    /// Centre the view on the next "label here next" square (N).
    NextSuggestion,
    /// Centre the view on "label here next" square `i` (0-based).
    GoToSuggestion(usize),
    /// A label edit (paint, undo, classes): the session's undoable command.
    Label(Command),
    SetTool(Tool),
    SetBrushSize(f32),
    /// The label layer the brush paints into.
    SetPaintLayer(LabelLayer),
    /// Brush size one step up (true) or down.
    StepBrush(bool),
    /// Class `value` as the brush's (the digit keys).
    SelectClass(u8),
    ToggleLayer(LayerId),
    /// A layer's visibility, opacity and stretch, as the layers panel
    /// edited them.
    EditLayer(LayerState),
    /// One step up the stack (true: drawn later) or down.
    MoveLayer(LayerId, bool),
    /// The layer whose stretch the layers panel edits.
    SelectLayer(LayerId),
    /// Which classifier's map the class-map layer shows (the run's results
    /// side by side on the map).
    ShowResultMap(ClassifierChoice),
    ToggleShortcuts,
    ShowWindow(Window),
    /// Close message `i` of the store's list.
    DismissMessage(usize),
    SetDarkTheme(bool),
    FitView,
    /// The pixel under the pointer (None: outside the scene).
    Hover(Option<(usize, usize)>),
    /// Show this pixel (row, column) in the inspector.
    InspectPixel((usize, usize)),
    /// Pan by screen points.
    Pan([f32; 2]),
    /// Zoom in (true) or out one step.
    StepZoom(bool),
}

/// A clean-up step as the results window asks for it (an area is turned
/// into pixels with the scene's grid when the step starts).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CleanRequest {
    SievePixels { min_pixels: usize, connectivity: u8 },
    SieveHectares { ha: f64, connectivity: u8 },
    Majority { k: usize },
}

/// Where commands go: clone it into threads (file dialogs) and widgets; each
/// send wakes the UI.
#[derive(Clone)]
pub struct CommandSender {
    tx: Sender<AppCommand>,
    wake: Waker,
}

impl CommandSender {
    /// A queue whose sends call `wake`, and its receiving end.
    pub fn new(wake: Waker) -> (Self, Receiver<AppCommand>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        (Self { tx, wake }, rx)
    }

    pub fn send(&self, command: AppCommand) {
        // The receiver lives as long as the app; a send after it has gone
        // (the window closing) has nobody left to act on it.
        if self.tx.send(command).is_ok() {
            (self.wake)();
        }
    }
}
