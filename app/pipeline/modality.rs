//! The three modalities of the method and the class-embedding row each uses
//! (method.md section 5): pRGB = 1, PCA = 2, SAR = 3.

use serde::{Deserialize, Serialize};

use crate::products::renderings::Renderings;
use crate::scene::Rgb8Image;

/// One of the 3-channel renderings fed to the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Modality {
    Prgb,
    Pca,
    Sar,
}

impl Modality {
    pub const ALL: [Modality; 3] = [Modality::Prgb, Modality::Pca, Modality::Sar];

    /// Row of the pretrained class embedding used as e_m.
    pub fn label_row(self) -> i64 {
        match self {
            Modality::Prgb => 1,
            Modality::Pca => 2,
            Modality::Sar => 3,
        }
    }

    /// This modality's image among `renderings`, when they hold it.
    pub fn image_in(self, renderings: &Renderings) -> Option<&Rgb8Image> {
        match self {
            Modality::Prgb => renderings.prgb.as_ref().map(|(i, _)| i),
            Modality::Pca => renderings.pca.as_ref().map(|(i, _)| i),
            Modality::Sar => renderings.pauli.as_ref(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Modality::Prgb => "prgb",
            Modality::Pca => "pca",
            Modality::Sar => "sar",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "prgb" | "rgb" => Some(Modality::Prgb),
            "pca" => Some(Modality::Pca),
            "sar" | "pauli" => Some(Modality::Sar),
            _ => None,
        }
    }
}
