//! The GUI's side of the inspection jobs of a classification run: the core's jobs
//! ([`crate::inspect::run_inspection`]) called on a worker, their pixels turned into egui
//! images there, so the UI thread only uploads textures.

use std::sync::atomic::AtomicBool;

use crate::inspect::InspectError;
use crate::inspect::gradcam::CamMethod;
use crate::inspect::run_inspection::{cam_image, inspect_run};
use crate::runtime::inspect::{CamChoice, CamKey, CamPixels, RunInspection};

/// Inspects run `run` of the project on its frozen validation split (see
/// [`inspect_run`]); a stop is reported as an error the view shows.
pub fn load_run(
    project: &std::path::Path,
    run: &str,
    progress: crate::inspect::Progress<'_>,
    stop: &AtomicBool,
) -> Result<RunInspection, InspectError> {
    inspect_run(project, run, progress, stop)?
        .ok_or_else(|| InspectError::Invalid("the inspection was stopped".to_owned()))
}

/// The heatmap of `key` as an egui image.
pub fn cam(key: &CamKey) -> Result<CamPixels, InspectError> {
    let method = match key.method {
        CamChoice::GradCam => CamMethod::GradCam,
        CamChoice::HiResCam => CamMethod::HiResCam,
    };
    let cam = cam_image(&key.project, &key.run, &key.image, method)?;
    let size = [cam.rgba.width() as usize, cam.rgba.height() as usize];
    Ok(CamPixels {
        image: egui::ColorImage::from_rgba_unmultiplied(size, cam.rgba.as_raw()),
        class: cam.class,
        score: cam.score,
    })
}
