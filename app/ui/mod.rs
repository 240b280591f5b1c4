//! The desktop app (eframe on wgpu): the store, the views around the map,
//! and the map view. Views read the store and send [`AppCommand`]s,
//! `dispatch.rs` runs them; file, raster and model work goes to `jobs`.

pub mod app;
mod apply_window;
mod autosaver;
mod backbone_panel;
mod close_dialog;
pub mod command;
pub mod cpu_map;
pub mod desktop;
mod dispatch;
mod events;
pub mod explorer;
pub mod gpu_map;
mod inspector;
pub mod job_status;
mod labels_panel;
pub mod layers;
mod layers_panel;
mod legend;
pub mod map_tiles;
pub mod map_view;
mod menu_bar;
mod notices;
pub mod path_prompt;
pub mod prefs;
pub mod project;
mod project_settings;
mod results;
mod sample_window;
pub mod shortcuts;
mod shortcuts_window;
mod stage_b_panel;
mod start_page;
mod status_bar;
pub mod store;
pub mod view_context;
mod view_export;
pub mod view_transform;
pub mod views;
pub mod vocabulary;

pub use app::{AppOptions, StudioApp};
pub use command::AppCommand;
pub use vocabulary::{FileAction, Tool};

/// Opens the window and runs until it closes: wgpu first, glow if wgpu
/// cannot start.
pub fn run_app(options: AppOptions) -> anyhow::Result<()> {
    // The window's icon, built in (the same picture as the installed one).
    let icon = eframe::icon_data::from_png_bytes(include_bytes!(
        "../../assets/icons/unidiff-studio-256.png"
    ))
    .map_err(|e| anyhow::anyhow!("the built-in window icon is not a PNG: {e}"))?;
    let icon = std::sync::Arc::new(icon);
    // Preferences (window, theme, recent scenes) beside the app's other data.
    let prefs_file = options
        .data_dir
        .clone()
        .unwrap_or_else(crate::base::data_dir::data_dir)
        .join("app.ron");
    let native = |renderer| eframe::NativeOptions {
        renderer,
        persistence_path: Some(prefs_file.clone()),
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("UniDiff Studio")
            .with_app_id("unidiff-studio")
            .with_icon(icon.clone())
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
            log::warn!("wgpu renderer failed ({e}); trying OpenGL (glow)");
            start(eframe::Renderer::Glow, options)
                .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
        }
    }
}
