//! Detection annotations: a generated corpus of bad annotations in COCO JSON, YOLO txt and
//! Pascal VOC XML (every case of the validation report, malformed files, a class index out
//! of range, NaN coordinates, a file naming no images), each named in the report by its
//! file and annotation, nothing panicking, the good images usable with their boxes; and a
//! round trip: the same boxes written in the three formats import to the same internal boxes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use std::path::Path;

use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use transfer_workbench::data::boxes::PixelBox;
use transfer_workbench::data::detection::{DetectionFormat, detection_layout};
use transfer_workbench::data::report::{IssueKind, ValidationReport};
use transfer_workbench::data::scan::{DatasetIndex, ScanOptions, scan};
use transfer_workbench::data::source::DatasetSource;

fn put(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A distinct picture per seed.
fn picture(path: &Path, width: u32, height: u32, seed: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([seed, (x % 251) as u8, (y as u8).wrapping_add(seed)])
    })
    .save(path)
    .unwrap();
}

fn scan_dir(dir: &Path) -> (DatasetIndex, ValidationReport) {
    let source = DatasetSource::detect(dir).unwrap();
    scan(&source, &ScanOptions::default(), |_, _| {}).unwrap()
}

/// Asserts an issue of `kind` whose path ends with `path` and whose message holds `words`.
fn expect(report: &ValidationReport, kind: IssueKind, path: &str, words: &str) {
    let found = report
        .issues
        .iter()
        .any(|i| i.kind == kind && i.path.ends_with(path) && i.message.contains(words));
    assert!(
        found,
        "no {kind:?} issue for {path} saying \"{words}\"; the report:\n{}",
        report.to_text(100)
    );
}

fn boxes_of(index: &DatasetIndex, path: &str) -> Vec<(usize, PixelBox)> {
    let item = index
        .items
        .iter()
        .find(|i| i.path.ends_with(path))
        .unwrap_or_else(|| panic!("{path} is not in the index"));
    item.boxes
        .as_ref()
        .unwrap()
        .iter()
        .map(|b| (b.class, b.bbox))
        .collect()
}

/// Asserts the boxes of `path` (class and coordinates within 1e-4 px).
fn assert_boxes(index: &DatasetIndex, path: &str, expected: &[(usize, PixelBox)]) {
    let got = boxes_of(index, path);
    let close = |a: PixelBox, b: PixelBox| {
        [a.x0 - b.x0, a.y0 - b.y0, a.x1 - b.x1, a.y1 - b.y1]
            .iter()
            .all(|d| d.abs() <= 1e-4)
    };
    let same = got.len() == expected.len()
        && got
            .iter()
            .zip(expected)
            .all(|((gc, gb), (c, b))| gc == c && close(*gb, *b));
    assert!(same, "{path}: {got:?} against {expected:?}");
}

fn coco_corpus(root: &Path) {
    for (i, name) in ["good", "clip", "bare", "size"].iter().enumerate() {
        picture(
            &root.join(format!("images/{name}.png")),
            64,
            48,
            i as u8 * 40,
        );
    }
    put(
        &root.join("images/corrupt.png"),
        b"\x89PNG\r\n\x1a\nnot really",
    );
    let json = r#"{
      "images": [
        {"id": 1, "file_name": "good.png", "width": 64, "height": 48},
        {"id": 2, "file_name": "clip.png", "width": 64, "height": 48},
        {"id": 3, "file_name": "bare.png", "width": 64, "height": 48},
        {"id": 4, "file_name": "size.png", "width": 100, "height": 100},
        {"id": 5, "file_name": "corrupt.png"},
        {"id": 6, "file_name": "gone.png"}
      ],
      "annotations": [
        {"id": 10, "image_id": 1, "category_id": 2, "bbox": [4, 4, 20, 10], "area": 150},
        {"id": 11, "image_id": 1, "category_id": 1, "bbox": [30, 20, 10, 10], "iscrowd": 1},
        {"id": 20, "image_id": 2, "category_id": 1, "bbox": [50, 10, 30, 10]},
        {"id": 21, "image_id": 2, "category_id": 1, "bbox": [100, 10, 5, 5]},
        {"id": 22, "image_id": 2, "category_id": 1, "bbox": [5, 5, 0, 10]},
        {"id": 23, "image_id": 2, "category_id": 1, "bbox": [5, 5, -3, 4]},
        {"id": 24, "image_id": 2, "category_id": 1, "bbox": [5, 5, 1, 1]},
        {"id": 25, "image_id": 2, "category_id": 99, "bbox": [5, 5, 8, 8]},
        {"id": 26, "image_id": 2, "category_id": 1, "bbox": [NaN, 5, 8, 8]},
        {"id": 27, "image_id": 2, "category_id": 1, "bbox": ["a", 5, 8, 8]},
        {"id": 10, "image_id": 2, "category_id": 2, "bbox": [8, 8, 8, 8]},
        {"id": 30, "image_id": 77, "category_id": 1, "bbox": [1, 1, 5, 5]},
        {"id": 40, "image_id": 4, "category_id": 1, "bbox": [1, 1, 5, 5]},
        {"id": 50, "image_id": 5, "category_id": 1, "bbox": [1, 1, 5, 5]},
        {"id": 60, "image_id": 6, "category_id": 1, "bbox": [1, 1, 5, 5]}
      ],
      "categories": [{"id": 1, "name": "cell"}, {"id": 2, "name": "debris"}]
    }"#;
    put(&root.join("instances.json"), json.as_bytes());
    put(
        &root.join("annotations/empty_val.json"),
        br#"{"images": [], "annotations": [{"id": 1}], "categories": []}"#,
    );
    put(
        &root.join("annotations/broken_test.json"),
        br#"{"images": [{"id": 1, "file_name": "good.png"}], "annotations": [{"id""#,
    );
}

#[test]
fn coco_bad_annotations_are_each_reported_and_the_good_images_stay() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    coco_corpus(root);
    assert_eq!(detection_layout(root), Some(DetectionFormat::Coco));
    let (index, report) = scan_dir(root);
    let json = "instances.json";
    expect(&report, IssueKind::BoxClipped, "clip.png", "annotation 20");
    expect(&report, IssueKind::BoxClipped, "clip.png", "16.0 px right");
    expect(
        &report,
        IssueKind::BoxOutsideImage,
        "clip.png",
        "annotation 21",
    );
    expect(&report, IssueKind::EmptyBox, "clip.png", "annotation 22");
    expect(&report, IssueKind::EmptyBox, "clip.png", "annotation 23");
    expect(&report, IssueKind::TinyBox, "clip.png", "annotation 24");
    expect(
        &report,
        IssueKind::UnknownCategory,
        "clip.png",
        "annotation 25",
    );
    expect(
        &report,
        IssueKind::BadCoordinates,
        "clip.png",
        "annotation 26",
    );
    expect(
        &report,
        IssueKind::BadCoordinates,
        "clip.png",
        "annotation 27",
    );
    expect(
        &report,
        IssueKind::DuplicateAnnotationId,
        "clip.png",
        "annotation 10",
    );
    expect(
        &report,
        IssueKind::AnnotationOfMissingImage,
        json,
        "image 77",
    );
    expect(
        &report,
        IssueKind::AnnotationOfMissingImage,
        json,
        "gone.png",
    );
    expect(&report, IssueKind::ImageWithoutBoxes, "bare.png", json);
    expect(
        &report,
        IssueKind::AnnotationSizeMismatch,
        "size.png",
        "100x100",
    );
    expect(&report, IssueKind::Truncated, "corrupt.png", "");
    expect(
        &report,
        IssueKind::AnnotationFileWithoutImages,
        "empty_val.json",
        "names no images",
    );
    expect(
        &report,
        IssueKind::MalformedAnnotation,
        "broken_test.json",
        "not valid JSON",
    );

    assert_eq!(index.classes, ["cell", "debris"]);
    assert_eq!(index.category_ids, Some(vec![1, 2]));
    let good = index
        .items
        .iter()
        .find(|i| i.path.ends_with("good.png"))
        .unwrap();
    assert_eq!(good.source_id, Some(1));
    let boxes = good.boxes.as_ref().unwrap();
    assert_eq!(boxes.len(), 2);
    assert_eq!(boxes[0].class, 1);
    assert_eq!(boxes[0].bbox, PixelBox::from_xywh(4.0, 4.0, 20.0, 10.0));
    assert_eq!(boxes[0].area, Some(150.0));
    assert!(boxes[1].crowd);
    let clip = boxes_of(&index, "clip.png");
    assert_eq!(
        clip,
        [
            (0, PixelBox::from_xywh(50.0, 10.0, 14.0, 10.0)),
            (0, PixelBox::from_xywh(5.0, 5.0, 1.0, 1.0)),
            (1, PixelBox::from_xywh(8.0, 8.0, 8.0, 8.0)),
        ]
    );
    assert_eq!(boxes_of(&index, "bare.png"), []);
    assert_eq!(boxes_of(&index, "size.png").len(), 1);
    assert_eq!(index.items.len(), 4);
    let summary = report.boxes.as_ref().unwrap();
    assert_eq!(summary.boxes, 6);
    assert_eq!(summary.images_without_boxes, 1);
    assert_eq!(summary.clipped, 1);
    let text = report.to_text(50);
    assert!(text.contains("Boxes (COCO JSON): 6 in 3 images"), "{text}");
    assert!(text.contains("empty box"), "{text}");
}

fn yolo_corpus(root: &Path) {
    put(
        &root.join("data.yaml"),
        b"nc: 2\nnames:\n  0: car\n  1: person\n",
    );
    for (i, name) in ["good", "range", "nan", "short", "binary", "bare", "edge"]
        .iter()
        .enumerate()
    {
        picture(
            &root.join(format!("images/train/{name}.png")),
            40,
            20,
            i as u8 * 30,
        );
    }
    let label = |name: &str, text: &[u8]| put(&root.join(format!("labels/train/{name}.txt")), text);
    label("good", b"0 0.5 0.5 0.5 0.5\n1 0.25 0.25 0.1 0.2\n");
    label("range", b"0 0.5 0.5 0.5 0.5\n7 0.5 0.5 0.1 0.1\n");
    label("nan", b"1 nan 0.5 0.1 0.1\n0 0.5 0.5 0.5 0.5\n");
    label("short", b"0 0.5 0.5\n0 0.5 0.5 0.5 0.5\n");
    label("binary", b"\xff\xfe\x00\x01 garbage");
    label("edge", b"0 1.0 0.5 0.5 0.5\n");
    label("orphan", b"0 0.5 0.5 0.5 0.5\n");
}

#[test]
fn yolo_bad_annotations_are_each_reported_and_the_good_images_stay() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    yolo_corpus(root);
    assert_eq!(detection_layout(root), Some(DetectionFormat::Yolo));
    let (index, report) = scan_dir(root);
    expect(
        &report,
        IssueKind::UnknownCategory,
        "range.png",
        "range.txt, line 2: class index 7",
    );
    expect(
        &report,
        IssueKind::BadCoordinates,
        "nan.png",
        "nan.txt, line 1",
    );
    expect(
        &report,
        IssueKind::MalformedAnnotation,
        "short.png",
        "short.txt, line 1",
    );
    expect(
        &report,
        IssueKind::MalformedAnnotation,
        "binary.txt",
        "not text",
    );
    expect(
        &report,
        IssueKind::AnnotationOfMissingImage,
        "orphan.txt",
        "without an image",
    );
    expect(
        &report,
        IssueKind::ImageWithoutBoxes,
        "bare.png",
        "no annotation file",
    );
    expect(
        &report,
        IssueKind::BoxClipped,
        "edge.png",
        "edge.txt, line 1",
    );

    assert_eq!(index.classes, ["car", "person"]);
    assert!(!index.items.iter().any(|i| i.path.ends_with("binary.png")));
    assert_eq!(index.items.len(), 6);
    assert_boxes(
        &index,
        "good.png",
        &[
            (0, PixelBox::from_xywh(10.0, 5.0, 20.0, 10.0)),
            (1, PixelBox::from_xywh(8.0, 3.0, 4.0, 4.0)),
        ],
    );
    for name in ["range.png", "nan.png", "short.png"] {
        assert_boxes(
            &index,
            name,
            &[(0, PixelBox::from_xywh(10.0, 5.0, 20.0, 10.0))],
        );
    }
    assert_boxes(
        &index,
        "edge.png",
        &[(0, PixelBox::from_xywh(30.0, 5.0, 10.0, 10.0))],
    );
    assert!(index.items.iter().all(|i| i.split.is_some()));
}

fn voc_xml(filename: &str, objects: &[(&str, [&str; 4])]) -> String {
    let mut xml = format!(
        "<annotation><filename>{filename}</filename>\
         <size><width>50</width><height>40</height><depth>3</depth></size>"
    );
    for (name, [x0, y0, x1, y1]) in objects {
        xml.push_str(&format!(
            "<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{x0}</xmin>\
             <ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        ));
    }
    xml + "</annotation>"
}

#[test]
fn voc_bad_annotations_are_each_reported_and_the_good_images_stay() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for (i, name) in ["good", "coords", "bare"].iter().enumerate() {
        picture(
            &root.join(format!("JPEGImages/{name}.png")),
            50,
            40,
            i as u8 * 50,
        );
    }
    let ann = |name: &str, text: String| {
        put(
            &root.join(format!("Annotations/{name}.xml")),
            text.as_bytes(),
        )
    };
    ann(
        "good",
        voc_xml(
            "good.png",
            &[
                ("dog", ["1", "1", "50", "40"]),
                ("cat", ["5", "6", "9", "12"]),
            ],
        ),
    );
    ann(
        "coords",
        voc_xml(
            "coords.png",
            &[
                ("dog", ["a", "1", "5", "5"]),
                ("dog", ["10", "10", "5", "20"]),
                ("cat", ["2", "2", "8", "8"]),
            ],
        ),
    );
    ann(
        "missing",
        voc_xml("missing.png", &[("dog", ["1", "1", "5", "5"])]),
    );
    put(
        &root.join("Annotations/broken.xml"),
        b"<annotation><object><name>dog</name>",
    );
    assert_eq!(detection_layout(root), Some(DetectionFormat::Voc));
    let (index, report) = scan_dir(root);
    expect(
        &report,
        IssueKind::MalformedAnnotation,
        "broken.xml",
        "not valid XML",
    );
    expect(
        &report,
        IssueKind::AnnotationOfMissingImage,
        "missing.xml",
        "missing.png",
    );
    expect(
        &report,
        IssueKind::BadCoordinates,
        "coords.png",
        "coords.xml, object 1",
    );
    expect(
        &report,
        IssueKind::EmptyBox,
        "coords.png",
        "coords.xml, object 2",
    );
    expect(
        &report,
        IssueKind::ImageWithoutBoxes,
        "bare.png",
        "no annotation file",
    );
    assert_eq!(index.classes, ["cat", "dog"]);
    assert_eq!(
        boxes_of(&index, "good.png"),
        [
            (1, PixelBox::from_xywh(0.0, 0.0, 50.0, 40.0)),
            (0, PixelBox::from_xywh(4.0, 5.0, 5.0, 7.0)),
        ]
    );
    assert_eq!(
        boxes_of(&index, "coords.png"),
        [(0, PixelBox::from_xywh(1.0, 1.0, 7.0, 7.0))]
    );
    assert_eq!(report.boxes.as_ref().unwrap().format, "Pascal VOC XML");
}

/// Random boxes of random images, written in the three formats.
struct RoundTrip {
    classes: Vec<String>,
    /// (file name, width, height, boxes).
    images: Vec<(String, u32, u32, Vec<(usize, PixelBox)>)>,
}

impl RoundTrip {
    fn new(seed: u64) -> RoundTrip {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let classes = vec!["ant".to_owned(), "bee".to_owned(), "cow".to_owned()];
        let images = (0..6)
            .map(|i| {
                let (w, h) = (rng.gen_range(40..120u32), rng.gen_range(40..120u32));
                // The first image holds every class (VOC's classes are the names present).
                let count = if i == 0 { 3 } else { rng.gen_range(0..5) };
                let boxes = (0..count)
                    .map(|j| {
                        let x0 = rng.gen_range(0.0..w as f32 - 10.0);
                        let y0 = rng.gen_range(0.0..h as f32 - 10.0);
                        let x1 = rng.gen_range(x0 + 3.0..w as f32);
                        let y1 = rng.gen_range(y0 + 3.0..h as f32);
                        let class = if i == 0 { j } else { rng.gen_range(0..3) };
                        (class, PixelBox { x0, y0, x1, y1 })
                    })
                    .collect();
                (format!("img_{i}.png"), w, h, boxes)
            })
            .collect();
        RoundTrip { classes, images }
    }

    fn pictures(&self, dir: &Path) {
        for (i, (name, w, h, _)) in self.images.iter().enumerate() {
            picture(&dir.join(name), *w, *h, i as u8 * 20);
        }
    }

    fn write_coco(&self, root: &Path) {
        self.pictures(&root.join("images"));
        let mut images = Vec::new();
        let mut annotations = Vec::new();
        for (i, (name, w, h, boxes)) in self.images.iter().enumerate() {
            images
                .push(serde_json::json!({"id": i + 1, "file_name": name, "width": w, "height": h}));
            for (class, b) in boxes {
                annotations.push(serde_json::json!({
                    "id": annotations.len() + 1, "image_id": i + 1, "category_id": class + 1,
                    "bbox": b.to_xywh(), "iscrowd": 0
                }));
            }
        }
        let categories: Vec<_> = (self.classes.iter().enumerate())
            .map(|(i, n)| serde_json::json!({"id": i + 1, "name": n}))
            .collect();
        let doc = serde_json::json!({"images": images, "annotations": annotations, "categories": categories});
        put(&root.join("annotations.json"), doc.to_string().as_bytes());
    }

    fn write_yolo(&self, root: &Path) {
        self.pictures(&root.join("images"));
        put(
            &root.join("classes.txt"),
            self.classes.join("\n").as_bytes(),
        );
        for (name, w, h, boxes) in &self.images {
            let (w, h) = (*w as f64, *h as f64);
            let mut text = String::new();
            for (class, b) in boxes {
                let (x0, y0, x1, y1) = (b.x0 as f64, b.y0 as f64, b.x1 as f64, b.y1 as f64);
                text.push_str(&format!(
                    "{class} {:.9} {:.9} {:.9} {:.9}\n",
                    (x0 + x1) / 2.0 / w,
                    (y0 + y1) / 2.0 / h,
                    (x1 - x0) / w,
                    (y1 - y0) / h
                ));
            }
            let stem = Path::new(name).with_extension("txt");
            put(&root.join("labels").join(stem), text.as_bytes());
        }
    }

    /// VOC: integer pixels, 1-based, the last pixel inside: `xmin = round(x0) + 1`,
    /// `xmax = round(x1)`.
    fn write_voc(&self, root: &Path) {
        self.pictures(&root.join("JPEGImages"));
        for (name, w, h, boxes) in &self.images {
            let mut xml = format!(
                "<annotation><filename>{name}</filename><size><width>{w}</width>\
                 <height>{h}</height><depth>3</depth></size>"
            );
            for (class, b) in boxes {
                xml.push_str(&format!(
                    "<object><name>{}</name><bndbox><xmin>{}</xmin><ymin>{}</ymin>\
                     <xmax>{}</xmax><ymax>{}</ymax></bndbox></object>",
                    self.classes[*class],
                    b.x0.round() + 1.0,
                    b.y0.round() + 1.0,
                    b.x1.round(),
                    b.y1.round()
                ));
            }
            let stem = Path::new(name).with_extension("xml");
            put(
                &root.join("Annotations").join(stem),
                (xml + "</annotation>").as_bytes(),
            );
        }
    }

    /// Asserts that `index` holds every image with its boxes, within `tolerance_px`.
    fn check(&self, index: &DatasetIndex, tolerance_px: f32, what: &str) {
        assert_eq!(index.classes, self.classes, "{what}");
        assert_eq!(index.items.len(), self.images.len(), "{what}");
        for (name, _, _, boxes) in &self.images {
            let got = boxes_of(index, name);
            assert_eq!(got.len(), boxes.len(), "{what} {name}");
            for ((gc, gb), (c, b)) in got.iter().zip(boxes) {
                assert_eq!(gc, c, "{what} {name}");
                let diff = [gb.x0 - b.x0, gb.y0 - b.y0, gb.x1 - b.x1, gb.y1 - b.y1];
                assert!(
                    diff.iter().all(|d| d.abs() <= tolerance_px),
                    "{what} {name}: {gb:?} against {b:?}"
                );
            }
        }
    }
}

#[test]
fn the_same_boxes_in_coco_yolo_and_voc_import_alike() {
    for seed in 0..4 {
        let truth = RoundTrip::new(seed);
        let dirs: Vec<(tempfile::TempDir, DetectionFormat)> = DetectionFormat::ALL
            .into_iter()
            .map(|f| (tempfile::tempdir().unwrap(), f))
            .collect();
        for (dir, format) in &dirs {
            match format {
                DetectionFormat::Coco => truth.write_coco(dir.path()),
                DetectionFormat::Yolo => truth.write_yolo(dir.path()),
                DetectionFormat::Voc => truth.write_voc(dir.path()),
            }
            assert_eq!(detection_layout(dir.path()), Some(*format));
            let (index, report) = scan_dir(dir.path());
            let lost: Vec<_> = report
                .issues
                .iter()
                .filter(|i| i.kind.loses_data())
                .collect();
            assert!(lost.is_empty(), "{format:?}: {lost:?}");
            let tolerance = match format {
                DetectionFormat::Coco => 1e-4,
                DetectionFormat::Yolo => 1e-3,
                DetectionFormat::Voc => 0.5 + 1e-4,
            };
            truth.check(&index, tolerance, format.label());
        }
    }
}
