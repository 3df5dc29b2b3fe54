//! The Training tab's charts: loss per step, loss per epoch, validation metrics per epoch,
//! learning rate per step, and the learning-rate finder's loss-versus-rate curve (log x).
//! Every series is drawn through [`Series::plot_points`], so long runs stay cheap to draw.

use egui::Color32;
use egui_plot::{Corner, Legend, Line, Plot, PlotPoints, Points, VLine};

use crate::runtime::series::Series;
use crate::runtime::training::PlotCurves;
use crate::train::LrFinderResult;

/// Height of one chart in points.
const CHART_HEIGHT: f32 = 170.0;

fn line<'a>(name: &str, series: &'a Series) -> Line<'a> {
    let points = match series.plot_points() {
        std::borrow::Cow::Borrowed(points) => PlotPoints::Borrowed(points),
        std::borrow::Cow::Owned(points) => PlotPoints::Owned(points),
    };
    Line::new(name, points)
}

/// Distinct colours for the series of one chart.
const PALETTE: [Color32; 6] = [
    Color32::from_rgb(86, 156, 214),
    Color32::from_rgb(230, 145, 56),
    Color32::from_rgb(106, 190, 110),
    Color32::from_rgb(190, 120, 210),
    Color32::from_rgb(220, 90, 90),
    Color32::from_rgb(80, 190, 190),
];

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

/// A chart with its legend in `corner` (where its curves rarely go).
fn chart<'a>(id: String, x_label: &str, corner: Corner) -> Plot<'a> {
    Plot::new(id)
        .height(CHART_HEIGHT)
        .legend(Legend::default().position(corner))
        .x_axis_label(x_label.to_owned())
        .allow_scroll(false)
}

/// The four charts of a run in a 2 × 2 grid; `id` keeps the charts of different runs apart.
pub fn curves_ui(ui: &mut egui::Ui, id: &str, curves: &PlotCurves) {
    ui.columns(2, |columns| {
        if curves.step_loss.is_empty() {
            columns[0].label("Loss per step");
            columns[0].weak(
                "Recorded while a run trains in this window; stored runs keep one value per epoch.",
            );
        } else {
            columns[0].label(format!("Loss per step ({} steps)", curves.step_loss.len()));
            let plot = chart(format!("{id}_step_loss"), "step", Corner::RightTop);
            plot.show(&mut columns[0], |plot_ui| {
                plot_ui.line(line("train loss", &curves.step_loss).color(PALETTE[0]));
            });
        }
        columns[1].label("Loss per epoch");
        chart(format!("{id}_epoch_loss"), "epoch", Corner::RightTop).show(
            &mut columns[1],
            |plot_ui| {
                epoch_items(plot_ui, "train", &curves.train_loss, PALETTE[0]);
                epoch_items(plot_ui, "validation", &curves.val_loss, PALETTE[1]);
            },
        );
    });
    ui.columns(2, |columns| {
        columns[0].label("Validation metrics per epoch");
        chart(format!("{id}_metrics"), "epoch", Corner::RightBottom)
            .include_y(0.0)
            .include_y(1.0)
            .show(&mut columns[0], |plot_ui| {
                for (i, (name, series)) in curves.metrics.iter().enumerate() {
                    epoch_items(plot_ui, name, series, PALETTE[i % PALETTE.len()]);
                }
            });
        columns[1].label("Learning rate");
        chart(format!("{id}_lr"), "step", Corner::RightTop).show(&mut columns[1], |plot_ui| {
            plot_ui.line(line("lr", &curves.step_lr).color(PALETTE[1]));
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
    Plot::new("lr_finder_plot")
        .height(CHART_HEIGHT)
        .legend(Legend::default())
        .x_axis_label("learning rate")
        .x_axis_formatter(|mark, _| format!("{:.0e}", 10f64.powf(mark.value)))
        .allow_scroll(false)
        .show(ui, |plot_ui| {
            plot_ui.line(Line::new("loss", raw));
            plot_ui.line(Line::new("smoothed", smoothed));
            if let Some(lr) = result.suggested_lr {
                plot_ui.vline(VLine::new("suggestion", lr.log10()));
            }
        });
    use_it
}
