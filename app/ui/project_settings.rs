//! A project's settings and view as the project file and its autosave keep
//! them, taken from the store: below both the app (which compares an
//! autosave's with the open project's) and the project commands.

use super::layers::LayerState;
use super::store::Store;
use crate::jobs::{AdaptSettings, ClassifySettings};

/// What the project keeps of the app's view, beside the data.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct ViewSettings {
    pub(crate) layers: Vec<LayerState>,
}

/// An open project's settings and view as its autosave keeps them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct AutosavedSettings {
    pub(crate) stage_b: ClassifySettings,
    pub(crate) stage_a: AdaptSettings,
    pub(crate) view: ViewSettings,
}

pub(crate) fn view_settings(store: &Store) -> ViewSettings {
    ViewSettings {
        layers: store.layers.layers.clone(),
    }
}

/// The settings and view of the open project (None: no project open), for
/// its autosave.
pub fn project_settings(store: &Store) -> Option<serde_json::Value> {
    store.project.as_ref()?;
    serde_json::to_value(AutosavedSettings {
        stage_b: store.classify_settings.clone(),
        stage_a: store.adapt_settings.clone(),
        view: view_settings(store),
    })
    .ok()
}

/// Whether an autosave's settings (`kept`) differ from the open project's
/// in what a classification or an adaptation uses: read back as their
/// types (a JSON number written from an f32 is the same f32 again), the
/// view aside (which layers are shown is no reason to offer a recovery).
/// Settings that no longer read (an older app's) are no offer either.
pub fn autosaved_settings_differ(store: &Store, kept: &serde_json::Value) -> bool {
    match serde_json::from_value::<AutosavedSettings>(kept.clone()) {
        Ok(kept) => kept.stage_b != store.classify_settings || kept.stage_a != store.adapt_settings,
        Err(e) => {
            log::info!("the autosave's settings do not read as this app's ({e}): not compared");
            false
        }
    }
}
