//! The method end to end and what stands beside it: the patch grid
//! (method.md section 3) and the modalities, Stage A (its patch pool and
//! adaptation loop), Stage B (features, the head, merged predictions, the
//! feature store), the random forests and their features, one
//! classification with its held-out comparison and label curve, trained
//! model bundles and their application to scenes in tiles, the map's
//! clean-up, validation samples, and the run's record (`run.json`).

pub mod apply_model;
pub mod baseline;
pub mod classification;
pub mod classifier;
pub mod cleanup;
pub mod export;
pub mod feature_projection;
pub mod feature_store;
pub mod features;
pub mod filter_features;
pub mod forest;
pub mod held_out;
pub mod label_curve;
pub mod modality;
pub mod model_bundle;
pub mod noised;
pub mod patch_grid;
pub mod patches;
pub mod predict;
pub mod run_record;
pub mod split;
pub mod stage_a;
pub mod stage_b;
pub mod tiled_predict;
pub mod validation_sample;

pub use modality::Modality;
pub use patch_grid::PatchGrid;
