//! Runtime state of the "Try it" tab: images from anywhere predicted by a chosen run on a
//! worker, with what the tab draws over each (Grad-CAM for classes, a class mask, boxes).
//! The images are only read: nothing is added to the project.

use std::collections::HashMap;
use std::path::PathBuf;

use super::UiCommand;

/// What the Try-it tab asks the app to do.
#[derive(Clone, Debug, PartialEq)]
pub enum TryCommand {
    /// Predict `paths` (files, or folders whose images are taken) with a run.
    Predict {
        /// The project folder.
        project: PathBuf,
        /// The run.
        run: String,
        /// Image files or folders.
        paths: Vec<PathBuf>,
    },
    /// Ask the system's file dialog for images, then predict them with the run.
    Pick {
        /// The project folder.
        project: PathBuf,
        /// The run.
        run: String,
    },
}

impl From<TryCommand> for UiCommand {
    fn from(command: TryCommand) -> Self {
        UiCommand::Try(command)
    }
}

/// One image's prediction as the worker prepared it.
#[derive(Debug)]
pub struct TryPixels {
    /// The image file.
    pub path: PathBuf,
    /// The prediction, or why there is none.
    pub result: Result<TryOutcome, String>,
}

/// What the run says about one image.
#[derive(Debug)]
pub struct TryOutcome {
    /// The image's own width and height in pixels.
    pub image_px: (u32, u32),
    /// Classes (or pixel shares) from the most likely down.
    pub ranked: Vec<(String, f64)>,
    /// Boxes: label, score and `[x0, y0, x1, y1]` in the image's pixels.
    pub boxes: Vec<(String, f32, [f32; 4])>,
    /// Drawn over the image: Grad-CAM of the predicted class, or the predicted mask.
    pub layer: Option<egui::ColorImage>,
}

/// Results of the Try-it tab's workers.
#[derive(Debug)]
pub enum TryEvent {
    /// The predictions of a batch of images (or why none could be made).
    Predicted {
        /// The project folder.
        project: PathBuf,
        /// The run.
        run: String,
        /// One entry per image.
        result: Result<Vec<TryPixels>, String>,
    },
    /// The file dialog closed without images.
    NothingPicked,
    /// A batch's progress: `done` of `total` steps (the predictions, then each image's layer).
    Progress(usize, usize),
}

/// One image's card as the tab shows it.
pub struct TryCard {
    /// The image file.
    pub path: PathBuf,
    /// The prediction with its uploaded layer, or why there is none.
    pub result: Result<(TryOutcome, Option<egui::TextureHandle>), String>,
}

/// The Try-it tab's state.
#[derive(Default)]
pub struct TryRuntime {
    /// Cards per project and run, newest last.
    pub cards: HashMap<(PathBuf, String), Vec<TryCard>>,
    /// Batches being predicted.
    pub running: usize,
    /// The progress of the newest running batch.
    pub progress: Option<crate::runtime::Loading<()>>,
    /// The last failure of a whole batch.
    pub error: Option<String>,
}

impl TryRuntime {
    /// Whether no prediction is on its way.
    pub fn settled(&self) -> bool {
        self.running == 0
    }
}
