//! Where the image lies on screen: a zoom (screen points per image pixel) and
//! the image position under the view's centre. Pan and zoom change only this.

use eframe::egui::{Pos2, Rect, Vec2, pos2, vec2};

/// The view of an image of `image_size` pixels in a screen rectangle.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ViewTransform {
    /// Image coordinates (pixels, y down) shown at the centre of the view.
    pub center: [f32; 2],
    /// Screen points per image pixel.
    pub zoom: f32,
}

pub const MIN_ZOOM: f32 = 1.0 / 64.0;
pub const MAX_ZOOM: f32 = 64.0;

impl Default for ViewTransform {
    fn default() -> Self {
        Self {
            center: [0.0, 0.0],
            zoom: 1.0,
        }
    }
}

impl ViewTransform {
    /// The whole image, centred, as large as fits (with a small margin).
    pub fn fit(image_size: Vec2, view: Rect) -> Self {
        let zoom = if image_size.x > 0.0 && image_size.y > 0.0 {
            (view.width() / image_size.x).min(view.height() / image_size.y) * 0.98
        } else {
            1.0
        };
        Self {
            center: [image_size.x / 2.0, image_size.y / 2.0],
            zoom: zoom.clamp(MIN_ZOOM, MAX_ZOOM),
        }
    }

    /// The screen position of image position `p`.
    pub fn screen_from_image(&self, view: Rect, p: Pos2) -> Pos2 {
        view.center() + (p - pos2(self.center[0], self.center[1])) * self.zoom
    }

    /// The image position under screen position `s`.
    pub fn image_from_screen(&self, view: Rect, s: Pos2) -> Pos2 {
        pos2(self.center[0], self.center[1]) + (s - view.center()) / self.zoom
    }

    /// Moves the image by `delta` screen points.
    pub fn pan(&mut self, delta: Vec2) {
        self.center[0] -= delta.x / self.zoom;
        self.center[1] -= delta.y / self.zoom;
    }

    /// Zooms by `factor`, keeping the image point under `anchor` in place.
    pub fn zoom_at(&mut self, view: Rect, anchor: Pos2, factor: f32) {
        let before = self.image_from_screen(view, anchor);
        self.zoom = (self.zoom * factor).clamp(MIN_ZOOM, MAX_ZOOM);
        let after = self.image_from_screen(view, anchor);
        self.center[0] += before.x - after.x;
        self.center[1] += before.y - after.y;
    }

    /// Keeps at least part of the image in view.
    pub fn clamp_to(&mut self, image_size: Vec2) {
        self.center[0] = self.center[0].clamp(0.0, image_size.x.max(0.0));
        self.center[1] = self.center[1].clamp(0.0, image_size.y.max(0.0));
    }

    /// The image pixel (row, col) under screen position `s`, if inside.
    pub fn pixel_at(&self, view: Rect, s: Pos2, image_size: Vec2) -> Option<(usize, usize)> {
        let p = self.image_from_screen(view, s);
        (p.x >= 0.0 && p.y >= 0.0 && p.x < image_size.x && p.y < image_size.y)
            .then(|| (p.y.floor() as usize, p.x.floor() as usize))
    }

    /// Image coordinates of the view's top-left corner and its extent in
    /// image pixels (what the shader needs).
    pub fn image_window(&self, view: Rect) -> ([f32; 2], [f32; 2]) {
        let o = self.image_from_screen(view, view.min);
        let span = vec2(view.width(), view.height()) / self.zoom;
        ([o.x, o.y], [span.x, span.y])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screen_and_image_are_inverse_and_zoom_keeps_the_anchor() {
        let view = Rect::from_min_size(pos2(100.0, 50.0), vec2(800.0, 600.0));
        let mut t = ViewTransform::fit(vec2(1723.0, 476.0), view);
        assert!((t.zoom - 800.0 / 1723.0 * 0.98).abs() < 1e-6);
        let p = pos2(321.5, 99.25);
        let s = t.screen_from_image(view, p);
        let back = t.image_from_screen(view, s);
        assert!((back - p).length() < 1e-3);
        let anchor = pos2(300.0, 200.0);
        let under = t.image_from_screen(view, anchor);
        t.zoom_at(view, anchor, 3.0);
        assert!((t.image_from_screen(view, anchor) - under).length() < 1e-3);
        t.pan(vec2(10.0, 0.0));
        assert!((t.image_from_screen(view, anchor).x - (under.x - 10.0 / t.zoom)).abs() < 1e-3);
        let (origin, span) = t.image_window(view);
        assert!((span[0] - 800.0 / t.zoom).abs() < 1e-3);
        assert!((pos2(origin[0], origin[1]) - t.image_from_screen(view, view.min)).length() < 1e-3);
    }
}
