//! The app's side of the backbone picker's weights: listing what is present, the one
//! download at a time ([`crate::model::zoo::get`] on a worker, progress and cancel through
//! the runtime's [`DownloadJob`]) and the import of a weights file
//! ([`crate::model::zoo::import_reported`]) with its report.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::folder_jobs::system_folder_dialog_available;
use super::{AppEvent, WorkbenchApp};
use crate::model::backbone::known_backbones;
use crate::model::catalogue::weight_options;
use crate::model::download::Timeouts;
use crate::model::zoo;
use crate::runtime::Loading;
use crate::runtime::weights::{DownloadJob, ImportDone, WeightsCommand, WeightsEvent};

/// The least time between two progress events of a download.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

impl WorkbenchApp {
    /// Runs a weights command.
    pub(super) fn weights_command(&mut self, ctx: &egui::Context, command: WeightsCommand) {
        let weights = &mut self.training.weights;
        match command {
            WeightsCommand::List => {
                // A list already running may predate a download: this one follows it.
                weights.options = Some(Loading::started());
                self.spawn(ctx, "weights-list", || {
                    let listed: HashMap<_, _> = known_backbones()
                        .iter()
                        .map(|info| (info.name.to_owned(), weight_options(info)))
                        .collect();
                    AppEvent::Weights(WeightsEvent::Listed(listed))
                });
            }
            WeightsCommand::Download(name) => {
                if weights.downloading() {
                    return;
                }
                let cancel = Arc::new(AtomicBool::new(false));
                weights.download = Some(DownloadJob {
                    name: name.clone(),
                    state: Loading::started(),
                    cancel: Arc::clone(&cancel),
                });
                let (tx, repaint) = (self.events_tx.clone(), ctx.clone());
                self.spawn(ctx, "weights-download", move || {
                    let mut last = Instant::now() - PROGRESS_EVERY;
                    let mut progress = |done: u64, total: Option<u64>| {
                        if last.elapsed() >= PROGRESS_EVERY || total == Some(done) {
                            last = Instant::now();
                            // A full channel drops this step; the next one catches up.
                            let event = WeightsEvent::Progress(done, total);
                            let _ = tx.try_send(AppEvent::Weights(event));
                            repaint.request_repaint();
                        }
                    };
                    let got = zoo::get(&name, Timeouts::default(), &cancel, &mut progress)
                        .map_err(|e| e.to_string());
                    AppEvent::Weights(WeightsEvent::Downloaded(got))
                });
            }
            WeightsCommand::CancelDownload => weights.cancel(),
            WeightsCommand::PickImport => self.spawn(ctx, super::FOLDER_PICKER, || {
                if !system_folder_dialog_available() {
                    return AppEvent::Weights(WeightsEvent::NoFileDialog);
                }
                let picked = rfd::FileDialog::new()
                    .add_filter("Weights", &["pth", "pt", "safetensors"])
                    .pick_file();
                AppEvent::Weights(WeightsEvent::ImportPicked(picked))
            }),
            WeightsCommand::Import(file) => {
                if weights
                    .import
                    .job
                    .as_ref()
                    .is_some_and(|(_, job)| job.is_running())
                {
                    return;
                }
                weights.import.job = Some((file.clone(), Loading::started()));
                weights.import.open = true;
                self.spawn(ctx, "weights-import", move || {
                    let done = zoo::import_reported(&file, None)
                        .map(|(installed, report)| Box::new(ImportDone { installed, report }))
                        .map_err(|e| e.to_string());
                    AppEvent::Weights(WeightsEvent::Imported(done))
                });
            }
            WeightsCommand::CloseImport => weights.import.open = false,
        }
    }

    /// Takes a weights worker's result or progress.
    pub(super) fn weights_event(&mut self, ctx: &egui::Context, event: WeightsEvent) {
        let weights = &mut self.training.weights;
        match event {
            WeightsEvent::Listed(listed) => weights.options = Some(Loading::Ready(listed)),
            WeightsEvent::Progress(done, total) => {
                if let Some(job) = &mut weights.download
                    && job.state.is_running()
                {
                    let total = total.unwrap_or(0);
                    job.state.set_progress(done as usize, total as usize);
                }
            }
            WeightsEvent::Downloaded(result) => {
                if let Some(job) = &mut weights.download {
                    job.state = Loading::from_result(result);
                }
                self.weights_command(ctx, WeightsCommand::List);
            }
            WeightsEvent::ImportPicked(Some(file)) => {
                self.weights_command(ctx, WeightsCommand::Import(file));
            }
            WeightsEvent::ImportPicked(None) => {}
            WeightsEvent::NoFileDialog => {
                weights.import.no_dialog = true;
                weights.import.open = true;
            }
            WeightsEvent::Imported(result) => {
                if let Some((_, job)) = &mut weights.import.job {
                    *job = Loading::from_result(result);
                }
                self.weights_command(ctx, WeightsCommand::List);
            }
        }
    }
}

/// The first weights file (`.pth`, `.pt`, `.safetensors`) among dropped paths.
pub(super) fn weights_file(dropped: &[std::path::PathBuf]) -> Option<std::path::PathBuf> {
    dropped
        .iter()
        .find(|p| {
            p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                ["pth", "pt", "safetensors"].contains(&e.to_ascii_lowercase().as_str())
            })
        })
        .cloned()
}
