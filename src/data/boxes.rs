//! The one internal form of object-detection annotations: pixel boxes `x0, y0, x1, y1` in
//! the original image's coordinates (the stored pixel grid, EXIF orientation applied, `x1 =
//! x + width` as in COCO), each with a class index into the data set's class names. Every
//! importer (COCO JSON, YOLO txt, Pascal VOC XML) produces it; the loader, the augmenter, the
//! metrics and the export read it.

use serde::{Deserialize, Serialize};

/// An axis-aligned box in pixels: `(x0, y0)` top-left, `(x1, y1)` bottom-right.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PixelBox {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl PixelBox {
    /// The box from COCO's `[x, y, width, height]`.
    pub fn from_xywh(x: f32, y: f32, width: f32, height: f32) -> Self {
        Self {
            x0: x,
            y0: y,
            x1: x + width,
            y1: y + height,
        }
    }

    /// COCO's `[x, y, width, height]`.
    pub fn to_xywh(self) -> [f32; 4] {
        [self.x0, self.y0, self.width(), self.height()]
    }

    /// Width in pixels (negative for a reversed box).
    pub fn width(self) -> f32 {
        self.x1 - self.x0
    }

    /// Height in pixels (negative for a reversed box).
    pub fn height(self) -> f32 {
        self.y1 - self.y0
    }

    /// Area in square pixels; 0 for an empty or reversed box.
    pub fn area(self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }

    /// Whether every coordinate is a finite number.
    pub fn is_finite(self) -> bool {
        [self.x0, self.y0, self.x1, self.y1]
            .iter()
            .all(|v| v.is_finite())
    }

    /// The part inside `[0, width] x [0, height]`.
    pub fn clipped(self, width: f32, height: f32) -> Self {
        Self {
            x0: self.x0.clamp(0.0, width),
            y0: self.y0.clamp(0.0, height),
            x1: self.x1.clamp(0.0, width),
            y1: self.y1.clamp(0.0, height),
        }
    }

    /// Intersection over union (0 when both are empty).
    pub fn iou(self, other: PixelBox) -> f32 {
        let w = (self.x1.min(other.x1) - self.x0.max(other.x0)).max(0.0);
        let h = (self.y1.min(other.y1) - self.y0.max(other.y0)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }

    /// The box scaled by `sx` horizontally and `sy` vertically.
    pub fn scaled(self, sx: f32, sy: f32) -> Self {
        Self {
            x0: self.x0 * sx,
            y0: self.y0 * sy,
            x1: self.x1 * sx,
            y1: self.y1 * sy,
        }
    }
}

/// One annotated object of an image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectBox {
    /// Index into the data set's class names.
    pub class: usize,
    /// Where it is, in original-image pixels.
    pub bbox: PixelBox,
    /// COCO's `iscrowd`: a group of objects, ignored by the metrics' matching.
    #[serde(default)]
    pub crowd: bool,
    /// COCO's `area` when the file gives one (the metrics' size ranges use it), else `None`
    /// (the box's own area).
    #[serde(default)]
    pub area: Option<f32>,
    /// The annotation's id in its file (COCO), for reports.
    #[serde(default)]
    pub annotation_id: Option<u64>,
}

impl ObjectBox {
    /// A plain box of `class`.
    pub fn new(class: usize, bbox: PixelBox) -> Self {
        Self {
            class,
            bbox,
            crowd: false,
            area: None,
            annotation_id: None,
        }
    }

    /// The area the metrics use: the file's `area`, else the box's.
    pub fn metric_area(&self) -> f32 {
        self.area.unwrap_or_else(|| self.bbox.area())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_of_a_box() {
        let a = PixelBox::from_xywh(10.0, 20.0, 30.0, 40.0);
        assert_eq!(a.to_xywh(), [10.0, 20.0, 30.0, 40.0]);
        assert_eq!(a.area(), 1200.0);
        assert_eq!(a.iou(a), 1.0);
        let b = PixelBox::from_xywh(25.0, 20.0, 30.0, 40.0);
        assert!((a.iou(b) - 600.0 / 1800.0).abs() < 1e-6);
        assert_eq!(
            PixelBox::from_xywh(-5.0, 0.0, 10.0, 10.0).clipped(8.0, 8.0),
            PixelBox {
                x0: 0.0,
                y0: 0.0,
                x1: 5.0,
                y1: 8.0
            }
        );
        assert_eq!(PixelBox::from_xywh(0.0, 0.0, -3.0, 2.0).area(), 0.0);
        assert!(!PixelBox::from_xywh(f32::NAN, 0.0, 1.0, 1.0).is_finite());
    }
}
