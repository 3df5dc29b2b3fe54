//! `train::coco_eval` against pycocotools' COCOeval (bbox) on seeded data sets with crowd
//! boxes, a class without ground truth, more than 100 detections in an image, tied scores,
//! every area range (and its limits), `area` different from w*h, images without boxes and
//! non-contiguous image ids (`tests/fixtures/metrics/coco_eval_reference.py`): the 12 stats,
//! per-class AP and AP50, and the IoU 0.5 precision-recall curves agree within 1e-6.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use std::process::Command;

use serde::Deserialize;
use transfer_workbench::train::coco_eval::{
    Detection, GroundTruth, evaluate, match_image, summary_lines,
};

const TOLERANCE: f64 = 1e-6;
const SEEDS: [&str; 6] = ["1", "2", "3", "4", "5", "6"];

/// One seeded data set and pycocotools' results on it.
#[derive(Deserialize)]
struct Case {
    seed: u64,
    num_classes: usize,
    image_ids: Vec<u64>,
    gts: Vec<GroundTruth>,
    dets: Vec<Detection>,
    stats: Vec<f64>,
    per_class_ap: Vec<Option<f64>>,
    per_class_ap50: Vec<Option<f64>>,
    recall_thresholds: Vec<f64>,
    precision_iou50: Vec<Option<Vec<f64>>>,
    scores_iou50: Vec<Option<Vec<f64>>>,
}

#[derive(Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

fn reference() -> Reference {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("coco_eval.json");
    let script = common::fixtures_dir().join("metrics/coco_eval_reference.py");
    let run = Command::new(common::venv_python())
        .arg(&script)
        .arg(&out)
        .args(SEEDS)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap()
}

/// The largest difference between two lists with the same gaps (`None`) in the same places.
fn max_diff(what: &str, ours: &[Option<f64>], theirs: &[Option<f64>]) -> f64 {
    assert_eq!(ours.len(), theirs.len(), "{what}: lengths");
    ours.iter()
        .zip(theirs)
        .map(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs(),
            (None, None) => 0.0,
            _ => panic!("{what}: {ours:?} against pycocotools' {theirs:?}"),
        })
        .fold(0.0, f64::max)
}

fn some(values: &[f64]) -> Vec<Option<f64>> {
    values.iter().copied().map(Some).collect()
}

#[test]
fn coco_eval_matches_pycocotools() {
    let reference = reference();
    assert_eq!(reference.cases.len(), SEEDS.len());
    let mut worst = [0.0_f64; 5];
    for case in &reference.cases {
        let seed = case.seed;
        let ours = evaluate(&case.image_ids, case.num_classes, &case.gts, &case.dets).unwrap();
        let diffs = [
            max_diff("stats", &some(&ours.stats), &some(&case.stats)),
            max_diff("per-class AP", &ours.per_class_ap, &case.per_class_ap),
            max_diff("per-class AP50", &ours.per_class_ap50, &case.per_class_ap50),
            curve_diff(
                &ours.pr_curves,
                &case.precision_iou50,
                &case.recall_thresholds,
                |c| &c.precision,
            ),
            curve_diff(
                &ours.pr_curves,
                &case.scores_iou50,
                &case.recall_thresholds,
                |c| &c.scores,
            ),
        ];
        for (w, d) in worst.iter_mut().zip(diffs) {
            *w = w.max(d);
        }
        assert!(
            diffs.iter().all(|&d| d <= TOLERANCE),
            "seed {seed}: differences {diffs:?}\nours:\n{}\npycocotools: {:?}",
            summary_lines(&ours.stats).join("\n"),
            case.stats
        );
        // The fixture exercises what it claims to.
        assert!(
            case.gts.iter().any(|g| g.crowd),
            "seed {seed}: no crowd box"
        );
        assert!(
            case.per_class_ap.contains(&None),
            "seed {seed}: every class has ground truth"
        );
        assert!(
            case.stats[3..6].iter().all(|&s| s >= 0.0),
            "seed {seed}: an empty area range"
        );
        assert!(
            case.gts
                .iter()
                .any(|g| (g.area - g.bbox_xywh[2] * g.bbox_xywh[3]).abs() > 1.0),
            "seed {seed}: every area is w*h"
        );
        let busiest = case
            .image_ids
            .iter()
            .map(|&i| {
                case.dets
                    .iter()
                    .filter(|d| d.image == i && d.class == 2)
                    .count()
            })
            .max()
            .unwrap_or(0);
        assert!(
            busiest > 100,
            "seed {seed}: at most {busiest} detections in an image"
        );
        assert!(
            case.image_ids
                .iter()
                .any(|&i| !case.gts.iter().any(|g| g.image == i)
                    && case.dets.iter().any(|d| d.image == i)),
            "seed {seed}: no image without boxes that has detections"
        );
    }
    eprintln!(
        "max |ours - pycocotools| over {} seeds: stats {:.1e}, per-class AP {:.1e}, AP50 {:.1e}, precision {:.1e}, scores {:.1e}",
        SEEDS.len(),
        worst[0],
        worst[1],
        worst[2],
        worst[3],
        worst[4]
    );
}

/// The largest difference of one array of the IoU 0.5 curves (precision or scores), the
/// recall thresholds included.
fn curve_diff(
    ours: &[Option<transfer_workbench::train::coco_eval::PrCurve>],
    theirs: &[Option<Vec<f64>>],
    recall_thresholds: &[f64],
    values: fn(&transfer_workbench::train::coco_eval::PrCurve) -> &Vec<f64>,
) -> f64 {
    assert_eq!(ours.len(), theirs.len());
    let mut worst = 0.0_f64;
    for (class, (ours, theirs)) in ours.iter().zip(theirs).enumerate() {
        match (ours, theirs) {
            (Some(curve), Some(expected)) => {
                worst = worst.max(max_diff("curve", &some(values(curve)), &some(expected)));
                let thresholds = max_diff(
                    "recall thresholds",
                    &some(&curve.recall_thresholds),
                    &some(recall_thresholds),
                );
                assert_eq!(thresholds, 0.0, "class {class}: recall thresholds");
            }
            (None, None) => {}
            _ => panic!("class {class}: a curve on one side only"),
        }
    }
    worst
}

/// The per-image matcher agrees with the whole evaluation on each fixture image taken alone
/// (AP at IoU 0.5 over the classes with ground truth), where no image has over 100
/// detections of a class.
#[test]
fn match_image_ap_agrees_with_the_evaluation_on_single_images() {
    let reference = reference();
    let mut images_compared = 0;
    for case in &reference.cases {
        for &image in &case.image_ids {
            let gts: Vec<GroundTruth> = case
                .gts
                .iter()
                .filter(|g| g.image == image)
                .cloned()
                .collect();
            let dets: Vec<Detection> = case
                .dets
                .iter()
                .filter(|d| d.image == image)
                .cloned()
                .collect();
            let crowded =
                (0..case.num_classes).any(|c| dets.iter().filter(|d| d.class == c).count() > 100);
            if crowded {
                continue;
            }
            let whole = evaluate(&[image], case.num_classes, &gts, &dets).unwrap();
            let matched = match_image(&gts, &dets, 0.5, 0.0);
            let aps: Vec<f64> = whole.per_class_ap50.iter().flatten().copied().collect();
            let expected = (!aps.is_empty()).then(|| aps.iter().sum::<f64>() / aps.len() as f64);
            let diff = max_diff(
                &format!("seed {} image {image}", case.seed),
                &[matched.ap],
                &[expected],
            );
            assert!(diff <= 1e-12, "seed {} image {image}: {diff}", case.seed);
            images_compared += 1;
        }
    }
    assert!(images_compared > 20, "{images_compared}");
}
