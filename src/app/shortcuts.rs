//! Keyboard shortcuts of the window and the theme chooser of the top bar.

use super::{ProjectsState, UiCommand, WorkbenchApp};
use crate::runtime::training::TrainingCommand;

impl WorkbenchApp {
    /// Ctrl+N new project, F5 rescan, Ctrl+. stop the training job. (Ctrl+Enter, start
    /// training, belongs to the Training tab, which holds the settings; Up/Down to the
    /// project list, then to the central view, then to [`Self::project_arrows`].)
    pub(super) fn shortcuts(&mut self, ctx: &egui::Context) {
        use egui::{Key, KeyboardShortcut, Modifiers};
        let new = KeyboardShortcut::new(Modifiers::COMMAND, Key::N);
        if ctx.input_mut(|i| i.consume_shortcut(&new)) {
            self.commands.push(UiCommand::OpenNewProject(None));
        }
        let stop = crate::ui::training::KeyboardShortcuts::stop();
        if ctx.input_mut(|i| i.consume_shortcut(&stop)) {
            self.commands.push(TrainingCommand::Stop.into());
        }
        if ctx.input_mut(|i| i.consume_key(Modifiers::NONE, Key::F5)) {
            self.commands.push(UiCommand::RescanProjects);
        }
    }

    /// After the views are drawn: Up/Down that neither the project list (pointer over it)
    /// nor the central view (the Inspector's grid) took move through the project list,
    /// unless a widget has the keyboard focus or a dialog is open.
    pub(super) fn project_arrows(&mut self, ctx: &egui::Context) {
        let typing = ctx.memory(|m| m.focused().is_some());
        let ProjectsState::Ready(rows) = &self.projects else {
            return;
        };
        if typing || self.new_project.is_open() {
            return;
        }
        let step = crate::ui::project_list::arrow_step(ctx);
        if let Some(dir) =
            crate::ui::project_list::step_project(rows, self.selected.as_deref(), step)
        {
            self.selected = Some(dir);
        }
    }
}

/// Dark / light / follow-the-system theme choice (kept by egui's persisted options).
pub(super) fn theme_ui(ui: &mut egui::Ui) {
    use egui::ThemePreference;
    let mut preference = ui.ctx().options(|o| o.theme_preference);
    let before = preference;
    crate::ui::labelled::labelled(ui, "Theme", |ui| {
        egui::ComboBox::from_id_salt("theme")
            .selected_text(match preference {
                ThemePreference::Dark => "Dark",
                ThemePreference::Light => "Light",
                ThemePreference::System => "System",
            })
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut preference, ThemePreference::Dark, "Dark");
                ui.selectable_value(&mut preference, ThemePreference::Light, "Light");
                ui.selectable_value(
                    &mut preference,
                    ThemePreference::System,
                    "Follow the system",
                );
            })
            .response
    });
    if preference != before {
        ui.ctx().set_theme(preference);
    }
}
