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
use crate::train::run::RunDir;
use crate::train::{
    BatchSource, Control, EpochMetrics, EventSink, JobSpec, LrFinderOptions, LrFinderResult,
    Monitor, ProjectSource, Strategy, SyntheticDisks, SyntheticSource, Task, TrainConfig,
    TrainEvent, WeightsSpec, evaluate_run, find_lr, train,
};

/// Options of `train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The project folder.
    pub project: PathBuf,
    /// probe (linear probe on cached embeddings), finetune, or staged (head warm-up, then
    /// everything with discriminative learning rates).
    #[arg(long, default_value = "finetune")]
    pub strategy: String,
    /// Number of epochs.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Images per step.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Square input size in pixels (default: the project's).
    #[arg(long, value_name = "PX")]
    pub input_size: Option<u32>,
    /// Backbone (default: the project's).
    #[arg(long)]
    pub backbone: Option<String>,
    /// pretrained, random, or a weights file.
    #[arg(long, default_value = "pretrained")]
    pub weights: String,
    /// Seed of initialisation, shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// libtorch CPU threads (default: the number of physical cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Only with --synthetic: classification, or segmentation (binary). Real projects use
    /// their own task.
    #[arg(long, default_value = "classification", hide = true)]
    pub task: String,
    /// The validation metric that picks the best checkpoint: loss, accuracy,
    /// balanced-accuracy, f1, auc (classification) or dice (segmentation).
    #[arg(long, default_value = "loss")]
    pub monitor: String,
    /// Training augmentation: none, light (flips, gentle crops), default, or strong
    /// (flips both ways, rotations, wide crops, tone changes).
    #[arg(long, default_value = "default")]
    pub augment: String,
    /// Classification evaluation: the centre crop's share of the resized image (0.875 as
    /// for ImageNet; 1.0 keeps the whole square, for objects that fill the frame).
    #[arg(long, default_value_t = 0.875, value_name = "FRACTION")]
    pub eval_crop: f32,
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

fn strategy(name: &str) -> anyhow::Result<Strategy> {
    Ok(match name {
        "probe" | "linear-probe" => Strategy::LinearProbe,
        "finetune" | "fine-tune" => Strategy::FineTune,
        "staged" => Strategy::Staged {
            warmup_epochs: 1,
            layer_groups: 4,
            lr_decay: 0.5,
        },
        other => bail!("unknown strategy '{other}' (probe, finetune or staged)"),
    })
}

fn task(name: &str) -> anyhow::Result<Task> {
    Ok(match name {
        "classification" | "classify" => Task::Classification,
        "segmentation" | "segment" => Task::Segmentation { classes: 2 },
        other => bail!("unknown task '{other}' (classification or segmentation)"),
    })
}

fn monitor(name: &str) -> anyhow::Result<Monitor> {
    Ok(match name {
        "loss" => Monitor::ValidationLoss,
        "accuracy" => Monitor::ValidationAccuracy,
        "balanced-accuracy" => Monitor::ValidationBalancedAccuracy,
        "f1" | "macro-f1" => Monitor::ValidationMacroF1,
        "auc" | "macro-auc" => Monitor::ValidationMacroAuc,
        "dice" => Monitor::ValidationDice,
        other => {
            bail!("unknown monitor '{other}' (loss, accuracy, balanced-accuracy, f1, auc or dice)")
        }
    })
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
        return Ok(match config.task {
            Task::Classification => Box::new(SyntheticSource::two_class(64, 32, size, seed)),
            Task::Segmentation { .. } => Box::new(SyntheticDisks::new(48, 16, size, seed)),
        });
    }
    let source = ProjectSource::open_for_training(project_dir, config)?;
    if source.scan_issues() > 0 {
        eprintln!(
            "the data set has {} problem(s); those files are left out (see `transfer-workbench data check`)",
            source.scan_issues()
        );
    }
    Ok(Box::new(source))
}

/// Runs `train`.
pub fn run_train(args: TrainArgs) -> anyhow::Result<()> {
    let project = load_project(&args.project)?;
    let mut config = TrainConfig {
        backbone: args.backbone.clone().unwrap_or(project.backbone),
        weights: match args.weights.as_str() {
            "pretrained" => WeightsSpec::Pretrained,
            "random" => WeightsSpec::Random,
            path => WeightsSpec::File(PathBuf::from(path)),
        },
        input_size_px: args.input_size.unwrap_or(project.input_size_px),
        strategy: strategy(&args.strategy)?,
        lr: args.lr,
        epochs: args.epochs,
        batch_size: args.batch_size,
        seed: args.seed,
        threads: args.threads,
        task: task(&args.task)?,
        monitor: monitor(&args.monitor)?,
        channels_last: args.channels_last,
        eval_crop_fraction: args.eval_crop,
        augment: AugmentConfig::preset(&args.augment).with_context(|| {
            format!(
                "unknown augmentation '{}' (none, light, default or strong)",
                args.augment
            )
        })?,
        ..TrainConfig::default()
    };
    let mut frozen = match &args.resume {
        Some(id) => RunDir::open(&args.project, id)?.1,
        None => config.clone(),
    };
    let mut source = make_source(args.synthetic, &args.project, &mut frozen)?;
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
        Box::new(BarSink::default())
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
    let (_, mut config) = RunDir::open(&args.project, &id)?;
    let mut source = match args.split.as_deref() {
        None => make_source(args.synthetic, &args.project, &mut config)?,
        Some(name) => {
            let split = match name {
                "val" | "validation" => crate::data::split::Split::Val,
                "test" => crate::data::split::Split::Test,
                other => bail!("unknown split '{other}' (val or test)"),
            };
            Box::new(ProjectSource::open_with_validation(
                &args.project,
                &config,
                Some(split),
            )?)
        }
    };
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
                ..
            } => {
                eprintln!(
                    "{split}: {samples} embeddings {}",
                    if cached { "from the cache" } else { "computed" }
                );
            }
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
