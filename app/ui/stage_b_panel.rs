//! The classification panel: Stage B's settings (timestep, block,
//! modalities, head, stride, forest), Run / Cancel / auto-classify, progress
//! with ETA, and the "label here next" suggestions.

use eframe::egui;

use super::command::AppCommand;
use super::view_context::ViewContext;
use super::vocabulary::Window;
use crate::pipeline::classification::ClassifierChoice;

/// Stage B's settings and runs.
#[derive(Default)]
pub struct StageBPanel {
    /// The label curve's sizes as typed (applied when they parse).
    curve_text: Option<String>,
}

/// The label curve's points when it is first switched on.
const DEFAULT_CURVE: [usize; 5] = [10, 25, 50, 100, 200];

/// Labels per class from "10, 25, 50": None unless every entry is a
/// number above 0.
fn parse_curve(text: &str) -> Option<Vec<usize>> {
    let sizes: Option<Vec<usize>> = text
        .split(',')
        .map(|v| v.trim().parse::<usize>().ok().filter(|&n| n > 0))
        .collect();
    sizes.filter(|s| !s.is_empty())
}

impl StageBPanel {
    pub fn ui(&mut self, ui: &mut egui::Ui, cx: &ViewContext) {
        ui.heading("Classification");
        let mut settings = cx.store.classify_settings.clone();
        if settings.label_curve.is_empty() {
            self.curve_text = None;
        }
        let s = &mut settings;
        ui.add(egui::Slider::new(&mut s.t, 0..=999).text("timestep t"));
        super::backbone_panel::modality_checkboxes(ui, &mut s.modalities);
        ui.horizontal(|ui| {
            ui.selectable_value(
                &mut s.classifier,
                ClassifierChoice::Mlp,
                "diffusion features + MLP",
            );
            ui.selectable_value(
                &mut s.classifier,
                ClassifierChoice::FilterRf,
                "forest + filters",
            )
            .on_hover_text(ClassifierChoice::FilterRf.label());
            ui.selectable_value(&mut s.classifier, ClassifierChoice::Rf, "forest")
                .on_hover_text(ClassifierChoice::Rf.label());
        });
        if s.classifier == ClassifierChoice::Mlp {
            ui.checkbox(&mut s.baseline, "both random forests beside it");
            ui.horizontal(|ui| {
                ui.label("block L");
                let mut block = s.block.map_or(-1, |b| b as i64);
                if ui
                    .add(egui::DragValue::new(&mut block).range(-1..=17))
                    .on_hover_text("output block whose features are taken; -1 = 11, or the last block of a smaller backbone")
                    .changed()
                {
                    s.block = usize::try_from(block).ok();
                }
                ui.label("head");
                for (name, hidden) in [("128-32 (Berlin)", vec![128, 32]), ("128 (Augsburg)", vec![128])] {
                    if ui.selectable_label(s.mlp_hidden == hidden, name).clicked() {
                        s.mlp_hidden = hidden;
                    }
                }
            });
            ui.horizontal(|ui| {
                let mut on = !s.label_curve.is_empty();
                if ui
                    .checkbox(&mut on, "label curve")
                    .on_hover_text("also train the head on nested subsets of this many labels per class (3 draws each) and score each map on the test labels: accuracy against the number of labels, in the results")
                    .changed()
                {
                    s.label_curve = if on { DEFAULT_CURVE.to_vec() } else { Vec::new() };
                    self.curve_text = None;
                }
                if on {
                    let text = self.curve_text.get_or_insert_with(|| {
                        s.label_curve
                            .iter()
                            .map(|n| n.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    });
                    let edit = ui.add(egui::TextEdit::singleline(text).desired_width(140.0));
                    match parse_curve(text) {
                        Some(sizes) => s.label_curve = sizes,
                        None => {
                            edit.on_hover_text("labels per class, e.g. 10, 25, 50");
                            ui.colored_label(ui.visuals().warn_fg_color, "numbers above 0, comma-separated");
                        }
                    }
                }
            });
        }
        ui.horizontal(|ui| {
            let mut stride = s.stride.unwrap_or(0);
            ui.label("patch stride");
            if ui
                .add(egui::DragValue::new(&mut stride).range(0..=64))
                .on_hover_text("0 = half the patch (the method)")
                .changed()
            {
                s.stride = (stride > 0).then_some(stride);
            }
            ui.label("seed");
            ui.add(egui::DragValue::new(&mut s.seed));
        });
        let mut auto = cx.store.auto_classify;
        if ui
            .checkbox(&mut auto, "classify again after each stroke")
            .on_hover_text("re-runs the classification a moment after the labels change; a run still going is dropped")
            .changed()
        {
            cx.send(AppCommand::SetAutoClassify(auto));
        }
        if auto {
            ui.indent("live update", |ui| {
                ui.checkbox(
                    &mut settings.live_keeps_first_layer,
                    "keep the head's first layer",
                )
                .on_hover_text(
                    "after a stroke, only the layers after the head's first one train again, \
                     and the map reuses that layer's outputs: several times faster with a \
                     backbone wider than that layer (the paper's: 1,152 channels against 128); \
                     with a narrower one the whole head continues. Classify still trains the \
                     whole head",
                );
            });
        }
        if settings != cx.store.classify_settings {
            cx.send(AppCommand::SetClassifySettings(Box::new(settings)));
        }
        if ui.button("Timestep explorer…").clicked() {
            cx.send(AppCommand::ShowWindow(Window::Explorer));
        }
        match &cx.jobs.classifying {
            Some(c) => {
                let text = format!("{} ({:.0} s)", c.step, c.started.elapsed().as_secs_f32());
                ui.add(egui::ProgressBar::new(c.fraction).text(text));
                if ui.button("Cancel").clicked() {
                    cx.send(AppCommand::CancelClassify);
                }
            }
            None => {
                ui.horizontal(|ui| {
                    if ui.button("Classify").clicked() {
                        cx.send(AppCommand::Classify);
                    }
                    if ui
                        .button("Modality ablation (7 runs)")
                        .on_hover_text("Stage B with each subset of pRGB, PCA and SAR")
                        .clicked()
                    {
                        cx.send(AppCommand::ClassifyAblation);
                    }
                });
            }
        }
        if let Some(r) = cx.store.session.as_ref().and_then(|s| s.result.as_ref()) {
            let stale = cx
                .store
                .session
                .as_ref()
                .is_some_and(|s| s.labels_revision != r.labels_revision);
            let oa = r
                .outcome
                .main_result()
                .and_then(|m| m.metrics.as_ref())
                .map(|m| format!("OA {:.3}", m.oa))
                .unwrap_or_else(|| "no test labels to score".into());
            ui.label(format!(
                "last map ({}): {oa}, {:.0} s{}",
                r.outcome.classifier.name(),
                r.seconds,
                if stale { " (labels changed since)" } else { "" }
            ));
            if let Some(rec) = &r.outcome.recommendation {
                ui.label(egui::RichText::new(format!("recommended: {}", rec.best.label())).small())
                    .on_hover_text(rec.sentence());
            }
            if ui.button("Results…").clicked() {
                cx.send(AppCommand::ShowWindow(Window::Results));
            }
            if !cx.store.suggestions.is_empty() {
                ui.label("where to label next (N jumps to the next):");
                let mut go = None;
                for (i, r) in cx.store.suggestions.iter().enumerate() {
                    if ui
                        .small_button(format!(
                            "{}: rows {}..{}, cols {}..{} (uncertainty {:.2})",
                            i + 1,
                            r.y,
                            r.y + r.side,
                            r.x,
                            r.x + r.side,
                            r.uncertainty
                        ))
                        .clicked()
                    {
                        go = Some(i);
                    }
                }
                if let Some(i) = go {
                    cx.send(AppCommand::GoToSuggestion(i));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_curve;

    #[test]
    fn curve_sizes_parse_or_are_refused_whole() {
        assert_eq!(parse_curve("10, 25,50"), Some(vec![10, 25, 50]));
        assert_eq!(parse_curve("10, 0"), None);
        assert_eq!(parse_curve("10, x"), None);
        assert_eq!(parse_curve(""), None);
    }
}
