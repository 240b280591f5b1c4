//! The status bar: the load in progress, the tool, the zoom, the pixel
//! under the pointer with its map coordinates and values, and whether the
//! labels are saved.

use eframe::egui::{self, RichText};

use super::command::AppCommand;
use super::layers::LayerId;
use super::view_context::ViewContext;
use super::vocabulary::Tool;
use crate::scene::LabelLayer;

/// The bar along the window's bottom.
#[derive(Default)]
pub struct StatusBar;

impl StatusBar {
    pub fn ui(&mut self, ui: &mut egui::Ui, cx: &ViewContext) {
        ui.horizontal(|ui| {
            if let Some(l) = &cx.jobs.loading {
                ui.add(
                    egui::ProgressBar::new(l.fraction)
                        .desired_width(180.0)
                        .text(format!(
                            "{} ({:.0} s)",
                            l.step,
                            l.started.elapsed().as_secs_f32()
                        )),
                );
                if ui.button("Cancel").clicked() {
                    cx.send(AppCommand::CancelLoad);
                }
                ui.separator();
            }
            let Some(s) = &cx.store.session else {
                ui.label("no scene open");
                return;
            };
            let tool = match cx.store.tool {
                Tool::Inspect => "inspect (I)".to_string(),
                Tool::Brush => format!(
                    "brush {} px, class {}",
                    cx.store.brush_size, cx.store.active_class
                ),
                Tool::Eraser => format!("eraser {} px", cx.store.brush_size),
            };
            ui.label(tool);
            ui.separator();
            ui.label(format!("zoom {:.0} %", cx.map.view.zoom * 100.0));
            ui.separator();
            match cx.store.hovered {
                Some((row, col)) => {
                    ui.label(format!("row {row}, col {col}"));
                    if let Some(grid) = s.scene.grid()
                        && let Some((x, y)) = grid.map_from_pixel(row as f64, col as f64)
                    {
                        ui.separator();
                        ui.label(format!(
                            "{x:.2}, {y:.2} {}",
                            grid.crs_name.as_deref().unwrap_or("(CRS unknown)")
                        ));
                    }
                    ui.separator();
                    ui.label(value_under(cx, row, col));
                }
                None => {
                    ui.label("pointer outside the scene");
                }
            }
            if s.has_unsaved_labels() {
                ui.separator();
                ui.label(RichText::new("labels not saved").italics());
            }
        });
    }
}

/// What the top visible layer holds at (row, col), in words.
fn value_under(cx: &ViewContext, row: usize, col: usize) -> String {
    let Some(s) = &cx.store.session else {
        return String::new();
    };
    let mut parts = Vec::new();
    for layer in LabelLayer::ALL {
        if let Some(l) = s.scene.labels(layer) {
            let v = l.data[row * l.grid.width + col];
            if v != 0 {
                let name = s
                    .classes
                    .iter()
                    .find(|c| c.value == v)
                    .map(|c| c.name.as_str())
                    .unwrap_or("?");
                parts.push(format!("{}: {name}", layer.name()));
            }
        }
    }
    for l in cx.store.layers.layers.iter().rev().filter(|l| l.visible) {
        let image = match l.id {
            LayerId::Prgb => s.renderings.prgb.as_ref().map(|(i, _)| i),
            LayerId::Pca => s.renderings.pca.as_ref().map(|(i, _)| i),
            LayerId::Pauli => s.renderings.pauli.as_ref(),
            _ => None,
        };
        if let Some(i) = image {
            let [r, g, b] = i.pixel(row, col);
            parts.push(format!("{} RGB {r} {g} {b}", l.id.name()));
            break;
        }
    }
    parts.join(" · ")
}
