//! The panels and windows around the map, one struct each with its own
//! `ui()` (as in egui's demo app), gathered in [`Views`]. A view reads the
//! store and the jobs through a `ViewContext` (`view_context.rs`) and asks
//! for every effect with an `AppCommand`; what is its own (a window open, a
//! histogram worked out once) it keeps itself.

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
    pub shortcuts: super::shortcuts_window::ShortcutsWindow,
    pub notices: super::notices::Notices,
    pub path_prompt: super::path_prompt::PathPromptWindow,
    pub close: super::close_dialog::CloseDialog,
}
