//! The backbone and Stage A panel (the right panel's first half): which backbone the runs use (with its
//! trainable fraction and the device, and why that device), and Stage A —
//! presets, settings, Run / Cancel, progress with ETA and the loss of every
//! step as a live plot. Stage B's settings follow in the classification
//! panel.

use eframe::egui::{self, RichText};
use egui_plot::{Line, Plot, PlotPoints};

use super::command::AppCommand;
use super::view_context::ViewContext;
use super::vocabulary::FileAction;
use crate::jobs::AdaptSettings;
use crate::jobs::backbone::{BackboneSpec, DeviceChoice, UNetConfig, file_name, stage_a_counts};
use crate::pipeline::Modality;

/// The backbone in plain words.
pub fn backbone_words(spec: &BackboneSpec) -> String {
    let adapter = spec
        .adapter()
        .map_or(String::new(), |p| format!(" + adapter {}", file_name(p)));
    match spec {
        BackboneSpec::Checkpoint { path, .. } => format!("checkpoint {}{adapter}", file_name(path)),
        BackboneSpec::Random { name, seed, .. } => format!(
            "{name} (seed {seed}; random weights, not the paper's pretrained model){adapter}"
        ),
    }
}

/// One checkbox per modality; the list stays in pRGB, PCA, SAR order.
pub(crate) fn modality_checkboxes(ui: &mut egui::Ui, modalities: &mut Vec<Modality>) {
    ui.horizontal(|ui| {
        ui.label("modalities");
        for m in Modality::ALL {
            let mut on = modalities.contains(&m);
            if ui.checkbox(&mut on, m.name()).changed() {
                if on {
                    modalities.push(m);
                    modalities.sort_by_key(|x| Modality::ALL.iter().position(|y| y == x));
                } else {
                    modalities.retain(|x| *x != m);
                }
            }
        }
    });
}

/// Which backbone and device the runs use, and Stage A.
#[derive(Default)]
pub struct BackbonePanel {
    /// The backbone layout and its "Stage A trains ..." line, worked out
    /// once per backbone.
    counts: Option<(UNetConfig, String)>,
}

impl BackbonePanel {
    pub fn ui(&mut self, ui: &mut egui::Ui, cx: &ViewContext) {
        ui.heading("Backbone");
        let mut settings = cx.store.classify_settings.clone();
        let spec = settings.backbone.clone();
        ui.label(backbone_words(&spec));
        // The parameter counts of the layout, worked out once per backbone.
        let config = spec.config().ok();
        if self.counts.as_ref().map(|(c, _)| c) != config.as_ref() {
            self.counts = config.map(|c| {
                let line = stage_a_counts(&c);
                (c, line)
            });
        }
        if let Some((_, line)) = &self.counts {
            ui.label(RichText::new(line).small());
        }
        let busy = cx.jobs.adapting.is_some();
        ui.horizontal(|ui| {
            ui.label("device");
            for choice in DeviceChoice::ALL {
                let compiled = choice.compiled();
                let r = ui
                    .add_enabled(
                        compiled,
                        egui::Button::selectable(settings.device == choice, choice.name()),
                    )
                    .on_disabled_hover_text(format!(
                        "this build has no {} backend (build with --features {})",
                        choice.name(),
                        choice.name().to_lowercase()
                    ));
                if r.clicked() {
                    settings.device = choice;
                }
            }
        });
        let in_use = match &cx.store.last_device {
            Some(d) => format!("last job ran on {d}"),
            None => "resolved when a job starts (auto: CUDA, else wgpu, else the CPU)".into(),
        };
        ui.label(RichText::new(in_use).small().weak());
        ui.add_enabled_ui(!busy, |ui| {
            ui.horizontal_wrapped(|ui| {
                for (label, name, hover) in [
                    (
                        "tiny random",
                        "tiny-random",
                        "a small random U-Net: fast, for teaching and tests",
                    ),
                    (
                        "random ImageNet-64",
                        "random",
                        "the paper's layout with random weights",
                    ),
                ] {
                    if ui.small_button(label).on_hover_text(hover).clicked() {
                        settings.backbone = BackboneSpec::Random {
                            name: name.into(),
                            seed: 0,
                            adapter: None,
                        };
                    }
                }
                if cx.jobs.downloading.is_none()
                    && ui
                        .small_button("Get the paper's backbone")
                        .on_hover_text(format!(
                            "downloads guided-diffusion's ImageNet 64x64 checkpoint (1.2 GB) from {} into {}, checks it and uses it; an interrupted download resumes",
                            cx.store.backbone_request.url,
                            cx.store.backbone_request.dir.display()
                        ))
                        .clicked()
                {
                    cx.send(AppCommand::GetBackbone(Box::new(cx.store.backbone_request.clone())));
                }
                if ui
                    .small_button("Import checkpoint…")
                    .on_hover_text("guided-diffusion .pt (the paper's 64x64_diffusion.pt)")
                    .clicked()
                {
                    cx.send(AppCommand::PickFile(FileAction::ImportCheckpoint));
                }
                if ui.small_button("Load adapter…").clicked() {
                    cx.send(AppCommand::PickFile(FileAction::LoadAdapter));
                }
                if spec.adapter().is_some() && ui.small_button("Base weights").clicked() {
                    cx.send(AppCommand::UseAdapter(None));
                }
            });
        });
        if let Some(d) = &cx.jobs.downloading {
            ui.horizontal(|ui| {
                let text = format!("{} ({:.0} s)", d.step, d.started.elapsed().as_secs_f32());
                ui.add(egui::ProgressBar::new(d.fraction).text(text));
                if ui.button("Cancel download").clicked() {
                    cx.send(AppCommand::CancelGetBackbone);
                }
            });
        }
        if settings != cx.store.classify_settings {
            cx.send(AppCommand::SetClassifySettings(Box::new(settings)));
        }
        ui.separator();
        ui.heading("Stage A: adaptation");
        let mut adapt = cx.store.adapt_settings.clone();
        let s = &mut adapt;
        ui.add_enabled_ui(!busy, |ui| {
            ui.horizontal(|ui| {
                if ui
                    .selectable_label(*s == AdaptSettings::paper(), "paper")
                    .on_hover_text("2000 steps of 32 patches, lr 1e-4 (hours on a CPU)")
                    .clicked()
                {
                    *s = AdaptSettings::paper();
                }
                if ui
                    .selectable_label(*s == AdaptSettings::quick(), "quick look")
                    .on_hover_text("40 steps of 4 patches: watch the loss move")
                    .clicked()
                {
                    *s = AdaptSettings::quick();
                }
            });
            ui.horizontal(|ui| {
                ui.label("steps");
                ui.add(egui::DragValue::new(&mut s.steps).range(1..=100_000));
                ui.label("batch");
                ui.add(egui::DragValue::new(&mut s.batch).range(1..=256));
            });
            ui.horizontal(|ui| {
                ui.label("lr");
                ui.add(
                    egui::DragValue::new(&mut s.lr)
                        .range(1e-6..=1e-2)
                        .speed(1e-5)
                        .max_decimals(6),
                );
                ui.label("seed");
                ui.add(egui::DragValue::new(&mut s.seed));
            });
            modality_checkboxes(ui, &mut s.modalities);
        });
        if adapt != cx.store.adapt_settings {
            cx.send(AppCommand::SetAdaptSettings(Box::new(adapt)));
        }
        match &cx.jobs.adapting {
            Some(a) => {
                let text = format!("{} ({:.0} s)", a.step, a.started.elapsed().as_secs_f32());
                ui.add(egui::ProgressBar::new(a.fraction).text(text));
                if ui.button("Cancel Stage A").clicked() {
                    cx.send(AppCommand::CancelAdapt);
                }
            }
            None => {
                let ready =
                    cx.store.session.is_some() && !cx.store.adapt_settings.modalities.is_empty();
                if ui
                    .add_enabled(ready, egui::Button::new("Run Stage A"))
                    .on_hover_text(
                        "adapts the FiLM generators and the modality embedding on this scene's patches",
                    )
                    .clicked()
                {
                    cx.send(AppCommand::Adapt);
                }
            }
        }
        if !cx.store.adapt_curve.is_empty() {
            let points: Vec<[f64; 2]> = cx
                .store
                .adapt_curve
                .iter()
                .enumerate()
                .map(|(i, &l)| [(i + 1) as f64, f64::from(l)])
                .collect();
            Plot::new("stage_a_loss")
                .height(110.0)
                .x_axis_label("step")
                .y_axis_label("loss")
                .allow_scroll(false)
                .show(ui, |plot| {
                    plot.line(Line::new("loss", PlotPoints::new(points)))
                });
        }
    }
}
