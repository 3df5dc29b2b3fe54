//! How every chart of the app looks and behaves: both axes named, tick labels at "nice"
//! steps (1, 2, 5 × 10ⁿ) spaced so none is dropped, series in the palette's colours, and
//! the mouse wheel left to the page: over a chart it scrolls the page, Ctrl+wheel zooms
//! the chart, and once the chart is clicked the wheel pans it until the pointer leaves
//! (the chart is framed meanwhile).

use egui_plot::{GridInput, GridMark, Plot, PlotResponse, PlotUi};

/// egui_plot's default `grid_spacing.min`: [`GridInput::base_step_size`] is the value of
/// this many points.
const GRID_POINTS: f64 = 8.0;
/// Points between two labelled ticks of the x axis (egui_plot fades labels below 80).
const X_LABEL_POINTS: f64 = 84.0;
/// Points between two labelled ticks of the y axis (egui_plot fades labels below 30).
const Y_LABEL_POINTS: f64 = 32.0;

/// `plot` with one labelled y tick per class, named after `names` (bar charts of classes,
/// bar `i` at `y = i`): every class is named, none hidden as too close.
pub fn class_axis<'a>(plot: Plot<'a>, names: Vec<String>) -> Plot<'a> {
    let classes = names.len();
    plot.y_grid_spacer(move |_| {
        (0..classes)
            .map(|i| GridMark {
                value: i as f64,
                // Large, so the axis shows every label (it hides close ones).
                step_size: 10.0,
            })
            .collect()
    })
    .y_axis_formatter(move |mark, _| {
        let i = mark.value.round();
        if (mark.value - i).abs() < 1e-6 && i >= 0.0 {
            names.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    })
}

/// A chart being set up: its plot and the id its wheel state is kept under.
pub struct Chart<'a> {
    plot: Plot<'a>,
    id: egui::Id,
    pans: bool,
}

/// A chart named `salt` within `ui`, its axes named `x` and `y`.
pub fn chart<'a>(ui: &egui::Ui, salt: impl egui::AsIdSalt, x: &str, y: &str) -> Chart<'a> {
    let id = ui.make_persistent_id(salt);
    let engaged = engaged(ui.ctx(), id);
    let plot = Plot::new(id)
        .id(id)
        .x_axis_label(x.to_owned())
        .y_axis_label(y.to_owned())
        .x_grid_spacer(nice_spacer(X_LABEL_POINTS))
        .y_grid_spacer(nice_spacer(Y_LABEL_POINTS))
        .x_axis_formatter(|mark, _| tick_label(mark))
        .y_axis_formatter(|mark, _| tick_label(mark))
        .allow_scroll(engaged);
    Chart {
        plot,
        id,
        pans: true,
    }
}

impl<'a> Chart<'a> {
    /// Further settings of the plot (size, legend, bounds, formatters).
    pub fn style(mut self, style: impl FnOnce(Plot<'a>) -> Plot<'a>) -> Self {
        self.plot = style(self.plot);
        self
    }

    /// A chart that does not move: no pan, zoom or reset (bar charts of counts).
    pub fn fixed(mut self) -> Self {
        self.plot = self
            .plot
            .allow_zoom(false)
            .allow_drag(false)
            .allow_scroll(false)
            .allow_boxed_zoom(false)
            .allow_double_click_reset(false);
        self.pans = false;
        self
    }

    /// Shows the chart; a click on it gives it the wheel until the pointer leaves.
    pub fn show<R>(
        self,
        ui: &mut egui::Ui,
        build: impl FnOnce(&mut PlotUi<'a>) -> R + 'a,
    ) -> PlotResponse<R> {
        let response = self.plot.show(ui, build);
        let over = &response.response;
        let was = engaged(ui.ctx(), self.id);
        let now =
            self.pans && over.contains_pointer() && (was || over.clicked() || over.drag_started());
        if now {
            // The chart panned with this frame's wheel; the page must not scroll as well.
            ui.input_mut(|i| i.smooth_scroll_delta = egui::Vec2::ZERO);
            ui.painter().rect_stroke(
                over.rect,
                2.0,
                ui.visuals().selection.stroke,
                egui::StrokeKind::Outside,
            );
        }
        if now != was {
            ui.ctx()
                .data_mut(|d| d.insert_temp(self.id.with("wheel"), now));
        }
        response
    }
}

/// Whether the chart `id` has the wheel (it was clicked and the pointer has not left).
fn engaged(ctx: &egui::Context, id: egui::Id) -> bool {
    ctx.data(|d| d.get_temp::<bool>(id.with("wheel")))
        .unwrap_or(false)
}

/// Grid marks at the smallest step of 1, 2 or 5 × 10ⁿ at least `label_points` apart (each
/// labelled), with finer unlabelled lines at a fifth of it.
pub fn nice_spacer(label_points: f64) -> impl Fn(GridInput) -> Vec<GridMark> {
    move |input: GridInput| {
        let per_point = input.base_step_size / GRID_POINTS;
        let step = nice_step(per_point * label_points);
        let (low, high) = input.bounds;
        if !(step.is_finite() && step > 0.0 && low.is_finite() && high.is_finite()) {
            return Vec::new();
        }
        let fine = step / 5.0;
        let first = (low / fine).ceil() as i64;
        let last = (high / fine).floor() as i64;
        if last - first > 10_000 {
            return Vec::new();
        }
        (first..=last)
            .map(|i| {
                let value = i as f64 * fine;
                let step_size = if i % 5 == 0 { step } else { fine };
                GridMark { value, step_size }
            })
            .collect()
    }
}

/// The smallest of 1, 2 or 5 × 10ⁿ not below `at_least` (0 for a non-positive input).
pub fn nice_step(at_least: f64) -> f64 {
    if !(at_least.is_finite() && at_least > 0.0) {
        return 0.0;
    }
    let power = 10f64.powf(at_least.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&s| s >= at_least * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

/// A tick's value with as many decimals as its step needs: `0.5` (step 0.5), `2` (step 2).
pub fn tick_label(mark: GridMark) -> String {
    let decimals = if mark.step_size > 0.0 && mark.step_size.is_finite() {
        (-mark.step_size.log10() - 1e-9).ceil().max(0.0) as usize
    } else {
        0
    };
    egui::emath::format_with_decimals_in_range(mark.value, decimals..=decimals)
}

/// A tick label of a value that may be tiny (a learning rate): `3e-4`, `0.5`, `12`.
pub fn compact_number(value: f64) -> String {
    let magnitude = value.abs();
    if value == 0.0 {
        "0".to_owned()
    } else if !(1e-2..1e5).contains(&magnitude) {
        let text = format!("{value:.1e}");
        text.replace(".0e", "e")
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.0), 1.0);
        assert_eq!(nice_step(1.3), 2.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(6.0), 10.0);
        assert!((nice_step(0.00013) - 0.0002).abs() < 1e-12);
        assert_eq!(nice_step(0.0), 0.0);
    }

    #[test]
    fn every_labelled_mark_is_far_enough_from_the_next() {
        // 400 points showing 0 to 1.5: labels every 0.2 (80 points needed, 0.2 = 53 points
        // at 32 points per label), finer lines every 0.04.
        let input = GridInput {
            bounds: (0.0, 1.5),
            base_step_size: 1.5 / 400.0 * GRID_POINTS,
        };
        let marks = nice_spacer(Y_LABEL_POINTS)(input);
        let labelled: Vec<f64> = marks
            .iter()
            .filter(|m| m.step_size > 0.1)
            .map(|m| m.value)
            .collect();
        assert_eq!(labelled.len(), 8, "{labelled:?}");
        assert!((labelled[1] - 0.2).abs() < 1e-9);
        let points_apart = 0.2 / (1.5 / 400.0);
        assert!(points_apart >= Y_LABEL_POINTS);
        assert!(
            nice_spacer(Y_LABEL_POINTS)(GridInput {
                bounds: (0.0, f64::NAN),
                base_step_size: 1.0
            })
            .is_empty()
        );
    }

    #[test]
    fn tick_labels_keep_the_decimals_of_their_step() {
        let label = |value, step_size| tick_label(GridMark { value, step_size });
        assert_eq!(label(0.5, 0.5), "0.5");
        assert_eq!(label(1.0, 0.5), "1.0");
        assert_eq!(label(4.0, 2.0), "4");
        assert_eq!(label(0.3, 0.1), "0.3");
        assert_eq!(label(0.25, 0.05), "0.25");
    }

    #[test]
    fn tiny_and_ordinary_numbers_read_short() {
        assert_eq!(compact_number(0.0003), "3e-4");
        assert_eq!(compact_number(0.00025), "2.5e-4");
        assert_eq!(compact_number(0.5), "0.5");
        assert_eq!(compact_number(12.0), "12");
        assert_eq!(compact_number(0.0), "0");
    }
}
