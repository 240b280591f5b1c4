//! The headless command line: the same library functions the app uses, so
//! every result can be reproduced from a shell or a batch job.

mod adapt;
mod info;
pub mod model;
mod mosaic;
mod postprocess;
mod predict;
mod render;
pub mod run;
mod sample;
mod stats;
mod sweep;
mod vectorize;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use render::{RenderOptions, RenderReport, render_scene};

/// UniDiff Studio: land-cover mapping from hyperspectral and SAR rasters.
#[derive(Debug, Parser)]
#[command(name = "unidiff-studio", version, about)]
pub struct Cli {
    /// Open the bundled demo scene (Sentinel-1/2, Sen1Floods11 Spain_7370579)
    /// in the app; with `--headless`, run the pipeline on it instead.
    #[arg(long)]
    pub demo: bool,
    /// With `--demo`: no window; write the renderings and a classification
    /// run under `--demo-out`.
    #[arg(long)]
    pub headless: bool,
    /// Rasters to open in the app (HSI cube, SAR image, label files).
    pub files: Vec<PathBuf>,
    /// Where `--demo` writes its outputs.
    #[arg(long, default_value = "out/demo")]
    pub demo_out: PathBuf,
    /// Patch stride of the demo's classification run: 32 = a full patch of
    /// the bundled tiny backbone (no overlap), 4x faster than the method's
    /// half-patch stride (16), which `run --demo` uses.
    #[arg(long, default_value_t = 32)]
    pub demo_stride: usize,
    /// Worker threads for the CPU work (default: every core).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// Whether this command line opens the app's window (no subcommand and
    /// no `--headless`) rather than running a headless command.
    pub fn opens_window(&self) -> bool {
        self.command.is_none() && !self.headless
    }

    /// Refuses the app's own arguments beside a subcommand (`--threads`,
    /// global, goes anywhere).
    pub fn check(&self) -> anyhow::Result<()> {
        if self.command.is_some() && (self.demo || self.headless || !self.files.is_empty()) {
            anyhow::bail!(
                "--demo, --headless and raster files open the app or its headless demo: give them without a subcommand ({})",
                self.files
                    .iter()
                    .map(|f| f.display().to_string())
                    .chain(self.demo.then(|| "--demo".to_string()))
                    .chain(self.headless.then(|| "--headless".to_string()))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        Ok(())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Describe a raster, `.mat`/`.npy` array or PolSARpro folder.
    Info(InfoArgs),
    /// Write the pRGB, PCA and Pauli renderings of a scene.
    Render(RenderArgs),
    /// Inspect a backbone or run one forward pass.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Stage A: adapt the backbone's FiLM layers to a scene (unsupervised).
    Adapt(adapt::AdaptArgs),
    /// Stage B and the random-forest baseline: class maps and metrics.
    Run(run::RunArgs),
    /// Apply a trained model (`run --save-model`) to a scene, tile by tile,
    /// optionally one shard of a job array.
    Predict(predict::PredictArgs),
    /// Join the output folders of `predict --shard i/N` into one map.
    Mosaic(mosaic::MosaicArgs),
    /// Stage B over several timesteps: OA and mF1 per t (JSON and PNG).
    Sweep(sweep::SweepArgs),
    /// A class map's areas and, with reference labels, its area-adjusted
    /// accuracy with confidence intervals.
    Stats(stats::StatsArgs),
    /// A stratified random validation sample of a class map, as a
    /// GeoPackage of points to label.
    Sample(sample::SampleArgs),
    /// A class map as a GeoPackage of polygons with class, name and area.
    Vectorize(vectorize::VectorizeArgs),
    /// A class map cleaned by GDAL's sieve and/or a majority filter.
    Postprocess(postprocess::PostprocessArgs),
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The file or folder.
    pub file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Hyperspectral or multispectral cube.
    #[arg(long)]
    pub hsi: Option<PathBuf>,
    /// SAR image (2 bands VV, VH; or a PolSARpro folder).
    #[arg(long)]
    pub sar: Option<PathBuf>,
    /// pRGB bands, 0-based: r,g,b (also as three separate values).
    #[arg(long, value_delimiter = ',', num_args = 1..=3, conflicts_with = "preset")]
    pub rgb_bands: Option<Vec<usize>>,
    /// pRGB preset: berlin, augsburg or sentinel2.
    #[arg(long)]
    pub preset: Option<String>,
    /// Read the SAR values as dB (default: detect).
    #[arg(long, conflicts_with = "sar_linear")]
    pub sar_db: bool,
    /// Read the SAR values as linear intensity (default: detect).
    #[arg(long)]
    pub sar_linear: bool,
    /// Gamma of the dual-pol Pauli rendering (0.8 Berlin, 0.7 Augsburg).
    #[arg(long, default_value_t = 0.8)]
    pub gamma: f64,
    /// Output folder (new or empty; written whole or not at all).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing output folder that holds files, as a whole.
    #[arg(long)]
    pub overwrite: bool,
}

pub use crate::demo::demo_paths;

/// `--modalities` values as modalities, in the order given.
pub fn parse_modalities(names: &[String]) -> anyhow::Result<Vec<crate::pipeline::Modality>> {
    use anyhow::Context;
    let mut out: Vec<crate::pipeline::Modality> = Vec::new();
    for m in names {
        let modality = crate::pipeline::Modality::parse(m)
            .with_context(|| format!("unknown modality '{m}' (prgb, pca, sar)"))?;
        if out.contains(&modality) {
            anyhow::bail!(
                "--modalities {}: '{m}' is given twice; each modality once",
                names.join(",")
            );
        }
        out.push(modality);
    }
    if out.is_empty() {
        anyhow::bail!("--modalities: give at least one of prgb, pca, sar");
    }
    Ok(out)
}

/// Runs the command line; the error is what the user reads.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Info(args)) => info::run(&args),
        Some(Command::Render(args)) => render::run(&args),
        Some(Command::Model(cmd)) => model::run(&cmd),
        Some(Command::Adapt(args)) => adapt::run(&args),
        Some(Command::Run(args)) => run::run(&args),
        Some(Command::Predict(args)) => predict::run(&args),
        Some(Command::Mosaic(args)) => mosaic::run(&args),
        Some(Command::Sweep(args)) => sweep::run(&args),
        Some(Command::Stats(args)) => stats::run(&args),
        Some(Command::Sample(args)) => sample::run(&args),
        Some(Command::Vectorize(args)) => vectorize::run(&args),
        Some(Command::Postprocess(args)) => postprocess::run(&args),
        None if cli.demo && cli.headless => {
            // The headless demo: renderings, then the classification run.
            let (hsi, sar, _) = demo_paths()?;
            let args = RenderArgs {
                hsi: Some(hsi),
                sar: Some(sar),
                rgb_bands: None,
                preset: None,
                sar_db: false,
                sar_linear: false,
                gamma: 0.8,
                out: cli.demo_out.join("renderings"),
                // The demo's own folder: a second demo replaces the first.
                overwrite: true,
            };
            render::run(&args)?;
            let mut argv: Vec<std::ffi::OsString> = vec![
                "run".into(),
                "--demo".into(),
                "--out".into(),
                cli.demo_out.join("run").into_os_string(),
                // The demo's own folder: a second demo replaces the first.
                "--overwrite".into(),
            ];
            argv.extend(["--stride".into(), cli.demo_stride.to_string().into()]);
            let matches = <run::RunArgs as clap::Args>::augment_args(clap::Command::new("run"))
                .try_get_matches_from(argv)?;
            let run_args = <run::RunArgs as clap::FromArgMatches>::from_arg_matches(&matches)?;
            run::run(&run_args)
        }
        None => anyhow::bail!(
            "no command given: see `unidiff-studio --help` (without one, the binary opens the app)"
        ),
    }
}
