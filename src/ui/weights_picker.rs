//! The weights part of the Training tab's backbone picker: catalogue variants present here,
//! a Download button for each downloadable one (one download at a time, with its progress,
//! time left and Cancel), why a download failed and how to import the file instead, the
//! "Import weights…" button (a typed path where no system dialog opens) and the import's
//! report window. It only reads [`WeightsState`] and returns [`WeightsCommand`]s.

use crate::model::catalogue::{WeightOption, WeightStatus};
use crate::runtime::weights::{ImportDone, WeightsCommand, WeightsState};
use crate::runtime::{Loading, UiCommand};

/// Whether `backbone` has downloaded catalogue weights here (once listed).
pub fn has_downloaded(weights: &WeightsState, backbone: &str) -> bool {
    weights.options_of(backbone).is_some_and(|options| {
        options
            .iter()
            .any(|o| o.name != "shipped" && matches!(o.status, WeightStatus::Present { .. }))
    })
}

/// The catalogue variants of `backbone`: present, downloading, or a Download button.
pub fn weights_picker_ui(
    ui: &mut egui::Ui,
    backbone: &str,
    weights: &WeightsState,
    commands: &mut Vec<UiCommand>,
) {
    let mut send = |command| commands.push(UiCommand::Weights(command));
    let Some(options) = weights.options_of(backbone) else {
        if weights.options.is_none() {
            send(WeightsCommand::List);
        }
        ui.weak("Looking for downloaded weights…");
        return;
    };
    // With shipped weights "pretrained" means them: a downloaded variant would go unused.
    let shipped = options
        .iter()
        .any(|o| o.name == "shipped" && matches!(o.status, WeightStatus::Present { .. }));
    if shipped {
        ui.weak(
            "\"pretrained\" uses the shipped weights. Another variant: `transfer-workbench \
             weights get NAME`, then `train --weights FILE`.",
        );
    } else {
        for option in options.iter().filter(|o| o.name != "shipped") {
            option_ui(ui, option, weights, &mut send);
        }
    }
    if let Some(job) = &weights.download
        && options.iter().any(|o| o.name == job.name)
        && let Loading::Failed(message) = &job.state
    {
        let url = options
            .iter()
            .find(|o| o.name == job.name)
            .map_or("", |o| o.origin.as_str());
        ui.colored_label(
            ui.visuals().error_fg_color,
            format!("Download of {} failed: {message}", job.name),
        );
        let cancelled = crate::model::download::DownloadError::Cancelled.to_string();
        if !message.ends_with(&cancelled) {
            ui.label(format!(
                "Fetch {url} elsewhere, then import it: Import weights… below, or \
                 `transfer-workbench weights import FILE`."
            ));
        }
    }
    import_ui(ui, weights, &mut send);
}

/// One catalogue variant's line.
fn option_ui(
    ui: &mut egui::Ui,
    option: &WeightOption,
    weights: &WeightsState,
    send: &mut impl FnMut(WeightsCommand),
) {
    let variant = option
        .name
        .split_once('.')
        .map_or(option.name.as_str(), |(_, v)| v);
    let top1 = option
        .imagenet_top1
        .map(|t| format!(", ImageNet top-1 {t:.1} %"))
        .unwrap_or_default();
    match &option.status {
        WeightStatus::Present { .. } => {
            ui.label(format!(
                "✔ {} downloaded{top1}: \"pretrained\" uses it",
                option.name
            ));
        }
        WeightStatus::Downloadable { size_mb } => {
            let running = weights.download.as_ref().filter(|j| j.state.is_running());
            match running {
                Some(job) if job.name == option.name => {
                    ui.horizontal(|ui| {
                        download_bar(ui, variant, &job.state);
                        if ui.button("Cancel").clicked() {
                            send(WeightsCommand::CancelDownload);
                        }
                    });
                }
                _ => {
                    let size = size_mb
                        .map(|mb| format!(" ({mb:.1} MB)"))
                        .unwrap_or_default();
                    let button = egui::Button::new(format!("Download {variant}{size}"));
                    let tip = format!(
                        "Fetches {} (checked against its sha256), converts it and keeps it \
                         in the asset cache{top1}",
                        option.origin
                    );
                    if ui
                        .add_enabled(running.is_none(), button)
                        .on_hover_text(tip)
                        .clicked()
                    {
                        send(WeightsCommand::Download(option.name.clone()));
                    }
                }
            }
        }
        WeightStatus::UserSupplied => {}
    }
}

/// A download's progress bar: MB done of the total and the time left from the pace so far.
fn download_bar(ui: &mut egui::Ui, variant: &str, state: &Loading<std::path::PathBuf>) {
    let Loading::Running { done, total, since } = state else {
        return;
    };
    let mb = |bytes: usize| bytes as f64 / 1e6;
    let text = if *total == 0 {
        format!("Downloading {variant}: {:.1} MB", mb(*done))
    } else {
        let left = crate::runtime::training::count_left(*done, *total, Some(*since));
        // "N of M, about T left": the part after the counts.
        let left = left.split_once(", ").map(|(_, l)| l).unwrap_or_default();
        let sep = if left.is_empty() { "" } else { ", " };
        format!(
            "Downloading {variant}: {:.1} of {:.1} MB{sep}{left}",
            mb(*done),
            mb(*total)
        )
    };
    ui.add(
        egui::ProgressBar::new(*done as f32 / (*total).max(1) as f32)
            .text(text)
            .desired_width(260.0)
            .animate(*total == 0),
    );
}

/// The "Import weights…" button, the typed path where no dialog opens, and the report.
fn import_ui(ui: &mut egui::Ui, weights: &WeightsState, send: &mut impl FnMut(WeightsCommand)) {
    let import = &weights.import;
    let running = import.job.as_ref().is_some_and(|(_, j)| j.is_running());
    if ui
        .add_enabled(!running, egui::Button::new("Import weights…"))
        .on_hover_text(
            "A catalogue file fetched elsewhere (.pth, .pt, .safetensors), found by its \
             sha256; or drop it on this tab",
        )
        .clicked()
    {
        send(WeightsCommand::PickImport);
    }
    if !import.open {
        return;
    }
    let mut open = true;
    egui::Window::new("Weights import")
        .open(&mut open)
        .collapsible(false)
        .show(ui.ctx(), |ui| {
            if import.no_dialog {
                typed_path_ui(ui, running, send);
            }
            if let Some((file, job)) = &import.job {
                ui.label(format!("File: {}", file.display()));
                match job {
                    Loading::Running { .. } => {
                        ui.horizontal(|ui| {
                            ui.spinner();
                            ui.label("Checking and converting…");
                        });
                    }
                    Loading::Ready(done) => report_ui(ui, done),
                    Loading::Failed(message) => {
                        ui.colored_label(ui.visuals().error_fg_color, message);
                    }
                }
            }
            if ui.button("Close").clicked() {
                send(WeightsCommand::CloseImport);
            }
        });
    if !open {
        send(WeightsCommand::CloseImport);
    }
}

/// A path field for systems without a file dialog.
fn typed_path_ui(ui: &mut egui::Ui, running: bool, send: &mut impl FnMut(WeightsCommand)) {
    ui.label("No system file dialog is available here: type the weights file's path.");
    let id = ui.scope_id().with("weights_import_path");
    let mut path: String = ui.data_mut(|d| d.get_temp(id).unwrap_or_default());
    ui.horizontal(|ui| {
        ui.add(egui::TextEdit::singleline(&mut path).hint_text("/path/to/weights.pth"));
        let ok = !running && !path.trim().is_empty();
        if ui.add_enabled(ok, egui::Button::new("Import")).clicked() {
            send(WeightsCommand::Import(path.trim().into()));
        }
    });
    ui.data_mut(|d| d.insert_temp(id, path));
}

/// What an import's check found, key by key.
fn report_ui(ui: &mut egui::Ui, done: &ImportDone) {
    let report = &done.report;
    ui.label(format!("Installed: {}", done.installed.display()));
    ui.label(format!("{} keys matched", report.matched.len()));
    let list = |ui: &mut egui::Ui, what: &str, keys: &[String]| {
        ui.label(format!("{} {what}", keys.len()));
        for key in keys.iter().take(20) {
            ui.weak(format!("  {key}"));
        }
    };
    list(ui, "missing", &report.missing);
    list(ui, "unused", &report.unused);
    let shaped: Vec<String> = report
        .mis_shaped
        .iter()
        .map(|m| {
            format!(
                "{}: {:?} here, {:?} in the file",
                m.key, m.expected, m.found
            )
        })
        .collect();
    list(ui, "mis-shaped", &shaped);
}
