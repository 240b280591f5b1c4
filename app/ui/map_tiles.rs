//! Why this exists: a layer of a large scene (a Sentinel-2 tile is 10980 x
//! 10980 pixels) is larger than any GPU texture and than what is worth
//! keeping on the GPU at once. The map therefore draws every layer from
//! square tiles of a pyramid — level 0 the scene's pixels, each level above
//! half the size of the one below (box average for renderings, the top-left
//! pixel of each 2 x 2 block for label layers, so a class stays a class) —
//! and keeps only the tiles it has drawn lately. This module is the pure
//! part of that: which tiles cover which pixels, which level a zoom needs,
//! the pixels of a tile, and which tiles to let go. `map_view` uses it to
//! decide uploads and draws; `gpu_map` only obeys.

use std::collections::HashMap;

use super::layers::LayerId;
use crate::scene::PixelRect;

/// The side of a tile in pixels, unless the GPU's textures are smaller:
/// small enough that cutting one (1 MiB as RGBA) fits in a frame.
pub const TILE_SIDE: u32 = 512;

/// Bytes of tile textures the map keeps on the GPU (all layers together);
/// tiles drawn least lately go first when more are needed.
pub const GPU_BUDGET_BYTES: usize = 512 << 20;

/// Tiles cut and uploaded in one frame beside the coarsest level of each
/// shown layer (which always goes, so nothing is ever blank): cutting a
/// 512 x 512 tile takes 1-2 ms in a test build, so a pan or zoom into new
/// tiles shows the coarse level there for a few frames and never stalls
/// one.
pub const TILES_PER_FRAME: usize = 1;

/// One tile: a layer's pyramid level and its column and row there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileKey {
    pub layer: LayerId,
    pub level: u8,
    pub col: u32,
    pub row: u32,
}

/// The tiles of a scene's pyramid: how many levels, each level's size, the
/// tiles of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileGrid {
    pub width: u32,
    pub height: u32,
    pub side: u32,
}

impl TileGrid {
    pub fn new(width: u32, height: u32, side: u32) -> Self {
        Self {
            width,
            height,
            side: side.max(2),
        }
    }

    /// The size of `level` (each level halves the one below, rounding up).
    pub fn level_size(&self, level: u8) -> (u32, u32) {
        let f = |n: u32| n.div_ceil(1 << level).max(1);
        (f(self.width), f(self.height))
    }

    /// The coarsest level: the first that fits in one tile.
    pub fn top_level(&self) -> u8 {
        let mut level = 0;
        loop {
            let (w, h) = self.level_size(level);
            if (w <= self.side && h <= self.side) || level >= 30 {
                return level;
            }
            level += 1;
        }
    }

    /// Tiles across and down at `level`.
    pub fn tiles(&self, level: u8) -> (u32, u32) {
        let (w, h) = self.level_size(level);
        (w.div_ceil(self.side), h.div_ceil(self.side))
    }

    /// The pixels of a tile at its level.
    pub fn tile_rect(&self, key: TileKey) -> PixelRect {
        let (w, h) = self.level_size(key.level);
        let s = self.side as usize;
        PixelRect {
            x0: (key.col as usize * s).min(w as usize),
            y0: (key.row as usize * s).min(h as usize),
            x1: ((key.col as usize + 1) * s).min(w as usize),
            y1: ((key.row as usize + 1) * s).min(h as usize),
        }
    }

    /// The tile's texture: its pixels with one more on each side where the
    /// level has them, so that linear filtering across a tile border reads
    /// the neighbour's pixels and shows no seam.
    pub fn texture_rect(&self, key: TileKey) -> PixelRect {
        let (w, h) = self.level_size(key.level);
        let r = self.tile_rect(key);
        PixelRect {
            x0: r.x0.saturating_sub(1),
            y0: r.y0.saturating_sub(1),
            x1: (r.x1 + 1).min(w as usize),
            y1: (r.y1 + 1).min(h as usize),
        }
    }

    /// The scene pixels a tile stands for, as `[x0, y0, x1, y1]` (clipped
    /// to the scene).
    pub fn image_rect(&self, key: TileKey) -> [f32; 4] {
        let r = self.tile_rect(key);
        let s = (1u64 << key.level) as f32;
        [
            r.x0 as f32 * s,
            r.y0 as f32 * s,
            (r.x1 as f32 * s).min(self.width as f32),
            (r.y1 as f32 * s).min(self.height as f32),
        ]
    }

    /// The level whose pixels are closest to (not smaller than half) a
    /// screen pixel at `zoom` screen points per scene pixel and
    /// `pixels_per_point`.
    pub fn level_for_zoom(&self, zoom: f32, pixels_per_point: f32) -> u8 {
        let scene_per_screen = 1.0 / (zoom * pixels_per_point).max(1e-9);
        if scene_per_screen < 2.0 {
            return 0;
        }
        (scene_per_screen.log2().floor() as u8).min(self.top_level())
    }

    /// The tiles of `level` that meet the scene window `[x0, y0, x1, y1]`
    /// (scene pixels), row by row.
    pub fn visible_tiles(&self, layer: LayerId, level: u8, window: [f32; 4]) -> Vec<TileKey> {
        let (cols, rows) = self.tiles(level);
        let span = self.side as f32 * (1u64 << level) as f32;
        let range = |lo: f32, hi: f32, n: u32| {
            let a = (lo / span).floor().max(0.0) as u32;
            let b = ((hi / span).ceil().max(0.0) as u32).min(n);
            a..b
        };
        let mut out = Vec::new();
        for row in range(window[1], window[3], rows) {
            for col in range(window[0], window[2], cols) {
                out.push(TileKey {
                    layer,
                    level,
                    col,
                    row,
                });
            }
        }
        out
    }

    /// The tiles of every level that hold pixels of the scene rectangle
    /// `rect`, each with the part of its texture those pixels make (for
    /// patching a label layer after a stroke).
    pub fn tiles_touching(&self, layer: LayerId, rect: PixelRect) -> Vec<(TileKey, PixelRect)> {
        let mut out = Vec::new();
        if rect.x0 >= rect.x1 || rect.y0 >= rect.y1 {
            return out;
        }
        for level in 0..=self.top_level() {
            let lr = PixelRect {
                x0: rect.x0 >> level,
                y0: rect.y0 >> level,
                x1: ((rect.x1 - 1) >> level) + 1,
                y1: ((rect.y1 - 1) >> level) + 1,
            };
            let (cols, rows) = self.tiles(level);
            let s = self.side as usize;
            // Padded textures reach one pixel into their neighbours.
            let c0 = lr.x0.saturating_sub(1) / s;
            let r0 = lr.y0.saturating_sub(1) / s;
            let c1 = ((lr.x1 + 1).div_ceil(s)).min(cols as usize);
            let r1 = ((lr.y1 + 1).div_ceil(s)).min(rows as usize);
            for row in r0..r1 {
                for col in c0..c1 {
                    let key = TileKey {
                        layer,
                        level,
                        col: col as u32,
                        row: row as u32,
                    };
                    let t = self.texture_rect(key);
                    let part = PixelRect {
                        x0: lr.x0.max(t.x0),
                        y0: lr.y0.max(t.y0),
                        x1: lr.x1.min(t.x1),
                        y1: lr.y1.min(t.y1),
                    };
                    if part.x0 < part.x1 && part.y0 < part.y1 {
                        out.push((key, part));
                    }
                }
            }
        }
        out
    }
}

/// One level up of an RGB image (3 bytes a pixel): each pixel the rounded
/// mean of the 2 x 2 block below it (fewer at the right and bottom edges).
pub fn rgb_level_up(rgb: &[u8], width: usize, height: usize) -> Vec<u8> {
    use rayon::prelude::*;
    let (w2, h2) = (width.div_ceil(2), height.div_ceil(2));
    let mut out = vec![0u8; w2 * h2 * 3];
    out.par_chunks_mut(w2 * 3)
        .enumerate()
        .for_each(|(y, out_row)| {
            let rows = [2 * y, (2 * y + 1).min(height - 1)];
            let ny = if rows[0] == rows[1] { 1 } else { 2 };
            for x in 0..w2 {
                let cols = [2 * x, (2 * x + 1).min(width - 1)];
                let nx = if cols[0] == cols[1] { 1 } else { 2 };
                let n = (nx * ny) as u32;
                for c in 0..3 {
                    let mut sum = 0u32;
                    for &r in &rows[..ny] {
                        for &q in &cols[..nx] {
                            sum += u32::from(rgb[(r * width + q) * 3 + c]);
                        }
                    }
                    out_row[x * 3 + c] = ((sum + n / 2) / n) as u8;
                }
            }
        });
    out
}

/// The levels above 0 of an RGB image, smallest last.
pub fn rgb_pyramid(rgb: &[u8], grid: &TileGrid) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for level in 1..=grid.top_level() {
        let (w, h) = grid.level_size(level - 1);
        let below = out.last().map_or(rgb, |v| v.as_slice());
        out.push(rgb_level_up(below, w as usize, h as usize));
    }
    out
}

/// The RGBA bytes of `rect` (level pixels) of one RGB level `level_width`
/// pixels wide.
pub fn rgba_of(rgb: &[u8], level_width: usize, rect: PixelRect) -> Vec<u8> {
    let mut out = vec![255u8; rect.width() * rect.height() * 4];
    for (y, out_row) in (rect.y0..rect.y1).zip(out.chunks_exact_mut(rect.width() * 4)) {
        let row = &rgb[(y * level_width + rect.x0) * 3..(y * level_width + rect.x1) * 3];
        for (o, p) in out_row.chunks_exact_mut(4).zip(row.chunks_exact(3)) {
            o[..3].copy_from_slice(p);
        }
    }
    out
}

/// The bytes of `rect` at `level` of a label layer (one byte a pixel,
/// `width` wide): each level pixel is the scene pixel at its top-left.
pub fn labels_of(labels: &[u8], width: usize, level: u8, rect: PixelRect) -> Vec<u8> {
    let mut out = Vec::with_capacity(rect.width() * rect.height());
    for y in rect.y0..rect.y1 {
        let row = &labels[(y << level) * width..];
        if level == 0 {
            out.extend_from_slice(&row[rect.x0..rect.x1]);
        } else {
            out.extend(
                row.iter()
                    .skip(rect.x0 << level)
                    .step_by(1 << level)
                    .take(rect.width()),
            );
        }
    }
    out
}

/// Which tiles are on the GPU, their bytes and the frame that last drew
/// them.
#[derive(Debug, Default)]
pub struct Residency {
    tiles: HashMap<TileKey, (usize, u64)>,
    bytes: usize,
}

impl Residency {
    pub fn contains(&self, key: &TileKey) -> bool {
        self.tiles.contains_key(key)
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.tiles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tiles.is_empty()
    }

    /// A tile now on the GPU (or replaced there).
    pub fn insert(&mut self, key: TileKey, bytes: usize, frame: u64) {
        if let Some((old, _)) = self.tiles.insert(key, (bytes, frame)) {
            self.bytes -= old;
        }
        self.bytes += bytes;
    }

    /// Marks a tile as drawn in `frame`.
    pub fn touch(&mut self, key: &TileKey, frame: u64) {
        if let Some(t) = self.tiles.get_mut(key) {
            t.1 = frame;
        }
    }

    /// The resident tiles of a layer.
    pub fn of_layer(&self, layer: LayerId) -> Vec<TileKey> {
        let mut keys: Vec<TileKey> = self
            .tiles
            .keys()
            .filter(|k| k.layer == layer)
            .copied()
            .collect();
        keys.sort();
        keys
    }

    pub fn remove(&mut self, key: &TileKey) -> bool {
        match self.tiles.remove(key) {
            Some((b, _)) => {
                self.bytes -= b;
                true
            }
            None => false,
        }
    }

    /// Tiles to let go, least lately drawn first, until `budget` bytes are
    /// left; tiles drawn in `frame` stay whatever the budget.
    pub fn over_budget(&mut self, budget: usize, frame: u64) -> Vec<TileKey> {
        if self.bytes <= budget {
            return Vec::new();
        }
        let mut by_age: Vec<(u64, TileKey)> = self
            .tiles
            .iter()
            .filter(|(_, (_, f))| *f < frame)
            .map(|(k, (_, f))| (*f, *k))
            .collect();
        by_age.sort();
        let mut out = Vec::new();
        for (_, key) in by_age {
            if self.bytes <= budget {
                break;
            }
            self.remove(&key);
            out.push(key);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(level: u8, col: u32, row: u32) -> TileKey {
        TileKey {
            layer: LayerId::Prgb,
            level,
            col,
            row,
        }
    }

    #[test]
    fn a_sentinel_2_tile_makes_a_pyramid_whose_tiles_cover_each_level_once() {
        let g = TileGrid::new(10980, 10980, 1024);
        assert_eq!(g.top_level(), 4, "10980 / 16 = 687 fits one tile");
        assert_eq!(TileGrid::new(10980, 10980, TILE_SIDE).top_level(), 5);
        assert_eq!(g.level_size(4), (687, 687));
        assert_eq!(g.tiles(0), (11, 11));
        for level in 0..=g.top_level() {
            let (w, h) = g.level_size(level);
            let (cols, rows) = g.tiles(level);
            let mut covered = 0usize;
            for row in 0..rows {
                for col in 0..cols {
                    let r = g.tile_rect(key(level, col, row));
                    assert!(r.x0 < r.x1 && r.y0 < r.y1);
                    covered += r.width() * r.height();
                }
            }
            assert_eq!(covered, w as usize * h as usize, "level {level}");
        }
        // A small scene is one tile, level 0.
        let small = TileGrid::new(512, 512, 1024);
        assert_eq!(small.top_level(), 0);
        assert_eq!(small.tiles(0), (1, 1));
        assert_eq!(small.texture_rect(key(0, 0, 0)).x1, 512);
    }

    #[test]
    fn textures_reach_one_pixel_into_their_neighbours_and_map_back_to_the_scene() {
        let g = TileGrid::new(300, 200, 128);
        let inner = g.texture_rect(key(0, 1, 1));
        assert_eq!(
            (inner.x0, inner.y0, inner.x1, inner.y1),
            (127, 127, 257, 200)
        );
        assert_eq!(g.image_rect(key(0, 2, 1)), [256.0, 128.0, 300.0, 200.0]);
        // Level 1 is 150 x 100: two tiles across (128 + 22 columns).
        assert_eq!(g.tiles(1), (2, 1));
        assert_eq!(g.image_rect(key(1, 1, 0)), [256.0, 0.0, 300.0, 200.0]);
    }

    #[test]
    fn the_level_follows_the_zoom_and_stops_at_the_top() {
        let g = TileGrid::new(10980, 10980, 1024);
        assert_eq!(g.level_for_zoom(1.0, 1.0), 0);
        assert_eq!(g.level_for_zoom(0.6, 1.0), 0);
        assert_eq!(g.level_for_zoom(0.5, 1.0), 1);
        assert_eq!(g.level_for_zoom(0.5, 2.0), 0, "a HiDPI screen needs finer");
        assert_eq!(g.level_for_zoom(0.09, 1.0), 3);
        assert_eq!(g.level_for_zoom(1.0 / 64.0, 1.0), 4);
    }

    #[test]
    fn visible_tiles_are_those_the_window_meets() {
        let g = TileGrid::new(10980, 10980, 1024);
        let v = g.visible_tiles(LayerId::Prgb, 0, [1000.0, 2000.0, 2100.0, 2040.0]);
        let cells: Vec<(u32, u32)> = v.iter().map(|k| (k.col, k.row)).collect();
        assert_eq!(cells, vec![(0, 1), (1, 1), (2, 1)]);
        // Outside the scene: none.
        assert!(
            g.visible_tiles(LayerId::Prgb, 0, [-500.0, -500.0, -10.0, -10.0])
                .is_empty()
        );
        // The top level is one tile wherever the window is.
        assert_eq!(
            g.visible_tiles(LayerId::Prgb, 4, [-1e5, -1e5, 1e5, 1e5])
                .len(),
            1
        );
    }

    #[test]
    fn a_stroke_patches_each_level_where_its_pixels_went() {
        let g = TileGrid::new(300, 200, 128);
        // Pixels (126..130, 10..12) at level 0 lie in tiles 0 and 1 (and in
        // tile 1's padding); at level 1 they are (63..65, 5..6), at the
        // top level 2 (31..33, 2..3).
        let touched = g.tiles_touching(
            LayerId::TrainLabels,
            PixelRect {
                x0: 126,
                y0: 10,
                x1: 130,
                y1: 12,
            },
        );
        let at: Vec<(u8, u32, u32, usize, usize)> = touched
            .iter()
            .map(|(k, r)| (k.level, k.col, k.row, r.x0, r.x1))
            .collect();
        assert_eq!(
            at,
            vec![
                (0, 0, 0, 126, 129),
                (0, 1, 0, 127, 130),
                (1, 0, 0, 63, 65),
                (2, 0, 0, 31, 33)
            ]
        );
        assert_eq!(g.top_level(), 2);
    }

    #[test]
    fn renderings_average_and_labels_keep_a_class() {
        // 3 x 3 RGB: the level above is 2 x 2; the right column and the
        // bottom row average fewer pixels.
        let rgb: Vec<u8> = (0..27).map(|i| (i * 9) as u8).collect();
        let up = rgb_level_up(&rgb, 3, 3);
        assert_eq!(up.len(), 12);
        let mean = |ps: &[usize], c: usize| {
            let s: u32 = ps.iter().map(|&p| u32::from(rgb[p * 3 + c])).sum();
            ((s + ps.len() as u32 / 2) / ps.len() as u32) as u8
        };
        assert_eq!(up[0], mean(&[0, 1, 3, 4], 0));
        assert_eq!(up[3 + 2], mean(&[2, 5], 2));
        assert_eq!(up[9 + 1], mean(&[8], 1));
        let g = TileGrid::new(3, 3, 2);
        let p = rgb_pyramid(&rgb, &g);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0], up);
        let rgba = rgba_of(
            &up,
            2,
            PixelRect {
                x0: 1,
                y0: 1,
                x1: 2,
                y1: 2,
            },
        );
        assert_eq!(rgba, vec![up[9], up[10], up[11], 255]);
        // Labels: the top-left pixel of each block, never a blend.
        let labels = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        let full = PixelRect {
            x0: 0,
            y0: 0,
            x1: 2,
            y1: 2,
        };
        assert_eq!(labels_of(&labels, 4, 1, full), vec![1, 3, 9, 11]);
    }

    #[test]
    fn tiles_drawn_least_lately_go_first_and_this_frame_s_stay() {
        let mut r = Residency::default();
        r.insert(key(0, 0, 0), 100, 1);
        r.insert(key(0, 1, 0), 100, 2);
        r.insert(key(0, 2, 0), 100, 3);
        r.touch(&key(0, 0, 0), 3);
        assert_eq!(r.bytes(), 300);
        assert_eq!(r.over_budget(150, 3), vec![key(0, 1, 0)]);
        assert_eq!(r.bytes(), 200, "both drawn in frame 3 stay over budget");
        assert_eq!(r.over_budget(100, 4), vec![key(0, 0, 0)]);
        r.insert(key(0, 2, 0), 40, 4);
        assert_eq!(r.bytes(), 40, "a replaced tile counts once");
        assert!(r.remove(&key(0, 2, 0)));
        assert!(r.is_empty());
    }
}
