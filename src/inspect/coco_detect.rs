//! YOLOv3-tiny as shipped, with its 80 COCO classes: boxes in image files, letterboxed as
//! darknet does (what `detect-coco` prints, a check of the COCO weights like
//! `imagenet-classify` is of the ImageNet ones).

use std::path::{Path, PathBuf};

use tch::{Device, Tensor};

use super::InspectError;
use crate::data::letterbox::{Letterbox, prepare_letterbox};
use crate::model::darknet_tiny::{DARKNET_NORMALIZATION, DarknetTiny, INPUT_PX};
use crate::model::yolo_head::{COCO_CLASSES, COCO_HEAD_PREFIX, YoloModel};
use crate::model::{ModelError, import_weights};
use crate::train::TrainError;
use crate::train::detection::{TOP_K, decode, detections};

/// darknet's default detection threshold (`-thresh`).
pub const DEFAULT_THRESHOLD: f32 = 0.25;
/// Images per forward pass.
const BATCH: usize = 8;

/// One box found in an image.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CocoBox {
    /// The COCO class name.
    pub label: String,
    /// Objectness x class probability.
    pub score: f32,
    /// `[x0, y0, x1, y1]` in the image's own pixels.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
}

/// The boxes of one image, or why it could not be read.
#[derive(Debug, serde::Serialize)]
pub struct CocoDetections {
    pub path: PathBuf,
    pub detections: Vec<CocoBox>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The shipped COCO detector: the body at the root, the heads under `yolo`, every key
/// filled from the converted darknet weights.
pub struct CocoDetector {
    _vs: tch::nn::VarStore,
    model: YoloModel,
    names: Vec<String>,
    device: Device,
}

impl CocoDetector {
    /// Loads the shipped weights and class names.
    pub fn load(device: Device) -> Result<Self, InspectError> {
        let weights = crate::assets::pretrained_weights("yolov3_tiny_coco")
            .map_err(|e| TrainError::Model(ModelError::from(e)))?;
        let names = crate::assets::require(
            "weights/yolov3_tiny_coco_classes.txt",
            "the COCO class names",
        )
        .map_err(|e| TrainError::Model(ModelError::from(e)))?;
        let names: Vec<String> = std::fs::read_to_string(&names)
            .map_err(InspectError::io("read", &names))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        if names.len() != COCO_CLASSES as usize {
            return Err(InspectError::Invalid(format!(
                "the COCO class list has {} names, not {COCO_CLASSES}",
                names.len()
            )));
        }
        let (vs, model) = crate::model::with_init_lock(None, || {
            let vs = tch::nn::VarStore::new(device);
            let head = COCO_HEAD_PREFIX.trim_end_matches('.');
            let model = YoloModel::new(
                vs.root() / head,
                Box::new(DarknetTiny::new(vs.root())),
                COCO_CLASSES,
            )?;
            import_weights(&vs, &weights, true)?;
            Ok::<_, ModelError>((vs, model))
        })
        .map_err(TrainError::Model)?;
        Ok(Self {
            _vs: vs,
            model,
            names,
            device,
        })
    }

    /// The boxes scored at least `threshold` in each image (an entry with an error for an
    /// image that cannot be read).
    pub fn detect(
        &self,
        paths: &[PathBuf],
        threshold: f32,
    ) -> Result<Vec<CocoDetections>, InspectError> {
        let mut results = Vec::with_capacity(paths.len());
        for chunk in paths.chunks(BATCH) {
            results.extend(self.detect_batch(chunk, threshold)?);
        }
        Ok(results)
    }

    fn detect_batch(
        &self,
        paths: &[PathBuf],
        threshold: f32,
    ) -> Result<Vec<CocoDetections>, InspectError> {
        let prepared: Vec<_> = paths
            .iter()
            .map(|p| prepare_letterbox(p, INPUT_PX, DARKNET_NORMALIZATION))
            .collect();
        let good: Vec<&[f32]> = prepared
            .iter()
            .filter_map(|r| r.as_ref().ok().map(|(p, _)| p.chw.as_slice()))
            .collect();
        let mut found = Vec::new();
        if !good.is_empty() {
            let side = i64::from(INPUT_PX);
            let images = Tensor::f_from_slice(&good.concat())?
                .f_view([good.len() as i64, 3, side, side])?
                .f_to_device(self.device)?;
            let decoded = tch::no_grad(|| -> Result<_, InspectError> {
                let rows = self
                    .model
                    .forward_t(&images, false)
                    .map_err(TrainError::Model)?;
                Ok(decode(&rows, TOP_K)?)
            })?;
            found = detections(&decoded, threshold)?;
        }
        let mut found = found.into_iter();
        Ok(paths
            .iter()
            .zip(prepared)
            .map(|(path, prepared)| match prepared {
                Ok((_, placed)) => CocoDetections {
                    path: path.clone(),
                    detections: self.named(found.next().unwrap_or_default(), &placed),
                    error: None,
                },
                Err(e) => CocoDetections {
                    path: path.clone(),
                    detections: Vec::new(),
                    error: Some(e.to_string()),
                },
            })
            .collect())
    }

    fn named(
        &self,
        boxes: Vec<crate::train::detection::DetectedBox>,
        placed: &Letterbox,
    ) -> Vec<CocoBox> {
        boxes
            .into_iter()
            .map(|d| CocoBox {
                label: self
                    .names
                    .get(d.class)
                    .cloned()
                    .unwrap_or_else(|| format!("class {}", d.class)),
                score: d.score,
                bbox: placed.to_image([d.bbox.x0, d.bbox.y0, d.bbox.x1, d.bbox.y1]),
            })
            .collect()
    }
}

/// A sample photo of the darknet package installed by set-up (`dog.jpg`, `person.jpg`, ...).
pub fn darknet_photo(name: &str) -> Result<PathBuf, crate::assets::AssetError> {
    crate::assets::require(
        Path::new("samples/darknet").join(name),
        "a darknet sample photo",
    )
}
