//! A quick look at a folder before it becomes a project (the New-project dialog): its layout,
//! the task it suggests, its classes with their image counts, the problems found by listing,
//! the typical image size (from a few decoded samples) and the input size that fits it.
//! Lists files without opening them, except the samples.

use std::collections::BTreeMap;
use std::path::Path;

use super::DataError;
use serde::{Deserialize, Serialize};

use super::decode::{Decoded, decode_bytes, read_bytes};
use super::detection::DetectionFormat;
use super::source::{DatasetSource, Listing};
use super::targets::{Evidence, data_targets, detect_task};
use crate::task::TaskKind;

/// Images decoded to estimate the typical size.
const SIZE_SAMPLES: usize = 12;

/// The input sizes proposed, smallest first.
pub const INPUT_SIZES: [u32; 7] = [32, 64, 96, 128, 160, 192, 224];

/// What a data folder holds, as far as listing tells.
#[derive(Clone, Debug, PartialEq)]
pub struct FolderPreview {
    /// The layout in words ("class folders in /data/pets").
    pub layout: String,
    /// The task the layout suggests.
    pub task: TaskKind,
    /// Image files listed.
    pub images: usize,
    /// Images per class (classification), by class name.
    pub classes: BTreeMap<String, usize>,
    /// Problems seen while listing (unreadable folders, masks without images, ...): their
    /// count and the first few in words.
    pub problems: (usize, Vec<String>),
    /// The median width and height of the sampled images, when any decoded.
    pub typical_size_px: Option<(u32, u32)>,
    /// Whether most sampled images are in colour (`None`: none could be decoded).
    pub colour: Option<bool>,
    /// The input size that fits the images (see [`proposed_input_size`]).
    pub proposed_input_px: u32,
    /// A detection layout's annotations, as listed (before the scan's checks).
    pub detection: Option<DetectionPreview>,
}

/// What a project's creation saw of its images (stored in `project.ron`; the training
/// defaults follow it, see `crate::train::data_defaults`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataProfile {
    /// Image files listed.
    pub images: usize,
    /// The median width and height of the sampled images.
    pub typical_size_px: Option<(u32, u32)>,
    /// Whether most sampled images are in colour.
    pub colour: Option<bool>,
}

impl FolderPreview {
    /// The facts the training defaults follow.
    pub fn profile(&self) -> DataProfile {
        DataProfile {
            images: self.images,
            typical_size_px: self.typical_size_px,
            colour: self.colour,
        }
    }
}

/// What a detection layout's annotation files hold.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectionPreview {
    /// The annotation format.
    pub format: DetectionFormat,
    /// Per class, in the file's order: its name and its number of boxes.
    pub classes: Vec<(String, usize)>,
    /// Listed images without any box.
    pub images_without_boxes: usize,
}

impl DetectionPreview {
    fn of(format: DetectionFormat, listing: &Listing) -> Self {
        let mut classes: Vec<(String, usize)> = listing
            .folder_classes
            .iter()
            .map(|c| (c.clone(), 0))
            .collect();
        let mut images_without_boxes = 0;
        for candidate in &listing.candidates {
            let boxes = candidate.boxes.as_deref().unwrap_or_default();
            if boxes.is_empty() {
                images_without_boxes += 1;
            }
            for b in boxes {
                if let Some((_, n)) = classes.get_mut(b.class) {
                    *n += 1;
                }
            }
        }
        Self {
            format,
            classes,
            images_without_boxes,
        }
    }

    /// The preview in words: "Pascal VOC XML: 951 boxes of 3 classes (Alive 9, Dead 28, Tree
    /// 914); 0 images without boxes".
    pub fn describe(&self) -> String {
        let total: usize = self.classes.iter().map(|(_, n)| n).sum();
        let shown: Vec<String> = self
            .classes
            .iter()
            .take(12)
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        let more = if self.classes.len() > 12 { ", ..." } else { "" };
        format!(
            "{}: {total} boxes of {} classes ({}{more}); {} images without boxes",
            self.format.label(),
            self.classes.len(),
            shown.join(", "),
            self.images_without_boxes
        )
    }
}

impl FolderPreview {
    /// Why a project of this data could not train, if it could not: no images, or fewer
    /// than two classes for a task labelled by class.
    pub fn refusal(&self) -> Option<String> {
        if self.images == 0 {
            return Some(format!("{} holds no images", self.layout));
        }
        let named = self.classes.values().filter(|&&n| n > 0).count();
        if data_targets(self.task).class_labels() && named < 2 {
            return Some(format!(
                "{} needs at least two classes with images; {} has {named}",
                self.task.label(),
                self.layout
            ));
        }
        None
    }
}

/// Looks at the data folder (or manifest) at `path`.
pub fn preview_folder(path: &Path) -> Result<FolderPreview, DataError> {
    if !path.exists() {
        return Err(DataError::Source {
            path: path.to_owned(),
            reason: "the folder does not exist".to_owned(),
        });
    }
    let source = DatasetSource::detect(path)?;
    let listing = source.list()?;
    let evidence = Evidence::of_listing(&source, &listing.candidates);
    let task = detect_task(&evidence);
    let mut classes: BTreeMap<String, usize> = listing
        .folder_classes
        .iter()
        .map(|c| (c.clone(), 0))
        .collect();
    if data_targets(task).class_labels() {
        for label in listing.candidates.iter().filter_map(|c| c.label.as_ref()) {
            *classes.entry(label.clone()).or_default() += 1;
        }
    } else {
        classes.clear();
    }
    let detection = source
        .detection_format()
        .map(|format| DetectionPreview::of(format, &listing));
    let root = source.root();
    let candidates = &listing.candidates;
    let step = (candidates.len() / SIZE_SAMPLES).max(1);
    let samples: Vec<((u32, u32), bool)> = candidates
        .iter()
        .step_by(step)
        .take(SIZE_SAMPLES)
        .filter_map(|c| {
            let path = root.join(&c.path);
            let bytes = read_bytes(&path).ok()?;
            decode_bytes(&bytes, &path)
                .ok()
                .map(|d| (d.dimensions(), is_colour(&d)))
        })
        .collect();
    let mut sizes: Vec<(u32, u32)> = samples.iter().map(|(size, _)| *size).collect();
    let typical_size_px = median_size(&mut sizes);
    let colour = (!samples.is_empty())
        .then(|| 2 * samples.iter().filter(|(_, c)| *c).count() > samples.len());
    Ok(FolderPreview {
        layout: source.describe(),
        task,
        images: candidates.len(),
        classes,
        problems: (
            listing.issues.len(),
            listing
                .issues
                .iter()
                .take(3)
                .map(|i| format!("{}: {}", i.path.display(), i.message))
                .collect(),
        ),
        typical_size_px,
        colour,
        proposed_input_px: proposed_input_size(typical_size_px),
        detection,
    })
}

/// Whether an image shows colour: its channels differ by more than a few levels on average
/// over a grid of up to 32 x 32 pixels (an RGB file of a grey scan is grey).
fn is_colour(decoded: &Decoded) -> bool {
    let Decoded::Image(image) = decoded else {
        return false;
    };
    if !image.color().has_color() {
        return false;
    }
    let rgb = image.to_rgb8();
    let (w, h) = rgb.dimensions();
    let (sx, sy) = ((w / 32).max(1), (h / 32).max(1));
    let (mut spread, mut n) = (0u64, 0u64);
    for y in (0..h).step_by(sy as usize) {
        for x in (0..w).step_by(sx as usize) {
            let [r, g, b] = rgb.get_pixel(x, y).0;
            let (max, min) = (r.max(g).max(b), r.min(g).min(b));
            spread += u64::from(max - min);
            n += 1;
        }
    }
    n > 0 && spread > 4 * n
}

fn median_size(sizes: &mut [(u32, u32)]) -> Option<(u32, u32)> {
    if sizes.is_empty() {
        return None;
    }
    sizes.sort_by_key(|(w, h)| u64::from(*w) * u64::from(*h));
    Some(sizes[sizes.len() / 2])
}

/// The input size for images of `typical` size: the smallest of [`INPUT_SIZES`] that does
/// not shrink their shorter side, at most 224 px (ImageNet's size, which pretrained
/// backbones expect and which larger images are resized to); 224 when unknown. Upsampling a
/// 28 px digit to 224 px costs 64 times the compute and adds no detail.
pub fn proposed_input_size(typical: Option<(u32, u32)>) -> u32 {
    let Some((w, h)) = typical else {
        return 224;
    };
    let shorter = w.min(h);
    INPUT_SIZES
        .into_iter()
        .find(|&s| s >= shorter)
        .unwrap_or(224)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_class(root: &Path, class: &str, n: usize, side: u32) {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..n {
            image::RgbImage::new(side, side)
                .save(root.join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }

    #[test]
    fn colour_is_told_from_grey_stored_as_rgb() {
        let grey = image::RgbImage::from_fn(40, 30, |x, _| image::Rgb([x as u8 * 6; 3]));
        assert!(!is_colour(&Decoded::Image(grey.into())));
        let colour =
            image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 128]));
        assert!(is_colour(&Decoded::Image(colour.into())));
        let luma = image::GrayImage::from_pixel(8, 8, image::Luma([200]));
        assert!(!is_colour(&Decoded::Image(luma.into())));
    }

    #[test]
    fn previews_classes_sizes_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        write_class(dir.path(), "cats", 3, 28);
        write_class(dir.path(), "dogs", 2, 28);
        let preview = preview_folder(dir.path()).unwrap();
        assert_eq!(preview.task, TaskKind::Classification);
        assert_eq!(preview.images, 5);
        assert_eq!(preview.classes["cats"], 3);
        assert_eq!(preview.classes["dogs"], 2);
        assert_eq!(preview.typical_size_px, Some((28, 28)));
        assert_eq!(preview.proposed_input_px, 32);
        assert_eq!(preview.colour, Some(false));
        assert_eq!(preview.refusal(), None);

        let one = tempfile::tempdir().unwrap();
        write_class(one.path(), "cats", 2, 300);
        let preview = preview_folder(one.path()).unwrap();
        assert_eq!(preview.proposed_input_px, 224);
        assert!(preview.refusal().unwrap().contains("at least two classes"));

        let empty = tempfile::tempdir().unwrap();
        let err = preview_folder(empty.path()).unwrap_err().to_string();
        assert!(err.contains("no class subfolders"), "{err}");
        std::fs::create_dir_all(empty.path().join("cats")).unwrap();
        std::fs::create_dir_all(empty.path().join("dogs")).unwrap();
        let preview = preview_folder(empty.path()).unwrap();
        assert_eq!(preview.classes.len(), 2);
        assert!(preview.refusal().unwrap().contains("no images"));

        let missing = dir.path().join("nowhere");
        let err = preview_folder(&missing).unwrap_err().to_string();
        assert!(
            err.contains("the folder does not exist") && err.contains("nowhere"),
            "{err}"
        );
    }

    #[test]
    fn previews_a_detection_layout() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("images")).unwrap();
        for name in ["a.png", "b.png"] {
            image::RgbImage::new(40, 40)
                .save(root.join("images").join(name))
                .unwrap();
        }
        std::fs::write(root.join("classes.txt"), "cat\ndog\n").unwrap();
        std::fs::write(
            root.join("images/a.txt"),
            "1 0.5 0.5 0.2 0.2\n1 0.2 0.2 0.1 0.1\n",
        )
        .unwrap();
        let preview = preview_folder(root).unwrap();
        let detection = preview.detection.unwrap();
        assert_eq!(detection.format, DetectionFormat::Yolo);
        assert_eq!(
            detection.classes,
            [("cat".to_owned(), 0), ("dog".to_owned(), 2)]
        );
        assert_eq!(detection.images_without_boxes, 1);
        assert!(detection.describe().contains("2 boxes of 2 classes"));
        assert_eq!(preview.images, 2);
    }

    #[test]
    fn proposed_sizes_follow_the_shorter_side() {
        assert_eq!(proposed_input_size(None), 224);
        assert_eq!(proposed_input_size(Some((28, 28))), 32);
        assert_eq!(proposed_input_size(Some((100, 64))), 64);
        assert_eq!(proposed_input_size(Some((150, 90))), 96);
        assert_eq!(proposed_input_size(Some((1024, 768))), 224);
    }
}
