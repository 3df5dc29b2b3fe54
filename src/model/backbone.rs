//! The one backbone abstraction used downstream: an image batch gives multi-scale feature
//! maps, a pooled embedding and, when the weights carry one, the original classifier's logits.

use tch::{Tensor, nn};

use super::ModelError;
use super::convnext::{ConvNeXt, ConvNeXtVariant};
use super::darknet_tiny::{self, DarknetTiny};
use super::densenet::{DenseNet, DenseNetVariant};
use super::dinov2::{self, Dinov2};
use super::efficientnet::{EfficientNet, EfficientNetVariant};
use super::efficientnet_lite::{EfficientNetLite, LiteVariant};
use super::inception_v3::InceptionV3;
use super::mobilenet_v2::MobileNetV2;
use super::mobilenet_v3::{MobileNetV3, MobileNetV3Variant};
use super::resnet::{ResNet, ResNetVariant};
use super::swin::{Swin, SwinConfig};
use super::vgg::{Vgg, VggVariant};
use super::vit::{VisionTransformer, VitConfig};
use super::xception::{self, Xception};

/// A backbone's input normalisation is data preparation; it lives in [`crate::data`].
pub use crate::data::preprocess::Normalization;

/// Where a backbone's pretrained weights come from.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PretrainedSource {
    /// File stem inside the asset cache's `weights/` folder.
    pub file_stem: &'static str,
    /// Where set-up takes them from.
    pub origin: &'static str,
    /// The weights' licence.
    pub licence: &'static str,
    /// Number of classes of the shipped head; 0 when only the encoder is shipped.
    pub classes: i64,
}

/// The facts a backbone tells about itself.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BackboneInfo {
    /// Name used in projects and on the command line.
    pub name: &'static str,
    /// Architecture family.
    pub family: &'static str,
    /// Native square input size.
    pub input_size_px: u32,
    /// Input normalisation.
    pub normalization: Normalization,
    /// Width of the pooled embedding.
    pub embedding_dim: i64,
    /// Shipped pretrained weights, if any.
    pub pretrained: Option<PretrainedSource>,
}

/// What one forward pass of a backbone yields.
#[derive(Debug)]
pub struct BackboneOutput {
    /// Feature maps from fine to coarse (strides 2, 4, 8, 16, 32 where the family has them).
    pub features: Vec<Tensor>,
    /// Pooled embedding `[N, embedding_dim]`.
    pub embedding: Tensor,
    /// Logits of the original classifier head, when built with one.
    pub logits: Option<Tensor>,
}

/// An image encoder. Inputs are normalised `[N, 3, H, W]` float tensors.
pub trait Backbone: Send {
    /// The backbone's facts.
    fn info(&self) -> &BackboneInfo;
    /// Runs the encoder (batch-norm statistics are updated when `train`).
    fn forward_t(&self, images: &Tensor, train: bool) -> Result<BackboneOutput, ModelError>;
}

/// Every backbone this build knows, with its facts.
pub fn known_backbones() -> Vec<BackboneInfo> {
    let mut known = vec![MobileNetV2::info_for(true)];
    known.extend(LiteVariant::ALL.into_iter().map(EfficientNetLite::info_for));
    known.extend(MobileNetV3Variant::ALL.map(MobileNetV3::info_for));
    known.extend(EfficientNetVariant::ALL.map(EfficientNet::info_for));
    known.extend(ResNetVariant::ALL.map(ResNet::info_for));
    known.extend(DenseNetVariant::ALL.map(DenseNet::info_for));
    known.extend(ConvNeXtVariant::ALL.map(ConvNeXt::info_for));
    known.extend(VitConfig::NAMED.iter().map(VisionTransformer::info_for));
    known.push(Dinov2::info_for());
    known.extend(VggVariant::ALL.map(Vgg::info_for));
    known.push(Xception::info_for());
    known.push(DarknetTiny::info_for());
    known.extend(SwinConfig::NAMED.iter().map(Swin::info_for));
    known.push(InceptionV3::info_for());
    known
}

/// Builds the named backbone's variables under `p`; with `with_head` the original
/// classifier (ImageNet, 1000 classes) is built too so pretrained logits are available.
pub fn build_backbone(
    name: &str,
    p: nn::Path,
    with_head: bool,
) -> Result<Box<dyn Backbone>, ModelError> {
    // The original heads are all ImageNet classifiers.
    let head = with_head.then_some(1000);
    if let Some(variant) = LiteVariant::from_name(name) {
        return Ok(Box::new(EfficientNetLite::new(p, variant, head)));
    }
    if let Some(variant) = VggVariant::from_name(name) {
        return Ok(Box::new(Vgg::new(p, variant, head)));
    }
    if let Some(variant) = ResNetVariant::from_name(name) {
        return Ok(Box::new(ResNet::new(p, variant, head)));
    }
    if let Some(variant) = ConvNeXtVariant::from_name(name) {
        return Ok(Box::new(ConvNeXt::new(p, variant, head)));
    }
    if let Some(variant) = MobileNetV3Variant::from_name(name) {
        return Ok(Box::new(MobileNetV3::new(p, variant, head)));
    }
    if let Some(config) = VitConfig::by_name(name) {
        return Ok(Box::new(VisionTransformer::new(p, config, head)?));
    }
    if let Some(variant) = EfficientNetVariant::from_name(name) {
        return Ok(Box::new(EfficientNet::new(p, variant, head)));
    }
    if let Some(variant) = DenseNetVariant::from_name(name) {
        return Ok(Box::new(DenseNet::new(p, variant, head)));
    }
    if let Some(config) = SwinConfig::by_name(name) {
        return Ok(Box::new(Swin::new(p, config, head)?));
    }
    match name {
        "mobilenet_v2" => Ok(Box::new(MobileNetV2::new(p, head))),
        xception::NAME => Ok(Box::new(Xception::new(p, head))),
        "inception_v3" => Ok(Box::new(InceptionV3::new(p, head))),
        // A COCO detector's body: no image classifier to build.
        darknet_tiny::NAME => Ok(Box::new(DarknetTiny::new(p))),
        // A self-supervised encoder: there is no image classifier to build.
        dinov2::NAME => Ok(Box::new(Dinov2::new(p)?)),
        other => Err(ModelError::UnknownBackbone(other.to_owned())),
    }
}
