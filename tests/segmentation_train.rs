//! End-to-end check of the segmentation parts: MobileNetV2 (shipped pretrained weights when
//! the asset cache has them, random init otherwise) + U-Net decoder + BCE/Dice loss overfit
//! eight synthetic 64x64 images (bright disks on noise) in 30 AdamW steps, and the streamed
//! foreground Dice on those images exceeds 0.8.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::nn::OptimizerConfig;
use tch::{Device, Tensor, nn};
use transfer_workbench::model::seg_decoder::{SegDecoderConfig, SegmentationModel};
use transfer_workbench::model::{Normalization, WeightsChoice, load_backbone};
use transfer_workbench::train::metrics::SegmentationAccumulator;
use transfer_workbench::train::segmentation::{SegLossConfig, pixel_confusion, segmentation_loss};

const SIZE_PX: i64 = 64;
const IMAGES: i64 = 8;

/// Normalised images `[N, 3, 64, 64]` and masks `[N, 64, 64]` (1 inside the disk).
fn synthetic_disks(seed: u64) -> (Tensor, Tensor) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pixels = (SIZE_PX * SIZE_PX) as usize;
    let mut images = Vec::with_capacity(IMAGES as usize * 3 * pixels);
    let mut masks = Vec::with_capacity(IMAGES as usize * pixels);
    for _ in 0..IMAGES {
        let radius = rng.gen_range(8.0..18.0f32);
        let cy = rng.gen_range(radius..SIZE_PX as f32 - radius);
        let cx = rng.gen_range(radius..SIZE_PX as f32 - radius);
        let mut mask = Vec::with_capacity(pixels);
        for y in 0..SIZE_PX {
            for x in 0..SIZE_PX {
                let (dy, dx) = (y as f32 + 0.5 - cy, x as f32 + 0.5 - cx);
                mask.push(i64::from(dy * dy + dx * dx <= radius * radius));
            }
        }
        for channel in 0..3 {
            let norm = Normalization::IMAGENET;
            for &inside in &mask {
                let base = if inside == 1 { 0.8 } else { 0.3 };
                let value = base + rng.gen_range(-0.2..0.2f32);
                images.push((value - norm.mean[channel]) / norm.std[channel]);
            }
        }
        masks.extend(mask);
    }
    let images = Tensor::from_slice(&images).view([IMAGES, 3, SIZE_PX, SIZE_PX]);
    let masks = Tensor::from_slice(&masks).view([IMAGES, SIZE_PX, SIZE_PX]);
    (images, masks)
}

#[test]
fn mobilenet_v2_unet_overfits_synthetic_disks() {
    tch::manual_seed(0);
    // One intra-op thread: on a busy 2-core machine libtorch's spinning worker threads cost
    // over ten times the CPU time of the actual work.
    tch::set_num_threads(1);
    let start = Instant::now();
    let device = Device::Cpu;
    let pretrained = transfer_workbench::assets::pretrained_weights("mobilenet_v2")
        .is_ok_and(|path| path.exists());
    let weights = if pretrained {
        WeightsChoice::Pretrained
    } else {
        WeightsChoice::Random
    };
    let loaded = load_backbone("mobilenet_v2", false, &weights, device).unwrap();
    let model = SegmentationModel::new(
        loaded.vs.root() / "decoder",
        loaded.model,
        1,
        SegDecoderConfig::default(),
    )
    .unwrap();
    let mut optimizer = nn::AdamW::default().build(&loaded.vs, 3e-3).unwrap();
    let built_secs = start.elapsed().as_secs_f64();
    let (images, masks) = synthetic_disks(1);
    let config = SegLossConfig::default();
    let mut first_loss = None;
    let mut last_loss = f64::NAN;
    for _ in 0..30 {
        let logits = model.forward_t(&images, true).unwrap();
        assert_eq!(logits.size(), vec![IMAGES, 1, SIZE_PX, SIZE_PX]);
        let loss = segmentation_loss(&logits, &masks, &config).unwrap();
        optimizer.backward_step(&loss.total);
        last_loss = loss.total.double_value(&[]);
        first_loss.get_or_insert(last_loss);
    }
    let mut accumulator = SegmentationAccumulator::new(2);
    for batch in 0..2 {
        let (images, masks) = (
            images.narrow(0, batch * 4, 4),
            masks.narrow(0, batch * 4, 4),
        );
        let logits = tch::no_grad(|| model.forward_t(&images, false)).unwrap();
        let counts = pixel_confusion(&logits, &masks, None).unwrap();
        accumulator.add_confusion(&counts).unwrap();
    }
    let metrics = accumulator.metrics(Some(0));
    let dice = metrics.foreground_dice.unwrap();
    println!(
        "weights {weights:?}: loss {:.4} -> {last_loss:.4}, foreground Dice {dice:.4}, IoU {:.4}, \
         pixel accuracy {:.4}, {:.1} s ({built_secs:.1} s building)",
        first_loss.unwrap_or(f64::NAN),
        metrics.foreground_iou.unwrap_or(f64::NAN),
        metrics.pixel_accuracy,
        start.elapsed().as_secs_f64()
    );
    assert_eq!(metrics.pixels, (IMAGES * SIZE_PX * SIZE_PX) as u64);
    assert!(dice > 0.8, "foreground Dice {dice}");
}
