//! The Training tab's charts: loss per step, loss per epoch, validation metrics per epoch,
//! learning rate per step, and the learning-rate finder's loss-versus-rate curve (log x).
//! Every series is drawn through [`Series::plot_points`], so long runs stay cheap to draw.

use egui_plot::{Legend, Line, Plot, PlotPoints, Points, VLine};

use crate::app::training::RunCurves;
use crate::train::LrFinderResult;
use crate::ui::series::Series;

/// Height of one chart in points.
const CHART_HEIGHT: f32 = 170.0;

fn line<'a>(name: &str, series: &'a Series) -> Line<'a> {
    let points = match series.plot_points() {
        std::borrow::Cow::Borrowed(points) => PlotPoints::Borrowed(points),
        std::borrow::Cow::Owned(points) => PlotPoints::Owned(points),
    };
    Line::new(name, points)
}

/// Epoch series are short: draw their points as well, so one epoch shows.
fn epoch_items<'a>(plot_ui: &mut egui_plot::PlotUi<'a>, name: &str, series: &'a Series) {
    plot_ui.line(line(name, series));
    let points: Vec<[f64; 2]> = series
        .raw()
        .iter()
        .filter(|p| p.y.is_finite())
        .map(|p| [p.x, p.y])
        .collect();
    plot_ui.points(Points::new(name, points).radius(3.0));
}

fn chart<'a>(id: String, x_label: &str) -> Plot<'a> {
    Plot::new(id)
        .height(CHART_HEIGHT)
        .legend(Legend::default())
        .x_axis_label(x_label.to_owned())
        .allow_scroll(false)
}

/// The four charts of a run in a 2 × 2 grid; `id` keeps the charts of different runs apart.
pub fn curves_ui(ui: &mut egui::Ui, id: &str, curves: &RunCurves) {
    ui.columns(2, |columns| {
        columns[0].label(format!("Loss per step ({} steps)", curves.step_loss.len()));
        chart(format!("{id}_step_loss"), "step").show(&mut columns[0], |plot_ui| {
            plot_ui.line(line("train loss", &curves.step_loss));
        });
        columns[1].label("Loss per epoch");
        chart(format!("{id}_epoch_loss"), "epoch").show(&mut columns[1], |plot_ui| {
            epoch_items(plot_ui, "train", &curves.train_loss);
            epoch_items(plot_ui, "validation", &curves.val_loss);
        });
    });
    ui.columns(2, |columns| {
        columns[0].label("Validation metrics per epoch");
        chart(format!("{id}_metrics"), "epoch")
            .include_y(0.0)
            .include_y(1.0)
            .show(&mut columns[0], |plot_ui| {
                for (name, series) in &curves.metrics {
                    epoch_items(plot_ui, name, series);
                }
            });
        columns[1].label("Learning rate");
        chart(format!("{id}_lr"), "step").show(&mut columns[1], |plot_ui| {
            plot_ui.line(line("lr", &curves.step_lr));
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
