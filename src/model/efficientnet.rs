//! EfficientNet-B0 to B7 (Tan & Le, 2019) and EfficientNetV2-S/M/L (Tan & Le, 2021) with
//! torchvision's state-dict key names (`features.N.M.block.K...`, `classifier.1`), following
//! `torchvision/models/efficientnet.py` and `torchvision/ops/misc.py` of torchvision 0.28
//! (BSD-3-Clause). B0-B4 keep torchvision's default `BatchNorm2d` (eps 1e-5, momentum 0.1);
//! B5-B7 use eps 1e-3 and momentum 0.01, V2 eps 1e-3. V2's first stages are `FusedMBConv`
//! blocks (one full convolution instead of expansion and depthwise, no squeeze-excitation).
//! No shipped pretrained weights; the weight catalogue downloads torchvision's.

use tch::{Tensor, nn};

use super::ModelError;
use super::backbone::{Backbone, BackboneInfo, BackboneOutput, Normalization};
use super::layers::{
    Activation, ConvBn, ConvBnMomentum, ConvSpec, SqueezeExcitation, global_avg_pool, linear,
    make_divisible, stochastic_depth,
};

/// One stage: (fused, expand ratio, kernel, first stride, input channels, output channels,
/// layers), before any width or depth multiplier.
type StageSetting = (bool, i64, i64, i64, i64, i64, i64);

/// The paper's Table 1 as torchvision's `_efficientnet_conf("efficientnet_b0")` lists it.
const V1_SETTING: [StageSetting; 7] = [
    (false, 1, 3, 1, 32, 16, 1),
    (false, 6, 3, 2, 16, 24, 2),
    (false, 6, 5, 2, 24, 40, 2),
    (false, 6, 3, 2, 40, 80, 3),
    (false, 6, 5, 1, 80, 112, 3),
    (false, 6, 5, 2, 112, 192, 4),
    (false, 6, 3, 1, 192, 320, 1),
];
const V2_S_SETTING: [StageSetting; 6] = [
    (true, 1, 3, 1, 24, 24, 2),
    (true, 4, 3, 2, 24, 48, 4),
    (true, 4, 3, 2, 48, 64, 4),
    (false, 4, 3, 2, 64, 128, 6),
    (false, 6, 3, 1, 128, 160, 9),
    (false, 6, 3, 2, 160, 256, 15),
];
const V2_M_SETTING: [StageSetting; 7] = [
    (true, 1, 3, 1, 24, 24, 3),
    (true, 4, 3, 2, 24, 48, 5),
    (true, 4, 3, 2, 48, 80, 5),
    (false, 4, 3, 2, 80, 160, 7),
    (false, 6, 3, 1, 160, 176, 14),
    (false, 6, 3, 2, 176, 304, 18),
    (false, 6, 3, 1, 304, 512, 5),
];
const V2_L_SETTING: [StageSetting; 7] = [
    (true, 1, 3, 1, 32, 32, 4),
    (true, 4, 3, 2, 32, 64, 7),
    (true, 4, 3, 2, 64, 96, 7),
    (false, 4, 3, 2, 96, 192, 10),
    (false, 6, 3, 1, 192, 224, 19),
    (false, 6, 3, 2, 224, 384, 25),
    (false, 6, 3, 1, 384, 640, 7),
];
const STOCHASTIC_DEPTH_PROB: f64 = 0.2;

/// The EfficientNet variants of torchvision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EfficientNetVariant {
    /// Width and depth 1.0, 224 px.
    B0,
    /// Depth 1.1, 240 px.
    B1,
    /// Width 1.1, depth 1.2, 288 px.
    B2,
    /// Width 1.2, depth 1.4, 300 px.
    B3,
    /// Width 1.4, depth 1.8, 380 px.
    B4,
    /// Width 1.6, depth 2.2, 456 px.
    B5,
    /// Width 1.8, depth 2.6, 528 px.
    B6,
    /// Width 2.0, depth 3.1, 600 px.
    B7,
    /// EfficientNetV2-S, 384 px.
    V2S,
    /// EfficientNetV2-M, 480 px.
    V2M,
    /// EfficientNetV2-L, 480 px.
    V2L,
}

impl EfficientNetVariant {
    /// Every variant, in torchvision's order.
    pub const ALL: [EfficientNetVariant; 11] = [
        Self::B0,
        Self::B1,
        Self::B2,
        Self::B3,
        Self::B4,
        Self::B5,
        Self::B6,
        Self::B7,
        Self::V2S,
        Self::V2M,
        Self::V2L,
    ];

    /// Name used in projects and on the command line (torchvision's builder name).
    pub fn name(self) -> &'static str {
        match self {
            Self::B0 => "efficientnet_b0",
            Self::B1 => "efficientnet_b1",
            Self::B2 => "efficientnet_b2",
            Self::B3 => "efficientnet_b3",
            Self::B4 => "efficientnet_b4",
            Self::B5 => "efficientnet_b5",
            Self::B6 => "efficientnet_b6",
            Self::B7 => "efficientnet_b7",
            Self::V2S => "efficientnet_v2_s",
            Self::V2M => "efficientnet_v2_m",
            Self::V2L => "efficientnet_v2_l",
        }
    }

    /// The variant called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    /// Width and depth multipliers.
    fn multipliers(self) -> (f64, f64) {
        match self {
            Self::B0 | Self::V2S | Self::V2M | Self::V2L => (1.0, 1.0),
            Self::B1 => (1.0, 1.1),
            Self::B2 => (1.1, 1.2),
            Self::B3 => (1.2, 1.4),
            Self::B4 => (1.4, 1.8),
            Self::B5 => (1.6, 2.2),
            Self::B6 => (1.8, 2.6),
            Self::B7 => (2.0, 3.1),
        }
    }

    /// The stages with the multipliers applied (torchvision's `adjust_channels` and
    /// `adjust_depth`).
    fn stages(self) -> Vec<StageSetting> {
        let base: &[StageSetting] = match self {
            Self::V2S => &V2_S_SETTING,
            Self::V2M => &V2_M_SETTING,
            Self::V2L => &V2_L_SETTING,
            _ => &V1_SETTING,
        };
        let (width, depth) = self.multipliers();
        let channels = |c: i64| make_divisible(c as f64 * width, 8);
        base.iter()
            .map(|&(fused, expand, kernel, stride, input, output, layers)| {
                let layers = (layers as f64 * depth).ceil() as i64;
                (
                    fused,
                    expand,
                    kernel,
                    stride,
                    channels(input),
                    channels(output),
                    layers,
                )
            })
            .collect()
    }

    /// Width of the last convolution (and of the embedding).
    fn last_channels(self) -> i64 {
        match self {
            Self::V2S | Self::V2M | Self::V2L => 1280,
            _ => 4 * self.stages().last().map_or(0, |s| s.5),
        }
    }

    /// Batch norm (eps, momentum).
    fn norm(self) -> (f64, f64) {
        match self {
            Self::B5 | Self::B6 | Self::B7 => (1e-3, 0.01),
            Self::V2S | Self::V2M | Self::V2L => (1e-3, 0.1),
            _ => (1e-5, 0.1),
        }
    }

    /// Dropout before the classifier.
    fn dropout(self) -> f64 {
        match self {
            Self::B0 | Self::B1 | Self::V2S => 0.2,
            Self::B2 | Self::B3 | Self::V2M => 0.3,
            Self::B4 | Self::B5 | Self::V2L => 0.4,
            Self::B6 | Self::B7 => 0.5,
        }
    }

    /// torchvision's evaluation crop for the variant's ImageNet weights.
    fn input_size_px(self) -> u32 {
        match self {
            Self::B0 => 224,
            Self::B1 => 240,
            Self::B2 => 288,
            Self::B3 => 300,
            Self::B4 => 380,
            Self::B5 => 456,
            Self::B6 => 528,
            Self::B7 => 600,
            Self::V2S => 384,
            Self::V2M | Self::V2L => 480,
        }
    }
}

/// torchvision's `Conv2dNormActivation` (conv at `p.0`, norm at `p.1`) with the variant's
/// batch norm.
fn conv_bn(
    p: nn::Path,
    spec: ConvSpec,
    norm: (f64, f64),
    activation: Activation,
) -> ConvBnMomentum {
    ConvBnMomentum::new(
        ConvBn::new(&p / 0, &p / 1, spec, norm.0, activation),
        norm.1,
    )
}

/// One `MBConv` block: optional 1x1 expansion, depthwise conv, squeeze-excitation, 1x1
/// projection, with a residual (through stochastic depth) when the shape is kept.
///
/// `FusedMBConv` (V2): a full `kernel x kernel` convolution to the expanded width and a 1x1
/// projection, or one convolution straight to the output when nothing is expanded; no
/// squeeze-excitation.
#[derive(Debug)]
struct MbConv {
    expand: Option<ConvBnMomentum>,
    depthwise: Option<ConvBnMomentum>,
    se: Option<SqueezeExcitation>,
    project: ConvBnMomentum,
    use_res_connect: bool,
    stochastic_depth_prob: f64,
}

/// One block's geometry: (fused, expand ratio, kernel, stride, input, output channels).
type BlockSetting = (bool, i64, i64, i64, i64, i64);

impl MbConv {
    fn new(
        p: nn::Path,
        (fused, expand_ratio, kernel, stride, input_channels, out_channels): BlockSetting,
        norm: (f64, f64),
        stochastic_depth_prob: f64,
    ) -> Self {
        let block = &p / "block";
        let expanded = make_divisible((input_channels * expand_ratio) as f64, 8);
        let use_res_connect = stride == 1 && input_channels == out_channels;
        if fused {
            let full = ConvSpec::new(input_channels, expanded, kernel).stride(stride);
            let (expand, project) = if expanded == input_channels {
                let conv = ConvSpec::new(input_channels, out_channels, kernel).stride(stride);
                (None, conv_bn(&block / 0, conv, norm, Activation::Silu))
            } else {
                let project = ConvSpec::new(expanded, out_channels, 1);
                (
                    Some(conv_bn(&block / 0, full, norm, Activation::Silu)),
                    conv_bn(&block / 1, project, norm, Activation::Identity),
                )
            };
            return Self {
                expand,
                depthwise: None,
                se: None,
                project,
                use_res_connect,
                stochastic_depth_prob,
            };
        }
        let mut index = 0;
        let expand = (expanded != input_channels).then(|| {
            index += 1;
            let spec = ConvSpec::new(input_channels, expanded, 1);
            conv_bn(&block / 0, spec, norm, Activation::Silu)
        });
        let depthwise = conv_bn(
            &block / index,
            ConvSpec::new(expanded, expanded, kernel)
                .stride(stride)
                .depthwise(),
            norm,
            Activation::Silu,
        );
        let se = SqueezeExcitation::new(
            &block / (index + 1),
            expanded,
            (input_channels / 4).max(1),
            Activation::Silu,
            Activation::Sigmoid,
        );
        let project = conv_bn(
            &block / (index + 2),
            ConvSpec::new(expanded, out_channels, 1),
            norm,
            Activation::Identity,
        );
        Self {
            expand,
            depthwise: Some(depthwise),
            se: Some(se),
            project,
            use_res_connect,
            stochastic_depth_prob,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        let mut ys = match &self.expand {
            Some(expand) => expand.forward_t(xs, train)?,
            None => xs.shallow_clone(),
        };
        if let Some(depthwise) = &self.depthwise {
            ys = depthwise.forward_t(&ys, train)?;
        }
        if let Some(se) = &self.se {
            ys = se.forward(&ys)?;
        }
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
    Conv(Box<ConvBnMomentum>),
    Blocks(Vec<MbConv>),
}

/// A torchvision EfficientNet (V1 or V2).
#[derive(Debug)]
pub struct EfficientNet {
    info: BackboneInfo,
    features: Vec<Stage>,
    /// Indices into `features` after which a new output stride (2, 4, 8, 16, 32) is reached.
    feature_taps: Vec<usize>,
    dropout: f64,
    classifier: Option<nn::Linear>,
}

impl EfficientNet {
    /// The facts of a variant (no shipped pretrained weights).
    pub fn info_for(variant: EfficientNetVariant) -> BackboneInfo {
        BackboneInfo {
            name: variant.name(),
            family: "EfficientNet",
            input_size_px: variant.input_size_px(),
            normalization: Normalization::IMAGENET,
            embedding_dim: variant.last_channels(),
            pretrained: None,
        }
    }

    /// Builds `variant` under `p`; `classes` adds the `classifier.1` linear head.
    pub fn new(p: nn::Path, variant: EfficientNetVariant, classes: Option<i64>) -> Self {
        let f = &p / "features";
        let stages = variant.stages();
        let norm = variant.norm();
        let stem_channels = stages.first().map_or(32, |s| s.4);
        let mut features = vec![Stage::Conv(Box::new(conv_bn(
            &f / 0,
            ConvSpec::new(3, stem_channels, 3).stride(2),
            norm,
            Activation::Silu,
        )))];
        // The stem reaches stride 2; a stage tapped before every stride-2 stage and the last.
        let mut feature_taps = Vec::new();
        let total_blocks: i64 = stages.iter().map(|s| s.6).sum();
        let mut block_id = 0;
        for &(fused, expand_ratio, kernel, stride, input_channels, out_channels, layers) in &stages
        {
            if stride == 2 {
                feature_taps.push(features.len() - 1);
            }
            let stage_path = &f / features.len();
            let mut stage = Vec::new();
            for i in 0..layers {
                let (inp, s) = if i == 0 {
                    (input_channels, stride)
                } else {
                    (out_channels, 1)
                };
                let sd_prob = STOCHASTIC_DEPTH_PROB * block_id as f64 / total_blocks as f64;
                let cnf = (fused, expand_ratio, kernel, s, inp, out_channels);
                stage.push(MbConv::new(&stage_path / i, cnf, norm, sd_prob));
                block_id += 1;
            }
            features.push(Stage::Blocks(stage));
        }
        let last_input = stages.last().map_or(stem_channels, |s| s.5);
        let last_channels = variant.last_channels();
        feature_taps.push(features.len());
        features.push(Stage::Conv(Box::new(conv_bn(
            &f / features.len(),
            ConvSpec::new(last_input, last_channels, 1),
            norm,
            Activation::Silu,
        ))));
        let classifier = classes.map(|classes| {
            nn::linear(
                &p / "classifier" / 1,
                last_channels,
                classes,
                Default::default(),
            )
        });
        Self {
            info: Self::info_for(variant),
            features,
            feature_taps,
            dropout: variant.dropout(),
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
        let mut taps = Vec::with_capacity(self.feature_taps.len());
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
            if self.feature_taps.contains(&index) {
                taps.push(xs.shallow_clone());
            }
        }
        let embedding = global_avg_pool(&xs)?;
        // torchvision's classifier: dropout, then the linear layer.
        let logits = match &self.classifier {
            Some(head) => Some(linear(head, &embedding.f_dropout(self.dropout, train)?)?),
            None => None,
        };
        Ok(BackboneOutput {
            features: taps,
            embedding,
            logits,
        })
    }
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind, nn::VarStore};

    use super::*;

    #[test]
    fn every_variant_taps_five_strides_and_its_last_conv() {
        for variant in [EfficientNetVariant::B0, EfficientNetVariant::V2S] {
            let vs = VarStore::new(Device::Cpu);
            let model = EfficientNet::new(vs.root(), variant, None);
            let images = Tensor::zeros([1, 3, 64, 64], (Kind::Float, Device::Cpu));
            let out = model.forward_t(&images, false).unwrap();
            let sides: Vec<i64> = out.features.iter().map(|f| f.size()[2]).collect();
            assert_eq!(sides, vec![32, 16, 8, 4, 2], "{variant:?}");
            assert_eq!(out.embedding.size(), vec![1, 1280], "{variant:?}");
        }
        let widths = EfficientNetVariant::ALL.map(|v| EfficientNet::info_for(v).embedding_dim);
        assert_eq!(
            widths,
            [
                1280, 1280, 1408, 1536, 1792, 2048, 2304, 2560, 1280, 1280, 1280
            ]
        );
    }
}
