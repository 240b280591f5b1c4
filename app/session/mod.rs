//! The open session the app shows: one scene with its renderings, the class
//! list, the label layers being painted and their undo history, where each
//! came from, and the last classification with what it was made from and
//! its clean-up steps. The UI reads it and changes its labels only through
//! [`Command`]s (`apply`), so every such change is one place, testable
//! without a window. Beside it: label files, the autosave and the labelling
//! of a validation sample.

pub mod autosave;
pub mod label_files;
pub mod sample_labelling;

use std::path::PathBuf;

use crate::products::renderings::Renderings;
use crate::scene::ClassInfo;
use crate::scene::label_edits::{Edit, relabel};
use crate::scene::{Brush, LabelImage, LabelLayer, PixelRect, Scene, Stroke, UndoHistory};

/// The files a session was opened from.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SceneSources {
    pub hsi: Option<PathBuf>,
    pub sar: Option<PathBuf>,
    /// Where each label layer was last loaded from or saved to.
    pub train_labels: Option<PathBuf>,
    pub test_labels: Option<PathBuf>,
    /// Shown in the title bar ("demo: Sen1Floods11 Spain_7370579").
    pub title: String,
    /// The bundled demo scene.
    #[serde(default)]
    pub demo: bool,
}

impl SceneSources {
    pub fn labels_path(&self, layer: LabelLayer) -> Option<&PathBuf> {
        match layer {
            LabelLayer::Train => self.train_labels.as_ref(),
            LabelLayer::Test => self.test_labels.as_ref(),
        }
    }

    pub fn set_labels_path(&mut self, layer: LabelLayer, path: Option<PathBuf>) {
        match layer {
            LabelLayer::Train => self.train_labels = path,
            LabelLayer::Test => self.test_labels = path,
        }
    }
}

/// The first map of a classification after a stroke (every patch's
/// features kept): merged from patches that cover the scene once, shown
/// until the run's whole result replaces it.
#[derive(Debug, Clone)]
pub struct MapPreview {
    pub labels_revision: u64,
    /// 1..=K per scene pixel, row-major.
    pub class_map: std::sync::Arc<Vec<u8>>,
}

/// A classification of this scene and what it was made from.
#[derive(Debug, Clone)]
pub struct ClassificationResult {
    pub outcome: crate::pipeline::classification::Classification,
    /// Per modality subset, when the run was an ablation.
    pub ablation: Vec<(
        Vec<crate::pipeline::Modality>,
        Option<crate::metrics::summary::MetricsSummary>,
    )>,
    /// The backbone, in words.
    pub backbone: String,
    /// It was the one the classification worker kept loaded.
    pub backbone_kept: bool,
    /// The label revision the training labels were taken at.
    pub labels_revision: u64,
    pub seconds: f64,
    /// Each classifier's map's class areas (by class value).
    pub areas: Vec<(
        crate::pipeline::classification::ClassifierChoice,
        crate::metrics::areas::ClassAreas,
    )>,
    /// The MLP's head continued from the last one for a few epochs (a live
    /// update after a stroke), instead of training afresh.
    pub warm_started: bool,
    /// The classifier whose map the class-map layer shows (the run's own
    /// at first; the user may switch to another of the run's results).
    pub shown: crate::pipeline::classification::ClassifierChoice,
    /// The trained model ("Save model…"), or why the run has none.
    pub model: Result<std::sync::Arc<crate::pipeline::model_bundle::ModelBundle>, String>,
    /// The area-adjusted accuracy of the shown map from a labelled
    /// validation sample ("Accuracy from sample…"), and which map it was.
    pub sample_accuracy: Option<(String, crate::pipeline::validation_sample::SampleAccuracy)>,
    /// Clean-up steps (sieve, majority) of each classifier's map, in the
    /// order applied; the last of the shown classifier's is the cleaned map.
    pub cleaned: Vec<crate::pipeline::cleanup::CleanedMap>,
    /// What it was made from (backbone, settings, the labels as they were),
    /// for the exported run.json and the project; None for a result
    /// reopened from a project saved without it.
    pub made_from: Option<std::sync::Arc<crate::pipeline::run_record::MadeFrom>>,
}

impl ClassificationResult {
    /// The map shown.
    pub fn class_map(&self) -> Option<&[u8]> {
        self.outcome
            .result(self.shown)
            .map(|r| r.class_map.as_slice())
            .or(self.outcome.main_class_map())
    }

    /// The class areas of the map shown.
    pub fn areas(&self) -> Option<&crate::metrics::areas::ClassAreas> {
        self.areas
            .iter()
            .find(|(c, _)| *c == self.shown)
            .map(|(_, a)| a)
    }

    /// The clean-up steps of the shown classifier's map, first first.
    pub fn cleanup_steps(&self) -> impl Iterator<Item = &crate::pipeline::cleanup::CleanedMap> {
        self.cleaned.iter().filter(|c| c.source == self.shown)
    }

    /// A classifier's map after its clean-up steps (its own map when it
    /// has none): what its next step starts from.
    pub fn latest_map_of(
        &self,
        source: crate::pipeline::classification::ClassifierChoice,
    ) -> Option<&[u8]> {
        match self.cleaned.iter().rev().find(|c| c.source == source) {
            Some(c) => Some(c.class_map.as_slice()),
            None => self.outcome.result(source).map(|m| m.class_map.as_slice()),
        }
    }

    /// The shown classifier's map after its last clean-up step, if any.
    pub fn cleaned_map(&self) -> Option<&crate::pipeline::cleanup::CleanedMap> {
        self.cleanup_steps().last()
    }

    /// The map the products are made from (exports, validation sample,
    /// class areas): the cleaned map when there is one, else the shown map.
    pub fn delivered_map(&self) -> Option<&[u8]> {
        match self.cleaned_map() {
            Some(c) => Some(c.class_map.as_slice()),
            None => self.class_map(),
        }
    }

    /// The class areas of [`Self::delivered_map`].
    pub fn delivered_areas(&self) -> Option<&crate::metrics::areas::ClassAreas> {
        match self.cleaned_map() {
            Some(c) => Some(&c.areas),
            None => self.areas(),
        }
    }

    /// The delivered map, in words ("diffusion features + MLP, 2 clean-up
    /// steps").
    pub fn delivered_name(&self) -> String {
        match self.cleanup_steps().count() {
            0 => format!("{} map", self.shown.label()),
            1 => format!("{} map after 1 clean-up step", self.shown.label()),
            n => format!("{} map after {n} clean-up steps", self.shown.label()),
        }
    }

    /// Drops the last clean-up step of the shown map and hands it back.
    pub fn undo_cleanup(&mut self) -> Option<crate::pipeline::cleanup::CleanedMap> {
        let i = self.cleaned.iter().rposition(|c| c.source == self.shown)?;
        Some(self.cleaned.remove(i))
    }
}

/// A square of the scene where the classifier is least sure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UncertainRegion {
    /// Top-left pixel (x = column, y = row) and side.
    pub x: usize,
    pub y: usize,
    pub side: usize,
    /// Mean entropy over the square, as a fraction of ln(K).
    pub uncertainty: f64,
}

impl ClassificationResult {
    /// Entropy per pixel as a fraction of its largest value ln(K) (the MLP's
    /// merged prediction; None for the forest alone).
    pub fn normalised_entropy(&self) -> Option<Vec<f32>> {
        let (mlp, _) = self.outcome.mlp.as_ref()?;
        let u = mlp.uncertainty.as_ref()?;
        let max = (self.outcome.classes.max(2) as f32).ln();
        Some(
            u.entropy
                .iter()
                .map(|e| (e / max).clamp(0.0, 1.0))
                .collect(),
        )
    }

    /// The entropy as an RGB image (dark = sure, bright yellow = unsure).
    pub fn uncertainty_rgb(&self) -> Option<Vec<u8>> {
        let e = self.normalised_entropy()?;
        let mut out = Vec::with_capacity(e.len() * 3);
        for v in e {
            out.extend_from_slice(&[
                (255.0 * v.sqrt()) as u8,
                (230.0 * v) as u8,
                (60.0 * (1.0 - v)) as u8,
            ]);
        }
        Some(out)
    }

    /// The `n` squares of side `side` with the highest mean entropy that hold
    /// no training label yet, most uncertain first.
    pub fn uncertain_regions(
        &self,
        width: usize,
        train: Option<&LabelImage>,
        n: usize,
        side: usize,
    ) -> Vec<UncertainRegion> {
        let Some(e) = self.normalised_entropy() else {
            return Vec::new();
        };
        let side = side.max(1);
        let height = e.len() / width.max(1);
        let mut regions = Vec::new();
        for y in (0..height).step_by(side) {
            for x in (0..width).step_by(side) {
                let (x1, y1) = ((x + side).min(width), (y + side).min(height));
                let labelled = train.is_some_and(|t| {
                    (y..y1).any(|r| {
                        t.data[r * width + x..r * width + x1]
                            .iter()
                            .any(|&v| v != 0)
                    })
                });
                if labelled {
                    continue;
                }
                let mut sum = 0.0f64;
                for r in y..y1 {
                    sum += e[r * width + x..r * width + x1]
                        .iter()
                        .map(|&v| v as f64)
                        .sum::<f64>();
                }
                let mean = sum / ((x1 - x) * (y1 - y)) as f64;
                regions.push(UncertainRegion {
                    x,
                    y,
                    side,
                    uncertainty: mean,
                });
            }
        }
        regions.sort_by(|a, b| b.uncertainty.total_cmp(&a.uncertainty));
        regions.truncate(n);
        regions
    }
}

/// A change the UI asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Starts a stroke at image position (x, y) (pixel units, y down).
    BeginStroke {
        layer: LabelLayer,
        brush: Brush,
        x: f32,
        y: f32,
    },
    /// Continues the current stroke to (x, y).
    ContinueStroke {
        x: f32,
        y: f32,
    },
    /// Ends the current stroke: one undo step.
    EndStroke,
    Undo,
    Redo,
    AddClass,
    RenameClass {
        value: u8,
        name: String,
    },
    RecolorClass {
        value: u8,
        color: [u8; 3],
    },
    /// Every pixel of `from` becomes `into`; `from` leaves the class list and
    /// the classes above it move down by one.
    MergeClass {
        from: u8,
        into: u8,
    },
    /// Every pixel of `value` is erased; the classes above it move down.
    RemoveClass {
        value: u8,
    },
}

/// What the view must refresh after a command.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changed {
    pub labels: Vec<(LabelLayer, PixelRect)>,
    pub classes: bool,
}

/// The session: data only, no UI.
#[derive(Debug, Default)]
pub struct Session {
    pub scene: Scene,
    pub renderings: Renderings,
    pub sources: SceneSources,
    pub classes: Vec<ClassInfo>,
    history: UndoHistory<ClassInfo>,
    stroke: Option<Stroke>,
    /// Bumped by every change of a label layer (autosave and retraining
    /// compare it).
    pub labels_revision: u64,
    /// The revision last written to the user's label files.
    pub saved_revision: u64,
    /// The last classification (Stage B and the forest).
    pub result: Option<ClassificationResult>,
    /// The first map of the classification under way, newer than `result`.
    pub preview: Option<MapPreview>,
    /// Pixels per class value of the training and test layers, kept up to
    /// date by every edit (the class table reads them every frame).
    counts: Vec<[usize; 256]>,
}

fn slot(layer: LabelLayer) -> usize {
    match layer {
        LabelLayer::Train => 0,
        LabelLayer::Test => 1,
    }
}

/// A fresh class with the next value and a palette colour.
pub fn next_class(classes: &[ClassInfo]) -> Option<ClassInfo> {
    let value = classes
        .iter()
        .map(|c| c.value)
        .max()
        .unwrap_or(0)
        .checked_add(1)?;
    Some(ClassInfo::unnamed(value))
}

impl Session {
    /// The class map the map's class layer shows: the first map of the
    /// classification under way, else the last result's.
    pub fn shown_class_map(&self) -> Option<&[u8]> {
        match &self.preview {
            Some(p) => Some(p.class_map.as_slice()),
            None => self.result.as_ref()?.class_map(),
        }
    }

    /// The map the cleaned-map layer shows: the shown map after its
    /// clean-up steps (none while a classification's first map is shown).
    pub fn cleaned_class_map(&self) -> Option<&[u8]> {
        if self.preview.is_some() {
            return None;
        }
        Some(self.result.as_ref()?.cleaned_map()?.class_map.as_slice())
    }

    /// A session over a loaded scene; missing label layers start empty.
    pub fn new(
        mut scene: Scene,
        renderings: Renderings,
        sources: SceneSources,
        classes: Vec<ClassInfo>,
    ) -> Self {
        if let Some(grid) = scene.grid().cloned() {
            let empty = || LabelImage {
                data: vec![0; grid.len()],
                grid: grid.clone(),
            };
            scene.train_labels.get_or_insert_with(empty);
            scene.test_labels.get_or_insert_with(empty);
        }
        let mut session = Self {
            scene,
            renderings,
            sources,
            classes,
            ..Self::default()
        };
        session.recount();
        session
    }

    /// Counts every layer's classes again (after edits other than strokes).
    pub fn recount(&mut self) {
        self.counts = LabelLayer::ALL
            .iter()
            .map(|&layer| {
                self.scene
                    .labels(layer)
                    .map(LabelImage::histogram)
                    .unwrap_or([0; 256])
            })
            .collect();
    }

    pub fn has_unsaved_labels(&self) -> bool {
        self.labels_revision != self.saved_revision
    }

    pub fn can_undo(&self) -> bool {
        self.history.can_undo()
    }

    pub fn can_redo(&self) -> bool {
        self.history.can_redo()
    }

    pub fn undo_description(&self) -> Option<&str> {
        self.history.undo_description()
    }

    pub fn redo_description(&self) -> Option<&str> {
        self.history.redo_description()
    }

    pub fn is_painting(&self) -> bool {
        self.stroke.is_some()
    }

    /// Pixels per class value 0..=255 in `layer`.
    pub fn class_counts(&self, layer: LabelLayer) -> [usize; 256] {
        self.counts.get(slot(layer)).copied().unwrap_or([0; 256])
    }

    /// Replaces a label layer (loaded from a file) as one undo step.
    pub fn replace_labels(&mut self, layer: LabelLayer, labels: LabelImage, description: String) {
        let Some(current) = self.scene.labels_mut(layer) else {
            return;
        };
        let target = &labels.data;
        let change = relabel(current, layer, |i, v| target.get(i).copied().unwrap_or(v));
        let rect = change.rect;
        self.history.push(Edit {
            description,
            changes: vec![change],
            classes: None,
        });
        if rect.is_some() {
            self.labels_revision += 1;
        }
        self.recount();
    }

    /// Adds classes for label values the class list lacks; returns them.
    pub fn add_missing_classes(&mut self, values: &[u8]) -> Vec<u8> {
        let mut added = Vec::new();
        for &v in values {
            if v == 0 || self.classes.iter().any(|c| c.value == v) {
                continue;
            }
            self.classes.push(ClassInfo::unnamed(v));
            added.push(v);
        }
        self.classes.sort_by_key(|c| c.value);
        added
    }

    /// Applies a command; says what the view must refresh.
    pub fn apply(&mut self, command: Command) -> Changed {
        let mut changed = Changed::default();
        match command {
            Command::BeginStroke { layer, brush, x, y } => {
                self.end_stroke();
                self.stroke = Some(Stroke::new(layer, brush));
                changed.labels.extend(self.continue_stroke(x, y));
            }
            Command::ContinueStroke { x, y } => {
                changed.labels.extend(self.continue_stroke(x, y));
            }
            Command::EndStroke => self.end_stroke(),
            Command::Undo | Command::Redo => {
                self.end_stroke();
                let applied = if command == Command::Undo {
                    self.history.undo(&mut self.scene)
                } else {
                    self.history.redo(&mut self.scene)
                };
                if let Some(applied) = applied {
                    if !applied.touched.is_empty() {
                        self.labels_revision += 1;
                        self.recount();
                    }
                    changed.labels = applied.touched;
                    if let Some(classes) = applied.classes {
                        self.classes = classes;
                        changed.classes = true;
                    }
                }
            }
            Command::AddClass => {
                if let Some(c) = next_class(&self.classes) {
                    self.classes.push(c);
                    changed.classes = true;
                }
            }
            Command::RenameClass { value, name } => {
                if let Some(c) = self.classes.iter_mut().find(|c| c.value == value) {
                    c.name = name;
                    changed.classes = true;
                }
            }
            Command::RecolorClass { value, color } => {
                if let Some(c) = self.classes.iter_mut().find(|c| c.value == value) {
                    c.color = color;
                    changed.classes = true;
                }
            }
            Command::MergeClass { from, into } => {
                if from != into && from != 0 && into != 0 {
                    let target = if into > from { into - 1 } else { into };
                    let description = format!("merge class {from} into {into}");
                    changed = self.renumber(description, from, Some(target));
                }
            }
            Command::RemoveClass { value } => {
                if value != 0 {
                    changed = self.renumber(format!("remove class {value}"), value, None);
                }
            }
        }
        changed
    }

    /// Paints the current stroke to (x, y); the rectangle it touched.
    fn continue_stroke(&mut self, x: f32, y: f32) -> Option<(LabelLayer, PixelRect)> {
        let stroke = self.stroke.as_mut()?;
        let layer = stroke.layer();
        let mut scratch = [0; 256];
        let counts = self.counts.get_mut(slot(layer)).unwrap_or(&mut scratch);
        let labels = self.scene.labels_mut(layer)?;
        let r = stroke.move_to(labels, counts, x, y)?;
        self.labels_revision += 1;
        Some((layer, r))
    }

    fn end_stroke(&mut self) {
        let Some(stroke) = self.stroke.take() else {
            return;
        };
        let layer = stroke.layer();
        if let Some(labels) = self.scene.labels(layer)
            && let Some(change) = stroke.finish(labels)
        {
            let n = change.pixels.len();
            self.history.push(Edit {
                description: format!("paint {n} pixels of {}", layer.name()),
                changes: vec![change],
                classes: None,
            });
        }
    }

    /// Class `gone` leaves the list (its pixels become `target`, or 0), every
    /// class above it moves down by one: one undo step for both layers and
    /// the class list.
    fn renumber(&mut self, description: String, gone: u8, target: Option<u8>) -> Changed {
        if !self.classes.iter().any(|c| c.value == gone) {
            return Changed::default();
        }
        self.end_stroke();
        let before = self.classes.clone();
        let map = |v: u8| -> u8 {
            if v == gone {
                target.unwrap_or(0)
            } else if v > gone {
                v - 1
            } else {
                v
            }
        };
        let mut changes = Vec::new();
        for layer in LabelLayer::ALL {
            if let Some(labels) = self.scene.labels_mut(layer) {
                changes.push(relabel(labels, layer, |_, v| map(v)));
            }
        }
        let mut after: Vec<ClassInfo> =
            before.iter().filter(|c| c.value != gone).cloned().collect();
        for c in &mut after {
            c.value = map(c.value);
        }
        self.classes = after.clone();
        let touched = changes
            .iter()
            .filter_map(|c| c.rect.map(|r| (c.layer, r)))
            .collect::<Vec<_>>();
        if !touched.is_empty() {
            self.labels_revision += 1;
            self.recount();
        }
        self.history.push(Edit {
            description,
            changes,
            classes: Some((before, after)),
        });
        Changed {
            labels: touched,
            classes: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::PixelGrid;
    use crate::scene::named_classes;

    fn session(w: usize, h: usize) -> Session {
        let grid = PixelGrid::plain(w, h);
        let scene = Scene {
            train_labels: Some(LabelImage {
                data: vec![0; w * h],
                grid,
            }),
            ..Scene::default()
        };
        Session::new(
            scene,
            Renderings::default(),
            SceneSources::default(),
            named_classes(3, &[]),
        )
    }

    fn paint(s: &mut Session, value: u8, size: f32, points: &[(f32, f32)]) {
        let brush = Brush { value, size };
        let (x, y) = points[0];
        s.apply(Command::BeginStroke {
            layer: LabelLayer::Train,
            brush,
            x,
            y,
        });
        for &(x, y) in &points[1..] {
            s.apply(Command::ContinueStroke { x, y });
        }
        s.apply(Command::EndStroke);
    }

    #[test]
    fn a_stroke_is_one_undo_step_and_redo_repeats_it() {
        let mut s = session(20, 10);
        paint(&mut s, 2, 3.0, &[(2.5, 5.5), (10.5, 5.5), (15.5, 5.5)]);
        let painted = s.class_counts(LabelLayer::Train)[2];
        // A 3-pixel brush along a horizontal line from x 2.5 to 15.5: 3 rows
        // of 14 pixels, plus the discs' caps.
        assert!((3 * 14..=3 * 14 + 6).contains(&painted), "{painted}");
        let after = s.scene.train_labels.clone();
        let hist = after.as_ref().map(LabelImage::histogram);
        assert_eq!(Some(s.class_counts(LabelLayer::Train)), hist, "kept counts");
        let undone = s.apply(Command::Undo);
        assert_eq!(s.class_counts(LabelLayer::Train)[2], 0);
        assert_eq!(undone.labels.len(), 1);
        assert!(!s.can_undo() && s.can_redo());
        s.apply(Command::Redo);
        assert_eq!(s.scene.train_labels, after);
    }

    #[test]
    fn erasing_restores_unlabelled_and_only_touches_the_rectangle() {
        let mut s = session(30, 30);
        paint(&mut s, 1, 5.0, &[(10.5, 10.5)]);
        assert_eq!(s.class_counts(LabelLayer::Train)[1], 21, "a 5-pixel disc");
        let change = s.apply(Command::BeginStroke {
            layer: LabelLayer::Train,
            brush: Brush {
                value: 0,
                size: 1.0,
            },
            x: 10.5,
            y: 10.5,
        });
        s.apply(Command::EndStroke);
        assert_eq!(
            change.labels,
            vec![(
                LabelLayer::Train,
                PixelRect {
                    x0: 10,
                    y0: 10,
                    x1: 11,
                    y1: 11
                }
            )]
        );
        assert_eq!(s.class_counts(LabelLayer::Train)[1], 20);
        s.apply(Command::Undo);
        assert_eq!(s.class_counts(LabelLayer::Train)[1], 21);
    }

    #[test]
    fn merge_and_remove_renumber_classes_and_undo_restores_the_list() {
        let mut s = session(10, 1);
        paint(&mut s, 1, 1.0, &[(0.5, 0.5)]);
        paint(&mut s, 2, 1.0, &[(1.5, 0.5)]);
        paint(&mut s, 3, 1.0, &[(2.5, 0.5)]);
        let before = s.classes.clone();
        s.apply(Command::MergeClass { from: 1, into: 3 });
        let data = &s.scene.train_labels.as_ref().map(|l| l.data[..3].to_vec());
        // 1 -> 3 -> renumbered 2; 2 -> 1; 3 -> 2.
        assert_eq!(data.as_deref(), Some(&[2u8, 1, 2][..]));
        assert_eq!(s.classes.len(), 2);
        assert_eq!(s.classes[1].name, "class 3");
        s.apply(Command::Undo);
        assert_eq!(s.classes, before);
        s.apply(Command::RemoveClass { value: 2 });
        let data = s.scene.train_labels.as_ref().map(|l| l.data[..3].to_vec());
        assert_eq!(data, Some(vec![1, 0, 2]));
        s.apply(Command::Undo);
        let data = s.scene.train_labels.as_ref().map(|l| l.data[..3].to_vec());
        assert_eq!(data, Some(vec![1, 2, 3]));
    }

    #[test]
    fn revisions_track_unsaved_changes() {
        let mut s = session(4, 4);
        assert!(!s.has_unsaved_labels());
        paint(&mut s, 1, 1.0, &[(0.5, 0.5)]);
        assert!(s.has_unsaved_labels());
        s.saved_revision = s.labels_revision;
        assert!(!s.has_unsaved_labels());
    }
}
