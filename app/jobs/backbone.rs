//! What the app shows and asks of the backbone, so that `ui` never reaches
//! into `model`: the backbone and device choices, the layout's counts line,
//! a file's short name. Checking a checkpoint or an adapter is a task
//! (`tasks::Task::CheckCheckpoint`, `CheckAdapter`).

pub use crate::model::backbone::{BackboneSpec, file_name};
pub use crate::model::config::UNetConfig;
pub use crate::model::device::DeviceChoice;

use crate::base::thousands;

/// "Stage A trains 157,504 of 2,008,102 parameters (7.84 %)" for a layout,
/// or why the counts are not known.
pub fn stage_a_counts(config: &UNetConfig) -> String {
    match crate::model::inspect::summarize(config) {
        Ok(s) => format!(
            "Stage A trains {} of {} parameters ({:.2} %)",
            thousands(s.trainable_parameters),
            thousands(s.parameters),
            s.trainable_percent
        ),
        Err(e) => format!("parameter counts unknown: {e}"),
    }
}
