//! UniDiff Studio: land-cover mapping from hyperspectral (HSI) and SAR rasters
//! with sparse hand labels, after the UniDiff method (`method.md`).
//!
//! Layers, each a module, depending downwards only:
//! `io` (files) and `products` (renderings) feed `scene` (the data on one pixel
//! grid); `metrics` scores class maps; `pipeline` holds the method's patching;
//! `cli` drives them headless.

pub mod cli;
pub mod io;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod products;
pub mod scene;
