//! Taking a screenshot of the workbench window into a PNG and closing it (for the
//! documentation's screenshots: `transfer-workbench gui --screenshot FILE`).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, OnceLock};

/// Frames drawn after the UI is ready and before the capture, so layouts settle.
const SETTLE_FRAMES: u32 = 5;

/// The outcome of a screenshot request, readable after the window closed.
pub type ScreenshotOutcome = Arc<OnceLock<Result<PathBuf, String>>>;

/// A pending screenshot of the window.
pub struct ScreenshotPlan {
    path: PathBuf,
    frames_left: u32,
    saved: Option<Receiver<Result<(), String>>>,
    outcome: ScreenshotOutcome,
}

impl ScreenshotPlan {
    /// Plans a screenshot into `path`; the result lands in `outcome`.
    pub fn new(path: PathBuf, outcome: ScreenshotOutcome) -> Self {
        Self {
            path,
            frames_left: SETTLE_FRAMES,
            saved: None,
            outcome,
        }
    }

    /// Call once per frame when the UI shows what should be captured.
    pub fn tick(&mut self, ctx: &egui::Context) {
        if self.outcome.get().is_some() {
            return;
        }
        ctx.request_repaint();
        if self.frames_left > 0 {
            self.frames_left -= 1;
            return;
        }
        match &self.saved {
            None => {
                let (tx, rx) = sync_channel(1);
                let path = self.path.clone();
                let repaint = ctx.clone();
                let callback = egui::ScreenshotCallback::new(move |image| {
                    // Encoding and writing happen off the UI thread.
                    let spawned = std::thread::Builder::new()
                        .name("screenshot-save".into())
                        .spawn(move || {
                            let _ = tx.send(save_png(&path, &image));
                            repaint.request_repaint();
                        });
                    if let Err(e) = spawned {
                        eprintln!("could not start the screenshot writer: {e}");
                    }
                });
                ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(callback));
                self.saved = Some(rx);
            }
            Some(rx) => {
                if let Ok(result) = rx.try_recv() {
                    let _ = self.outcome.set(result.map(|()| self.path.clone()));
                    ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                }
            }
        }
    }
}

fn save_png(path: &Path, image: &egui::ColorImage) -> Result<(), String> {
    let [width, height] = image.size;
    let buffer =
        image::RgbaImage::from_raw(width as u32, height as u32, image.as_raw().to_vec())
            .ok_or_else(|| format!("the screenshot has an unexpected size: {}", path.display()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("could not create the folder ({e}): {}", dir.display()))?;
    }
    buffer
        .save(path)
        .map_err(|e| format!("could not write the screenshot ({e}): {}", path.display()))
}
