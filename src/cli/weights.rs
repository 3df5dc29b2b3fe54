//! `transfer-workbench weights get NAME` / `weights import FILE`: catalogue weights on
//! demand (see [`crate::model::zoo`]). Nothing is fetched unless asked for.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::Context;

use crate::model::download::Timeouts;
use crate::model::zoo;

/// Options of `weights`.
#[derive(Debug, clap::Args)]
pub struct WeightsArgs {
    #[command(subcommand)]
    pub command: WeightsCommand,
}

/// The `weights` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum WeightsCommand {
    /// Download catalogue weights (HTTPS, resumable, hash-checked), convert and install them:
    /// NAME is a backbone (its default variant) or backbone.VARIANT, e.g. resnet50.IMAGENET1K_V1.
    Get {
        /// The catalogue name.
        name: String,
    },
    /// Install weights fetched elsewhere: the file's sha256 must match its catalogue entry.
    Import {
        /// The downloaded checkpoint (.pth, .pt or .safetensors).
        file: PathBuf,
        /// The catalogue name (default: the entry whose hash the file matches).
        #[arg(long)]
        name: Option<String>,
    },
}

/// Runs a `weights` subcommand.
pub fn run(args: WeightsArgs) -> anyhow::Result<()> {
    let installed = match args.command {
        WeightsCommand::Get { name } => get(&name)?,
        WeightsCommand::Import { file, name } => zoo::import(&file, name.as_deref())
            .with_context(|| format!("importing {}", file.display()))?,
    };
    println!("installed: {}", installed.display());
    println!(
        "`--weights pretrained` now uses it where the backbone ships no weights (its \
         default variant first), as \"pretrained\" does in the window; or name it: \
         `--weights {}`",
        installed.display()
    );
    Ok(())
}

fn get(name: &str) -> anyhow::Result<PathBuf> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(name.to_owned());
    let cancel = AtomicBool::new(false);
    let mut progress = |done: u64, total: Option<u64>| {
        if let Some(total) = total {
            bar.set_length(total);
        }
        bar.set_position(done);
    };
    let result = zoo::get(name, Timeouts::default(), &cancel, &mut progress);
    bar.finish_and_clear();
    Ok(result?)
}
