//! COCO bbox evaluation, exactly as pycocotools' `COCOeval` computes it: the 12 summary
//! stats, per-class AP, and the precision-recall curves, from plain in-memory boxes; and the
//! per-image matching the Inspector shows ([`match_image`]).
//!
//! The data-set-wide evaluation runs on the `hotcoco` crate (MIT, pure Rust), a port of
//! pycocotools checked by its authors against it: it evaluates from in-memory data
//! (`COCO::from_dataset`, `COCO::load_res_anns`) and adds no dependency the workbench does not
//! already build. This module only turns the workbench's boxes into COCO records (category id
//! = class + 1, annotation ids from 1, as pycocotools needs), runs it silently, and reads the
//! accumulated arrays. `tests/detection_coco_eval.rs` holds it to pycocotools itself (within
//! 1e-6) on seeded data sets with crowd boxes, tied scores, more than 100 detections in an
//! image, every area range, a class without ground truth and images without boxes.
//!
//! pycocotools' rules that matter to a caller: detections are sorted by score with a stable
//! sort (ties keep their order in `dets`) and only the 100 best per image and class count;
//! a detection matched to a crowd box is ignored (the IoU with a crowd box divides by the
//! detection's area); a ground truth's area range is decided by its `area` field, a
//! detection's by its box; a value that cannot be computed (no ground truth in that class or
//! area range) is -1 in `stats` and `None` per class.

mod image_match;

use std::collections::BTreeSet;

use hotcoco::{Annotation, COCO, COCOeval, Category, Dataset, Image, params::IouType};
use serde::{Deserialize, Serialize};

pub use image_match::{DetectionOutcome, ImageMatch, MatchedDetection, match_image};

/// Detections per image and class that count towards AP (pycocotools' largest `maxDets`).
pub const MAX_DETECTIONS_PER_IMAGE: usize = 100;

/// Short names of the 12 summary stats, in `COCOeval.summarize()` order.
pub const STAT_KEYS: [&str; 12] = [
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
];

/// One ground-truth box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// The image it belongs to.
    pub image: u64,
    /// Class index, below the evaluation's `num_classes`.
    pub class: usize,
    /// Box in pixels: left, top, width, height.
    pub bbox_xywh: [f64; 4],
    /// COCO `area` in square pixels (a mask's area in COCO files, not always width x height):
    /// decides the box's area range (small, medium, large).
    pub area: f64,
    /// A crowd region: never missed, and detections on it are neither right nor wrong.
    pub crowd: bool,
}

impl GroundTruth {
    /// The data set's annotated `object` of `image`: its box, class, crowd flag, and the
    /// area the metrics use (the file's `area`, else the box's).
    pub fn from_object_box(image: u64, object: &crate::data::boxes::ObjectBox) -> Self {
        Self {
            image,
            class: object.class,
            bbox_xywh: object.bbox.to_xywh().map(f64::from),
            area: f64::from(object.metric_area()),
            crowd: object.crowd,
        }
    }
}

/// One detected box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// The image it was found in.
    pub image: u64,
    /// Predicted class index, below the evaluation's `num_classes`.
    pub class: usize,
    /// Box in pixels: left, top, width, height.
    pub bbox_xywh: [f64; 4],
    /// Confidence; higher is surer.
    pub score: f64,
}

/// A class's interpolated precision-recall curve at IoU 0.5 (area all, 100 detections per
/// image), as `COCOeval.eval['precision']` and `eval['scores']` hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrCurve {
    /// The 101 recall thresholds 0, 0.01, ..., 1.
    pub recall_thresholds: Vec<f64>,
    /// Interpolated precision at each recall threshold (0 beyond the recall reached).
    pub precision: Vec<f64>,
    /// Score of the detection that reaches each recall threshold (0 beyond it): the
    /// operating point to pick a score threshold from.
    pub scores: Vec<f64>,
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CocoEvaluation {
    /// `COCOeval.stats` in summarize order: AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100,
    /// ARs, ARm, ARl ([`STAT_KEYS`]); -1 where pycocotools gives -1.
    pub stats: [f64; 12],
    /// AP@[.5:.95] per class (area all, 100 detections); `None` for a class without ground
    /// truth (other than crowd boxes).
    pub per_class_ap: Vec<Option<f64>>,
    /// AP@.5 per class, like `per_class_ap`.
    pub per_class_ap50: Vec<Option<f64>>,
    /// Per class, its curve at IoU 0.5; `None` for a class without ground truth.
    pub pr_curves: Vec<Option<PrCurve>>,
}

/// Why boxes cannot be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum CocoEvalError {
    /// A box names a class the evaluation does not have.
    #[error("a {what} of image {image} has class {class}, but there are {num_classes} classes")]
    ClassOutOfRange {
        what: &'static str,
        image: u64,
        class: usize,
        num_classes: usize,
    },
    /// A box, area or score is NaN or infinite.
    #[error("a {what} of image {image} has a value that is not a finite number")]
    NotFinite { what: &'static str, image: u64 },
    /// The evaluation engine refused the data.
    #[error("COCO evaluation failed: {0}")]
    Engine(#[from] hotcoco::Error),
    /// The engine returned arrays of an unexpected shape (a bug, not a data problem).
    #[error("COCO evaluation returned {0}")]
    Shape(&'static str),
}

/// Evaluates `dets` against `gts` as pycocotools' `COCOeval` (bbox) does, over the images
/// `image_ids` (each counts, with or without boxes; an image that only a box names counts
/// too) and the classes `0..num_classes` (each counts, with or without ground truth).
/// Ties in score keep their order in `dets`.
pub fn evaluate(
    image_ids: &[u64],
    num_classes: usize,
    gts: &[GroundTruth],
    dets: &[Detection],
) -> Result<CocoEvaluation, CocoEvalError> {
    check_boxes(num_classes, gts, dets)?;
    let images: BTreeSet<u64> = image_ids
        .iter()
        .copied()
        .chain(gts.iter().map(|g| g.image))
        .chain(dets.iter().map(|d| d.image))
        .collect();
    let dataset = Dataset {
        images: images
            .iter()
            .map(|&id| Image {
                id,
                ..Image::default()
            })
            .collect(),
        categories: (0..num_classes)
            .map(|class| Category {
                id: category_id(class),
                name: format!("class {class}"),
                ..Category::default()
            })
            .collect(),
        annotations: gts
            .iter()
            .enumerate()
            .map(|(index, g)| Annotation {
                // pycocotools keeps matched ground-truth ids and treats id 0 as "unmatched".
                id: index as u64 + 1,
                image_id: g.image,
                category_id: category_id(g.class),
                bbox: Some(g.bbox_xywh),
                area: Some(g.area),
                iscrowd: g.crowd,
                ..Annotation::default()
            })
            .collect(),
        ..Dataset::default()
    };
    let coco_gt = COCO::from_dataset(dataset);
    // `load_res_anns` numbers the detections from 1 and sets their area to w x h, as loadRes.
    let coco_dt = coco_gt.load_res_anns(
        dets.iter()
            .map(|d| Annotation {
                image_id: d.image,
                category_id: category_id(d.class),
                bbox: Some(d.bbox_xywh),
                score: Some(d.score),
                ..Annotation::default()
            })
            .collect(),
    )?;
    let mut eval = COCOeval::new(coco_gt, coco_dt, IouType::Bbox);
    eval.params.img_ids = images.into_iter().collect();
    eval.params.cat_ids = (0..num_classes).map(category_id).collect();
    eval.evaluate()?;
    eval.accumulate();
    // Computes the stats without printing them (`summarize` prints).
    eval.summarize_lines();
    let stats: [f64; 12] = eval
        .stats()
        .and_then(|s| s.try_into().ok())
        .ok_or(CocoEvalError::Shape("no 12 summary stats"))?;
    let accumulated = eval
        .accumulated()
        .ok_or(CocoEvalError::Shape("no accumulated arrays"))?;
    let view = Accumulated {
        eval: accumulated,
        area_all: eval.params.all_area_idx(),
        max_dets: eval.params.max_det_idx(),
        iou50: eval
            .params
            .iou_thr_idx(0.5)
            .ok_or(CocoEvalError::Shape("no IoU threshold 0.5"))?,
        recall_thresholds: eval.params.rec_thrs.clone(),
    };
    let mut evaluation = CocoEvaluation {
        stats,
        per_class_ap: Vec::with_capacity(num_classes),
        per_class_ap50: Vec::with_capacity(num_classes),
        pr_curves: Vec::with_capacity(num_classes),
    };
    for class in 0..num_classes {
        let k = accumulated
            .cat_ids
            .iter()
            .position(|&id| id == category_id(class))
            .ok_or(CocoEvalError::Shape("a class missing from the arrays"))?;
        evaluation
            .per_class_ap
            .push(view.mean_precision(0..accumulated.shape.t, k));
        evaluation
            .per_class_ap50
            .push(view.mean_precision(view.iou50..view.iou50 + 1, k));
        evaluation.pr_curves.push(view.pr_curve(k));
    }
    Ok(evaluation)
}

/// The COCO category id of a class: ids from 1, as in COCO files.
fn category_id(class: usize) -> u64 {
    class as u64 + 1
}

/// Refuses classes out of range and values that are not finite numbers (NaN scores would
/// make the score order meaningless).
fn check_boxes(
    num_classes: usize,
    gts: &[GroundTruth],
    dets: &[Detection],
) -> Result<(), CocoEvalError> {
    let boxes = gts
        .iter()
        .map(|g| ("ground-truth box", g.image, g.class, g.bbox_xywh, g.area))
        .chain(
            dets.iter()
                .map(|d| ("detection", d.image, d.class, d.bbox_xywh, d.score)),
        );
    for (what, image, class, bbox, value) in boxes {
        if class >= num_classes {
            return Err(CocoEvalError::ClassOutOfRange {
                what,
                image,
                class,
                num_classes,
            });
        }
        if !bbox.iter().chain([&value]).all(|v| v.is_finite()) {
            return Err(CocoEvalError::NotFinite { what, image });
        }
    }
    Ok(())
}

/// The accumulated arrays at area "all" and the largest detection limit.
struct Accumulated<'a> {
    eval: &'a hotcoco::AccumulatedEval,
    area_all: usize,
    max_dets: usize,
    iou50: usize,
    recall_thresholds: Vec<f64>,
}

impl Accumulated<'_> {
    /// The mean of the valid (> -1) precision values over `ious` and every recall threshold
    /// for category slot `k`, as `summarize` averages them; `None` when none is valid.
    fn mean_precision(&self, ious: std::ops::Range<usize>, k: usize) -> Option<f64> {
        let shape = self.eval.shape;
        let valid: Vec<f64> = ious
            .flat_map(|t| (0..shape.r).map(move |r| (t, r)))
            .map(|(t, r)| {
                self.eval.precision[shape.precision_idx(t, r, k, self.area_all, self.max_dets)]
            })
            .filter(|&p| p > -1.0)
            .collect();
        (!valid.is_empty()).then(|| pairwise_sum(&valid) / valid.len() as f64)
    }

    /// Category slot `k`'s curve at IoU 0.5; `None` when it has no ground truth.
    fn pr_curve(&self, k: usize) -> Option<PrCurve> {
        let shape = self.eval.shape;
        let index = |r| shape.precision_idx(self.iou50, r, k, self.area_all, self.max_dets);
        let precision: Vec<f64> = (0..shape.r)
            .map(|r| self.eval.precision[index(r)])
            .collect();
        if precision.iter().all(|&p| p <= -1.0) {
            return None;
        }
        Some(PrCurve {
            recall_thresholds: self.recall_thresholds.clone(),
            precision,
            scores: (0..shape.r).map(|r| self.eval.scores[index(r)]).collect(),
        })
    }
}

/// numpy's pairwise summation (blocks of 8 partial sums up to 128 values, halves above), so
/// that means match `np.mean` to the last bit rather than to 1e-16.
fn pairwise_sum(values: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    if values.len() < 8 {
        return values.iter().sum();
    }
    if values.len() <= BLOCK {
        let mut partial = [0.0_f64; 8];
        let chunks = values.chunks_exact(8);
        let rest = chunks.remainder();
        for chunk in chunks {
            for (p, v) in partial.iter_mut().zip(chunk) {
                *p += v;
            }
        }
        let pairs = ((partial[0] + partial[1]) + (partial[2] + partial[3]))
            + ((partial[4] + partial[5]) + (partial[6] + partial[7]));
        return rest.iter().fold(pairs, |sum, v| sum + v);
    }
    let half = (values.len() / 2) / 8 * 8;
    pairwise_sum(&values[..half]) + pairwise_sum(&values[half..])
}

/// The 12 stats as pycocotools' `summarize()` prints them, one line each, e.g.
/// ` Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.502`.
pub fn summary_lines(stats: &[f64; 12]) -> Vec<String> {
    const ROWS: [(bool, Option<f64>, &str, usize); 12] = [
        (true, None, "all", 100),
        (true, Some(0.5), "all", 100),
        (true, Some(0.75), "all", 100),
        (true, None, "small", 100),
        (true, None, "medium", 100),
        (true, None, "large", 100),
        (false, None, "all", 1),
        (false, None, "all", 10),
        (false, None, "all", 100),
        (false, None, "small", 100),
        (false, None, "medium", 100),
        (false, None, "large", 100),
    ];
    ROWS.iter()
        .zip(stats)
        .map(|(&(ap, iou, area, max_dets), value)| {
            let (title, kind) = if ap {
                ("Average Precision", "(AP)")
            } else {
                ("Average Recall", "(AR)")
            };
            let iou = iou.map_or_else(|| "0.50:0.95".to_owned(), |t| format!("{t:.2}"));
            format!(
                " {title:<18} {kind} @[ IoU={iou:<9} | area={area:>6} | maxDets={max_dets:>3} ] = {value:.3}"
            )
        })
        .collect()
}

/// The summary table and, below it, AP and AP50 per class (named by `class_names`, or by
/// index where a name is missing; "-" where the class has no ground truth).
pub fn summary_text(evaluation: &CocoEvaluation, class_names: &[String]) -> String {
    let mut text = summary_lines(&evaluation.stats).join("\n");
    text.push_str("\n\n class                     AP     AP50\n");
    let cell = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
    for (class, (ap, ap50)) in evaluation
        .per_class_ap
        .iter()
        .zip(&evaluation.per_class_ap50)
        .enumerate()
    {
        let name = class_names
            .get(class)
            .cloned()
            .unwrap_or_else(|| class.to_string());
        text.push_str(&format!(
            " {name:<20} {:>7} {:>8}\n",
            cell(*ap),
            cell(*ap50)
        ));
    }
    text
}

#[cfg(test)]
mod tests;
