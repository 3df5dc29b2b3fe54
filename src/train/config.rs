//! The training layer's side of a run's settings ([`crate::run_config`], re-exported here):
//! validation against the task, the monitored value, the model layer's weights choice and
//! the CPU's bf16 default.

use crate::model::WeightsChoice;
pub use crate::run_config::*;

/// The mask value of pixels that count in neither loss nor metrics (unlabelled borders).
pub const SEG_IGNORE_INDEX: i64 = 255;

impl WeightsSpec {
    /// The model layer's choice.
    pub fn choice(&self) -> WeightsChoice {
        match self {
            WeightsSpec::Pretrained => WeightsChoice::Pretrained,
            WeightsSpec::Random => WeightsChoice::Random,
            WeightsSpec::File(path) => WeightsChoice::File(path.clone()),
        }
    }
}

impl Monitor {
    /// The monitored value in `validation` (NaN when the metric is undefined, which never
    /// counts as an improvement).
    pub fn value(&self, validation: &super::EpochMetrics) -> f64 {
        match self.name() {
            "val_loss" => validation.loss,
            "val_accuracy" => validation.accuracy,
            name => name
                .strip_prefix("val_")
                .and_then(|key| validation.extra.get(key).copied())
                .unwrap_or(f64::NAN),
        }
    }

    /// Whether the metric exists for `task`.
    pub fn fits(&self, task: TaskKind) -> bool {
        super::task::train_task(task).monitor_key(self).is_some()
    }

    /// Whether a larger value is an improvement for `task` (false for a metric the task
    /// does not report, which validation refuses).
    pub fn higher_is_better(&self, task: TaskKind) -> bool {
        super::task::train_task(task)
            .monitor_key(self)
            .is_some_and(|key| key.higher_is_better)
    }
}

impl TrainConfig {
    /// Refuses settings the loop cannot run, naming the setting.
    pub fn validate(&self) -> Result<(), super::TrainError> {
        let bad = |what: &str| Err(super::TrainError::Config(what.to_owned()));
        if self.epochs == 0 {
            return bad("epochs must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch size must be at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("the learning rate must be a positive number");
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad("label smoothing must be in [0, 1)");
        }
        if !(0.0..1.0).contains(&self.head_dropout) {
            return bad("head dropout must be in [0, 1)");
        }
        if self.input_size_px < 8 {
            return bad("the input size must be at least 8 px");
        }
        if let Strategy::Staged {
            layer_groups,
            lr_decay,
            ..
        } = self.strategy
            && (layer_groups == 0 || !(lr_decay > 0.0 && lr_decay <= 1.0))
        {
            return bad("staged: layer groups must be >= 1 and the decay in (0, 1]");
        }
        self.validate_task()
    }

    fn validate_task(&self) -> Result<(), super::TrainError> {
        let bad = |what: String| Err(super::TrainError::Config(what));
        let task = super::task::train_task(self.task);
        if task.monitor_key(&self.monitor).is_none() {
            return bad(format!(
                "the monitored metric {} does not exist for {:?}",
                self.monitor.name(),
                self.task
            ));
        }
        task.validate(self)?;
        if !(self.eval_crop_fraction > 0.1 && self.eval_crop_fraction <= 1.0) {
            return bad(format!(
                "the evaluation crop fraction must be in (0.1, 1], got {}",
                self.eval_crop_fraction
            ));
        }
        if self.threads == Some(0) {
            return bad("threads must be at least 1".into());
        }
        Ok(())
    }
}

impl TrainConfig {
    /// The settings of `project`'s next run: those saved by the Training tab (else the
    /// defaults, monitoring the task's own metric), with the project's task, backbone and
    /// input size.
    pub fn for_project(project: &crate::project::Project) -> Self {
        let saved = project.training.is_some();
        let mut config = project
            .training
            .as_ref()
            .map(|t| t.config.clone())
            .unwrap_or_default();
        if !saved {
            let task = super::task::train_task(project.task);
            config.monitor = Monitor::new(task.default_monitor());
            config.min_steps = task.default_min_steps();
            let chosen = super::data_defaults::data_defaults(&project.dataset, project.task);
            config.eval_crop_fraction = chosen.eval_crop_fraction;
            if let Some(augment) =
                crate::data::augment::AugmentConfig::preset(chosen.augment_preset)
            {
                config.augment = augment;
            }
        }
        config.task = project.task;
        config.backbone = project.backbone.clone();
        config.input_size_px = project.input_size_px;
        config
    }

    /// Whether frozen-backbone passes run in bfloat16 (`on_cpu`: the job runs on the CPU).
    pub fn use_bf16_frozen(&self, on_cpu: bool) -> bool {
        self.bf16_frozen
            .unwrap_or(on_cpu && crate::model::cpu_bf16::bf16_by_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_steps_add_epochs_on_small_data_only() {
        let config = TrainConfig {
            epochs: 10,
            min_steps: 200,
            ..TrainConfig::default()
        };
        // 11 images at batch 32: one step an epoch.
        assert_eq!(config.epochs_for(1), 200);
        assert_eq!(config.epochs_for(3), 67);
        // Enough steps already: the epochs as set.
        assert_eq!(config.epochs_for(20), 10);
        assert_eq!(config.epochs_for(0), 200);
        let tiny = TrainConfig {
            min_steps: 100_000,
            ..config.clone()
        };
        assert_eq!(tiny.epochs_for(1), MAX_AUTO_EPOCHS);
        let exact = TrainConfig {
            min_steps: 0,
            ..config
        };
        assert_eq!(exact.epochs_for(1), 10);
    }

    #[test]
    fn config_round_trips_through_ron_and_validates() {
        let config = TrainConfig {
            strategy: Strategy::Staged {
                warmup_epochs: 2,
                layer_groups: 3,
                lr_decay: 0.5,
            },
            early_stopping: Some(EarlyStopping {
                patience: 3,
                min_delta: 0.0,
            }),
            ..TrainConfig::default()
        };
        let text = ron::ser::to_string_pretty(&config, Default::default()).unwrap();
        let back: TrainConfig = ron::from_str(&text).unwrap();
        assert_eq!(back, config);
        assert!(back.validate().is_ok());
        let bad = TrainConfig {
            lr: f64::NAN,
            ..TrainConfig::default()
        };
        assert!(bad.validate().is_err());
        let seg = TrainConfig {
            task: TaskKind::Segmentation,
            monitor: Monitor::new("val_dice"),
            ..TrainConfig::default()
        };
        assert!(seg.validate().is_ok());
        let text = ron::ser::to_string_pretty(&seg, Default::default()).unwrap();
        assert_eq!(ron::from_str::<TrainConfig>(&text).unwrap(), seg);
        for wrong in [
            TrainConfig {
                monitor: Monitor::new("val_dice"),
                ..TrainConfig::default()
            },
            TrainConfig {
                monitor: Monitor::new("val_macro_auc"),
                ..seg.clone()
            },
            TrainConfig {
                strategy: Strategy::LinearProbe,
                ..seg.clone()
            },
        ] {
            assert!(wrong.validate().is_err(), "{wrong:?}");
        }
        // Configs frozen before the task existed still load.
        let old = "(backbone: \"resnet18\", epochs: 2)";
        assert_eq!(
            ron::from_str::<TrainConfig>(old).unwrap().task,
            TaskKind::Classification
        );
        // Configs frozen with the class count inside the task still load (the count now
        // comes from the run's data).
        let legacy =
            "(backbone: \"resnet18\", task: Segmentation(classes: 2), monitor: ValidationDice)";
        let legacy = ron::from_str::<TrainConfig>(legacy).unwrap();
        assert_eq!(legacy.task, TaskKind::Segmentation);
        assert_eq!(legacy.monitor, Monitor::new("val_dice"));
        assert!(legacy.validate().is_ok());
        assert!(
            TrainConfig {
                monitor: Monitor::new("val_bogus"),
                ..TrainConfig::default()
            }
            .validate()
            .is_err()
        );
        assert!(default_threads() >= 1);
        assert_eq!(Monitor::default().name(), super::super::task::VAL_LOSS.name);
    }
}
