//! `transfer-workbench embed`: one pooled embedding row per image, written as `.npy`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::model::embed::embed_images;
use crate::model::{WeightsChoice, load_backbone};

/// Options of `embed`.
#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    /// Backbone name (see `transfer-workbench backbones`).
    #[arg(long)]
    pub backbone: String,
    /// Weights file (.safetensors or a PyTorch zip state dict); default: the shipped
    /// pretrained weights.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Output file (`.npy`, float32, one row per image); `<out>.paths.txt` lists the images.
    #[arg(long)]
    pub out: PathBuf,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Image files.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// Runs the command.
pub fn run(args: EmbedArgs) -> anyhow::Result<()> {
    let device = tch::Device::cuda_if_available();
    let weights = match &args.weights {
        Some(path) => WeightsChoice::File(path.clone()),
        None => WeightsChoice::Pretrained,
    };
    let backbone = load_backbone(&args.backbone, false, &weights, device)?;
    if let Some(report) = backbone.report.as_ref().filter(|_| args.weights.is_some()) {
        eprintln!("weights: {}: {}", report.source.display(), report.summary());
    }
    let embeddings = embed_images(&backbone, &args.images, args.batch_size, device)?;
    write_atomically(&args.out, |tmp| {
        embeddings
            .write_npy(tmp)
            .map_err(|e| anyhow::anyhow!("{e}"))
    })?;
    let paths_file = PathBuf::from(format!("{}.paths.txt", args.out.display()));
    write_atomically(&paths_file, |tmp| {
        let mut file = std::fs::File::create(tmp)?;
        for image in &args.images {
            writeln!(file, "{}", image.display())?;
        }
        Ok(file.sync_all()?)
    })?;
    let size = embeddings.size();
    println!(
        "wrote {} embeddings of width {} to {}",
        size.first().copied().unwrap_or(0),
        size.get(1).copied().unwrap_or(0),
        args.out.display()
    );
    Ok(())
}

fn write_atomically(
    path: &Path,
    write: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let tmp = PathBuf::from(format!("{}.{}.tmp", path.display(), std::process::id()));
    let result = write(&tmp).and_then(|()| Ok(std::fs::rename(&tmp, path)?));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("could not write {}", path.display()))
}
