//! "Export view as PNG": the next frame is captured as rendered — layers,
//! outlines, legend (`legend.rs`) — and the map's rectangle of it is written
//! atomically as a PNG by a task.

use eframe::egui::{self, Rect};

use super::app::StudioApp;
use crate::jobs::Task;

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
