//! The app-wide job indicator in the top bar: which libtorch job runs (a training run, a
//! study, the learning-rate finder, an export), how far it is and the time left; a click
//! shows the job's project on its tab, so a job stays in reach from any project or tab.

use std::path::PathBuf;

use crate::runtime::CentralTab;
use crate::runtime::study::StudyRuntime;
use crate::runtime::training::{LiveStatus, TrainingRuntime};

/// Draws the indicator (nothing when no job runs); returns the project and tab to show when
/// it was clicked.
pub fn job_indicator_ui(
    ui: &mut egui::Ui,
    training: &TrainingRuntime,
    study: &StudyRuntime,
) -> Option<(PathBuf, CentralTab)> {
    if let Some((dir, id)) = &study.running {
        let run = training
            .live
            .as_ref()
            .filter(|l| l.is_active())
            .map(|l| format!(", {}", progress(l)))
            .unwrap_or_default();
        let text = format!("Job: study {}{run}", id.as_deref().unwrap_or("starting"));
        return clicked(ui, text, dir, CentralTab::Study);
    }
    if let Some(live) = training.live.as_ref().filter(|_| training.busy())
        && live.is_active()
    {
        let text = format!("Job: training {}", progress(live));
        return clicked(ui, text, &live.dir, CentralTab::Training);
    }
    if let Some((dir, state)) = &training.lr_find
        && state.is_running()
    {
        let steps = match state {
            crate::runtime::Loading::Running {
                done, total, since, ..
            } if *total > 0 => format!(
                ", {}",
                crate::runtime::training::steps_left(*done, *total, Some(*since))
            ),
            _ => String::new(),
        };
        let text = format!("Job: finding the learning rate{steps}");
        return clicked(ui, text, dir, CentralTab::Training);
    }
    if training.export.is_running() {
        ui.spinner();
        ui.label("Job: exporting");
    }
    None
}

/// "run-004 35% of 10 epoch(s), about 1 min left" (paused or preparing when so).
fn progress(live: &crate::runtime::training::LiveRun) -> String {
    let run = live.run_id.as_deref().unwrap_or("new run");
    match live.status {
        LiveStatus::Preparing => format!("{run} preparing"),
        LiveStatus::Paused => format!("{run} paused at {:.0}%", live.fraction() * 100.0),
        LiveStatus::Stopping => format!("{run} stopping"),
        _ => {
            let left = live
                .eta_secs
                .map(|s| {
                    if s >= 90.0 {
                        format!(", about {:.0} min left", s / 60.0)
                    } else {
                        format!(", about {s:.0} s left")
                    }
                })
                .unwrap_or_default();
            format!(
                "{run} {:.0}% of {} epoch(s){left}",
                live.fraction() * 100.0,
                live.epochs
            )
        }
    }
}

fn clicked(
    ui: &mut egui::Ui,
    text: String,
    dir: &std::path::Path,
    tab: CentralTab,
) -> Option<(PathBuf, CentralTab)> {
    ui.spinner();
    ui.button(text)
        .on_hover_text("Show the job's project and tab")
        .clicked()
        .then(|| (dir.to_owned(), tab))
}
