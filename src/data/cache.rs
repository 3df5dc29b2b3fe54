//! Decoding an image (and its mask) to the working size the loader augments from, and a
//! least-recently-used cache of such working images bounded in bytes.
//!
//! JPEGs (8-bit grey or RGB) are decoded here: with zune-jpeg (the image crate's decoder)
//! at full size, or, when at least twice the working size, at 1/2, 1/4 or 1/8 scale in the
//! DCT domain (jpeg-decoder's `scale`), which skips the resize that would follow. Grey JPEGs
//! stay grey. Every other file (and any JPEG these decoders refuse) goes through
//! [`crate::data::decode::load_rgb8`], which also words the error.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use image::codecs::jpeg::JpegDecoder;
use image::{
    DynamicImage, GenericImageView, GrayImage, ImageDecoder, RgbImage, metadata::Orientation,
};

use super::DataError;
use super::decode::{load_mask, load_mask_with, load_rgb8};
use super::mask::MaskEncoding;
use super::pixels::{Pixels, ResizeFailed, resize_mask};
use super::window::WindowSetting;

/// The size a decoded image is brought to before augmentation (and caching).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkingSize {
    /// Shorter side at least `px` where the file allows: images twice as large or more are
    /// reduced (JPEGs while decoding) so the shorter side ends in `[px, 2 px)`; smaller ones
    /// are kept as they are.
    AtLeast(u32),
    /// Shorter side exactly `px`, aspect ratio kept.
    ShorterSide(u32),
    /// Exactly `width` x `height`.
    Exact(u32, u32),
}

impl WorkingSize {
    /// The shorter side a scaled decode must reach.
    fn min_short_side(self) -> u32 {
        match self {
            WorkingSize::AtLeast(px) | WorkingSize::ShorterSide(px) => px,
            WorkingSize::Exact(w, h) => w.max(h),
        }
    }

    /// The final size for a decoded `width` x `height`, or `None` to keep it.
    fn target(self, width: u32, height: u32) -> Option<(u32, u32)> {
        let short = width.min(height).max(1);
        let scaled = |px: u32| {
            let f = f64::from(px) / f64::from(short);
            let w = ((f64::from(width) * f).round() as u32).max(1);
            let h = ((f64::from(height) * f).round() as u32).max(1);
            (w, h)
        };
        let target = match self {
            WorkingSize::AtLeast(px) if short >= px.saturating_mul(2) => scaled(px),
            WorkingSize::AtLeast(_) => return None,
            WorkingSize::ShorterSide(px) => scaled(px),
            WorkingSize::Exact(w, h) => (w, h),
        };
        (target != (width, height)).then_some(target)
    }
}

/// A decoded image at working size and, for segmentation, its mask at the same size.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkingImage {
    pub image: Pixels,
    pub mask: Option<GrayImage>,
    /// The decoded file's size before any reduction (boxes are scaled by working/original).
    pub original_px: (u32, u32),
}

impl WorkingImage {
    /// Memory held by the pixels.
    pub fn bytes(&self) -> usize {
        self.image.as_raw().len() + self.mask.as_ref().map_or(0, |m| m.as_raw().len())
    }
}

/// Decodes `image_path` (and `mask_path`) to `size`, applying `window` to 16-bit/DICOM data.
/// Grey images stay grey. A mask must have its image's size; it is resized with
/// nearest-neighbour sampling.
pub fn load_working(
    image_path: &Path,
    mask_path: Option<&Path>,
    size: WorkingSize,
    window: &WindowSetting,
    mask_encoding: Option<MaskEncoding>,
) -> Result<WorkingImage, DataError> {
    let (mut image, full_size) = match decode_jpeg(image_path, size.min_short_side()) {
        Some(decoded) => decoded,
        None => {
            let image = load_rgb8(image_path, window)?;
            let dims = image.dimensions();
            (grey_if_possible(image), dims)
        }
    };
    let resize_err = |path: &Path, e: ResizeFailed| DataError::Decode {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let (width, height) = image.dimensions();
    if let Some((w, h)) = size.target(width, height) {
        image = image
            .resized(None, w, h)
            .map_err(|e| resize_err(image_path, e))?;
    }
    let mask = match mask_path {
        None => None,
        Some(path) => {
            let mask = match mask_encoding {
                Some(encoding) => load_mask_with(path, encoding)?,
                None => load_mask(path)?,
            };
            if mask.dimensions() != full_size {
                return Err(DataError::Decode {
                    path: path.to_owned(),
                    reason: format!(
                        "the mask is {}x{} px but its image is {}x{} px",
                        mask.width(),
                        mask.height(),
                        full_size.0,
                        full_size.1
                    ),
                });
            }
            let (w, h) = image.dimensions();
            Some(if mask.dimensions() == (w, h) {
                mask
            } else {
                resize_mask(&mask, None, w, h).map_err(|e| resize_err(path, e))?
            })
        }
    };
    Ok(WorkingImage {
        image,
        mask,
        original_px: full_size,
    })
}

/// Keeps an RGB image whose channels are all equal as one grey channel.
fn grey_if_possible(image: RgbImage) -> Pixels {
    let grey = image
        .as_raw()
        .chunks_exact(3)
        .all(|p| p[0] == p[1] && p[1] == p[2]);
    if !grey {
        return Pixels::Rgb(image);
    }
    let (w, h) = image.dimensions();
    let values = image.as_raw().iter().step_by(3).copied().collect();
    GrayImage::from_raw(w, h, values).map_or(Pixels::Rgb(image), Pixels::Gray)
}

/// Decodes an 8-bit grey or RGB JPEG, honouring EXIF orientation; returns the image and its
/// full-resolution (oriented) size. A JPEG at least twice the needed size is decoded at
/// 1/2, 1/4 or 1/8 scale in the DCT domain. `None` for anything else or any failure, so the
/// caller falls back to the general decoder (which words the error).
fn decode_jpeg(path: &Path, min_short: u32) -> Option<(Pixels, (u32, u32))> {
    let bytes = std::fs::read(path).ok()?;
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return None;
    }
    // Neither decoder is expected to panic on bad input; if one does, fall back all the same.
    std::panic::catch_unwind(|| {
        decode_jpeg_scaled(&bytes, min_short).or_else(|| decode_jpeg_full(&bytes))
    })
    .ok()
    .flatten()
}

fn decode_jpeg_full(bytes: &[u8]) -> Option<(Pixels, (u32, u32))> {
    let mut decoder = JpegDecoder::new(std::io::Cursor::new(bytes)).ok()?;
    let orientation = decoder.orientation().ok()?;
    let image = DynamicImage::from_decoder(decoder).ok()?;
    let full = oriented(image.dimensions(), orientation);
    Some((orient(image, orientation)?, full))
}

/// jpeg-decoder's scaled decoding, used where the image is at least twice the needed size: at
/// 1/2 scale it is as fast as the full decode above and saves the resize that would follow;
/// at full scale it is slower, so it is not used there.
fn decode_jpeg_scaled(bytes: &[u8], min_short: u32) -> Option<(Pixels, (u32, u32))> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    let (full_w, full_h) = (u32::from(info.width), u32::from(info.height));
    let short = full_w.min(full_h).max(1);
    if short / 2 < min_short.max(1) {
        return None;
    }
    let f = f64::from(min_short) / f64::from(short);
    let request =
        |len: u32| ((f64::from(len) * f).ceil() as u32).clamp(1, u32::from(u16::MAX)) as u16;
    decoder.scale(request(full_w), request(full_h)).ok()?;
    let pixels = decoder.decode().ok()?;
    let info = decoder.info()?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    let image = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => {
            DynamicImage::ImageLuma8(GrayImage::from_raw(w, h, pixels)?)
        }
        jpeg_decoder::PixelFormat::RGB24 => {
            DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, pixels)?)
        }
        _ => return None,
    };
    let orientation = decoder
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    Some((
        orient(image, orientation)?,
        oriented((full_w, full_h), orientation),
    ))
}

fn orient(mut image: DynamicImage, orientation: Orientation) -> Option<Pixels> {
    image.apply_orientation(orientation);
    match image {
        DynamicImage::ImageLuma8(grey) => Some(Pixels::Gray(grey)),
        DynamicImage::ImageRgb8(rgb) => Some(Pixels::Rgb(rgb)),
        _ => None,
    }
}

fn oriented((w, h): (u32, u32), orientation: Orientation) -> (u32, u32) {
    match orientation {
        Orientation::Rotate90
        | Orientation::Rotate270
        | Orientation::Rotate90FlipH
        | Orientation::Rotate270FlipH => (h, w),
        _ => (w, h),
    }
}

/// What identifies a cached working image.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub image: PathBuf,
    pub mask: Option<PathBuf>,
    pub size: WorkingSize,
    /// The window setting in words (it changes 16-bit and DICOM pixels).
    pub window: String,
}

/// Counters of a cache's use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: usize,
    pub used_bytes: usize,
    pub capacity_bytes: usize,
}

#[derive(Default)]
struct CacheState {
    entries: HashMap<CacheKey, (Arc<WorkingImage>, u64)>,
    /// Last-use tick → key, oldest first.
    order: BTreeMap<u64, CacheKey>,
    used_bytes: usize,
    tick: u64,
}

/// Working images kept between epochs, least recently used evicted first; never holds more
/// than `capacity_bytes` of pixels. Shared between loaders (and threads) through an `Arc`.
pub struct ImageCache {
    capacity_bytes: usize,
    state: Mutex<CacheState>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl ImageCache {
    /// An empty cache holding at most `capacity_bytes` of pixels.
    pub fn new(capacity_bytes: usize) -> Self {
        Self {
            capacity_bytes,
            state: Mutex::new(CacheState::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CacheState> {
        // The state stays consistent even if a holder panicked: every update is complete.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached image for `key`, marking it recently used.
    pub fn get(&self, key: &CacheKey) -> Option<Arc<WorkingImage>> {
        let mut state = self.lock();
        state.tick += 1;
        let tick = state.tick;
        let found = state.entries.get_mut(key).map(|(image, last)| {
            let old = std::mem::replace(last, tick);
            (Arc::clone(image), old)
        });
        match found {
            Some((image, old)) => {
                state.order.remove(&old);
                state.order.insert(tick, key.clone());
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(image)
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Stores `image` under `key`, evicting the least recently used entries to stay within
    /// the capacity; an image larger than the whole capacity is not stored.
    pub fn insert(&self, key: CacheKey, image: Arc<WorkingImage>) {
        let bytes = image.bytes();
        if bytes > self.capacity_bytes {
            return;
        }
        let mut state = self.lock();
        if let Some((old, last)) = state.entries.remove(&key) {
            state.used_bytes -= old.bytes();
            state.order.remove(&last);
        }
        while state.used_bytes + bytes > self.capacity_bytes {
            let Some((_, oldest)) = state.order.pop_first() else {
                break;
            };
            if let Some((evicted, _)) = state.entries.remove(&oldest) {
                state.used_bytes -= evicted.bytes();
            }
        }
        state.tick += 1;
        let tick = state.tick;
        state.order.insert(tick, key.clone());
        state.entries.insert(key, (image, tick));
        state.used_bytes += bytes;
    }

    /// Current use and counters.
    pub fn stats(&self) -> CacheStats {
        let state = self.lock();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: state.entries.len(),
            used_bytes: state.used_bytes,
            capacity_bytes: self.capacity_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn working(side: u32) -> Arc<WorkingImage> {
        Arc::new(WorkingImage {
            image: Pixels::Rgb(RgbImage::new(side, side)),
            mask: None,
            original_px: (side, side),
        })
    }

    fn key(name: &str) -> CacheKey {
        CacheKey {
            image: name.into(),
            mask: None,
            size: WorkingSize::AtLeast(8),
            window: String::new(),
        }
    }

    #[test]
    fn cache_stays_within_its_byte_budget_and_evicts_the_least_recent() {
        let cache = ImageCache::new(1000); // 3 images of 10x10x3 = 300 bytes
        for name in ["a", "b", "c"] {
            cache.insert(key(name), working(10));
        }
        assert!(cache.get(&key("a")).is_some()); // "b" is now the oldest
        cache.insert(key("d"), working(10));
        assert!(cache.get(&key("b")).is_none());
        assert!(cache.get(&key("a")).is_some() && cache.get(&key("d")).is_some());
        cache.insert(key("huge"), working(100));
        assert!(cache.get(&key("huge")).is_none());
        let stats = cache.stats();
        assert!(stats.used_bytes <= 1000 && stats.entries == 3, "{stats:?}");
        assert_eq!((stats.hits, stats.misses), (3, 2));
    }

    #[test]
    fn working_sizes_keep_or_reduce_as_documented() {
        assert_eq!(WorkingSize::AtLeast(100).target(300, 199), None);
        assert_eq!(WorkingSize::AtLeast(100).target(300, 200), Some((150, 100)));
        assert_eq!(
            WorkingSize::ShorterSide(256).target(400, 300),
            Some((341, 256))
        );
        assert_eq!(WorkingSize::Exact(32, 32).target(32, 32), None);
    }

    #[test]
    fn large_jpegs_decode_at_reduced_scale_with_their_full_size_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big photo.jpg");
        let image = RgbImage::from_fn(800, 600, |x, y| {
            image::Rgb([(x / 4) as u8, (y / 4) as u8, 90])
        });
        image.save(&path).unwrap();
        let (scaled, full) = decode_jpeg(&path, 140).unwrap();
        assert_eq!(full, (800, 600));
        assert_eq!(scaled.dimensions(), (200, 150));
        let pixel = scaled.to_rgb8().get_pixel(100, 50).0;
        assert!(
            (i32::from(pixel[0]) - 100).abs() <= 4 && (i32::from(pixel[1]) - 50).abs() <= 4,
            "{pixel:?}"
        );
        let loaded = load_working(
            &path,
            None,
            WorkingSize::ShorterSide(120),
            &WindowSetting::Auto,
            None,
        )
        .unwrap();
        assert_eq!(loaded.image.dimensions(), (160, 120));
        // Below twice the needed size the full decoder runs; grey stays grey.
        let grey_path = dir.path().join("grey.jpg");
        image::GrayImage::from_fn(300, 200, |x, _| image::Luma([x as u8]))
            .save(&grey_path)
            .unwrap();
        let (grey, full) = decode_jpeg(&grey_path, 120).unwrap();
        assert_eq!(
            (grey.channels(), grey.dimensions(), full),
            (1, (300, 200), (300, 200))
        );
    }

    #[test]
    fn exif_orientation_is_honoured_by_both_jpeg_paths() {
        use image::ImageEncoder;
        // A TIFF block holding one entry: orientation 6 (rotate 90 degrees clockwise).
        let exif = [
            0x49, 0x49, 0x2A, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0,
            0, 0,
        ];
        let dir = tempfile::tempdir().unwrap();
        for (width, min_short) in [(64u32, 32u32), (256, 30)] {
            let height = width / 2;
            // Left half white: after the quarter turn it is the top half.
            let image = GrayImage::from_fn(width, height, |x, _| {
                image::Luma([if x < width / 2 { 255 } else { 0 }])
            });
            let path = dir.path().join(format!("rotated {width}.jpg"));
            let mut file = std::fs::File::create(&path).unwrap();
            let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut file, 95);
            encoder.set_exif_metadata(exif.to_vec()).unwrap();
            encoder
                .write_image(image.as_raw(), width, height, image::ExtendedColorType::L8)
                .unwrap();
            drop(file);
            let (decoded, full) = decode_jpeg(&path, min_short).unwrap();
            assert_eq!(full, (height, width));
            let (w, h) = decoded.dimensions();
            assert_eq!(w * 2, h, "{width}: {w}x{h}");
            let rgb = decoded.to_rgb8();
            assert!(
                rgb.get_pixel(w / 2, h / 8).0[0] > 200 && rgb.get_pixel(w / 2, h * 7 / 8).0[0] < 50
            );
        }
    }

    #[test]
    fn a_mask_of_the_wrong_size_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let image_path = dir.path().join("cell.png");
        let mask_path = dir.path().join("cell mask.png");
        RgbImage::new(40, 30).save(&image_path).unwrap();
        GrayImage::new(30, 40).save(&mask_path).unwrap();
        let err = load_working(
            &image_path,
            Some(&mask_path),
            WorkingSize::Exact(16, 16),
            &WindowSetting::Auto,
            None,
        )
        .unwrap_err();
        assert!(err.to_string().ends_with("cell mask.png"), "{err}");
    }
}
