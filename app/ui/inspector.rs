//! The pixel inspector: the spectrum of the clicked pixel against wavelength
//! (band index when the cube has none), its SAR values in linear and dB, and
//! the labels under it.

use eframe::egui::{self, RichText};
use egui_plot::{Line, Plot, PlotPoints};

use super::view_context::ViewContext;
use crate::scene::{LabelLayer, SarKind};

/// (name, linear value) of each SAR channel at pixel index `i`.
pub fn sar_values(kind: &SarKind, i: usize) -> Vec<(&'static str, f64)> {
    match kind {
        SarKind::DualPol { c11, c22 } => {
            vec![("C11 (co-pol)", c11[i]), ("C22 (cross-pol)", c22[i])]
        }
        SarKind::QuadPol { t11, t22, t33 } => {
            vec![("T11", t11[i]), ("T22", t22[i]), ("T33", t33[i])]
        }
    }
}

/// Decibels of a linear intensity (NaN stays NaN, 0 is -inf).
pub fn db(linear: f64) -> f64 {
    10.0 * linear.log10()
}

/// The clicked pixel's values.
#[derive(Default)]
pub struct InspectorPanel;

impl InspectorPanel {
    pub fn ui(&mut self, ui: &mut egui::Ui, cx: &ViewContext) {
        ui.heading("Pixel");
        let (Some((row, col)), Some(s)) = (cx.store.inspected, &cx.store.session) else {
            ui.label(
                RichText::new("click the map with the inspect tool (I), or right-click").weak(),
            );
            return;
        };
        ui.label(format!("row {row}, col {col}"));
        if let Some(grid) = s.scene.grid()
            && let Some((x, y)) = grid.map_from_pixel(row as f64, col as f64)
        {
            ui.label(format!(
                "{x:.2}, {y:.2} {}",
                grid.crs_name.as_deref().unwrap_or("")
            ));
        }
        for layer in LabelLayer::ALL {
            if let Some(l) = s.scene.labels(layer) {
                let v = l.data[row * l.grid.width + col];
                let name = if v == 0 {
                    "unlabelled".to_string()
                } else {
                    s.classes
                        .iter()
                        .find(|c| c.value == v)
                        .map(|c| c.name.clone())
                        .unwrap_or_else(|| format!("class {v}"))
                };
                ui.label(format!("{}: {name}", layer.name()));
            }
        }
        if let Some(cube) = &s.scene.hsi {
            let spectrum = cube.spectrum(row, col);
            let (axis, points): (&str, Vec<[f64; 2]>) = match &cube.wavelengths_nm {
                Some(wl) => (
                    "wavelength (nm)",
                    wl.iter()
                        .zip(&spectrum)
                        .map(|(w, v)| [*w, *v as f64])
                        .collect(),
                ),
                None => (
                    "band (no wavelengths in the file)",
                    spectrum
                        .iter()
                        .enumerate()
                        .map(|(b, v)| [b as f64, *v as f64])
                        .collect(),
                ),
            };
            let finite: Vec<[f64; 2]> = points.into_iter().filter(|p| p[1].is_finite()).collect();
            if finite.is_empty() {
                ui.label("spectrum: no valid values (nodata)");
            } else {
                ui.label(format!("spectrum, {} bands", spectrum.len()));
                Plot::new("spectrum")
                    .height(160.0)
                    .x_axis_label(axis)
                    .allow_scroll(false)
                    .show(ui, |plot| {
                        plot.line(Line::new("spectrum", PlotPoints::new(finite)))
                    });
            }
        }
        if let Some(sar) = &s.scene.sar {
            let i = row * sar.grid.width + col;
            egui::Grid::new("sar values").show(ui, |ui| {
                ui.strong("SAR");
                ui.strong("linear");
                ui.strong("dB");
                ui.end_row();
                for (name, v) in sar_values(&sar.kind, i) {
                    ui.label(name);
                    ui.label(format!("{v:.5}"));
                    ui.label(format!("{:.2}", db(v)));
                    ui.end_row();
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sar_values_come_in_linear_and_db() {
        let kind = SarKind::DualPol {
            c11: vec![0.1, 0.01],
            c22: vec![0.001, 1.0],
        };
        let v = sar_values(&kind, 1);
        assert_eq!(v[0], ("C11 (co-pol)", 0.01));
        assert!((db(v[0].1) + 20.0).abs() < 1e-12);
        assert!((db(v[1].1)).abs() < 1e-12);
    }
}
