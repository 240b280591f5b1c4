//! The U-Net's hyper-parameters, named as guided-diffusion's `UNetModel`
//! keyword arguments so that its JSON configs read as they are.

use serde::{Deserialize, Serialize};

/// Configuration of an ADM U-Net.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UNetConfig {
    pub image_size: usize,
    pub in_channels: usize,
    pub model_channels: usize,
    pub out_channels: usize,
    pub num_res_blocks: usize,
    /// Downsample rates (1, 2, 4, ...) at which attention blocks sit.
    pub attention_resolutions: Vec<usize>,
    #[serde(default)]
    pub dropout: f64,
    pub channel_mult: Vec<usize>,
    /// None for an unconditional model.
    pub num_classes: Option<usize>,
    #[serde(default = "default_heads")]
    pub num_heads: usize,
    /// Channels per attention head; -1 to use `num_heads` instead.
    #[serde(default = "minus_one")]
    pub num_head_channels: i64,
    #[serde(default = "minus_one")]
    pub num_heads_upsample: i64,
    #[serde(default = "yes")]
    pub use_scale_shift_norm: bool,
    #[serde(default = "yes")]
    pub resblock_updown: bool,
    #[serde(default = "yes")]
    pub use_new_attention_order: bool,
}

fn default_heads() -> usize {
    4
}
fn minus_one() -> i64 {
    -1
}
fn yes() -> bool {
    true
}

/// A configuration this implementation does not support.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unsupported U-Net configuration: {0}")]
pub struct ConfigError(pub String);

impl UNetConfig {
    /// guided-diffusion's ImageNet 64x64 model (`64x64_diffusion.pt`).
    pub fn imagenet64() -> Self {
        Self {
            image_size: 64,
            in_channels: 3,
            model_channels: 192,
            out_channels: 6,
            num_res_blocks: 3,
            attention_resolutions: vec![2, 4, 8],
            dropout: 0.1,
            channel_mult: vec![1, 2, 3, 4],
            num_classes: Some(1000),
            num_heads: 4,
            num_head_channels: 64,
            num_heads_upsample: 4,
            use_scale_shift_norm: true,
            resblock_updown: true,
            use_new_attention_order: true,
        }
    }

    /// The tiny test configuration of the reference fixtures (`adm_tiny`).
    pub fn tiny() -> Self {
        Self {
            image_size: 32,
            in_channels: 3,
            model_channels: 32,
            out_channels: 6,
            num_res_blocks: 2,
            attention_resolutions: vec![2, 4],
            dropout: 0.0,
            channel_mult: vec![1, 2, 2],
            num_classes: Some(5),
            num_heads: 4,
            num_head_channels: 16,
            num_heads_upsample: -1,
            use_scale_shift_norm: true,
            resblock_updown: true,
            use_new_attention_order: true,
        }
    }

    /// Reads a guided-diffusion style JSON (extra keys are ignored).
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let cfg: Self = serde_json::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what this implementation supports.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.use_scale_shift_norm || !self.resblock_updown || !self.use_new_attention_order {
            return Err(ConfigError(
                "only scale-shift norm, res-block up/down sampling and the new attention order are implemented".into(),
            ));
        }
        if self.channel_mult.is_empty() || self.model_channels == 0 {
            return Err(ConfigError("empty channel_mult or model_channels".into()));
        }
        for m in &self.channel_mult {
            if !(m * self.model_channels).is_multiple_of(32) {
                return Err(ConfigError(format!(
                    "channels {} are not divisible by the 32 GroupNorm groups",
                    m * self.model_channels
                )));
            }
        }
        Ok(())
    }

    /// Width of the timestep / class embedding.
    pub fn time_embed_dim(&self) -> usize {
        self.model_channels * 4
    }

    /// Attention heads for a block of `channels`.
    pub fn heads(&self, channels: usize, upsample: bool) -> usize {
        if self.num_head_channels > 0 {
            channels / self.num_head_channels as usize
        } else if upsample && self.num_heads_upsample > 0 {
            self.num_heads_upsample as usize
        } else {
            self.num_heads
        }
    }

    /// Whether a batch can go through this network: `shape` N x C x H x W
    /// with C its input channels and H, W multiples of its total
    /// downsampling, `t` and `y` one per sample, t in 0..=999 (the
    /// schedule's steps), y a class of a class-conditional network.
    pub fn check_input(&self, shape: &[usize], t: &[i64], y: &[i64]) -> Result<(), String> {
        let &[n, c, h, w] = shape else {
            return Err(format!(
                "x has shape {shape:?}; it must be N x C x H x W (4 dimensions)"
            ));
        };
        if n == 0 {
            return Err("x holds no sample (N = 0)".into());
        }
        if c != self.in_channels {
            return Err(format!(
                "x has {c} channels; this network takes {}",
                self.in_channels
            ));
        }
        let factor = 1usize << self.channel_mult.len().saturating_sub(1).min(16);
        if h == 0 || w == 0 || !h.is_multiple_of(factor) || !w.is_multiple_of(factor) {
            return Err(format!(
                "x is {h} x {w}; this network halves its input {} times, so both sides must be positive multiples of {factor}",
                self.channel_mult.len().saturating_sub(1)
            ));
        }
        if t.len() != n || y.len() != n {
            return Err(format!(
                "x has {n} samples but t has {} and y {} values: one each per sample",
                t.len(),
                y.len()
            ));
        }
        if let Some(bad) = t.iter().find(|t| !(0..1000).contains(*t)) {
            return Err(format!("t = {bad}: timesteps are 0..=999"));
        }
        if let Some(classes) = self.num_classes
            && let Some(bad) = y.iter().find(|&&y| y < 0 || y as u64 >= classes as u64)
        {
            return Err(format!(
                "y = {bad}: this network's classes are 0..={}",
                classes.saturating_sub(1)
            ));
        }
        Ok(())
    }

    /// Number of output blocks.
    pub fn output_block_count(&self) -> usize {
        self.channel_mult.len() * (self.num_res_blocks + 1)
    }

    /// The output block L features are taken from: `requested`, else the
    /// method's 11 (or the last block of a smaller network); an error names
    /// the blocks there are.
    pub fn feature_block(&self, requested: Option<usize>) -> Result<usize, String> {
        let blocks = self.output_block_count();
        let block = requested.unwrap_or(11.min(blocks.saturating_sub(1)));
        if block < blocks {
            Ok(block)
        } else {
            Err(format!(
                "block {block}: this backbone has output blocks 0..{}",
                blocks.saturating_sub(1)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_the_network_cannot_take_is_refused_with_the_reason() {
        let c = UNetConfig::tiny();
        let f = 1usize << (c.channel_mult.len() - 1);
        let classes = c.num_classes.unwrap_or(1) as i64;
        assert!(
            c.check_input(&[2, 3, 4 * f, 4 * f], &[0, 999], &[0, classes - 1])
                .is_ok()
        );
        let e = c
            .check_input(&[2, 4, 32, 32], &[0, 0], &[0, 0])
            .unwrap_err();
        assert!(e.contains("4 channels"), "{e}");
        let e = c.check_input(&[1, 3, f + 1, f], &[0], &[0]).unwrap_err();
        assert!(e.contains("multiples of"), "{e}");
        let e = c.check_input(&[1, 3, 0, 0], &[0], &[0]).unwrap_err();
        assert!(e.contains("multiples of"), "{e}");
        let e = c.check_input(&[1, 3, f, f], &[5000], &[0]).unwrap_err();
        assert!(e.contains("t = 5000"), "{e}");
        let e = c.check_input(&[1, 3, f, f], &[-1], &[0]).unwrap_err();
        assert!(e.contains("t = -1"), "{e}");
        let e = c.check_input(&[2, 3, f, f], &[0], &[0, 0]).unwrap_err();
        assert!(e.contains("one each per sample"), "{e}");
        let e = c.check_input(&[3, 32, 32], &[0], &[0]).unwrap_err();
        assert!(e.contains("4 dimensions"), "{e}");
        let e = c.check_input(&[0, 3, f, f], &[], &[]).unwrap_err();
        assert!(e.contains("no sample"), "{e}");
        if c.num_classes.is_some() {
            let e = c.check_input(&[1, 3, f, f], &[0], &[classes]).unwrap_err();
            assert!(e.contains(&format!("y = {classes}")), "{e}");
            let e = c.check_input(&[1, 3, f, f], &[0], &[-2]).unwrap_err();
            assert!(e.contains("y = -2"), "{e}");
        }
    }
}
