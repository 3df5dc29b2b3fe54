//! `transfer-workbench project`: the project edits of the window from the command line
//! (rename, save the next run's training settings, each a locked read-modify-write of
//! `project.ron` like the window's; delete a run to the project's trash).

use std::path::PathBuf;

use anyhow::Context;

use crate::project::{TrainingSettings, rename_project, update_project};

/// Options of `project`.
#[derive(Debug, clap::Args)]
pub struct ProjectArgs {
    #[command(subcommand)]
    pub action: ProjectAction,
}

/// What `project` does.
#[derive(Debug, clap::Subcommand)]
pub enum ProjectAction {
    /// Give the project a new display name (its folder keeps its name).
    Rename {
        /// The project folder.
        project: PathBuf,
        /// The new name.
        name: String,
    },
    /// Move a run to the project's trash (`.trash/runs/`), as the Training tab's Delete does;
    /// refused while the run trains.
    DeleteRun {
        /// The project folder.
        project: PathBuf,
        /// The run id (`run-003`).
        run: String,
    },
    /// Save settings of the next run, as the Training tab does (`train` uses them for the
    /// options left off its command line).
    Settings {
        /// The project folder.
        project: PathBuf,
        /// Number of epochs.
        #[arg(long)]
        epochs: Option<usize>,
        /// Peak learning rate.
        #[arg(long)]
        lr: Option<f64>,
        /// Images per step.
        #[arg(long)]
        batch_size: Option<usize>,
        /// Seed of initialisation, shuffling and augmentation.
        #[arg(long)]
        seed: Option<u64>,
    },
}

/// Runs `project`.
pub fn run(args: ProjectArgs) -> anyhow::Result<()> {
    match args.action {
        ProjectAction::DeleteRun { project, run } => {
            let moved = crate::train::run_trash::trash_run(&project, &run)?;
            println!("moved {run} to {}", moved.display());
        }
        ProjectAction::Rename { project, name } => {
            let saved = rename_project(&project, &name)?;
            println!("renamed to {}: {}", saved.name, project.display());
        }
        ProjectAction::Settings {
            project,
            epochs,
            lr,
            batch_size,
            seed,
        } => {
            let saved = update_project(&project, |p| {
                let mut settings = p.training.clone().unwrap_or_else(|| {
                    let mut settings = TrainingSettings::default();
                    settings.config.backbone.clone_from(&p.backbone);
                    settings.config.input_size_px = p.input_size_px;
                    settings
                });
                let config = &mut settings.config;
                config.epochs = epochs.unwrap_or(config.epochs);
                config.lr = lr.unwrap_or(config.lr);
                config.batch_size = batch_size.unwrap_or(config.batch_size);
                config.seed = seed.unwrap_or(config.seed);
                p.set_training(settings);
            })?;
            let config = saved
                .training
                .map(|t| t.config)
                .context("the settings were not kept")?;
            println!(
                "saved: {} epochs, lr {}, batch size {}, seed {}: {}",
                config.epochs,
                config.lr,
                config.batch_size,
                config.seed,
                project.display()
            );
        }
    }
    Ok(())
}
