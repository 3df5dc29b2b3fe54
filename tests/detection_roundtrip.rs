//! The round trip of detection formats: the same random boxes written as COCO JSON, YOLO txt
//! and Pascal VOC XML import to the same internal boxes (YOLO within float precision, VOC
//! within its integer rounding), with nothing lost.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod detection_support;

use std::path::Path;

use detection_support::{boxes_of, picture, put, scan_dir};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use transfer_workbench::data::boxes::PixelBox;
use transfer_workbench::data::detection::{DetectionFormat, detection_layout};
use transfer_workbench::data::scan::DatasetIndex;

/// One image: file name, width, height, and its boxes with their class.
type Image = (String, u32, u32, Vec<(usize, PixelBox)>);

/// Random boxes of random images, written in the three formats.
struct RoundTrip {
    classes: Vec<String>,
    images: Vec<Image>,
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
        let categories: Vec<_> = self
            .classes
            .iter()
            .enumerate()
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
