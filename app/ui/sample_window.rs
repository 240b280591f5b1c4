//! The sample window: labelling a validation sample's points in the app.
//! One point at a time, the map centred on it (its marker ringed), a button
//! per class for its reference class; each label is written back to the
//! sample's GeoPackage at once, and the next unlabelled point follows. The
//! class maps are hidden while labelling and the point's map class is not
//! shown, so the map does not sway the reference (good practice for an
//! accuracy assessment).

use eframe::egui::{self, Color32, RichText};

use super::command::AppCommand;
use super::view_context::ViewContext;

/// The window is open while the store holds a sample.
#[derive(Default)]
pub struct SampleWindow;

impl SampleWindow {
    pub fn ui(&mut self, ctx: &egui::Context, cx: &ViewContext) {
        let (Some(sample), Some(session)) = (&cx.store.sample, &cx.store.session) else {
            return;
        };
        let mut open = true;
        egui::Window::new("Validation sample")
            .open(&mut open)
            .default_width(360.0)
            .show(ctx, |ui| {
                let n = sample.points.len();
                let name = sample
                    .path
                    .file_name()
                    .map_or_else(String::new, |f| f.to_string_lossy().to_string());
                ui.label(
                    RichText::new(format!(
                        "{name}: {} of {n} points labelled{}",
                        sample.labelled(),
                        if sample.unsaved { " (writing…)" } else { "" }
                    ))
                    .strong(),
                );
                if sample.outside > 0 {
                    ui.label(
                        RichText::new(format!("{} points lie outside the scene", sample.outside))
                            .small()
                            .weak(),
                    );
                }
                let Some(p) = sample.points.get(sample.current) else {
                    return;
                };
                ui.label(format!(
                    "point {} of {n}: row {}, column {}",
                    sample.current + 1,
                    p.row,
                    p.col
                ));
                let reference = p.reference.map_or_else(
                    || "not labelled".to_string(),
                    |v| crate::scene::class_name(&session.classes, v),
                );
                ui.label(format!("reference: {reference}"));
                ui.label("what is at the ringed pixel? (a button, or the class's digit key)");
                ui.horizontal_wrapped(|ui| {
                    for c in &session.classes {
                        let [r, g, b] = c.color;
                        let text = RichText::new(&c.name).color(if p.reference == Some(c.value) {
                            Color32::WHITE
                        } else {
                            ui.visuals().text_color()
                        });
                        let button = egui::Button::new(text)
                            .fill(if p.reference == Some(c.value) {
                                Color32::from_rgb(r, g, b)
                            } else {
                                ui.visuals().widgets.inactive.weak_bg_fill
                            })
                            .stroke(egui::Stroke::new(2.0, Color32::from_rgb(r, g, b)));
                        if ui.add(button).clicked() {
                            cx.send(AppCommand::SetSampleReference(Some(c.value)));
                        }
                    }
                    if ui
                        .add_enabled(p.reference.is_some(), egui::Button::new("Clear"))
                        .clicked()
                    {
                        cx.send(AppCommand::SetSampleReference(None));
                    }
                });
                ui.horizontal(|ui| {
                    let i = sample.current;
                    if ui.add_enabled(i > 0, egui::Button::new("< Previous")).clicked() {
                        cx.send(AppCommand::GoToSamplePoint(i - 1));
                    }
                    if ui.add_enabled(i + 1 < n, egui::Button::new("Next >")).clicked() {
                        cx.send(AppCommand::GoToSamplePoint(i + 1));
                    }
                    let next = sample.next_unlabelled((i + 1) % n.max(1));
                    if ui
                        .add_enabled(next.is_some(), egui::Button::new("Next unlabelled"))
                        .clicked()
                        && let Some(j) = next
                    {
                        cx.send(AppCommand::GoToSamplePoint(j));
                    }
                });
                ui.separator();
                let scored = cx.store.session.as_ref().is_some_and(|s| s.result.is_some());
                if ui
                    .add_enabled(
                        scored && sample.labelled() > 0,
                        egui::Button::new("Accuracy from these points"),
                    )
                    .on_hover_text("the shown map's area-adjusted accuracy from the labelled points (the results window shows it)")
                    .clicked()
                {
                    cx.send(AppCommand::ScoreWithSample(sample.path.clone()));
                }
                ui.label(
                    RichText::new("labels are written to the sample's file as you go; the class maps are hidden while you label (the Layers panel shows them)")
                        .small()
                        .weak(),
                );
            });
        if !open {
            cx.send(AppCommand::CloseSample);
        }
    }
}
