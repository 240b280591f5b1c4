//! A path typed instead of picked: when no file dialog can be shown (no XDG
//! desktop portal answers and zenity is missing), the app says so and offers
//! this field, with completion from the file system, for every open, save
//! and export.

use std::path::{Path, PathBuf};

use eframe::egui::{self, RichText};

use super::command::AppCommand;
use super::view_context::ViewContext;
use super::vocabulary::FileAction;

/// Completions listed under the field at most.
const MAX_COMPLETIONS: usize = 12;

/// The field's state: what it is for, the text typed, why it is shown.
#[derive(Debug, Clone)]
pub struct PathPrompt {
    pub action: FileAction,
    pub text: String,
    /// Why no dialog was shown (rfd's message).
    pub reason: String,
    /// What was wrong with the last path entered.
    pub problem: Option<String>,
    /// The completions of `listed_for` (the folder is read again only when
    /// the text changes, not every frame).
    listed: Vec<String>,
    listed_for: Option<String>,
}

/// What a path must be for an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// An existing file (or, for SAR, a PolSARpro folder).
    Existing,
    /// A file to write: its folder must exist.
    NewFile,
    /// A folder to write into (created if missing, under an existing parent).
    Folder,
}

impl FileAction {
    pub fn path_kind(&self) -> PathKind {
        match self {
            FileAction::OpenHsi
            | FileAction::OpenSar
            | FileAction::OpenLabels(_)
            | FileAction::ImportCheckpoint
            | FileAction::LoadAdapter
            | FileAction::SampleAccuracy
            | FileAction::LabelSample
            | FileAction::ApplyInput { .. }
            | FileAction::ApplyModelFile
            | FileAction::OpenProject => PathKind::Existing,
            FileAction::SaveLabels(_)
            | FileAction::ExportViewPng
            | FileAction::ExportPolygons { .. }
            | FileAction::ValidationSample { .. }
            | FileAction::SaveModel
            | FileAction::SaveProjectAs => PathKind::NewFile,
            FileAction::ExportResults | FileAction::ApplyOut => PathKind::Folder,
        }
    }

    /// What the field asks for, in words.
    pub fn prompt(&self) -> &'static str {
        match self {
            FileAction::OpenHsi => "the hyperspectral cube to open",
            FileAction::OpenSar => "the SAR image (or PolSARpro folder) to open",
            FileAction::OpenLabels(_) => "the label file to open",
            FileAction::SaveLabels(_) => "the GeoTIFF to save the labels to",
            FileAction::ExportResults => "the folder to export the results into",
            FileAction::ImportCheckpoint => "the guided-diffusion checkpoint (.pt, .safetensors)",
            FileAction::LoadAdapter => "the Stage A adapter (.safetensors)",
            FileAction::ExportViewPng => "the PNG file to write",
            FileAction::ExportPolygons { .. } => "the GeoPackage (.gpkg) to write the polygons to",
            FileAction::ValidationSample { .. } => {
                "the GeoPackage (.gpkg) to write the sample points to"
            }
            FileAction::SampleAccuracy => "the labelled sample (GeoPackage, Shapefile, GeoJSON)",
            FileAction::LabelSample => "the sample GeoPackage (.gpkg) to label",
            FileAction::ApplyInput { sar: false, .. } => "the scene's hyperspectral cube",
            FileAction::ApplyInput { sar: true, .. } => "the scene's SAR image",
            FileAction::ApplyOut => "the folder to write the maps into",
            FileAction::ApplyModelFile => "the trained model (.udmodel) to apply",
            FileAction::SaveModel => "the .udmodel file to write",
            FileAction::OpenProject => "the .udproj project to open",
            FileAction::SaveProjectAs => "the .udproj project file to write",
        }
    }
}

/// Whether `path` will do for an action of `kind`; the reason when not.
pub fn check_path(kind: PathKind, path: &Path) -> Result<(), String> {
    if path.as_os_str().is_empty() {
        return Err("type a path".into());
    }
    let shown = path.display();
    match kind {
        PathKind::Existing if path.exists() => Ok(()),
        PathKind::Existing => Err(format!("{shown}: no such file")),
        PathKind::NewFile if path.is_dir() => Err(format!("{shown} is a folder; add a file name")),
        PathKind::NewFile | PathKind::Folder => {
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if kind == PathKind::Folder && path.is_file() {
                Err(format!("{shown} is a file, not a folder"))
            } else if parent.is_dir() {
                Ok(())
            } else {
                Err(format!("the folder {} does not exist", parent.display()))
            }
        }
    }
}

/// The entries of the typed folder whose names start with the typed name,
/// sorted, folders with a trailing `/`; hidden ones only when a `.` is
/// typed.
pub fn completions(text: &str) -> Vec<String> {
    let (dir, stem) = match text.rfind('/') {
        Some(i) => (&text[..=i], &text[i + 1..]),
        None => ("", text),
    };
    let read_from = if dir.is_empty() { "." } else { dir };
    let Ok(entries) = std::fs::read_dir(read_from) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with(stem) || (name.starts_with('.') && !stem.starts_with('.')) {
                return None;
            }
            let slash = if e.path().is_dir() { "/" } else { "" };
            Some(format!("{dir}{name}{slash}"))
        })
        .collect();
    out.sort();
    out
}

/// The longest text every completion starts with.
pub fn common_prefix(list: &[String]) -> Option<String> {
    let first = list.first()?;
    let mut len = first.len();
    for s in &list[1..] {
        len = first
            .char_indices()
            .zip(s.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((i, a), _)| i + a.len_utf8())
            .min(len);
    }
    Some(first[..len].to_string())
}

impl PathPrompt {
    pub fn new(action: FileAction, start: Option<&Path>, reason: String) -> Self {
        let text = start
            .map(|d| format!("{}/", d.display().to_string().trim_end_matches('/')))
            .unwrap_or_default();
        Self {
            action,
            text,
            reason,
            problem: None,
            listed: Vec::new(),
            listed_for: None,
        }
    }

    /// The completions of the text as it is now.
    fn completions(&mut self) -> &[String] {
        if self.listed_for.as_deref() != Some(self.text.as_str()) {
            self.listed = completions(&self.text);
            self.listed_for = Some(self.text.clone());
        }
        &self.listed
    }
}

/// The window of the path field, while one is asked for.
#[derive(Default)]
pub struct PathPromptWindow {
    pub prompt: Option<PathPrompt>,
}

impl PathPromptWindow {
    pub fn ui(&mut self, ctx: &egui::Context, cx: &ViewContext) {
        let Some(prompt) = &mut self.prompt else {
            return;
        };
        let mut open = true;
        let mut chosen = None;
        egui::Window::new("Type a path")
            .open(&mut open)
            .collapsible(false)
            .default_width(520.0)
            .show(ctx, |ui| {
                ui.label(
                    RichText::new(format!("No file dialog could be shown: {}", prompt.reason))
                        .small()
                        .weak(),
                );
                ui.label(format!("Path of {}:", prompt.action.prompt()));
                let field = ui.add(
                    egui::TextEdit::singleline(&mut prompt.text)
                        .desired_width(f32::INFINITY)
                        .hint_text("/path/to/file"),
                );
                let list = prompt.completions().to_vec();
                // Tab completes as far as every candidate agrees.
                if field.has_focus()
                    && ui.input_mut(|i| i.consume_key(egui::Modifiers::NONE, egui::Key::Tab))
                {
                    if let Some(common) = common_prefix(&list)
                        && common.len() > prompt.text.len()
                    {
                        prompt.text = common;
                    }
                    field.request_focus();
                }
                for c in list.iter().take(MAX_COMPLETIONS) {
                    if ui.small_button(c).clicked() {
                        prompt.text.clone_from(c);
                    }
                }
                if list.len() > MAX_COMPLETIONS {
                    ui.label(
                        RichText::new(format!("… {} more", list.len() - MAX_COMPLETIONS)).weak(),
                    );
                }
                if let Some(p) = &prompt.problem {
                    ui.label(RichText::new(p).color(ui.visuals().error_fg_color));
                }
                let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                if ui.button("OK").clicked() || enter {
                    let path = PathBuf::from(prompt.text.trim());
                    match check_path(prompt.action.path_kind(), &path) {
                        Ok(()) => chosen = Some(path),
                        Err(e) => prompt.problem = Some(e),
                    }
                }
            });
        if let Some(path) = chosen {
            let action = prompt.action.clone();
            self.prompt = None;
            cx.send(AppCommand::FilePicked(action, path));
        } else if !open {
            self.prompt = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_list_the_typed_folders_entries_by_their_start() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        std::fs::write(dir.path().join("scene_S2.tif"), b"x").unwrap();
        std::fs::write(dir.path().join("scene_S1.tif"), b"x").unwrap();
        std::fs::write(dir.path().join(".hidden"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("scenes")).unwrap();
        let all = completions(&format!("{d}/sc"));
        assert_eq!(
            all,
            vec![
                format!("{d}/scene_S1.tif"),
                format!("{d}/scene_S2.tif"),
                format!("{d}/scenes/"),
            ]
        );
        assert_eq!(common_prefix(&all), Some(format!("{d}/scene")));
        assert_eq!(completions(&format!("{d}/.")), vec![format!("{d}/.hidden")]);
        assert!(completions(&format!("{d}/nothing")).is_empty());
        assert!(completions("/no/such/folder/x").is_empty());
        assert_eq!(common_prefix(&[]), None);
    }

    #[test]
    fn a_typed_path_is_checked_for_what_it_is_for() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cube.tif");
        std::fs::write(&file, b"x").unwrap();
        assert!(check_path(PathKind::Existing, &file).is_ok());
        let e = check_path(PathKind::Existing, &dir.path().join("nope.tif")).unwrap_err();
        assert!(e.contains("nope.tif: no such file"), "{e}");
        assert!(check_path(PathKind::NewFile, &dir.path().join("labels.tif")).is_ok());
        let e = check_path(PathKind::NewFile, dir.path()).unwrap_err();
        assert!(e.contains("is a folder"), "{e}");
        let e = check_path(PathKind::NewFile, &dir.path().join("no/labels.tif")).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        assert!(check_path(PathKind::Folder, &dir.path().join("export")).is_ok());
        assert!(check_path(PathKind::Folder, &file).is_err());
        assert!(check_path(PathKind::Existing, Path::new("")).is_err());
    }
}
