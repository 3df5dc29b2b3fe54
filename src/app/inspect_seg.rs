//! Runtime behind the Inspector for segmentation runs (never serialised): each run's masks
//! and Dice on its validation split, and the overlay textures of the images recently shown.
//! Computed by [`super::seg_jobs`] on worker threads.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

use super::AppEvent;
use super::inspect::{InspectEvent, Loading, RunKey};
use super::seg_jobs::{self, SegInspection, SegLayerPixels};

/// Overlay texture sets kept at once (the images shown last).
const KEPT_LAYERS: usize = 12;

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

    /// Whether a run of the project at `project` was loaded (or failed).
    pub fn any_of(&self, project: &Path) -> bool {
        self.runs.keys().any(|(p, _)| p == project)
    }
}

impl super::WorkbenchApp {
    /// Runs a command of the segmentation inspector.
    pub(super) fn seg_command(&mut self, ctx: &egui::Context, command: SegCommand) {
        let stop = self.inspect.data.shutdown.clone();
        let seg = &mut self.inspect.data.seg;
        match command {
            SegCommand::Load(key) => {
                if seg.runs.contains_key(&key) {
                    return;
                }
                seg.runs
                    .insert(key.clone(), Loading::Running { done: 0, total: 0 });
                let (events, repaint) = (self.events_tx.clone(), ctx.clone());
                self.spawn(ctx, "inspect-segmentation", move || {
                    let mut progress = |done, total| {
                        let event = SegEvent::Progress(key.clone(), done, total);
                        let _ = events.try_send(AppEvent::Inspect(InspectEvent::Seg(event)));
                        repaint.request_repaint();
                    };
                    let result = seg_jobs::load_segmentation(&key.0, &key.1, &mut progress, &stop);
                    let event = SegEvent::Loaded(key, result.map(Box::new));
                    AppEvent::Inspect(InspectEvent::Seg(event))
                });
            }
            SegCommand::Layers(key) => {
                if seg.layers.contains_key(&key) {
                    return;
                }
                let Some(run) = seg.inspection(&key.run.0, &key.run.1).cloned() else {
                    return;
                };
                seg.layers
                    .insert(key.clone(), Loading::Running { done: 0, total: 0 });
                self.spawn(ctx, "segmentation-layers", move || {
                    let result = match run.images.get(key.index) {
                        Some(image) => seg_jobs::seg_layers(image, key.outline).map(Box::new),
                        None => Err(format!("the run has no image {}", key.index)),
                    };
                    AppEvent::Inspect(InspectEvent::Seg(SegEvent::Layers(key, result)))
                });
            }
        }
    }

    /// Applies an event of the segmentation workers.
    pub(super) fn seg_event(&mut self, ctx: &egui::Context, event: SegEvent) {
        let seg = &mut self.inspect.data.seg;
        match event {
            SegEvent::Progress(key, done, total) => {
                if let Some(Loading::Running { done: d, total: t }) = seg.runs.get_mut(&key) {
                    (*d, *t) = (done, total);
                }
            }
            SegEvent::Loaded(key, result) => {
                let state = match result {
                    Ok(run) => Loading::Ready(Arc::from(run)),
                    Err(message) => Loading::Failed(message),
                };
                seg.runs.insert(key, state);
            }
            SegEvent::Layers(key, result) => {
                let name = format!("segmentation {} {} {}", key.run.1, key.index, key.outline);
                // Class masks: crisp pixel edges when enlarged.
                let options = egui::TextureOptions::NEAREST;
                let state = match result {
                    Ok(pixels) => {
                        let SegLayerPixels {
                            prediction,
                            ground_truth,
                            difference,
                        } = *pixels;
                        Loading::Ready(SegLayerTextures {
                            prediction: ctx.load_texture(format!("{name} p"), prediction, options),
                            ground_truth: ctx.load_texture(
                                format!("{name} t"),
                                ground_truth,
                                options,
                            ),
                            difference: ctx.load_texture(format!("{name} d"), difference, options),
                        })
                    }
                    Err(message) => Loading::Failed(message),
                };
                seg.layers.insert(key.clone(), state);
                seg.kept.push_back(key);
                while seg.kept.len() > KEPT_LAYERS {
                    if let Some(old) = seg.kept.pop_front() {
                        seg.layers.remove(&old);
                    }
                }
            }
        }
    }
}
