//! The Training tab's charts: loss per step, loss per epoch, validation metrics per epoch,
//! learning rate per step, and the learning-rate finder's loss-versus-rate curve (log x).
//! Every series is drawn through [`Series::plot_points`], so long runs stay cheap to draw.
//! The charts follow [`crate::ui::plot_style`] (named axes, the wheel left to the page).

use egui::Color32;
use egui_plot::{Corner, Legend, Line, PlotPoints, Points, VLine};

use crate::runtime::series::Series;
use crate::runtime::training::PlotCurves;
use crate::train::LrFinderResult;
use crate::ui::palette::class_color;
use crate::ui::plot_style::{Chart, chart, compact_number};

/// Height of one chart in points.
const CHART_HEIGHT: f32 = 170.0;

fn line<'a>(name: &str, series: &'a Series) -> Line<'a> {
    let points = match series.plot_points() {
        std::borrow::Cow::Borrowed(points) => PlotPoints::Borrowed(points),
        std::borrow::Cow::Owned(points) => PlotPoints::Owned(points),
    };
    Line::new(name, points)
}

/// Epoch series are short: draw their points as well (same colour), so one epoch shows.
fn epoch_items<'a>(
    plot_ui: &mut egui_plot::PlotUi<'a>,
    name: &str,
    series: &'a Series,
    color: Color32,
) {
    plot_ui.line(line(name, series).color(color));
    let points: Vec<[f64; 2]> = series
        .raw()
        .iter()
        .filter(|p| p.y.is_finite())
        .map(|p| [p.x, p.y])
        .collect();
    plot_ui.points(Points::new(name, points).radius(3.0).color(color));
}

/// Room kept free at the right of the charts, so the page's scroll bar never covers them.
const RIGHT_MARGIN: i8 = 14;

/// A chart of the tab with its legend in `corner` (where its curves rarely go).
fn tab_chart<'a>(ui: &egui::Ui, id: String, (x, y): (&str, &str), corner: Corner) -> Chart<'a> {
    chart(ui, id, x, y).style(|plot| {
        plot.height(CHART_HEIGHT)
            .legend(Legend::default().position(corner))
    })
}

/// The four charts of a run in a 2 × 2 grid; `id` keeps the charts of different runs apart.
pub fn curves_ui(ui: &mut egui::Ui, id: &str, curves: &PlotCurves) {
    egui::Frame::NONE
        .inner_margin(egui::Margin {
            right: RIGHT_MARGIN,
            ..egui::Margin::ZERO
        })
        .show(ui, |ui| charts_ui(ui, id, curves));
}

fn charts_ui(ui: &mut egui::Ui, id: &str, curves: &PlotCurves) {
    ui.columns(2, |columns| {
        if curves.step_loss.is_empty() {
            columns[0].label("Loss per step");
            columns[0].weak(
                "Recorded while a run trains in this window; stored runs keep one value per epoch.",
            );
        } else {
            columns[0].label(format!("Loss per step ({} steps)", curves.step_loss.len()));
            let plot = tab_chart(
                &columns[0],
                format!("{id}_step_loss"),
                ("step", "loss"),
                Corner::RightTop,
            );
            plot.show(&mut columns[0], |plot_ui| {
                plot_ui.line(line("train loss", &curves.step_loss).color(class_color(0)));
            });
        }
        columns[1].label("Loss per epoch");
        tab_chart(
            &columns[1],
            format!("{id}_epoch_loss"),
            ("epoch", "loss"),
            Corner::RightTop,
        )
        .show(&mut columns[1], |plot_ui| {
            epoch_items(plot_ui, "train", &curves.train_loss, class_color(0));
            epoch_items(plot_ui, "validation", &curves.val_loss, class_color(1));
        });
    });
    ui.columns(2, |columns| {
        columns[0].label("Validation metrics per epoch");
        tab_chart(
            &columns[0],
            format!("{id}_metrics"),
            ("epoch", "value"),
            Corner::RightBottom,
        )
        .style(|plot| plot.include_y(0.0).include_y(1.0))
        .show(&mut columns[0], |plot_ui| {
            for (i, (name, series)) in curves.metrics.iter().enumerate() {
                epoch_items(plot_ui, name, series, class_color(i));
            }
        });
        columns[1].label("Learning rate");
        tab_chart(
            &columns[1],
            format!("{id}_lr"),
            ("step", "learning rate"),
            Corner::RightTop,
        )
        .style(|plot| {
            plot.include_y(0.0)
                .y_axis_formatter(|mark, _| compact_number(mark.value))
        })
        .show(&mut columns[1], |plot_ui| {
            plot_ui.line(line("lr", &curves.step_lr).color(class_color(1)));
        });
    });
}

/// The finder's curve over log10(lr), with the suggestion marked; returns whether "Use
/// suggestion" was clicked.
pub fn lr_finder_ui(ui: &mut egui::Ui, result: &LrFinderResult) -> bool {
    let mut use_it = false;
    ui.horizontal(|ui| match result.suggested_lr {
        Some(lr) => {
            ui.label(format!("Suggested learning rate: {lr:.1e}"));
            use_it = ui.button("Use suggestion").clicked();
        }
        None => {
            ui.label("No suggestion: the loss never fell clearly.");
        }
    });
    let raw: Vec<[f64; 2]> = result
        .lrs
        .iter()
        .zip(&result.losses)
        .filter(|(lr, loss)| **lr > 0.0 && loss.is_finite())
        .map(|(lr, loss)| [lr.log10(), *loss])
        .collect();
    let smoothed: Vec<[f64; 2]> = result
        .lrs
        .iter()
        .zip(&result.smoothed)
        .map(|(lr, loss)| [lr.log10(), *loss])
        .collect();
    chart(ui, "lr_finder_plot", "learning rate (log scale)", "loss")
        .style(|plot| {
            plot.height(CHART_HEIGHT)
                .legend(Legend::default())
                // Labels at whole powers of ten only: 1e-5, 1e-4, ...
                .x_axis_formatter(|mark, _| {
                    let power = mark.value.round();
                    if (mark.value - power).abs() < 1e-9 {
                        format!("1e{power:.0}")
                    } else {
                        String::new()
                    }
                })
        })
        .show(ui, |plot_ui| {
            plot_ui.line(Line::new("loss", raw).color(class_color(0)));
            plot_ui.line(Line::new("smoothed", smoothed).color(class_color(1)));
            if let Some(lr) = result.suggested_lr {
                plot_ui.vline(VLine::new("suggestion", lr.log10()).color(class_color(3)));
            }
        });
    use_it
}
