//! Inception-v3 (Szegedy et al., 2016, "Rethinking the Inception Architecture for Computer
//! Vision") in torchvision's state-dict layout, following `torchvision/models/inception.py`
//! (torchvision 0.28, BSD-3-Clause): `Conv2d_1a_3x3` ... `Conv2d_4a_3x3`, `Mixed_5b` ...
//! `Mixed_7c` (`<branch>.conv`, `<branch>.bn`, batch norm eps 1e-3), `AuxLogits.{conv0,
//! conv1, fc}` and `fc`. The auxiliary classifier is built with the ImageNet head so that
//! torchvision's files load strictly; torchvision runs it in training only, for an extra
//! loss this app does not use, so it never runs here.
//!
//! Input: torchvision's pretrained Inception-v3 (Google's weights) was trained on pixels
//! scaled to [-1, 1], and `inception_v3(weights=...)` sets `transform_input=True`, which
//! turns ImageNet-normalised input into that. This network always does the same, so it takes
//! ImageNet normalisation like every other backbone and computes, on torchvision's weights,
//! what torchvision's pretrained model computes.
//!
//! Convolutions are unpadded where torchvision's are, so sizes are not exact multiples:
//! at 299 px the five feature maps are 147, 71, 35, 17 and 8 px (nominal strides 2, 4, 8,
//! 16, 32): `Conv2d_2b_3x3`, `Conv2d_4a_3x3`, `Mixed_5d`, `Mixed_6e` and `Mixed_7c`. Inputs
//! need at least 75 px a side (torchvision's `min_size`).

use tch::{Tensor, nn, nn::Init};

use super::ModelError;
use super::backbone::{Backbone, BackboneInfo, BackboneOutput, Normalization};
use super::layers::{batch_norm, flops, global_avg_pool, linear};

const NAME: &str = "inception_v3";
const BN_EPS: f64 = 1e-3;
/// Standard deviation of torchvision's (truncated normal) initialisation of conv and linear
/// weights, where a layer does not set its own.
const INIT_STDDEV: f64 = 0.1;
/// Smallest input side torchvision accepts (`min_size`).
const MIN_SIDE_PX: i64 = 75;
/// Width of the last map and of the embedding.
const EMBEDDING_DIM: i64 = 2048;
/// The ImageNet normalisation that `transform_input` undoes (RGB).
const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// `BasicConv2d`: a bias-free convolution, batch norm (eps 1e-3) and ReLU.
#[derive(Debug)]
struct BasicConv {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
    stride: i64,
    padding: [i64; 2],
}

/// The geometry of a [`BasicConv`]: kernel `[h, w]`, stride, padding `[h, w]`.
#[derive(Clone, Copy)]
struct Geometry {
    kernel: [i64; 2],
    stride: i64,
    padding: [i64; 2],
}

/// A square `k x k` convolution with stride 1 and padding `pad`.
const fn square(k: i64, pad: i64) -> Geometry {
    Geometry {
        kernel: [k, k],
        stride: 1,
        padding: [pad, pad],
    }
}

/// A 3x3 convolution with stride 2 and no padding.
const REDUCE: Geometry = Geometry {
    kernel: [3, 3],
    stride: 2,
    padding: [0, 0],
};
const ONE: Geometry = square(1, 0);
/// `1 x n` and `n x 1` convolutions with "same" padding.
const fn row(n: i64) -> Geometry {
    Geometry {
        kernel: [1, n],
        stride: 1,
        padding: [0, n / 2],
    }
}
const fn column(n: i64) -> Geometry {
    Geometry {
        kernel: [n, 1],
        stride: 1,
        padding: [n / 2, 0],
    }
}

impl BasicConv {
    fn new(p: nn::Path, in_channels: i64, out_channels: i64, geometry: Geometry) -> Self {
        Self::with_stddev(p, in_channels, out_channels, geometry, INIT_STDDEV)
    }

    fn with_stddev(
        p: nn::Path,
        in_channels: i64,
        out_channels: i64,
        geometry: Geometry,
        stddev: f64,
    ) -> Self {
        let config = nn::ConvConfigND::<[i64; 2]> {
            stride: [geometry.stride; 2],
            padding: geometry.padding,
            bias: false,
            ws_init: Init::Randn {
                mean: 0.0,
                stdev: stddev,
            },
            ..Default::default()
        };
        let bn_config = nn::BatchNormConfig {
            eps: BN_EPS,
            ..Default::default()
        };
        Self {
            conv: nn::conv(
                &p / "conv",
                in_channels,
                out_channels,
                geometry.kernel,
                config,
            ),
            bn: nn::batch_norm2d(&p / "bn", out_channels, bn_config),
            stride: geometry.stride,
            padding: geometry.padding,
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        let ys = xs.f_conv2d(
            &self.conv.ws,
            None::<Tensor>,
            [self.stride; 2],
            self.padding,
            [1, 1],
            1,
        )?;
        let per_output: i64 = self.conv.ws.size().iter().skip(1).product();
        flops::record(ys.numel() as u64 * per_output as u64);
        let mut ys = batch_norm(&self.bn, &ys, train, BN_EPS)?;
        ys.f_relu_()
    }
}

/// Runs convolutions one after the other.
fn chain(convs: &[BasicConv], xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
    let mut ys = xs.shallow_clone();
    for conv in convs {
        ys = conv.forward_t(&ys, train)?;
    }
    Ok(ys)
}

/// One branch of a mixed block; a block concatenates its branches' outputs in order.
#[derive(Debug)]
enum Branch {
    /// Convolutions in sequence.
    Convs(Vec<BasicConv>),
    /// A 3x3 average pool (stride 1, padding 1, padding counted) and a 1x1 convolution.
    AvgPoolConv(Box<BasicConv>),
    /// A 3x3 max pool with stride 2.
    MaxPool,
    /// Convolutions in sequence, then two convolutions side by side on their output
    /// (`InceptionE`'s `_2a`/`_2b` and `_3a`/`_3b`).
    Fork(Vec<BasicConv>, Box<[BasicConv; 2]>),
}

impl Branch {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        match self {
            Branch::Convs(convs) => chain(convs, xs, train),
            Branch::AvgPoolConv(conv) => {
                let pooled = xs.f_avg_pool2d([3, 3], [1, 1], [1, 1], false, true, None)?;
                conv.forward_t(&pooled, train)
            }
            Branch::MaxPool => xs.f_max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false),
            Branch::Fork(stem, pair) => {
                let [left, right] = pair.as_ref();
                let ys = chain(stem, xs, train)?;
                Tensor::f_cat(
                    &[left.forward_t(&ys, train)?, right.forward_t(&ys, train)?],
                    1,
                )
            }
        }
    }
}

/// A mixed block: its branches, concatenated along the channels.
#[derive(Debug)]
struct Mixed(Vec<Branch>);

impl Mixed {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        let outputs = self
            .0
            .iter()
            .map(|branch| branch.forward_t(xs, train))
            .collect::<Result<Vec<_>, _>>()?;
        Tensor::f_cat(&outputs, 1)
    }

    /// Convolutions named `names` under `p`, from `in_channels` through the given widths.
    fn convs(p: &nn::Path, in_channels: i64, layers: &[(&str, i64, Geometry)]) -> Vec<BasicConv> {
        let mut channels = in_channels;
        layers
            .iter()
            .map(|&(name, out, geometry)| {
                let conv = BasicConv::new(p / name, channels, out, geometry);
                channels = out;
                conv
            })
            .collect()
    }

    /// `InceptionA`: 1x1, 5x5, double 3x3 and pooled branches (35 x 35 grid).
    fn a(p: &nn::Path, c: i64, pool_features: i64) -> Self {
        Self(vec![
            Branch::Convs(Self::convs(p, c, &[("branch1x1", 64, ONE)])),
            Branch::Convs(Self::convs(
                p,
                c,
                &[("branch5x5_1", 48, ONE), ("branch5x5_2", 64, square(5, 2))],
            )),
            Branch::Convs(Self::convs(
                p,
                c,
                &[
                    ("branch3x3dbl_1", 64, ONE),
                    ("branch3x3dbl_2", 96, square(3, 1)),
                    ("branch3x3dbl_3", 96, square(3, 1)),
                ],
            )),
            Branch::AvgPoolConv(Box::new(BasicConv::new(
                p / "branch_pool",
                c,
                pool_features,
                ONE,
            ))),
        ])
    }

    /// `InceptionB`: grid reduction 35 -> 17.
    fn b(p: &nn::Path, c: i64) -> Self {
        Self(vec![
            Branch::Convs(Self::convs(p, c, &[("branch3x3", 384, REDUCE)])),
            Branch::Convs(Self::convs(
                p,
                c,
                &[
                    ("branch3x3dbl_1", 64, ONE),
                    ("branch3x3dbl_2", 96, square(3, 1)),
                    ("branch3x3dbl_3", 96, REDUCE),
                ],
            )),
            Branch::MaxPool,
        ])
    }

    /// `InceptionC`: factorised 7x7 branches (17 x 17 grid).
    fn c(p: &nn::Path, c: i64, c7: i64) -> Self {
        Self(vec![
            Branch::Convs(Self::convs(p, c, &[("branch1x1", 192, ONE)])),
            Branch::Convs(Self::convs(
                p,
                c,
                &[
                    ("branch7x7_1", c7, ONE),
                    ("branch7x7_2", c7, row(7)),
                    ("branch7x7_3", 192, column(7)),
                ],
            )),
            Branch::Convs(Self::convs(
                p,
                c,
                &[
                    ("branch7x7dbl_1", c7, ONE),
                    ("branch7x7dbl_2", c7, column(7)),
                    ("branch7x7dbl_3", c7, row(7)),
                    ("branch7x7dbl_4", c7, column(7)),
                    ("branch7x7dbl_5", 192, row(7)),
                ],
            )),
            Branch::AvgPoolConv(Box::new(BasicConv::new(p / "branch_pool", c, 192, ONE))),
        ])
    }

    /// `InceptionD`: grid reduction 17 -> 8.
    fn d(p: &nn::Path, c: i64) -> Self {
        Self(vec![
            Branch::Convs(Self::convs(
                p,
                c,
                &[("branch3x3_1", 192, ONE), ("branch3x3_2", 320, REDUCE)],
            )),
            Branch::Convs(Self::convs(
                p,
                c,
                &[
                    ("branch7x7x3_1", 192, ONE),
                    ("branch7x7x3_2", 192, row(7)),
                    ("branch7x7x3_3", 192, column(7)),
                    ("branch7x7x3_4", 192, REDUCE),
                ],
            )),
            Branch::MaxPool,
        ])
    }

    /// `InceptionE`: expanded filter banks (8 x 8 grid).
    fn e(p: &nn::Path, c: i64) -> Self {
        let fork = |stem: Vec<BasicConv>, names: [&str; 2]| {
            let [left, right] = names;
            Branch::Fork(
                stem,
                Box::new([
                    BasicConv::new(p / left, 384, 384, row(3)),
                    BasicConv::new(p / right, 384, 384, column(3)),
                ]),
            )
        };
        Self(vec![
            Branch::Convs(Self::convs(p, c, &[("branch1x1", 320, ONE)])),
            fork(
                Self::convs(p, c, &[("branch3x3_1", 384, ONE)]),
                ["branch3x3_2a", "branch3x3_2b"],
            ),
            fork(
                Self::convs(
                    p,
                    c,
                    &[
                        ("branch3x3dbl_1", 448, ONE),
                        ("branch3x3dbl_2", 384, square(3, 1)),
                    ],
                ),
                ["branch3x3dbl_3a", "branch3x3dbl_3b"],
            ),
            Branch::AvgPoolConv(Box::new(BasicConv::new(p / "branch_pool", c, 192, ONE))),
        ])
    }
}

/// `InceptionAux`: kept for its weights only (see the module documentation).
#[derive(Debug)]
struct AuxLogits {
    _conv0: BasicConv,
    _conv1: BasicConv,
    _fc: nn::Linear,
}

impl AuxLogits {
    fn new(p: nn::Path, classes: i64) -> Self {
        let fc_config = nn::LinearConfig {
            ws_init: Init::Randn {
                mean: 0.0,
                stdev: 0.001,
            },
            ..Default::default()
        };
        Self {
            _conv0: BasicConv::new(&p / "conv0", 768, 128, ONE),
            _conv1: BasicConv::with_stddev(&p / "conv1", 128, 768, square(5, 0), 0.01),
            _fc: nn::linear(&p / "fc", 768, classes, fc_config),
        }
    }
}

/// Inception-v3 in torchvision's layout.
#[derive(Debug)]
pub struct InceptionV3 {
    info: BackboneInfo,
    /// `Conv2d_1a_3x3`, `Conv2d_2a_3x3`, `Conv2d_2b_3x3` (then max pool).
    stem_a: Vec<BasicConv>,
    /// `Conv2d_3b_1x1`, `Conv2d_4a_3x3` (then max pool).
    stem_b: Vec<BasicConv>,
    /// `Mixed_5b` ... `Mixed_5d` (35 x 35 at 299 px).
    mixed_5: Vec<Mixed>,
    /// `Mixed_6a` ... `Mixed_6e` (17 x 17).
    mixed_6: Vec<Mixed>,
    /// `Mixed_7a` ... `Mixed_7c` (8 x 8).
    mixed_7: Vec<Mixed>,
    _aux_logits: Option<AuxLogits>,
    fc: Option<nn::Linear>,
}

impl InceptionV3 {
    /// The facts of this backbone.
    pub fn info_for() -> BackboneInfo {
        BackboneInfo {
            name: NAME,
            family: "Inception-v3",
            input_size_px: 299,
            normalization: Normalization::IMAGENET,
            embedding_dim: EMBEDDING_DIM,
            pretrained: None,
        }
    }

    /// Builds the network under `p`; `classes` adds `fc` and the auxiliary classifier.
    pub fn new(p: nn::Path, classes: Option<i64>) -> Self {
        let conv = |name: &str, i, o, g| BasicConv::new(&p / name, i, o, g);
        let stem_a = vec![
            conv("Conv2d_1a_3x3", 3, 32, REDUCE),
            conv("Conv2d_2a_3x3", 32, 32, square(3, 0)),
            conv("Conv2d_2b_3x3", 32, 64, square(3, 1)),
        ];
        let stem_b = vec![
            conv("Conv2d_3b_1x1", 64, 80, ONE),
            conv("Conv2d_4a_3x3", 80, 192, square(3, 0)),
        ];
        let mixed_5 = vec![
            Mixed::a(&(&p / "Mixed_5b"), 192, 32),
            Mixed::a(&(&p / "Mixed_5c"), 256, 64),
            Mixed::a(&(&p / "Mixed_5d"), 288, 64),
        ];
        let mixed_6 = vec![
            Mixed::b(&(&p / "Mixed_6a"), 288),
            Mixed::c(&(&p / "Mixed_6b"), 768, 128),
            Mixed::c(&(&p / "Mixed_6c"), 768, 160),
            Mixed::c(&(&p / "Mixed_6d"), 768, 160),
            Mixed::c(&(&p / "Mixed_6e"), 768, 192),
        ];
        let mixed_7 = vec![
            Mixed::d(&(&p / "Mixed_7a"), 768),
            Mixed::e(&(&p / "Mixed_7b"), 1280),
            Mixed::e(&(&p / "Mixed_7c"), 2048),
        ];
        let fc_config = nn::LinearConfig {
            ws_init: Init::Randn {
                mean: 0.0,
                stdev: INIT_STDDEV,
            },
            ..Default::default()
        };
        Self {
            info: Self::info_for(),
            stem_a,
            stem_b,
            mixed_5,
            mixed_6,
            mixed_7,
            _aux_logits: classes.map(|c| AuxLogits::new(&p / "AuxLogits", c)),
            fc: classes.map(|c| nn::linear(&p / "fc", EMBEDDING_DIM, c, fc_config)),
        }
    }

    /// torchvision's `_transform_input`: ImageNet-normalised RGB to the [-1, 1] scaling the
    /// Google weights were trained on, `x * std / 0.5 + (mean - 0.5) / 0.5` per channel.
    fn transform_input(images: &Tensor) -> Result<Tensor, tch::TchError> {
        let channel = |values: [f64; 3]| {
            Tensor::from_slice(&values.map(|v| v as f32))
                .f_view([1, 3, 1, 1])?
                .f_to_device(images.device())?
                .f_to_kind(images.kind())
        };
        let scale = channel(IMAGENET_STD.map(|s| s / 0.5))?;
        let shift = channel(IMAGENET_MEAN.map(|m| (m - 0.5) / 0.5))?;
        images.f_mul(&scale)?.f_add(&shift)
    }

    fn check_input(images: &Tensor) -> Result<(), ModelError> {
        let size = images.size();
        if let [_, _, height_px, width_px] = size[..]
            && (height_px < MIN_SIDE_PX || width_px < MIN_SIDE_PX)
        {
            return Err(ModelError::InputSize {
                model: NAME.to_owned(),
                height_px,
                width_px,
                reason: format!("both sides must be at least {MIN_SIDE_PX} px"),
            });
        }
        Ok(())
    }
}

impl Backbone for InceptionV3 {
    fn info(&self) -> &BackboneInfo {
        &self.info
    }

    fn forward_t(&self, images: &Tensor, train: bool) -> Result<BackboneOutput, ModelError> {
        Self::check_input(images)?;
        let xs = Self::transform_input(images)?;
        let stride_2 = chain(&self.stem_a, &xs, train)?;
        let xs = stride_2.f_max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false)?;
        let stride_4 = chain(&self.stem_b, &xs, train)?;
        let mut xs = stride_4.f_max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false)?;
        let mut features = vec![stride_2, stride_4];
        for group in [&self.mixed_5, &self.mixed_6, &self.mixed_7] {
            for block in group {
                xs = block.forward_t(&xs, train)?;
            }
            features.push(xs.shallow_clone());
        }
        // torchvision: avgpool, dropout (training only), flatten, fc.
        let embedding = global_avg_pool(&xs)?;
        let logits = match &self.fc {
            Some(fc) => Some(linear(fc, &embedding.f_dropout(0.5, train)?)?),
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
    use tch::{Device, Kind, nn::VarStore};

    #[test]
    fn transform_input_maps_imagenet_normalised_pixels_to_minus_one_one() {
        // Pixel values 0 and 1 after ImageNet normalisation become -1 and 1.
        let zero: Vec<f32> = IMAGENET_MEAN
            .iter()
            .zip(IMAGENET_STD)
            .map(|(m, s)| (-m / s) as f32)
            .collect();
        let images = Tensor::from_slice(&zero).view([1, 3, 1, 1]);
        let out = InceptionV3::transform_input(&images).unwrap();
        assert!((out + 1.0).abs().max().double_value(&[]) < 1e-6);
    }

    #[test]
    fn runs_in_bfloat16_as_the_frozen_passes_do() {
        let mut vs = VarStore::new(Device::Cpu);
        let model = InceptionV3::new(vs.root(), None);
        vs.bfloat16();
        let images = Tensor::randn([1, 3, 96, 96], (Kind::BFloat16, Device::Cpu));
        let out = tch::no_grad(|| model.forward_t(&images, false)).unwrap();
        assert_eq!(out.embedding.kind(), Kind::BFloat16);
    }

    #[test]
    fn the_logits_depend_on_every_returned_map() {
        let vs = VarStore::new(Device::Cpu);
        let model = InceptionV3::new(vs.root(), Some(3));
        let images = Tensor::randn([1, 3, 96, 96], (Kind::Float, Device::Cpu));
        let out = model.forward_t(&images, false).unwrap();
        let score = out.logits.unwrap().sum(Kind::Float);
        let grads = Tensor::run_backward(&[score], &out.features, false, false);
        assert_eq!(grads.len(), 5);
        for grad in grads {
            assert!(grad.abs().sum(Kind::Double).double_value(&[]) > 0.0);
        }
    }

    #[test]
    fn small_inputs_are_refused_and_75_px_gives_five_maps() {
        let vs = VarStore::new(Device::Cpu);
        let model = InceptionV3::new(vs.root(), None);
        let small = Tensor::zeros([1, 3, 74, 80], (Kind::Float, Device::Cpu));
        let err = model.forward_t(&small, false).unwrap_err();
        assert!(matches!(err, ModelError::InputSize { .. }), "{err}");
        let images = Tensor::zeros([1, 3, 75, 75], (Kind::Float, Device::Cpu));
        let out = model.forward_t(&images, false).unwrap();
        let sides: Vec<i64> = out.features.iter().map(|f| f.size()[2]).collect();
        assert_eq!(sides, [35, 15, 7, 3, 1]);
        assert_eq!(out.embedding.size(), [1, EMBEDDING_DIM]);
    }
}
