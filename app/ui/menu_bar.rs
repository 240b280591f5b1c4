//! The menu bar: File (projects, open, labels, recent scenes, quit), Edit (undo and
//! redo with what they undo), View (fit, export, theme, shortcuts).

use eframe::egui;

use super::command::AppCommand;
use super::view_context::ViewContext;
use super::vocabulary::FileAction;
use super::vocabulary::Window;
use crate::jobs::LoadRequest;
use crate::scene::LabelLayer;
use crate::session::Command;

/// The window's menu bar.
#[derive(Default)]
pub struct MenuBar;

impl MenuBar {
    pub fn ui(&mut self, ui: &mut egui::Ui, cx: &ViewContext) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                let has_scene = cx.store.session.is_some();
                if ui.button("New project").clicked() {
                    cx.send(AppCommand::NewProject { confirmed: false });
                }
                if ui
                    .add(egui::Button::new("Open project…").shortcut_text("Ctrl+O"))
                    .clicked()
                {
                    cx.send(AppCommand::PickFile(FileAction::OpenProject));
                }
                ui.add_enabled_ui(has_scene, |ui| {
                    if ui
                        .add(egui::Button::new("Save project").shortcut_text("Ctrl+S"))
                        .clicked()
                    {
                        cx.send(AppCommand::SaveProject);
                    }
                    if ui
                        .add(egui::Button::new("Save project as…").shortcut_text("Ctrl+Shift+S"))
                        .clicked()
                    {
                        cx.send(AppCommand::PickFile(FileAction::SaveProjectAs));
                    }
                });
                ui.separator();
                if ui.button("Open HSI…").clicked() {
                    cx.send(AppCommand::PickFile(FileAction::OpenHsi));
                }
                if ui.button("Open SAR…").clicked() {
                    cx.send(AppCommand::PickFile(FileAction::OpenSar));
                }
                ui.add_enabled_ui(has_scene, |ui| {
                    if ui.button("Open training labels…").clicked() {
                        cx.send(AppCommand::PickFile(FileAction::OpenLabels(
                            LabelLayer::Train,
                        )));
                    }
                    if ui.button("Open test labels…").clicked() {
                        cx.send(AppCommand::PickFile(FileAction::OpenLabels(
                            LabelLayer::Test,
                        )));
                    }
                });
                if ui.button("Open demo scene").clicked() {
                    cx.send(AppCommand::OpenDemo);
                }
                ui.menu_button("Recent", |ui| recent_list(ui, cx));
                ui.separator();
                ui.add_enabled_ui(has_scene, |ui| {
                    if ui.button("Save training labels").clicked() {
                        let saved = cx
                            .store
                            .session
                            .as_ref()
                            .and_then(|s| s.sources.train_labels.clone());
                        match saved {
                            Some(p) => cx.send(AppCommand::SaveLabels(LabelLayer::Train, p)),
                            None => cx.send(AppCommand::PickFile(FileAction::SaveLabels(
                                LabelLayer::Train,
                            ))),
                        }
                    }
                    if ui.button("Export training labels as…").clicked() {
                        cx.send(AppCommand::PickFile(FileAction::SaveLabels(
                            LabelLayer::Train,
                        )));
                    }
                    if ui.button("Export test labels as…").clicked() {
                        cx.send(AppCommand::PickFile(FileAction::SaveLabels(
                            LabelLayer::Test,
                        )));
                    }
                });
                if ui
                    .button("Apply model to scenes…")
                    .on_hover_text("map other scenes (any size, read in tiles) with the last classification's model or a saved one")
                    .clicked()
                {
                    cx.send(AppCommand::ShowWindow(Window::Apply));
                }
                ui.separator();
                if ui
                    .add(egui::Button::new("Quit").shortcut_text("Ctrl+Q"))
                    .clicked()
                {
                    cx.send(AppCommand::Quit { confirmed: false });
                }
            });
            ui.menu_button("Edit", |ui| {
                let (undo, redo) = cx
                    .store
                    .session
                    .as_ref()
                    .map(|s| {
                        (
                            s.undo_description().map(str::to_string),
                            s.redo_description().map(str::to_string),
                        )
                    })
                    .unwrap_or_default();
                let undo_text = format!("Undo {}", undo.clone().unwrap_or_default());
                if ui
                    .add_enabled(
                        undo.is_some(),
                        egui::Button::new(undo_text).shortcut_text("Ctrl+Z"),
                    )
                    .clicked()
                {
                    cx.send(AppCommand::Label(Command::Undo));
                }
                let redo_text = format!("Redo {}", redo.clone().unwrap_or_default());
                if ui
                    .add_enabled(
                        redo.is_some(),
                        egui::Button::new(redo_text).shortcut_text("Ctrl+Shift+Z"),
                    )
                    .clicked()
                {
                    cx.send(AppCommand::Label(Command::Redo));
                }
            });
            ui.menu_button("View", |ui| {
                if ui.button("Fit scene (F)").clicked() {
                    cx.send(AppCommand::FitView);
                }
                if ui
                    .add_enabled(
                        cx.store.session.is_some(),
                        egui::Button::new("Export view as PNG…"),
                    )
                    .clicked()
                {
                    cx.send(AppCommand::PickFile(FileAction::ExportViewPng));
                }
                let mut dark = cx.store.prefs.dark;
                if ui.checkbox(&mut dark, "Dark theme").changed() {
                    cx.send(AppCommand::SetDarkTheme(dark));
                }
                if ui.button("Keyboard shortcuts (?)").clicked() {
                    cx.send(AppCommand::ShowWindow(Window::Shortcuts));
                }
            });
        });
    }
}

/// The recently opened scenes as buttons that open them again.
pub(super) fn recent_list(ui: &mut egui::Ui, cx: &ViewContext) {
    if cx.store.prefs.recent.is_empty() {
        ui.label("nothing yet");
    }
    for r in &cx.store.prefs.recent {
        if ui.button(&r.title).clicked() {
            if let Some(project) = &r.project {
                cx.send(AppCommand::OpenProject(project.clone()));
            } else if r.demo {
                cx.send(AppCommand::OpenDemo);
            } else {
                cx.send(AppCommand::Open(LoadRequest {
                    hsi: r.hsi.clone(),
                    sar: r.sar.clone(),
                    title: r.title.clone(),
                    ..LoadRequest::default()
                }));
            }
        }
    }
}
