//! The one backbone abstraction used downstream: an image batch gives multi-scale feature
//! maps, a pooled embedding and, when the weights carry one, the original classifier's logits.

use tch::{Tensor, nn};

use super::{
    ModelError, convnext::ConvNeXt, efficientnet::EfficientNet, mobilenet_v2::MobileNetV2,
    mobilenet_v3::MobileNetV3,
};

/// Per-channel normalisation applied to `[0, 1]` RGB input.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Normalization {
    /// Channel means (R, G, B).
    pub mean: [f32; 3],
    /// Channel standard deviations (R, G, B).
    pub std: [f32; 3],
}

impl Normalization {
    /// torchvision's ImageNet statistics.
    pub const IMAGENET: Normalization = Normalization {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };
}

/// Where a backbone's pretrained weights come from.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PretrainedSource {
    /// File stem inside the asset cache's `weights/` folder.
    pub file_stem: &'static str,
    /// Where set-up takes them from.
    pub origin: &'static str,
    /// The weights' licence.
    pub licence: &'static str,
    /// Number of classes of the shipped head.
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
    vec![
        MobileNetV2::info_for(true),
        MobileNetV3::info_for(),
        EfficientNet::info_for(),
        ConvNeXt::info_for(),
    ]
}

/// Builds the named backbone's variables under `p`; with `with_head` the original
/// classifier (ImageNet, 1000 classes) is built too so pretrained logits are available.
pub fn build_backbone(
    name: &str,
    p: nn::Path,
    with_head: bool,
) -> Result<Box<dyn Backbone>, ModelError> {
    let classes = with_head.then_some(1000);
    match name {
        "mobilenet_v2" => Ok(Box::new(MobileNetV2::new(p, classes))),
        "mobilenet_v3_large" => Ok(Box::new(MobileNetV3::large(p, classes))),
        "efficientnet_b0" => Ok(Box::new(EfficientNet::b0(p, classes))),
        "convnext_tiny" => Ok(Box::new(ConvNeXt::tiny(p, classes))),
        other => Err(ModelError::UnknownBackbone(other.to_owned())),
    }
}
