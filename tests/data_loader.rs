//! The feeding half of the data layer end to end over a small generated folder: a grouped,
//! stratified split frozen in `split.ron`, then training and evaluation batches (with a
//! corrupt file skipped and named), the byte-bounded cache, and segmentation masks.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use transfer_workbench::data::augment::AugmentConfig;
use transfer_workbench::data::cache::ImageCache;
use transfer_workbench::data::loader::{Batch, BatchLoader, LoaderConfig, LoaderItem};
use transfer_workbench::data::split::{
    FrozenSplit, Split, SplitFractions, SplitItem, audit_leakage,
};
use transfer_workbench::model::Normalization;

const CLASSES: [&str; 2] = ["normal lung", "pneumonie été"];

/// Two class folders of PNG and JPEG images (names with spaces and non-ASCII characters),
/// three images per "patient", plus one corrupt file. Returns (relative path, label, group).
fn class_folder(root: &Path) -> Vec<(String, usize, String)> {
    let mut entries = Vec::new();
    for (label, class) in CLASSES.iter().enumerate() {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..18 {
            let patient = format!("patient {label}-{}", i / 3);
            let ext = if i % 2 == 0 { "png" } else { "jpg" };
            let rel = format!("{class}/scan ñ {i}.{ext}");
            let shade = (40 + label * 120 + i * 3) as u8;
            image::RgbImage::from_fn(96 + i as u32 * 4, 80, |x, y| {
                image::Rgb([shade, (x + y) as u8, 255 - shade])
            })
            .save(root.join(&rel))
            .unwrap();
            entries.push((rel, label, patient));
        }
    }
    let corrupt = format!("{}/truncated scan.jpg", CLASSES[1]);
    std::fs::write(root.join(&corrupt), b"\xff\xd8\xff\xe0\x00\x10JFIF").unwrap();
    entries.push((corrupt, 1, "patient corrupt".into()));
    entries
}

fn loader_items(
    root: &Path,
    entries: &[(String, usize, String)],
    split: &FrozenSplit,
    want: Split,
) -> Vec<LoaderItem> {
    entries
        .iter()
        .filter(|(rel, _, _)| split.split_of(rel) == Some(want))
        .map(|(rel, label, _)| LoaderItem {
            id: rel.clone(),
            path: root.join(rel),
            label: *label as i64,
            mask_path: None,
            boxes: None,
        })
        .collect()
}

#[test]
fn a_generated_folder_is_split_frozen_and_fed_in_batches() {
    let data = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    let entries = class_folder(data.path());
    let split_items: Vec<SplitItem> = entries
        .iter()
        .map(|(rel, label, group)| SplitItem {
            rel_path: rel.clone(),
            label: *label,
            group: Some(group.clone()),
            ..SplitItem::default()
        })
        .collect();
    let fractions = SplitFractions {
        train: 0.6,
        val: 0.2,
        test: 0.2,
    };
    let frozen = FrozenSplit::compute(&split_items, fractions, 11).unwrap();
    frozen.save(project.path()).unwrap();
    let frozen = FrozenSplit::load(project.path()).unwrap();
    let splits: Vec<Split> = split_items
        .iter()
        .map(|i| frozen.split_of(&i.rel_path).unwrap())
        .collect();
    assert!(audit_leakage(&split_items, &splits).is_clean());

    let train_items = loader_items(data.path(), &entries, &frozen, Split::Train);
    let val_items = loader_items(data.path(), &entries, &frozen, Split::Val);
    assert!(
        train_items.len() >= 18 && !val_items.is_empty(),
        "{} / {}",
        train_items.len(),
        val_items.len()
    );

    let cache = Arc::new(ImageCache::new(4 << 20));
    let mut config = LoaderConfig::train(64, 8, Normalization::IMAGENET, AugmentConfig::default());
    config.threads = 2;
    config.seed = 3;
    let train = BatchLoader::new(train_items.clone(), config, Some(Arc::clone(&cache))).unwrap();
    let batches: Vec<Batch> = train.epoch(0).unwrap().collect();
    let fed: usize = batches.iter().map(Batch::len).sum();
    let corrupt_in_train = train_items.iter().any(|i| i.id.contains("truncated"));
    assert_eq!(fed, train_items.len() - usize::from(corrupt_in_train));
    for batch in &batches {
        assert_eq!(batch.images.len(), batch.len() * 3 * 64 * 64);
        let tensors = batch.to_tensors(tch::Device::Cpu).unwrap();
        assert_eq!(tensors.images.size(), [batch.len() as i64, 3, 64, 64]);
    }
    // The second epoch comes from the cache: nothing is decoded again.
    let decoded = train.decoded_count();
    let again: usize = train.epoch(1).unwrap().map(|b| b.len()).sum();
    assert_eq!(again, fed);
    assert_eq!(train.decoded_count(), decoded + u64::from(corrupt_in_train));
    assert!(cache.stats().used_bytes <= 4 << 20);

    // Evaluation is deterministic and covers every readable item once, in order.
    let all_items: Vec<LoaderItem> = [Split::Train, Split::Val, Split::Test]
        .iter()
        .flat_map(|s| loader_items(data.path(), &entries, &frozen, *s))
        .collect();
    let eval = BatchLoader::new(
        all_items.clone(),
        LoaderConfig::eval(64, 16, Normalization::IMAGENET),
        None,
    )
    .unwrap();
    let first: Vec<Batch> = eval.epoch(0).unwrap().collect();
    let second: Vec<Batch> = eval.epoch(1).unwrap().collect();
    assert_eq!(first, second);
    let ids: Vec<&String> = first.iter().flat_map(|b| &b.ids).collect();
    assert_eq!(ids.len(), all_items.len() - 1);
    let skipped = eval.skipped();
    assert_eq!(skipped.len(), 2); // the corrupt file, once per epoch
    assert!(
        skipped[0].reason.contains("truncated scan.jpg"),
        "{}",
        skipped[0].reason
    );
    assert!(skipped[0].id.contains("pneumonie été"));
}

#[test]
fn segmentation_masks_follow_their_images() {
    let data = tempfile::tempdir().unwrap();
    let (images, masks) = (data.path().join("images"), data.path().join("masks"));
    std::fs::create_dir_all(&images).unwrap();
    std::fs::create_dir_all(&masks).unwrap();
    let items: Vec<LoaderItem> = (0..6)
        .map(|i| {
            let path: PathBuf = images.join(format!("cell {i}.png"));
            let mask_path = masks.join(format!("cell {i}.png"));
            // A bright square labelled 1 on a dark background labelled 0.
            let inside = |x: u32, y: u32| (20..70).contains(&x) && (10..50).contains(&y);
            image::GrayImage::from_fn(100, 60, |x, y| {
                image::Luma([if inside(x, y) { 230 } else { 20 }])
            })
            .save(&path)
            .unwrap();
            image::GrayImage::from_fn(100, 60, |x, y| image::Luma([u8::from(inside(x, y))]))
                .save(&mask_path)
                .unwrap();
            LoaderItem {
                id: format!("cell {i}"),
                path,
                label: 0,
                mask_path: Some(mask_path),
                boxes: None,
            }
        })
        .collect();
    let augment = AugmentConfig {
        vflip_prob: 0.5,
        rot90_prob: 0.5,
        rotation_max_deg: 15.0,
        brightness: 0.0,
        contrast: 0.0,
        ..AugmentConfig::default()
    };
    let mut config = LoaderConfig::train(
        48,
        3,
        Normalization {
            mean: [0.5; 3],
            std: [0.5; 3],
        },
        augment,
    );
    config.task = transfer_workbench::task::TaskKind::Segmentation;
    config.threads = 2;
    let loader = BatchLoader::new(items, config, None).unwrap();
    let plane = 48 * 48;
    let mut labelled = 0;
    for batch in loader.epoch(0).unwrap() {
        let masks = batch.masks.as_ref().unwrap();
        assert_eq!(masks.len(), batch.len() * plane);
        for n in 0..batch.len() {
            let label_at = |x: usize, y: usize| masks[n * plane + y * 48 + x];
            for y in 1..47 {
                for x in 1..47 {
                    let label = label_at(x, y);
                    // Pixels next to an edge blend both sides; check the others.
                    if (y - 1..=y + 1).any(|yy| (x - 1..=x + 1).any(|xx| label_at(xx, yy) != label))
                    {
                        continue;
                    }
                    let red = batch.images[n * 3 * plane + y * 48 + x]; // in [-1, 1]
                    assert_eq!(
                        red > 0.0,
                        label == 1,
                        "pixel ({x}, {y}) of {}",
                        batch.ids[n]
                    );
                    labelled += usize::from(label == 1);
                }
            }
        }
        let tensors = batch.to_tensors(tch::Device::Cpu).unwrap();
        assert_eq!(tensors.masks.unwrap().size(), [batch.len() as i64, 48, 48]);
    }
    assert!(labelled > 1000);
}
