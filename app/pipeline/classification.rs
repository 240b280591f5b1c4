//! One classification of a loaded scene (a [`Classification`]): Stage B with the diffusion
//! features (or one of the random forests alone), the two forests beside it
//! (raw pixels; raw pixels + multi-scale filter features), the metrics of
//! each on the test labels, and which one scores best on a held-out part of
//! the training labels. The command line (`run`, `sweep`) and the app call
//! this same function, so every app result can be reproduced headless.
//! Names: a `Classification` is what one call makes (each classifier's
//! [`ClassifierResult`]); the job reports it as `jobs::Classified`; the
//! session keeps the last one as `session::ClassificationResult` with what it
//! was made from. "run" is only the `run` command and its output folder.

use std::time::Instant;

use serde::Serialize;

use rayon::prelude::*;

use super::baseline::{
    BaselineError, ForestConfig, PixelRows, TrainedForest, fit_forest, pixel_features,
};
use super::feature_store::FeatureStore;
use super::filter_features::filter_features;
use super::held_out::{HeldOutScore, HeldOutSplit, Recommendation, held_out_split};
use super::label_curve::{CurvePoint, LabelCurve};
use super::modality::Modality;
use super::predict::MergedPrediction;
use super::stage_b::{
    StageBConfig, StageBError, StageBOutput, StageBProgress, StageBRun, run_stage_b_stored,
};
use crate::base::CancelFlag;
use crate::metrics::summary::MetricsSummary;
use crate::model::lean_ops::UNetAutodiff;
use crate::model::unet::UNet;
use crate::products::Rgb8Image;
use crate::products::renderings::Renderings;
use crate::scene::{LabelImage, Scene};

/// The classifier whose map is the run's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum ClassifierChoice {
    /// Frozen diffusion features + the MLP head (the method).
    #[serde(rename = "mlp")]
    Mlp,
    /// The random forest on raw pixel values only.
    #[serde(rename = "rf")]
    Rf,
    /// The random forest on raw values + ilastik's multi-scale filter
    /// features (the classical reference of evaluation.md).
    #[serde(rename = "filter-rf")]
    FilterRf,
}

impl ClassifierChoice {
    /// Every classifier, in the order results are listed.
    pub const ALL: [Self; 3] = [Self::Mlp, Self::FilterRf, Self::Rf];

    /// The name on the command line and in run.json.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mlp => "mlp",
            Self::Rf => "rf",
            Self::FilterRf => "filter-rf",
        }
    }

    /// What it is, for people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Mlp => "diffusion features + MLP",
            Self::Rf => "random forest (raw pixels)",
            Self::FilterRf => "random forest (raw + filter features)",
        }
    }

    /// The classifier a command-line name means.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// What to run.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ClassificationSettings {
    /// Requested modalities, in concatenation order; those whose input is
    /// missing are left out with a note.
    pub modalities: Vec<Modality>,
    pub classifier: ClassifierChoice,
    /// Also run both random forests beside the MLP.
    pub baseline: bool,
    /// Score every classifier of the run on a held-out part of the training
    /// labels and recommend the best (each is trained once more without it).
    pub held_out_check: bool,
    pub stage_b: StageBConfig,
    /// Settings of both forests.
    pub forest: ForestConfig,
}

impl ClassificationSettings {
    /// Whether these settings can run on a backbone of `config`: the
    /// timestep, block, patch and stride, the head and the forests; the
    /// first thing that cannot, in words (settings read from a file are
    /// checked as those of a command line are).
    pub fn check(&self, config: &crate::model::config::UNetConfig) -> Result<(), String> {
        let s = &self.stage_b;
        if !(0..1000).contains(&s.t) {
            return Err(format!("t {}: the timestep must be in 0..999", s.t));
        }
        config.feature_block(Some(s.block))?;
        if s.patch != config.image_size {
            return Err(format!(
                "patch {}: this backbone takes patches of {}",
                s.patch, config.image_size
            ));
        }
        if s.stride == 0 || s.stride > s.patch {
            return Err(format!("stride {}: must be in 1..={}", s.stride, s.patch));
        }
        if s.batch_patches == 0 {
            return Err("a batch needs at least one patch".into());
        }
        if s.head.max_epochs == 0 {
            return Err("the head needs at least one epoch".into());
        }
        if s.mlp.hidden.contains(&0) {
            return Err("a hidden layer of the MLP needs at least one unit".into());
        }
        if !(0.0..0.9).contains(&s.validation_fraction) {
            return Err(format!(
                "validation fraction {}: must be in 0..0.9 (0 = no early stopping)",
                s.validation_fraction
            ));
        }
        if let Some(curve) = &s.label_curve {
            super::label_curve::LabelCurveSpec::new(
                curve.per_class.clone(),
                curve.repeats,
                curve.seed,
            )?;
        }
        if self.forest.trees == 0 {
            return Err("a random forest needs at least one tree".into());
        }
        if self.modalities.is_empty() {
            return Err("no modality to take features from".into());
        }
        Ok(())
    }
}

/// One classifier's result.
#[derive(Debug, Clone)]
pub struct ClassifierResult {
    pub class_map: Vec<u8>,
    /// Max probability and entropy per pixel (the MLP only).
    pub uncertainty: Option<MergedPrediction>,
    pub metrics: Option<MetricsSummary>,
    pub seconds: f64,
}

/// Everything a run produced.
#[derive(Debug, Clone)]
pub struct Classification {
    /// Classes 1..=K scored (K = the largest class in training or test labels).
    pub classes: usize,
    pub modalities: Vec<Modality>,
    /// Warnings the user must read (left-out modalities, classes without
    /// training pixels, test classes the classifier cannot predict).
    pub warnings: Vec<String>,
    /// The classifier asked for: its map is the run's result.
    pub classifier: ClassifierChoice,
    pub mlp: Option<(ClassifierResult, StageBOutput)>,
    /// The raw-pixel forest.
    pub forest: Option<ClassifierResult>,
    /// The forest on raw values + filter features.
    pub filter_forest: Option<ClassifierResult>,
    /// Test pixels left out of the scores because they are training labels too.
    pub test_pixels_excluded: usize,
    /// Every classifier's score on the held-out training labels, and the
    /// best (None when not asked for or too few labels).
    pub recommendation: Option<Recommendation>,
    /// The MLP's accuracy against the number of training labels, when
    /// asked for (`StageBConfig::label_curve`).
    pub label_curve: Option<LabelCurve>,
}

impl Classification {
    /// One classifier's result, if it ran.
    pub fn result(&self, classifier: ClassifierChoice) -> Option<&ClassifierResult> {
        match classifier {
            ClassifierChoice::Mlp => self.mlp.as_ref().map(|(r, _)| r),
            ClassifierChoice::Rf => self.forest.as_ref(),
            ClassifierChoice::FilterRf => self.filter_forest.as_ref(),
        }
    }

    /// Every result, the asked-for classifier's first.
    pub fn results(&self) -> Vec<(ClassifierChoice, &ClassifierResult)> {
        std::iter::once(self.classifier)
            .chain(
                ClassifierChoice::ALL
                    .into_iter()
                    .filter(|&c| c != self.classifier),
            )
            .filter_map(|c| self.result(c).map(|r| (c, r)))
            .collect()
    }

    /// The result a run shows and exports first: the asked-for classifier's.
    pub fn main_result(&self) -> Option<&ClassifierResult> {
        self.results().first().map(|(_, r)| *r)
    }

    /// A classifier's kappa on the held-out training labels, if scored.
    pub fn held_out_kappa(&self, classifier: ClassifierChoice) -> Option<f64> {
        self.recommendation
            .as_ref()?
            .scores
            .iter()
            .find(|s| s.classifier == classifier)
            .map(|s| s.kappa)
    }

    /// The map a run shows and exports first.
    pub fn main_class_map(&self) -> Option<&[u8]> {
        self.main_result().map(|r| r.class_map.as_slice())
    }
}

/// Why a run cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum ClassificationError {
    #[error("no training labels: give a training label raster or paint some labels")]
    NoTrainingLabels,
    #[error(
        "the training labels hold only class {0}: a classifier needs at least two classes with labelled pixels"
    )]
    OneClass(u8),
    #[error("{0}")]
    StageB(#[from] StageBError),
    #[error("{0}")]
    Baseline(#[from] BaselineError),
    #[error(
        "none of the requested modalities ({requested}) has its input: pRGB and PCA need an HSI cube, SAR a SAR image"
    )]
    NoModality { requested: String },
}

/// The renderings of the requested modalities that exist, in order, and a
/// note for each one left out.
pub fn available_modalities<'a>(
    renderings: &'a Renderings,
    requested: &[Modality],
) -> (Vec<(Modality, &'a Rgb8Image)>, Vec<String>) {
    let mut images = Vec::new();
    let mut notes = Vec::new();
    for &m in requested {
        match m.image_in(renderings) {
            Some(i) => images.push((m, i)),
            None => notes.push(format!(
                "modality {} left out: it needs {} input",
                m.name(),
                if m == Modality::Sar {
                    "a SAR"
                } else {
                    "an HSI"
                }
            )),
        }
    }
    (images, notes)
}

/// The test labels that may be scored: every pixel that is also a training
/// label is left out (a painted stroke over the reference layer must not
/// count as a test of itself), with how many were.
pub fn scoring_labels(test: &LabelImage, train: &LabelImage) -> (Vec<u8>, usize) {
    let mut excluded = 0;
    let data = test
        .data
        .iter()
        .zip(&train.data)
        .map(|(&t, &l)| {
            if t != 0 && l != 0 {
                excluded += 1;
                0
            } else {
                t
            }
        })
        .collect();
    (data, excluded)
}

fn score(test: Option<&[u8]>, map: &[u8], classes: usize) -> Option<MetricsSummary> {
    test.map(|t| MetricsSummary::from_labels(t, map, classes))
}

/// Runs the classification of `scene` (its training and optional test
/// labels) with `model` as the frozen backbone; `progress` hears every Stage B
/// batch, `cancel` stops the run at the next one.
pub fn classify_scene<B: UNetAutodiff>(
    model: &UNet<B::InnerBackend>,
    scene: &Scene,
    renderings: &Renderings,
    settings: &ClassificationSettings,
    device: &B::Device,
    cancel: &CancelFlag,
    progress: &mut dyn FnMut(&StageBProgress),
) -> Result<Classification, ClassificationError> {
    let mut store = FeatureStore::for_one_run(settings.stage_b.feature_cache_bytes);
    classify_scene_stored::<B>(
        (model, ""),
        scene,
        renderings,
        settings,
        device,
        cancel,
        progress,
        &mut store,
    )
}

/// [`classify_scene`] with the features kept in `store` (the app keeps
/// one between runs); `backbone` = (the network, the name that identifies
/// its weights).
#[allow(clippy::too_many_arguments)]
pub fn classify_scene_stored<B: UNetAutodiff>(
    backbone: (&UNet<B::InnerBackend>, &str),
    scene: &Scene,
    renderings: &Renderings,
    settings: &ClassificationSettings,
    device: &B::Device,
    cancel: &CancelFlag,
    progress: &mut dyn FnMut(&StageBProgress),
    store: &mut FeatureStore,
) -> Result<Classification, ClassificationError> {
    let train = scene
        .train_labels
        .as_ref()
        .filter(|l| l.labelled() > 0)
        .ok_or(ClassificationError::NoTrainingLabels)?;
    let test = scene.test_labels.as_ref();
    let scored = test.map(|t| scoring_labels(t, train));
    let test_pixels_excluded = scored.as_ref().map_or(0, |(_, n)| *n);
    let scored = scored.as_ref().map(|(d, _)| d.as_slice());
    if let [(only, _)] = train.class_counts()[..] {
        return Err(ClassificationError::OneClass(only));
    }
    let train_k = train.max_class() as usize;
    let classes = train_k.max(test.map_or(0, |t| t.max_class() as usize));
    let mut warnings = Vec::new();
    let hist = train.histogram();
    for (k, &count) in hist.iter().enumerate().take(classes + 1).skip(1) {
        if count == 0 {
            let in_test = test.map_or(0, |t| t.histogram()[k]);
            warnings.push(if in_test > 0 {
                format!(
                    "class {k} has no training pixels but {in_test} test pixels: no classifier can predict it, its recall is 0"
                )
            } else {
                format!("class {k} has no training pixels")
            });
        }
    }

    let mut outcome = Classification {
        classes,
        modalities: Vec::new(),
        warnings,
        classifier: settings.classifier,
        mlp: None,
        forest: None,
        filter_forest: None,
        test_pixels_excluded,
        recommendation: None,
        label_curve: None,
    };
    let split = if settings.held_out_check {
        held_out_split(train, settings.stage_b.head.seed)
    } else {
        None
    };
    let mut held_out_scores = Vec::new();
    if test_pixels_excluded > 0 {
        outcome.warnings.push(format!(
            "{test_pixels_excluded} test pixels are also training labels: they are left out of the scores"
        ));
    }
    let mut settings = std::borrow::Cow::Borrowed(settings);
    if settings.stage_b.label_curve.is_some() && scored.is_none() {
        outcome.warnings.push(
            "the label curve scores its maps on test labels and there are none: left out".into(),
        );
        settings.to_mut().stage_b.label_curve = None;
    }
    let settings = settings.as_ref();
    if settings.classifier == ClassifierChoice::Mlp {
        let (images, notes) = available_modalities(renderings, &settings.modalities);
        outcome.warnings.extend(notes);
        if images.is_empty() {
            return Err(ClassificationError::NoModality {
                requested: settings
                    .modalities
                    .iter()
                    .map(|m| m.name())
                    .collect::<Vec<_>>()
                    .join(","),
            });
        }
        outcome.modalities = images.iter().map(|(m, _)| *m).collect();
        let t0 = Instant::now();
        let run = StageBRun {
            model: backbone.0,
            backbone: backbone.1,
            images: &images,
            train_labels: train,
            cfg: &settings.stage_b,
            held_out: split.as_ref(),
        };
        let out = run_stage_b_stored::<B>(&run, device, cancel, progress, store)?;
        if let (Some(split), Some(predicted)) = (&split, &out.held_out_prediction) {
            held_out_scores.push(HeldOutScore::new(
                ClassifierChoice::Mlp,
                split,
                predicted,
                classes,
            ));
        }
        if let Some(spec) = &settings.stage_b.label_curve {
            let points = out
                .label_curve
                .iter()
                .map(|(subset, map)| CurvePoint {
                    per_class: subset.per_class,
                    repeat: subset.repeat,
                    labels: subset.pixels.len(),
                    metrics: score(scored, map, classes),
                })
                .collect();
            outcome.label_curve = Some(LabelCurve::new(
                spec.clone(),
                points,
                out.seconds_label_curve,
            ));
        }
        let result = ClassifierResult {
            metrics: score(scored, &out.prediction.class_map, classes),
            class_map: out.prediction.class_map.clone(),
            uncertainty: Some(out.prediction.clone()),
            seconds: t0.elapsed().as_secs_f64(),
        };
        outcome.mlp = Some((result, out));
    }
    let beside = settings.classifier == ClassifierChoice::Mlp && settings.baseline;
    let wants = |c: ClassifierChoice| settings.classifier == c || beside;
    if wants(ClassifierChoice::Rf) || wants(ClassifierChoice::FilterRf) {
        if cancel.is_cancelled() {
            return Err(ClassificationError::StageB(StageBError::Cancelled));
        }
        let t0 = Instant::now();
        let raw = pixel_features(scene)?;
        let seconds_raw = t0.elapsed().as_secs_f64();
        let filtered = if wants(ClassifierChoice::FilterRf) {
            let t0 = Instant::now();
            let filtered = filter_features(&raw, train)?;
            Some((filtered, seconds_raw + t0.elapsed().as_secs_f64()))
        } else {
            None
        };
        let mut jobs: Vec<(ClassifierChoice, &dyn PixelRows, f64)> = Vec::new();
        if let Some((filtered, seconds)) = &filtered {
            jobs.push((ClassifierChoice::FilterRf, filtered, *seconds));
        }
        if wants(ClassifierChoice::Rf) {
            jobs.push((ClassifierChoice::Rf, &raw, seconds_raw));
        }
        // The forests (each once on every label and once without the
        // held-out ones) are independent: fitted side by side (their trees
        // too), each exactly as it would be alone.
        let fitted: Vec<FittedForests> = jobs
            .par_iter()
            .map(|&(_, features, _)| fit_forests(features, train, split.as_ref(), settings))
            .collect::<Result<_, _>>()?;
        if cancel.is_cancelled() {
            return Err(ClassificationError::StageB(StageBError::Cancelled));
        }
        for ((c, features, seconds_features), fitted) in jobs.into_iter().zip(fitted) {
            let t0 = Instant::now();
            let map = fitted.all.predict_map(features)?;
            if let (Some(split), Some(held_out)) = (&split, &fitted.held_out) {
                let predicted = held_out.predict_pixels(features, &split.pixels)?;
                held_out_scores.push(HeldOutScore::new(c, split, &predicted, classes));
            }
            let result = ClassifierResult {
                metrics: score(scored, &map, classes),
                class_map: map,
                uncertainty: None,
                seconds: seconds_features + fitted.seconds + t0.elapsed().as_secs_f64(),
            };
            match c {
                ClassifierChoice::FilterRf => outcome.filter_forest = Some(result),
                _ => outcome.forest = Some(result),
            }
        }
    }
    if let Some(split) = &split {
        outcome.recommendation = Recommendation::from_scores(held_out_scores, split);
    }
    Ok(outcome)
}

/// A forest trained on every training label and, for the held-out check,
/// one trained without the held-out labels.
struct FittedForests {
    all: TrainedForest,
    held_out: Option<TrainedForest>,
    /// Wall time of the two fits, side by side.
    seconds: f64,
}

fn fit_forests(
    features: &dyn PixelRows,
    train: &LabelImage,
    split: Option<&HeldOutSplit>,
    settings: &ClassificationSettings,
) -> Result<FittedForests, BaselineError> {
    let t0 = Instant::now();
    let (all, held_out) = rayon::join(
        || fit_forest(features, train, &settings.forest),
        || {
            split
                .map(|s| fit_forest(features, &s.rest, &settings.forest))
                .transpose()
        },
    );
    Ok(FittedForests {
        all: all?,
        held_out: held_out?,
        seconds: t0.elapsed().as_secs_f64(),
    })
}
