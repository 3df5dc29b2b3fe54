//! The eframe application: drains worker events under a time budget, lays out the views and
//! runs the commands they emit after the frame. Never calls libtorch, never blocks.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::project::{OpenProject, discover_projects};
use crate::screenshot::ScreenshotPlan;
use crate::ui::{project_list::ProjectListView, project_overview::ProjectOverviewView};

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
}

/// What views ask the app to do; run after the frame.
#[derive(Clone, Debug, PartialEq)]
pub enum UiCommand {
    /// Scan the projects folder again.
    RescanProjects,
    /// Show this project folder.
    SelectProject(PathBuf),
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
            overview: ProjectOverviewView,
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

    fn start_scan(&mut self, ctx: &egui::Context) {
        self.projects = ProjectsState::Scanning;
        let dir = self.projects_dir.clone();
        let tx = self.events_tx.clone();
        let ctx = ctx.clone();
        let handle = std::thread::Builder::new()
            .name("project-scan".into())
            .spawn(move || {
                let state = scan_projects(&dir);
                // The UI may have closed; nothing to do then.
                let _ = tx.send(AppEvent::ProjectsScanned(state));
                ctx.request_repaint();
            });
        match handle {
            Ok(handle) => self.workers.push(handle),
            Err(e) => {
                self.projects = ProjectsState::Failed(format!("could not start a worker: {e}"))
            }
        }
        self.workers.retain(|w| !w.is_finished());
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
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
    }

    fn run_commands(&mut self, ctx: &egui::Context) {
        for command in std::mem::take(&mut self.commands) {
            match command {
                UiCommand::RescanProjects => self.start_scan(ctx),
                UiCommand::SelectProject(dir) => self.selected = Some(dir),
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
                if ui.button("Rescan").clicked() {
                    self.commands.push(UiCommand::RescanProjects);
                }
            });
        });
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
            self.overview.ui(ui, row);
        });
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
