//! What is wrong with a project's run folders, shown wherever runs are listed (the Training
//! tab, the Inspector, Embeddings, Compare): one warning line per problem, naming the file,
//! while the sound runs stay usable.

use crate::train::catalogue::{DamagedRun, RunSummary};

/// Warning lines for the damaged runs and the runs with problems; nothing when all are sound.
pub fn run_problems_ui(ui: &mut egui::Ui, runs: &[RunSummary], damaged: &[DamagedRun]) {
    let lines = problem_lines(runs, damaged);
    if lines.is_empty() {
        return;
    }
    let colour = ui.visuals().warn_fg_color;
    let title = match lines.len() {
        1 => "1 problem with this project's runs".to_owned(),
        n => format!("{n} problems with this project's runs"),
    };
    egui::CollapsingHeader::new(egui::RichText::new(title).color(colour))
        .id_salt("run_problems")
        .default_open(true)
        .show(ui, |ui| {
            for line in lines {
                ui.add(egui::Label::new(egui::RichText::new(line).color(colour)).wrap());
            }
        });
}

/// One line per problem: "run-003 cannot be read: …", "run-002: …".
pub fn problem_lines(runs: &[RunSummary], damaged: &[DamagedRun]) -> Vec<String> {
    let damaged = damaged
        .iter()
        .map(|d| format!("{} cannot be read: {}", d.id, d.message));
    let problems = runs
        .iter()
        .flat_map(|r| r.problems.iter().map(move |p| format!("{}: {p}", r.id)));
    damaged.chain(problems).collect()
}
