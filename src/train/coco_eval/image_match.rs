//! One image's detections matched to its ground truth the way `COCOeval.evaluateImg` matches
//! them at one IoU threshold (area all), for the Inspector: which detection is right, which
//! is wrong, which objects were missed, and the image's own AP and F1.
//!
//! Written here rather than read from `hotcoco`: the Inspector needs it for one image at a
//! score threshold of the user's choice, and the rule is a few lines. Unit tests check it
//! against [`super::evaluate`] on single images.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Detection, GroundTruth};

/// What a detection turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum DetectionOutcome {
    /// It matched the ground truth `gt` (an index into the image's ground truths) with
    /// intersection over union `iou`.
    TruePositive { gt: usize, iou: f64 },
    /// It matched no ground truth of its class.
    FalsePositive,
    /// It matched the crowd region `gt`: neither right nor wrong, as in COCO.
    Ignored { gt: usize },
}

/// A detection at or above the score threshold and its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MatchedDetection {
    /// Index into the image's detections.
    pub detection: usize,
    /// What it turned out to be.
    pub outcome: DetectionOutcome,
}

/// The result of [`match_image`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageMatch {
    /// The detections at or above the score threshold, highest score first (ties in input
    /// order), each with its outcome.
    pub detections: Vec<MatchedDetection>,
    /// Indices of the ground truths (crowd regions aside) that no detection matched.
    pub missed: Vec<usize>,
    /// Detections that matched an object.
    pub true_positives: usize,
    /// Detections that matched nothing.
    pub false_positives: usize,
    /// True positives over detections that count; `None` without any.
    pub precision: Option<f64>,
    /// True positives over objects; `None` without any object.
    pub recall: Option<f64>,
    /// 2TP / (2TP + FP + FN); `None` when there is neither an object nor a detection.
    pub f1: Option<f64>,
    /// COCO's 101-point interpolated AP at the IoU threshold over this image's detections at
    /// or above the score threshold, averaged over the classes with an object in the image;
    /// `None` without any object.
    pub ap: Option<f64>,
}

/// Matches one image's detections to its ground truths at `iou_threshold` as COCO does:
/// detections at or above `score_threshold`, highest score first (ties in input order), each
/// takes the unmatched ground truth of its class with the highest IoU (at least
/// `iou_threshold`), regular boxes before crowd regions; a crowd region can take any number
/// of detections, which are then ignored. Every detection above the threshold counts (no
/// limit of 100 as in [`super::evaluate`]). The `image` fields are not read: pass one
/// image's boxes.
pub fn match_image(
    gts: &[GroundTruth],
    dets: &[Detection],
    iou_threshold: f64,
    score_threshold: f64,
) -> ImageMatch {
    let mut order: Vec<usize> = (0..dets.len())
        .filter(|&d| dets[d].score >= score_threshold)
        .collect();
    // Stable, like numpy's mergesort argsort of -score.
    order.sort_by(|&a, &b| dets[b].score.total_cmp(&dets[a].score));
    let classes: BTreeSet<usize> = gts
        .iter()
        .map(|g| g.class)
        .chain(order.iter().map(|&d| dets[d].class))
        .collect();
    let mut outcomes = vec![DetectionOutcome::FalsePositive; dets.len()];
    let mut matched_gt = vec![false; gts.len()];
    let mut class_aps = Vec::new();
    for class in classes {
        // Regular boxes first, crowd regions after (a stable sort on the ignore flag).
        let class_gts: Vec<usize> = (0..gts.len())
            .filter(|&g| gts[g].class == class && !gts[g].crowd)
            .chain((0..gts.len()).filter(|&g| gts[g].class == class && gts[g].crowd))
            .collect();
        let class_dets: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&d| dets[d].class == class)
            .collect();
        for &d in &class_dets {
            outcomes[d] = match_detection(&dets[d], &class_gts, gts, &matched_gt, iou_threshold);
            if let DetectionOutcome::TruePositive { gt, .. } = outcomes[d] {
                matched_gt[gt] = true;
            }
        }
        let objects = class_gts.iter().filter(|&&g| !gts[g].crowd).count();
        if objects > 0 {
            let hits: Vec<bool> = class_dets
                .iter()
                .filter_map(|&d| match outcomes[d] {
                    DetectionOutcome::TruePositive { .. } => Some(true),
                    DetectionOutcome::FalsePositive => Some(false),
                    DetectionOutcome::Ignored { .. } => None,
                })
                .collect();
            class_aps.push(interpolated_ap(&hits, objects));
        }
    }
    let detections: Vec<MatchedDetection> = order
        .iter()
        .map(|&d| MatchedDetection {
            detection: d,
            outcome: outcomes[d],
        })
        .collect();
    let missed: Vec<usize> = (0..gts.len())
        .filter(|&g| !gts[g].crowd && !matched_gt[g])
        .collect();
    let count = |want: fn(&DetectionOutcome) -> bool| {
        detections.iter().filter(|m| want(&m.outcome)).count()
    };
    let true_positives = count(|o| matches!(o, DetectionOutcome::TruePositive { .. }));
    let false_positives = count(|o| matches!(o, DetectionOutcome::FalsePositive));
    let ratio = |num: usize, den: usize| (den > 0).then(|| num as f64 / den as f64);
    ImageMatch {
        precision: ratio(true_positives, true_positives + false_positives),
        recall: ratio(true_positives, true_positives + missed.len()),
        f1: ratio(
            2 * true_positives,
            2 * true_positives + false_positives + missed.len(),
        ),
        ap: (!class_aps.is_empty()).then(|| class_aps.iter().sum::<f64>() / class_aps.len() as f64),
        detections,
        missed,
        true_positives,
        false_positives,
    }
}

/// `evaluateImg`'s match of one detection against its class's ground truths (`class_gts`:
/// regular boxes first, then crowd regions).
fn match_detection(
    det: &Detection,
    class_gts: &[usize],
    gts: &[GroundTruth],
    matched_gt: &[bool],
    iou_threshold: f64,
) -> DetectionOutcome {
    let mut best_iou = iou_threshold.min(1.0 - 1e-10);
    let mut best: Option<usize> = None;
    for &g in class_gts {
        let gt = &gts[g];
        if matched_gt[g] && !gt.crowd {
            continue;
        }
        // Once a regular box matched, crowd regions (sorted last) are not tried.
        if best.is_some_and(|b| !gts[b].crowd) && gt.crowd {
            break;
        }
        let iou = box_iou(&det.bbox_xywh, &gt.bbox_xywh, gt.crowd);
        if iou < best_iou {
            continue;
        }
        best_iou = iou;
        best = Some(g);
    }
    match best {
        None => DetectionOutcome::FalsePositive,
        Some(gt) if gts[gt].crowd => DetectionOutcome::Ignored { gt },
        Some(gt) => DetectionOutcome::TruePositive { gt, iou: best_iou },
    }
}

/// IoU of two xywh boxes as pycocotools' `bbIou` computes it; against a crowd region the
/// union is the detection's own area.
pub(super) fn box_iou(det: &[f64; 4], gt: &[f64; 4], crowd: bool) -> f64 {
    let width = (det[0] + det[2]).min(gt[0] + gt[2]) - det[0].max(gt[0]);
    if width <= 0.0 {
        return 0.0;
    }
    let height = (det[1] + det[3]).min(gt[1] + gt[3]) - det[1].max(gt[1]);
    if height <= 0.0 {
        return 0.0;
    }
    let intersection = width * height;
    let det_area = det[2] * det[3];
    let union = if crowd {
        det_area
    } else {
        det_area + gt[2] * gt[3] - intersection
    };
    intersection / union
}

/// `COCOeval.accumulate`'s interpolated AP of one class: `hits` are the counted detections in
/// score order (true positive or not), `objects` the number of objects.
fn interpolated_ap(hits: &[bool], objects: usize) -> f64 {
    const RECALL_STEPS: usize = 100;
    let mut true_positives = 0.0;
    let mut recall = Vec::with_capacity(hits.len());
    let mut precision = Vec::with_capacity(hits.len());
    for (seen, &hit) in hits.iter().enumerate() {
        if hit {
            true_positives += 1.0;
        }
        let false_positives = (seen + 1) as f64 - true_positives;
        recall.push(true_positives / objects as f64);
        precision.push(true_positives / (false_positives + true_positives + f64::EPSILON));
    }
    for i in (1..precision.len()).rev() {
        if precision[i] > precision[i - 1] {
            precision[i - 1] = precision[i];
        }
    }
    // np.linspace(0, 1, 101): i * 0.01, the last exactly 1.
    let step = 1.0 / RECALL_STEPS as f64;
    let total: f64 = (0..=RECALL_STEPS)
        .map(|i| {
            let threshold = if i == RECALL_STEPS {
                1.0
            } else {
                i as f64 * step
            };
            // np.searchsorted(recall, threshold, side='left'); 0 past the last detection.
            let first = recall.partition_point(|&r| r < threshold);
            precision.get(first).copied().unwrap_or(0.0)
        })
        .sum();
    total / (RECALL_STEPS + 1) as f64
}
