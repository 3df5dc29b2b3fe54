//! Boxes following an image through the loader: from original-image pixels to the working
//! image, through augmentation's crop, resize, small rotation and flips, or evaluation's
//! centre square, to the model's input pixels. Written for this project; the rules follow
//! common detection practice (albumentations' `min_visibility`): a box clipped by a crop
//! keeps its visible part, and one that loses most of its area is dropped.

use super::augment::AugmentParams;
use super::boxes::{ObjectBox, PixelBox};
use super::pixels::Dihedral;

/// A clipped box is kept when at least this fraction of its area stays in view.
pub const MIN_VISIBLE_FRACTION: f32 = 0.5;

/// Boxes thinner than this many input pixels after the geometry are dropped.
const MIN_SIDE_PX: f32 = 1.0;

/// One object in the model's input, in input pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TargetBox {
    pub bbox: PixelBox,
    pub class: usize,
    /// A crowd box (COCO `iscrowd`): neither a positive nor a negative for the metrics.
    pub crowd: bool,
}

/// The boxes of an image of `original_px` in the working image of `working_px` (each axis
/// scaled on its own).
pub fn to_working(
    boxes: &[ObjectBox],
    original_px: (u32, u32),
    working_px: (u32, u32),
) -> Vec<TargetBox> {
    let sx = working_px.0 as f32 / original_px.0.max(1) as f32;
    let sy = working_px.1 as f32 / original_px.1.max(1) as f32;
    boxes
        .iter()
        .filter(|b| b.bbox.is_finite())
        .map(|b| TargetBox {
            bbox: b.bbox.scaled(sx, sy),
            class: b.class,
            crowd: b.crowd,
        })
        .collect()
}

/// The boxes after the crop `(left, top, width, height)` of their image: shifted, clipped,
/// and dropped when less than [`MIN_VISIBLE_FRACTION`] of them stays in view.
fn crop(boxes: &[TargetBox], left: f32, top: f32, width: f32, height: f32) -> Vec<TargetBox> {
    boxes
        .iter()
        .filter_map(|b| {
            let shifted = PixelBox {
                x0: b.bbox.x0 - left,
                y0: b.bbox.y0 - top,
                x1: b.bbox.x1 - left,
                y1: b.bbox.y1 - top,
            };
            let clipped = shifted.clipped(width, height);
            let area = shifted.area();
            let kept = area > 0.0 && clipped.area() >= MIN_VISIBLE_FRACTION * area;
            kept.then_some(TargetBox {
                bbox: clipped,
                ..*b
            })
        })
        .collect()
}

/// The box of `corners` mapped by `f`: the axis-aligned hull of the four mapped corners.
fn hull(bbox: PixelBox, f: impl Fn(f32, f32) -> (f32, f32)) -> PixelBox {
    let corners = [
        f(bbox.x0, bbox.y0),
        f(bbox.x1, bbox.y0),
        f(bbox.x0, bbox.y1),
        f(bbox.x1, bbox.y1),
    ];
    let mut out = PixelBox {
        x0: f32::INFINITY,
        y0: f32::INFINITY,
        x1: f32::NEG_INFINITY,
        y1: f32::NEG_INFINITY,
    };
    for (x, y) in corners {
        out.x0 = out.x0.min(x);
        out.y0 = out.y0.min(y);
        out.x1 = out.x1.max(x);
        out.y1 = out.y1.max(y);
    }
    out
}

/// Where a point of the untransformed `size`-square lands under `dihedral` (the inverse of
/// [`Dihedral`]'s output-to-source walk, in continuous coordinates).
fn dihedral_point(dihedral: Dihedral, x: f32, y: f32, size: f32) -> (f32, f32) {
    let a = if dihedral.flip_y { size - y } else { y };
    let b = if dihedral.flip_x { size - x } else { x };
    if dihedral.transpose { (a, b) } else { (b, a) }
}

/// Where a point lands when a `size`-square is rotated by `degrees` about its centre as
/// [`super::pixels::Pixels::rotated`] rotates it.
fn rotated_point(x: f32, y: f32, degrees: f32, size: f32) -> (f32, f32) {
    let (sin, cos) = degrees.to_radians().sin_cos();
    let c = size / 2.0;
    let (dx, dy) = (x - c, y - c);
    (c + cos * dx + sin * dy, c - sin * dx + cos * dy)
}

/// Drops boxes without area and clips the rest to the `size`-square.
fn finish(boxes: impl IntoIterator<Item = TargetBox>, size: f32) -> Vec<TargetBox> {
    boxes
        .into_iter()
        .map(|b| TargetBox {
            bbox: b.bbox.clipped(size, size),
            ..b
        })
        .filter(|b| b.bbox.width() >= MIN_SIDE_PX && b.bbox.height() >= MIN_SIDE_PX)
        .collect()
}

/// The boxes of a working image after augmentation `params` into a `size`-square input
/// (crop, resize, small rotation, flips and quarter turns, in the augmenter's order).
pub fn augment_boxes(boxes: &[TargetBox], params: &AugmentParams, size: u32) -> Vec<TargetBox> {
    let c = params.crop;
    let (cw, ch) = (c.width.max(1) as f32, c.height.max(1) as f32);
    let cropped = crop(boxes, c.left as f32, c.top as f32, cw, ch);
    let s = size as f32;
    let (sx, sy) = (s / cw, s / ch);
    let placed = cropped.into_iter().map(|b| {
        let mut bbox = b.bbox.scaled(sx, sy);
        if params.rotation_deg != 0.0 {
            bbox = hull(bbox, |x, y| rotated_point(x, y, params.rotation_deg, s));
            bbox = bbox.clipped(s, s);
        }
        bbox = hull(bbox, |x, y| dihedral_point(params.dihedral, x, y, s));
        TargetBox { bbox, ..b }
    });
    finish(placed, s)
}

/// The boxes of a working image of `working_px` after evaluation's centre `size`-square.
pub fn centre_square_boxes(
    boxes: &[TargetBox],
    working_px: (u32, u32),
    size: u32,
) -> Vec<TargetBox> {
    let left = working_px.0.saturating_sub(size) / 2;
    let top = working_px.1.saturating_sub(size) / 2;
    let s = size as f32;
    finish(crop(boxes, left as f32, top as f32, s, s), s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::augment::{AugmentConfig, augment_into, sample_params};
    use crate::data::pixels::Pixels;
    use crate::data::preprocess::Normalization;
    use image::{Rgb, RgbImage};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// A black image with two white rectangles (the boxes).
    fn scene() -> (RgbImage, Vec<TargetBox>) {
        let rects = [(40u32, 30u32, 120u32, 90u32), (180, 110, 260, 200)];
        let image = RgbImage::from_fn(300, 220, |x, y| {
            let inside = rects
                .iter()
                .any(|&(x0, y0, x1, y1)| (x0..x1).contains(&x) && (y0..y1).contains(&y));
            if inside { Rgb([255; 3]) } else { Rgb([0; 3]) }
        });
        let boxes = rects
            .iter()
            .enumerate()
            .map(|(class, &(x0, y0, x1, y1))| TargetBox {
                bbox: PixelBox {
                    x0: x0 as f32,
                    y0: y0 as f32,
                    x1: x1 as f32,
                    y1: y1 as f32,
                },
                class,
                crowd: false,
            })
            .collect();
        (image, boxes)
    }

    /// The bounding box of the bright pixels of `chw`'s first plane inside `region`.
    fn bright_extent(chw: &[f32], size: u32, region: PixelBox) -> Option<PixelBox> {
        let mut out: Option<PixelBox> = None;
        for y in region.y0.floor() as u32..(region.y1.ceil() as u32).min(size) {
            for x in region.x0.floor() as u32..(region.x1.ceil() as u32).min(size) {
                if chw[(y * size + x) as usize] > 127.0 {
                    let (fx, fy) = (x as f32, y as f32);
                    let b = out.get_or_insert(PixelBox {
                        x0: fx,
                        y0: fy,
                        x1: fx + 1.0,
                        y1: fy + 1.0,
                    });
                    b.x0 = b.x0.min(fx);
                    b.y0 = b.y0.min(fy);
                    b.x1 = b.x1.max(fx + 1.0);
                    b.y1 = b.y1.max(fy + 1.0);
                }
            }
        }
        out
    }

    #[test]
    fn boxes_stay_on_their_objects_under_every_geometric_transform() {
        let (image, boxes) = scene();
        let config = AugmentConfig {
            hflip_prob: 0.5,
            vflip_prob: 0.5,
            rot90_prob: 0.75,
            crop_scale: [0.4, 1.0],
            brightness: 0.0,
            contrast: 0.0,
            ..AugmentConfig::default()
        };
        let bytes = Normalization {
            mean: [0.0; 3],
            std: [1.0 / 255.0; 3],
        };
        let size = 96;
        let source = Pixels::Rgb(image);
        let mut checked = 0;
        for seed in 0..40 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let params = sample_params(&config, 300, 220, &mut rng);
            let mut chw = vec![0.0f32; 3 * 96 * 96];
            augment_into(&source, None, &params, &bytes, &mut chw, None).unwrap();
            for b in augment_boxes(&boxes, &params, size) {
                // The bright pixels inside the box (grown by 2 px) fill it to within 2 px.
                let grown = PixelBox {
                    x0: (b.bbox.x0 - 2.0).max(0.0),
                    y0: (b.bbox.y0 - 2.0).max(0.0),
                    x1: b.bbox.x1 + 2.0,
                    y1: b.bbox.y1 + 2.0,
                };
                let seen = bright_extent(&chw, size, grown)
                    .unwrap_or_else(|| panic!("seed {seed}: nothing bright in {b:?}"));
                for (want, got) in [
                    (b.bbox.x0, seen.x0),
                    (b.bbox.y0, seen.y0),
                    (b.bbox.x1, seen.x1),
                    (b.bbox.y1, seen.y1),
                ] {
                    assert!((want - got).abs() <= 2.0, "seed {seed}: {b:?} vs {seen:?}");
                }
                checked += 1;
            }
        }
        assert!(checked > 40, "only {checked} boxes survived the crops");
    }

    #[test]
    fn crops_clip_boxes_and_drop_those_mostly_outside() {
        let b = |x0: f32, x1: f32| TargetBox {
            bbox: PixelBox {
                x0,
                y0: 0.0,
                x1,
                y1: 10.0,
            },
            class: 0,
            crowd: false,
        };
        let out = crop(
            &[b(-4.0, 6.0), b(-6.0, 4.0), b(2.0, 8.0)],
            0.0,
            0.0,
            20.0,
            20.0,
        );
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].bbox.x0, 0.0);
        assert_eq!(out[0].bbox.x1, 6.0);
        let eval = centre_square_boxes(&[b(0.0, 30.0)], (40, 10), 10);
        assert_eq!(eval.len(), 0, "a 30 px box in a 10 px window keeps a third");
        let eval = centre_square_boxes(&[b(14.0, 24.0)], (40, 10), 10);
        assert_eq!(eval[0].bbox.x0, 0.0);
        assert_eq!(eval[0].bbox.x1, 9.0);
        let scaled = to_working(
            &[ObjectBox::new(
                1,
                PixelBox {
                    x0: 10.0,
                    y0: 10.0,
                    x1: 20.0,
                    y1: 40.0,
                },
            )],
            (100, 200),
            (50, 50),
        );
        assert_eq!(
            scaled[0].bbox,
            PixelBox {
                x0: 5.0,
                y0: 2.5,
                x1: 10.0,
                y1: 10.0
            }
        );
    }
}
