//! The timestep explorer (for teaching): a slider over t showing the
//! noised input x_t of a rendering, as Stage B sees it at that timestep.

use eframe::egui::{self, ColorImage, RichText, TextureOptions};

use super::app::StudioApp;
use super::layers::LayerId;
use crate::pipeline::noised::noised_rendering;
use crate::products::Rgb8Image;

/// The seed of the explorer's noise image.
pub const EXPLORER_SEED: u64 = 0;

/// The explorer's state: what it shows and the image it made.
#[derive(Default)]
pub struct Explorer {
    pub open: bool,
    pub t: usize,
    pub layer: Option<LayerId>,
    /// (t, layer, renderings version) of `image`.
    pub made_from: Option<(usize, LayerId, u64)>,
    pub image: Option<Rgb8Image>,
    texture: Option<egui::TextureHandle>,
}

impl StudioApp {
    pub(crate) fn explorer_window(&mut self, ctx: &egui::Context) {
        if !self.explorer.open {
            return;
        }
        let Some(session) = &self.session else {
            return;
        };
        let layer = self.explorer.layer.unwrap_or(LayerId::Prgb);
        let source = match layer {
            LayerId::Pca => session.renderings.pca.as_ref().map(|(i, _)| i),
            LayerId::Pauli => session.renderings.pauli.as_ref(),
            _ => session.renderings.prgb.as_ref().map(|(i, _)| i),
        };
        let key = (self.explorer.t, layer, self.renderings_version);
        if self.explorer.made_from != Some(key)
            && let Some(src) = source
        {
            let noised = noised_rendering(src, self.explorer.t, EXPLORER_SEED);
            let color = ColorImage::from_rgb([noised.width, noised.height], &noised.data);
            match &mut self.explorer.texture {
                Some(t) => t.set(color, TextureOptions::NEAREST),
                None => {
                    self.explorer.texture =
                        Some(ctx.load_texture("x_t", color, TextureOptions::NEAREST))
                }
            }
            self.explorer.image = Some(noised);
            self.explorer.made_from = Some(key);
        }
        let mut open = true;
        let mut t = self.explorer.t;
        let mut chosen = layer;
        egui::Window::new("Timestep explorer")
            .open(&mut open)
            .default_width(420.0)
            .show(ctx, |ui| {
                ui.add(egui::Slider::new(&mut t, 0..=999).text("t"));
                ui.horizontal(|ui| {
                    for l in [LayerId::Prgb, LayerId::Pca, LayerId::Pauli] {
                        ui.selectable_value(&mut chosen, l, l.name());
                    }
                });
                ui.label(
                    RichText::new(
                        "x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps, cosine schedule, one seeded noise image",
                    )
                    .small()
                    .weak(),
                );
                if let Some(tex) = &self.explorer.texture {
                    let size = tex.size_vec2();
                    let scale = (ui.available_width() / size.x).min(1.0);
                    ui.image((tex.id(), size * scale));
                }
            });
        self.explorer.open = open;
        self.explorer.t = t;
        self.explorer.layer = Some(chosen);
    }
}
