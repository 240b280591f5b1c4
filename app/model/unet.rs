//! guided-diffusion's ADM U-Net (`UNetModel`) with class-conditional FiLM:
//! emb = time_embed(timestep_embedding(t)) + label_emb[y], fed to every
//! ResBlock. The forward can report every block's activation and stop after
//! any output block, so Stage B computes no more than it uses.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::{Int, TensorData};

use super::attention::AttentionBlock;
use super::checkpoint::CheckpointError;
use super::config::UNetConfig;
use super::layers::{Conv, GroupNorm32, Linear, timestep_embedding};
use super::lean_ops::UNetOps;
use super::params::{Init, ParamLoader, ParamSource};
use super::resblock::{BlockContext, ResBlock, Resample};

/// One entry of `input_blocks`, `middle_block` or `output_blocks`: the layers
/// present run in this order.
#[derive(Module, Debug)]
pub struct UNetBlock<B: Backend> {
    /// The stem convolution (input block 0 only).
    pub conv: Option<Conv<B>>,
    pub res: Option<ResBlock<B>>,
    pub attn: Option<AttentionBlock<B>>,
    /// The middle block's second ResBlock, or an output block's upsampler.
    pub res2: Option<ResBlock<B>>,
}

impl<B: Backend> UNetBlock<B> {
    fn forward(
        &self,
        mut h: Tensor<B, 4>,
        emb_silu: &Tensor<B, 2>,
        ctx: BlockContext,
    ) -> Tensor<B, 4>
    where
        B: UNetOps,
    {
        if let Some(c) = &self.conv {
            h = c.forward(h);
        }
        if let Some(r) = &self.res {
            h = r.forward(h, emb_silu.clone(), ctx);
        }
        if let Some(a) = &self.attn {
            h = a.forward(h);
        }
        if let Some(r) = &self.res2 {
            h = r.forward(h, emb_silu.clone(), ctx);
        }
        h
    }

    /// The ResBlocks of this block with their state-dict paths' last index.
    pub fn resblocks(&self) -> Vec<&ResBlock<B>> {
        self.res.iter().chain(self.res2.iter()).collect()
    }
}

/// Which block an activation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockId {
    Input(usize),
    Middle,
    Output(usize),
}

impl BlockId {
    /// The name the reference fixtures use (`input_blocks.3`, `middle_block`).
    pub fn name(self) -> String {
        match self {
            BlockId::Input(i) => format!("input_blocks.{i}"),
            BlockId::Middle => "middle_block".to_string(),
            BlockId::Output(i) => format!("output_blocks.{i}"),
        }
    }
}

/// The ADM U-Net.
#[derive(Module, Debug)]
pub struct UNet<B: Backend> {
    pub time_embed_0: Linear<B>,
    pub time_embed_2: Linear<B>,
    pub label_emb: Option<Param<Tensor<B, 2>>>,
    pub input_blocks: Vec<UNetBlock<B>>,
    pub middle_block: UNetBlock<B>,
    pub output_blocks: Vec<UNetBlock<B>>,
    pub out_norm: GroupNorm32<B>,
    pub out_conv: Conv<B>,
    pub model_channels: usize,
}

fn block<B: Backend>() -> UNetBlock<B> {
    UNetBlock {
        conv: None,
        res: None,
        attn: None,
        res2: None,
    }
}

impl<B: Backend> UNet<B> {
    /// Builds the network of `config` with parameters from `source`; a
    /// checkpoint must match the configuration name by name and shape.
    pub fn build(
        config: &UNetConfig,
        source: ParamSource,
        device: &B::Device,
    ) -> Result<Self, CheckpointError> {
        let mut shapes = Vec::new();
        Self::build_recording(config, source, device, &mut shapes)
    }

    /// [`UNet::build`], also listing (name, shape) of every parameter in
    /// state-dict order.
    pub fn build_recording(
        config: &UNetConfig,
        source: ParamSource,
        device: &B::Device,
        shapes: &mut Vec<(String, Vec<usize>)>,
    ) -> Result<Self, CheckpointError> {
        config.validate()?;
        let mut l = ParamLoader::<B>::new(source, device);
        let mc = config.model_channels;
        let ted = config.time_embed_dim();
        let drop = config.dropout;
        let time_embed_0 = Linear::load(&mut l, "time_embed.0", mc, ted);
        let time_embed_2 = Linear::load(&mut l, "time_embed.2", ted, ted);
        let label_emb = config
            .num_classes
            .map(|n| l.param("label_emb.weight", [n, ted], Init::Embedding));

        let mut input_blocks = Vec::new();
        let mut stem = block();
        let mut ch = config.channel_mult[0] * mc;
        stem.conv = Some(Conv::load(
            &mut l,
            "input_blocks.0.0",
            config.in_channels,
            ch,
            3,
        ));
        input_blocks.push(stem);
        let mut chans = vec![ch];
        let mut ds = 1;
        let levels = config.channel_mult.len();
        for (level, &mult) in config.channel_mult.iter().enumerate() {
            for _ in 0..config.num_res_blocks {
                let i = input_blocks.len();
                let out = mult * mc;
                let mut b = block();
                b.res = Some(ResBlock::load(
                    &mut l,
                    &format!("input_blocks.{i}.0"),
                    ch,
                    out,
                    ted,
                    Resample::None,
                    drop,
                ));
                ch = out;
                if config.attention_resolutions.contains(&ds) {
                    b.attn = Some(AttentionBlock::load(
                        &mut l,
                        &format!("input_blocks.{i}.1"),
                        ch,
                        config.heads(ch, false),
                    ));
                }
                input_blocks.push(b);
                chans.push(ch);
            }
            if level != levels - 1 {
                let i = input_blocks.len();
                let mut b = block();
                b.res = Some(ResBlock::load(
                    &mut l,
                    &format!("input_blocks.{i}.0"),
                    ch,
                    ch,
                    ted,
                    Resample::Down,
                    drop,
                ));
                input_blocks.push(b);
                chans.push(ch);
                ds *= 2;
            }
        }
        let middle_block = UNetBlock {
            conv: None,
            res: Some(ResBlock::load(
                &mut l,
                "middle_block.0",
                ch,
                ch,
                ted,
                Resample::None,
                drop,
            )),
            attn: Some(AttentionBlock::load(
                &mut l,
                "middle_block.1",
                ch,
                config.heads(ch, false),
            )),
            res2: Some(ResBlock::load(
                &mut l,
                "middle_block.2",
                ch,
                ch,
                ted,
                Resample::None,
                drop,
            )),
        };
        let mut output_blocks = Vec::new();
        for (level, &mult) in config.channel_mult.iter().enumerate().rev() {
            for i in 0..=config.num_res_blocks {
                let n = output_blocks.len();
                let skip_ch = chans.pop().unwrap_or(ch);
                let out = mc * mult;
                let mut b = block();
                b.res = Some(ResBlock::load(
                    &mut l,
                    &format!("output_blocks.{n}.0"),
                    ch + skip_ch,
                    out,
                    ted,
                    Resample::None,
                    drop,
                ));
                ch = out;
                let mut next = 1;
                if config.attention_resolutions.contains(&ds) {
                    b.attn = Some(AttentionBlock::load(
                        &mut l,
                        &format!("output_blocks.{n}.1"),
                        ch,
                        config.heads(ch, true),
                    ));
                    next = 2;
                }
                if level > 0 && i == config.num_res_blocks {
                    b.res2 = Some(ResBlock::load(
                        &mut l,
                        &format!("output_blocks.{n}.{next}"),
                        ch,
                        ch,
                        ted,
                        Resample::Up,
                        drop,
                    ));
                    ds /= 2;
                }
                output_blocks.push(b);
            }
        }
        let out_norm = GroupNorm32::load(&mut l, "out.0", ch);
        let out_conv = Conv::load(
            &mut l,
            "out.2",
            config.channel_mult[0] * mc,
            config.out_channels,
            3,
        );
        *shapes = std::mem::take(&mut l.requested);
        l.finish()?;
        Ok(Self {
            time_embed_0,
            time_embed_2,
            label_emb,
            input_blocks,
            middle_block,
            output_blocks,
            out_norm,
            out_conv,
            model_channels: mc,
        })
    }

    /// Computes every convolution as shifted copies + a matrix product (fast
    /// backward on the CPU backend) or with the backend's convolution.
    pub fn set_conv_im2col(&mut self, on: bool) {
        let blocks = self
            .input_blocks
            .iter_mut()
            .chain(std::iter::once(&mut self.middle_block))
            .chain(self.output_blocks.iter_mut());
        for b in blocks {
            if let Some(c) = &mut b.conv {
                c.im2col = on;
            }
            for r in b.res.iter_mut().chain(b.res2.iter_mut()) {
                r.set_im2col(on);
            }
        }
        self.out_conv.im2col = on;
    }

    /// time_embed(timestep_embedding(t)).
    pub fn time_embedding(&self, t: &[i64]) -> Tensor<B, 2>
    where
        B: UNetOps,
    {
        let device = self.out_conv.weight.device();
        let temb = timestep_embedding::<B>(t, self.model_channels, &device);
        self.time_embed_2
            .forward(B::silu(self.time_embed_0.forward(temb)))
    }

    /// Rows `y` of the class (modality) embedding.
    pub fn label_embedding(&self, y: &[i64]) -> Option<Tensor<B, 2>> {
        let table = self.label_emb.as_ref()?;
        let device = table.device();
        let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(y.to_vec(), [y.len()]), &device);
        Some(table.val().select(0, idx))
    }

    /// emb = time_embed(t) + label_emb[y].
    pub fn embedding(&self, t: &[i64], y: &[i64]) -> Tensor<B, 2>
    where
        B: UNetOps,
    {
        let e = self.time_embedding(t);
        match self.label_embedding(y) {
            Some(l) => e + l,
            None => e,
        }
    }

    /// Runs the network. `visit` sees every block's output. With
    /// `stop_after = Some(L)`, returns the output of `output_blocks[L]` and
    /// computes nothing past it; otherwise returns the final output.
    pub fn forward_blocks(
        &self,
        x: Tensor<B, 4>,
        emb: Tensor<B, 2>,
        ctx: BlockContext,
        stop_after: Option<usize>,
        visit: &mut dyn FnMut(BlockId, &Tensor<B, 4>),
    ) -> Tensor<B, 4>
    where
        B: UNetOps,
    {
        let emb_silu = B::silu(emb);
        let mut hs = Vec::with_capacity(self.input_blocks.len());
        let mut h = x;
        for (i, b) in self.input_blocks.iter().enumerate() {
            h = b.forward(h, &emb_silu, ctx);
            visit(BlockId::Input(i), &h);
            hs.push(h.clone());
        }
        h = self.middle_block.forward(h, &emb_silu, ctx);
        visit(BlockId::Middle, &h);
        for (i, b) in self.output_blocks.iter().enumerate() {
            let skip = hs.pop().unwrap_or_else(|| h.clone());
            h = b.forward(Tensor::cat(vec![h, skip], 1), &emb_silu, ctx);
            visit(BlockId::Output(i), &h);
            if stop_after == Some(i) {
                return h;
            }
        }
        self.out_conv.forward(B::silu(self.out_norm.forward(h)))
    }

    /// The model output (eps, variance value) for a batch, in eval mode.
    pub fn forward(&self, x: Tensor<B, 4>, t: &[i64], y: &[i64]) -> Tensor<B, 4>
    where
        B: UNetOps,
    {
        let emb = self.embedding(t, y);
        self.forward_blocks(x, emb, BlockContext { train: false }, None, &mut |_, _| {})
    }

    /// Every ResBlock with its state-dict path (`output_blocks.3.2`).
    pub fn named_resblocks(&self) -> Vec<(String, &ResBlock<B>)> {
        let blocks = self
            .input_blocks
            .iter()
            .enumerate()
            .map(|(i, b)| (format!("input_blocks.{i}"), b))
            .chain(std::iter::once((
                "middle_block".to_string(),
                &self.middle_block,
            )))
            .chain(
                self.output_blocks
                    .iter()
                    .enumerate()
                    .map(|(i, b)| (format!("output_blocks.{i}"), b)),
            );
        let mut out = Vec::new();
        for (prefix, b) in blocks {
            let mut idx = usize::from(b.conv.is_some());
            if let Some(r) = &b.res {
                out.push((format!("{prefix}.{idx}"), r));
                idx += 1;
            }
            if b.attn.is_some() {
                idx += 1;
            }
            if let Some(r) = &b.res2 {
                out.push((format!("{prefix}.{idx}"), r));
            }
        }
        out
    }
}
