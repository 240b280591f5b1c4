//! The SAR "Pauli" renderings: the paper's dual-pol formula (method.md
//! section 2) and the classic quad-pol Pauli RGB from the coherency diagonal.

use serde::Serialize;

use super::error::ProductError;
use super::percentile::percentiles_of;
use super::stretch::{quantize, unit_from_percentiles};
use crate::scene::{ChannelStretch, Rgb8Image};
use crate::scene::{SarImage, SarKind};

/// Settings of the dual-pol rendering.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PauliSettings {
    /// Channel gains applied after the stretch (R, G, B).
    pub gains: [f64; 3],
    /// Output gamma: v^gamma (0.8 Berlin, 0.7 Augsburg).
    pub gamma: f64,
}

impl Default for PauliSettings {
    fn default() -> Self {
        Self {
            gains: [1.25, 0.95, 1.15],
            gamma: 0.8,
        }
    }
}

/// Renders the SAR image: dual-pol with the paper's formula, quad-pol as the
/// classic Pauli RGB.
pub fn render_pauli(sar: &SarImage, settings: PauliSettings) -> Result<Rgb8Image, ProductError> {
    render_pauli_with(sar, settings, None)
}

/// [`render_pauli`] with each channel stretched between given limits (p2,
/// p98 of R, G, B: a trained model's) instead of this image's own
/// percentiles, when `limits` is given.
pub fn render_pauli_with(
    sar: &SarImage,
    settings: PauliSettings,
    limits: Option<&[(f64, f64); 3]>,
) -> Result<Rgb8Image, ProductError> {
    match &sar.kind {
        SarKind::DualPol { c11, c22 } => dual_pol(sar, c11, c22, settings, limits),
        SarKind::QuadPol { t11, t22, t33 } => quad_pol(sar, t11, t22, t33, limits),
    }
}

/// The limits of channel `c`: given, or the (p2, p98) of `values` with the
/// samples they were taken over.
fn channel_limits(
    values: &[f64],
    c: usize,
    name: &'static str,
    limits: Option<&[(f64, f64); 3]>,
) -> Result<((f64, f64), Option<usize>), ProductError> {
    if let Some(l) = limits {
        return Ok((l[c], None));
    }
    let (p, samples) = percentiles_of(values, &[2.0, 98.0])
        .ok_or(ProductError::EmptySarChannel { channel: name })?;
    Ok(((p[0], p[1]), Some(samples)))
}

fn channel_stretch(
    c: usize,
    source: &str,
    (p2, p98): (f64, f64),
    samples: Option<usize>,
) -> ChannelStretch {
    match samples {
        Some(n) => ChannelStretch::exact(c, source, p2, p98, n),
        None => ChannelStretch::fixed(c, source, p2, p98),
    }
}

/// R = |C11 - C22|, G = 2 sqrt|C22|, B = |C11 + C22|; per channel clip to its
/// [p2, p98], sqrt, min-max to [0, 1]; gains, clip, gamma.
fn dual_pol(
    sar: &SarImage,
    c11: &[f64],
    c22: &[f64],
    s: PauliSettings,
    limits: Option<&[(f64, f64); 3]>,
) -> Result<Rgb8Image, ProductError> {
    let n = sar.grid.len();
    let channels: [(&'static str, &str, Vec<f64>); 3] = [
        (
            "R",
            "|C11 - C22|",
            (0..n).map(|i| (c11[i] - c22[i]).abs()).collect(),
        ),
        (
            "G",
            "2 sqrt|C22|",
            (0..n).map(|i| 2.0 * c22[i].abs().sqrt()).collect(),
        ),
        (
            "B",
            "|C11 + C22|",
            (0..n).map(|i| (c11[i] + c22[i]).abs()).collect(),
        ),
    ];
    let mut data = vec![0u8; 3 * n];
    let mut stretch = Vec::with_capacity(3);
    for (c, (name, source, values)) in channels.iter().enumerate() {
        let ((p2, p98), samples) = channel_limits(values, c, name, limits)?;
        let (lo, hi) = (p2.sqrt(), p98.sqrt());
        for (i, &x) in values.iter().enumerate() {
            if x.is_nan() || hi <= lo {
                continue;
            }
            let v = (x.clamp(p2, p98).sqrt() - lo) / (hi - lo);
            let v = (v * s.gains[c]).clamp(0.0, 1.0).powf(s.gamma);
            data[3 * i + c] = quantize(v);
        }
        stretch.push(channel_stretch(c, source, (p2, p98), samples));
    }
    Ok(Rgb8Image {
        width: sar.grid.width,
        height: sar.grid.height,
        data,
        stretch,
    })
}

/// R = T22 = |HH - VV|^2 / 2, G = T33 = 2|HV|^2, B = T11 = |HH + VV|^2 / 2, each
/// in dB and stretched p2/p98.
fn quad_pol(
    sar: &SarImage,
    t11: &[f64],
    t22: &[f64],
    t33: &[f64],
    limits: Option<&[(f64, f64); 3]>,
) -> Result<Rgb8Image, ProductError> {
    let n = sar.grid.len();
    let db = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .map(|&x| if x > 0.0 { 10.0 * x.log10() } else { f64::NAN })
            .collect()
    };
    let channels: [(&'static str, &str, Vec<f64>); 3] = [
        ("R", "T22 = |HH - VV|^2 / 2 (dB)", db(t22)),
        ("G", "T33 = 2 |HV|^2 (dB)", db(t33)),
        ("B", "T11 = |HH + VV|^2 / 2 (dB)", db(t11)),
    ];
    let mut data = vec![0u8; 3 * n];
    let mut stretch = Vec::with_capacity(3);
    for (c, (name, source, values)) in channels.iter().enumerate() {
        let ((p2, p98), samples) = channel_limits(values, c, name, limits)?;
        for (i, &x) in values.iter().enumerate() {
            data[3 * i + c] = quantize(unit_from_percentiles(x, p2, p98));
        }
        stretch.push(channel_stretch(c, source, (p2, p98), samples));
    }
    Ok(Rgb8Image {
        width: sar.grid.width,
        height: sar.grid.height,
        data,
        stretch,
    })
}
