//! The checks of an image's boxes that need the image's size, run by the scan once it has
//! decoded the image: YOLO's normalised boxes become pixels, boxes of zero or negative size
//! are dropped, boxes reaching outside the image are clipped (and dropped when nothing is
//! left), tiny boxes are reported and kept, and a size in the annotation file that differs
//! from the image's is reported. Also the split strata of detection items.

use crate::data::boxes::{ObjectBox, PixelBox};
use crate::data::report::{Issue, IssueKind, TINY_BOX_SIDE_PX};
use crate::data::scan::DatasetItem;
use crate::data::source::{BoxFrame, Candidate};

fn fmt_box(b: PixelBox) -> String {
    format!("[{:.1}, {:.1}, {:.1}, {:.1}]", b.x0, b.y0, b.x1, b.y1)
}

/// The boxes of `candidate` in pixels of its decoded image of `size_px` (width, height),
/// checked against it, and the issues found (each naming the image, the annotation file and
/// the annotation). Empty when the candidate has no boxes.
pub fn settle_boxes(candidate: &Candidate, size_px: (u32, u32)) -> (Vec<ObjectBox>, Vec<Issue>) {
    let Some(boxes) = &candidate.boxes else {
        return (Vec::new(), Vec::new());
    };
    let origin = candidate.annotation.clone().unwrap_or_default();
    let (w, h) = (size_px.0 as f32, size_px.1 as f32);
    let image = candidate.path.clone();
    let file = origin.file.display().to_string();
    let mut issues = Vec::new();
    let mut push = |kind: IssueKind, message: String| {
        issues.push(Issue::new(kind, image.clone(), message));
    };
    if let Some((dw, dh)) = origin.declared_size_px
        && (dw, dh) != size_px
    {
        let turned = if (dh, dw) == size_px {
            " (turned by a quarter: EXIF orientation?)"
        } else {
            ""
        };
        push(
            IssueKind::AnnotationSizeMismatch,
            format!(
                "{file} gives {dw}x{dh} px, the image is {}x{} px{turned}; the boxes are \
                 checked against the image",
                size_px.0, size_px.1
            ),
        );
    }
    let mut kept = Vec::with_capacity(boxes.len());
    for (i, object) in boxes.iter().enumerate() {
        let name = origin
            .refs
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("box {}", i + 1));
        let at = format!("{file}, {name}");
        let mut object = object.clone();
        if origin.frame == BoxFrame::Normalised {
            object.bbox = object.bbox.scaled(w, h);
        }
        let b = object.bbox;
        if !b.is_finite() {
            let message = format!("{at}: a coordinate is not a finite number; dropped");
            push(IssueKind::BadCoordinates, message);
            continue;
        }
        if b.width() <= 0.0 || b.height() <= 0.0 {
            let message = format!(
                "{at}: the box {} is {:.1}x{:.1} px (zero or negative size); dropped",
                fmt_box(b),
                b.width(),
                b.height()
            );
            push(IssueKind::EmptyBox, message);
            continue;
        }
        let clipped = b.clipped(w, h);
        if clipped != b {
            if clipped.width() <= 0.0 || clipped.height() <= 0.0 {
                let message = format!(
                    "{at}: the box {} lies entirely outside the {}x{} px image; dropped",
                    fmt_box(b),
                    size_px.0,
                    size_px.1
                );
                push(IssueKind::BoxOutsideImage, message);
                continue;
            }
            let beyond = [
                ("left", -b.x0),
                ("top", -b.y0),
                ("right", b.x1 - w),
                ("bottom", b.y1 - h),
            ];
            let sides: Vec<String> = beyond
                .iter()
                .filter(|(_, d)| *d > 0.0)
                .map(|(side, d)| format!("{d:.1} px {side}"))
                .collect();
            let lost = 100.0 * (1.0 - clipped.area() / b.area());
            let message = format!(
                "{at}: the box {} reaches {} beyond the {}x{} px image ({lost:.1}% of its \
                 area); clipped to {}",
                fmt_box(b),
                sides.join(", "),
                size_px.0,
                size_px.1,
                fmt_box(clipped)
            );
            push(IssueKind::BoxClipped, message);
            object.bbox = clipped;
        }
        let b = object.bbox;
        if b.width() < TINY_BOX_SIDE_PX || b.height() < TINY_BOX_SIDE_PX {
            let message = format!(
                "{at}: the box {} is {:.1}x{:.1} px, below {TINY_BOX_SIDE_PX} px on a side; kept",
                fmt_box(b),
                b.width(),
                b.height()
            );
            push(IssueKind::TinyBox, message);
        }
        kept.push(object);
    }
    if kept.is_empty() {
        let message = if !boxes.is_empty() {
            format!(
                "all {} boxes of {file} were dropped; kept as an image without objects",
                boxes.len()
            )
        } else if origin.file.as_os_str().is_empty() {
            "no annotation file names this image; kept as an image without objects".to_owned()
        } else {
            format!("{file} gives no boxes for this image; kept as an image without objects")
        };
        push(IssueKind::ImageWithoutBoxes, message);
    }
    (kept, issues)
}

/// The stratum of each item for a split stratified on the classes present in each image:
/// the rarest class present (the one in the fewest images, the lower index on a tie), and
/// `classes` (a stratum of its own) for an image without objects. Items without boxes
/// (other tasks) keep their label.
pub fn split_strata(classes: usize, items: &[DatasetItem]) -> Vec<usize> {
    let mut images_of = vec![0usize; classes];
    for item in items {
        let mut present: Vec<usize> = item
            .boxes
            .iter()
            .flatten()
            .map(|b| b.class)
            .filter(|&c| c < classes)
            .collect();
        present.sort_unstable();
        present.dedup();
        for c in present {
            images_of[c] += 1;
        }
    }
    items
        .iter()
        .map(|item| match &item.boxes {
            None => item.label.unwrap_or(0),
            Some(boxes) => boxes
                .iter()
                .map(|b| b.class)
                .filter(|&c| c < classes)
                .min_by_key(|&c| (images_of[c], c))
                .unwrap_or(classes),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::source::AnnotationOrigin;

    fn candidate(frame: BoxFrame, boxes: Vec<PixelBox>) -> Candidate {
        Candidate {
            path: "img.png".into(),
            boxes: Some(boxes.into_iter().map(|b| ObjectBox::new(0, b)).collect()),
            annotation: Some(AnnotationOrigin {
                file: "ann.json".into(),
                frame,
                declared_size_px: Some((100, 50)),
                refs: vec!["annotation 1".into(), "annotation 2".into()],
            }),
            ..Candidate::default()
        }
    }

    #[test]
    fn boxes_are_converted_clipped_dropped_and_reported() {
        let c = candidate(
            BoxFrame::Pixels,
            vec![
                PixelBox::from_xywh(-10.0, 5.0, 30.0, 10.0),
                PixelBox::from_xywh(5.0, 5.0, 0.0, 10.0),
                PixelBox::from_xywh(200.0, 5.0, 10.0, 10.0),
                PixelBox::from_xywh(5.0, 5.0, 1.0, 10.0),
            ],
        );
        let (kept, issues) = settle_boxes(&c, (100, 50));
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].bbox, PixelBox::from_xywh(0.0, 5.0, 20.0, 10.0));
        let kinds: Vec<IssueKind> = issues.iter().map(|i| i.kind).collect();
        assert_eq!(
            kinds,
            [
                IssueKind::BoxClipped,
                IssueKind::EmptyBox,
                IssueKind::BoxOutsideImage,
                IssueKind::TinyBox
            ]
        );
        assert!(issues[0].message.contains("ann.json, annotation 1"));
        assert!(
            issues[0].message.contains("10.0 px left"),
            "{}",
            issues[0].message
        );
        assert!(issues[2].message.contains("box 3"));

        let c = candidate(
            BoxFrame::Normalised,
            vec![PixelBox {
                x0: 0.25,
                y0: 0.5,
                x1: 0.75,
                y1: 1.0,
            }],
        );
        let (kept, issues) = settle_boxes(&c, (50, 100));
        assert_eq!(kept[0].bbox, PixelBox::from_xywh(12.5, 50.0, 25.0, 50.0));
        assert_eq!(issues.len(), 1);
        assert!(issues[0].message.contains("EXIF"), "{}", issues[0].message);

        let empty = candidate(BoxFrame::Pixels, vec![]);
        let (kept, issues) = settle_boxes(&empty, (100, 50));
        assert!(kept.is_empty());
        assert_eq!(issues[0].kind, IssueKind::ImageWithoutBoxes);
    }

    #[test]
    fn strata_are_the_rarest_class_present() {
        let item = |classes: &[usize]| DatasetItem {
            path: "a".into(),
            label: None,
            group: None,
            split: None,
            mask: None,
            boxes: Some(
                classes
                    .iter()
                    .map(|&c| ObjectBox::new(c, PixelBox::from_xywh(0.0, 0.0, 1.0, 1.0)))
                    .collect(),
            ),
            source_id: None,
            size_px: (1, 1),
            content_hash: String::new(),
        };
        let items = vec![item(&[0, 0, 1]), item(&[0]), item(&[]), item(&[1, 0])];
        assert_eq!(split_strata(2, &items), vec![1, 0, 2, 1]);
    }
}
