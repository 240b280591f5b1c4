//! The "Apply model to scenes" window: which model (the last
//! classification's, or a saved `.udmodel`), the scenes (HSI and/or SAR
//! each, of any size: read in tiles), the output folder and the tile size;
//! Apply runs it in the background with progress and Cancel, and the last
//! run's scenes are listed with where their maps went or why they failed.

use eframe::egui::{self, RichText};

use super::command::AppCommand;
use super::view_context::ViewContext;
use super::vocabulary::FileAction;

/// Whether the window is open (its settings live in the store).
#[derive(Default)]
pub struct ApplyWindow {
    pub open: bool,
}

fn file_name(p: &Option<std::path::PathBuf>) -> String {
    p.as_ref()
        .and_then(|p| p.file_name())
        .map_or_else(|| "-".into(), |n| n.to_string_lossy().to_string())
}

impl ApplyWindow {
    pub fn ui(&mut self, ctx: &egui::Context, cx: &ViewContext) {
        if !self.open {
            return;
        }
        let mut settings = cx.store.apply_settings.clone();
        let mut open = true;
        egui::Window::new("Apply model to scenes")
            .open(&mut open)
            .default_width(460.0)
            .show(ctx, |ui| {
                let session_model = cx
                    .store
                    .session
                    .as_ref()
                    .and_then(|s| s.result.as_ref())
                    .map(|r| r.model.as_ref().map(|_| ()).map_err(Clone::clone));
                ui.horizontal(|ui| {
                    ui.label("model");
                    let label = match &session_model {
                        Some(Ok(())) => "the last classification's".to_string(),
                        Some(Err(why)) => format!("the last classification's (none: {why})"),
                        None => "the last classification's (classify first)".to_string(),
                    };
                    if ui
                        .radio(settings.model_file.is_none(), label)
                        .clicked()
                    {
                        settings.model_file = None;
                    }
                });
                ui.horizontal(|ui| {
                    ui.add_space(42.0);
                    let file = settings
                        .model_file
                        .as_ref()
                        .map_or("a saved model…".to_string(), |p| p.display().to_string());
                    if ui.radio(settings.model_file.is_some(), file).clicked() {
                        cx.send(AppCommand::PickFile(FileAction::ApplyModelFile));
                    }
                });
                ui.separator();
                ui.strong("scenes (the model's sensor and bands; any size)");
                let mut remove = None;
                egui::Grid::new("apply scenes").striped(true).show(ui, |ui| {
                    for (i, scene) in settings.scenes.iter().enumerate() {
                        ui.label(format!("{}.", i + 1));
                        if ui
                            .button(format!("HSI: {}", file_name(&scene.hsi)))
                            .on_hover_text("the scene's hyperspectral or multispectral cube")
                            .clicked()
                        {
                            cx.send(AppCommand::PickFile(FileAction::ApplyInput {
                                index: i,
                                sar: false,
                            }));
                        }
                        if ui
                            .button(format!("SAR: {}", file_name(&scene.sar)))
                            .on_hover_text("the scene's SAR image")
                            .clicked()
                        {
                            cx.send(AppCommand::PickFile(FileAction::ApplyInput {
                                index: i,
                                sar: true,
                            }));
                        }
                        if ui.small_button("remove").clicked() {
                            remove = Some(i);
                        }
                        ui.end_row();
                    }
                });
                if let Some(i) = remove {
                    settings.scenes.remove(i);
                }
                if ui.button("Add scene").clicked() {
                    settings.scenes.push(Default::default());
                }
                ui.separator();
                ui.horizontal(|ui| {
                    ui.label("output folder");
                    let out = settings
                        .out
                        .as_ref()
                        .map_or("choose…".to_string(), |p| p.display().to_string());
                    if ui
                        .button(out)
                        .on_hover_text("each scene's map, probabilities, polygons, areas and predict.json go into a folder of it named after the scene")
                        .clicked()
                    {
                        cx.send(AppCommand::PickFile(FileAction::ApplyOut));
                    }
                });
                ui.horizontal(|ui| {
                    ui.label("tile");
                    ui.add(
                        egui::DragValue::new(&mut settings.tile)
                            .range(64..=8192)
                            .suffix(" px"),
                    )
                    .on_hover_text("side of the tiles the scene is read and mapped in; the map does not depend on it, memory does");
                });
                ui.separator();
                match &cx.jobs.applying {
                    Some(l) => {
                        ui.add(egui::ProgressBar::new(l.fraction).text(l.step.clone()));
                        if ui.button("Cancel").clicked() {
                            cx.send(AppCommand::CancelApply);
                        }
                    }
                    None => {
                        if ui.button("Apply").clicked() {
                            cx.send(AppCommand::ApplyModel);
                        }
                    }
                }
                if let Some(last) = &cx.store.last_applied {
                    ui.separator();
                    ui.label(RichText::new(format!("last run, into {}", last.out.display())).weak());
                    for (name, folder, outcome) in &last.scenes {
                        match outcome {
                            Ok(a) => ui.label(format!(
                                "{name}: {} x {} px in {:.0} s -> {}",
                                a.width,
                                a.height,
                                a.seconds,
                                folder.display()
                            )),
                            Err(why) => ui.colored_label(
                                ui.visuals().error_fg_color,
                                format!("{name}: {why}"),
                            ),
                        };
                    }
                }
            });
        self.open = open;
        if settings != cx.store.apply_settings {
            cx.send(AppCommand::SetApplySettings(Box::new(settings)));
        }
    }
}
