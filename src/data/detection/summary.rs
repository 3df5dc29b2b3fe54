//! The scan's detection bookkeeping: boxes' classes moved to a project's fixed class list,
//! and the report's box summary (class counts, boxes per image, what was dropped).

use crate::data::boxes::ObjectBox;
use crate::data::report::{BoxClassCount, BoxSummary, Issue, IssueKind, TINY_BOX_SIDE_PX};
use crate::data::scan::DatasetIndex;
use crate::data::source::Candidate;

use super::DetectionFormat;

/// For each of the file's classes, its index among `known` (a project's fixed classes, by
/// name); `None` when the project fixes none (indices stay).
pub fn class_remap(file: &[String], known: &Option<Vec<String>>) -> Option<Vec<Option<usize>>> {
    let known = known.as_ref()?;
    Some(
        file.iter()
            .map(|name| known.iter().position(|k| k == name))
            .collect(),
    )
}

/// `boxes` with their classes moved by `remap`; boxes of a class the project does not have
/// are dropped and reported.
pub fn remapped(
    boxes: Vec<ObjectBox>,
    remap: &Option<Vec<Option<usize>>>,
    candidate: &Candidate,
    issues: &mut Vec<Issue>,
) -> Vec<ObjectBox> {
    let Some(remap) = remap else {
        return boxes;
    };
    let file = candidate
        .annotation
        .as_ref()
        .map(|a| a.file.display().to_string())
        .unwrap_or_default();
    boxes
        .into_iter()
        .filter_map(|mut b| match remap.get(b.class).copied().flatten() {
            Some(class) => {
                b.class = class;
                Some(b)
            }
            None => {
                let message = format!(
                    "{file}: a box of class index {} is not of one of the project's classes; \
                     dropped",
                    b.class
                );
                issues.push(Issue::new(
                    IssueKind::UnknownCategory,
                    candidate.path.clone(),
                    message,
                ));
                None
            }
        })
        .collect()
}

/// The box summary of a scanned detection set; `issues` are the scan's (for the counts of
/// what was clipped, left as tiny, and dropped).
pub fn box_summary(format: DetectionFormat, index: &DatasetIndex, issues: &[Issue]) -> BoxSummary {
    let mut classes: Vec<BoxClassCount> = index
        .classes
        .iter()
        .map(|name| BoxClassCount {
            name: name.clone(),
            boxes: 0,
            images: 0,
        })
        .collect();
    let mut summary = BoxSummary {
        format: format.label().to_owned(),
        ..BoxSummary::default()
    };
    for item in &index.items {
        let boxes = item.boxes.as_deref().unwrap_or_default();
        summary.boxes += boxes.len();
        summary.max_per_image = summary.max_per_image.max(boxes.len());
        summary.crowd += boxes.iter().filter(|b| b.crowd).count();
        summary.tiny += boxes
            .iter()
            .filter(|b| b.bbox.width() < TINY_BOX_SIDE_PX || b.bbox.height() < TINY_BOX_SIDE_PX)
            .count();
        if boxes.is_empty() {
            summary.images_without_boxes += 1;
        } else {
            summary.images_with_boxes += 1;
        }
        let mut seen = vec![false; classes.len()];
        for b in boxes {
            if let Some(count) = classes.get_mut(b.class) {
                count.boxes += 1;
                if !seen[b.class] {
                    seen[b.class] = true;
                    count.images += 1;
                }
            }
        }
    }
    summary.classes = classes;
    summary.mean_per_image = summary.boxes as f64 / index.items.len().max(1) as f64;
    summary.clipped = issues
        .iter()
        .filter(|i| i.kind == IssueKind::BoxClipped)
        .count();
    for kind in IssueKind::ALL {
        let lost = |i: &&Issue| {
            i.kind == kind && (i.message.contains("dropped") || i.message.contains("left out"))
        };
        let n = issues.iter().filter(lost).count();
        let dropped_boxes = matches!(
            kind,
            IssueKind::UnknownCategory
                | IssueKind::BadCoordinates
                | IssueKind::EmptyBox
                | IssueKind::BoxOutsideImage
                | IssueKind::MalformedAnnotation
                | IssueKind::AnnotationOfMissingImage
                | IssueKind::DuplicateAnnotationId
        );
        if n > 0 && dropped_boxes {
            summary.dropped.push((kind.label().to_owned(), n));
        }
    }
    summary
}

/// The most boxes of a class over the fewest, among classes with boxes.
pub fn imbalance(summary: &BoxSummary) -> Option<f64> {
    let counts = summary.classes.iter().map(|c| c.boxes).filter(|&n| n > 0);
    let (min, max) = (counts.clone().min()?, counts.max()?);
    Some(max as f64 / min as f64)
}
