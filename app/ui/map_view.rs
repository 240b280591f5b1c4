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

use super::command::{AppCommand, CommandSender};
use super::gpu_map::{GpuUpload, MapFrame, MapPaint, TileDraw, TileUpload};
use super::layers::LayerId;
use super::map_tiles::{
    GPU_BUDGET_BYTES, Residency, TILE_SIDE, TILES_PER_FRAME, TileGrid, TileKey, labels_of,
    rgb_pyramid, rgba_of,
};
use super::store::Store;
use super::view_transform::ViewTransform;
use super::vocabulary::{Dirty, Tool};
use crate::scene::{Brush, LabelLayer, PixelRect};
use crate::session::{Command, Session};

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
    /// The tiles on the GPU and the pyramids they are cut from.
    pub tiles: MapTiles,
}

/// The map's tiles: the pyramid's grid, which tiles the GPU holds, the
/// upper levels of the RGB layers (level 0 is the session's image), and
/// the frame count that orders tile use.
#[derive(Default)]
pub struct MapTiles {
    /// A tile side smaller than `TILE_SIDE` (tests; a GPU with small
    /// textures).
    pub side: Option<u32>,
    grid: Option<TileGrid>,
    resident: Residency,
    /// Per RGB layer: level 0 when it is computed (the uncertainty), then
    /// the levels above.
    pyramids: HashMap<LayerId, RgbLevels>,
    frame: u64,
    /// Visible tiles still to upload after the last frame.
    pub pending: usize,
    /// Seconds the last frame spent deciding and cutting tiles (benches).
    pub last_frame_seconds: f64,
    /// The scene preview on the GPU (its note names it).
    preview: Option<String>,
}

/// The texture of the scene preview (no layer's pyramid has this level).
const PREVIEW_KEY: TileKey = TileKey {
    layer: LayerId::Prgb,
    level: u8::MAX,
    col: 0,
    row: 0,
};

struct RgbLevels {
    level0: Option<Vec<u8>>,
    above: Vec<Vec<u8>>,
}

impl MapTiles {
    /// The tiles on the GPU now (tests, benches).
    pub fn resident(&self) -> usize {
        self.resident.len()
    }

    /// Bytes of tile textures on the GPU now.
    pub fn resident_bytes(&self) -> usize {
        self.resident.bytes()
    }
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
            tiles: MapTiles::default(),
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

/// The scene's size in pixels (width, height): the open scene's, or the
/// one being read's while its preview shows.
pub fn image_size(store: &Store) -> Vec2 {
    match (&store.session, &store.scene_preview) {
        (Some(s), _) => s
            .scene
            .grid()
            .map(|g| vec2(g.width as f32, g.height as f32))
            .unwrap_or(Vec2::ZERO),
        (None, Some(p)) => vec2(p.width as f32, p.height as f32),
        (None, None) => Vec2::ZERO,
    }
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
            let frame = self.map_frame(rect, size, store, ui.ctx().pixels_per_point());
            if self.tiles.pending > 0 {
                ui.ctx().request_repaint();
            }
            ui.painter().add(egui_wgpu::Callback::new_paint_callback(
                rect,
                MapPaint(frame),
            ));
        } else if let Some(session) = &store.session {
            // The glow fallback: one CPU-composited texture.
            let nearest = self.view.zoom >= 1.0;
            let version = self.renderings_version;
            if let Some((t, uv)) =
                self.cpu_map
                    .texture(ui.ctx(), session, &store.layers, version, nearest)
            {
                let tl = self.view.screen_from_image(rect, Pos2::ZERO);
                let br = self.view.screen_from_image(rect, size.to_pos2());
                ui.painter_at(rect).image(
                    t.id(),
                    Rect::from_min_max(tl, br),
                    Rect::from_min_max(Pos2::ZERO, Pos2::new(uv[0], uv[1])),
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
        if let (None, Some(p)) = (&store.session, &store.scene_preview) {
            painter.text(
                rect.left_top() + vec2(12.0, 12.0),
                egui::Align2::LEFT_TOP,
                format!(
                    "Preview: every {} pixel across and down — {}…",
                    ordinal(p.step),
                    p.note
                ),
                egui::FontId::proportional(14.0),
                Color32::WHITE,
            );
        }
        super::legend::map_legend(store, &painter, rect);
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

    /// The tile side of this GPU.
    fn tile_side(&self) -> u32 {
        let gpu = self
            .max_texture_side
            .map_or(TILE_SIDE, |m| m.saturating_sub(2));
        self.tiles.side.unwrap_or(TILE_SIDE).min(gpu).max(2)
    }

    /// The frame for the GPU: for each visible layer, bottom first, the
    /// tiles of the level the zoom needs (the top level where a tile is not
    /// on the GPU yet), and the uploads that bring tiles there (as many as
    /// one frame's share; stroke rectangles patched into the tiles that
    /// hold them).
    fn map_frame(&mut self, rect: Rect, size: Vec2, store: &Store, ppp: f32) -> MapFrame {
        let started = std::time::Instant::now();
        let (origin, span) = self.view.image_window(rect);
        self.tiles.frame += 1;
        let frame_no = self.tiles.frame;
        let mut uploads = Vec::new();
        let grid = TileGrid::new(size.x as u32, size.y as u32, self.tile_side());
        if self.tiles.grid != Some(grid) {
            // Another scene (or tile side): every tile goes.
            for key in self.tiles.resident.over_budget(0, u64::MAX) {
                uploads.push(GpuUpload::Evict(key));
            }
            self.tiles.pyramids.clear();
            self.tiles.grid = Some(grid);
        }
        let mut draws = Vec::new();
        self.tiles.pending = 0;
        if let Some(s) = &store.session {
            for (id, dirty) in std::mem::take(&mut self.dirty) {
                match dirty {
                    Dirty::All => {
                        self.tiles.pyramids.remove(&id);
                        for key in self.tiles.resident.of_layer(id) {
                            self.tiles.resident.remove(&key);
                            uploads.push(GpuUpload::Evict(key));
                        }
                    }
                    Dirty::Rect(r) => {
                        for (key, part) in grid.tiles_touching(id, r) {
                            if !self.tiles.resident.contains(&key) {
                                continue;
                            }
                            if let Some(u) = self.tile_upload(s, &grid, key, Some(part)) {
                                uploads.push(GpuUpload::Tile(u));
                            }
                        }
                    }
                }
            }
            let level = grid.level_for_zoom(self.view.zoom, ppp);
            let top = grid.top_level();
            let window = [
                origin[0],
                origin[1],
                origin[0] + span[0],
                origin[1] + span[1],
            ];
            let mut cuts_left = TILES_PER_FRAME;
            let visible = store
                .layers
                .layers
                .iter()
                .filter(|l| l.visible && l.opacity > 0.0 && super::layers::available(s, l.id));
            for l in visible {
                let draw = |key: TileKey, quad: [f32; 4]| {
                    let t = grid.texture_rect(key);
                    TileDraw {
                        key,
                        quad,
                        scale: (1u64 << key.level) as f32,
                        tex_origin: [t.x0 as f32, t.y0 as f32],
                        tex_size: [t.width() as f32, t.height() as f32],
                        opacity: l.opacity,
                        is_labels: l.id.is_labels(),
                        stretch_lo: l.lo,
                        stretch_hi: l.hi,
                    }
                };
                let top_key = TileKey {
                    layer: l.id,
                    level: top,
                    col: 0,
                    row: 0,
                };
                if !self.tiles.resident.contains(&top_key)
                    && let Some(u) = self.tile_upload(s, &grid, top_key, None)
                {
                    self.tiles.resident.insert(top_key, u.bytes.len(), frame_no);
                    uploads.push(GpuUpload::Tile(u));
                }
                for key in grid.visible_tiles(l.id, level, window) {
                    if !self.tiles.resident.contains(&key) {
                        if cuts_left == 0 {
                            self.tiles.pending += 1;
                        } else if let Some(u) = self.tile_upload(s, &grid, key, None) {
                            cuts_left -= 1;
                            self.tiles.resident.insert(key, u.bytes.len(), frame_no);
                            uploads.push(GpuUpload::Tile(u));
                        }
                    }
                    let quad = grid.image_rect(key);
                    if self.tiles.resident.contains(&key) {
                        self.tiles.resident.touch(&key, frame_no);
                        draws.push(draw(key, quad));
                    } else if self.tiles.resident.contains(&top_key) {
                        draws.push(draw(top_key, quad));
                    }
                }
                self.tiles.resident.touch(&top_key, frame_no);
            }
        }
        // The preview of a scene being read, while none is open.
        let preview = store
            .scene_preview
            .as_ref()
            .filter(|_| store.session.is_none());
        if self.tiles.preview.is_some() && preview.map(|p| &p.note) != self.tiles.preview.as_ref() {
            uploads.push(GpuUpload::Evict(PREVIEW_KEY));
            self.tiles.preview = None;
        }
        if let Some(p) = preview {
            let (w, h) = (p.image.width, p.image.height);
            if self.tiles.preview.is_none() && p.image.data.len() == w * h * 3 {
                let rect = PixelRect {
                    x0: 0,
                    y0: 0,
                    x1: w,
                    y1: h,
                };
                uploads.push(GpuUpload::Tile(TileUpload {
                    key: PREVIEW_KEY,
                    size: (w as u32, h as u32),
                    is_labels: false,
                    rect,
                    bytes: rgba_of(&p.image.data, w, rect),
                }));
                self.tiles.preview = Some(p.note.clone());
            }
            draws.push(TileDraw {
                key: PREVIEW_KEY,
                quad: [0.0, 0.0, size.x, size.y],
                scale: p.step as f32,
                tex_origin: [0.0, 0.0],
                tex_size: [w as f32, h as f32],
                opacity: 1.0,
                is_labels: false,
                stretch_lo: [0.0; 3],
                stretch_hi: [1.0; 3],
            });
        }
        for key in self.tiles.resident.over_budget(GPU_BUDGET_BYTES, frame_no) {
            uploads.push(GpuUpload::Evict(key));
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
        self.tiles.last_frame_seconds = started.elapsed().as_secs_f64();
        MapFrame {
            origin,
            span,
            smooth: self.view.zoom < 1.0,
            draws,
            uploads: self.gpu_uploads.clone(),
            applied: self.gpu_applied.clone(),
        }
    }

    /// The pixels of a tile's texture (`part` of it, or all of it), cut
    /// from the session's layer at the tile's level.
    fn tile_upload(
        &mut self,
        s: &Session,
        grid: &TileGrid,
        key: TileKey,
        part: Option<PixelRect>,
    ) -> Option<TileUpload> {
        let t = grid.texture_rect(key);
        let part = part.unwrap_or(t);
        // Where the part lies in the texture.
        let rect = PixelRect {
            x0: part.x0 - t.x0,
            y0: part.y0 - t.y0,
            x1: part.x1 - t.x0,
            y1: part.y1 - t.y0,
        };
        let size = (t.width() as u32, t.height() as u32);
        if key.layer.is_labels() {
            let data = match key.layer {
                LayerId::TrainLabels => &s.scene.labels(LabelLayer::Train)?.data,
                LayerId::TestLabels => &s.scene.labels(LabelLayer::Test)?.data,
                LayerId::ClassMap => s.shown_class_map()?,
                LayerId::CleanedMap => s.cleaned_class_map()?,
                _ => return None,
            };
            let width = grid.width as usize;
            if data.len() != width * grid.height as usize {
                return None;
            }
            return Some(TileUpload {
                key,
                size,
                is_labels: true,
                rect,
                bytes: labels_of(data, width, key.level, part),
            });
        }
        let session_level0 = match key.layer {
            LayerId::Prgb => s.renderings.prgb.as_ref().map(|(i, _)| &i.data),
            LayerId::Pca => s.renderings.pca.as_ref().map(|(i, _)| &i.data),
            LayerId::Pauli => s.renderings.pauli.as_ref().map(|i| &i.data),
            _ => None,
        };
        let needs_levels = key.level > 0 || session_level0.is_none();
        if needs_levels && !self.tiles.pyramids.contains_key(&key.layer) {
            let level0 = match session_level0 {
                Some(_) => None,
                None if key.layer == LayerId::Uncertainty => {
                    Some(s.result.as_ref()?.uncertainty_rgb()?)
                }
                None => return None,
            };
            let base = level0.as_deref().or(session_level0.map(|d| d.as_slice()))?;
            if base.len() != grid.width as usize * grid.height as usize * 3 {
                return None;
            }
            let above = rgb_pyramid(base, grid);
            self.tiles
                .pyramids
                .insert(key.layer, RgbLevels { level0, above });
        }
        let levels = self.tiles.pyramids.get(&key.layer);
        let data: &[u8] = match key.level {
            0 => match session_level0 {
                Some(d) => d,
                None => levels?.level0.as_deref()?,
            },
            k => levels?.above.get(k as usize - 1)?,
        };
        let (lw, lh) = grid.level_size(key.level);
        if data.len() != lw as usize * lh as usize * 3 {
            return None;
        }
        Some(TileUpload {
            key,
            size,
            is_labels: false,
            rect,
            bytes: rgba_of(data, lw as usize, part),
        })
    }
}

/// "2nd", "3rd", "11th", "21st".
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}
