//! `unidiff-studio render`: pRGB, PCA and Pauli images of a scene as PNG and
//! georeferenced GeoTIFF, with `render.json` saying how each was made.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;

use super::RenderArgs;
use crate::base::step::Step;
use crate::io::atomic::write_bytes;
use crate::io::geotiff::{write_rgb_geotiff, write_rgb_png};
use crate::io::staged_folder::StagedFolder;
use crate::io::{SarScaleChoice, open_hsi, open_sar};
use crate::products::pauli::PauliSettings;
use crate::products::prgb::{RgbPreset, RgbRequest};
use crate::products::renderings::{RenderSettings, render_all};
use crate::products::{ChannelStretch, Rgb8Image};
use crate::scene::Scene;

/// Inputs and settings of one render.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub hsi: Option<PathBuf>,
    pub sar: Option<PathBuf>,
    pub sar_scale: SarScaleChoice,
    pub settings: RenderSettings,
    /// Where the files are written now (a staging folder, or `out`).
    pub write_to: PathBuf,
    /// Where they will be: the paths `render.json` gives.
    pub out: PathBuf,
}

#[derive(Debug, Serialize)]
struct ProductReport {
    png: String,
    geotiff: String,
    stretch: Vec<ChannelStretch>,
}

/// What `render.json` holds.
#[derive(Debug, Serialize)]
pub struct RenderReport {
    software: String,
    inputs: serde_json::Value,
    grid: serde_json::Value,
    prgb: Option<serde_json::Value>,
    pca: Option<serde_json::Value>,
    pauli: Option<serde_json::Value>,
    seconds: serde_json::Value,
}

fn write_product(
    opts: &RenderOptions,
    stem: &str,
    image: &Rgb8Image,
    scene: &Scene,
) -> anyhow::Result<ProductReport> {
    let grid = scene.grid().context("the scene has no layer")?;
    let (png, tif) = (format!("{stem}.png"), format!("{stem}.tif"));
    write_rgb_png(&opts.write_to.join(&png), image)?;
    write_rgb_geotiff(&opts.write_to.join(&tif), image, grid)?;
    Ok(ProductReport {
        png: opts.out.join(png).display().to_string(),
        geotiff: opts.out.join(tif).display().to_string(),
        stretch: image.stretch.clone(),
    })
}

/// Opens the inputs, renders, writes the images and `render.json`.
pub fn render_scene(opts: &RenderOptions) -> anyhow::Result<RenderReport> {
    if opts.hsi.is_none() && opts.sar.is_none() {
        bail!("nothing to render: give --hsi, --sar or both");
    }
    let t0 = Instant::now();
    let hsi = match &opts.hsi {
        Some(p) => {
            let step = Step::start(format!("reading HSI {}", p.display()));
            let cube = open_hsi(p)?;
            step.done();
            Some(cube)
        }
        None => None,
    };
    let sar = match &opts.sar {
        Some(p) => {
            let step = Step::start(format!("reading SAR {}", p.display()));
            let s = open_sar(p, opts.sar_scale)?;
            step.done();
            Some(s)
        }
        None => None,
    };
    let read_s = t0.elapsed().as_secs_f64();
    let scene = Scene::from_layers(hsi, sar, None, None)?;
    let t1 = Instant::now();
    let mut current: Option<Step> = None;
    let renderings = render_all(&scene, opts.settings, |name| {
        if let Some(s) = current.take() {
            s.done();
        }
        current = Some(Step::start(format!("rendering {name}")));
    })?;
    if let Some(s) = current.take() {
        s.done();
    }
    let render_s = t1.elapsed().as_secs_f64();
    std::fs::create_dir_all(&opts.write_to)
        .with_context(|| format!("cannot create the output folder {}", opts.out.display()))?;
    let t2 = Instant::now();
    let grid = scene.grid().context("the scene has no layer")?;
    let mut report = RenderReport {
        software: format!("unidiff-studio {}", env!("CARGO_PKG_VERSION")),
        inputs: serde_json::json!({
            "hsi": opts.hsi.as_ref().map(|p| p.display().to_string()),
            "sar": opts.sar.as_ref().map(|p| p.display().to_string()),
            "hsi_bands": scene.hsi.as_ref().map(|h| h.bands),
            "sar_kind": scene.sar.as_ref().map(|s| s.kind_name()),
            "sar_source_scale": scene.sar.as_ref().map(|s| s.source_scale),
            "sar_scale_reason": scene.sar.as_ref().map(|s| s.scale_reason.clone()),
        }),
        grid: serde_json::json!({
            "rows": grid.height,
            "cols": grid.width,
            "geotransform": grid.geo_transform,
            "crs": grid.crs_name,
        }),
        prgb: None,
        pca: None,
        pauli: None,
        seconds: serde_json::Value::Null,
    };
    if let Some((image, bands)) = &renderings.prgb {
        let p = write_product(opts, "prgb", image, &scene)?;
        report.prgb =
            Some(serde_json::json!({"bands": bands.bands, "reason": bands.reason, "files": p}));
    }
    if let Some((image, fit)) = &renderings.pca {
        let p = write_product(opts, "pca", image, &scene)?;
        report.pca = Some(serde_json::json!({
            "explained_variance_ratio": fit.explained_variance_ratio,
            "explained_variance": fit.explained_variance,
            "components": fit.components,
            "mean": fit.mean,
            "n_fit_pixels": fit.n_fit_pixels,
            "bands_used": fit.bands_used.len(),
            "bands_excluded_as_empty": fit.bands_excluded,
            "scatter": fit.scatter,
            "files": p,
        }));
    }
    if let Some(image) = &renderings.pauli {
        let p = write_product(opts, "pauli", image, &scene)?;
        report.pauli = Some(serde_json::json!({
            "kind": scene.sar.as_ref().map(|s| s.kind_name()),
            "settings": opts.settings.pauli,
            "files": p,
        }));
    }
    report.seconds = serde_json::json!({
        "read": read_s,
        "render": render_s,
        "write": t2.elapsed().as_secs_f64(),
    });
    let json = serde_json::to_vec_pretty(&report)?;
    write_bytes(&opts.write_to.join("render.json"), &json)?;
    Ok(report)
}

pub fn run(args: &RenderArgs) -> anyhow::Result<()> {
    // Inputs first, then the output folder: a missing input is the first
    // thing to hear of.
    for path in [&args.hsi, &args.sar].into_iter().flatten() {
        if !path.exists() {
            return Err(crate::io::ReadError::NotFound { path: path.clone() }.into());
        }
    }
    crate::io::staged_folder::check_not_a_file(&args.out)?;
    let rgb = match (&args.rgb_bands, &args.preset) {
        (Some(b), _) => match b.as_slice() {
            &[r, g, b] => RgbRequest::Bands([r, g, b]),
            _ => bail!(
                "--rgb-bands takes three band numbers, r,g,b (as 30,20,10 or 30 20 10); got {}",
                b.len()
            ),
        },
        (None, Some(name)) => {
            RgbRequest::Preset(RgbPreset::parse(name).with_context(|| {
                format!("unknown preset '{name}' (berlin, augsburg, sentinel2)")
            })?)
        }
        (None, None) => RgbRequest::Auto,
    };
    let sar_scale = if args.sar_db {
        SarScaleChoice::Db
    } else if args.sar_linear {
        SarScaleChoice::Linear
    } else {
        SarScaleChoice::Auto
    };
    if !(args.gamma > 0.0 && args.gamma.is_finite()) {
        bail!("--gamma must be a positive number");
    }
    // The output folder checked before any work; filled under a hidden
    // name and put in place whole at the end.
    let staged = StagedFolder::prepare(&args.out, args.overwrite)?;
    let opts = RenderOptions {
        hsi: args.hsi.clone(),
        sar: args.sar.clone(),
        sar_scale,
        settings: RenderSettings {
            rgb,
            pauli: PauliSettings {
                gamma: args.gamma,
                ..PauliSettings::default()
            },
        },
        write_to: staged.path().to_path_buf(),
        out: args.out.clone(),
    };
    render_scene(&opts).map_err(|e| staged.final_words(e))?;
    let out = staged.commit()?;
    log::info!("[ok] wrote {}", out.display());
    Ok(())
}
