//! UniDiff Studio: land-cover mapping from hyperspectral (HSI) and SAR rasters
//! with sparse hand labels, after the UniDiff method (`method.md`).
//!
//! Layers, each a module, depending downwards only:
//! `io` (files) and `products` (renderings) feed `scene` (the data on one pixel
//! grid); `metrics` scores class maps; `pipeline` holds the method's patching;
//! `session` holds the open scene with its label edits, `jobs` runs work off
//! the UI thread, `ui` is the desktop app; `cli` drives the same functions
//! headless.

pub mod cli;
pub mod demo;
pub mod io;
pub mod jobs;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod products;
pub mod scene;
pub mod session;
pub mod ui;
