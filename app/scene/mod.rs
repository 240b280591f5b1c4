//! The data of one study area: a pixel grid with its georeference, the HSI cube,
//! the SAR image, label layers, the class legend, 8-bit renderings and band
//! wavelengths. Knows nothing of files or of how renderings are made.

pub mod assemble;
pub mod classes;
pub mod cube;
pub mod edit;
pub mod grid;
pub mod labels;
pub mod rgb_image;
pub mod sample;
pub mod sar;
pub mod wavelength;
pub mod window;

pub use assemble::Scene;
pub use classes::{ClassInfo, PALETTE, class_name, default_classes, named_classes};
pub use cube::HsiCube;
pub use edit::{Brush, Edit, LabelLayer, PixelRect, Stroke, UndoHistory};
pub use grid::{GeoTransform, GridMismatch, PixelGrid};
pub use labels::LabelImage;
pub use rgb_image::{ChannelStretch, Rgb8Image};
pub use sar::{PowerScale, SarImage, SarKind};
pub use window::Window;
