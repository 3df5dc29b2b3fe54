//! A backbone with a detection head in one VarStore (backbone keys at the root, head under
//! `detector.`): the network of the detection task. The head is the run's
//! [`DetectorHead`]: "objects as points" (output `[N, C + 4, H / 4, W / 4]`) or YOLOv3-tiny's
//! anchor heads (prediction rows `[N, P, 5 + C + 5]`); `train::detection` trains and decodes
//! either output.

use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::TrainError;
use super::classifier::strategy_groups;
use super::config::{DetectorHead, Strategy, TrainConfig, WeightsSpec};
use super::net::TaskNet;
use super::optim::ParamGroup;
use crate::model::det_head::{DetectionModel, image_size};
use crate::model::yolo_head::{YoloModel, load_coco_neck};
use crate::model::{Backbone, darknet_tiny, load_backbone};

/// Prefix of the head's variables (the backbone's keys stay at the root).
pub const DETECTOR_PREFIX: &str = "detector.";

/// The backbone and the chosen head.
enum Model {
    CenterNet(DetectionModel),
    Yolo(YoloModel),
}

impl Model {
    fn backbone(&self) -> &dyn Backbone {
        match self {
            Model::CenterNet(m) => m.backbone.as_ref(),
            Model::Yolo(m) => m.backbone.as_ref(),
        }
    }

    fn forward_t(&self, images: &Tensor, train: bool) -> Result<Tensor, TrainError> {
        Ok(match self {
            Model::CenterNet(m) => m.forward_t(images, train)?,
            Model::Yolo(m) => m.forward_t(images, train)?,
        })
    }

    /// Indices of the `count` feature maps the head reads.
    fn used_levels(&self, count: usize) -> Vec<usize> {
        match self {
            Model::CenterNet(m) => m.head.levels().to_vec(),
            // The stride-16 and stride-32 maps: the last two.
            Model::Yolo(_) => (count.saturating_sub(2)..count).collect(),
        }
    }

    fn head_forward_t(
        &self,
        features: &[Tensor],
        input_px: [i64; 2],
        train: bool,
    ) -> Result<Tensor, TrainError> {
        Ok(match self {
            Model::CenterNet(m) => m.head.forward_t(features, input_px, train)?,
            Model::Yolo(m) => m.head.forward_t(features, train)?,
        })
    }
}

/// The layout of a frozen-backbone row: the maps the head reads, in order.
#[derive(Clone, Debug)]
struct CachedMaps {
    /// How many maps the backbone gives.
    count: usize,
    /// Index and `[C, H, W]` of each map in the row.
    maps: Vec<(usize, [i64; 3])>,
}

impl CachedMaps {
    fn of(features: &[Tensor], used: &[usize]) -> Self {
        let maps = used
            .iter()
            .filter_map(|&i| {
                let s = features.get(i)?.size();
                Some((i, [s[1], s[2], s[3]]))
            })
            .collect();
        Self {
            count: features.len(),
            maps,
        }
    }
}

/// Backbone + detection head in one VarStore.
pub struct Detector {
    /// Owns all variables.
    pub vs: VarStore,
    model: Model,
    /// Forward passes through the backbone so far.
    pub backbone_passes: usize,
    /// The run's square input side.
    input_px: i64,
    /// How cached rows unpack into maps (known after the first frozen pass or a probe).
    cached_maps: Option<CachedMaps>,
}

impl Detector {
    /// Builds the configured backbone with its weights and a fresh head for `classes`
    /// object classes, seeding libtorch with the run's seed first. A YOLO head on the
    /// `yolov3_tiny` backbone with pretrained weights takes the COCO weights of its hidden
    /// layers too.
    pub fn build(config: &TrainConfig, classes: usize, device: Device) -> Result<Self, TrainError> {
        let (vs, model) = crate::model::with_init_lock(Some(config.seed), || {
            let loaded = load_backbone(&config.backbone, false, &config.weights.choice(), device)?;
            let p = loaded.vs.root() / "detector";
            let model = match config.detector {
                DetectorHead::CenterNet => {
                    Model::CenterNet(DetectionModel::new(p, loaded.model, classes as i64)?)
                }
                DetectorHead::Yolo => Model::Yolo(YoloModel::new(p, loaded.model, classes as i64)?),
            };
            if config.detector == DetectorHead::Yolo
                && config.backbone == darknet_tiny::NAME
                && config.weights == WeightsSpec::Pretrained
            {
                let path = crate::assets::pretrained_weights("yolov3_tiny_coco")
                    .map_err(crate::model::ModelError::from)?;
                load_coco_neck(&loaded.vs, DETECTOR_PREFIX, &path)?;
            }
            Ok::<_, TrainError>((loaded.vs, model))
        })?;
        Ok(Self {
            vs,
            model,
            backbone_passes: 0,
            input_px: i64::from(config.input_size_px),
            cached_maps: None,
        })
    }

    /// The layout of frozen-backbone rows at the run's input side (one probing pass when no
    /// frozen pass has run in this process, e.g. rows read from the cache).
    fn cached_maps(&mut self, device: Device) -> Result<CachedMaps, TrainError> {
        if let Some(layout) = &self.cached_maps {
            return Ok(layout.clone());
        }
        let side = self.input_px;
        let probe = Tensor::f_zeros([1, 3, side, side], (tch::Kind::Float, device))?;
        let features = tch::no_grad(|| self.model.backbone().forward_t(&probe, false))?.features;
        let layout = CachedMaps::of(&features, &self.model.used_levels(features.len()));
        self.cached_maps = Some(layout.clone());
        Ok(layout)
    }
}

impl TaskNet for Detector {
    fn vs(&self) -> &VarStore {
        &self.vs
    }

    fn vs_mut(&mut self) -> &mut VarStore {
        &mut self.vs
    }

    fn backbone_passes(&self) -> usize {
        self.backbone_passes
    }

    fn param_groups(&self, strategy: Strategy, epoch: usize) -> Vec<ParamGroup> {
        strategy_groups(&self.vs, DETECTOR_PREFIX, strategy, epoch)
    }

    /// The head's output; the backbone gets gradients and batch statistics only when
    /// `trainable`, the head batch statistics when `train`.
    fn logits(
        &mut self,
        images: &Tensor,
        trainable: bool,
        train: bool,
    ) -> Result<Tensor, TrainError> {
        self.backbone_passes += 1;
        if trainable {
            return self.model.forward_t(images, true);
        }
        let input_px = image_size(images)?;
        let features = tch::no_grad(|| self.model.backbone().forward_t(images, false))?.features;
        self.model.head_forward_t(&features, input_px, train)
    }

    /// The feature maps the head reads, from the frozen backbone, flattened and
    /// concatenated per image.
    fn frozen_rows(&mut self, images: &Tensor) -> Result<Tensor, TrainError> {
        self.backbone_passes += 1;
        let features = tch::no_grad(|| self.model.backbone().forward_t(images, false))?.features;
        let layout = CachedMaps::of(&features, &self.model.used_levels(features.len()));
        let n = images.size()[0];
        let flat = layout
            .maps
            .iter()
            .map(|&(i, _)| features[i].f_to_kind(tch::Kind::Float)?.f_reshape([n, -1]))
            .collect::<Result<Vec<_>, _>>()?;
        self.cached_maps = Some(layout);
        Ok(Tensor::f_cat(&flat, 1)?)
    }

    /// The head on the maps unpacked from rows of [`TaskNet::frozen_rows`] (the maps it
    /// does not read are left empty).
    fn logits_of_rows(&mut self, rows: &Tensor, train: bool) -> Result<Tensor, TrainError> {
        let layout = self.cached_maps(rows.device())?;
        let n = rows.size()[0];
        let width: i64 = layout.maps.iter().map(|(_, [c, h, w])| c * h * w).sum();
        if rows.size().get(1) != Some(&width) {
            return Err(TrainError::Config(format!(
                "cached features have {:?} values per image, the head reads {width}",
                rows.size().get(1)
            )));
        }
        let mut features = (0..layout.count)
            .map(|_| Tensor::f_zeros([0], (tch::Kind::Float, rows.device())))
            .collect::<Result<Vec<_>, _>>()?;
        let mut at = 0;
        for (i, [c, h, w]) in layout.maps {
            features[i] = rows.f_narrow(1, at, c * h * w)?.f_reshape([n, c, h, w])?;
            at += c * h * w;
        }
        let side = self.input_px;
        self.model.head_forward_t(&features, [side, side], train)
    }
}
