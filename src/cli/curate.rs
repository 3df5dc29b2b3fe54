//! `transfer-workbench curate`: relabel, exclude and restore images of a project, undo, and
//! list the overrides, as the window does. The image folder is never written; the next run
//! reads the data through the overrides and records them in its `config.ron`.

use std::path::{Path, PathBuf};

use crate::project::{
    CurationAction, CurationEdit, OpenProject, curate, load_project, undo_curation,
};

/// Options of `curate`.
#[derive(Debug, clap::Args)]
pub struct CurateArgs {
    /// The project folder.
    pub project: PathBuf,
    #[command(subcommand)]
    pub action: CurateAction,
}

/// What `curate` does.
#[derive(Debug, clap::Subcommand)]
pub enum CurateAction {
    /// Give images another class (classification).
    Relabel {
        /// The class they get.
        #[arg(long)]
        to: String,
        /// Images, relative to the data folder (as `inspect` lists them) or as paths.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Leave images out of training and evaluation.
    Exclude {
        /// Images, relative to the data folder or as paths.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Drop the overrides of images: their own label, included again.
    Restore {
        /// Images, relative to the data folder or as paths.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Take back the newest edit.
    Undo,
    /// Print the overrides and the edits that made them.
    List,
}

/// Runs `curate`.
pub fn run(args: CurateArgs) -> anyhow::Result<()> {
    let dir = &args.project;
    let (action, files) = match args.action {
        CurateAction::Undo => {
            let (edit, project) = undo_curation(dir)?;
            println!("undid: {}", edit.describe());
            println!("now: {}", project.dataset.curation.overrides().describe());
            return Ok(());
        }
        CurateAction::List => return list(dir),
        CurateAction::Relabel { to, files } => (CurationAction::Relabel(to), files),
        CurateAction::Exclude { files } => (CurationAction::Exclude, files),
        CurateAction::Restore { files } => (CurationAction::Restore, files),
    };
    let data_dir = OpenProject {
        dir: dir.clone(),
        project: load_project(dir)?,
    }
    .data_dir();
    let files = files.iter().map(|f| item_of(f, &data_dir)).collect();
    let edit = CurationEdit { action, files };
    let line = edit.describe();
    let done = curate(dir, edit)?;
    if done.changed {
        println!("{line}");
    } else {
        println!("nothing changed: {line} was already so");
    }
    println!(
        "now: {} (the next run uses them)",
        done.project.dataset.curation.overrides().describe()
    );
    Ok(())
}

/// Prints the overrides, then the edit log.
fn list(dir: &Path) -> anyhow::Result<()> {
    let curation = load_project(dir)?.dataset.curation;
    let overrides = curation.overrides();
    println!("{}", overrides.describe());
    for (file, class) in &overrides.relabelled {
        println!("  relabelled  {file} → {class}");
    }
    for file in &overrides.excluded {
        println!("  left out    {file}");
    }
    if !curation.edits.is_empty() {
        println!("edits, oldest first:");
        for (i, edit) in curation.edits.iter().enumerate() {
            println!("  {}. {}", i + 1, edit.describe());
        }
    }
    Ok(())
}

/// The item id of `file`: a path below the data folder is made relative to it; anything
/// else is taken as an id already.
fn item_of(file: &Path, data_dir: &Path) -> String {
    let absolute = std::path::absolute(file).ok();
    let data = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    let relative = absolute
        .and_then(|a| std::fs::canonicalize(&a).ok())
        .and_then(|a| a.strip_prefix(&data).ok().map(Path::to_owned));
    crate::data::overrides::item_id(relative.as_deref().unwrap_or(file))
}
