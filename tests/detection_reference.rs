//! Parity of the detector's pieces with the PyTorch reference
//! (`tests/fixtures/parity/centernet_reference.py`, run by `centernet_fixture.py`): for the
//! same random weights (MobileNetV2 + head, loaded by the app's VarStore keys) and a fixed
//! input, the head's output, the loss and its parts for fixed box targets, and the decoded
//! detections equal the reference's within 1e-4.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use common::{max_abs_diff, read_tensors, run_parity_fixture};
use tch::{Device, Kind};
use transfer_workbench::model::det_head::DetectionModel;
use transfer_workbench::model::{build_backbone, import_weights};
use transfer_workbench::train::detection::{decode, detection_loss};

const TOLERANCE: f64 = 1e-4;

#[test]
fn head_loss_and_decoding_match_the_pytorch_reference() {
    let fixture = run_parity_fixture("centernet_fixture", &[]);
    let expected = read_tensors(&fixture.path().join("expected.safetensors"));
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let backbone = build_backbone("mobilenet_v2", vs.root(), false).unwrap();
    let model = DetectionModel::new(vs.root() / "detector", backbone, 2).unwrap();
    let report = import_weights(&vs, &fixture.path().join("weights.safetensors"), true).unwrap();
    assert!(report.is_exact(), "{}", report.summary());

    // The network: eval mode (running statistics), the same output.
    let output = tch::no_grad(|| model.forward_t(&expected["input"], false)).unwrap();
    let want = &expected["output"];
    let spread = want.std(true).double_value(&[]);
    assert!(
        spread > 0.1,
        "the fixture's output hardly varies ({spread})"
    );
    let diff = max_abs_diff(&output, want);
    assert!(diff < TOLERANCE, "head output differs by {diff}");

    // The loss of the reference's output against the same targets, and of ours.
    let targets = &expected["targets"];
    let loss = detection_loss(want, targets).unwrap();
    for (name, ours) in [
        ("total", &loss.total),
        ("heatmap", &loss.heatmap),
        ("size", &loss.size),
        ("offset", &loss.offset),
    ] {
        let theirs = expected[&format!("loss_{name}")].double_value(&[0]);
        let ours = ours.double_value(&[]);
        // Relative for the large focal sum, absolute for the small parts.
        let err = (ours - theirs).abs() / theirs.abs().max(1.0);
        assert!(
            err < TOLERANCE,
            "loss {name}: ours {ours}, reference {theirs}"
        );
    }
    let ours_on_ours = detection_loss(&output, targets).unwrap().total;
    let err = (ours_on_ours.double_value(&[]) - loss.total.double_value(&[])).abs()
        / loss.total.double_value(&[]).abs().max(1.0);
    assert!(err < TOLERANCE, "loss of our own output differs by {err}");

    // Decoding the same output: the same peaks, scores, classes and boxes, in order.
    let decoded = decode(want, 100).unwrap();
    let scores = &expected["scores"];
    assert!(max_abs_diff(&decoded.scores, scores) < TOLERANCE);
    // Rows scoring 0 (no peak) are ties whose order is arbitrary: compare the peaks only.
    let peaks = scores.gt(0.0);
    let peak_count = peaks.sum(Kind::Int64).int64_value(&[]);
    assert!(peak_count > 20, "too few peaks to compare: {peak_count}");
    let classes = decoded.classes.masked_select(&peaks);
    let want_classes = expected["classes"].masked_select(&peaks);
    assert_eq!(
        classes
            .ne_tensor(&want_classes)
            .sum(Kind::Int64)
            .int64_value(&[]),
        0,
        "classes differ"
    );
    let box_peaks = peaks.unsqueeze(2).expand([-1, -1, 4], false);
    let boxes = decoded.boxes.masked_select(&box_peaks);
    let want_boxes = expected["boxes"].masked_select(&box_peaks);
    let diff = max_abs_diff(&boxes, &want_boxes);
    assert!(diff < TOLERANCE, "decoded boxes differ by {diff} px");
    // And decoding our own output gives the same boxes (the whole chain).
    let ours = decode(&output, 100).unwrap();
    let diff = max_abs_diff(&ours.boxes.masked_select(&box_peaks), &want_boxes);
    assert!(diff < 1e-3, "boxes from our output differ by {diff} px");
}
