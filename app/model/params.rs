//! Where the U-Net's parameters come from: a checkpoint (by name, with the
//! shape checked) or a seeded random initialisation. The loader collects every
//! problem before failing, so one error lists all missing, unexpected and
//! mis-shaped tensors. It also freezes what Stage A does not train.

use std::collections::BTreeSet;

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::TensorData;

use super::checkpoint::{CheckpointError, CheckpointTensors};
use crate::base::NormalRng;

/// How a freshly initialised tensor is drawn (the reference fixtures' recipe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// GroupNorm weight: 1 + 0.1 z.
    NormWeight,
    /// Any bias: 0.02 z.
    Bias,
    /// Class embedding: 0.5 z.
    Embedding,
    /// Conv and linear weights: 0.05 z.
    Weight,
}

/// Seeded random values for a parameter of the given kind.
fn random_data(rng: &mut NormalRng, shape: &[usize], init: Init) -> TensorData {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|_| {
            let z = rng.normal();
            (match init {
                Init::NormWeight => 1.0 + 0.1 * z,
                Init::Bias => 0.02 * z,
                Init::Embedding => 0.5 * z,
                Init::Weight => 0.05 * z,
            }) as f32
        })
        .collect();
    TensorData::new(values, shape.to_vec())
}

/// The source of parameter values.
pub enum ParamSource<'a> {
    Checkpoint(&'a CheckpointTensors),
    /// A base checkpoint with an adapter's tensors replacing those it holds.
    Adapted {
        base: &'a CheckpointTensors,
        adapter: &'a CheckpointTensors,
    },
    Random(NormalRng),
    /// Seeded random weights with an adapter's tensors replacing those it
    /// holds (an adapter trained on a random backbone).
    RandomAdapted {
        rng: NormalRng,
        adapter: &'a CheckpointTensors,
    },
    /// Placeholder values (1 element per dimension): for listing names and
    /// shapes without allocating the network.
    ShapesOnly,
}

/// Builds parameters by name, recording problems instead of stopping.
pub struct ParamLoader<'a, B: Backend> {
    source: ParamSource<'a>,
    pub device: B::Device,
    missing: Vec<String>,
    misshaped: Vec<String>,
    used: BTreeSet<String>,
    /// (name, shape) of every parameter asked for, in order.
    pub requested: Vec<(String, Vec<usize>)>,
    /// Parameters whose names `trainable` accepts keep gradients; all others
    /// are frozen.
    trainable: fn(&str) -> bool,
}

impl<'a, B: Backend> ParamLoader<'a, B> {
    pub fn new(source: ParamSource<'a>, device: &B::Device) -> Self {
        Self {
            source,
            device: device.clone(),
            missing: Vec::new(),
            misshaped: Vec::new(),
            used: BTreeSet::new(),
            requested: Vec::new(),
            trainable: is_stage_a_trainable,
        }
    }

    /// A parameter of the given name and shape.
    pub fn param<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
        init: Init,
    ) -> Param<Tensor<B, D>> {
        self.requested.push((name.to_string(), shape.to_vec()));
        let data = match &mut self.source {
            ParamSource::ShapesOnly => TensorData::new(vec![0f32], [1; D].to_vec()),
            ParamSource::Random(rng) => random_data(rng, &shape, init),
            ParamSource::RandomAdapted { rng, adapter } => {
                // Drawn whatever the adapter holds, so the other tensors equal
                // those of the plain random backbone.
                let random = random_data(rng, &shape, init);
                let adapter: &CheckpointTensors = adapter;
                if adapter.shape(name).is_some() {
                    Self::from_checkpoint(
                        adapter,
                        name,
                        &shape,
                        &mut self.used,
                        &mut self.missing,
                        &mut self.misshaped,
                    )
                } else {
                    random
                }
            }
            ParamSource::Checkpoint(ckpt) => {
                let ckpt: &CheckpointTensors = ckpt;
                Self::from_checkpoint(
                    ckpt,
                    name,
                    &shape,
                    &mut self.used,
                    &mut self.missing,
                    &mut self.misshaped,
                )
            }
            ParamSource::Adapted { base, adapter } => {
                let (base, adapter): (&CheckpointTensors, &CheckpointTensors) = (base, adapter);
                let source = if adapter.shape(name).is_some() {
                    adapter
                } else {
                    base
                };
                Self::from_checkpoint(
                    source,
                    name,
                    &shape,
                    &mut self.used,
                    &mut self.missing,
                    &mut self.misshaped,
                )
            }
        };
        let tensor = Tensor::<B, D>::from_data(data, &self.device);
        let trainable = (self.trainable)(name);
        Param::from_tensor(tensor).set_require_grad(trainable)
    }

    fn from_checkpoint(
        ckpt: &CheckpointTensors,
        name: &str,
        shape: &[usize],
        used: &mut BTreeSet<String>,
        missing: &mut Vec<String>,
        misshaped: &mut Vec<String>,
    ) -> TensorData {
        used.insert(name.to_string());
        let zeros = || TensorData::new(vec![0f32; shape.iter().product()], shape.to_vec());
        match ckpt.shape(name) {
            None => {
                missing.push(format!("  missing: {name} {shape:?}"));
                zeros()
            }
            Some(found) if found != shape => {
                misshaped.push(format!(
                    "  mis-shaped: {name} is {found:?}, expected {shape:?}"
                ));
                zeros()
            }
            Some(_) => ckpt.data(name).unwrap_or_else(|e| {
                misshaped.push(format!("  unreadable: {name}: {e}"));
                zeros()
            }),
        }
    }

    /// Every adapter tensor must be a trainable parameter of the model.
    fn check_adapter(&self, adapter: &CheckpointTensors) -> Result<(), CheckpointError> {
        let foreign: Vec<String> = adapter
            .names()
            .filter(|n| !self.used.contains(*n) || !(self.trainable)(n))
            .map(|n| format!("  not an adaptable tensor: {n}"))
            .collect();
        if foreign.is_empty() {
            return Ok(());
        }
        Err(CheckpointError::Mismatch {
            path: adapter.path.clone(),
            missing_count: 0,
            unexpected_count: foreign.len(),
            misshaped_count: 0,
            details: foreign.join("\n"),
        })
    }

    /// Ends loading: every checkpoint tensor must have been used, and every
    /// parameter found with its shape.
    pub fn finish(self) -> Result<(), CheckpointError> {
        let ckpt: &CheckpointTensors = match self.source {
            ParamSource::Checkpoint(c) => c,
            ParamSource::Adapted { base, adapter } => {
                self.check_adapter(adapter)?;
                base
            }
            ParamSource::RandomAdapted { adapter, .. } => {
                self.check_adapter(adapter)?;
                adapter
            }
            _ => return Ok(()),
        };
        let unexpected: Vec<String> = ckpt
            .names()
            .filter(|n| !self.used.contains(*n))
            .map(|n| format!("  unexpected: {n} {:?}", ckpt.shape(n).unwrap_or(&[])))
            .collect();
        if self.missing.is_empty() && self.misshaped.is_empty() && unexpected.is_empty() {
            return Ok(());
        }
        const SHOWN: usize = 12;
        let mut details = Vec::new();
        for list in [&self.missing, &self.misshaped, &unexpected] {
            details.extend(list.iter().take(SHOWN).cloned());
            if list.len() > SHOWN {
                details.push(format!("  ... and {} more", list.len() - SHOWN));
            }
        }
        Err(CheckpointError::Mismatch {
            path: ckpt.path.clone(),
            missing_count: self.missing.len(),
            unexpected_count: unexpected.len(),
            misshaped_count: self.misshaped.len(),
            details: details.join("\n"),
        })
    }
}

/// True for the parameters Stage A adapts.
pub fn is_stage_a_trainable(name: &str) -> bool {
    name == "label_emb.weight"
        || (name.starts_with("output_blocks.") && name.contains(".emb_layers."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_label_emb_and_output_emb_layers_train() {
        assert!(is_stage_a_trainable("label_emb.weight"));
        assert!(is_stage_a_trainable(
            "output_blocks.3.2.emb_layers.1.weight"
        ));
        assert!(!is_stage_a_trainable(
            "input_blocks.1.0.emb_layers.1.weight"
        ));
        assert!(!is_stage_a_trainable("middle_block.0.emb_layers.1.bias"));
        assert!(!is_stage_a_trainable(
            "output_blocks.3.0.out_layers.3.weight"
        ));
        assert!(!is_stage_a_trainable("time_embed.0.weight"));
    }
}
