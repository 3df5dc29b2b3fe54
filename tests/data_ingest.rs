//! Scanning generated data sets that hold every bad case of the validation report (class
//! folders, a manifest, a segmentation set; names with spaces and non-ASCII characters):
//! each case is reported with the right kind and file, the good files are all in the index,
//! nothing panics. Also the real `data check` binary with `--json`, and the set-up's demo
//! data sets.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;
mod data_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use image::{GrayImage, Luma, Rgb, RgbImage};
use transfer_workbench::data::mask::MaskEncoding;
use transfer_workbench::data::report::{IssueKind, ValidationReport};
use transfer_workbench::data::scan::{DatasetIndex, ScanOptions, scan};
use transfer_workbench::data::source::{DatasetSource, SplitHint};

const UNICODE: &str = "Ünïcode ✓ image.png";

fn put(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A distinct RGB picture per seed, saved in the format of the extension.
fn picture(path: &Path, width: u32, height: u32, seed: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x * 5) as u8 ^ seed, (y * 3) as u8, seed.wrapping_mul(31)])
    })
    .save(path)
    .unwrap();
}

fn mask(path: &Path, width: u32, height: u32, values: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    GrayImage::from_fn(width, height, |x, y| {
        Luma([values[((x + y) as usize / 7) % values.len()]])
    })
    .save(path)
    .unwrap();
}

fn truncate_half(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
}

fn sample(relative: &str) -> PathBuf {
    transfer_workbench::assets::require(relative, "the set-up's samples")
        .expect("run ./workbench.sh setup first")
}

/// `cls/`: two classes plus a non-ASCII one, with every per-file failure.
fn class_folders(root: &Path) {
    let odd = data_support::reference_dir();
    picture(&root.join("cat/a.png"), 40, 40, 1);
    picture(&root.join("cat/b.jpg"), 48, 40, 2);
    picture(&root.join("cat").join(UNICODE), 36, 36, 3);
    picture(&root.join("cat/with space.bmp"), 33, 35, 4);
    picture(&root.join("cat/lossless.webp"), 40, 34, 5);
    let deep =
        image::ImageBuffer::<Luma<u16>, _>::from_fn(40, 40, |x, y| Luma([(x * y * 40) as u16]));
    deep.save(root.join("cat/deep 16-bit.tif")).unwrap();
    std::fs::copy(
        sample("samples/dicom/CT_small.dcm"),
        root.join("cat/ct.dcm"),
    )
    .unwrap();
    picture(&root.join("dog/c.png"), 40, 40, 6);
    let not_utf8 =
        <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"bad \xff name.png");
    picture(&root.join("dog").join(not_utf8), 40, 40, 15);
    let empty_not_utf8 =
        <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"empty \xfe.png");
    put(&root.join("dog").join(empty_not_utf8), b"");
    picture(&root.join("dog/nested/d.png"), 40, 40, 7);
    picture(&root.join("Ünïcode ✓ class/e.png"), 40, 40, 8);
    std::fs::copy(root.join("cat/a.png"), root.join("dog/copy of a.png")).unwrap();
    picture(&root.join("dog/tiny.png"), 8, 8, 9);
    put(&root.join("dog/empty.png"), b"");
    put(&root.join("dog/notes.txt"), b"some notes about the dogs\n");
    put(&root.join("dog/fake.jpg"), b"<html>not a jpeg</html>");
    picture(&root.join("dog/corrupt.png"), 40, 40, 10);
    let mut bytes = std::fs::read(root.join("dog/corrupt.png")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 16]
        .iter_mut()
        .for_each(|b| *b ^= 0x5A);
    put(&root.join("dog/corrupt.png"), &bytes);
    put(
        &root.join("dog/corrupt.jpg"),
        b"\xff\xd8\xff\xe0 this is no JPEG data at all \xff\xd9",
    );
    picture(&root.join("dog/cut.jpg"), 64, 64, 11);
    truncate_half(&root.join("dog/cut.jpg"));
    picture(&root.join("dog/cut.png"), 64, 64, 12);
    truncate_half(&root.join("dog/cut.png"));
    std::os::unix::fs::symlink(root.join("nowhere.png"), root.join("dog/broken link.png")).unwrap();
    let ct = std::fs::read(sample("samples/dicom/CT_small.dcm")).unwrap();
    put(&root.join("dog/cut.dcm"), &ct[..ct.len() / 2]);
    let tif = std::fs::read(sample("samples/tiff/img2d.tif")).unwrap();
    put(&root.join("dog/cut.tif"), &tif[..tif.len() / 2]);
    put(&root.join("dog/text.dcm"), b"PatientName=nobody\n");
    std::fs::copy(odd.join("mr_jpeg2000.dcm"), root.join("dog/j2k.dcm")).unwrap();
    std::fs::copy(odd.join("mr_multiframe.dcm"), root.join("dog/multi.dcm")).unwrap();
    picture(&root.join("stray.png"), 40, 40, 13);
    let elsewhere = root.parent().unwrap().join("elsewhere/bird");
    picture(&elsewhere.join("f.png"), 40, 40, 16);
    std::os::unix::fs::symlink(&elsewhere, root.join("bird")).unwrap();
    put(&root.join("README.txt"), b"not part of the data");
    picture(&root.join(".cache/hidden.png"), 40, 40, 14);
}

/// `man/`: a CSV manifest with groups and splits, and bad rows.
fn manifest(root: &Path) {
    for (i, name) in [
        "p1.png",
        "p2.png",
        UNICODE,
        "q.png",
        "w.png",
        "z.png",
        "unlisted.png",
    ]
    .iter()
    .enumerate()
    {
        picture(&root.join("img").join(name), 40, 40, 20 + i as u8);
    }
    std::fs::copy(root.join("img/p1.png"), root.join("img/r dup.png")).unwrap();
    let rows = [
        "path,label,group,split",
        "img/p1.png,cat,patient 1,train",
        "./img/p2.png,dog,patient 2,train",
        &format!("img/{UNICODE},dog,patient 3,val"),
        "img/r dup.png,cat,patient 4,test",
        "img/gone.png,cat,patient 5,train",
        "img/q.png,,patient 6,train",
        "img/z.png,bird,patient 7,test",
        "img/p2.png,dog,patient 2,train",
        "img/w.png,cat,patient 8,holdout",
    ];
    put(&root.join("labels.csv"), rows.join("\n").as_bytes());
}

/// `seg/`: images/ + masks/ with every mask problem.
fn segmentation(root: &Path) {
    let (images, masks) = (root.join("images"), root.join("masks"));
    picture(&images.join("s1.png"), 40, 40, 30);
    mask(&masks.join("s1.png"), 40, 40, &[0, 255]);
    let deep =
        image::ImageBuffer::<Luma<u16>, _>::from_fn(40, 40, |x, _| Luma([(x * 1000) as u16]));
    deep.save(images.join("s2.tif")).unwrap();
    mask(&masks.join("s2.png"), 40, 40, &[0, 0, 255]);
    picture(&images.join(UNICODE), 40, 40, 31);
    mask(&masks.join(UNICODE), 40, 40, &[255, 0]);
    picture(&images.join("s3.png"), 40, 40, 32);
    picture(&images.join("s4.png"), 40, 40, 33);
    mask(&masks.join("s4.png"), 20, 20, &[0, 255]);
    picture(&images.join("s5.png"), 40, 40, 34);
    mask(&masks.join("s5.png"), 40, 40, &[0, 128, 255]);
    picture(&images.join("s6.png"), 40, 40, 35);
    put(&masks.join("s6.png"), b"not a mask");
    picture(&images.join("s7.jpg"), 40, 40, 36);
    picture(&masks.join("s7.png"), 40, 40, 37);
    mask(&masks.join("orphan.png"), 40, 40, &[0, 255]);
}

fn issue_set(report: &ValidationReport) -> BTreeSet<(IssueKind, String)> {
    report
        .issues
        .iter()
        .map(|i| (i.kind, i.path.to_string_lossy().into_owned()))
        .collect()
}

fn expect(pairs: &[(IssueKind, &str)]) -> BTreeSet<(IssueKind, String)> {
    pairs.iter().map(|(k, p)| (*k, (*p).to_owned())).collect()
}

fn paths(index: &DatasetIndex) -> BTreeSet<String> {
    index
        .items
        .iter()
        .map(|i| i.path.to_string_lossy().into_owned())
        .collect()
}

fn scan_checked(source: &DatasetSource, options: &ScanOptions) -> (DatasetIndex, ValidationReport) {
    let mut calls = Vec::new();
    let (index, report) = scan(source, options, |done, total| calls.push((done, total))).unwrap();
    let total = report.files_checked;
    assert_eq!(
        calls.last(),
        Some(&(total, total)),
        "progress ends at the total"
    );
    assert!(
        calls.windows(2).all(|w| w[0].0 < w[1].0),
        "progress only grows"
    );
    assert_eq!(report.usable, index.items.len());
    if std::env::var_os("SHOW_REPORT").is_some() {
        eprintln!("{}", report.to_text(50));
    }
    (index, report)
}

#[test]
fn class_folders_report_every_bad_file_and_keep_the_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cls");
    class_folders(&root);
    let source = DatasetSource::detect(&root).unwrap();
    assert!(matches!(source, DatasetSource::ClassFolders { .. }));
    let (index, report) = scan_checked(&source, &ScanOptions::default());
    use IssueKind::*;
    let want = expect(&[
        (Duplicate, "dog/copy of a.png"),
        (TinyImage, "dog/tiny.png"),
        (ZeroByte, "dog/empty.png"),
        (ZeroByte, "dog/empty \u{FFFD}.png"),
        (NotAnImage, "dog/notes.txt"),
        (NotAnImage, "dog/fake.jpg"),
        (Corrupt, "dog/corrupt.png"),
        (Corrupt, "dog/corrupt.jpg"),
        (Truncated, "dog/cut.jpg"),
        (Truncated, "dog/cut.png"),
        (Truncated, "dog/cut.dcm"),
        (Truncated, "dog/cut.tif"),
        (NotAnImage, "dog/text.dcm"),
        (Unreadable, "dog/broken link.png"),
        (Unsupported, "dog/j2k.dcm"),
        (Unsupported, "dog/multi.dcm"),
        (ImageWithoutLabel, "stray.png"),
    ]);
    assert_eq!(issue_set(&report), want, "{}", report.to_text(50));
    let unicode_cat = format!("cat/{UNICODE}");
    let good = [
        "cat/a.png",
        "cat/b.jpg",
        unicode_cat.as_str(),
        "cat/with space.bmp",
        "cat/lossless.webp",
        "cat/deep 16-bit.tif",
        "cat/ct.dcm",
        "dog/c.png",
        "dog/bad \u{FFFD} name.png",
        "dog/nested/d.png",
        "Ünïcode ✓ class/e.png",
        "bird/f.png",
        "dog/copy of a.png",
        "dog/tiny.png",
    ];
    assert_eq!(paths(&index), good.iter().map(|s| s.to_string()).collect());
    assert_eq!(index.classes, ["bird", "cat", "dog", "Ünïcode ✓ class"]);
    let counts: Vec<usize> = report.classes.iter().map(|c| c.count).collect();
    assert_eq!(counts, [1, 7, 5, 1]);
    assert_eq!(report.imbalance_ratio, Some(7.0));
    let dup = report.issues_of(Duplicate).next().unwrap();
    assert!(dup.message.contains("cat/a.png"), "{}", dup.message);
    let j2k = report
        .issues_of(Unsupported)
        .find(|i| i.path.ends_with("j2k.dcm"))
        .unwrap();
    assert!(j2k.message.contains("JPEG 2000"), "{}", j2k.message);
    let ct = index
        .items
        .iter()
        .find(|i| i.path.ends_with("ct.dcm"))
        .unwrap();
    assert_eq!(ct.size_px, (128, 128));
    for item in &index.items {
        transfer_workbench::data::decode::load_rgb8(&index.image_path(item), &Default::default())
            .unwrap_or_else(|e| panic!("an indexed image does not load: {e}"));
    }
}

#[test]
fn manifest_rows_are_checked_with_groups_splits_and_duplicates_across_splits() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("man");
    manifest(&root);
    let source = DatasetSource::detect(&root.join("labels.csv")).unwrap();
    let (index, report) = scan_checked(&source, &ScanOptions::default());
    use IssueKind::*;
    let want = expect(&[
        (MissingFile, "img/gone.png"),
        (ImageWithoutLabel, "img/q.png"),
        (UnknownLabel, "img/z.png"),
        (BadManifestRow, "img/p2.png"),
        (BadManifestRow, "img/w.png"),
        (ImageWithoutLabel, "img/unlisted.png"),
        (Duplicate, "img/r dup.png"),
    ]);
    assert_eq!(issue_set(&report), want, "{}", report.to_text(50));
    let unicode = format!("img/{UNICODE}");
    let good = [
        "img/p1.png",
        "img/p2.png",
        unicode.as_str(),
        "img/r dup.png",
    ];
    assert_eq!(paths(&index), good.iter().map(|s| s.to_string()).collect());
    assert_eq!(index.classes, ["cat", "dog"]);
    let dup = report.issues_of(Duplicate).next().unwrap();
    assert!(
        dup.message.contains("across splits: train and test"),
        "{}",
        dup.message
    );
    let p1 = index
        .items
        .iter()
        .find(|i| i.path.ends_with("p1.png"))
        .unwrap();
    assert_eq!(p1.group.as_deref(), Some("patient 1"));
    assert_eq!(p1.split, Some(SplitHint::Train));
    assert_eq!(
        p1.content_hash,
        index
            .items
            .iter()
            .find(|i| i.path.ends_with("r dup.png"))
            .unwrap()
            .content_hash
    );
    let splits: Vec<(String, Vec<usize>)> = report
        .splits
        .iter()
        .map(|s| (s.split.clone(), s.counts.clone()))
        .collect();
    assert_eq!(
        splits,
        [
            ("train".to_owned(), vec![1, 1]),
            ("val".to_owned(), vec![0, 1]),
            ("test".to_owned(), vec![1, 0])
        ]
    );
    // The same manifest as TSV with a fixed class list.
    let tsv = std::fs::read_to_string(root.join("labels.csv"))
        .unwrap()
        .replace(',', "\t");
    put(&root.join("labels.tsv"), tsv.as_bytes());
    let options = ScanOptions {
        known_classes: Some(vec!["bird".into(), "cat".into(), "dog".into()]),
        ..ScanOptions::default()
    };
    let (index, report) = scan_checked(
        &DatasetSource::Manifest {
            file: root.join("labels.tsv"),
        },
        &options,
    );
    assert_eq!(index.items.len(), 5, "{}", report.to_text(50));
    assert_eq!(report.count(UnknownLabel), 0);
}

#[test]
fn segmentation_masks_are_matched_detected_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("seg");
    segmentation(&root);
    let source = DatasetSource::detect(&root).unwrap();
    assert!(matches!(source, DatasetSource::Segmentation { .. }));
    let (index, report) = scan_checked(&source, &ScanOptions::default());
    use IssueKind::*;
    let want = expect(&[
        (MaskMissing, "images/s3.png"),
        (MaskWrongSize, "masks/s4.png"),
        (MaskUnexpectedValues, "masks/s5.png"),
        (NotAnImage, "masks/s6.png"),
        (MaskUnexpectedValues, "masks/s7.png"),
        (MaskWithoutImage, "masks/orphan.png"),
    ]);
    assert_eq!(issue_set(&report), want, "{}", report.to_text(50));
    let unicode = format!("images/{UNICODE}");
    let good = ["images/s1.png", "images/s2.tif", unicode.as_str()];
    assert_eq!(paths(&index), good.iter().map(|s| s.to_string()).collect());
    let masks = report.masks.clone().unwrap();
    assert_eq!(masks.detected, Some(MaskEncoding::Binary0255));
    assert!(!masks.overridden);
    assert_eq!(index.mask_encoding, Some(MaskEncoding::Binary0255));
    let s1 = index
        .items
        .iter()
        .find(|i| i.path.ends_with("s1.png"))
        .unwrap();
    assert_eq!(s1.mask, Some(PathBuf::from("masks/s1.png")));
    let loaded = transfer_workbench::data::decode::load_mask_with(
        &index.root.join(s1.mask.as_ref().unwrap()),
        MaskEncoding::Binary0255,
    )
    .unwrap();
    assert!(loaded.pixels().all(|p| p.0[0] <= 1));

    // An override accepts the 0/128/255 mask as class indices.
    let options = ScanOptions {
        mask_encoding: Some(MaskEncoding::ClassIndex { classes: 256 }),
        ..ScanOptions::default()
    };
    let (index, report) = scan_checked(&source, &options);
    assert!(report.masks.as_ref().unwrap().overridden);
    assert_eq!(
        report.count(MaskUnexpectedValues),
        1,
        "only the colour mask"
    );
    assert!(paths(&index).contains("images/s5.png"));
}

#[test]
fn a_source_that_cannot_be_read_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no such folder");
    let err = DatasetSource::detect(&missing).unwrap_err();
    assert!(err.to_string().ends_with("no such folder"), "{err}");
    let bad = dir.path().join("bad.csv");
    put(&bad, b"file_name_without_header_we_know\nx.png\n");
    let err = scan(
        &DatasetSource::detect(&bad).unwrap(),
        &ScanOptions::default(),
        |_, _| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("no path column"), "{err}");
}

fn workbench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_transfer-workbench"))
        .args(args)
        .output()
        .expect("the binary starts")
}

#[test]
fn data_check_cli_prints_the_report_as_json_and_fails_only_on_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cls");
    class_folders(&root);
    let output = workbench(&[
        "data",
        "check",
        root.to_str().unwrap(),
        "--json",
        "--min-side",
        "8",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let issues = json["issues"].as_array().unwrap();
    let has = |kind: &str, path: &str| {
        issues
            .iter()
            .any(|i| i["kind"] == kind && i["path"] == path)
    };
    assert!(has("Truncated", "dog/cut.jpg"), "{json}");
    assert!(has("Duplicate", "dog/copy of a.png"));
    assert!(
        has("ZeroByte", "dog/empty \u{FFFD}.png"),
        "a name that is not UTF-8"
    );
    assert!(
        !has("TinyImage", "dog/tiny.png"),
        "--min-side 8 accepts 8 px: {json}"
    );
    assert_eq!(json["usable"], 14);
    assert_eq!(json["classes"][3]["name"], "Ünïcode ✓ class");

    let seg = dir.path().join("seg");
    segmentation(&seg);
    let output = workbench(&["data", "check", seg.to_str().unwrap()]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("mask missing (1, left out)") && text.contains("binary 0/255"),
        "{text}"
    );

    let output = workbench(&["data", "check", dir.path().join("gone").to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("gone"));
}

#[test]
fn the_demo_data_sets_scan_clean() {
    let fashion = sample("data/fashion_mnist");
    let started = std::time::Instant::now();
    let source = DatasetSource::detect(&fashion).unwrap();
    let options = ScanOptions {
        min_side_px: 28,
        ..ScanOptions::default()
    };
    let (index, report) = scan_checked(&source, &options);
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "fashion_mnist: {} files in {secs:.2} s = {:.0} files/s",
        report.files_checked,
        report.files_checked as f64 / secs
    );
    assert_eq!((index.items.len(), index.classes.len()), (3000, 10));
    assert!(report.issues.is_empty(), "{}", report.to_text(10));
    let totals: Vec<(String, usize)> = report
        .splits
        .iter()
        .map(|s| (s.split.clone(), s.total))
        .collect();
    assert_eq!(
        totals,
        [("train".to_owned(), 2000), ("test".to_owned(), 1000)]
    );

    let (index, report) = scan_checked(
        &DatasetSource::detect(&sample("data/nuclei")).unwrap(),
        &ScanOptions::default(),
    );
    assert_eq!(index.items.len(), 16, "{}", report.to_text(10));
    assert_eq!(index.mask_encoding, Some(MaskEncoding::Binary0255));
    let (index, report) = scan_checked(
        &DatasetSource::detect(&sample("data/pneumonia")).unwrap(),
        &ScanOptions::default(),
    );
    assert_eq!((index.items.len(), report.issues.len()), (16, 0));
    let (index, report) = scan_checked(
        &DatasetSource::detect(&sample("data/brain_mri")).unwrap(),
        &ScanOptions::default(),
    );
    assert_eq!((index.items.len(), report.issues.len()), (17, 0));
    assert_eq!(
        index.classes,
        ["glioma", "meningioma", "no_tumour", "pituitary"]
    );
}

#[test]
fn a_scan_can_be_cancelled_from_its_progress() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let source = DatasetSource::detect(&sample("data/fashion_mnist")).unwrap();
    let stop = AtomicBool::new(false);
    let mut seen = 0;
    let result = transfer_workbench::data::scan::scan_until(
        &source,
        &ScanOptions::default(),
        &stop,
        |done, _| {
            seen = done;
            if done >= 10 {
                stop.store(true, Ordering::Relaxed);
            }
        },
    );
    let err = result.unwrap_err();
    assert!(
        matches!(err, transfer_workbench::data::DataError::Cancelled { .. }),
        "{err}"
    );
    assert!(seen < 3000, "stopped early, after {seen} files");
}
