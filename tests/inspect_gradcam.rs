//! Grad-CAM localises: a pretrained MobileNetV2 fine-tuned to tell a small red disk from a
//! small blue disk (or neither) placed at random on grey clutter puts its heatmap peak inside the
//! object's box; and the ViT heatmap has the input's size and depends on the input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};
use transfer_workbench::inspect::gradcam::{
    CamLayer, CamMethod, CamOptions, CamTarget, class_activation_maps, grad_cam,
};
use transfer_workbench::model::Normalization;
use transfer_workbench::train::events::CheckpointKind;
use transfer_workbench::train::run::RunDir;
use transfer_workbench::train::source::BatchIter;
use transfer_workbench::train::{
    Batch, BatchSource, CheckpointChoice, Control, JobSpec, Monitor, OptimizerKind, Schedule,
    Split, Strategy, TrainConfig, TrainedModel, VecSink, WeightsSpec, train,
};

const SIZE_PX: usize = 64;

/// The tests of this file train models; libtorch's random generator is process-global, so
/// they take turns to stay repeatable.
static TRAINING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TRAINING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
const OBJECT_PX: usize = 14;

/// An image (normalised CHW), its class and the object's box `[x0, y0, x1, y1)`.
struct Sample {
    chw: Vec<f32>,
    label: i64,
    bbox: [usize; 4],
}

/// Red disks (class 0), blue disks (class 1) and, with three classes, clutter alone
/// (class 2), generated in memory.
struct Shapes {
    train: Vec<Sample>,
    validation: Vec<Sample>,
    classes: usize,
}

impl Shapes {
    fn new(train: usize, validation: usize, seed: u64, classes: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut make = |n: usize| {
            (0..n)
                .map(|i| sample(&mut rng, (i % classes) as i64))
                .collect()
        };
        Self {
            train: make(train),
            validation: make(validation),
            classes,
        }
    }

    fn samples(&self, split: Split) -> &[Sample] {
        match split {
            Split::Train => &self.train,
            Split::Validation => &self.validation,
        }
    }
}

fn sample(rng: &mut ChaCha8Rng, label: i64) -> Sample {
    let n = SIZE_PX;
    let mut rgb = vec![[0f32; 3]; n * n];
    for p in rgb.iter_mut() {
        let base = rng.gen_range(0.1f32..0.35);
        *p = [0, 1, 2].map(|_| base + rng.gen_range(-0.05f32..0.05));
    }
    // Clutter: grey lines and blobs (no colour, so they never decide the class).
    let grey = |rng: &mut ChaCha8Rng| [rng.gen_range(0.15f32..0.85); 3];
    for _ in 0..5 {
        let colour = grey(rng);
        let (x0, y0) = (rng.gen_range(0.0..n as f32), rng.gen_range(0.0..n as f32));
        let (x1, y1) = (rng.gen_range(0.0..n as f32), rng.gen_range(0.0..n as f32));
        for t in 0..=(2 * n) {
            let t = t as f32 / (2 * n) as f32;
            let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            rgb[(y as usize).min(n - 1) * n + (x as usize).min(n - 1)] = colour;
        }
    }
    for _ in 0..3 {
        let colour = grey(rng);
        let (cx, cy, r) = (
            rng.gen_range(0.0..n as f32),
            rng.gen_range(0.0..n as f32),
            rng.gen_range(2.0f32..5.0),
        );
        paint(&mut rgb, colour, |x, y| (x - cx).hypot(y - cy) <= r);
    }
    // The object: a red (class 0) or blue (class 1) disk in an OBJECT_PX box; class 2 has
    // none.
    let x0 = rng.gen_range(0..=n - OBJECT_PX);
    let y0 = rng.gen_range(0..=n - OBJECT_PX);
    let half = OBJECT_PX as f32 / 2.0;
    let (cx, cy) = (x0 as f32 + half, y0 as f32 + half);
    let colour = if label == 0 {
        [0.85, 0.15, 0.1]
    } else {
        [0.1, 0.25, 0.85]
    };
    if label < 2 {
        paint(&mut rgb, colour, |x, y| (x - cx).hypot(y - cy) < half);
    }
    let norm = Normalization::IMAGENET;
    let mut chw = vec![0f32; 3 * n * n];
    for (i, p) in rgb.iter().enumerate() {
        for c in 0..3 {
            chw[c * n * n + i] = (p[c] - norm.mean[c]) / norm.std[c];
        }
    }
    Sample {
        chw,
        label,
        bbox: [x0, y0, x0 + OBJECT_PX, y0 + OBJECT_PX],
    }
}

/// Sets the pixels whose centre satisfies `inside` to `colour`.
fn paint(rgb: &mut [[f32; 3]], colour: [f32; 3], inside: impl Fn(f32, f32) -> bool) {
    for y in 0..SIZE_PX {
        for x in 0..SIZE_PX {
            if inside(x as f32 + 0.5, y as f32 + 0.5) {
                rgb[y * SIZE_PX + x] = colour;
            }
        }
    }
}

fn images(samples: &[Sample]) -> Tensor {
    let data: Vec<f32> = samples.iter().flat_map(|s| s.chw.iter().copied()).collect();
    let s = SIZE_PX as i64;
    Tensor::from_slice(&data).view([samples.len() as i64, 3, s, s])
}

impl BatchSource for Shapes {
    fn labels(&self, split: Split) -> Vec<i64> {
        self.samples(split).iter().map(|s| s.label).collect()
    }

    fn num_classes(&self) -> usize {
        self.classes
    }

    fn fingerprint(&self, split: Split) -> String {
        format!("shapes:{}:{}", split.name(), self.samples(split).len())
    }

    fn batches(&mut self, split: Split, plan: Vec<Vec<usize>>, _: bool, _: u64) -> BatchIter<'_> {
        let samples = self.samples(split);
        Box::new(plan.into_iter().map(move |indices| {
            let chosen: Vec<&Sample> = indices.iter().map(|&i| &samples[i]).collect();
            let data: Vec<f32> = chosen.iter().flat_map(|s| s.chw.iter().copied()).collect();
            let labels: Vec<i64> = chosen.iter().map(|s| s.label).collect();
            let s = SIZE_PX as i64;
            Ok(Batch {
                images: Tensor::from_slice(&data).view([chosen.len() as i64, 3, s, s]),
                targets: Tensor::from_slice(&labels).to_kind(Kind::Int64),
                skipped: Vec::new(),
            })
        }))
    }
}

fn config(backbone: &str, weights: WeightsSpec, size_px: u32, epochs: usize) -> TrainConfig {
    TrainConfig {
        backbone: backbone.into(),
        weights,
        input_size_px: size_px,
        strategy: Strategy::FineTune,
        optimizer: OptimizerKind::AdamW { weight_decay: 1e-4 },
        schedule: Schedule::CosineWarmup {
            warmup_fraction: 0.05,
        },
        monitor: Monitor::default(),
        lr: 1e-3,
        epochs,
        batch_size: 32,
        seed: 5,
        threads: Some(1),
        ..TrainConfig::default()
    }
}

fn train_run(project: &std::path::Path, config: TrainConfig, source: &mut Shapes) -> String {
    let spec = JobSpec {
        device: Device::Cpu,
        ..JobSpec::new(project, config)
    };
    let mut sink = VecSink::new();
    let summary = train(&spec, source, &mut sink, &mut Control::detached()).unwrap();
    println!(
        "last validation: {:?}",
        summary.last_validation.map(|m| m.accuracy)
    );
    summary.run_id
}

#[test]
// With two classes the model can learn one class as the absence of the other's object (a
// white cross told from a white ring: "cross" was "no ring", its peaks went to the border,
// Grad-CAM 58/96). A third class, clutter alone, makes each object class a presence to detect.
// The images are scored where there is an object (64 of 96).
fn grad_cam_peak_falls_inside_the_object_box() {
    let _turn = turn();
    let started = Instant::now();
    let project = tempfile::tempdir().unwrap();
    let mut source = Shapes::new(384, 96, 21, 3);
    // MobileNetV2's coarsest map at 64 px is 2x2, too coarse for a 14 px object: explain the
    // stride-8 stage (8x8) instead (measured: stride 16 and 32 localise worse).
    // What varies between CPUs is the training trajectory. With 4 epochs at lr 1e-3 the
    // peaks hit 62/64 on an AVX-512 Xeon but 49/64 with AVX2 kernels, and 47 to 62 over
    // training seeds 5-7 on either; 6 epochs at 3e-3 hit 62 to 64 of 64 for seeds 5-8 on
    // both kernel sets and 61 for seed 9 with AVX2 (the floor is 58).
    let run_id = train_run(
        project.path(),
        TrainConfig {
            lr: 3e-3,
            ..config("mobilenet_v2", WeightsSpec::Pretrained, SIZE_PX as u32, 6)
        },
        &mut source,
    );
    let trained_secs = started.elapsed().as_secs_f64();
    let mut model = TrainedModel::load(
        project.path(),
        &run_id,
        CheckpointChoice::BestOrLast,
        Device::Cpu,
    )
    .unwrap();
    // Only images with an object have a box to hit.
    let objects: Vec<&Sample> = source.validation.iter().filter(|s| s.label < 2).collect();
    let data: Vec<f32> = objects.iter().flat_map(|s| s.chw.iter().copied()).collect();
    let s = SIZE_PX as i64;
    let batch = Tensor::from_slice(&data).view([objects.len() as i64, 3, s, s]);
    let n = objects.len();
    // HiResCAM (element-wise gradient x activation) on the stride-8 map: measured 59/64 here
    // against 29/64 for Grad-CAM's channel-mean weights on the same map (and 0/64 on the
    // 2x2 coarsest map at 64 px).
    let options = CamOptions {
        target: CamTarget::Predicted,
        layer: CamLayer::Index(2),
        method: CamMethod::HiResCam,
    };
    let heatmaps = class_activation_maps(&mut model, &batch, options).unwrap();
    assert_eq!(heatmaps.len(), n);
    let (mut inside, mut correct, mut heat_ratio) = (0, 0, 0.0);
    let mut hits_per_class = [0usize; 2];
    for (heatmap, sample) in heatmaps.iter().zip(&objects) {
        assert_eq!((heatmap.width_px, heatmap.height_px), (64, 64));
        let (x, y) = heatmap.peak();
        let [x0, y0, x1, y1] = sample.bbox;
        let hit = (x0..x1).contains(&(x as usize)) && (y0..y1).contains(&(y as usize));
        let hit = hit && heatmap.get(x, y) > 0.0;
        inside += usize::from(hit);
        hits_per_class[sample.label as usize] += usize::from(hit);
        correct += usize::from(heatmap.class as i64 == sample.label);
        // How much hotter the box is than the image on average (diagnostic).
        let in_box: f32 = (y0..y1)
            .flat_map(|yy| (x0..x1).map(move |xx| (xx, yy)))
            .map(|(xx, yy)| heatmap.get(xx as u32, yy as u32))
            .sum();
        let mean_all = heatmap.values.iter().sum::<f32>() / (SIZE_PX * SIZE_PX) as f32;
        heat_ratio += in_box / (OBJECT_PX * OBJECT_PX) as f32 / mean_all.max(1e-6);
    }
    println!(
        "hits per class (red, blue): {hits_per_class:?} of {}",
        n / 2
    );
    let fraction = inside as f64 / n as f64;
    println!(
        "peaks inside the box: {inside}/{n}; accuracy {correct}/{n}; in-box/mean heat {:.2}; training {trained_secs:.1} s, total {:.1} s",
        heat_ratio / n as f32,
        started.elapsed().as_secs_f64()
    );
    assert!(
        fraction >= 0.9,
        "only {fraction} of the peaks inside the box"
    );
}

#[test]
fn maps_match_torchvision_with_hooks() {
    let _turn = turn();
    // A briefly fine-tuned MobileNetV2 explained by the textbook computation: hooks on
    // torchvision's `features[6]` (our map 2, stride 8), in float32 and, to tell a difference
    // of method from rounding, in float64 on both sides.
    let project = tempfile::tempdir().unwrap();
    let mut source = Shapes::new(32, 8, 4, 2);
    let run_id = train_run(
        project.path(),
        config("mobilenet_v2", WeightsSpec::Pretrained, SIZE_PX as u32, 1),
        &mut source,
    );
    let (run, frozen) = RunDir::open(project.path(), &run_id).unwrap();
    let batch = images(&source.validation);
    let images_npy = project.path().join("images.npy");
    batch.write_npy(&images_npy).unwrap();
    let reference = common::run_parity_fixture(
        "gradcam_reference",
        &[
            run.checkpoint_path(CheckpointKind::Best).to_str().unwrap(),
            images_npy.to_str().unwrap(),
            "6",
            // The app's layout on the CPU, so that both sides run the same kernels.
            if frozen.use_channels_last(true) {
                "channels_last"
            } else {
                "contiguous"
            },
        ],
    );
    let mut model = TrainedModel::load(
        project.path(),
        &run_id,
        CheckpointChoice::BestOrLast,
        Device::Cpu,
    )
    .unwrap();
    let predicted = Tensor::read_npy(reference.path().join("predicted.npy")).unwrap();
    let mut exact_model = TrainedModel::load(
        project.path(),
        &run_id,
        CheckpointChoice::BestOrLast,
        Device::Cpu,
    )
    .unwrap();
    exact_model.to_double();
    let read = |name: String| {
        let maps = Tensor::read_npy(reference.path().join(name)).unwrap();
        (0..maps.size()[0])
            .map(|i| {
                Vec::<f64>::try_from(maps.get(i).flatten(0, -1).to_kind(Kind::Double)).unwrap()
            })
            .collect::<Vec<_>>()
    };
    for method in [
        CamMethod::GradCam,
        CamMethod::HiResCam,
        CamMethod::GradCamPlusPlus,
    ] {
        let options = CamOptions {
            layer: CamLayer::Index(2),
            method,
            ..CamOptions::default()
        };
        let ours = class_activation_maps(&mut model, &batch, options).unwrap();
        let ours_exact = class_activation_maps(&mut exact_model, &batch, options).unwrap();
        let theirs = read(format!("{method:?}.npy"));
        let exact = read(format!("{method:?}_f64.npy"));
        let diff = |a: &[f32], b: &[f64]| {
            a.iter()
                .zip(b)
                .map(|(&a, &b)| (f64::from(a) - b).abs())
                .fold(0f64, f64::max)
        };
        let (mut ours_vs_theirs, mut ours_error, mut their_error, mut method_gap) =
            (0f64, 0f64, 0f64, 0f64);
        let mut non_zero = 0;
        for (i, h) in ours.iter().enumerate() {
            assert_eq!(h.class as i64, predicted.int64_value(&[i as i64]));
            assert_eq!(ours_exact[i].class, h.class);
            let theirs32: Vec<f32> = theirs[i].iter().map(|&v| v as f32).collect();
            // A map can be all zero after the ReLU; most must not be, or nothing is compared.
            non_zero += usize::from(exact[i].iter().any(|&v| v > 0.5));
            ours_vs_theirs = ours_vs_theirs.max(diff(&h.values, &theirs[i]));
            ours_error = ours_error.max(diff(&h.values, &exact[i]));
            their_error = their_error.max(diff(&theirs32, &exact[i]));
            method_gap = method_gap.max(diff(&ours_exact[i].values, &exact[i]));
        }
        println!(
            "{method:?}: max |ours - torchvision| = {ours_vs_theirs:.2e} in float32; against float64: ours {ours_error:.2e}, torchvision {their_error:.2e}; both in float64 {method_gap:.2e}; {non_zero} maps not 0"
        );
        assert!(
            2 * non_zero > ours.len(),
            "{method:?}: {non_zero} maps not 0"
        );
        // The method: in float64 both sides compute the same maps, up to the float32 storage
        // of ours (measured 3.0e-8; a wrong layer, gradient or formula differs by 0.1 or more).
        assert!(
            method_gap < 1e-6,
            "{method:?}: float64 maps differ by {method_gap}"
        );
        // The rounding: the reference runs in the app's layout, so both sides run the same
        // libtorch kernels and agree bit for bit (measured 0 on an AMX Xeon with AVX-512 and
        // with AVX2 kernels). Across layouts they cannot agree tightly: these maps are not
        // smooth in the rounding (ReLU gates of the backward pass, sums that cancel, Grad-CAM++'s
        // small denominators). With the training seed 4 instead of 5, even the float64 maps of
        // the channels-last and the contiguous layout differed by 7.6e-3 (Grad-CAM), 2.7e-3
        // (HiResCAM) and 0.96 (Grad-CAM++). Ours (channels-last) against a contiguous
        // reference measured 4e-7 here on an AMX Xeon and 1.3e-2 on an AMD EPYC: that failed.
        assert!(
            ours_vs_theirs < 1e-3,
            "{method:?}: float32 maps differ by {ours_vs_theirs} (against float64: ours {ours_error}, torchvision {their_error})"
        );
    }
}

#[test]
fn vit_heatmap_has_the_input_size_and_depends_on_the_input() {
    let _turn = turn();
    let project = tempfile::tempdir().unwrap();
    let mut source = Shapes::new(8, 4, 3, 2);
    let run_id = train_run(
        project.path(),
        config("vit_tiny_16", WeightsSpec::Random, SIZE_PX as u32, 1),
        &mut source,
    );
    let mut model = TrainedModel::load(
        project.path(),
        &run_id,
        CheckpointChoice::BestOrLast,
        Device::Cpu,
    )
    .unwrap();
    let batch = images(&source.validation);
    // A random ViT's map can be all zero after the ReLU for one class: use a class whose
    // map is not.
    let mut found = None;
    for class in 0..2 {
        let heatmaps = grad_cam(
            &mut model,
            &batch,
            CamTarget::Class(class),
            CamLayer::Coarsest,
        )
        .unwrap();
        assert_eq!(heatmaps.len(), 4);
        for h in &heatmaps {
            assert_eq!((h.width_px, h.height_px, h.class), (64, 64, class));
            assert!(h.values.iter().all(|v| (0.0..=1.0).contains(v)));
            assert!((0.0..=1.0).contains(&h.score));
        }
        if heatmaps.iter().all(|h| h.values.iter().any(|&v| v > 0.0)) {
            found = Some((class, heatmaps));
        }
    }
    let (class, heatmaps) = found.expect("no class has non-zero maps for all images");
    // Different images give different maps; the same image the same map.
    assert!(
        heatmaps[0].values != heatmaps[1].values,
        "two images gave the same map"
    );
    let again = grad_cam(
        &mut model,
        &batch.narrow(0, 0, 1),
        CamTarget::Class(class),
        CamLayer::Coarsest,
    )
    .unwrap();
    let diff: f32 = again[0]
        .values
        .iter()
        .zip(&heatmaps[0].values)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(diff < 1e-4, "{diff}");
    // Out-of-range choices are refused.
    assert!(grad_cam(&mut model, &batch, CamTarget::Class(2), CamLayer::Coarsest).is_err());
    assert!(grad_cam(&mut model, &batch, CamTarget::Predicted, CamLayer::Index(1)).is_err());
}
