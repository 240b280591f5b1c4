//! What a configuration or checkpoint holds: tensor names and shapes in
//! state-dict order, parameter counts and the Stage A trainable fraction,
//! without allocating the network.

use burn::backend::NdArray;
use serde::Serialize;

use super::checkpoint::CheckpointError;
use super::config::UNetConfig;
use super::params::ParamSource;
use super::params::is_stage_a_trainable;
use super::unet::UNet;

/// Counts of a U-Net configuration.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    pub tensors: usize,
    pub parameters: usize,
    pub trainable_tensors: usize,
    pub trainable_parameters: usize,
    /// trainable / all, in percent.
    pub trainable_percent: f64,
}

/// (name, shape) of every tensor the configuration expects, in state-dict order.
pub fn expected_tensors(config: &UNetConfig) -> Result<Vec<(String, Vec<usize>)>, CheckpointError> {
    let mut shapes = Vec::new();
    UNet::<NdArray<f32>>::build_recording(
        config,
        ParamSource::ShapesOnly,
        &Default::default(),
        &mut shapes,
    )?;
    Ok(shapes)
}

/// Counts for a configuration.
pub fn summarize(config: &UNetConfig) -> Result<ModelSummary, CheckpointError> {
    let shapes = expected_tensors(config)?;
    let count = |s: &Vec<usize>| s.iter().product::<usize>();
    let parameters: usize = shapes.iter().map(|(_, s)| count(s)).sum();
    let trainable: Vec<&(String, Vec<usize>)> = shapes
        .iter()
        .filter(|(n, _)| is_stage_a_trainable(n))
        .collect();
    let trainable_parameters: usize = trainable.iter().map(|(_, s)| count(s)).sum();
    Ok(ModelSummary {
        tensors: shapes.len(),
        parameters,
        trainable_tensors: trainable.len(),
        trainable_parameters,
        trainable_percent: 100.0 * trainable_parameters as f64 / parameters.max(1) as f64,
    })
}
