//! The start page, shown while no scene is open: the demo scene one click
//! away, Open HSI / SAR, dropping files, and the recent scenes.

use eframe::egui::{self, RichText};

use super::command::AppCommand;
use super::view_context::ViewContext;
use super::vocabulary::FileAction;

/// What the map's place shows before a scene is open.
#[derive(Default)]
pub struct StartPage;

impl StartPage {
    pub fn ui(&mut self, ui: &mut egui::Ui, cx: &ViewContext) {
        ui.vertical_centered(|ui| {
            ui.add_space(ui.available_height() * 0.2);
            ui.heading("UniDiff Studio");
            ui.label("Land-cover mapping from hyperspectral and SAR rasters with sparse labels");
            ui.add_space(16.0);
            if cx.jobs.loading.is_some() {
                ui.spinner();
                return;
            }
            if ui
                .button(
                    RichText::new("Open the demo scene (Sentinel-1/2, Sen1Floods11)").size(16.0),
                )
                .clicked()
            {
                cx.send(AppCommand::OpenDemo);
            }
            ui.add_space(8.0);
            ui.horizontal(|ui| {
                ui.add_space((ui.available_width() - 220.0).max(0.0) / 2.0);
                if ui.button("Open HSI…").clicked() {
                    cx.send(AppCommand::PickFile(FileAction::OpenHsi));
                }
                if ui.button("Open SAR…").clicked() {
                    cx.send(AppCommand::PickFile(FileAction::OpenSar));
                }
            });
            ui.label(RichText::new("or drop raster files on the window").weak());
            if !cx.store.prefs.recent.is_empty() {
                ui.add_space(16.0);
                ui.strong("Recent");
                super::menu_bar::recent_list(ui, cx);
            }
        });
    }
}
