//! `transfer-workbench gui`: opens the workbench window.

use std::path::PathBuf;

use super::{GuiArgs, GuiView};
use crate::app::{CentralTab, UiPrefs, WorkbenchApp};
use crate::screenshot::{ScreenshotOutcome, ScreenshotPlan};

/// Environment variable naming the folder of project folders.
pub const PROJECTS_ENV: &str = "TRANSFER_WORKBENCH_PROJECTS";

/// The window icon (`assets/icon.png`, embedded in the binary).
pub fn window_icon() -> egui::IconData {
    const ICON_PNG: &[u8] = include_bytes!("../../assets/icon.png");
    match image::load_from_memory_with_format(ICON_PNG, image::ImageFormat::Png) {
        Ok(icon) => {
            let rgba = icon.into_rgba8();
            egui::IconData {
                width: rgba.width(),
                height: rgba.height(),
                rgba: rgba.into_raw(),
            }
        }
        // The embedded file is checked by a test; a window without an icon still works.
        Err(_) => egui::IconData::default(),
    }
}

/// Launches the GUI, or explains why it cannot start.
pub fn run(args: GuiArgs) -> anyhow::Result<()> {
    if !has_display() {
        anyhow::bail!(
            "no display to open the workbench window on (neither DISPLAY nor WAYLAND_DISPLAY is set). \
             Run it in a desktop session, under `xvfb-run`, or use the headless commands (see --help)"
        );
    }
    let projects_dir = args.projects.unwrap_or_else(default_projects_dir);
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("transfer-workbench")
            .with_inner_size(args.window_size.unwrap_or([1280.0, 800.0]))
            .with_min_inner_size([640.0, 400.0])
            .with_icon(window_icon()),
        // A size asked for on the command line wins over the one the last session left.
        persist_window: args.window_size.is_none(),
        ..Default::default()
    };
    let outcome = ScreenshotOutcome::default();
    let tab = args.view.map(|view| match view {
        GuiView::Overview => CentralTab::Overview,
        GuiView::Dataset => CentralTab::Dataset,
        GuiView::Training => CentralTab::Training,
        GuiView::Inspector | GuiView::Gallery => CentralTab::Inspector,
        GuiView::Embeddings => CentralTab::Embeddings,
        GuiView::Compare => CentralTab::Compare,
        GuiView::Study => CentralTab::Study,
        GuiView::Try => CentralTab::TryIt,
    });
    let gallery = args.view == Some(GuiView::Gallery);
    let try_images = args.try_images;
    let start_project = args.project;
    let window_size = args.window_size;
    let plan = args
        .screenshot
        .map(|path| ScreenshotPlan::new(path, outcome.clone()));
    eframe::run_native(
        "transfer-workbench",
        options,
        Box::new(move |cc| {
            // eframe restores the last session's window size over the builder's; a size
            // asked for on the command line is applied once the window is up.
            if let Some([width, height]) = window_size {
                let size = egui::vec2(width, height);
                cc.egui_ctx
                    .send_viewport_cmd(egui::ViewportCommand::InnerSize(size));
            }
            let prefs = cc
                .storage
                .and_then(|storage| eframe::get_value::<UiPrefs>(storage, eframe::APP_KEY))
                .unwrap_or_default();
            let app = WorkbenchApp::new(&cc.egui_ctx, projects_dir)
                .with_prefs(prefs)
                .with_start(tab, start_project)
                .with_try_images(try_images)
                .with_inspector_grid(gallery);
            Ok(Box::new(match plan {
                Some(plan) => app.with_screenshot(plan),
                None => app,
            }))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the workbench window could not be opened: {e}"))?;
    match outcome.get() {
        Some(Ok(path)) => println!("screenshot saved: {}", path.display()),
        Some(Err(message)) => anyhow::bail!("{message}"),
        None => {}
    }
    Ok(())
}

fn has_display() -> bool {
    if cfg!(not(target_os = "linux")) {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// `$TRANSFER_WORKBENCH_PROJECTS`, else `./projects` when it exists, else
/// `$XDG_DATA_HOME/transfer-workbench/projects` (or `~/.local/share/...`).
pub fn default_projects_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(PROJECTS_ENV).filter(|s| !s.is_empty()) {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from("projects");
    if local.is_dir() {
        return local;
    }
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data_home.join("transfer-workbench").join("projects")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_window_icon_decodes() {
        let icon = super::window_icon();
        assert_eq!((icon.width, icon.height), (256, 256));
        assert_eq!(icon.rgba.len(), 256 * 256 * 4);
        assert!(
            icon.rgba.chunks(4).any(|p| p[3] == 255),
            "not transparent everywhere"
        );
    }
}
