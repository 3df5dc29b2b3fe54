//! The Dataset tab: the project's images as a virtualised thumbnail grid with filters, the
//! selected image's preview, the class counts (boxes per class for detection data, whose
//! boxes are drawn over tiles and preview from the scanned index) and the validation report.
//! The scan runs on a worker (asked for with [`UiCommand::ScanDataset`]); thumbnails come
//! from the [`ThumbnailCache`], which only renders what the grid shows.

use std::path::PathBuf;

use crate::data::overrides::{Overrides, item_id};
use crate::data::report::IssueKind;
use crate::data::source::SplitHint;
use crate::data::targets::data_targets;
use crate::data::window::WindowSetting;
use crate::project::OpenProject;
use crate::runtime::dataset::{DatasetScan, ScannedDataset};
use crate::runtime::projects::ProjectRow;
use crate::runtime::thumbnails::{ThumbnailCache, ThumbnailKey, ThumbnailSize};
use crate::runtime::{Loading, UiCommand};
use crate::ui::curation::{CurationTarget, curation_panel_ui, image_curation_ui};
use crate::ui::dataset_boxes;
use crate::ui::dataset_panels::{self, OverlayStyle};
use crate::ui::labelled::labelled;

/// Side of a tile's image area, in points.
const TILE_IMAGE: f32 = 96.0;
/// A tile: the image and two lines of text under it.
const TILE_SIZE: egui::Vec2 = egui::vec2(TILE_IMAGE + 8.0, TILE_IMAGE + 36.0);

/// What the preview shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// An image of the index, by position.
    Item(usize),
    /// A report entry whose file is not in the index, by position in the report.
    Issue(usize),
}

/// Which split the grid shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SplitFilter {
    /// Every split.
    #[default]
    All,
    /// One split (`None`: images the manifest assigns to none).
    Is(Option<SplitHint>),
}

/// Which issues the grid shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IssueFilter {
    /// Every image.
    #[default]
    All,
    /// Images with at least one issue.
    Any,
    /// Images without issues.
    Clean,
    /// Images with an issue of this kind.
    Kind(IssueKind),
}

/// The grid's filters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// A class index, or every class.
    pub class: Option<usize>,
    /// The split.
    pub split: SplitFilter,
    /// The issues.
    pub issue: IssueFilter,
}

/// The positions of the items that pass `filter`, in index order.
pub fn filter_items(data: &ScannedDataset, filter: &Filter) -> Vec<usize> {
    let report = &data.report;
    data.index
        .items
        .iter()
        .enumerate()
        .filter(|(_, item)| {
            filter.class.is_none_or(|c| {
                item.label == Some(c)
                    || item
                        .boxes
                        .as_ref()
                        .is_some_and(|boxes| boxes.iter().any(|b| b.class == c))
            })
        })
        .filter(|(_, item)| match filter.split {
            SplitFilter::All => true,
            SplitFilter::Is(split) => item.split == split,
        })
        .filter(|(i, _)| {
            let issues = &data.issues_of_item[*i];
            match filter.issue {
                IssueFilter::All => true,
                IssueFilter::Any => !issues.is_empty(),
                IssueFilter::Clean => issues.is_empty(),
                IssueFilter::Kind(kind) => issues.iter().any(|&n| report.issues[n].kind == kind),
            }
        })
        .map(|(i, _)| i)
        .collect()
}

/// The Dataset tab of the selected project.
#[derive(Debug, Default)]
pub struct DatasetView {
    /// The project folder and scan the state below belongs to.
    shown: Option<(PathBuf, u64)>,
    filter: Filter,
    filtered: Option<(Filter, Vec<usize>)>,
    selected: Option<Selection>,
    /// The window being edited (not yet saved in the project), for this project folder.
    window_draft: Option<(PathBuf, WindowSetting)>,
    /// While a window slider is dragged, thumbnails keep their old window.
    window_dragging: bool,
    /// The tiny-image side being edited (not yet saved), for this project folder.
    min_side_draft: Option<(PathBuf, u32)>,
    overlay: OverlayStyle,
    /// Boxes drawn over the preview in the last frame (detection; for tests).
    preview_boxes_drawn: usize,
    /// Boxes drawn over the grid's tiles in the last frame (detection; for tests).
    tile_boxes_drawn: usize,
}

impl DatasetView {
    /// Boxes drawn over the preview in the last frame (detection data).
    pub fn preview_boxes_drawn(&self) -> usize {
        self.preview_boxes_drawn
    }

    /// Boxes drawn over the grid's tiles in the last frame (detection data).
    pub fn tile_boxes_drawn(&self) -> usize {
        self.tile_boxes_drawn
    }

    /// Draws the tab for `row`, asking for a scan when none was made.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        row: &ProjectRow,
        thumbnails: &mut ThumbnailCache,
        scan: Option<&DatasetScan>,
        commands: &mut Vec<UiCommand>,
    ) {
        self.preview_boxes_drawn = 0;
        self.tile_boxes_drawn = 0;
        let open = match &row.project {
            Ok(open) => open,
            Err(message) => {
                ui.colored_label(ui.visuals().error_fg_color, message);
                return;
            }
        };
        match scan {
            None => {
                commands.push(UiCommand::ScanDataset(row.dir.clone()));
                ui.label("Starting the scan of the data set…");
            }
            Some(DatasetScan {
                state: state @ Loading::Running { .. },
                ..
            }) => scanning_ui(ui, &row.dir, state, commands),
            Some(DatasetScan {
                state: Loading::Failed(message),
                ..
            }) => {
                ui.colored_label(ui.visuals().error_fg_color, message);
                if ui.button("Rescan").clicked() {
                    commands.push(UiCommand::ScanDataset(row.dir.clone()));
                }
            }
            Some(DatasetScan {
                state: Loading::Ready(data),
                ..
            }) => self.dataset_ui(ui, open, data, thumbnails, commands),
        }
    }

    fn dataset_ui(
        &mut self,
        ui: &mut egui::Ui,
        open: &OpenProject,
        data: &ScannedDataset,
        thumbnails: &mut ThumbnailCache,
        commands: &mut Vec<UiCommand>,
    ) {
        let shown = Some((open.dir.clone(), data.generation));
        if self.shown != shown {
            self.shown = shown;
            self.filter = Filter::default();
            self.filtered = None;
            // The first image is shown, so the preview is never empty without reason.
            self.selected = (!data.index.items.is_empty()).then_some(Selection::Item(0));
        }
        let saved = &open.project.dataset.window;
        if self
            .window_draft
            .as_ref()
            .is_some_and(|(dir, draft)| dir != &open.dir || draft == saved)
        {
            self.window_draft = None;
        }
        let window = match &self.window_draft {
            Some((_, draft)) => draft.clone(),
            None => saved.clone(),
        };
        if !self.window_dragging {
            thumbnails.set_rendering(&window, data.index.mask_encoding);
        }
        summary_ui(ui, open, data, commands);
        let segmentation = data_targets(open.project.task).masks() || data.index.classes.is_empty();
        // Masks or boxes over the preview.
        let overlays = segmentation || data.report.boxes.is_some();
        egui::Panel::right("dataset_preview")
            .resizable(true)
            .default_size(340.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("dataset_preview_scroll")
                    .show(ui, |ui| {
                        self.side_ui(ui, open, data, thumbnails, window, overlays, commands);
                    });
            });
        egui::Panel::bottom("dataset_summary")
            .resizable(true)
            .default_size(300.0)
            .show(ui, |ui| {
                ui.columns(2, |columns| {
                    match &data.report.boxes {
                        Some(summary) => dataset_boxes::box_counts_ui(&mut columns[0], summary),
                        None => dataset_panels::class_counts_ui(&mut columns[0], &data.report),
                    }
                    let target = CurationTarget {
                        project: &open.dir,
                        curation: Some(&open.project.dataset.curation),
                    };
                    curation_panel_ui(&mut columns[1], target, commands);
                    columns[1].separator();
                    dataset_panels::report_ui(&mut columns[1], data, &mut self.selected);
                });
            });
        self.filters_ui(ui, data);
        let items = match &self.filtered {
            Some((filter, items)) if *filter == self.filter => items.clone(),
            _ => {
                let items = filter_items(data, &self.filter);
                self.filtered = Some((self.filter, items.clone()));
                items
            }
        };
        let overrides = open.project.dataset.curation.overrides();
        self.grid_ui(ui, data, &items, &overrides, thumbnails);
    }

    #[allow(clippy::too_many_arguments)] // One call site; the parts are unrelated borrows.
    fn side_ui(
        &mut self,
        ui: &mut egui::Ui,
        open: &OpenProject,
        data: &ScannedDataset,
        thumbnails: &mut ThumbnailCache,
        window: WindowSetting,
        overlays: bool,
        commands: &mut Vec<UiCommand>,
    ) {
        let preview = dataset_panels::preview_ui(
            ui,
            data,
            self.selected,
            thumbnails,
            overlays.then_some(&mut self.overlay),
        );
        self.preview_boxes_drawn = preview.map_or(0, |p| p.boxes_drawn);
        let target = CurationTarget {
            project: &open.dir,
            curation: Some(&open.project.dataset.curation),
        };
        if let Some(Selection::Item(i)) = self.selected
            && let Some(item) = data.index.items.get(i)
        {
            let classes: &[String] = if data_targets(open.project.task).class_labels() {
                &data.index.classes
            } else {
                &[]
            };
            image_curation_ui(ui, target, &item_id(&item.path), classes, commands);
        }
        ui.separator();
        let mut setting = window;
        let edit = dataset_panels::window_ui(ui, &mut setting, preview);
        self.window_dragging = edit.dragging;
        if edit.changed {
            self.window_draft = Some((open.dir.clone(), setting.clone()));
        }
        if edit.commit {
            commands.push(UiCommand::SetDatasetWindow(open.dir.clone(), setting));
        }
        ui.separator();
        self.checks_ui(ui, open, commands);
    }

    /// The tiny-image side and the mirroring statement, saved in the project.
    fn checks_ui(&mut self, ui: &mut egui::Ui, open: &OpenProject, commands: &mut Vec<UiCommand>) {
        let saved = &open.project.dataset;
        let side = match &self.min_side_draft {
            Some((dir, side)) if *dir == open.dir => *side,
            _ => saved.min_side_px,
        };
        let mut side_edit = side;
        let mut mirror_ok = saved.mirror_ok;
        egui::Grid::new("dataset_checks")
            .num_columns(2)
            .spacing([10.0, 6.0])
            .show(ui, |ui| {
                let label = ui.label("Tiny below").id;
                let response = ui
                    .add(
                        egui::DragValue::new(&mut side_edit)
                            .range(1..=4096)
                            .suffix(" px"),
                    )
                    .labelled_by(label)
                    .on_hover_text(
                        "Images with a shorter side are reported as tiny (they are kept). \
                         Lower it for data sets of small images such as 28 px digits.",
                    );
                if side_edit != side {
                    self.min_side_draft = Some((open.dir.clone(), side_edit));
                }
                let done = response.drag_stopped()
                    || response.lost_focus()
                    || (response.changed() && !response.dragged() && !response.has_focus());
                if done && side_edit != saved.min_side_px {
                    self.min_side_draft = None;
                    commands.push(UiCommand::SetDatasetChecks {
                        dir: open.dir.clone(),
                        min_side_px: side_edit,
                        mirror_ok,
                    });
                }
                ui.end_row();
                ui.label("Mirroring");
                if ui
                    .checkbox(&mut mirror_ok, "A mirrored image keeps its label")
                    .on_hover_text(
                        "Lets training flip images. Leave it off for chest X-rays (the heart \
                         is on the left), text and digits.",
                    )
                    .changed()
                {
                    commands.push(UiCommand::SetDatasetChecks {
                        dir: open.dir.clone(),
                        min_side_px: saved.min_side_px,
                        mirror_ok,
                    });
                }
                ui.end_row();
            });
    }

    fn filters_ui(&mut self, ui: &mut egui::Ui, data: &ScannedDataset) {
        let index = &data.index;
        let filter = &mut self.filter;
        ui.horizontal_wrapped(|ui| {
            if !index.classes.is_empty() {
                let shown = filter
                    .class
                    .and_then(|c| index.classes.get(c))
                    .map_or("All classes", String::as_str);
                labelled(ui, "Class", |ui| {
                    egui::ComboBox::from_id_salt("class_filter")
                        .selected_text(shown)
                        .show_ui(ui, |ui| {
                            ui.selectable_value(&mut filter.class, None, "All classes");
                            for (i, name) in index.classes.iter().enumerate() {
                                ui.selectable_value(&mut filter.class, Some(i), name);
                            }
                        })
                        .response
                });
            }
            if index.items.iter().any(|i| i.split.is_some()) {
                labelled(ui, "Split", |ui| {
                    egui::ComboBox::from_id_salt("split_filter")
                        .selected_text(split_text(filter.split))
                        .show_ui(ui, |ui| {
                            for split in [
                                SplitFilter::All,
                                SplitFilter::Is(Some(SplitHint::Train)),
                                SplitFilter::Is(Some(SplitHint::Val)),
                                SplitFilter::Is(Some(SplitHint::Test)),
                                SplitFilter::Is(None),
                            ] {
                                ui.selectable_value(&mut filter.split, split, split_text(split));
                            }
                        })
                        .response
                });
            }
            labelled(ui, "Issues", |ui| {
                egui::ComboBox::from_id_salt("issue_filter")
                    .selected_text(issue_text(filter.issue))
                    .show_ui(ui, |ui| {
                        let mut options =
                            vec![IssueFilter::All, IssueFilter::Any, IssueFilter::Clean];
                        let kinds = IssueKind::ALL.into_iter().filter(|k| !k.excludes_file());
                        options.extend(kinds.map(IssueFilter::Kind));
                        for option in options {
                            ui.selectable_value(&mut filter.issue, option, issue_text(option));
                        }
                    })
                    .response
            });
            let count = self
                .filtered
                .as_ref()
                .filter(|(f, _)| f == filter)
                .map_or_else(
                    || filter_items(data, filter).len(),
                    |(_, items)| items.len(),
                );
            ui.label(format!(
                "Showing {count} of {} images",
                data.index.items.len()
            ));
        });
    }

    fn grid_ui(
        &mut self,
        ui: &mut egui::Ui,
        data: &ScannedDataset,
        items: &[usize],
        overrides: &Overrides,
        thumbnails: &mut ThumbnailCache,
    ) {
        if items.is_empty() {
            ui.label("No image matches the filters.");
            return;
        }
        let gap = ui.spacing().item_spacing.x;
        let columns = ((ui.available_width() + gap) / (TILE_SIZE.x + gap))
            .floor()
            .max(1.0) as usize;
        let rows = items.len().div_ceil(columns);
        egui::ScrollArea::vertical()
            .id_salt("dataset_grid")
            .auto_shrink(false)
            .show_rows(ui, TILE_SIZE.y, rows, |ui, visible| {
                for row in visible {
                    let start = row * columns;
                    let end = (start + columns).min(items.len());
                    ui.horizontal(|ui| {
                        for &i in &items[start..end] {
                            self.tile_ui(ui, data, i, overrides, thumbnails);
                        }
                    });
                }
            });
    }

    fn tile_ui(
        &mut self,
        ui: &mut egui::Ui,
        data: &ScannedDataset,
        i: usize,
        overrides: &Overrides,
        thumbnails: &mut ThumbnailCache,
    ) {
        let item = &data.index.items[i];
        let class = item
            .label
            .and_then(|l| data.index.classes.get(l))
            .map_or("", String::as_str);
        let mut caption = match &item.boxes {
            Some(boxes) => dataset_boxes::tile_caption(boxes),
            None => class.to_owned(),
        };
        // The project's corrections, shown on the tile (the scan shows the files as they are).
        let id = item_id(&item.path);
        if let Some(new) = overrides.relabelled.get(&id) {
            caption = format!("✏ {caption} → {new}");
        }
        if overrides.excluded.contains(&id) {
            caption = format!("🚫 {caption}");
        }
        if let Some(split) = item.split {
            caption = format!("{caption} · {}", split.name());
        }
        let issues = &data.issues_of_item[i];
        let path = item.path.display().to_string();
        let name = format!("Tile: {path} ({caption})");
        let (rect, response) = ui.allocate_exact_size(TILE_SIZE, egui::Sense::click());
        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &name));
        if ui.is_rect_visible(rect) {
            let selected = self.selected == Some(Selection::Item(i));
            let key = ThumbnailKey {
                image: data.index.image_path(item),
                mask: None,
                size: ThumbnailSize::Tile,
            };
            let drawn_at = dataset_panels::paint_tile(
                ui,
                rect,
                thumbnails.get(&key),
                dataset_panels::TileText {
                    caption: &caption,
                    file: &path,
                    has_issue: !issues.is_empty(),
                    selected,
                    hovered: response.hovered(),
                },
            );
            if let (Some(frame), Some(boxes)) = (drawn_at, &item.boxes) {
                self.tile_boxes_drawn += dataset_boxes::paint_boxes(
                    &ui.painter_at(rect),
                    ui.style(),
                    frame,
                    item.size_px,
                    boxes,
                    None,
                );
            }
        }
        let response = response.on_hover_ui(|ui| {
            ui.label(&path);
            for &n in issues {
                let issue = &data.report.issues[n];
                ui.label(format!("{}: {}", issue.kind.label(), issue.message));
            }
        });
        if response.clicked() {
            self.selected = Some(Selection::Item(i));
        }
    }
}

fn scanning_ui<T>(
    ui: &mut egui::Ui,
    dir: &std::path::Path,
    state: &Loading<T>,
    commands: &mut Vec<UiCommand>,
) {
    ui.horizontal(|ui| {
        let what = match state {
            Loading::Running { total: 0, .. } => "Listing the data set",
            _ => "Checking files",
        };
        crate::ui::progress::progress_bar(ui, what, state, 360.0);
        if ui.button("Cancel").clicked() {
            commands.push(UiCommand::CancelDatasetScan(dir.to_owned()));
        }
    });
}

fn summary_ui(
    ui: &mut egui::Ui,
    open: &OpenProject,
    data: &ScannedDataset,
    commands: &mut Vec<UiCommand>,
) {
    let report = &data.report;
    ui.horizontal_wrapped(|ui| {
        ui.label(format!(
            "{}: {} files checked, {} usable, {} issues",
            report.source,
            report.files_checked,
            report.usable,
            report.issues.len()
        ));
        if ui.button("Rescan").clicked() {
            commands.push(UiCommand::ScanDataset(open.dir.clone()));
        }
    });
}

fn split_text(split: SplitFilter) -> &'static str {
    match split {
        SplitFilter::All => "All splits",
        SplitFilter::Is(Some(split)) => split.name(),
        SplitFilter::Is(None) => "unassigned",
    }
}

fn issue_text(filter: IssueFilter) -> &'static str {
    match filter {
        IssueFilter::All => "All images",
        IssueFilter::Any => "With an issue",
        IssueFilter::Clean => "Without issues",
        IssueFilter::Kind(kind) => kind.label(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::report::{Issue, ValidationReport};
    use crate::data::scan::{DatasetIndex, DatasetItem};

    fn item(path: &str, label: usize, split: Option<SplitHint>) -> DatasetItem {
        DatasetItem {
            path: path.into(),
            label: Some(label),
            group: None,
            split,
            mask: None,
            boxes: None,
            source_id: None,
            size_px: (40, 40),
            content_hash: path.to_owned(),
        }
    }

    #[test]
    fn filters_combine_class_split_and_issue() {
        let index = DatasetIndex {
            root: "/data".into(),
            classes: vec!["cats".into(), "dogs".into()],
            items: vec![
                item("cats/a.png", 0, Some(SplitHint::Train)),
                item("cats/b.png", 0, Some(SplitHint::Test)),
                item("dogs/c.png", 1, Some(SplitHint::Train)),
            ],
            mask_encoding: None,
            category_ids: None,
        };
        let report = ValidationReport {
            issues: vec![
                Issue::new(IssueKind::Corrupt, "dogs/x.png".into(), "bad".into()),
                Issue::new(IssueKind::Duplicate, "cats/b.png".into(), "same".into()),
            ],
            ..ValidationReport::default()
        };
        let data = ScannedDataset::new(index, report, 1);
        assert_eq!(filter_items(&data, &Filter::default()), vec![0, 1, 2]);
        let cats = Filter {
            class: Some(0),
            ..Filter::default()
        };
        assert_eq!(filter_items(&data, &cats), vec![0, 1]);
        let train_cats = Filter {
            split: SplitFilter::Is(Some(SplitHint::Train)),
            ..cats
        };
        assert_eq!(filter_items(&data, &train_cats), vec![0]);
        let duplicates = Filter {
            issue: IssueFilter::Kind(IssueKind::Duplicate),
            ..Filter::default()
        };
        assert_eq!(filter_items(&data, &duplicates), vec![1]);
        let clean = Filter {
            issue: IssueFilter::Clean,
            ..Filter::default()
        };
        assert_eq!(filter_items(&data, &clean), vec![0, 2]);
    }
}
