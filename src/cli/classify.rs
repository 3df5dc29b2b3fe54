//! `transfer-workbench imagenet-classify`: top-k ImageNet classes for image files.

use std::path::PathBuf;

use anyhow::Context;

use crate::model::imagenet::classify_images;

/// Options of `imagenet-classify`.
#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// A backbone with shipped pretrained ImageNet weights.
    #[arg(long, default_value = "mobilenet_v2")]
    pub backbone: String,
    /// How many classes to print per image.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Image files.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// Runs the command; exits non-zero when any image could not be classified.
pub fn run(args: ClassifyArgs) -> anyhow::Result<()> {
    let device = tch::Device::cuda_if_available();
    let results = classify_images(&args.backbone, &args.images, args.top, device)?;
    if args.json {
        let text = serde_json::to_string_pretty(&results).context("encoding the results")?;
        println!("{text}");
    } else {
        for result in &results {
            println!("{}", result.path.display());
            if let Some(error) = &result.error {
                println!("  error: {error}");
            }
            for score in &result.top {
                println!(
                    "  {:>6.2}%  {:>4}  {}",
                    score.probability * 100.0,
                    score.index,
                    score.name
                );
            }
        }
    }
    let failed = results.iter().filter(|r| r.error.is_some()).count();
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} images could not be classified",
            results.len()
        );
    }
    Ok(())
}
