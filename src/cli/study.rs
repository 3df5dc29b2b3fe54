//! `transfer-workbench study PROJECT`: which backbone for the project's images. With
//! `--scores-only`, the before-training scores of each backbone (LogME, k-NN and k-fold
//! probe accuracy on frozen embeddings of the training split, the data-mismatch figure) and
//! its measured cost (latency, throughput, parameters, GFLOPs), ranked by LogME. Without
//! it, a study of training runs (see `study_runs`).

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::project::load_project;
use crate::study::cost::{Cost, measure_cost};
use crate::study::scores::{BackboneScores, score_backbone};
use crate::train::TrainConfig;

/// Options of `study`.
#[derive(Debug, clap::Args)]
pub struct StudyArgs {
    /// The project folder.
    pub project: PathBuf,
    /// Backbones to compare, comma-separated (default: every backbone whose pretrained
    /// weights are installed).
    #[arg(long, value_delimiter = ',')]
    pub backbones: Vec<String>,
    /// Strategies of the runs, comma-separated: probe, finetune, staged (default: probe).
    #[arg(long, value_delimiter = ',')]
    pub strategies: Vec<String>,
    /// The backbone trained from random weights as the control (default: the first
    /// backbone).
    #[arg(long, value_name = "BACKBONE")]
    pub control: Option<String>,
    /// No from-scratch control run.
    #[arg(long, conflicts_with = "control")]
    pub no_control: bool,
    /// Epochs of every run (default: the project's training settings).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Only the scores before training and the costs (no training runs).
    #[arg(long)]
    pub scores_only: bool,
    /// Continue study ID (after a stop or a crash): finished runs are kept.
    #[arg(long, value_name = "ID")]
    pub resume: Option<String>,
    /// Print the leaderboard of study ID (no training).
    #[arg(long, value_name = "ID")]
    pub show: Option<String>,
    /// Make the study and write one run spec per run into this folder, without training
    /// (`train PROJECT --spec FILE` trains one; see the README for Slurm and Ray).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["scores_only", "resume", "show"])]
    pub plan: Option<PathBuf>,
    /// Also write a Markdown report with PNG plots into this folder.
    #[arg(long, value_name = "DIR", conflicts_with = "scores_only")]
    pub report: Option<PathBuf>,
    /// Skip measuring each backbone's speed.
    #[arg(long)]
    pub no_cost: bool,
    /// One JSON object per backbone (scores only) or per run instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// One backbone's line of the study.
#[derive(Debug, serde::Serialize)]
struct Row {
    backbone: String,
    strategy: Option<String>,
    images: usize,
    logme: f64,
    knn_accuracy: f64,
    probe_accuracy: f64,
    mismatch: Option<f64>,
    mismatch_verdict: Option<String>,
    mismatch_per_layer: Option<Vec<f64>>,
    latency_ms_batch1: Option<f64>,
    images_per_s_batch32: Option<f64>,
    bf16_latency_ms_batch1: Option<f64>,
    bf16_images_per_s_batch32: Option<f64>,
    peak_memory_mib: Option<f64>,
    params: Option<i64>,
    gflops: Option<f64>,
    embeddings_cached: bool,
    embedding_secs: f64,
    scoring_secs: f64,
}

impl Row {
    fn new(scores: BackboneScores, cost: Option<Cost>) -> Self {
        let speed = cost.as_ref().map(|c| &c.float32);
        let bf16 = cost.as_ref().and_then(|c| c.bfloat16.as_ref());
        Self {
            strategy: None,
            images: scores.images,
            logme: scores.logme,
            knn_accuracy: scores.knn_accuracy,
            probe_accuracy: scores.probe_accuracy,
            mismatch: scores.mismatch.as_ref().map(|m| m.summary),
            mismatch_verdict: scores.mismatch.as_ref().map(|m| m.verdict().to_owned()),
            mismatch_per_layer: scores.mismatch.map(|m| m.per_layer),
            latency_ms_batch1: speed.map(|s| s.latency_ms_batch1),
            images_per_s_batch32: speed.map(|s| s.images_per_s_batch32),
            bf16_latency_ms_batch1: bf16.map(|s| s.latency_ms_batch1),
            bf16_images_per_s_batch32: bf16.map(|s| s.images_per_s_batch32),
            peak_memory_mib: cost.as_ref().and_then(|c| c.peak_memory_mib),
            params: cost.as_ref().map(|c| c.params),
            gflops: cost.as_ref().map(|c| c.gflops),
            embeddings_cached: scores.cached,
            embedding_secs: scores.embedding_secs,
            scoring_secs: scores.scoring_secs,
            backbone: scores.backbone,
        }
    }
}

/// Runs the command.
pub fn run(args: StudyArgs) -> anyhow::Result<()> {
    if !args.scores_only {
        return super::study_runs::run(args);
    }
    let project = load_project(&args.project)?;
    let base = TrainConfig::for_project(&project);
    let backbones = chosen_backbones(&args)?;
    let device = tch::Device::cuda_if_available();
    let started = std::time::Instant::now();
    let mut rows = Vec::new();
    for name in &backbones {
        if !args.json {
            eprintln!("{name}: scoring the training split…");
        }
        let scores = score_backbone(&args.project, &base, name, device)
            .with_context(|| format!("scoring {name}"))?;
        let cost = if args.no_cost {
            None
        } else {
            Some(
                measure_cost(name, base.input_size_px, device)
                    .with_context(|| format!("measuring {name}"))?,
            )
        };
        rows.push(Row::new(scores, cost));
    }
    rows.sort_by(|a, b| b.logme.total_cmp(&a.logme));
    if args.json {
        for row in &rows {
            println!("{}", serde_json::to_string(row)?);
        }
        return Ok(());
    }
    print_table(&rows, base.input_size_px);
    println!(
        "\n{} backbone(s) in {:.1} s. These are estimates from frozen embeddings of the {} \
         training images, before any training: they rank backbones, they do not promise \
         accuracy.",
        rows.len(),
        started.elapsed().as_secs_f64(),
        rows.first().map_or(0, |r| r.images)
    );
    Ok(())
}

/// The backbones named with `--backbones`, else every installed pretrained one.
pub(super) fn chosen_backbones(args: &StudyArgs) -> anyhow::Result<Vec<String>> {
    let backbones = if args.backbones.is_empty() {
        crate::study::plan::installed_pretrained()
    } else {
        args.backbones.clone()
    };
    if backbones.is_empty() {
        bail!("no backbone to study: name some with --backbones a,b,c");
    }
    Ok(backbones)
}

fn print_table(rows: &[Row], input_px: u32) {
    let text =
        |v: Option<f64>, digits: usize| v.map_or("–".to_owned(), |v| format!("{v:.digits$}"));
    println!(
        "{:<20} {:>7} {:>6} {:>6} {:>9} {:>10} {:>10} {:>8} {:>7}",
        "backbone",
        "LogME",
        "k-NN",
        "probe",
        "mismatch",
        "ms/image",
        "images/s",
        "params",
        "GFLOPs"
    );
    for row in rows {
        println!(
            "{:<20} {:>7.3} {:>6.3} {:>6.3} {:>9} {:>10} {:>10} {:>8} {:>7}",
            row.backbone,
            row.logme,
            row.knn_accuracy,
            row.probe_accuracy,
            text(row.mismatch, 2),
            text(row.latency_ms_batch1, 1),
            text(row.images_per_s_batch32, 1),
            row.params
                .map_or("–".to_owned(), |p| format!("{:.1}M", p as f64 / 1e6)),
            text(row.gflops, 2),
        );
    }
    println!(
        "\nk-NN: leave-one-out, {} neighbours, cosine; probe: {}-fold ridge regression on the \
         cached embeddings; speed at {input_px} px, float32, batch 1 and 32.",
        crate::study::knn::DEFAULT_K,
        crate::study::probe_cv::DEFAULT_FOLDS
    );
    for row in rows {
        if let Some(verdict) = &row.mismatch_verdict {
            println!("{}: the images are {verdict}", row.backbone);
        }
    }
}
