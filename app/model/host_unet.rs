//! The CPU's inference path for the frozen U-Net: copies the weights of the
//! burn model into `unidiff-kernels`' structs once, whose forward runs on
//! contiguous buffers with GEMMs and fused element-wise passes (several times
//! faster on the CPU than burn's generic kernels; see that crate's first
//! lines). The results equal [`super::unet::UNet::forward_blocks`] within the
//! fixture tolerances (tests/model.rs).

use burn::prelude::*;
pub use unidiff_kernels::{
    Act, Adam as HostAdam, BlockId as HostBlockId, HeadLinear, HeadMlp, HeadNorm, HeadTrainer,
    KernelError, Trainer as HostTrainer, UNet as HostUNet,
};
use unidiff_kernels::{Attention, Block, Conv as KConv, Linear as KLinear, Norm, Resample};

use super::attention::AttentionBlock;
use super::layers::{Conv, GroupNorm32, Linear, PointwiseConv1d};
use super::resblock::ResBlock;
use super::unet::{BlockId, UNet, UNetBlock};

/// Why the weights could not be copied out of the model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot run the backbone on the CPU path: {0}")]
pub struct HostWeightsError(String);

impl From<KernelError> for HostWeightsError {
    fn from(e: KernelError) -> Self {
        Self(e.to_string())
    }
}

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f32>, HostWeightsError> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| HostWeightsError(format!("{e:?}")))
}

/// A convolution's weights (any rank: Conv2d's or Conv1d's layout) and bias.
fn kernel_conv<B: Backend, const D: usize>(
    weight: Tensor<B, D>,
    bias: Tensor<B, 1>,
    k: usize,
    padding: usize,
) -> Result<KConv, HostWeightsError> {
    let dims = weight.dims();
    let (c_out, c_in) = (dims[0], dims[1]);
    Ok(KConv::new(
        host(weight)?,
        host(bias)?,
        c_in,
        c_out,
        k,
        padding,
    )?)
}

fn conv<B: Backend>(c: &Conv<B>) -> Result<KConv, HostWeightsError> {
    let k = c.weight.dims()[2];
    kernel_conv(c.weight.val(), c.bias.val(), k, c.padding)
}

fn pointwise<B: Backend>(c: &PointwiseConv1d<B>) -> Result<KConv, HostWeightsError> {
    kernel_conv(c.weight.val(), c.bias.val(), 1, 0)
}

fn linear<B: Backend>(l: &Linear<B>) -> Result<KLinear, HostWeightsError> {
    let [d_out, d_in] = l.weight.dims();
    Ok(KLinear::new(
        host(l.weight.val())?,
        host(l.bias.val())?,
        d_in,
        d_out,
    )?)
}

fn norm<B: Backend>(g: &GroupNorm32<B>) -> Result<Norm, HostWeightsError> {
    Ok(Norm::new(host(g.weight.val())?, host(g.bias.val())?)?)
}

fn res<B: Backend>(r: &ResBlock<B>) -> Result<unidiff_kernels::ResBlock, HostWeightsError> {
    Ok(unidiff_kernels::ResBlock {
        in_norm: norm(&r.in_norm)?,
        in_conv: conv(&r.in_conv)?,
        emb: linear(&r.emb_linear)?,
        out_norm: norm(&r.out_norm)?,
        out_conv: conv(&r.out_conv)?,
        skip: r.skip.as_ref().map(conv).transpose()?,
        resample: match r.resample {
            1 => Resample::Up,
            2 => Resample::Down,
            _ => Resample::None,
        },
    })
}

fn attention<B: Backend>(a: &AttentionBlock<B>) -> Result<Attention, HostWeightsError> {
    Ok(Attention {
        norm: norm(&a.norm)?,
        qkv: pointwise(&a.qkv)?,
        proj: pointwise(&a.proj_out)?,
        heads: a.heads,
    })
}

fn block<B: Backend>(b: &UNetBlock<B>) -> Result<Block, HostWeightsError> {
    Ok(Block {
        conv: b.conv.as_ref().map(conv).transpose()?,
        res: b.res.as_ref().map(res).transpose()?,
        attn: b.attn.as_ref().map(attention).transpose()?,
        res2: b.res2.as_ref().map(res).transpose()?,
    })
}

/// Copies the weights of `model` (any backend) to the host.
pub fn host_unet<B: Backend>(model: &UNet<B>) -> Result<HostUNet, HostWeightsError> {
    let blocks = |bs: &[UNetBlock<B>]| -> Result<Vec<Block>, HostWeightsError> {
        bs.iter().map(block).collect()
    };
    Ok(HostUNet {
        time_embed_0: linear(&model.time_embed_0)?,
        time_embed_2: linear(&model.time_embed_2)?,
        label_emb: model
            .label_emb
            .as_ref()
            .map(|p| host(p.val()))
            .transpose()?,
        input_blocks: blocks(&model.input_blocks)?,
        middle_block: block(&model.middle_block)?,
        output_blocks: blocks(&model.output_blocks)?,
        out_norm: norm(&model.out_norm)?,
        out_conv: conv(&model.out_conv)?,
        model_channels: model.model_channels,
    })
}

/// The app's name of a kernel block.
pub fn block_id(id: HostBlockId) -> BlockId {
    match id {
        HostBlockId::Input(i) => BlockId::Input(i),
        HostBlockId::Middle => BlockId::Middle,
        HostBlockId::Output(i) => BlockId::Output(i),
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::tensor::TensorData;
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;

    use unidiff_kernels::Conv;

    use super::*;
    use crate::base::NormalRng;

    type B = NdArray<f32>;

    fn draw(n: usize, rng: &mut NormalRng) -> Vec<f32> {
        (0..n).map(|_| rng.normal() as f32).collect()
    }

    #[test]
    fn convolutions_equal_burns_whole_and_in_chunks_of_images() {
        let mut rng = NormalRng::new(4);
        let (n, c_in, c_out, h, w) = (3, 5, 7, 6, 9);
        let device = Default::default();
        let x = draw(n * c_in * h * w, &mut rng);
        let xt = Tensor::<B, 4>::from_data(TensorData::new(x.clone(), [n, c_in, h, w]), &device);
        for k in [1usize, 3] {
            let weight = draw(c_out * c_in * k * k, &mut rng);
            let bias = draw(c_out, &mut rng);
            let want = conv2d(
                xt.clone(),
                Tensor::from_data(
                    TensorData::new(weight.clone(), [c_out, c_in, k, k]),
                    &device,
                ),
                Some(Tensor::from_data(
                    TensorData::new(bias.clone(), [c_out]),
                    &device,
                )),
                ConvOptions::new([1, 1], [k / 2, k / 2], [1, 1], 1),
            )
            .into_data()
            .to_vec::<f32>()
            .unwrap();
            let conv = Conv::new(weight, bias, c_in, c_out, k, k / 2).unwrap();
            let act = Act::from_nchw(&x, n, c_in, h, w);
            for per_chunk in [1, 2, 5, 18] {
                let got = conv.forward_chunked(&act, per_chunk).to_nchw();
                let d = got
                    .iter()
                    .zip(&want)
                    .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(d < 1e-4, "k {k}, {per_chunk} image rows a chunk: {d}");
            }
        }
    }
}
