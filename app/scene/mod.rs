//! The data of one study area: a pixel grid with its georeference, the HSI cube,
//! the SAR image and label layers. Knows nothing of files or rendering.

pub mod assemble;
pub mod cube;
pub mod edit;
pub mod grid;
pub mod labels;
pub mod sar;

pub use assemble::Scene;
pub use cube::HsiCube;
pub use edit::{Brush, Edit, LabelLayer, PixelRect, Stroke, UndoHistory};
pub use grid::{GridMismatch, PixelGrid};
pub use labels::LabelImage;
pub use sar::{PowerScale, SarImage, SarKind};
