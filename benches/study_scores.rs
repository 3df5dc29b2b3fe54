//! Before-training scores benchmark (not a timed test): `study --scores-only` on the
//! Fashion-MNIST demo project (2,000 training images at 64 px) for four backbones, first
//! with the embeddings computed, then read back from the embedding cache. Prints each
//! backbone's LogME, k-NN and probe accuracy with the seconds of its embeddings and of its
//! scores, and the total against the bound of 60 s for four backbones.
//!
//! Run: `cargo bench --bench study_scores` (after `./workbench.sh setup`).

use std::time::Instant;

use anyhow::{Context, Result};
use transfer_workbench::project::load_project;
use transfer_workbench::study::scores::score_backbone;
use transfer_workbench::train::TrainConfig;

const BACKBONES: [&str; 4] = [
    "mobilenet_v2",
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
];

/// The bound the scores of four backbones should stay under on a 2-core machine.
const BOUND_SECS: f64 = 60.0;

fn main() -> Result<()> {
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("projects/fashion-mnist");
    let scratch = tempfile::tempdir()?;
    let project = scratch.path().join("fashion-mnist");
    std::fs::create_dir_all(&project)?;
    std::fs::copy(demo.join("project.ron"), project.join("project.ron"))
        .context("copying the demo project")?;
    let base = TrainConfig::for_project(&load_project(&project)?);
    for pass in ["computed", "from the cache"] {
        let started = Instant::now();
        println!("embeddings {pass}:");
        for name in BACKBONES {
            let scores = score_backbone(&project, &base, name, tch::Device::Cpu)?;
            println!(
                "  {name:<20} {} images  LogME {:.3}  k-NN {:.3}  probe {:.3}  embeddings \
                 {:.1} s ({})  scores {:.1} s",
                scores.images,
                scores.logme,
                scores.knn_accuracy,
                scores.probe_accuracy,
                scores.embedding_secs,
                scores.precision,
                scores.scoring_secs
            );
        }
        let total = started.elapsed().as_secs_f64();
        println!(
            "  {} backbones in {total:.1} s ({:.2} of the {BOUND_SECS:.0} s bound)",
            BACKBONES.len(),
            total / BOUND_SECS
        );
    }
    Ok(())
}
