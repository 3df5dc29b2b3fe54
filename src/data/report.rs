//! The validation report of a scan: plain data that the GUI and the CLI both show (and the
//! CLI prints as JSON). Paths are relative to the data set's root where they lie below it.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::mask::MaskEncoding;

/// What is wrong with a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IssueKind {
    /// The file (or folder) could not be read.
    Unreadable,
    /// A manifest lists a file that does not exist.
    MissingFile,
    /// The file is empty.
    ZeroByte,
    /// The content is no supported image format.
    NotAnImage,
    /// A recognised format that fails to decode.
    Corrupt,
    /// The file ends early.
    Truncated,
    /// A DICOM file this build cannot decode (transfer syntax, multi-frame, colour model).
    Unsupported,
    /// Exactly the same bytes as another file (kept; the split should keep them together).
    Duplicate,
    /// Smaller than the minimum side (kept).
    TinyImage,
    /// A segmentation image without a mask.
    MaskMissing,
    /// The mask's size differs from its image's.
    MaskWrongSize,
    /// Mask values outside the encoding (or an unreadable/colour mask).
    MaskUnexpectedValues,
    /// A mask without an image (kept out, no harm).
    MaskWithoutImage,
    /// An image with no label (outside the class folders, empty label, not in the manifest).
    ImageWithoutLabel,
    /// A label outside the known classes, or only in val/test rows.
    UnknownLabel,
    /// A manifest row that cannot be used (empty path, listed twice, unknown split).
    BadManifestRow,
    /// An annotation file (COCO JSON, YOLO txt, VOC XML) or one of its entries that cannot
    /// be parsed; the rest of the data set carries on.
    MalformedAnnotation,
    /// An annotation file that names no images.
    AnnotationFileWithoutImages,
    /// Annotations of an image that is not there (their boxes are left out).
    AnnotationOfMissingImage,
    /// A box of an unknown category id, a class index out of range or an unknown class
    /// name (the box is dropped).
    UnknownCategory,
    /// A box with a missing, non-numeric, NaN or infinite coordinate (dropped).
    BadCoordinates,
    /// An annotation id used twice (an identical copy is dropped, else kept without the id).
    DuplicateAnnotationId,
    /// A box of zero or negative width or height (dropped).
    EmptyBox,
    /// A box partly outside its image (clipped to the image).
    BoxClipped,
    /// A box entirely outside its image (dropped).
    BoxOutsideImage,
    /// A box with a side below [`TINY_BOX_SIDE_PX`] (kept).
    TinyBox,
    /// An image without any box (kept: an image without objects).
    ImageWithoutBoxes,
    /// The size an annotation file gives differs from the image's (boxes are checked
    /// against the image).
    AnnotationSizeMismatch,
    /// Something the import adapted and kept (an image found by its file stem, a polygon
    /// read as its bounding box, class numbers used as names).
    AnnotationAdjusted,
}

/// Boxes with a side shorter than this many pixels are reported as tiny (and kept).
pub const TINY_BOX_SIDE_PX: f32 = 2.0;

impl IssueKind {
    /// Every kind, in report order.
    pub const ALL: [IssueKind; 29] = [
        IssueKind::Unreadable,
        IssueKind::MissingFile,
        IssueKind::ZeroByte,
        IssueKind::NotAnImage,
        IssueKind::Corrupt,
        IssueKind::Truncated,
        IssueKind::Unsupported,
        IssueKind::Duplicate,
        IssueKind::TinyImage,
        IssueKind::MaskMissing,
        IssueKind::MaskWrongSize,
        IssueKind::MaskUnexpectedValues,
        IssueKind::MaskWithoutImage,
        IssueKind::ImageWithoutLabel,
        IssueKind::UnknownLabel,
        IssueKind::BadManifestRow,
        IssueKind::MalformedAnnotation,
        IssueKind::AnnotationFileWithoutImages,
        IssueKind::AnnotationOfMissingImage,
        IssueKind::UnknownCategory,
        IssueKind::BadCoordinates,
        IssueKind::DuplicateAnnotationId,
        IssueKind::EmptyBox,
        IssueKind::BoxClipped,
        IssueKind::BoxOutsideImage,
        IssueKind::TinyBox,
        IssueKind::ImageWithoutBoxes,
        IssueKind::AnnotationSizeMismatch,
        IssueKind::AnnotationAdjusted,
    ];

    /// Whether a file with this issue is left out of the index. Duplicates and tiny images
    /// stay (they are usable); a mask without an image is no image at all.
    /// Box-level kinds name an image that stays.
    pub fn excludes_file(self) -> bool {
        !matches!(
            self,
            IssueKind::Duplicate
                | IssueKind::TinyImage
                | IssueKind::MaskWithoutImage
                | IssueKind::UnknownCategory
                | IssueKind::BadCoordinates
                | IssueKind::DuplicateAnnotationId
                | IssueKind::EmptyBox
                | IssueKind::BoxClipped
                | IssueKind::BoxOutsideImage
                | IssueKind::TinyBox
                | IssueKind::ImageWithoutBoxes
                | IssueKind::AnnotationSizeMismatch
                | IssueKind::AnnotationAdjusted
        )
    }

    /// Whether the import lost something to this issue: a file left out or a box dropped.
    /// Kept files, clipped boxes and notes are not losses.
    pub fn loses_data(self) -> bool {
        match self {
            IssueKind::UnknownCategory
            | IssueKind::BadCoordinates
            | IssueKind::EmptyBox
            | IssueKind::BoxOutsideImage => true,
            IssueKind::DuplicateAnnotationId => false,
            kind => kind.excludes_file(),
        }
    }

    /// What happens to a file with this issue, in words.
    pub fn effect(self) -> &'static str {
        match self {
            IssueKind::Duplicate | IssueKind::TinyImage => "kept",
            IssueKind::MaskWithoutImage | IssueKind::AnnotationFileWithoutImages => "ignored",
            IssueKind::UnknownCategory
            | IssueKind::BadCoordinates
            | IssueKind::EmptyBox
            | IssueKind::BoxOutsideImage => "box dropped",
            IssueKind::DuplicateAnnotationId => "copy dropped or id cleared",
            IssueKind::BoxClipped => "clipped",
            IssueKind::TinyBox | IssueKind::AnnotationSizeMismatch => "kept",
            IssueKind::ImageWithoutBoxes => "kept as background",
            IssueKind::AnnotationAdjusted => "adapted",
            _ => "left out",
        }
    }

    /// A short human-readable name.
    pub fn label(self) -> &'static str {
        match self {
            IssueKind::Unreadable => "unreadable",
            IssueKind::MissingFile => "missing file",
            IssueKind::ZeroByte => "zero-byte file",
            IssueKind::NotAnImage => "not an image",
            IssueKind::Corrupt => "corrupt",
            IssueKind::Truncated => "truncated",
            IssueKind::Unsupported => "unsupported DICOM",
            IssueKind::Duplicate => "duplicate",
            IssueKind::TinyImage => "tiny image",
            IssueKind::MaskMissing => "mask missing",
            IssueKind::MaskWrongSize => "mask of the wrong size",
            IssueKind::MaskUnexpectedValues => "mask with unexpected values",
            IssueKind::MaskWithoutImage => "mask without image",
            IssueKind::ImageWithoutLabel => "image without label",
            IssueKind::UnknownLabel => "unknown label",
            IssueKind::BadManifestRow => "bad manifest row",
            IssueKind::MalformedAnnotation => "malformed annotation",
            IssueKind::AnnotationFileWithoutImages => "annotation file without images",
            IssueKind::AnnotationOfMissingImage => "annotation of a missing image",
            IssueKind::UnknownCategory => "unknown category",
            IssueKind::BadCoordinates => "bad coordinates",
            IssueKind::DuplicateAnnotationId => "duplicate annotation id",
            IssueKind::EmptyBox => "empty box",
            IssueKind::BoxClipped => "box outside the image, clipped",
            IssueKind::BoxOutsideImage => "box entirely outside the image",
            IssueKind::TinyBox => "tiny box",
            IssueKind::ImageWithoutBoxes => "image without boxes",
            IssueKind::AnnotationSizeMismatch => "annotated size differs",
            IssueKind::AnnotationAdjusted => "annotation adapted",
        }
    }
}

/// One problem with one file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    pub kind: IssueKind,
    /// The file, relative to the data set's root where possible (in JSON, a name that is
    /// not UTF-8 is written with replacement characters).
    #[serde(serialize_with = "lossy_path")]
    pub path: PathBuf,
    /// What is wrong, in words.
    pub message: String,
}

impl Issue {
    /// A new issue.
    pub fn new(kind: IssueKind, path: PathBuf, message: String) -> Issue {
        Issue {
            kind,
            path,
            message,
        }
    }
}

/// Writes a path as text, replacing what is not UTF-8, so that a report always encodes.
fn lossy_path<S: serde::Serializer>(path: &std::path::Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

/// How many usable images a class has.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassCount {
    pub name: String,
    pub count: usize,
}

/// Usable images per class in one split of a manifest's `split` column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitCount {
    /// `train`, `val`, `test`, or `unassigned`.
    pub split: String,
    /// Per class, in the order of [`ValidationReport::classes`].
    pub counts: Vec<usize>,
    pub total: usize,
}

/// The mask encoding of a segmentation set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaskSummary {
    /// What the masks suggest (`None` when all are empty).
    pub detected: Option<MaskEncoding>,
    /// What the scan checked against: the override, else the detected encoding.
    pub used: Option<MaskEncoding>,
    /// Whether the project overrides the detected encoding.
    pub overridden: bool,
    /// Masks read.
    pub masks: usize,
}

/// Boxes of one class in a detection set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoxClassCount {
    pub name: String,
    /// Boxes of the class in usable images.
    pub boxes: usize,
    /// Usable images holding at least one box of the class.
    pub images: usize,
}

/// The boxes of a detection set, after the import's checks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BoxSummary {
    /// The annotation format in words ("COCO JSON").
    pub format: String,
    /// Per class, in the order of the data set's classes.
    pub classes: Vec<BoxClassCount>,
    /// Boxes kept.
    pub boxes: usize,
    /// Usable images with at least one box.
    pub images_with_boxes: usize,
    /// Usable images without boxes (kept as images without objects).
    pub images_without_boxes: usize,
    /// The most boxes in one image.
    pub max_per_image: usize,
    /// Boxes per usable image.
    pub mean_per_image: f64,
    /// Crowd boxes (COCO `iscrowd`, VOC `difficult`) among the kept ones.
    pub crowd: usize,
    /// Boxes clipped to their image.
    pub clipped: usize,
    /// Tiny boxes (kept).
    pub tiny: usize,
    /// What the import dropped or left out (boxes, lines, files, annotations of missing
    /// images), as issue counts by kind label.
    pub dropped: Vec<(String, usize)>,
}

impl BoxSummary {
    fn text(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\nBoxes ({}): {} in {} images, {} images without boxes; at most {} and {:.1} on \
             average per image; {} crowd, {} clipped, {} tiny",
            self.format,
            self.boxes,
            self.images_with_boxes,
            self.images_without_boxes,
            self.max_per_image,
            self.mean_per_image,
            self.crowd,
            self.clipped,
            self.tiny
        );
        if self.dropped.is_empty() {
            let _ = writeln!(out, "Dropped or left out by the import: nothing");
        } else {
            let parts: Vec<String> = self
                .dropped
                .iter()
                .map(|(why, n)| format!("{n} ({why})"))
                .collect();
            let _ = writeln!(
                out,
                "Dropped or left out by the import (issues): {}",
                parts.join(", ")
            );
        }
        let width = self
            .classes
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = writeln!(out, "{:<width$} {:>7} {:>7}", "class", "boxes", "images");
        for class in &self.classes {
            let _ = writeln!(
                out,
                "{:<width$} {:>7} {:>7}",
                class.name, class.boxes, class.images
            );
        }
    }
}

/// The outcome of scanning a data set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ValidationReport {
    /// The source, in words.
    pub source: String,
    /// The folder paths are relative to.
    #[serde(serialize_with = "lossy_path")]
    pub root: PathBuf,
    /// Files checked.
    pub files_checked: usize,
    /// Images in the index.
    pub usable: usize,
    /// Every problem found, sorted by kind then path.
    pub issues: Vec<Issue>,
    /// Usable images per class (empty for segmentation).
    pub classes: Vec<ClassCount>,
    /// Largest over smallest non-empty class count.
    pub imbalance_ratio: Option<f64>,
    /// Per split, when a manifest names splits.
    pub splits: Vec<SplitCount>,
    /// Segmentation sets only.
    pub masks: Option<MaskSummary>,
    /// Detection sets only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boxes: Option<BoxSummary>,
}

impl ValidationReport {
    /// How many issues of one kind.
    pub fn count(&self, kind: IssueKind) -> usize {
        self.issues.iter().filter(|i| i.kind == kind).count()
    }

    /// The issues of one kind.
    pub fn issues_of(&self, kind: IssueKind) -> impl Iterator<Item = &Issue> {
        self.issues.iter().filter(move |i| i.kind == kind)
    }

    /// The report as text: summary, issues grouped by kind (at most `per_kind` listed per
    /// kind), class and split tables.
    pub fn to_text(&self, per_kind: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Data set: {}", self.source);
        let _ = writeln!(
            out,
            "{} files checked, {} usable, {} issues",
            self.files_checked,
            self.usable,
            self.issues.len()
        );
        for kind in IssueKind::ALL {
            let n = self.count(kind);
            if n == 0 {
                continue;
            }
            let _ = writeln!(out, "\n{} ({n}, {}):", kind.label(), kind.effect());
            for issue in self.issues_of(kind).take(per_kind) {
                let _ = writeln!(out, "  {}: {}", issue.path.display(), issue.message);
            }
            if n > per_kind {
                let _ = writeln!(out, "  ... and {} more (use --json for all)", n - per_kind);
            }
        }
        match &self.boxes {
            Some(boxes) => boxes.text(&mut out),
            None => self.classes_text(&mut out),
        }
        if let Some(masks) = &self.masks {
            let describe = |e: Option<MaskEncoding>| {
                e.map_or("none (all masks empty)".to_owned(), |e| e.describe())
            };
            let _ = writeln!(
                out,
                "\nMasks: {} read, encoding {}",
                masks.masks,
                describe(masks.used)
            );
            if masks.overridden {
                let _ = writeln!(
                    out,
                    "  (set in the project; detected: {})",
                    describe(masks.detected)
                );
            }
        }
        out
    }

    fn classes_text(&self, out: &mut String) {
        if self.classes.is_empty() {
            return;
        }
        let width = self
            .classes
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut header = format!("\n{:<width$} {:>7}", "class", "images");
        for split in &self.splits {
            let _ = write!(header, " {:>7}", split.split);
        }
        let _ = writeln!(out, "{header}");
        for (i, class) in self.classes.iter().enumerate() {
            let mut row = format!("{:<width$} {:>7}", class.name, class.count);
            for split in &self.splits {
                let _ = write!(row, " {:>7}", split.counts.get(i).copied().unwrap_or(0));
            }
            let _ = writeln!(out, "{row}");
        }
        if !self.splits.is_empty() {
            let mut row = format!("{:<width$} {:>7}", "total", self.usable);
            for split in &self.splits {
                let _ = write!(row, " {:>7}", split.total);
            }
            let _ = writeln!(out, "{row}");
        }
        match self.imbalance_ratio {
            Some(ratio) => {
                let _ = writeln!(out, "Imbalance (largest / smallest class): {ratio:.2}");
            }
            None => {
                let _ = writeln!(out, "Imbalance: no usable images");
            }
        }
        let empty: Vec<&str> = self
            .classes
            .iter()
            .filter(|c| c.count == 0)
            .map(|c| c.name.as_str())
            .collect();
        if !empty.is_empty() {
            let _ = writeln!(out, "Classes without usable images: {}", empty.join(", "));
        }
    }
}
