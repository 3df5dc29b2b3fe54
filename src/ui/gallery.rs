//! A grid of thumbnails that stays fast with thousands of images: only the rows in view are
//! laid out, so only their thumbnails are asked of the [`ThumbnailCache`] (which has them
//! rendered on workers). One cell is highlighted; the arrow keys move it, Enter or a click
//! opens a cell, and the grid scrolls to keep the highlighted cell in view.

use std::path::Path;

use crate::runtime::thumbnails::{ThumbnailCache, ThumbnailKey, ThumbnailSize};
use crate::ui::inspect_widgets::fit;
use crate::ui::inspector_nav::InspectorMode;

/// Side of a cell's image, in points.
const IMAGE_SIDE: f32 = 96.0;
/// Room around a cell's image and captions, in points.
const PADDING: f32 = 4.0;
/// Caption lines under each image, by their size against the body text's.
const CAPTION_SCALES: [f32; 2] = [1.0, 0.85];

/// Draws the context menu of the cell at an index.
pub type CellMenu<'a> = dyn FnMut(&mut egui::Ui, usize) + 'a;

/// One line under a cell's image, in its colour (the theme's text colour when `None`).
pub struct Caption {
    /// The words.
    pub text: String,
    /// The colour.
    pub color: Option<egui::Color32>,
}

/// What one cell shows.
pub struct GalleryCell<'a> {
    /// The image file (none: an empty square).
    pub path: Option<&'a Path>,
    /// The cell's name for screen readers and tests; also its hover text.
    pub name: String,
    /// Up to two lines under the image (the first larger).
    pub captions: Vec<Caption>,
}

/// The grid's state between frames: where it scrolled and whether it must bring the
/// highlighted cell into view.
#[derive(Debug)]
pub struct Gallery {
    /// The scroll area's id.
    id_salt: &'static str,
    /// Scroll to the highlighted cell in the next frame.
    reveal: bool,
    /// The scroll offset and height of the view in the last frame.
    view: Option<(f32, f32)>,
    /// Cells per row in the last frame.
    columns: usize,
}

/// What the user did in the grid this frame.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GalleryResponse {
    /// The cell opened (clicked, or Enter on the highlighted one).
    pub opened: Option<usize>,
    /// The arrow keys moved the highlighted cell.
    pub moved: bool,
}

impl Gallery {
    /// A grid whose scroll area is named `id_salt` (unique per view).
    pub fn new(id_salt: &'static str) -> Self {
        Self {
            id_salt,
            reveal: true,
            view: None,
            columns: 1,
        }
    }

    /// Brings the highlighted cell into view in the next frame (after it moved elsewhere).
    pub fn reveal(&mut self) {
        self.reveal = true;
    }

    /// Cells per row in the last frame.
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// Lays out `count` cells, asking `cell` for those in view; `highlight` is the
    /// highlighted cell, moved by the arrow keys unless a widget has the keyboard focus.
    pub fn ui<'a>(
        &mut self,
        ui: &mut egui::Ui,
        thumbnails: &mut ThumbnailCache,
        count: usize,
        highlight: &mut usize,
        cell: impl FnMut(usize) -> GalleryCell<'a>,
    ) -> GalleryResponse {
        self.ui_with_menu(ui, thumbnails, count, highlight, cell, None)
    }

    /// [`Gallery::ui`] with a context menu on each cell (a right click), drawn by `menu`
    /// for the cell's index.
    pub fn ui_with_menu<'a>(
        &mut self,
        ui: &mut egui::Ui,
        thumbnails: &mut ThumbnailCache,
        count: usize,
        highlight: &mut usize,
        mut cell: impl FnMut(usize) -> GalleryCell<'a>,
        mut menu: Option<&mut CellMenu<'_>>,
    ) -> GalleryResponse {
        let mut response = GalleryResponse::default();
        if count == 0 {
            return response;
        }
        let spacing = ui.spacing().item_spacing;
        let captions: f32 = caption_fonts(ui)
            .iter()
            .map(|font| ui.ctx().fonts_mut(|f| f.row_height(font)))
            .sum();
        let cell_size = egui::vec2(
            IMAGE_SIDE + 2.0 * PADDING,
            IMAGE_SIDE + captions + 4.0 * PADDING,
        );
        let width = ui.available_width();
        let columns = (((width + spacing.x) / (cell_size.x + spacing.x)).floor() as usize).max(1);
        self.columns = columns;
        let rows = count.div_ceil(columns);
        *highlight = (*highlight).min(count - 1);
        let keys = self.keys(ui, count, highlight);
        response.moved = keys.moved;
        if keys.enter {
            response.opened = Some(*highlight);
        }
        let row_step = cell_size.y + spacing.y;
        let mut area = egui::ScrollArea::vertical()
            .id_salt(self.id_salt)
            .auto_shrink([false, false]);
        if let Some(offset) = self.reveal_offset(*highlight / columns, row_step, cell_size.y) {
            area = area.vertical_scroll_offset(offset);
        }
        self.reveal = false;
        let output = area.show_rows(ui, cell_size.y, rows, |ui, visible| {
            for row in visible {
                ui.horizontal(|ui| {
                    for index in row * columns..((row + 1) * columns).min(count) {
                        let shown = cell(index);
                        let selected = index == *highlight;
                        let clicked = cell_ui(ui, thumbnails, cell_size, &shown, selected);
                        if clicked.clicked() {
                            response.opened = Some(index);
                        }
                        if let Some(menu) = menu.as_mut() {
                            clicked.context_menu(|ui| menu(ui, index));
                        }
                    }
                });
            }
        });
        self.view = Some((output.state.clamped_offset().y, output.inner_rect.height()));
        if let Some(opened) = response.opened {
            *highlight = opened;
        }
        response
    }

    /// The arrow keys and Enter of this frame (consumed), unless a widget has the focus.
    fn keys(&mut self, ui: &egui::Ui, count: usize, highlight: &mut usize) -> Keys {
        use egui::{Key, Modifiers};
        if ui.ctx().memory(|m| m.focused().is_some()) {
            return Keys::default();
        }
        let columns = self.columns;
        let before = *highlight;
        let enter = ui.ctx().input_mut(|i| {
            let mut press = |key| i.count_and_consume_key(Modifiers::NONE, key);
            let (left, right) = (press(Key::ArrowLeft), press(Key::ArrowRight));
            let (up, down) = (press(Key::ArrowUp), press(Key::ArrowDown));
            let mut at = *highlight;
            at = at.saturating_sub(left).saturating_add(right);
            at = at.saturating_sub(up * columns);
            if down > 0 {
                // Down from the last full row goes to the last cell, not past it.
                at = at.saturating_add(down * columns).min(count - 1);
            }
            *highlight = at.min(count - 1);
            press(Key::Enter) > 0
        });
        let moved = *highlight != before;
        self.reveal |= moved;
        Keys { moved, enter }
    }

    /// The scroll offset that brings row `row` into view, when asked and out of view.
    fn reveal_offset(&self, row: usize, row_step: f32, row_height: f32) -> Option<f32> {
        if !self.reveal {
            return None;
        }
        let (offset, height) = self.view?;
        let top = row as f32 * row_step;
        let bottom = top + row_height;
        if top < offset {
            Some(top)
        } else if bottom > offset + height {
            Some((bottom - height).max(0.0))
        } else {
            None
        }
    }
}

#[derive(Default)]
struct Keys {
    moved: bool,
    enter: bool,
}

/// "View: Single image | Grid", the Inspector's choice of view; whether it changed.
pub fn view_toggle_ui(ui: &mut egui::Ui, mode: &mut InspectorMode) -> bool {
    let before = *mode;
    ui.label("View");
    ui.selectable_value(mode, InspectorMode::Single, "Single image")
        .on_hover_text("One image large, with its facts");
    ui.selectable_value(mode, InspectorMode::Grid, "Grid")
        .on_hover_text("Thumbnails of the images listed: arrow keys move, Enter or a click opens");
    *mode != before
}

/// The fonts of the caption lines.
fn caption_fonts(ui: &egui::Ui) -> [egui::FontId; 2] {
    let body = egui::TextStyle::Body.resolve(ui.style());
    CAPTION_SCALES.map(|scale| egui::FontId::new(body.size * scale, body.family.clone()))
}

/// One cell: the image fitted into its square, the captions below, a frame when highlighted.
fn cell_ui(
    ui: &mut egui::Ui,
    thumbnails: &mut ThumbnailCache,
    size: egui::Vec2,
    cell: &GalleryCell<'_>,
    highlighted: bool,
) -> egui::Response {
    let (rect, response) = ui.allocate_exact_size(size, egui::Sense::click());
    let name = cell.name.clone();
    response.widget_info(|| {
        egui::WidgetInfo::selected(egui::Role::Button, true, highlighted, name.clone())
    });
    if !ui.is_rect_visible(rect) {
        return response;
    }
    let visuals = ui.visuals();
    let painter = ui.painter_at(rect);
    let fill = if response.hovered() {
        visuals.widgets.hovered.weak_bg_fill
    } else {
        visuals.faint_bg_color
    };
    painter.rect_filled(rect, 3.0, fill);
    let image = egui::Rect::from_min_size(
        rect.min + egui::vec2(PADDING, PADDING),
        egui::vec2(IMAGE_SIDE, IMAGE_SIDE),
    );
    let small = egui::TextStyle::Small.resolve(ui.style());
    match cell.path {
        Some(path) => {
            let key = ThumbnailKey {
                image: path.to_owned(),
                mask: None,
                size: ThumbnailSize::Tile,
            };
            match thumbnails.get(&key) {
                Some(Ok(thumbnail)) => {
                    let fitted = fit(thumbnail.texture.size_vec2(), image);
                    let uv = egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
                    painter.image(thumbnail.texture.id(), fitted, uv, egui::Color32::WHITE);
                }
                Some(Err(_)) => {
                    let color = visuals.error_fg_color;
                    let at = image.center();
                    painter.text(
                        at,
                        egui::Align2::CENTER_CENTER,
                        "unreadable",
                        small.clone(),
                        color,
                    );
                }
                None => {
                    let color = visuals.weak_text_color();
                    let at = image.center();
                    painter.text(
                        at,
                        egui::Align2::CENTER_CENTER,
                        "loading",
                        small.clone(),
                        color,
                    );
                }
            }
        }
        None => {
            painter.rect_filled(image, 2.0, visuals.extreme_bg_color);
        }
    }
    let mut top = image.bottom() + PADDING;
    for (caption, font) in cell.captions.iter().zip(caption_fonts(ui)) {
        let color = caption.color.unwrap_or(visuals.text_color());
        let mut job = egui::text::LayoutJob::simple_singleline(caption.text.clone(), font, color);
        job.wrap = egui::text::TextWrapping::truncate_at_width(IMAGE_SIDE);
        let galley = painter.layout_job(job);
        top += galley.size().y;
        painter.galley(
            egui::pos2(image.left(), top - galley.size().y),
            galley,
            color,
        );
    }
    if highlighted {
        let stroke = egui::Stroke::new(2.0, visuals.selection.stroke.color);
        painter.rect_stroke(rect.shrink(1.0), 3.0, stroke, egui::StrokeKind::Inside);
    }
    response.on_hover_text(&cell.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// One frame of a 600 x 400 window drawing a gallery of `count` cells, with `keys`.
    fn frame(
        ctx: &egui::Context,
        gallery: &mut Gallery,
        thumbnails: &mut ThumbnailCache,
        paths: &[PathBuf],
        highlight: &mut usize,
        keys: &[egui::Key],
    ) -> GalleryResponse {
        let events = keys
            .iter()
            .map(|&key| egui::Event::Key {
                key,
                physical_key: None,
                pressed: true,
                repeat: false,
                modifiers: egui::Modifiers::NONE,
            })
            .collect();
        let input = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(
                egui::Pos2::ZERO,
                egui::vec2(600.0, 400.0),
            )),
            events,
            ..Default::default()
        };
        let mut response = GalleryResponse::default();
        let mut output = ctx.run_ui(input, |ui| {
            thumbnails.begin_frame();
            response = gallery.ui(ui, thumbnails, paths.len(), highlight, |i| GalleryCell {
                path: Some(&paths[i]),
                name: format!("cell {i}"),
                captions: vec![Caption {
                    text: format!("{i}"),
                    color: None,
                }],
            });
        });
        // The textures are never painted here.
        output.textures_delta.clear();
        response
    }

    fn asked(thumbnails: &mut ThumbnailCache) -> Vec<PathBuf> {
        let mut asked = Vec::new();
        thumbnails.dispatch(|job| {
            asked.push(job.key.image);
            true
        });
        asked
    }

    #[test]
    fn only_the_rows_in_view_ask_for_thumbnails() {
        let ctx = egui::Context::default();
        let paths: Vec<PathBuf> = (0..5000).map(|i| format!("{i}.png").into()).collect();
        let mut gallery = Gallery::new("test_gallery");
        let mut thumbnails = ThumbnailCache::default();
        let mut highlight = 0;
        frame(
            &ctx,
            &mut gallery,
            &mut thumbnails,
            &paths,
            &mut highlight,
            &[],
        );
        let columns = gallery.columns();
        assert!(columns >= 3, "{columns} columns in 600 points");
        let first = asked(&mut thumbnails).len();
        // About three rows fit 400 points; show_rows lays out one more.
        assert!(
            first > 0 && first <= 6 * columns,
            "{first} thumbnails asked"
        );

        // Far down the grid, the cells in view are asked for, still only a few rows.
        highlight = 4000;
        gallery.reveal();
        frame(
            &ctx,
            &mut gallery,
            &mut thumbnails,
            &paths,
            &mut highlight,
            &[],
        );
        frame(
            &ctx,
            &mut gallery,
            &mut thumbnails,
            &paths,
            &mut highlight,
            &[],
        );
        let later = asked(&mut thumbnails);
        assert!(
            later.len() <= 6 * columns,
            "{} thumbnails asked",
            later.len()
        );
        assert!(
            later.contains(&paths[4000]),
            "the grid scrolled to the highlight"
        );
    }

    #[test]
    fn arrows_move_the_highlight_and_enter_opens_it() {
        use egui::Key;
        let ctx = egui::Context::default();
        let paths: Vec<PathBuf> = (0..20).map(|i| format!("{i}.png").into()).collect();
        let mut gallery = Gallery::new("test_gallery");
        let mut thumbnails = ThumbnailCache::default();
        let mut highlight = 0;
        frame(
            &ctx,
            &mut gallery,
            &mut thumbnails,
            &paths,
            &mut highlight,
            &[],
        );
        let columns = gallery.columns();
        let r = frame(
            &ctx,
            &mut gallery,
            &mut thumbnails,
            &paths,
            &mut highlight,
            &[Key::ArrowRight],
        );
        assert_eq!((highlight, r.moved, r.opened), (1, true, None));
        frame(
            &ctx,
            &mut gallery,
            &mut thumbnails,
            &paths,
            &mut highlight,
            &[Key::ArrowDown],
        );
        assert_eq!(highlight, 1 + columns);
        frame(
            &ctx,
            &mut gallery,
            &mut thumbnails,
            &paths,
            &mut highlight,
            &[Key::ArrowUp],
        );
        assert_eq!(highlight, 1);
        frame(
            &ctx,
            &mut gallery,
            &mut thumbnails,
            &paths,
            &mut highlight,
            &[Key::ArrowLeft, Key::ArrowLeft],
        );
        assert_eq!(highlight, 0, "stops at the first cell");
        for _ in 0..10 {
            frame(
                &ctx,
                &mut gallery,
                &mut thumbnails,
                &paths,
                &mut highlight,
                &[Key::ArrowDown],
            );
        }
        assert_eq!(highlight, 19, "stops at the last cell");
        let r = frame(
            &ctx,
            &mut gallery,
            &mut thumbnails,
            &paths,
            &mut highlight,
            &[Key::Enter],
        );
        assert_eq!(r.opened, Some(19));
    }
}
