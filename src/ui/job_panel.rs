//! The running job seen from the Training tab of another project: its project, how far it
//! is (epoch and step, time left, a progress bar) and "Show it", which selects the job's
//! project; so switching projects while a job runs never hides it.

use std::path::{Path, PathBuf};

use crate::runtime::projects::ProjectsState;
use crate::runtime::study::StudyRuntime;
use crate::runtime::training::TrainingRuntime;
use crate::ui::job_indicator::running_job;

/// Draws the panel when a job runs in a project other than the one at `here`; returns the
/// job's project folder when "Show it" was clicked.
pub fn job_panel_ui(
    ui: &mut egui::Ui,
    training: &TrainingRuntime,
    study: &StudyRuntime,
    projects: &ProjectsState,
    here: &Path,
) -> Option<PathBuf> {
    let job = running_job(training, study)?;
    let dir = job.dir.filter(|dir| *dir != here)?;
    let title = match projects {
        ProjectsState::Ready(rows) => rows.iter().find(|r| r.dir == dir).map(|r| r.title()),
        _ => None,
    }
    .unwrap_or_else(|| dir.display().to_string());
    let mut show = false;
    egui::Frame::group(ui.style())
        .fill(ui.visuals().faint_bg_color)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                ui.spinner();
                ui.strong(format!("A job runs in project '{title}'"));
            });
            ui.label(format!("Now: {}", job.text));
            if let Some(live) = job.live.filter(|l| l.epochs > 0) {
                let step_in_epoch = live
                    .steps_done
                    .saturating_sub(live.epoch * live.steps_per_epoch);
                ui.label(format!(
                    "Epoch {} of {}, step {} of {}",
                    live.epoch + 1,
                    live.epochs,
                    step_in_epoch,
                    live.steps_per_epoch
                ));
                ui.add(egui::ProgressBar::new(live.fraction()).show_percentage());
            }
            if let Some((done, total)) = job.steps {
                let fraction = done as f32 / total.max(1) as f32;
                ui.add(egui::ProgressBar::new(fraction).show_percentage());
            }
            ui.horizontal(|ui| {
                show = ui
                    .button("Show it")
                    .on_hover_text(format!("Select '{title}' to follow the job"))
                    .clicked();
                ui.label("One job runs at a time: this project can train when it ends.");
            });
        });
    ui.add_space(4.0);
    show.then(|| dir.to_owned())
}
