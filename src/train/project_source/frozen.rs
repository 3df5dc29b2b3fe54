//! A trained run's data as the run froze it: the train and validation ids and the class
//! names of its `split.json`, read against the project's data set as it is now. Inspecting,
//! evaluating, exporting and comparing a run read it this way, so images added to the
//! folder since training never enter its validation set, and nothing writes `split.ron`.
//!
//! Runs frozen before `split.json` listed ids fall back to the project's `split.ron` as it
//! stands (images added since are assigned in memory only).

use crate::data::targets::data_targets;
use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::{ProjectSource, Scanned, class_names, current_split, default_validation, rel_key};
use crate::data::loader::LoaderItem;
use crate::data::split;
use crate::train::TrainError;
use crate::train::config::TrainConfig;
use crate::train::run::RunDir;

/// What `split.json` says about the samples of a run.
#[derive(Debug, Default, Deserialize)]
struct FrozenManifest {
    /// Class names in index order (absent in the oldest runs).
    #[serde(default)]
    classes: Vec<String>,
    /// `val` or `test`: the project split that fed validation.
    #[serde(default)]
    validation_split: Option<String>,
    #[serde(default)]
    train: FrozenPart,
    #[serde(default)]
    validation: FrozenPart,
}

/// One split of `split.json`.
#[derive(Debug, Default, Deserialize)]
struct FrozenPart {
    /// Sample ids (paths relative to the data root) in sample order.
    #[serde(default)]
    ids: Option<Vec<String>>,
}

impl ProjectSource {
    /// The data of run `run` of the project at `project_dir` as the run froze it (see the
    /// module doc), for `config` (the run's frozen config). `validation` gives the
    /// validation role to another project split (e.g. `Test` for a final evaluation; read
    /// from `split.ron`, which is not written). Frozen samples whose files are gone or no
    /// longer pass the scan are left out (counted in [`ProjectSource::files_left_out`]: the
    /// scan's issues plus the frozen files that are gone).
    pub fn open_run(
        project_dir: &Path,
        run: &RunDir,
        config: &TrainConfig,
        validation: Option<split::Split>,
    ) -> Result<Self, TrainError> {
        let manifest: FrozenManifest =
            serde_json::from_value(run.read_split()?).map_err(|e| TrainError::Parse {
                path: run.dir.join("split.json"),
                reason: e.to_string(),
            })?;
        let mut scanned = Scanned::of(project_dir, &config.overrides)?;
        let classes = if manifest.classes.is_empty() {
            class_names(&scanned.index, scanned.task)?
        } else {
            manifest.classes.clone()
        };
        let frozen_validation = match manifest.validation_split.as_deref() {
            Some("test") => split::Split::Test,
            _ => split::Split::Val,
        };
        let needs_project_split = manifest.train.ids.is_none()
            || manifest.validation.ids.is_none()
            || validation.is_some_and(|v| v != frozen_validation);
        let current = if needs_project_split {
            Some(current_split(project_dir, &scanned.index, config.seed)?.0)
        } else {
            None
        };
        let by_id = Lookup::new(&scanned, &classes);
        let mut missing = 0;
        let mut pick = |ids: &Option<Vec<String>>, wanted: split::Split| -> Vec<LoaderItem> {
            match (ids, &current) {
                (Some(ids), _) => {
                    let mut items = Vec::with_capacity(ids.len());
                    for id in ids {
                        match by_id.item(id) {
                            Some(item) => items.push(item),
                            // A file that fails the scan is already one of its issues.
                            None if !scanned.index.root.join(id).exists() => missing += 1,
                            None => {}
                        }
                    }
                    items
                }
                (None, Some(frozen)) => scanned.items_in(frozen, wanted),
                (None, None) => Vec::new(),
            }
        };
        let train = pick(&manifest.train.ids, split::Split::Train);
        let (validation_split, validation_items) = match (validation, &current) {
            (Some(chosen), Some(frozen)) if chosen != frozen_validation => {
                (chosen, scanned.items_in(frozen, chosen))
            }
            _ => {
                let role = match (&manifest.validation.ids, &current) {
                    (None, Some(frozen)) if manifest.validation_split.is_none() => {
                        default_validation(frozen)
                    }
                    _ => frozen_validation,
                };
                (role, pick(&manifest.validation.ids, role))
            }
        };
        scanned.issues += missing;
        Self::assemble(
            project_dir,
            scanned,
            classes,
            [train, validation_items],
            validation_split,
            config,
        )
    }
}

/// Scanned items by id, with their labels mapped to the run's class order.
struct Lookup<'a> {
    scanned: &'a Scanned,
    by_id: HashMap<String, usize>,
    /// Index of the current data's class → index in the run's classes.
    label_map: Vec<Option<usize>>,
}

impl<'a> Lookup<'a> {
    fn new(scanned: &'a Scanned, classes: &[String]) -> Self {
        let by_id = scanned
            .index
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| (rel_key(&item.path), i))
            .collect();
        let label_map = scanned
            .index
            .classes
            .iter()
            .map(|name| classes.iter().position(|c| c == name))
            .collect();
        Self {
            scanned,
            by_id,
            label_map,
        }
    }

    /// The loader item of sample `id`, if the data set still has it (and, for
    /// classification, its class is one of the run's).
    fn item(&self, id: &str) -> Option<LoaderItem> {
        let item = self.scanned.index.items.get(*self.by_id.get(id)?)?;
        let label = if data_targets(self.scanned.task).class_labels() {
            (*self.label_map.get(item.label?)?)? as i64
        } else {
            0
        };
        Some(self.scanned.loader_item(item, label))
    }
}
