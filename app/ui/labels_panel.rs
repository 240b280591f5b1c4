//! The labels panel: tool, brush size, the label layer painted into, and
//! the class table (colour, name, training and test counts, merge, remove,
//! add) whose edits are the session's undoable commands.

use eframe::egui;

use super::command::AppCommand;
use super::view_context::ViewContext;
use super::vocabulary::Tool;
use crate::scene::LabelLayer;
use crate::session::Command;

/// The class editor with the brush settings.
#[derive(Default)]
pub struct LabelsPanel;

impl LabelsPanel {
    pub fn ui(&mut self, ui: &mut egui::Ui, cx: &ViewContext) {
        ui.heading("Labels");
        let mut tool = cx.store.tool;
        ui.horizontal(|ui| {
            ui.selectable_value(&mut tool, Tool::Inspect, "Inspect (I)");
            ui.selectable_value(&mut tool, Tool::Brush, "Brush (B)");
            ui.selectable_value(&mut tool, Tool::Eraser, "Eraser (E)");
        });
        if tool != cx.store.tool {
            cx.send(AppCommand::SetTool(tool));
        }
        let mut size = cx.store.brush_size;
        if ui
            .add(
                egui::Slider::new(&mut size, 1.0..=128.0)
                    .logarithmic(true)
                    .text("size ([ ])"),
            )
            .changed()
        {
            cx.send(AppCommand::SetBrushSize(size));
        }
        let mut paint_layer = cx.store.paint_layer;
        ui.horizontal(|ui| {
            ui.label("paint into");
            ui.selectable_value(&mut paint_layer, LabelLayer::Train, "training");
            ui.selectable_value(&mut paint_layer, LabelLayer::Test, "test");
        });
        if paint_layer != cx.store.paint_layer {
            cx.send(AppCommand::SetPaintLayer(paint_layer));
        }
        let Some(session) = &cx.store.session else {
            return;
        };
        let train = session.class_counts(LabelLayer::Train);
        let test = session.class_counts(LabelLayer::Test);
        let classes = &session.classes;
        let mut commands = Vec::new();
        egui::Grid::new("classes").striped(true).show(ui, |ui| {
            ui.label("");
            ui.label("class");
            ui.label("train");
            ui.label("test");
            ui.label("");
            ui.end_row();
            for c in classes {
                let mut rgb = c.color;
                if ui.color_edit_button_srgb(&mut rgb).changed() {
                    commands.push(Command::RecolorClass {
                        value: c.value,
                        color: rgb,
                    });
                }
                let mut name = c.name.clone();
                let key = if c.value <= 9 {
                    format!("{} ", c.value)
                } else {
                    String::new()
                };
                ui.horizontal(|ui| {
                    if ui
                        .selectable_label(cx.store.active_class == c.value, key)
                        .on_hover_text("paint with this class")
                        .clicked()
                    {
                        cx.send(AppCommand::SelectClass(c.value));
                        cx.send(AppCommand::SetTool(Tool::Brush));
                    }
                    if ui
                        // A fixed size: the grid cell would clamp a desired width.
                        .add_sized([90.0, 18.0], egui::TextEdit::singleline(&mut name))
                        .changed()
                    {
                        commands.push(Command::RenameClass {
                            value: c.value,
                            name: name.clone(),
                        });
                    }
                });
                ui.label(train[c.value as usize].to_string());
                ui.label(test[c.value as usize].to_string());
                ui.menu_button("…", |ui| {
                    for other in classes {
                        if other.value != c.value
                            && ui.button(format!("merge into {}", other.name)).clicked()
                        {
                            commands.push(Command::MergeClass {
                                from: c.value,
                                into: other.value,
                            });
                        }
                    }
                    if ui.button("remove (erases its pixels)").clicked() {
                        commands.push(Command::RemoveClass { value: c.value });
                    }
                });
                ui.end_row();
            }
        });
        if ui.button("Add class").clicked() {
            commands.push(Command::AddClass);
        }
        for c in commands {
            cx.send(AppCommand::Label(c));
        }
    }
}
