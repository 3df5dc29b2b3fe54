//! The set-up's detection demo data import without losing anything: the tree-crown photos
//! as DeepForest ships them (Pascal VOC, the VOC importer's real-world test), their COCO
//! tiles, and the nuclei boxes (COCO, 16-bit TIFF tiles). Set-up always makes them, so a
//! missing folder fails.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use std::path::PathBuf;

use transfer_workbench::data::detection::{DetectionFormat, detection_layout};
use transfer_workbench::data::report::{IssueKind, ValidationReport};
use transfer_workbench::data::scan::{DatasetIndex, ScanOptions, scan};
use transfer_workbench::data::source::DatasetSource;

fn demo(name: &str, format: DetectionFormat) -> (DatasetIndex, ValidationReport) {
    let dir: PathBuf = transfer_workbench::assets::cache_dir()
        .join("assets/data")
        .join(name);
    assert!(
        dir.is_dir(),
        "{} is missing: run ./workbench.sh setup",
        dir.display()
    );
    assert_eq!(detection_layout(&dir), Some(format), "{name}");
    let source = DatasetSource::detect(&dir).unwrap();
    let (index, report) = scan(&source, &ScanOptions::default(), |_, _| {}).unwrap();
    let lost: Vec<_> = report
        .issues
        .iter()
        .filter(|i| i.kind.loses_data())
        .collect();
    assert!(lost.is_empty(), "{name}:\n{}", report.to_text(20));
    (index, report)
}

fn boxes(index: &DatasetIndex) -> usize {
    index
        .items
        .iter()
        .map(|i| i.boxes.as_ref().unwrap().len())
        .sum()
}

#[test]
fn tree_crowns_as_shipped_import_as_pascal_voc() {
    let (index, report) = demo("tree_crowns_voc", DetectionFormat::Voc);
    assert_eq!(index.classes, ["Alive", "Dead", "Tree"]);
    assert_eq!(index.items.len(), 4);
    assert_eq!(boxes(&index), 951);
    let summary = report.boxes.as_ref().unwrap();
    let counts: Vec<usize> = summary.classes.iter().map(|c| c.boxes).collect();
    assert_eq!(counts, [9, 28, 914]);
    let per_image: Vec<(String, usize, (u32, u32))> = index
        .items
        .iter()
        .map(|i| {
            let name = i.path.file_name().unwrap().to_string_lossy().into_owned();
            (name, i.boxes.as_ref().unwrap().len(), i.size_px)
        })
        .collect();
    assert!(per_image.contains(&("OSBS_029.png".into(), 61, (400, 400))));
    assert!(per_image.contains(&("SOAP_061.png".into(), 37, (400, 400))));
    assert!(per_image.contains(&(
        "2019_YELL_2_541000_4977000_image_crop.png".into(),
        279,
        (1249, 1035)
    )));
    assert!(per_image.contains(&(
        "2019_YELL_2_528000_4978000_image_crop2.png".into(),
        574,
        (2299, 2472)
    )));
    // VOC's 1-based coordinates: nothing reaches outside the images.
    assert_eq!(report.count(IssueKind::BoxClipped), 0);
    // OSBS_029.xml names OSBS_029.tif; the .png of the same stem is used, and said so.
    assert_eq!(report.count(IssueKind::AnnotationAdjusted), 1);
}

#[test]
fn tree_crown_tiles_import_as_coco() {
    let (index, report) = demo("tree_crowns", DetectionFormat::Coco);
    assert_eq!(index.classes, ["Tree"]);
    assert_eq!(index.category_ids, Some(vec![1]));
    assert_eq!(index.items.len(), 47);
    assert_eq!(boxes(&index), 974);
    assert!(index.items.iter().all(|i| i.source_id.is_some()));
    assert_eq!(
        report.issues.len(),
        report.count(IssueKind::ImageWithoutBoxes)
    );
}

#[test]
fn nuclei_boxes_import_as_coco_on_16_bit_tiles() {
    let (index, report) = demo("nuclei_boxes", DetectionFormat::Coco);
    assert_eq!(index.classes, ["nucleus"]);
    assert_eq!(index.items.len(), 16);
    assert_eq!(boxes(&index), 134);
    assert!(index.items.iter().all(|i| i.size_px == (128, 128)));
    assert!(
        report
            .issues
            .iter()
            .all(|i| matches!(i.kind, IssueKind::ImageWithoutBoxes | IssueKind::TinyBox)),
        "{}",
        report.to_text(20)
    );
}

#[test]
fn a_coco_set_of_dicom_images_imports_its_boxes() {
    let samples = transfer_workbench::assets::cache_dir().join("assets/samples/dicom");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("images")).unwrap();
    std::fs::copy(
        samples.join("CT_small.dcm"),
        dir.path().join("images/ct.dcm"),
    )
    .unwrap();
    let json = r#"{"images": [{"id": 3, "file_name": "ct.dcm", "width": 128, "height": 128}],
        "annotations": [{"id": 1, "image_id": 3, "category_id": 1, "bbox": [10, 20, 30, 40]}],
        "categories": [{"id": 1, "name": "lesion"}]}"#;
    std::fs::write(dir.path().join("annotations.json"), json).unwrap();
    let source = DatasetSource::detect(dir.path()).unwrap();
    let (index, report) = scan(&source, &ScanOptions::default(), |_, _| {}).unwrap();
    assert!(report.issues.is_empty(), "{}", report.to_text(20));
    assert_eq!(index.items.len(), 1);
    assert_eq!(index.items[0].size_px, (128, 128));
    assert_eq!(index.items[0].source_id, Some(3));
    assert_eq!(index.items[0].boxes.as_ref().unwrap().len(), 1);
}
