//! The eframe application: drains worker events under a time budget, lays out the views and
//! runs the commands they emit after the frame. Never calls libtorch, never blocks.

mod curation;
pub mod dataset;
mod folder_jobs;
pub mod inspect;
pub mod inspect_det;
pub mod inspect_jobs;
pub mod inspect_seg;
mod runs;
pub mod seg_jobs;
mod shortcuts;
pub mod study;
pub mod training;
mod training_settings;
mod try_it;
mod weights;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use self::dataset::DatasetRuntime;
use self::folder_jobs::{list_subfolders, system_folder_dialog_available};
use self::shortcuts::theme_ui;
use crate::data::preview::preview_folder;
use crate::model::backbone::known_backbones;
use crate::model::facts::backbone_facts;
use crate::project::{
    DataLocation, Project, create_project, delete_project, duplicate_project, rename_project,
};
use crate::runtime::dataset::DatasetScan;
pub use crate::runtime::projects::{ProjectRow, ProjectsState, scan_projects};
use crate::runtime::runs::RunCatalogue;
use crate::runtime::training::TrainingRuntime;
pub use crate::runtime::{AppEvent, CentralTab, FactsCache, UiCommand, ViewRequests};
use crate::screenshot::ScreenshotPlan;
use crate::ui::inspect_tabs::{self, InspectTabs};
use crate::ui::job_panel::job_panel_ui;
use crate::ui::project_tabs;
use crate::ui::{
    dataset::DatasetView, new_project::NewProjectView, project_list::ProjectListView,
    project_overview::ProjectOverviewView, training::TrainingView,
};

/// Thread name of the folder-picker worker (not joined at shutdown).
const FOLDER_PICKER: &str = "folder-picker";

/// Longest time per frame spent applying worker events.
const EVENT_BUDGET: Duration = Duration::from_millis(4);

/// UI preferences kept between sessions in eframe's storage (never the project file).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct UiPrefs {
    /// The project folder that was selected.
    pub selected_project: Option<PathBuf>,
    /// The central tab shown.
    pub tab: CentralTab,
}

/// The workbench window.
pub struct WorkbenchApp {
    projects_dir: PathBuf,
    projects: ProjectsState,
    selected: Option<PathBuf>,
    events_tx: SyncSender<AppEvent>,
    events_rx: Receiver<AppEvent>,
    workers: Vec<JoinHandle<()>>,
    project_list: ProjectListView,
    overview: ProjectOverviewView,
    new_project: NewProjectView,
    status: Option<Result<String, String>>,
    facts: FactsCache,
    commands: Vec<UiCommand>,
    screenshot: Option<ScreenshotPlan>,
    tab: CentralTab,
    dataset: DatasetRuntime,
    dataset_view: DatasetView,
    start_project: Option<String>,
    training: TrainingRuntime,
    training_view: TrainingView,
    study: crate::runtime::study::StudyRuntime,
    study_view: crate::ui::study::StudyView,
    try_it: crate::runtime::try_it::TryRuntime,
    try_view: crate::ui::try_it::TryView,
    /// Images the Try-it tab predicts once it has chosen a run (`gui --try`).
    pending_try: Vec<PathBuf>,
    inspect: InspectTabs,
    runs: RunCatalogue,
    /// The run of the live job whose start the run lists have seen.
    announced_run: Option<String>,
    requests: ViewRequests,
}

impl WorkbenchApp {
    /// Creates the app and starts scanning `projects_dir` on a worker.
    pub fn new(ctx: &egui::Context, projects_dir: PathBuf) -> Self {
        let (events_tx, events_rx) = sync_channel(64);
        let mut app = Self {
            projects_dir,
            projects: ProjectsState::started(),
            selected: None,
            events_tx,
            events_rx,
            workers: Vec::new(),
            project_list: ProjectListView,
            overview: ProjectOverviewView::default(),
            new_project: NewProjectView::default(),
            status: None,
            facts: FactsCache::new(),
            commands: Vec::new(),
            screenshot: None,
            tab: CentralTab::Overview,
            dataset: DatasetRuntime::default(),
            dataset_view: DatasetView::default(),
            start_project: None,
            training: TrainingRuntime::default(),
            training_view: TrainingView::default(),
            study: Default::default(),
            study_view: Default::default(),
            try_it: Default::default(),
            try_view: Default::default(),
            pending_try: Vec::new(),
            inspect: InspectTabs::default(),
            runs: RunCatalogue::default(),
            announced_run: None,
            requests: ViewRequests::default(),
        };
        app.start_scan(ctx);
        app
    }

    /// Restores preferences saved by an earlier session.
    pub fn with_prefs(mut self, prefs: UiPrefs) -> Self {
        self.selected = prefs.selected_project;
        self.tab = prefs.tab;
        self
    }

    /// Opens on this tab, with the project of this name (or folder name) selected.
    pub fn with_start(mut self, tab: Option<CentralTab>, project: Option<String>) -> Self {
        if let Some(tab) = tab {
            self.tab = tab;
        }
        self.start_project = project;
        self
    }

    /// Opens the Inspector on its thumbnail grid when `grid` holds (screenshots).
    pub fn with_inspector_grid(mut self, grid: bool) -> Self {
        if grid {
            let mode = crate::ui::inspector_nav::InspectorMode::Grid;
            self.inspect.inspector.set_mode(mode);
        }
        self
    }

    /// New Training-tab settings start from `template` (with the project's backbone and
    /// input size), e.g. one epoch and one thread in tests.
    pub fn with_training_defaults(mut self, template: crate::train::TrainConfig) -> Self {
        self.training_view = TrainingView::with_template(template);
        self
    }

    /// The new-project dialog (tests read its preview).
    pub fn new_project(&self) -> &NewProjectView {
        &self.new_project
    }

    /// The central tab shown.
    pub fn tab(&self) -> CentralTab {
        self.tab
    }

    /// The selected project's folder.
    pub fn selected_project(&self) -> Option<&Path> {
        self.selected.as_deref()
    }

    /// Whether a project's data scan finished and the thumbnails asked for are drawn.
    pub fn dataset_settled(&self, dir: &Path) -> bool {
        self.dataset.settled(dir)
    }

    /// The state of a project's data scan, if one was started.
    pub fn dataset_scan(&self, dir: &Path) -> Option<&DatasetScan> {
        self.dataset.scans.get(dir)
    }

    /// The Dataset tab's view (tests read what it drew).
    pub fn dataset_view(&self) -> &DatasetView {
        &self.dataset_view
    }

    /// Takes a screenshot once the projects are listed, then closes the window.
    pub fn with_screenshot(mut self, plan: ScreenshotPlan) -> Self {
        self.screenshot = Some(plan);
        self
    }

    /// The project list as currently known.
    pub fn projects(&self) -> &ProjectsState {
        &self.projects
    }

    /// The status line's message: `Ok` for information, `Err` for a failure.
    pub fn status(&self) -> Option<&Result<String, String>> {
        self.status.as_ref()
    }

    fn start_scan(&mut self, ctx: &egui::Context) {
        self.projects = ProjectsState::started();
        let dir = self.projects_dir.clone();
        self.spawn(ctx, "project-scan", move || {
            AppEvent::ProjectsScanned(scan_projects(&dir))
        });
    }

    /// Runs `job` on a worker thread; its event is sent to the UI, which is woken.
    fn spawn(
        &mut self,
        ctx: &egui::Context,
        name: &str,
        job: impl FnOnce() -> AppEvent + Send + 'static,
    ) {
        let tx = self.events_tx.clone();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                // The UI may have closed; nothing to do then.
                let _ = tx.send(job());
                ctx.request_repaint();
            });
        match spawned {
            Ok(handle) => self.workers.push(handle),
            Err(e) => self.status = Some(Err(format!("could not start a worker: {e}"))),
        }
        self.workers.retain(|w| !w.is_finished());
    }

    fn project_op(
        &mut self,
        ctx: &egui::Context,
        op: impl FnOnce() -> Result<(String, Option<PathBuf>), String> + Send + 'static,
    ) {
        self.spawn(ctx, "project-op", move || AppEvent::ProjectOpFinished(op()));
    }

    fn drain_events(&mut self, ctx: &egui::Context) {
        let started = Instant::now();
        while started.elapsed() < EVENT_BUDGET {
            match self.events_rx.try_recv() {
                Ok(AppEvent::ProjectsScanned(state)) => {
                    self.select_start_project(&state);
                    // A remembered project missing from this folder (another projects
                    // folder, or deleted) gives way to the first one listed.
                    if let ProjectsState::Ready(rows) = &state
                        && !rows.iter().any(|r| self.selected.as_ref() == Some(&r.dir))
                    {
                        self.selected = rows.first().map(|r| r.dir.clone());
                    }
                    self.projects = state;
                }
                Ok(AppEvent::DataFolderPicked(Some(dir))) => {
                    self.requests.picked_data_dir = Some(dir.clone());
                    self.commands.push(UiCommand::PreviewDataFolder(dir));
                }
                Ok(AppEvent::DataFolderPicked(None)) => self.requests.no_folder_picked = true,
                Ok(AppEvent::FolderPreviewed(dir, preview)) => {
                    self.requests.folder_preview = Some((dir, preview));
                }
                Ok(AppEvent::FolderListed(dir, listing)) => {
                    self.requests.folder_listing = Some((dir, listing));
                }
                Ok(AppEvent::NoSystemFolderDialog) => self.requests.browse_in_window = true,
                Ok(AppEvent::BackboneMeasured(name, facts)) => {
                    self.facts.insert(name, Some(facts));
                }
                Ok(AppEvent::ProjectOpFinished(result)) => {
                    if let Ok((_, Some(dir))) = &result {
                        self.selected = Some(dir.clone());
                    }
                    self.status = Some(result.map(|(message, _)| message));
                    self.commands.push(UiCommand::RescanProjects);
                }
                Ok(AppEvent::RunsListed {
                    dir,
                    generation,
                    result,
                }) => self.runs_listed(dir, generation, result),
                Ok(AppEvent::Curated(dir, done)) => self.curated(dir, done),
                Ok(AppEvent::Training(event)) => self.training_event(ctx, event),
                Ok(AppEvent::Inspect(event)) => self.inspect_event(ctx, event),
                Ok(AppEvent::Study(event)) => self.study_event(event),
                Ok(AppEvent::Try(event)) => self.try_event(ctx, event),
                Ok(AppEvent::Weights(event)) => self.weights_event(ctx, event),
                Ok(event) => self.dataset_event(ctx, event),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        self.drain_training(ctx, started + EVENT_BUDGET);
    }

    fn run_commands(&mut self, ctx: &egui::Context) {
        for command in std::mem::take(&mut self.commands) {
            match command {
                UiCommand::RescanProjects => {
                    self.start_scan(ctx);
                    self.list_all_runs(ctx);
                }
                UiCommand::ListRuns(dir) => self.list_runs(ctx, dir),
                UiCommand::SelectProject(dir) => self.selected = Some(dir),
                UiCommand::OpenNewProject(dir) => {
                    if let Some(dir) = &dir {
                        self.commands
                            .push(UiCommand::PreviewDataFolder(dir.clone()));
                    }
                    self.requests.open_new_project = Some(dir);
                }
                UiCommand::PickDataFolder => self.spawn(ctx, FOLDER_PICKER, || {
                    if !system_folder_dialog_available() {
                        return AppEvent::NoSystemFolderDialog;
                    }
                    AppEvent::DataFolderPicked(rfd::FileDialog::new().pick_folder())
                }),
                UiCommand::ListFolder(dir) => self.spawn(ctx, "list-folder", move || {
                    let listing = list_subfolders(&dir);
                    AppEvent::FolderListed(dir, listing)
                }),
                UiCommand::PreviewDataFolder(dir) => self.spawn(ctx, "preview-folder", move || {
                    let preview = preview_folder(&dir).map_err(|e| e.to_string());
                    AppEvent::FolderPreviewed(dir, preview)
                }),
                UiCommand::CreateProject {
                    name,
                    data_dir,
                    task,
                    backbone,
                    input_size_px,
                    mirror_ok,
                    profile,
                } => {
                    let root = self.projects_dir.clone();
                    self.project_op(ctx, move || {
                        if !data_dir.is_dir() {
                            return Err(format!(
                                "the data folder does not exist: {}",
                                data_dir.display()
                            ));
                        }
                        let data_dir = std::fs::canonicalize(&data_dir).unwrap_or(data_dir);
                        let project = Project {
                            name: name.clone(),
                            task,
                            data: DataLocation::Path(data_dir),
                            backbone,
                            input_size_px,
                            dataset: crate::project::DatasetConfig {
                                mirror_ok,
                                profile,
                                ..Default::default()
                            },
                            ..Project::default()
                        };
                        let dir = create_project(&root, &project).map_err(|e| e.to_string())?;
                        Ok((format!("Created project '{name}'"), Some(dir)))
                    });
                }
                UiCommand::RenameProject(dir, name) => self.project_op(ctx, move || {
                    rename_project(&dir, &name).map_err(|e| e.to_string())?;
                    Ok((format!("Renamed to '{name}'"), Some(dir)))
                }),
                UiCommand::DuplicateProject(dir) => self.project_op(ctx, move || {
                    let copy = duplicate_project(&dir).map_err(|e| e.to_string())?;
                    Ok(("Duplicated the project".to_owned(), Some(copy)))
                }),
                UiCommand::MeasureBackbone(name) => {
                    if self.facts.contains_key(&name) {
                        continue;
                    }
                    self.facts.insert(name.clone(), None);
                    self.spawn(ctx, "measure-backbone", move || {
                        let facts = known_backbones()
                            .into_iter()
                            .find(|b| b.name == name)
                            .ok_or_else(|| format!("unknown backbone '{name}'"))
                            .and_then(|info| backbone_facts(&info).map_err(|e| e.to_string()));
                        AppEvent::BackboneMeasured(name, facts)
                    });
                }
                command @ (UiCommand::ScanDataset(_)
                | UiCommand::CancelDatasetScan(_)
                | UiCommand::SetDatasetWindow(..)
                | UiCommand::SetDatasetChecks { .. }) => self.dataset_command(ctx, command),
                command @ (UiCommand::Curate { .. } | UiCommand::UndoCuration(_)) => {
                    self.curation_command(ctx, command)
                }
                UiCommand::Training(command) => self.training_command(ctx, command),
                UiCommand::Inspect(command) => self.inspect_command(ctx, command),
                UiCommand::Study(command) => self.study_command(ctx, command),
                UiCommand::Try(command) => self.try_command(ctx, command),
                UiCommand::Weights(command) => self.weights_command(ctx, command),
                UiCommand::DeleteProject(dir) => {
                    if self.selected.as_ref() == Some(&dir) {
                        self.selected = None;
                    }
                    self.project_op(ctx, move || {
                        let trashed = delete_project(&dir).map_err(|e| e.to_string())?;
                        Ok((format!("Moved the project to {}", trashed.display()), None))
                    });
                }
            }
        }
    }
}

impl eframe::App for WorkbenchApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.drain_events(ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.dataset.thumbnails.begin_frame();
        egui::Panel::top("top_bar").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading("transfer-workbench");
                ui.separator();
                if ui
                    .button("New project…")
                    .on_hover_text("Ctrl+N, or drop a folder on the window")
                    .clicked()
                {
                    self.commands.push(UiCommand::OpenNewProject(None));
                }
                if ui.button("Rescan").on_hover_text("F5").clicked() {
                    self.commands.push(UiCommand::RescanProjects);
                }
                theme_ui(ui);
                ui.separator();
                if let Some((dir, tab)) =
                    crate::ui::job_indicator::job_indicator_ui(ui, &self.training, &self.study)
                {
                    self.selected = Some(dir);
                    self.tab = tab;
                }
                // Last, so a long path gives way (shortened, whole on hover) on narrow windows.
                let folder = format!("Projects folder: {}", self.projects_dir.display());
                ui.add(egui::Label::new(&folder).truncate())
                    .on_hover_text(folder);
            });
        });
        egui::Panel::bottom("status_bar").show(ui, |ui| match &self.status {
            Some(Ok(message)) => {
                ui.label(message);
            }
            Some(Err(message)) => {
                ui.colored_label(ui.visuals().error_fg_color, message);
            }
            None => {
                ui.label("Drop a folder of labelled images on the window to start a project.");
            }
        });
        self.shortcuts(&ctx);
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_owned())
                .collect()
        });
        self.take_dropped(dropped);
        egui::Panel::left("project_list")
            .resizable(true)
            .default_size(200.0)
            .show(ui, |ui| {
                self.project_list.ui(
                    ui,
                    &self.projects,
                    self.selected.as_deref(),
                    &mut self.commands,
                );
            });
        egui::CentralPanel::default().show(ui, |ui| {
            let row = match &self.projects {
                ProjectsState::Ready(rows) => rows
                    .iter()
                    .find(|r| Some(r.dir.as_path()) == self.selected.as_deref()),
                _ => None,
            };
            project_tabs::tab_bar_ui(ui, &mut self.tab);
            ui.separator();
            match (self.tab, row) {
                (CentralTab::Dataset, Some(row)) => self.dataset_view.ui(
                    ui,
                    row,
                    &mut self.dataset.thumbnails,
                    self.dataset.scans.get(&row.dir),
                    &mut self.commands,
                ),
                (CentralTab::Training, Some(row)) => {
                    let here = &row.dir;
                    let (training, study) = (&self.training, &self.study);
                    if let Some(dir) = job_panel_ui(ui, training, study, &self.projects, here) {
                        self.commands.push(UiCommand::SelectProject(dir));
                    }
                    self.training_view.ui(
                        ui,
                        row,
                        &self.facts,
                        &self.training,
                        &self.runs,
                        &mut self.commands,
                    )
                }
                (
                    tab @ (CentralTab::Inspector | CentralTab::Embeddings | CentralTab::Compare),
                    Some(row),
                ) => inspect_tabs::tabs_ui(
                    &mut self.inspect,
                    &self.runs,
                    tab,
                    ui,
                    &row.dir,
                    row.project
                        .as_ref()
                        .ok()
                        .map(|open| &open.project.dataset.curation),
                    &mut self.dataset.thumbnails,
                    &mut self.requests,
                    &mut self.commands,
                ),
                (CentralTab::Study, Some(row)) => {
                    self.study_view
                        .ui(ui, row, &self.study, &self.training, &mut self.commands)
                }
                (CentralTab::TryIt, Some(row)) => {
                    self.try_view.ui(
                        ui,
                        row,
                        &self.runs,
                        &self.try_it,
                        &mut self.dataset.thumbnails,
                        &mut self.commands,
                    );
                    if let Some(run) = self.try_view.run_for(&row.dir)
                        && !self.pending_try.is_empty()
                    {
                        self.commands.push(
                            crate::runtime::try_it::TryCommand::Predict {
                                project: row.dir.clone(),
                                run: run.to_owned(),
                                paths: std::mem::take(&mut self.pending_try),
                            }
                            .into(),
                        );
                    }
                }
                _ => self.overview.ui(ui, row, &self.facts, &mut self.commands),
            }
        });
        self.new_project
            .ui(&ctx, &self.facts, &mut self.requests, &mut self.commands);
        self.project_arrows(&ctx);
        self.run_commands(&ctx);
        self.dispatch_thumbnails(&ctx);
        let listed = matches!(
            self.projects,
            ProjectsState::Ready(_) | ProjectsState::Failed(_)
        );
        let shown = match (self.tab, &self.selected) {
            (CentralTab::Dataset, Some(dir)) => self.dataset.settled(dir),
            (CentralTab::Training, Some(dir)) => {
                self.runs.listed(dir)
                    && self.training.settled()
                    && self.training.weights.listed()
                    && self.facts.values().all(Option::is_some)
            }
            (CentralTab::Study, Some(_)) => self.study.settled() && !self.training.busy(),
            (CentralTab::TryIt, Some(dir)) => {
                self.runs.listed(dir)
                    && self.pending_try.is_empty()
                    && self.try_it.settled()
                    && !self.dataset.thumbnails.is_busy()
            }
            (tab, Some(dir)) => {
                self.inspect.settled(&self.runs, tab, dir) && !self.dataset.thumbnails.is_busy()
            }
            _ => true,
        };
        if let Some(plan) = &mut self.screenshot
            && listed
            && shown
        {
            plan.tick(&ctx);
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        let prefs = UiPrefs {
            selected_project: self.selected.clone(),
            tab: self.tab,
        };
        eframe::set_value(storage, eframe::APP_KEY, &prefs);
    }
}

impl Drop for WorkbenchApp {
    /// Waits for the workers so none is inside libtorch while the process exits. The folder
    /// picker is the exception: it waits on the user and holds no libtorch state.
    /// Workers blocked on a full event channel are let through by draining it meanwhile.
    fn drop(&mut self) {
        self.dataset.cancel_all();
        let job = self.training.shutdown();
        self.inspect.cancel_all();
        let mut workers = std::mem::take(&mut self.workers);
        if let Some(pool) = self.dataset.pool.take() {
            workers.extend(pool.close());
        }
        workers.retain(|w| w.thread().name() != Some(FOLDER_PICKER));
        while !workers.iter().all(JoinHandle::is_finished)
            || job
                .as_ref()
                .is_some_and(|(handle, _)| !handle.is_finished())
        {
            while self.events_rx.try_recv().is_ok() {}
            if let Some((_, events)) = &job {
                while events.try_recv().is_ok() {}
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if let Some((handle, _)) = job {
            handle.join();
        }
        for worker in workers {
            let _ = worker.join();
        }
    }
}
