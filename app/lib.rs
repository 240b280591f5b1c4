//! UniDiff Studio: land-cover mapping from hyperspectral (HSI) and SAR rasters
//! with sparse hand labels, after the UniDiff method (`method.md`).
//!
//! Layers, each a module, depending downwards only (checked by the test in
//! `layer_rules.rs`): `base` (cancel flag, seeded generator, number
//! formatting) under everything; `scene` (the data on one pixel grid);
//! `io` (files) and `products` (renderings) beside each other on it;
//! `model` (the U-Net in burn) and `metrics` (scores of class maps); the
//! method end to end in `pipeline`; the open scene with its label edits in
//! `session`; `jobs` runs work off the UI thread; `ui` is the desktop app and
//! `cli` drives the same functions headless; `main.rs` picks one of the two.

pub mod base;
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

#[cfg(test)]
mod layer_rules;
