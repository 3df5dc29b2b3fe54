//! Runtime behind the Inspector for detection runs (never serialised): each run's boxes and
//! COCO metrics on its validation split, computed by [`crate::inspect::detection`] on a
//! worker thread.

use std::sync::Arc;

use super::AppEvent;
use crate::inspect::detection::inspect_detection;
use crate::runtime::inspect::{InspectEvent, Loading};
use crate::runtime::inspect_det::*;

impl super::WorkbenchApp {
    /// Runs a command of the detection inspector.
    pub(super) fn det_command(&mut self, ctx: &egui::Context, command: DetCommand) {
        let stop = self.inspect.data.shutdown.clone();
        let det = &mut self.inspect.data.det;
        match command {
            DetCommand::Load(key) => {
                if det.runs.contains_key(&key) {
                    return;
                }
                det.runs.insert(key.clone(), Loading::started());
                let (events, repaint) = (self.events_tx.clone(), ctx.clone());
                self.spawn(ctx, "inspect-detection", move || {
                    let mut progress = |done, total| {
                        let event = DetEvent::Progress(key.clone(), done, total);
                        let _ = events.try_send(AppEvent::Inspect(InspectEvent::Det(event)));
                        repaint.request_repaint();
                    };
                    let result = match inspect_detection(&key.0, &key.1, None, &mut progress, &stop)
                    {
                        Ok(Some(run)) => Ok(Box::new(run)),
                        Ok(None) => Err("the inspection was stopped".to_owned()),
                        Err(e) => Err(e.to_string()),
                    };
                    AppEvent::Inspect(InspectEvent::Det(DetEvent::Loaded(key, result)))
                });
            }
        }
    }

    /// Applies an event of the detection workers.
    pub(super) fn det_event(&mut self, event: DetEvent) {
        let det = &mut self.inspect.data.det;
        match event {
            DetEvent::Progress(key, done, total) => {
                if let Some(state) = det.runs.get_mut(&key)
                    && state.is_running()
                {
                    state.set_progress(done, total);
                }
            }
            DetEvent::Loaded(key, result) => {
                let state = match result {
                    Ok(run) => Loading::Ready(Arc::from(run)),
                    Err(message) => Loading::Failed(message),
                };
                det.runs.insert(key, state);
            }
        }
    }
}
