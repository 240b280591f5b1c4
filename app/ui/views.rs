//! The panels and windows around the map, one struct each with its own
//! `ui()` (as in egui's demo app). A view reads the store and the jobs
//! through a [`ViewContext`] and asks for every effect with an
//! [`AppCommand`]; what is its own (a window open, a histogram worked out
//! once) it keeps itself.

use super::command::{AppCommand, CommandSender};
use super::job_status::JobStatus;
use super::map_view::MapView;
use super::store::Store;

/// What a view reads, and where it sends commands.
pub struct ViewContext<'a> {
    pub store: &'a Store,
    pub jobs: &'a JobStatus,
    pub map: &'a MapView,
    commands: &'a CommandSender,
}

impl<'a> ViewContext<'a> {
    pub fn new(
        store: &'a Store,
        jobs: &'a JobStatus,
        map: &'a MapView,
        commands: &'a CommandSender,
    ) -> Self {
        Self {
            store,
            jobs,
            map,
            commands,
        }
    }

    /// Asks for an effect (run after the frame's layout).
    pub fn send(&self, command: AppCommand) {
        self.commands.send(command);
    }
}

/// A window the app opens on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Results,
    Explorer,
    Shortcuts,
    Apply,
}

/// Every panel and window of the app.
#[derive(Default)]
pub struct Views {
    pub menu: super::menu_bar::MenuBar,
    pub status: super::status_bar::StatusBar,
    pub start: super::start_page::StartPage,
    pub layers: super::layers_panel::LayersPanel,
    pub labels: super::labels_panel::LabelsPanel,
    pub backbone: super::backbone_panel::BackbonePanel,
    pub stage_b: super::stage_b_panel::StageBPanel,
    pub inspector: super::inspector::InspectorPanel,
    pub results: super::results::ResultsWindow,
    pub sample: super::sample_window::SampleWindow,
    pub apply: super::apply_window::ApplyWindow,
    pub explorer: super::explorer::Explorer,
    pub shortcuts: super::notices::ShortcutsWindow,
    pub notices: super::notices::Notices,
    pub path_prompt: super::path_prompt::PathPromptWindow,
    pub close: super::desktop::CloseDialog,
}
