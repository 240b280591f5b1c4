//! The diffusion backbone in burn: guided-diffusion's ADM U-Net with FiLM
//! conditioning on (timestep, modality), checkpoint import, the cosine
//! schedule and the hybrid loss (method.md sections 4-6). Generic over the
//! backend; knows nothing of scenes or files beyond checkpoints.

pub mod adapter;
pub mod attention;
pub mod backbone;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod get;
pub mod host_unet;
pub mod inspect;
pub mod kernel_cache;
pub mod layers;
pub mod lean_ops;
pub mod loss;
pub mod params;
pub mod resblock;
pub mod schedule;
pub mod tensor_read;
pub mod trainable;
pub mod unet;

pub use checkpoint::{CheckpointError, CheckpointTensors};
pub use config::UNetConfig;
pub use unet::UNet;
