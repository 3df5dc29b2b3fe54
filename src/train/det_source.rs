//! Synthetic object detection in memory: red squares, green disks and blue triangles pasted
//! at random places and scales on a cluttered, noisy background (grey bars and blobs that
//! are no object); about one image in six has no object. For tests and the command line's
//! `--synthetic`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use super::TrainError;
use super::source::{Batch, BatchIter, BatchSource, Split};
use crate::data::box_geometry::TargetBox;
use crate::data::boxes::PixelBox;
use crate::data::loader::{BOX_FIELDS, pad_boxes};
use crate::data::preprocess::Normalization;

/// The object classes, in index order.
pub const SHAPE_CLASSES: [&str; 3] = ["square", "disk", "triangle"];

/// One image `[3, S, S]` (normalised, CHW) and its boxes in pixels.
type Sample = (Vec<f32>, Vec<TargetBox>);

/// Shapes on clutter: a three-class detection data set in memory.
#[derive(Clone, Debug)]
pub struct SyntheticShapes {
    size_px: i64,
    seed: u64,
    train: Vec<Sample>,
    validation: Vec<Sample>,
}

impl SyntheticShapes {
    /// `train` + `validation` images of `size_px` square (at least 32), from `seed`.
    pub fn new(train: usize, validation: usize, size_px: u32, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let size = size_px.max(32) as usize;
        let train = (0..train).map(|_| shapes_sample(&mut rng, size)).collect();
        let validation = (0..validation)
            .map(|_| shapes_sample(&mut rng, size))
            .collect();
        Self {
            size_px: size as i64,
            seed,
            train,
            validation,
        }
    }

    fn samples(&self, split: Split) -> &[Sample] {
        match split {
            Split::Train => &self.train,
            Split::Validation => &self.validation,
        }
    }
}

/// Whether pixel centre `(x, y)` lies in shape `class` with box `b`.
fn inside(class: usize, b: &PixelBox, x: f32, y: f32) -> bool {
    if x < b.x0 || x >= b.x1 || y < b.y0 || y >= b.y1 {
        return false;
    }
    let (u, v) = ((x - b.x0) / b.width(), (y - b.y0) / b.height());
    match class {
        0 => true,
        1 => (u - 0.5).powi(2) + (v - 0.5).powi(2) <= 0.25,
        // Apex at the top centre, base along the bottom.
        _ => (u - 0.5).abs() <= v / 2.0,
    }
}

fn shapes_sample(rng: &mut ChaCha8Rng, size: usize) -> Sample {
    const COLOURS: [[f32; 3]; 3] = [[0.9, 0.15, 0.1], [0.1, 0.8, 0.2], [0.15, 0.25, 0.95]];
    let side = size as f32;
    let mut rgb = vec![0.0f32; 3 * size * size];
    for value in rgb.iter_mut() {
        *value = 0.45 + rng.gen_range(-0.12..0.12f32);
    }
    // Clutter: grey bars and blobs.
    for _ in 0..rng.gen_range(2..6) {
        let (x0, y0) = (rng.gen_range(0.0..side), rng.gen_range(0.0..side));
        let (w, h) = if rng.gen_bool(0.5) {
            (rng.gen_range(2.0..side * 0.5), rng.gen_range(1.0..4.0))
        } else {
            let d = rng.gen_range(3.0..side * 0.15);
            (d, d)
        };
        let grey = rng.gen_range(0.2..0.8f32);
        paint(
            &mut rgb,
            size,
            &PixelBox {
                x0,
                y0,
                x1: x0 + w,
                y1: y0 + h,
            },
            |_, _| true,
            [grey; 3],
        );
    }
    let count = if rng.gen_bool(1.0 / 6.0) {
        0
    } else {
        rng.gen_range(1..=4)
    };
    let mut boxes: Vec<TargetBox> = Vec::new();
    for _ in 0..count * 4 {
        if boxes.len() == count {
            break;
        }
        let class = rng.gen_range(0..SHAPE_CLASSES.len());
        let w = rng.gen_range(side * 0.12..side * 0.35);
        let h = w * rng.gen_range(0.8..1.25f32);
        let (x0, y0) = (
            rng.gen_range(0.0..side - w),
            rng.gen_range(0.0..side - h.min(side - 1.0)),
        );
        let bbox = PixelBox {
            x0: x0.floor(),
            y0: y0.floor(),
            x1: (x0 + w).floor(),
            y1: (y0 + h).floor().min(side),
        };
        if boxes.iter().any(|b| b.bbox.iou(bbox) > 0.05) {
            continue;
        }
        let colour = COLOURS[class].map(|c| c + rng.gen_range(-0.08..0.08f32));
        paint(
            &mut rgb,
            size,
            &bbox,
            |x, y| inside(class, &bbox, x, y),
            colour,
        );
        boxes.push(TargetBox {
            bbox,
            class,
            crowd: false,
        });
    }
    let norm = Normalization::IMAGENET;
    let plane = size * size;
    for (i, value) in rgb.iter_mut().enumerate() {
        let c = i / plane;
        *value = (value.clamp(0.0, 1.0) - norm.mean[c]) / norm.std[c];
    }
    (rgb, boxes)
}

/// Paints the pixels of `b` for which `keep(x, y)` holds (pixel centres) in `colour`.
fn paint(
    rgb: &mut [f32],
    size: usize,
    b: &PixelBox,
    keep: impl Fn(f32, f32) -> bool,
    colour: [f32; 3],
) {
    let plane = size * size;
    let clip = |v: f32| (v.max(0.0) as usize).min(size);
    for y in clip(b.y0)..clip(b.y1.ceil()) {
        for x in clip(b.x0)..clip(b.x1.ceil()) {
            if keep(x as f32 + 0.5, y as f32 + 0.5) {
                for (c, value) in colour.iter().enumerate() {
                    rgb[c * plane + y * size + x] = *value;
                }
            }
        }
    }
}

/// The sample mirrored left to right.
fn mirrored(sample: &Sample, size: usize) -> Sample {
    let image = sample
        .0
        .chunks(size)
        .flat_map(|row| row.iter().rev().copied())
        .collect();
    let side = size as f32;
    let boxes = sample
        .1
        .iter()
        .map(|b| TargetBox {
            bbox: PixelBox {
                x0: side - b.bbox.x1,
                x1: side - b.bbox.x0,
                ..b.bbox
            },
            ..*b
        })
        .collect();
    (image, boxes)
}

impl BatchSource for SyntheticShapes {
    fn labels(&self, split: Split) -> Vec<i64> {
        vec![0; self.samples(split).len()]
    }

    fn num_classes(&self) -> usize {
        SHAPE_CLASSES.len()
    }

    fn class_names(&self) -> Vec<String> {
        SHAPE_CLASSES.iter().map(|s| (*s).to_owned()).collect()
    }

    fn fingerprint(&self, split: Split) -> String {
        format!(
            "synthetic-shapes:{}:{}:{}:{}",
            split.name(),
            self.samples(split).len(),
            self.size_px,
            self.seed
        )
    }

    fn batches(
        &mut self,
        split: Split,
        plan: Vec<Vec<usize>>,
        augment: bool,
        seed: u64,
    ) -> BatchIter<'_> {
        let size = self.size_px;
        let samples = self.samples(split);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Box::new(plan.into_iter().map(move |indices| {
            let mut images = Vec::with_capacity(indices.len() * (3 * size * size) as usize);
            let mut boxes = Vec::with_capacity(indices.len());
            for &i in &indices {
                let sample = samples.get(i).ok_or_else(|| {
                    TrainError::Source(format!("sample {i} out of range in {}", split.name()))
                })?;
                let (chw, list) = if augment && rng.gen_bool(0.5) {
                    mirrored(sample, size as usize)
                } else {
                    sample.clone()
                };
                images.extend(chw);
                boxes.push(list);
            }
            let n = indices.len() as i64;
            let (values, most) = pad_boxes(&boxes);
            Ok(Batch {
                images: Tensor::f_from_slice(&images)?.f_view([n, 3, size, size])?,
                targets: Tensor::f_from_slice(&values)?.f_view([
                    n,
                    most as i64,
                    BOX_FIELDS as i64,
                ])?,
                skipped: Vec::new(),
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::detection::truth_boxes;

    #[test]
    fn shapes_sit_inside_their_boxes_and_mirror_with_the_image() {
        let mut data = SyntheticShapes::new(12, 4, 64, 7);
        let batches: Vec<Batch> = data
            .batches(Split::Train, vec![(0..12).collect()], false, 0)
            .collect::<Result<_, _>>()
            .unwrap();
        let boxes = truth_boxes(&batches[0].targets).unwrap();
        assert_eq!(boxes.len(), 12);
        assert!(boxes.iter().map(Vec::len).sum::<usize>() >= 12);
        let sample = &data.train[0];
        let flipped = mirrored(&mirrored(sample, 64), 64);
        assert_eq!(&flipped.1, &sample.1);
        assert_eq!(&flipped.0, &sample.0);
        for b in &sample.1 {
            assert!(b.bbox.x0 >= 0.0 && b.bbox.x1 <= 64.0 && b.bbox.width() >= 7.0);
        }
    }
}
