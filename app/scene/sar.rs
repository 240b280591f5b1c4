//! The SAR layer of a scene as linear intensities: the dual-pol covariance
//! diagonal (C11 = VV, C22 = VH) the method uses, or the quad-pol coherency
//! diagonal (T11, T22, T33) for the classic Pauli rendering.

use super::grid::PixelGrid;

/// How the values of a SAR file were stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerScale {
    /// Linear power / intensity.
    Linear,
    /// Decibels: linear = 10^(x/10).
    Db,
}

/// The polarimetric content of a SAR layer; all values are linear intensities,
/// row-major, NaN where invalid. Held in f64: the conversion from dB is done
/// once, in double precision, as the reference rendering does.
#[derive(Debug, Clone)]
pub enum SarKind {
    /// C11 (co-pol, VV or HH) and C22 (cross-pol, VH or HV).
    DualPol { c11: Vec<f64>, c22: Vec<f64> },
    /// Diagonal of the Pauli coherency matrix T3:
    /// T11 = |HH+VV|^2/2, T22 = |HH-VV|^2/2, T33 = 2|HV|^2.
    QuadPol {
        t11: Vec<f64>,
        t22: Vec<f64>,
        t33: Vec<f64>,
    },
}

/// A SAR image on a pixel grid.
#[derive(Debug, Clone)]
pub struct SarImage {
    pub grid: PixelGrid,
    pub kind: SarKind,
    /// The scale the source file was in (the data held here is always linear).
    pub source_scale: PowerScale,
    /// Why that scale was chosen (metadata, data range, or the user's choice).
    pub scale_reason: String,
    /// The matrix's off-diagonal parts read with it ("T12_real", …; linear,
    /// as read), given to the classifiers beside the diagonal; empty for a
    /// raster of VV and VH.
    pub off_diagonal: OffDiagonal,
}

/// A matrix's off-diagonal parts by name ("T12_real", …), each a plane.
pub type OffDiagonal = Vec<(String, Vec<f64>)>;

impl SarKind {
    /// The diagonal's planes by name: C11, C22 (dual-pol) or T11, T22, T33
    /// (quad-pol).
    pub fn diagonal(&self) -> Vec<(&'static str, &[f64])> {
        match self {
            SarKind::DualPol { c11, c22 } => vec![("C11", c11), ("C22", c22)],
            SarKind::QuadPol { t11, t22, t33 } => vec![("T11", t11), ("T22", t22), ("T33", t33)],
        }
    }
}

impl SarImage {
    /// "dual-pol" or "quad-pol".
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            SarKind::DualPol { .. } => "dual-pol",
            SarKind::QuadPol { .. } => "quad-pol",
        }
    }
}
