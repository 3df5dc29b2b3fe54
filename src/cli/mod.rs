//! The command line: `transfer-workbench [gui]` opens the workbench; the other subcommands
//! run the headless core.

mod backbones;
mod classify;
mod curate;
mod data;
mod detect_coco;
mod embed;
mod eval_boxes;
mod export;
mod gradcam;
mod gui;
mod inspect;
mod new;
mod predict;
mod predict_boxes;
mod predict_coco;
mod project;
mod study;
mod study_runs;
mod train;
mod weights;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Transfer learning on your own images: pick a pretrained backbone, fine-tune, inspect, export.
#[derive(Debug, Parser)]
#[command(name = "transfer-workbench", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the workbench window (the default).
    Gui(GuiArgs),
    /// Classify images into the 1000 ImageNet classes with a pretrained backbone's own head.
    ImagenetClassify(classify::ClassifyArgs),
    /// Find objects of the 80 COCO classes in images with the shipped YOLOv3-tiny.
    DetectCoco(detect_coco::DetectCocoArgs),
    /// List the backbones with their facts (parameters, GFLOPs, input size, weights).
    Backbones(backbones::BackbonesArgs),
    /// Write one pooled embedding per image to a .npy file (for image search).
    Embed(embed::EmbedArgs),
    /// Create a project from a labelled image folder.
    New(new::NewArgs),
    /// Train on the project's data (a new run, or `--resume RUN_ID`).
    Train(train::TrainArgs),
    /// Evaluate a run's best checkpoint on the validation split.
    Eval(train::EvalArgs),
    /// Predict image files with a trained run (one entry per image).
    Predict(predict::PredictArgs),
    /// Export a run to TorchScript with a metadata JSON, verified against the app.
    Export(export::ExportArgs),
    /// What a run gets wrong: top losses, confusion matrix, ROC-AUC, nearest neighbours.
    Inspect(inspect::InspectArgs),
    /// Work with data sets: `data check DIR_OR_MANIFEST` prints the validation report.
    Data(data::DataArgs),
    /// Edit a project: `project rename DIR NAME`, `project settings DIR --epochs N ...`.
    Project(project::ProjectArgs),
    /// Fix the data without touching its files: `curate DIR relabel --to CLASS FILE...`,
    /// `exclude FILE...`, `restore FILE...`, `undo`, `list`.
    Curate(curate::CurateArgs),
    /// Catalogue weights on demand: `weights get NAME`, `weights import FILE`.
    Weights(weights::WeightsArgs),
    /// Which backbone for the project's images: `study PROJECT --backbones a,b` trains each
    /// on the same split and prints a leaderboard with bootstrap intervals; `--scores-only`
    /// ranks them before training (LogME, k-NN, k-fold probe, data mismatch) with their cost.
    Study(study::StudyArgs),
}

/// Options of the `gui` subcommand.
#[derive(Debug, Default, clap::Args)]
pub struct GuiArgs {
    /// Folder of project folders to list (default: $TRANSFER_WORKBENCH_PROJECTS, else
    /// ./projects when present, else the user data folder).
    #[arg(long)]
    pub projects: Option<PathBuf>,
    /// Save a PNG screenshot of the window once it has loaded, then close (for docs).
    #[arg(long, value_name = "FILE.png")]
    pub screenshot: Option<PathBuf>,
    /// Open this tab of the selected project (for screenshots).
    #[arg(long, value_enum, hide = true)]
    pub view: Option<GuiView>,
    /// Select the project with this name (or folder name) at start.
    #[arg(long, value_name = "NAME", hide = true)]
    pub project: Option<String>,
    /// Images (or folders) the Try-it tab predicts at start (for screenshots).
    #[arg(long = "try", value_name = "IMAGE", hide = true)]
    pub try_images: Vec<PathBuf>,
    /// The window's inner size at start, WIDTHxHEIGHT in points (for screenshots).
    #[arg(long, value_name = "WxH", hide = true, value_parser = parse_window_size)]
    pub window_size: Option<[f32; 2]>,
}

/// `1024x700` → `[1024.0, 700.0]`.
fn parse_window_size(text: &str) -> Result<[f32; 2], String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected WIDTHxHEIGHT, got {text}"))?;
    let side = |s: &str| {
        s.trim()
            .parse::<f32>()
            .ok()
            .filter(|v| *v >= 200.0 && v.is_finite())
            .ok_or_else(|| format!("not a window side of at least 200 points: {s}"))
    };
    Ok([side(w)?, side(h)?])
}

/// The tab `gui --view` opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GuiView {
    /// The project's summary.
    Overview,
    /// The project's images and validation report.
    Dataset,
    /// Model settings, training charts and the project's runs.
    Training,
    /// A run's validation images one by one.
    Inspector,
    /// The Inspector's thumbnail grid of a run's validation images.
    Gallery,
    /// A 2-D map of a run's validation embeddings.
    Embeddings,
    /// Runs side by side.
    Compare,
    /// Backbone studies and their leaderboards.
    Study,
    /// A run's predictions for images from anywhere.
    Try,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => gui::run(GuiArgs::default()),
        Some(Command::Gui(args)) => gui::run(args),
        Some(Command::ImagenetClassify(args)) => classify::run(args),
        Some(Command::DetectCoco(args)) => detect_coco::run(args),
        Some(Command::Backbones(args)) => backbones::run(args),
        Some(Command::Embed(args)) => embed::run(args),
        Some(Command::New(args)) => new::run(args),
        Some(Command::Predict(args)) => predict::run(args),
        Some(Command::Inspect(args)) => inspect::run(args),
        Some(Command::Train(args)) => train::run_train(args),
        Some(Command::Eval(args)) => train::run_eval(args),
        Some(Command::Export(args)) => export::run(args),
        Some(Command::Data(args)) => data::run(args),
        Some(Command::Project(args)) => project::run(args),
        Some(Command::Curate(args)) => curate::run(args),
        Some(Command::Weights(args)) => weights::run(args),
        Some(Command::Study(args)) => study::run(args),
    }
}

#[cfg(test)]
mod window_size_tests {
    use super::parse_window_size;

    #[test]
    fn window_sizes_read_as_width_by_height() {
        assert_eq!(parse_window_size("1024x700"), Ok([1024.0, 700.0]));
        assert!(parse_window_size("1024").is_err());
        assert!(parse_window_size("10x700").is_err());
    }
}
