//! The timestep explorer (for teaching): a slider over t showing the
//! noised input x_t of a rendering exactly as Stage B makes it at that
//! timestep (its seeded noise image on every patch, made as a task);
//! a sweep (Stage B at every step of t, in the background) plotting OA and
//! mF1 against t like the paper's Fig. 2 with the best t marked, and the
//! class map of the swept t nearest to the slider.

use eframe::egui::{self, Color32, ColorImage, RichText, TextureOptions};
use egui_plot::{Legend, Line, Plot, PlotPoints, Points, VLine};

use super::command::AppCommand;
use super::layers::LayerId;
use super::view_context::ViewContext;
use crate::jobs::classify::{SweepPoint, best_of, sweep_timesteps};
use crate::jobs::{ProjectRequest, Projection};
use crate::pipeline::Modality;
use crate::pipeline::classification::available_modalities;
use crate::products::Rgb8Image;

/// The explorer's state: what it shows and the image it made.
pub struct Explorer {
    pub open: bool,
    pub t: usize,
    pub layer: Option<LayerId>,
    /// (t, layer, renderings version, seed, patch) of `image`, and of the
    /// image being made.
    pub made_from: Option<ExplorerKey>,
    requested: Option<ExplorerKey>,
    pub image: Option<Rgb8Image>,
    texture: Option<egui::TextureHandle>,
    texture_dirty: bool,
    /// The last sweep's points and the label revision they were made from.
    pub sweep: Vec<SweepPoint>,
    pub sweep_revision: Option<u64>,
    /// Spacing of the swept timesteps.
    pub sweep_step: i64,
    /// The t of the class map in `class_map_texture`.
    pub class_map_from: Option<i64>,
    class_map_texture: Option<egui::TextureHandle>,
    /// The last feature projection made, and whether its texture must be
    /// refreshed.
    pub projection: Option<Projection>,
    projection_texture: Option<egui::TextureHandle>,
    projection_dirty: bool,
}

impl Default for Explorer {
    fn default() -> Self {
        Self {
            open: false,
            t: 0,
            layer: None,
            made_from: None,
            requested: None,
            image: None,
            texture: None,
            texture_dirty: false,
            sweep: Vec::new(),
            sweep_revision: None,
            sweep_step: 100,
            class_map_from: None,
            class_map_texture: None,
            projection: None,
            projection_texture: None,
            projection_dirty: false,
        }
    }
}

/// What an x_t image is made from: t, layer, renderings version, Stage B's
/// noise seed and patch size.
pub type ExplorerKey = (usize, LayerId, u64, u64, usize);

impl Explorer {
    /// Shows x_t made at `t` (stale images, of a t the slider has left, are
    /// dropped: the latest request is on its way).
    pub fn set_noised(&mut self, image: Rgb8Image, t: usize) {
        if self.requested.is_some_and(|k| k.0 == t) {
            self.made_from = self.requested.take();
            self.image = Some(image);
            self.texture_dirty = true;
        }
    }

    /// Shows `p` as the feature projection.
    pub fn set_projection(&mut self, p: Projection) {
        self.projection = Some(p);
        self.projection_dirty = true;
    }

    /// Adds the points of a sweep made from label revision `revision`:
    /// they join the points of the same revision (a t swept again is
    /// replaced) and replace those of another.
    pub fn merge_sweep(&mut self, points: Vec<SweepPoint>, revision: u64) {
        if self.sweep_revision != Some(revision) {
            self.sweep.clear();
        }
        for p in points {
            self.sweep.retain(|q| q.t != p.t);
            self.sweep.push(p);
        }
        self.sweep.sort_by_key(|p| p.t);
        self.sweep_revision = Some(revision);
        self.class_map_from = None;
    }

    /// The swept point nearest to `t`.
    pub fn nearest_swept(&self, t: usize) -> Option<&SweepPoint> {
        self.sweep
            .iter()
            .min_by_key(|p| (p.t - t as i64).unsigned_abs())
    }
}

/// A class map in the label layers' palette (0 and unknown classes black).
fn class_map_image(map: &[u8], width: usize, palette: &[[u8; 4]; 256]) -> ColorImage {
    let height = map.len() / width.max(1);
    let mut rgb = Vec::with_capacity(map.len() * 3);
    for &v in map {
        rgb.extend_from_slice(&palette[v as usize][..3]);
    }
    ColorImage::from_rgb([width, height], &rgb)
}

/// Puts `image` in the texture of `slot`, creating it the first time.
fn show_in(
    slot: &mut Option<egui::TextureHandle>,
    ctx: &egui::Context,
    name: &str,
    image: ColorImage,
) {
    match slot {
        Some(t) => t.set(image, TextureOptions::NEAREST),
        None => *slot = Some(ctx.load_texture(name, image, TextureOptions::NEAREST)),
    }
}

/// The rendering a modality's network input is made from.
fn rendering_of(
    renderings: &crate::products::renderings::Renderings,
    modality: Modality,
) -> Option<&Rgb8Image> {
    available_modalities(renderings, &[modality])
        .0
        .first()
        .map(|(_, image)| *image)
}

impl Explorer {
    pub fn ui(&mut self, ctx: &egui::Context, cx: &ViewContext) {
        if !self.open {
            return;
        }
        let Some(session) = &cx.store.session else {
            return;
        };
        let layer = self.layer.unwrap_or(LayerId::Prgb);
        let modality = match layer {
            LayerId::Pca => Modality::Pca,
            LayerId::Pauli => Modality::Sar,
            _ => Modality::Prgb,
        };
        let source = rendering_of(&session.renderings, modality);
        let seed = cx.store.classify_settings.seed;
        let patch = cx
            .store
            .classify_settings
            .backbone
            .config()
            .map(|c| c.image_size);
        if let (Some(src), Ok(patch)) = (source, &patch) {
            let key = (self.t, layer, cx.map.renderings_version, seed, *patch);
            if self.made_from != Some(key) && self.requested != Some(key) {
                self.requested = Some(key);
                cx.send(AppCommand::MakeNoisedInput {
                    image: std::sync::Arc::new(src.clone()),
                    t: self.t,
                    seed,
                    patch: *patch,
                });
            }
        }
        if self.texture_dirty
            && let Some(noised) = &self.image
        {
            let color = ColorImage::from_rgb([noised.width, noised.height], &noised.data);
            show_in(&mut self.texture, ctx, "x_t", color);
            self.texture_dirty = false;
        }
        let Some(session) = &cx.store.session else {
            return;
        };
        let width = session.scene.grid().map_or(0, |g| g.width);
        if let Some(p) = self.nearest_swept(self.t)
            && Some(p.t) != self.class_map_from
            && width > 0
        {
            let color = class_map_image(&p.class_map, width, &cx.store.palette());
            let t = p.t;
            show_in(&mut self.class_map_texture, ctx, "class map at t", color);
            self.class_map_from = Some(t);
        }
        if self.projection_dirty
            && let Some(p) = &self.projection
        {
            let color = ColorImage::from_rgb([p.image.width, p.image.height], &p.image.data);
            show_in(&mut self.projection_texture, ctx, "features at t", color);
            self.projection_dirty = false;
        }
        let can_project = rendering_of(&session.renderings, modality).is_some();
        let noise_words = match &patch {
            Ok(p) => format!(
                "x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps as Stage B makes it: cosine schedule, Stage B's noise image eps ({p} x {p}, seed {seed}) on every patch"
            ),
            Err(e) => format!("x_t unavailable: {e}"),
        };
        let mut start_projection = false;
        let mut cancel_projection = false;
        let sweep_stale =
            self.sweep_revision.is_some() && self.sweep_revision != Some(session.labels_revision);
        let has_test = session.scene.test_labels.is_some();
        let running = cx.jobs.classifying.is_some();
        let mut start_sweep = None;
        let mut use_t = None;
        let mut open = true;
        let mut t = self.t;
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
                    RichText::new(noise_words)
                    .small()
                    .weak(),
                );
                let half = (ui.available_width() / 2.0 - 4.0).max(64.0);
                ui.horizontal(|ui| {
                    if let Some(tex) = &self.texture {
                        let size = tex.size_vec2();
                        ui.vertical(|ui| {
                            ui.label(format!("x_t at t = {t}"));
                            ui.image((tex.id(), size * (half / size.x).min(1.0)));
                        });
                    }
                    if let (Some(tex), Some(p)) =
                        (&self.projection_texture, &self.projection)
                    {
                        let size = tex.size_vec2();
                        ui.vertical(|ui| {
                            ui.label(format!(
                                "{} features at t = {}, block {} (3 PCs)",
                                p.modality.name(),
                                p.t,
                                p.block
                            ));
                            ui.image((tex.id(), size * (half / size.x).min(1.0)));
                        });
                    }
                    if let (Some(tex), Some(at)) =
                        (&self.class_map_texture, self.class_map_from)
                    {
                        let size = tex.size_vec2();
                        ui.vertical(|ui| {
                            ui.label(format!("class map at t = {at} (nearest swept)"));
                            ui.image((tex.id(), size * (half / size.x).min(1.0)));
                        });
                    }
                });
                match &cx.jobs.projecting {
                    Some(l) => {
                        ui.horizontal(|ui| {
                            ui.add(egui::ProgressBar::new(l.fraction).text(l.step.clone()).desired_width(half));
                            if ui.button("Cancel").clicked() {
                                cancel_projection = true;
                            }
                        });
                    }
                    None => {
                        if ui
                            .add_enabled(
                                can_project,
                                egui::Button::new(format!("Features at t = {t}")),
                            )
                            .on_hover_text("the backbone's block-L features of this modality, first three principal components as RGB")
                            .clicked()
                        {
                            start_projection = true;
                        }
                    }
                }
                ui.separator();
                ui.horizontal(|ui| {
                    ui.label("sweep t every");
                    ui.add(egui::DragValue::new(&mut self.sweep_step).range(1..=999));
                    let n = sweep_timesteps(self.sweep_step).len();
                    if ui
                        .add_enabled(!running, egui::Button::new(format!("Sweep ({n} runs)")))
                        .on_hover_text("Stage B at each t with the panel's settings, in the background")
                        .clicked()
                    {
                        start_sweep = Some(sweep_timesteps(self.sweep_step));
                    }
                });
                if self.class_map_from != Some(t as i64)
                    && ui
                        .add_enabled(!running, egui::Button::new(format!("Class map at t = {t}")))
                        .on_hover_text("Stage B at this t with the panel's settings; joins the sweep's points")
                        .clicked()
                {
                    start_sweep = Some(vec![t as i64]);
                }
                if !has_test {
                    ui.label(RichText::new("the sweep scores with test labels: open some to plot OA and mF1").small());
                }
                if sweep_stale {
                    ui.label(RichText::new("labels changed since this sweep").small().weak());
                }
                let sweep = &self.sweep;
                if sweep.iter().any(|p| p.metrics.is_some()) {
                    let series = |f: fn(&crate::metrics::summary::MetricsSummary) -> f64| {
                        sweep
                            .iter()
                            .filter_map(|p| p.metrics.as_ref().map(|m| [p.t as f64, f(m)]))
                            .collect::<Vec<_>>()
                    };
                    let (oa, mf1) = (series(|m| m.oa), series(|m| m.mf1));
                    let best = best_of(sweep);
                    Plot::new("sweep")
                        .height(160.0)
                        .legend(Legend::default())
                        .x_axis_label("t")
                        .include_y(0.0)
                        .include_y(1.0)
                        .allow_scroll(false)
                        .show(ui, |plot| {
                            plot.line(Line::new("OA", PlotPoints::new(oa.clone())));
                            plot.points(Points::new("OA", PlotPoints::new(oa)).radius(3.0));
                            plot.line(Line::new("mF1", PlotPoints::new(mf1.clone())));
                            plot.points(Points::new("mF1", PlotPoints::new(mf1)).radius(3.0));
                            if let Some(b) = best {
                                plot.vline(
                                    VLine::new("best t", b.t as f64).color(Color32::LIGHT_GREEN),
                                );
                            }
                            plot.vline(VLine::new("slider", t as f64).color(Color32::GRAY));
                        });
                    if let Some(b) = best {
                        let m = b.metrics.as_ref().map_or(0.0, |m| m.mf1);
                        ui.horizontal(|ui| {
                            ui.label(format!("best t = {} (mF1 {m:.3})", b.t));
                            if ui.small_button("Use this t").clicked() {
                                use_t = Some(b.t);
                            }
                        });
                    }
                }
            });
        if start_projection {
            let image = cx
                .store
                .session
                .as_ref()
                .and_then(|s| rendering_of(&s.renderings, modality).cloned());
            if let Some(image) = image {
                cx.send(AppCommand::ProjectFeatures(Box::new(ProjectRequest {
                    image,
                    modality,
                    t: t as i64,
                    block: cx.store.classify_settings.block,
                    backbone: cx.store.classify_settings.backbone.clone(),
                    seed: cx.store.classify_settings.seed,
                    device: cx.store.classify_settings.device,
                })));
            }
        }
        if cancel_projection {
            cx.send(AppCommand::CancelProjection);
        }
        if let Some(ts) = start_sweep {
            cx.send(AppCommand::ClassifySweep(ts));
        }
        if let Some(best) = use_t {
            cx.send(AppCommand::SetTimestep(best));
        }
        self.open = open;
        self.t = t;
        self.layer = Some(chosen);
    }
}
