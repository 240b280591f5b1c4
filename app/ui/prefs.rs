//! Preferences the app remembers between runs (eframe's storage): theme,
//! recent files, brush size, panel choices.

use std::path::PathBuf;

/// What the user set, kept across runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Prefs {
    pub dark: bool,
    /// Recently opened scenes, newest first: the files of each.
    pub recent: Vec<RecentScene>,
    pub brush_size: f32,
}

/// The files of one scene the user opened.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecentScene {
    pub title: String,
    pub hsi: Option<PathBuf>,
    pub sar: Option<PathBuf>,
    pub demo: bool,
    /// The project file, when this entry is a project.
    #[serde(default)]
    pub project: Option<PathBuf>,
}

impl Default for Prefs {
    fn default() -> Self {
        Self {
            dark: true,
            recent: Vec::new(),
            brush_size: 5.0,
        }
    }
}

pub const MAX_RECENT: usize = 10;
pub const PREFS_KEY: &str = "unidiff-studio-prefs";

impl Prefs {
    /// Puts `scene` first, without duplicates, keeping at most [`MAX_RECENT`].
    pub fn remember(&mut self, scene: RecentScene) {
        self.recent.retain(|r| {
            !(r.hsi == scene.hsi
                && r.sar == scene.sar
                && r.demo == scene.demo
                && r.project == scene.project)
        });
        self.recent.insert(0, scene);
        self.recent.truncate(MAX_RECENT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_scenes_are_unique_and_newest_first() {
        let mut p = Prefs::default();
        let scene = |n: &str| RecentScene {
            title: n.into(),
            hsi: Some(PathBuf::from(n)),
            sar: None,
            demo: false,
            project: None,
        };
        for i in 0..12 {
            p.remember(scene(&format!("{i}.tif")));
        }
        p.remember(scene("5.tif"));
        assert_eq!(p.recent.len(), MAX_RECENT);
        assert_eq!(p.recent[0].title, "5.tif");
        assert_eq!(p.recent.iter().filter(|r| r.title == "5.tif").count(), 1);
    }
}
