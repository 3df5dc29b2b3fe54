//! The exported TorchScript file of a detection run, loaded by Python's `torch.jit.load`,
//! gives the app's decoded boxes on the app's own inputs (shared by the detection tests).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

use std::path::{Path, PathBuf};

use crate::common;

/// The exported file in Python gives the app's decoded boxes on the app's own inputs.
pub fn python_reload_matches_the_app(project: &Path, run: &str, paths: &[PathBuf]) {
    use transfer_workbench::train::{CheckpointChoice, TrainedModel, load_eval_images};
    let mut model =
        TrainedModel::load(project, run, CheckpointChoice::BestOrLast, tch::Device::Cpu).unwrap();
    let loaded = load_eval_images(paths, project, &model.config).unwrap();
    let app = transfer_workbench::export::trace::packed_detections(
        &model.logits(&loaded.images).unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("inputs.safetensors");
    tch::Tensor::write_safetensors(&[("images", &loaded.images)], &inputs).unwrap();
    let out = dir.path().join("outputs.safetensors");
    let script = "import sys, torch\n\
                  from safetensors.torch import load_file, save_file\n\
                  m = torch.jit.load(sys.argv[1])\n\
                  x = load_file(sys.argv[2])['images']\n\
                  with torch.no_grad():\n    y = m(x)\n\
                  save_file({'detections': y.contiguous()}, sys.argv[3])\n";
    let status = std::process::Command::new(common::venv_python())
        .args(["-c", script])
        .arg(project.join("runs").join(run).join("export/model.pt"))
        .arg(&inputs)
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let python = common::read_tensors(&out).remove("detections").unwrap();
    assert_eq!(python.size(), app.size());
    let rows = |t: &tch::Tensor| Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
    let (ours, theirs) = (rows(&app), rows(&python));
    let k = app.size()[1] as usize;
    let pixel_box = |r: &[f32]| transfer_workbench::data::boxes::PixelBox {
        x0: r[0],
        y0: r[1],
        x1: r[2],
        y1: r[3],
    };
    let mut compared = 0;
    // Per image, as sets: rows of equal score may come in either order (top-k ties).
    for (mine, python_rows) in ours.chunks(6 * k).zip(theirs.chunks(6 * k)) {
        for a in mine.chunks(6).filter(|a| a[4] >= 0.05) {
            let best = python_rows
                .chunks(6)
                .filter(|b| (a[4] - b[4]).abs() <= 1e-4 && a[5] == b[5])
                .map(|b| pixel_box(a).iou(pixel_box(b)))
                .fold(0.0f32, f32::max);
            assert!(
                best >= 0.99,
                "no Python box matches {a:?} (best IoU {best})"
            );
            compared += 1;
        }
    }
    assert!(compared > 0, "no box scored 0.05 or more");
}
