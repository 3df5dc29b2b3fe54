//! Where batches come from: a small trait the data loader implements, and an in-memory
//! synthetic two-class task for tests and the CLI's hidden `--synthetic` mode.
//!
//! The loop owns the order (seeded shuffling, balanced sampling, fixed order for embedding
//! and evaluation) and hands the source a plan of sample indices; the source only loads
//! those samples, so it may decode and prefetch in parallel.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use super::TrainError;

/// A split of the labelled data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Used for the optimiser.
    Train,
    /// Used for model selection and early stopping.
    Validation,
}

impl Split {
    /// The split's name in file names and events.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
        }
    }
}

/// One batch on the CPU: normalised images `[N, 3, H, W]` (float) and targets, int64: class
/// indices `[N]` for classification, per-pixel class indices `[N, H, W]` (masks at the
/// images' size; 0 = background, [`super::config::SEG_IGNORE_INDEX`] = ignored) for
/// segmentation.
#[derive(Debug)]
pub struct Batch {
    /// Normalised images.
    pub images: Tensor,
    /// Targets.
    pub targets: Tensor,
    /// Why each image planned for this batch but left out of it could not be loaded
    /// (training passes go on without it; evaluation passes fail instead).
    pub skipped: Vec<String>,
}

/// The batches of one pass.
pub type BatchIter<'a> = Box<dyn Iterator<Item = Result<Batch, TrainError>> + 'a>;

/// A labelled data set split into train and validation, loaded on demand.
pub trait BatchSource: Send {
    /// The class index of every sample of `split`, in sample order. Segmentation sources
    /// return one entry per image too (only the count is used; 0 will do).
    fn labels(&self, split: Split) -> Vec<i64>;
    /// Number of classes (for segmentation: mask classes, background included).
    fn num_classes(&self) -> usize;
    /// A string that changes whenever the samples of `split` or their preprocessing change
    /// (keys the embedding cache).
    fn fingerprint(&self, split: Split) -> String;
    /// Loads the batches of `plan` (lists of sample indices of `split`) in order;
    /// `augment` applies the training augmentation, seeded by `seed`.
    fn batches(
        &mut self,
        split: Split,
        plan: Vec<Vec<usize>>,
        augment: bool,
        seed: u64,
    ) -> BatchIter<'_>;
    /// Class names in index order (for segmentation: the mask classes, background first).
    fn class_names(&self) -> Vec<String> {
        (0..self.num_classes())
            .map(|i| format!("class {i}"))
            .collect()
    }
    /// A stable id of every sample of `split`, in sample order (the path relative to the
    /// data root for real data).
    fn sample_ids(&self, split: Split) -> Vec<String> {
        (0..self.labels(split).len())
            .map(|i| format!("{}/{i}", split.name()))
            .collect()
    }
    /// The image file of sample `index` of `split`, when the data comes from files.
    fn sample_path(&self, _split: Split, _index: usize) -> Option<std::path::PathBuf> {
        None
    }
    /// A description of the split frozen into each run (`split.json`).
    fn split_manifest(&self) -> serde_json::Value {
        serde_json::json!({
            "classes": self.class_names(),
            "train": { "samples": self.labels(Split::Train).len(), "fingerprint": self.fingerprint(Split::Train) },
            "validation": { "samples": self.labels(Split::Validation).len(), "fingerprint": self.fingerprint(Split::Validation) },
        })
    }
}

/// A synthetic two-class task: noisy images with a bright square in the left (class 0) or
/// right (class 1) half. Deterministic for a seed.
#[derive(Clone, Debug)]
pub struct SyntheticSource {
    size_px: i64,
    seed: u64,
    train: Vec<(Vec<f32>, i64)>,
    validation: Vec<(Vec<f32>, i64)>,
}

impl SyntheticSource {
    /// `train` + `validation` images of `size_px` square, generated from `seed`.
    pub fn two_class(train: usize, validation: usize, size_px: u32, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let size = i64::from(size_px);
        let mut make = |n: usize| -> Vec<(Vec<f32>, i64)> {
            (0..n)
                .map(|i| {
                    let label = (i % 2) as i64;
                    (synthetic_image(&mut rng, size, label), label)
                })
                .collect()
        };
        let train = make(train);
        let validation = make(validation);
        Self {
            size_px: size,
            seed,
            train,
            validation,
        }
    }

    fn samples(&self, split: Split) -> &[(Vec<f32>, i64)] {
        match split {
            Split::Train => &self.train,
            Split::Validation => &self.validation,
        }
    }
}

fn synthetic_image(rng: &mut ChaCha8Rng, size: i64, label: i64) -> Vec<f32> {
    let plane = (size * size) as usize;
    let mut chw: Vec<f32> = (0..3 * plane)
        .map(|_| rng.gen_range(-0.5f32..0.5))
        .collect();
    let side = (size / 3).max(1);
    let half = size / 2;
    let x0 = if label == 0 { 0 } else { half } + rng.gen_range(0..=(half - side).max(0));
    let y0 = rng.gen_range(0..=(size - side).max(0));
    for c in 0..3 {
        for y in y0..(y0 + side).min(size) {
            for x in x0..(x0 + side).min(size) {
                chw[c * plane + (y * size + x) as usize] += 2.0;
            }
        }
    }
    chw
}

impl BatchSource for SyntheticSource {
    fn labels(&self, split: Split) -> Vec<i64> {
        self.samples(split)
            .iter()
            .map(|(_, label)| *label)
            .collect()
    }

    fn num_classes(&self) -> usize {
        2
    }

    fn fingerprint(&self, split: Split) -> String {
        format!(
            "synthetic-two-class:{}:{}:{}:{}",
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
            let mut data = Vec::with_capacity(indices.len() * (3 * size * size) as usize);
            let mut targets = Vec::with_capacity(indices.len());
            for &i in &indices {
                let (chw, label) = samples.get(i).ok_or_else(|| {
                    TrainError::Source(format!("sample {i} out of range in {}", split.name()))
                })?;
                // Augmentation: a random vertical flip keeps the left/right label intact.
                if augment && rng.gen_bool(0.5) {
                    data.extend(flip_vertical(chw, size));
                } else {
                    data.extend_from_slice(chw);
                }
                targets.push(*label);
            }
            let n = indices.len() as i64;
            Ok(Batch {
                images: Tensor::f_from_slice(&data)?.f_view([n, 3, size, size])?,
                targets: Tensor::f_from_slice(&targets)?
                    .f_to_kind(Kind::Int64)?
                    .f_to_device(Device::Cpu)?,
                skipped: Vec::new(),
            })
        }))
    }
}

fn flip_vertical(chw: &[f32], size: i64) -> Vec<f32> {
    let size = size as usize;
    let mut out = Vec::with_capacity(chw.len());
    for plane in chw.chunks(size * size) {
        for row in plane.chunks(size).rev() {
            out.extend_from_slice(row);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_source_is_deterministic_and_batches_follow_the_plan() {
        let mut a = SyntheticSource::two_class(6, 4, 16, 7);
        let b = SyntheticSource::two_class(6, 4, 16, 7);
        assert_eq!(a.train, b.train);
        assert_eq!(a.labels(Split::Train), vec![0, 1, 0, 1, 0, 1]);
        let batches: Vec<Batch> = a
            .batches(Split::Train, vec![vec![0, 1, 2], vec![5]], false, 0)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(batches[0].images.size(), vec![3, 3, 16, 16]);
        assert_eq!(Vec::<i64>::try_from(&batches[1].targets).unwrap(), vec![1]);
    }
}
