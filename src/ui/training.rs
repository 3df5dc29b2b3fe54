//! The Training tab of the selected project: settings on the left (saved into the project
//! as they change); on the right the job controls (Start, Pause, Stop, LR finder), progress
//! with ETA and throughput, the live charts, the log, and the project's runs, whose stored
//! curves show when one is selected and which can be resumed or exported. Everything runs on
//! workers through [`TrainingCommand`]s; this view only reads the runtime state.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::runtime::projects::ProjectRow;
use crate::runtime::runs::RunCatalogue;
use crate::runtime::training::{LiveRun, LiveStatus, TrainingCommand, TrainingRuntime};
use crate::runtime::{FactsCache, Loading, UiCommand};
use crate::train::catalogue::DamagedRun;
use crate::train::status::RunState;
use crate::train::{Monitor, TrainConfig};
use crate::ui::export_dialog::ExportDialog;
use crate::ui::training_plots::{curves_ui, lr_finder_ui};
use crate::ui::training_settings::{Draft, settings_ui};

/// The Training tab.
#[derive(Debug, Default)]
pub struct TrainingView {
    /// The settings new drafts start from (besides the project's backbone and input size);
    /// `None`: the project's own defaults (`TrainConfig::for_project`).
    template: Option<TrainConfig>,
    /// The next run's settings per project folder.
    drafts: HashMap<PathBuf, Draft>,
    /// The settings as last read from or sent to each project file.
    saved: HashMap<PathBuf, Draft>,
    /// The stored run whose curves are shown instead of the live ones.
    selected_run: Option<(PathBuf, String)>,
    /// The export window.
    export: ExportDialog,
    /// Projects whose newest run was already shown when the tab first listed them.
    auto_selected: HashSet<PathBuf>,
    /// The run whose deletion waits for the user's confirmation.
    confirm_delete: Option<(PathBuf, String)>,
}

impl TrainingView {
    /// A view whose drafts start from `template` (tests, demos).
    pub fn with_template(template: TrainConfig) -> Self {
        Self {
            template: Some(template),
            ..Self::default()
        }
    }

    /// The settings of the project in `dir`, once the tab was shown for it.
    pub fn draft(&self, dir: &Path) -> Option<&Draft> {
        self.drafts.get(dir)
    }

    /// Draws the tab for `row`.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        row: &ProjectRow,
        facts: &FactsCache,
        runtime: &TrainingRuntime,
        runs: &RunCatalogue,
        commands: &mut Vec<UiCommand>,
    ) {
        let open = match &row.project {
            Ok(open) => open,
            Err(message) => {
                ui.colored_label(ui.visuals().error_fg_color, message);
                return;
            }
        };
        let project = &open.project;
        if runs.get(&row.dir).is_none() {
            commands.push(UiCommand::ListRuns(row.dir.clone()));
        }
        self.show_newest_run(&row.dir, runtime, runs, commands);
        let template = &self.template;
        let draft = self
            .drafts
            .entry(row.dir.clone())
            .or_insert_with(|| match &project.training {
                Some(saved) => Draft::from_saved(saved, &project.backbone, project.input_size_px),
                None => match template {
                    Some(template) => {
                        let mut draft =
                            Draft::for_project(template, &project.backbone, project.input_size_px);
                        // A template that monitors the loss takes the task's own default.
                        if draft.config.monitor == Monitor::default() {
                            draft.config.monitor = Monitor::new(
                                crate::train::train_task(project.task).default_monitor(),
                            );
                        }
                        draft
                    }
                    None => Draft::from_data(project),
                },
            });
        self.saved
            .entry(row.dir.clone())
            .or_insert_with(|| draft.clone());
        let data_reasons =
            crate::train::data_defaults::data_defaults(&project.dataset, project.task).reasons;
        egui::Panel::left("training_settings_panel")
            .resizable(true)
            .default_size(330.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("training_settings_scroll")
                    .show(ui, |ui| {
                        settings_ui(
                            ui,
                            draft,
                            (project.task, &data_reasons),
                            (facts, &runtime.weights),
                            commands,
                        )
                    });
            });
        let start = KeyboardShortcuts::start();
        let can_start = !runtime.busy() && row.data_present;
        if can_start && ui.input_mut(|i| i.consume_shortcut(&start)) {
            self.start(row, commands);
        }
        egui::ScrollArea::vertical()
            .id_salt("training_main_scroll")
            .show(ui, |ui| {
                self.controls_ui(ui, row, runtime, can_start, commands);
                self.lr_finder_section_ui(ui, &row.dir, runtime);
                self.live_ui(ui, &row.dir, runtime);
                ui.separator();
                self.runs_ui(ui, &row.dir, runs, runtime.busy(), commands);
            });
        self.export
            .ui(ui.ctx(), &runtime.export, runtime.busy(), commands);
        self.save_changed_settings(ui.ctx(), &row.dir, commands);
    }

    /// Once an edit is over (no pointer button held, so a drag saves once), changed
    /// settings are saved into the project.
    fn save_changed_settings(
        &mut self,
        ctx: &egui::Context,
        dir: &Path,
        commands: &mut Vec<UiCommand>,
    ) {
        let (Some(draft), Some(saved)) = (self.drafts.get(dir), self.saved.get_mut(dir)) else {
            return;
        };
        if draft == saved || ctx.input(|i| i.pointer.any_down()) {
            return;
        }
        saved.clone_from(draft);
        commands.push(
            TrainingCommand::SaveSettings {
                dir: dir.to_owned(),
                settings: Box::new(draft.to_saved()),
            }
            .into(),
        );
    }

    /// The first time the project's runs are listed, and no job of this session trains it,
    /// the newest run's stored curves are shown.
    fn show_newest_run(
        &mut self,
        dir: &Path,
        runtime: &TrainingRuntime,
        runs: &RunCatalogue,
        commands: &mut Vec<UiCommand>,
    ) {
        let Some(runs) = runs.ready(dir) else {
            return;
        };
        if !self.auto_selected.insert(dir.to_owned()) {
            return;
        }
        let live_here = runtime.live.as_ref().is_some_and(|l| l.dir == dir);
        if let (false, None, Some(newest)) = (live_here, &self.selected_run, runs.last()) {
            self.selected_run = Some((dir.to_owned(), newest.id.clone()));
            commands.push(
                TrainingCommand::LoadHistory {
                    dir: dir.to_owned(),
                    run_id: newest.id.clone(),
                }
                .into(),
            );
        }
    }

    fn start(&mut self, row: &ProjectRow, commands: &mut Vec<UiCommand>) {
        if let Some(draft) = self.drafts.get(&row.dir) {
            self.selected_run = None;
            commands.push(
                TrainingCommand::Start {
                    dir: row.dir.clone(),
                    config: Box::new(draft.to_config()),
                }
                .into(),
            );
        }
    }

    fn controls_ui(
        &mut self,
        ui: &mut egui::Ui,
        row: &ProjectRow,
        runtime: &TrainingRuntime,
        can_start: bool,
        commands: &mut Vec<UiCommand>,
    ) {
        let live = runtime.live.as_ref().filter(|l| l.dir == row.dir);
        let status = live.map(|l| &l.status);
        ui.horizontal(|ui| {
            let start = ui
                .add_enabled(can_start, egui::Button::new("Start training"))
                .on_hover_text("Ctrl+Enter: a new run with these settings");
            if start.clicked() {
                self.start(row, commands);
            }
            let running = matches!(status, Some(LiveStatus::Running));
            if ui
                .add_enabled(running, egui::Button::new("Pause"))
                .on_hover_text("Hold before the next batch")
                .clicked()
            {
                commands.push(TrainingCommand::Pause.into());
            }
            let paused = matches!(status, Some(LiveStatus::Paused));
            if ui
                .add_enabled(paused, egui::Button::new("Continue"))
                .clicked()
            {
                commands.push(TrainingCommand::Continue.into());
            }
            let active = live.is_some_and(LiveRun::is_active);
            if ui
                .add_enabled(active, egui::Button::new("Stop"))
                .on_hover_text("Ctrl+. — ends after the current batch; the run can be resumed")
                .clicked()
            {
                commands.push(TrainingCommand::Stop.into());
            }
            ui.separator();
            let find = ui
                .add_enabled(can_start, egui::Button::new("Find learning rate"))
                .on_hover_text("A short sweep of rising learning rates on a throw-away model");
            if find.clicked()
                && let Some(draft) = self.drafts.get(&row.dir)
            {
                commands.push(
                    TrainingCommand::FindLr {
                        dir: row.dir.clone(),
                        config: Box::new(draft.to_config()),
                    }
                    .into(),
                );
            }
        });
        if !row.data_present {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                "The project's data folder is missing, so nothing can be trained.",
            );
        } else if runtime.busy() && live.is_none_or(|l| !l.is_active()) {
            ui.label("One job runs at a time: Start is free again when the running job ends.");
        }
    }

    fn lr_finder_section_ui(&mut self, ui: &mut egui::Ui, dir: &Path, runtime: &TrainingRuntime) {
        let Some((_, state)) = runtime.lr_find.as_ref().filter(|(d, _)| d == dir) else {
            return;
        };
        ui.separator();
        ui.strong("Learning-rate finder");
        match state {
            Loading::Running { done, total, since } => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    if *total == 0 {
                        ui.label("Sweeping learning rates: loading the data…");
                    } else {
                        ui.label(format!(
                            "Sweeping learning rates: {}",
                            crate::runtime::training::steps_left(*done, *total, Some(*since))
                        ));
                    }
                });
            }
            Loading::Failed(message) => {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    format!("The LR finder failed: {message}"),
                );
            }
            Loading::Ready(result) => {
                if lr_finder_ui(ui, result)
                    && let (Some(lr), Some(draft)) = (result.suggested_lr, self.drafts.get_mut(dir))
                {
                    draft.config.lr = lr;
                }
            }
        }
    }

    fn live_ui(&self, ui: &mut egui::Ui, dir: &Path, runtime: &TrainingRuntime) {
        if let Some((d, id)) = &self.selected_run
            && d == dir
        {
            ui.separator();
            ui.strong(format!("Stored history of {id}"));
            match runtime
                .history
                .as_ref()
                .filter(|(hd, hid, _)| hd == d && hid == id)
            {
                Some((_, _, Loading::Ready(curves))) => curves_ui(ui, id, curves),
                Some((_, _, Loading::Failed(message))) => {
                    ui.colored_label(ui.visuals().error_fg_color, message);
                }
                _ => {
                    ui.spinner();
                }
            }
            return;
        }
        let Some(live) = runtime.live.as_ref().filter(|l| l.dir == dir) else {
            ui.label("No run of this session yet: choose the settings and start training.");
            return;
        };
        ui.separator();
        progress_ui(ui, live);
        curves_ui(ui, "live", &live.curves);
        ui.collapsing("Log", |ui| {
            egui::ScrollArea::vertical()
                .id_salt("training_log")
                .max_height(140.0)
                .stick_to_bottom(true)
                .show(ui, |ui| {
                    for line in &live.log {
                        ui.monospace(line);
                    }
                });
        });
    }

    fn runs_ui(
        &mut self,
        ui: &mut egui::Ui,
        dir: &Path,
        runs: &RunCatalogue,
        busy: bool,
        commands: &mut Vec<UiCommand>,
    ) {
        ui.horizontal(|ui| {
            ui.strong("Runs");
            if ui.button("Refresh runs").clicked() {
                commands.push(UiCommand::ListRuns(dir.to_owned()));
            }
        });
        let damaged = runs.damaged(dir);
        let runs = match runs.get(dir) {
            None | Some(Loading::Running { .. }) => {
                ui.spinner();
                return;
            }
            Some(Loading::Failed(message)) => {
                ui.colored_label(ui.visuals().error_fg_color, message);
                return;
            }
            Some(Loading::Ready(runs)) => runs,
        };
        crate::ui::run_problems::run_problems_ui(ui, runs, damaged);
        self.damaged_runs_ui(ui, dir, damaged);
        if runs.is_empty() {
            if damaged.is_empty() {
                ui.label("No runs yet.");
            }
            self.confirm_delete_ui(ui, dir, commands);
            return;
        }
        // The table scrolls sideways on narrow windows, so its buttons stay reachable; the
        // bar is solid (always drawn) so that the scrolling shows.
        ui.scope(|ui| {
            ui.spacing_mut().scroll = egui::style::ScrollStyle::solid();
            egui::ScrollArea::horizontal()
                .id_salt("training_runs_scroll")
                .show(ui, |ui| {
                    egui::Grid::new("training_runs")
                        .num_columns(7)
                        .striped(true)
                        .spacing([12.0, 4.0])
                        .show(ui, |ui| {
                            for title in [
                                "Run", "Backbone", "Strategy", "Epochs", "Best", "Status", "",
                            ] {
                                ui.strong(title);
                            }
                            ui.end_row();
                            for run in runs.iter() {
                                let selected = self
                                    .selected_run
                                    .as_ref()
                                    .is_some_and(|(d, id)| d == dir && *id == run.id);
                                let pick = ui
                                    .selectable_label(selected, &run.id)
                                    .on_hover_text("Show this run's stored curves");
                                if pick.clicked() {
                                    if selected {
                                        self.selected_run = None;
                                    } else {
                                        self.selected_run = Some((dir.to_owned(), run.id.clone()));
                                        commands.push(
                                            TrainingCommand::LoadHistory {
                                                dir: dir.to_owned(),
                                                run_id: run.id.clone(),
                                            }
                                            .into(),
                                        );
                                    }
                                }
                                ui.label(&run.backbone);
                                ui.label(&run.strategy);
                                ui.label(format!("{}/{}", run.epochs.0, run.epochs.1));
                                ui.label(
                                    run.best.as_ref().map_or("–".to_owned(), |(name, v)| {
                                        format!("{name} {v:.4}")
                                    }),
                                );
                                ui.label(run.status.label());
                                ui.horizontal(|ui| {
                                    let resume = ui
                                        .add_enabled(
                                            run.resumable && !busy,
                                            egui::Button::new(format!("Resume {}", run.id)),
                                        )
                                        .on_hover_text("Go on from the last checkpoint");
                                    if resume.clicked() {
                                        self.selected_run = None;
                                        commands.push(
                                            TrainingCommand::ResumeRun {
                                                dir: dir.to_owned(),
                                                run_id: run.id.clone(),
                                            }
                                            .into(),
                                        );
                                    }
                                    let exportable = run.epochs.0 > 0;
                                    if ui
                                        .add_enabled(
                                            exportable,
                                            egui::Button::new(format!("Export {}…", run.id)),
                                        )
                                        .clicked()
                                    {
                                        self.export.open(dir.to_owned(), run.id.clone());
                                    }
                                    let deletable = run.status != RunState::Running;
                                    if ui
                                        .add_enabled(
                                            deletable,
                                            egui::Button::new(format!("Delete {}…", run.id)),
                                        )
                                        .on_hover_text("Move the run to the project's trash")
                                        .on_disabled_hover_text("Stop the run first")
                                        .clicked()
                                    {
                                        self.confirm_delete =
                                            Some((dir.to_owned(), run.id.clone()));
                                    }
                                });
                                ui.end_row();
                            }
                        });
                });
        });
        self.confirm_delete_ui(ui, dir, commands);
    }

    /// A delete button for each run folder that cannot be read (it can be neither shown nor
    /// resumed, but it can go to the trash).
    fn damaged_runs_ui(&mut self, ui: &mut egui::Ui, dir: &Path, damaged: &[DamagedRun]) {
        for run in damaged {
            ui.horizontal(|ui| {
                ui.label(format!("{} (cannot be read)", run.id));
                if ui
                    .button(format!("Delete {}…", run.id))
                    .on_hover_text("Move the run folder to the project's trash")
                    .clicked()
                {
                    self.confirm_delete = Some((dir.to_owned(), run.id.clone()));
                }
            });
        }
    }

    /// Asks before a run goes to the trash.
    fn confirm_delete_ui(&mut self, ui: &mut egui::Ui, dir: &Path, commands: &mut Vec<UiCommand>) {
        let Some((_, run_id)) = self.confirm_delete.clone().filter(|(d, _)| d == dir) else {
            return;
        };
        ui.group(|ui| {
            ui.label(format!(
                "Move {run_id} to the project's trash? Its checkpoints, history and exports go \
                 with it; it can be moved back from .trash/runs/."
            ));
            ui.horizontal(|ui| {
                if ui.button(format!("Move {run_id} to trash")).clicked() {
                    if self
                        .selected_run
                        .as_ref()
                        .is_some_and(|(_, id)| *id == run_id)
                    {
                        self.selected_run = None;
                    }
                    commands.push(
                        TrainingCommand::DeleteRun {
                            dir: dir.to_owned(),
                            run_id: run_id.clone(),
                        }
                        .into(),
                    );
                    self.confirm_delete = None;
                }
                if ui.button(format!("Keep {run_id}")).clicked() {
                    self.confirm_delete = None;
                }
            });
        });
    }
}

/// The job's state, its progress bar with ETA and throughput, and a failure's reason.
fn progress_ui(ui: &mut egui::Ui, live: &LiveRun) {
    let run = live.run_id.as_deref().unwrap_or("new run");
    match &live.status {
        LiveStatus::Failed(reason) => {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("Training failed: {reason}"),
            );
        }
        LiveStatus::Preparing => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Loading the data and building the model…");
            });
        }
        status => {
            let what = match status {
                LiveStatus::Running => "training".to_owned(),
                LiveStatus::Paused => "paused".to_owned(),
                LiveStatus::Stopping => "stopping after this batch…".to_owned(),
                LiveStatus::Finished(outcome) => outcome.replace('_', " "),
                _ => String::new(),
            };
            ui.label(format!("{run}: {what}"));
        }
    }
    if live.epochs == 0 {
        return;
    }
    let step_in_epoch = live
        .steps_done
        .saturating_sub(live.epoch * live.steps_per_epoch);
    let paused = if live.status == LiveStatus::Paused {
        " (paused)"
    } else {
        ""
    };
    let eta = live.eta_secs.map_or(String::new(), |s| {
        format!(" · ETA {}{paused}", format_secs(s))
    });
    ui.label(format!(
        "epoch {}/{} · step {}/{} · {:.0} images/s{eta}",
        live.epoch + 1,
        live.epochs,
        step_in_epoch,
        live.steps_per_epoch,
        live.images_per_sec
    ));
    ui.add(
        egui::ProgressBar::new(live.fraction())
            .show_percentage()
            .animate(matches!(live.status, LiveStatus::Running)),
    );
}

/// `75.2` → `1m 15s`.
fn format_secs(secs: f64) -> String {
    let secs = secs.max(0.0).round() as u64;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// The Training tab's keyboard shortcuts.
pub struct KeyboardShortcuts;

impl KeyboardShortcuts {
    /// Ctrl+Enter: start training.
    pub fn start() -> egui::KeyboardShortcut {
        egui::KeyboardShortcut::new(egui::Modifiers::COMMAND, egui::Key::Enter)
    }

    /// Ctrl+.: stop the running job.
    pub fn stop() -> egui::KeyboardShortcut {
        egui::KeyboardShortcut::new(egui::Modifiers::COMMAND, egui::Key::Period)
    }
}

#[cfg(test)]
mod tests {
    use super::format_secs;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_secs(5.4), "5s");
        assert_eq!(format_secs(75.2), "1m 15s");
        assert_eq!(format_secs(7260.0), "2h 01m");
    }
}
