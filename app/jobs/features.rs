//! The features job: the 3-component projection of one modality's block-L
//! features at a timestep (`pipeline::feature_projection`), for the timestep
//! explorer, off the UI thread.

use burn::backend::Flex;

use super::{CancelFlag, JobContext, JobEvent};
use crate::model::backbone::{BackboneSpec, load_backbone};
use crate::model::device::{DeviceChoice, Resolved, resolve};
use crate::model::lean_ops::UNetOps;
use crate::pipeline::Modality;
use crate::pipeline::feature_projection::{ProjectionSpec, project_features};
use crate::products::Rgb8Image;

/// A projection to make.
#[derive(Debug, Clone)]
pub struct ProjectRequest {
    pub image: Rgb8Image,
    pub modality: Modality,
    pub t: i64,
    /// Output block L (None: as the classification, 11 or the last).
    pub block: Option<usize>,
    pub backbone: BackboneSpec,
    pub seed: u64,
    pub device: DeviceChoice,
}

/// What the job hands back.
#[derive(Debug, Clone)]
pub struct Projection {
    pub modality: Modality,
    pub t: i64,
    pub block: usize,
    pub image: Rgb8Image,
}

/// Makes the projection; sends progress, then Projected, Failed or
/// Cancelled.
pub fn run(job: &JobContext<'_>, req: &ProjectRequest) {
    job.progress("building the backbone", 0.0);
    let progress = |step: String, fraction: f32| job.progress(step, fraction);
    let (cancel, device) = (job.cancel, resolve(req.device));
    let result = match device.resolved {
        Resolved::Cpu => project_on::<Flex>(req, cancel, &progress, &Default::default()),
        #[cfg(feature = "cuda")]
        Resolved::Cuda => {
            project_on::<burn::backend::Cuda>(req, cancel, &progress, &Default::default())
        }
        #[cfg(feature = "wgpu")]
        Resolved::Wgpu => {
            project_on::<burn::backend::Wgpu>(req, cancel, &progress, &Default::default())
        }
    };
    job.finish(result.map(Some), |generation, result| JobEvent::Projected {
        generation,
        result,
    });
}

fn project_on<B: UNetOps>(
    req: &ProjectRequest,
    cancel: &CancelFlag,
    progress: &dyn Fn(String, f32),
    device: &B::Device,
) -> anyhow::Result<Projection> {
    let (model, info) = load_backbone::<B>(&req.backbone, device)?;
    let block = info
        .config
        .feature_block(req.block)
        .map_err(anyhow::Error::msg)?;
    let spec = ProjectionSpec {
        t: req.t.clamp(0, 999),
        block,
        patch: info.config.image_size,
        noise_seed: req.seed,
        batch: 8,
    };
    let image = project_features(
        &model,
        &req.image,
        req.modality,
        spec,
        device,
        cancel,
        &mut |done, total| {
            progress(
                format!("features {done}/{total} patches"),
                done as f32 / total.max(1) as f32,
            )
        },
    )?;
    Ok(Projection {
        modality: req.modality,
        t: spec.t,
        block,
        image,
    })
}
