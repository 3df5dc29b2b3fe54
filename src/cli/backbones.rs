//! `transfer-workbench backbones`: the backbones this build knows, with their facts.

use anyhow::Context;

use crate::model::backbone::known_backbones;
use crate::model::facts::measure_facts;

/// Options of `backbones`.
#[derive(Debug, clap::Args)]
pub struct BackbonesArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Measures and prints every backbone's facts.
pub fn run(args: BackbonesArgs) -> anyhow::Result<()> {
    let facts = known_backbones()
        .iter()
        .map(measure_facts)
        .collect::<Result<Vec<_>, _>>()?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&facts).context("encoding the facts")?
        );
        return Ok(());
    }
    println!(
        "{:<20} {:<18} {:>6} {:>9} {:>7} {:>9}  pretrained",
        "name", "family", "input", "params", "GFLOPs", "embedding"
    );
    for f in &facts {
        let pretrained = f
            .info
            .pretrained
            .as_ref()
            .map(|p| format!("{} ({})", p.origin, p.licence))
            .unwrap_or_else(|| "no (random init or your own weights)".to_owned());
        println!(
            "{:<20} {:<18} {:>6} {:>8.2}M {:>7.2} {:>9}  {}",
            f.info.name,
            f.info.family,
            f.info.input_size_px,
            f.parameters as f64 / 1e6,
            f.gflops,
            f.info.embedding_dim,
            pretrained
        );
    }
    println!(
        "\nFrozen-backbone passes (linear probe) on the CPU: {}",
        crate::model::cpu_bf16::frozen_precision_reason()
    );
    Ok(())
}
