//! The map view without wgpu (the glow fallback): the visible layers are
//! composited on the CPU with the same stretch, palette and opacity rules as
//! `shaders/map.wgsl`, into one egui texture that is rebuilt only when a
//! layer, its settings or the labels change. A scene larger than the
//! largest texture (or than 4096 pixels a side) is composited from every
//! `step`-th pixel.

use eframe::egui::{self, Color32, ColorImage, TextureHandle, TextureOptions};

use super::layers::{LayerId, LayerStack};
use crate::scene::ClassInfo;
use crate::session::Session;

/// The composite's longest side, at most.
pub const CPU_MAP_SIDE: usize = 4096;

/// The composited texture and what it was made from.
#[derive(Default)]
pub struct CpuMap {
    texture: Option<TextureHandle>,
    made_from: Option<(LayerStack, u64, u64, Vec<ClassInfo>, bool)>,
}

/// The RGB layers and label overlays as the shader composites them, one
/// output pixel for each `step`-th scene pixel across and down (1: all).
pub fn composite(session: &Session, layers: &LayerStack, step: usize) -> ColorImage {
    let (w, h) = session
        .scene
        .grid()
        .map(|g| (g.width, g.height))
        .unwrap_or((0, 0));
    let step = step.max(1);
    let (ow, oh) = (w.div_ceil(step), h.div_ceil(step));
    // The scene pixel behind each output pixel.
    let source: Vec<usize> = (0..oh)
        .flat_map(|y| (0..ow).map(move |x| y * step * w + x * step))
        .collect();
    let mut rgb = vec![[0f32; 3]; ow * oh];
    let mut palette = [[0f32; 4]; 256];
    for c in &session.classes {
        palette[c.value as usize] = [
            c.color[0] as f32 / 255.0,
            c.color[1] as f32 / 255.0,
            c.color[2] as f32 / 255.0,
            1.0,
        ];
    }
    for l in layers
        .layers
        .iter()
        .filter(|l| l.visible && l.opacity > 0.0)
    {
        let image = match l.id {
            LayerId::Prgb => session.renderings.prgb.as_ref().map(|(i, _)| i),
            LayerId::Pca => session.renderings.pca.as_ref().map(|(i, _)| i),
            LayerId::Pauli => session.renderings.pauli.as_ref(),
            _ => None,
        };
        let uncertainty = (l.id == LayerId::Uncertainty)
            .then(|| session.result.as_ref()?.uncertainty_rgb())
            .flatten();
        if let Some(u) = uncertainty {
            for (out, &i) in rgb.iter_mut().zip(&source) {
                let p = &u[i * 3..i * 3 + 3];
                for c in 0..3 {
                    out[c] = p[c] as f32 / 255.0 * l.opacity + out[c] * (1.0 - l.opacity);
                }
            }
            continue;
        }
        if let Some(image) = image {
            for (out, &i) in rgb.iter_mut().zip(&source) {
                let p = &image.data[i * 3..i * 3 + 3];
                for c in 0..3 {
                    let range = (l.hi[c] - l.lo[c]).max(1e-6);
                    let v = ((p[c] as f32 / 255.0 - l.lo[c]) / range).clamp(0.0, 1.0);
                    out[c] = v * l.opacity + out[c] * (1.0 - l.opacity);
                }
            }
            continue;
        }
        let labels = match l.id {
            LayerId::TrainLabels => session
                .scene
                .train_labels
                .as_ref()
                .map(|l| l.data.as_slice()),
            LayerId::TestLabels => session
                .scene
                .test_labels
                .as_ref()
                .map(|l| l.data.as_slice()),
            LayerId::ClassMap => session.shown_class_map(),
            LayerId::CleanedMap => session.cleaned_class_map(),
            _ => None,
        };
        if let Some(labels) = labels {
            for (out, &i) in rgb.iter_mut().zip(&source) {
                let e = palette[labels[i] as usize];
                let a = e[3] * l.opacity;
                if a > 0.0 {
                    for c in 0..3 {
                        out[c] = e[c] * a + out[c] * (1.0 - a);
                    }
                }
            }
        }
    }
    let pixels = rgb
        .iter()
        .map(|p| {
            let q = |v: f32| (v * 255.0).round().clamp(0.0, 255.0) as u8;
            Color32::from_rgb(q(p[0]), q(p[1]), q(p[2]))
        })
        .collect();
    ColorImage::new([ow, oh], pixels)
}

/// The step that makes a `width` x `height` scene fit `max_side`.
pub fn step_for(width: usize, height: usize, max_side: usize) -> usize {
    width.max(height).div_ceil(max_side.max(1)).max(1)
}

impl CpuMap {
    /// The texture for this frame, rebuilt when the inputs changed, and
    /// the part of it the scene covers (its last column and row may reach
    /// past the scene when it is composited at a step).
    pub fn texture(
        &mut self,
        ctx: &egui::Context,
        session: &Session,
        layers: &LayerStack,
        renderings_version: u64,
        nearest: bool,
    ) -> Option<(&TextureHandle, [f32; 2])> {
        let key = (
            layers.clone(),
            session.labels_revision,
            renderings_version,
            session.classes.clone(),
            nearest,
        );
        let options = if nearest {
            TextureOptions::NEAREST
        } else {
            TextureOptions::LINEAR
        };
        let (w, h) = session
            .scene
            .grid()
            .map(|g| (g.width, g.height))
            .unwrap_or((0, 0));
        // At most 4096 pixels a side: the composite holds 12 bytes a pixel
        // while it is made (1.4 GB for a Sentinel-2 tile at every pixel).
        let step = step_for(w, h, ctx.input(|i| i.max_texture_side).min(CPU_MAP_SIDE));
        if self.made_from.as_ref() != Some(&key) || self.texture.is_none() {
            let image = composite(session, layers, step);
            match &mut self.texture {
                Some(t) => t.set(image, options),
                None => self.texture = Some(ctx.load_texture("map (CPU)", image, options)),
            }
            self.made_from = Some(key);
        }
        let covered = |n: usize| {
            let padded = n.div_ceil(step) * step;
            if padded == 0 {
                1.0
            } else {
                n as f32 / padded as f32
            }
        };
        self.texture.as_ref().map(|t| (t, [covered(w), covered(h)]))
    }
}
