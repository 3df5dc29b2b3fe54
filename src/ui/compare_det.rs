//! Compare for detection runs: each ticked run's boxes and COCO metrics on its validation
//! split (one detection inspection per run, shared with the Inspector), their tables, and the
//! images where the first run and another disagree most at a chosen IoU and score threshold,
//! each with both runs' boxes; a click shows one larger. Moving the threshold ranks again
//! without a new job.

use std::path::Path;
use std::sync::Arc;

use crate::inspect::det_compare::{Disagreement, ImageScore, rank_disagreements};
use crate::inspect::detection::{DEFAULT_SCORE_THRESHOLD, DetImage, DetInspection};
use crate::runtime::UiCommand;
use crate::runtime::inspect::InspectData;
use crate::runtime::thumbnails::{ThumbnailCache, ThumbnailSize};
use crate::train::catalogue::RunSummary;
use crate::ui::compare_det_tables::{class_table_ui, run_table_ui};
use crate::ui::det_boxes::{BoxStyle, draw_boxes, legend_ui, match_controls_ui};
use crate::ui::inspect_widgets::{det_inspection_ui, image_layers_ui};

/// Disagreements shown in the gallery.
const GALLERY: usize = 24;
/// Side of a gallery tile (one per run).
const TILE: f32 = 96.0;
/// Side of the image opened larger (one per run).
const OPENED: f32 = 320.0;

/// A ranking and what it was made of: the runs (by identity), the IoU and the threshold.
struct Ranked {
    runs: Vec<Arc<DetInspection>>,
    iou: f32,
    threshold: f32,
    list: Arc<Vec<Disagreement>>,
}

/// The detection part of the Compare view.
pub struct DetCompareView {
    /// Detections below this score are not drawn nor counted.
    pub threshold: f32,
    /// The IoU at which a detection matches a box.
    pub iou: f32,
    /// The disagreement opened larger: the image id and the other run's position.
    opened: Option<(String, usize)>,
    ranked: Option<Ranked>,
    /// Disagreements found in the last frame (for tests).
    found: usize,
}

impl Default for DetCompareView {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_SCORE_THRESHOLD,
            iou: 0.5,
            opened: None,
            ranked: None,
            found: 0,
        }
    }
}

impl DetCompareView {
    /// How many images the runs disagreed on in the last frame.
    pub fn found(&self) -> usize {
        self.found
    }

    /// Lays out the detection runs `runs` of the project at `project`.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        project: &Path,
        runs: &[&RunSummary],
        data: &InspectData,
        thumbnails: &mut ThumbnailCache,
        commands: &mut Vec<UiCommand>,
    ) {
        self.found = 0;
        let mut loaded = Vec::new();
        for run in runs {
            if let Some(inspection) = det_inspection_ui(ui, project, &run.id, data, commands) {
                loaded.push((run.id.as_str(), Arc::clone(inspection)));
            }
        }
        if loaded.is_empty() {
            return;
        }
        ui.heading("COCO's metrics on each run's validation split");
        run_table_ui(ui, &loaded);
        ui.add_space(6.0);
        class_table_ui(ui, &loaded);
        if loaded.len() < runs.len() {
            return;
        }
        ui.separator();
        if loaded.len() < 2 {
            ui.label("Tick a second detection run to see the images where they disagree.");
            return;
        }
        ui.horizontal_wrapped(|ui| {
            match_controls_ui(ui, "compare_det_iou", &mut self.threshold, &mut self.iou);
        });
        let ranked = self.ranked(&loaded);
        self.found = ranked.len();
        let first = loaded[0].0;
        ui.heading(format!(
            "Images where the runs disagree with {first}: {}",
            ranked.len()
        ));
        ui.weak("Largest difference of the image's F1 first (at this IoU and threshold)");
        if ranked.is_empty() {
            ui.label("The runs score every image alike at this IoU and threshold.");
        }
        self.gallery_ui(ui, &loaded, &ranked, thumbnails);
        let opened = self.opened.as_ref().and_then(|(id, run)| {
            ranked
                .iter()
                .find(|d| d.run == *run && loaded[0].1.images[d.first].id == *id)
        });
        if let Some(d) = opened.or(ranked.first()) {
            ui.separator();
            self.opened_ui(ui, &loaded, d, thumbnails);
        }
    }

    /// The ranking at the current IoU and threshold, made again only when one of them or a
    /// run's inspection changed.
    fn ranked(&mut self, loaded: &[(&str, Arc<DetInspection>)]) -> Arc<Vec<Disagreement>> {
        if let Some(r) = &self.ranked
            && (r.iou, r.threshold) == (self.iou, self.threshold)
            && r.runs.len() == loaded.len()
            && r.runs
                .iter()
                .zip(loaded)
                .all(|(a, (_, b))| Arc::ptr_eq(a, b))
        {
            return Arc::clone(&r.list);
        }
        let images: Vec<&[DetImage]> = loaded.iter().map(|(_, r)| r.images.as_slice()).collect();
        let list = Arc::new(rank_disagreements(&images, self.iou, self.threshold));
        self.ranked = Some(Ranked {
            runs: loaded.iter().map(|(_, r)| Arc::clone(r)).collect(),
            iou: self.iou,
            threshold: self.threshold,
            list: Arc::clone(&list),
        });
        list
    }

    /// The first disagreements, each as two small tiles (the first run, the other run).
    fn gallery_ui(
        &mut self,
        ui: &mut egui::Ui,
        loaded: &[(&str, Arc<DetInspection>)],
        ranked: &[Disagreement],
        thumbnails: &mut ThumbnailCache,
    ) {
        egui::ScrollArea::horizontal()
            .id_salt("compare_det_gallery")
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    for d in ranked.iter().take(GALLERY) {
                        egui::Frame::group(ui.style()).show(ui, |ui| {
                            ui.vertical(|ui| self.tiles_ui(ui, loaded, d, thumbnails));
                        });
                    }
                });
            });
    }

    /// One disagreement: the image under each run, its id and each run's counts; a click on
    /// either opens it larger.
    fn tiles_ui(
        &mut self,
        ui: &mut egui::Ui,
        loaded: &[(&str, Arc<DetInspection>)],
        d: &Disagreement,
        thumbnails: &mut ThumbnailCache,
    ) {
        let (first_id, first) = &loaded[0];
        let (other_id, other) = &loaded[d.run];
        let id = &first.images[d.first].id;
        let mut clicked = false;
        ui.horizontal(|ui| {
            for (run_id, run, index, score) in [
                (first_id, first, d.first, &d.scores.0),
                (other_id, other, d.other, &d.scores.1),
            ] {
                let response = self.boxes_ui(ui, run, index, false, TILE, thumbnails);
                let name = format!("Open {id} of {run_id}");
                response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &name));
                let hover = format!("F1 {:.2}; click to open it larger", score.f1);
                clicked |= response.on_hover_text(hover).clicked();
            }
        });
        if clicked {
            self.opened = Some((id.clone(), d.run));
        }
        ui.small(id);
        ui.small(score_text(first_id, &d.scores.0));
        ui.small(score_text(other_id, &d.scores.1));
    }

    /// One disagreement larger, both runs' boxes labelled, with the legend.
    fn opened_ui(
        &self,
        ui: &mut egui::Ui,
        loaded: &[(&str, Arc<DetInspection>)],
        d: &Disagreement,
        thumbnails: &mut ThumbnailCache,
    ) {
        let (first_id, first) = &loaded[0];
        let (other_id, other) = &loaded[d.run];
        ui.strong(format!("Opened: {}", first.images[d.first].id));
        ui.horizontal_top(|ui| {
            for (id, run, index, score) in [
                (first_id, first, d.first, &d.scores.0),
                (other_id, other, d.other, &d.scores.1),
            ] {
                ui.vertical(|ui| {
                    self.boxes_ui(ui, run, index, true, OPENED, thumbnails);
                    ui.label(score_text(id, score));
                });
            }
            ui.vertical(legend_ui);
        });
    }

    /// Image `index` of `run` in a `side` square with its boxes at the view's match (class
    /// and score above each box with `labels`); the response senses clicks.
    fn boxes_ui(
        &self,
        ui: &mut egui::Ui,
        run: &DetInspection,
        index: usize,
        labels: bool,
        side: f32,
        thumbnails: &mut ThumbnailCache,
    ) -> egui::Response {
        let image = &run.images[index];
        let size = if side > TILE {
            ThumbnailSize::Preview
        } else {
            ThumbnailSize::Tile
        };
        let response = image_layers_ui(ui, thumbnails, Some(&image.path), size, side, &[]);
        let matched = image.matched(self.iou, self.threshold);
        let style = BoxStyle {
            truth: true,
            labels,
        };
        draw_boxes(ui, response.rect, &run.classes, image, &matched, style);
        response
    }
}

/// `who`'s F1 and counts on an image.
fn score_text(who: &str, score: &ImageScore) -> String {
    format!(
        "{who}: F1 {:.2}, TP {}, FP {}, missed {}",
        score.f1, score.true_positives, score.false_positives, score.missed
    )
}
