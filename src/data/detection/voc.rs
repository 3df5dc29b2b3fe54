//! Pascal VOC XML: `Annotations/**/*.xml` beside `JPEGImages/` (or `images/`), one file per
//! image (`<filename>`, `<size>`, `<object>` with `<name>`, `<bndbox>` and `<difficult>`),
//! read with the maintained `roxmltree` parser.
//!
//! Coordinates: VOC numbers pixels from 1 and its `xmax`/`ymax` are the last pixel inside
//! the box, so a box covering the whole `W x H` image is `1, 1, W, H`. The internal form is
//! continuous with `x1 = x + width` (COCO's), so the import takes `x0 = xmin - 1`,
//! `y0 = ymin - 1`, `x1 = xmax`, `y1 = ymax` (and a writer does the reverse); a file written
//! with 0-based coordinates therefore shows as boxes reaching one pixel left of or above
//! the image, which the scan clips and reports.
//!
//! A `difficult` object is kept as a crowd box (the metrics ignore it in matching, which is
//! what VOC's evaluation does with difficult objects). Classes are the object names, sorted.
//! The image is the one `<filename>` names in the images folder; when that is not there, the
//! image with the XML file's stem (reported), as in sets whose XML names a `.tif` and whose
//! images are `.png`. An image without an XML file is an image without objects.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::{DetectionFormat, ImageFiles, issue, parse_coordinate, split_hint_of};
use crate::data::DataError;
use crate::data::boxes::{ObjectBox, PixelBox};
use crate::data::report::{Issue, IssueKind};
use crate::data::source::{
    AnnotationOrigin, BoxFrame, Candidate, Listing, read_folder, relative_to, source_err,
    walk_files,
};

/// One object as read, its class still a name.
struct Object {
    name: String,
    bbox: PixelBox,
    difficult: bool,
    reference: String,
}

/// One XML file as read.
struct VocFile {
    rel: PathBuf,
    image: PathBuf,
    declared_size_px: Option<(u32, u32)>,
    objects: Vec<Object>,
}

fn child<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> Option<roxmltree::Node<'a, 'a>> {
    node.children().find(|c| c.has_tag_name(name))
}

fn child_text<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> Option<&'a str> {
    child(node, name).and_then(|c| c.text()).map(str::trim)
}

/// The image folder: `JPEGImages/`, else `images/`.
fn images_dir(root: &Path) -> PathBuf {
    let jpeg = root.join("JPEGImages");
    if jpeg.is_dir() {
        jpeg
    } else {
        root.join("images")
    }
}

/// Reads one XML file; problems of single objects are reported and the objects left out.
fn read_xml(
    root: &Path,
    rel: &Path,
    images: &ImageFiles,
    issues: &mut Vec<Issue>,
) -> Option<VocFile> {
    let text = match std::fs::read(root.join(rel)) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            let message = format!("could not read the annotation file ({e})");
            issues.push(issue(IssueKind::Unreadable, rel, message));
            return None;
        }
    };
    let doc = match roxmltree::Document::parse(&text) {
        Ok(doc) => doc,
        Err(e) => {
            let message = format!("not valid XML ({e}); the file is left out");
            issues.push(issue(IssueKind::MalformedAnnotation, rel, message));
            return None;
        }
    };
    let top = doc.root_element();
    if !top.has_tag_name("annotation") {
        let message = format!(
            "the top element is <{}>, not <annotation>; the file is left out",
            top.tag_name().name()
        );
        issues.push(issue(IssueKind::MalformedAnnotation, rel, message));
        return None;
    }
    let image = find_image(root, rel, child_text(top, "filename"), images, issues)?;
    let size = child(top, "size");
    let dim = |name: &str| {
        size.and_then(|s| child_text(s, name))
            .and_then(|t| t.parse::<u32>().ok())
            .filter(|&v| v > 0)
    };
    let declared_size_px = dim("width").zip(dim("height"));
    let mut objects = Vec::new();
    for (i, node) in top
        .children()
        .filter(|c| c.has_tag_name("object"))
        .enumerate()
    {
        let reference = format!("object {}", i + 1);
        let at = format!("{}, {reference}", rel.display());
        let Some(name) = child_text(node, "name").filter(|n| !n.is_empty()) else {
            let message = format!("{at}: no <name>; dropped");
            issues.push(issue(IssueKind::UnknownCategory, &image, message));
            continue;
        };
        let Some(bndbox) = child(node, "bndbox") else {
            let message = format!("{at}: no <bndbox>; dropped");
            issues.push(issue(IssueKind::BadCoordinates, &image, message));
            continue;
        };
        let mut values = [0f32; 4];
        let mut bad = None;
        for (slot, tag) in values.iter_mut().zip(["xmin", "ymin", "xmax", "ymax"]) {
            match child_text(bndbox, tag).map(parse_coordinate) {
                Some(Ok(v)) => *slot = v,
                Some(Err(why)) => bad = Some(format!("<{tag}>: {why}")),
                None => bad = Some(format!("no <{tag}>")),
            }
        }
        if let Some(why) = bad {
            let message = format!("{at}: {why}; dropped");
            issues.push(issue(IssueKind::BadCoordinates, &image, message));
            continue;
        }
        let difficult = child_text(node, "difficult").is_some_and(|t| t == "1" || t == "true");
        objects.push(Object {
            name: name.to_owned(),
            bbox: PixelBox {
                x0: values[0] - 1.0,
                y0: values[1] - 1.0,
                x1: values[2],
                y1: values[3],
            },
            difficult,
            reference,
        });
    }
    Some(VocFile {
        rel: rel.to_path_buf(),
        image,
        declared_size_px,
        objects,
    })
}

/// The image of an XML file: `<filename>` in the images folder, else the image with the XML
/// file's stem there (reported); `None` (reported) when neither is there.
fn find_image(
    root: &Path,
    rel: &Path,
    filename: Option<&str>,
    images: &ImageFiles,
    issues: &mut Vec<Issue>,
) -> Option<PathBuf> {
    let dir = relative_to(&images_dir(root), root);
    if let Some(name) = filename.filter(|n| !n.is_empty()) {
        let base = Path::new(name)
            .file_name()
            .map(|b| b.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(found) = images.find(&[dir.join(name), dir.join(&base)], "") {
            return Some(found);
        }
    }
    let stem = rel.file_stem().map(|s| s.to_string_lossy().into_owned());
    let by_stem = images.by_path.values().find(|p| {
        p.starts_with(&dir) && p.file_stem().map(|s| s.to_string_lossy().into_owned()) == stem
    });
    match (by_stem, filename) {
        (Some(found), Some(name)) => {
            let message = format!(
                "{} names the image \"{name}\", which is not there; {} (same stem) is used",
                rel.display(),
                found.display()
            );
            issues.push(issue(IssueKind::AnnotationAdjusted, found, message));
            Some(found.clone())
        }
        (Some(found), None) => Some(found.clone()),
        (None, name) => {
            let message = format!(
                "the image \"{}\" is not in {}: the file's boxes are left out",
                name.unwrap_or("(no <filename>)"),
                dir.display()
            );
            issues.push(issue(IssueKind::AnnotationOfMissingImage, rel, message));
            None
        }
    }
}

/// Lists a Pascal VOC data set rooted at `root`.
pub fn list(root: &Path) -> Result<Listing, DataError> {
    let annotations = root.join("Annotations");
    read_folder(&annotations).map_err(|e| source_err(&annotations, e))?;
    let mut listing = Listing {
        detection: Some(DetectionFormat::Voc),
        ..Listing::default()
    };
    let images = ImageFiles::under(&images_dir(root), root, &mut listing.issues);
    let mut files = Vec::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    for file in walk_files(&annotations, root, &mut listing.issues) {
        if !file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xml"))
        {
            continue;
        }
        let rel = relative_to(&file, root);
        if let Some(voc) = read_xml(root, &rel, &images, &mut listing.issues) {
            names.extend(voc.objects.iter().map(|o| o.name.clone()));
            files.push(voc);
        }
    }
    let classes: Vec<String> = names.into_iter().collect();
    let class_of: HashMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let mut by_image: BTreeMap<PathBuf, Candidate> = BTreeMap::new();
    for voc in files {
        if let Some(first) = by_image.get(&voc.image) {
            let first = first.annotation.as_ref().map(|a| a.file.clone());
            let message = format!(
                "{} is annotated again (first by {}); this file is left out",
                voc.image.display(),
                first.unwrap_or_default().display()
            );
            listing
                .issues
                .push(issue(IssueKind::MalformedAnnotation, &voc.rel, message));
            continue;
        }
        let mut boxes = Vec::new();
        let mut refs = Vec::new();
        for object in voc.objects {
            let class = class_of.get(object.name.as_str()).copied().unwrap_or(0);
            let mut b = ObjectBox::new(class, object.bbox);
            b.crowd = object.difficult;
            boxes.push(b);
            refs.push(object.reference);
        }
        let candidate = Candidate {
            path: voc.image.clone(),
            split: split_hint_of(&voc.image, false),
            boxes: Some(boxes),
            annotation: Some(AnnotationOrigin {
                file: voc.rel,
                frame: BoxFrame::Pixels,
                declared_size_px: voc.declared_size_px,
                refs,
            }),
            ..Candidate::default()
        };
        by_image.insert(voc.image, candidate);
    }
    for rel in images.by_path.values() {
        by_image.entry(rel.clone()).or_insert_with(|| Candidate {
            path: rel.clone(),
            split: split_hint_of(rel, false),
            boxes: Some(Vec::new()),
            annotation: Some(AnnotationOrigin::default()),
            ..Candidate::default()
        });
    }
    listing.candidates = by_image.into_values().collect();
    listing.folder_classes = classes;
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<annotation><filename>a.tif</filename>
      <size><width>40</width><height>30</height><depth>3</depth></size>
      <object><name>Tree</name><difficult>0</difficult>
        <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>40</xmax><ymax>30</ymax></bndbox></object>
      <object><name>Dead</name><difficult>1</difficult>
        <bndbox><xmin>5</xmin><ymin>6</ymin><xmax>9</xmax><ymax>12</ymax></bndbox></object>
      <object><name>Tree</name>
        <bndbox><xmin>x</xmin><ymin>6</ymin><xmax>9</xmax><ymax>12</ymax></bndbox></object>
      <object><bndbox><xmin>1</xmin><ymin>6</ymin><xmax>9</xmax><ymax>12</ymax></bndbox></object>
    </annotation>"#;

    #[test]
    fn a_voc_folder_lists_one_based_boxes_and_problems() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("Annotations")).unwrap();
        std::fs::create_dir_all(root.join("JPEGImages")).unwrap();
        for name in ["a.png", "b.png"] {
            image::RgbImage::new(40, 30)
                .save(root.join("JPEGImages").join(name))
                .unwrap();
        }
        std::fs::write(root.join("Annotations/a.xml"), XML).unwrap();
        std::fs::write(root.join("Annotations/broken.xml"), "<annotation><object>").unwrap();
        let orphan = XML.replace("a.tif", "zz.png");
        std::fs::write(root.join("Annotations/zz.xml"), orphan).unwrap();
        let listing = list(root).unwrap();
        assert_eq!(listing.folder_classes, ["Dead", "Tree"]);
        assert_eq!(listing.candidates.len(), 2);
        let a = &listing.candidates[0];
        assert_eq!(a.path, Path::new("JPEGImages/a.png"));
        let boxes = a.boxes.as_ref().unwrap();
        assert_eq!(boxes.len(), 2);
        assert_eq!(boxes[0].bbox, PixelBox::from_xywh(0.0, 0.0, 40.0, 30.0));
        assert_eq!(boxes[0].class, 1);
        assert!(boxes[1].crowd && boxes[1].class == 0);
        assert_eq!(boxes[1].bbox, PixelBox::from_xywh(4.0, 5.0, 5.0, 7.0));
        let origin = a.annotation.as_ref().unwrap();
        assert_eq!(origin.declared_size_px, Some((40, 30)));
        assert_eq!(origin.refs, ["object 1", "object 2"]);
        assert_eq!(listing.candidates[1].boxes, Some(vec![]));
        let count = |k: IssueKind| listing.issues.iter().filter(|i| i.kind == k).count();
        assert_eq!(count(IssueKind::MalformedAnnotation), 1);
        // a.xml's bad objects, and zz.xml's (read before its image is found missing).
        assert_eq!(count(IssueKind::BadCoordinates), 1);
        assert_eq!(count(IssueKind::UnknownCategory), 1);
        assert_eq!(count(IssueKind::AnnotationAdjusted), 1);
        assert_eq!(count(IssueKind::AnnotationOfMissingImage), 1);
    }
}
