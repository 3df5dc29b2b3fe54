//! `transfer-workbench inspect`: what a run gets wrong on a split — the top losses, the
//! confusion matrix, per-class ROC-AUC — and the nearest neighbours of an image (a sample id
//! of the split, or any image file, embedded with the run's eval transform); `--gradcam`
//! writes a class activation map of an image.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tch::Device;

use super::gradcam::{GradcamRequest, run_gradcam};
use crate::inspect::predictions::LossEntry;
use crate::inspect::{NeighbourIndex, Predictions, SplitOutputs, embed_images, split_outputs};
use crate::train::run::RunDir;
use crate::train::{CheckpointChoice, Split, TrainedModel, load_eval_images};

/// Options of `inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The project folder.
    pub project: PathBuf,
    /// The run (default: the newest).
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// The split to inspect: validation or train.
    #[arg(long, default_value = "validation")]
    pub split: String,
    /// Show the N samples with the highest loss.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top_losses: usize,
    /// Show the nearest neighbours (cosine, on the run's embeddings) of this image: a
    /// sample id of the split or an image file.
    #[arg(long, value_name = "IMAGE")]
    pub neighbours: Option<String>,
    /// How many neighbours to show.
    #[arg(long, value_name = "K", default_value_t = 5)]
    pub k: usize,
    /// Write a class activation map of this image file (blended onto it at its own size)
    /// to `--out`, instead of the split report.
    #[arg(long, value_name = "IMAGE", requires = "out")]
    pub gradcam: Option<PathBuf>,
    /// The PNG written by `--gradcam`.
    #[arg(long, value_name = "FILE.png")]
    pub out: Option<PathBuf>,
    /// `--gradcam`: explain this class (default: the predicted one).
    #[arg(long, value_name = "NAME")]
    pub class: Option<String>,
    /// `--gradcam`: hirescam (default: element-wise gradient x activation, measured to
    /// localise small objects far better), gradcam or gradcam++.
    #[arg(long, default_value = "hirescam")]
    pub method: String,
    /// `--gradcam`: the backbone feature map, by index from fine (0) to coarse (default: the
    /// coarsest map of at least 7x7 cells: the last one at 224 px, a finer one on small
    /// inputs, where finer maps localise small objects better).
    #[arg(long, value_name = "N")]
    pub layer: Option<usize>,
    /// `--gradcam`: opacity of the map over the image.
    #[arg(long, default_value_t = 0.5)]
    pub opacity: f32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Inspect on the built-in synthetic data set (engine tests).
    #[arg(long, hide = true)]
    pub synthetic: bool,
}

/// One neighbour in the report.
#[derive(Debug, Serialize)]
pub struct NeighbourEntry {
    /// Sample index in the split.
    pub index: usize,
    /// Sample id.
    pub id: String,
    /// The sample's class name.
    pub label: String,
    /// Cosine similarity to the query.
    pub similarity: f32,
}

/// What `inspect --json` prints.
#[derive(Debug, Serialize)]
pub struct InspectReport {
    /// The run id.
    pub run_id: String,
    /// The split inspected.
    pub split: Split,
    /// Class names in index order.
    pub classes: Vec<String>,
    /// Number of samples.
    pub samples: usize,
    /// Fraction predicted right.
    pub accuracy: f64,
    /// `confusion[truth][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// One-vs-rest ROC-AUC per class (`null` where undefined).
    pub roc_auc: Vec<Option<f64>>,
    /// The samples with the highest loss.
    pub top_losses: Vec<LossEntry>,
    /// The query of `--neighbours`, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Its nearest neighbours.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub neighbours: Vec<NeighbourEntry>,
}

/// Runs `inspect`.
pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let split = match args.split.as_str() {
        "validation" | "val" => Split::Validation,
        "train" => Split::Train,
        other => bail!("unknown split '{other}' (validation or train)"),
    };
    let run_id = RunDir::resolve_id(&args.project, args.run.as_deref())?;
    let mut model = TrainedModel::load(
        &args.project,
        &run_id,
        CheckpointChoice::BestOrLast,
        Device::cuda_if_available(),
    )?;
    if let (Some(image), Some(out)) = (&args.gradcam, &args.out) {
        let request = GradcamRequest {
            image: image.clone(),
            out: out.clone(),
            class: args.class.clone(),
            method: args.method.clone(),
            layer: args.layer,
            opacity: args.opacity,
        };
        let report = run_gradcam(&args.project, &mut model, &request)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!(
                "{}: {} ({:.1}%), peak at {:?}, written to {}",
                report.image.display(),
                report.class,
                report.probability * 100.0,
                report.peak_px,
                report.out.display()
            );
        }
        return Ok(());
    }
    let mut source = super::train::run_source(
        args.synthetic,
        &args.project,
        &model.run,
        &model.config,
        None,
    )?;
    let bar = progress_bar(args.json);
    let outputs = split_outputs(
        &mut model,
        source.as_mut(),
        split,
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
        &AtomicBool::new(false),
    )?
    .context("the embedding pass was stopped")?;
    bar.finish_and_clear();
    if let Some(why) = &outputs.not_stored {
        eprintln!("warning: {why}");
    }
    let paths = (0..outputs.len())
        .map(|i| source.sample_path(split, i))
        .collect();
    let predictions = Predictions::from_logits(
        model.classes.clone(),
        source.sample_ids(split),
        paths,
        &outputs.labels,
        &outputs.logits,
    )?;
    let neighbours = match &args.neighbours {
        Some(query) => neighbours_of(query, &args, &mut model, &outputs, &predictions)?,
        None => Vec::new(),
    };
    let report = InspectReport {
        run_id,
        split,
        classes: predictions.classes.clone(),
        samples: predictions.len(),
        accuracy: predictions.metrics()?.accuracy,
        confusion: predictions.confusion_counts(),
        roc_auc: predictions.roc_auc(),
        top_losses: predictions.top_losses(args.top_losses),
        query: args.neighbours.clone(),
        neighbours,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", describe(&report));
    }
    Ok(())
}

fn progress_bar(hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("embedding {bar:30} {pos}/{len} images") {
        bar.set_style(style);
    }
    bar
}

/// The neighbours of `query`: a sample id of the split, else an image file.
fn neighbours_of(
    query: &str,
    args: &InspectArgs,
    model: &mut TrainedModel,
    outputs: &SplitOutputs,
    predictions: &Predictions,
) -> anyhow::Result<Vec<NeighbourEntry>> {
    let index = NeighbourIndex::new(&outputs.embeddings, outputs.dim)?;
    let sample = predictions
        .ids
        .iter()
        .position(|id| id == query)
        .or_else(|| {
            predictions
                .paths
                .iter()
                .position(|p| p.as_deref() == Some(Path::new(query)))
        });
    let found = match sample {
        Some(i) => index.of_sample(i, args.k)?,
        None => {
            let path = PathBuf::from(query);
            if !path.is_file() {
                bail!("'{query}' is neither a sample id of the split nor an image file");
            }
            let loaded =
                load_eval_images(std::slice::from_ref(&path), &args.project, &model.config)?;
            let (images, failed) = (loaded.images, loaded.failed);
            if let Some((_, reason)) = failed.first() {
                bail!(
                    "could not read the query image ({reason}): {}",
                    path.display()
                );
            }
            let embedded = embed_images(model, &images)?;
            let first = embedded
                .first()
                .context("the query image gave no embedding")?;
            index.query(first, args.k)?
        }
    };
    Ok(found
        .into_iter()
        .map(|n| NeighbourEntry {
            index: n.index,
            id: predictions.ids[n.index].clone(),
            label: predictions.classes[predictions.labels[n.index]].clone(),
            similarity: n.similarity,
        })
        .collect())
}

/// The human-readable report.
fn describe(report: &InspectReport) -> String {
    let mut out = format!(
        "{} on {} ({} samples): accuracy {:.3}\n",
        report.run_id,
        report.split.name(),
        report.samples,
        report.accuracy
    );
    out += "confusion (rows: true class, columns: predicted):\n";
    for (name, row) in report.classes.iter().zip(&report.confusion) {
        let counts: Vec<String> = row.iter().map(|c| format!("{c:>6}")).collect();
        out += &format!("  {name:>16} {}\n", counts.join(""));
    }
    for (name, auc) in report.classes.iter().zip(&report.roc_auc) {
        if let Some(auc) = auc {
            out += &format!("ROC-AUC {name}: {auc:.4}\n");
        }
    }
    if !report.top_losses.is_empty() {
        out += "top losses:\n";
    }
    for (rank, e) in report.top_losses.iter().enumerate() {
        out += &format!(
            "  {:>3}. {}  loss {:.3}  true {} ({:.3})  predicted {} ({:.3})\n",
            rank + 1,
            e.id,
            e.loss,
            report.classes[e.label],
            e.probability_of_label,
            report.classes[e.predicted],
            e.probability_of_predicted
        );
    }
    if let Some(query) = &report.query {
        out += &format!("nearest neighbours of {query}:\n");
        for n in &report.neighbours {
            out += &format!("  {:.4}  {}  ({})\n", n.similarity, n.id, n.label);
        }
    }
    out
}
