//! The map's legend (class colours and names, drawn over the map whenever a
//! class layer shows) and "Export view as PNG": the next frame is captured
//! as rendered — layers, outlines, legend — and the map's rectangle of it is
//! written atomically as a PNG by a task.

use eframe::egui::{self, Color32, Pos2, Rect, Stroke, Vec2};

use super::app::StudioApp;
use super::layers::{LayerId, available};
use super::store::Store;
use crate::jobs::Task;

/// The class layers on screen, top first, by name.
fn legend_title(store: &Store) -> Option<&'static str> {
    let s = store.session.as_ref()?;
    let shown = |id: LayerId| {
        store
            .layers
            .get(id)
            .is_some_and(|l| l.visible && l.opacity > 0.0)
            && available(s, id)
    };
    [
        (LayerId::CleanedMap, "cleaned map"),
        (LayerId::ClassMap, "class map"),
        (LayerId::TrainLabels, "training labels"),
        (LayerId::TestLabels, "test labels"),
    ]
    .into_iter()
    .find(|(id, _)| shown(*id))
    .map(|(_, name)| name)
}

/// Draws the legend in the map's bottom-left corner.
pub(crate) fn map_legend(store: &Store, painter: &egui::Painter, rect: Rect) {
    let (Some(title), Some(s)) = (legend_title(store), &store.session) else {
        return;
    };
    if s.classes.is_empty() {
        return;
    }
    let font = egui::FontId::proportional(13.0);
    let row = 18.0;
    let widest = s
        .classes
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(title.len());
    let size = Vec2::new(
        36.0 + 7.5 * widest as f32,
        10.0 + row * (1 + s.classes.len()) as f32,
    );
    let min = Pos2::new(rect.left() + 8.0, rect.bottom() - 8.0 - size.y);
    let frame = Rect::from_min_size(min, size);
    painter.rect_filled(frame, 4.0, Color32::from_black_alpha(190));
    painter.text(
        min + Vec2::new(8.0, 5.0),
        egui::Align2::LEFT_TOP,
        title,
        font.clone(),
        Color32::WHITE,
    );
    for (i, c) in s.classes.iter().enumerate() {
        let y = min.y + 5.0 + row * (i + 1) as f32;
        let swatch = Rect::from_min_size(Pos2::new(min.x + 8.0, y + 2.0), Vec2::splat(12.0));
        painter.rect_filled(
            swatch,
            2.0,
            Color32::from_rgb(c.color[0], c.color[1], c.color[2]),
        );
        painter.rect_stroke(
            swatch,
            2.0,
            Stroke::new(1.0, Color32::from_gray(200)),
            egui::StrokeKind::Outside,
        );
        painter.text(
            Pos2::new(min.x + 28.0, y),
            egui::Align2::LEFT_TOP,
            &c.name,
            font.clone(),
            Color32::WHITE,
        );
    }
}

impl StudioApp {
    /// Sends the capture request of a pending export, and writes the
    /// captured frame's map rectangle when the capture arrives.
    pub(crate) fn handle_screenshots(&mut self, ctx: &egui::Context) {
        if let Some((_, requested @ false)) = &mut self.pending_view_png {
            *requested = true;
            ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(egui::UserData::default()));
            ctx.request_repaint();
        }
        let shots: Vec<std::sync::Arc<egui::ColorImage>> = ctx.input(|i| {
            i.raw
                .events
                .iter()
                .filter_map(|e| match e {
                    egui::Event::Screenshot { image, .. } => Some(image.clone()),
                    _ => None,
                })
                .collect()
        });
        let Some(image) = shots.last() else {
            return;
        };
        let (Some((path, _)), Some(rect)) = (self.pending_view_png.take(), self.map.rect) else {
            return;
        };
        match map_region(image, rect, ctx.pixels_per_point()) {
            Some((width, height, rgba)) => self.jobs.start_task(Task::WritePng {
                path,
                width,
                height,
                rgba,
            }),
            None => self.error(format!(
                "cannot write {}: the map is not on screen",
                path.display()
            )),
        }
    }
}

/// The `rect` (points) of a captured frame as RGBA: (width, height,
/// pixels), or None when the rectangle is empty. The PNG is encoded and
/// written by a task.
fn map_region(
    image: &egui::ColorImage,
    rect: Rect,
    pixels_per_point: f32,
) -> Option<(u32, u32, Vec<u8>)> {
    let [iw, ih] = image.size;
    let x0 = ((rect.left() * pixels_per_point).round().max(0.0) as usize).min(iw);
    let y0 = ((rect.top() * pixels_per_point).round().max(0.0) as usize).min(ih);
    let x1 = ((rect.right() * pixels_per_point).round().max(0.0) as usize).min(iw);
    let y1 = ((rect.bottom() * pixels_per_point).round().max(0.0) as usize).min(ih);
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    let mut rgba = Vec::with_capacity(4 * (x1 - x0) * (y1 - y0));
    for y in y0..y1 {
        for p in &image.pixels[y * iw + x0..y * iw + x1] {
            rgba.extend_from_slice(&p.to_array());
        }
    }
    Some(((x1 - x0) as u32, (y1 - y0) as u32, rgba))
}
