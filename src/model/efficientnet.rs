//! EfficientNet-B0 (Tan & Le, 2019) with torchvision's state-dict key names
//! (`features.N.M.block.K...`, `classifier.1`), following `torchvision/models/efficientnet.py`
//! and `torchvision/ops/misc.py` of torchvision 0.28 (BSD-3-Clause). B0 keeps torchvision's
//! default `BatchNorm2d` (eps 1e-5, momentum 0.1); only B5-B7 and V2 change it.
//! No shipped pretrained weights.

use tch::{Tensor, nn};

use super::ModelError;
use super::backbone::{Backbone, BackboneInfo, BackboneOutput, Normalization};
use super::layers::{
    Activation, ConvBn, ConvSpec, SqueezeExcitation, global_avg_pool, linear, make_divisible,
    stochastic_depth,
};

/// (expand ratio, kernel, first stride, input channels, output channels, layers): the paper's
/// Table 1 as torchvision's `_efficientnet_conf("efficientnet_b0")` lists it.
const B0_SETTING: [(i64, i64, i64, i64, i64, i64); 7] = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
];
const STEM_CHANNELS: i64 = 32;
/// `4 * 320`: the last conv's width and the embedding width.
const LAST_CHANNELS: i64 = 1280;
const STOCHASTIC_DEPTH_PROB: f64 = 0.2;
const DROPOUT: f64 = 0.2;
/// Indices into `features` after which a new output stride (2, 4, 8, 16, 32) is reached.
const FEATURE_TAPS: [usize; 5] = [1, 2, 3, 5, 8];

/// One `MBConv` block: optional 1x1 expansion, depthwise conv, squeeze-excitation, 1x1
/// projection, with a residual (through stochastic depth) when the shape is kept.
#[derive(Debug)]
struct MbConv {
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    se: SqueezeExcitation,
    project: ConvBn,
    use_res_connect: bool,
    stochastic_depth_prob: f64,
}

impl MbConv {
    fn new(
        p: nn::Path,
        (expand_ratio, kernel, stride, input_channels, out_channels): (i64, i64, i64, i64, i64),
        stochastic_depth_prob: f64,
    ) -> Self {
        let block = &p / "block";
        let expanded = make_divisible((input_channels * expand_ratio) as f64, 8);
        let mut index = 0;
        let expand = (expanded != input_channels).then(|| {
            index += 1;
            ConvBn::torchvision(
                &block / 0,
                ConvSpec::new(input_channels, expanded, 1),
                Activation::Silu,
            )
        });
        let depthwise = ConvBn::torchvision(
            &block / index,
            ConvSpec::new(expanded, expanded, kernel)
                .stride(stride)
                .depthwise(),
            Activation::Silu,
        );
        let se = SqueezeExcitation::new(
            &block / (index + 1),
            expanded,
            (input_channels / 4).max(1),
            Activation::Silu,
            Activation::Sigmoid,
        );
        let project = ConvBn::torchvision(
            &block / (index + 2),
            ConvSpec::new(expanded, out_channels, 1),
            Activation::Identity,
        );
        Self {
            expand,
            depthwise,
            se,
            project,
            use_res_connect: stride == 1 && input_channels == out_channels,
            stochastic_depth_prob,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        let ys = match &self.expand {
            Some(expand) => expand.forward_t(xs, train)?,
            None => xs.shallow_clone(),
        };
        let ys = self.depthwise.forward_t(&ys, train)?;
        let ys = self.se.forward(&ys)?;
        let ys = self.project.forward_t(&ys, train)?;
        if self.use_res_connect {
            stochastic_depth(ys, self.stochastic_depth_prob, train)?.f_add(xs)
        } else {
            Ok(ys)
        }
    }
}

#[derive(Debug)]
enum Stage {
    Conv(Box<ConvBn>),
    Blocks(Vec<MbConv>),
}

/// EfficientNet-B0 (width and depth multipliers 1.0).
#[derive(Debug)]
pub struct EfficientNet {
    info: BackboneInfo,
    features: Vec<Stage>,
    classifier: Option<nn::Linear>,
}

impl EfficientNet {
    /// The facts of this backbone.
    pub fn info_for() -> BackboneInfo {
        BackboneInfo {
            name: "efficientnet_b0",
            family: "EfficientNet",
            input_size_px: 224,
            normalization: Normalization::IMAGENET,
            embedding_dim: LAST_CHANNELS,
            pretrained: None,
        }
    }

    /// Builds EfficientNet-B0 under `p`; `classes` adds the `classifier.1` linear head.
    pub fn b0(p: nn::Path, classes: Option<i64>) -> Self {
        let f = &p / "features";
        let mut features = vec![Stage::Conv(Box::new(ConvBn::torchvision(
            &f / 0,
            ConvSpec::new(3, STEM_CHANNELS, 3).stride(2),
            Activation::Silu,
        )))];
        let total_blocks: i64 = B0_SETTING.iter().map(|s| s.5).sum();
        let mut block_id = 0;
        for (expand_ratio, kernel, stride, input_channels, out_channels, layers) in B0_SETTING {
            let stage_path = &f / features.len();
            let mut stage = Vec::new();
            for i in 0..layers {
                let (inp, s) = if i == 0 {
                    (input_channels, stride)
                } else {
                    (out_channels, 1)
                };
                let sd_prob = STOCHASTIC_DEPTH_PROB * block_id as f64 / total_blocks as f64;
                let cnf = (expand_ratio, kernel, s, inp, out_channels);
                stage.push(MbConv::new(&stage_path / i, cnf, sd_prob));
                block_id += 1;
            }
            features.push(Stage::Blocks(stage));
        }
        let last_input = B0_SETTING[B0_SETTING.len() - 1].4;
        features.push(Stage::Conv(Box::new(ConvBn::torchvision(
            &f / features.len(),
            ConvSpec::new(last_input, LAST_CHANNELS, 1),
            Activation::Silu,
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
            info: Self::info_for(),
            features,
            classifier,
        }
    }
}

impl Backbone for EfficientNet {
    fn info(&self) -> &BackboneInfo {
        &self.info
    }

    fn forward_t(&self, images: &Tensor, train: bool) -> Result<BackboneOutput, ModelError> {
        let mut xs = images.shallow_clone();
        let mut taps = Vec::with_capacity(FEATURE_TAPS.len());
        for (index, stage) in self.features.iter().enumerate() {
            xs = match stage {
                Stage::Conv(layer) => layer.forward_t(&xs, train)?,
                Stage::Blocks(blocks) => {
                    for block in blocks {
                        xs = block.forward_t(&xs, train)?;
                    }
                    xs
                }
            };
            if FEATURE_TAPS.contains(&index) {
                taps.push(xs.shallow_clone());
            }
        }
        let embedding = global_avg_pool(&xs)?;
        // torchvision's classifier: Dropout(0.2), then the linear layer.
        let logits = match &self.classifier {
            Some(head) => Some(linear(head, &embedding.f_dropout(DROPOUT, train)?)?),
            None => None,
        };
        Ok(BackboneOutput {
            features: taps,
            embedding,
            logits,
        })
    }
}
