//! The download of a backbone as a job: the model layer's `get_backbone`
//! with its progress (bytes, rate, ETA) as job progress; the app then checks
//! and uses the checkpoint like an imported one. Cancel keeps the `.part`
//! file, and the next try resumes it.

use std::path::PathBuf;

use super::{JobContext, JobEvent};
pub use crate::model::get::GetRequest;
use crate::model::get::get_backbone;

/// What a finished download hands back.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub path: PathBuf,
    pub sha256: String,
    pub bytes: u64,
}

/// The paper's backbone into `data_dir/backbones/`, from
/// `UNIDIFF_STUDIO_BACKBONE_URL` when set (a mirror), else OpenAI's address.
pub fn paper_request(data_dir: &std::path::Path) -> GetRequest {
    let mut request = GetRequest::paper(data_dir.join("backbones"));
    if let Some(url) = std::env::var_os("UNIDIFF_STUDIO_BACKBONE_URL") {
        request.url = url.to_string_lossy().into_owned();
    }
    request
}

pub fn run(job: &JobContext<'_>, request: &GetRequest) {
    job.progress(format!("connecting to {}", request.url), 0.0);
    let result = get_backbone(request, job.cancel, &mut |p| {
        let fraction = p.total.map_or(0.0, |t| p.bytes as f32 / t.max(1) as f32);
        job.progress(format!("downloading: {}", p.describe()), fraction);
    })
    .map(|(path, record)| {
        Some(Fetched {
            path,
            sha256: record.sha256,
            bytes: record.bytes,
        })
    })
    .map_err(anyhow::Error::from);
    job.finish(result, |generation, fetched| JobEvent::Fetched {
        generation,
        fetched,
    });
}
