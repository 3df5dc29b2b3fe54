//! The one progress bar of worker jobs: what runs, how far ("12 of 40") and the time left
//! from the pace so far.

use crate::runtime::Loading;

/// A progress bar of `width` points for a running job (`what` names it); nothing for a job
/// that is not running. Before the total is known it says `what` with an ellipsis.
pub fn progress_bar<T>(ui: &mut egui::Ui, what: &str, state: &Loading<T>, width: f32) {
    let Loading::Running { done, total, .. } = state else {
        return;
    };
    let fraction = *done as f32 / (*total).max(1) as f32;
    let text = match state.progress_text() {
        Some(count) => format!("{what}: {count}"),
        None => format!("{what}…"),
    };
    ui.add(
        egui::ProgressBar::new(fraction)
            .text(text)
            .desired_width(width)
            .animate(*total == 0),
    );
}
