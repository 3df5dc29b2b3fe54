//! Saving the Training tab's settings into the project file on a worker, so they survive a
//! restart. Saves may overlap: the newest edit of each project is the one left on disk.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use super::{AppEvent, WorkbenchApp};
use crate::project::{TrainingSettings, update_project};

impl WorkbenchApp {
    /// Saves `settings` as the next run's settings of the project in `dir`, unless a newer
    /// save of that project overtakes this one.
    pub(super) fn save_training_settings(
        &mut self,
        ctx: &egui::Context,
        dir: PathBuf,
        settings: TrainingSettings,
    ) {
        let newest = self
            .training
            .settings_saves
            .newest
            .entry(dir.clone())
            .or_default()
            .clone();
        let mine = newest.fetch_add(1, Ordering::SeqCst) + 1;
        self.spawn(ctx, "project-save", move || {
            let saved = update_project(&dir, |project| {
                if newest.load(Ordering::SeqCst) == mine {
                    project.set_training(settings);
                }
            })
            .map(Box::new)
            .map_err(|e| e.to_string());
            AppEvent::ProjectSaved(dir, saved)
        });
    }
}
