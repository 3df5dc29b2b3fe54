//! The inspection tabs (Inspector, Embeddings, Compare): their place in the tab bar, their
//! views with the run they share, and the layout that picks one.

use std::path::Path;
use std::sync::Arc;

use crate::inspect::task::offers;
use crate::runtime::inspect::{InspectData, InspectSources, Loading, RunInspection};
use crate::runtime::runs::RunCatalogue;
use crate::runtime::thumbnails::ThumbnailCache;
use crate::runtime::{CentralTab, UiCommand, ViewRequests};
use crate::ui::compare::CompareView;
use crate::ui::embeddings::EmbeddingsView;
use crate::ui::inspector::InspectorView;

/// The inspection tabs and their names, in the order of the tab bar.
pub const TABS: [(CentralTab, &str); 3] = [
    (CentralTab::Inspector, "Inspector"),
    (CentralTab::Embeddings, "Embeddings"),
    (CentralTab::Compare, "Compare"),
];

/// Lays out inspection tab `tab` for the project at `project`.
#[allow(clippy::too_many_arguments)] // One call site; the parts are unrelated borrows.
pub fn tabs_ui(
    tabs: &mut InspectTabs,
    runs: &RunCatalogue,
    tab: CentralTab,
    ui: &mut egui::Ui,
    project: &Path,
    curation: Option<&crate::project::Curation>,
    thumbnails: &mut ThumbnailCache,
    requests: &mut ViewRequests,
    commands: &mut Vec<UiCommand>,
) {
    if let Some(index) = requests.show_in_inspector.take() {
        tabs.inspector.show(index);
    }
    let InspectTabs {
        data,
        run,
        inspector,
        embeddings,
        compare,
    } = tabs;
    let sources = InspectSources {
        data,
        runs,
        curation,
    };
    match tab {
        CentralTab::Inspector => inspector.ui(ui, project, run, sources, thumbnails, commands),
        CentralTab::Embeddings => embeddings.ui(ui, project, run, sources, thumbnails, commands),
        CentralTab::Compare => compare.ui(ui, project, sources, thumbnails, commands),
        _ => {}
    }
}

/// The inspection tabs: their runtime data and their views.
#[derive(Default)]
pub struct InspectTabs {
    /// Computed data.
    pub data: InspectData,
    /// The run the Inspector and Embeddings tabs show.
    pub run: Option<String>,
    /// The Inspector view.
    pub inspector: InspectorView,
    /// The Embeddings view.
    pub embeddings: EmbeddingsView,
    /// The Compare view.
    pub compare: CompareView,
}

impl InspectTabs {
    /// Stops every long job (on shutdown).
    pub fn cancel_all(&self) {
        self.data.cancel_all();
    }

    /// Whether nothing this tab shows is still being computed (for screenshots).
    pub fn settled(&self, runs: &RunCatalogue, tab: CentralTab, project: &Path) -> bool {
        let data = &self.data;
        let runs_listed = runs.listed(project);
        let running = |l: &Loading<Arc<RunInspection>>| matches!(l, Loading::Running { .. });
        let loads_done = !data.inspections.values().any(running);
        let cams_done = !data
            .cams
            .values()
            .any(|c| matches!(c, Loading::Running { .. }));
        let neighbours_done = !data
            .neighbours
            .values()
            .any(|n| matches!(n, Loading::Running { .. }));
        // A run without embeddings in the Embeddings tab loads nothing (the tab says why).
        let seg_chosen = match (runs.get(project), &self.run) {
            (Some(Loading::Ready(runs)), Some(id)) => runs
                .iter()
                .any(|r| &r.id == id && !offers(r.task).embeddings),
            _ => false,
        };
        // No runs (or a run list that failed) leaves nothing to load: the tab says so.
        let nothing_to_load = match runs.get(project) {
            Some(Loading::Ready(runs)) => runs.is_empty(),
            Some(Loading::Failed(_)) => true,
            _ => false,
        };
        let any_loaded = data.inspections.keys().any(|(p, _)| p == project)
            || data.seg.any_of(project)
            || data.det.runs.keys().any(|(p, _)| p == project)
            || (tab == CentralTab::Embeddings && seg_chosen)
            || nothing_to_load;
        match tab {
            CentralTab::Inspector | CentralTab::Embeddings => {
                let seg_done = data.seg.idle() && data.det.idle();
                runs_listed && loads_done && cams_done && neighbours_done && seg_done && any_loaded
            }
            CentralTab::Compare => runs_listed && loads_done && cams_done && data.det.idle(),
            _ => true,
        }
    }
}
