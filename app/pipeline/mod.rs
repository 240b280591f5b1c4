//! The method end to end: the patch grid of method.md section 3, the
//! modalities, the Stage A patch pool and the Stage A adaptation loop.

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
