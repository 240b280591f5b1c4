//! The Stage A trainable set (method.md section 5): the class-embedding table
//! and the `emb_layers` (FiLM generators) of every ResBlock inside the output
//! blocks. Everything else is frozen.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::TensorData;
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

/// Values that do not fit the trainable set.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct TrainableValuesError(String);

/// `p` with its values replaced by `values`, keeping its id and gradient
/// requirement.
fn replaced<B: Backend, const D: usize>(
    p: &Param<Tensor<B, D>>,
    values: &[f32],
    name: &str,
) -> Result<Param<Tensor<B, D>>, TrainableValuesError> {
    let shape = p.dims();
    let expected: usize = shape.iter().product();
    if values.len() != expected {
        return Err(TrainableValuesError(format!(
            "{name}: {} values for a tensor of {expected}",
            values.len()
        )));
    }
    Ok(p.clone().map(|t| {
        let grad = t.is_require_grad();
        Tensor::from_data(TensorData::new(values.to_vec(), shape), &t.device())
            .set_require_grad(grad)
    }))
}

impl<B: Backend> UNet<B> {
    /// This model with the Stage A trainable tensors replaced by `values`,
    /// given in [`UNet::trainable_params`]'s order.
    pub fn with_trainable_values(
        mut self,
        values: &[&[f32]],
    ) -> Result<Self, TrainableValuesError> {
        let names: Vec<String> = self
            .trainable_params()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        if names.len() != values.len() {
            return Err(TrainableValuesError(format!(
                "{} trainable tensors given, the model has {}",
                values.len(),
                names.len()
            )));
        }
        let mut next = names.iter().zip(values);
        let mut take = || {
            next.next()
                .ok_or_else(|| TrainableValuesError("too few values".into()))
        };
        if let Some(p) = &self.label_emb {
            let (name, v) = take()?;
            self.label_emb = Some(replaced(p, v, name)?);
        }
        for b in &mut self.output_blocks {
            for r in b.res.iter_mut().chain(b.res2.iter_mut()) {
                let (name, v) = take()?;
                r.emb_linear.weight = replaced(&r.emb_linear.weight, v, name)?;
                let (name, v) = take()?;
                r.emb_linear.bias = replaced(&r.emb_linear.bias, v, name)?;
            }
        }
        Ok(self)
    }
}
