//! `transfer-workbench backbones`: the backbones this build knows, with their facts.

use anyhow::Context;

use crate::model::backbone::known_backbones;
use crate::model::catalogue::{WeightStatus, weight_options};
use crate::model::facts::{BackboneFacts, backbone_facts};

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
        .map(backbone_facts)
        .collect::<Result<Vec<_>, _>>()?;
    if args.json {
        let listed: Vec<Listed> = facts
            .iter()
            .map(|f| Listed {
                weights: weight_options(&f.info),
                facts: f,
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&listed).context("encoding the facts")?
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
            .unwrap_or_else(|| catalogue_summary(&f.info));
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

/// A backbone's facts with the weights it can take (`backbones --json`).
#[derive(serde::Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    facts: &'a BackboneFacts,
    weights: Vec<crate::model::catalogue::WeightOption>,
}

/// "present: ..., downloadable: ..." for a backbone without shipped weights.
fn catalogue_summary(info: &crate::model::BackboneInfo) -> String {
    let options = weight_options(info);
    let present: Vec<&str> = options
        .iter()
        .filter(|o| matches!(o.status, WeightStatus::Present { .. }))
        .map(|o| o.name.as_str())
        .collect();
    let downloadable: Vec<String> = options
        .iter()
        .filter_map(|o| match o.status {
            WeightStatus::Downloadable { size_mb } => {
                Some(format!("{} ({:.0} MB)", o.name, size_mb.unwrap_or(0.0)))
            }
            _ => None,
        })
        .collect();
    let mut parts = Vec::new();
    if !present.is_empty() {
        parts.push(format!("present: {}", present.join(", ")));
    }
    if !downloadable.is_empty() {
        parts.push(format!(
            "downloadable with `weights get NAME`: {}",
            downloadable.join(", ")
        ));
    }
    if parts.is_empty() {
        "no (random init or your own weights)".to_owned()
    } else {
        parts.join("; ")
    }
}
