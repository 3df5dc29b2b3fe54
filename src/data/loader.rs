//! The batch loader feeding training and evaluation: parallel decode and resize (rayon),
//! a byte-bounded cache of working images, per-sample augmentation or the deterministic
//! evaluation transform, and prefetching on its own thread through a bounded channel.
//!
//! Batches are plain data ([`Batch`]); [`Batch::to_tensors`] is the only place that touches
//! tch. A file that cannot be decoded is skipped and reported with its name; the epoch goes
//! on. Dropping the epoch iterator stops the producer and joins it.

use super::targets::{EvalFit, data_targets};
use crate::task::TaskKind;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::augment::{AugmentConfig, augment_into, plain_lut, sample_params};
use super::box_geometry::{TargetBox, augment_boxes, centre_square_boxes, to_working};
use super::boxes::ObjectBox;
use super::cache::{CacheKey, ImageCache, WorkingImage, WorkingSize, load_working};
use super::mask::MaskEncoding;
use super::pixels::{Dihedral, write_chw, write_mask};
use super::preprocess::Normalization;
use super::window::WindowSetting;

/// Failures setting up a loader.
#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    #[error("invalid loader configuration: {0}")]
    Config(String),
    #[error("could not start the data loader's threads: {0}")]
    Threads(String),
}

/// One item to load.
#[derive(Clone, Debug, PartialEq)]
pub struct LoaderItem {
    /// Stable id shown in reports (e.g. the path relative to the data root).
    pub id: String,
    pub path: PathBuf,
    /// Class index (classification); ignored by segmentation losses.
    pub label: i64,
    /// The mask file, for segmentation.
    pub mask_path: Option<PathBuf>,
    /// The boxes in original-image pixels, for detection (`Some(empty)`: no objects).
    pub boxes: Option<Arc<Vec<ObjectBox>>>,
}

/// Training (seeded augmentation) or evaluation (deterministic) transform.
#[derive(Clone, Debug, PartialEq)]
pub enum Transform {
    Train(AugmentConfig),
    /// Classification: resize the shorter side to `size / eval_crop_fraction`, centre crop.
    /// Segmentation: resize to `size` x `size`.
    Eval,
    /// Resize to `size` x `size` without a crop (segmentation images without masks).
    EvalResize,
}

/// How a loader reads, transforms and batches its items.
#[derive(Clone, Debug, PartialEq)]
pub struct LoaderConfig {
    /// Square input side in pixels.
    pub size_px: u32,
    pub batch_size: usize,
    pub transform: Transform,
    /// The task whose targets the items carry ([`data_targets`]: masks are loaded with
    /// their images and follow the image's geometry; how evaluation fits an image).
    pub task: TaskKind,
    /// The backbone's normalisation.
    pub normalization: Normalization,
    /// Window for 16-bit and DICOM images.
    pub window: WindowSetting,
    /// How mask values map to classes (segmentation); `None` guesses per file.
    pub mask_encoding: Option<MaskEncoding>,
    pub seed: u64,
    /// Shuffle the order each epoch (seeded by `seed` and the epoch).
    pub shuffle: bool,
    /// Leave out a last, incomplete batch.
    pub drop_last: bool,
    /// Decoding threads.
    pub threads: usize,
    /// Batches prepared ahead of the consumer.
    pub prefetch_batches: usize,
    /// Classification evaluation: the centre crop's share of the resized shorter side
    /// (torchvision's ImageNet transform: 0.875; 1.0 keeps the whole square).
    pub eval_crop_fraction: f32,
    /// Shorter side of the cached working images for training; by default large enough that
    /// the smallest random crop is not upsampled (at most twice `size_px`).
    pub working_px: Option<u32>,
}

impl LoaderConfig {
    /// A shuffled training loader with augmentation.
    pub fn train(
        size_px: u32,
        batch_size: usize,
        normalization: Normalization,
        augment: AugmentConfig,
    ) -> Self {
        Self {
            size_px,
            batch_size,
            transform: Transform::Train(augment),
            task: TaskKind::default(),
            normalization,
            window: WindowSetting::default(),
            mask_encoding: None,
            seed: 0,
            shuffle: true,
            drop_last: false,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            prefetch_batches: 2,
            eval_crop_fraction: 0.875,
            working_px: None,
        }
    }

    /// An ordered evaluation loader.
    pub fn eval(size_px: u32, batch_size: usize, normalization: Normalization) -> Self {
        Self {
            transform: Transform::Eval,
            shuffle: false,
            ..Self::train(size_px, batch_size, normalization, AugmentConfig::default())
        }
    }

    /// The size images are decoded to (and cached at) before the transform.
    pub fn working_size(&self) -> WorkingSize {
        let size = self.size_px;
        match (&self.transform, data_targets(self.task).eval_fit()) {
            (Transform::Train(augment), _) => {
                WorkingSize::AtLeast(self.working_px.unwrap_or_else(|| {
                    let min_scale = augment.crop_scale[0].clamp(0.01, 1.0);
                    let px = (f64::from(size) / f64::from(min_scale).sqrt()).ceil() as u32;
                    px.clamp(size, size.saturating_mul(2))
                }))
            }
            (Transform::Eval, EvalFit::CentreCrop) => {
                WorkingSize::ShorterSide(eval_resize_px(size, self.eval_crop_fraction))
            }
            (Transform::Eval, EvalFit::Stretch) | (Transform::EvalResize, _) => {
                WorkingSize::Exact(size, size)
            }
        }
    }
}

/// The shorter side the classification evaluation transform resizes to before its centre
/// crop of `size_px`: `round(size_px / crop_fraction)` (the one place this is computed;
/// Grad-CAM's mapping back to the image and the export metadata use it too).
pub fn eval_resize_px(size_px: u32, crop_fraction: f32) -> u32 {
    (f64::from(size_px) / f64::from(crop_fraction.clamp(0.05, 1.0))).round() as u32
}

/// An item left out of a batch, with the reason (which names the file).
#[derive(Clone, Debug, PartialEq)]
pub struct SkippedItem {
    pub id: String,
    pub path: PathBuf,
    pub reason: String,
}

/// One batch as plain data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// `N x 3 x size x size` normalised values (NCHW).
    pub images: Vec<f32>,
    pub size_px: u32,
    pub labels: Vec<i64>,
    /// `N x size x size` class indices, for segmentation.
    pub masks: Option<Vec<u8>>,
    /// Each image's boxes in input pixels, for detection.
    pub boxes: Option<Vec<Vec<TargetBox>>>,
    /// Each image's decoded size before any reduction (to map predictions back).
    pub original_px: Vec<(u32, u32)>,
    pub ids: Vec<String>,
    /// Items of this batch (or of earlier all-failed batches) that were skipped.
    pub skipped: Vec<SkippedItem>,
}

/// Values per box in [`BatchTensors::boxes`]: `x0, y0, x1, y1` (input pixels), the class
/// index, and a flag (1 an object, 2 a crowd box, 0 padding).
pub const BOX_FIELDS: usize = 6;

/// A batch on a device: images `[N, 3, H, W]` float, labels `[N]` int64, masks `[N, H, W]`
/// int64, boxes `[N, M, BOX_FIELDS]` float (`M` the most boxes of an image, at least 1;
/// shorter lists padded with zeros).
#[derive(Debug)]
pub struct BatchTensors {
    pub images: tch::Tensor,
    pub labels: tch::Tensor,
    pub masks: Option<tch::Tensor>,
    pub boxes: Option<tch::Tensor>,
}

/// Boxes of `n` images as the padded `[n, M, BOX_FIELDS]` values (see [`BatchTensors`]).
pub fn pad_boxes(boxes: &[Vec<TargetBox>]) -> (Vec<f32>, usize) {
    let most = boxes.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut out = vec![0.0f32; boxes.len() * most * BOX_FIELDS];
    for (image, list) in boxes.iter().enumerate() {
        for (slot, b) in list.iter().enumerate() {
            let at = (image * most + slot) * BOX_FIELDS;
            let flag = if b.crowd { 2.0 } else { 1.0 };
            out[at..at + BOX_FIELDS].copy_from_slice(&[
                b.bbox.x0,
                b.bbox.y0,
                b.bbox.x1,
                b.bbox.y1,
                b.class as f32,
                flag,
            ]);
        }
    }
    (out, most)
}

impl Batch {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Copies the batch into tensors on `device`.
    pub fn to_tensors(&self, device: tch::Device) -> Result<BatchTensors, tch::TchError> {
        let (n, s) = (self.len() as i64, i64::from(self.size_px));
        let images = tch::Tensor::f_from_slice(&self.images)?
            .f_view([n, 3, s, s])?
            .f_to_device(device)?;
        let labels = tch::Tensor::f_from_slice(&self.labels)?.f_to_device(device)?;
        let masks = match &self.masks {
            Some(masks) => Some(
                tch::Tensor::f_from_slice(masks)?
                    .f_view([n, s, s])?
                    .f_to_device(device)?
                    .f_to_kind(tch::Kind::Int64)?,
            ),
            None => None,
        };
        let boxes = match &self.boxes {
            Some(boxes) => {
                let (values, most) = pad_boxes(boxes);
                Some(
                    tch::Tensor::f_from_slice(&values)?
                        .f_view([n, most as i64, BOX_FIELDS as i64])?
                        .f_to_device(device)?,
                )
            }
            None => None,
        };
        Ok(BatchTensors {
            images,
            labels,
            masks,
            boxes,
        })
    }
}

/// State shared by the loader and its producer threads.
struct Shared {
    items: Vec<LoaderItem>,
    config: LoaderConfig,
    working_size: WorkingSize,
    window_key: String,
    cache: Option<Arc<ImageCache>>,
    pool: rayon::ThreadPool,
    decoded: AtomicU64,
    running: AtomicUsize,
    skipped_log: Mutex<Vec<SkippedItem>>,
}

/// Loads batches of a fixed item list; call [`BatchLoader::epoch`] once per epoch.
pub struct BatchLoader {
    shared: Arc<Shared>,
}

impl BatchLoader {
    /// A loader over `items`; `cache` may be shared with other loaders.
    pub fn new(
        items: Vec<LoaderItem>,
        config: LoaderConfig,
        cache: Option<Arc<ImageCache>>,
    ) -> Result<Self, LoaderError> {
        if config.size_px == 0 || config.batch_size == 0 || config.threads == 0 {
            return Err(LoaderError::Config(format!(
                "size ({} px), batch size ({}) and threads ({}) must be positive",
                config.size_px, config.batch_size, config.threads
            )));
        }
        if data_targets(config.task).masks() && items.iter().any(|i| i.mask_path.is_none()) {
            return Err(LoaderError::Config(format!(
                "{} needs a mask for every item",
                config.task.label()
            )));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads)
            .thread_name(|i| format!("data-loader-{i}"))
            .build()
            .map_err(|e| LoaderError::Threads(e.to_string()))?;
        Ok(Self {
            shared: Arc::new(Shared {
                working_size: config.working_size(),
                window_key: format!("{:?}", config.window),
                items,
                config,
                cache,
                pool,
                decoded: AtomicU64::new(0),
                running: AtomicUsize::new(0),
                skipped_log: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.shared.items.len()
    }

    /// True without items.
    pub fn is_empty(&self) -> bool {
        self.shared.items.is_empty()
    }

    /// Batches one epoch yields (before any skipped file).
    pub fn batches_per_epoch(&self) -> usize {
        let (n, b) = (self.len(), self.shared.config.batch_size);
        if self.shared.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// Files decoded so far (cache hits are not decodes).
    pub fn decoded_count(&self) -> u64 {
        self.shared.decoded.load(Ordering::Relaxed)
    }

    /// Producer threads currently running.
    pub fn running_producers(&self) -> usize {
        self.shared.running.load(Ordering::Relaxed)
    }

    /// Every item skipped so far, over all epochs.
    pub fn skipped(&self) -> Vec<SkippedItem> {
        self.shared
            .skipped_log
            .lock()
            .map(|log| log.clone())
            .unwrap_or_default()
    }

    /// Starts preparing epoch `epoch` on a producer thread and returns its batches in order.
    pub fn epoch(&self, epoch: u64) -> Result<EpochBatches, LoaderError> {
        let config = &self.shared.config;
        let mut order: Vec<usize> = (0..self.shared.items.len()).collect();
        if config.shuffle {
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(
                config.seed,
                epoch,
                u64::MAX,
            )));
        }
        let plan = order
            .chunks(config.batch_size)
            .filter(|chunk| !config.drop_last || chunk.len() == config.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        self.start(plan, epoch)
    }

    /// Loads the batches of `plan` (lists of item indices) in order on a producer thread;
    /// augmentation is seeded by the loader's seed and `seed`. Indices out of range are
    /// skipped and reported.
    pub fn plan(&self, plan: Vec<Vec<usize>>, seed: u64) -> Result<EpochBatches, LoaderError> {
        self.start(plan, seed)
    }

    fn start(&self, plan: Vec<Vec<usize>>, epoch: u64) -> Result<EpochBatches, LoaderError> {
        let shared = Arc::clone(&self.shared);
        let (sender, receiver) = bounded(shared.config.prefetch_batches.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        shared.running.fetch_add(1, Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .name("data-loader-producer".into())
            .spawn(move || {
                produce(&shared, epoch, plan, &sender, &thread_stop);
                shared.running.fetch_sub(1, Ordering::SeqCst);
            });
        let handle = spawned.map_err(|e| {
            self.shared.running.fetch_sub(1, Ordering::SeqCst);
            LoaderError::Threads(e.to_string())
        })?;
        Ok(EpochBatches {
            receiver: Some(receiver),
            stop,
            handle: Some(handle),
            waited: Duration::ZERO,
        })
    }
}

/// The batches of one epoch, prepared ahead on a producer thread. Dropping it stops the
/// producer and waits for it.
pub struct EpochBatches {
    receiver: Option<Receiver<Batch>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    waited: Duration,
}

impl EpochBatches {
    /// Time the consumer spent waiting for batches so far (near zero when decoding keeps up).
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl Iterator for EpochBatches {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let receiver = self.receiver.as_ref()?;
        let start = Instant::now();
        let batch = receiver.recv().ok();
        self.waited += start.elapsed();
        batch
    }
}

impl Drop for EpochBatches {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Dropping the receiver wakes a producer blocked on a full channel.
        self.receiver = None;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// splitmix64 over the combined inputs: independent seeds per epoch and item.
fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn produce(
    shared: &Shared,
    epoch: u64,
    plan: Vec<Vec<usize>>,
    sender: &Sender<Batch>,
    stop: &AtomicBool,
) {
    let mut carried = Vec::new();
    for chunk in plan {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let (chunk, out_of_range): (Vec<usize>, Vec<usize>) =
            chunk.into_iter().partition(|&i| i < shared.items.len());
        let mut batch = shared
            .pool
            .install(|| assemble(shared, epoch, &chunk, stop));
        batch
            .skipped
            .extend(out_of_range.into_iter().map(|i| SkippedItem {
                id: format!("#{i}"),
                path: PathBuf::new(),
                reason: format!("item {i} is out of range ({} items)", shared.items.len()),
            }));
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if !batch.skipped.is_empty()
            && let Ok(mut log) = shared.skipped_log.lock()
        {
            log.extend(batch.skipped.iter().cloned());
        }
        // Skips of an all-failed batch travel with the next batch that has images.
        carried.append(&mut batch.skipped);
        if batch.is_empty() {
            continue;
        }
        batch.skipped = std::mem::take(&mut carried);
        if sender.send(batch).is_err() {
            break;
        }
    }
}

/// Decodes and transforms `indices` in parallel into one batch, leaving out failures.
fn assemble(shared: &Shared, epoch: u64, indices: &[usize], stop: &AtomicBool) -> Batch {
    let size = shared.config.size_px;
    let plane = (size * size) as usize;
    let n = indices.len();
    let mut images = vec![0.0f32; n * 3 * plane];
    let mut masks = data_targets(shared.config.task)
        .masks()
        .then(|| vec![0u8; n * plane]);
    let with_boxes = data_targets(shared.config.task).boxes();
    let mask_slots: Vec<Option<&mut [u8]>> = match masks.as_mut() {
        Some(m) => m.chunks_mut(plane).map(Some).collect(),
        None => (0..n).map(|_| None).collect(),
    };
    let jobs: Vec<_> = images
        .chunks_mut(3 * plane)
        .zip(mask_slots)
        .zip(indices)
        .collect();
    let results: Vec<Result<Prepared, SkippedItem>> = jobs
        .into_par_iter()
        .map(|((chw, mask), &index)| {
            if stop.load(Ordering::Relaxed) {
                return Ok(Prepared::default());
            }
            prepare(shared, epoch, index, chw, mask)
        })
        .collect();
    let mut boxes = with_boxes.then(Vec::new);
    let mut batch = Batch {
        size_px: size,
        ..Batch::default()
    };
    let mut kept = 0;
    for (slot, (result, &index)) in results.into_iter().zip(indices).enumerate() {
        let item = &shared.items[index];
        let prepared = match result {
            Ok(prepared) => prepared,
            Err(skipped) => {
                batch.skipped.push(skipped);
                continue;
            }
        };
        if let Some(list) = boxes.as_mut() {
            list.push(prepared.boxes.unwrap_or_default());
        }
        batch.original_px.push(prepared.original_px);
        if slot != kept {
            images.copy_within(slot * 3 * plane..(slot + 1) * 3 * plane, kept * 3 * plane);
            if let Some(m) = masks.as_mut() {
                m.copy_within(slot * plane..(slot + 1) * plane, kept * plane);
            }
        }
        kept += 1;
        batch.ids.push(item.id.clone());
        batch.labels.push(item.label);
    }
    images.truncate(kept * 3 * plane);
    if let Some(m) = masks.as_mut() {
        m.truncate(kept * plane);
    }
    batch.images = images;
    batch.masks = masks;
    batch.boxes = boxes;
    batch
}

/// What loading one item gives besides its pixels.
#[derive(Default)]
struct Prepared {
    /// Its boxes in input pixels, when it has boxes.
    boxes: Option<Vec<TargetBox>>,
    /// Its decoded size before any reduction.
    original_px: (u32, u32),
}

/// Loads (or fetches from the cache) one item and writes its transformed pixels.
fn prepare(
    shared: &Shared,
    epoch: u64,
    index: usize,
    chw: &mut [f32],
    mask: Option<&mut [u8]>,
) -> Result<Prepared, SkippedItem> {
    let item = &shared.items[index];
    let skipped = |reason: String| SkippedItem {
        id: item.id.clone(),
        path: item.path.clone(),
        reason,
    };
    let working = working_image(shared, item).map_err(|e| skipped(e.to_string()))?;
    let config = &shared.config;
    let (image, work_mask) = (&working.image, working.mask.as_ref());
    let work_boxes = item
        .boxes
        .as_ref()
        .map(|b| to_working(b, working.original_px, image.dimensions()));
    let out_boxes = match &config.transform {
        Transform::Train(augment) => {
            let mut rng = ChaCha8Rng::seed_from_u64(mix(config.seed, epoch, index as u64));
            let (w, h) = image.dimensions();
            let params = sample_params(augment, w, h, &mut rng);
            augment_into(image, work_mask, &params, &config.normalization, chw, mask)
                .map_err(|e| skipped(format!("{e}: {}", item.path.display())))?;
            work_boxes.map(|b| augment_boxes(&b, &params, config.size_px))
        }
        Transform::Eval | Transform::EvalResize => {
            let size = config.size_px;
            let (w, h) = image.dimensions();
            if w < size || h < size {
                return Err(skipped(format!(
                    "working image of {w}x{h} px is smaller than {size} px: {}",
                    item.path.display()
                )));
            }
            let view = Dihedral::default().view(size, w, (h - size) / 2, (w - size) / 2);
            write_chw(image, view, size, &plain_lut(&config.normalization), chw);
            if let (Some(src), Some(out)) = (work_mask, mask) {
                write_mask(src.as_raw(), view, size, out);
            }
            work_boxes.map(|b| centre_square_boxes(&b, (w, h), size))
        }
    };
    Ok(Prepared {
        boxes: out_boxes,
        original_px: working.original_px,
    })
}

fn working_image(
    shared: &Shared,
    item: &LoaderItem,
) -> Result<Arc<WorkingImage>, super::DataError> {
    let key = shared.cache.as_ref().map(|_| CacheKey {
        image: item.path.clone(),
        mask: item.mask_path.clone(),
        size: shared.working_size,
        window: shared.window_key.clone(),
    });
    if let (Some(cache), Some(key)) = (&shared.cache, &key)
        && let Some(hit) = cache.get(key)
    {
        return Ok(hit);
    }
    shared.decoded.fetch_add(1, Ordering::Relaxed);
    let working = Arc::new(load_working(
        &item.path,
        item.mask_path.as_deref(),
        shared.working_size,
        &shared.config.window,
        shared.config.mask_encoding,
    )?);
    if let (Some(cache), Some(key)) = (&shared.cache, key) {
        cache.insert(key, Arc::clone(&working));
    }
    Ok(working)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `count` small PNGs (one colour each) in a temp folder, every fifth one a JPEG.
    fn folder(count: usize) -> (tempfile::TempDir, Vec<LoaderItem>) {
        let dir = tempfile::tempdir().unwrap();
        let items = (0..count)
            .map(|i| {
                let ext = if i % 5 == 4 { "jpg" } else { "png" };
                let path = dir.path().join(format!("image {i}.{ext}"));
                let shade = (i * 20) as u8;
                image::RgbImage::from_fn(64, 48, |x, _| {
                    image::Rgb([shade, x as u8 * 4, 255 - shade])
                })
                .save(&path)
                .unwrap();
                LoaderItem {
                    id: format!("image {i}"),
                    path,
                    label: (i % 3) as i64,
                    mask_path: None,
                    boxes: None,
                }
            })
            .collect();
        (dir, items)
    }

    fn config(train: bool) -> LoaderConfig {
        let norm = Normalization::IMAGENET;
        let mut config = if train {
            LoaderConfig::train(
                32,
                4,
                norm,
                AugmentConfig {
                    vflip_prob: 0.5,
                    rotation_max_deg: 10.0,
                    ..Default::default()
                },
            )
        } else {
            LoaderConfig::eval(32, 4, norm)
        };
        config.threads = 2;
        config.seed = 7;
        config
    }

    #[test]
    fn batches_have_the_documented_shapes() {
        let (_dir, items) = folder(10);
        for train in [true, false] {
            let loader = BatchLoader::new(items.clone(), config(train), None).unwrap();
            assert_eq!(loader.batches_per_epoch(), 3);
            let batches: Vec<Batch> = loader.epoch(0).unwrap().collect();
            assert_eq!(
                batches.iter().map(Batch::len).collect::<Vec<_>>(),
                [4, 4, 2]
            );
            for batch in &batches {
                assert_eq!(batch.images.len(), batch.len() * 3 * 32 * 32);
                assert_eq!(batch.labels.len(), batch.len());
                assert!(batch.masks.is_none() && batch.skipped.is_empty());
                assert!(batch.images.iter().all(|v| v.is_finite() && v.abs() < 3.0));
            }
            let mut ids: Vec<String> = batches.iter().flat_map(|b| b.ids.clone()).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), 10);
        }
        let eval = BatchLoader::new(items.clone(), config(false), None).unwrap();
        let first = eval.epoch(0).unwrap().next().unwrap();
        assert_eq!(first.ids, ["image 0", "image 1", "image 2", "image 3"]);
        assert_eq!(first.labels, [0, 1, 2, 0]);
        // Image 0 has red 0: normalised red is -mean/std everywhere.
        let expected = -0.485 / 0.229;
        assert!(
            first.images[..32 * 32]
                .iter()
                .all(|v| (v - expected).abs() < 1e-4)
        );
    }

    #[test]
    fn a_seed_fixes_order_and_augmentation_and_the_cache_changes_neither() {
        let (_dir, items) = folder(9);
        let run = |cache: Option<Arc<ImageCache>>, epoch| {
            let loader = BatchLoader::new(items.clone(), config(true), cache).unwrap();
            loader.epoch(epoch).unwrap().collect::<Vec<Batch>>()
        };
        let first = run(None, 0);
        assert_eq!(first, run(None, 0));
        assert_eq!(first, run(Some(Arc::new(ImageCache::new(1 << 24))), 0));
        let next = run(None, 1);
        assert_ne!(
            first.iter().flat_map(|b| b.ids.clone()).collect::<Vec<_>>(),
            next.iter().flat_map(|b| b.ids.clone()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn cache_hits_avoid_decoding_and_the_byte_bound_holds() {
        let (_dir, items) = folder(8);
        let cache = Arc::new(ImageCache::new(1 << 24));
        let loader =
            BatchLoader::new(items.clone(), config(true), Some(Arc::clone(&cache))).unwrap();
        for epoch in 0..3 {
            assert_eq!(
                loader.epoch(epoch).unwrap().map(|b| b.len()).sum::<usize>(),
                8
            );
        }
        assert_eq!(loader.decoded_count(), 8);
        assert_eq!(cache.stats().hits, 16);

        // Working images are 64x48 RGB = 9216 bytes: room for three.
        let small = Arc::new(ImageCache::new(3 * 9216 + 100));
        let loader = BatchLoader::new(items, config(true), Some(Arc::clone(&small))).unwrap();
        for epoch in 0..2 {
            loader.epoch(epoch).unwrap().for_each(drop);
            let stats = small.stats();
            assert!(stats.used_bytes <= stats.capacity_bytes, "{stats:?}");
            assert_eq!(stats.entries, 3);
        }
        assert!(loader.decoded_count() > 8);
    }

    #[test]
    fn a_corrupt_file_is_skipped_and_named_while_the_epoch_goes_on() {
        let (dir, mut items) = folder(6);
        let broken = dir.path().join("broken scan.jpg");
        std::fs::write(&broken, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
        items.insert(
            2,
            LoaderItem {
                id: "broken".into(),
                path: broken,
                label: 1,
                mask_path: None,
                boxes: None,
            },
        );
        let loader = BatchLoader::new(items, config(false), None).unwrap();
        let batches: Vec<Batch> = loader.epoch(0).unwrap().collect();
        assert_eq!(batches.iter().map(Batch::len).sum::<usize>(), 6);
        assert_eq!(batches[0].len(), 3);
        assert_eq!(batches[0].images.len(), 3 * 3 * 32 * 32);
        assert_eq!(batches[0].ids, ["image 0", "image 1", "image 2"]);
        let skipped = loader.skipped();
        assert_eq!(skipped.len(), 1);
        assert_eq!(batches[0].skipped, skipped);
        assert!(
            skipped[0].reason.contains("broken scan.jpg"),
            "{}",
            skipped[0].reason
        );
    }

    #[test]
    fn dropping_the_iterator_stops_and_joins_the_producer() {
        let (_dir, items) = folder(40);
        let mut config = config(true);
        config.batch_size = 2;
        config.prefetch_batches = 1;
        let loader = BatchLoader::new(items, config, None).unwrap();
        let mut epoch = loader.epoch(0).unwrap();
        assert_eq!(epoch.next().map(|b| b.len()), Some(2));
        std::thread::sleep(Duration::from_millis(50)); // the producer now blocks on a full channel
        assert_eq!(loader.running_producers(), 1);
        drop(epoch);
        assert_eq!(loader.running_producers(), 0);
        let untouched = loader.epoch(1).unwrap();
        drop(untouched);
        assert_eq!(loader.running_producers(), 0);
    }

    #[test]
    fn segmentation_batches_carry_aligned_masks() {
        let dir = tempfile::tempdir().unwrap();
        let items: Vec<LoaderItem> = (0..3)
            .map(|i| {
                let path = dir.path().join(format!("cell {i}.png"));
                let mask_path = dir.path().join(format!("cell {i} mask.png"));
                // Left half bright and labelled 1, right half dark and labelled 0.
                image::RgbImage::from_fn(50, 40, |x, _| {
                    image::Rgb([if x < 25 { 255 } else { 0 }; 3])
                })
                .save(&path)
                .unwrap();
                image::GrayImage::from_fn(50, 40, |x, _| image::Luma([u8::from(x < 25)]))
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
        for train in [false, true] {
            let mut config = config(train);
            config.task = TaskKind::Segmentation;
            let loader = BatchLoader::new(items.clone(), config, None).unwrap();
            let batch = loader.epoch(0).unwrap().next().unwrap();
            let masks = batch.masks.as_ref().unwrap();
            assert_eq!(masks.len(), 3 * 32 * 32);
            let plane = 32 * 32;
            for (i, &label) in masks.iter().enumerate() {
                let (n, p) = (i / plane, i % plane);
                let red = batch.images[n * 3 * plane + p];
                // Away from the edge (and from rotated-in black corners, labelled 0).
                if red > 1.5 {
                    assert_eq!(label, 1, "train {train}, pixel {i}");
                } else if red < -1.5 && !train {
                    assert_eq!(label, 0, "pixel {i}");
                }
            }
            assert!(masks.contains(&1) && masks.contains(&0));
        }
        let mut missing = items;
        missing[1].mask_path = None;
        let mut seg = config(false);
        seg.task = TaskKind::Segmentation;
        assert!(matches!(
            BatchLoader::new(missing, seg, None),
            Err(LoaderError::Config(_))
        ));
    }

    #[test]
    fn batches_become_tensors_of_the_right_shape() {
        let batch = Batch {
            images: vec![0.5; 2 * 3 * 4 * 4],
            size_px: 4,
            labels: vec![1, 0],
            masks: Some(vec![1; 2 * 4 * 4]),
            boxes: Some(vec![
                vec![TargetBox {
                    bbox: crate::data::boxes::PixelBox {
                        x0: 1.0,
                        y0: 0.5,
                        x1: 3.0,
                        y1: 4.0,
                    },
                    class: 2,
                    crowd: true,
                }],
                Vec::new(),
            ]),
            original_px: vec![(4, 4); 2],
            ids: vec!["a".into(), "b".into()],
            skipped: Vec::new(),
        };
        let tensors = batch.to_tensors(tch::Device::Cpu).unwrap();
        assert_eq!(tensors.images.size(), [2, 3, 4, 4]);
        assert_eq!(tensors.labels.size(), [2]);
        let masks = tensors.masks.unwrap();
        assert_eq!(
            (masks.size(), masks.kind()),
            (vec![2, 4, 4], tch::Kind::Int64)
        );
        let boxes = tensors.boxes.unwrap();
        assert_eq!(boxes.size(), [2, 1, BOX_FIELDS as i64]);
        let values = Vec::<f32>::try_from(boxes.flatten(0, -1)).unwrap();
        assert_eq!(
            values,
            [1.0, 0.5, 3.0, 4.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
    }
}
