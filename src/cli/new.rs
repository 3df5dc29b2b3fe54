//! `transfer-workbench new`: creates a project folder without the GUI.

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::data::preview::FolderPreview;
use crate::model::backbone::known_backbones;
use crate::project::{
    DataLocation, DatasetConfig, PROJECT_FILE, Project, TaskKind, detect_task, load_project,
    save_project,
};

/// Options of `new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The project folder to create (it may exist, but must not hold a project yet).
    pub project: PathBuf,
    /// The labelled image folder: class subfolders, a manifest.csv, or images/ + masks/.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// classification, segmentation or detection (default: detected from the folder's layout).
    #[arg(long)]
    pub task: Option<String>,
    /// The backbone (see `transfer-workbench backbones`).
    #[arg(long, default_value = "mobilenet_v2")]
    pub backbone: String,
    /// Display name (default: the folder's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Square input size in pixels (default: proposed from the images' size, at most the
    /// backbone's native size).
    #[arg(long, value_name = "PX")]
    pub input_size: Option<u32>,
    /// A mirrored image keeps its label: training may flip images (off: no flips, right
    /// for X-rays, text and digits).
    #[arg(long)]
    pub mirror_ok: bool,
}

/// Runs `new`.
pub fn run(args: NewArgs) -> anyhow::Result<()> {
    if args.project.join(PROJECT_FILE).exists() {
        bail!(
            "a project already exists there: {}",
            args.project.join(PROJECT_FILE).display()
        );
    }
    if !args.data.is_dir() && !args.data.is_file() {
        bail!("the data folder does not exist: {}", args.data.display());
    }
    let info = known_backbones()
        .into_iter()
        .find(|info| info.name == args.backbone)
        .with_context(|| {
            format!(
                "unknown backbone '{}' (see `transfer-workbench backbones`)",
                args.backbone
            )
        })?;
    let task = match args.task.as_deref() {
        None => detect_task(&args.data),
        Some(name) => match TaskKind::from_name(name) {
            Some(task) => task,
            None => bail!("unknown task '{name}' ({})", TaskKind::names()),
        },
    };
    // The images' size and colour, for the input size and the training defaults.
    let preview = match crate::data::preview::preview_folder(&args.data) {
        Ok(preview) => Some(preview),
        Err(e) => {
            eprintln!("could not look at the images ({e}); ImageNet's defaults apply");
            None
        }
    };
    let input_size_px = args.input_size.unwrap_or_else(|| {
        preview.as_ref().map_or(info.input_size_px, |p| {
            p.proposed_input_px.min(info.input_size_px)
        })
    });
    std::fs::create_dir_all(&args.project)
        .with_context(|| format!("could not create {}", args.project.display()))?;
    let project_dir = args.project.canonicalize()?;
    let data_dir = args
        .data
        .canonicalize()
        .with_context(|| format!("could not resolve {}", args.data.display()))?;
    // Inside the project folder the path is stored relative, so the folder can move.
    let data = match data_dir.strip_prefix(&project_dir) {
        Ok(relative) => DataLocation::Path(relative.to_owned()),
        Err(_) => DataLocation::Path(data_dir.clone()),
    };
    let name = args.name.clone().unwrap_or_else(|| {
        project_dir
            .file_name()
            .map_or("project".into(), |n| n.to_string_lossy().into_owned())
    });
    let project = Project {
        name,
        task,
        data,
        backbone: info.name.to_owned(),
        input_size_px,
        dataset: DatasetConfig {
            mirror_ok: args.mirror_ok,
            profile: preview.as_ref().map(FolderPreview::profile),
            ..DatasetConfig::default()
        },
        ..Project::default()
    };
    save_project(&args.project, &project)?;
    // Read back, so what was written is what the other commands will see.
    let saved = load_project(&args.project)?;
    for reason in crate::train::data_defaults::data_defaults(&saved.dataset, saved.task).reasons {
        eprintln!("default: {reason}");
    }
    println!(
        "created {} ({}, {}, {} px, data {}): {}",
        saved.name,
        saved.task.label(),
        saved.backbone,
        saved.input_size_px,
        data_dir.display(),
        args.project.join(PROJECT_FILE).display()
    );
    Ok(())
}
