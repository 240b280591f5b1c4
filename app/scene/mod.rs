//! The data of one study area: a pixel grid with its georeference, the HSI cube,
//! the SAR image, label layers, the class legend, 8-bit renderings and band
//! wavelengths. Knows nothing of files or of how renderings are made.

pub mod assemble;
pub mod classes;
pub mod cube;
pub mod grid;
pub mod label_edits;
pub mod label_image;
pub mod rgb_image;
pub mod sample;
pub mod sar;
pub mod wavelength;
pub mod window;

pub use assemble::Scene;
pub use classes::{ClassInfo, PALETTE, class_name, default_classes, named_classes};
pub use cube::HsiCube;
pub use grid::{GeoTransform, GridMismatch, PixelGrid};
pub use label_edits::{Brush, Edit, PixelRect, Stroke, UndoHistory};
pub use label_image::{LabelImage, LabelLayer};
pub use rgb_image::{ChannelStretch, Rgb8Image};
pub use sar::{PowerScale, SarImage, SarKind};
pub use window::Window;
