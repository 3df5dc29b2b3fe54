//! Helpers shared by the detection tests: files, pictures, scans and boxes.
#![allow(dead_code)] // Each test file uses its own part.

use std::path::Path;

use image::{Rgb, RgbImage};
use transfer_workbench::data::boxes::PixelBox;
use transfer_workbench::data::report::ValidationReport;
use transfer_workbench::data::scan::{DatasetIndex, ScanOptions, scan};
use transfer_workbench::data::source::DatasetSource;

pub fn put(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A distinct picture per seed.
pub fn picture(path: &Path, width: u32, height: u32, seed: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([seed, (x % 251) as u8, (y as u8).wrapping_add(seed)])
    })
    .save(path)
    .unwrap();
}

pub fn scan_dir(dir: &Path) -> (DatasetIndex, ValidationReport) {
    let source = DatasetSource::detect(dir).unwrap();
    scan(&source, &ScanOptions::default(), |_, _| {}).unwrap()
}

pub fn boxes_of(index: &DatasetIndex, path: &str) -> Vec<(usize, PixelBox)> {
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
