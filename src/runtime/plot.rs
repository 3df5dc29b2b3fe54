//! The curves of a run as the Training tab plots them, live (per step and per epoch, fed by
//! events) or stored (from the run catalogue's [`RunCurves`]). The runs themselves are
//! listed by [`crate::train::catalogue`].

use std::collections::BTreeMap;

use super::series::Series;
use crate::train::catalogue::{RunCurves, validation_points};
use crate::train::events::EpochMetrics;

/// The plot series of a run: per step (live only) and per epoch.
#[derive(Clone, Debug, Default)]
pub struct PlotCurves {
    /// Training loss per optimiser step (x: global step).
    pub step_loss: Series,
    /// Learning rate per step (x: global step; per epoch end for stored runs).
    pub step_lr: Series,
    /// Mean training loss per epoch (x: 1-based epoch).
    pub train_loss: Series,
    /// Validation loss per epoch.
    pub val_loss: Series,
    /// Validation metrics per epoch by name (accuracy, balanced_accuracy, macro_f1, ...).
    pub metrics: BTreeMap<String, Series>,
}

impl PlotCurves {
    /// Adds one epoch's metrics of a `task` run (`epoch` is 0-based).
    pub fn add_epoch(
        &mut self,
        task: crate::task::TaskKind,
        epoch: usize,
        train: &EpochMetrics,
        validation: &EpochMetrics,
    ) {
        let x = (epoch + 1) as f64;
        self.train_loss.push(x, train.loss);
        self.val_loss.push(x, validation.loss);
        for (name, value) in validation_points(task, validation) {
            self.metrics.entry(name).or_default().push(x, value);
        }
    }

    /// The plot series of a stored run's curves.
    pub fn from_curves(curves: &RunCurves) -> Self {
        let mut plot = Self::default();
        for (i, &x) in curves.epochs.iter().enumerate() {
            let at = |v: &[f64]| v.get(i).copied().unwrap_or(f64::NAN);
            plot.train_loss.push(x, at(&curves.train_loss));
            plot.val_loss.push(x, at(&curves.loss));
            for (name, values) in &curves.metrics {
                let value = at(values);
                if !value.is_nan() {
                    plot.metrics.entry(name.clone()).or_default().push(x, value);
                }
            }
        }
        for &[step, lr] in &curves.lr {
            plot.step_lr.push(step, lr);
        }
        plot
    }
}
