//! "Apply model to scenes…": the trained model mapped onto other scenes in
//! the background, one after the other, each into its own folder of the
//! output folder as `predict` writes it (tiled, the scene read in windows).
//! The session's own model is written into the output folder first
//! (`model.udmodel`), so the folder says what made its maps. A scene that
//! fails is reported and the others go on; Cancel stops at the next batch.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use super::{JobContext, JobEvent};
use crate::pipeline::apply_model::{Applied, ApplyRequest, apply_model};
pub use crate::pipeline::apply_model::{SceneInputs, scene_folders};
use crate::pipeline::model_bundle::ModelBundle;
use crate::pipeline::tiled_predict::TileProgress;

/// Which model maps the scenes.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// The open session's last classification's model (written into the
    /// output folder first).
    Session(Arc<ModelBundle>),
    /// A `.udmodel` file.
    File(PathBuf),
}

/// What "Apply" asks for.
#[derive(Debug, Clone)]
pub struct ApplyScenesRequest {
    pub model: ModelSource,
    pub scenes: Vec<SceneInputs>,
    pub out: PathBuf,
    /// Side of a tile in pixels.
    pub tile: usize,
}

/// The settings of the next "Apply" as the apply window edits them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ApplySettings {
    pub scenes: Vec<SceneInputs>,
    /// The output folder (each scene in a folder of it).
    pub out: Option<PathBuf>,
    /// A `.udmodel` file; None: the session's last classification's model.
    pub model_file: Option<PathBuf>,
    pub tile: usize,
}

impl Default for ApplySettings {
    fn default() -> Self {
        Self {
            scenes: vec![SceneInputs::default()],
            out: None,
            model_file: None,
            tile: 1024,
        }
    }
}

impl ApplySettings {
    /// The request, or what is missing, in words; `session_model` is the
    /// session's model or why there is none.
    pub fn request(
        &self,
        session_model: Result<Arc<ModelBundle>, String>,
    ) -> Result<ApplyScenesRequest, String> {
        let model = match &self.model_file {
            Some(path) => ModelSource::File(path.clone()),
            None => ModelSource::Session(
                session_model.map_err(|why| format!("no model to apply: {why}"))?,
            ),
        };
        if self.scenes.is_empty() {
            return Err("no scene to map: add one".into());
        }
        if let Some(i) = self
            .scenes
            .iter()
            .position(|s| s.hsi.is_none() && s.sar.is_none())
        {
            return Err(format!(
                "scene {} has no file: give its HSI and/or SAR image",
                i + 1
            ));
        }
        let out = self
            .out
            .clone()
            .ok_or_else(|| "choose the output folder first".to_string())?;
        Ok(ApplyScenesRequest {
            model,
            scenes: self.scenes.clone(),
            out,
            tile: self.tile,
        })
    }
}

/// How each scene went.
#[derive(Debug, Clone)]
pub struct AppliedScenes {
    pub out: PathBuf,
    /// Per scene: its name, its output folder and what was written, or why
    /// it failed.
    pub scenes: Vec<(String, PathBuf, Result<Applied, String>)>,
}

/// Runs one request (the worker's body).
pub fn run(job: &JobContext<'_>, request: &ApplyScenesRequest) {
    let result = apply_scenes(job, request);
    job.finish(result.map(Some), |generation, result| JobEvent::Applied {
        generation,
        result,
    });
}

fn apply_scenes(
    job: &JobContext<'_>,
    request: &ApplyScenesRequest,
) -> anyhow::Result<AppliedScenes> {
    anyhow::ensure!(!request.scenes.is_empty(), "no scene to map: add one");
    std::fs::create_dir_all(&request.out)
        .with_context(|| format!("cannot create {}", request.out.display()))?;
    let model = match &request.model {
        ModelSource::File(path) => path.clone(),
        ModelSource::Session(bundle) => {
            let path = request.out.join("model.udmodel");
            job.progress(format!("writing the model to {}", path.display()), 0.0);
            bundle
                .write(&path)
                .with_context(|| format!("cannot write the model to {}", path.display()))?;
            path
        }
    };
    let n = request.scenes.len();
    let mut scenes = Vec::with_capacity(n);
    for (i, (scene, folder)) in request
        .scenes
        .iter()
        .zip(scene_folders(&request.out, &request.scenes))
        .enumerate()
    {
        let name = scene.name();
        job.progress(
            format!("scene {}/{n} ({name}): opening", i + 1),
            i as f32 / n as f32,
        );
        let apply = ApplyRequest {
            model: model.clone(),
            hsi: scene.hsi.clone(),
            sar: scene.sar.clone(),
            checkpoint: None,
            tile: request.tile,
            shard: None,
            batch_patches: None,
            polygons: true,
            out: folder.clone(),
            command: vec!["unidiff-studio (app): Apply model to scenes".into()],
        };
        let applied = apply_model(&apply, job.cancel, &mut |p: &TileProgress| {
            let eta = p
                .eta_seconds
                .map_or(String::new(), |s| format!(", about {s:.0} s left"));
            let within = p.tiles_done as f32 / p.tiles.max(1) as f32;
            job.progress(
                format!(
                    "scene {}/{n} ({name}): tile {}/{}{eta}",
                    i + 1,
                    p.tiles_done,
                    p.tiles
                ),
                (i as f32 + within) / n as f32,
            );
        });
        if job.cancel.is_cancelled() {
            anyhow::bail!("cancelled");
        }
        scenes.push((name, folder, applied.map_err(|e| format!("{e:#}"))));
    }
    Ok(AppliedScenes {
        out: request.out.clone(),
        scenes,
    })
}
