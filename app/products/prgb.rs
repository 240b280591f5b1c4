//! pRGB, the pseudo-RGB "anchor" modality: three cube bands as R, G, B, each
//! stretched p2/p98. Bands come from the user, a preset, the wavelengths
//! nearest 640/550/470 nm, or Sentinel-2 band names, in that order of choice.

use serde::Serialize;

use super::error::ProductError;
use super::percentile::percentiles_f32;
use super::stretch::{quantize, unit_from_percentiles};
use crate::scene::HsiCube;
use crate::scene::wavelength::nearest_band;
use crate::scene::{ChannelStretch, Rgb8Image};

/// Wavelengths (nm) the pRGB channels aim at.
pub const RGB_TARGET_NM: [f64; 3] = [640.0, 550.0, 470.0];

/// Named band presets (0-based R, G, B).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RgbPreset {
    /// Berlin benchmark, 244 bands: 40, 30, 15.
    Berlin,
    /// Augsburg benchmark, 180 bands: 21, 11, 6.
    Augsburg,
    /// Sentinel-2 in band order B1..B12: B4, B3, B2 = 3, 2, 1.
    Sentinel2,
}

impl RgbPreset {
    pub fn bands(self) -> [usize; 3] {
        match self {
            RgbPreset::Berlin => [40, 30, 15],
            RgbPreset::Augsburg => [21, 11, 6],
            RgbPreset::Sentinel2 => [3, 2, 1],
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "berlin" => Some(RgbPreset::Berlin),
            "augsburg" => Some(RgbPreset::Augsburg),
            "sentinel2" | "sentinel-2" | "s2" => Some(RgbPreset::Sentinel2),
            _ => None,
        }
    }
}

/// How the user asked for the pRGB bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RgbRequest {
    /// Let the app choose (wavelengths, band names, then known band counts).
    #[default]
    Auto,
    Preset(RgbPreset),
    Bands([usize; 3]),
}

/// The bands chosen and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RgbBands {
    pub bands: [usize; 3],
    pub reason: String,
}

fn sentinel2_by_name(names: &[String]) -> Option<[usize; 3]> {
    let find = |want: &str| {
        names
            .iter()
            .position(|n| n.trim().eq_ignore_ascii_case(want))
    };
    Some([find("B4")?, find("B3")?, find("B2")?])
}

/// Picks the three bands for a request.
pub fn choose_rgb_bands(cube: &HsiCube, request: RgbRequest) -> Result<RgbBands, ProductError> {
    let chosen = match request {
        RgbRequest::Bands(b) => RgbBands {
            bands: b,
            reason: "chosen by the user".to_string(),
        },
        RgbRequest::Preset(p) => RgbBands {
            bands: p.bands(),
            reason: format!("preset {p:?}"),
        },
        RgbRequest::Auto => auto_bands(cube),
    };
    for &b in &chosen.bands {
        if b >= cube.bands {
            return Err(ProductError::BandOutOfRange {
                band: b,
                bands: cube.bands,
            });
        }
    }
    Ok(chosen)
}

fn auto_bands(cube: &HsiCube) -> RgbBands {
    if let Some(w) = &cube.wavelengths_nm {
        let usable = |i: usize| !cube.band_is_empty(i);
        let picks: Option<Vec<usize>> = RGB_TARGET_NM
            .iter()
            .map(|&t| nearest_band(w, t, usable))
            .collect();
        if let Some(p) = picks {
            return RgbBands {
                bands: [p[0], p[1], p[2]],
                reason: format!(
                    "nearest to 640/550/470 nm: {:.1}, {:.1}, {:.1} nm",
                    w[p[0]], w[p[1]], w[p[2]]
                ),
            };
        }
    }
    if let Some(b) = sentinel2_by_name(&cube.band_names) {
        return RgbBands {
            bands: b,
            reason: "Sentinel-2 band names B4, B3, B2".to_string(),
        };
    }
    match cube.bands {
        244 => RgbBands {
            bands: RgbPreset::Berlin.bands(),
            reason: "no wavelengths; 244 bands: Berlin preset".to_string(),
        },
        180 => RgbBands {
            bands: RgbPreset::Augsburg.bands(),
            reason: "no wavelengths; 180 bands: Augsburg preset".to_string(),
        },
        13 | 12 => RgbBands {
            bands: RgbPreset::Sentinel2.bands(),
            reason: "no wavelengths; 12-13 bands: Sentinel-2 preset".to_string(),
        },
        n if n >= 3 => RgbBands {
            bands: [(n * 3) / 4, n / 2, n / 4],
            reason: "no wavelengths or known layout: bands at 3/4, 1/2, 1/4 of the range"
                .to_string(),
        },
        n => RgbBands {
            bands: [0, (n - 1).min(1), n - 1],
            reason: "fewer than 3 bands: repeated".to_string(),
        },
    }
}

fn band_label(cube: &HsiCube, b: usize) -> String {
    match cube.wavelengths_nm.as_ref().and_then(|w| w.get(b)) {
        Some(w) => format!("band {b} ({w:.1} nm)"),
        None => match cube.band_names.get(b).filter(|n| !n.is_empty()) {
            Some(n) => format!("band {b} ({n})"),
            None => format!("band {b}"),
        },
    }
}

/// Renders the pRGB image of the given bands.
pub fn render_prgb(cube: &HsiCube, bands: [usize; 3]) -> Result<Rgb8Image, ProductError> {
    let n = cube.grid.len();
    let mut data = vec![0u8; 3 * n];
    let mut stretch = Vec::with_capacity(3);
    for (c, &b) in bands.iter().enumerate() {
        if b >= cube.bands {
            return Err(ProductError::BandOutOfRange {
                band: b,
                bands: cube.bands,
            });
        }
        let values = cube.band(b);
        let (p, samples) =
            percentiles_f32(values, &[2.0, 98.0]).ok_or(ProductError::EmptyBand { band: b })?;
        let (p2, p98) = (p[0], p[1]);
        stretch_into(values, c, (p2, p98), &mut data);
        stretch.push(ChannelStretch::exact(
            c,
            band_label(cube, b),
            p2,
            p98,
            samples,
        ));
    }
    Ok(Rgb8Image {
        width: cube.grid.width,
        height: cube.grid.height,
        data,
        stretch,
    })
}

/// Channel `c` of an interleaved RGB image from `values` stretched between
/// `limits` (p2, p98).
fn stretch_into(values: &[f32], c: usize, limits: (f64, f64), data: &mut [u8]) {
    for (i, &x) in values.iter().enumerate() {
        data[3 * i + c] = quantize(unit_from_percentiles(f64::from(x), limits.0, limits.1));
    }
}

/// The pRGB image of `bands` stretched between given limits (p2, p98 per
/// channel: a trained model's, not this cube's own), pixel for pixel what
/// [`render_prgb`] gives on a cube with those percentiles.
pub fn render_prgb_with(
    cube: &HsiCube,
    bands: [usize; 3],
    limits: &[(f64, f64); 3],
) -> Result<Rgb8Image, ProductError> {
    let mut data = vec![0u8; 3 * cube.grid.len()];
    let mut stretch = Vec::with_capacity(3);
    for (c, (&b, &lim)) in bands.iter().zip(limits).enumerate() {
        if b >= cube.bands {
            return Err(ProductError::BandOutOfRange {
                band: b,
                bands: cube.bands,
            });
        }
        stretch_into(cube.band(b), c, lim, &mut data);
        stretch.push(ChannelStretch::fixed(c, band_label(cube, b), lim.0, lim.1));
    }
    Ok(Rgb8Image {
        width: cube.grid.width,
        height: cube.grid.height,
        data,
        stretch,
    })
}
