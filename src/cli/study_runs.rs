//! `transfer-workbench study PROJECT` with training runs: makes a study (the chosen
//! backbones × strategies, plus one backbone from random weights as the control), runs it
//! with one line per epoch, and prints its leaderboard; `--resume ID` continues one after a
//! stop or a crash, `--show ID` prints the leaderboard of one.

use std::sync::atomic::AtomicBool;

use anyhow::Context;

use super::study::{StudyArgs, chosen_backbones};
use crate::study::leaderboard::{LeaderRow, Leaderboard, leaderboard};
use crate::study::plan::{StudyPlan, make_study};
use crate::study::record::StudyDir;
use crate::study::runner::{StudyEvent, StudyOptions, StudyOutcome, run_study};
use crate::train::{Control, TrainEvent};

/// Runs `study` without `--scores-only`.
pub fn run(args: StudyArgs) -> anyhow::Result<()> {
    let device = tch::Device::cuda_if_available();
    let id = match (&args.show, &args.resume) {
        (Some(id), _) => id.clone(),
        (None, Some(id)) => {
            run_one(&args, id, device)?;
            id.clone()
        }
        (None, None) if args.plan.is_some() => {
            let id = create(&args)?;
            let study = StudyDir::of(&args.project, &id).load_plan()?;
            let out = args.plan.as_deref().unwrap_or(std::path::Path::new("."));
            let specs = crate::study::spec::write_specs(&study, out)?;
            println!("{id}: {} run spec(s)", specs.len());
            for spec in specs {
                println!("{}", spec.display());
            }
            return Ok(());
        }
        (None, None) => {
            let id = create(&args)?;
            if !args.json {
                eprintln!(
                    "{id}: made in {}",
                    args.project.join("studies").join(&id).display()
                );
            }
            run_one(&args, &id, device)?;
            id
        }
    };
    let board = leaderboard(&args.project, &id, device, &AtomicBool::new(false))?
        .context("the leaderboard was stopped")?;
    if let Some(out) = &args.report {
        let path = crate::study::report::write_report(&args.project, &board, out)?;
        eprintln!("report: {}", path.display());
    }
    if args.json {
        for row in &board.rows {
            println!("{}", serde_json::to_string(&json_row(row))?);
        }
    } else {
        print!("{}", describe(&board));
    }
    Ok(())
}

/// Makes the study the options ask for and returns its id.
fn create(args: &StudyArgs) -> anyhow::Result<String> {
    let backbones = chosen_backbones(args)?;
    let strategies = if args.strategies.is_empty() {
        vec![crate::train::Strategy::LinearProbe]
    } else {
        args.strategies
            .iter()
            .map(|s| super::train::strategy(s))
            .collect::<anyhow::Result<_>>()?
    };
    let control = match (&args.control, args.no_control) {
        (_, true) => None,
        (Some(name), false) => Some(name.clone()),
        (None, false) => Some(backbones[0].clone()),
    };
    let plan = StudyPlan {
        backbones,
        strategies,
        control,
        epochs: args.epochs,
    };
    Ok(make_study(&args.project, &plan)?.id)
}

/// Runs (or continues) study `id`, printing its progress.
fn run_one(args: &StudyArgs, id: &str, device: tch::Device) -> anyhow::Result<()> {
    let options = StudyOptions {
        scores: true,
        cost: !args.no_cost,
        device,
    };
    let json = args.json;
    let outcome = run_study(
        &args.project,
        id,
        options,
        &mut |event| print_event(&event, json),
        &mut Control::detached(),
    )
    .with_context(|| format!("running {id}"))?;
    if outcome == StudyOutcome::Stopped {
        eprintln!(
            "{id} stopped: `study {} --resume {id}` goes on",
            args.project.display()
        );
    }
    Ok(())
}

/// `train PROJECT --spec FILE`: trains the one run of a study's spec.
pub fn run_spec(
    project: &std::path::Path,
    spec: &std::path::Path,
    json: bool,
) -> anyhow::Result<()> {
    let mut on_event = |event: StudyEvent| {
        if json {
            if let Ok(line) = serde_json::to_string(&event) {
                println!("{line}");
            }
        } else {
            print_event(&event, false);
        }
    };
    let outcome = crate::study::spec::run_spec(
        project,
        spec,
        tch::Device::cuda_if_available(),
        &mut on_event,
        &mut Control::detached(),
    )
    .with_context(|| format!("training the run of {}", spec.display()))?;
    if outcome == StudyOutcome::Stopped && !json {
        eprintln!("stopped: the same command resumes it");
    }
    Ok(())
}

/// One line on stderr per step of the study worth seeing.
fn print_event(event: &StudyEvent, json: bool) {
    if json {
        return;
    }
    match event {
        StudyEvent::Scoring { backbone } => eprintln!("{backbone}: scoring and measuring…"),
        StudyEvent::EntryStarted { key, resumed } => eprintln!(
            "{key}: {}",
            if *resumed {
                "resuming from its last checkpoint"
            } else {
                "training"
            }
        ),
        StudyEvent::Train {
            key,
            event: TrainEvent::Epoch {
                epoch, validation, ..
            },
        } => eprintln!(
            "{key}: epoch {epoch}: validation loss {:.4}, accuracy {:.3}",
            validation.loss, validation.accuracy
        ),
        StudyEvent::Train {
            key,
            event: TrainEvent::Failed { reason },
        } => eprintln!("{key}: failed: {reason}"),
        StudyEvent::EntryEnded { key, record } => match &record.state {
            crate::study::record::EntryState::Done => eprintln!(
                "{key}: done ({}, {:.1} s of training)",
                record.run_id.as_deref().unwrap_or("–"),
                record.train_secs
            ),
            crate::study::record::EntryState::Failed(why) => eprintln!("{key}: failed: {why}"),
            crate::study::record::EntryState::Pending => {}
        },
        StudyEvent::EntryBusy { key, holder } => {
            eprintln!("{key}: trained by another process now ({holder})")
        }
        StudyEvent::Warning { message } => eprintln!("warning: {message}"),
        _ => {}
    }
}

/// The fields of one run for `--json`.
fn json_row(row: &LeaderRow) -> serde_json::Value {
    let scores = row.before.as_ref().and_then(|b| b.scores.as_ref());
    let cost = row.before.as_ref().and_then(|b| b.cost.as_ref());
    serde_json::json!({
        "key": row.key,
        "backbone": row.backbone,
        "strategy": row.strategy,
        "pretrained": row.pretrained,
        "run_id": row.run_id,
        "state": row.state,
        "logme": scores.map(|s| s.logme),
        "knn_accuracy": scores.map(|s| s.knn_accuracy),
        "probe_accuracy": scores.map(|s| s.probe_accuracy),
        "mismatch": scores.and_then(|s| s.mismatch.as_ref()).map(|m| m.summary),
        "latency_ms_batch1": cost.map(|c| c.float32.latency_ms_batch1),
        "images_per_s_batch32": cost.map(|c| c.float32.images_per_s_batch32),
        "params": cost.map(|c| c.params),
        "gflops": cost.map(|c| c.gflops),
        "metric": row.metric,
        "interval_low": row.interval.map(|i| i.low),
        "interval_high": row.interval.map(|i| i.high),
        "best_minus_this_low": row.best_minus_this.map(|i| i.low),
        "best_minus_this_high": row.best_minus_this.map(|i| i.high),
        "verdict": row.verdict,
        "validation_images": row.images,
        "train_secs": row.train_secs,
        "export_bytes": row.export_bytes,
    })
}

/// The leaderboard as text.
pub fn describe(board: &Leaderboard) -> String {
    let text =
        |v: Option<f64>, digits: usize| v.map_or("–".to_owned(), |v| format!("{v:.digits$}"));
    let names: Vec<String> = board
        .rows
        .iter()
        .map(|row| match &row.run_id {
            Some(run) => format!("{} ({run})", row.key),
            None => row.key.clone(),
        })
        .collect();
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(3)
        .max(3);
    let images = board.rows.iter().map(|r| r.images).max().unwrap_or(0);
    let mut out = format!(
        "{}: {} on the {images} validation images, 95% bootstrap intervals\n{:<width$} {:>8} {:>13} {:>7} {:>8} {:>9} {:>8} {:>7}\n",
        board.study,
        board.metric,
        "run",
        short_metric(&board.metric),
        "interval",
        "LogME",
        "train s",
        "ms/image",
        "size MB",
        "params"
    );
    for (row, name) in board.rows.iter().zip(&names) {
        let scores = row.before.as_ref().and_then(|b| b.scores.as_ref());
        let cost = row.before.as_ref().and_then(|b| b.cost.as_ref());
        let metric = match row.metric {
            Some(m) => format!("{m:.3}"),
            None => row.state.chars().take(8).collect(),
        };
        out.push_str(&format!(
            "{name:<width$} {metric:>8} {:>13} {:>7} {:>8.1} {:>9} {:>8} {:>7}\n",
            row.interval
                .map_or("–".to_owned(), |i| format!("{:.3}–{:.3}", i.low, i.high)),
            text(scores.map(|s| s.logme), 3),
            row.train_secs,
            text(cost.map(|c| c.float32.latency_ms_batch1), 1),
            text(row.export_bytes.map(|b| b as f64 / 1e6), 1),
            cost.map_or("–".to_owned(), |c| format!(
                "{:.1}M",
                c.params as f64 / 1e6
            )),
        ));
    }
    for row in &board.rows {
        if let Some(verdict) = &row.verdict {
            out.push_str(&format!("{verdict}\n"));
        }
        if row.state.starts_with("failed") {
            out.push_str(&format!("{}: {}\n", row.key, row.state));
        }
    }
    for agreement in &board.agreement {
        match agreement.tau {
            Some(tau) => out.push_str(&format!(
                "before vs after training ({}, {} runs): Kendall's τ = {tau:.2}\n",
                agreement.strategy, agreement.runs
            )),
            None if agreement.runs > 0 => out.push_str(&format!(
                "before vs after training ({}): τ needs two finished runs with scores\n",
                agreement.strategy
            )),
            None => {}
        }
    }
    out
}

/// The metric's name for a column head.
fn short_metric(metric: &str) -> &'static str {
    if metric.contains("Dice") {
        "Dice"
    } else if metric.starts_with("AP") {
        "AP"
    } else {
        "accuracy"
    }
}
