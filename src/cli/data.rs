//! `transfer-workbench data check`: scan a data set and print its validation report with
//! the class and split summary. Issues are the output, not a failure: the exit code is
//! non-zero only when the source itself cannot be read.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use crate::data::mask::MaskEncoding;
use crate::data::scan::{DEFAULT_MIN_SIDE_PX, ScanOptions, scan};
use crate::data::source::DatasetSource;

/// Options of `data`.
#[derive(Debug, clap::Args)]
pub struct DataArgs {
    #[command(subcommand)]
    pub command: DataCommand,
}

/// The `data` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DataCommand {
    /// Check every image of a data set and print the validation report.
    Check(CheckArgs),
}

/// Options of `data check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// A folder (one subfolder per class; images/ + masks/; holding manifest.csv; or a
    /// detection layout: COCO JSON, YOLO txt with data.yaml/classes.txt, Pascal VOC
    /// Annotations/ + JPEGImages/) or a CSV/TSV manifest with columns
    /// path,label[,group][,split].
    #[arg(value_name = "DIR_OR_MANIFEST")]
    pub source: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Report images with a shorter side than this as tiny.
    #[arg(long, value_name = "PX", default_value_t = DEFAULT_MIN_SIDE_PX)]
    pub min_side: u32,
    /// Check masks against this encoding instead of the detected one: binary01,
    /// binary0255 or classes:N.
    #[arg(long, value_name = "ENCODING", value_parser = parse_mask_encoding)]
    pub mask_encoding: Option<MaskEncoding>,
    /// How many issues of each kind the text report lists.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub show: usize,
}

fn parse_mask_encoding(text: &str) -> Result<MaskEncoding, String> {
    match text.to_ascii_lowercase().as_str() {
        "binary01" => Ok(MaskEncoding::Binary01),
        "binary0255" => Ok(MaskEncoding::Binary0255),
        other => other
            .strip_prefix("classes:")
            .and_then(|n| n.parse::<u16>().ok())
            .filter(|&n| n >= 2)
            .map(|classes| MaskEncoding::ClassIndex { classes })
            .ok_or_else(|| "use binary01, binary0255 or classes:N (N >= 2)".to_owned()),
    }
}

/// Runs `data`.
pub fn run(args: DataArgs) -> anyhow::Result<()> {
    match args.command {
        DataCommand::Check(args) => check(args),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<()> {
    let source = DatasetSource::detect(&args.source)?;
    let options = ScanOptions {
        min_side_px: args.min_side,
        mask_encoding: args.mask_encoding,
        known_classes: None,
    };
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files {per_sec} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let (index, report) = scan(&source, &options, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "scanned {} files in {secs:.2} s ({:.0} files/s); {} usable",
        report.files_checked,
        report.files_checked as f64 / secs.max(1e-9),
        index.items.len()
    );
    if args.json {
        let text = serde_json::to_string_pretty(&report).context("encoding the report")?;
        println!("{text}");
    } else {
        print!("{}", report.to_text(args.show));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_encodings_parse() {
        assert_eq!(
            parse_mask_encoding("Binary0255"),
            Ok(MaskEncoding::Binary0255)
        );
        assert_eq!(
            parse_mask_encoding("classes:4"),
            Ok(MaskEncoding::ClassIndex { classes: 4 })
        );
        assert!(parse_mask_encoding("classes:1").is_err());
    }
}
