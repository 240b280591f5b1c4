//! What turns a scene into its three renderings, kept apart from the scene it
//! was fitted on: the pRGB bands and stretch limits, the PCA's bands, mean,
//! components and limits, the Pauli gains, gamma and limits. A trained model
//! keeps them, so that a new scene (or a window of one) is rendered with the
//! TRAINING scene's statistics, and the training scene itself comes out byte
//! for byte as it was rendered for training.

use super::error::ProductError;
use super::pauli::{PauliSettings, render_pauli_with};
use super::pca::{PcaFit, render_pca_with};
use super::prgb::{RgbBands, render_prgb_with};
use super::renderings::{RenderSettings, Renderings};
use crate::scene::{Rgb8Image, SarKind, Scene};

/// (p2, p98) of R, G and B.
pub type Limits = [(f64, f64); 3];

/// The pRGB rendering: cube bands and their limits.
#[derive(Debug, Clone, PartialEq)]
pub struct PrgbFit {
    pub bands: [usize; 3],
    pub limits: Limits,
}

/// The PCA rendering: the projection (bands, mean, components) and limits.
#[derive(Debug, Clone)]
pub struct PcaRenderFit {
    pub fit: PcaFit,
    pub limits: Limits,
}

/// The Pauli rendering: which formula (dual- or quad-pol), its settings
/// and limits.
#[derive(Debug, Clone, PartialEq)]
pub struct PauliFit {
    pub quad_pol: bool,
    pub settings: PauliSettings,
    pub limits: Limits,
}

/// Everything that renders a scene as its training scene was rendered.
#[derive(Debug, Clone)]
pub struct RenderingFit {
    /// Bands of the training cube, and their wavelengths when known.
    pub cube_bands: Option<usize>,
    pub wavelengths_nm: Option<Vec<f64>>,
    pub prgb: Option<PrgbFit>,
    pub pca: Option<PcaRenderFit>,
    pub pauli: Option<PauliFit>,
}

/// A scene that the fit cannot render as its training scene.
#[derive(Debug, thiserror::Error)]
pub enum RenderFitError {
    #[error(
        "the model was trained on a cube of {trained} bands; this cube has {found}: give a scene of the same sensor and band set"
    )]
    Bands { trained: usize, found: usize },
    #[error(
        "band {band} of this cube is at {found:.1} nm, the model's training cube had it at {trained:.1} nm: give a scene of the same sensor"
    )]
    Wavelength {
        band: usize,
        trained: f64,
        found: f64,
    },
    #[error("the model was trained with {trained} SAR; this scene's SAR is {found}")]
    SarKind {
        trained: &'static str,
        found: &'static str,
    },
    #[error("the model needs {0} input, which this scene does not have")]
    Missing(&'static str),
    #[error("{product}: {source}")]
    Product {
        product: &'static str,
        #[source]
        source: ProductError,
    },
}

fn limits_of(image: &Rgb8Image) -> Limits {
    let mut out = [(0.0, 0.0); 3];
    for (o, s) in out.iter_mut().zip(&image.stretch) {
        *o = s.limits();
    }
    out
}

fn pol_name(quad: bool) -> &'static str {
    if quad { "quad-pol" } else { "dual-pol" }
}

impl RenderingFit {
    /// The fit behind `renderings` of `scene` made with `settings`.
    pub fn of(scene: &Scene, renderings: &Renderings, settings: RenderSettings) -> Self {
        let prgb = renderings
            .prgb
            .as_ref()
            .map(|(image, bands): &(Rgb8Image, RgbBands)| PrgbFit {
                bands: bands.bands,
                limits: limits_of(image),
            });
        let pca = renderings.pca.as_ref().map(|(image, fit)| PcaRenderFit {
            fit: fit.clone(),
            limits: limits_of(image),
        });
        let pauli = renderings.pauli.as_ref().and_then(|image| {
            let sar = scene.sar.as_ref()?;
            Some(PauliFit {
                quad_pol: matches!(sar.kind, SarKind::QuadPol { .. }),
                settings: settings.pauli,
                limits: limits_of(image),
            })
        });
        Self {
            cube_bands: scene.hsi.as_ref().map(|c| c.bands),
            wavelengths_nm: scene.hsi.as_ref().and_then(|c| c.wavelengths_nm.clone()),
            prgb,
            pca,
            pauli,
        }
    }

    /// Whether `scene` is one the fit can render: the same number of
    /// bands (at the same wavelengths, within 1 nm, when both say) and the
    /// same kind of SAR, for every rendering the fit makes.
    pub fn check(&self, scene: &Scene) -> Result<(), RenderFitError> {
        if self.prgb.is_some() || self.pca.is_some() {
            let cube = scene
                .hsi
                .as_ref()
                .ok_or(RenderFitError::Missing("an HSI"))?;
            if let Some(trained) = self.cube_bands
                && trained != cube.bands
            {
                return Err(RenderFitError::Bands {
                    trained,
                    found: cube.bands,
                });
            }
            if let (Some(a), Some(b)) = (&self.wavelengths_nm, &cube.wavelengths_nm)
                && let Some((band, (&trained, &found))) = a
                    .iter()
                    .zip(b)
                    .enumerate()
                    .find(|(_, (x, y))| (**x - **y).abs() > 1.0)
            {
                return Err(RenderFitError::Wavelength {
                    band,
                    trained,
                    found,
                });
            }
        }
        if let Some(p) = &self.pauli {
            let sar = scene.sar.as_ref().ok_or(RenderFitError::Missing("a SAR"))?;
            let quad = matches!(sar.kind, SarKind::QuadPol { .. });
            if quad != p.quad_pol {
                return Err(RenderFitError::SarKind {
                    trained: pol_name(p.quad_pol),
                    found: pol_name(quad),
                });
            }
        }
        Ok(())
    }

    /// The renderings of `scene` (a whole scene or a window of one) with
    /// the fit's bands, projection and limits.
    pub fn render(&self, scene: &Scene) -> Result<Renderings, RenderFitError> {
        self.check(scene)?;
        let err = |product| move |source| RenderFitError::Product { product, source };
        let mut out = Renderings::default();
        if let (Some(fit), Some(cube)) = (&self.prgb, &scene.hsi) {
            let image = render_prgb_with(cube, fit.bands, &fit.limits).map_err(err("pRGB"))?;
            let bands = RgbBands {
                bands: fit.bands,
                reason: "the trained model's bands".to_string(),
            };
            out.prgb = Some((image, bands));
        }
        if let (Some(fit), Some(cube)) = (&self.pca, &scene.hsi) {
            let image = render_pca_with(cube, &fit.fit, &fit.limits).map_err(err("PCA"))?;
            out.pca = Some((image, fit.fit.clone()));
        }
        if let (Some(fit), Some(sar)) = (&self.pauli, &scene.sar) {
            out.pauli = Some(
                render_pauli_with(sar, fit.settings, Some(&fit.limits)).map_err(err("Pauli"))?,
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::products::renderings::render_all;
    use crate::scene::{HsiCube, PixelGrid, PowerScale, SarImage, Window};
    use std::sync::Arc;

    fn scene() -> Scene {
        let (w, h, bands) = (37, 29, 6);
        let n = w * h;
        let data = (0..bands * n)
            .map(|i| {
                let (b, p) = (i / n, i % n);
                if p % 41 == 3 {
                    f32::NAN
                } else {
                    ((p * 7 + b * 131) % 997) as f32 * (1.0 + b as f32 * 0.3)
                }
            })
            .collect();
        let c11 = (0..n)
            .map(|p| 0.01 + ((p * 13) % 89) as f64 * 1e-3)
            .collect();
        let c22 = (0..n)
            .map(|p| 0.002 + ((p * 5) % 31) as f64 * 1e-4)
            .collect();
        Scene {
            hsi: Some(Arc::new(HsiCube {
                grid: PixelGrid::plain(w, h),
                bands,
                data,
                wavelengths_nm: Some((0..bands).map(|b| 450.0 + 50.0 * b as f64).collect()),
                band_names: vec![String::new(); bands],
            })),
            sar: Some(Arc::new(SarImage {
                grid: PixelGrid::plain(w, h),
                kind: SarKind::DualPol { c11, c22 },
                source_scale: PowerScale::Linear,
                scale_reason: String::new(),
                off_diagonal: Vec::new(),
            })),
            train_labels: None,
            test_labels: None,
        }
    }

    /// The fit renders its own scene byte for byte as the renderers did,
    /// and a window as the same window of those renderings.
    #[test]
    fn the_fit_renders_its_scene_and_any_window_of_it_byte_for_byte() {
        let s = scene();
        let settings = RenderSettings::default();
        let first = render_all(&s, settings, |_| {}).unwrap();
        let fit = RenderingFit::of(&s, &first, settings);
        let again = fit.render(&s).unwrap();
        let images = |r: &Renderings| {
            [
                r.prgb.as_ref().unwrap().0.data.clone(),
                r.pca.as_ref().unwrap().0.data.clone(),
                r.pauli.as_ref().unwrap().data.clone(),
            ]
        };
        assert_eq!(images(&again), images(&first));
        let w = Window {
            row0: 5,
            col0: 9,
            height: 11,
            width: 20,
        };
        let part = Scene {
            hsi: s.hsi.as_ref().map(|c| Arc::new(c.window(w))),
            sar: s.sar.as_ref().map(|c| Arc::new(c.window(w))),
            train_labels: None,
            test_labels: None,
        };
        let windowed = images(&fit.render(&part).unwrap());
        for (whole, part) in images(&first).iter().zip(&windowed) {
            let cut: Vec<u8> = (w.row0..w.row0 + w.height)
                .flat_map(|r| {
                    let at = 3 * (r * 37 + w.col0);
                    whole[at..at + 3 * w.width].to_vec()
                })
                .collect();
            assert_eq!(&cut, part);
        }
    }

    #[test]
    fn another_band_set_or_sar_kind_is_refused_with_the_difference() {
        let s = scene();
        let settings = RenderSettings::default();
        let fit = RenderingFit::of(&s, &render_all(&s, settings, |_| {}).unwrap(), settings);
        let mut cube = (**s.hsi.as_ref().unwrap()).clone();
        cube.bands = 5;
        cube.data.truncate(5 * cube.grid.len());
        let fewer = Scene {
            hsi: Some(Arc::new(cube)),
            ..s.clone()
        };
        let e = fit.render(&fewer).unwrap_err().to_string();
        assert!(e.contains("6 bands") && e.contains("has 5"), "{e}");
        let no_sar = Scene { sar: None, ..s };
        let e = fit.render(&no_sar).unwrap_err().to_string();
        assert!(e.contains("a SAR input"), "{e}");
    }
}
