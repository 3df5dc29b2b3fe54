//! The app's side of the Try-it tab: a chosen run predicts images from anywhere on a
//! worker (the core's [`predict_files`]); the worker also prepares what is drawn over each
//! image (Grad-CAM of the predicted class, or the predicted mask), so the UI thread only
//! uploads textures.

use std::path::{Path, PathBuf};

use super::{AppEvent, WorkbenchApp};
use crate::data::decode::FileFormat;
use crate::inspect::detection::DEFAULT_SCORE_THRESHOLD;
use crate::inspect::gradcam::CamMethod;
use crate::inspect::overlay::class_colour;
use crate::inspect::run_inspection::cam_image_with;
use crate::inspect::try_images::{Tried, predict_files};
use crate::runtime::try_it::{TryCard, TryCommand, TryEvent, TryOutcome, TryPixels};
use crate::train::{CheckpointChoice, TrainedModel};

/// The most images one batch predicts (a folder's first ones, by name).
pub const MAX_TRY_IMAGES: usize = 64;
/// Longer side of the image the mask is drawn at.
const LAYER_SIDE_PX: u32 = 384;

impl WorkbenchApp {
    /// Runs the Try-it tab's commands.
    pub(super) fn try_command(&mut self, ctx: &egui::Context, command: TryCommand) {
        match command {
            TryCommand::Predict {
                project,
                run,
                paths,
            } => {
                self.try_it.running += 1;
                self.try_it.error = None;
                let progress = self.try_progress(ctx);
                self.spawn(ctx, "try-images", move || {
                    let result = predict_batch(&project, &run, &paths, progress);
                    AppEvent::Try(TryEvent::Predicted {
                        project,
                        run,
                        result,
                    })
                });
            }
            TryCommand::Pick { project, run } => {
                self.try_it.running += 1;
                let progress = self.try_progress(ctx);
                self.spawn(ctx, "try-pick", move || {
                    let picked = rfd::FileDialog::new()
                        .add_filter("images", crate::data::decode::IMAGE_EXTENSIONS)
                        .pick_files();
                    match picked {
                        Some(paths) if !paths.is_empty() => AppEvent::Try(TryEvent::Predicted {
                            result: predict_batch(&project, &run, &paths, progress),
                            project,
                            run,
                        }),
                        _ => AppEvent::Try(TryEvent::NothingPicked),
                    }
                });
            }
        }
    }

    /// The Try-it tab's predictions.
    pub fn try_runtime(&self) -> &crate::runtime::try_it::TryRuntime {
        &self.try_it
    }

    /// Images the Try-it tab predicts once it shows a run (`gui --try`).
    pub fn with_try_images(mut self, paths: Vec<PathBuf>) -> Self {
        self.pending_try = paths;
        self
    }

    /// Files dropped on the window: predicted in the Try-it tab when it shows a trained run,
    /// else the first one starts a new project.
    pub(super) fn take_dropped(&mut self, dropped: Vec<PathBuf>) {
        if dropped.is_empty() {
            return;
        }
        if self.tab == crate::runtime::CentralTab::Training
            && let Some(file) = super::weights::weights_file(&dropped)
        {
            self.commands.push(crate::runtime::UiCommand::Weights(
                crate::runtime::weights::WeightsCommand::Import(file),
            ));
            return;
        }
        let run = match (&self.tab, &self.selected) {
            (crate::runtime::CentralTab::TryIt, Some(dir)) => self
                .try_view
                .run_for(dir)
                .map(|run| (dir.clone(), run.to_owned())),
            _ => None,
        };
        match run {
            Some((project, run)) => self.commands.push(
                TryCommand::Predict {
                    project,
                    run,
                    paths: dropped,
                }
                .into(),
            ),
            None => {
                if let Some(dir) = dropped.into_iter().next() {
                    self.commands
                        .push(crate::runtime::UiCommand::OpenNewProject(Some(dir)));
                }
            }
        }
    }

    /// A progress callback for a Try-it worker: it sends [`TryEvent::Progress`].
    fn try_progress(&mut self, ctx: &egui::Context) -> impl FnMut(usize, usize) + Send + 'static {
        self.try_it.progress = Some(crate::runtime::Loading::started());
        let (events, wake) = (self.events_tx.clone(), ctx.clone());
        move |done, total| {
            let _ = events.try_send(AppEvent::Try(TryEvent::Progress(done, total)));
            wake.request_repaint();
        }
    }

    /// Takes a Try-it worker's result.
    pub(super) fn try_event(&mut self, ctx: &egui::Context, event: TryEvent) {
        if let TryEvent::Progress(done, total) = event {
            if let Some(progress) = &mut self.try_it.progress {
                progress.set_progress(done, total);
            }
            return;
        }
        self.try_it.running = self.try_it.running.saturating_sub(1);
        if self.try_it.running == 0 {
            self.try_it.progress = None;
        }
        let TryEvent::Predicted {
            project,
            run,
            result,
        } = event
        else {
            return;
        };
        let images = match result {
            Ok(images) => images,
            Err(message) => {
                self.try_it.error = Some(message);
                return;
            }
        };
        let cards = self.try_it.cards.entry((project, run.clone())).or_default();
        for image in images {
            let result = image.result.map(|mut outcome| {
                let texture = outcome.layer.take().map(|layer| {
                    let name = format!("try {run} {}", image.path.display());
                    ctx.load_texture(name, layer, egui::TextureOptions::LINEAR)
                });
                (outcome, texture)
            });
            // A file tried again replaces its card.
            cards.retain(|c| c.path != image.path);
            cards.push(TryCard {
                path: image.path,
                result,
            });
        }
    }
}

/// The image files of `paths`: files as given, folders by their images (not their
/// subfolders), sorted by name; at most [`MAX_TRY_IMAGES`].
pub fn image_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && FileFormat::has_image_extension(p))
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    files.truncate(MAX_TRY_IMAGES);
    files
}

/// Predicts the images of `paths` with run `run` and prepares each one's layer.
fn predict_batch(
    project: &Path,
    run: &str,
    paths: &[PathBuf],
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<TryPixels>, String> {
    let files = image_files(paths);
    if files.is_empty() {
        let named: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(format!("no image files in {}", named.join(", ")));
    }
    let device = tch::Device::cuda_if_available();
    let mut model = TrainedModel::load(project, run, CheckpointChoice::BestOrLast, device)
        .map_err(|e| e.to_string())?;
    let total = files.len() + 1;
    progress(0, total);
    let tried = predict_files(project, &mut model, &files, DEFAULT_SCORE_THRESHOLD)
        .map_err(|e| e.to_string())?;
    progress(1, total);
    let window = crate::project::load_project(project)
        .map_err(|e| e.to_string())?
        .dataset
        .window;
    Ok(tried
        .into_iter()
        .enumerate()
        .map(|(i, file)| {
            progress(i + 1, total);
            let path = file.path;
            let result = file.result.and_then(|tried| {
                let shown = crate::data::thumbnail::render(&path, &window, LAYER_SIDE_PX)
                    .map_err(|e| e.to_string())?;
                let ranked = tried.ranked(&model.classes);
                let (boxes, layer) = match tried {
                    Tried::Classes(_) => {
                        let cam =
                            cam_image_with(&mut model, project, &path, CamMethod::GradCam).ok();
                        (Vec::new(), cam.map(|c| rgba_image(&c.rgba)))
                    }
                    Tried::Mask(mask) => {
                        let (w, h) = shown.image.dimensions();
                        (Vec::new(), Some(mask_layer(&mask.resized(w, h))))
                    }
                    Tried::Boxes(found) => {
                        let boxes = found
                            .iter()
                            .map(|f| {
                                let label = model.classes.get(f.class).cloned().unwrap_or_default();
                                (label, f.score, [f.bbox.x0, f.bbox.y0, f.bbox.x1, f.bbox.y1])
                            })
                            .collect();
                        (boxes, None)
                    }
                };
                Ok(TryOutcome {
                    image_px: shown.size_px,
                    ranked,
                    boxes,
                    layer,
                })
            });
            TryPixels { path, result }
        })
        .collect())
}

fn rgba_image(rgba: &image::RgbaImage) -> egui::ColorImage {
    let size = [rgba.width() as usize, rgba.height() as usize];
    egui::ColorImage::from_rgba_unmultiplied(size, rgba.as_raw())
}

/// The predicted classes in their colours; background clear.
fn mask_layer(mask: &crate::inspect::overlay::ClassMask) -> egui::ColorImage {
    let pixels = mask
        .classes
        .iter()
        .map(|&c| {
            let [r, g, b] = class_colour(c);
            if c == 0 {
                egui::Color32::TRANSPARENT
            } else {
                egui::Color32::from_rgb(r, g, b)
            }
        })
        .collect();
    egui::ColorImage::new([mask.width_px as usize, mask.height_px as usize], pixels)
}
