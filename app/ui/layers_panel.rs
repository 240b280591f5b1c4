//! The layer list (visibility, opacity, order) and the stretch editor of
//! the selected rendering: its band choice (pRGB), per-channel histograms
//! and display limits.

use eframe::egui::{self, Color32, RichText};
use egui_plot::{Line, Plot, PlotPoints, VLine};

use super::command::AppCommand;
use super::layers::{LayerId, source_value};
use super::view_context::ViewContext;
use super::vocabulary::ChannelHistograms;

/// The left panel.
#[derive(Default)]
pub struct LayersPanel {
    /// Per-channel histograms of the rendering in the stretch editor, for
    /// (layer, renderings version).
    histograms: Option<(LayerId, u64, Box<ChannelHistograms>)>,
}

impl LayersPanel {
    pub fn ui(&mut self, ui: &mut egui::Ui, cx: &ViewContext) {
        ui.heading("Layers");
        ui.label(RichText::new("top is drawn last").small().weak());
        let Some(session) = &cx.store.session else {
            return;
        };
        let available = |id: LayerId| super::layers::available(session, id);
        let n = cx.store.layers.layers.len();
        for (pos, shown) in cx.store.layers.layers.iter().enumerate().rev() {
            let enabled = available(shown.id);
            let mut layer = shown.clone();
            ui.horizontal(|ui| {
                ui.add_enabled(
                    enabled,
                    egui::Checkbox::new(&mut layer.visible, layer.id.name()),
                )
                .on_hover_text("visible");
                let selected = cx.store.selected_layer == layer.id;
                if !layer.id.is_labels()
                    && ui
                        .add_enabled(enabled, egui::Button::selectable(selected, "◑").small())
                        .on_hover_text("stretch and histogram")
                        .clicked()
                {
                    cx.send(AppCommand::SelectLayer(layer.id));
                }
                if ui
                    .add_enabled(pos + 1 < n, egui::Button::new("⏶").small())
                    .on_hover_text("raise")
                    .clicked()
                {
                    cx.send(AppCommand::MoveLayer(layer.id, true));
                }
                if ui
                    .add_enabled(pos > 0, egui::Button::new("⏷").small())
                    .on_hover_text("lower")
                    .clicked()
                {
                    cx.send(AppCommand::MoveLayer(layer.id, false));
                }
            });
            if enabled {
                ui.add(egui::Slider::new(&mut layer.opacity, 0.0..=1.0).text("opacity"));
            }
            if layer != *shown {
                cx.send(AppCommand::EditLayer(layer));
            }
        }
        ui.separator();
        self.stretch_editor(ui, cx);
    }

    /// Histogram and stretch limits of the selected rendering.
    fn stretch_editor(&mut self, ui: &mut egui::Ui, cx: &ViewContext) {
        let id = cx.store.selected_layer;
        let Some(session) = &cx.store.session else {
            return;
        };
        let image = match id {
            LayerId::Prgb => session.renderings.prgb.as_ref().map(|(i, _)| i),
            LayerId::Pca => session.renderings.pca.as_ref().map(|(i, _)| i),
            LayerId::Pauli => session.renderings.pauli.as_ref(),
            _ => None,
        };
        let Some(image) = image else {
            ui.label(RichText::new("select a rendering for its stretch").weak());
            return;
        };
        ui.strong(format!("{} stretch", id.name()));
        if let Some((_, bands)) = &session.renderings.prgb
            && id == LayerId::Prgb
            && let Some(cube) = &session.scene.hsi
        {
            ui.label(RichText::new(bands.reason.clone()).small().weak());
            let name = |b: usize| match &cube.wavelengths_nm {
                Some(wl) => format!(
                    "{:.0} nm (band {b})",
                    wl.get(b).copied().unwrap_or(f64::NAN)
                ),
                None => match cube.band_names.get(b).filter(|n| !n.is_empty()) {
                    Some(n) => format!("band {b} ({n})"),
                    None => format!("band {b}"),
                },
            };
            let mut chosen = bands.bands;
            for (c, channel) in ["R", "G", "B"].iter().enumerate() {
                egui::ComboBox::from_label(*channel)
                    .selected_text(name(chosen[c]))
                    .height(300.0)
                    .show_ui(ui, |ui| {
                        for b in 0..cube.bands {
                            ui.selectable_value(&mut chosen[c], b, name(b));
                        }
                    });
            }
            if chosen != bands.bands {
                cx.send(AppCommand::SetPrgbBands(chosen));
                return;
            }
        }
        let version = cx.map.renderings_version;
        let cached = matches!(&self.histograms, Some((l, v, _)) if *l == id && *v == version);
        if !cached {
            let mut hist = Box::new([[0u32; 256]; 3]);
            for p in image.data.chunks_exact(3) {
                for c in 0..3 {
                    hist[c][p[c] as usize] += 1;
                }
            }
            self.histograms = Some((id, version, hist));
        }
        let Some((_, _, hist)) = &self.histograms else {
            return;
        };
        let colors = [
            Color32::from_rgb(220, 60, 60),
            Color32::from_rgb(60, 180, 60),
            Color32::from_rgb(70, 110, 230),
        ];
        let Some(shown) = cx.store.layers.get(id) else {
            return;
        };
        let mut layer = shown.clone();
        for c in 0..3 {
            let stretch = image.stretch.get(c);
            let title = stretch
                .map(|s| format!("{}: {}", s.channel, s.source))
                .unwrap_or_else(|| format!("channel {c}"));
            ui.label(RichText::new(title).small());
            let points: Vec<[f64; 2]> = hist[c]
                .iter()
                .enumerate()
                .map(|(v, n)| [v as f64 / 255.0, (*n as f64 + 1.0).ln()])
                .collect();
            let (lo, hi) = (layer.lo[c], layer.hi[c]);
            Plot::new(format!("hist {id:?} {c}"))
                .height(60.0)
                .show_axes([false, false])
                .show_grid(false)
                .allow_drag(false)
                .allow_zoom(false)
                .allow_scroll(false)
                .show(ui, |plot| {
                    plot.line(
                        Line::new("count (log)", PlotPoints::new(points))
                            .color(colors[c])
                            .fill(0.0),
                    );
                    plot.vline(VLine::new("low", lo as f64).color(Color32::WHITE));
                    plot.vline(VLine::new("high", hi as f64).color(Color32::WHITE));
                });
            ui.horizontal(|ui| {
                ui.add(
                    egui::DragValue::new(&mut layer.lo[c])
                        .range(0.0..=1.0)
                        .speed(0.005)
                        .prefix("low "),
                );
                ui.add(
                    egui::DragValue::new(&mut layer.hi[c])
                        .range(0.0..=1.0)
                        .speed(0.005)
                        .prefix("high "),
                );
            });
            if let Some(s) = stretch {
                ui.label(
                    RichText::new(format!(
                        "= {:.4} .. {:.4} in source units ({})",
                        source_value(s, layer.lo[c]),
                        source_value(s, layer.hi[c]),
                        if s.exact { "exact 2-98 %" } else { "estimated" }
                    ))
                    .small()
                    .weak(),
                );
            }
            if layer.hi[c] <= layer.lo[c] {
                layer.hi[c] = (layer.lo[c] + 0.01).min(1.0);
            }
        }
        if ui
            .add_enabled(
                !layer.is_default_stretch(),
                egui::Button::new("Reset to 2–98 %"),
            )
            .clicked()
        {
            layer.reset_stretch();
        }
        if layer != *shown {
            cx.send(AppCommand::EditLayer(layer));
        }
    }
}
