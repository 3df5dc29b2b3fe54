//! Evaluation metrics over plain data (no libtorch): classification metrics from class
//! probabilities `[N x C]` (row-major `f32`) and integer labels, and segmentation Dice / IoU
//! from streamed per-class pixel counts.
//!
//! Conventions follow scikit-learn 1.x so results can be checked against it:
//! - predictions are the arg-max of each row (the first maximum on ties, like `numpy.argmax`);
//! - the confusion matrix has true classes as rows and predicted classes as columns;
//! - precision, recall and F1 are 0 where undefined (`zero_division=0`);
//! - balanced accuracy is the mean recall over the classes present in the labels;
//! - ROC curves are one-vs-rest, as `roc_curve(.., drop_intermediate=False)`: one point per
//!   distinct score (ties form one step), starting at `(0, 0)` with threshold `+inf`; the AUC
//!   is the trapezoidal area under it (`roc_auc_score`). A class with no positive or no
//!   negative item has no curve and no AUC (`None`), and the macro average is taken over the
//!   classes that have one.

use serde::{Deserialize, Serialize};

/// Invalid metric inputs.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("{probabilities} probabilities do not form {items} rows of {classes} classes")]
    Shape {
        probabilities: usize,
        items: usize,
        classes: usize,
    },
    #[error("label {label} of item {item} is outside 0..{classes}")]
    Label {
        item: usize,
        label: i64,
        classes: usize,
    },
    #[error("{predictions} predicted pixels but {targets} target pixels")]
    PixelCount { predictions: usize, targets: usize },
    #[error("{counts} confusion counts do not form a {classes}x{classes} matrix")]
    ConfusionShape { counts: usize, classes: usize },
}

/// Counts of (true class, predicted class) pairs, with the items that fell into each cell.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    /// Number of classes `C`.
    pub classes: usize,
    /// `C x C` counts, row-major: row = true class, column = predicted class.
    pub counts: Vec<u64>,
    /// Item indices per cell (same layout as `counts`); empty once stripped for history.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Vec<usize>>,
}

impl ConfusionMatrix {
    /// Builds the matrix from true and predicted classes (both already validated `< classes`).
    fn from_pairs(classes: usize, labels: &[usize], predictions: &[usize]) -> Self {
        let mut counts = vec![0u64; classes * classes];
        let mut items = vec![Vec::new(); classes * classes];
        for (item, (&t, &p)) in labels.iter().zip(predictions).enumerate() {
            counts[t * classes + p] += 1;
            items[t * classes + p].push(item);
        }
        Self {
            classes,
            counts,
            items,
        }
    }

    /// The count of items of true class `actual` predicted as `predicted`.
    pub fn count(&self, actual: usize, predicted: usize) -> u64 {
        self.counts
            .get(actual * self.classes + predicted)
            .copied()
            .unwrap_or(0)
    }

    /// The items of true class `actual` predicted as `predicted` (empty once stripped).
    pub fn items_in(&self, actual: usize, predicted: usize) -> &[usize] {
        self.items
            .get(actual * self.classes + predicted)
            .map_or(&[], Vec::as_slice)
    }

    /// Items whose true class is `class` (the row sum).
    pub fn support(&self, class: usize) -> u64 {
        (0..self.classes).map(|p| self.count(class, p)).sum()
    }

    /// Items predicted as `class` (the column sum).
    pub fn predicted(&self, class: usize) -> u64 {
        (0..self.classes).map(|t| self.count(t, class)).sum()
    }
}

/// Precision, recall, F1 and support of one class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    /// `tp / (tp + fp)`, 0 when nothing was predicted as the class.
    pub precision: f64,
    /// `tp / (tp + fn)`, 0 when the class has no items.
    pub recall: f64,
    /// `2 tp / (2 tp + fp + fn)`, 0 when undefined.
    pub f1: f64,
    /// Items whose true class is this one.
    pub support: u64,
}

/// A one-vs-rest ROC curve: points sorted by decreasing threshold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RocCurve {
    /// False-positive rates, from 0 to 1.
    pub fpr: Vec<f64>,
    /// True-positive rates, from 0 to 1.
    pub tpr: Vec<f64>,
    /// Score thresholds (`score >= threshold` is positive); the first is `+inf`.
    #[serde(with = "thresholds_serde")]
    pub thresholds: Vec<f64>,
}

/// JSON has no infinity: thresholds are stored with `+inf` written as `null`.
mod thresholds_serde {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(values: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let finite: Vec<Option<f64>> = values.iter().map(|v| v.is_finite().then_some(*v)).collect();
        finite.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let values = Vec::<Option<f64>>::deserialize(d)?;
        Ok(values
            .into_iter()
            .map(|v| v.unwrap_or(f64::INFINITY))
            .collect())
    }
}

impl RocCurve {
    /// The trapezoidal area under the curve.
    pub fn auc(&self) -> f64 {
        self.fpr
            .windows(2)
            .zip(self.tpr.windows(2))
            .map(|(x, y)| (x[1] - x[0]) * (y[1] + y[0]) / 2.0)
            .sum()
    }
}

/// The one-vs-rest ROC curve of binary `positives` ranked by `scores`; `None` when all items
/// are positive or all negative (a rate would divide by zero).
pub fn roc_curve(scores: &[f64], positives: &[bool]) -> Option<RocCurve> {
    let mut order: Vec<usize> = (0..scores.len().min(positives.len())).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    // Cumulative true / false positives at the last item of each group of equal scores.
    let mut tps = Vec::new();
    let mut fps = Vec::new();
    let mut thresholds = vec![f64::INFINITY];
    let (mut tp, mut fp) = (0u64, 0u64);
    for (rank, &item) in order.iter().enumerate() {
        if positives[item] {
            tp += 1;
        } else {
            fp += 1;
        }
        let group_ends = order
            .get(rank + 1)
            .is_none_or(|&next| scores[next] != scores[item]);
        if group_ends {
            tps.push(tp);
            fps.push(fp);
            thresholds.push(scores[item]);
        }
    }
    if tp == 0 || fp == 0 {
        return None;
    }
    let rates = |counts: &[u64], total: u64| -> Vec<f64> {
        std::iter::once(0.0)
            .chain(counts.iter().map(|&c| c as f64 / total as f64))
            .collect()
    };
    Some(RocCurve {
        fpr: rates(&fps, fp),
        tpr: rates(&tps, tp),
        thresholds,
    })
}

/// The classification metrics of one evaluation (an epoch's validation set).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    /// Number of items evaluated.
    pub items: usize,
    /// Fraction of items whose arg-max class is the label.
    pub accuracy: f64,
    /// Mean recall over the classes present in the labels.
    pub balanced_accuracy: f64,
    /// Scores per class.
    pub per_class: Vec<ClassScores>,
    /// Unweighted mean F1 over all classes.
    pub macro_f1: f64,
    /// The confusion matrix (with item indices per cell until stripped).
    pub confusion: ConfusionMatrix,
    /// One-vs-rest ROC curve per class (`None` when undefined).
    pub roc: Vec<Option<RocCurve>>,
    /// One-vs-rest ROC-AUC per class (`None` when undefined).
    pub roc_auc: Vec<Option<f64>>,
    /// Mean ROC-AUC over the classes that have one (`None` when none has).
    pub macro_roc_auc: Option<f64>,
}

impl ClassificationMetrics {
    /// Computes every metric from row-major probabilities `[labels.len() x classes]`.
    pub fn compute(
        probabilities: &[f32],
        labels: &[i64],
        classes: usize,
    ) -> Result<Self, MetricsError> {
        let items = labels.len();
        if classes == 0 || probabilities.len() != items * classes {
            return Err(MetricsError::Shape {
                probabilities: probabilities.len(),
                items,
                classes,
            });
        }
        let truth = validate_labels(labels, classes)?;
        let predictions: Vec<usize> = probabilities.chunks(classes).map(argmax).collect();
        let confusion = ConfusionMatrix::from_pairs(classes, &truth, &predictions);
        let per_class: Vec<ClassScores> =
            (0..classes).map(|c| class_scores(&confusion, c)).collect();
        let correct: u64 = (0..classes).map(|c| confusion.count(c, c)).sum();
        let present: Vec<&ClassScores> = per_class.iter().filter(|s| s.support > 0).collect();
        let roc: Vec<Option<RocCurve>> = (0..classes)
            .map(|c| {
                let scores: Vec<f64> = probabilities
                    .chunks(classes)
                    .map(|row| f64::from(row[c]))
                    .collect();
                let positives: Vec<bool> = truth.iter().map(|&t| t == c).collect();
                roc_curve(&scores, &positives)
            })
            .collect();
        let roc_auc: Vec<Option<f64>> = roc.iter().map(|r| r.as_ref().map(RocCurve::auc)).collect();
        Ok(Self {
            items,
            accuracy: ratio(correct, items as u64),
            balanced_accuracy: mean(present.iter().map(|s| s.recall)).unwrap_or(0.0),
            macro_f1: mean(per_class.iter().map(|s| s.f1)).unwrap_or(0.0),
            per_class,
            confusion,
            roc,
            macro_roc_auc: mean(roc_auc.iter().flatten().copied()),
            roc_auc,
        })
    }

    /// Drops the per-cell item indices (kept for the inspector, not for the history).
    pub fn strip_items(&mut self) {
        self.confusion.items.clear();
    }
}

fn validate_labels(labels: &[i64], classes: usize) -> Result<Vec<usize>, MetricsError> {
    labels
        .iter()
        .enumerate()
        .map(|(item, &label)| match usize::try_from(label) {
            Ok(class) if class < classes => Ok(class),
            _ => Err(MetricsError::Label {
                item,
                label,
                classes,
            }),
        })
        .collect()
}

/// The predicted class of a row of scores, the one rule of the crate (metrics, inspection,
/// `predict`): the index of the first maximum (ties go to the lower index, like
/// `numpy.argmax`); a NaN never wins; an empty or all-NaN row gives 0.
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (index, &value) in row.iter().enumerate() {
        if value > row[best] || row[best].is_nan() && !value.is_nan() {
            best = index;
        }
    }
    best
}

fn class_scores(confusion: &ConfusionMatrix, class: usize) -> ClassScores {
    let tp = confusion.count(class, class);
    let support = confusion.support(class);
    let predicted = confusion.predicted(class);
    ClassScores {
        precision: ratio(tp, predicted),
        recall: ratio(tp, support),
        f1: ratio(2 * tp, support + predicted),
        support,
    }
}

/// `num / den`, 0 when `den` is 0.
fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// The mean of `values`, `None` when empty.
fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (count > 0).then(|| sum / count as f64)
}

/// Streaming pixel counts for segmentation: a `C x C` confusion matrix (row = true class,
/// column = predicted class) summed over batches, so a whole validation set is evaluated
/// without keeping its masks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentationAccumulator {
    classes: usize,
    counts: Vec<u64>,
}

impl SegmentationAccumulator {
    /// An empty accumulator for `classes` classes (2 for binary foreground / background).
    pub fn new(classes: usize) -> Self {
        Self {
            classes,
            counts: vec![0; classes * classes],
        }
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Adds predicted and true class per pixel; pixels whose target is `ignore_index` or
    /// outside `0..classes` are skipped, as are predictions outside that range.
    pub fn add_pixels(
        &mut self,
        predictions: &[i64],
        targets: &[i64],
        ignore_index: Option<i64>,
    ) -> Result<(), MetricsError> {
        if predictions.len() != targets.len() {
            return Err(MetricsError::PixelCount {
                predictions: predictions.len(),
                targets: targets.len(),
            });
        }
        let classes = self.classes;
        let in_range = |v: i64| usize::try_from(v).ok().filter(|&c| c < classes);
        for (&p, &t) in predictions.iter().zip(targets) {
            if Some(t) == ignore_index {
                continue;
            }
            if let (Some(p), Some(t)) = (in_range(p), in_range(t)) {
                self.counts[t * classes + p] += 1;
            }
        }
        Ok(())
    }

    /// Adds a `C x C` pixel confusion matrix computed elsewhere (e.g. on the device).
    pub fn add_confusion(&mut self, counts: &[u64]) -> Result<(), MetricsError> {
        if counts.len() != self.counts.len() {
            return Err(MetricsError::ConfusionShape {
                counts: counts.len(),
                classes: self.classes,
            });
        }
        for (total, &c) in self.counts.iter_mut().zip(counts) {
            *total += c;
        }
        Ok(())
    }

    /// Pixels of class `class` in both prediction and target.
    pub fn intersection(&self, class: usize) -> u64 {
        self.counts
            .get(class * self.classes + class)
            .copied()
            .unwrap_or(0)
    }

    /// Pixels predicted as `class`.
    pub fn predicted(&self, class: usize) -> u64 {
        (0..self.classes)
            .filter_map(|t| self.counts.get(t * self.classes + class))
            .sum()
    }

    /// Pixels whose target is `class`.
    pub fn target(&self, class: usize) -> u64 {
        self.counts
            .get(class * self.classes..(class + 1) * self.classes)
            .map_or(0, |row| row.iter().sum())
    }

    /// The metrics of everything added so far. `background` (usually 0) is left out of the
    /// means; for two classes the foreground is the other class.
    pub fn metrics(&self, background: Option<usize>) -> SegmentationMetrics {
        let dice: Vec<Option<f64>> = (0..self.classes)
            .map(|c| {
                let den = self.predicted(c) + self.target(c);
                (den > 0).then(|| 2.0 * self.intersection(c) as f64 / den as f64)
            })
            .collect();
        let iou: Vec<Option<f64>> = (0..self.classes)
            .map(|c| {
                let union = self.predicted(c) + self.target(c) - self.intersection(c);
                (union > 0).then(|| self.intersection(c) as f64 / union as f64)
            })
            .collect();
        let counted = |values: &[Option<f64>]| {
            let kept = values
                .iter()
                .enumerate()
                .filter(|(c, _)| Some(*c) != background)
                .filter_map(|(_, v)| *v);
            mean(kept)
        };
        let pixels: u64 = self.counts.iter().sum();
        let correct: u64 = (0..self.classes).map(|c| self.intersection(c)).sum();
        let foreground = match (self.classes, background) {
            (2, Some(b)) if b < 2 => Some(1 - b),
            _ => None,
        };
        SegmentationMetrics {
            pixels,
            pixel_accuracy: ratio(correct, pixels),
            mean_dice: counted(&dice),
            mean_iou: counted(&iou),
            foreground_dice: foreground.and_then(|c| dice[c]),
            foreground_iou: foreground.and_then(|c| iou[c]),
            dice,
            iou,
        }
    }
}

/// The segmentation metrics of one evaluation. Dice and IoU are computed from the summed
/// counts (`2|P∩T| / (|P|+|T|)`, `|P∩T| / |P∪T|`), `None` for a class absent from both.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentationMetrics {
    /// Pixels counted (ignored pixels excluded).
    pub pixels: u64,
    /// Fraction of counted pixels whose class is right.
    pub pixel_accuracy: f64,
    /// Dice per class.
    pub dice: Vec<Option<f64>>,
    /// IoU (Jaccard) per class.
    pub iou: Vec<Option<f64>>,
    /// Mean Dice over the defined, non-background classes.
    pub mean_dice: Option<f64>,
    /// Mean IoU over the defined, non-background classes.
    pub mean_iou: Option<f64>,
    /// Binary tasks: Dice of the foreground class.
    pub foreground_dice: Option<f64>,
    /// Binary tasks: IoU of the foreground class.
    pub foreground_iou: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_maximum_and_never_a_nan() {
        assert_eq!(argmax(&[0.1, 0.7, 0.7, 0.2]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.2, 0.5]), 2);
        assert_eq!(argmax(&[0.3, f32::NAN, 0.1]), 0);
        assert_eq!(argmax(&[f32::NAN, f32::NAN]), 0);
        assert_eq!(argmax(&[]), 0);
    }

    #[test]
    fn roc_with_ties_matches_hand_computation() {
        // Scores 0.9 (+), 0.5 (+), 0.5 (-), 0.1 (-): tie at 0.5 is one diagonal step.
        let curve = roc_curve(&[0.9, 0.5, 0.5, 0.1], &[true, true, false, false]).unwrap();
        assert_eq!(curve.fpr, vec![0.0, 0.0, 0.5, 1.0]);
        assert_eq!(curve.tpr, vec![0.0, 0.5, 1.0, 1.0]);
        assert_eq!(curve.thresholds[1..], [0.9, 0.5, 0.1]);
        assert!(curve.thresholds[0].is_infinite());
        assert!((curve.auc() - 0.875).abs() < 1e-12);
    }

    #[test]
    fn all_equal_scores_give_half_auc_and_absent_class_gives_none() {
        let probabilities = [0.5f32; 8];
        let metrics = ClassificationMetrics::compute(&probabilities, &[0, 1, 0, 1], 2).unwrap();
        assert_eq!(metrics.roc_auc, vec![Some(0.5), Some(0.5)]);
        // Ties go to the first class.
        assert_eq!(metrics.confusion.counts, vec![2, 0, 2, 0]);
        let probabilities = [0.7f32, 0.2, 0.1, 0.6, 0.3, 0.1, 0.2, 0.7, 0.1];
        let metrics = ClassificationMetrics::compute(&probabilities, &[0, 0, 1], 3).unwrap();
        assert_eq!(metrics.roc_auc[2], None);
        assert!(metrics.roc[2].is_none());
        assert_eq!(metrics.macro_roc_auc, Some(1.0));
        assert_eq!(metrics.per_class[2].support, 0);
        assert_eq!(metrics.per_class[2].f1, 0.0);
        assert_eq!(metrics.balanced_accuracy, 1.0);
        assert_eq!(metrics.confusion.items_in(0, 0), &[0, 1]);
        assert_eq!(metrics.confusion.items_in(1, 1), &[2]);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(ClassificationMetrics::compute(&[0.5; 3], &[0, 1], 2).is_err());
        assert!(ClassificationMetrics::compute(&[0.5; 4], &[0, 2], 2).is_err());
        assert!(ClassificationMetrics::compute(&[0.5; 4], &[0, -1], 2).is_err());
        let empty = ClassificationMetrics::compute(&[], &[], 2).unwrap();
        assert_eq!(empty.macro_roc_auc, None);
    }

    #[test]
    fn segmentation_counts_dice_and_iou() {
        let mut acc = SegmentationAccumulator::new(2);
        // Two batches: prediction and target foreground overlap in 2 of 3 + 3 pixels.
        acc.add_pixels(&[1, 1, 0, 0], &[1, 0, 1, 0], None).unwrap();
        acc.add_pixels(&[1, 0, 255], &[1, 0, 255], Some(255))
            .unwrap();
        let m = acc.metrics(Some(0));
        assert_eq!(m.pixels, 6);
        // Foreground: intersection 2, predicted 3, target 3.
        assert!((m.foreground_dice.unwrap() - 4.0 / 6.0).abs() < 1e-12);
        assert!((m.foreground_iou.unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(m.mean_dice, m.foreground_dice);
        assert!((m.pixel_accuracy - 4.0 / 6.0).abs() < 1e-12);
        let mut streamed = SegmentationAccumulator::new(2);
        streamed.add_confusion(&[2, 1, 1, 2]).unwrap();
        assert_eq!(streamed, acc);
    }

    #[test]
    fn empty_masks_give_undefined_not_nan() {
        let mut acc = SegmentationAccumulator::new(3);
        acc.add_pixels(&[0, 0, 0], &[0, 0, 0], None).unwrap();
        let m = acc.metrics(Some(0));
        assert_eq!(m.dice, vec![Some(1.0), None, None]);
        assert_eq!(m.mean_dice, None);
        assert_eq!(m.foreground_dice, None);
        let all = acc.metrics(None);
        assert_eq!(all.mean_iou, Some(1.0));
    }
}
