//! The training data of a real project: its data set scanned and validated, the frozen split
//! (`split.ron`, created on first use and extended when images are added), and batches from
//! the parallel [`BatchLoader`] with the run's input size, the backbone's normalisation, the
//! project's window and mask encoding, and the training augmentation.
//!
//! Files that fail the scan are left out (the scan's report names them); a file that breaks
//! after the scan is skipped from training batches with a log line, and fails evaluation
//! passes (whose order must stay aligned with the labels) with an error naming it.

use crate::data::targets::data_targets;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tch::Device;

use super::TrainError;
use super::config::{TaskKind, TrainConfig};
use super::source::{Batch, BatchIter, BatchSource, Split};
use crate::data::cache::ImageCache;
use crate::data::loader::{BatchLoader, LoaderConfig, LoaderItem, SkippedItem};
use crate::data::mask::MaskEncoding;
use crate::data::overrides::{Applied, Overrides};
use crate::data::scan::{DatasetIndex, DatasetItem, scan};
use crate::data::source::SplitHint;
use crate::data::split::{self, FrozenSplit, SplitFractions, SplitItem, assign_splits};
use crate::data::window::WindowSetting;
use crate::model::Normalization;
use crate::model::backbone::known_backbones;
use crate::project::{OpenProject, load_project};

mod eval_images;
mod frozen;

pub use eval_images::{EvalTransform, LoadedImages, load_eval_images, load_images_with};

/// Bytes of decoded working images kept between epochs.
const CACHE_BYTES: usize = 1 << 30;

/// The normalisation of backbone `name` (ImageNet statistics for unknown names, e.g.
/// TorchScript backbones).
pub fn normalization_of(name: &str) -> Normalization {
    known_backbones()
        .into_iter()
        .find(|info| info.name == name)
        .map_or(Normalization::IMAGENET, |info| info.normalization)
}

/// A project's labelled images as a [`BatchSource`].
pub struct ProjectSource {
    index: DatasetIndex,
    classes: Vec<String>,
    task: TaskKind,
    train: Vec<LoaderItem>,
    validation: Vec<LoaderItem>,
    /// Which frozen split feeds validation (`Val`, or `Test` when there is no `Val`).
    validation_split: split::Split,
    base: LoaderConfig,
    cache: Arc<ImageCache>,
    /// Loaders by (split, augmented), built on first use.
    loaders: Vec<((Split, bool), BatchLoader)>,
    fingerprints: [String; 2],
    issues: usize,
    /// What the overrides did.
    applied: Applied,
}

impl ProjectSource {
    /// Scans the project's data set, loads or creates its frozen split, and prepares loaders
    /// for `config`'s input size, backbone and seed.
    pub fn open(project_dir: &Path, config: &TrainConfig) -> Result<Self, TrainError> {
        Self::open_with_validation(project_dir, config, None)
    }

    /// [`ProjectSource::open`] with the validation role given to `validation` (e.g. the
    /// held-out test split for a final evaluation) instead of `Val` (or `Test` without `Val`).
    pub fn open_with_validation(
        project_dir: &Path,
        config: &TrainConfig,
        validation: Option<split::Split>,
    ) -> Result<Self, TrainError> {
        let scanned = Scanned::of(project_dir, &config.overrides)?;
        let classes = class_names(&scanned.index, scanned.task)?;
        // Read, extended and saved under the project's lock: another process may be doing the same.
        let lock = crate::file_lock::lock_project(project_dir, "extending split.ron").map_err(
            TrainError::io("lock the project", &project_dir.join(split::SPLIT_FILE)),
        )?;
        let (frozen, changed) = current_split(project_dir, &scanned.index, config.seed)?;
        if changed {
            frozen.save(project_dir)?;
        }
        drop(lock);
        let validation_split = validation.unwrap_or_else(|| default_validation(&frozen));
        let train = scanned.items_in(&frozen, split::Split::Train);
        let validation = scanned.items_in(&frozen, validation_split);
        Self::assemble(
            project_dir,
            scanned,
            classes,
            [train, validation],
            validation_split,
            config,
        )
    }

    /// Builds the source from scanned data and the items of each split.
    fn assemble(
        project_dir: &Path,
        scanned: Scanned,
        classes: Vec<String>,
        [train, validation]: [Vec<LoaderItem>; 2],
        validation_split: split::Split,
        config: &TrainConfig,
    ) -> Result<Self, TrainError> {
        if train.is_empty() || validation.is_empty() {
            return Err(TrainError::Source(format!(
                "the split has {} training and {} validation images; both need at least one: {}",
                train.len(),
                validation.len(),
                project_dir.join(split::SPLIT_FILE).display()
            )));
        }
        let Scanned {
            window,
            index,
            issues,
            task,
            applied,
        } = scanned;
        let base = LoaderConfig {
            task,
            window,
            mask_encoding: index.mask_encoding,
            seed: config.seed,
            eval_crop_fraction: config.eval_crop_fraction,
            ..LoaderConfig::train(
                config.input_size_px,
                config.batch_size,
                normalization_of(&config.backbone),
                config.augment.clone(),
            )
        };
        let fingerprints =
            [&train, &validation].map(|items| fingerprint(&index, items, &base, &config.overrides));
        Ok(Self {
            classes,
            task,
            train,
            validation,
            validation_split,
            base,
            cache: Arc::new(ImageCache::new(CACHE_BYTES)),
            loaders: Vec::new(),
            fingerprints,
            issues,
            applied,
            index,
        })
    }

    /// [`ProjectSource::open`], then sets `config.task` to the project's task (segmentation
    /// with the data's mask classes). Flips are turned off in `config` unless the project
    /// says its images may be mirrored; `config.overrides` become the project's current
    /// relabels and exclusions (a new run freezes them).
    pub fn open_for_training(
        project_dir: &Path,
        config: &mut TrainConfig,
    ) -> Result<Self, TrainError> {
        let project = load_project(project_dir)?;
        super::data_defaults::apply_mirror_setting(&mut config.augment, project.dataset.mirror_ok);
        config.overrides = project.dataset.curation.overrides();
        let source = Self::open(project_dir, config)?;
        config.task = source.task;
        Ok(source)
    }

    /// Files the scan leaves out (unreadable, unlabelled, bad masks, ...; warnings such as
    /// tiny images and duplicates keep their files and are not counted; nor are the files
    /// the user excluded, see [`ProjectSource::overrides_applied`]).
    pub fn files_left_out(&self) -> usize {
        self.issues
    }

    /// What the run's relabels and exclusions did to the data set.
    pub fn overrides_applied(&self) -> &Applied {
        &self.applied
    }

    /// The frozen split used for validation (`Val`, or `Test` when the data has no `Val`).
    pub fn validation_split(&self) -> split::Split {
        self.validation_split
    }

    /// The scanned data set.
    pub fn index(&self) -> &DatasetIndex {
        &self.index
    }

    /// The image file of sample `index` of `split`.
    pub fn sample_path(&self, split: Split, index: usize) -> Option<PathBuf> {
        Some(self.items(split).get(index)?.path.clone())
    }

    /// The mask file of sample `index` of `split` (segmentation), if it has one.
    pub fn sample_mask_path(&self, split: Split, index: usize) -> Option<PathBuf> {
        self.items(split).get(index)?.mask_path.clone()
    }

    /// The boxes of sample `index` of `split` in original-image pixels (detection), if it
    /// has them.
    pub fn sample_boxes(
        &self,
        split: Split,
        index: usize,
    ) -> Option<std::sync::Arc<Vec<crate::data::boxes::ObjectBox>>> {
        self.items(split).get(index)?.boxes.clone()
    }

    fn items(&self, split: Split) -> &[LoaderItem] {
        match split {
            Split::Train => &self.train,
            Split::Validation => &self.validation,
        }
    }

    fn loader(&mut self, split: Split, augment: bool) -> Result<&BatchLoader, TrainError> {
        let key = (split, augment);
        let position = match self.loaders.iter().position(|(k, _)| *k == key) {
            Some(position) => position,
            None => {
                let config = if augment {
                    self.base.clone()
                } else {
                    LoaderConfig {
                        task: self.task,
                        window: self.base.window.clone(),
                        mask_encoding: self.base.mask_encoding,
                        seed: self.base.seed,
                        eval_crop_fraction: self.base.eval_crop_fraction,
                        ..LoaderConfig::eval(
                            self.base.size_px,
                            self.base.batch_size,
                            self.base.normalization,
                        )
                    }
                };
                let items = self.items(split).to_vec();
                let loader = BatchLoader::new(items, config, Some(Arc::clone(&self.cache)))?;
                self.loaders.push((key, loader));
                self.loaders.len() - 1
            }
        };
        Ok(&self.loaders[position].1)
    }
}

impl BatchSource for ProjectSource {
    fn labels(&self, split: Split) -> Vec<i64> {
        self.items(split).iter().map(|item| item.label).collect()
    }

    fn num_classes(&self) -> usize {
        self.classes.len()
    }

    fn fingerprint(&self, split: Split) -> String {
        match split {
            Split::Train => self.fingerprints[0].clone(),
            Split::Validation => self.fingerprints[1].clone(),
        }
    }

    fn class_names(&self) -> Vec<String> {
        self.classes.clone()
    }

    fn sample_ids(&self, split: Split) -> Vec<String> {
        self.items(split)
            .iter()
            .map(|item| item.id.clone())
            .collect()
    }

    fn sample_path(&self, split: Split, index: usize) -> Option<PathBuf> {
        self.items(split).get(index).map(|item| item.path.clone())
    }

    fn batches(
        &mut self,
        split: Split,
        plan: Vec<Vec<usize>>,
        augment: bool,
        seed: u64,
    ) -> BatchIter<'_> {
        let task = self.task;
        let epoch = match self
            .loader(split, augment)
            .and_then(|loader| loader.plan(plan, seed).map_err(TrainError::from))
        {
            Ok(epoch) => epoch,
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        Box::new(epoch.map(move |batch| {
            // Evaluation passes must keep every sample in place.
            if !batch.skipped.is_empty() && !augment {
                return Err(skipped_error(&batch.skipped));
            }
            to_train_batch(&batch, task)
        }))
    }

    fn split_manifest(&self) -> serde_json::Value {
        serde_json::json!({
            "classes": self.classes,
            "root": self.index.root,
            "validation_split": format!("{:?}", self.validation_split).to_lowercase(),
            "train": {
                "samples": self.train.len(),
                "fingerprint": self.fingerprints[0],
                "ids": self.sample_ids(Split::Train),
            },
            "validation": {
                "samples": self.validation.len(),
                "fingerprint": self.fingerprints[1],
                "ids": self.sample_ids(Split::Validation),
            },
        })
    }
}

fn skipped_error(skipped: &[SkippedItem]) -> TrainError {
    let first = skipped
        .first()
        .map_or_else(String::new, |s| s.reason.clone());
    TrainError::Source(format!(
        "{} image(s) of an evaluation pass could not be loaded; the first: {first}",
        skipped.len()
    ))
}

fn to_train_batch(batch: &crate::data::loader::Batch, task: TaskKind) -> Result<Batch, TrainError> {
    let mut tensors = batch.to_tensors(Device::Cpu)?;
    let targets = data_targets(task)
        .batch_targets(&mut tensors)
        .ok_or_else(|| {
            TrainError::Source(format!("a {} batch came without its targets", task.label()))
        })?;
    Ok(Batch {
        images: tensors.images,
        targets,
        skipped: batch.skipped.iter().map(|s| s.reason.clone()).collect(),
    })
}

/// Class names: the index's classes when items are labelled by class name, the object
/// classes of the annotations for boxes, else the mask classes (background first).
fn class_names(index: &DatasetIndex, task: TaskKind) -> Result<Vec<String>, TrainError> {
    if data_targets(task).boxes() {
        if index.classes.is_empty() {
            return Err(TrainError::Source(format!(
                "the annotations name no object class: {}",
                index.root.display()
            )));
        }
        return Ok(index.classes.clone());
    }
    if data_targets(task).class_labels() {
        if index.classes.len() < 2 {
            return Err(TrainError::Source(format!(
                "{} needs at least two classes, the data set has {}: {}",
                task.label(),
                index.classes.len(),
                index.root.display()
            )));
        }
        return Ok(index.classes.clone());
    }
    let encoding = index.mask_encoding.ok_or_else(|| {
        TrainError::Source(format!(
            "no usable masks were found: {}",
            index.root.display()
        ))
    })?;
    Ok(match encoding {
        MaskEncoding::Binary01 | MaskEncoding::Binary0255 => {
            vec!["background".to_owned(), "foreground".to_owned()]
        }
        MaskEncoding::ClassIndex { classes } => (0..classes)
            .map(|c| {
                if c == 0 {
                    "background".to_owned()
                } else {
                    format!("class {c}")
                }
            })
            .collect(),
    })
}

/// The key of an item in `split.ron`: its path relative to the data root, `/`-separated.
fn rel_key(path: &Path) -> String {
    crate::data::overrides::item_id(path)
}

/// The project's split as it stands: `split.ron` (computed when missing) with the images
/// added since assigned (seeded, stratified, grouped); `true` when it differs from the file.
/// Nothing is written here.
fn current_split(
    project_dir: &Path,
    index: &DatasetIndex,
    seed: u64,
) -> Result<(FrozenSplit, bool), TrainError> {
    let split_path = project_dir.join(split::SPLIT_FILE);
    let strata = index.split_labels();
    let items: Vec<SplitItem> = index
        .items
        .iter()
        .zip(strata)
        .map(|(item, label)| SplitItem {
            rel_path: rel_key(&item.path),
            label,
            group: item.group.clone(),
            fixed: item.split.map(|hint| match hint {
                SplitHint::Train => split::Split::Train,
                SplitHint::Val => split::Split::Val,
                SplitHint::Test => split::Split::Test,
            }),
            content_hash: Some(item.content_hash.clone()),
        })
        .collect();
    let mut frozen = if split_path.is_file() {
        FrozenSplit::load(project_dir)?
    } else {
        FrozenSplit::compute(&items, SplitFractions::default(), seed)?
    };
    let added: Vec<SplitItem> = items
        .into_iter()
        .filter(|item| !frozen.assignment.contains_key(&item.rel_path))
        .collect();
    let changed = !added.is_empty() || !split_path.is_file();
    if !added.is_empty() {
        let splits = assign_splits(&added, frozen.fractions, frozen.seed)?;
        for (item, split) in added.into_iter().zip(splits) {
            frozen.assignment.insert(item.rel_path, split);
        }
    }
    Ok((frozen, changed))
}

/// The split that feeds validation by default: `Val`, or `Test` when the data has no `Val`.
fn default_validation(frozen: &FrozenSplit) -> split::Split {
    if frozen.assignment.values().any(|s| *s == split::Split::Val) {
        split::Split::Val
    } else {
        split::Split::Test
    }
}

/// A project's data set, scanned: what building a [`ProjectSource`] starts from.
struct Scanned {
    window: WindowSetting,
    index: DatasetIndex,
    /// Files the scan left out.
    issues: usize,
    /// The project's task.
    task: TaskKind,
    /// What the overrides did to the index.
    applied: Applied,
}

impl Scanned {
    /// Loads the project at `project_dir`, scans its data set and reads it through
    /// `overrides` (the run's relabels and exclusions).
    fn of(project_dir: &Path, overrides: &Overrides) -> Result<Self, TrainError> {
        let project = load_project(project_dir)?;
        let open = OpenProject {
            dir: project_dir.to_owned(),
            project,
        };
        let source = open.dataset_source()?;
        let options = open.project.dataset.scan_options();
        let (mut index, report) = scan(&source, &options, |_, _| {})?;
        let applied = overrides.apply(&mut index);
        Ok(Self {
            applied,
            task: open.project.task,
            window: open.project.dataset.window,
            index,
            issues: report
                .issues
                .iter()
                .filter(|i| i.kind.excludes_file())
                .count(),
        })
    }

    /// The loader item of a scanned item with class index `label`.
    fn loader_item(&self, item: &DatasetItem, label: i64) -> LoaderItem {
        LoaderItem {
            id: rel_key(&item.path),
            path: self.index.image_path(item),
            label,
            mask_path: item.mask.as_ref().map(|m| self.index.root.join(m)),
            boxes: item.boxes.clone().map(std::sync::Arc::new),
        }
    }

    /// The items `frozen` assigns to `wanted`, in index order.
    fn items_in(&self, frozen: &FrozenSplit, wanted: split::Split) -> Vec<LoaderItem> {
        self.index
            .items
            .iter()
            .filter(|item| frozen.split_of(&rel_key(&item.path)) == Some(wanted))
            .map(|item| self.loader_item(item, item.label.unwrap_or(0) as i64))
            .collect()
    }
}

/// A blake3 over the split's items (paths and contents), the labels the user overrode (cached
/// passes store labels) and everything that changes their pixels: input size, window,
/// normalisation, mask encoding.
fn fingerprint(
    index: &DatasetIndex,
    items: &[LoaderItem],
    config: &LoaderConfig,
    overrides: &Overrides,
) -> String {
    let mut hasher = blake3::Hasher::new();
    let hash_of: std::collections::HashMap<String, &str> = index
        .items
        .iter()
        .map(|item| (rel_key(&item.path), item.content_hash.as_str()))
        .collect();
    for item in items {
        hasher.update(item.id.as_bytes());
        hasher.update(b"\0");
        hasher.update(hash_of.get(&item.id).copied().unwrap_or("").as_bytes());
        if overrides.relabelled.contains_key(&item.id) {
            hasher.update(format!("\0label {}", item.label).as_bytes());
        }
        hasher.update(b"\n");
    }
    hasher.update(
        format!(
            "{}|{:?}|{:?}|{:?}|{:?}{}",
            config.size_px,
            config.window,
            config.normalization,
            config.mask_encoding,
            // (was the loader's `segmentation` flag: keeps existing caches valid)
            data_targets(config.task).masks(),
            if data_targets(config.task).boxes() {
                "|boxes"
            } else {
                ""
            }
        )
        .as_bytes(),
    );
    hasher.finalize().to_hex().to_string()
}
