//! The map's legend: class colours and names, drawn over the map's
//! bottom-left corner whenever a class layer shows (and so in an exported
//! view).

use eframe::egui::{self, Color32, Pos2, Rect, Stroke, Vec2};

use super::layers::{LayerId, available};
use super::store::Store;

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
