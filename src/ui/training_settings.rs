//! The Training tab's settings panel: backbone with its facts, strategy and every
//! hyper-parameter of [`TrainConfig`], each with a tooltip. The settings live in the view
//! (one draft per project folder), are saved into the project as they change, and travel to
//! the worker inside the Start command.

use crate::model::backbone::known_backbones;
use crate::project::{DEFAULT_AUGMENT_PRESET, TaskKind, TrainingSettings};
use crate::runtime::weights::WeightsState;
use crate::runtime::{FactsCache, UiCommand};
use crate::train::config::DetectorHead;
use crate::train::{
    Balancing, EarlyStopping, Monitor, OptimizerKind, Schedule, Strategy, TrainConfig, WeightsSpec,
};

/// Augmentation presets of [`crate::data::augment::AugmentConfig::preset`].
pub const AUGMENT_PRESETS: [&str; 4] = ["none", "light", "default", "strong"];

/// The settings of one project's next run.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    /// Everything but the augmentation.
    pub config: TrainConfig,
    /// The augmentation preset's name.
    pub augment: String,
}

impl Draft {
    /// The settings for a project: `template` with the project's backbone and input size;
    /// random weights where the backbone ships none.
    pub fn for_project(template: &TrainConfig, backbone: &str, input_size_px: u32) -> Self {
        let mut config = TrainConfig {
            backbone: backbone.to_owned(),
            input_size_px,
            ..template.clone()
        };
        fix_weights(&mut config, false);
        Self {
            config,
            augment: DEFAULT_AUGMENT_PRESET.to_owned(),
        }
    }

    /// A new project's settings: the defaults for its task and data
    /// (`TrainConfig::for_project`, `crate::train::data_defaults`).
    pub fn from_data(project: &crate::project::Project) -> Self {
        let config = TrainConfig::for_project(project);
        let chosen = crate::train::data_defaults::data_defaults(&project.dataset, project.task);
        let mut draft = Self::for_project(&config, &project.backbone, project.input_size_px);
        draft.augment = chosen.augment_preset.to_owned();
        draft
    }

    /// The settings saved in a project; the project's backbone and input size win.
    /// Saved "pretrained" stays for a backbone without shipped weights until the weight
    /// listing shows no downloaded ones ([`settings_ui`]).
    pub fn from_saved(saved: &TrainingSettings, backbone: &str, input_size_px: u32) -> Self {
        let mut draft = Self::for_project(&saved.config, backbone, input_size_px);
        if saved.config.weights == WeightsSpec::Pretrained {
            draft.config.weights = WeightsSpec::Pretrained;
        }
        if AUGMENT_PRESETS.contains(&saved.augment.as_str()) {
            draft.augment.clone_from(&saved.augment);
        }
        draft
    }

    /// The settings as the project keeps them.
    pub fn to_saved(&self) -> TrainingSettings {
        TrainingSettings {
            config: self.to_config(),
            augment: self.augment.clone(),
        }
    }

    /// The config to train: the draft with its augmentation preset applied.
    pub fn to_config(&self) -> TrainConfig {
        let mut config = self.config.clone();
        if let Some(augment) = crate::data::augment::AugmentConfig::preset(&self.augment) {
            config.augment = augment;
        }
        config
    }
}

/// Pretrained weights only where the backbone ships them or `downloaded` ones are here.
fn fix_weights(config: &mut TrainConfig, downloaded: bool) {
    let pretrained = downloaded
        || known_backbones()
            .into_iter()
            .any(|b| b.name == config.backbone && b.pretrained.is_some());
    if config.weights == WeightsSpec::Pretrained && !pretrained {
        config.weights = WeightsSpec::Random;
    }
}

/// A label with a tooltip, the widget labelled by it, and the end of the grid row.
fn row(
    ui: &mut egui::Ui,
    name: &str,
    tip: &str,
    add: impl FnOnce(&mut egui::Ui) -> egui::Response,
) -> egui::Response {
    let label = ui.label(name).on_hover_text(tip).id;
    let response = add(ui).labelled_by(label).on_hover_text(tip);
    ui.end_row();
    response
}

/// A combo box of `(value, text)` choices; its response is changed when a choice changed
/// `value` (egui's `show_ui` alone never marks it).
fn choice<T: PartialEq + Clone>(
    ui: &mut egui::Ui,
    id: &str,
    value: &mut T,
    choices: &[(T, &str)],
) -> egui::Response {
    let selected = choices
        .iter()
        .find(|(v, _)| v == value)
        .map_or("", |(_, text)| *text);
    let mut changed = false;
    let mut response = egui::ComboBox::from_id_salt(id)
        .selected_text(selected)
        .show_ui(ui, |ui| {
            for (v, text) in choices {
                changed |= ui.selectable_value(value, v.clone(), *text).changed();
            }
        })
        .response;
    if changed {
        response.mark_changed();
    }
    response
}

/// Draws the settings of `draft`; `task` decides which metrics can be monitored,
/// `data_reasons` say how a new project's defaults follow its images, and `weights` says
/// which catalogue weights are here or downloading.
pub fn settings_ui(
    ui: &mut egui::Ui,
    draft: &mut Draft,
    (task, data_reasons): (TaskKind, &[String]),
    (facts, weights): (&FactsCache, &WeightsState),
    commands: &mut Vec<UiCommand>,
) {
    ui.heading("Model");
    let downloaded = super::weights_picker::has_downloaded(weights, &draft.config.backbone);
    if weights.options_of(&draft.config.backbone).is_some() {
        fix_weights(&mut draft.config, downloaded);
    }
    egui::Grid::new("training_model")
        .num_columns(2)
        .spacing([10.0, 6.0])
        .show(ui, |ui| model_rows_ui(ui, &mut draft.config, task, weights));
    backbone_facts_ui(ui, &draft.config.backbone, facts, commands);
    super::weights_picker::weights_picker_ui(ui, &draft.config.backbone, weights, commands);
    ui.add_space(6.0);
    ui.heading("Optimisation");
    egui::Grid::new("training_optimisation")
        .num_columns(2)
        .spacing([10.0, 6.0])
        .show(ui, |ui| optimisation_rows_ui(ui, &mut draft.config));
    ui.add_space(6.0);
    ui.heading("Data and evaluation");
    egui::Grid::new("training_data")
        .num_columns(2)
        .spacing([10.0, 6.0])
        .show(ui, |ui| data_rows_ui(ui, draft, task));
    egui::CollapsingHeader::new("Defaults chosen from the images")
        .id_salt("training_data_defaults")
        .show(ui, |ui| {
            for reason in data_reasons {
                ui.label(format!("• {reason}"));
            }
            ui.weak("They apply to a project's first settings; change any of them above.");
        });
}

/// The model rows; "pretrained" means downloaded catalogue weights (`weights`) for a
/// backbone that ships none.
fn model_rows_ui(ui: &mut egui::Ui, c: &mut TrainConfig, task: TaskKind, weights: &WeightsState) {
    let names: Vec<(String, &str)> = known_backbones()
        .into_iter()
        .map(|b| (b.name.to_owned(), b.name))
        .collect();
    let changed = row(
        ui,
        "Backbone",
        "The pretrained network whose features are reused",
        |ui| choice(ui, "train_backbone", &mut c.backbone, &names),
    )
    .changed();
    if changed {
        fix_weights(
            c,
            super::weights_picker::has_downloaded(weights, &c.backbone),
        );
    }
    let pretrained = super::weights_picker::has_downloaded(weights, &c.backbone)
        || known_backbones()
            .into_iter()
            .any(|b| b.name == c.backbone && b.pretrained.is_some());
    row(
        ui,
        "Weights",
        "Start from the shipped (else the downloaded) pretrained weights, or from random \
         ones (seeded)",
        |ui| {
            ui.add_enabled_ui(pretrained, |ui| {
                choice(
                    ui,
                    "train_weights",
                    &mut c.weights,
                    &[
                        (WeightsSpec::Pretrained, "pretrained"),
                        (WeightsSpec::Random, "random"),
                    ],
                )
            })
            .inner
        },
    );
    if task == TaskKind::Detection {
        let tip = "Objects as points: class heatmaps with box size and offset at 1/4 of the \
                   input (any backbone, no suppression). YOLO: YOLOv3-tiny's anchor heads \
                   at 1/16 and 1/32 with suppression; with the yolov3_tiny backbone and \
                   pretrained weights they start from the COCO detector.";
        row(ui, "Detection head", tip, |ui| {
            choice(
                ui,
                "train_detector",
                &mut c.detector,
                &[
                    (DetectorHead::CenterNet, "objects as points"),
                    (DetectorHead::Yolo, "YOLO (v3-tiny)"),
                ],
            )
        });
    }
    let strategies = [
        (Strategy::LinearProbe, "linear probe"),
        (Strategy::FineTune, "fine-tune"),
        (
            Strategy::Staged {
                warmup_epochs: 1,
                layer_groups: 4,
                lr_decay: 0.5,
            },
            "staged",
        ),
    ];
    let mut kind = strategies
        .iter()
        .position(|(s, _)| s.label() == c.strategy.label())
        .unwrap_or(1);
    let labelled: Vec<(usize, &str)> = strategies
        .iter()
        .enumerate()
        .map(|(i, s)| (i, s.1))
        .collect();
    let tip = "Linear probe: only the head, on cached embeddings of the frozen backbone (fast; \
               for detection the neck and head on its cached feature maps). \
               Fine-tune: everything at one rate. Staged: the head first, then everything \
               with smaller rates for earlier layers.";
    if row(ui, "Strategy", tip, |ui| {
        choice(ui, "train_strategy", &mut kind, &labelled)
    })
    .changed()
    {
        c.strategy = strategies[kind].0;
    }
    if let Strategy::Staged {
        warmup_epochs,
        layer_groups,
        lr_decay,
    } = &mut c.strategy
    {
        row(
            ui,
            "Head warm-up epochs",
            "Epochs training the head alone",
            |ui| ui.add(egui::DragValue::new(warmup_epochs).range(0..=100)),
        );
        row(
            ui,
            "Layer groups",
            "Backbone groups with their own learning rate",
            |ui| ui.add(egui::DragValue::new(layer_groups).range(1..=16)),
        );
        row(
            ui,
            "Rate decay per group",
            "Each earlier group trains at this fraction of the next one's rate",
            |ui| ui.add(egui::Slider::new(lr_decay, 0.05..=1.0)),
        );
    }
    row(
        ui,
        "Input size (px)",
        "Square side the images are resized to",
        |ui| ui.add(egui::DragValue::new(&mut c.input_size_px).range(8..=1024)),
    );
}

fn optimisation_rows_ui(ui: &mut egui::Ui, c: &mut TrainConfig) {
    row(ui, "Epochs", "Passes over the training images", |ui| {
        ui.add(egui::DragValue::new(&mut c.epochs).range(1..=10_000))
    });
    row(
        ui,
        "At least (steps)",
        "On a small data set, train more epochs until this many optimiser steps are done \
         (0: exactly the epochs). Detection heads start from zero: new detection projects \
         ask for 200 steps, as 10 or 20 steps leave them finding nothing.",
        |ui| {
            ui.add(
                egui::DragValue::new(&mut c.min_steps)
                    .range(0..=100_000)
                    .suffix(" steps"),
            )
        },
    );
    row(
        ui,
        "Learning rate",
        "Peak learning rate (the LR finder suggests one)",
        |ui| {
            // The LR finder's sweep range, so that "Use suggestion" is never clamped.
            let sweep = crate::train::LrFinderOptions::default();
            ui.add(
                egui::Slider::new(&mut c.lr, sweep.min_lr..=sweep.max_lr)
                    .logarithmic(true)
                    .custom_formatter(|v, _| format!("{v:.1e}")),
            )
        },
    );
    row(ui, "Batch size", "Images per optimiser step", |ui| {
        ui.add(egui::DragValue::new(&mut c.batch_size).range(1..=1024))
    });
    let adamw = OptimizerKind::AdamW { weight_decay: 1e-4 };
    let sgd = OptimizerKind::Sgd {
        momentum: 0.9,
        nesterov: true,
        weight_decay: 1e-4,
    };
    let mut is_sgd = matches!(c.optimizer, OptimizerKind::Sgd { .. });
    let tip = "AdamW: adaptive, forgiving. SGD with Nesterov momentum: often better at the end of long runs.";
    if row(ui, "Optimiser", tip, |ui| {
        choice(
            ui,
            "train_optimizer",
            &mut is_sgd,
            &[(false, "AdamW"), (true, "SGD")],
        )
    })
    .changed()
    {
        c.optimizer = if is_sgd { sgd } else { adamw };
    }
    let decay = match &mut c.optimizer {
        OptimizerKind::AdamW { weight_decay } | OptimizerKind::Sgd { weight_decay, .. } => {
            weight_decay
        }
    };
    row(
        ui,
        "Weight decay",
        "Pulls the weights towards zero each step",
        |ui| ui.add(egui::DragValue::new(decay).speed(1e-5).range(0.0..=1.0)),
    );
    let schedules = [
        (Schedule::Constant, "constant"),
        (
            Schedule::CosineWarmup {
                warmup_fraction: 0.05,
            },
            "cosine with warm-up",
        ),
        (Schedule::OneCycle { pct_start: 0.3 }, "one-cycle"),
    ];
    row(
        ui,
        "Schedule",
        "How the learning rate changes over the run",
        |ui| choice(ui, "train_schedule", &mut c.schedule, &schedules),
    );
    row(
        ui,
        "Label smoothing",
        "Softens the targets of the loss (0: none)",
        |ui| ui.add(egui::Slider::new(&mut c.label_smoothing, 0.0..=0.5)),
    );
    row(
        ui,
        "Seed",
        "Seed of initialisation, shuffling and augmentation",
        |ui| ui.add(egui::DragValue::new(&mut c.seed)),
    );
    let mut auto = c.threads.is_none();
    row(
        ui,
        "Threads",
        "CPU threads for libtorch (auto: the physical cores); on a busy machine fewer can be faster",
        |ui| {
            ui.horizontal(|ui| {
                ui.checkbox(&mut auto, "auto");
                let mut n = c
                    .threads
                    .unwrap_or_else(crate::train::config::default_threads);
                ui.add_enabled(!auto, egui::DragValue::new(&mut n).range(1..=256));
                c.threads = (!auto).then_some(n);
            })
            .response
        },
    );
}

fn data_rows_ui(ui: &mut egui::Ui, draft: &mut Draft, task: TaskKind) {
    let presets: Vec<(String, &str)> = AUGMENT_PRESETS
        .iter()
        .map(|p| ((*p).to_owned(), *p))
        .collect();
    row(
        ui,
        "Augmentation",
        "Random changes to training images: none, light (flips, gentle crops), default, strong (rotations, wide crops, tone changes)",
        |ui| choice(ui, "train_augment", &mut draft.augment, &presets),
    );
    let c = &mut draft.config;
    let balancing = [
        (Balancing::None, "none"),
        (Balancing::ClassWeights, "class weights"),
        (Balancing::BalancedSampler, "balanced sampler"),
    ];
    row(
        ui,
        "Class balancing",
        "Compensates rare classes by loss weights or by sampling",
        |ui| choice(ui, "train_balancing", &mut c.balancing, &balancing),
    );
    let monitors: Vec<(Monitor, &str)> = crate::train::train_task(task)
        .monitor_keys()
        .iter()
        .map(|key| (Monitor::new(key.name), key.label))
        .collect();
    if !monitors.iter().any(|(m, _)| *m == c.monitor) {
        c.monitor = Monitor::default();
    }
    row(
        ui,
        "Monitor",
        "The validation metric that picks the best checkpoint and drives early stopping",
        |ui| choice(ui, "train_monitor", &mut c.monitor, &monitors),
    );
    let mut early = c.early_stopping.is_some();
    row(
        ui,
        "Early stopping",
        "Stop when the monitored metric has not improved for this many epochs",
        |ui| {
            ui.horizontal(|ui| {
                ui.checkbox(&mut early, "patience");
                let mut patience = c.early_stopping.map_or(3, |e| e.patience);
                ui.add_enabled(early, egui::DragValue::new(&mut patience).range(1..=1000));
                c.early_stopping = early.then_some(EarlyStopping {
                    patience,
                    min_delta: 0.0,
                });
            })
            .response
        },
    );
}

/// The backbone's measured facts and where its pretrained weights come from.
fn backbone_facts_ui(
    ui: &mut egui::Ui,
    name: &str,
    facts: &FactsCache,
    commands: &mut Vec<UiCommand>,
) {
    super::project_overview::backbone_facts_ui(ui, name, facts, commands);
    if let Some(info) = known_backbones().into_iter().find(|b| b.name == name) {
        ui.label(match info.pretrained {
            Some(p) => format!("Pretrained weights: {} (licence: {})", p.origin, p.licence),
            None => "No shipped pretrained weights: trains from random weights.".to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretrained_stays_where_weights_were_downloaded() {
        let draft = Draft::for_project(&TrainConfig::default(), "resnet18", 64);
        assert_eq!(draft.config.weights, WeightsSpec::Random, "none shipped");
        let mut saved = draft.to_saved();
        saved.config.weights = WeightsSpec::Pretrained;
        let mut back = Draft::from_saved(&saved, "resnet18", 64);
        assert_eq!(back.config.weights, WeightsSpec::Pretrained);
        fix_weights(&mut back.config, true);
        assert_eq!(back.config.weights, WeightsSpec::Pretrained);
        fix_weights(&mut back.config, false);
        assert_eq!(back.config.weights, WeightsSpec::Random);
    }

    #[test]
    fn draft_survives_the_project_file_and_the_project_decides_the_backbone() {
        let mut draft = Draft::for_project(&TrainConfig::default(), "resnet18", 64);
        draft.config.epochs = 12;
        draft.config.lr = 2.5e-4;
        draft.augment = "strong".into();
        let saved = draft.to_saved();
        assert_eq!(
            Some(saved.config.augment.clone()),
            crate::data::augment::AugmentConfig::preset("strong")
        );
        let back = Draft::from_saved(&saved, "resnet18", 64);
        assert_eq!(back.to_config(), draft.to_config());
        assert_eq!(back.augment, "strong");
        let other = Draft::from_saved(&saved, "mobilenet_v2", 96);
        assert_eq!(
            (other.config.backbone.as_str(), other.config.input_size_px),
            ("mobilenet_v2", 96)
        );
        assert_eq!(other.config.epochs, 12);
        let unknown = TrainingSettings {
            augment: "wild".into(),
            ..saved
        };
        assert_eq!(
            Draft::from_saved(&unknown, "resnet18", 64).augment,
            DEFAULT_AUGMENT_PRESET
        );
    }
}
