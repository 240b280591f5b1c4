//! The sheet of keyboard shortcuts (? or Help → Keyboard shortcuts): each
//! key of `shortcuts.rs` with what it does.

use eframe::egui;

/// The sheet of keyboard shortcuts (?).
#[derive(Default)]
pub struct ShortcutsWindow {
    pub open: bool,
}

impl ShortcutsWindow {
    pub fn ui(&mut self, ctx: &egui::Context) {
        if self.open {
            let mut open = true;
            egui::Window::new("Keyboard shortcuts")
                .open(&mut open)
                .show(ctx, |ui| {
                    egui::Grid::new("keys").show(ui, |ui| {
                        for (k, what) in [
                            ("B / E / I", "brush / eraser / inspect"),
                            ("[ and ]", "brush size"),
                            ("1 .. 9", "class (of the brush; of the sample point on show while a sample is open)"),
                            ("Ctrl+Z", "undo"),
                            ("Ctrl+Shift+Z, Ctrl+Y", "redo"),
                            ("wheel", "zoom at the cursor"),
                            ("PgUp / PgDn", "zoom"),
                            ("middle drag, Space + drag, arrows", "pan"),
                            ("F", "fit the scene"),
                            ("L", "toggle training labels"),
                            ("M", "toggle the class map"),
                            ("N", "next place to label (after a classification)"),
                            ("Ctrl+Enter", "classify"),
                            ("Ctrl+Shift+Enter", "run Stage A"),
                            (
                                "Esc",
                                "cancel the running Stage A, classification, projection",
                            ),
                            ("right click", "inspect a pixel"),
                            ("Ctrl+S", "save the project (asks where the first time)"),
                            ("Ctrl+Shift+S", "save the project as…"),
                            ("Ctrl+O", "open a project"),
                            ("?", "this sheet"),
                            ("Ctrl+Q", "quit (asks first if labels are unsaved)"),
                        ] {
                            ui.strong(k);
                            ui.label(what);
                            ui.end_row();
                        }
                    });
                });
            self.open = open;
        }
    }
}
