//! `inspect` through the binary on a generated class folder: `new` → `train` (one epoch) →
//! `inspect --top-losses --json`, then `--neighbours` by sample id and by an image file
//! from outside the data set.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on failure.

mod common;

use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use common::workbench_ok as workbench;

fn noisy(rng: &mut ChaCha8Rng, level: f32) -> RgbImage {
    RgbImage::from_fn(40, 40, |_, _| {
        let v = (level + rng.gen_range(-40.0f32..40.0)).clamp(0.0, 255.0) as u8;
        Rgb([v, v, v])
    })
}

#[test]
fn inspect_prints_top_losses_confusion_and_neighbours() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for (class, level) in [("dark", 60.0f32), ("light", 190.0)] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        for i in 0..16 {
            noisy(&mut rng, level)
                .save(data.join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let outside = temp.path().join("query.png");
    noisy(&mut rng, 190.0).save(&outside).unwrap();
    let project = temp.path().join("project");
    let p = project.to_str().unwrap();
    workbench(&[
        "new",
        p,
        "--data",
        data.to_str().unwrap(),
        "--backbone",
        "resnet18",
        "--input-size",
        "32",
    ]);
    workbench(&[
        "train",
        p,
        "--epochs",
        "1",
        "--weights",
        "random",
        "--threads",
        "1",
        "--batch-size",
        "8",
        "--json",
    ]);

    let out = workbench(&[
        "inspect",
        p,
        "--run",
        "run-001",
        "--top-losses",
        "3",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let samples = report["samples"].as_u64().unwrap();
    assert!(samples > 0);
    let confusion: Vec<Vec<u64>> = serde_json::from_value(report["confusion"].clone()).unwrap();
    assert_eq!(confusion.iter().flatten().sum::<u64>(), samples);
    let top = report["top_losses"].as_array().unwrap();
    assert_eq!(top.len(), 3.min(samples as usize));
    let losses: Vec<f64> = top.iter().map(|e| e["loss"].as_f64().unwrap()).collect();
    assert!(losses.windows(2).all(|w| w[0] >= w[1]), "{losses:?}");
    assert!(
        std::fs::read_dir(project.join("runs/run-001/inspect"))
            .unwrap()
            .count()
            == 1,
        "the embeddings are cached in the run"
    );

    // Neighbours of a sample id: the sample itself comes first.
    let id = top[0]["id"].as_str().unwrap().to_owned();
    let out = workbench(&["inspect", p, "--neighbours", &id, "--k", "3", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let neighbours = report["neighbours"].as_array().unwrap();
    assert_eq!(neighbours.len(), 3);
    assert_eq!(neighbours[0]["id"].as_str(), Some(id.as_str()));

    // An image from outside the data set: a light image, so a light sample is nearest.
    let out = workbench(&[
        "inspect",
        p,
        "--neighbours",
        outside.to_str().unwrap(),
        "--k",
        "1",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("nearest neighbours of"), "{text}");
    assert!(text.contains("(light)"), "{text}");
}
