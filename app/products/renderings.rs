//! All three renderings of a scene at once, with what the report needs to
//! say how they were made.

use super::error::ProductError;
use super::pauli::{PauliSettings, render_pauli};
use super::pca::{PcaFit, render_pca};
use super::prgb::{RgbBands, RgbRequest, choose_rgb_bands, render_prgb};
use crate::scene::Rgb8Image;
use crate::scene::Scene;

/// Settings of the three renderings.
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderSettings {
    pub rgb: RgbRequest,
    pub pauli: PauliSettings,
}

/// The renderings a scene allows (pRGB and PCA need the cube, Pauli the SAR).
#[derive(Debug, Clone, Default)]
pub struct Renderings {
    pub prgb: Option<(Rgb8Image, RgbBands)>,
    pub pca: Option<(Rgb8Image, PcaFit)>,
    pub pauli: Option<Rgb8Image>,
}

/// Which rendering failed, for the message.
#[derive(Debug, thiserror::Error)]
#[error("{product}: {source}")]
pub struct RenderError {
    pub product: &'static str,
    #[source]
    pub source: ProductError,
}

/// Renders pRGB, PCA and Pauli; `progress` hears the name of each step.
pub fn render_all(
    scene: &Scene,
    settings: RenderSettings,
    mut progress: impl FnMut(&str),
) -> Result<Renderings, RenderError> {
    let mut out = Renderings::default();
    let err = |product| move |source| RenderError { product, source };
    if let Some(cube) = &scene.hsi {
        progress("pRGB");
        let bands = choose_rgb_bands(cube, settings.rgb).map_err(err("pRGB"))?;
        let image = render_prgb(cube, bands.bands).map_err(err("pRGB"))?;
        out.prgb = Some((image, bands));
        progress("PCA");
        out.pca = Some(render_pca(cube).map_err(err("PCA"))?);
    }
    if let Some(sar) = &scene.sar {
        progress("Pauli");
        out.pauli = Some(render_pauli(sar, settings.pauli).map_err(err("Pauli"))?);
    }
    Ok(out)
}
