//! The app's side of the Inspector, Embeddings and Compare tabs: it runs their commands
//! (listing runs, inspecting a run, neighbours, Grad-CAM, t-SNE; segmentation runs:
//! [`super::inspect_seg`]) on worker threads and applies the events into the runtime state
//! ([`crate::runtime::inspect`]). The jobs are the core's ([`crate::inspect`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::inspect_jobs;
use super::{AppEvent, CentralTab};
use crate::inspect::run_inspection::tsne_map;
use crate::runtime::inspect::*;
use crate::ui::inspect_tabs::InspectTabs;

impl super::WorkbenchApp {
    /// The inspection tabs' data and views.
    pub fn inspect(&self) -> &InspectTabs {
        &self.inspect
    }

    /// The inspection tabs' data and views, to change a view's settings (tests).
    pub fn inspect_mut(&mut self) -> &mut InspectTabs {
        &mut self.inspect
    }

    /// Runs a command of the inspection views.
    pub(super) fn inspect_command(&mut self, ctx: &egui::Context, command: InspectCommand) {
        let stop = self.inspect.data.shutdown.clone();
        match command {
            InspectCommand::LoadRun(key) => {
                if self.inspect.data.inspections.contains_key(&key) {
                    return;
                }
                let state = Loading::started();
                self.inspect.data.inspections.insert(key.clone(), state);
                let (events, repaint) = (self.events_tx.clone(), ctx.clone());
                self.spawn(ctx, "inspect-run", move || {
                    let mut progress = |done, total| {
                        let event = InspectEvent::LoadProgress(key.clone(), done, total);
                        let _ = events.try_send(AppEvent::Inspect(event));
                        repaint.request_repaint();
                    };
                    let result = inspect_jobs::load_run(&key.0, &key.1, &mut progress, &stop)
                        .map(Box::new)
                        .map_err(|e| e.to_string());
                    AppEvent::Inspect(InspectEvent::Loaded(key, result))
                });
            }
            InspectCommand::Neighbours(key, index) => {
                let Some(run) = self.inspect.data.inspection(&key.0, &key.1).cloned() else {
                    return;
                };
                let cache_key = (key.clone(), index);
                if self.inspect.data.neighbours.contains_key(&cache_key) {
                    return;
                }
                let state = Loading::started();
                self.inspect.data.neighbours.insert(cache_key, state);
                self.spawn(ctx, "neighbours", move || {
                    let found = run
                        .neighbours
                        .of_sample(index, NEIGHBOURS)
                        .map_err(|e| e.to_string());
                    AppEvent::Inspect(InspectEvent::Neighbours(key, index, found))
                });
            }
            InspectCommand::Cam(key) => {
                if self.inspect.data.cams.contains_key(&key) {
                    return;
                }
                let state = Loading::started();
                self.inspect.data.cams.insert(key.clone(), state);
                self.spawn(ctx, "grad-cam", move || {
                    let result = inspect_jobs::cam(&key)
                        .map(Box::new)
                        .map_err(|e| e.to_string());
                    AppEvent::Inspect(InspectEvent::Cam(key, result))
                });
            }
            InspectCommand::StartTsne(key) => self.start_tsne(ctx, key),
            InspectCommand::CancelTsne(key) => {
                if let Some(job) = self.inspect.data.tsne.get(&key) {
                    job.stop.store(true, Ordering::Relaxed);
                }
            }
            InspectCommand::ShowInInspector(run, index) => {
                self.inspect.run = Some(run);
                self.requests.show_in_inspector = Some(index);
                self.tab = CentralTab::Inspector;
            }
            InspectCommand::Seg(command) => self.seg_command(ctx, command),
            InspectCommand::Det(command) => self.det_command(ctx, command),
        }
    }

    fn start_tsne(&mut self, ctx: &egui::Context, key: RunKey) {
        let Some(run) = self.inspect.data.inspection(&key.0, &key.1).cloned() else {
            return;
        };
        if matches!(
            self.inspect.data.tsne.get(&key),
            Some(TsneJob {
                state: Loading::Running { .. } | Loading::Ready(_),
                ..
            })
        ) {
            return;
        }
        let stop = Arc::new(AtomicBool::new(
            self.inspect.data.shutdown.load(Ordering::Relaxed),
        ));
        let job = TsneJob {
            state: Loading::started(),
            stop: stop.clone(),
        };
        self.inspect.data.tsne.insert(key.clone(), job);
        let (events, repaint) = (self.events_tx.clone(), ctx.clone());
        self.spawn(ctx, "t-sne", move || {
            let mut progress = |done, total| {
                let event = InspectEvent::TsneProgress(key.clone(), done, total);
                let _ = events.try_send(AppEvent::Inspect(event));
                repaint.request_repaint();
            };
            let result =
                tsne_map(&run.embeddings, run.dim, &mut progress, &stop).map_err(|e| e.to_string());
            AppEvent::Inspect(InspectEvent::Tsne(key, result))
        });
    }

    /// Applies an event of the inspection workers.
    pub(super) fn inspect_event(&mut self, ctx: &egui::Context, event: InspectEvent) {
        let tabs = &mut self.inspect.data;
        match event {
            InspectEvent::Seg(event) => self.seg_event(ctx, event),
            InspectEvent::Det(event) => self.det_event(event),
            InspectEvent::LoadProgress(key, done, total) => {
                if let Some(state) = tabs.inspections.get_mut(&key)
                    && state.is_running()
                {
                    state.set_progress(done, total);
                }
            }
            InspectEvent::Loaded(key, result) => {
                let state = match result {
                    Ok(run) => {
                        if let Some(why) = &run.not_stored {
                            self.status = Some(Err(why.clone()));
                        }
                        Loading::Ready(Arc::from(run))
                    }
                    Err(message) => Loading::Failed(message),
                };
                self.inspect.data.inspections.insert(key, state);
            }
            InspectEvent::Neighbours(key, index, found) => {
                let state = match found {
                    Ok(found) => Loading::Ready(found),
                    Err(message) => Loading::Failed(message),
                };
                tabs.neighbours.insert((key, index), state);
            }
            InspectEvent::Cam(key, result) => {
                let name = format!("cam {} {}", key.run, key.image.display());
                let state = match result {
                    Ok(pixels) => Loading::Ready(CamTexture {
                        texture: ctx.load_texture(name, pixels.image, egui::TextureOptions::LINEAR),
                        class: pixels.class,
                        score: pixels.score,
                    }),
                    Err(message) => Loading::Failed(message),
                };
                tabs.cams.insert(key, state);
            }
            InspectEvent::TsneProgress(key, done, total) => {
                if let Some(TsneJob { state, .. }) = tabs.tsne.get_mut(&key)
                    && state.is_running()
                {
                    state.set_progress(done, total);
                }
            }
            InspectEvent::Tsne(key, result) => {
                if let Some(job) = tabs.tsne.get_mut(&key) {
                    job.state = match result {
                        Ok(Some(map)) => Loading::Ready(map),
                        Ok(None) => Loading::Failed("t-SNE was cancelled".to_owned()),
                        Err(message) => Loading::Failed(message),
                    };
                }
            }
        }
    }
}
