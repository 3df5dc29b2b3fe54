//! YOLO txt: one `.txt` per image, a line `class cx cy w h` per box, the centre and size as
//! fractions of the image's width and height. Labels live in `labels/` mirroring `images/`
//! (`images/train/a.jpg` -> `labels/train/a.txt`, Ultralytics' layout) or beside their
//! image. Class names come from `data.yaml` (`names:` as a list or as a map from index to
//! name, read with the maintained `yaml-rust2` parser), else from `classes.txt` or
//! `obj.names` (one name a line); without any, classes are named by their numbers.
//!
//! An image without a label file, or with an empty one, is an image without objects
//! (Ultralytics' convention). A line of more than five values with an even number of
//! coordinates is a segmentation polygon: its bounding box is used (reported). A folder
//! named `train`, `val`/`valid` or `test` above an image fixes its split.
//!
//! The boxes stay normalised here ([`BoxFrame::Normalised`]); the scan turns them into
//! pixels with the decoded image's size ([`super::settle_boxes`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

use super::{DetectionFormat, ImageFiles, issue, parse_coordinate, split_hint_of};
use crate::data::DataError;
use crate::data::boxes::{ObjectBox, PixelBox};
use crate::data::report::{Issue, IssueKind};
use crate::data::source::{
    AnnotationOrigin, BoxFrame, Candidate, Listing, read_folder, relative_to, source_err,
    walk_files,
};

/// The files that name a YOLO set's classes, in the order they are tried.
pub const NAMES_FILES: [&str; 6] = [
    "data.yaml",
    "data.yml",
    "dataset.yaml",
    "dataset.yml",
    "classes.txt",
    "obj.names",
];

/// Whether `dir` looks like a YOLO set (see [`super::detection_layout`]).
pub fn looks_like_yolo(dir: &Path) -> bool {
    let (labels, images) = (dir.join("labels").is_dir(), dir.join("images").is_dir());
    if labels && images {
        return true;
    }
    let names_file = NAMES_FILES.iter().any(|n| dir.join(n).is_file());
    if !names_file {
        return false;
    }
    let other_txt = read_folder(dir).is_ok_and(|(files, _)| {
        files.iter().any(|f| {
            let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
            f.extension().is_some_and(|e| e == "txt")
                && !name.is_some_and(|n| NAMES_FILES.contains(&n.as_str()))
        })
    });
    labels || images || other_txt
}

/// The class names of `root`, from the first names file that gives any.
fn class_names(root: &Path, issues: &mut Vec<Issue>) -> Option<Vec<String>> {
    for name in NAMES_FILES {
        let path = root.join(name);
        if !path.is_file() {
            continue;
        }
        let rel = PathBuf::from(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                let message = format!("could not read the class names ({e})");
                issues.push(issue(IssueKind::Unreadable, &rel, message));
                continue;
            }
        };
        let names = if name.ends_with(".yaml") || name.ends_with(".yml") {
            yaml_names(&text).map_err(|why| issue(IssueKind::MalformedAnnotation, &rel, why))
        } else {
            Ok(text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect())
        };
        match names {
            Ok(names) if !names.is_empty() => return Some(names),
            Ok(_) => {}
            Err(problem) => issues.push(problem),
        }
    }
    None
}

fn scalar_text(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The `names` of a `data.yaml`: a list, or a map from class index to name.
fn yaml_names(text: &str) -> Result<Vec<String>, String> {
    let docs = YamlLoader::load_from_str(text)
        .map_err(|e| format!("not valid YAML ({e}); class names are not read from it"))?;
    let Some(doc) = docs.first() else {
        return Ok(Vec::new());
    };
    match &doc["names"] {
        Yaml::Array(items) => items
            .iter()
            .map(|v| scalar_text(v).ok_or_else(|| format!("a class name is not text: {v:?}")))
            .collect(),
        Yaml::Hash(map) => {
            let mut by_index = BTreeMap::new();
            for (k, v) in map {
                let (Some(index), Some(name)) = (k.as_i64(), scalar_text(v)) else {
                    return Err(format!("names: the entry {k:?}: {v:?} is not index: name"));
                };
                by_index.insert(index, name);
            }
            let contiguous = by_index.keys().copied().eq(0..by_index.len() as i64);
            if !contiguous {
                return Err("names: the indices are not 0, 1, 2, ...".to_owned());
            }
            Ok(by_index.into_values().collect())
        }
        Yaml::BadValue | Yaml::Null => Ok(Vec::new()),
        other => Err(format!("names is neither a list nor a map: {other:?}")),
    }
}

/// Where the label file of the image at `rel` may be: under `labels/` in place of the last
/// `images` folder, and beside the image.
fn label_paths(rel: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let parts: Vec<Component> = rel.components().collect();
    if let Some(pos) = parts.iter().rposition(|c| c.as_os_str() == "images") {
        let mut p = PathBuf::new();
        for (i, part) in parts.iter().enumerate() {
            p.push(if i == pos {
                Path::new("labels")
            } else {
                Path::new(part.as_os_str())
            });
        }
        out.push(p.with_extension("txt"));
    }
    out.push(rel.with_extension("txt"));
    out
}

/// One label file read: its boxes (normalised), their line names, the largest class index.
#[derive(Default)]
struct Labels {
    boxes: Vec<ObjectBox>,
    refs: Vec<String>,
}

/// Reads the label file `rel` of `image`; `None` when it cannot be used at all.
fn read_labels(
    root: &Path,
    rel: &Path,
    image: &Path,
    classes: Option<usize>,
    issues: &mut Vec<Issue>,
) -> Option<Labels> {
    let bytes = match std::fs::read(root.join(rel)) {
        Ok(b) => b,
        Err(e) => {
            let message = format!("could not read the label file ({e}); its image is left out");
            issues.push(issue(IssueKind::Unreadable, rel, message));
            return None;
        }
    };
    let Ok(text) = String::from_utf8(bytes) else {
        let message = "the label file is not text; its image is left out".to_owned();
        issues.push(issue(IssueKind::MalformedAnnotation, rel, message));
        return None;
    };
    let mut labels = Labels::default();
    let mut polygons = 0;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("{}, line {}", rel.display(), n + 1);
        let fields: Vec<&str> = line.split_whitespace().collect();
        let polygon = fields.len() > 5 && (fields.len() - 1).is_multiple_of(2);
        if fields.len() != 5 && !polygon {
            let message = format!(
                "{at}: expected `class cx cy w h`, found {} values; the line is left out",
                fields.len()
            );
            issues.push(issue(IssueKind::MalformedAnnotation, image, message));
            continue;
        }
        let Ok(class) = fields[0].parse::<usize>() else {
            let message = format!(
                "{at}: the class \"{}\" is not a class index; the line is left out",
                fields[0]
            );
            issues.push(issue(IssueKind::UnknownCategory, image, message));
            continue;
        };
        if let Some(count) = classes.filter(|&count| class >= count) {
            let message = format!(
                "{at}: class index {class} is out of range (the names file has {count} classes); \
                 dropped"
            );
            issues.push(issue(IssueKind::UnknownCategory, image, message));
            continue;
        }
        let values: Result<Vec<f32>, String> =
            fields[1..].iter().map(|f| parse_coordinate(f)).collect();
        let values = match values {
            Ok(v) => v,
            Err(why) => {
                let message = format!("{at}: {why}; dropped");
                issues.push(issue(IssueKind::BadCoordinates, image, message));
                continue;
            }
        };
        let bbox = if polygon {
            polygons += 1;
            let xs = values.iter().step_by(2);
            let ys = values.iter().skip(1).step_by(2);
            PixelBox {
                x0: xs.clone().copied().fold(f32::INFINITY, f32::min),
                y0: ys.clone().copied().fold(f32::INFINITY, f32::min),
                x1: xs.copied().fold(f32::NEG_INFINITY, f32::max),
                y1: ys.copied().fold(f32::NEG_INFINITY, f32::max),
            }
        } else {
            let (cx, cy, w, h) = (values[0], values[1], values[2], values[3]);
            PixelBox {
                x0: cx - w / 2.0,
                y0: cy - h / 2.0,
                x1: cx + w / 2.0,
                y1: cy + h / 2.0,
            }
        };
        labels.boxes.push(ObjectBox::new(class, bbox));
        labels.refs.push(format!("line {}", n + 1));
    }
    if polygons > 0 {
        let message = format!(
            "{}: {polygons} polygon lines (segmentation labels) are read as their bounding boxes",
            rel.display()
        );
        issues.push(issue(IssueKind::AnnotationAdjusted, image, message));
    }
    Some(labels)
}

/// Lists a YOLO data set rooted at `root`.
pub fn list(root: &Path) -> Result<Listing, DataError> {
    read_folder(root).map_err(|e| source_err(root, e))?;
    let mut listing = Listing {
        detection: Some(DetectionFormat::Yolo),
        ..Listing::default()
    };
    let names = class_names(root, &mut listing.issues);
    let images = ImageFiles::under(root, root, &mut listing.issues);
    let mut used: BTreeSet<PathBuf> = BTreeSet::new();
    let mut largest_class = None;
    for rel in images.by_path.values() {
        let label = label_paths(rel)
            .into_iter()
            .find(|p| root.join(p).is_file());
        let (boxes, refs, file) = match &label {
            Some(label) => {
                used.insert(label.clone());
                let count = names.as_ref().map(Vec::len);
                let Some(read) = read_labels(root, label, rel, count, &mut listing.issues) else {
                    continue;
                };
                (read.boxes, read.refs, label.clone())
            }
            None => (Vec::new(), Vec::new(), PathBuf::new()),
        };
        largest_class = boxes.iter().map(|b| b.class).chain(largest_class).max();
        listing.candidates.push(Candidate {
            path: rel.clone(),
            split: split_hint_of(rel, false),
            boxes: Some(boxes),
            annotation: Some(AnnotationOrigin {
                file,
                frame: BoxFrame::Normalised,
                declared_size_px: None,
                refs,
            }),
            ..Candidate::default()
        });
    }
    report_orphan_labels(root, &used, &mut listing.issues);
    listing.folder_classes = names.unwrap_or_else(|| {
        let count = largest_class.map_or(0, |c| c + 1);
        if count > 0 {
            let message = format!(
                "no data.yaml, classes.txt or obj.names: the {count} classes are named by \
                 their numbers"
            );
            listing
                .issues
                .push(issue(IssueKind::AnnotationAdjusted, Path::new(""), message));
        }
        (0..count).map(|c| c.to_string()).collect()
    });
    Ok(listing)
}

/// Label files under `labels/` that no image uses.
fn report_orphan_labels(root: &Path, used: &BTreeSet<PathBuf>, issues: &mut Vec<Issue>) {
    let labels = root.join("labels");
    if !labels.is_dir() {
        return;
    }
    for file in walk_files(&labels, root, issues) {
        let rel = relative_to(&file, root);
        let is_txt = rel.extension().is_some_and(|e| e == "txt");
        if is_txt && !used.contains(&rel) {
            let message = "a label file without an image of the same name; left out".to_owned();
            issues.push(issue(IssueKind::AnnotationOfMissingImage, &rel, message));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_yaml_lists_maps_and_text() {
        assert_eq!(
            yaml_names("nc: 2\nnames: ['cat', dog]\n").unwrap(),
            ["cat", "dog"]
        );
        assert_eq!(
            yaml_names("names:\n  1: dog\n  0: cat\n").unwrap(),
            ["cat", "dog"]
        );
        assert_eq!(yaml_names("names:\n  - 0\n  - b\n").unwrap(), ["0", "b"]);
        assert!(yaml_names("names:\n  0: a\n  2: c\n").is_err());
        assert!(yaml_names("names: [a, b\n").is_err());
        assert!(yaml_names("path: x\n").unwrap().is_empty());
    }

    #[test]
    fn a_yolo_folder_lists_normalised_boxes_and_problems() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("data.yaml"), "names: [cat, dog]\n").unwrap();
        for d in ["images/train", "images/val", "labels/train", "labels/val"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for name in [
            "images/train/a.png",
            "images/train/b.png",
            "images/val/c.png",
        ] {
            image::RgbImage::new(20, 10).save(root.join(name)).unwrap();
        }
        std::fs::write(
            root.join("labels/train/a.txt"),
            "0 0.5 0.5 0.2 0.4\n5 0.5 0.5 0.1 0.1\n1 nan 0.5 0.1 0.1\n1 0.5\n\n1 0.1 0.2 0.3 0.2 0.2 0.6\n",
        )
        .unwrap();
        std::fs::write(root.join("labels/val/c.txt"), "").unwrap();
        std::fs::write(root.join("labels/val/zz.txt"), "0 0.5 0.5 0.1 0.1\n").unwrap();
        let listing = list(root).unwrap();
        assert_eq!(listing.folder_classes, ["cat", "dog"]);
        assert_eq!(listing.candidates.len(), 3);
        let a = &listing.candidates[0];
        assert_eq!(a.split, Some(crate::data::source::SplitHint::Train));
        let boxes = a.boxes.as_ref().unwrap();
        assert_eq!(boxes.len(), 2);
        let b = boxes[0].bbox;
        assert!((b.x0 - 0.4).abs() < 1e-6 && (b.y1 - 0.7).abs() < 1e-6);
        assert_eq!(boxes[1].class, 1);
        assert!((boxes[1].bbox.x1 - 0.3).abs() < 1e-6);
        let origin = a.annotation.as_ref().unwrap();
        assert_eq!(origin.frame, BoxFrame::Normalised);
        assert_eq!(origin.refs, ["line 1", "line 6"]);
        assert_eq!(listing.candidates[1].boxes, Some(vec![]));
        assert_eq!(
            listing.candidates[2].split,
            Some(crate::data::source::SplitHint::Val)
        );
        let count = |k: IssueKind| listing.issues.iter().filter(|i| i.kind == k).count();
        assert_eq!(count(IssueKind::UnknownCategory), 1);
        assert_eq!(count(IssueKind::BadCoordinates), 1);
        assert_eq!(count(IssueKind::MalformedAnnotation), 1);
        assert_eq!(count(IssueKind::AnnotationAdjusted), 1);
        assert_eq!(count(IssueKind::AnnotationOfMissingImage), 1);
    }
}
