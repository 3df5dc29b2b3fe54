//! Scanning a data set: every listed file is read, hashed (blake3) and decoded in parallel
//! (rayon), its mask checked, and the outcome assembled into a [`DatasetIndex`] of usable
//! images and a [`ValidationReport`]. A scan never stops at a bad file and never panics:
//! a file that fails stays out of the index and is named in the report.

use super::targets::{DataTargets, Evidence, data_targets, detect_task};
use std::collections::{BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::DataError;
use super::decode;
use super::detection::{self, DetectionFormat};
use super::mask::{self, MaskEncoding};
use super::report::{ClassCount, Issue, IssueKind, MaskSummary, SplitCount, ValidationReport};
use super::source::{Candidate, DatasetSource, SplitHint};

/// The default smallest usable image side.
pub const DEFAULT_MIN_SIDE_PX: u32 = 32;

/// What a scan checks against.
#[derive(Clone, Debug, PartialEq)]
pub struct ScanOptions {
    /// Images with a side below this are reported as tiny (and kept).
    pub min_side_px: u32,
    /// The project's mask encoding; `None` uses the detected one.
    pub mask_encoding: Option<MaskEncoding>,
    /// The project's class names, when fixed; other labels are reported as unknown.
    pub known_classes: Option<Vec<String>>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            min_side_px: DEFAULT_MIN_SIDE_PX,
            mask_encoding: None,
            known_classes: None,
        }
    }
}

/// One usable image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetItem {
    /// Relative to [`DatasetIndex::root`].
    pub path: PathBuf,
    /// Index into [`DatasetIndex::classes`] (classification).
    pub label: Option<usize>,
    /// The manifest's group (e.g. patient id).
    pub group: Option<String>,
    /// The manifest's split.
    pub split: Option<SplitHint>,
    /// The mask, relative to the root (segmentation).
    pub mask: Option<PathBuf>,
    /// The boxes, in original-image pixels, classes indexing [`DatasetIndex::classes`]
    /// (detection; `Some(empty)` for an image without objects).
    #[serde(default)]
    pub boxes: Option<Vec<crate::data::boxes::ObjectBox>>,
    /// The image's id in its annotation file (COCO's `image_id`; detection).
    #[serde(default)]
    pub source_id: Option<u64>,
    /// Width and height in pixels, EXIF orientation applied.
    pub size_px: (u32, u32),
    /// blake3 of the file's bytes, hex (duplicates share it).
    pub content_hash: String,
}

/// The usable images of a data set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetIndex {
    /// The folder item paths are relative to.
    pub root: PathBuf,
    /// Class names; a label is an index into this list (empty for segmentation).
    pub classes: Vec<String>,
    /// Sorted by path.
    pub items: Vec<DatasetItem>,
    /// The encoding masks are read with (segmentation).
    pub mask_encoding: Option<MaskEncoding>,
    /// Per class, the data set's own category id (COCO; detection), for results written in
    /// the data set's ids.
    #[serde(default)]
    pub category_ids: Option<Vec<u64>>,
}

impl DatasetIndex {
    /// The absolute path of an item's image.
    pub fn image_path(&self, item: &DatasetItem) -> PathBuf {
        self.root.join(&item.path)
    }

    /// Each item's stratum for a stratified split: its class (classification), or for
    /// detection the rarest class present in the image, images without objects a stratum
    /// of their own ([`detection::split_strata`]).
    pub fn split_labels(&self) -> Vec<usize> {
        detection::split_strata(self.classes.len(), &self.items)
    }
}

/// Scans `source`: lists it, checks every file in parallel (calling `progress(done, total)`
/// on the calling thread as files finish), and returns the index and the report. Fails only
/// when the source itself cannot be read. Call it from a worker thread of its own, not from
/// inside the rayon pool (the files are checked on that pool).
pub fn scan(
    source: &DatasetSource,
    options: &ScanOptions,
    progress: impl FnMut(usize, usize),
) -> Result<(DatasetIndex, ValidationReport), DataError> {
    scan_until(source, options, &AtomicBool::new(false), progress)
}

/// [`scan`] that gives up with [`DataError::Cancelled`] soon after `stop` is set.
pub fn scan_until(
    source: &DatasetSource,
    options: &ScanOptions,
    stop: &AtomicBool,
    mut progress: impl FnMut(usize, usize),
) -> Result<(DatasetIndex, ValidationReport), DataError> {
    let listing = source.list()?;
    let root = source.root();
    let is_manifest = matches!(source, DatasetSource::Manifest { .. });
    let candidates = listing.candidates;
    let total = candidates.len();
    progress(0, total);
    let mut results: Vec<Option<Checked>> = (0..total).map(|_| None).collect();
    let (tx, rx) = crossbeam_channel::unbounded::<(usize, Checked)>();
    std::thread::scope(|s| {
        let (root, candidates) = (&root, &candidates);
        s.spawn(move || {
            candidates
                .par_iter()
                .enumerate()
                .for_each_with(tx, |tx, (i, candidate)| {
                    if !stop.load(Ordering::Relaxed) {
                        let _ = tx.send((i, check_guarded(root, candidate, is_manifest)));
                    }
                });
        });
        let mut done = 0;
        for (i, checked) in rx.iter() {
            results[i] = Some(checked);
            done += 1;
            progress(done, total);
        }
    });
    if stop.load(Ordering::Relaxed) {
        return Err(DataError::Cancelled { path: root });
    }
    let evidence = Evidence::of_listing(source, &candidates);
    let assembly = Assembly {
        root: &root,
        options,
        targets: data_targets(detect_task(&evidence)),
        detection: listing.detection,
    };
    let checked: Vec<Checked> = results
        .into_iter()
        .map(|r| r.unwrap_or_else(Checked::lost))
        .collect();
    let (mut index, mut report) =
        assembly.assemble(&candidates, checked, listing.folder_classes, listing.issues);
    report.source = source.describe();
    if listing.detection.is_some() {
        index.category_ids = listing.category_ids;
    }
    Ok((index, report))
}

/// A mask's size and its distinct values, or why it cannot be used.
type MaskCheck = Result<((u32, u32), Vec<u16>), Issue>;

/// The result of checking one candidate file (and its mask).
struct Checked {
    /// Hash and size of a file that decoded.
    image: Result<(blake3::Hash, (u32, u32)), Issue>,
    /// The mask's size and distinct values, when there is a mask.
    mask: Option<MaskCheck>,
}

impl Checked {
    fn lost() -> Checked {
        Checked {
            image: Err(Issue::new(
                IssueKind::Unreadable,
                PathBuf::new(),
                "the check did not finish".to_owned(),
            )),
            mask: None,
        }
    }
}

fn check_guarded(root: &Path, candidate: &Candidate, is_manifest: bool) -> Checked {
    catch_unwind(AssertUnwindSafe(|| check(root, candidate, is_manifest))).unwrap_or_else(|_| {
        Checked {
            image: Err(Issue::new(
                IssueKind::Corrupt,
                candidate.path.clone(),
                "the decoder failed on this file (it crashed instead of reporting an error)"
                    .to_owned(),
            )),
            mask: None,
        }
    })
}

fn check(root: &Path, candidate: &Candidate, is_manifest: bool) -> Checked {
    let abs = root.join(&candidate.path);
    let as_issue = |err: DataError| issue_from_error(&err, candidate.path.clone(), is_manifest);
    let image = decode::read_bytes(&abs)
        .map_err(as_issue)
        .and_then(|bytes| {
            let hash = blake3::hash(&bytes);
            let decoded = decode::decode_bytes(&bytes, &abs).map_err(as_issue)?;
            Ok((hash, decoded.dimensions()))
        });
    let mask = match (&image, &candidate.mask) {
        (Ok(_), Some(mask)) => Some(check_mask(root, mask, is_manifest)),
        _ => None,
    };
    Checked { image, mask }
}

fn check_mask(root: &Path, mask: &Path, is_manifest: bool) -> MaskCheck {
    let abs = root.join(mask);
    let as_issue = |err: DataError| issue_from_error(&err, mask.to_path_buf(), is_manifest);
    let bytes = decode::read_bytes(&abs).map_err(as_issue)?;
    let decoded = decode::decode_bytes(&bytes, &abs).map_err(as_issue)?;
    let (width, height, values) = decode::mask_values_of(&abs, decoded).map_err(as_issue)?;
    Ok(((width, height), mask::distinct_values(&values)))
}

/// The report's view of a decoding error: its kind and its reason without the path.
pub fn issue_from_error(err: &DataError, path: PathBuf, is_manifest: bool) -> Issue {
    let kind = match err {
        DataError::Read { source, .. }
            if is_manifest && source.kind() == std::io::ErrorKind::NotFound =>
        {
            IssueKind::MissingFile
        }
        DataError::Read { .. } | DataError::Source { .. } | DataError::Cancelled { .. } => {
            IssueKind::Unreadable
        }
        DataError::Empty { .. } => IssueKind::ZeroByte,
        DataError::NotAnImage { .. } => IssueKind::NotAnImage,
        DataError::Decode { .. } => IssueKind::Corrupt,
        DataError::Truncated { .. } => IssueKind::Truncated,
        DataError::UnsupportedDicom { .. } => IssueKind::Unsupported,
        DataError::TooSmall { .. } => IssueKind::TinyImage,
        DataError::Mask { .. } => IssueKind::MaskUnexpectedValues,
    };
    let text = err.to_string();
    let suffix = format!(": {}", err.path().display());
    let reason = text.strip_suffix(&suffix).unwrap_or(&text);
    let message = reason.split_whitespace().collect::<Vec<_>>().join(" ");
    Issue::new(kind, path, message)
}

/// Class names sorted numerically when all are integers, else alphabetically.
fn sort_classes(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut names: Vec<String> = names
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if names.iter().all(|n| n.parse::<i64>().is_ok()) {
        names.sort_by_key(|n| n.parse::<i64>().unwrap_or_default());
    }
    names
}

struct Assembly<'a> {
    root: &'a Path,
    options: &'a ScanOptions,
    /// What the items are labelled with.
    targets: &'static dyn DataTargets,
    /// The annotation format of a detection set: items carry boxes, classes are the file's.
    detection: Option<DetectionFormat>,
}

/// A candidate that passed the per-file checks.
struct Pending {
    item: DatasetItem,
    mask_values: Option<Vec<u16>>,
}

impl Assembly<'_> {
    fn classes(&self, candidates: &[Candidate], folder_classes: Vec<String>) -> Vec<String> {
        if self.detection.is_some() {
            // The file's classes in the file's order, which the boxes' indices follow.
            return self.options.known_classes.clone().unwrap_or(folder_classes);
        }
        if !self.targets.class_labels() {
            return Vec::new();
        }
        if let Some(known) = &self.options.known_classes {
            return known.clone();
        }
        let has_train = candidates.iter().any(|c| c.split == Some(SplitHint::Train));
        let labels = candidates
            .iter()
            .filter(|c| !has_train || c.split.is_none() || c.split == Some(SplitHint::Train))
            .filter_map(|c| c.label.clone());
        sort_classes(labels.chain(folder_classes))
    }

    fn assemble(
        &self,
        candidates: &[Candidate],
        checked: Vec<Checked>,
        folder_classes: Vec<String>,
        mut issues: Vec<Issue>,
    ) -> (DatasetIndex, ValidationReport) {
        let remap = detection::class_remap(&folder_classes, &self.options.known_classes);
        let classes = self.classes(candidates, folder_classes);
        let class_index: HashMap<&str, usize> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        let mut pending = Vec::new();
        for (candidate, checked) in candidates.iter().zip(checked) {
            if let Some(mut p) = self.check_one(candidate, checked, &class_index, &mut issues) {
                if self.detection.is_some() {
                    let (boxes, found) = detection::settle_boxes(candidate, p.item.size_px);
                    issues.extend(found);
                    p.item.boxes = Some(detection::remapped(boxes, &remap, candidate, &mut issues));
                }
                pending.push(p);
            }
        }
        let mask_summary = self
            .targets
            .masks()
            .then(|| self.check_masks(&mut pending, &mut issues));
        let mut items: Vec<DatasetItem> = pending.into_iter().map(|p| p.item).collect();
        items.sort_by(|a, b| a.path.cmp(&b.path));
        report_duplicates(&items, &mut issues);
        issues.sort_by(|a, b| (a.kind, &a.path).cmp(&(b.kind, &b.path)));
        let report = ValidationReport {
            source: String::new(),
            root: self.root.to_path_buf(),
            files_checked: candidates.len(),
            usable: items.len(),
            issues,
            classes: class_counts(&classes, &items),
            imbalance_ratio: imbalance(&classes, &items),
            splits: split_counts(&classes, &items),
            masks: mask_summary,
            boxes: None,
        };
        let index = DatasetIndex {
            root: self.root.to_path_buf(),
            classes,
            items,
            mask_encoding: report.masks.as_ref().and_then(|m| m.used),
            category_ids: None,
        };
        let mut report = report;
        if let Some(format) = self.detection {
            let summary = detection::box_summary(format, &index, &report.issues);
            report.classes = summary
                .classes
                .iter()
                .map(|c| ClassCount {
                    name: c.name.clone(),
                    count: c.images,
                })
                .collect();
            report.imbalance_ratio = detection::imbalance(&summary);
            report.boxes = Some(summary);
        }
        (index, report)
    }

    fn check_one(
        &self,
        candidate: &Candidate,
        checked: Checked,
        class_index: &HashMap<&str, usize>,
        issues: &mut Vec<Issue>,
    ) -> Option<Pending> {
        let path = candidate.path.clone();
        let (hash, (width, height)) = match checked.image {
            Ok(ok) => ok,
            Err(mut issue) => {
                issue.path = path;
                issues.push(issue);
                return None;
            }
        };
        let min = self.options.min_side_px;
        if width.min(height) < min {
            let message = format!("{width}x{height} px, smaller than {min} px on a side");
            issues.push(Issue::new(IssueKind::TinyImage, path.clone(), message));
        }
        let labelled = self.targets.class_labels() && self.detection.is_none();
        let label = match (&candidate.label, labelled) {
            (_, false) => None,
            (Some(label), true) => match class_index.get(label.as_str()) {
                Some(&i) => Some(i),
                None => {
                    let message = if self.options.known_classes.is_some() {
                        format!("the label \"{label}\" is not one of the project's classes")
                    } else {
                        format!("the label \"{label}\" has no training images")
                    };
                    issues.push(Issue::new(IssueKind::UnknownLabel, path, message));
                    return None;
                }
            },
            (None, true) => {
                let message = "the image has no label".to_owned();
                issues.push(Issue::new(IssueKind::ImageWithoutLabel, path, message));
                return None;
            }
        };
        let mask_values = match (
            checked.mask,
            self.targets.masks() && self.detection.is_none(),
        ) {
            (_, false) => None,
            (None, true) => {
                let message = "no mask with the same name in masks/".to_owned();
                issues.push(Issue::new(IssueKind::MaskMissing, path, message));
                return None;
            }
            (Some(Err(issue)), true) => {
                issues.push(issue);
                return None;
            }
            (Some(Ok(((mw, mh), _))), true) if (mw, mh) != (width, height) => {
                let mask_path = candidate.mask.clone().unwrap_or_default();
                let message = format!("the mask is {mw}x{mh} px, its image {width}x{height} px");
                issues.push(Issue::new(IssueKind::MaskWrongSize, mask_path, message));
                return None;
            }
            (Some(Ok((_, values))), true) => Some(values),
        };
        Some(Pending {
            item: DatasetItem {
                path,
                label,
                group: candidate.group.clone(),
                split: candidate.split,
                mask: candidate.mask.clone(),
                boxes: candidate.boxes.clone(),
                source_id: candidate.source_id,
                size_px: (width, height),
                content_hash: hash.to_hex().to_string(),
            },
            mask_values,
        })
    }

    /// Detects the mask encoding and leaves out masks with values outside the one used.
    fn check_masks(&self, pending: &mut Vec<Pending>, issues: &mut Vec<Issue>) -> MaskSummary {
        let detected =
            mask::detect_encoding(pending.iter().filter_map(|p| p.mask_values.as_deref()));
        let used = self.options.mask_encoding.or(detected);
        let masks = pending.len();
        if let Some(encoding) = used {
            pending.retain(|p| {
                let values = p.mask_values.as_deref().unwrap_or_default();
                let bad: Vec<u16> = values
                    .iter()
                    .copied()
                    .filter(|&v| !encoding.allows(v))
                    .collect();
                if bad.is_empty() {
                    return true;
                }
                let shown: Vec<String> = bad.iter().take(8).map(u16::to_string).collect();
                let more = if bad.len() > 8 { ", ..." } else { "" };
                let message = format!(
                    "values {}{more} do not fit the encoding {}",
                    shown.join(", "),
                    encoding.describe()
                );
                let mask_path = p.item.mask.clone().unwrap_or_default();
                issues.push(Issue::new(
                    IssueKind::MaskUnexpectedValues,
                    mask_path,
                    message,
                ));
                false
            });
        }
        MaskSummary {
            detected,
            used,
            overridden: self.options.mask_encoding.is_some(),
            masks,
        }
    }
}

/// Reports every file whose bytes equal an earlier one's (by path order); both stay.
fn report_duplicates(items: &[DatasetItem], issues: &mut Vec<Issue>) {
    let mut first: HashMap<&str, &DatasetItem> = HashMap::new();
    for item in items {
        match first.get(item.content_hash.as_str()) {
            None => {
                first.insert(&item.content_hash, item);
            }
            Some(original) => {
                let mut message = format!("the same content as {}", original.path.display());
                if let (Some(a), Some(b)) = (original.split, item.split)
                    && a != b
                {
                    message.push_str(&format!(" (across splits: {} and {})", a.name(), b.name()));
                }
                issues.push(Issue::new(IssueKind::Duplicate, item.path.clone(), message));
            }
        }
    }
}

fn class_counts(classes: &[String], items: &[DatasetItem]) -> Vec<ClassCount> {
    let mut counts = vec![0usize; classes.len()];
    for label in items.iter().filter_map(|i| i.label) {
        if let Some(c) = counts.get_mut(label) {
            *c += 1;
        }
    }
    classes
        .iter()
        .zip(counts)
        .map(|(name, count)| ClassCount {
            name: name.clone(),
            count,
        })
        .collect()
}

fn imbalance(classes: &[String], items: &[DatasetItem]) -> Option<f64> {
    let counts: Vec<usize> = class_counts(classes, items)
        .into_iter()
        .map(|c| c.count)
        .filter(|&c| c > 0)
        .collect();
    let (min, max) = (counts.iter().min()?, counts.iter().max()?);
    Some(*max as f64 / *min as f64)
}

fn split_counts(classes: &[String], items: &[DatasetItem]) -> Vec<SplitCount> {
    if items.iter().all(|i| i.split.is_none()) {
        return Vec::new();
    }
    let splits = [
        Some(SplitHint::Train),
        Some(SplitHint::Val),
        Some(SplitHint::Test),
        None,
    ];
    splits
        .into_iter()
        .filter_map(|split| {
            let members: Vec<&DatasetItem> = items.iter().filter(|i| i.split == split).collect();
            if members.is_empty() {
                return None;
            }
            let mut counts = vec![0usize; classes.len()];
            for label in members.iter().filter_map(|i| i.label) {
                if let Some(c) = counts.get_mut(label) {
                    *c += 1;
                }
            }
            Some(SplitCount {
                split: split.map_or("unassigned", SplitHint::name).to_owned(),
                counts,
                total: members.len(),
            })
        })
        .collect()
}
