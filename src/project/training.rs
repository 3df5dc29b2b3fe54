//! The Training tab's settings for the project's next run, kept in `project.ron` so they
//! survive a restart. Plain serde data: the run's [`TrainConfig`] (no tch types) and the
//! name of the augmentation preset it was made with.

use serde::{Deserialize, Serialize};

use crate::run_config::TrainConfig;

/// The augmentation preset of new settings.
pub const DEFAULT_AUGMENT_PRESET: &str = "default";

/// The settings of the project's next run as last edited in the Training tab.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainingSettings {
    /// The run's settings; its `augment` is the preset's. Its backbone and input size
    /// follow the project's own fields, which win when the two disagree.
    pub config: TrainConfig,
    /// The augmentation preset's name (`none`, `light`, `default`, `strong`).
    pub augment: String,
}

impl Default for TrainingSettings {
    fn default() -> Self {
        Self {
            config: TrainConfig::default(),
            augment: DEFAULT_AUGMENT_PRESET.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run_config::{OptimizerKind, Schedule};

    #[test]
    fn settings_round_trip_and_partial_text_takes_defaults() {
        let settings = TrainingSettings {
            config: TrainConfig {
                lr: 3e-4,
                epochs: 7,
                optimizer: OptimizerKind::Sgd {
                    momentum: 0.9,
                    nesterov: true,
                    weight_decay: 1e-4,
                },
                schedule: Schedule::OneCycle { pct_start: 0.3 },
                ..TrainConfig::default()
            },
            augment: "strong".into(),
        };
        let text = ron::ser::to_string_pretty(&settings, Default::default()).unwrap();
        assert_eq!(ron::from_str::<TrainingSettings>(&text).unwrap(), settings);
        let partial: TrainingSettings = ron::from_str("(config: (epochs: 3))").unwrap();
        assert_eq!(partial.config.epochs, 3);
        assert_eq!(partial.config.lr, TrainConfig::default().lr);
        assert_eq!(partial.augment, DEFAULT_AUGMENT_PRESET);
    }
}
