//! `transfer-workbench export`: a run's checkpoint as a verified TorchScript file with its
//! metadata JSON (the same code as the GUI's export dialog, `crate::export`).

use std::path::PathBuf;

use anyhow::Context;

use crate::export::{ExportOptions, InputFormat, OutputKind, export_run};
use crate::train::CheckpointChoice;
use crate::train::events::CheckpointKind;

/// Options of `export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The project folder.
    pub project: PathBuf,
    /// The run to export (default: the newest).
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// Output folder (default: PROJECT/runs/ID/export).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Bake the preprocessing into the model: it then takes uint8 RGB pixels [N, H, W, 3]
    /// (`uint8`, the default) or float RGB in [0, 1] [N, 3, H, W] (`float`).
    #[arg(long, value_name = "INPUT", num_args = 0..=1, default_missing_value = "uint8")]
    pub with_preprocessing: Option<String>,
    /// Export the pooled embedding instead of the logits (classification runs).
    #[arg(long)]
    pub embedding: bool,
    /// Which checkpoint: best (default: the best, else the last) or last.
    #[arg(long, value_name = "KIND")]
    pub checkpoint: Option<String>,
}

/// Runs `export`.
pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let input = match args.with_preprocessing.as_deref() {
        None => InputFormat::Normalized,
        Some("uint8") => InputFormat::Uint8Nhwc,
        Some("float") => InputFormat::Float01Nchw,
        Some(other) => anyhow::bail!("unknown preprocessing input '{other}' (uint8 or float)"),
    };
    let checkpoint = match args.checkpoint.as_deref() {
        None => CheckpointChoice::BestOrLast,
        Some("best") => CheckpointChoice::Exactly(CheckpointKind::Best),
        Some("last") => CheckpointChoice::Exactly(CheckpointKind::Last),
        Some(other) => anyhow::bail!("unknown checkpoint '{other}' (best or last)"),
    };
    let options = ExportOptions {
        checkpoint,
        out_dir: args.out,
        input,
        output: if args.embedding {
            OutputKind::Embedding
        } else {
            OutputKind::Logits
        },
    };
    let run = crate::train::run::RunDir::resolve_id(&args.project, args.run.as_deref())?;
    let report = export_run(&args.project, &run, &options, None)
        .with_context(|| format!("exporting run {run}"))?;
    let verification = &report.metadata.verification;
    println!("{}", report.model_path.display());
    println!("{}", report.metadata_path.display());
    println!(
        "verified on {}: {}",
        verification.inputs, verification.message
    );
    Ok(())
}
