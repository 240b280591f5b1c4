//! Tensors read back to the host as a `Result`: a read that fails (a lost
//! device, an element type burn cannot convert) is an error that says what
//! was being read, never an empty vector that later code takes for data.

use burn::prelude::*;

/// A tensor that could not be read back.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot read {what} back from the device: {reason}")]
pub struct TensorReadError {
    pub what: &'static str,
    pub reason: String,
}

/// The values of a float tensor as f32, row-major.
pub fn f32_values<B: Backend, const D: usize>(
    tensor: Tensor<B, D>,
    what: &'static str,
) -> Result<Vec<f32>, TensorReadError> {
    tensor
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| TensorReadError {
            what,
            reason: format!("{e:?}"),
        })
}

/// The values of an integer tensor as i64, row-major.
pub fn i64_values<B: Backend, const D: usize>(
    tensor: Tensor<B, D, Int>,
    what: &'static str,
) -> Result<Vec<i64>, TensorReadError> {
    tensor
        .into_data()
        .convert::<i64>()
        .to_vec::<i64>()
        .map_err(|e| TensorReadError {
            what,
            reason: format!("{e:?}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::TensorData;

    #[test]
    fn values_come_back_in_row_major_order() {
        let device = Default::default();
        let t = Tensor::<NdArray, 2>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]),
            &device,
        );
        assert_eq!(f32_values(t.clone(), "t").unwrap(), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(i64_values(t.argmax(1), "argmax").unwrap(), [1, 1]);
    }
}
