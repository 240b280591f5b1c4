//! What the app tells the user outside the panels: messages stacked in the
//! map's corner (errors with the log file's place) and the offer to recover
//! autosaved labels.

use eframe::egui::{self, RichText};

use super::command::AppCommand;
use super::view_context::ViewContext;

/// The messages and the autosave offer.
#[derive(Default)]
pub struct Notices;

impl Notices {
    /// The autosave offer, and the messages stacked in the bottom-right
    /// corner of `central` (the map), wrapped so that they never cover the
    /// side panels' buttons — unless a view export is capturing the frame.
    pub fn ui(
        &mut self,
        ctx: &egui::Context,
        cx: &ViewContext,
        central: egui::Rect,
        capturing: bool,
    ) {
        if cx.store.recovery.is_some() {
            let (age, differs) = cx
                .store
                .recovery
                .as_ref()
                .map(|r| (r.age(), r.differs.join(" and ")))
                .unwrap_or_default();
            let mut choice = None;
            egui::Window::new("Recover autosaved labels?")
                .collapsible(false)
                .resizable(false)
                .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
                .show(ctx, |ui| {
                    ui.label(format!(
                        "This scene's {differs} were autosaved {age} and differ from what was just opened."
                    ));
                    ui.horizontal(|ui| {
                        if ui.button("Recover").clicked() {
                            choice = Some(true);
                        }
                        if ui.button("Discard").clicked() {
                            choice = Some(false);
                        }
                    });
                });
            match choice {
                Some(true) => cx.send(AppCommand::Recover(true)),
                Some(false) => cx.send(AppCommand::Recover(false)),
                None => {}
            }
        }
        // Not over a frame being captured for "Export view as PNG".
        if !cx.store.messages.is_empty() && !capturing {
            let mut close = None;
            let log_file = crate::base::logging::log_file();
            let width = (central.width() - 48.0).clamp(120.0, 420.0);
            egui::Area::new(egui::Id::new("messages"))
                .pivot(egui::Align2::RIGHT_BOTTOM)
                .fixed_pos(central.right_bottom() + egui::vec2(-12.0, -12.0))
                .constrain_to(central)
                .show(ctx, |ui| {
                    for (i, m) in cx.store.messages.iter().enumerate() {
                        egui::Frame::popup(ui.style()).show(ui, |ui| {
                            ui.set_max_width(width);
                            ui.horizontal(|ui| {
                                let color = if m.error {
                                    ui.visuals().error_fg_color
                                } else {
                                    ui.visuals().text_color()
                                };
                                ui.add(
                                    egui::Label::new(RichText::new(&m.text).color(color)).wrap(),
                                );
                                if ui.small_button("✖").clicked() {
                                    close = Some(i);
                                }
                            });
                            if let (true, Some(log)) = (m.error, log_file) {
                                ui.label(
                                    RichText::new(format!("details: {}", log.display()))
                                        .small()
                                        .weak(),
                                );
                            }
                        });
                    }
                });
            if let Some(i) = close {
                cx.send(AppCommand::DismissMessage(i));
            }
        }
    }
}
