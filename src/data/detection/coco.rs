//! COCO JSON: a folder holding the images (anywhere below it) and one or more annotation
//! files (`images`, `annotations` with `bbox` `[x, y, width, height]` in pixels,
//! `categories`, optional `iscrowd` and `area`), found in the folder itself, in
//! `annotations/`, or in a split folder (`train/`, `val/`, `valid/`, `test/`, as Roboflow
//! exports them). A file whose name or folder names a split (`instances_val2017.json`)
//! fixes the split of its images.
//!
//! Classes are the categories in the order of their ids (pycocotools' `getCatIds`); each
//! class's COCO id is kept ([`Listing::category_ids`]) and each image's id
//! ([`Candidate::source_id`]), so results can be written in the data set's own ids.
//!
//! An image's `file_name` is looked up relative to its annotation file, to the root and to
//! `images/`, and then by its file name anywhere below the root. `NaN` and `Infinity`, which
//! Python's `json` writes but JSON does not allow, are read as `null` (a bad coordinate of
//! that one annotation) instead of failing the whole file.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{DetectionFormat, ImageFiles, issue, key, split_hint_of};
use crate::data::DataError;
use crate::data::boxes::{ObjectBox, PixelBox};
use crate::data::report::{Issue, IssueKind};
use crate::data::source::{
    AnnotationOrigin, BoxFrame, Candidate, Listing, read_folder, relative_to, source_err,
};

/// How much of a `.json` file is read to recognise a COCO file.
const SNIFF_BYTES: u64 = 1 << 20;

/// The folders below the root searched for annotation files, beside the root itself.
const ANNOTATION_FOLDERS: [&str; 5] = ["annotations", "train", "val", "valid", "test"];

/// The COCO annotation files of `root` (see the module doc), sorted.
pub fn annotation_files(root: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![root.to_path_buf()];
    dirs.extend(ANNOTATION_FOLDERS.iter().map(|d| root.join(d)));
    let mut out = Vec::new();
    for dir in dirs.into_iter().filter(|d| d.is_dir()) {
        let Ok((files, _)) = read_folder(&dir) else {
            continue;
        };
        out.extend(files.into_iter().filter(|f| looks_like_coco(f)));
    }
    out
}

fn looks_like_coco(path: &Path) -> bool {
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if !is_json {
        return false;
    }
    let mut head = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(SNIFF_BYTES).read_to_end(&mut head));
    if read.is_err() {
        // Unreadable: listed, so that the report names it.
        return true;
    }
    let head = String::from_utf8_lossy(&head);
    head.contains("\"images\"") || head.contains("\"annotations\"")
}

/// `NaN`, `Infinity` and `-Infinity` outside strings replaced by `null`.
fn without_non_finite(text: &str) -> Cow<'_, str> {
    if !text.contains("NaN") && !text.contains("Infinity") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else {
            let token = ["-Infinity", "Infinity", "NaN"]
                .into_iter()
                .find(|t| rest.starts_with(t));
            if let Some(token) = token {
                out.push_str("null");
                rest = &rest[token.len()..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

/// One annotation file, parsed.
struct CocoFile {
    /// Relative to the root.
    rel: PathBuf,
    top: serde_json::Map<String, Value>,
}

fn read_file(path: &Path, root: &Path, issues: &mut Vec<Issue>) -> Option<CocoFile> {
    let rel = relative_to(path, root);
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            let message = format!("could not read the annotation file ({e})");
            issues.push(issue(IssueKind::Unreadable, &rel, message));
            return None;
        }
    };
    match serde_json::from_str::<Value>(&without_non_finite(&text)) {
        Ok(Value::Object(top)) => Some(CocoFile { rel, top }),
        Ok(_) => {
            let message = "not a COCO file: the JSON is not an object".to_owned();
            issues.push(issue(IssueKind::MalformedAnnotation, &rel, message));
            None
        }
        Err(e) => {
            let message = format!("not valid JSON ({e}); the file is left out");
            issues.push(issue(IssueKind::MalformedAnnotation, &rel, message));
            None
        }
    }
}

fn array<'a>(file: &'a CocoFile, name: &str, issues: &mut Vec<Issue>) -> &'a [Value] {
    match file.top.get(name) {
        Some(Value::Array(items)) => items,
        None => &[],
        Some(_) => {
            let message = format!("\"{name}\" is not a list; it is ignored");
            issues.push(issue(IssueKind::MalformedAnnotation, &file.rel, message));
            &[]
        }
    }
}

fn id_of(value: &Value, field: &str) -> Option<u64> {
    value.get(field).and_then(Value::as_u64)
}

/// The classes: categories of every file by id; the same id with another name is reported.
fn categories(files: &[CocoFile], issues: &mut Vec<Issue>) -> (Vec<String>, Vec<u64>) {
    let mut by_id: BTreeMap<u64, String> = BTreeMap::new();
    for file in files {
        let list = array(file, "categories", issues);
        if list.is_empty() && file.top.contains_key("annotations") {
            let message = "the file has no categories: its boxes cannot be used".to_owned();
            issues.push(issue(IssueKind::MalformedAnnotation, &file.rel, message));
        }
        for (i, category) in list.iter().enumerate() {
            let name = category.get("name").and_then(Value::as_str);
            let (Some(id), Some(name)) = (id_of(category, "id"), name) else {
                let message = format!("category #{} has no integer id or no name", i + 1);
                issues.push(issue(IssueKind::MalformedAnnotation, &file.rel, message));
                continue;
            };
            match by_id.get(&id) {
                Some(known) if known != name => {
                    let message = format!(
                        "category {id} is \"{name}\" here and \"{known}\" in an earlier file; \
                         \"{known}\" is used"
                    );
                    issues.push(issue(IssueKind::MalformedAnnotation, &file.rel, message));
                }
                Some(_) => {}
                None => {
                    by_id.insert(id, name.to_owned());
                }
            }
        }
    }
    let mut names: Vec<String> = Vec::new();
    for (id, name) in &by_id {
        let clash = by_id.values().filter(|n| *n == name).count() > 1;
        names.push(if clash {
            format!("{name} (id {id})")
        } else {
            name.clone()
        });
    }
    (names, by_id.into_keys().collect())
}

/// Lists a COCO data set rooted at `root`.
pub fn list(root: &Path) -> Result<Listing, DataError> {
    read_folder(root).map_err(|e| source_err(root, e))?;
    let paths = annotation_files(root);
    if paths.is_empty() {
        return Err(source_err(root, "no COCO annotation .json file found"));
    }
    let mut listing = Listing {
        detection: Some(DetectionFormat::Coco),
        ..Listing::default()
    };
    let images = ImageFiles::under(root, root, &mut listing.issues);
    let files: Vec<CocoFile> = paths
        .iter()
        .filter_map(|p| read_file(p, root, &mut listing.issues))
        .collect();
    let (classes, ids) = categories(&files, &mut listing.issues);
    let class_of: HashMap<u64, usize> = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let mut named: HashMap<PathBuf, PathBuf> = HashMap::new();
    for file in &files {
        let mut reader = FileReader {
            file,
            images: &images,
            class_of: &class_of,
            listing: &mut listing,
            named: &mut named,
        };
        reader.read();
    }
    for rel in images.by_path.values() {
        let under_annotations = rel.starts_with("annotations");
        if !named.contains_key(rel) && !under_annotations {
            let message = "no annotation file names this image; left out".to_owned();
            listing
                .issues
                .push(issue(IssueKind::ImageWithoutLabel, rel, message));
        }
    }
    listing.folder_classes = classes;
    listing.category_ids = Some(ids);
    Ok(listing)
}

/// Reads the images and annotations of one file into the listing.
struct FileReader<'a> {
    file: &'a CocoFile,
    images: &'a ImageFiles,
    class_of: &'a HashMap<u64, usize>,
    listing: &'a mut Listing,
    /// Image files named so far, and by which annotation file.
    named: &'a mut HashMap<PathBuf, PathBuf>,
}

impl FileReader<'_> {
    fn report(&mut self, kind: IssueKind, path: &Path, message: String) {
        self.listing.issues.push(issue(kind, path, message));
    }

    fn read(&mut self) {
        let rel = self.file.rel.clone();
        let mut issues = Vec::new();
        let image_entries = array(self.file, "images", &mut issues);
        let annotations = array(self.file, "annotations", &mut issues);
        self.listing.issues.append(&mut issues);
        if image_entries.is_empty() {
            let message = format!(
                "the file names no images; its {} annotations are not used",
                annotations.len()
            );
            self.report(IssueKind::AnnotationFileWithoutImages, &rel, message);
            return;
        }
        // Image id -> candidate index; `None` for an image whose file is not there.
        let mut by_id: HashMap<u64, Option<usize>> = HashMap::new();
        let mut missing: Vec<(u64, String)> = Vec::new();
        for (i, entry) in image_entries.iter().enumerate() {
            self.image(i, entry, &mut by_id, &mut missing);
        }
        let mut lost: HashMap<u64, usize> = HashMap::new();
        let mut seen: HashMap<u64, (usize, ObjectBox)> = HashMap::new();
        for (i, entry) in annotations.iter().enumerate() {
            self.annotation(i, entry, &by_id, &mut lost, &mut seen);
        }
        for (id, name) in missing {
            let n = lost.get(&id).copied().unwrap_or(0);
            let message = format!(
                "image {id} (\"{name}\") is not in the folder: its {n} annotations are left out"
            );
            self.report(IssueKind::AnnotationOfMissingImage, &rel, message);
        }
    }

    fn image(
        &mut self,
        i: usize,
        entry: &Value,
        by_id: &mut HashMap<u64, Option<usize>>,
        missing: &mut Vec<(u64, String)>,
    ) {
        let rel = self.file.rel.clone();
        let name = entry.get("file_name").and_then(Value::as_str);
        let (Some(id), Some(name)) = (id_of(entry, "id"), name) else {
            let message = format!(
                "image #{} has no integer id or no file_name; left out",
                i + 1
            );
            self.report(IssueKind::MalformedAnnotation, &rel, message);
            return;
        };
        if by_id.contains_key(&id) {
            let message = format!("image id {id} is listed twice; the first is used");
            self.report(IssueKind::MalformedAnnotation, &rel, message);
            return;
        }
        let name_path = PathBuf::from(key(Path::new(name)));
        let dir = rel.parent().map(Path::to_path_buf).unwrap_or_default();
        let tries = [
            dir.join(&name_path),
            name_path.clone(),
            Path::new("images").join(&name_path),
        ];
        let base = name_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(path) = self.images.find(&tries, &base) else {
            by_id.insert(id, None);
            missing.push((id, name.to_owned()));
            return;
        };
        if let Some(first) = self.named.get(&path) {
            let message = format!(
                "image {id} (\"{name}\") is {} again (already named by {}); left out here",
                path.display(),
                first.display()
            );
            self.report(IssueKind::MalformedAnnotation, &rel, message);
            by_id.insert(id, None);
            return;
        }
        self.named.insert(path.clone(), rel.clone());
        let size = |f: &str| entry.get(f).and_then(Value::as_u64).map(|v| v as u32);
        let declared_size_px = match (size("width"), size("height")) {
            (Some(w), Some(h)) if w > 0 && h > 0 => Some((w, h)),
            _ => None,
        };
        by_id.insert(id, Some(self.listing.candidates.len()));
        self.listing.candidates.push(Candidate {
            path,
            split: split_hint_of(&rel, true),
            source_id: Some(id),
            boxes: Some(Vec::new()),
            annotation: Some(AnnotationOrigin {
                file: rel,
                frame: BoxFrame::Pixels,
                declared_size_px,
                refs: Vec::new(),
            }),
            ..Candidate::default()
        });
    }

    fn annotation(
        &mut self,
        i: usize,
        entry: &Value,
        by_id: &HashMap<u64, Option<usize>>,
        lost: &mut HashMap<u64, usize>,
        seen: &mut HashMap<u64, (usize, ObjectBox)>,
    ) {
        let rel = self.file.rel.clone();
        let ann_id = id_of(entry, "id");
        let name = ann_id.map_or_else(
            || format!("annotation #{} (no id)", i + 1),
            |id| format!("annotation {id}"),
        );
        let Some(image_id) = id_of(entry, "image_id") else {
            let message = format!("{name} has no integer image_id; left out");
            self.report(IssueKind::MalformedAnnotation, &rel, message);
            return;
        };
        let index = match by_id.get(&image_id) {
            Some(Some(index)) => *index,
            Some(None) => {
                *lost.entry(image_id).or_default() += 1;
                return;
            }
            None => {
                let message = format!(
                    "{name} is of image {image_id}, which the file does not list; left out"
                );
                self.report(IssueKind::AnnotationOfMissingImage, &rel, message);
                return;
            }
        };
        let image = self.listing.candidates[index].path.clone();
        let at = format!("{}, {name}", rel.display());
        let category = entry.get("category_id");
        let Some(class) = category
            .and_then(Value::as_u64)
            .and_then(|c| self.class_of.get(&c).copied())
        else {
            let shown = category.map_or_else(|| "missing".to_owned(), Value::to_string);
            let message = format!("{at}: category id {shown} is not among the categories; dropped");
            self.report(IssueKind::UnknownCategory, &image, message);
            return;
        };
        let bbox = match read_bbox(entry.get("bbox")) {
            Ok(b) => b,
            Err(why) => {
                let message = format!("{at}: {why}; dropped");
                self.report(IssueKind::BadCoordinates, &image, message);
                return;
            }
        };
        let crowd = match entry.get("iscrowd") {
            Some(Value::Bool(b)) => *b,
            Some(v) => v.as_u64().is_some_and(|v| v != 0),
            None => false,
        };
        let area = entry
            .get("area")
            .and_then(Value::as_f64)
            .map(|a| a as f32)
            .filter(|a| a.is_finite());
        let mut object = ObjectBox {
            class,
            bbox,
            crowd,
            area,
            annotation_id: ann_id,
        };
        if let Some(id) = ann_id {
            if let Some((other, first)) = seen.get(&id) {
                let same = *other == index && first.class == class && first.bbox == bbox;
                if same {
                    let message = format!("{at}: the same annotation again; the copy is dropped");
                    self.report(IssueKind::DuplicateAnnotationId, &image, message);
                    return;
                }
                let other = self.listing.candidates[*other].path.display().to_string();
                let message =
                    format!("{at}: the id is also used by a box of {other}; kept without the id");
                self.report(IssueKind::DuplicateAnnotationId, &image, message);
                object.annotation_id = None;
            } else {
                seen.insert(id, (index, object.clone()));
            }
        }
        let candidate = &mut self.listing.candidates[index];
        if let (Some(boxes), Some(origin)) = (&mut candidate.boxes, &mut candidate.annotation) {
            boxes.push(object);
            origin.refs.push(name);
        }
    }
}

/// `[x, y, width, height]` as a box, or why it is not one.
fn read_bbox(value: Option<&Value>) -> Result<PixelBox, String> {
    let Some(value) = value else {
        return Err("no bbox".to_owned());
    };
    let Some(items) = value.as_array().filter(|a| a.len() == 4) else {
        return Err(format!("the bbox {value} is not a list of 4 numbers"));
    };
    let mut v = [0f32; 4];
    for (slot, item) in v.iter_mut().zip(items) {
        match item.as_f64().map(|x| x as f32) {
            Some(x) if x.is_finite() => *slot = x,
            Some(_) => return Err(format!("the bbox {value} has a coordinate out of range")),
            None if item.is_null() => {
                return Err(format!(
                    "the bbox {value} has a null coordinate (NaN or Infinity in the file)"
                ));
            }
            None => {
                return Err(format!(
                    "the bbox {value} has a coordinate that is not a number"
                ));
            }
        }
    }
    Ok(PixelBox::from_xywh(v[0], v[1], v[2], v[3]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, w: u32, h: u32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::RgbImage::new(w, h).save(path).unwrap();
    }

    #[test]
    fn non_finite_tokens_become_null_outside_strings() {
        let text = r#"{"a": [NaN, -Infinity, 1], "b": "NaN \" Infinity"}"#;
        let clean = without_non_finite(text);
        assert_eq!(clean, r#"{"a": [null, null, 1], "b": "NaN \" Infinity"}"#);
        assert!(matches!(without_non_finite("{}"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_coco_folder_lists_images_boxes_ids_and_problems() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_png(&root.join("images/a.png"), 40, 30);
        write_png(&root.join("images/b.png"), 40, 30);
        write_png(&root.join("stray.png"), 40, 30);
        let json = r#"{
          "images": [{"id": 7, "file_name": "a.png", "width": 40, "height": 30},
                     {"id": 8, "file_name": "images/b.png"},
                     {"id": 9, "file_name": "gone.png"}],
          "annotations": [
            {"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 2, 10, 5], "area": 40, "iscrowd": 1},
            {"id": 2, "image_id": 7, "category_id": 5, "bbox": [1, 2, 10, 5]},
            {"id": 3, "image_id": 7, "category_id": 4, "bbox": [NaN, 2, 10, 5]},
            {"id": 4, "image_id": 7, "category_id": 3, "bbox": [1, 2, 10]},
            {"id": 1, "image_id": 8, "category_id": 1, "bbox": [0, 0, 4, 4]},
            {"id": 6, "image_id": 9, "category_id": 1, "bbox": [0, 0, 4, 4]},
            {"id": 7, "image_id": 99, "category_id": 1, "bbox": [0, 0, 4, 4]}
          ],
          "categories": [{"id": 3, "name": "cat"}, {"id": 1, "name": "dog"}, {"id": 4, "name": "cow"}]
        }"#;
        std::fs::write(root.join("instances_train.json"), json).unwrap();
        let listing = list(root).unwrap();
        assert_eq!(listing.folder_classes, ["dog", "cat", "cow"]);
        assert_eq!(listing.category_ids, Some(vec![1, 3, 4]));
        assert_eq!(listing.candidates.len(), 2);
        let a = &listing.candidates[0];
        assert_eq!(a.path, Path::new("images/a.png"));
        assert_eq!(a.source_id, Some(7));
        assert_eq!(a.split, Some(crate::data::source::SplitHint::Train));
        let boxes = a.boxes.as_ref().unwrap();
        assert_eq!(boxes.len(), 1);
        assert_eq!(boxes[0].class, 1);
        assert!(boxes[0].crowd);
        assert_eq!(boxes[0].area, Some(40.0));
        assert_eq!(boxes[0].bbox, PixelBox::from_xywh(1.0, 2.0, 10.0, 5.0));
        let origin = a.annotation.as_ref().unwrap();
        assert_eq!(origin.declared_size_px, Some((40, 30)));
        assert_eq!(origin.refs, ["annotation 1"]);
        let b = &listing.candidates[1].boxes.as_ref().unwrap()[0];
        assert_eq!(b.annotation_id, None);
        let count = |k: IssueKind| listing.issues.iter().filter(|i| i.kind == k).count();
        assert_eq!(count(IssueKind::UnknownCategory), 1);
        assert_eq!(count(IssueKind::BadCoordinates), 2);
        assert_eq!(count(IssueKind::DuplicateAnnotationId), 1);
        assert_eq!(count(IssueKind::AnnotationOfMissingImage), 2);
        assert_eq!(count(IssueKind::ImageWithoutLabel), 1);
        let missing = listing
            .issues
            .iter()
            .find(|i| i.message.contains("gone.png"))
            .unwrap();
        assert!(
            missing.message.contains("its 1 annotations"),
            "{}",
            missing.message
        );
    }
}
