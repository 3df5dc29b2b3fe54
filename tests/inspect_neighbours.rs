//! Nearest neighbours over a run's embeddings (pretrained MobileNetV2 at 64 px, linear
//! probe, one thread): in a set where every random-texture image has one augmented copy
//! (shifted crop, brighter), each image's nearest neighbour after itself is its own copy,
//! and a third variant from outside the set, queried by example, finds its family.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use std::sync::atomic::AtomicBool;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};
use transfer_workbench::inspect::{NeighbourIndex, embed_images, split_outputs};
use transfer_workbench::train::source::BatchIter;
use transfer_workbench::train::{
    Batch, BatchSource, CheckpointChoice, Control, JobSpec, Split, Strategy, TrainConfig,
    TrainedModel, VecSink, WeightsSpec, train,
};

const SIZE: usize = 64;
const BASE: usize = 72;
const TEXTURES: usize = 10;

/// A random texture of `BASE` px, clearly unlike the others: stripes of a random
/// orientation and frequency between two random colours, over a bilinear 4x4 colour grid,
/// plus fine noise; `[3][BASE][BASE]` in 0..1.
fn texture(rng: &mut ChaCha8Rng) -> Vec<f32> {
    let grid: Vec<f32> = (0..3 * 4 * 4).map(|_| rng.gen_range(0.0..1.0)).collect();
    let colours: Vec<f32> = (0..6).map(|_| rng.gen_range(0.0..1.0)).collect();
    let angle = rng.gen_range(0.0..std::f32::consts::PI);
    let period_px = rng.gen_range(6.0f32..24.0);
    let mut out = vec![0.0; 3 * BASE * BASE];
    for c in 0..3 {
        for y in 0..BASE {
            for x in 0..BASE {
                let gy = y as f32 * 3.0 / (BASE - 1) as f32;
                let gx = x as f32 * 3.0 / (BASE - 1) as f32;
                let (y0, x0) = (gy.floor() as usize, gx.floor() as usize);
                let (y1, x1) = ((y0 + 1).min(3), (x0 + 1).min(3));
                let (fy, fx) = (gy - y0 as f32, gx - x0 as f32);
                let g = |yy: usize, xx: usize| grid[c * 16 + yy * 4 + xx];
                let blob = g(y0, x0) * (1.0 - fy) * (1.0 - fx)
                    + g(y0, x1) * (1.0 - fy) * fx
                    + g(y1, x0) * fy * (1.0 - fx)
                    + g(y1, x1) * fy * fx;
                let phase = (x as f32 * angle.cos() + y as f32 * angle.sin()) / period_px;
                let stripe = if phase.fract().abs() < 0.5 {
                    colours[c]
                } else {
                    colours[3 + c]
                };
                out[c * BASE * BASE + y * BASE + x] =
                    0.6 * stripe + 0.4 * blob + rng.gen_range(-0.03..0.03);
            }
        }
    }
    out
}

/// A `SIZE` crop at `(top, left)` with brightness `gain`, ImageNet-normalised.
fn view(texture: &[f32], top: usize, left: usize, gain: f32) -> Vec<f32> {
    let mean = [0.485, 0.456, 0.406];
    let std = [0.229, 0.224, 0.225];
    let mut out = Vec::with_capacity(3 * SIZE * SIZE);
    for c in 0..3 {
        for y in 0..SIZE {
            for x in 0..SIZE {
                let v =
                    (texture[c * BASE * BASE + (y + top) * BASE + x + left] * gain).clamp(0.0, 1.0);
                out.push((v - mean[c]) / std[c]);
            }
        }
    }
    out
}

/// Image `2i` is texture `i`, image `2i + 1` its augmented copy; both splits hold them all.
struct Pairs {
    images: Vec<Vec<f32>>,
}

impl BatchSource for Pairs {
    fn labels(&self, _split: Split) -> Vec<i64> {
        (0..self.images.len()).map(|i| (i / 2 % 2) as i64).collect()
    }

    fn num_classes(&self) -> usize {
        2
    }

    fn fingerprint(&self, split: Split) -> String {
        format!("pairs:{}:{}", split.name(), self.images.len())
    }

    fn batches(
        &mut self,
        split: Split,
        plan: Vec<Vec<usize>>,
        _augment: bool,
        _seed: u64,
    ) -> BatchIter<'_> {
        let labels = self.labels(split);
        Box::new(plan.into_iter().map(move |indices| {
            let data: Vec<f32> = indices
                .iter()
                .flat_map(|&i| self.images[i].clone())
                .collect();
            let targets: Vec<i64> = indices.iter().map(|&i| labels[i]).collect();
            Ok(Batch {
                images: Tensor::from_slice(&data).view([
                    indices.len() as i64,
                    3,
                    SIZE as i64,
                    SIZE as i64,
                ]),
                targets: Tensor::from_slice(&targets).to_kind(Kind::Int64),
                skipped: Vec::new(),
            })
        }))
    }
}

#[test]
fn each_image_finds_its_augmented_copy_and_queries_by_example_find_their_family() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let textures: Vec<Vec<f32>> = (0..TEXTURES).map(|_| texture(&mut rng)).collect();
    let mut images = Vec::new();
    for t in &textures {
        images.push(view(t, 4, 4, 1.0));
        images.push(view(t, 5, 5, 1.08));
    }
    let mut source = Pairs { images };
    let project = tempfile::tempdir().unwrap();
    let config = TrainConfig {
        backbone: "mobilenet_v2".into(),
        weights: WeightsSpec::Pretrained,
        input_size_px: SIZE as u32,
        strategy: Strategy::LinearProbe,
        epochs: 1,
        batch_size: 10,
        seed: 1,
        threads: Some(1),
        ..TrainConfig::default()
    };
    let spec = JobSpec {
        device: Device::Cpu,
        ..JobSpec::new(project.path(), config)
    };
    let run_id = train(
        &spec,
        &mut source,
        &mut VecSink::new(),
        &mut Control::detached(),
    )
    .unwrap()
    .run_id;
    let mut model = TrainedModel::load(
        project.path(),
        &run_id,
        CheckpointChoice::BestOrLast,
        Device::Cpu,
    )
    .unwrap();
    let outputs = split_outputs(
        &mut model,
        &mut source,
        Split::Validation,
        &mut |_, _| {},
        &AtomicBool::new(false),
    )
    .unwrap()
    .unwrap();
    assert_eq!(outputs.len(), 2 * TEXTURES);
    let index = NeighbourIndex::new(&outputs.embeddings, outputs.dim).unwrap();
    for i in 0..2 * TEXTURES {
        let found = index.of_sample(i, 3).unwrap();
        assert_eq!(found[0].index, i, "image {i} is its own nearest neighbour");
        assert_eq!(
            found[1].index,
            i ^ 1,
            "image {i}: the copy should come next, got {found:?}"
        );
        assert!(found[1].similarity > found[2].similarity);
    }

    // Query by example: a third view of texture 3, never in the data set.
    let query = view(&textures[3], 2, 7, 0.92);
    let query = Tensor::from_slice(&query).view([1, 3, SIZE as i64, SIZE as i64]);
    let embedded = embed_images(&mut model, &query).unwrap();
    let found = index.query(&embedded[0], 2).unwrap();
    let family: Vec<usize> = found.iter().map(|n| n.index).collect();
    assert!(family.contains(&6) && family.contains(&7), "{found:?}");
}
