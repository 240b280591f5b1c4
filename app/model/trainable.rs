//! The Stage A trainable set (method.md section 5): the class-embedding table
//! and the `emb_layers` (FiLM generators) of every ResBlock inside the output
//! blocks. Everything else is frozen.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

use super::unet::UNet;

/// A trainable parameter of the U-Net, by rank.
pub enum TrainableParam<'a, B: Backend> {
    Matrix(&'a Param<Tensor<B, 2>>),
    Vector(&'a Param<Tensor<B, 1>>),
}

impl<B: Backend> TrainableParam<'_, B> {
    pub fn shape(&self) -> Vec<usize> {
        match self {
            TrainableParam::Matrix(p) => p.dims().to_vec(),
            TrainableParam::Vector(p) => p.dims().to_vec(),
        }
    }

    /// The values, row-major.
    pub fn values(&self) -> Result<Vec<f32>, super::tensor_read::TensorReadError> {
        match self {
            TrainableParam::Matrix(p) => super::tensor_read::f32_values(p.val(), "a parameter"),
            TrainableParam::Vector(p) => super::tensor_read::f32_values(p.val(), "a parameter"),
        }
    }
}

impl<B: AutodiffBackend> TrainableParam<'_, B> {
    /// The gradient of this parameter, if the backward pass reached it.
    pub fn grad_values(&self, grads: &B::Gradients) -> Option<Vec<f32>> {
        let data = match self {
            TrainableParam::Matrix(p) => p.val().grad(grads)?.into_data(),
            TrainableParam::Vector(p) => p.val().grad(grads)?.into_data(),
        };
        data.convert::<f32>().to_vec::<f32>().ok()
    }
}

impl<B: Backend> UNet<B> {
    /// The Stage A trainable parameters with their state-dict names, in
    /// state-dict order.
    pub fn trainable_params(&self) -> Vec<(String, TrainableParam<'_, B>)> {
        let mut out = Vec::new();
        if let Some(p) = &self.label_emb {
            out.push(("label_emb.weight".to_string(), TrainableParam::Matrix(p)));
        }
        for (name, block) in self.named_resblocks() {
            if name.starts_with("output_blocks.") {
                let l = &block.emb_linear;
                out.push((
                    format!("{name}.emb_layers.1.weight"),
                    TrainableParam::Matrix(&l.weight),
                ));
                out.push((
                    format!("{name}.emb_layers.1.bias"),
                    TrainableParam::Vector(&l.bias),
                ));
            }
        }
        out
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
