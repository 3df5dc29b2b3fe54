//! The Study tab: choose backbones and strategies and start a study (its runs train one
//! after another as the Training tab's job), stop or resume it, and read its leaderboard as
//! the runs finish: each run's metric with its bootstrap interval and the paired verdict
//! against the best, the before-training scores beside it with Kendall's τ, and a Pareto
//! plot of metric against latency whose points open their run in the Inspector.

use std::path::{Path, PathBuf};

use egui_plot::{Line, MarkerShape, PlotPoint, Points};

use crate::runtime::UiCommand;
use crate::runtime::inspect::{InspectCommand, Loading};
use crate::runtime::projects::ProjectRow;
use crate::runtime::study::{StudyCommand, StudyRequest, StudyRuntime};
use crate::runtime::training::TrainingRuntime;
use crate::study::leaderboard::{LeaderRow, Leaderboard, pareto_front};
use crate::ui::palette;
use crate::ui::plot_style::chart;

/// How often a study with unfinished runs that no job of this window trains is read again
/// (other processes, `train --spec` on a cluster, may be filling it).
const LANDING_POLL: std::time::Duration = std::time::Duration::from_secs(10);

/// How close (points) a click must be to a point of the Pareto plot.
const CLICK_RADIUS: f32 = 12.0;

/// The strategies offered, by label.
const STRATEGIES: [(&str, &str); 3] = [
    ("probe", "Linear probe"),
    ("finetune", "Fine-tune"),
    ("staged", "Staged"),
];

/// The Study view's state.
#[derive(Default)]
pub struct StudyView {
    /// The project the choices below belong to.
    project: Option<PathBuf>,
    /// Backbones offered (those with pretrained weights installed) and whether ticked.
    backbones: Vec<(String, bool)>,
    strategies: [bool; 3],
    control: bool,
    epochs: usize,
    /// The study shown.
    shown: Option<String>,
    /// Where the Pareto plot drew each run's point last frame (run id, screen position).
    points: Vec<(String, egui::Pos2)>,
    /// When the shown study was last read again for runs landing from elsewhere.
    polled: Option<std::time::Instant>,
}

impl StudyView {
    /// Where the Pareto plot drew each run's point in the last frame.
    pub fn pareto_points(&self) -> &[(String, egui::Pos2)] {
        &self.points
    }

    /// Lays out the tab for project `row`.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        row: &ProjectRow,
        study: &StudyRuntime,
        training: &TrainingRuntime,
        commands: &mut Vec<UiCommand>,
    ) {
        let dir = &row.dir;
        if self.project.as_ref() != Some(dir) {
            self.reset(dir, row);
            commands.push(StudyCommand::List(dir.clone()).into());
        }
        if self.backbones.is_empty()
            && let Some(installed) = &study.installed
        {
            self.offer(installed, row);
        }
        let studies: &[String] = match &study.studies {
            Some((d, ids)) if d == dir => ids,
            _ => &[],
        };
        if self.shown.is_none()
            && let Some(last) = studies.last()
        {
            self.show(dir, last, commands);
        }
        egui::ScrollArea::vertical().show(ui, |ui| {
            self.new_study_ui(ui, dir, study, training, commands);
            ui.separator();
            self.studies_ui(ui, dir, studies, study, commands);
            if let Some((d, id, board)) = &study.board
                && d == dir
                && self.shown.as_ref() == Some(id)
            {
                self.board_ui(ui, dir, id, board, study, training, commands);
            }
        });
    }

    fn reset(&mut self, dir: &Path, row: &ProjectRow) {
        self.project = Some(dir.to_owned());
        self.backbones.clear();
        self.strategies = [true, false, false];
        self.control = true;
        self.epochs = row
            .project
            .as_ref()
            .ok()
            .and_then(|p| p.project.training.as_ref().map(|t| t.config.epochs))
            .unwrap_or(crate::train::TrainConfig::default().epochs);
        self.shown = None;
        self.points.clear();
    }

    /// Offers the installed backbones, the project's own ticked (else the first).
    fn offer(&mut self, installed: &[String], row: &ProjectRow) {
        let own = row
            .project
            .as_ref()
            .ok()
            .map(|p| p.project.backbone.as_str());
        self.backbones = installed
            .iter()
            .map(|name| (name.clone(), Some(name.as_str()) == own))
            .collect();
        if !self.backbones.iter().any(|(_, t)| *t)
            && let Some(first) = self.backbones.first_mut()
        {
            first.1 = true;
        }
    }

    fn show(&mut self, dir: &Path, id: &str, commands: &mut Vec<UiCommand>) {
        self.shown = Some(id.to_owned());
        commands.push(StudyCommand::Show(dir.to_owned(), id.to_owned()).into());
    }

    fn new_study_ui(
        &mut self,
        ui: &mut egui::Ui,
        dir: &Path,
        study: &StudyRuntime,
        training: &TrainingRuntime,
        commands: &mut Vec<UiCommand>,
    ) {
        ui.heading("New study");
        ui.label(
            "Trains each chosen backbone with each strategy on the project's split, one run \
             after another; the first backbone also trains from random weights as the control.",
        );
        ui.horizontal_wrapped(|ui| {
            ui.label("Backbones:");
            for (name, ticked) in &mut self.backbones {
                ui.checkbox(ticked, name.as_str());
            }
        });
        ui.horizontal(|ui| {
            ui.label("Strategies:");
            for (ticked, (_, label)) in self.strategies.iter_mut().zip(STRATEGIES) {
                ui.checkbox(ticked, label);
            }
            ui.separator();
            ui.checkbox(&mut self.control, "From-scratch control");
            ui.separator();
            ui.label("Epochs:");
            ui.add(egui::DragValue::new(&mut self.epochs).range(1..=500));
        });
        let request = StudyRequest {
            backbones: self
                .backbones
                .iter()
                .filter(|(_, t)| *t)
                .map(|(n, _)| n.clone())
                .collect(),
            strategies: STRATEGIES
                .iter()
                .zip(self.strategies)
                .filter(|(_, t)| *t)
                .map(|((label, _), _)| (*label).to_owned())
                .collect(),
            control: self.control,
            epochs: self.epochs,
        };
        let runs =
            request.backbones.len() * request.strategies.len() + usize::from(request.control);
        ui.horizontal(|ui| {
            let ready = !request.backbones.is_empty() && !request.strategies.is_empty();
            let start = ui.add_enabled(
                ready && !training.busy(),
                egui::Button::new(format!("Start study ({runs} runs)")),
            );
            if start.clicked() {
                self.shown = None;
                commands.push(StudyCommand::Start(dir.to_owned(), request).into());
            }
            if study.is_running() && ui.button("Stop study").clicked() {
                commands.push(StudyCommand::Stop.into());
            }
            if training.busy() && !study.is_running() {
                ui.label("A training job is running: a study starts when it ends.");
            }
        });
        if study.is_running() {
            if let Some(live) = &training.live {
                ui.label(format!(
                    "Training {}: epoch {} of {}",
                    live.run_id.as_deref().unwrap_or("…"),
                    (live.epoch + 1).min(live.epochs.max(1)),
                    live.epochs
                ));
            }
            for line in study.log.iter().rev().take(6).rev() {
                ui.monospace(line);
            }
        }
    }

    fn studies_ui(
        &mut self,
        ui: &mut egui::Ui,
        dir: &Path,
        studies: &[String],
        study: &StudyRuntime,
        commands: &mut Vec<UiCommand>,
    ) {
        ui.horizontal_wrapped(|ui| {
            ui.label("Studies:");
            if studies.is_empty() {
                ui.label("none yet");
            }
            for id in studies {
                let selected = self.shown.as_ref() == Some(id);
                if ui.selectable_label(selected, id.as_str()).clicked() {
                    self.show(dir, id, commands);
                }
            }
            if let Some(id) = &self.shown
                && !study.is_running()
                && ui.button("Refresh").clicked()
            {
                commands.push(StudyCommand::Show(dir.to_owned(), id.clone()).into());
            }
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn board_ui(
        &mut self,
        ui: &mut egui::Ui,
        dir: &Path,
        id: &str,
        board: &Loading<Box<Leaderboard>>,
        study: &StudyRuntime,
        training: &TrainingRuntime,
        commands: &mut Vec<UiCommand>,
    ) {
        let board = match board {
            Loading::Ready(board) => board,
            state @ Loading::Running { .. } => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    let what = format!("Scoring the runs of {id} on the validation images");
                    crate::ui::progress::progress_bar(ui, &what, state, 520.0);
                });
                return;
            }
            Loading::Failed(message) => {
                ui.colored_label(ui.visuals().error_fg_color, message);
                return;
            }
        };
        let unfinished = board.rows.iter().any(|r| r.unfinished);
        if unfinished && !study.is_running() {
            // Runs may land from other processes: read the study again now and then.
            let due = self.polled.is_none_or(|at| at.elapsed() >= LANDING_POLL);
            if due {
                if self.polled.is_some() {
                    commands.push(StudyCommand::Show(dir.to_owned(), id.to_owned()).into());
                }
                self.polled = Some(std::time::Instant::now());
            }
            ui.ctx().request_repaint_after(LANDING_POLL);
        }
        if unfinished
            && !study.is_running()
            && ui
                .add_enabled(!training.busy(), egui::Button::new(format!("Resume {id}")))
                .clicked()
        {
            commands.push(StudyCommand::Resume(dir.to_owned(), id.to_owned()).into());
        }
        ui.heading(format!("{id}: {}", board.metric));
        ui.horizontal_top(|ui| {
            leaderboard_grid(ui, id, board);
            ui.add_space(16.0);
            ui.vertical(|ui| self.pareto_ui(ui, board, commands));
        });
        for row in &board.rows {
            if let Some(verdict) = &row.verdict {
                ui.label(verdict);
            }
        }
        for agreement in &board.agreement {
            match agreement.tau {
                Some(tau) => ui.label(format!(
                    "Before vs after training ({}, {} runs): Kendall's τ = {tau:.2}",
                    agreement.strategy, agreement.runs
                )),
                None if agreement.runs >= 2 => ui.label(format!(
                    "Before vs after training ({}): τ is not defined (ties)",
                    agreement.strategy
                )),
                None => continue,
            };
        }
        ui.label(
            "Scores before training are estimates from frozen embeddings; intervals are 95% \
             bootstrap intervals over the validation images.",
        );
        mismatch_ui(ui, id, board);
    }

    fn pareto_ui(&mut self, ui: &mut egui::Ui, board: &Leaderboard, commands: &mut Vec<UiCommand>) {
        let runs: Vec<(&LeaderRow, [f64; 2])> = board
            .rows
            .iter()
            .filter_map(|r| {
                let cost = r.before.as_ref()?.cost.as_ref()?;
                Some((r, [cost.float32.latency_ms_batch1, r.metric?]))
            })
            .collect();
        self.points.clear();
        if runs.is_empty() {
            return;
        }
        ui.label(format!(
            "{} against latency (ms per image, batch 1). Orange line: the runs no other \
             beats on both. Blue circles: pretrained, grey squares: from scratch. Click a \
             point to open its run.",
            board.metric
        ));
        let xy: Vec<[f64; 2]> = runs.iter().map(|(_, p)| *p).collect();
        let front = pareto_front(&xy.iter().map(|p| (p[0], p[1])).collect::<Vec<_>>());
        let mut line: Vec<[f64; 2]> = front.iter().map(|&i| xy[i]).collect();
        line.sort_by(|a, b| a[0].total_cmp(&b[0]));
        let width = ui.available_width().max(240.0);
        let response = chart(ui, "study pareto", "ms per image", &board.metric)
            .style(|plot| plot.height(280.0).width(width))
            .show(ui, |plot_ui| {
                plot_ui.line(Line::new("Pareto front", line).color(palette::ORANGE));
                for (row, point) in &runs {
                    let (color, shape) = if row.pretrained {
                        (palette::BLUE, MarkerShape::Circle)
                    } else {
                        (palette::GREY, MarkerShape::Square)
                    };
                    plot_ui.points(
                        Points::new(row.key.clone(), vec![*point])
                            .radius(5.0)
                            .shape(shape)
                            .color(color),
                    );
                    plot_ui.text(
                        egui_plot::Text::new(
                            row.key.clone(),
                            PlotPoint::new(point[0], point[1]),
                            format!("  {}", row.key),
                        )
                        .anchor(egui::Align2::LEFT_BOTTOM),
                    );
                }
            });
        let transform = response.transform;
        self.points = runs
            .iter()
            .filter_map(|(row, p)| {
                let at = transform.position_from_point(&PlotPoint::new(p[0], p[1]));
                Some((row.run_id.clone()?, at))
            })
            .collect();
        if response.response.clicked()
            && let Some(pos) = response.response.interact_pointer_pos()
            && let Some((run, _)) = self
                .points
                .iter()
                .filter(|(_, at)| at.distance(pos) <= CLICK_RADIUS)
                .min_by(|a, b| a.1.distance(pos).total_cmp(&b.1.distance(pos)))
        {
            commands.push(UiCommand::Inspect(InspectCommand::ShowInInspector(
                run.clone(),
                0,
            )));
        }
    }
}

/// The leaderboard as a grid, best first.
fn leaderboard_grid(ui: &mut egui::Ui, id: &str, board: &Leaderboard) {
    let text =
        |v: Option<f64>, digits: usize| v.map_or("–".to_owned(), |v| format!("{v:.digits$}"));
    egui::Grid::new(format!("leaderboard {id}"))
        .striped(true)
        .num_columns(9)
        .show(ui, |ui| {
            for title in [
                "run",
                "project run",
                "metric",
                "95% interval",
                "LogME",
                "k-NN",
                "training s",
                "ms/image",
                "export MB",
            ] {
                ui.strong(title);
            }
            ui.end_row();
            for row in &board.rows {
                let scores = row.before.as_ref().and_then(|b| b.scores.as_ref());
                let cost = row.before.as_ref().and_then(|b| b.cost.as_ref());
                ui.label(&row.key);
                ui.label(row.run_id.as_deref().unwrap_or("–"));
                ui.label(match row.metric {
                    Some(m) => format!("{m:.3}"),
                    None => row.state.clone(),
                });
                ui.label(
                    row.interval
                        .map_or("–".into(), |i| format!("{:.3} – {:.3}", i.low, i.high)),
                );
                ui.label(text(scores.map(|s| s.logme), 3));
                ui.label(text(scores.map(|s| s.knn_accuracy), 3));
                ui.label(format!("{:.1}", row.train_secs));
                ui.label(text(cost.map(|c| c.float32.latency_ms_batch1), 1));
                ui.label(text(row.export_bytes.map(|b| b as f64 / 1e6), 1));
                ui.end_row();
            }
        });
}

/// Each backbone's data-mismatch figure in words, and per batch-norm layer as a plot.
fn mismatch_ui(ui: &mut egui::Ui, id: &str, board: &Leaderboard) {
    let series = board.mismatches();
    if series.is_empty() {
        return;
    }
    egui::CollapsingHeader::new("How far the images are from the pretraining data")
        .id_salt(format!("mismatch {id}"))
        .default_open(false)
        .show(ui, |ui| {
            for (name, mismatch) in &series {
                ui.label(format!(
                    "{name}: {:.2}, the images are {}",
                    mismatch.summary,
                    mismatch.verdict()
                ));
            }
            let (x, y) = ("batch-norm layer (input end = 0)", "ln(1 + symmetric KL)");
            chart(ui, format!("mismatch plot {id}"), x, y)
                .style(|plot| plot.height(200.0).legend(egui_plot::Legend::default()))
                .show(ui, |plot_ui| {
                    for (n, (name, mismatch)) in series.iter().enumerate() {
                        let xy: Vec<[f64; 2]> = mismatch
                            .per_layer
                            .iter()
                            .enumerate()
                            .map(|(layer, v)| [layer as f64, *v])
                            .collect();
                        plot_ui.line(
                            Line::new(name.to_string(), xy)
                                .color(crate::ui::inspect_widgets::class_color(n)),
                        );
                    }
                });
        });
}
