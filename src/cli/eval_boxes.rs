//! `eval` for detection runs: COCO's 12 box metrics (as pycocotools' `COCOeval.summarize()`
//! prints them) and AP per class, over the run's validation (or test) images in their own
//! pixels.

use std::sync::atomic::AtomicBool;

use anyhow::Context;
use serde::Serialize;

use super::train::EvalArgs;
use crate::inspect::detection::inspect_detection;
use crate::train::coco_eval::summary_text;

/// The names of COCO's 12 stats in `--json`, in `summarize()` order.
const STAT_NAMES: [&str; 12] = [
    "ap",
    "ap50",
    "ap75",
    "ap_small",
    "ap_medium",
    "ap_large",
    "ar1",
    "ar10",
    "ar100",
    "ar_small",
    "ar_medium",
    "ar_large",
];

/// One class of `eval --json`.
#[derive(Serialize)]
struct ClassScores {
    class: String,
    /// AP@[.5:.95]; `null` when the class has no box among the images.
    ap: Option<f64>,
    ap50: Option<f64>,
}

/// `eval --json` of a detection run.
#[derive(Serialize)]
struct DetectionReport {
    run_id: String,
    images: usize,
    /// The 12 stats by name (-1 where pycocotools gives -1: no box of that size).
    stats: serde_json::Map<String, serde_json::Value>,
    per_class: Vec<ClassScores>,
    skipped: Vec<String>,
}

/// Evaluates detection run `id` on `validation` (default: the run's validation split).
pub fn run(
    args: &EvalArgs,
    id: &str,
    validation: Option<crate::data::split::Split>,
) -> anyhow::Result<()> {
    let mut progress = |_, _| {};
    let inspection = inspect_detection(
        &args.project,
        id,
        validation,
        &mut progress,
        &AtomicBool::new(false),
    )?
    .context("the evaluation was stopped")?;
    let coco = &inspection.coco;
    if args.json {
        let report = DetectionReport {
            run_id: id.to_owned(),
            images: inspection.images.len(),
            stats: STAT_NAMES
                .iter()
                .zip(coco.stats)
                .map(|(name, value)| ((*name).to_owned(), serde_json::Value::from(value)))
                .collect(),
            per_class: inspection
                .classes
                .iter()
                .enumerate()
                .map(|(i, class)| ClassScores {
                    class: class.clone(),
                    ap: coco.per_class_ap.get(i).copied().flatten(),
                    ap50: coco.per_class_ap50.get(i).copied().flatten(),
                })
                .collect(),
            skipped: inspection.skipped.clone(),
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{id}: COCO box metrics on {} images",
            inspection.images.len()
        );
        println!("{}", summary_text(coco, &inspection.classes));
        for reason in &inspection.skipped {
            println!("left out: {reason}");
        }
    }
    Ok(())
}
