//! The results window: OA / AA / kappa / mF1 / mIoU of every classifier of
//! the run side by side (the MLP and the two forests), which one the map
//! shows (a click shows another's), which one scores best on the held-out
//! training labels, the shown map's class areas, per-class recall /
//! precision / F1 / IoU as bar plots, and the confusion matrix as a heat map
//! with counts.

use eframe::egui::{self, Color32, RichText};
use egui_plot::{Bar, BarChart, Legend, Line, Plot, PlotPoints, Points};

use super::command::{AppCommand, CleanRequest};
use super::view_context::ViewContext;
use crate::metrics::area_accuracy::Estimate;
use crate::metrics::summary::MetricsSummary;
use crate::pipeline::label_curve::{CurveRow, LabelCurve, Spread};
use crate::pipeline::validation_sample::SampleAccuracy;

/// The results window and whether it is open.
pub struct ResultsWindow {
    pub open: bool,
    /// Points per class of the next validation sample.
    pub sample_per_class: usize,
    /// The next sieve's minimum mapping unit, in pixels or hectares.
    pub sieve_unit: f64,
    pub sieve_in_ha: bool,
    /// 4 or 8.
    pub sieve_connectivity: u8,
    /// The next majority filter's window side (odd).
    pub majority_k: usize,
    /// Export polygons also dissolved per class.
    pub dissolve_polygons: bool,
}

impl Default for ResultsWindow {
    fn default() -> Self {
        Self {
            open: false,
            sample_per_class: 50,
            sieve_unit: 8.0,
            sieve_in_ha: false,
            sieve_connectivity: 4,
            majority_k: 3,
            dissolve_polygons: false,
        }
    }
}

impl ResultsWindow {
    pub fn ui(&mut self, ctx: &egui::Context, cx: &ViewContext) {
        if !self.open {
            return;
        }
        // Borrowed, not cloned: the result holds the whole scene's maps.
        let Some(session) = &cx.store.session else {
            return;
        };
        let Some(r) = &session.result else {
            return;
        };
        let names: Vec<String> = session.classes.iter().map(|c| c.name.clone()).collect();
        let mut open = true;
        egui::Window::new("Results")
            .open(&mut open)
            .default_width(520.0)
            .show(ctx, |ui| {
                ui.label(RichText::new(&r.backbone).small().weak());
                if r.warm_started {
                    let kept = r
                        .outcome
                        .mlp
                        .as_ref()
                        .is_some_and(|(_, o)| o.head.first_layer_kept);
                    ui.label(
                        RichText::new(format!(
                            "live update: the MLP continued from the last map's head for {} epochs{} (no held-out comparison); Classify trains a fresh one",
                            crate::jobs::classify::LIVE_EPOCHS,
                            if kept {
                                ", its first layer kept as it was"
                            } else {
                                ""
                            }
                        ))
                        .small(),
                    );
                }
                egui::Grid::new("summary").striped(true).show(ui, |ui| {
                    ui.strong("classifier (the one selected is on the map)");
                    for h in ["OA", "AA", "kappa", "mF1", "mIoU", "pixels", "held-out κ"] {
                        ui.strong(h);
                    }
                    ui.end_row();
                    for (c, result) in r.outcome.results() {
                        if ui
                            .radio(r.shown == c, c.label())
                            .on_hover_text("show this classifier's map on the class-map layer")
                            .clicked()
                        {
                            cx.send(AppCommand::ShowResultMap(c));
                        }
                        match &result.metrics {
                            Some(m) => {
                                for v in [m.oa, m.aa, m.kappa, m.mf1, m.miou] {
                                    ui.label(format!("{v:.4}"));
                                }
                                ui.label(m.n_labelled.to_string());
                            }
                            None => {
                                for _ in 0..6 {
                                    ui.label("-");
                                }
                            }
                        }
                        ui.label(r.outcome.held_out_kappa(c).map_or("-".to_string(), |k| format!("{k:.4}")))
                            .on_hover_text("kappa on a held-out fifth of the TRAINING labels, from a model trained without them");
                        ui.end_row();
                    }
                });
                if let Some(rec) = &r.outcome.recommendation {
                    ui.label(RichText::new(format!("Recommended: {}", rec.sentence())).strong());
                }
                if r.outcome.test_pixels_excluded > 0 {
                    ui.label(
                        RichText::new(format!(
                            "{} test pixels that are also training labels are not scored",
                            r.outcome.test_pixels_excluded
                        ))
                        .small(),
                    );
                }
                self.cleanup_ui(ui, cx, r);
                if let Some(areas) = r.delivered_areas() {
                    let title = if r.cleaned_map().is_some() {
                        "Class areas (cleaned map)"
                    } else {
                        "Class areas"
                    };
                    ui.collapsing(title, |ui| {
                        egui::Grid::new("areas").striped(true).show(ui, |ui| {
                            for h in ["class", "pixels", "ha", "share"] {
                                ui.strong(h);
                            }
                            ui.end_row();
                            for c in &areas.classes {
                                let name = session
                                    .classes
                                    .iter()
                                    .find(|k| k.value == c.value)
                                    .map_or_else(
                                        || format!("class {}", c.value),
                                        |k| k.name.clone(),
                                    );
                                ui.label(name);
                                ui.label(c.pixels.to_string());
                                ui.label(c.ha.map_or("-".to_string(), |ha| format!("{ha:.2}")));
                                ui.label(format!("{:.1} %", 100.0 * c.share));
                                ui.end_row();
                            }
                        });
                        if let Some(note) = &areas.note {
                            ui.label(RichText::new(note).small().weak());
                        }
                    });
                }
                if !r.ablation.is_empty() {
                    ui.strong("modality ablation (diffusion features + MLP)");
                    egui::Grid::new("ablation").striped(true).show(ui, |ui| {
                        for h in ["modalities", "OA", "kappa", "mF1", "mIoU"] {
                            ui.strong(h);
                        }
                        ui.end_row();
                        for (mods, m) in &r.ablation {
                            let names: Vec<&str> = mods.iter().map(|m| m.name()).collect();
                            ui.label(names.join(" + "));
                            match m {
                                Some(m) => {
                                    for v in [m.oa, m.kappa, m.mf1, m.miou] {
                                        ui.label(format!("{v:.4}"));
                                    }
                                }
                                None => {
                                    ui.label("no test labels");
                                }
                            }
                            ui.end_row();
                        }
                    });
                }
                ui.collapsing("Validation sample (area-adjusted accuracy)", |ui| {
                    ui.horizontal(|ui| {
                        ui.label("points per class");
                        ui.add(egui::DragValue::new(&mut self.sample_per_class).range(2..=10_000));
                        if ui
                            .button("Validation sample…")
                            .on_hover_text("a stratified random sample of the shown map (the map classes as strata) as GeoPackage points with an empty `reference` field, to label here (the sample window opens) or in QGIS")
                            .clicked()
                        {
                            cx.send(AppCommand::PickFile(super::vocabulary::FileAction::ValidationSample {
                                per_class: self.sample_per_class,
                            }));
                        }
                        if ui
                            .button("Label a sample…")
                            .on_hover_text("open a sample's points (GeoPackage) in the sample window to label them here")
                            .clicked()
                        {
                            cx.send(AppCommand::PickFile(super::vocabulary::FileAction::LabelSample));
                        }
                        if ui
                            .button("Accuracy from sample…")
                            .on_hover_text("the shown map's overall, user's and producer's accuracy and class areas with 95 % intervals from a labelled sample (Olofsson et al. 2014)")
                            .clicked()
                        {
                            cx.send(AppCommand::PickFile(super::vocabulary::FileAction::SampleAccuracy));
                        }
                    });
                    if let Some((map, accuracy)) = &r.sample_accuracy {
                        sample_accuracy_ui(ui, session, map, accuracy);
                    }
                });
                if let Some(curve) = &r.outcome.label_curve {
                    ui.collapsing("Label curve (accuracy against labels per class)", |ui| {
                        label_curve_ui(ui, curve);
                    });
                }
                ui.horizontal(|ui| {
                    if ui
                        .button("Export results…")
                        .on_hover_text("class map GeoTIFF, probabilities, metrics JSON and CSV")
                        .clicked()
                    {
                        cx.send(AppCommand::PickFile(super::vocabulary::FileAction::ExportResults));
                    }
                    if ui
                        .button("Export polygons…")
                        .on_hover_text("the shown map (after its clean-up steps) as polygons in a GeoPackage: class, name and area (ha) per polygon, in the scene's CRS")
                        .clicked()
                    {
                        cx.send(AppCommand::PickFile(super::vocabulary::FileAction::ExportPolygons {
                            dissolve: self.dissolve_polygons,
                        }));
                    }
                    ui.checkbox(&mut self.dissolve_polygons, "dissolved")
                        .on_hover_text("also a layer `landcover_dissolved`: one multipolygon per class with its area and region count");
                    let model = ui.add_enabled(r.model.is_ok(), egui::Button::new("Save model…"));
                    let model = match &r.model {
                        Ok(_) => model.on_hover_text(
                            "the backbone reference, adapter, head, classes and rendering statistics in one file, for `unidiff-studio predict` on other scenes",
                        ),
                        Err(why) => model.on_disabled_hover_text(why.as_str()),
                    };
                    if model.clicked() {
                        cx.send(AppCommand::PickFile(super::vocabulary::FileAction::SaveModel));
                    }
                    if ui
                        .add_enabled(r.model.is_ok(), egui::Button::new("Apply to scenes…"))
                        .on_hover_text("map other scenes of any size with this model (File → Apply model to scenes…)")
                        .clicked()
                    {
                        cx.send(AppCommand::ShowWindow(super::vocabulary::Window::Apply));
                    }
                    if ui
                        .button("Export view as PNG…")
                        .on_hover_text("the map as shown, with its legend")
                        .clicked()
                    {
                        cx.send(AppCommand::PickFile(super::vocabulary::FileAction::ExportViewPng));
                    }
                });
                let shown = r.outcome.result(r.shown).or(r.outcome.main_result());
                let Some(m) = shown.and_then(|s| s.metrics.as_ref()) else {
                    ui.label("no test labels: nothing to score");
                    return;
                };
                ui.label(RichText::new(format!("per class: {}", r.shown.label())).weak());
                per_class_plot(ui, m, &names);
                confusion_grid(ui, m, &names);
            });
        self.open = open;
    }

    /// "Clean-up": GDAL's sieve to a minimum mapping unit and a K x K
    /// majority filter on the shown map, each a step on the cleaned-map
    /// layer, listed with what it changed, the last one undoable.
    fn cleanup_ui(
        &mut self,
        ui: &mut egui::Ui,
        cx: &ViewContext,
        r: &crate::session::ClassificationResult,
    ) {
        ui.collapsing("Clean-up (minimum mapping unit)", |ui| {
            ui.horizontal(|ui| {
                ui.label("sieve regions under");
                if self.sieve_in_ha {
                    ui.add(
                        egui::DragValue::new(&mut self.sieve_unit)
                            .range(0.0001..=1e6)
                            .speed(0.01),
                    );
                } else {
                    self.sieve_unit = self.sieve_unit.round().max(2.0);
                    ui.add(egui::DragValue::new(&mut self.sieve_unit).range(2.0..=1e9));
                }
                egui::ComboBox::from_id_salt("sieve unit")
                    .selected_text(if self.sieve_in_ha { "ha" } else { "pixels" })
                    .width(60.0)
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut self.sieve_in_ha, false, "pixels");
                        ui.selectable_value(&mut self.sieve_in_ha, true, "ha");
                    });
                ui.radio_value(&mut self.sieve_connectivity, 4, "4-connected");
                ui.radio_value(&mut self.sieve_connectivity, 8, "8-connected");
                if ui
                    .button("Sieve")
                    .on_hover_text("GDAL's sieve filter: every region smaller than the unit takes the class of its largest neighbour; unmapped pixels stay unmapped")
                    .clicked()
                {
                    let connectivity = self.sieve_connectivity;
                    cx.send(AppCommand::CleanMap(if self.sieve_in_ha {
                        CleanRequest::SieveHectares {
                            ha: self.sieve_unit,
                            connectivity,
                        }
                    } else {
                        CleanRequest::SievePixels {
                            min_pixels: self.sieve_unit as usize,
                            connectivity,
                        }
                    }));
                }
            });
            ui.horizontal(|ui| {
                ui.label("majority window");
                egui::ComboBox::from_id_salt("majority window")
                    .selected_text(format!("{0} x {0}", self.majority_k))
                    .width(70.0)
                    .show_ui(ui, |ui| {
                        for k in (3..=15).step_by(2) {
                            ui.selectable_value(&mut self.majority_k, k, format!("{k} x {k}"));
                        }
                    });
                if ui
                    .button("Majority filter")
                    .on_hover_text("each mapped pixel takes the most frequent class of the window around it (ties keep its own); unmapped pixels stay unmapped")
                    .clicked()
                {
                    cx.send(AppCommand::CleanMap(CleanRequest::Majority {
                        k: self.majority_k,
                    }));
                }
            });
            let steps: Vec<_> = r.cleanup_steps().collect();
            if steps.is_empty() {
                ui.label(
                    RichText::new(format!("no step yet on the {} map", r.shown.label()))
                        .small()
                        .weak(),
                );
                return;
            }
            egui::Grid::new("cleanup steps").striped(true).show(ui, |ui| {
                for h in ["step", "pixels changed", "OA on test labels", "mF1"] {
                    ui.strong(h);
                }
                ui.end_row();
                for (i, c) in steps.iter().enumerate() {
                    ui.label(format!("{}. {}", i + 1, c.step.describe()));
                    ui.label(c.changed.to_string());
                    match &c.scores {
                        Some(s) => {
                            ui.label(format!("{:.4} -> {:.4}", s.oa_before, s.oa_after));
                            ui.label(format!("{:.4} -> {:.4}", s.mf1_before, s.mf1_after));
                        }
                        None => {
                            ui.label("-");
                            ui.label("-");
                        }
                    }
                    ui.end_row();
                }
            });
            ui.horizontal(|ui| {
                if ui
                    .button("Undo last step")
                    .on_hover_text("back to the map before the last step")
                    .clicked()
                {
                    cx.send(AppCommand::UndoCleanStep);
                }
                ui.label(
                    RichText::new("the cleaned map is its own layer; the class areas, exports and the validation sample use it")
                        .small()
                        .weak(),
                );
            });
        });
    }
}

/// The estimates from a labelled sample: overall accuracy, then per class
/// user's and producer's accuracy and the estimated area, each with its
/// 95 % interval.
fn sample_accuracy_ui(
    ui: &mut egui::Ui,
    session: &crate::session::Session,
    map: &str,
    accuracy: &SampleAccuracy,
) {
    let e = &accuracy.estimates;
    let pm = |x: &Estimate| match x.ci95 {
        Some([lo, hi]) => format!("{:.4} ({:.4}-{:.4})", x.value, lo, hi),
        None => format!("{:.4} (SE undefined)", x.value),
    };
    ui.label(
        RichText::new(format!(
            "{}, {} points of {}",
            map,
            e.sample_size,
            accuracy.reference.display()
        ))
        .small()
        .weak(),
    );
    ui.strong(format!("overall accuracy {}", pm(&e.overall)));
    egui::Grid::new("sample accuracy")
        .striped(true)
        .show(ui, |ui| {
            for h in [
                "class",
                "points",
                "user's",
                "producer's",
                &format!("area ({})", accuracy.area_unit),
            ] {
                ui.strong(h);
            }
            ui.end_row();
            for (i, &value) in e.classes.iter().enumerate() {
                let name = session
                    .classes
                    .iter()
                    .find(|k| k.value == value)
                    .map_or_else(|| format!("class {value}"), |k| k.name.clone());
                ui.label(name);
                ui.label(
                    e.stratum_points
                        .get(i)
                        .map_or("-".into(), |n| n.to_string()),
                );
                for x in [
                    e.users.get(i).cloned().flatten(),
                    e.producers.get(i).cloned().flatten(),
                ] {
                    ui.label(x.as_ref().map_or("-".into(), pm));
                }
                ui.label(e.area.get(i).map_or("-".into(), |a| match a.ci95 {
                    Some([lo, hi]) => format!("{:.1} ({:.1}-{:.1})", a.value, lo, hi),
                    None => format!("{:.1}", a.value),
                }));
                ui.end_row();
            }
        });
    for note in &e.notes {
        ui.label(RichText::new(note).small());
    }
    ui.label(RichText::new(&e.interval_method).small().weak());
}

/// The label curve: OA and mF1 of every draw as points, their means as
/// lines, against labels per class; the table below with the spread.
fn label_curve_ui(ui: &mut egui::Ui, curve: &LabelCurve) {
    let series = [
        (
            "OA",
            Color32::from_rgb(31, 119, 180),
            (|r: &CurveRow| r.oa.clone()) as fn(&CurveRow) -> Option<Spread>,
        ),
        ("mF1", Color32::from_rgb(44, 160, 44), |r: &CurveRow| {
            r.mf1.clone()
        }),
    ];
    Plot::new("label curve")
        .height(170.0)
        .legend(Legend::default())
        .include_y(0.0)
        .include_y(1.0)
        .include_x(0.0)
        .x_axis_label("labels per class")
        .allow_scroll(false)
        .show(ui, |plot| {
            for (name, color, of) in &series {
                let mean: Vec<[f64; 2]> = curve
                    .rows
                    .iter()
                    .filter_map(|r| of(r).map(|s| [r.per_class as f64, s.mean]))
                    .collect();
                plot.line(Line::new(*name, PlotPoints::from(mean)).color(*color));
                let draws: Vec<[f64; 2]> = curve
                    .points
                    .iter()
                    .filter_map(|p| {
                        let m = p.metrics.as_ref()?;
                        Some([p.per_class as f64, if *name == "OA" { m.oa } else { m.mf1 }])
                    })
                    .collect();
                plot.points(
                    Points::new(*name, PlotPoints::from(draws))
                        .color(*color)
                        .radius(2.5),
                );
            }
        });
    egui::Grid::new("label curve table")
        .striped(true)
        .show(ui, |ui| {
            for h in ["labels / class", "labels", "OA (min-max)", "mF1 (min-max)"] {
                ui.strong(h);
            }
            ui.end_row();
            let cell = |s: &Option<Spread>| {
                s.as_ref().map_or("-".to_string(), |s| {
                    format!("{:.4} ({:.4}-{:.4})", s.mean, s.min, s.max)
                })
            };
            for r in &curve.rows {
                ui.label(r.per_class.to_string());
                ui.label(format!("{:.0}", r.labels));
                ui.label(cell(&r.oa));
                ui.label(cell(&r.mf1));
                ui.end_row();
            }
        });
    ui.label(
        RichText::new(format!(
            "{} seeded draws per point, nested; {:.1} s",
            curve.spec.repeats, curve.seconds
        ))
        .small()
        .weak(),
    );
}

fn class_name(names: &[String], k: usize) -> String {
    names
        .get(k)
        .cloned()
        .unwrap_or_else(|| format!("class {}", k + 1))
}

/// Recall, precision, F1 and IoU per class, grouped.
fn per_class_plot(ui: &mut egui::Ui, m: &MetricsSummary, names: &[String]) {
    let pc = &m.per_class;
    let series = [
        ("recall", &pc.recall, Color32::from_rgb(31, 119, 180)),
        ("precision", &pc.precision, Color32::from_rgb(255, 127, 14)),
        ("F1", &pc.f1, Color32::from_rgb(44, 160, 44)),
        ("IoU", &pc.iou, Color32::from_rgb(214, 39, 40)),
    ];
    let charts: Vec<BarChart> = series
        .iter()
        .enumerate()
        .map(|(i, (name, values, color))| {
            let bars = values
                .iter()
                .enumerate()
                .map(|(k, v)| {
                    Bar::new(
                        k as f64 + (i as f64 - 1.5) * 0.2,
                        if v.is_nan() { 0.0 } else { *v },
                    )
                    .width(0.18)
                    .name(class_name(names, k))
                })
                .collect();
            BarChart::new(*name, bars).color(*color)
        })
        .collect();
    // One tick per class, named by the class (the plot's own grid would
    // number them 0, 1, ...).
    let classes = pc.recall.len();
    let tick_names: Vec<String> = (0..classes).map(|k| class_name(names, k)).collect();
    Plot::new("per class")
        .height(180.0)
        .legend(Legend::default())
        .x_grid_spacer(move |_| {
            (0..classes)
                .map(|k| egui_plot::GridMark {
                    value: k as f64,
                    step_size: 1.0,
                })
                .collect()
        })
        .x_axis_formatter(move |mark, _| {
            let k = mark.value.round();
            if (mark.value - k).abs() < 1e-6 && k >= 0.0 {
                tick_names.get(k as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .include_y(0.0)
        .include_y(1.0)
        .allow_scroll(false)
        .show(ui, |plot| {
            for c in charts {
                plot.bar_chart(c);
            }
        });
}

/// Rows = truth, columns = prediction; colour by row share.
fn confusion_grid(ui: &mut egui::Ui, m: &MetricsSummary, names: &[String]) {
    let k = m.confusion.classes;
    let count = |i: usize, j: usize| m.confusion.counts[i * k + j];
    ui.strong("confusion matrix (rows: truth, columns: prediction)");
    egui::Grid::new("confusion").show(ui, |ui| {
        ui.label("");
        for j in 0..k {
            ui.label(RichText::new(class_name(names, j)).small());
        }
        ui.label(RichText::new("total").small().strong());
        ui.end_row();
        for i in 0..k {
            ui.label(RichText::new(class_name(names, i)).small());
            let row: u64 = (0..k).map(|j| count(i, j)).sum();
            for j in 0..k {
                let n = count(i, j);
                let share = if row > 0 { n as f32 / row as f32 } else { 0.0 };
                let fill = Color32::from_rgb(
                    (255.0 * (1.0 - share * 0.8)) as u8,
                    (255.0 * (1.0 - share * 0.6)) as u8,
                    255,
                );
                egui::Frame::new()
                    .fill(fill)
                    .inner_margin(4.0)
                    .show(ui, |ui| {
                        ui.label(RichText::new(n.to_string()).color(Color32::BLACK));
                    });
            }
            ui.label(RichText::new(row.to_string()).strong());
            ui.end_row();
        }
        // Column totals (what the map says) and the scored pixels.
        ui.label(RichText::new("total").small().strong());
        for j in 0..k {
            let col: u64 = (0..k).map(|i| count(i, j)).sum();
            ui.label(RichText::new(col.to_string()).strong());
        }
        let all: u64 = m.confusion.counts.iter().sum();
        ui.label(RichText::new(all.to_string()).strong())
            .on_hover_text("test pixels scored");
        ui.end_row();
    });
}
