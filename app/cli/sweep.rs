//! `unidiff-studio sweep`: Stage B over several diffusion timesteps on the
//! same inputs, labels, backbone and seed, writing OA and mF1 per t (the
//! paper's Fig. 2) as `sweep.json` and a `sweep.png` plot, the MLP's kappa
//! on held-out training labels per t with the t it suggests, and both
//! forests' scores (they do not depend on t) for reference.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;

use super::run::{RunInputs, backbone_on_cpu, cancel_on_ctrl_c, classify, prepare, stage_b_config};
use crate::base::step::Step;
use crate::io::atomic::write_bytes;
use crate::io::geotiff::write_rgb_png;
use crate::io::staged_folder::StagedFolder;
use crate::pipeline::baseline::ForestConfig;
use crate::pipeline::classification::{ClassificationSettings, ClassifierChoice};
use crate::products::Rgb8Image;

#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub inputs: RunInputs,
    /// Timesteps, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0,100,200,300,400,500,600,700",
        allow_negative_numbers = true
    )]
    pub t: Vec<i64>,
    /// Output folder (new or empty; written whole or not at all).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing output folder that holds files, as a whole.
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(args: &SweepArgs) -> anyhow::Result<()> {
    if args.t.is_empty() {
        bail!("give at least one timestep with --t");
    }
    crate::io::staged_folder::check_not_a_file(&args.out)?;
    // Every timestep checked before the first run.
    if let Some(t) = args.t.iter().find(|t| !(0..1000).contains(*t)) {
        bail!("--t {t}: the timestep must be in 0..999");
    }
    // The output folder checked before any work, filled under a hidden
    // name and put in place whole at the end.
    let staged = StagedFolder::prepare(&args.out, args.overwrite)?;
    let prepared = prepare(&args.inputs)?;
    if prepared.scene.test_labels.is_none() {
        bail!("a sweep scores each timestep: give --test-labels or --split-fraction");
    }
    let (model, info) = backbone_on_cpu(&prepared.spec)?;
    let cancel = cancel_on_ctrl_c();
    let mut rows = Vec::new();
    for &t in &args.t {
        let settings = ClassificationSettings {
            modalities: prepared.modalities.clone(),
            classifier: ClassifierChoice::Mlp,
            baseline: false,
            held_out_check: true,
            stage_b: stage_b_config(&args.inputs, &info, t)?,
            forest: ForestConfig::default(),
        };
        let step = Step::start(format!("t = {t}"));
        let outcome = classify(&model, &prepared, &settings, &cancel)?;
        let seconds = step.done();
        let metrics = outcome
            .mlp
            .as_ref()
            .and_then(|(r, _)| r.metrics.as_ref())
            .context("no metrics for this timestep")?;
        // The MLP's kappa on the held-out training labels: what a user
        // without test labels can choose t by.
        let held_out = outcome.held_out_kappa(ClassifierChoice::Mlp);
        log::info!(
            "[ok] t = {t}: OA {:.4}, mF1 {:.4}{}",
            metrics.oa,
            metrics.mf1,
            held_out.map_or(String::new(), |k| format!(
                ", kappa on held-out training labels {k:.4}"
            ))
        );
        rows.push(json!({
            "t": t,
            "oa": metrics.oa,
            "mf1": metrics.mf1,
            "kappa": metrics.kappa,
            "miou": metrics.miou,
            "held_out_kappa": held_out,
            "seconds": seconds,
        }));
    }
    // The forests do not depend on t: scored once, as the reference lines
    // the diffusion features are read against.
    let mut forests = serde_json::Map::new();
    for classifier in [ClassifierChoice::FilterRf, ClassifierChoice::Rf] {
        let settings = ClassificationSettings {
            modalities: prepared.modalities.clone(),
            classifier,
            baseline: false,
            held_out_check: true,
            stage_b: stage_b_config(&args.inputs, &info, args.t[0])?,
            forest: ForestConfig {
                seed: args.inputs.seed,
                ..ForestConfig::default()
            },
        };
        let outcome = classify(&model, &prepared, &settings, &cancel)?;
        let Some(m) = outcome.main_result().and_then(|r| r.metrics.as_ref()) else {
            continue;
        };
        let held_out = outcome.held_out_kappa(classifier);
        log::info!(
            "[ok] {} (any t): OA {:.4}, mF1 {:.4}",
            classifier.label(),
            m.oa,
            m.mf1
        );
        forests.insert(
            classifier.name().to_string(),
            json!({"oa": m.oa, "mf1": m.mf1, "kappa": m.kappa, "miou": m.miou, "held_out_kappa": held_out}),
        );
    }
    let suggestion = suggested_t(&rows);
    if let Some((t, k)) = suggestion {
        log::info!(
            "[ok] on the held-out training labels t = {t} scores best (kappa {k:.4}); a suggestion, the test labels were not used"
        );
    }
    let points: Vec<(f64, f64, f64)> = rows
        .iter()
        .map(|r| {
            (
                r["t"].as_f64().unwrap_or(0.0),
                r["oa"].as_f64().unwrap_or(f64::NAN),
                r["mf1"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect();
    write_rgb_png(&staged.path().join("sweep.png"), &sweep_plot(&points))
        .map_err(|e| staged.final_words(e))?;
    let png = args.out.join("sweep.png");
    let record = json!({
        "software": format!("unidiff-studio {}", env!("CARGO_PKG_VERSION")),
        "backbone": info,
        "inputs": prepared.inputs,
        "split": prepared.split,
        "modalities": prepared.modalities.iter().map(|m| m.name()).collect::<Vec<_>>(),
        "block": stage_b_config(&args.inputs, &info, args.t[0])?.block,
        "seed": args.inputs.seed,
        "results": rows,
        "forests": forests,
        "suggested_t": suggestion.map(|(t, kappa)| json!({
            "t": t,
            "held_out_kappa": kappa,
            "why": "best kappa on a held-out fifth of the training labels (the test labels are not used)",
        })),
        "plot": {
            "file": png.display().to_string(),
            "x": "timestep t (0 .. 1000)",
            "y": "score (0 .. 1, grid every 0.1)",
            "blue": "mF1",
            "orange": "OA",
        },
    });
    write_bytes(
        &staged.path().join("sweep.json"),
        format!("{}\n", serde_json::to_string_pretty(&record)?).as_bytes(),
    )
    .map_err(|e| staged.final_words(e))?;
    let out = staged.commit()?;
    log::info!(
        "[ok] wrote {} and {}",
        out.join("sweep.json").display(),
        png.display()
    );
    Ok(())
}

/// The timestep of the best held-out kappa (the first on ties).
fn suggested_t(rows: &[serde_json::Value]) -> Option<(i64, f64)> {
    rows.iter()
        .filter_map(|r| Some((r["t"].as_i64()?, r["held_out_kappa"].as_f64()?)))
        .fold(None, |best: Option<(i64, f64)>, (t, k)| match best {
            Some((_, bk)) if bk >= k => best,
            _ => Some((t, k)),
        })
}

const PLOT_W: usize = 640;
const PLOT_H: usize = 400;
const MARGIN: usize = 40;
const BLUE: [u8; 3] = [31, 119, 180];
const ORANGE: [u8; 3] = [255, 127, 14];

/// The sweep as a line plot: x = t over 0..1000, y = score over 0..1 with a
/// grid line every 0.1 (t every 100); mF1 blue, OA orange.
pub fn sweep_plot(points: &[(f64, f64, f64)]) -> Rgb8Image {
    let mut img = Rgb8Image {
        width: PLOT_W,
        height: PLOT_H,
        data: vec![255; PLOT_W * PLOT_H * 3],
        stretch: Vec::new(),
    };
    let (x0, x1) = (MARGIN as f64, (PLOT_W - MARGIN / 2) as f64);
    let (y0, y1) = ((PLOT_H - MARGIN) as f64, (MARGIN / 2) as f64);
    let sx = |t: f64| x0 + (x1 - x0) * t / 1000.0;
    let sy = |v: f64| y0 + (y1 - y0) * v.clamp(0.0, 1.0);
    for k in 0..=10 {
        let grey = if k == 0 { [0, 0, 0] } else { [225, 225, 225] };
        let y = sy(k as f64 / 10.0);
        line(&mut img, (x0, y), (x1, y), grey);
        let x = sx(k as f64 * 100.0);
        line(&mut img, (x, y0), (x, y1), grey);
    }
    line(&mut img, (x0, y0), (x0, y1), [0, 0, 0]);
    for (pick, colour) in [(2usize, BLUE), (1, ORANGE)] {
        let xy: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| if pick == 1 { p.1 } else { p.2 }.is_finite())
            .map(|p| (sx(p.0), sy(if pick == 1 { p.1 } else { p.2 })))
            .collect();
        for w in xy.windows(2) {
            line(&mut img, w[0], w[1], colour);
        }
        for &(x, y) in &xy {
            for dy in -3i64..=3 {
                for dx in -3i64..=3 {
                    put(&mut img, x as i64 + dx, y as i64 + dy, colour);
                }
            }
        }
    }
    img
}

fn put(img: &mut Rgb8Image, x: i64, y: i64, c: [u8; 3]) {
    if x >= 0 && y >= 0 && (x as usize) < img.width && (y as usize) < img.height {
        let i = 3 * (y as usize * img.width + x as usize);
        img.data[i..i + 3].copy_from_slice(&c);
    }
}

/// A 2-pixel-wide straight line.
fn line(img: &mut Rgb8Image, a: (f64, f64), b: (f64, f64), c: [u8; 3]) {
    let steps = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).max(1);
    for s in 0..=steps {
        let f = s as f64 / steps as f64;
        let (x, y) = (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f);
        put(img, x as i64, y as i64, c);
        put(img, x as i64 + 1, y as i64, c);
        put(img, x as i64, y as i64 + 1, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suggested_t_has_the_best_held_out_kappa() {
        let rows = vec![
            json!({"t": 0, "held_out_kappa": 0.5}),
            json!({"t": 300, "held_out_kappa": 0.6}),
            json!({"t": 600, "held_out_kappa": 0.6}),
            json!({"t": 900, "held_out_kappa": null}),
        ];
        assert_eq!(suggested_t(&rows), Some((300, 0.6)));
        assert_eq!(suggested_t(&rows[3..]), None);
    }

    #[test]
    fn the_plot_puts_each_score_at_its_place() {
        let img = sweep_plot(&[(0.0, 0.5, 0.25), (1000.0, 0.5, 0.25)]);
        // OA = 0.5 at t = 0: orange at x0, y0 + (y1 - y0) * 0.5.
        let y = (PLOT_H - MARGIN) as f64 + ((MARGIN / 2) as f64 - (PLOT_H - MARGIN) as f64) * 0.5;
        assert_eq!(img.pixel(y as usize, MARGIN), ORANGE);
        let y = (PLOT_H - MARGIN) as f64 + ((MARGIN / 2) as f64 - (PLOT_H - MARGIN) as f64) * 0.25;
        assert_eq!(img.pixel(y as usize, MARGIN + 100), BLUE);
    }
}
