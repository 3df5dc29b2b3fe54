use super::image_match::box_iou;
use super::*;

fn gt(image: u64, class: usize, bbox_xywh: [f64; 4]) -> GroundTruth {
    GroundTruth {
        image,
        class,
        bbox_xywh,
        area: bbox_xywh[2] * bbox_xywh[3],
        crowd: false,
    }
}

fn det(image: u64, class: usize, bbox_xywh: [f64; 4], score: f64) -> Detection {
    Detection {
        image,
        class,
        bbox_xywh,
        score,
    }
}

/// Equal but for pycocotools' epsilon: precision is TP / (TP + FP + 2.2e-16), so a perfect
/// score with a single object is 1 - 2.2e-16.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

fn all_close(ours: &[Option<f64>], expected: &[Option<f64>]) -> bool {
    ours.len() == expected.len()
        && ours.iter().zip(expected).all(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => close(*a, *b),
            (a, b) => a == b,
        })
}

#[test]
fn perfect_detections_score_one() {
    let gts = vec![
        gt(1, 0, [10.0, 10.0, 20.0, 20.0]),    // small
        gt(1, 1, [50.0, 50.0, 60.0, 60.0]),    // medium
        gt(2, 0, [0.0, 0.0, 200.0, 150.0]),    // large
        gt(2, 1, [300.0, 200.0, 10.0, 100.0]), // medium
    ];
    let dets: Vec<Detection> = gts
        .iter()
        .map(|g| det(g.image, g.class, g.bbox_xywh, 0.9))
        .collect();
    let eval = evaluate(&[1, 2, 3], 2, &gts, &dets).unwrap();
    assert!(
        eval.stats.iter().all(|&s| close(s, 1.0)),
        "{:?}",
        eval.stats
    );
    assert!(all_close(&eval.per_class_ap, &[Some(1.0), Some(1.0)]));
    assert!(all_close(&eval.per_class_ap50, &[Some(1.0), Some(1.0)]));
    let curve = eval.pr_curves[0].as_ref().unwrap();
    assert_eq!(curve.recall_thresholds.len(), 101);
    assert!(curve.precision.iter().all(|&p| close(p, 1.0)));
    assert!(curve.scores.iter().all(|&s| close(s, 0.9)));
}

#[test]
fn no_detections_score_zero_and_empty_ranges_minus_one() {
    let gts = vec![gt(1, 0, [10.0, 10.0, 20.0, 20.0])];
    let eval = evaluate(&[1], 1, &gts, &[]).unwrap();
    // Only a small object: medium and large have nothing to find.
    assert_eq!(
        eval.stats,
        [
            0.0, 0.0, 0.0, 0.0, -1.0, -1.0, 0.0, 0.0, 0.0, 0.0, -1.0, -1.0
        ]
    );
    assert_eq!(eval.per_class_ap, vec![Some(0.0)]);
}

#[test]
fn nothing_at_all_is_minus_one() {
    let eval = evaluate(&[1, 2], 3, &[], &[]).unwrap();
    assert_eq!(eval.stats, [-1.0; 12]);
    assert_eq!(eval.per_class_ap, vec![None; 3]);
    assert_eq!(eval.pr_curves, vec![None; 3]);
}

#[test]
fn a_class_without_ground_truth_has_no_ap() {
    let gts = vec![gt(1, 0, [10.0, 10.0, 50.0, 50.0])];
    let dets = vec![
        det(1, 0, [10.0, 10.0, 50.0, 50.0], 0.8),
        det(1, 1, [100.0, 10.0, 50.0, 50.0], 0.9),
    ];
    let eval = evaluate(&[1], 2, &gts, &dets).unwrap();
    assert!(all_close(&eval.per_class_ap, &[Some(1.0), None]));
    assert!(all_close(&eval.per_class_ap50, &[Some(1.0), None]));
    assert!(eval.pr_curves[1].is_none());
    assert!(close(eval.stats[0], 1.0));
}

#[test]
fn a_detection_on_an_image_without_boxes_is_a_false_positive() {
    let gts = vec![gt(1, 0, [10.0, 10.0, 20.0, 20.0])];
    let dets = vec![
        det(1, 0, [10.0, 10.0, 20.0, 20.0], 0.9),
        det(2, 0, [10.0, 10.0, 20.0, 20.0], 0.95),
    ];
    let eval = evaluate(&[1, 2], 1, &gts, &dets).unwrap();
    assert!(close(eval.stats[0], 0.5), "{:?}", eval.stats);
    assert_eq!(eval.stats[8], 1.0);
    // Without image 2 in the list, its detection still counts (it names the image).
    let eval = evaluate(&[1], 1, &gts, &dets).unwrap();
    assert!(close(eval.stats[0], 0.5), "{:?}", eval.stats);
}

#[test]
fn tied_scores_keep_their_order() {
    let gts = vec![gt(1, 0, [10.0, 10.0, 40.0, 40.0])];
    let hit = det(1, 0, [10.0, 10.0, 40.0, 40.0], 0.5);
    let miss = det(1, 0, [200.0, 200.0, 40.0, 40.0], 0.5);
    let first_miss = evaluate(&[1], 1, &gts, &[miss.clone(), hit.clone()]).unwrap();
    let first_hit = evaluate(&[1], 1, &gts, &[hit.clone(), miss.clone()]).unwrap();
    assert!(close(first_miss.stats[1], 0.5));
    assert!(close(first_hit.stats[1], 1.0));
    let ap = |dets: &[Detection]| match_image(&gts, dets, 0.5, 0.0).ap.unwrap();
    assert!(close(ap(&[miss.clone(), hit.clone()]), 0.5));
    assert!(close(ap(&[hit, miss]), 1.0));
}

#[test]
fn detections_on_a_crowd_region_are_ignored() {
    let mut crowd = gt(1, 0, [0.0, 0.0, 100.0, 100.0]);
    crowd.crowd = true;
    let gts = vec![gt(1, 0, [200.0, 200.0, 40.0, 40.0]), crowd];
    let dets = vec![
        det(1, 0, [10.0, 10.0, 20.0, 20.0], 0.99), // inside the crowd: IoU 1 by its own area
        det(1, 0, [200.0, 200.0, 40.0, 40.0], 0.5),
    ];
    let eval = evaluate(&[1], 1, &gts, &dets).unwrap();
    assert!(close(eval.stats[0], 1.0));
    let matched = match_image(&gts, &dets, 0.5, 0.0);
    assert_eq!(
        matched.detections[0].outcome,
        DetectionOutcome::Ignored { gt: 1 }
    );
    assert_eq!(matched.true_positives, 1);
    assert_eq!(matched.false_positives, 0);
    assert!(matched.missed.is_empty());
    assert_eq!(matched.f1, Some(1.0));
}

#[test]
fn crowd_iou_divides_by_the_detection_area() {
    let region = [0.0, 0.0, 100.0, 100.0];
    assert_eq!(box_iou(&[10.0, 10.0, 20.0, 20.0], &region, true), 1.0);
    assert!(close(
        box_iou(&[10.0, 10.0, 20.0, 20.0], &region, false),
        0.04
    ));
    assert!(close(box_iou(&[90.0, 0.0, 20.0, 10.0], &region, true), 0.5));
    assert_eq!(box_iou(&[100.0, 0.0, 20.0, 10.0], &region, false), 0.0);
}

#[test]
fn match_image_counts_hits_misses_and_false_alarms() {
    let gts = vec![
        gt(7, 0, [0.0, 0.0, 10.0, 10.0]),
        gt(7, 0, [50.0, 50.0, 10.0, 10.0]),
        gt(7, 1, [100.0, 100.0, 10.0, 10.0]),
    ];
    let dets = vec![
        det(7, 0, [0.0, 0.0, 10.0, 10.0], 0.9),     // hit
        det(7, 0, [0.0, 0.0, 10.0, 10.0], 0.8),     // duplicate: false positive
        det(7, 1, [50.0, 50.0, 10.0, 10.0], 0.7),   // wrong class: false positive
        det(7, 1, [100.0, 100.0, 10.0, 10.0], 0.1), // below the score threshold
    ];
    let matched = match_image(&gts, &dets, 0.5, 0.3);
    let order: Vec<usize> = matched.detections.iter().map(|m| m.detection).collect();
    assert_eq!(order, vec![0, 1, 2]);
    assert_eq!(
        matched.detections[0].outcome,
        DetectionOutcome::TruePositive { gt: 0, iou: 1.0 }
    );
    assert_eq!(matched.missed, vec![1, 2]);
    assert_eq!((matched.true_positives, matched.false_positives), (1, 2));
    assert!(close(matched.precision.unwrap(), 1.0 / 3.0));
    assert!(close(matched.recall.unwrap(), 1.0 / 3.0));
    assert!(close(matched.f1.unwrap(), 2.0 / 6.0));
    // Class 0: hit then false positive, half the objects: AP 0.5 * 51 / 101; class 1: 0.
    assert!(close(matched.ap.unwrap(), (51.0 / 101.0) / 2.0));
    let empty = match_image(&[], &[], 0.5, 0.0);
    assert_eq!((empty.f1, empty.ap, empty.precision), (None, None, None));
}

/// A small deterministic generator (no dependency on a random crate's stream).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn match_image_ap_equals_evaluate_on_one_image() {
    for seed in 0..20 {
        let mut rng = Lcg(seed);
        let mut gts = Vec::new();
        let mut dets = Vec::new();
        for _ in 0..8 {
            let class = (rng.next() * 3.0) as usize;
            let size = 10.0 + rng.next() * 80.0;
            let bbox = [rng.next() * 300.0, rng.next() * 300.0, size, size * 0.8];
            let mut g = gt(5, class, bbox);
            g.crowd = rng.next() < 0.1;
            gts.push(g);
            for _ in 0..3 {
                let shift = (rng.next() - 0.5) * size * 0.6;
                let class = if rng.next() < 0.8 { class } else { 2 };
                let score = (rng.next() * 10.0).round() / 10.0; // ties
                let jittered = [bbox[0] + shift, bbox[1] - shift, bbox[2], bbox[3] + shift];
                dets.push(det(5, class, jittered, score));
            }
        }
        let eval = evaluate(&[5], 3, &gts, &dets).unwrap();
        let matched = match_image(&gts, &dets, 0.5, 0.0);
        let classes: Vec<f64> = eval.per_class_ap50.iter().flatten().copied().collect();
        let expected =
            (!classes.is_empty()).then(|| classes.iter().sum::<f64>() / classes.len() as f64);
        match (matched.ap, expected) {
            (Some(ours), Some(theirs)) => {
                assert!(close(ours, theirs), "seed {seed}: {ours} {theirs}")
            }
            (ours, theirs) => assert_eq!(ours, theirs, "seed {seed}"),
        }
    }
}

#[test]
fn more_than_100_detections_per_image_are_cut_after_sorting() {
    let gts = vec![gt(1, 0, [0.0, 0.0, 50.0, 50.0])];
    // 100 false positives that outscore the hit: the hit is the 101st and does not count.
    let mut dets: Vec<Detection> = (0..100)
        .map(|i| det(1, 0, [100.0 + i as f64, 100.0, 10.0, 10.0], 0.9))
        .collect();
    dets.push(det(1, 0, [0.0, 0.0, 50.0, 50.0], 0.5));
    let eval = evaluate(&[1], 1, &gts, &dets).unwrap();
    assert_eq!(eval.stats[8], 0.0);
    // Sorted first, then cut: the hit with the best score counts even when listed last.
    dets.last_mut().unwrap().score = 0.95;
    let eval = evaluate(&[1], 1, &gts, &dets).unwrap();
    assert!(close(eval.stats[0], 1.0));
}

#[test]
fn bad_input_is_refused() {
    let gts = vec![gt(1, 2, [0.0, 0.0, 5.0, 5.0])];
    assert!(matches!(
        evaluate(&[1], 2, &gts, &[]),
        Err(CocoEvalError::ClassOutOfRange { class: 2, .. })
    ));
    let dets = vec![det(1, 0, [0.0, 0.0, 5.0, 5.0], f64::NAN)];
    assert!(matches!(
        evaluate(&[1], 1, &[], &dets),
        Err(CocoEvalError::NotFinite { .. })
    ));
}

#[test]
fn summary_lines_read_as_pycocotools_prints_them() {
    let mut stats = [0.5; 12];
    stats[4] = -1.0;
    let lines = summary_lines(&stats);
    assert_eq!(
        lines[0],
        " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.500"
    );
    assert_eq!(
        lines[1],
        " Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 0.500"
    );
    assert_eq!(
        lines[4],
        " Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = -1.000"
    );
    assert_eq!(
        lines[6],
        " Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ] = 0.500"
    );
    let eval = CocoEvaluation {
        stats,
        per_class_ap: vec![Some(0.25), None],
        per_class_ap50: vec![Some(0.5), None],
        pr_curves: vec![None, None],
    };
    let text = summary_text(&eval, &["cat".to_owned()]);
    assert!(
        text.contains(" cat                    0.250    0.500"),
        "{text}"
    );
    assert!(
        text.contains(" 1                          -        -"),
        "{text}"
    );
}

#[test]
fn ground_truth_from_an_annotated_object() {
    use crate::data::boxes::{ObjectBox, PixelBox};
    let mut object = ObjectBox::new(2, PixelBox::from_xywh(10.0, 20.0, 30.0, 40.0));
    let plain = GroundTruth::from_object_box(9, &object);
    assert_eq!(plain, gt(9, 2, [10.0, 20.0, 30.0, 40.0]));
    object.crowd = true;
    object.area = Some(500.0);
    let crowd = GroundTruth::from_object_box(9, &object);
    assert!(crowd.crowd);
    assert_eq!(crowd.area, 500.0);
}

#[test]
fn pairwise_sum_is_numpys() {
    // 0.1 summed 1000 times: numpy's pairwise sum gives 100.00000000000001 (naive: 99.9999999999986).
    let values = vec![0.1; 1000];
    assert_eq!(pairwise_sum(&values), 100.00000000000001);
    assert_eq!(pairwise_sum(&[1.0, 2.0, 3.0]), 6.0);
}
