//! Importing object-detection annotations into the one internal form ([`super::boxes`]):
//! COCO JSON ([`coco`]), YOLO txt ([`yolo`]) and Pascal VOC XML ([`voc`]). Each importer
//! lists the images with their boxes (the class names from the file, in the file's order),
//! and reports what it cannot use, per file and per annotation, without stopping: a
//! malformed file is named and the rest carries on.
//!
//! What needs the image's size (YOLO's normalised boxes, boxes outside the image, tiny
//! boxes, a size in the file that differs from the image's) is checked by the scan, which
//! decodes every image anyway: [`settle_boxes`]. Importers drop only what no size can
//! mend: unknown classes, missing or non-numeric coordinates, annotations of images that
//! are not there.

pub mod coco;
mod settle;
mod summary;
pub mod voc;
pub mod yolo;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::decode::FileFormat;
use super::report::{Issue, IssueKind};
use super::source::{DatasetSource, SplitHint, relative_to, walk_files};

pub use settle::{settle_boxes, split_strata};
pub use summary::{box_summary, class_remap, imbalance, remapped};

/// The annotation formats a detection set can come in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DetectionFormat {
    /// One or more COCO `.json` files beside the images.
    #[default]
    Coco,
    /// One `.txt` per image, `class cx cy w h` normalised.
    Yolo,
    /// `Annotations/*.xml` + `JPEGImages/`.
    Voc,
}

impl DetectionFormat {
    /// Every format.
    pub const ALL: [DetectionFormat; 3] = [
        DetectionFormat::Coco,
        DetectionFormat::Yolo,
        DetectionFormat::Voc,
    ];

    /// The format in words.
    pub fn label(self) -> &'static str {
        match self {
            DetectionFormat::Coco => "COCO JSON",
            DetectionFormat::Yolo => "YOLO txt",
            DetectionFormat::Voc => "Pascal VOC XML",
        }
    }

    /// The data source of this format rooted at `root`.
    pub fn source(self, root: &Path) -> DatasetSource {
        let root = root.to_owned();
        match self {
            DetectionFormat::Coco => DatasetSource::Coco { root },
            DetectionFormat::Yolo => DatasetSource::Yolo { root },
            DetectionFormat::Voc => DatasetSource::Voc { root },
        }
    }
}

/// The detection layout of `dir`, if it is one (checked in this order):
/// - Pascal VOC: an `Annotations/` folder beside `JPEGImages/` (or `images/`);
/// - YOLO: a `labels/` folder beside `images/`, or a names file (`data.yaml`, `data.yml`,
///   `dataset.yaml`, `classes.txt`, `obj.names`) beside `images/`, `labels/` or another
///   `.txt` file (a class-folder set with only a `classes.txt` is not YOLO);
/// - COCO: a `.json` file in `dir`, `dir/annotations/` or a split folder (`train/`, `val/`,
///   `valid/`, `test/`) whose first MiB mentions `"annotations"` or `"images"`.
///
/// Reads at most the first MiB of a few `.json` files; never fails.
pub fn detection_layout(dir: &Path) -> Option<DetectionFormat> {
    if !dir.is_dir() {
        return None;
    }
    if dir.join("Annotations").is_dir()
        && (dir.join("JPEGImages").is_dir() || dir.join("images").is_dir())
    {
        return Some(DetectionFormat::Voc);
    }
    if yolo::looks_like_yolo(dir) {
        return Some(DetectionFormat::Yolo);
    }
    if !coco::annotation_files(dir).is_empty() {
        return Some(DetectionFormat::Coco);
    }
    None
}

/// The image files below a root, found by their relative path and by their file name.
pub(crate) struct ImageFiles {
    /// Relative paths, `/`-separated, sorted.
    pub by_path: BTreeMap<String, PathBuf>,
    /// File name to relative paths.
    pub by_name: BTreeMap<String, Vec<PathBuf>>,
}

impl ImageFiles {
    /// The image files below `dir` (relative to `root`), unreadable folders reported.
    pub fn under(dir: &Path, root: &Path, issues: &mut Vec<Issue>) -> ImageFiles {
        let mut by_path = BTreeMap::new();
        let mut by_name: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        for file in walk_files(dir, root, issues) {
            if !FileFormat::has_image_extension(&file) {
                continue;
            }
            let rel = relative_to(&file, root);
            if let Some(name) = rel.file_name() {
                let name = name.to_string_lossy().into_owned();
                by_name.entry(name).or_default().push(rel.clone());
            }
            by_path.insert(key(&rel), rel);
        }
        ImageFiles { by_path, by_name }
    }

    /// The image a file names: the first of `tries` (relative paths) that exists, else the
    /// one image with that file name anywhere below the root.
    pub fn find(&self, tries: &[PathBuf], file_name: &str) -> Option<PathBuf> {
        for t in tries {
            if let Some(found) = self.by_path.get(&key(t)) {
                return Some(found.clone());
            }
        }
        match self.by_name.get(file_name).map(Vec::as_slice) {
            Some([only]) => Some(only.clone()),
            _ => None,
        }
    }
}

/// A relative path as a `/`-separated key without `./` parts.
pub(crate) fn key(path: &Path) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    text.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// The split a path states: the last folder named `train`, `val`/`valid`, `test` (...), or,
/// with `file_words`, a word of the file's stem such as `instances_val2017.json`'s `val`.
pub(crate) fn split_hint_of(path: &Path, file_words: bool) -> Option<SplitHint> {
    let mut found = None;
    if let Some(parent) = path.parent() {
        for part in parent.components() {
            if let Some(hint) = SplitHint::parse(&part.as_os_str().to_string_lossy()) {
                found = Some(hint);
            }
        }
    }
    if file_words {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        for word in stem.split(|c: char| !c.is_ascii_alphabetic()) {
            if let Some(hint) = SplitHint::parse(word) {
                found = Some(hint);
            }
        }
    }
    found
}

/// A new issue; a shorthand for the importers.
pub(crate) fn issue(kind: IssueKind, path: &Path, message: String) -> Issue {
    Issue::new(kind, path.to_path_buf(), message)
}

/// The text of a number read from an annotation file, or why it is not one.
pub(crate) fn parse_coordinate(text: &str) -> Result<f32, String> {
    match text.trim().parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) => Err(format!("the coordinate {v} is not a finite number")),
        Err(_) => Err(format!(
            "the coordinate \"{}\" is not a number",
            text.trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(detection_layout(dir.path()), None);
        std::fs::create_dir_all(dir.path().join("cats")).unwrap();
        assert_eq!(detection_layout(dir.path()), None);
        std::fs::write(dir.path().join("notes.json"), "{\"x\": 1}").unwrap();
        assert_eq!(detection_layout(dir.path()), None);
        std::fs::write(dir.path().join("coco.json"), "{\"images\": []}").unwrap();
        assert_eq!(detection_layout(dir.path()), Some(DetectionFormat::Coco));
        std::fs::write(dir.path().join("classes.txt"), "a\n").unwrap();
        assert_eq!(detection_layout(dir.path()), Some(DetectionFormat::Coco));
        std::fs::write(dir.path().join("a.txt"), "0 0.5 0.5 0.1 0.1\n").unwrap();
        assert_eq!(detection_layout(dir.path()), Some(DetectionFormat::Yolo));
        std::fs::create_dir_all(dir.path().join("Annotations")).unwrap();
        std::fs::create_dir_all(dir.path().join("JPEGImages")).unwrap();
        assert_eq!(detection_layout(dir.path()), Some(DetectionFormat::Voc));
        assert_eq!(
            DatasetSource::detect(dir.path()).unwrap(),
            DatasetSource::Voc {
                root: dir.path().to_owned()
            }
        );
    }

    #[test]
    fn split_hints_come_from_names() {
        assert_eq!(
            split_hint_of(Path::new("annotations/instances_val2017.json"), true),
            Some(SplitHint::Val)
        );
        assert_eq!(
            split_hint_of(Path::new("images/train/test_1.jpg"), false),
            Some(SplitHint::Train)
        );
        assert_eq!(split_hint_of(Path::new("images/test_1.jpg"), false), None);
        assert_eq!(parse_coordinate(" 3.5 "), Ok(3.5));
        assert!(parse_coordinate("nan").unwrap_err().contains("finite"));
        assert!(
            parse_coordinate("abc")
                .unwrap_err()
                .contains("not a number")
        );
    }
}
