//! Making a study from the user's choices: the backbones × strategies, each pretrained,
//! plus one backbone from random weights as the control, with the project's next-run
//! settings as the recipe (the CLI's `study` and the Study tab both come here).

use std::path::Path;

use super::StudyError;
use super::record::{Study, StudyDir, StudyEntry};
use crate::model::backbone::known_backbones;
use crate::train::{Strategy, TrainConfig};

/// What the user chose.
#[derive(Clone, Debug, PartialEq)]
pub struct StudyPlan {
    /// The backbones, in order.
    pub backbones: Vec<String>,
    /// The strategies (the control trains with the first).
    pub strategies: Vec<Strategy>,
    /// The backbone also trained from random weights, if any.
    pub control: Option<String>,
    /// Epochs of every run (default: the project's settings).
    pub epochs: Option<usize>,
}

/// Makes study `study-NNN` of the project at `project_dir` from `plan`; every run's
/// config is checked before anything is written.
pub fn make_study(project_dir: &Path, plan: &StudyPlan) -> Result<Study, StudyError> {
    if plan.backbones.is_empty() || plan.strategies.is_empty() {
        return Err(StudyError::Invalid(
            "a study needs at least one backbone and one strategy".into(),
        ));
    }
    let project = crate::project::load_project(project_dir)?;
    let mut recipe = TrainConfig::for_project(&project);
    if let Some(epochs) = plan.epochs {
        // Epochs asked for are the epochs trained.
        (recipe.epochs, recipe.min_steps) = (epochs, 0);
    }
    let mut entries = Vec::new();
    for strategy in &plan.strategies {
        for backbone in &plan.backbones {
            entries.push(StudyEntry::new(backbone, *strategy, true));
        }
    }
    if let Some(control) = &plan.control {
        entries.push(StudyEntry::new(control, plan.strategies[0], false));
    }
    for entry in &entries {
        entry.config(&recipe).validate()?;
    }
    let (_, study) = StudyDir::create(project_dir, recipe, entries)?;
    Ok(study)
}

/// Backbones whose pretrained weights are in the asset cache.
pub fn installed_pretrained() -> Vec<String> {
    let weights = crate::assets::assets_dir().join("weights");
    known_backbones()
        .into_iter()
        .filter(|b| {
            b.pretrained.as_ref().is_some_and(|p| {
                weights
                    .join(format!("{}.safetensors", p.file_stem))
                    .is_file()
            })
        })
        .map(|b| b.name.to_owned())
        .collect()
}
