//! The desktop app (eframe on wgpu): panels and the map view. Owns no scene
//! data: widgets read the session and send [`AppCommand`]s, `dispatch.rs`
//! runs them; file, raster and model work goes to `jobs`.

pub mod app;
pub mod command;
pub mod cpu_map;
mod dispatch;
pub mod explorer;
pub mod gpu_map;
mod inspector;
pub mod layers;
pub mod map_view;
mod panels;
pub mod prefs;
mod results;
pub mod shortcuts;
mod stage_b_panel;
mod training;
mod view_export;
pub mod view_transform;

pub use app::{AppOptions, FileAction, StudioApp, Tool};
pub use command::AppCommand;

/// Opens the window and runs until it closes: wgpu first, glow if wgpu
/// cannot start.
pub fn run_app(options: AppOptions) -> anyhow::Result<()> {
    let native = |renderer| eframe::NativeOptions {
        renderer,
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("UniDiff Studio")
            .with_app_id("unidiff-studio")
            .with_inner_size([1400.0, 900.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    let start = |renderer, options: AppOptions| {
        eframe::run_native(
            "unidiff-studio",
            native(renderer),
            Box::new(move |cc| Ok(Box::new(StudioApp::new(cc, options)))),
        )
    };
    match start(eframe::Renderer::Wgpu, options.clone()) {
        Ok(()) => Ok(()),
        Err(e) => {
            eprintln!("wgpu renderer failed ({e}); trying OpenGL (glow)");
            start(eframe::Renderer::Glow, options)
                .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
        }
    }
}
