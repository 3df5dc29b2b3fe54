//! DenseNet-121, -161, -169 and -201 (Huang et al., 2017, "Densely Connected Convolutional
//! Networks") with
//! torchvision's state-dict key names (`features.conv0`, `features.norm0`,
//! `features.denseblockB.denselayerL.norm1/conv1/norm2/conv2`, `features.transitionT.norm/conv`,
//! `features.norm5`, `classifier`), following `torchvision/models/densenet.py`
//! (BSD-3-Clause), without its memory-efficient checkpointing (drop rate 0, as torchvision's
//! builders).
//! No pretrained weights are shipped; torchvision-format weights can be imported.

use tch::{Tensor, nn};

use super::ModelError;
use super::backbone::{Backbone, BackboneInfo, BackboneOutput, Normalization};
use super::layers::{Activation, ConvBn, ConvSpec, batch_norm, conv2d, global_avg_pool, linear};

/// Bottleneck width of a dense layer's 1x1 conv, in multiples of the growth rate.
const BN_SIZE: i64 = 4;
const BN_EPS: f64 = 1e-5;

/// The DenseNet variants of torchvision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenseNetVariant {
    /// Growth 32, blocks `[6, 12, 24, 16]`, 64 stem channels.
    DenseNet121,
    /// Growth 48, blocks `[6, 12, 36, 24]`, 96 stem channels.
    DenseNet161,
    /// Growth 32, blocks `[6, 12, 32, 32]`, 64 stem channels.
    DenseNet169,
    /// Growth 32, blocks `[6, 12, 48, 32]`, 64 stem channels.
    DenseNet201,
}

impl DenseNetVariant {
    /// Every variant, in torchvision's order.
    pub const ALL: [DenseNetVariant; 4] = [
        Self::DenseNet121,
        Self::DenseNet161,
        Self::DenseNet169,
        Self::DenseNet201,
    ];

    /// Name used in projects and on the command line (torchvision's builder name).
    pub fn name(self) -> &'static str {
        match self {
            Self::DenseNet121 => "densenet121",
            Self::DenseNet161 => "densenet161",
            Self::DenseNet169 => "densenet169",
            Self::DenseNet201 => "densenet201",
        }
    }

    /// The variant called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    fn growth_rate(self) -> i64 {
        if self == Self::DenseNet161 { 48 } else { 32 }
    }

    fn init_features(self) -> i64 {
        if self == Self::DenseNet161 { 96 } else { 64 }
    }

    fn blocks(self) -> [i64; 4] {
        match self {
            Self::DenseNet121 => [6, 12, 24, 16],
            Self::DenseNet161 => [6, 12, 36, 24],
            Self::DenseNet169 => [6, 12, 32, 32],
            Self::DenseNet201 => [6, 12, 48, 32],
        }
    }

    /// Width of the final feature map (and of the embedding).
    fn num_features(self) -> i64 {
        let mut channels = self.init_features();
        let blocks = self.blocks();
        for (index, layers) in blocks.iter().enumerate() {
            channels += layers * self.growth_rate();
            if index + 1 < blocks.len() {
                channels /= 2;
            }
        }
        channels
    }
}

/// Batch norm, ReLU and a bias-free convolution (DenseNet's pre-activation order).
#[derive(Debug)]
struct NormReluConv {
    norm: nn::BatchNorm,
    conv: nn::Conv2D,
    padding: i64,
}

impl NormReluConv {
    fn new(norm: nn::Path, conv: nn::Path, in_channels: i64, out_channels: i64, k: i64) -> Self {
        let conv_config = nn::ConvConfig {
            padding: (k - 1) / 2,
            bias: false,
            ..Default::default()
        };
        let norm_config = nn::BatchNormConfig {
            eps: BN_EPS,
            ..Default::default()
        };
        Self {
            norm: nn::batch_norm2d(norm, in_channels, norm_config),
            conv: nn::conv2d(conv, in_channels, out_channels, k, conv_config),
            padding: (k - 1) / 2,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        let ys = batch_norm(&self.norm, xs, train, BN_EPS)?.f_relu()?;
        conv2d(&self.conv, &ys, 1, self.padding, 1)
    }
}

/// One dense layer: norm1-relu-conv1 (1x1) then norm2-relu-conv2 (3x3) on the concatenation
/// of every earlier output of its block; it adds the growth rate's channels.
#[derive(Debug)]
struct DenseLayer {
    bottleneck: NormReluConv,
    conv: NormReluConv,
}

impl DenseLayer {
    fn new(p: nn::Path, in_channels: i64, growth_rate: i64) -> Self {
        let width = BN_SIZE * growth_rate;
        Self {
            bottleneck: NormReluConv::new(&p / "norm1", &p / "conv1", in_channels, width, 1),
            conv: NormReluConv::new(&p / "norm2", &p / "conv2", width, growth_rate, 3),
        }
    }
}

/// A dense block followed, except after the last one, by a transition that halves the
/// channels (norm-relu-conv 1x1) and the resolution (2x2 average pooling).
#[derive(Debug)]
struct Stage {
    layers: Vec<DenseLayer>,
    transition: Option<NormReluConv>,
}

impl Stage {
    /// Runs the dense block; returns its output (before the transition).
    fn dense_block(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        let mut inputs = vec![xs.shallow_clone()];
        for layer in &self.layers {
            let concatenated = Tensor::f_cat(&inputs, 1)?;
            let ys = layer.bottleneck.forward_t(&concatenated, train)?;
            inputs.push(layer.conv.forward_t(&ys, train)?);
        }
        Tensor::f_cat(&inputs, 1)
    }

    fn transition(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        match &self.transition {
            Some(transition) => transition.forward_t(xs, train)?.f_avg_pool2d(
                [2, 2],
                [2, 2],
                [0, 0],
                false,
                true,
                None::<i64>,
            ),
            None => Ok(xs.shallow_clone()),
        }
    }
}

/// A torchvision DenseNet.
#[derive(Debug)]
pub struct DenseNet {
    info: BackboneInfo,
    stem: ConvBn,
    stages: Vec<Stage>,
    norm5: nn::BatchNorm,
    classifier: Option<nn::Linear>,
}

impl DenseNet {
    /// The facts of a variant (no shipped pretrained weights).
    pub fn info_for(variant: DenseNetVariant) -> BackboneInfo {
        BackboneInfo {
            name: variant.name(),
            family: "DenseNet",
            input_size_px: 224,
            normalization: Normalization::IMAGENET,
            embedding_dim: variant.num_features(),
            pretrained: None,
        }
    }

    /// Builds `variant` under `p`; `classes` adds the `classifier` linear head.
    pub fn new(p: nn::Path, variant: DenseNetVariant, classes: Option<i64>) -> Self {
        let growth_rate = variant.growth_rate();
        let f = &p / "features";
        let stem = ConvBn::new(
            &f / "conv0",
            &f / "norm0",
            ConvSpec::new(3, variant.init_features(), 7).stride(2),
            BN_EPS,
            Activation::Relu,
        );
        let blocks = variant.blocks();
        let mut channels = variant.init_features();
        let mut stages = Vec::with_capacity(blocks.len());
        for (index, num_layers) in blocks.into_iter().enumerate() {
            let block = &f / format!("denseblock{}", index + 1);
            let layers = (0..num_layers)
                .map(|l| {
                    DenseLayer::new(
                        &block / format!("denselayer{}", l + 1),
                        channels + l * growth_rate,
                        growth_rate,
                    )
                })
                .collect();
            channels += num_layers * growth_rate;
            let transition = (index + 1 < blocks.len()).then(|| {
                let t = &f / format!("transition{}", index + 1);
                let transition =
                    NormReluConv::new(&t / "norm", &t / "conv", channels, channels / 2, 1);
                channels /= 2;
                transition
            });
            stages.push(Stage { layers, transition });
        }
        let norm_config = nn::BatchNormConfig {
            eps: BN_EPS,
            ..Default::default()
        };
        let norm5 = nn::batch_norm2d(&f / "norm5", channels, norm_config);
        let classifier = classes
            .map(|classes| nn::linear(&p / "classifier", channels, classes, Default::default()));
        Self {
            info: Self::info_for(variant),
            stem,
            stages,
            norm5,
            classifier,
        }
    }
}

impl Backbone for DenseNet {
    fn info(&self) -> &BackboneInfo {
        &self.info
    }

    fn forward_t(&self, images: &Tensor, train: bool) -> Result<BackboneOutput, ModelError> {
        let stem = self.stem.forward_t(images, train)?;
        let mut xs = stem.f_max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)?;
        let mut features = Vec::with_capacity(self.stages.len() + 1);
        features.push(stem);
        for (index, stage) in self.stages.iter().enumerate() {
            let block = stage.dense_block(&xs, train)?;
            xs = stage.transition(&block, train)?;
            // The last block's tap is taken after norm5 and the ReLU, below.
            if index + 1 < self.stages.len() {
                features.push(block);
            }
        }
        let xs = batch_norm(&self.norm5, &xs, train, BN_EPS)?.f_relu()?;
        let embedding = global_avg_pool(&xs)?;
        features.push(xs);
        let logits = match &self.classifier {
            Some(classifier) => Some(linear(classifier, &embedding)?),
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
    fn embedding_width_and_strides() {
        // A 64 px input keeps this fast; the last map is then 2x2.
        let vs = VarStore::new(Device::Cpu);
        let model = DenseNet::new(vs.root(), DenseNetVariant::DenseNet121, None);
        let images = Tensor::zeros([1, 3, 64, 64], (Kind::Float, Device::Cpu));
        let out = model.forward_t(&images, false).unwrap();
        assert_eq!(out.embedding.size(), vec![1, 1024]);
        let widths = DenseNetVariant::ALL.map(|v| DenseNet::info_for(v).embedding_dim);
        assert_eq!(widths, [1024, 2208, 1664, 1920]);
        assert!(out.logits.is_none());
        let shapes: Vec<(i64, i64)> = out
            .features
            .iter()
            .map(|f| (f.size()[1], f.size()[2]))
            .collect();
        assert_eq!(
            shapes,
            vec![(64, 32), (256, 16), (512, 8), (1024, 4), (1024, 2)]
        );
    }
}
