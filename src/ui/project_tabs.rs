//! The row of a project's tabs (Overview, Dataset, Training, the inspection tabs, Study,
//! Try it).

use crate::runtime::CentralTab;
use crate::ui::inspect_tabs;

/// The project tabs before the inspection tabs, in the order of the tab bar.
pub const PROJECT_TABS: [(CentralTab, &str); 3] = [
    (CentralTab::Overview, "Overview"),
    (CentralTab::Dataset, "Dataset"),
    (CentralTab::Training, "Training"),
];

/// Draws the tab row; a click selects the tab in `tab`.
pub fn tab_bar_ui(ui: &mut egui::Ui, tab: &mut CentralTab) {
    ui.horizontal(|ui| {
        let study = [(CentralTab::Study, "Study"), (CentralTab::TryIt, "Try it")];
        for (value, name) in PROJECT_TABS
            .into_iter()
            .chain(inspect_tabs::TABS)
            .chain(study)
        {
            ui.selectable_value(tab, value, name);
        }
    });
}
