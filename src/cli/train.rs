//! `transfer-workbench train` and `eval`: the training engine from the command line, with a
//! progress bar or one JSON event per line; `train --lr-find` runs the learning-rate range
//! test instead of training.
//! Both read the project's images through [`ProjectSource`] (scan, frozen split, loader);
//! the hidden `--synthetic` flag trains on a generated data set instead (engine tests).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::data::augment::AugmentConfig;
use crate::project::load_project;
use crate::train::config::DetectorHead;
use crate::train::run::RunDir;
use crate::train::{
    BatchSource, Control, EpochMetrics, EventSink, JobSpec, LrFinderOptions, LrFinderResult,
    Monitor, ProjectSource, Strategy, TaskKind, TrainConfig, TrainEvent, WeightsSpec, evaluate_run,
    find_lr, train, train_task,
};

/// Options of `train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The project folder.
    pub project: PathBuf,
    /// probe (linear probe on cached embeddings), finetune, or staged (head warm-up, then
    /// everything with discriminative learning rates). Options left out take the settings
    /// saved in the project by the Training tab, else the defaults shown.
    #[arg(long, value_name = "finetune")]
    pub strategy: Option<String>,
    /// Number of epochs, exactly (the saved or default settings may add epochs to reach a
    /// number of optimiser steps on small data: detection trains at least 200 steps).
    #[arg(long, value_name = "10")]
    pub epochs: Option<usize>,
    /// Train at least this many optimiser steps, adding epochs on small data (0: exactly
    /// the epochs).
    #[arg(long, value_name = "STEPS")]
    pub min_steps: Option<usize>,
    /// Peak learning rate.
    #[arg(long, value_name = "0.001")]
    pub lr: Option<f64>,
    /// Images per step.
    #[arg(long, value_name = "32")]
    pub batch_size: Option<usize>,
    /// Square input size in pixels (default: the project's).
    #[arg(long, value_name = "PX")]
    pub input_size: Option<u32>,
    /// Backbone (default: the project's).
    #[arg(long)]
    pub backbone: Option<String>,
    /// pretrained, random, or a weights file.
    #[arg(long, value_name = "pretrained")]
    pub weights: Option<String>,
    /// Detection only: the head, centernet ("objects as points", any backbone) or yolo
    /// (YOLOv3-tiny's anchor heads; with `--backbone yolov3_tiny` and pretrained weights
    /// they start from COCO).
    #[arg(long, value_name = "centernet")]
    pub detector: Option<String>,
    /// Seed of initialisation, shuffling and augmentation.
    #[arg(long, value_name = "0")]
    pub seed: Option<u64>,
    /// libtorch CPU threads (default: the number of physical cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Only with --synthetic: classification, segmentation (binary) or detection (three
    /// shapes). Real projects use their own task.
    #[arg(long, default_value = "classification", hide = true)]
    pub task: String,
    /// The validation metric that picks the best checkpoint: loss, accuracy,
    /// balanced-accuracy, f1, auc (classification) or dice (segmentation).
    #[arg(long, value_name = "loss")]
    pub monitor: Option<String>,
    /// Training augmentation: none, light (flips, gentle crops), default, or strong
    /// (flips both ways, rotations, wide crops, tone changes).
    #[arg(long, value_name = "default")]
    pub augment: Option<String>,
    /// Classification evaluation: the centre crop's share of the resized image (0.875 as
    /// for ImageNet; 1.0 keeps the whole square, for objects that fill the frame).
    #[arg(long, value_name = "0.875")]
    pub eval_crop: Option<f32>,
    /// Channels-last memory format (default: on the CPU, off on CUDA).
    #[arg(long, value_name = "BOOL")]
    pub channels_last: Option<bool>,
    /// Run the learning-rate range test instead of training, print the loss curve and the
    /// suggested rate (nothing is saved).
    #[arg(long)]
    pub lr_find: bool,
    /// Steps of the range test.
    #[arg(long, default_value_t = 60, value_name = "N")]
    pub lr_find_steps: usize,
    /// Resume this run from its last checkpoint (its frozen config is used).
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<String>,
    /// Train the one run of a study's run spec (written by `study --plan`) into its study;
    /// every other option is taken from the spec.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["resume", "lr_find", "synthetic"])]
    pub spec: Option<PathBuf>,
    /// Print one JSON event per line instead of a progress bar.
    #[arg(long)]
    pub json: bool,
    /// Train on a built-in synthetic two-class data set (engine tests).
    #[arg(long, hide = true)]
    pub synthetic: bool,
}

/// Options of `eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The project folder.
    pub project: PathBuf,
    /// The run (default: the newest).
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// The split to evaluate on: val (default; test when the data has no val split) or
    /// test (the held-out images, never used for training or model selection).
    #[arg(long, value_name = "SPLIT")]
    pub split: Option<String>,
    /// Evaluate on the built-in synthetic data set (engine tests).
    #[arg(long, hide = true)]
    pub synthetic: bool,
}

pub(super) fn strategy(name: &str) -> anyhow::Result<Strategy> {
    Strategy::from_label(name)
        .with_context(|| format!("unknown strategy '{name}' (probe, finetune or staged)"))
}

fn task(name: &str) -> anyhow::Result<TaskKind> {
    match TaskKind::from_name(name) {
        Some(task) => Ok(task),
        None => bail!("unknown task '{name}' ({})", TaskKind::names()),
    }
}

fn monitor(name: &str) -> anyhow::Result<Monitor> {
    match crate::train::find_metric_key(name) {
        Some(key) => Ok(Monitor::new(key.name)),
        None => {
            bail!(
                "unknown monitor '{name}' (loss, accuracy, balanced-accuracy, f1, auc, dice, ap \
                 or ap50)"
            )
        }
    }
}

/// The run's data: the project's images, or a synthetic set. Fixes `config.task` to the
/// project's task (segmentation with the data's mask classes).
pub(super) fn make_source(
    synthetic: bool,
    project_dir: &Path,
    config: &mut TrainConfig,
) -> anyhow::Result<Box<dyn BatchSource>> {
    if synthetic {
        let (size, seed) = (config.input_size_px, config.seed);
        return Ok(train_task(config.task).synthetic_source(size, seed));
    }
    let source = ProjectSource::open_for_training(project_dir, config)?;
    if !config.overrides.is_empty() {
        let applied = source.overrides_applied();
        eprintln!(
            "the project's curation: {} (see `transfer-workbench curate {} list`)",
            config.overrides.describe(),
            project_dir.display()
        );
        if !applied.stale.is_empty() {
            eprintln!(
                "{} override(s) name a file or class the data set no longer has and do nothing, the first: {}",
                applied.stale.len(),
                applied.stale[0]
            );
        }
    }
    if source.files_left_out() > 0 {
        eprintln!(
            "{} file(s) of the data set are left out (see `transfer-workbench data check`)",
            source.files_left_out()
        );
    }
    Ok(Box::new(source))
}

/// The data of trained run `run` as it froze it (its train and validation ids and class
/// names; `validation` gives the validation role to another project split), or the
/// synthetic set of its task.
pub(super) fn run_source(
    synthetic: bool,
    project_dir: &Path,
    run: &RunDir,
    config: &TrainConfig,
    validation: Option<crate::data::split::Split>,
) -> anyhow::Result<Box<dyn BatchSource>> {
    if synthetic {
        return make_source(true, project_dir, &mut config.clone());
    }
    let source = ProjectSource::open_run(project_dir, run, config, validation)?;
    if source.files_left_out() > 0 {
        eprintln!(
            "{} image(s) of the run or of the data set could not be read and are left out (see `transfer-workbench data check`)",
            source.files_left_out()
        );
    }
    Ok(Box::new(source))
}

/// Runs `train`.
pub fn run_train(args: TrainArgs) -> anyhow::Result<()> {
    if let Some(spec) = &args.spec {
        return super::study_runs::run_spec(&args.project, spec, args.json);
    }
    let project = load_project(&args.project)?;
    let mut config = run_config(&args, project)?;
    // A resumed run reads its data as it froze it (its ids and classes, no split.ron write).
    let (frozen, mut source) = match &args.resume {
        Some(id) => {
            let (run, frozen) = RunDir::open(&args.project, id)?;
            let source = run_source(args.synthetic, &args.project, &run, &frozen, None)?;
            (frozen, source)
        }
        None => {
            let mut frozen = config.clone();
            let source = make_source(args.synthetic, &args.project, &mut frozen)?;
            (frozen, source)
        }
    };
    if args.resume.is_none() {
        config = frozen.clone();
    }
    if args.lr_find {
        return run_lr_find(&args, &frozen, source.as_mut());
    }
    let spec = JobSpec {
        resume: args.resume.clone(),
        ..JobSpec::new(&args.project, config)
    };
    let mut sink: Box<dyn EventSink> = if args.json {
        Box::new(JsonSink)
    } else {
        Box::new(BarSink {
            asked: (spec.config.epochs, spec.config.min_steps),
            ..BarSink::default()
        })
    };
    let summary = train(
        &spec,
        source.as_mut(),
        sink.as_mut(),
        &mut Control::detached(),
    )?;
    if !args.json {
        println!(
            "{}: {:?} after {} epoch(s), in {}",
            summary.run_id,
            summary.outcome,
            summary.epochs_done,
            summary.run_dir.display()
        );
    }
    Ok(())
}

/// The run's settings: those saved in the project by the Training tab (else the defaults),
/// the project's backbone and input size, then every option given on the command line.
fn run_config(args: &TrainArgs, project: crate::project::Project) -> anyhow::Result<TrainConfig> {
    let mut config = TrainConfig::for_project(&project);
    config.backbone = args.backbone.clone().unwrap_or(project.backbone);
    config.input_size_px = args.input_size.unwrap_or(project.input_size_px);
    config.task = task(&args.task)?;
    if let Some(weights) = &args.weights {
        config.weights = match weights.as_str() {
            "pretrained" => WeightsSpec::Pretrained,
            "random" => WeightsSpec::Random,
            path => WeightsSpec::File(PathBuf::from(path)),
        };
    }
    if let Some(name) = &args.strategy {
        config.strategy = strategy(name)?;
    }
    if let Some(name) = &args.detector {
        config.detector = DetectorHead::from_label(name)
            .with_context(|| format!("unknown detector head '{name}' (centernet or yolo)"))?;
    }
    if let Some(name) = &args.monitor {
        config.monitor = monitor(name)?;
    }
    if let Some(name) = &args.augment {
        config.augment = AugmentConfig::preset(name).with_context(|| {
            format!("unknown augmentation '{name}' (none, light, default or strong)")
        })?;
    }
    config.lr = args.lr.unwrap_or(config.lr);
    if let Some(epochs) = args.epochs {
        (config.epochs, config.min_steps) = (epochs, 0);
    }
    config.min_steps = args.min_steps.unwrap_or(config.min_steps);
    config.batch_size = args.batch_size.unwrap_or(config.batch_size);
    config.seed = args.seed.unwrap_or(config.seed);
    config.eval_crop_fraction = args.eval_crop.unwrap_or(config.eval_crop_fraction);
    config.threads = args.threads.or(config.threads);
    config.channels_last = args.channels_last.or(config.channels_last);
    Ok(config)
}

/// Runs the learning-rate range test and prints its curve and suggestion.
fn run_lr_find(
    args: &TrainArgs,
    config: &TrainConfig,
    source: &mut dyn BatchSource,
) -> anyhow::Result<()> {
    let options = LrFinderOptions {
        steps: args.lr_find_steps,
        ..LrFinderOptions::default()
    };
    let device = tch::Device::cuda_if_available();
    let result = find_lr(config, source, device, options)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&result).context("encoding the curve")?
        );
    } else {
        print!("{}", lr_find_summary(&result, options));
    }
    Ok(())
}

/// A table of about a dozen points of the curve, its minimum and the suggestion.
fn lr_find_summary(result: &LrFinderResult, options: LrFinderOptions) -> String {
    let mut out = format!(
        "learning-rate range test: {} of {} steps from {:.1e} to {:.1e}\n{:>10} {:>10} {:>10}\n",
        result.losses.len(),
        options.steps,
        options.min_lr,
        options.max_lr,
        "lr",
        "loss",
        "smoothed"
    );
    let n = result.lrs.len();
    let stride = n.div_ceil(12).max(1);
    for i in (0..n)
        .step_by(stride)
        .chain((n > 0 && !(n - 1).is_multiple_of(stride)).then(|| n - 1))
    {
        let smoothed = result
            .smoothed
            .get(i)
            .map_or("diverged".to_owned(), |s| format!("{s:.4}"));
        out.push_str(&format!(
            "{:>10.2e} {:>10.4} {:>10}\n",
            result.lrs[i], result.losses[i], smoothed
        ));
    }
    let lowest = result
        .smoothed
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1));
    if let Some((i, loss)) = lowest {
        out.push_str(&format!(
            "lowest smoothed loss {loss:.4} at lr {:.2e}\n",
            result.lrs[i]
        ));
    }
    match result.suggested_lr {
        Some(lr) => out.push_str(&format!("suggested lr: {lr:.2e}\n")),
        None => out.push_str("no suggestion: the loss never fell clearly\n"),
    }
    out
}

/// Runs `eval`.
pub fn run_eval(args: EvalArgs) -> anyhow::Result<()> {
    let id = RunDir::resolve_id(&args.project, args.run.as_deref())?;
    let (run, config) = RunDir::open(&args.project, &id)?;
    let validation = match args.split.as_deref() {
        None => None,
        Some("val" | "validation") => Some(crate::data::split::Split::Val),
        Some("test") => Some(crate::data::split::Split::Test),
        Some(other) => bail!("unknown split '{other}' (val or test)"),
    };
    if crate::inspect::task::offers(config.task).boxes && !args.synthetic {
        return super::eval_boxes::run(&args, &id, validation);
    }
    let mut source = run_source(args.synthetic, &args.project, &run, &config, validation)?;
    let report = evaluate_run(
        &args.project,
        &id,
        source.as_mut(),
        tch::Device::cuda_if_available(),
    )?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("encoding the report")?
        );
    } else {
        println!(
            "{} ({} epochs, {}): validation loss {:.4}, accuracy {:.3}{}",
            report.run_id,
            report.epochs_done,
            display_name(&report.checkpoint),
            report.validation.loss,
            report.validation.accuracy,
            extras(&report.validation)
        );
    }
    Ok(())
}

/// The further metrics of `metrics` as `, name value` pairs.
fn extras(metrics: &EpochMetrics) -> String {
    metrics
        .extra
        .iter()
        .map(|(name, value)| format!(", {name} {value:.3}"))
        .collect()
}

fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One JSON object per event on stdout, flushed at once (for scripts and tests).
struct JsonSink;

impl EventSink for JsonSink {
    fn send(&mut self, event: TrainEvent) {
        if let Ok(line) = serde_json::to_string(&event) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

/// A progress bar per epoch with the running loss; epoch summaries above it.
#[derive(Default)]
struct BarSink {
    bar: Option<ProgressBar>,
    steps_per_epoch: u64,
    /// The settings' epochs and fewest steps, to explain epochs added on small data.
    asked: (usize, usize),
}

impl EventSink for BarSink {
    fn send(&mut self, event: TrainEvent) {
        match event {
            TrainEvent::Started {
                run_id,
                steps_per_epoch,
                first_epoch,
                epochs,
                ..
            } => {
                self.steps_per_epoch = steps_per_epoch as u64;
                eprintln!("{run_id}: epochs {first_epoch}..{epochs}");
                let (asked, min_steps) = self.asked;
                if first_epoch == 0 && epochs > asked && min_steps > 0 {
                    eprintln!(
                        "{epochs} epochs instead of {asked}: at least {min_steps} optimiser steps, \
                         and the training images make {steps_per_epoch} step(s) per epoch \
                         (--epochs N trains exactly N)"
                    );
                }
            }
            TrainEvent::Step {
                epoch,
                step,
                loss,
                lr,
                images_per_sec,
            } => {
                let bar = self.bar.get_or_insert_with(|| {
                    let bar = ProgressBar::new(self.steps_per_epoch);
                    if let Ok(style) =
                        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
                    {
                        bar.set_style(style);
                    }
                    bar
                });
                bar.set_prefix(epoch.to_string());
                bar.set_position(step as u64 + 1);
                bar.set_message(format!(
                    "loss {loss:.4} lr {lr:.2e} {images_per_sec:.0} img/s"
                ));
            }
            TrainEvent::Epoch {
                epoch,
                train,
                validation,
                improved,
            } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                eprintln!(
                    "epoch {epoch}: train loss {:.4} acc {:.3} | validation loss {:.4} acc {:.3}{}{}",
                    train.loss,
                    train.accuracy,
                    validation.loss,
                    validation.accuracy,
                    extras(&validation),
                    if improved { " *" } else { "" }
                );
            }
            TrainEvent::EmbeddingsReady {
                split,
                samples,
                cached,
                precision,
                not_stored,
                ..
            } => {
                eprintln!(
                    "{split}: {samples} embeddings {} ({precision})",
                    if cached { "from the cache" } else { "computed" }
                );
                if let Some(why) = not_stored {
                    eprintln!("warning: {why}");
                }
            }
            TrainEvent::ImageSkipped { reason, .. } => match &self.bar {
                Some(bar) => bar.println(format!("skipped from training: {reason}")),
                None => eprintln!("skipped from training: {reason}"),
            },
            TrainEvent::Failed { reason } => {
                if let Some(bar) = self.bar.take() {
                    bar.abandon();
                }
                eprintln!("failed: {reason}");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};
    use crate::project::{Project, TrainingSettings};
    use crate::train::OptimizerKind;

    fn train_args(extra: &[&str]) -> TrainArgs {
        let mut argv = vec!["transfer-workbench", "train", "some/project"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Some(Command::Train(args)) => args,
            other => panic!("not train: {other:?}"),
        }
    }

    /// Options left out take the Training tab's saved settings; given ones win.
    #[test]
    fn the_saved_settings_are_the_defaults_and_options_override_them() {
        let mut project = Project {
            backbone: "efficientnet_lite0".into(),
            input_size_px: 96,
            ..Project::default()
        };
        let sgd = OptimizerKind::Sgd {
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
        };
        project.training = Some(TrainingSettings {
            config: TrainConfig {
                epochs: 4,
                lr: 3e-4,
                optimizer: sgd,
                strategy: Strategy::LinearProbe,
                ..TrainConfig::default()
            },
            augment: "light".into(),
        });
        let saved = run_config(&train_args(&[]), project.clone()).unwrap();
        assert_eq!(
            (saved.epochs, saved.lr, saved.optimizer, saved.strategy),
            (4, 3e-4, sgd, Strategy::LinearProbe)
        );
        assert_eq!(
            (saved.backbone.as_str(), saved.input_size_px),
            ("efficientnet_lite0", 96)
        );
        let given = run_config(
            &train_args(&["--epochs", "2", "--strategy", "finetune"]),
            project,
        )
        .unwrap();
        assert_eq!(
            (given.epochs, given.strategy, given.lr),
            (2, Strategy::FineTune, 3e-4)
        );
        let plain = run_config(&train_args(&[]), Project::default()).unwrap();
        assert_eq!(plain.epochs, TrainConfig::default().epochs);
    }
}
