//! The app's side of the run catalogue: lists a project's runs on a worker, takes the
//! newest listing, and lists again whenever runs change (a job starts or ends, the projects
//! are rescanned), so every view shows the same runs at once.

use std::path::{Path, PathBuf};

use super::{AppEvent, WorkbenchApp};
use crate::runtime::runs::RunCatalogue;
use crate::train::catalogue::{RunListing, list_runs_checked};
use crate::train::status::RunState;

impl WorkbenchApp {
    /// The runs of every project the views asked about.
    pub fn runs(&self) -> &RunCatalogue {
        &self.runs
    }

    /// Lists the project's runs (again) on a worker; the old list stays shown meanwhile.
    pub(super) fn list_runs(&mut self, ctx: &egui::Context, dir: PathBuf) {
        let generation = self.runs.start(&dir);
        self.spawn(ctx, "list-runs", move || {
            let result = list_runs_checked(&dir).map_err(|e| e.to_string());
            AppEvent::RunsListed {
                dir,
                generation,
                result,
            }
        });
    }

    /// Takes a listing; the run this session trains shows as running.
    pub(super) fn runs_listed(
        &mut self,
        dir: PathBuf,
        generation: u64,
        result: Result<RunListing, String>,
    ) {
        if !self.runs.finish(dir.clone(), generation, result) {
            return;
        }
        let Some(live) = &self.training.live else {
            return;
        };
        if !(live.is_active() && live.dir == dir) {
            return;
        }
        let live_id = live.run_id.clone();
        self.runs.update(&dir, |runs| {
            if let Some(row) = runs.iter_mut().find(|r| live_id.as_ref() == Some(&r.id)) {
                row.status = RunState::Running;
                row.resumable = false;
            }
        });
    }

    /// A run of the project changed (it started, or its job ended): every view lists the
    /// runs again, and what was computed from the run's old checkpoint is dropped.
    pub(super) fn run_changed(&mut self, ctx: &egui::Context, dir: &Path, run_id: Option<&str>) {
        if let Some(run_id) = run_id {
            self.inspect.data.forget_run(dir, run_id);
        }
        self.list_runs(ctx, dir.to_owned());
    }

    /// Lists every known project's runs again (after a rescan of the projects).
    pub(super) fn list_all_runs(&mut self, ctx: &egui::Context) {
        for dir in self.runs.projects() {
            self.list_runs(ctx, dir);
        }
    }
}
