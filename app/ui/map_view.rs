//! The map view: pan and zoom (a transform, no re-upload), painting strokes
//! as session commands, hover and click for the status bar and inspector,
//! and the frame handed to the GPU compositor (`gpu_map`).

use std::sync::Arc;

use eframe::egui::{self, Color32, Key, PointerButton, Pos2, Rect, Sense, Stroke, Vec2, vec2};
use eframe::egui_wgpu;

use super::app::{Dirty, StudioApp, Tool};
use super::command::AppCommand;
use super::gpu_map::{GpuUpload, LayerDraw, MapFrame, MapPaint, TexturePixels, TextureUpload};
use super::layers::LayerId;
use super::view_transform::ViewTransform;
use crate::scene::{Brush, LabelLayer, PixelRect};
use crate::session::Command;

impl StudioApp {
    /// The scene's size in pixels (width, height).
    pub fn image_size(&self) -> Vec2 {
        self.store
            .session
            .as_ref()
            .and_then(|s| s.scene.grid())
            .map(|g| vec2(g.width as f32, g.height as f32))
            .unwrap_or(Vec2::ZERO)
    }

    /// The map: input, then the GPU paint callback and the brush cursor.
    pub(crate) fn map_view(&mut self, ui: &mut egui::Ui) {
        let rect = ui.available_rect_before_wrap();
        let response = ui.allocate_rect(rect, Sense::click_and_drag());
        self.map.rect = Some(rect);
        let size = self.image_size();
        if self.map.fit_pending && rect.width() > 1.0 {
            self.map.view = ViewTransform::fit(size, rect);
            self.map.fit_pending = false;
        }
        self.map_input(ui, rect, &response, size);
        self.map.view.clamp_to(size);
        if self.map.gpu_map {
            let frame = self.map_frame(rect, size);
            ui.painter().add(egui_wgpu::Callback::new_paint_callback(
                rect,
                MapPaint(frame),
            ));
        } else if let Some(session) = &self.store.session {
            // The glow fallback: one CPU-composited texture.
            let nearest = self.map.view.zoom >= 1.0;
            let version = self.map.renderings_version;
            if let Some(t) =
                self.map
                    .cpu_map
                    .texture(ui.ctx(), session, &self.store.layers, version, nearest)
            {
                let tl = self.map.view.screen_from_image(rect, Pos2::ZERO);
                let br = self.map.view.screen_from_image(rect, size.to_pos2());
                ui.painter_at(rect).image(
                    t.id(),
                    Rect::from_min_max(tl, br),
                    Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
                    Color32::WHITE,
                );
            }
        }
        // Outline of the scene, and the inspected pixel.
        let painter = ui.painter_at(rect);
        let tl = self.map.view.screen_from_image(rect, Pos2::ZERO);
        let br = self.map.view.screen_from_image(rect, size.to_pos2());
        painter.rect_stroke(
            Rect::from_min_max(tl, br),
            0.0,
            Stroke::new(1.0, Color32::from_gray(90)),
            egui::StrokeKind::Outside,
        );
        for (i, r) in self.store.suggestions.iter().enumerate() {
            let a = self
                .map
                .view
                .screen_from_image(rect, Pos2::new(r.x as f32, r.y as f32));
            let b = self.map.view.screen_from_image(
                rect,
                Pos2::new((r.x + r.side) as f32, (r.y + r.side) as f32),
            );
            let current = self.store.suggestion_index == Some(i);
            let color = if current {
                Color32::from_rgb(255, 80, 200)
            } else {
                Color32::from_rgb(200, 60, 160)
            };
            painter.rect_stroke(
                Rect::from_min_max(a, b),
                0.0,
                Stroke::new(if current { 3.0 } else { 1.5 }, color),
                egui::StrokeKind::Outside,
            );
            painter.text(
                a,
                egui::Align2::LEFT_BOTTOM,
                format!("{}", i + 1),
                egui::FontId::proportional(12.0),
                color,
            );
        }
        if let Some((row, col)) = self.store.inspected {
            let a = self
                .map
                .view
                .screen_from_image(rect, Pos2::new(col as f32, row as f32));
            let b = self
                .map
                .view
                .screen_from_image(rect, Pos2::new(col as f32 + 1.0, row as f32 + 1.0));
            let r = Rect::from_min_max(a, b).expand(2.0);
            painter.rect_stroke(
                r,
                0.0,
                Stroke::new(2.0, Color32::YELLOW),
                egui::StrokeKind::Outside,
            );
        }
        self.map_legend(&painter, rect);
        if matches!(self.store.tool, Tool::Brush | Tool::Eraser)
            && let Some(p) = response.hover_pos()
        {
            let radius = (self.store.brush_size * self.map.view.zoom / 2.0).max(2.0);
            let color = match self.store.tool {
                Tool::Eraser => Color32::WHITE,
                _ => self.class_color(self.store.active_class),
            };
            painter.circle_stroke(p, radius + 1.0, Stroke::new(1.0, Color32::BLACK));
            painter.circle_stroke(p, radius, Stroke::new(1.5, color));
            ui.ctx().set_cursor_icon(egui::CursorIcon::Crosshair);
        }
    }

    /// The colour of a class value.
    pub fn class_color(&self, value: u8) -> Color32 {
        self.store
            .session
            .as_ref()
            .and_then(|s| s.classes.iter().find(|c| c.value == value))
            .map(|c| Color32::from_rgb(c.color[0], c.color[1], c.color[2]))
            .unwrap_or(Color32::GRAY)
    }

    fn map_input(&mut self, ui: &egui::Ui, rect: Rect, response: &egui::Response, size: Vec2) {
        let (pointer, primary_down, space, scroll, zoom_delta) = ui.input(|i| {
            (
                i.pointer.hover_pos(),
                i.pointer.primary_down(),
                i.key_down(Key::Space),
                i.smooth_scroll_delta.y,
                i.zoom_delta(),
            )
        });
        let inside = pointer.filter(|p| rect.contains(*p));
        self.store.hovered = inside.and_then(|p| self.map.view.pixel_at(rect, p, size));
        // Zoom at the cursor: wheel, or pinch / Ctrl+wheel.
        if let Some(p) = inside {
            if scroll != 0.0 {
                self.map.view.zoom_at(rect, p, (scroll / 200.0).exp());
            }
            if zoom_delta != 1.0 {
                self.map.view.zoom_at(rect, p, zoom_delta);
            }
        }
        // Pan: middle drag, or Space + drag.
        if response.dragged_by(PointerButton::Middle)
            || (space && response.dragged_by(PointerButton::Primary))
        {
            self.map.view.pan(response.drag_delta());
            return;
        }
        let painting = self.store.session.as_ref().is_some_and(|s| s.is_painting());
        match self.store.tool {
            Tool::Brush | Tool::Eraser => {
                // Walk the pointer events in order: a fast stroke can bring
                // press, moves and release in one frame, and every position
                // between them must be painted.
                let events: Vec<egui::Event> = ui.input(|i| i.events.clone());
                let mut painting = painting;
                for event in events {
                    match event {
                        egui::Event::PointerButton {
                            pos,
                            button: PointerButton::Primary,
                            pressed: true,
                            ..
                        } if !space && rect.contains(pos) => {
                            let q = self.map.view.image_from_screen(rect, pos);
                            let value = if self.store.tool == Tool::Eraser {
                                0
                            } else {
                                self.store.active_class
                            };
                            self.send(AppCommand::Label(Command::BeginStroke {
                                layer: self.store.paint_layer,
                                brush: Brush {
                                    value,
                                    size: self.store.brush_size,
                                },
                                x: q.x,
                                y: q.y,
                            }));
                            painting = true;
                        }
                        egui::Event::PointerMoved(pos) if painting => {
                            let q = self.map.view.image_from_screen(rect, pos);
                            self.send(AppCommand::Label(Command::ContinueStroke {
                                x: q.x,
                                y: q.y,
                            }));
                        }
                        egui::Event::PointerButton {
                            pos,
                            button: PointerButton::Primary,
                            pressed: false,
                            ..
                        } if painting => {
                            let q = self.map.view.image_from_screen(rect, pos);
                            self.send(AppCommand::Label(Command::ContinueStroke {
                                x: q.x,
                                y: q.y,
                            }));
                            self.send(AppCommand::Label(Command::EndStroke));
                            painting = false;
                        }
                        _ => {}
                    }
                }
                // The button went up outside the window: end the stroke.
                if painting && !primary_down {
                    self.send(AppCommand::Label(Command::EndStroke));
                }
            }
            Tool::Inspect => {
                if response.clicked()
                    && let Some(px) = self.store.hovered
                {
                    self.store.inspected = Some(px);
                }
            }
        }
        if response.secondary_clicked()
            && let Some(px) = self.store.hovered
        {
            self.store.inspected = Some(px);
        }
    }

    /// The frame for the GPU: visible layers bottom first, and the texture
    /// uploads pending (whole images once, label rectangles after edits).
    fn map_frame(&mut self, rect: Rect, size: Vec2) -> MapFrame {
        let (origin, span) = self.map.view.image_window(rect);
        let mut uploads = Vec::new();
        if let Some(s) = &self.store.session {
            let (w, h) = (size.x as u32, size.y as u32);
            for (id, dirty) in self.map.dirty.drain() {
                let pixels = match id {
                    LayerId::Prgb => s.renderings.prgb.as_ref().map(|(i, _)| &i.data),
                    LayerId::Pca => s.renderings.pca.as_ref().map(|(i, _)| &i.data),
                    LayerId::Pauli => s.renderings.pauli.as_ref().map(|i| &i.data),
                    _ => None,
                }
                .map(|d| TexturePixels::Rgb(Arc::new(d.clone())))
                .or_else(|| {
                    (id == LayerId::Uncertainty)
                        .then(|| s.result.as_ref()?.uncertainty_rgb())
                        .flatten()
                        .map(|rgb| TexturePixels::Rgb(Arc::new(rgb)))
                });
                let pixels = pixels.or_else(|| {
                    let data = match id {
                        LayerId::TrainLabels => &s.scene.labels(LabelLayer::Train)?.data,
                        LayerId::TestLabels => &s.scene.labels(LabelLayer::Test)?.data,
                        LayerId::ClassMap => s.shown_class_map()?,
                        _ => return None,
                    };
                    let full = PixelRect {
                        x0: 0,
                        y0: 0,
                        x1: w as usize,
                        y1: h as usize,
                    };
                    let rect = match dirty {
                        Dirty::All => full,
                        Dirty::Rect(r) => r,
                    };
                    Some(TexturePixels::Labels {
                        bytes: crop(data, w as usize, rect),
                        rect,
                    })
                });
                if let Some(pixels) = pixels {
                    uploads.push(GpuUpload::Texture(TextureUpload {
                        layer: id,
                        width: w,
                        height: h,
                        pixels,
                    }));
                }
            }
        }
        if std::mem::take(&mut self.map.palette_dirty) {
            uploads.push(GpuUpload::Palette(Box::new(self.store.palette())));
        }
        let applied = self
            .map
            .gpu_applied
            .load(std::sync::atomic::Ordering::SeqCst);
        self.map.gpu_uploads.retain(|(seq, _)| *seq > applied);
        for u in uploads {
            self.map.gpu_seq += 1;
            self.map.gpu_uploads.push((self.map.gpu_seq, Arc::new(u)));
        }
        let available = |id: LayerId| {
            self.store
                .session
                .as_ref()
                .is_some_and(|s| super::layers::available(s, id))
        };
        let layers = self
            .store
            .layers
            .layers
            .iter()
            .filter(|l| l.visible && l.opacity > 0.0 && available(l.id))
            .map(|l| LayerDraw {
                layer: l.id,
                opacity: l.opacity,
                is_labels: l.id.is_labels(),
                stretch_lo: l.lo,
                stretch_hi: l.hi,
            })
            .collect();
        MapFrame {
            origin,
            span,
            image_size: [size.x, size.y],
            smooth: self.map.view.zoom < 1.0,
            layers,
            uploads: self.map.gpu_uploads.clone(),
            applied: self.map.gpu_applied.clone(),
        }
    }
}

/// The bytes of `rect` of a row-major single-byte image of width `w`.
pub fn crop(data: &[u8], w: usize, rect: PixelRect) -> Vec<u8> {
    let mut out = Vec::with_capacity(rect.width() * rect.height());
    for y in rect.y0..rect.y1 {
        let row = y * w;
        if let Some(s) = data.get(row + rect.x0..row + rect.x1) {
            out.extend_from_slice(s);
        }
    }
    out
}
