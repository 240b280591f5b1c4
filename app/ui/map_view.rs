//! The map widget, which owns its state as galileo's egui map does: the
//! view transform, the layers to upload and their GPU uploads in flight,
//! the CPU-composited fallback. Its `ui` reads the store and turns input
//! into commands — pan and zoom (a transform, no re-upload), painting
//! strokes as session commands, hover and click for the status bar and
//! inspector — and hands the frame to the GPU compositor (`gpu_map`).

use std::collections::HashMap;
use std::sync::Arc;

use eframe::egui::{self, Color32, Key, PointerButton, Pos2, Rect, Sense, Stroke, Vec2, vec2};
use eframe::egui_wgpu;

use super::app::{Dirty, Tool};
use super::command::{AppCommand, CommandSender};
use super::gpu_map::{GpuUpload, LayerDraw, MapFrame, MapPaint, TexturePixels, TextureUpload};
use super::layers::LayerId;
use super::store::Store;
use super::view_transform::ViewTransform;
use crate::scene::{Brush, LabelLayer, PixelRect};
use crate::session::Command;

/// The map widget's own state: the view transform, which layers must be
/// uploaded (and which part), the GPU uploads in flight with their
/// sequence numbers, the CPU-composited fallback without wgpu, and the
/// renderings version its textures show.
pub struct MapView {
    pub view: ViewTransform,
    /// Fit the scene into the map at the next frame.
    pub fit_pending: bool,
    /// The wgpu map pipeline is installed (false on the glow fallback).
    pub gpu_map: bool,
    /// The largest texture side of the GPU (wgpu only).
    pub max_texture_side: Option<u32>,
    pub(crate) dirty: HashMap<LayerId, Dirty>,
    pub(crate) palette_dirty: bool,
    /// GPU uploads not yet applied, with their sequence numbers.
    pub(crate) gpu_uploads: Vec<(u64, Arc<super::gpu_map::GpuUpload>)>,
    pub(crate) gpu_seq: u64,
    pub(crate) gpu_applied: Arc<std::sync::atomic::AtomicU64>,
    /// The map's screen rectangle in the last frame.
    pub rect: Option<egui::Rect>,
    /// The map without wgpu, and the version of the renderings it shows.
    pub(crate) cpu_map: super::cpu_map::CpuMap,
    pub(crate) renderings_version: u64,
}

impl MapView {
    pub(crate) fn new(gpu_map: bool, max_texture_side: Option<u32>) -> Self {
        Self {
            view: ViewTransform::default(),
            fit_pending: true,
            gpu_map,
            max_texture_side,
            dirty: HashMap::new(),
            palette_dirty: true,
            gpu_uploads: Vec::new(),
            gpu_seq: 0,
            gpu_applied: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            rect: None,
            cpu_map: Default::default(),
            renderings_version: 0,
        }
    }

    /// Marks part of a layer for upload (merged with what is pending).
    pub(crate) fn mark_dirty(&mut self, id: LayerId, d: Dirty) {
        let merged = match (self.dirty.get(&id), d) {
            (Some(Dirty::All), _) | (_, Dirty::All) => Dirty::All,
            (Some(Dirty::Rect(a)), Dirty::Rect(b)) => Dirty::Rect(a.union(b)),
            (None, d) => d,
        };
        self.dirty.insert(id, merged);
    }

    /// New renderings or results: every texture made from them is stale.
    pub(crate) fn renderings_changed(&mut self) {
        self.renderings_version += 1;
    }
}

/// The scene's size in pixels (width, height).
pub fn image_size(store: &Store) -> Vec2 {
    store
        .session
        .as_ref()
        .and_then(|s| s.scene.grid())
        .map(|g| vec2(g.width as f32, g.height as f32))
        .unwrap_or(Vec2::ZERO)
}

/// The colour of a class value.
pub fn class_color(store: &Store, value: u8) -> Color32 {
    store
        .session
        .as_ref()
        .and_then(|s| s.classes.iter().find(|c| c.value == value))
        .map(|c| Color32::from_rgb(c.color[0], c.color[1], c.color[2]))
        .unwrap_or(Color32::GRAY)
}

impl MapView {
    /// The map: input, then the GPU paint callback and the brush cursor.
    pub fn ui(&mut self, ui: &mut egui::Ui, store: &Store, commands: &CommandSender) {
        let rect = ui.available_rect_before_wrap();
        let response = ui.allocate_rect(rect, Sense::click_and_drag());
        self.rect = Some(rect);
        let size = image_size(store);
        if self.fit_pending && rect.width() > 1.0 {
            self.view = ViewTransform::fit(size, rect);
            self.fit_pending = false;
        }
        self.map_input(ui, rect, &response, size, store, commands);
        self.view.clamp_to(size);
        if self.gpu_map {
            let frame = self.map_frame(rect, size, store);
            ui.painter().add(egui_wgpu::Callback::new_paint_callback(
                rect,
                MapPaint(frame),
            ));
        } else if let Some(session) = &store.session {
            // The glow fallback: one CPU-composited texture.
            let nearest = self.view.zoom >= 1.0;
            let version = self.renderings_version;
            if let Some(t) =
                self.cpu_map
                    .texture(ui.ctx(), session, &store.layers, version, nearest)
            {
                let tl = self.view.screen_from_image(rect, Pos2::ZERO);
                let br = self.view.screen_from_image(rect, size.to_pos2());
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
        let tl = self.view.screen_from_image(rect, Pos2::ZERO);
        let br = self.view.screen_from_image(rect, size.to_pos2());
        painter.rect_stroke(
            Rect::from_min_max(tl, br),
            0.0,
            Stroke::new(1.0, Color32::from_gray(90)),
            egui::StrokeKind::Outside,
        );
        for (i, r) in store.suggestions.iter().enumerate() {
            let a = self
                .view
                .screen_from_image(rect, Pos2::new(r.x as f32, r.y as f32));
            let b = self.view.screen_from_image(
                rect,
                Pos2::new((r.x + r.side) as f32, (r.y + r.side) as f32),
            );
            let current = store.suggestion_index == Some(i);
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
        if let Some(sample) = &store.sample {
            // The sample's points: a class-coloured dot once labelled, an
            // empty ring before; the point on show ringed in yellow.
            let radius = (self.view.zoom * 0.6).clamp(3.0, 10.0);
            for (i, p) in sample.points.iter().enumerate() {
                let at = self
                    .view
                    .screen_from_image(rect, Pos2::new(p.col as f32 + 0.5, p.row as f32 + 0.5));
                if !rect.expand(radius * 3.0).contains(at) {
                    continue;
                }
                match p.reference {
                    Some(v) => {
                        painter.circle(
                            at,
                            radius,
                            class_color(store, v),
                            Stroke::new(1.0, Color32::BLACK),
                        );
                    }
                    None => {
                        painter.circle_stroke(at, radius, Stroke::new(1.5, Color32::WHITE));
                    }
                }
                if i == sample.current {
                    painter.circle_stroke(at, radius * 2.2, Stroke::new(2.5, Color32::YELLOW));
                }
            }
        }
        if let Some((row, col)) = store.inspected {
            let a = self
                .view
                .screen_from_image(rect, Pos2::new(col as f32, row as f32));
            let b = self
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
        super::view_export::map_legend(store, &painter, rect);
        if matches!(store.tool, Tool::Brush | Tool::Eraser)
            && let Some(p) = response.hover_pos()
        {
            let radius = (store.brush_size * self.view.zoom / 2.0).max(2.0);
            let color = match store.tool {
                Tool::Eraser => Color32::WHITE,
                _ => class_color(store, store.active_class),
            };
            painter.circle_stroke(p, radius + 1.0, Stroke::new(1.0, Color32::BLACK));
            painter.circle_stroke(p, radius, Stroke::new(1.5, color));
            ui.ctx().set_cursor_icon(egui::CursorIcon::Crosshair);
        }
    }

    fn map_input(
        &mut self,
        ui: &egui::Ui,
        rect: Rect,
        response: &egui::Response,
        size: Vec2,
        store: &Store,
        commands: &CommandSender,
    ) {
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
        let hovered = inside.and_then(|p| self.view.pixel_at(rect, p, size));
        if hovered != store.hovered {
            commands.send(AppCommand::Hover(hovered));
        }
        // Zoom at the cursor: wheel, or pinch / Ctrl+wheel.
        if let Some(p) = inside {
            if scroll != 0.0 {
                self.view.zoom_at(rect, p, (scroll / 200.0).exp());
            }
            if zoom_delta != 1.0 {
                self.view.zoom_at(rect, p, zoom_delta);
            }
        }
        // Pan: middle drag, or Space + drag.
        if response.dragged_by(PointerButton::Middle)
            || (space && response.dragged_by(PointerButton::Primary))
        {
            self.view.pan(response.drag_delta());
            return;
        }
        let painting = store.session.as_ref().is_some_and(|s| s.is_painting());
        match store.tool {
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
                            let q = self.view.image_from_screen(rect, pos);
                            let value = if store.tool == Tool::Eraser {
                                0
                            } else {
                                store.active_class
                            };
                            commands.send(AppCommand::Label(Command::BeginStroke {
                                layer: store.paint_layer,
                                brush: Brush {
                                    value,
                                    size: store.brush_size,
                                },
                                x: q.x,
                                y: q.y,
                            }));
                            painting = true;
                        }
                        egui::Event::PointerMoved(pos) if painting => {
                            let q = self.view.image_from_screen(rect, pos);
                            commands.send(AppCommand::Label(Command::ContinueStroke {
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
                            let q = self.view.image_from_screen(rect, pos);
                            commands.send(AppCommand::Label(Command::ContinueStroke {
                                x: q.x,
                                y: q.y,
                            }));
                            commands.send(AppCommand::Label(Command::EndStroke));
                            painting = false;
                        }
                        _ => {}
                    }
                }
                // The button went up outside the window: end the stroke.
                if painting && !primary_down {
                    commands.send(AppCommand::Label(Command::EndStroke));
                }
            }
            Tool::Inspect => {
                if response.clicked()
                    && let Some(px) = hovered
                {
                    commands.send(AppCommand::InspectPixel(px));
                }
            }
        }
        if response.secondary_clicked()
            && let Some(px) = hovered
        {
            commands.send(AppCommand::InspectPixel(px));
        }
    }

    /// The frame for the GPU: visible layers bottom first, and the texture
    /// uploads pending (whole images once, label rectangles after edits).
    fn map_frame(&mut self, rect: Rect, size: Vec2, store: &Store) -> MapFrame {
        let (origin, span) = self.view.image_window(rect);
        let mut uploads = Vec::new();
        if let Some(s) = &store.session {
            let (w, h) = (size.x as u32, size.y as u32);
            for (id, dirty) in self.dirty.drain() {
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
                        LayerId::CleanedMap => s.cleaned_class_map()?,
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
        if std::mem::take(&mut self.palette_dirty) {
            uploads.push(GpuUpload::Palette(Box::new(store.palette())));
        }
        let applied = self.gpu_applied.load(std::sync::atomic::Ordering::SeqCst);
        self.gpu_uploads.retain(|(seq, _)| *seq > applied);
        for u in uploads {
            self.gpu_seq += 1;
            self.gpu_uploads.push((self.gpu_seq, Arc::new(u)));
        }
        let available = |id: LayerId| {
            store
                .session
                .as_ref()
                .is_some_and(|s| super::layers::available(s, id))
        };
        let layers = store
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
            smooth: self.view.zoom < 1.0,
            layers,
            uploads: self.gpu_uploads.clone(),
            applied: self.gpu_applied.clone(),
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
