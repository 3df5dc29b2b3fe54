//! ResNet-18/34/50/101/152 (He et al., 2016, "Deep Residual Learning for Image
//! Recognition"), ResNeXt (Xie et al., 2017: grouped 3x3 convolutions) and Wide ResNet
//! (Zagoruyko & Komodakis, 2016: twice the bottleneck width) with torchvision's state-dict
//! key names (`conv1`, `bn1`, `layerL.B.conv1`, `layerL.B.downsample.0/1`, `fc`), following
//! `torchvision/models/resnet.py` (BSD-3-Clause). The bottleneck variants are torchvision's
//! "v1.5": the bottleneck strides on its 3x3 convolution, not on the first 1x1.
//! No pretrained weights are shipped; torchvision-format weights can be imported.

use tch::{Tensor, nn};

use super::ModelError;
use super::backbone::{Backbone, BackboneInfo, BackboneOutput, Normalization};
use super::layers::{Activation, ConvBn, ConvSpec, global_avg_pool, linear};

const STEM_CHANNELS: i64 = 64;
/// Base widths of `layer1` .. `layer4` (before the block's expansion).
const STAGE_PLANES: [i64; 4] = [64, 128, 256, 512];
const BN_EPS: f64 = 1e-5;

/// The ResNet variants this build knows (torchvision's builders).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResNetVariant {
    /// Basic blocks, `[2, 2, 2, 2]`.
    ResNet18,
    /// Basic blocks, `[3, 4, 6, 3]`.
    ResNet34,
    /// Bottleneck blocks, `[3, 4, 6, 3]`.
    ResNet50,
    /// Bottleneck blocks, `[3, 4, 23, 3]`.
    ResNet101,
    /// Bottleneck blocks, `[3, 8, 36, 3]`.
    ResNet152,
    /// ResNet-50's blocks, 32 groups of 4 channels per base width of 64.
    ResNeXt50_32x4d,
    /// ResNet-101's blocks, 32 groups of 8.
    ResNeXt101_32x8d,
    /// ResNet-101's blocks, 64 groups of 4.
    ResNeXt101_64x4d,
    /// ResNet-50's blocks, bottlenecks twice as wide.
    WideResNet50_2,
    /// ResNet-101's blocks, bottlenecks twice as wide.
    WideResNet101_2,
}

impl ResNetVariant {
    /// Every variant, in torchvision's order.
    pub const ALL: [ResNetVariant; 10] = [
        Self::ResNet18,
        Self::ResNet34,
        Self::ResNet50,
        Self::ResNet101,
        Self::ResNet152,
        Self::ResNeXt50_32x4d,
        Self::ResNeXt101_32x8d,
        Self::ResNeXt101_64x4d,
        Self::WideResNet50_2,
        Self::WideResNet101_2,
    ];

    /// Name used in projects and on the command line (torchvision's builder name).
    pub fn name(self) -> &'static str {
        match self {
            Self::ResNet18 => "resnet18",
            Self::ResNet34 => "resnet34",
            Self::ResNet50 => "resnet50",
            Self::ResNet101 => "resnet101",
            Self::ResNet152 => "resnet152",
            Self::ResNeXt50_32x4d => "resnext50_32x4d",
            Self::ResNeXt101_32x8d => "resnext101_32x8d",
            Self::ResNeXt101_64x4d => "resnext101_64x4d",
            Self::WideResNet50_2 => "wide_resnet50_2",
            Self::WideResNet101_2 => "wide_resnet101_2",
        }
    }

    /// The variant called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    /// Blocks per stage `layer1` .. `layer4`.
    fn blocks(self) -> [i64; 4] {
        match self {
            Self::ResNet18 => [2, 2, 2, 2],
            Self::ResNet34 | Self::ResNet50 | Self::ResNeXt50_32x4d | Self::WideResNet50_2 => {
                [3, 4, 6, 3]
            }
            Self::ResNet101
            | Self::ResNeXt101_32x8d
            | Self::ResNeXt101_64x4d
            | Self::WideResNet101_2 => [3, 4, 23, 3],
            Self::ResNet152 => [3, 8, 36, 3],
        }
    }

    fn bottleneck(self) -> bool {
        !matches!(self, Self::ResNet18 | Self::ResNet34)
    }

    /// Groups of the bottleneck's 3x3 convolution and channels per group at a base width
    /// of 64 (torchvision's `groups` and `width_per_group`).
    fn groups_and_width(self) -> (i64, i64) {
        match self {
            Self::ResNeXt50_32x4d => (32, 4),
            Self::ResNeXt101_32x8d => (32, 8),
            Self::ResNeXt101_64x4d => (64, 4),
            Self::WideResNet50_2 | Self::WideResNet101_2 => (1, 128),
            _ => (1, 64),
        }
    }

    /// Output channels of a block per base width.
    fn expansion(self) -> i64 {
        if self.bottleneck() { 4 } else { 1 }
    }
}

/// A residual block: basic (two 3x3 convs) or bottleneck (1x1, 3x3, 1x1), whose last
/// conv has no activation, followed by the residual addition and a ReLU.
#[derive(Debug)]
struct Block {
    convs: Vec<ConvBn>,
    downsample: Option<ConvBn>,
}

impl Block {
    fn basic(p: &nn::Path, inplanes: i64, planes: i64, stride: i64) -> Vec<ConvBn> {
        vec![
            ConvBn::new(
                p / "conv1",
                p / "bn1",
                ConvSpec::new(inplanes, planes, 3).stride(stride),
                BN_EPS,
                Activation::Relu,
            ),
            ConvBn::new(
                p / "conv2",
                p / "bn2",
                ConvSpec::new(planes, planes, 3),
                BN_EPS,
                Activation::Identity,
            ),
        ]
    }

    fn bottleneck(
        p: &nn::Path,
        variant: ResNetVariant,
        inplanes: i64,
        planes: i64,
        stride: i64,
    ) -> Vec<ConvBn> {
        let (groups, width_per_group) = variant.groups_and_width();
        let width = planes * width_per_group / 64 * groups;
        vec![
            ConvBn::new(
                p / "conv1",
                p / "bn1",
                ConvSpec::new(inplanes, width, 1),
                BN_EPS,
                Activation::Relu,
            ),
            ConvBn::new(
                p / "conv2",
                p / "bn2",
                ConvSpec::new(width, width, 3).stride(stride).groups(groups),
                BN_EPS,
                Activation::Relu,
            ),
            ConvBn::new(
                p / "conv3",
                p / "bn3",
                ConvSpec::new(width, planes * 4, 1),
                BN_EPS,
                Activation::Identity,
            ),
        ]
    }

    fn new(p: nn::Path, variant: ResNetVariant, inplanes: i64, planes: i64, stride: i64) -> Self {
        let convs = if variant.bottleneck() {
            Self::bottleneck(&p, variant, inplanes, planes, stride)
        } else {
            Self::basic(&p, inplanes, planes, stride)
        };
        let outplanes = planes * variant.expansion();
        let downsample = (stride != 1 || inplanes != outplanes).then(|| {
            ConvBn::torchvision(
                &p / "downsample",
                ConvSpec::new(inplanes, outplanes, 1).stride(stride),
                Activation::Identity,
            )
        });
        Self { convs, downsample }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        let mut ys = xs.shallow_clone();
        for conv in &self.convs {
            ys = conv.forward_t(&ys, train)?;
        }
        let identity = match &self.downsample {
            Some(downsample) => downsample.forward_t(xs, train)?,
            None => xs.shallow_clone(),
        };
        ys.f_add(&identity)?.f_relu()
    }
}

/// A torchvision ResNet, ResNeXt or Wide ResNet.
#[derive(Debug)]
pub struct ResNet {
    info: BackboneInfo,
    stem: ConvBn,
    layers: Vec<Vec<Block>>,
    fc: Option<nn::Linear>,
}

impl ResNet {
    /// The facts of a variant (no shipped pretrained weights).
    pub fn info_for(variant: ResNetVariant) -> BackboneInfo {
        BackboneInfo {
            name: variant.name(),
            family: "ResNet",
            input_size_px: 224,
            normalization: Normalization::IMAGENET,
            embedding_dim: STAGE_PLANES[3] * variant.expansion(),
            pretrained: None,
        }
    }

    /// Builds the network under `p`; `classes` adds the `fc` linear head.
    pub fn new(p: nn::Path, variant: ResNetVariant, classes: Option<i64>) -> Self {
        let stem = ConvBn::new(
            &p / "conv1",
            &p / "bn1",
            ConvSpec::new(3, STEM_CHANNELS, 7).stride(2),
            BN_EPS,
            Activation::Relu,
        );
        let mut inplanes = STEM_CHANNELS;
        let mut layers = Vec::with_capacity(STAGE_PLANES.len());
        for (stage, (planes, blocks)) in STAGE_PLANES.iter().zip(variant.blocks()).enumerate() {
            let layer = &p / format!("layer{}", stage + 1);
            let first_stride = if stage == 0 { 1 } else { 2 };
            let mut stage_blocks = Vec::new();
            for index in 0..blocks {
                let stride = if index == 0 { first_stride } else { 1 };
                let block = Block::new(&layer / index, variant, inplanes, *planes, stride);
                stage_blocks.push(block);
                inplanes = planes * variant.expansion();
            }
            layers.push(stage_blocks);
        }
        let fc =
            classes.map(|classes| nn::linear(&p / "fc", inplanes, classes, Default::default()));
        Self {
            info: Self::info_for(variant),
            stem,
            layers,
            fc,
        }
    }
}

impl Backbone for ResNet {
    fn info(&self) -> &BackboneInfo {
        &self.info
    }

    fn forward_t(&self, images: &Tensor, train: bool) -> Result<BackboneOutput, ModelError> {
        let stem = self.stem.forward_t(images, train)?;
        let mut xs = stem.f_max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)?;
        let mut features = Vec::with_capacity(self.layers.len() + 1);
        features.push(stem);
        for layer in &self.layers {
            for block in layer {
                xs = block.forward_t(&xs, train)?;
            }
            features.push(xs.shallow_clone());
        }
        let embedding = global_avg_pool(&xs)?;
        let logits = match &self.fc {
            Some(fc) => Some(linear(fc, &embedding)?),
            None => None,
        };
        Ok(BackboneOutput {
            features,
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
    fn embedding_width_and_strides_follow_the_variant() {
        // A 64 px input keeps this fast; layer4 then has a 2x2 map.
        for (variant, width) in [
            (ResNetVariant::ResNet18, 512),
            (ResNetVariant::ResNet50, 2048),
        ] {
            let vs = VarStore::new(Device::Cpu);
            let model = ResNet::new(vs.root(), variant, None);
            let images = Tensor::zeros([1, 3, 64, 64], (Kind::Float, Device::Cpu));
            let out = model.forward_t(&images, false).unwrap();
            assert_eq!(out.embedding.size(), vec![1, width]);
            assert_eq!(model.info().embedding_dim, width);
            assert!(out.logits.is_none());
            let sizes: Vec<i64> = out.features.iter().map(|f| f.size()[2]).collect();
            assert_eq!(sizes, vec![32, 16, 8, 4, 2]);
        }
    }
}
