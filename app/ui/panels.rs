//! The panels around the map: menu, status bar, layer list with stretch
//! histograms, class editor with brush settings, and the start page.

use eframe::egui::{self, Color32, RichText};
use egui_plot::{Line, Plot, PlotPoints, VLine};

use super::app::{FileAction, StudioApp, Tool};
use super::command::AppCommand;
use super::layers::{LayerId, source_value};
use crate::jobs::LoadRequest;
use crate::scene::LabelLayer;
use crate::session::Command;

impl StudioApp {
    pub(crate) fn menu_bar(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Open HSI…").clicked() {
                    self.send(AppCommand::PickFile(FileAction::OpenHsi));
                }
                if ui.button("Open SAR…").clicked() {
                    self.send(AppCommand::PickFile(FileAction::OpenSar));
                }
                let has_scene = self.session.is_some();
                ui.add_enabled_ui(has_scene, |ui| {
                    if ui.button("Open training labels…").clicked() {
                        self.send(AppCommand::PickFile(FileAction::OpenLabels(
                            LabelLayer::Train,
                        )));
                    }
                    if ui.button("Open test labels…").clicked() {
                        self.send(AppCommand::PickFile(FileAction::OpenLabels(
                            LabelLayer::Test,
                        )));
                    }
                });
                if ui.button("Open demo scene").clicked() {
                    self.send(AppCommand::OpenDemo);
                }
                ui.menu_button("Recent", |ui| self.recent_list(ui));
                ui.separator();
                ui.add_enabled_ui(has_scene, |ui| {
                    if ui.button("Save training labels").clicked() {
                        let saved = self
                            .session
                            .as_ref()
                            .and_then(|s| s.sources.train_labels.clone());
                        match saved {
                            Some(p) => self.send(AppCommand::SaveLabels(LabelLayer::Train, p)),
                            None => self.send(AppCommand::PickFile(FileAction::SaveLabels(
                                LabelLayer::Train,
                            ))),
                        }
                    }
                    if ui.button("Export training labels as…").clicked() {
                        self.send(AppCommand::PickFile(FileAction::SaveLabels(
                            LabelLayer::Train,
                        )));
                    }
                    if ui.button("Export test labels as…").clicked() {
                        self.send(AppCommand::PickFile(FileAction::SaveLabels(
                            LabelLayer::Test,
                        )));
                    }
                });
                ui.separator();
                if ui
                    .add(egui::Button::new("Quit").shortcut_text("Ctrl+Q"))
                    .clicked()
                {
                    self.send(AppCommand::Quit { confirmed: false });
                }
            });
            ui.menu_button("Edit", |ui| {
                let (undo, redo) = self
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
                    self.send(AppCommand::Label(Command::Undo));
                }
                let redo_text = format!("Redo {}", redo.clone().unwrap_or_default());
                if ui
                    .add_enabled(
                        redo.is_some(),
                        egui::Button::new(redo_text).shortcut_text("Ctrl+Shift+Z"),
                    )
                    .clicked()
                {
                    self.send(AppCommand::Label(Command::Redo));
                }
            });
            ui.menu_button("View", |ui| {
                if ui.button("Fit scene (F)").clicked() {
                    self.map.fit_pending = true;
                }
                if ui
                    .add_enabled(
                        self.session.is_some(),
                        egui::Button::new("Export view as PNG…"),
                    )
                    .clicked()
                {
                    self.send(AppCommand::PickFile(FileAction::ExportViewPng));
                }
                let mut dark = self.prefs.dark;
                if ui.checkbox(&mut dark, "Dark theme").changed() {
                    self.prefs.dark = dark;
                    ui.ctx().set_theme(if dark {
                        egui::Theme::Dark
                    } else {
                        egui::Theme::Light
                    });
                }
                if ui.button("Keyboard shortcuts (?)").clicked() {
                    self.show_shortcuts = true;
                }
            });
        });
    }

    fn recent_list(&mut self, ui: &mut egui::Ui) {
        if self.prefs.recent.is_empty() {
            ui.label("nothing yet");
        }
        for r in self.prefs.recent.clone() {
            if ui.button(&r.title).clicked() {
                if r.demo {
                    self.send(AppCommand::OpenDemo);
                } else {
                    self.send(AppCommand::Open(LoadRequest {
                        hsi: r.hsi.clone(),
                        sar: r.sar.clone(),
                        title: r.title.clone(),
                        ..LoadRequest::default()
                    }));
                }
            }
        }
    }

    pub(crate) fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            if let Some(l) = &self.loading {
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
                    self.send(AppCommand::CancelLoad);
                }
                ui.separator();
            }
            let Some(s) = &self.session else {
                ui.label("no scene open");
                return;
            };
            let tool = match self.tool {
                Tool::Inspect => "inspect (I)".to_string(),
                Tool::Brush => format!("brush {} px, class {}", self.brush_size, self.active_class),
                Tool::Eraser => format!("eraser {} px", self.brush_size),
            };
            ui.label(tool);
            ui.separator();
            ui.label(format!("zoom {:.0} %", self.map.view.zoom * 100.0));
            ui.separator();
            match self.hovered {
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
                    ui.label(self.value_under(row, col));
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

    /// What the top visible layer holds at (row, col), in words.
    fn value_under(&self, row: usize, col: usize) -> String {
        let Some(s) = &self.session else {
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
        for l in self.layers.layers.iter().rev().filter(|l| l.visible) {
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

    pub(crate) fn layers_panel(&mut self, ui: &mut egui::Ui) {
        ui.heading("Layers");
        ui.label(RichText::new("top is drawn last").small().weak());
        let Some(session) = &self.session else {
            return;
        };
        let available = |id: LayerId| super::layers::available(session, id);
        let mut raise = None;
        let mut lower = None;
        let n = self.layers.layers.len();
        for (pos, layer) in self.layers.layers.iter_mut().enumerate().rev() {
            let enabled = available(layer.id);
            ui.horizontal(|ui| {
                ui.add_enabled(
                    enabled,
                    egui::Checkbox::new(&mut layer.visible, layer.id.name()),
                )
                .on_hover_text("visible");
                let selected = self.selected_layer == layer.id;
                if !layer.id.is_labels()
                    && ui
                        .add_enabled(enabled, egui::Button::selectable(selected, "◑").small())
                        .on_hover_text("stretch and histogram")
                        .clicked()
                {
                    self.selected_layer = layer.id;
                }
                if ui
                    .add_enabled(pos + 1 < n, egui::Button::new("⏶").small())
                    .on_hover_text("raise")
                    .clicked()
                {
                    raise = Some(layer.id);
                }
                if ui
                    .add_enabled(pos > 0, egui::Button::new("⏷").small())
                    .on_hover_text("lower")
                    .clicked()
                {
                    lower = Some(layer.id);
                }
            });
            if enabled {
                ui.add(egui::Slider::new(&mut layer.opacity, 0.0..=1.0).text("opacity"));
            }
        }
        if let Some(id) = raise {
            self.layers.raise(id);
        }
        if let Some(id) = lower {
            self.layers.lower(id);
        }
        ui.separator();
        self.stretch_editor(ui);
    }

    /// Histogram and stretch limits of the selected rendering.
    fn stretch_editor(&mut self, ui: &mut egui::Ui) {
        let id = self.selected_layer;
        let Some(session) = &self.session else {
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
                self.send(AppCommand::SetPrgbBands(chosen));
                return;
            }
        }
        let version = self.map.renderings_version;
        let cached = matches!(&self.histogram_cache, Some((l, v, _)) if *l == id && *v == version);
        if !cached {
            let mut hist = Box::new([[0u32; 256]; 3]);
            for p in image.data.chunks_exact(3) {
                for c in 0..3 {
                    hist[c][p[c] as usize] += 1;
                }
            }
            self.histogram_cache = Some((id, version, hist));
        }
        let Some((_, _, hist)) = &self.histogram_cache else {
            return;
        };
        let hist = hist.clone();
        let colors = [
            Color32::from_rgb(220, 60, 60),
            Color32::from_rgb(60, 180, 60),
            Color32::from_rgb(70, 110, 230),
        ];
        let Some(layer) = self.layers.get_mut(id) else {
            return;
        };
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
    }

    pub(crate) fn labels_panel(&mut self, ui: &mut egui::Ui) {
        ui.heading("Labels");
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.tool, Tool::Inspect, "Inspect (I)");
            ui.selectable_value(&mut self.tool, Tool::Brush, "Brush (B)");
            ui.selectable_value(&mut self.tool, Tool::Eraser, "Eraser (E)");
        });
        ui.add(
            egui::Slider::new(&mut self.brush_size, 1.0..=128.0)
                .logarithmic(true)
                .text("size ([ ])"),
        );
        ui.horizontal(|ui| {
            ui.label("paint into");
            ui.selectable_value(&mut self.paint_layer, LabelLayer::Train, "training");
            ui.selectable_value(&mut self.paint_layer, LabelLayer::Test, "test");
        });
        let Some(session) = &self.session else {
            return;
        };
        let train = session.class_counts(LabelLayer::Train);
        let test = session.class_counts(LabelLayer::Test);
        let classes = session.classes.clone();
        let mut commands = Vec::new();
        egui::Grid::new("classes").striped(true).show(ui, |ui| {
            ui.label("");
            ui.label("class");
            ui.label("train");
            ui.label("test");
            ui.label("");
            ui.end_row();
            for c in &classes {
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
                        .selectable_label(self.active_class == c.value, key)
                        .on_hover_text("paint with this class")
                        .clicked()
                    {
                        self.active_class = c.value;
                        if self.tool != Tool::Brush {
                            self.tool = Tool::Brush;
                        }
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
                    for other in &classes {
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
            self.send(AppCommand::Label(c));
        }
    }

    pub(crate) fn start_page(&mut self, ui: &mut egui::Ui) {
        ui.vertical_centered(|ui| {
            ui.add_space(ui.available_height() * 0.2);
            ui.heading("UniDiff Studio");
            ui.label("Land-cover mapping from hyperspectral and SAR rasters with sparse labels");
            ui.add_space(16.0);
            if self.loading.is_some() {
                ui.spinner();
                return;
            }
            if ui
                .button(
                    RichText::new("Open the demo scene (Sentinel-1/2, Sen1Floods11)").size(16.0),
                )
                .clicked()
            {
                self.send(AppCommand::OpenDemo);
            }
            ui.add_space(8.0);
            ui.horizontal(|ui| {
                ui.add_space((ui.available_width() - 220.0).max(0.0) / 2.0);
                if ui.button("Open HSI…").clicked() {
                    self.send(AppCommand::PickFile(FileAction::OpenHsi));
                }
                if ui.button("Open SAR…").clicked() {
                    self.send(AppCommand::PickFile(FileAction::OpenSar));
                }
            });
            ui.label(RichText::new("or drop raster files on the window").weak());
            if !self.prefs.recent.is_empty() {
                ui.add_space(16.0);
                ui.strong("Recent");
                self.recent_list(ui);
            }
        });
    }

    /// Messages, the autosave offer and the shortcut sheet. Messages stack in
    /// the bottom-right corner of `central` (the map), wrapped, so that they
    /// never cover the side panels' buttons.
    pub(crate) fn windows(&mut self, ctx: &egui::Context, central: egui::Rect) {
        if self.recovery.is_some() {
            let age = self.recovery.as_ref().map(|r| r.age()).unwrap_or_default();
            let mut choice = None;
            egui::Window::new("Recover autosaved labels?")
                .collapsible(false)
                .resizable(false)
                .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
                .show(ctx, |ui| {
                    ui.label(format!(
                        "Labels of this scene were autosaved {age} and differ from the ones just opened."
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
                Some(true) => self.send(AppCommand::Recover(true)),
                Some(false) => self.send(AppCommand::Recover(false)),
                None => {}
            }
        }
        if self.show_shortcuts {
            let mut open = true;
            egui::Window::new("Keyboard shortcuts")
                .open(&mut open)
                .show(ctx, |ui| {
                    egui::Grid::new("keys").show(ui, |ui| {
                        for (k, what) in [
                            ("B / E / I", "brush / eraser / inspect"),
                            ("[ and ]", "brush size"),
                            ("1 .. 9", "class"),
                            ("Ctrl+Z", "undo"),
                            ("Ctrl+Shift+Z, Ctrl+Y", "redo"),
                            ("wheel", "zoom at the cursor"),
                            ("PgUp / PgDn", "zoom"),
                            ("middle drag, Space + drag, arrows", "pan"),
                            ("F", "fit the scene"),
                            ("L", "toggle training labels"),
                            ("M", "toggle the class map"),
                            ("N", "next place to label (after a classification)"),
                            ("Ctrl+Enter", "classify"),
                            ("Ctrl+Shift+Enter", "run Stage A"),
                            (
                                "Esc",
                                "cancel the running Stage A, classification, projection",
                            ),
                            ("right click", "inspect a pixel"),
                            ("?", "this sheet"),
                            ("Ctrl+Q", "quit (asks first if labels are unsaved)"),
                        ] {
                            ui.strong(k);
                            ui.label(what);
                            ui.end_row();
                        }
                    });
                });
            self.show_shortcuts = open;
        }
        // Not over a frame being captured for "Export view as PNG".
        let now = std::time::Instant::now();
        self.messages.retain(|m| !m.expired(now));
        if self.messages.iter().any(|m| !m.error) {
            // Wake up to take expired information away.
            ctx.request_repaint_after(std::time::Duration::from_millis(500));
        }
        if !self.messages.is_empty() && self.pending_view_png.is_none() {
            let mut close = None;
            let log_file = crate::base::logging::log_file();
            let width = (central.width() - 48.0).clamp(120.0, 420.0);
            egui::Area::new(egui::Id::new("messages"))
                .pivot(egui::Align2::RIGHT_BOTTOM)
                .fixed_pos(central.right_bottom() + egui::vec2(-12.0, -12.0))
                .constrain_to(central)
                .show(ctx, |ui| {
                    for (i, m) in self.messages.iter().enumerate() {
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
                self.messages.remove(i);
            }
        }
    }
}
