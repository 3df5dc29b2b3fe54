//! Runtime state behind the Dataset view (never serialised): one scan per project, run on a
//! worker with progress and a cancel flag, and a small pool of threads that render
//! thumbnails for the texture cache.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::SyncSender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use super::{AppEvent, UiCommand};
use crate::data::DataError;
use crate::data::scan::scan_until;
use crate::project::{OpenProject, Project, update_project};
use crate::runtime::Loading;
use crate::runtime::dataset::{DatasetScan, ScannedDataset};
use crate::runtime::thumbnails::{ThumbnailCache, ThumbnailJob, ThumbnailSize, render_job};

/// Threads rendering thumbnails.
const RENDER_THREADS: usize = 2;
/// Tile jobs waiting for a render thread (more are asked for again next frame).
const TILE_QUEUE: usize = 48;
/// Shortest time between two progress events of a scan.
const PROGRESS_EVERY: Duration = Duration::from_millis(50);

/// Scans a project's data set (runs on a worker); `progress(done, total)` as files finish.
pub fn scan_project_data(
    open: &OpenProject,
    cancel: &AtomicBool,
    generation: u64,
    mut progress: impl FnMut(usize, usize),
) -> Result<ScannedDataset, DataError> {
    let source = open.dataset_source()?;
    let options = open.project.dataset.scan_options();
    let mut last = Instant::now();
    let (index, report) = scan_until(&source, &options, cancel, |done, total| {
        if done == 0 || done == total || last.elapsed() >= PROGRESS_EVERY {
            last = Instant::now();
            progress(done, total);
        }
    })?;
    Ok(ScannedDataset::new(index, report, generation))
}

/// Threads that render thumbnails; previews jump the queue of tiles.
pub struct ThumbnailPool {
    tiles: Sender<ThumbnailJob>,
    previews: Sender<ThumbnailJob>,
    threads: Vec<JoinHandle<()>>,
}

impl ThumbnailPool {
    /// Starts the render threads; each sends [`AppEvent::Thumbnail`] and wakes the UI.
    pub fn start(events: &SyncSender<AppEvent>, ctx: &egui::Context) -> std::io::Result<Self> {
        let (tiles, tiles_rx) = bounded(TILE_QUEUE);
        let (previews, previews_rx) = bounded(4);
        let mut threads = Vec::new();
        for n in 0..RENDER_THREADS {
            let (tiles_rx, previews_rx): (Receiver<ThumbnailJob>, Receiver<ThumbnailJob>) =
                (tiles_rx.clone(), previews_rx.clone());
            let (events, ctx) = (events.clone(), ctx.clone());
            let handle = std::thread::Builder::new()
                .name(format!("thumbnails-{n}"))
                .spawn(move || {
                    loop {
                        let job = crossbeam_channel::select_biased! {
                            recv(previews_rx) -> job => job,
                            recv(tiles_rx) -> job => job,
                        };
                        let Ok(job) = job else { break };
                        let done = render_job(&job);
                        if events.send(AppEvent::Thumbnail(Box::new(done))).is_err() {
                            break;
                        }
                        ctx.request_repaint();
                    }
                })?;
            threads.push(handle);
        }
        Ok(Self {
            tiles,
            previews,
            threads,
        })
    }

    /// Queues a job; false when the queue is full.
    pub fn try_send(&self, job: ThumbnailJob) -> bool {
        let queue = match job.key.size {
            ThumbnailSize::Tile => &self.tiles,
            ThumbnailSize::Preview => &self.previews,
        };
        match queue.try_send(job) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    /// Closes the queues; the threads end after their current job.
    pub fn close(self) -> Vec<JoinHandle<()>> {
        self.threads
    }
}

/// Scans and thumbnails of every project opened in the Dataset view.
#[derive(Default)]
pub struct DatasetRuntime {
    /// Per project folder.
    pub scans: HashMap<PathBuf, DatasetScan>,
    /// The texture cache.
    pub thumbnails: ThumbnailCache,
    /// Started on first use.
    pub pool: Option<ThumbnailPool>,
    /// Counts scans started.
    pub generation: u64,
}

impl DatasetRuntime {
    /// Asks every running scan to stop.
    pub fn cancel_all(&self) {
        for scan in self.scans.values() {
            scan.cancel();
        }
    }

    /// Whether the project's scan finished and its visible thumbnails are drawn.
    pub fn settled(&self, dir: &std::path::Path) -> bool {
        self.scans.get(dir).is_some_and(|s| !s.state.is_running()) && !self.thumbnails.is_busy()
    }
}

impl super::WorkbenchApp {
    /// Selects the project named on the command line once the projects are listed.
    pub(super) fn select_start_project(&mut self, state: &super::ProjectsState) {
        let (Some(name), super::ProjectsState::Ready(rows)) = (self.start_project.take(), state)
        else {
            return;
        };
        let found = rows
            .iter()
            .find(|r| r.title() == name || r.dir.file_name() == Some(name.as_ref()));
        match found {
            Some(row) => self.selected = Some(row.dir.clone()),
            None => self.status = Some(Err(format!("no project named '{name}'"))),
        }
    }

    /// Runs the Dataset view's commands.
    pub(super) fn dataset_command(&mut self, ctx: &egui::Context, command: UiCommand) {
        match command {
            UiCommand::ScanDataset(dir) => self.start_dataset_scan(ctx, dir),
            UiCommand::CancelDatasetScan(dir) => {
                if let Some(scan) = self.dataset.scans.get(&dir) {
                    scan.cancel();
                }
            }
            UiCommand::SetDatasetWindow(dir, window) => {
                let target = dir.clone();
                self.spawn(ctx, "project-save", move || {
                    let saved = update_project(&dir, |project| project.dataset.window = window)
                        .map(Box::new)
                        .map_err(|e| e.to_string());
                    AppEvent::ProjectSaved(target, saved)
                });
            }
            UiCommand::SetDatasetChecks {
                dir,
                min_side_px,
                mirror_ok,
            } => {
                let target = dir.clone();
                self.spawn(ctx, "project-save", move || {
                    let saved = update_project(&dir, |project| {
                        project.dataset.min_side_px = min_side_px;
                        project.dataset.mirror_ok = mirror_ok;
                    })
                    .map(Box::new)
                    .map_err(|e| e.to_string());
                    AppEvent::ProjectSaved(target, saved)
                });
            }
            _ => {}
        }
    }

    fn start_dataset_scan(&mut self, ctx: &egui::Context, dir: PathBuf) {
        let open = match &self.projects {
            super::ProjectsState::Ready(rows) => rows
                .iter()
                .find(|r| r.dir == dir)
                .and_then(|r| r.project.as_ref().ok())
                .cloned(),
            _ => None,
        };
        let Some(open) = open else {
            let message = "the project could not be read, so neither can its data".to_owned();
            self.dataset.scans.insert(dir, DatasetScan::failed(message));
            return;
        };
        if let Some(scan) = self.dataset.scans.get(&dir) {
            scan.cancel();
        }
        self.dataset.generation += 1;
        let generation = self.dataset.generation;
        let cancel = Arc::new(AtomicBool::new(false));
        self.dataset.scans.insert(
            dir.clone(),
            DatasetScan {
                state: Loading::started(),
                cancel: cancel.clone(),
                generation,
            },
        );
        let (events, repaint) = (self.events_tx.clone(), ctx.clone());
        self.spawn(ctx, "dataset-scan", move || {
            let result = scan_project_data(&open, &cancel, generation, |done, total| {
                let dir = dir.clone();
                let progress = AppEvent::DatasetProgress {
                    dir,
                    generation,
                    done,
                    total,
                };
                let _ = events.send(progress);
                repaint.request_repaint();
            });
            AppEvent::DatasetScanned {
                dir,
                generation,
                result: result.map(Box::new).map_err(|e| e.to_string()),
            }
        });
    }

    /// Applies an event of the Dataset view's workers.
    pub(super) fn dataset_event(&mut self, ctx: &egui::Context, event: AppEvent) {
        match event {
            AppEvent::DatasetProgress {
                dir,
                generation,
                done,
                total,
            } => {
                if let Some(scan) = self.dataset.scans.get_mut(&dir)
                    && scan.generation == generation
                    && scan.state.is_running()
                {
                    scan.state.set_progress(done, total);
                }
            }
            AppEvent::DatasetScanned {
                dir,
                generation,
                result,
            } => {
                if let Some(scan) = self.dataset.scans.get_mut(&dir)
                    && scan.generation == generation
                    && scan.state.is_running()
                {
                    scan.state = Loading::from_result(result.map(Arc::from));
                }
            }
            AppEvent::Thumbnail(done) => self.dataset.thumbnails.insert(ctx, *done),
            AppEvent::ProjectSaved(dir, saved) => {
                let rescan = self.project_saved(&dir, saved);
                if rescan {
                    self.start_dataset_scan(ctx, dir);
                }
            }
            _ => {}
        }
    }

    /// Takes a saved project into its row; true when its data set's checks changed (the
    /// tiny-image side), so that its scan is out of date.
    pub(super) fn project_saved(
        &mut self,
        dir: &std::path::Path,
        saved: Result<Box<Project>, String>,
    ) -> bool {
        match saved {
            Ok(project) => {
                self.status = Some(Ok(format!("Saved '{}'", project.name)));
                if let super::ProjectsState::Ready(rows) = &mut self.projects
                    && let Some(row) = rows.iter_mut().find(|r| r.dir == dir)
                {
                    let rescan = row.project.as_ref().is_ok_and(|old| {
                        old.project.dataset.min_side_px != project.dataset.min_side_px
                    }) && self.dataset.scans.contains_key(dir);
                    row.project = Ok(OpenProject {
                        dir: dir.to_owned(),
                        project: *project,
                    });
                    return rescan;
                }
                false
            }
            Err(message) => {
                self.status = Some(Err(message));
                false
            }
        }
    }

    /// Starts the render threads when first needed and hands them the wanted thumbnails.
    pub(super) fn dispatch_thumbnails(&mut self, ctx: &egui::Context) {
        if !self.dataset.thumbnails.is_busy() {
            return;
        }
        if self.dataset.pool.is_none() {
            match ThumbnailPool::start(&self.events_tx, ctx) {
                Ok(pool) => self.dataset.pool = Some(pool),
                Err(e) => {
                    self.status = Some(Err(format!("could not start a thumbnail worker: {e}")));
                    return;
                }
            }
        }
        if let Some(pool) = &self.dataset.pool {
            self.dataset.thumbnails.dispatch(|job| pool.try_send(job));
        }
    }
}
