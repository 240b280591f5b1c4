//! "Apply model to scenes…": the trained model mapped onto other scenes in
//! the background, one after the other, each into its own folder of the
//! output folder as `predict` writes it (tiled, the scene read in windows).
//! The session's own model is written into the output folder first
//! (`model.udmodel`), so the folder says what made its maps. A scene that
//! fails is reported and the others go on; Cancel stops at the next batch.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use super::{JobContext, JobEvent};
use crate::pipeline::apply_model::{Applied, ApplyRequest, apply_model};
use crate::pipeline::model_bundle::ModelBundle;
use crate::pipeline::tiled_predict::TileProgress;

/// One scene to map: its cube and/or its SAR image.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SceneInputs {
    pub hsi: Option<PathBuf>,
    pub sar: Option<PathBuf>,
}

impl SceneInputs {
    /// A folder name for its outputs: the first file's stem.
    pub fn name(&self) -> String {
        self.hsi
            .as_ref()
            .or(self.sar.as_ref())
            .and_then(|p| p.file_stem())
            .map_or_else(|| "scene".into(), |s| s.to_string_lossy().to_string())
    }
}

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

/// Output folders for the scenes: their names, made unique ("a", "a-2").
pub fn scene_folders(out: &Path, scenes: &[SceneInputs]) -> Vec<PathBuf> {
    let mut taken: Vec<String> = Vec::new();
    scenes
        .iter()
        .map(|s| {
            let base = s.name();
            let mut name = base.clone();
            let mut k = 2;
            while taken.contains(&name) {
                name = format!("{base}-{k}");
                k += 1;
            }
            taken.push(name.clone());
            out.join(name)
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scene_folders_are_named_by_the_first_file_and_unique() {
        let s = |hsi: Option<&str>, sar: Option<&str>| SceneInputs {
            hsi: hsi.map(PathBuf::from),
            sar: sar.map(PathBuf::from),
        };
        let scenes = [
            s(Some("/d/a.tif"), Some("/d/a_s1.tif")),
            s(None, Some("/e/b.tif")),
            s(Some("/f/a.tif"), None),
            s(None, None),
        ];
        let folders = scene_folders(Path::new("/out"), &scenes);
        let names: Vec<_> = folders.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(names, ["/out/a", "/out/b", "/out/a-2", "/out/scene"]);
    }
}
