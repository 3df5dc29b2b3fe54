//! The app-wide job indicator in the top bar: which libtorch job runs (a training run, a
//! study, the learning-rate finder, an export), how far it is and the time left; a click
//! shows the job's project on its tab, so a job stays in reach from any project or tab.

use std::path::{Path, PathBuf};

use crate::runtime::CentralTab;
use crate::runtime::study::StudyRuntime;
use crate::runtime::training::{LiveRun, LiveStatus, TrainingRuntime};

/// The libtorch job running now, as the indicator and the job panel show it.
pub struct RunningJob<'a> {
    /// The job's project folder (none for an export).
    pub dir: Option<&'a Path>,
    /// The tab that shows the job.
    pub tab: CentralTab,
    /// "study s-001, run-002 35% of 10 epoch(s), about 1 min left", "training …".
    pub text: String,
    /// The training run of a training job or a study.
    pub live: Option<&'a LiveRun>,
    /// Steps done and planned of a learning-rate finder.
    pub steps: Option<(usize, usize)>,
}

/// The job running now (a study, a training run, the learning-rate finder, an export).
pub fn running_job<'a>(
    training: &'a TrainingRuntime,
    study: &'a StudyRuntime,
) -> Option<RunningJob<'a>> {
    let active = training.live.as_ref().filter(|l| l.is_active());
    if let Some((dir, id)) = &study.running {
        let run = active
            .map(|l| format!(", {}", progress(l)))
            .unwrap_or_default();
        return Some(RunningJob {
            dir: Some(dir),
            tab: CentralTab::Study,
            text: format!("study {}{run}", id.as_deref().unwrap_or("starting")),
            live: active,
            steps: None,
        });
    }
    if let Some(live) = active.filter(|_| training.busy()) {
        return Some(RunningJob {
            dir: Some(&live.dir),
            tab: CentralTab::Training,
            text: format!("training {}", progress(live)),
            live: Some(live),
            steps: None,
        });
    }
    if let Some((dir, state)) = &training.lr_find
        && state.is_running()
    {
        let (steps, text) = match state {
            crate::runtime::Loading::Running {
                done, total, since, ..
            } if *total > 0 => (
                Some((*done, *total)),
                format!(
                    ", {}",
                    crate::runtime::training::steps_left(*done, *total, Some(*since))
                ),
            ),
            _ => (None, String::new()),
        };
        return Some(RunningJob {
            dir: Some(dir),
            tab: CentralTab::Training,
            text: format!("finding the learning rate{text}"),
            live: None,
            steps,
        });
    }
    training.export.is_running().then(|| RunningJob {
        dir: None,
        tab: CentralTab::Training,
        text: "exporting".to_owned(),
        live: None,
        steps: None,
    })
}

/// Draws the indicator (nothing when no job runs); returns the project and tab to show when
/// it was clicked.
pub fn job_indicator_ui(
    ui: &mut egui::Ui,
    training: &TrainingRuntime,
    study: &StudyRuntime,
) -> Option<(PathBuf, CentralTab)> {
    let job = running_job(training, study)?;
    ui.spinner();
    let text = format!("Job: {}", job.text);
    let Some(dir) = job.dir else {
        ui.label(text);
        return None;
    };
    ui.button(text)
        .on_hover_text("Show the job's project and tab")
        .clicked()
        .then(|| (dir.to_owned(), job.tab))
}

/// "run-004 35% of 10 epoch(s), about 1 min left" (paused or preparing when so).
fn progress(live: &LiveRun) -> String {
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
