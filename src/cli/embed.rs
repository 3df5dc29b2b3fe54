//! `transfer-workbench embed`: one pooled embedding row per image, written as `.npy`.

use std::path::PathBuf;

use anyhow::Context;

use crate::model::embed::embed_images;
use crate::model::torchscript::{EmbeddingOutput, TorchScriptBackbone};
use crate::model::{LoadedBackbone, Normalization, WeightsChoice, load_backbone};

/// Options of `embed`.
#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    /// Backbone name (see `transfer-workbench backbones`).
    #[arg(
        long,
        required_unless_present = "torchscript",
        conflicts_with = "torchscript"
    )]
    pub backbone: Option<String>,
    /// Use your own TorchScript module as the backbone instead of a named one.
    #[arg(long, value_name = "FILE.pt")]
    pub torchscript: Option<PathBuf>,
    /// Which output of the TorchScript module is the embedding: tensor, tuple:N or dict:KEY.
    #[arg(long, default_value = "tensor", requires = "torchscript")]
    pub ts_output: EmbeddingOutput,
    /// Square input size of the TorchScript module (named backbones use their own).
    #[arg(long, default_value_t = 224, requires = "torchscript")]
    pub input_size: u32,
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
    let backbone = match (&args.torchscript, &args.backbone) {
        (Some(path), _) => {
            let vs = tch::nn::VarStore::new(device);
            let model = TorchScriptBackbone::load(
                path,
                vs.root(),
                args.ts_output.clone(),
                args.input_size,
                Normalization::IMAGENET,
            )?;
            LoadedBackbone {
                vs,
                model: Box::new(model),
                report: None,
            }
        }
        (None, Some(name)) => load_backbone(name, false, &weights, device)?,
        (None, None) => anyhow::bail!("name a --backbone or a --torchscript file"),
    };
    if let Some(report) = backbone.report.as_ref().filter(|_| args.weights.is_some()) {
        eprintln!("weights: {}: {}", report.source.display(), report.summary());
    }
    let embeddings = embed_images(&backbone, &args.images, args.batch_size, device)?;
    crate::atomic_file::write_with(&args.out, |tmp| {
        embeddings.write_npy(tmp).map_err(std::io::Error::other)
    })
    .with_context(|| format!("could not write {}", args.out.display()))?;
    let paths_file = PathBuf::from(format!("{}.paths.txt", args.out.display()));
    let mut listing = String::new();
    for image in &args.images {
        listing.push_str(&format!("{}\n", image.display()));
    }
    crate::atomic_file::write(&paths_file, listing.as_bytes())
        .with_context(|| format!("could not write {}", paths_file.display()))?;
    let size = embeddings.size();
    println!(
        "wrote {} embeddings of width {} to {}",
        size.first().copied().unwrap_or(0),
        size.get(1).copied().unwrap_or(0),
        args.out.display()
    );
    Ok(())
}
