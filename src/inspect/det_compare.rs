//! Where detection runs disagree: each validation image of a first run that another run has
//! too, matched under both at one IoU and score threshold, ranked by how far apart the two
//! runs' F1 on it are. Pure and cheap enough to redo when the threshold moves.

use std::collections::HashMap;

use super::detection::DetImage;

/// How one run fares on one image at an IoU and score threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageScore {
    /// F1 of the image; 1 when it has neither an object nor a detection.
    pub f1: f64,
    /// Detections that matched an object.
    pub true_positives: usize,
    /// Detections that matched nothing.
    pub false_positives: usize,
    /// Objects no detection matched.
    pub missed: usize,
}

impl ImageScore {
    /// `image` matched at `iou` with its detections scored `threshold` or more.
    pub fn of(image: &DetImage, iou: f32, threshold: f32) -> Self {
        let matched = image.matched(iou, threshold);
        Self {
            f1: matched.f1.unwrap_or(1.0),
            true_positives: matched.true_positives,
            false_positives: matched.false_positives,
            missed: matched.missed.len(),
        }
    }

    /// How many detections and misses differ from `other`'s.
    fn count_gap(&self, other: &Self) -> usize {
        self.true_positives.abs_diff(other.true_positives)
            + self.false_positives.abs_diff(other.false_positives)
            + self.missed.abs_diff(other.missed)
    }
}

/// An image that the first run and another run score differently.
#[derive(Clone, Debug, PartialEq)]
pub struct Disagreement {
    /// The image's position in the first run's images.
    pub first: usize,
    /// The other run's position in the runs compared (1 or more).
    pub run: usize,
    /// The image's position in the other run's images.
    pub other: usize,
    /// The first run's score and the other run's.
    pub scores: (ImageScore, ImageScore),
    /// The absolute difference of their F1.
    pub gap: f64,
}

/// The images of `runs[0]` that another run of `runs` has too (by id), scored at `iou` with
/// detections of `threshold` or more, where the two runs' F1 or counts differ: largest F1
/// difference first, then the largest difference in counts, then the first run's order and
/// the runs' order.
pub fn rank_disagreements(runs: &[&[DetImage]], iou: f32, threshold: f32) -> Vec<Disagreement> {
    let Some((first, others)) = runs.split_first() else {
        return Vec::new();
    };
    let first_scores: Vec<ImageScore> = first
        .iter()
        .map(|image| ImageScore::of(image, iou, threshold))
        .collect();
    let mut found = Vec::new();
    for (n, other) in others.iter().enumerate() {
        let position: HashMap<&str, usize> = other
            .iter()
            .enumerate()
            .map(|(i, image)| (image.id.as_str(), i))
            .collect();
        for (i, image) in first.iter().enumerate() {
            let Some(&j) = position.get(image.id.as_str()) else {
                continue;
            };
            let (a, b) = (first_scores[i], ImageScore::of(&other[j], iou, threshold));
            let gap = (a.f1 - b.f1).abs();
            if gap > 0.0 || a.count_gap(&b) > 0 {
                found.push(Disagreement {
                    first: i,
                    run: n + 1,
                    other: j,
                    scores: (a, b),
                    gap,
                });
            }
        }
    }
    found.sort_by(|x, y| {
        y.gap
            .total_cmp(&x.gap)
            .then_with(|| {
                y.scores
                    .0
                    .count_gap(&y.scores.1)
                    .cmp(&x.scores.0.count_gap(&x.scores.1))
            })
            .then_with(|| (x.first, x.run).cmp(&(y.first, y.run)))
    });
    found
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::data::boxes::{ObjectBox, PixelBox};
    use crate::inspect::detection::FoundBox;

    fn square(x: f32) -> PixelBox {
        PixelBox::from_xywh(x, 10.0, 20.0, 20.0)
    }

    /// An image with objects at `truth` (x of a 20 px square) and detections at `found`
    /// (x, score).
    fn image(id: &str, truth: &[f32], found: &[(f32, f32)]) -> DetImage {
        DetImage {
            id: id.to_owned(),
            path: PathBuf::from(id),
            size_px: (200, 50),
            truth: truth
                .iter()
                .map(|&x| ObjectBox::new(0, square(x)))
                .collect(),
            found: found
                .iter()
                .map(|&(x, score)| FoundBox {
                    class: 0,
                    score,
                    bbox: square(x),
                })
                .collect(),
        }
    }

    #[test]
    fn ranks_the_largest_f1_difference_first_and_leaves_out_agreement() {
        let good = vec![
            image("same", &[0.0], &[(0.0, 0.9)]),
            image("half", &[0.0, 50.0], &[(0.0, 0.9), (50.0, 0.8)]),
            image("flip", &[0.0], &[(0.0, 0.9)]),
            image("only-first", &[0.0], &[]),
        ];
        let poor = vec![
            // Listed in another order: images pair by id.
            image("flip", &[0.0], &[(100.0, 0.9)]),
            image("half", &[0.0, 50.0], &[(0.0, 0.9)]),
            image("same", &[0.0], &[(0.0, 0.9)]),
        ];
        let ranked = rank_disagreements(&[&good, &poor], 0.5, 0.3);
        let ids: Vec<&str> = ranked.iter().map(|d| good[d.first].id.as_str()).collect();
        assert_eq!(ids, ["flip", "half"]);
        let flip = &ranked[0];
        assert_eq!((flip.run, flip.other), (1, 0));
        assert_eq!(flip.gap, 1.0);
        assert_eq!((flip.scores.0.true_positives, flip.scores.0.missed), (1, 0));
        let (b, half) = (flip.scores.1, &ranked[1]);
        assert_eq!((b.true_positives, b.false_positives, b.missed), (0, 1, 1));
        // 1 against 2/3: one of two objects missed.
        assert!((half.gap - 1.0 / 3.0).abs() < 1e-9, "{}", half.gap);
        assert_eq!(half.scores.1.missed, 1);
    }

    #[test]
    fn the_threshold_decides_which_detections_count() {
        let a = vec![image("x", &[0.0], &[(0.0, 0.9)])];
        let b = vec![image("x", &[0.0], &[(0.0, 0.4)])];
        assert_eq!(rank_disagreements(&[&a, &b], 0.5, 0.3), Vec::new());
        let ranked = rank_disagreements(&[&a, &b], 0.5, 0.5);
        assert_eq!(ranked.len(), 1);
        assert_eq!(ranked[0].scores.1.missed, 1);
        // The same F1 from different counts still differs: 2/3 from one hit and one miss,
        // 2/3 from two hits and two false positives.
        let one = vec![image("y", &[0.0, 50.0], &[(0.0, 0.9)])];
        let two = vec![image(
            "y",
            &[0.0, 50.0],
            &[(0.0, 0.9), (50.0, 0.9), (100.0, 0.9), (150.0, 0.9)],
        )];
        let ranked = rank_disagreements(&[&one, &two], 0.5, 0.3);
        assert_eq!(ranked.len(), 1);
        assert_eq!(ranked[0].gap, 0.0);
        // An image without objects: no detection is F1 1, a false positive F1 0.
        let empty = vec![image("e", &[], &[])];
        let noisy = vec![image("e", &[], &[(0.0, 0.9)])];
        assert_eq!(rank_disagreements(&[&empty, &empty], 0.5, 0.3), Vec::new());
        assert_eq!(rank_disagreements(&[&empty, &noisy], 0.5, 0.3)[0].gap, 1.0);
    }

    #[test]
    fn several_runs_are_each_compared_with_the_first() {
        let a = vec![image("x", &[0.0], &[(0.0, 0.9)])];
        let b = vec![image("x", &[0.0], &[])];
        let c = vec![image("x", &[0.0], &[(0.0, 0.9), (100.0, 0.9)])];
        let ranked = rank_disagreements(&[&a, &b, &c], 0.5, 0.3);
        let runs: Vec<usize> = ranked.iter().map(|d| d.run).collect();
        // F1 1 against 0 (run 1), then 1 against 2/3 (run 2).
        assert_eq!(runs, [1, 2]);
        assert!(rank_disagreements(&[&a], 0.5, 0.3).is_empty());
        assert!(rank_disagreements(&[], 0.5, 0.3).is_empty());
    }
}
