//! The keyboard shortcuts of ux.md as commands: which keys were pressed this
//! frame becomes a list of [`AppCommand`]s, so a key does exactly what its
//! menu item or button does. Skipped while a text field has focus.

use eframe::egui::{self, Key, Modifiers};

use super::command::AppCommand;
use super::layers::LayerId;
use super::vocabulary::{FileAction, Tool};
use crate::session::Command;

/// Screen points one arrow key press pans.
const ARROW_PAN: f32 = 64.0;

/// What the keys may do in the app's current state.
#[derive(Debug, Clone, Copy)]
pub struct ShortcutContext {
    pub has_scene: bool,
    pub classes: usize,
    pub adapting: bool,
    /// A validation sample is open: digits label its point on show.
    pub labelling_sample: bool,
}

/// The commands of the keys pressed this frame (the keys are consumed).
pub fn commands_for_keys(ctx: &egui::Context, state: ShortcutContext) -> Vec<AppCommand> {
    let mut out = Vec::new();
    let pressed = |k: Key| ctx.input_mut(|i| i.consume_key(Modifiers::NONE, k));
    // Redo first: `consume_key` ignores Shift, so Ctrl+Z would also take
    // Ctrl+Shift+Z.
    let redo = ctx.input_mut(|i| {
        i.consume_key(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z)
            || i.consume_key(Modifiers::COMMAND, Key::Y)
    });
    let undo = ctx.input_mut(|i| i.consume_key(Modifiers::COMMAND, Key::Z));
    if redo {
        out.push(AppCommand::Label(Command::Redo));
    } else if undo {
        out.push(AppCommand::Label(Command::Undo));
    }
    for (key, tool) in [
        (Key::B, Tool::Brush),
        (Key::E, Tool::Eraser),
        (Key::I, Tool::Inspect),
    ] {
        if pressed(key) {
            out.push(AppCommand::SetTool(tool));
        }
    }
    if pressed(Key::OpenBracket) {
        out.push(AppCommand::StepBrush(false));
    }
    if pressed(Key::CloseBracket) {
        out.push(AppCommand::StepBrush(true));
    }
    let digits = [
        Key::Num1,
        Key::Num2,
        Key::Num3,
        Key::Num4,
        Key::Num5,
        Key::Num6,
        Key::Num7,
        Key::Num8,
        Key::Num9,
    ];
    for (i, k) in digits.into_iter().enumerate() {
        if pressed(k) && i < state.classes {
            let class = (i + 1) as u8;
            out.push(if state.labelling_sample {
                AppCommand::SetSampleReference(Some(class))
            } else {
                AppCommand::SelectClass(class)
            });
        }
    }
    if pressed(Key::L) {
        out.push(AppCommand::ToggleLayer(LayerId::TrainLabels));
    }
    if pressed(Key::M) {
        out.push(AppCommand::ToggleLayer(LayerId::ClassMap));
    }
    if pressed(Key::N) {
        out.push(AppCommand::NextSuggestion);
    }
    // Save As first: `consume_key` ignores Shift.
    if ctx.input_mut(|i| i.consume_key(Modifiers::COMMAND | Modifiers::SHIFT, Key::S)) {
        out.push(AppCommand::PickFile(FileAction::SaveProjectAs));
    } else if ctx.input_mut(|i| i.consume_key(Modifiers::COMMAND, Key::S)) {
        out.push(AppCommand::SaveProject);
    }
    if ctx.input_mut(|i| i.consume_key(Modifiers::COMMAND, Key::O)) {
        out.push(AppCommand::PickFile(FileAction::OpenProject));
    }
    if ctx.input_mut(|i| i.consume_key(Modifiers::COMMAND, Key::Q)) {
        out.push(AppCommand::Quit { confirmed: false });
    }
    if ctx.input_mut(|i| i.consume_key(Modifiers::SHIFT, Key::Slash))
        || ctx.input(|i| {
            i.events
                .iter()
                .any(|e| matches!(e, egui::Event::Text(t) if t == "?"))
        })
    {
        out.push(AppCommand::ToggleShortcuts);
    }
    if !state.has_scene {
        return out;
    }
    if pressed(Key::F) {
        out.push(AppCommand::FitView);
    }
    // Run keys: Ctrl+Shift+Enter before Ctrl+Enter (`consume_key` ignores
    // Shift).
    let run_adapt =
        ctx.input_mut(|i| i.consume_key(Modifiers::COMMAND | Modifiers::SHIFT, Key::Enter));
    let run_classify = ctx.input_mut(|i| i.consume_key(Modifiers::COMMAND, Key::Enter));
    if run_adapt && !state.adapting {
        out.push(AppCommand::Adapt);
    } else if run_classify {
        out.push(AppCommand::Classify);
    }
    if pressed(Key::Escape) {
        out.push(AppCommand::CancelJobs);
    }
    let mut pan = [0.0f32; 2];
    for (key, dx, dy) in [
        (Key::ArrowLeft, ARROW_PAN, 0.0),
        (Key::ArrowRight, -ARROW_PAN, 0.0),
        (Key::ArrowUp, 0.0, ARROW_PAN),
        (Key::ArrowDown, 0.0, -ARROW_PAN),
    ] {
        if pressed(key) {
            pan[0] += dx;
            pan[1] += dy;
        }
    }
    if pan != [0.0, 0.0] {
        out.push(AppCommand::Pan(pan));
    }
    if pressed(Key::PageUp) {
        out.push(AppCommand::StepZoom(true));
    }
    if pressed(Key::PageDown) {
        out.push(AppCommand::StepZoom(false));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The commands of one frame in which `key` is pressed with `modifiers`.
    fn commands_of(key: Key, modifiers: Modifiers, state: ShortcutContext) -> Vec<AppCommand> {
        let ctx = egui::Context::default();
        let input = egui::RawInput {
            modifiers,
            events: vec![egui::Event::Key {
                key,
                physical_key: None,
                pressed: true,
                repeat: false,
                modifiers,
            }],
            ..Default::default()
        };
        let mut got = Vec::new();
        let _ = ctx.run_ui(input, |ui| got = commands_for_keys(ui.ctx(), state));
        got
    }

    #[test]
    fn ctrl_q_asks_to_quit_with_or_without_a_scene() {
        for has_scene in [false, true] {
            let state = ShortcutContext {
                has_scene,
                classes: 2,
                adapting: false,
                labelling_sample: false,
            };
            let got = commands_of(Key::Q, Modifiers::COMMAND, state);
            assert!(
                got.iter()
                    .any(|c| matches!(c, AppCommand::Quit { confirmed: false })),
                "{got:?}"
            );
            // Q alone does nothing.
            assert!(commands_of(Key::Q, Modifiers::NONE, state).is_empty());
        }
    }

    #[test]
    fn digits_pick_the_brush_class_or_label_the_sample_point_on_show() {
        let mut state = ShortcutContext {
            has_scene: true,
            classes: 2,
            adapting: false,
            labelling_sample: false,
        };
        let got = commands_of(Key::Num2, Modifiers::NONE, state);
        assert!(matches!(got[..], [AppCommand::SelectClass(2)]), "{got:?}");
        state.labelling_sample = true;
        let got = commands_of(Key::Num2, Modifiers::NONE, state);
        assert!(
            matches!(got[..], [AppCommand::SetSampleReference(Some(2))]),
            "{got:?}"
        );
        // A digit beyond the classes does nothing.
        assert!(commands_of(Key::Num3, Modifiers::NONE, state).is_empty());
    }
}
