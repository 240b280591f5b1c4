//! The method end to end. For now: the patch grid of method.md section 3 that
//! Stage A, Stage B and prediction share.

pub mod patch_grid;

pub use patch_grid::PatchGrid;
