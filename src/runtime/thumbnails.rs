//! The texture cache of the Dataset view: it owns every thumbnail and preview texture,
//! remembers which ones the last frame wanted, and evicts the least recently used beyond
//! its capacity. Pixels are made on worker threads ([`render_job`]); textures are created
//! here, on the UI thread, from the `egui::ColorImage`s the workers send.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use crate::data::mask::MaskEncoding;
use crate::data::thumbnail;
use crate::data::window::WindowSetting;

/// Thumbnails kept before the least recently used are dropped.
pub const DEFAULT_CAPACITY: usize = 800;

/// How large an image is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ThumbnailSize {
    /// A grid tile.
    Tile,
    /// The selected image's preview (with its mask overlay).
    Preview,
}

impl ThumbnailSize {
    /// The longest side rendered, in pixels.
    pub fn max_side_px(self) -> u32 {
        match self {
            ThumbnailSize::Tile => 96,
            ThumbnailSize::Preview => 512,
        }
    }
}

/// One image to render: its absolute path, its mask (previews of segmentation data).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ThumbnailKey {
    /// The image file.
    pub image: PathBuf,
    /// The mask file, drawn as an overlay.
    pub mask: Option<PathBuf>,
    /// Tile or preview.
    pub size: ThumbnailSize,
}

/// A render request for a worker.
#[derive(Clone, Debug)]
pub struct ThumbnailJob {
    /// What to render.
    pub key: ThumbnailKey,
    /// The cache's epoch when asked (results of older epochs are dropped).
    pub epoch: u64,
    /// The intensity window for 16-bit and DICOM data.
    pub window: WindowSetting,
    /// The data set's mask encoding.
    pub mask_encoding: Option<MaskEncoding>,
}

/// The pixels of a rendered image, made on a worker.
#[derive(Clone, Debug)]
pub struct ThumbnailPixels {
    /// The image.
    pub image: egui::ColorImage,
    /// Mask regions, coloured by class.
    pub fill: Option<egui::ColorImage>,
    /// Mask borders, coloured by class.
    pub outline: Option<egui::ColorImage>,
    /// The file's own size.
    pub size_px: (u32, u32),
    /// Smallest and largest stored value.
    pub value_range: Option<(f32, f32)>,
    /// Whether the window changes this image.
    pub windowed: bool,
}

/// A finished render.
#[derive(Debug)]
pub struct ThumbnailDone {
    /// What was rendered.
    pub key: ThumbnailKey,
    /// The epoch of its job.
    pub epoch: u64,
    /// The pixels, or why the file could not be shown.
    pub result: Result<ThumbnailPixels, String>,
}

/// Renders one job (runs on a worker thread).
pub fn render_job(job: &ThumbnailJob) -> ThumbnailDone {
    let key = &job.key;
    let result = thumbnail::render(&key.image, &job.window, key.size.max_side_px())
        .map_err(|e| e.to_string())
        .and_then(|rendered| {
            let (width, height) = rendered.image.dimensions();
            let overlay = match &key.mask {
                Some(mask) => Some(
                    thumbnail::mask_overlay(mask, job.mask_encoding, width, height)
                        .map_err(|e| e.to_string())?,
                ),
                None => None,
            };
            let rgba = |image: &image::RgbaImage| {
                let size = [image.width() as usize, image.height() as usize];
                egui::ColorImage::from_rgba_unmultiplied(size, image.as_raw())
            };
            let size = [width as usize, height as usize];
            Ok(ThumbnailPixels {
                image: egui::ColorImage::from_rgb(size, rendered.image.as_raw()),
                fill: overlay.as_ref().map(|o| rgba(&o.fill)),
                outline: overlay.as_ref().map(|o| rgba(&o.outline)),
                size_px: rendered.size_px,
                value_range: rendered.value_range,
                windowed: rendered.windowed,
            })
        });
    ThumbnailDone {
        key: key.clone(),
        epoch: job.epoch,
        result,
    }
}

/// Textures of one rendered image.
pub struct Thumbnail {
    /// The image.
    pub texture: egui::TextureHandle,
    /// Mask regions (segmentation previews).
    pub fill: Option<egui::TextureHandle>,
    /// Mask borders (segmentation previews).
    pub outline: Option<egui::TextureHandle>,
    /// The file's own size.
    pub size_px: (u32, u32),
    /// Smallest and largest stored value.
    pub value_range: Option<(f32, f32)>,
    /// Whether the window changes this image.
    pub windowed: bool,
}

struct Slot {
    content: Result<Thumbnail, String>,
    last_used_frame: u64,
}

/// Owns the thumbnail textures; the view asks, the app dispatches what is missing.
pub struct ThumbnailCache {
    slots: HashMap<ThumbnailKey, Slot>,
    pending: HashSet<ThumbnailKey>,
    wanted: Vec<ThumbnailKey>,
    epoch: u64,
    window: WindowSetting,
    mask_encoding: Option<MaskEncoding>,
    frame: u64,
    capacity: usize,
}

impl Default for ThumbnailCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl ThumbnailCache {
    /// An empty cache keeping at most `capacity` images.
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: HashMap::new(),
            pending: HashSet::new(),
            wanted: Vec::new(),
            epoch: 0,
            window: WindowSetting::Auto,
            mask_encoding: None,
            frame: 0,
            capacity: capacity.max(16),
        }
    }

    /// Starts a frame: forgets what the previous frame wanted.
    pub fn begin_frame(&mut self) {
        self.frame += 1;
        self.wanted.clear();
    }

    /// Renders with this window and mask encoding from now on; a change drops every image.
    pub fn set_rendering(&mut self, window: &WindowSetting, mask_encoding: Option<MaskEncoding>) {
        if &self.window != window || self.mask_encoding != mask_encoding {
            self.window = window.clone();
            self.mask_encoding = mask_encoding;
            self.epoch += 1;
            self.slots.clear();
            self.pending.clear();
        }
    }

    /// The image for `key` if rendered (or why it failed); otherwise it is asked for.
    pub fn get(&mut self, key: &ThumbnailKey) -> Option<Result<&Thumbnail, &str>> {
        match self.slots.get_mut(key) {
            Some(slot) => {
                slot.last_used_frame = self.frame;
                Some(slot.content.as_ref().map_err(String::as_str))
            }
            None => {
                if !self.pending.contains(key) && !self.wanted.contains(key) {
                    self.wanted.push(key.clone());
                }
                None
            }
        }
    }

    /// Whether images are being rendered or waiting to be.
    pub fn is_busy(&self) -> bool {
        !self.pending.is_empty() || !self.wanted.is_empty()
    }

    /// Hands the wanted images to `send` (which returns false when the workers are full;
    /// those are asked for again next frame).
    pub fn dispatch(&mut self, mut send: impl FnMut(ThumbnailJob) -> bool) {
        for key in std::mem::take(&mut self.wanted) {
            let job = ThumbnailJob {
                key: key.clone(),
                epoch: self.epoch,
                window: self.window.clone(),
                mask_encoding: self.mask_encoding,
            };
            if send(job) {
                self.pending.insert(key);
            }
        }
    }

    /// Stores a finished render as textures (on the UI thread).
    pub fn insert(&mut self, ctx: &egui::Context, done: ThumbnailDone) {
        if done.epoch != self.epoch {
            return;
        }
        self.pending.remove(&done.key);
        let name = done.key.image.display().to_string();
        let options = egui::TextureOptions::LINEAR;
        let content = done.result.map(|pixels| Thumbnail {
            texture: ctx.load_texture(&name, pixels.image, options),
            fill: pixels
                .fill
                .map(|image| ctx.load_texture(format!("{name} mask"), image, options)),
            outline: pixels
                .outline
                .map(|image| ctx.load_texture(format!("{name} outline"), image, options)),
            size_px: pixels.size_px,
            value_range: pixels.value_range,
            windowed: pixels.windowed,
        });
        self.slots.insert(
            done.key,
            Slot {
                content,
                last_used_frame: self.frame,
            },
        );
        self.evict();
    }

    /// Images held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no image is held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Drops the least recently used images beyond the capacity (an eighth more at once,
    /// so eviction does not run on every insert).
    fn evict(&mut self) {
        if self.slots.len() <= self.capacity {
            return;
        }
        let mut ages: Vec<u64> = self.slots.values().map(|s| s.last_used_frame).collect();
        ages.sort_unstable();
        let excess = (self.slots.len() - self.capacity + self.capacity / 8).min(ages.len());
        let newest_dropped = ages[excess.saturating_sub(1)];
        let frame = self.frame;
        // Never drop what this frame shows.
        self.slots
            .retain(|_, s| s.last_used_frame > newest_dropped || s.last_used_frame == frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> ThumbnailKey {
        ThumbnailKey {
            image: PathBuf::from(format!("{i}.png")),
            mask: None,
            size: ThumbnailSize::Tile,
        }
    }

    fn done(i: usize, epoch: u64) -> ThumbnailDone {
        ThumbnailDone {
            key: key(i),
            epoch,
            result: Ok(ThumbnailPixels {
                image: egui::ColorImage::filled([2, 2], egui::Color32::RED),
                fill: None,
                outline: None,
                size_px: (2, 2),
                value_range: None,
                windowed: false,
            }),
        }
    }

    #[test]
    fn asks_once_keeps_the_recent_and_drops_stale_epochs() {
        let ctx = egui::Context::default();
        let mut cache = ThumbnailCache::new(16);
        for frame in 0..40 {
            cache.begin_frame();
            assert!(cache.get(&key(frame)).is_none());
            assert!(cache.get(&key(frame)).is_none());
            let mut sent = Vec::new();
            cache.dispatch(|job| {
                sent.push(job);
                true
            });
            assert_eq!(sent.len(), 1, "each key is asked for once");
            cache.insert(&ctx, done(frame, sent[0].epoch));
        }
        assert!(cache.len() <= 16);
        assert!(cache.get(&key(39)).is_some(), "the newest stays");
        assert!(cache.get(&key(0)).is_none(), "the oldest went");
        cache.set_rendering(
            &WindowSetting::Percentiles {
                low: 1.0,
                high: 99.0,
            },
            None,
        );
        assert!(cache.is_empty());
        cache.insert(&ctx, done(1, 0));
        assert!(cache.is_empty(), "a render for the old window is dropped");
    }
}
