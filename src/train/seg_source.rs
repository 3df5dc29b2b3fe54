//! A synthetic binary segmentation task for tests and the CLI's hidden `--synthetic` mode:
//! one bright disk of random centre and radius on a noisy darker background per image, its
//! mask the disk (class 1) on background (class 0). Deterministic for a seed; the training
//! augmentation flips image and mask horizontally together.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use super::TrainError;
use super::source::{Batch, BatchIter, BatchSource, Split};
use crate::model::Normalization;

/// One image `[3, S, S]` (normalised, CHW) and its mask `[S, S]`.
type Sample = (Vec<f32>, Vec<i64>);

/// Bright disks on noise: a two-class (background, disk) segmentation data set in memory.
#[derive(Clone, Debug)]
pub struct SyntheticDisks {
    size_px: i64,
    seed: u64,
    train: Vec<Sample>,
    validation: Vec<Sample>,
}

impl SyntheticDisks {
    /// `train` + `validation` images of `size_px` square (at least 16), generated from `seed`.
    pub fn new(train: usize, validation: usize, size_px: u32, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let size = i64::from(size_px.max(16));
        let train = (0..train).map(|_| disk_sample(&mut rng, size)).collect();
        let validation = (0..validation)
            .map(|_| disk_sample(&mut rng, size))
            .collect();
        Self {
            size_px: size,
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

fn disk_sample(rng: &mut ChaCha8Rng, size: i64) -> Sample {
    let side = size as f32;
    let radius = rng.gen_range(side / 8.0..side * 0.28);
    let cy = rng.gen_range(radius..side - radius);
    let cx = rng.gen_range(radius..side - radius);
    let mask: Vec<i64> = (0..size * size)
        .map(|i| {
            let (dy, dx) = ((i / size) as f32 + 0.5 - cy, (i % size) as f32 + 0.5 - cx);
            i64::from(dy * dy + dx * dx <= radius * radius)
        })
        .collect();
    let norm = Normalization::IMAGENET;
    let mut chw = Vec::with_capacity(3 * mask.len());
    for channel in 0..3 {
        for &inside in &mask {
            let base = if inside == 1 { 0.8 } else { 0.3 };
            let value = base + rng.gen_range(-0.2..0.2f32);
            chw.push((value - norm.mean[channel]) / norm.std[channel]);
        }
    }
    (chw, mask)
}

/// Mirrors every row of every `size`-wide plane in `data`.
fn flip_rows<T: Copy>(data: &[T], size: usize) -> Vec<T> {
    data.chunks(size)
        .flat_map(|row| row.iter().rev().copied())
        .collect()
}

impl BatchSource for SyntheticDisks {
    fn labels(&self, split: Split) -> Vec<i64> {
        vec![0; self.samples(split).len()]
    }

    fn num_classes(&self) -> usize {
        2
    }

    fn fingerprint(&self, split: Split) -> String {
        format!(
            "synthetic-disks:{}:{}:{}:{}",
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
            let mut masks = Vec::with_capacity(indices.len() * (size * size) as usize);
            for &i in &indices {
                let (chw, mask) = samples.get(i).ok_or_else(|| {
                    TrainError::Source(format!("sample {i} out of range in {}", split.name()))
                })?;
                if augment && rng.gen_bool(0.5) {
                    images.extend(flip_rows(chw, size as usize));
                    masks.extend(flip_rows(mask, size as usize));
                } else {
                    images.extend_from_slice(chw);
                    masks.extend_from_slice(mask);
                }
            }
            let n = indices.len() as i64;
            Ok(Batch {
                images: Tensor::f_from_slice(&images)?.f_view([n, 3, size, size])?,
                targets: Tensor::f_from_slice(&masks)?.f_view([n, size, size])?,
                skipped: Vec::new(),
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disks_have_masks_that_flip_with_their_images() {
        let mut a = SyntheticDisks::new(4, 2, 16, 3);
        assert_eq!(a.labels(Split::Train).len(), 4);
        let plain: Vec<Batch> = a
            .batches(Split::Train, vec![vec![0, 1]], false, 0)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(plain[0].images.size(), vec![2, 3, 16, 16]);
        assert_eq!(plain[0].targets.size(), vec![2, 16, 16]);
        let foreground = plain[0].targets.sum(tch::Kind::Int64).int64_value(&[]);
        assert!(foreground > 10, "{foreground}");
        // Inside the disk the image is brighter.
        let mask = plain[0].targets.unsqueeze(1).to_kind(tch::Kind::Float);
        let inside = (&plain[0].images * &mask).sum(tch::Kind::Float) / mask.sum(tch::Kind::Float);
        assert!(inside.double_value(&[]) > 0.5);
        // A flip moves mask and image together.
        let flipped = flip_rows(&[1, 2, 3, 4, 5, 6], 3);
        assert_eq!(flipped, vec![3, 2, 1, 6, 5, 4]);
    }
}
