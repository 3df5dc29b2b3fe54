//! `predict --coco-results` through the binary on a generated COCO folder: a detection run
//! trained for one epoch writes its validation boxes in COCO's results format with the data
//! set's own ids; pycocotools (the set-up's venv) loads the file against the data set's own
//! `annotations.json` with `COCO.loadRes`, and `COCOeval` over the run's validation images
//! gives the 12 stats that `eval --json` prints, within 1e-6. Images without a COCO id are
//! refused by name.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;
#[path = "common/shapes_coco.rs"]
mod shapes_coco;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

/// The names of `eval --json`'s stats, in `COCOeval.summarize()` order.
const STATS: [&str; 12] = [
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

/// pycocotools on the data set's annotations and a results file, over the given image ids:
/// prints the 12 stats as a JSON array.
const PYCOCOTOOLS: &str = r#"
import contextlib, io, json, sys
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(sys.argv[1])
    dt = gt.loadRes(sys.argv[2])
    e = COCOeval(gt, dt, 'bbox')
    e.params.imgIds = sorted(json.loads(sys.argv[3]))
    e.evaluate()
    e.accumulate()
    e.summarize()
print(json.dumps([float(v) for v in e.stats]))
"#;

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

fn workbench(args: &[&str]) -> String {
    String::from_utf8_lossy(&common::workbench_ok(args).stdout).into_owned()
}

/// The COCO ids of the run's validation images (by file name in `annotations.json`).
fn validation_image_ids(project: &Path, data: &Path) -> Vec<u64> {
    let split: Value = serde_json::from_str(
        &std::fs::read_to_string(project.join("runs/run-001/split.json")).unwrap(),
    )
    .unwrap();
    let coco: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("annotations.json")).unwrap())
            .unwrap();
    let by_name: BTreeMap<&str, u64> = coco["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["file_name"].as_str().unwrap(), i["id"].as_u64().unwrap()))
        .collect();
    split["validation"]["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| {
            let id = id.as_str().unwrap();
            let name = id.rsplit('/').next().unwrap();
            by_name[name]
        })
        .collect()
}

#[test]
fn coco_results_give_pycocotools_the_ap_that_eval_prints() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("shapes coco");
    shapes_coco::coco_folder(&data, 50);
    let project = temp.path().join("project");
    workbench(&[
        "new",
        path_str(&project),
        "--data",
        path_str(&data),
        "--backbone",
        "mobilenet_v2",
        "--input-size",
        "64",
    ]);
    workbench(&[
        "train",
        path_str(&project),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--lr",
        "0.002",
    ]);
    let eval: Value =
        serde_json::from_str(&workbench(&["eval", path_str(&project), "--json"])).unwrap();

    let results_file = temp.path().join("results.json");
    let said = workbench(&[
        "predict",
        path_str(&project),
        "--coco-results",
        path_str(&results_file),
    ]);
    assert!(said.contains("detections"), "{said}");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(&results_file).unwrap()).unwrap();
    let results = results.as_array().unwrap();
    assert!(!results.is_empty());
    let validation = validation_image_ids(&project, &data);
    assert_eq!(eval["images"].as_u64().unwrap() as usize, validation.len());
    let allowed: BTreeSet<u64> = validation.iter().copied().collect();
    let mut per_image: BTreeMap<u64, usize> = BTreeMap::new();
    for r in results {
        let image = r["image_id"].as_u64().unwrap();
        assert!(allowed.contains(&image), "{r}");
        *per_image.entry(image).or_default() += 1;
        assert!((1..=3).contains(&r["category_id"].as_u64().unwrap()), "{r}");
        let score = r["score"].as_f64().unwrap();
        assert!((0.001..=1.0).contains(&score), "{r}");
        assert_eq!(r["bbox"].as_array().unwrap().len(), 4, "{r}");
    }
    assert!(per_image.values().all(|&n| n <= 100), "{per_image:?}");

    let output = std::process::Command::new(common::venv_python())
        .args(["-c", PYCOCOTOOLS])
        .arg(data.join("annotations.json"))
        .arg(&results_file)
        .arg(serde_json::to_string(&validation).unwrap())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "pycocotools failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs: Vec<f64> = serde_json::from_slice(&output.stdout).unwrap();
    for (name, theirs) in STATS.iter().zip(&theirs) {
        let ours = eval["stats"][name].as_f64().unwrap();
        assert!(
            (ours - theirs).abs() <= 1e-6,
            "{name}: eval prints {ours}, pycocotools gives {theirs} on the results file"
        );
    }

    // An image the annotations do not name is refused by name, and nothing is written.
    let outsider = temp.path().join("outsider.png");
    std::fs::copy(data.join("images/scene 0.png"), &outsider).unwrap();
    let refused_file = temp.path().join("refused.json");
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_transfer-workbench"))
        .args(["predict", path_str(&project), "--coco-results"])
        .arg(&refused_file)
        .arg(&outsider)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("image id") && message.contains("outsider.png"),
        "{message}"
    );
    assert!(!refused_file.exists());
}
