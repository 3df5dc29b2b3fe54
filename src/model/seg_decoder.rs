//! A U-Net-style segmentation decoder over a backbone's multi-scale features, and the
//! [`SegmentationModel`] pairing the two. Original code for this project (no reference
//! implementation; the block layout follows the U-Net decoder of Ronneberger et al., 2015, as
//! popularised by segmentation_models.pytorch, MIT).
//!
//! The decoder starts at the coarsest feature map with a "bottleneck" block, then for each
//! finer map upsamples bilinearly to that map's size, concatenates it (skip connection) and
//! applies two 3x3 conv-BN-ReLU layers. A 1x1 convolution gives class logits at the finest
//! feature stride, bilinearly upsampled to the input size. Works for any number of maps and
//! any strides: five maps at strides 2..32 (MobileNetV2, EfficientNet(-Lite), ResNet,
//! DenseNet), four at 4..32 (ConvNeXt), or a single map at stride 16 (ViT).
//!
//! Channel widths are derived from the backbone's feature channels (each level's width is the
//! skip map's channel count clamped to `[min_width, max_width]`), found by one probing forward
//! pass when the model is built. Keys: `blocks.<level>.conv1.{0,1}`, `blocks.<level>.conv2.{0,1}`
//! (level 0 is the coarsest) and `head`.

use tch::{Kind, Tensor, nn};

use super::ModelError;
use super::backbone::Backbone;
use super::layers::{Activation, ConvBn, ConvSpec, conv2d};

/// Channel widths of the decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegDecoderConfig {
    /// Widest decoder level.
    pub max_width: i64,
    /// Narrowest decoder level.
    pub min_width: i64,
}

impl Default for SegDecoderConfig {
    fn default() -> Self {
        Self {
            max_width: 128,
            min_width: 16,
        }
    }
}

/// Two 3x3 conv-BN-ReLU layers.
#[derive(Debug)]
struct DecoderBlock {
    conv1: ConvBn,
    conv2: ConvBn,
}

impl DecoderBlock {
    fn new(p: nn::Path, in_channels: i64, out_channels: i64) -> Self {
        let conv1 = ConvBn::torchvision(
            &p / "conv1",
            ConvSpec::new(in_channels, out_channels, 3),
            Activation::Relu,
        );
        let conv2 = ConvBn::torchvision(
            &p / "conv2",
            ConvSpec::new(out_channels, out_channels, 3),
            Activation::Relu,
        );
        Self { conv1, conv2 }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        let ys = self.conv1.forward_t(xs, train)?;
        self.conv2.forward_t(&ys, train)
    }
}

/// The decoder: per-pixel class logits from fine-to-coarse feature maps.
#[derive(Debug)]
pub struct SegDecoder {
    /// Coarsest level first.
    blocks: Vec<DecoderBlock>,
    head: nn::Conv2D,
    feature_channels: Vec<i64>,
    classes: i64,
}

impl SegDecoder {
    /// Builds the decoder under `p` for feature maps with `feature_channels` (fine to coarse)
    /// and `classes` output channels.
    pub fn new(
        p: nn::Path,
        feature_channels: &[i64],
        classes: i64,
        config: SegDecoderConfig,
    ) -> Result<Self, ModelError> {
        let invalid = |reason: &str| ModelError::Config {
            model: "segmentation decoder".to_owned(),
            reason: reason.to_owned(),
        };
        if feature_channels.is_empty() || feature_channels.iter().any(|&c| c <= 0) {
            return Err(invalid("the backbone gives no usable feature maps"));
        }
        if classes <= 0 || config.min_width <= 0 || config.min_width > config.max_width {
            return Err(invalid("classes and widths must be positive, min <= max"));
        }
        let width = |c: i64| c.clamp(config.min_width, config.max_width);
        let blocks_path = &p / "blocks";
        let mut blocks = Vec::with_capacity(feature_channels.len());
        let mut previous: Option<i64> = None;
        for (level, &skip) in feature_channels.iter().rev().enumerate() {
            let in_channels = skip + previous.unwrap_or(0);
            let out_channels = width(skip);
            blocks.push(DecoderBlock::new(
                &blocks_path / level,
                in_channels,
                out_channels,
            ));
            previous = Some(out_channels);
        }
        let last = previous.unwrap_or(config.min_width);
        let head = nn::conv2d(&p / "head", last, classes, 1, Default::default());
        Ok(Self {
            blocks,
            head,
            feature_channels: feature_channels.to_vec(),
            classes,
        })
    }

    /// Number of output classes (logit channels).
    pub fn classes(&self) -> i64 {
        self.classes
    }

    /// Channels of the feature maps this decoder was built for (fine to coarse).
    pub fn feature_channels(&self) -> &[i64] {
        &self.feature_channels
    }

    /// Logits `[N, classes, height, width]` from `features` (fine to coarse).
    pub fn forward_t(
        &self,
        features: &[Tensor],
        output_size_px: [i64; 2],
        train: bool,
    ) -> Result<Tensor, ModelError> {
        let channels: Vec<i64> = features.iter().map(|f| f.size()[1]).collect();
        if channels != self.feature_channels {
            return Err(ModelError::Config {
                model: "segmentation decoder".to_owned(),
                reason: format!(
                    "built for feature channels {:?}, given {channels:?}",
                    self.feature_channels
                ),
            });
        }
        let mut xs: Option<Tensor> = None;
        for (block, skip) in self.blocks.iter().zip(features.iter().rev()) {
            let input = match xs {
                None => skip.shallow_clone(),
                Some(coarse) => {
                    let size = skip.size();
                    let up = resize(&coarse, [size[2], size[3]])?;
                    Tensor::f_cat(&[up, skip.shallow_clone()], 1)?
                }
            };
            xs = Some(block.forward_t(&input, train)?);
        }
        let xs = xs.ok_or_else(|| ModelError::Config {
            model: "segmentation decoder".to_owned(),
            reason: "no feature maps given".to_owned(),
        })?;
        let logits = conv2d(&self.head, &xs, 1, 0, 1)?;
        Ok(resize(&logits, output_size_px)?)
    }
}

/// Bilinear resize (half-pixel centres, `align_corners=False`); a no-op at the same size.
fn resize(xs: &Tensor, size_px: [i64; 2]) -> Result<Tensor, tch::TchError> {
    let current = xs.size();
    if current.get(2..4) == Some(&size_px[..]) {
        return Ok(xs.shallow_clone());
    }
    xs.f_upsample_bilinear2d(size_px, false, None, None)
}

/// The feature-map channels (fine to coarse) of `backbone`, found by one eval-mode forward
/// pass of a `probe_px x probe_px` black image on `device` without gradients.
pub fn probe_feature_channels(
    backbone: &dyn Backbone,
    probe_px: i64,
    device: tch::Device,
) -> Result<Vec<i64>, ModelError> {
    let images = Tensor::f_zeros([1, 3, probe_px, probe_px], (Kind::Float, device))?;
    let out = tch::no_grad(|| backbone.forward_t(&images, false))?;
    Ok(out.features.iter().map(|f| f.size()[1]).collect())
}

/// A backbone with a segmentation decoder: images `[N, 3, H, W]` to logits `[N, C, H, W]`.
pub struct SegmentationModel {
    /// The encoder.
    pub backbone: Box<dyn Backbone>,
    /// The decoder.
    pub decoder: SegDecoder,
}

impl SegmentationModel {
    /// Side of the probing image: a multiple of 32 (CNN strides) and of 16 (ViT patches).
    pub const PROBE_PX: i64 = 64;

    /// Builds a decoder under `p` (e.g. `vs.root() / "decoder"`, on the backbone's device)
    /// sized for `backbone`'s features, with `classes` output channels.
    pub fn new(
        p: nn::Path,
        backbone: Box<dyn Backbone>,
        classes: i64,
        config: SegDecoderConfig,
    ) -> Result<Self, ModelError> {
        let channels = probe_feature_channels(backbone.as_ref(), Self::PROBE_PX, p.device())?;
        let decoder = SegDecoder::new(p, &channels, classes, config)?;
        Ok(Self { backbone, decoder })
    }

    /// Per-pixel logits at the input resolution (batch-norm statistics update when `train`).
    pub fn forward_t(&self, images: &Tensor, train: bool) -> Result<Tensor, ModelError> {
        let size = images.size();
        let (height_px, width_px) = match size[..] {
            [_, _, h, w] => (h, w),
            _ => {
                return Err(ModelError::Config {
                    model: "segmentation model".to_owned(),
                    reason: format!("expected images [N, 3, H, W], got {size:?}"),
                });
            }
        };
        let out = self.backbone.forward_t(images, train)?;
        self.decoder
            .forward_t(&out.features, [height_px, width_px], train)
    }
}

#[cfg(test)]
mod tests {
    use tch::{Device, nn::VarStore};

    use super::*;
    use crate::model::build_backbone;
    use crate::model::layers::flops;

    fn output_shape(name: &str, size_px: [i64; 2]) -> (Vec<i64>, u64) {
        let vs = VarStore::new(Device::Cpu);
        let backbone = build_backbone(name, vs.root() / "backbone", false).unwrap();
        let model =
            SegmentationModel::new(vs.root() / "decoder", backbone, 3, Default::default()).unwrap();
        let images = Tensor::randn([2, 3, size_px[0], size_px[1]], (Kind::Float, Device::Cpu));
        let (logits, macs) = flops::count(|| tch::no_grad(|| model.forward_t(&images, false)));
        (logits.unwrap().size(), macs)
    }

    #[test]
    fn logits_have_input_resolution_for_cnn_and_vit_backbones() {
        let cases = [
            ("mobilenet_v2", [96, 96]),
            ("resnet18", [64, 64]),
            ("vit_tiny_16", [64, 64]),
            // Non-square, and not a multiple of 32: odd-sized coarse maps are resized to fit.
            ("resnet18", [80, 112]),
        ];
        for (name, size_px) in cases {
            let (shape, macs) = output_shape(name, size_px);
            assert_eq!(shape, vec![2, 3, size_px[0], size_px[1]], "{name}");
            assert!(macs > 0, "{name} records no multiply-adds");
        }
    }

    #[test]
    fn decoder_keys_and_widths_follow_the_features() {
        let vs = VarStore::new(Device::Cpu);
        let decoder =
            SegDecoder::new(vs.root(), &[16, 24, 32, 96, 1280], 2, Default::default()).unwrap();
        assert_eq!(decoder.classes(), 2);
        let vars = vs.variables();
        // Coarsest block: 1280 -> 128; finest: 16 + 24 -> 16.
        assert_eq!(
            vars["blocks.0.conv1.0.weight"].size(),
            vec![128, 1280, 3, 3]
        );
        assert_eq!(vars["blocks.4.conv1.0.weight"].size(), vec![16, 40, 3, 3]);
        assert_eq!(vars["head.weight"].size(), vec![2, 16, 1, 1]);
        assert!(vars.contains_key("blocks.2.conv2.1.running_var"));
        let bad = VarStore::new(Device::Cpu);
        assert!(SegDecoder::new(bad.root(), &[], 2, Default::default()).is_err());
    }
}
