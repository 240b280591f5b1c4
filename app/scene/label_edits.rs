//! Undoable edits of the label layers: brush strokes, erasing, merging and
//! removing classes. One stroke is one undo step; every edit reports the
//! rectangle of pixels it touched so a view re-uploads only that part.

use std::collections::HashMap;

use super::assemble::Scene;
use super::label_image::{LabelImage, LabelLayer};

/// A rectangle of pixels, `x1`/`y1` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelRect {
    pub x0: usize,
    pub y0: usize,
    pub x1: usize,
    pub y1: usize,
}

impl PixelRect {
    pub fn width(&self) -> usize {
        self.x1 - self.x0
    }

    pub fn height(&self) -> usize {
        self.y1 - self.y0
    }

    pub fn union(self, other: PixelRect) -> PixelRect {
        PixelRect {
            x0: self.x0.min(other.x0),
            y0: self.y0.min(other.y0),
            x1: self.x1.max(other.x1),
            y1: self.y1.max(other.y1),
        }
    }

    fn of_pixel(i: usize, width: usize) -> PixelRect {
        let (y, x) = (i / width, i % width);
        PixelRect {
            x0: x,
            y0: y,
            x1: x + 1,
            y1: y + 1,
        }
    }
}

/// The pixels one edit changed in one layer: (index, before, after).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerChange {
    pub layer: LabelLayer,
    pub pixels: Vec<(u32, u8, u8)>,
    pub rect: Option<PixelRect>,
}

impl LayerChange {
    fn bytes(&self) -> usize {
        self.pixels.len() * std::mem::size_of::<(u32, u8, u8)>()
    }
}

/// One undo step: pixel changes in one or both layers, and the class list
/// before and after where the edit changed it (merge, remove).
#[derive(Debug, Clone, PartialEq)]
pub struct Edit<C> {
    pub description: String,
    pub changes: Vec<LayerChange>,
    pub classes: Option<(Vec<C>, Vec<C>)>,
}

/// Where an undone or redone edit lands: the layers and rectangles touched,
/// and the class list to show from now on (when the edit changed it).
#[derive(Debug, Clone, PartialEq)]
pub struct Applied<C> {
    pub touched: Vec<(LabelLayer, PixelRect)>,
    pub classes: Option<Vec<C>>,
}

/// A disc-shaped brush: `value` 0 erases.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Brush {
    pub value: u8,
    /// Diameter in pixels (1 = a single pixel).
    pub size: f32,
}

/// A stroke being painted: applied to the layer as the pointer moves, kept
/// as one change when it ends.
#[derive(Debug, Clone)]
pub struct Stroke {
    layer: LabelLayer,
    brush: Brush,
    before: HashMap<u32, u8>,
    last: Option<(f32, f32)>,
    rect: Option<PixelRect>,
}

impl Stroke {
    pub fn new(layer: LabelLayer, brush: Brush) -> Self {
        Self {
            layer,
            brush,
            before: HashMap::new(),
            last: None,
            rect: None,
        }
    }

    pub fn layer(&self) -> LabelLayer {
        self.layer
    }

    /// Paints from the previous pointer position (if any) to `(x, y)` in
    /// image coordinates (pixel centres at +0.5); returns the pixels touched.
    /// `counts` (pixels per class value of the layer) is kept up to date.
    pub fn move_to(
        &mut self,
        labels: &mut LabelImage,
        counts: &mut [usize; 256],
        x: f32,
        y: f32,
    ) -> Option<PixelRect> {
        let from = self.last.unwrap_or((x, y));
        self.last = Some((x, y));
        let radius = (self.brush.size.max(1.0)) / 2.0;
        let (w, h) = (labels.grid.width, labels.grid.height);
        if w == 0 || h == 0 {
            return None;
        }
        // Stamp discs along the segment, at most half a pixel apart.
        let (dx, dy) = (x - from.0, y - from.1);
        let steps = ((dx * dx + dy * dy).sqrt() * 2.0).ceil().max(1.0) as usize;
        let mut touched: Option<PixelRect> = None;
        for s in 0..=steps {
            let f = s as f32 / steps as f32;
            let (cx, cy) = (from.0 + dx * f, from.1 + dy * f);
            if let Some(r) = self.stamp(labels, counts, cx, cy, radius) {
                touched = Some(touched.map_or(r, |t| t.union(r)));
            }
        }
        if let Some(t) = touched {
            self.rect = Some(self.rect.map_or(t, |r| r.union(t)));
        }
        touched
    }

    fn stamp(
        &mut self,
        labels: &mut LabelImage,
        counts: &mut [usize; 256],
        cx: f32,
        cy: f32,
        radius: f32,
    ) -> Option<PixelRect> {
        let (w, h) = (labels.grid.width as i64, labels.grid.height as i64);
        let x0 = ((cx - radius).floor() as i64).max(0);
        let x1 = ((cx + radius).ceil() as i64).min(w);
        let y0 = ((cy - radius).floor() as i64).max(0);
        let y1 = ((cy + radius).ceil() as i64).min(h);
        let r2 = radius * radius;
        let mut rect: Option<PixelRect> = None;
        for y in y0..y1 {
            for x in x0..x1 {
                let (px, py) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                // A size-1 brush paints the pixel under the pointer.
                let inside = px * px + py * py <= r2 || (px.abs() <= 0.5 && py.abs() <= 0.5);
                if !inside {
                    continue;
                }
                let i = (y * w + x) as usize;
                let old = labels.data[i];
                if old == self.brush.value {
                    continue;
                }
                self.before.entry(i as u32).or_insert(old);
                labels.data[i] = self.brush.value;
                counts[old as usize] = counts[old as usize].saturating_sub(1);
                counts[self.brush.value as usize] += 1;
                let p = PixelRect::of_pixel(i, w as usize);
                rect = Some(rect.map_or(p, |r| r.union(p)));
            }
        }
        rect
    }

    /// Ends the stroke; None when it changed nothing.
    pub fn finish(self, labels: &LabelImage) -> Option<LayerChange> {
        let mut pixels: Vec<(u32, u8, u8)> = self
            .before
            .into_iter()
            .map(|(i, old)| (i, old, labels.data[i as usize]))
            .filter(|(_, old, new)| old != new)
            .collect();
        if pixels.is_empty() {
            return None;
        }
        pixels.sort_unstable_by_key(|p| p.0);
        Some(LayerChange {
            layer: self.layer,
            pixels,
            rect: self.rect,
        })
    }
}

/// Every pixel of `labels` mapped through `map(index, value)`, applied, as a
/// change.
pub fn relabel(
    labels: &mut LabelImage,
    layer: LabelLayer,
    map: impl Fn(usize, u8) -> u8,
) -> LayerChange {
    let w = labels.grid.width.max(1);
    let mut pixels = Vec::new();
    let mut rect: Option<PixelRect> = None;
    for (i, v) in labels.data.iter_mut().enumerate() {
        let new = map(i, *v);
        if new != *v {
            pixels.push((i as u32, *v, new));
            *v = new;
            let p = PixelRect::of_pixel(i, w);
            rect = Some(rect.map_or(p, |r| r.union(p)));
        }
    }
    LayerChange {
        layer,
        pixels,
        rect,
    }
}

/// Done and undone edits; unlimited depth while the history stays under
/// `budget_bytes` (the oldest steps are dropped past it).
#[derive(Debug, Clone)]
pub struct UndoHistory<C> {
    done: Vec<Edit<C>>,
    undone: Vec<Edit<C>>,
    budget_bytes: usize,
}

impl<C> Default for UndoHistory<C> {
    fn default() -> Self {
        Self {
            done: Vec::new(),
            undone: Vec::new(),
            budget_bytes: 512 << 20,
        }
    }
}

fn apply_change(change: &LayerChange, labels: &mut LabelImage, forward: bool) {
    for &(i, old, new) in &change.pixels {
        if let Some(v) = labels.data.get_mut(i as usize) {
            *v = if forward { new } else { old };
        }
    }
}

impl<C: Clone> UndoHistory<C> {
    /// Records an edit already applied to the layers; clears the redo list.
    pub fn push(&mut self, edit: Edit<C>) {
        if edit.changes.iter().all(|c| c.pixels.is_empty()) && edit.classes.is_none() {
            return;
        }
        self.undone.clear();
        self.done.push(edit);
        while self.bytes() > self.budget_bytes && self.done.len() > 1 {
            self.done.remove(0);
        }
    }

    fn bytes(&self) -> usize {
        self.done
            .iter()
            .chain(&self.undone)
            .flat_map(|e| &e.changes)
            .map(LayerChange::bytes)
            .sum()
    }

    pub fn can_undo(&self) -> bool {
        !self.done.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.undone.is_empty()
    }

    /// What the next undo would revert.
    pub fn undo_description(&self) -> Option<&str> {
        self.done.last().map(|e| e.description.as_str())
    }

    /// What the next redo would repeat.
    pub fn redo_description(&self) -> Option<&str> {
        self.undone.last().map(|e| e.description.as_str())
    }

    /// Reverts the last edit in the scene's label layers.
    pub fn undo(&mut self, scene: &mut Scene) -> Option<Applied<C>> {
        let edit = self.done.pop()?;
        let applied = Self::apply(&edit, scene, false);
        self.undone.push(edit);
        Some(applied)
    }

    /// Repeats the last undone edit.
    pub fn redo(&mut self, scene: &mut Scene) -> Option<Applied<C>> {
        let edit = self.undone.pop()?;
        let applied = Self::apply(&edit, scene, true);
        self.done.push(edit);
        Some(applied)
    }

    fn apply(edit: &Edit<C>, scene: &mut Scene, forward: bool) -> Applied<C> {
        let mut touched = Vec::new();
        for change in &edit.changes {
            if let Some(labels) = scene.labels_mut(change.layer) {
                apply_change(change, labels, forward);
                if let Some(r) = change.rect {
                    touched.push((change.layer, r));
                }
            }
        }
        let classes = edit.classes.as_ref().map(|(before, after)| {
            if forward {
                after.clone()
            } else {
                before.clone()
            }
        });
        Applied { touched, classes }
    }
}
