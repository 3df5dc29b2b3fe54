//! An "objects as points" detection head (CenterNet, Zhou et al. 2019) over a backbone's
//! multi-scale features, and the [`DetectionModel`] pairing the two. Original code for this
//! project, following the paper's head; the neck is a light feature pyramid (lateral 1x1
//! convolutions, top-down upsample-and-add) brought to stride [`OUTPUT_STRIDE`].
//!
//! Output: `[N, C + 4, H / 4, W / 4]`: `C` class heatmap logits (a peak at each object's
//! centre), then the box width and height and the centre's sub-cell offset, both in output
//! cells. Decoding (`train::detection::decode`) takes 3x3 max-pool peaks and the top K, so no
//! NMS is needed and the exported model runs in plain libtorch.
//!
//! Works for any backbone: the feature maps at strides of at least 4 are used (a ViT's single
//! stride-16 map is upsampled). Keys: `neck.lateral.<i>` (fine to coarse), `neck.smooth.{0,1}`,
//! `heads.{heatmap,size,offset}.{0,2}`.

use tch::{Kind, Tensor, nn};

use super::ModelError;
use super::backbone::Backbone;
use super::layers::{Activation, ConvBn, ConvSpec, conv2d};
use super::seg_decoder::probe_feature_channels;

/// The head's output stride: one heatmap cell per 4x4 input pixels.
pub const OUTPUT_STRIDE: i64 = 4;

/// Channels of the neck and of each head's hidden layer.
const WIDTH: i64 = 64;

/// The heatmap bias at initialisation: sigmoid(-2.19) = 0.1, the paper's prior.
const HEATMAP_PRIOR_BIAS: f64 = -2.19;

/// Side of the probing image (a multiple of 32 and of 16).
const PROBE_PX: i64 = 64;

/// Values per output cell besides the class heatmaps: width, height, offset x, offset y.
pub const BOX_CHANNELS: i64 = 4;

/// A 3x3 conv + ReLU followed by a 1x1 conv.
#[derive(Debug)]
struct HeadBranch {
    hidden: nn::Conv2D,
    out: nn::Conv2D,
}

impl HeadBranch {
    fn new(p: nn::Path, out_channels: i64, bias: Option<f64>) -> Self {
        let hidden = nn::conv2d(&p / 0, WIDTH, WIDTH, 3, Default::default());
        let mut out = nn::conv2d(&p / 2, WIDTH, out_channels, 1, Default::default());
        if let (Some(value), Some(bs)) = (bias, out.bs.as_mut()) {
            // Start every cell at the prior: small weights, the prior's bias.
            tch::no_grad(|| {
                let _ = bs.fill_(value);
                let _ = out.ws.g_mul_scalar_(0.01);
            });
        }
        Self { hidden, out }
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor, tch::TchError> {
        let ys = conv2d(&self.hidden, xs, 1, 1, 1)?.f_relu_()?;
        conv2d(&self.out, &ys, 1, 0, 1)
    }
}

/// The neck and the three heads.
#[derive(Debug)]
pub struct DetHead {
    /// Indices of the backbone's feature maps used (fine to coarse).
    levels: Vec<usize>,
    lateral: Vec<nn::Conv2D>,
    smooth: ConvBn,
    heatmap: HeadBranch,
    size: HeadBranch,
    offset: HeadBranch,
    classes: i64,
}

impl DetHead {
    /// Builds the head under `p` for feature maps with `channels` and `strides` (fine to
    /// coarse) and `classes` heatmaps.
    pub fn new(
        p: nn::Path,
        channels: &[i64],
        strides: &[i64],
        classes: i64,
    ) -> Result<Self, ModelError> {
        let invalid = |reason: &str| ModelError::Config {
            model: "detection head".to_owned(),
            reason: reason.to_owned(),
        };
        if classes <= 0 {
            return Err(invalid("needs at least one class"));
        }
        let mut levels: Vec<usize> = (0..channels.len())
            .filter(|&i| strides[i] >= OUTPUT_STRIDE && channels[i] > 0)
            .collect();
        if levels.is_empty() {
            // Only maps finer than the output stride: use the coarsest one.
            levels = (0..channels.len()).filter(|&i| channels[i] > 0).collect();
            levels.drain(..levels.len().saturating_sub(1));
        }
        if levels.is_empty() {
            return Err(invalid("the backbone gives no usable feature maps"));
        }
        let neck = &p / "neck";
        let lateral = levels
            .iter()
            .enumerate()
            .map(|(i, &level)| {
                nn::conv2d(
                    &neck / "lateral" / i,
                    channels[level],
                    WIDTH,
                    1,
                    Default::default(),
                )
            })
            .collect();
        let smooth = ConvBn::torchvision(
            &neck / "smooth",
            ConvSpec::new(WIDTH, WIDTH, 3),
            Activation::Relu,
        );
        let heads = &p / "heads";
        Ok(Self {
            levels,
            lateral,
            smooth,
            heatmap: HeadBranch::new(&heads / "heatmap", classes, Some(HEATMAP_PRIOR_BIAS)),
            size: HeadBranch::new(&heads / "size", 2, None),
            offset: HeadBranch::new(&heads / "offset", 2, None),
            classes,
        })
    }

    /// Indices of the backbone's feature maps the head reads (fine to coarse).
    pub fn levels(&self) -> &[usize] {
        &self.levels
    }

    /// Number of classes (heatmaps).
    pub fn classes(&self) -> i64 {
        self.classes
    }

    /// The output `[N, C + 4, H / 4, W / 4]` for `features` (fine to coarse) of an input of
    /// `input_px` (height, width).
    pub fn forward_t(
        &self,
        features: &[Tensor],
        input_px: [i64; 2],
        train: bool,
    ) -> Result<Tensor, ModelError> {
        let out_size = [
            (input_px[0] / OUTPUT_STRIDE).max(1),
            (input_px[1] / OUTPUT_STRIDE).max(1),
        ];
        let mut xs: Option<Tensor> = None;
        for (lateral, &level) in self.lateral.iter().zip(&self.levels).rev() {
            let map = features.get(level).ok_or_else(|| ModelError::Config {
                model: "detection head".to_owned(),
                reason: format!("built for feature map {level}, given {}", features.len()),
            })?;
            let projected = conv2d(lateral, map, 1, 0, 1)?;
            xs = Some(match xs {
                None => projected,
                Some(coarse) => {
                    let size = projected.size();
                    resize(&coarse, [size[2], size[3]])? + projected
                }
            });
        }
        let xs = xs.ok_or_else(|| ModelError::Config {
            model: "detection head".to_owned(),
            reason: "no feature maps given".to_owned(),
        })?;
        let xs = resize(&xs, out_size)?;
        let xs = self.smooth.forward_t(&xs, train)?;
        Ok(Tensor::f_cat(
            &[
                self.heatmap.forward(&xs)?,
                self.size.forward(&xs)?,
                self.offset.forward(&xs)?,
            ],
            1,
        )?)
    }
}

/// Bilinear resize (`align_corners=False`); a no-op at the same size.
fn resize(xs: &Tensor, size_px: [i64; 2]) -> Result<Tensor, tch::TchError> {
    if xs.size().get(2..4) == Some(&size_px[..]) {
        return Ok(xs.shallow_clone());
    }
    xs.f_upsample_bilinear2d(size_px, false, None, None)
}

/// The strides of `backbone`'s feature maps (fine to coarse), from one probing pass.
fn probe_strides(backbone: &dyn Backbone, device: tch::Device) -> Result<Vec<i64>, ModelError> {
    let images = Tensor::f_zeros([1, 3, PROBE_PX, PROBE_PX], (Kind::Float, device))?;
    let out = tch::no_grad(|| backbone.forward_t(&images, false))?;
    Ok(out
        .features
        .iter()
        .map(|f| PROBE_PX / f.size()[2].max(1))
        .collect())
}

/// A backbone with a detection head: images `[N, 3, H, W]` to `[N, C + 4, H / 4, W / 4]`.
pub struct DetectionModel {
    /// The encoder.
    pub backbone: Box<dyn Backbone>,
    /// The neck and heads.
    pub head: DetHead,
}

impl DetectionModel {
    /// Builds a head under `p` (on the backbone's device) for `backbone`'s features and
    /// `classes` object classes.
    pub fn new(p: nn::Path, backbone: Box<dyn Backbone>, classes: i64) -> Result<Self, ModelError> {
        let channels = probe_feature_channels(backbone.as_ref(), PROBE_PX, p.device())?;
        let strides = probe_strides(backbone.as_ref(), p.device())?;
        let head = DetHead::new(p, &channels, &strides, classes)?;
        Ok(Self { backbone, head })
    }

    /// The head's output (batch-norm statistics update when `train`).
    pub fn forward_t(&self, images: &Tensor, train: bool) -> Result<Tensor, ModelError> {
        let input_px = image_size(images)?;
        let out = self.backbone.forward_t(images, train)?;
        self.head.forward_t(&out.features, input_px, train)
    }
}

/// Height and width of an image batch `[N, 3, H, W]`.
pub fn image_size(images: &Tensor) -> Result<[i64; 2], ModelError> {
    match images.size()[..] {
        [_, _, h, w] => Ok([h, w]),
        ref other => Err(ModelError::Config {
            model: "detection model".to_owned(),
            reason: format!("expected images [N, 3, H, W], got {other:?}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use tch::{Device, nn::VarStore};

    use super::*;
    use crate::model::build_backbone;

    #[test]
    fn output_is_at_stride_four_for_cnn_and_vit_backbones() {
        for (name, px) in [("resnet18", 64), ("mobilenet_v2", 96), ("vit_tiny_16", 64)] {
            let vs = VarStore::new(Device::Cpu);
            let backbone = build_backbone(name, vs.root(), false).unwrap();
            let model = DetectionModel::new(vs.root() / "detector", backbone, 3).unwrap();
            let images = Tensor::randn([2, 3, px, px], (Kind::Float, Device::Cpu));
            let out = tch::no_grad(|| model.forward_t(&images, false)).unwrap();
            assert_eq!(out.size(), [2, 3 + BOX_CHANNELS, px / 4, px / 4], "{name}");
            // The heatmap starts at the prior: sigmoid(bias) near 0.1 on average.
            let prior = out.narrow(1, 0, 3).sigmoid().mean(Kind::Float);
            let prior = prior.double_value(&[]);
            assert!((0.03..0.3).contains(&prior), "{name}: {prior}");
        }
    }
}
