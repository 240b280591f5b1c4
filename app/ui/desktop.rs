//! Desktop habits: the window's title says what is open, whether it has
//! unsaved changes and what is running; closing the window (its close
//! button, Ctrl+Q, File → Quit) with unsaved training labels asks first.

use eframe::egui;

use super::app::StudioApp;
use super::vocabulary::{ClosePurpose, CloseState};

/// The app's name, last in the title as desktop applications write it.
pub const APP_NAME: &str = "UniDiff Studio";

/// The window title: `name *  —  job 42 %  —  UniDiff Studio` (the star
/// when labels are unsaved; the job while one runs).
pub fn title_for(scene: Option<&str>, unsaved: bool, job: Option<(&str, f32)>) -> String {
    let mut parts = Vec::new();
    if let Some(name) = scene.filter(|n| !n.is_empty()) {
        parts.push(if unsaved {
            format!("{name} *")
        } else {
            name.to_string()
        });
    }
    if let Some((what, fraction)) = job {
        parts.push(format!(
            "{what} {:.0} %",
            (fraction.clamp(0.0, 1.0) * 100.0).floor()
        ));
    }
    parts.push(APP_NAME.to_string());
    parts.join(" — ")
}

impl StudioApp {
    /// The title for the app's state now.
    pub fn window_title(&self) -> String {
        let scene = self
            .store
            .session
            .as_ref()
            .map(|s| match self.store.project_name() {
                Some(project) => format!("{project} ({})", s.sources.title),
                None => s.sources.title.clone(),
            });
        title_for(
            scene.as_deref(),
            self.store.has_unsaved_work(),
            self.jobs.title_job(),
        )
    }

    /// Sends the title to the window when it changed.
    pub(crate) fn update_title(&mut self, ctx: &egui::Context) {
        let title = self.window_title();
        if self.shown_title != title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.shown_title = title;
        }
    }

    /// Holds back a close of the window while there is unsaved work, and
    /// asks instead.
    pub(crate) fn guard_close(&mut self, ctx: &egui::Context) {
        if !ctx.input(|i| i.viewport().close_requested()) {
            return;
        }
        if self.store.close_state == CloseState::Confirmed || !self.store.has_unsaved_work() {
            return;
        }
        ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
        self.store.close_state = CloseState::Asking;
        self.store.close_purpose = ClosePurpose::Quit;
    }

    /// Asks the window to close (File → Quit, Ctrl+Q): the close is then
    /// held back by [`StudioApp::guard_close`] if work would be lost, unless
    /// `confirmed`.
    pub(crate) fn request_quit(&mut self, confirmed: bool) {
        if confirmed {
            self.store.close_state = CloseState::Confirmed;
        }
        self.close_pending = true;
    }

    /// Sends the close asked for by a command this frame.
    pub(crate) fn close_if_asked(&mut self, ctx: &egui::Context) {
        if std::mem::take(&mut self.close_pending) {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_names_the_scene_its_unsaved_mark_and_the_running_job() {
        assert_eq!(title_for(None, false, None), "UniDiff Studio");
        assert_eq!(title_for(Some(""), true, None), "UniDiff Studio");
        assert_eq!(
            title_for(Some("berlin"), true, None),
            "berlin * — UniDiff Studio"
        );
        assert_eq!(
            title_for(Some("berlin"), false, Some(("classifying", 0.426))),
            "berlin — classifying 42 % — UniDiff Studio"
        );
        assert_eq!(
            title_for(None, false, Some(("opening", 1.5))),
            "opening 100 % — UniDiff Studio"
        );
    }
}
