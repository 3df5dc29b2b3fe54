//! MobileNetV3-Large and -Small (Howard et al., 2019) with torchvision's state-dict key names
//! (`features.N.block.K...`, `classifier.0`, `classifier.3`), following
//! `torchvision/models/mobilenetv3.py` and `torchvision/ops/misc.py` of torchvision 0.28
//! (BSD-3-Clause): batch norm with eps 1e-3 and momentum 0.01, squeeze-excitation with a
//! hard sigmoid. No shipped pretrained weights.

use tch::{Tensor, nn};

use super::ModelError;
use super::backbone::{Backbone, BackboneInfo, BackboneOutput, Normalization};
use super::layers::{
    Activation, ConvBn, ConvBnMomentum, ConvSpec, SqueezeExcitation, global_avg_pool, linear,
    make_divisible,
};

/// One block: (input channels, kernel, expanded channels, output channels,
/// squeeze-excitation, hard-swish (else ReLU), stride).
type BlockSetting = (i64, i64, i64, i64, bool, bool, i64);

/// The paper's Table 1 as torchvision lists it.
const LARGE_SETTING: [BlockSetting; 15] = [
    (16, 3, 16, 16, false, false, 1),
    (16, 3, 64, 24, false, false, 2),
    (24, 3, 72, 24, false, false, 1),
    (24, 5, 72, 40, true, false, 2),
    (40, 5, 120, 40, true, false, 1),
    (40, 5, 120, 40, true, false, 1),
    (40, 3, 240, 80, false, true, 2),
    (80, 3, 200, 80, false, true, 1),
    (80, 3, 184, 80, false, true, 1),
    (80, 3, 184, 80, false, true, 1),
    (80, 3, 480, 112, true, true, 1),
    (112, 3, 672, 112, true, true, 1),
    (112, 5, 672, 160, true, true, 2),
    (160, 5, 960, 160, true, true, 1),
    (160, 5, 960, 160, true, true, 1),
];
/// The paper's Table 2 as torchvision lists it.
const SMALL_SETTING: [BlockSetting; 11] = [
    (16, 3, 16, 16, true, false, 2),
    (16, 3, 72, 24, false, false, 2),
    (24, 3, 88, 24, false, false, 1),
    (24, 5, 96, 40, true, true, 2),
    (40, 5, 240, 40, true, true, 1),
    (40, 5, 240, 40, true, true, 1),
    (40, 5, 120, 48, true, true, 1),
    (48, 5, 144, 48, true, true, 1),
    (48, 5, 288, 96, true, true, 2),
    (96, 5, 576, 96, true, true, 1),
    (96, 5, 576, 96, true, true, 1),
];
const STEM_CHANNELS: i64 = 16;
const BN_EPS: f64 = 1e-3;
const BN_MOMENTUM: f64 = 0.01;
const DROPOUT: f64 = 0.2;

/// The two MobileNetV3 sizes of torchvision (width multiplier 1.0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MobileNetV3Variant {
    /// 15 blocks, a 960-wide last conv.
    Large,
    /// 11 blocks, a 576-wide last conv.
    Small,
}

impl MobileNetV3Variant {
    /// Both variants.
    pub const ALL: [MobileNetV3Variant; 2] = [Self::Large, Self::Small];

    /// Name used in projects and on the command line (torchvision's builder name).
    pub fn name(self) -> &'static str {
        match self {
            Self::Large => "mobilenet_v3_large",
            Self::Small => "mobilenet_v3_small",
        }
    }

    /// The variant called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    fn setting(self) -> &'static [BlockSetting] {
        match self {
            Self::Large => &LARGE_SETTING,
            Self::Small => &SMALL_SETTING,
        }
    }

    /// Six times the last block's width: the last conv's width and the embedding width.
    fn last_conv_channels(self) -> i64 {
        match self {
            Self::Large => 960,
            Self::Small => 576,
        }
    }

    /// Width of the classifier's hidden layer.
    fn last_channel(self) -> i64 {
        match self {
            Self::Large => 1280,
            Self::Small => 1024,
        }
    }

    /// Indices into `features` after which a new output stride (2, 4, 8, 16, 32) is
    /// reached.
    fn feature_taps(self) -> [usize; 5] {
        match self {
            Self::Large => [1, 3, 6, 12, 16],
            Self::Small => [0, 1, 3, 8, 12],
        }
    }
}

/// torchvision's `Conv2dNormActivation` with MobileNetV3's batch norm: conv at `p.0`,
/// norm at `p.1`.
fn conv_bn(p: nn::Path, spec: ConvSpec, activation: Activation) -> ConvBnMomentum {
    let conv_bn = ConvBn::new(&p / 0, &p / 1, spec, BN_EPS, activation);
    ConvBnMomentum::new(conv_bn, BN_MOMENTUM)
}

/// One inverted residual block: optional 1x1 expansion, depthwise conv, optional
/// squeeze-excitation, 1x1 projection, with a residual when the shape is kept.
#[derive(Debug)]
struct InvertedResidual {
    expand: Option<ConvBnMomentum>,
    depthwise: ConvBnMomentum,
    se: Option<SqueezeExcitation>,
    project: ConvBnMomentum,
    use_res_connect: bool,
}

impl InvertedResidual {
    fn new(p: nn::Path, cnf: BlockSetting) -> Self {
        let (input, kernel, expanded, out, use_se, use_hs, stride) = cnf;
        let activation = if use_hs {
            Activation::Hardswish
        } else {
            Activation::Relu
        };
        let block = &p / "block";
        let mut index = 0;
        let expand = (expanded != input).then(|| {
            index += 1;
            conv_bn(&block / 0, ConvSpec::new(input, expanded, 1), activation)
        });
        let depthwise = conv_bn(
            &block / index,
            ConvSpec::new(expanded, expanded, kernel)
                .stride(stride)
                .depthwise(),
            activation,
        );
        index += 1;
        let se = use_se.then(|| {
            let se = SqueezeExcitation::new(
                &block / index,
                expanded,
                make_divisible((expanded / 4) as f64, 8),
                Activation::Relu,
                Activation::Hardsigmoid,
            );
            index += 1;
            se
        });
        let project = conv_bn(
            &block / index,
            ConvSpec::new(expanded, out, 1),
            Activation::Identity,
        );
        Self {
            expand,
            depthwise,
            se,
            project,
            use_res_connect: stride == 1 && input == out,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        let ys = match &self.expand {
            Some(expand) => expand.forward_t(xs, train)?,
            None => xs.shallow_clone(),
        };
        let mut ys = self.depthwise.forward_t(&ys, train)?;
        if let Some(se) = &self.se {
            ys = se.forward(&ys)?;
        }
        let ys = self.project.forward_t(&ys, train)?;
        if self.use_res_connect {
            ys.f_add(xs)
        } else {
            Ok(ys)
        }
    }
}

#[derive(Debug)]
enum Stage {
    Conv(Box<ConvBnMomentum>),
    Block(Box<InvertedResidual>),
}

/// The classifier: `classifier.0` Linear (960 -> 1280 for Large), Hardswish, Dropout,
/// `classifier.3`.
#[derive(Debug)]
struct Classifier {
    hidden: nn::Linear,
    output: nn::Linear,
}

/// A torchvision MobileNetV3 with width multiplier 1.0.
#[derive(Debug)]
pub struct MobileNetV3 {
    info: BackboneInfo,
    feature_taps: [usize; 5],
    features: Vec<Stage>,
    classifier: Option<Classifier>,
}

impl MobileNetV3 {
    /// The facts of a variant (no shipped pretrained weights).
    pub fn info_for(variant: MobileNetV3Variant) -> BackboneInfo {
        BackboneInfo {
            name: variant.name(),
            family: "MobileNetV3",
            input_size_px: 224,
            normalization: Normalization::IMAGENET,
            embedding_dim: variant.last_conv_channels(),
            pretrained: None,
        }
    }

    /// Builds `variant` under `p`; `classes` adds the two-layer classifier.
    pub fn new(p: nn::Path, variant: MobileNetV3Variant, classes: Option<i64>) -> Self {
        let setting = variant.setting();
        let last_conv = variant.last_conv_channels();
        let f = &p / "features";
        let mut features = vec![Stage::Conv(Box::new(conv_bn(
            &f / 0,
            ConvSpec::new(3, STEM_CHANNELS, 3).stride(2),
            Activation::Hardswish,
        )))];
        for &cnf in setting {
            let block = InvertedResidual::new(&f / features.len(), cnf);
            features.push(Stage::Block(Box::new(block)));
        }
        let last_input = setting.last().map_or(STEM_CHANNELS, |cnf| cnf.3);
        features.push(Stage::Conv(Box::new(conv_bn(
            &f / features.len(),
            ConvSpec::new(last_input, last_conv, 1),
            Activation::Hardswish,
        ))));
        let classifier = classes.map(|classes| {
            let c = &p / "classifier";
            Classifier {
                hidden: nn::linear(
                    &c / 0,
                    last_conv,
                    variant.last_channel(),
                    Default::default(),
                ),
                output: nn::linear(&c / 3, variant.last_channel(), classes, Default::default()),
            }
        });
        Self {
            info: Self::info_for(variant),
            feature_taps: variant.feature_taps(),
            features,
            classifier,
        }
    }
}

impl Backbone for MobileNetV3 {
    fn info(&self) -> &BackboneInfo {
        &self.info
    }

    fn forward_t(&self, images: &Tensor, train: bool) -> Result<BackboneOutput, ModelError> {
        let mut xs = images.shallow_clone();
        let mut taps = Vec::with_capacity(self.feature_taps.len());
        for (index, stage) in self.features.iter().enumerate() {
            xs = match stage {
                Stage::Conv(layer) => layer.forward_t(&xs, train)?,
                Stage::Block(block) => block.forward_t(&xs, train)?,
            };
            if self.feature_taps.contains(&index) {
                taps.push(xs.shallow_clone());
            }
        }
        let embedding = global_avg_pool(&xs)?;
        let logits = match &self.classifier {
            Some(head) => {
                let hidden = linear(&head.hidden, &embedding)?.f_hardswish()?;
                Some(linear(&head.output, &hidden.f_dropout(DROPOUT, train)?)?)
            }
            None => None,
        };
        Ok(BackboneOutput {
            features: taps,
            embedding,
            logits,
        })
    }
}
