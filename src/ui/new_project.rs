//! The "New project" dialog: a name, a data folder (typed, picked, browsed in the window or
//! dropped) with a preview of what it holds (layout, classes and counts, problems, image
//! size), the task (detected from the folder), the input size (proposed from the images) and
//! a backbone. It refuses, in place and keeping what was typed, a folder that is missing,
//! holds no images or a single class. Escape closes it.

use std::path::PathBuf;

use crate::data::preview::{FolderPreview, INPUT_SIZES};
use crate::model::backbone::known_backbones;
use crate::project::TaskKind;
use crate::runtime::{FactsCache, Loading, UiCommand, ViewRequests};
use crate::ui::folder_browser::{BrowserOutcome, FolderBrowser};

/// Seconds a typed folder path must stay unchanged before it is looked at.
const PREVIEW_DELAY_S: f64 = 0.3;

/// Classes named in the preview before "and N more".
const CLASSES_SHOWN: usize = 8;

/// The dialog's state while it is open.
#[derive(Debug, Default)]
pub struct NewProjectView {
    /// Whether the dialog is shown.
    open: bool,
    name: String,
    /// The name was taken from the data folder (a new folder may rename it).
    name_is_folder: bool,
    data_dir: String,
    task: TaskKind,
    backbone: String,
    input_size_px: u32,
    /// The user chose the input size (the preview no longer proposes one).
    input_size_chosen: bool,
    /// The user says a mirrored image keeps its label (training may flip).
    mirror_ok: bool,
    /// The preview of a folder: which folder, and its state.
    preview: Option<(PathBuf, Loading<FolderPreview>)>,
    /// When (egui time) the typed path is to be looked at.
    preview_due: Option<f64>,
    /// The system picker closed without a folder.
    pick_hint: bool,
    browser: Option<FolderBrowser>,
    error: Option<String>,
}

impl NewProjectView {
    /// Whether the dialog is shown.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// The preview of the folder typed now, when it is ready.
    pub fn preview(&self) -> Option<&FolderPreview> {
        match &self.preview {
            Some((dir, Loading::Ready(preview))) if *dir == self.typed_dir() => Some(preview),
            _ => None,
        }
    }

    /// Whether the typed folder has been looked at (its preview is ready or failed).
    pub fn looked(&self) -> bool {
        self.preview_due.is_none()
            && matches!(&self.preview, Some((dir, state)) if *dir == self.typed_dir() && !state.is_running())
    }

    fn typed_dir(&self) -> PathBuf {
        PathBuf::from(self.data_dir.trim())
    }

    /// Takes this view's part of the app's requests (open, picked folder, preview, listing).
    fn take_requests(&mut self, requests: &mut ViewRequests, commands: &mut Vec<UiCommand>) {
        if let Some(dir) = requests.open_new_project.take() {
            self.open_with(dir);
        }
        if let Some(dir) = requests.picked_data_dir.take() {
            self.set_data_dir(dir);
        }
        if std::mem::take(&mut requests.no_folder_picked) {
            self.pick_hint = true;
        }
        if std::mem::take(&mut requests.browse_in_window) && self.open {
            self.open_browser(commands);
        }
        if let Some((dir, listing)) = requests.folder_listing.take()
            && let Some(browser) = &mut self.browser
        {
            browser.listed(&dir, listing);
        }
        if let Some((dir, preview)) = requests.folder_preview.take() {
            self.set_preview(dir, preview);
        }
    }

    /// Opens the dialog, optionally with a data folder already chosen (dropped on the
    /// window; the app asks for its preview).
    fn open_with(&mut self, data_dir: Option<PathBuf>) {
        *self = Self {
            open: true,
            backbone: "mobilenet_v2".to_owned(),
            input_size_px: 224,
            ..Self::default()
        };
        if let Some(dir) = data_dir {
            self.set_data_dir(dir);
        }
    }

    /// Sets the data folder (from the picker, the browser or a drop; the app asks for its
    /// preview) and guesses the name from it.
    fn set_data_dir(&mut self, dir: PathBuf) {
        self.name_from_folder(&dir);
        self.data_dir = dir.display().to_string();
        self.preview = Some((dir, Loading::started()));
        self.preview_due = None;
        self.pick_hint = false;
        self.error = None;
    }

    /// Names the project after `dir` unless the user typed a name.
    fn name_from_folder(&mut self, dir: &std::path::Path) {
        if (self.name.trim().is_empty() || self.name_is_folder)
            && let Some(stem) = dir.file_name()
        {
            self.name = stem.to_string_lossy().into_owned();
            self.name_is_folder = true;
        }
    }

    /// Takes the preview of `dir` (ignored unless it is the folder typed now): its task and,
    /// unless the user chose one, its input size.
    fn set_preview(&mut self, dir: PathBuf, preview: Result<FolderPreview, String>) {
        if dir != self.typed_dir() {
            return;
        }
        if let Ok(preview) = &preview {
            self.task = preview.task;
            self.name_from_folder(&dir);
            if !self.input_size_chosen {
                self.input_size_px = preview.proposed_input_px;
            }
        }
        self.preview = Some((dir, Loading::from_result(preview)));
    }

    fn open_browser(&mut self, commands: &mut Vec<UiCommand>) {
        let typed = self.typed_dir();
        let start = if typed.as_os_str().is_empty() {
            std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from)
        } else {
            typed
        };
        self.browser = Some(FolderBrowser::new(start, commands));
    }

    /// Asks for the preview of the typed folder once it stopped changing.
    fn schedule_preview(&mut self, ctx: &egui::Context, commands: &mut Vec<UiCommand>) {
        let Some(due) = self.preview_due else {
            return;
        };
        let now = ctx.input(|i| i.time);
        if now < due {
            ctx.request_repaint_after(std::time::Duration::from_secs_f64(due - now));
            return;
        }
        self.preview_due = None;
        let dir = self.typed_dir();
        if dir.as_os_str().is_empty() {
            self.preview = None;
            return;
        }
        commands.push(UiCommand::PreviewDataFolder(dir.clone()));
        self.preview = Some((dir, Loading::started()));
    }

    /// Draws the dialog when open.
    pub fn ui(
        &mut self,
        ctx: &egui::Context,
        facts: &FactsCache,
        requests: &mut ViewRequests,
        commands: &mut Vec<UiCommand>,
    ) {
        self.take_requests(requests, commands);
        if !self.open {
            return;
        }
        self.schedule_preview(ctx, commands);
        if let Some(browser) = &mut self.browser {
            match browser.ui(ctx, commands) {
                BrowserOutcome::Open => {}
                BrowserOutcome::Chosen(dir) => {
                    self.browser = None;
                    commands.push(UiCommand::PreviewDataFolder(dir.clone()));
                    self.set_data_dir(dir);
                }
                BrowserOutcome::Cancelled => self.browser = None,
            }
        }
        let escape = self.browser.is_none() && ctx.input(|i| i.key_pressed(egui::Key::Escape));
        let mut open = self.open;
        let mut close = escape;
        egui::Window::new("New project")
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .show(ctx, |ui| {
                self.form_ui(ui, facts, commands);
                self.preview_ui(ui);
                if let Some(error) = &self.error {
                    ui.colored_label(ui.visuals().error_fg_color, error);
                }
                ui.separator();
                ui.horizontal(|ui| {
                    let looking = self.preview_due.is_some()
                        || matches!(&self.preview, Some((_, Loading::Running { .. })));
                    let create = ui
                        .add_enabled(!looking, egui::Button::new("Create"))
                        .on_disabled_hover_text("Looking at the data folder…");
                    if create.clicked() {
                        match self.validate() {
                            Ok(()) => {
                                commands.push(UiCommand::CreateProject {
                                    name: self.name.trim().to_owned(),
                                    data_dir: self.typed_dir(),
                                    task: self.task,
                                    backbone: self.backbone.clone(),
                                    input_size_px: self.input_size_px,
                                    mirror_ok: self.mirror_ok,
                                    profile: self.preview().map(FolderPreview::profile),
                                });
                                close = true;
                            }
                            Err(message) => self.error = Some(message),
                        }
                    }
                    if ui.button("Cancel").clicked() {
                        close = true;
                    }
                });
            });
        self.open = open && !close;
        if !self.open {
            self.browser = None;
        }
    }

    fn form_ui(&mut self, ui: &mut egui::Ui, facts: &FactsCache, commands: &mut Vec<UiCommand>) {
        egui::Grid::new("new_project_form")
            .num_columns(2)
            .spacing([12.0, 8.0])
            .show(ui, |ui| {
                let label = ui.label("Name").id;
                let name = ui
                    .add(egui::TextEdit::singleline(&mut self.name).id_salt("new_name"))
                    .labelled_by(label)
                    .on_hover_text("Shown in the project list; the folder is named after it.");
                if name.changed() {
                    self.name_is_folder = false;
                }
                ui.end_row();
                let label = ui.label("Data folder").id;
                ui.horizontal(|ui| {
                    let edit = egui::TextEdit::singleline(&mut self.data_dir)
                        .id_salt("new_data_dir")
                        .hint_text("class subfolders, or images/ + masks/");
                    if ui.add(edit).labelled_by(label).changed() {
                        self.preview_due = Some(ui.input(|i| i.time) + PREVIEW_DELAY_S);
                        self.error = None;
                    }
                    if ui
                        .button("Browse…")
                        .on_hover_text("The system's folder dialog")
                        .clicked()
                    {
                        self.pick_hint = false;
                        commands.push(UiCommand::PickDataFolder);
                    }
                    if ui
                        .button("Browse here…")
                        .on_hover_text("Choose the folder inside this window")
                        .clicked()
                    {
                        self.open_browser(commands);
                    }
                });
                ui.end_row();
                if self.pick_hint {
                    ui.label("");
                    ui.weak(
                        "No folder was chosen. If no dialog appeared, type the path or use \
                         Browse here….",
                    );
                    ui.end_row();
                }
                ui.label("Task");
                ui.horizontal(|ui| {
                    for task in TaskKind::ALL {
                        ui.selectable_value(&mut self.task, task, task.title());
                    }
                });
                ui.end_row();
                let label = ui.label("Input size").id;
                let proposed = self.preview().map(|p| p.proposed_input_px);
                let text = |px: u32| match proposed {
                    Some(p) if p == px => format!("{px} px (fits the images)"),
                    _ => format!("{px} px"),
                };
                egui::ComboBox::new("new_input_size", "")
                    .selected_text(text(self.input_size_px))
                    .show_ui(ui, |ui| {
                        for px in INPUT_SIZES {
                            let chosen = ui.selectable_value(&mut self.input_size_px, px, text(px));
                            if chosen.clicked() {
                                self.input_size_chosen = true;
                            }
                        }
                    })
                    .response
                    .labelled_by(label)
                    .on_hover_text(
                        "Images are resized to this square. Larger than the images adds no \
                         detail and costs compute; pretrained backbones were trained at 224 px.",
                    );
                ui.end_row();
                ui.label("Mirroring");
                ui.checkbox(&mut self.mirror_ok, "A mirrored image keeps its label")
                    .on_hover_text(
                        "Lets training flip images left–right. Leave it off for chest X-rays \
                         (the heart is on the left), text, digits and road signs.",
                    );
                ui.end_row();
                ui.label("Backbone");
                egui::ComboBox::new("new_backbone", "")
                    .selected_text(self.backbone.clone())
                    .show_ui(ui, |ui| {
                        for info in known_backbones() {
                            let label = match &info.pretrained {
                                Some(_) => format!("{} (pretrained)", info.name),
                                None => info.name.to_owned(),
                            };
                            ui.selectable_value(&mut self.backbone, info.name.to_owned(), label);
                        }
                    });
                ui.end_row();
                ui.label("");
                super::project_overview::backbone_facts_ui(ui, &self.backbone, facts, commands);
                ui.end_row();
            });
    }

    /// What the typed folder holds, or why it cannot be used.
    fn preview_ui(&self, ui: &mut egui::Ui) {
        let error = ui.visuals().error_fg_color;
        match &self.preview {
            _ if self.preview_due.is_some() => {}
            None => {}
            Some((dir, _)) if *dir != self.typed_dir() => {}
            Some((_, Loading::Running { .. })) => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Looking at the data folder…");
                });
            }
            Some((_, Loading::Failed(message))) => {
                ui.colored_label(error, message);
            }
            Some((_, Loading::Ready(preview))) => {
                ui.label(summary(preview));
                if let Some(detection) = &preview.detection {
                    ui.label(detection.describe());
                }
                if !preview.classes.is_empty() && preview.detection.is_none() {
                    ui.label(class_counts(preview));
                }
                if let Some((w, h)) = preview.typical_size_px {
                    ui.weak(format!("Images of about {w}×{h} px."));
                }
                let (count, first) = &preview.problems;
                if *count > 0 {
                    ui.label(format!("{count} problem(s) found while listing:"));
                    for line in first {
                        ui.weak(line);
                    }
                }
                if let Some(refusal) = preview.refusal() {
                    ui.colored_label(error, refusal);
                }
            }
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("Give the project a name.".to_owned());
        }
        if self.data_dir.trim().is_empty() {
            return Err("Choose the folder with your labelled images.".to_owned());
        }
        match &self.preview {
            Some((dir, Loading::Ready(preview))) if *dir == self.typed_dir() => {
                preview.refusal().map_or(Ok(()), Err)
            }
            Some((dir, Loading::Failed(message))) if *dir == self.typed_dir() => {
                Err(message.clone())
            }
            _ => Err("Still looking at the data folder; try again in a moment.".to_owned()),
        }
    }
}

/// "class folders in /data/pets: 24 images, 2 classes".
fn summary(preview: &FolderPreview) -> String {
    let classes = match preview.classes.len() {
        0 => String::new(),
        1 => ", 1 class".to_owned(),
        n => format!(", {n} classes"),
    };
    format!(
        "{}: {} images{classes} ({})",
        preview.layout,
        preview.images,
        preview.task.label()
    )
}

/// "cats 12 · dogs 12" (the first classes, then how many more).
fn class_counts(preview: &FolderPreview) -> String {
    let mut parts: Vec<String> = preview
        .classes
        .iter()
        .take(CLASSES_SHOWN)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    let more = preview.classes.len().saturating_sub(CLASSES_SHOWN);
    if more > 0 {
        parts.push(format!("and {more} more"));
    }
    parts.join(" · ")
}
