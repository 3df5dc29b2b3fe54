//! Detection annotations: a generated corpus of bad annotations in COCO JSON, YOLO txt and
//! Pascal VOC XML (every case of the validation report, malformed files, a class index out
//! of range, NaN coordinates, a file naming no images), each named in the report by its
//! file and annotation, nothing panicking, the good images usable with their boxes. The
//! round trip of the three formats is in `detection_roundtrip.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use std::path::Path;

mod detection_support;

use detection_support::{boxes_of, picture, put, scan_dir};
use transfer_workbench::data::boxes::PixelBox;
use transfer_workbench::data::detection::{DetectionFormat, detection_layout};
use transfer_workbench::data::report::{IssueKind, ValidationReport};
use transfer_workbench::data::scan::DatasetIndex;

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
