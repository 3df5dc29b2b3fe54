//! `study --report DIR`: a self-contained Markdown report of a study with its PNG plots, to
//! send to a colleague: the recipe, the leaderboard with intervals and paired differences,
//! the before-training scores beside the final ranking (Kendall's τ), the measured cost,
//! the data-mismatch figure, and how each number was made.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::StudyError;
use super::bootstrap::DEFAULT_RESAMPLES;
use super::leaderboard::{LeaderRow, Leaderboard, pareto_front};
use super::plots::{Bar, Point, intervals_plot, layers_plot, scatter_plot};
use super::record::{Study, StudyDir};

/// The report's file name inside its folder.
pub const REPORT_FILE: &str = "report.md";

/// Writes the report of study `board.study` of the project at `project_dir` into `out`
/// (created when missing) and returns the Markdown file's path.
pub fn write_report(
    project_dir: &Path,
    board: &Leaderboard,
    out: &Path,
) -> Result<PathBuf, StudyError> {
    std::fs::create_dir_all(out).map_err(StudyError::io("create", out))?;
    let study = StudyDir::of(project_dir, &board.study).load_plan()?;
    let mut text = String::new();
    header(&mut text, project_dir, &study);
    leaderboard_section(&mut text, board);
    let finished: Vec<&LeaderRow> = board.rows.iter().filter(|r| r.metric.is_some()).collect();
    if !finished.is_empty() {
        let bars: Vec<Bar> = finished
            .iter()
            .map(|r| Bar {
                label: r.key.clone(),
                estimate: r.metric.unwrap_or(0.0),
                interval: r.interval.map(|i| (i.low, i.high)),
            })
            .collect();
        intervals_plot(&out.join("intervals.png"), &board.metric, &bars)?;
        text.push_str("\n![The metric of each run with its interval](intervals.png)\n");
    }
    pareto_section(&mut text, board, &finished, out)?;
    before_section(&mut text, board, &finished, out)?;
    cost_section(&mut text, board);
    mismatch_section(&mut text, board, out)?;
    methods(&mut text);
    let path = out.join(REPORT_FILE);
    crate::atomic_file::write(&path, text.as_bytes()).map_err(StudyError::io("write", &path))?;
    Ok(path)
}

fn header(text: &mut String, project_dir: &Path, study: &Study) {
    let made = std::time::UNIX_EPOCH + std::time::Duration::from_secs(study.created_unix);
    let recipe = &study.recipe;
    let name = project_dir.file_name().map_or_else(
        || project_dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let _ = write!(
        text,
        "# Backbone study {} of project {name}\n\nMade {}. Every run trains on the project's \
         frozen split with the same recipe: {} task, {} epochs, learning rate {}, batch {}, \
         input {} px, seed {}. Runs: {}.\n",
        study.id,
        humantime::format_rfc3339_seconds(made),
        recipe.task.label(),
        recipe.epochs,
        recipe.lr,
        recipe.batch_size,
        recipe.input_size_px,
        recipe.seed,
        study.entries.len()
    );
}

fn leaderboard_section(text: &mut String, board: &Leaderboard) {
    let images = board.rows.iter().map(|r| r.images).max().unwrap_or(0);
    let _ = write!(
        text,
        "\n## Leaderboard\n\n{} on the {images} validation images, best first, with 95% \
         bootstrap intervals.\n\n| run | project run | {} | interval | training (s) | export \
         (MB) | state |\n|---|---|---|---|---|---|---|\n",
        crate::text::capitalised(&board.metric),
        board.metric
    );
    for row in &board.rows {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {:.1} | {} | {} |",
            row.key,
            row.run_id.as_deref().unwrap_or("–"),
            number(row.metric, 3),
            row.interval
                .map_or("–".into(), |i| format!("{:.3} – {:.3}", i.low, i.high)),
            row.train_secs,
            number(row.export_bytes.map(|b| b as f64 / 1e6), 1),
            row.state
        );
    }
    let verdicts: Vec<&String> = board
        .rows
        .iter()
        .filter_map(|r| r.verdict.as_ref())
        .collect();
    if !verdicts.is_empty() {
        text.push_str(
            "\nPaired differences (the same validation images resampled for both runs):\n\n",
        );
        for verdict in verdicts {
            let _ = writeln!(text, "- {verdict}");
        }
    }
}

fn pareto_section(
    text: &mut String,
    board: &Leaderboard,
    finished: &[&LeaderRow],
    out: &Path,
) -> Result<(), StudyError> {
    let points: Vec<Point> = finished
        .iter()
        .filter_map(|r| {
            let cost = r.before.as_ref()?.cost.as_ref()?;
            Some(Point {
                label: r.key.clone(),
                x: cost.float32.latency_ms_batch1,
                y: r.metric?,
            })
        })
        .collect();
    if points.is_empty() {
        return Ok(());
    }
    let front = pareto_front(&points.iter().map(|p| (p.x, p.y)).collect::<Vec<_>>());
    scatter_plot(
        &out.join("pareto.png"),
        &format!("{} against latency", board.metric),
        ("milliseconds per image (batch 1, float32)", &board.metric),
        &points,
        Some(&front),
    )?;
    let names: Vec<&str> = front.iter().map(|&i| points[i].label.as_str()).collect();
    let _ = write!(
        text,
        "\n## Metric against latency\n\nThe runs no other run beats on both (the Pareto \
         front, red): {}.\n\n![Metric against latency](pareto.png)\n",
        names.join(", ")
    );
    Ok(())
}

fn before_section(
    text: &mut String,
    board: &Leaderboard,
    finished: &[&LeaderRow],
    out: &Path,
) -> Result<(), StudyError> {
    let scored: Vec<&LeaderRow> = board
        .rows
        .iter()
        .filter(|r| r.before.as_ref().is_some_and(|b| b.scores.is_some()))
        .collect();
    if scored.is_empty() {
        return Ok(());
    }
    text.push_str(
        "\n## Before training\n\nFrom frozen embeddings of the training split, in seconds. \
         These are estimates that rank backbones; they do not promise accuracy.\n\n| run | \
         LogME | k-NN accuracy | k-fold probe accuracy | final |\n|---|---|---|---|---|\n",
    );
    for row in &scored {
        if let Some(scores) = row.before.as_ref().and_then(|b| b.scores.as_ref()) {
            let _ = writeln!(
                text,
                "| {} | {:.3} | {:.3} | {:.3} | {} |",
                row.key,
                scores.logme,
                scores.knn_accuracy,
                scores.probe_accuracy,
                number(row.metric, 3)
            );
        }
    }
    for agreement in &board.agreement {
        match agreement.tau {
            Some(tau) => {
                let _ = writeln!(
                    text,
                    "\nKendall's τ between the LogME ranking and the final one ({}, {} runs): \
                     **{tau:.2}** (1: the same order, -1: reversed).",
                    agreement.strategy, agreement.runs
                );
            }
            None if agreement.runs >= 2 => {
                let _ = writeln!(
                    text,
                    "\nKendall's τ between the LogME ranking and the final one ({}, {} runs) \
                     is not defined: the runs tie on one of the two.",
                    agreement.strategy, agreement.runs
                );
            }
            None => {}
        }
    }
    let points: Vec<Point> = finished
        .iter()
        .filter_map(|r| {
            Some(Point {
                label: r.key.clone(),
                x: r.before.as_ref()?.scores.as_ref()?.logme,
                y: r.metric?,
            })
        })
        .collect();
    if points.len() >= 2 {
        scatter_plot(
            &out.join("before_after.png"),
            "Before training against after",
            ("LogME", &board.metric),
            &points,
            None,
        )?;
        text.push_str("\n![LogME against the final metric](before_after.png)\n");
    }
    Ok(())
}

fn cost_section(text: &mut String, board: &Leaderboard) {
    let mut seen = Vec::new();
    let mut lines = String::new();
    for row in &board.rows {
        let Some(cost) = row.before.as_ref().and_then(|b| b.cost.as_ref()) else {
            continue;
        };
        if seen.contains(&row.backbone) {
            continue;
        }
        seen.push(row.backbone.clone());
        let bf16 = cost.bfloat16.as_ref();
        let _ = writeln!(
            lines,
            "| {} | {:.2} | {:.0} | {} | {} | {} | {:.1}M | {:.3} |",
            row.backbone,
            cost.float32.latency_ms_batch1,
            cost.float32.images_per_s_batch32,
            number(bf16.map(|s| s.latency_ms_batch1), 2),
            number(bf16.map(|s| s.images_per_s_batch32), 0),
            number(cost.peak_memory_mib, 1),
            cost.params as f64 / 1e6,
            cost.gflops
        );
    }
    if lines.is_empty() {
        return;
    }
    let _ = write!(
        text,
        "\n## Cost on this machine\n\n| backbone | ms/image (batch 1) | images/s (batch 32) | \
         bf16 ms/image | bf16 images/s | peak MiB (batch 32) | parameters | GFLOPs |\n\
         |---|---|---|---|---|---|---|---|\n{lines}\nPeak memory is the growth of the \
         process's resident size over one batch; \"–\" where the batch reused memory the \
         process already held.\n"
    );
}

fn mismatch_section(text: &mut String, board: &Leaderboard, out: &Path) -> Result<(), StudyError> {
    let mismatches = board.mismatches();
    let series: Vec<(String, Vec<f64>)> = mismatches
        .iter()
        .map(|(name, m)| ((*name).to_owned(), m.per_layer.clone()))
        .collect();
    let mut lines = String::new();
    for (name, mismatch) in &mismatches {
        let _ = writeln!(
            lines,
            "- {name}: {:.2}, the images are {}",
            mismatch.summary,
            mismatch.verdict()
        );
    }
    if series.is_empty() {
        return Ok(());
    }
    layers_plot(
        &out.join("mismatch.png"),
        "Data mismatch per batch-norm layer",
        "ln(1 + symmetric KL)",
        &series,
    )?;
    let _ = write!(
        text,
        "\n## How far the images are from the pretraining data\n\nThe pretrained \
         batch-norm statistics against those of the project's images, per layer (under 0.25: close; over 1: \
         far):\n\n{lines}\n![Mismatch per layer](mismatch.png)\n"
    );
    Ok(())
}

fn methods(text: &mut String) {
    let _ = write!(
        text,
        "\n## How the numbers were made\n\n- Intervals: percentile bootstrap over the \
         validation images, {DEFAULT_RESAMPLES} resamples; a difference between two runs \
         resamples the same images for both, and is \"shown\" when its interval excludes \
         zero.\n- LogME: the evidence maximisation of You et al. (ICML 2021), the fixed-point \
         iteration of the authors' reference code, averaged over classes.\n- k-NN: \
         leave-one-out, {} neighbours, cosine similarity; probe: {}-fold ridge regression on \
         the frozen embeddings.\n- Mismatch: for each batch-norm layer, the symmetric KL \
         divergence between the pretrained and the observed per-channel Gaussians, as ln(1 + \
         KL), averaged over channels, then over layers.\n- Cost: median latency of 5 passes \
         of one image, throughput of a batch of 32, on this machine.\n",
        super::knn::DEFAULT_K,
        super::probe_cv::DEFAULT_FOLDS
    );
}

fn number(value: Option<f64>, digits: usize) -> String {
    value.map_or("–".to_owned(), |v| format!("{v:.digits$}"))
}
