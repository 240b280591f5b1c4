//! Land-cover accuracy figures of method.md section 8: the confusion matrix
//! over test-labelled pixels and OA, AA, kappa, mF1, mIoU with per-class
//! recall, precision, F1 and IoU, equal to scikit-learn's; the map's class
//! areas (`areas`) and their area-adjusted accuracy from a stratified
//! sample (`area_accuracy`, Olofsson et al. 2014) and the design that draws
//! such a sample from the map (`sample_design`).

pub mod area_accuracy;
pub mod areas;
pub mod confusion;
pub mod export;
pub mod sample_design;
pub mod summary;

pub use confusion::ConfusionMatrix;
pub use summary::{ClassScores, MetricsSummary};
