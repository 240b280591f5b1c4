//! The question before a close (of the window, or of the scene for a new
//! project) that would lose unsaved training labels: save, close without
//! saving, or cancel.

use eframe::egui::{self, RichText};

use super::command::AppCommand;
use super::view_context::ViewContext;
use super::vocabulary::{ClosePurpose, CloseState, FileAction};
use crate::scene::LabelLayer;

/// The question before a close that would lose unsaved labels.
#[derive(Default)]
pub struct CloseDialog;

impl CloseDialog {
    /// The question before a close that would lose unsaved labels.
    pub fn ui(&mut self, ctx: &egui::Context, cx: &ViewContext) {
        if cx.store.close_state != CloseState::Asking {
            return;
        }
        let mut answer = None;
        let purpose = cx.store.close_purpose;
        let project = cx.store.project.is_some();
        egui::Modal::new(egui::Id::new("close with unsaved labels")).show(ctx, |ui| {
            ui.set_max_width(420.0);
            ui.heading(match purpose {
                ClosePurpose::Quit => "Close with unsaved labels?",
                ClosePurpose::NewProject => "Close this scene with unsaved labels?",
            });
            ui.label(
                "The training labels have changes that are not saved to a file. \
                 An autosave is kept and offered when this scene is opened again.",
            );
            ui.add_space(8.0);
            ui.horizontal(|ui| {
                let save = if project {
                    "Save project"
                } else {
                    "Save labels…"
                };
                if ui.button(save).clicked() {
                    answer = Some(CloseAnswer::Save);
                }
                if ui
                    .button(RichText::new("Close without saving").color(ui.visuals().warn_fg_color))
                    .clicked()
                {
                    answer = Some(CloseAnswer::Discard);
                }
                if ui.button("Cancel").clicked() || ui.input(|i| i.key_pressed(egui::Key::Escape)) {
                    answer = Some(CloseAnswer::Cancel);
                }
            });
        });
        match answer {
            Some(CloseAnswer::Save) => {
                cx.send(AppCommand::KeepOpen);
                if project {
                    cx.send(AppCommand::SaveProject);
                } else {
                    cx.send(AppCommand::PickFile(FileAction::SaveLabels(
                        LabelLayer::Train,
                    )));
                }
            }
            Some(CloseAnswer::Discard) => cx.send(match purpose {
                ClosePurpose::Quit => AppCommand::Quit { confirmed: true },
                ClosePurpose::NewProject => AppCommand::NewProject { confirmed: true },
            }),
            Some(CloseAnswer::Cancel) => cx.send(AppCommand::KeepOpen),
            None => {}
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum CloseAnswer {
    Save,
    Discard,
    Cancel,
}
