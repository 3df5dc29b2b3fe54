//! The data-mismatch figure of a backbone study: under the ImageNet-pretrained MobileNetV2,
//! natural photos (the set-up's sample photos) are closer to the pretraining data than the
//! 16-bit nuclei microscopy tiles and than uniform noise; a backbone without batch norm
//! (ViT) gives none.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use std::path::PathBuf;

use tch::{Device, Kind, Tensor};
use transfer_workbench::data::preprocess::prepare_center_crop;
use transfer_workbench::model::{Normalization, WeightsChoice, load_backbone};
use transfer_workbench::study::StudyError;
use transfer_workbench::study::mismatch::mismatch;

const SIDE: u32 = 224;

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let dir = transfer_workbench::assets::assets_dir().join(dir);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run ./workbench.sh setup)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    paths.sort();
    paths
}

/// The images as one normalised batch.
fn batch(paths: &[PathBuf]) -> Tensor {
    let data: Vec<f32> = paths
        .iter()
        .flat_map(|p| {
            prepare_center_crop(p, SIDE, Normalization::IMAGENET)
                .unwrap()
                .chw
        })
        .collect();
    Tensor::from_slice(&data).view([paths.len() as i64, 3, i64::from(SIDE), i64::from(SIDE)])
}

fn noise(count: i64) -> Tensor {
    tch::manual_seed(3);
    let mean = Tensor::from_slice(&[0.485f32, 0.456, 0.406]).view([1, 3, 1, 1]);
    let std = Tensor::from_slice(&[0.229f32, 0.224, 0.225]).view([1, 3, 1, 1]);
    let side = i64::from(SIDE);
    (Tensor::rand([count, 3, side, side], (Kind::Float, Device::Cpu)) - mean) / std
}

#[test]
fn photos_are_closer_to_imagenet_than_microscopy_tiles_and_noise() {
    let backbone = load_backbone(
        "mobilenet_v2",
        false,
        &WeightsChoice::Pretrained,
        Device::Cpu,
    )
    .unwrap();
    let mut photos = files("samples/photos", "png");
    photos.extend(files("samples/darknet", "jpg"));
    let nuclei = files("data/nuclei/images", "tif");
    assert!(photos.len() >= 5 && nuclei.len() >= 8);
    let score = |images: Tensor| {
        let batches = images.split(8, 0).into_iter().map(Ok::<Tensor, StudyError>);
        mismatch(backbone.model.as_ref(), batches).unwrap().unwrap()
    };
    let natural = score(batch(&photos));
    let microscopy = score(batch(&nuclei));
    let random = score(noise(16));
    println!(
        "mismatch: photos {:.3} ({}), nuclei {:.3} ({}), noise {:.3} ({}); {} layers",
        natural.summary,
        natural.verdict(),
        microscopy.summary,
        microscopy.verdict(),
        random.summary,
        random.verdict(),
        natural.per_layer.len()
    );
    assert_eq!(
        natural.per_layer.len(),
        52,
        "MobileNetV2 has 52 batch-norm layers"
    );
    assert!(natural.summary < microscopy.summary);
    assert!(natural.summary < random.summary);

    // No batch norm, no figure.
    let vit = load_backbone("vit_tiny_16", false, &WeightsChoice::Random, Device::Cpu).unwrap();
    let images = noise(2);
    let none = mismatch(vit.model.as_ref(), [Ok(images)]).unwrap();
    assert!(none.is_none());
}
