//! `transfer-workbench detect-coco`: boxes of the 80 COCO classes in image files, found by
//! the shipped YOLOv3-tiny.

use std::path::PathBuf;

use anyhow::Context;

use crate::inspect::coco_detect::{CocoDetector, DEFAULT_THRESHOLD};

/// Options of `detect-coco`.
#[derive(Debug, clap::Args)]
pub struct DetectCocoArgs {
    /// Smallest score (objectness x class probability) printed.
    #[arg(long, default_value_t = DEFAULT_THRESHOLD)]
    pub threshold: f32,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Image files.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// Runs the command; exits non-zero when any image could not be read.
pub fn run(args: DetectCocoArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.threshold) {
        anyhow::bail!(
            "--threshold must be between 0 and 1, got {}",
            args.threshold
        );
    }
    let detector = CocoDetector::load(tch::Device::cuda_if_available())?;
    let results = detector.detect(&args.images, args.threshold)?;
    if args.json {
        let text = serde_json::to_string_pretty(&results).context("encoding the results")?;
        println!("{text}");
    } else {
        for result in &results {
            println!("{}", result.path.display());
            if let Some(error) = &result.error {
                println!("  error: {error}");
            }
            for d in &result.detections {
                let [x0, y0, x1, y1] = d.bbox;
                println!(
                    "  {:>6.2}%  {:<16} {x0:.0},{y0:.0},{x1:.0},{y1:.0}",
                    d.score * 100.0,
                    d.label
                );
            }
        }
    }
    let failed = results.iter().filter(|r| r.error.is_some()).count();
    if failed > 0 {
        anyhow::bail!("{failed} of {} images could not be read", results.len());
    }
    Ok(())
}
