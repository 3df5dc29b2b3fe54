//! `predict --coco-results FILE`: a detection run's boxes written in COCO's results format
//! (a JSON array of `{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`), in the
//! data set's own ids, so that pycocotools' `COCO.loadRes` and `COCOeval` (or a leaderboard)
//! read the file against the data set's annotation file as it is.
//!
//! Image ids come from the scanned index (`DatasetItem::source_id`, matched by path), category
//! ids from `DatasetIndex::category_ids` (else class index + 1, YOLO's and VOC's classes in
//! order). Every box scored at least [`KEEP_SCORE`] is kept, at most [`TOP_K`] per image (the
//! detections `eval` scores). Without image arguments, the run's validation split is
//! predicted: the file then gives `COCOeval` exactly the AP that `eval` prints.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;
use tch::Device;

use super::predict::PredictArgs;
use crate::data::scan::DatasetIndex;
use crate::inspect::detection::{KEEP_SCORE, predict_boxes};
use crate::project::load_project;
use crate::train::detection::TOP_K;
use crate::train::project_source::EvalTransform;
use crate::train::run::RunDir;
use crate::train::{BatchSource, CheckpointChoice, ProjectSource, Split, TrainedModel};

/// Images predicted per forward pass.
const BATCH: usize = 16;

/// Image ids listed when some images have none.
const NAMED_AT_MOST: usize = 5;

/// One detection of a COCO results file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CocoResult {
    /// The image's id in the data set's annotation file.
    pub image_id: u64,
    /// The class's id in the data set's annotation file.
    pub category_id: u64,
    /// `[x, y, width, height]` in the image's own pixels (the values the app scores, as
    /// doubles, so a reader sees exactly the app's boxes).
    pub bbox: [f64; 4],
    /// The detector's confidence in [0, 1].
    pub score: f64,
}

/// Runs `predict --coco-results FILE`.
pub fn run(args: &PredictArgs, out: &Path) -> anyhow::Result<()> {
    let id = RunDir::resolve_id(&args.project, args.run.as_deref())?;
    let mut model = TrainedModel::load(
        &args.project,
        &id,
        CheckpointChoice::BestOrLast,
        Device::cuda_if_available(),
    )?;
    if !crate::inspect::task::offers(model.config.task).boxes {
        bail!(
            "--coco-results needs a detection run; {id} is a {} run",
            model.config.task.label()
        );
    }
    let source = ProjectSource::open_run(&args.project, &model.run, &model.config, None)?;
    let images = if args.images.is_empty() {
        (0..source.sample_ids(Split::Validation).len())
            .filter_map(|i| source.sample_path(Split::Validation, i))
            .collect()
    } else {
        args.images.clone()
    };
    if images.is_empty() {
        bail!("{id} has no validation images to predict");
    }
    let image_ids = coco_image_ids(source.index(), &images)?;
    let category_ids = coco_category_ids(source.index(), &model.classes);
    let window = load_project(&args.project)?.dataset.window;
    let transform = EvalTransform::of(&model.config, window);
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for (chunk_no, paths) in images.chunks(BATCH).enumerate() {
        let start = chunk_no * BATCH;
        let predicted = predict_boxes(&mut model, paths, &transform, KEEP_SCORE)?;
        failed.extend(predicted.failed.into_iter().map(|(_, reason)| reason));
        for (offset, _, found) in predicted.found {
            let image_id = image_ids[start + offset];
            results.extend(found.iter().take(TOP_K as usize).map(|f| {
                CocoResult {
                    image_id,
                    category_id: category_ids
                        .get(f.class)
                        .copied()
                        .unwrap_or(f.class as u64 + 1),
                    bbox: f.bbox.to_xywh().map(f64::from),
                    score: f64::from(f.score),
                }
            }));
        }
    }
    for reason in &failed {
        eprintln!("left out: {reason}");
    }
    if failed.len() == images.len() {
        bail!("no image could be predicted");
    }
    let bytes = serde_json::to_vec(&results)?;
    crate::atomic_file::write(out, &bytes)
        .with_context(|| format!("writing the COCO results {}", out.display()))?;
    println!(
        "{id}: {} detections (score ≥ {KEEP_SCORE}, at most {TOP_K} per image) for {} images \
         written to {}",
        results.len(),
        images.len() - failed.len(),
        out.display()
    );
    Ok(())
}

/// The data set's COCO image id of each of `images` (matched by path against the scanned
/// index); fails naming the images that have none.
pub fn coco_image_ids(index: &DatasetIndex, images: &[PathBuf]) -> anyhow::Result<Vec<u64>> {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    let mut by_path: HashMap<PathBuf, Option<u64>> = HashMap::new();
    for item in &index.items {
        let path = index.image_path(item);
        by_path.insert(canonical(&path), item.source_id);
        by_path.insert(path, item.source_id);
    }
    let mut ids = Vec::with_capacity(images.len());
    let mut missing = Vec::new();
    for image in images {
        let found = by_path
            .get(image)
            .or_else(|| by_path.get(&canonical(image)))
            .copied()
            .flatten();
        match found {
            Some(id) => ids.push(id),
            None => missing.push(image.display().to_string()),
        }
    }
    if !missing.is_empty() {
        let shown: Vec<&str> = missing
            .iter()
            .take(NAMED_AT_MOST)
            .map(String::as_str)
            .collect();
        let more = missing.len().saturating_sub(NAMED_AT_MOST);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        bail!(
            "--coco-results writes the data set's own image ids, and {} image(s) have none \
             (not images of the project's COCO annotations, or left out by its scan): {}{more}",
            missing.len(),
            shown.join(", ")
        );
    }
    Ok(ids)
}

/// The data set's category id of each of the run's classes (by name in the scanned index):
/// the COCO file's ids, else class index + 1.
pub fn coco_category_ids(index: &DatasetIndex, classes: &[String]) -> Vec<u64> {
    classes
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let at = index.classes.iter().position(|n| n == name).unwrap_or(c);
            index
                .category_ids
                .as_ref()
                .and_then(|ids| ids.get(at).copied())
                .unwrap_or(at as u64 + 1)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::scan::DatasetItem;

    fn item(path: &str, source_id: Option<u64>) -> DatasetItem {
        DatasetItem {
            path: path.into(),
            label: None,
            group: None,
            split: None,
            mask: None,
            boxes: Some(Vec::new()),
            source_id,
            size_px: (10, 10),
            content_hash: path.to_owned(),
        }
    }

    fn index(category_ids: Option<Vec<u64>>) -> DatasetIndex {
        DatasetIndex {
            root: "/nonexistent-data".into(),
            classes: vec!["cat".into(), "dog".into()],
            items: vec![item("a.png", Some(7)), item("b.png", None)],
            mask_encoding: None,
            category_ids,
        }
    }

    #[test]
    fn image_ids_come_from_the_index_by_path() {
        let index = index(None);
        let ids = coco_image_ids(&index, &["/nonexistent-data/a.png".into()]).unwrap();
        assert_eq!(ids, vec![7]);
        let refused = coco_image_ids(
            &index,
            &["/nonexistent-data/b.png".into(), "/elsewhere/c.png".into()],
        )
        .unwrap_err()
        .to_string();
        assert!(refused.contains("2 image(s) have none"), "{refused}");
        assert!(refused.contains("/elsewhere/c.png"), "{refused}");
    }

    #[test]
    fn category_ids_are_the_files_else_index_plus_one() {
        let classes = vec!["dog".to_owned(), "cat".to_owned()];
        assert_eq!(
            coco_category_ids(&index(Some(vec![17, 18])), &classes),
            vec![18, 17]
        );
        assert_eq!(coco_category_ids(&index(None), &classes), vec![2, 1]);
    }
}
