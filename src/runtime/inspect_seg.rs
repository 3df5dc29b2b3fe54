//! Runtime state of the Inspector for segmentation runs: its commands and events, each
//! run's masks and Dice on its validation split, and the overlay textures of the images
//! recently shown.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

use super::Loading;
use super::inspect::RunKey;
use crate::inspect::segmentation::SegInspection;

/// Overlay texture sets kept at once (the images shown last).
const KEPT_LAYERS: usize = 12;

/// The three overlay layers of one image, opaque where drawn (the view applies opacity).
#[derive(Debug)]
pub struct SegLayerPixels {
    /// Predicted classes.
    pub prediction: egui::ColorImage,
    /// True classes.
    pub ground_truth: egui::ColorImage,
    /// False positives, false negatives and wrong classes.
    pub difference: egui::ColorImage,
}

/// One image's overlay layers: which run, which validation image, filled or outlines.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SegLayerKey {
    /// The run.
    pub run: RunKey,
    /// The image's index in the validation split.
    pub index: usize,
    /// Outlines instead of filled regions.
    pub outline: bool,
}

/// One image's overlay layers as textures (opaque where drawn).
pub struct SegLayerTextures {
    /// Predicted classes.
    pub prediction: egui::TextureHandle,
    /// True classes.
    pub ground_truth: egui::TextureHandle,
    /// False positives, false negatives and wrong classes.
    pub difference: egui::TextureHandle,
}

/// What the segmentation inspector asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum SegCommand {
    /// Predict and score a segmentation run's validation images.
    Load(RunKey),
    /// Make one image's overlay layers.
    Layers(SegLayerKey),
}

/// Results of the segmentation workers.
#[derive(Debug)]
pub enum SegEvent {
    /// A run's prediction pass progressed (images done, in all).
    Progress(RunKey, usize, usize),
    /// A run's masks and Dice are ready.
    Loaded(RunKey, Result<Box<SegInspection>, String>),
    /// An image's overlay layers are ready.
    Layers(SegLayerKey, Result<Box<SegLayerPixels>, String>),
}

/// What the segmentation workers produced.
#[derive(Default)]
pub struct SegData {
    /// Segmentation runs' masks and Dice.
    pub runs: HashMap<RunKey, Loading<Arc<SegInspection>>>,
    /// Overlay textures of the images shown last.
    pub layers: HashMap<SegLayerKey, Loading<SegLayerTextures>>,
    /// Finished layer keys, oldest first (for eviction).
    kept: VecDeque<SegLayerKey>,
}

impl SegData {
    /// A loaded segmentation run, if ready.
    pub fn inspection(&self, project: &Path, run: &str) -> Option<&Arc<SegInspection>> {
        self.runs
            .get(&(project.to_owned(), run.to_owned()))
            .and_then(Loading::ready)
    }

    /// Whether no run or layer is being computed.
    pub fn idle(&self) -> bool {
        !self.runs.values().any(Loading::is_running)
            && !self.layers.values().any(Loading::is_running)
    }

    /// Stores an image's overlay layers, dropping the oldest beyond [`KEPT_LAYERS`].
    pub fn keep_layers(&mut self, key: SegLayerKey, state: Loading<SegLayerTextures>) {
        self.layers.insert(key.clone(), state);
        self.kept.push_back(key);
        while self.kept.len() > KEPT_LAYERS {
            if let Some(old) = self.kept.pop_front() {
                self.layers.remove(&old);
            }
        }
    }

    /// Drops what was computed for run `key` (its checkpoint changed).
    pub fn forget_run(&mut self, key: &RunKey) {
        self.runs.remove(key);
        self.layers.retain(|k, _| k.run != *key);
        self.kept.retain(|k| k.run != *key);
    }

    /// Whether a run of the project at `project` was loaded (or failed).
    pub fn any_of(&self, project: &Path) -> bool {
        self.runs.keys().any(|(p, _)| p == project)
    }
}
