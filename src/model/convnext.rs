//! ConvNeXt Tiny, Small, Base and Large (Liu et al., 2022) with torchvision's state-dict
//! key names
//! (`features.N...`, `layer_scale`, `classifier.0`, `classifier.2`), following
//! `torchvision/models/convnext.py` of torchvision 0.28 (BSD-3-Clause): layer norms with
//! eps 1e-6, exact GELU, layer scale initialised to 1e-6, stochastic depth in training
//! (0.1 for Tiny, 0.4 Small, 0.5 Base and Large).
//! No shipped pretrained weights.

use tch::{Tensor, nn};

use super::ModelError;
use super::backbone::{Backbone, BackboneInfo, BackboneOutput, Normalization};
use super::layers::{Activation, conv2d, linear, stochastic_depth};

const LAYER_NORM_EPS: f64 = 1e-6;
const LAYER_SCALE_INIT: f64 = 1e-6;

/// The ConvNeXt variants of torchvision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvNeXtVariant {
    /// Widths 96..768, blocks `[3, 3, 9, 3]`.
    Tiny,
    /// Widths 96..768, blocks `[3, 3, 27, 3]`.
    Small,
    /// Widths 128..1024, blocks `[3, 3, 27, 3]`.
    Base,
    /// Widths 192..1536, blocks `[3, 3, 27, 3]`.
    Large,
}

impl ConvNeXtVariant {
    /// Every variant, smallest first.
    pub const ALL: [ConvNeXtVariant; 4] = [Self::Tiny, Self::Small, Self::Base, Self::Large];

    /// Name used in projects and on the command line (torchvision's builder name).
    pub fn name(self) -> &'static str {
        match self {
            Self::Tiny => "convnext_tiny",
            Self::Small => "convnext_small",
            Self::Base => "convnext_base",
            Self::Large => "convnext_large",
        }
    }

    /// The variant called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    /// (channels, blocks) of the four stages; a 2x2 stride-2 downsampling to the next
    /// stage's width follows every stage but the last.
    fn stages(self) -> [(i64, i64); 4] {
        let width = match self {
            Self::Tiny | Self::Small => 96,
            Self::Base => 128,
            Self::Large => 192,
        };
        let deep = if self == Self::Tiny { 9 } else { 27 };
        [
            (width, 3),
            (2 * width, 3),
            (4 * width, deep),
            (8 * width, 3),
        ]
    }

    /// Stochastic depth of the last block (torchvision's `stochastic_depth_prob`).
    fn stochastic_depth_prob(self) -> f64 {
        match self {
            Self::Tiny => 0.1,
            Self::Small => 0.4,
            Self::Base | Self::Large => 0.5,
        }
    }
}
/// Indices into `features` after which a new output stride (4, 8, 16, 32) is reached.
const FEATURE_TAPS: [usize; 4] = [1, 3, 5, 7];

/// A layer norm over the last dimension (channels-last input).
fn layer_norm(p: nn::Path, channels: i64) -> nn::LayerNorm {
    let config = nn::LayerNormConfig {
        eps: LAYER_NORM_EPS,
        ..Default::default()
    };
    nn::layer_norm(p, vec![channels], config)
}

fn layer_norm_last(ln: &nn::LayerNorm, xs: &Tensor) -> Result<Tensor, tch::TchError> {
    xs.f_layer_norm(
        ln.normalized_shape.as_slice(),
        ln.ws.as_ref(),
        ln.bs.as_ref(),
        LAYER_NORM_EPS,
        true,
    )
}

/// torchvision's `LayerNorm2d`: a layer norm over the channels of an NCHW tensor.
fn layer_norm_2d(ln: &nn::LayerNorm, xs: &Tensor) -> Result<Tensor, tch::TchError> {
    layer_norm_last(ln, &xs.f_permute([0, 2, 3, 1])?)?.f_permute([0, 3, 1, 2])
}

/// A convolution with bias, no padding, kernel = stride (patchify stem and downsampling).
fn patchify_conv(p: nn::Path, in_channels: i64, out_channels: i64, kernel: i64) -> nn::Conv2D {
    let config = nn::ConvConfig {
        stride: kernel,
        ..Default::default()
    };
    nn::conv2d(p, in_channels, out_channels, kernel, config)
}

/// `CNBlock`: depthwise 7x7 conv, channels-last layer norm, 4x MLP with GELU, layer scale,
/// stochastic depth and residual.
#[derive(Debug)]
struct CnBlock {
    dim: i64,
    dwconv: nn::Conv2D,
    norm: nn::LayerNorm,
    pwconv1: nn::Linear,
    pwconv2: nn::Linear,
    layer_scale: Tensor,
    stochastic_depth_prob: f64,
}

impl CnBlock {
    fn new(p: nn::Path, dim: i64, stochastic_depth_prob: f64) -> Self {
        let block = &p / "block";
        let dwconv_config = nn::ConvConfig {
            padding: 3,
            groups: dim,
            ..Default::default()
        };
        Self {
            dim,
            dwconv: nn::conv2d(&block / 0, dim, dim, 7, dwconv_config),
            norm: layer_norm(&block / 2, dim),
            pwconv1: nn::linear(&block / 3, dim, 4 * dim, Default::default()),
            pwconv2: nn::linear(&block / 5, 4 * dim, dim, Default::default()),
            layer_scale: p.var(
                "layer_scale",
                &[dim, 1, 1],
                nn::Init::Const(LAYER_SCALE_INIT),
            ),
            stochastic_depth_prob,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        let ys = conv2d(&self.dwconv, xs, 1, 3, self.dim)?.f_permute([0, 2, 3, 1])?;
        let ys = layer_norm_last(&self.norm, &ys)?;
        let ys = Activation::Gelu.apply(linear(&self.pwconv1, &ys)?)?;
        let ys = linear(&self.pwconv2, &ys)?.f_permute([0, 3, 1, 2])?;
        let ys = self.layer_scale.f_mul(&ys)?;
        stochastic_depth(ys, self.stochastic_depth_prob, train)?.f_add(xs)
    }
}

/// One entry of `features`: a layer norm and a patchify conv (in either order), or a stage.
#[derive(Debug)]
enum Stage {
    /// `features.0`: conv then `LayerNorm2d`.
    Stem(nn::Conv2D, nn::LayerNorm),
    /// `features.{2,4,6}`: `LayerNorm2d` then conv.
    Downsample(nn::LayerNorm, nn::Conv2D),
    Blocks(Vec<CnBlock>),
}

/// A torchvision ConvNeXt.
#[derive(Debug)]
pub struct ConvNeXt {
    info: BackboneInfo,
    features: Vec<Stage>,
    /// `classifier.0`, part of the embedding.
    norm: nn::LayerNorm,
    /// `classifier.2`.
    head: Option<nn::Linear>,
}

impl ConvNeXt {
    /// The facts of a variant (no shipped pretrained weights).
    pub fn info_for(variant: ConvNeXtVariant) -> BackboneInfo {
        BackboneInfo {
            name: variant.name(),
            family: "ConvNeXt",
            input_size_px: 224,
            normalization: Normalization::IMAGENET,
            embedding_dim: variant.stages()[3].0,
            pretrained: None,
        }
    }

    /// Builds `variant` under `p`; `classes` adds the `classifier.2` linear head.
    pub fn new(p: nn::Path, variant: ConvNeXtVariant, classes: Option<i64>) -> Self {
        let f = &p / "features";
        let stages = variant.stages();
        let stem_channels = stages[0].0;
        let mut features = vec![Stage::Stem(
            patchify_conv(&f / 0 / 0, 3, stem_channels, 4),
            layer_norm(&f / 0 / 1, stem_channels),
        )];
        let total_blocks: i64 = stages.iter().map(|s| s.1).sum();
        let mut block_id = 0;
        for (stage_index, &(dim, blocks)) in stages.iter().enumerate() {
            let stage_path = &f / features.len();
            let mut stage = Vec::new();
            for i in 0..blocks {
                let sd_prob =
                    variant.stochastic_depth_prob() * block_id as f64 / (total_blocks as f64 - 1.0);
                stage.push(CnBlock::new(&stage_path / i, dim, sd_prob));
                block_id += 1;
            }
            features.push(Stage::Blocks(stage));
            if let Some(&(next_dim, _)) = stages.get(stage_index + 1) {
                let down = &f / features.len();
                features.push(Stage::Downsample(
                    layer_norm(&down / 0, dim),
                    patchify_conv(&down / 1, dim, next_dim, 2),
                ));
            }
        }
        let last_dim = stages[3].0;
        let c = &p / "classifier";
        let norm = layer_norm(&c / 0, last_dim);
        let head = classes.map(|classes| nn::linear(&c / 2, last_dim, classes, Default::default()));
        Self {
            info: Self::info_for(variant),
            features,
            norm,
            head,
        }
    }
}

impl Backbone for ConvNeXt {
    fn info(&self) -> &BackboneInfo {
        &self.info
    }

    fn forward_t(&self, images: &Tensor, train: bool) -> Result<BackboneOutput, ModelError> {
        let mut xs = images.shallow_clone();
        let mut taps = Vec::with_capacity(FEATURE_TAPS.len());
        for (index, stage) in self.features.iter().enumerate() {
            xs = match stage {
                Stage::Stem(conv, norm) => layer_norm_2d(norm, &conv2d(conv, &xs, 4, 0, 1)?)?,
                Stage::Downsample(norm, conv) => conv2d(conv, &layer_norm_2d(norm, &xs)?, 2, 0, 1)?,
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
        // torchvision: avgpool, then classifier = LayerNorm2d, Flatten, Linear.
        let pooled = xs.f_adaptive_avg_pool2d([1, 1])?;
        let embedding = layer_norm_2d(&self.norm, &pooled)?.f_flatten(1, -1)?;
        let logits = match &self.head {
            Some(head) => Some(linear(head, &embedding)?),
            None => None,
        };
        Ok(BackboneOutput {
            features: taps,
            embedding,
            logits,
        })
    }
}
