//! The eframe application: drains worker events under a time budget, lays out the views and
//! runs the commands they emit after the frame. Never calls libtorch, never blocks.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::project::{
    DataLocation, OpenProject, Project, Task, create_project, delete_project, detect_task,
    discover_projects, duplicate_project, rename_project,
};
use crate::screenshot::ScreenshotPlan;
use crate::ui::{
    new_project::NewProjectView, project_list::ProjectListView,
    project_overview::ProjectOverviewView,
};

/// Longest time per frame spent applying worker events.
const EVENT_BUDGET: Duration = Duration::from_millis(4);

/// A project folder as the UI shows it (plain data made on a worker).
#[derive(Clone, Debug)]
pub struct ProjectRow {
    /// The project folder.
    pub dir: PathBuf,
    /// The loaded project, or the message saying why it could not be read.
    pub project: Result<OpenProject, String>,
    /// Whether the project's data folder exists on this machine.
    pub data_present: bool,
}

impl ProjectRow {
    /// The name shown in lists: the project's name, else its folder name.
    pub fn title(&self) -> String {
        match &self.project {
            Ok(open) if !open.project.name.is_empty() => open.project.name.clone(),
            _ => self
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| self.dir.display().to_string()),
        }
    }
}

/// The state of the project list.
#[derive(Clone, Debug)]
pub enum ProjectsState {
    /// A scan is running on a worker.
    Scanning,
    /// The projects found, most recent first.
    Ready(Vec<ProjectRow>),
    /// The folder could not be listed.
    Failed(String),
}

/// Messages from workers to the UI thread.
#[derive(Debug)]
pub enum AppEvent {
    /// A scan of the projects folder finished.
    ProjectsScanned(ProjectsState),
    /// The folder picker closed (with a folder, or cancelled).
    DataFolderPicked(Option<PathBuf>),
    /// The task a data folder's layout suggests.
    TaskDetected(PathBuf, Task),
    /// A project operation finished: a message for the user, and the folder to select.
    ProjectOpFinished(Result<(String, Option<PathBuf>), String>),
}

/// What views ask the app to do; run after the frame.
#[derive(Clone, Debug, PartialEq)]
pub enum UiCommand {
    /// Scan the projects folder again.
    RescanProjects,
    /// Show this project folder.
    SelectProject(PathBuf),
    /// Open the new-project dialog, optionally with a data folder.
    OpenNewProject(Option<PathBuf>),
    /// Show the system folder picker for the new project's data.
    PickDataFolder,
    /// Detect the task of a data folder.
    DetectTask(PathBuf),
    /// Create a project in the projects folder.
    CreateProject {
        /// Display name.
        name: String,
        /// The labelled images.
        data_dir: PathBuf,
        /// Classification or segmentation.
        task: Task,
        /// Backbone name.
        backbone: String,
    },
    /// Give a project a new display name.
    RenameProject(PathBuf, String),
    /// Copy a project's settings into a new project.
    DuplicateProject(PathBuf),
    /// Move a project folder to the trash folder.
    DeleteProject(PathBuf),
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
    commands: Vec<UiCommand>,
    screenshot: Option<ScreenshotPlan>,
}

impl WorkbenchApp {
    /// Creates the app and starts scanning `projects_dir` on a worker.
    pub fn new(ctx: &egui::Context, projects_dir: PathBuf) -> Self {
        let (events_tx, events_rx) = sync_channel(64);
        let mut app = Self {
            projects_dir,
            projects: ProjectsState::Scanning,
            selected: None,
            events_tx,
            events_rx,
            workers: Vec::new(),
            project_list: ProjectListView,
            overview: ProjectOverviewView::default(),
            new_project: NewProjectView::default(),
            status: None,
            commands: Vec::new(),
            screenshot: None,
        };
        app.start_scan(ctx);
        app
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
        self.projects = ProjectsState::Scanning;
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

    fn drain_events(&mut self) {
        let started = Instant::now();
        while started.elapsed() < EVENT_BUDGET {
            match self.events_rx.try_recv() {
                Ok(AppEvent::ProjectsScanned(state)) => {
                    if self.selected.is_none()
                        && let ProjectsState::Ready(rows) = &state
                    {
                        self.selected = rows.first().map(|r| r.dir.clone());
                    }
                    self.projects = state;
                }
                Ok(AppEvent::DataFolderPicked(Some(dir))) => {
                    self.new_project.set_data_dir(dir.clone());
                    self.commands.push(UiCommand::DetectTask(dir));
                }
                Ok(AppEvent::DataFolderPicked(None)) => {}
                Ok(AppEvent::TaskDetected(dir, task)) => {
                    self.new_project.set_detected_task(&dir, task)
                }
                Ok(AppEvent::ProjectOpFinished(result)) => {
                    if let Ok((_, Some(dir))) = &result {
                        self.selected = Some(dir.clone());
                    }
                    self.status = Some(result.map(|(message, _)| message));
                    self.commands.push(UiCommand::RescanProjects);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
    }

    fn run_commands(&mut self, ctx: &egui::Context) {
        for command in std::mem::take(&mut self.commands) {
            match command {
                UiCommand::RescanProjects => self.start_scan(ctx),
                UiCommand::SelectProject(dir) => self.selected = Some(dir),
                UiCommand::OpenNewProject(dir) => {
                    if let Some(dir) = &dir {
                        self.commands.push(UiCommand::DetectTask(dir.clone()));
                    }
                    self.new_project.open_with(dir);
                }
                UiCommand::PickDataFolder => self.spawn(ctx, "folder-picker", || {
                    AppEvent::DataFolderPicked(rfd::FileDialog::new().pick_folder())
                }),
                UiCommand::DetectTask(dir) => self.spawn(ctx, "detect-task", move || {
                    let task = detect_task(&dir);
                    AppEvent::TaskDetected(dir, task)
                }),
                UiCommand::CreateProject {
                    name,
                    data_dir,
                    task,
                    backbone,
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

/// Lists and loads every project in `dir` (runs on a worker).
pub fn scan_projects(dir: &Path) -> ProjectsState {
    match discover_projects(dir) {
        Ok(entries) => ProjectsState::Ready(
            entries
                .into_iter()
                .map(|entry| {
                    let data_present = entry
                        .project
                        .as_ref()
                        .is_ok_and(|open| open.data_dir().exists());
                    ProjectRow {
                        dir: entry.dir,
                        project: entry.project.map_err(|e| e.to_string()),
                        data_present,
                    }
                })
                .collect(),
        ),
        Err(e) => ProjectsState::Failed(format!(
            "could not list the projects folder ({e}): {}",
            dir.display()
        )),
    }
}

impl eframe::App for WorkbenchApp {
    fn logic(&mut self, _ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.drain_events();
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        egui::Panel::top("top_bar").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading("transfer-workbench");
                ui.separator();
                ui.label(format!("Projects folder: {}", self.projects_dir.display()));
                if ui.button("New project…").clicked() {
                    self.commands.push(UiCommand::OpenNewProject(None));
                }
                if ui.button("Rescan").clicked() {
                    self.commands.push(UiCommand::RescanProjects);
                }
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
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_owned())
                .collect()
        });
        if let Some(dir) = dropped.into_iter().next() {
            self.commands.push(UiCommand::OpenNewProject(Some(dir)));
        }
        egui::Panel::left("project_list")
            .resizable(true)
            .default_size(260.0)
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
            self.overview.ui(ui, row, &mut self.commands);
        });
        self.new_project.ui(&ctx, &mut self.commands);
        self.run_commands(&ctx);
        if let Some(plan) = &mut self.screenshot
            && matches!(
                self.projects,
                ProjectsState::Ready(_) | ProjectsState::Failed(_)
            )
        {
            plan.tick(&ctx);
        }
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}
