//! The export dialog of a run: checkpoint, preprocessing, embedding-only, output folder; the
//! export runs on a worker ([`TrainingCommand::Export`]) and the dialog shows its
//! verification and the files written.

use std::path::PathBuf;

use crate::export::{ExportOptions, InputFormat, OutputKind, default_out_dir};
use crate::runtime::training::{ExportState, TrainingCommand};
use crate::runtime::{Loading, UiCommand};
use crate::train::CheckpointChoice;
use crate::train::events::CheckpointKind;

/// The export window of one run.
#[derive(Debug, Default)]
pub struct ExportDialog {
    /// The project folder and run being exported, while the window is open.
    target: Option<(PathBuf, String)>,
    checkpoint: CheckpointChoice,
    input: InputFormat,
    embedding: bool,
    /// The output folder as typed (empty: the run's `export/` folder).
    out_dir: String,
    /// The last picked folder taken from the runtime.
    taken: Option<PathBuf>,
}

impl ExportDialog {
    /// Opens the window for run `run_id` of the project in `dir`.
    pub fn open(&mut self, dir: PathBuf, run_id: String) {
        self.target = Some((dir, run_id));
    }

    /// Whether the window is open.
    pub fn is_open(&self) -> bool {
        self.target.is_some()
    }

    /// Draws the window while open.
    pub fn ui(
        &mut self,
        ctx: &egui::Context,
        state: &ExportState,
        busy: bool,
        commands: &mut Vec<UiCommand>,
    ) {
        let Some((dir, run_id)) = self.target.clone() else {
            return;
        };
        if state.picked_folder.is_some() && state.picked_folder != self.taken {
            self.taken = state.picked_folder.clone();
            if let Some(folder) = &self.taken {
                self.out_dir = folder.display().to_string();
            }
        }
        let mut open = true;
        egui::Window::new(format!("Export {run_id}"))
            .id(egui::Id::unique("export_dialog"))
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .show(ctx, |ui| {
                self.options_ui(ui, &dir, &run_id, commands);
                ui.separator();
                let enabled = !busy && !state.is_running();
                let export = ui
                    .add_enabled(enabled, egui::Button::new("Export"))
                    .on_hover_text("Trace the model to TorchScript, write it with its metadata and verify it by reloading");
                if export.clicked() {
                    commands.push(UiCommand::Training(TrainingCommand::Export {
                        dir: dir.clone(),
                        run_id: run_id.clone(),
                        options: self.options(),
                    }));
                }
                if busy && !state.is_running() {
                    ui.label("Another job is running; export when it ends.");
                }
                result_ui(ui, state);
            });
        if !open {
            self.target = None;
        }
    }

    fn options(&self) -> ExportOptions {
        let out_dir = self.out_dir.trim();
        ExportOptions {
            checkpoint: self.checkpoint,
            out_dir: (!out_dir.is_empty()).then(|| PathBuf::from(out_dir)),
            input: self.input,
            output: if self.embedding {
                OutputKind::Embedding
            } else {
                OutputKind::Logits
            },
        }
    }

    fn options_ui(
        &mut self,
        ui: &mut egui::Ui,
        dir: &std::path::Path,
        run_id: &str,
        commands: &mut Vec<UiCommand>,
    ) {
        egui::Grid::new("export_options")
            .num_columns(2)
            .spacing([10.0, 6.0])
            .show(ui, |ui| {
                let label = ui.label("Checkpoint").id;
                ui.horizontal(|ui| {
                    for (choice, text) in [
                        (CheckpointChoice::BestOrLast, "best (else last)"),
                        (CheckpointChoice::Exactly(CheckpointKind::Best), "best"),
                        (CheckpointChoice::Exactly(CheckpointKind::Last), "last"),
                    ] {
                        ui.radio_value(&mut self.checkpoint, choice, text);
                    }
                })
                .response
                .labelled_by(label);
                ui.end_row();
                let label = ui.label("Preprocessing").id;
                ui.horizontal(|ui| {
                    ui.radio_value(&mut self.input, InputFormat::Normalized, "none")
                        .on_hover_text("Takes normalised float images [N, 3, S, S]");
                    ui.radio_value(&mut self.input, InputFormat::Uint8Nhwc, "uint8")
                        .on_hover_text("Takes uint8 RGB pixels [N, S, S, 3]; scaling and normalisation baked in");
                    ui.radio_value(&mut self.input, InputFormat::Float01Nchw, "float")
                        .on_hover_text("Takes float RGB in [0, 1], [N, 3, S, S]; normalisation baked in");
                })
                .response
                .labelled_by(label);
                ui.end_row();
                ui.label("Output");
                ui.checkbox(&mut self.embedding, "Embedding only")
                    .on_hover_text("Return the pooled backbone embedding instead of logits (classification)");
                ui.end_row();
                let label = ui.label("Output folder").id;
                ui.horizontal(|ui| {
                    let hint = default_out_dir(dir, run_id).display().to_string();
                    ui.add(
                        egui::TextEdit::singleline(&mut self.out_dir)
                            .id_salt("export_out_dir")
                            .hint_text(hint)
                            .desired_width(320.0),
                    )
                    .labelled_by(label);
                    if ui.button("Choose…").clicked() {
                        commands.push(UiCommand::Training(TrainingCommand::PickExportFolder));
                    }
                });
                ui.end_row();
            });
    }
}

/// The running state or the last export's verification and files.
fn result_ui(ui: &mut egui::Ui, state: &ExportState) {
    match &state.job {
        None => {}
        Some(job @ Loading::Running { done, .. }) => {
            ui.horizontal(|ui| {
                ui.spinner();
                let stage = crate::export::EXPORT_STAGES
                    .get(*done)
                    .copied()
                    .unwrap_or("starting");
                match job.progress_text() {
                    Some(step) => ui.label(format!("Exporting, {stage} (stages done: {step})")),
                    None => ui.label(format!("Exporting, {stage}…")),
                };
            });
        }
        Some(Loading::Ready(report)) => {
            let v = &report.metadata.verification;
            let diff = v
                .max_abs_diff
                .map_or(String::new(), |d| format!(" (max abs diff {d:.2e})"));
            if v.passed {
                ui.label(format!("Verification passed{diff} on {}", v.inputs));
            } else {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    format!("Verification failed{diff}: {}", v.message),
                );
            }
            ui.label(format!("Model: {}", report.model_path.display()));
            ui.label(format!("Metadata: {}", report.metadata_path.display()));
        }
        Some(Loading::Failed(message)) => {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("Export failed: {message}"),
            );
        }
    }
}
