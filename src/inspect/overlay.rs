//! Segmentation overlays: prediction, ground truth and their difference as RGBA layers (filled
//! or outlines only), Dice per image, and writing images as PNG.
//!
//! Masks hold one class index per pixel, 0 being background; ground-truth pixels equal to
//! [`IGNORE_CLASS`] are left out of the difference and of Dice.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageFormat, Rgba, RgbaImage, imageops::FilterType};

use super::InspectError;

/// Ground-truth value of pixels that are not labelled (as the training loss ignores them).
pub const IGNORE_CLASS: u8 = 255;

// The difference colours are Okabe–Ito's, told apart with colour-blind eyes too: orange
// against sky blue, as false positives and misses are drawn in detection.

/// False positive (predicted foreground, truly background): orange.
pub const FALSE_POSITIVE: [u8; 3] = [230, 159, 0];
/// False negative (predicted background, truly foreground): sky blue.
pub const FALSE_NEGATIVE: [u8; 3] = [86, 180, 233];
/// Wrong foreground class: reddish purple.
pub const WRONG_CLASS: [u8; 3] = [204, 121, 167];

/// A per-pixel class map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassMask {
    /// Width in pixels.
    pub width_px: u32,
    /// Height in pixels.
    pub height_px: u32,
    /// `width_px * height_px` class indices, row by row.
    pub classes: Vec<u8>,
}

impl ClassMask {
    /// A mask, checking that `classes` has `width_px * height_px` entries.
    pub fn new(width_px: u32, height_px: u32, classes: Vec<u8>) -> Result<Self, InspectError> {
        if classes.len() != width_px as usize * height_px as usize {
            return Err(InspectError::Invalid(format!(
                "a {width_px}x{height_px} mask needs {} values, got {}",
                width_px as usize * height_px as usize,
                classes.len()
            )));
        }
        Ok(Self {
            width_px,
            height_px,
            classes,
        })
    }

    /// The class at `(x, y)`.
    pub fn get(&self, x: u32, y: u32) -> u8 {
        self.classes[(y * self.width_px + x) as usize]
    }

    /// The mask brought to another size by nearest-neighbour sampling (class indices are
    /// never blended), e.g. from the model's input size to the image's.
    pub fn resized(&self, width_px: u32, height_px: u32) -> Self {
        let gray = image::GrayImage::from_raw(self.width_px, self.height_px, self.classes.clone());
        let classes = match gray {
            Some(gray) => {
                image::imageops::resize(&gray, width_px, height_px, FilterType::Nearest).into_raw()
            }
            None => vec![0; width_px as usize * height_px as usize],
        };
        Self {
            width_px,
            height_px,
            classes,
        }
    }
}

/// How class regions are drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OverlayStyle {
    /// Every pixel of a region.
    #[default]
    Filled,
    /// Only pixels on a boundary (a 4-neighbour differs).
    Outline,
}

/// The three layers of a segmentation overlay, at the masks' resolution.
#[derive(Clone, Debug, PartialEq)]
pub struct OverlayLayers {
    /// Predicted classes.
    pub prediction: RgbaImage,
    /// Ground-truth classes.
    pub ground_truth: RgbaImage,
    /// Errors: [`FALSE_POSITIVE`], [`FALSE_NEGATIVE`], [`WRONG_CLASS`].
    pub difference: RgbaImage,
}

/// A distinct colour for each class; background (0) is never drawn.
pub fn class_colour(class: u8) -> [u8; 3] {
    const PALETTE: [[u8; 3]; 10] = [
        [0, 0, 0],
        [0, 200, 120],
        [255, 140, 0],
        [150, 80, 255],
        [0, 190, 255],
        [255, 60, 170],
        [170, 220, 0],
        [255, 230, 90],
        [120, 60, 20],
        [0, 110, 110],
    ];
    match PALETTE.get(usize::from(class)) {
        Some(colour) => *colour,
        // Further classes: a hash-spread hue that stays bright.
        None => {
            let h = u32::from(class).wrapping_mul(2_654_435_761);
            [
                (h >> 24) as u8 | 0x40,
                (h >> 16) as u8 | 0x40,
                (h >> 8) as u8 | 0x40,
            ]
        }
    }
}

/// Prediction, ground truth and difference layers with alpha `opacity` (`[0, 1]`) where
/// drawn and 0 elsewhere.
pub fn overlay_layers(
    prediction: &ClassMask,
    truth: &ClassMask,
    style: OverlayStyle,
    opacity: f32,
) -> Result<OverlayLayers, InspectError> {
    same_size(prediction, truth)?;
    let alpha = (opacity.clamp(0.0, 1.0) * 255.0).round() as u8;
    let errors = ClassMask {
        classes: prediction
            .classes
            .iter()
            .zip(&truth.classes)
            .map(|(&p, &t)| error_kind(p, t))
            .collect(),
        ..prediction.clone()
    };
    let error_colour = |kind: u8| match kind {
        1 => Some(FALSE_POSITIVE),
        2 => Some(FALSE_NEGATIVE),
        3 => Some(WRONG_CLASS),
        _ => None,
    };
    let class_layer_colour =
        |class: u8| (class != 0 && class != IGNORE_CLASS).then(|| class_colour(class));
    Ok(OverlayLayers {
        prediction: layer(prediction, style, alpha, class_layer_colour),
        ground_truth: layer(truth, style, alpha, class_layer_colour),
        difference: layer(&errors, style, alpha, error_colour),
    })
}

/// 0 correct or ignored, 1 false positive, 2 false negative, 3 wrong foreground class.
fn error_kind(predicted: u8, truth: u8) -> u8 {
    match (predicted, truth) {
        (_, IGNORE_CLASS) => 0,
        (p, t) if p == t => 0,
        (_, 0) => 1,
        (0, _) => 2,
        _ => 3,
    }
}

/// Colours each pixel of `mask` by `colour` (transparent where it gives `None`); in outline
/// style only boundary pixels are drawn.
fn layer(
    mask: &ClassMask,
    style: OverlayStyle,
    alpha: u8,
    colour: impl Fn(u8) -> Option<[u8; 3]>,
) -> RgbaImage {
    RgbaImage::from_fn(mask.width_px, mask.height_px, |x, y| {
        let class = mask.get(x, y);
        let drawn = style == OverlayStyle::Filled || on_boundary(mask, x, y);
        match colour(class) {
            Some([r, g, b]) if drawn => Rgba([r, g, b, alpha]),
            _ => Rgba([0, 0, 0, 0]),
        }
    })
}

/// Whether a 4-neighbour of `(x, y)` inside the mask has another class.
fn on_boundary(mask: &ClassMask, x: u32, y: u32) -> bool {
    let class = mask.get(x, y);
    let differs = |nx: Option<u32>, ny: Option<u32>| match (nx, ny) {
        (Some(nx), Some(ny)) if nx < mask.width_px && ny < mask.height_px => {
            mask.get(nx, ny) != class
        }
        _ => false,
    };
    differs(x.checked_sub(1), Some(y))
        || differs(x.checked_add(1), Some(y))
        || differs(Some(x), y.checked_sub(1))
        || differs(Some(x), y.checked_add(1))
}

/// Dice coefficients of one image.
#[derive(Clone, Debug, PartialEq)]
pub struct DiceScores {
    /// Per class index (background included), `None` where the class is in neither mask.
    pub per_class: Vec<Option<f64>>,
    /// All foreground classes together against background, `None` when neither mask has
    /// foreground.
    pub foreground: Option<f64>,
}

impl DiceScores {
    /// The mean over foreground classes present in either mask.
    pub fn mean_foreground(&self) -> Option<f64> {
        let present: Vec<f64> = self.per_class.iter().skip(1).flatten().copied().collect();
        (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64)
    }
}

/// Dice `2 |P ∩ T| / (|P| + |T|)` per class for `classes` classes (background 0 included)
/// and for the foreground; ground-truth pixels equal to [`IGNORE_CLASS`] are left out.
pub fn dice(
    prediction: &ClassMask,
    truth: &ClassMask,
    classes: usize,
) -> Result<DiceScores, InspectError> {
    same_size(prediction, truth)?;
    // Per class: (intersection, predicted, true) pixel counts.
    let mut counts = vec![(0u64, 0u64, 0u64); classes];
    let mut fg = (0u64, 0u64, 0u64);
    for (&p, &t) in prediction.classes.iter().zip(&truth.classes) {
        if t == IGNORE_CLASS {
            continue;
        }
        for (class, present) in [(p, (1, 0)), (t, (0, 1))] {
            let entry = counts.get_mut(usize::from(class)).ok_or_else(|| {
                InspectError::Invalid(format!("class {class} in a mask of {classes} classes"))
            })?;
            entry.1 += present.0;
            entry.2 += present.1;
        }
        if p == t {
            counts[usize::from(p)].0 += 1;
        }
        fg.1 += u64::from(p != 0);
        fg.2 += u64::from(t != 0);
        fg.0 += u64::from(p != 0 && t != 0);
    }
    let score = |(both, predicted, real): (u64, u64, u64)| {
        let total = predicted + real;
        (total > 0).then(|| 2.0 * both as f64 / total as f64)
    };
    Ok(DiceScores {
        per_class: counts.into_iter().map(score).collect(),
        foreground: score(fg),
    })
}

fn same_size(a: &ClassMask, b: &ClassMask) -> Result<(), InspectError> {
    if (a.width_px, a.height_px) != (b.width_px, b.height_px) {
        return Err(InspectError::Invalid(format!(
            "the prediction is {}x{} px but the ground truth {}x{} px",
            a.width_px, a.height_px, b.width_px, b.height_px
        )));
    }
    Ok(())
}

/// Writes `image` as a PNG at `path`: to a temporary file beside it, then renamed.
pub fn write_png(path: &Path, image: &DynamicImage) -> Result<(), InspectError> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(|e| InspectError::Encode {
            reason: e.to_string(),
            path: path.to_owned(),
        })?;
    crate::atomic_file::write(path, &bytes).map_err(InspectError::io("write the image", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(width_px: u32, rows: &[&str]) -> ClassMask {
        let classes = rows
            .iter()
            .flat_map(|r| {
                r.bytes()
                    .map(|b| if b == b'x' { IGNORE_CLASS } else { b - b'0' })
            })
            .collect();
        ClassMask::new(width_px, rows.len() as u32, classes).unwrap()
    }

    #[test]
    fn dice_of_hand_made_masks() {
        // Truth: class 1 in the top-left 2x2 block, class 2 at the bottom right.
        let truth = mask(4, &["1100", "1100", "0022"]);
        let pred = mask(4, &["1120", "1000", "1002"]);
        let d = dice(&pred, &truth, 3).unwrap();
        // Class 1: |P| = 4, |T| = 4, both 3 -> 6/8. Class 2: |P| = 2, |T| = 2, both 1 -> 1/2.
        assert!((d.per_class[1].unwrap() - 0.75).abs() < 1e-12);
        assert!((d.per_class[2].unwrap() - 0.5).abs() < 1e-12);
        // Background: |P| = 6, |T| = 6, both 4 -> 8/12; foreground the same counts.
        assert!((d.per_class[0].unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((d.foreground.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((d.mean_foreground().unwrap() - (0.75 + 0.5) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn dice_skips_ignored_pixels_and_absent_classes() {
        let truth = mask(3, &["1x0"]);
        let pred = mask(3, &["110"]);
        let d = dice(&pred, &truth, 3).unwrap();
        assert_eq!(d.per_class[1], Some(1.0));
        assert_eq!(d.per_class[2], None);
        assert_eq!(d.foreground, Some(1.0));
        let empty = dice(&mask(2, &["00"]), &mask(2, &["00"]), 2).unwrap();
        assert_eq!(empty.foreground, None);
        assert_eq!(empty.mean_foreground(), None);
        assert!(dice(&mask(2, &["30"]), &mask(2, &["00"]), 2).is_err());
        assert!(dice(&mask(2, &["00"]), &mask(3, &["000"]), 2).is_err());
    }

    #[test]
    fn difference_layer_colours_each_error_kind() {
        let truth = mask(5, &["01120"]);
        let pred = mask(5, &["10120"]);
        let layers = overlay_layers(&pred, &truth, OverlayStyle::Filled, 1.0).unwrap();
        let px = |x| layers.difference.get_pixel(x, 0).0;
        assert_eq!(px(0), [230, 159, 0, 255]); // predicted 1, truly 0
        assert_eq!(px(1), [86, 180, 233, 255]); // predicted 0, truly 1
        assert_eq!(px(2)[3], 0);
        assert_eq!(px(3)[3], 0);
        assert_eq!(px(4)[3], 0);
        let wrong = overlay_layers(
            &mask(1, &["2"]),
            &mask(1, &["1"]),
            OverlayStyle::Filled,
            1.0,
        );
        assert_eq!(
            wrong.unwrap().difference.get_pixel(0, 0).0,
            [204, 121, 167, 255]
        );
        let ignored = overlay_layers(
            &mask(1, &["2"]),
            &mask(1, &["x"]),
            OverlayStyle::Filled,
            1.0,
        );
        let ignored = ignored.unwrap();
        assert_eq!(ignored.difference.get_pixel(0, 0).0[3], 0);
        assert_eq!(ignored.ground_truth.get_pixel(0, 0).0[3], 0);
    }

    #[test]
    fn class_layers_use_opacity_and_leave_background_clear() {
        let m = mask(2, &["01"]);
        let layers = overlay_layers(&m, &m, OverlayStyle::Filled, 0.5).unwrap();
        assert_eq!(layers.prediction.get_pixel(0, 0).0[3], 0);
        let [r, g, b] = class_colour(1);
        assert_eq!(layers.prediction.get_pixel(1, 0).0, [r, g, b, 128]);
        assert_eq!(layers.ground_truth, layers.prediction);
        assert!(layers.difference.pixels().all(|p| p.0[3] == 0));
    }

    #[test]
    fn outline_draws_only_region_boundaries() {
        // A 3x3 block of class 1 in a 5x5 image: its centre is interior.
        let m = mask(5, &["00000", "01110", "01110", "01110", "00000"]);
        let layers = overlay_layers(&m, &m, OverlayStyle::Outline, 1.0).unwrap();
        let drawn: Vec<(u32, u32)> = layers
            .prediction
            .enumerate_pixels()
            .filter(|(_, _, p)| p.0[3] > 0)
            .map(|(x, y, _)| (x, y))
            .collect();
        assert_eq!(drawn.len(), 8);
        assert!(!drawn.contains(&(2, 2)));
        assert!(drawn.contains(&(1, 1)) && drawn.contains(&(3, 2)));
    }

    #[test]
    fn class_colours_are_distinct_and_nearest_resize_keeps_classes() {
        let colours: std::collections::HashSet<[u8; 3]> = (0..=20).map(class_colour).collect();
        assert_eq!(colours.len(), 21);
        let m = mask(2, &["01", "23"]);
        let big = m.resized(4, 4);
        assert_eq!(
            big.classes,
            vec![0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3]
        );
        assert!(ClassMask::new(2, 2, vec![0; 3]).is_err());
    }

    #[test]
    fn png_is_written_atomically_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("overlay.png");
        let image = RgbaImage::from_pixel(3, 2, Rgba([1, 2, 3, 4]));
        write_png(&path, &image.clone().into()).unwrap();
        let back = image::open(&path).unwrap().to_rgba8();
        assert_eq!(back, image);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
