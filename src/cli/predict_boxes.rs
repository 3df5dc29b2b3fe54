//! `predict` for detection runs: each image's boxes with class names and scores, in the
//! image's own pixels (`x0, y0, x1, y1`), as JSON entries and lines of text.

use std::path::Path;

use serde::Serialize;

/// One box of `predict --json`.
#[derive(Debug, Serialize)]
pub struct DetectionEntry {
    /// The class name.
    pub label: String,
    /// The detector's confidence in [0, 1].
    pub score: f32,
    /// `[x0, y0, x1, y1]` in the image's own pixels.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
}

/// One line per image: its boxes as `label score @ x0,y0,x1,y1`.
pub fn describe(path: &Path, found: &[DetectionEntry]) -> String {
    if found.is_empty() {
        return format!("{}: no object found", path.display());
    }
    let boxes: Vec<String> = found
        .iter()
        .map(|d| {
            format!(
                "{} {:.2} @ {:.0},{:.0},{:.0},{:.0}",
                d.label, d.score, d.bbox[0], d.bbox[1], d.bbox[2], d.bbox[3]
            )
        })
        .collect();
    format!("{}: {}", path.display(), boxes.join("; "))
}
