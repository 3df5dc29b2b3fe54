//! Runtime behind the Inspector for segmentation runs (never serialised): each run's masks
//! and Dice on its validation split, and the overlay textures of the images recently shown.
//! Computed by [`crate::inspect::segmentation`] (and the layers by [`super::seg_jobs`]) on
//! worker threads.

use std::sync::Arc;

use super::AppEvent;
use super::seg_jobs;
use crate::inspect::segmentation::inspect_segmentation;
use crate::runtime::inspect::{InspectEvent, Loading};
use crate::runtime::inspect_seg::*;

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
                seg.runs.insert(key.clone(), Loading::started());
                let (events, repaint) = (self.events_tx.clone(), ctx.clone());
                self.spawn(ctx, "inspect-segmentation", move || {
                    let mut progress = |done, total| {
                        let event = SegEvent::Progress(key.clone(), done, total);
                        let _ = events.try_send(AppEvent::Inspect(InspectEvent::Seg(event)));
                        repaint.request_repaint();
                    };
                    let result = match inspect_segmentation(&key.0, &key.1, &mut progress, &stop) {
                        Ok(Some(run)) => Ok(Box::new(run)),
                        Ok(None) => Err("the inspection was stopped".to_owned()),
                        Err(e) => Err(e.to_string()),
                    };
                    let event = SegEvent::Loaded(key, result);
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
                seg.layers.insert(key.clone(), Loading::started());
                self.spawn(ctx, "segmentation-layers", move || {
                    let result = match run.images.get(key.index) {
                        Some(image) => seg_jobs::seg_layers(image, key.outline)
                            .map(Box::new)
                            .map_err(|e| e.to_string()),
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
                if let Some(state) = seg.runs.get_mut(&key)
                    && state.is_running()
                {
                    state.set_progress(done, total);
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
                seg.keep_layers(key, state);
            }
        }
    }
}
