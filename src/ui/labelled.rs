//! A widget with its label before it ("Theme [System theme ▼]"); the label names the widget
//! for screen readers (and the GUI tests).

/// Lays out `text`, then the widget `add` adds, on one row; returns the widget's response.
pub fn labelled(
    ui: &mut egui::Ui,
    text: &str,
    add: impl FnOnce(&mut egui::Ui) -> egui::Response,
) -> egui::Response {
    ui.horizontal(|ui| {
        let label = ui.label(text);
        add(ui).labelled_by(label.id)
    })
    .inner
}
