//! The runs of each project, listed from the run folders by a worker: the one list every
//! view reads (Training, Inspector, Embeddings, Compare). The app lists a project's runs
//! again whenever they change (a run starts, ends or is deleted, the projects are rescanned,
//! the user asks), so a run appears in every view at once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Loading;
use crate::train::catalogue::{DamagedRun, RunListing, RunSummary};

/// A project's runs (oldest first), being listed, or why they could not be.
pub type RunsState = Loading<Arc<Vec<RunSummary>>>;

/// The run lists of the projects the views asked about.
#[derive(Debug, Default)]
pub struct RunCatalogue {
    lists: HashMap<PathBuf, RunsState>,
    /// Listings started per project; a listing's result is taken only if it is the newest.
    generations: HashMap<PathBuf, u64>,
    /// The run folders of each listed project that cannot be read.
    damaged: HashMap<PathBuf, Vec<DamagedRun>>,
}

impl RunCatalogue {
    /// The project's run list, if it was asked for.
    pub fn get(&self, project: &Path) -> Option<&RunsState> {
        self.lists.get(project)
    }

    /// The project's runs, if listed.
    pub fn ready(&self, project: &Path) -> Option<&Arc<Vec<RunSummary>>> {
        self.get(project).and_then(Loading::ready)
    }

    /// The project's run folders that cannot be read, with why (empty when none or unlisted).
    pub fn damaged(&self, project: &Path) -> &[DamagedRun] {
        self.damaged.get(project).map_or(&[], Vec::as_slice)
    }

    /// Whether the project's list is read (or failed).
    pub fn listed(&self, project: &Path) -> bool {
        self.get(project).is_some_and(|l| !l.is_running())
    }

    /// Notes a new listing of `project` and returns its generation. The old list stays
    /// shown until the new one arrives.
    pub fn start(&mut self, project: &Path) -> u64 {
        let generation = self.generations.entry(project.to_owned()).or_default();
        *generation += 1;
        self.lists
            .entry(project.to_owned())
            .or_insert_with(Loading::started);
        *generation
    }

    /// Takes the result of listing `generation` of `project`, unless a newer one started.
    pub fn finish(
        &mut self,
        project: PathBuf,
        generation: u64,
        result: Result<RunListing, String>,
    ) -> bool {
        if self.generations.get(&project) != Some(&generation) {
            return false;
        }
        let result = result.map(|listing| {
            self.damaged.insert(project.clone(), listing.damaged);
            Arc::new(listing.runs)
        });
        self.lists.insert(project, Loading::from_result(result));
        true
    }

    /// Every project with a list (to list again after a rescan).
    pub fn projects(&self) -> Vec<PathBuf> {
        self.lists.keys().cloned().collect()
    }

    /// Changes the listed runs of `project` in place (the app marks the live run).
    pub fn update(&mut self, project: &Path, change: impl FnOnce(&mut Vec<RunSummary>)) {
        if let Some(Loading::Ready(runs)) = self.lists.get_mut(project) {
            change(Arc::make_mut(runs));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_newest_listing_is_taken_and_the_old_list_stays_meanwhile() {
        let mut catalogue = RunCatalogue::default();
        let project = PathBuf::from("p");
        let first = catalogue.start(&project);
        assert!(!catalogue.listed(&project));
        assert!(catalogue.finish(project.clone(), first, Ok(RunListing::default())));
        assert!(catalogue.ready(&project).is_some_and(|r| r.is_empty()));
        let older = catalogue.start(&project);
        let newer = catalogue.start(&project);
        assert!(
            catalogue.ready(&project).is_some(),
            "the old list stays shown"
        );
        assert!(!catalogue.finish(project.clone(), older, Err("late".into())));
        assert!(catalogue.finish(project.clone(), newer, Err("gone".into())));
        assert!(matches!(catalogue.get(&project), Some(Loading::Failed(m)) if m == "gone"));
    }
}
