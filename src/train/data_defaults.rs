//! Training defaults that follow the project's images instead of ImageNet's: the
//! evaluation crop, how hard training crops, and whether images are flipped; each with the
//! reason the Training tab shows.
//!
//! The rules:
//! - **Evaluation crop** (classification): torchvision's 87.5% centre crop suits photographs of centred
//!   objects with background around them (ImageNet). Greyscale scans, microscopy tiles,
//!   digits, garments and other small images fill the frame to the border, where the crop
//!   cuts off what matters. So the crop is kept only for colour images at least
//!   [`PHOTO_SIDE_PX`] on the shorter side (camera photographs); every other data set is
//!   evaluated whole.
//! - **Training crops** (classification; detection and segmentation keep the 50–100% their
//!   recipes were measured with): a small data set (fewer than [`SMALL_DATA_IMAGES`] images) or small
//!   images (shorter side under [`SMALL_IMAGE_SIDE_PX`]) get the gentle preset (crops of
//!   80–100% of the image) instead of 50–100%: a crop of a small image loses much of what
//!   little it shows, and few images cannot teach the scale invariance hard crops ask for.
//! - **Flips**: only when the user says a mirrored image keeps its label
//!   (`DatasetConfig::mirror_ok`); flips are wrong for chest X-rays and text.

use crate::data::augment::AugmentConfig;
use crate::project::DatasetConfig;
use crate::task::TaskKind;

/// Colour images at least this large on the shorter side count as photographs.
pub const PHOTO_SIDE_PX: u32 = 224;
/// Data sets with fewer images than this train with gentle crops.
pub const SMALL_DATA_IMAGES: usize = 1000;
/// Images with a shorter side under this train with gentle crops.
pub const SMALL_IMAGE_SIDE_PX: u32 = 64;

/// The defaults chosen for a project's data, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct DataDefaults {
    /// The evaluation's centre-crop share (1.0: the whole image).
    pub eval_crop_fraction: f32,
    /// The augmentation preset (`light` or `default`).
    pub augment_preset: &'static str,
    /// One line per choice, for the user.
    pub reasons: Vec<String>,
}

/// The defaults for `dataset`'s images (its profile and mirror setting) and `task`.
pub fn data_defaults(dataset: &DatasetConfig, task: TaskKind) -> DataDefaults {
    let mut reasons = Vec::new();
    let (eval_crop_fraction, augment_preset) = match &dataset.profile {
        // Boxes and masks follow every crop, and their recipes were measured with 50–100%.
        _ if !super::task::train_task(task).crops_follow_the_data() => (0.875, "default"),
        None => {
            reasons.push(
                "ImageNet's crops: the project keeps no record of its images' size and colour \
                 (made before this version)"
                    .to_owned(),
            );
            (0.875, "default")
        }
        Some(profile) => {
            let shorter = profile.typical_size_px.map(|(w, h)| w.min(h));
            let colour = profile.colour.unwrap_or(true);
            let photos = colour && shorter.is_none_or(|s| s >= PHOTO_SIDE_PX);
            let size = shorter.map_or("unknown size".to_owned(), |s| format!("{s} px"));
            let tone = if colour { "colour" } else { "greyscale" };
            reasons.push(if photos {
                format!(
                    "evaluation on the centre 87.5%: {tone} photographs of {size}, as ImageNet's"
                )
            } else {
                format!(
                    "evaluation on the whole image: {tone} images of {size} fill the frame, \
                     a centre crop would cut their borders"
                )
            });
            let small_data = profile.images < SMALL_DATA_IMAGES;
            let small_images = shorter.is_some_and(|s| s < SMALL_IMAGE_SIDE_PX);
            let preset = if small_data || small_images {
                let why = match (small_data, small_images) {
                    (true, true) => format!("{} images of {size}", profile.images),
                    (true, false) => format!("only {} images", profile.images),
                    _ => format!("images of {size}"),
                };
                reasons.push(format!("gentle training crops (80–100%): {why}"));
                "light"
            } else {
                reasons.push(format!(
                    "training crops of 50–100%: {} images of {size}",
                    profile.images
                ));
                "default"
            };
            (if photos { 0.875 } else { 1.0 }, preset)
        }
    };
    reasons.push(if dataset.mirror_ok {
        "flips: the images may be mirrored (Dataset tab)".to_owned()
    } else {
        "no flips: the images are not marked as mirrorable (Dataset tab)".to_owned()
    });
    DataDefaults {
        eval_crop_fraction,
        augment_preset,
        reasons,
    }
}

/// Turns flips off unless the images may be mirrored.
pub fn apply_mirror_setting(augment: &mut AugmentConfig, mirror_ok: bool) {
    if !mirror_ok {
        augment.hflip_prob = 0.0;
        augment.vflip_prob = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::DataProfile;

    fn dataset(images: usize, side: u32, colour: bool) -> DatasetConfig {
        DatasetConfig {
            profile: Some(DataProfile {
                images,
                typical_size_px: Some((side, side + 10)),
                colour: Some(colour),
            }),
            ..DatasetConfig::default()
        }
    }

    #[test]
    fn photographs_keep_the_crop_and_small_or_grey_images_are_seen_whole() {
        let photos = data_defaults(&dataset(5000, 400, true), TaskKind::Classification);
        assert_eq!(
            (photos.eval_crop_fraction, photos.augment_preset),
            (0.875, "default")
        );
        let digits = data_defaults(&dataset(3000, 28, false), TaskKind::Classification);
        assert_eq!(
            (digits.eval_crop_fraction, digits.augment_preset),
            (1.0, "light")
        );
        assert!(
            digits.reasons[0].contains("whole image"),
            "{:?}",
            digits.reasons
        );
        assert!(
            digits.reasons[1].contains("images of 28 px"),
            "{:?}",
            digits.reasons
        );
        let xrays = data_defaults(&dataset(16, 1000, false), TaskKind::Classification);
        assert_eq!(
            (xrays.eval_crop_fraction, xrays.augment_preset),
            (1.0, "light")
        );
        assert!(
            xrays.reasons[1].contains("only 16 images"),
            "{:?}",
            xrays.reasons
        );
        let small_colour = data_defaults(&dataset(5000, 96, true), TaskKind::Classification);
        assert_eq!(small_colour.eval_crop_fraction, 1.0);
        assert_eq!(small_colour.augment_preset, "default");
        assert!(small_colour.reasons.last().unwrap().starts_with("no flips"));
        let old = data_defaults(&DatasetConfig::default(), TaskKind::Classification);
        assert_eq!(
            (old.eval_crop_fraction, old.augment_preset),
            (0.875, "default")
        );
    }

    #[test]
    fn flips_only_for_mirrorable_images() {
        let mut augment = AugmentConfig::strong();
        apply_mirror_setting(&mut augment, true);
        assert_eq!((augment.hflip_prob, augment.vflip_prob), (0.5, 0.5));
        apply_mirror_setting(&mut augment, false);
        assert_eq!((augment.hflip_prob, augment.vflip_prob), (0.0, 0.0));
        let mirrored = DatasetConfig {
            mirror_ok: true,
            ..dataset(100, 64, true)
        };
        let detection = data_defaults(&mirrored, TaskKind::Detection);
        // Detection keeps its measured recipe: no crop lines.
        assert_eq!(detection.augment_preset, "default");
        assert_eq!(detection.reasons.len(), 1, "{:?}", detection.reasons);
        assert!(detection.reasons[0].starts_with("flips"));
    }
}
