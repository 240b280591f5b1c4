//! Which polarimetric matrix a multi-band SAR raster holds, read from its
//! band descriptions: a T3 or C3 matrix (quad-pol) or a C2 matrix (dual- or
//! compact-pol), as PolSARpro and SNAP export them to one GeoTIFF
//! (`T11, T22, T33, T12_real, T12_imag, …`). Such a file is read as what it
//! is — the diagonal for the Pauli rendering, every element for the
//! classifiers — never as two bands by position.

use super::error::ReadError;
use crate::scene::SarKind;
use crate::scene::sar::OffDiagonal;

/// The matrices a raster's bands can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatrixKind {
    T3,
    C3,
    C2,
}

impl MatrixKind {
    /// "T3", "C3", "C2".
    pub fn name(self) -> &'static str {
        match self {
            MatrixKind::T3 => "T3",
            MatrixKind::C3 => "C3",
            MatrixKind::C2 => "C2",
        }
    }

    /// The diagonal elements (their order in [`MatrixBands::diagonal`]),
    /// then the off-diagonal parts a complete matrix has.
    pub(crate) fn elements(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            MatrixKind::T3 => (
                &["T11", "T22", "T33"],
                &[
                    "T12_real", "T12_imag", "T13_real", "T13_imag", "T23_real", "T23_imag",
                ],
            ),
            MatrixKind::C3 => (
                &["C11", "C22", "C33"],
                &[
                    "C12_real", "C12_imag", "C13_real", "C13_imag", "C23_real", "C23_imag",
                ],
            ),
            MatrixKind::C2 => (&["C11", "C22"], &["C12_real", "C12_imag"]),
        }
    }
}

/// Where a raster's matrix elements are: 0-based band indices.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixBands {
    pub kind: MatrixKind,
    /// T11, T22, T33 / C11, C22, C33 / C11, C22.
    pub diagonal: Vec<usize>,
    /// The off-diagonal parts found, (name, band), in the matrix's order.
    pub off_diagonal: Vec<(String, usize)>,
    /// Bands that are no element of the matrix (not read), 0-based.
    pub unused: Vec<usize>,
}

impl MatrixBands {
    /// Every band to read: the diagonal, then the off-diagonal parts.
    pub fn bands(&self) -> Vec<usize> {
        self.diagonal
            .iter()
            .copied()
            .chain(self.off_diagonal.iter().map(|(_, b)| *b))
            .collect()
    }

    /// What was read and how, in words for the log, `run.json` and the
    /// layer's info.
    pub fn describe(&self) -> String {
        let (diagonal, _) = self.kind.elements();
        let mut text = format!(
            "{} matrix by band description: {} (bands {}) for the Pauli rendering",
            self.kind.name(),
            diagonal.join(", "),
            join_bands(&self.diagonal)
        );
        text.push_str(&classifiers_note(&self.off_diagonal));
        if !self.unused.is_empty() {
            text.push_str(&format!(
                "; bands {} are no matrix element and are not read",
                join_bands(&self.unused)
            ));
        }
        text
    }
}

/// "; T12_real, T12_imag also to the classifiers" for the off-diagonal
/// parts read (nothing when there are none).
pub(crate) fn classifiers_note<T>(parts: &[(String, T)]) -> String {
    if parts.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = parts.iter().map(|(n, _)| n.as_str()).collect();
    format!("; {} also to the classifiers", names.join(", "))
}

fn join_bands(bands: &[usize]) -> String {
    bands
        .iter()
        .map(|b| (b + 1).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A band description as an element name: "T12_real" from "T12_real",
/// "t12 REAL", "T12-re", "C12_Imag"; None for anything else.
fn element_name(description: &str) -> Option<String> {
    let token: String = description
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_uppercase();
    let (head, part) = token.split_at(token.len().min(3));
    let mut chars = head.chars();
    let (Some(letter @ ('T' | 'C')), Some(i @ '1'..='3'), Some(j @ '1'..='3')) =
        (chars.next(), chars.next(), chars.next())
    else {
        return None;
    };
    let base = format!("{letter}{i}{j}");
    match part {
        "" if i == j => Some(base),
        "REAL" | "RE" if i < j => Some(format!("{base}_real")),
        "IMAG" | "IM" if i < j => Some(format!("{base}_imag")),
        _ => None,
    }
}

/// The matrix a raster's bands hold, from their descriptions: T3 when T11,
/// T22 and T33 are named, C3 when C11, C22, C33 and C13_real are, C2 when
/// C11 and C22 are (and no C33); None otherwise (the caller reads VV/VH
/// by name or position). Off-diagonal parts are taken where named.
pub fn matrix_bands(descriptions: &[String]) -> Option<MatrixBands> {
    let names: Vec<Option<String>> = descriptions.iter().map(|d| element_name(d)).collect();
    let find = |name: &str| names.iter().position(|n| n.as_deref() == Some(name));
    let has = |list: &[&str]| list.iter().all(|n| find(n).is_some());
    let kind = if has(&["T11", "T22", "T33"]) {
        MatrixKind::T3
    } else if has(&["C11", "C22", "C33", "C13_real"]) {
        MatrixKind::C3
    } else if has(&["C11", "C22"]) && find("C33").is_none() {
        MatrixKind::C2
    } else {
        return None;
    };
    let (diagonal, off) = kind.elements();
    let diagonal: Vec<usize> = diagonal.iter().filter_map(|n| find(n)).collect();
    let off_diagonal: Vec<(String, usize)> = off
        .iter()
        .filter_map(|n| find(n).map(|b| (n.to_string(), b)))
        .collect();
    let read: Vec<usize> = diagonal
        .iter()
        .copied()
        .chain(off_diagonal.iter().map(|(_, b)| *b))
        .collect();
    let unused = (0..descriptions.len())
        .filter(|b| !read.contains(b))
        .collect();
    Some(MatrixBands {
        kind,
        diagonal,
        off_diagonal,
        unused,
    })
}

/// The diagonal of the Pauli coherency matrix T3 from a C3 matrix's C11,
/// C33 and Re(C13) (k_L = [HH, sqrt2 HV, VV]): T11 = (C11 + C33 + 2 Re C13)
/// / 2, T22 = (C11 + C33 - 2 Re C13) / 2; T33 = C22.
pub fn pauli_diagonal_from_c3(c11: &[f64], c33: &[f64], c13_real: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let t11 = (0..c11.len())
        .map(|i| 0.5 * (c11[i] + c33[i] + 2.0 * c13_real[i]))
        .collect();
    let t22 = (0..c11.len())
        .map(|i| 0.5 * (c11[i] + c33[i] - 2.0 * c13_real[i]))
        .collect();
    (t11, t22)
}

/// The layer's content from the planes read in [`MatrixBands::bands`]'s
/// order (each `n` samples, linear): the diagonal as [`SarKind`] and the
/// off-diagonal parts by name.
pub fn matrix_from_planes(
    path: &std::path::Path,
    layout: &MatrixBands,
    data: &[f32],
    n: usize,
) -> Result<(SarKind, OffDiagonal), ReadError> {
    let plane = |k: usize| -> Vec<f64> {
        data[k * n..(k + 1) * n]
            .iter()
            .map(|&v| f64::from(v))
            .collect()
    };
    let off: OffDiagonal = layout
        .off_diagonal
        .iter()
        .enumerate()
        .map(|(k, (name, _))| (name.clone(), plane(layout.diagonal.len() + k)))
        .collect();
    let kind = match layout.kind {
        MatrixKind::T3 => SarKind::QuadPol {
            t11: plane(0),
            t22: plane(1),
            t33: plane(2),
        },
        MatrixKind::C3 => {
            let c13 = off
                .iter()
                .find(|(name, _)| name == "C13_real")
                .map(|(_, v)| v.as_slice())
                .ok_or_else(|| ReadError::format(path, "a C3 matrix without C13_real"))?;
            let (c11, c33) = (plane(0), plane(2));
            let (t11, t22) = pauli_diagonal_from_c3(&c11, &c33, c13);
            SarKind::QuadPol {
                t11,
                t22,
                t33: plane(1),
            }
        }
        MatrixKind::C2 => SarKind::DualPol {
            c11: plane(0),
            c22: plane(1),
        },
    };
    Ok((kind, off))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_t3_geotiff_is_read_as_nine_elements() {
        let t3 = names(&[
            "T11", "T22", "T33", "T12_real", "T12_imag", "T13_real", "T13_imag", "T23_real",
            "T23_imag",
        ]);
        let m = matrix_bands(&t3).unwrap();
        assert_eq!(m.kind, MatrixKind::T3);
        assert_eq!(m.diagonal, vec![0, 1, 2]);
        assert_eq!(m.off_diagonal.len(), 6);
        assert_eq!(m.bands(), (0..9).collect::<Vec<_>>());
        assert!(m.unused.is_empty());
        assert!(
            m.describe().starts_with("T3 matrix by band description"),
            "{}",
            m.describe()
        );
    }

    #[test]
    fn c3_c2_and_spellings_are_recognised_and_other_bands_said() {
        let c3 = names(&[
            "C11", "C12_real", "C12_imag", "C13_real", "C13_imag", "C22", "C23_real", "C23_imag",
            "C33",
        ]);
        let m = matrix_bands(&c3).unwrap();
        assert_eq!(m.kind, MatrixKind::C3);
        assert_eq!(m.diagonal, vec![0, 5, 8]);
        assert_eq!(m.off_diagonal[2], ("C13_real".to_string(), 3));
        let c2 = names(&["c11", "C12 Real", "c12-im", "C22", "mask"]);
        let m = matrix_bands(&c2).unwrap();
        assert_eq!(m.kind, MatrixKind::C2);
        assert_eq!(m.bands(), vec![0, 3, 1, 2]);
        assert_eq!(m.unused, vec![4]);
        assert!(
            m.describe().contains("bands 5 are no matrix element"),
            "{}",
            m.describe()
        );
        for other in [
            names(&["VV", "VH"]),
            names(&["Sigma0_VV_db", "Sigma0_VH_db"]),
            names(&["", ""]),
            names(&["C11", "C33"]),
            names(&["T11", "T22"]),
        ] {
            assert_eq!(matrix_bands(&other), None, "{other:?}");
        }
        assert_eq!(element_name("T21_real"), None, "lower triangle");
        assert_eq!(
            element_name("T12"),
            None,
            "a complex element needs its part"
        );
    }

    #[test]
    fn a_c3_matrix_gives_the_pauli_diagonal_of_its_t3() {
        // HH = 1, HV = 0, VV = 1: T11 = |HH+VV|^2/2 = 2, T22 = 0.
        let (t11, t22) = pauli_diagonal_from_c3(&[1.0], &[1.0], &[1.0]);
        assert_eq!((t11[0], t22[0]), (2.0, 0.0));
    }
}
