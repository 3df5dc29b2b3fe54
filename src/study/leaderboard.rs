//! A study's leaderboard: each finished run's validation metric with a 95% bootstrap
//! interval over the validation images, the paired bootstrap of the best run against each
//! other one, training time, latency and size, and the before-training scores beside the
//! final ranking with Kendall's τ between them.
//!
//! The metric is a mean of per-image values, so that resampling images is the bootstrap:
//! accuracy (1 or 0 per image) for classification, the headline Dice of each image for
//! segmentation. Detection runs show their best validation AP without an interval (AP is
//! not a mean over images).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use tch::Device;

use super::StudyError;
use super::bootstrap::{DEFAULT_RESAMPLES, Interval, difference_interval, mean_interval, verdict};
use super::kendall::kendall_tau;
use super::record::{BackboneRecord, EntryRecord, EntryState, Study, StudyDir};
use crate::task::TaskKind;
use crate::train::source::{BatchSource, Split};
use crate::train::{CheckpointChoice, ProjectSource, TrainedModel};

/// The confidence level of every interval.
pub const LEVEL: f64 = 0.95;

/// One run's line.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LeaderRow {
    /// The run's name in the study.
    pub key: String,
    /// Its backbone.
    pub backbone: String,
    /// probe, finetune or staged.
    pub strategy: String,
    /// Whether it started from pretrained weights (else: the from-scratch control).
    pub pretrained: bool,
    /// The project run, once started.
    pub run_id: Option<String>,
    /// pending, interrupted, done, or failed: why.
    pub state: String,
    /// Not trained to its end yet (pending or interrupted): a resume would train it.
    pub unfinished: bool,
    /// The validation metric (see [`Leaderboard::metric`]).
    pub metric: Option<f64>,
    /// Its 95% bootstrap interval.
    pub interval: Option<Interval>,
    /// The best run's metric minus this one's, paired on the same images.
    pub best_minus_this: Option<Interval>,
    /// That difference in words.
    pub verdict: Option<String>,
    /// Validation images scored.
    pub images: usize,
    /// Wall seconds of training.
    pub train_secs: f64,
    /// Size of the exported TorchScript model.
    pub export_bytes: Option<u64>,
    /// The backbone's scores and cost before training.
    pub before: Option<BackboneRecord>,
}

/// Kendall's τ between the before-training ranking (LogME) and the final metric, over the
/// pretrained runs of one strategy.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RankAgreement {
    /// The strategy.
    pub strategy: String,
    /// Runs compared.
    pub runs: usize,
    /// τ-b (`None`: fewer than two runs, or no variation).
    pub tau: Option<f64>,
}

/// The whole board.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Leaderboard {
    /// The study.
    pub study: String,
    /// What [`LeaderRow::metric`] is.
    pub metric: String,
    /// Runs with a metric, best first; then the others in the study's order.
    pub rows: Vec<LeaderRow>,
    /// Before against after.
    pub agreement: Vec<RankAgreement>,
}

/// A run's per-image values on the validation split, by image id.
type Outcomes = Vec<(String, f64)>;

/// Builds the leaderboard of study `id`; scoring a run's validation images reads the
/// inspection cache when it can. `stop` ends it early (`Ok(None)`).
pub fn leaderboard(
    project_dir: &Path,
    id: &str,
    device: Device,
    stop: &AtomicBool,
) -> Result<Option<Leaderboard>, StudyError> {
    leaderboard_with_progress(project_dir, id, device, stop, &mut |_, _| {})
}

/// [`leaderboard`], calling `progress` with the entries scored so far and their number.
pub fn leaderboard_with_progress(
    project_dir: &Path,
    id: &str,
    device: Device,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Option<Leaderboard>, StudyError> {
    let dir = StudyDir::of(project_dir, id);
    let study = dir.load_plan()?;
    let scores = dir.load_scores()?;
    let mut rows = Vec::new();
    let mut outcomes: HashMap<String, Outcomes> = HashMap::new();
    for (done, entry) in study.entries.iter().enumerate() {
        progress(done, study.entries.len());
        let record = dir.load_entry(&entry.key)?;
        let mut row = LeaderRow {
            key: entry.key.clone(),
            backbone: entry.backbone.clone(),
            strategy: entry.strategy.label().to_owned(),
            pretrained: entry.pretrained(),
            run_id: record.run_id.clone(),
            state: state_label(&record),
            unfinished: record.state == EntryState::Pending,
            metric: None,
            interval: None,
            best_minus_this: None,
            verdict: None,
            images: 0,
            train_secs: record.train_secs,
            export_bytes: record.export_bytes,
            before: scores
                .backbones
                .iter()
                .find(|b| b.backbone == entry.backbone)
                .cloned()
                .map(|mut before| {
                    // Scores of the pretrained encoder say nothing of a random one.
                    if !entry.pretrained() {
                        before.scores = None;
                    }
                    before
                }),
        };
        if let (EntryState::Done, Some(run)) = (&record.state, &record.run_id) {
            match study.recipe.task {
                TaskKind::Detection => row.metric = detection_ap(project_dir, run),
                task => {
                    let Some(values) = run_outcomes(project_dir, run, task, device, stop)? else {
                        return Ok(None);
                    };
                    let plain: Vec<f64> = values.iter().map(|(_, v)| *v).collect();
                    if !plain.is_empty() {
                        let interval = mean_interval(&plain, DEFAULT_RESAMPLES, LEVEL, 0)?;
                        row.metric = Some(interval.estimate);
                        row.interval = Some(interval);
                    }
                    row.images = plain.len();
                    outcomes.insert(entry.key.clone(), values);
                }
            }
        }
        rows.push(row);
    }
    rows.sort_by(|a, b| match (a.metric, b.metric) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    compare_with_best(&mut rows, &outcomes)?;
    let agreement = rank_agreement(&study, &rows);
    Ok(Some(Leaderboard {
        study: study.id.clone(),
        metric: metric_name(study.recipe.task).to_owned(),
        rows,
        agreement,
    }))
}

impl Leaderboard {
    /// Each backbone's data-mismatch figure, once per backbone, in the board's order.
    pub fn mismatches(&self) -> Vec<(&str, &super::mismatch::Mismatch)> {
        let mut found: Vec<(&str, &super::mismatch::Mismatch)> = Vec::new();
        for row in &self.rows {
            let mismatch = row
                .before
                .as_ref()
                .and_then(|b| b.scores.as_ref())
                .and_then(|s| s.mismatch.as_ref());
            if let Some(mismatch) = mismatch
                && !found.iter().any(|(name, _)| *name == row.backbone)
            {
                found.push((&row.backbone, mismatch));
            }
        }
        found
    }
}

/// The name of the leaderboard's metric for `task`.
pub fn metric_name(task: TaskKind) -> &'static str {
    match task {
        TaskKind::Classification => "accuracy",
        TaskKind::Segmentation => "mean Dice per image",
        TaskKind::Detection => "AP (COCO, best epoch)",
    }
}

fn state_label(record: &EntryRecord) -> String {
    match &record.state {
        EntryState::Pending if record.run_id.is_some() => "interrupted".into(),
        EntryState::Pending => "pending".into(),
        EntryState::Done => "done".into(),
        EntryState::Failed(why) => format!("failed: {why}"),
    }
}

/// Fills each row's paired difference from the best row with outcomes.
fn compare_with_best(
    rows: &mut [LeaderRow],
    outcomes: &HashMap<String, Outcomes>,
) -> Result<(), StudyError> {
    let Some((best_key, best)) = rows
        .iter()
        .find_map(|r| outcomes.get(&r.key).map(|o| (r.key.clone(), o)))
    else {
        return Ok(());
    };
    let best: HashMap<&str, f64> = best.iter().map(|(id, v)| (id.as_str(), *v)).collect();
    for row in rows.iter_mut().filter(|r| r.key != best_key) {
        let Some(values) = outcomes.get(&row.key) else {
            continue;
        };
        let (a, b): (Vec<f64>, Vec<f64>) = values
            .iter()
            .filter_map(|(id, v)| best.get(id.as_str()).map(|w| (*w, *v)))
            .unzip();
        if a.is_empty() {
            continue;
        }
        let difference = difference_interval(&a, &b, DEFAULT_RESAMPLES, LEVEL, 1)?;
        row.verdict = Some(format!("{best_key} is {}", verdict(&difference, &row.key)));
        row.best_minus_this = Some(difference);
    }
    Ok(())
}

/// τ between LogME and the final metric, per strategy, over pretrained runs with both.
fn rank_agreement(study: &Study, rows: &[LeaderRow]) -> Vec<RankAgreement> {
    let mut strategies: Vec<String> = Vec::new();
    for entry in &study.entries {
        let label = entry.strategy.label().to_owned();
        if !strategies.contains(&label) {
            strategies.push(label);
        }
    }
    strategies
        .into_iter()
        .map(|strategy| {
            let (before, after): (Vec<f64>, Vec<f64>) = rows
                .iter()
                .filter(|r| r.pretrained && r.strategy == strategy)
                .filter_map(|r| {
                    let logme = r.before.as_ref()?.scores.as_ref()?.logme;
                    Some((logme, r.metric?))
                })
                .unzip();
            RankAgreement {
                strategy,
                runs: before.len(),
                tau: kendall_tau(&before, &after),
            }
        })
        .collect()
}

/// The per-image values of run `run` on its validation split.
fn run_outcomes(
    project_dir: &Path,
    run: &str,
    task: TaskKind,
    device: Device,
    stop: &AtomicBool,
) -> Result<Option<Outcomes>, StudyError> {
    if task == TaskKind::Segmentation {
        let Some(inspection) = crate::inspect::segmentation::inspect_segmentation(
            project_dir,
            run,
            &mut |_, _| {},
            stop,
        )?
        else {
            return Ok(None);
        };
        return Ok(Some(
            (0..inspection.images.len())
                .filter_map(|i| Some((inspection.images[i].id.clone(), inspection.score(i)?)))
                .collect(),
        ));
    }
    let mut model = TrainedModel::load(project_dir, run, CheckpointChoice::BestOrLast, device)?;
    let mut source = ProjectSource::open_run(project_dir, &model.run, &model.config, None)?;
    let Some(outputs) = crate::inspect::split_outputs(
        &mut model,
        &mut source,
        Split::Validation,
        &mut |_, _| {},
        stop,
    )?
    else {
        return Ok(None);
    };
    let ids = source.sample_ids(Split::Validation);
    let classes = outputs.classes.max(1);
    Ok(Some(
        ids.into_iter()
            .zip(outputs.labels.iter())
            .enumerate()
            .map(|(i, (id, &label))| {
                let row = &outputs.logits[i * classes..(i + 1) * classes];
                let predicted = row
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(c, _)| c);
                (id, f64::from(u8::from(predicted as i64 == label)))
            })
            .collect(),
    ))
}

/// The best validation AP in a detection run's history.
fn detection_ap(project_dir: &Path, run: &str) -> Option<f64> {
    let (dir, _) = crate::train::run::RunDir::open(project_dir, run).ok()?;
    dir.read_history()
        .ok()?
        .iter()
        .filter_map(|r| r.validation.extra.get(crate::train::events::AP).copied())
        .filter(|v| v.is_finite())
        .reduce(f64::max)
}

/// The indices of the points on the Pareto front of `(cost, metric)` points: no other point
/// is at most as costly and at least as good, and strictly better in one of the two.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<usize> {
    (0..points.len())
        .filter(|&i| {
            let (cost, metric) = points[i];
            !points
                .iter()
                .any(|&(c, m)| c <= cost && m >= metric && (c < cost || m > metric))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pareto_front_keeps_only_undominated_points() {
        let points = [(1.0, 0.7), (2.0, 0.9), (3.0, 0.8), (2.0, 0.6), (5.0, 0.95)];
        assert_eq!(pareto_front(&points), [0, 1, 4]);
        assert_eq!(pareto_front(&[(1.0, 0.5), (1.0, 0.5)]), [0, 1]);
        assert!(pareto_front(&[]).is_empty());
    }
}
