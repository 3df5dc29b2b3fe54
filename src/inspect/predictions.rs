//! Per-image predictions of a run on a split, and the views of them the inspector shows:
//! top losses, the confusion matrix with the samples in each cell, per-class ROC curves.
//!
//! Conventions follow [`crate::train::metrics`] (scikit-learn 1.x): the predicted class is
//! the first maximum of the probabilities, confusion rows are true classes, ROC curves are
//! one-vs-rest.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::InspectError;
use crate::train::metrics::{ClassificationMetrics, RocCurve, argmax, roc_curve};

/// The predictions of a run for every sample of a split, in sample order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Predictions {
    /// Class names in index order.
    pub classes: Vec<String>,
    /// Stable sample ids (the path relative to the data root for real data).
    pub ids: Vec<String>,
    /// Image files, when the data comes from files.
    pub paths: Vec<Option<PathBuf>>,
    /// True class per sample.
    pub labels: Vec<usize>,
    /// Class probabilities per sample (softmax of the logits).
    pub probabilities: Vec<Vec<f32>>,
    /// Cross-entropy loss per sample (no label smoothing, no class weights).
    pub losses: Vec<f32>,
    /// Predicted class per sample (arg-max, the first maximum on ties).
    pub predicted: Vec<usize>,
}

/// One sample of [`Predictions::top_losses`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossEntry {
    /// Sample index in the split.
    pub index: usize,
    /// Sample id.
    pub id: String,
    /// True class index.
    pub label: usize,
    /// Predicted class index.
    pub predicted: usize,
    /// The sample's loss.
    pub loss: f32,
    /// Probability of the true class.
    pub probability_of_label: f32,
    /// Probability of the predicted class.
    pub probability_of_predicted: f32,
}

impl Predictions {
    /// Builds the predictions from row-major logits `[labels.len() x classes.len()]`;
    /// `ids` and `paths` are per sample (empty `paths` means none are files).
    pub fn from_logits(
        classes: Vec<String>,
        ids: Vec<String>,
        paths: Vec<Option<PathBuf>>,
        labels: &[i64],
        logits: &[f32],
    ) -> Result<Self, InspectError> {
        let n = labels.len();
        let c = classes.len();
        if c == 0 || logits.len() != n * c || ids.len() != n {
            return Err(InspectError::Invalid(format!(
                "{} logits and {} ids do not fit {n} samples of {c} classes",
                logits.len(),
                ids.len()
            )));
        }
        let paths = if paths.is_empty() {
            vec![None; n]
        } else if paths.len() == n {
            paths
        } else {
            return Err(InspectError::Invalid(format!(
                "{} paths for {n} samples",
                paths.len()
            )));
        };
        let labels: Vec<usize> = labels
            .iter()
            .map(|&l| usize::try_from(l).ok().filter(|&l| l < c))
            .collect::<Option<_>>()
            .ok_or_else(|| InspectError::Invalid(format!("a label is outside 0..{c}")))?;
        let mut probabilities = Vec::with_capacity(n);
        let mut losses = Vec::with_capacity(n);
        for (row, &label) in logits.chunks(c).zip(&labels) {
            let (p, log_z) = softmax(row);
            losses.push((log_z - f64::from(row[label])) as f32);
            probabilities.push(p);
        }
        let predicted = probabilities.iter().map(|p| argmax(p)).collect();
        Ok(Self {
            classes,
            ids,
            paths,
            labels,
            probabilities,
            losses,
            predicted,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The `n` samples with the highest loss, highest first (ties by sample index).
    pub fn top_losses(&self, n: usize) -> Vec<LossEntry> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by(|&a, &b| self.losses[b].total_cmp(&self.losses[a]).then(a.cmp(&b)));
        order
            .into_iter()
            .take(n)
            .map(|index| {
                let (label, predicted) = (self.labels[index], self.predicted[index]);
                LossEntry {
                    index,
                    id: self.ids[index].clone(),
                    label,
                    predicted,
                    loss: self.losses[index],
                    probability_of_label: self.probabilities[index][label],
                    probability_of_predicted: self.probabilities[index][predicted],
                }
            })
            .collect()
    }

    /// Sample indices per confusion cell: `cells[truth][predicted]`, in sample order.
    pub fn confusion_cells(&self) -> Vec<Vec<Vec<usize>>> {
        let c = self.classes.len();
        let mut cells = vec![vec![Vec::new(); c]; c];
        for (index, (&t, &p)) in self.labels.iter().zip(&self.predicted).enumerate() {
            cells[t][p].push(index);
        }
        cells
    }

    /// Confusion counts: `counts[truth][predicted]`.
    pub fn confusion_counts(&self) -> Vec<Vec<usize>> {
        self.confusion_cells()
            .iter()
            .map(|row| row.iter().map(Vec::len).collect())
            .collect()
    }

    /// The one-vs-rest ROC curve of each class (`None` for a class with no positive or no
    /// negative sample).
    pub fn roc_curves(&self) -> Vec<Option<RocCurve>> {
        (0..self.classes.len())
            .map(|class| {
                let scores: Vec<f64> = self
                    .probabilities
                    .iter()
                    .map(|p| f64::from(p[class]))
                    .collect();
                let positives: Vec<bool> = self.labels.iter().map(|&l| l == class).collect();
                roc_curve(&scores, &positives)
            })
            .collect()
    }

    /// The one-vs-rest ROC-AUC of each class (`None` where undefined).
    pub fn roc_auc(&self) -> Vec<Option<f64>> {
        self.roc_curves()
            .iter()
            .map(|r| r.as_ref().map(RocCurve::auc))
            .collect()
    }

    /// The full classification metrics (accuracy, F1, ...) of these predictions.
    pub fn metrics(&self) -> Result<ClassificationMetrics, InspectError> {
        let flat: Vec<f32> = self.probabilities.concat();
        let labels: Vec<i64> = self.labels.iter().map(|&l| l as i64).collect();
        Ok(ClassificationMetrics::compute(
            &flat,
            &labels,
            self.classes.len(),
        )?)
    }
}

/// Softmax of `logits` in f64, and the log of its normaliser (log-sum-exp).
fn softmax(logits: &[f32]) -> (Vec<f32>, f64) {
    let max = logits
        .iter()
        .map(|&v| f64::from(v))
        .fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = logits.iter().map(|&v| (f64::from(v) - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    let probabilities = exps.iter().map(|e| (e / sum) as f32).collect();
    (probabilities, max + sum.ln())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_samples() -> Predictions {
        let classes = vec!["a".into(), "b".into(), "c".into()];
        let ids = vec!["x".into(), "y".into(), "z".into()];
        // Sample 0: confident and right; 1: wrong (predicts c); 2: tie between a and b.
        let logits = [5.0, 0.0, 0.0, 0.0, 1.0, 3.0, 2.0, 2.0, 0.0];
        Predictions::from_logits(classes, ids, Vec::new(), &[0, 1, 1], &logits).unwrap()
    }

    #[test]
    fn losses_probabilities_and_predictions_follow_the_logits() {
        let p = three_samples();
        assert_eq!(p.predicted, vec![0, 2, 0]);
        let z: f64 = (5f64.exp() + 2.0) / 5f64.exp();
        assert!((f64::from(p.losses[0]) - z.ln()).abs() < 1e-6);
        for row in &p.probabilities {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        let lse = (1f64.exp() + 3f64.exp() + 1.0).ln();
        assert!((f64::from(p.losses[1]) - (lse - 1.0)).abs() < 1e-6);
    }

    #[test]
    fn top_losses_and_confusion_cells_name_the_samples() {
        let p = three_samples();
        let top = p.top_losses(2);
        assert_eq!(top.iter().map(|e| e.index).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!((top[0].label, top[0].predicted), (1, 2));
        assert!(top[0].loss >= top[1].loss);
        assert_eq!(p.top_losses(10).len(), 3);
        let cells = p.confusion_cells();
        assert_eq!(cells[0][0], vec![0]);
        assert_eq!(cells[1][2], vec![1]);
        assert_eq!(cells[1][0], vec![2]);
        assert_eq!(
            p.confusion_counts(),
            vec![vec![1, 0, 0], vec![1, 0, 1], vec![0, 0, 0]]
        );
        // Class c has no positive sample: no curve.
        let auc = p.roc_auc();
        assert_eq!(auc[2], None);
        assert_eq!(auc[0], Some(1.0));
    }

    #[test]
    fn mismatched_inputs_are_errors() {
        let classes = vec!["a".to_owned(), "b".to_owned()];
        let ids = vec!["x".to_owned()];
        let bad_shape =
            Predictions::from_logits(classes.clone(), ids.clone(), Vec::new(), &[0], &[1.0]);
        assert!(bad_shape.is_err());
        let bad_label = Predictions::from_logits(classes, ids, Vec::new(), &[2], &[1.0, 0.0]);
        assert!(bad_label.is_err());
    }
}
