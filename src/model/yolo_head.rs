//! YOLOv3-tiny's two detection heads (Redmon and Farhadi, 2018) over a backbone's stride-16
//! and stride-32 feature maps, and the [`YoloModel`] pairing them with a backbone. Original
//! code for this project, following the darknet configuration `yolov3-tiny.cfg`.
//!
//! - coarse (stride 32, anchors 3, 4, 5): a 3x3 convolution to 512 channels, then a 1x1
//!   convolution with bias to `3 * (5 + C)` channels (darknet layers 14 and 15);
//! - fine (stride 16, anchors 0, 1, 2): the stride-32 map through a 1x1 convolution to 128
//!   channels, nearest x2 upsampling, concatenated with the stride-16 map, a 3x3 convolution
//!   to 256 channels and the 1x1 output convolution (darknet layers 18, 21 and 22).
//!
//! Keys (under the head's path): `coarse.conv.*`, `coarse.out.*`, `lateral.*`,
//! `fine.conv.*`, `fine.out.*`.
//!
//! [`YoloModel::forward_t`] returns the predictions as rows `[N, P, 5 + C + 5]`: per anchor
//! and cell the raw `tx, ty, tw, th`, the objectness logit and the class logits, then the
//! constants that place the row (cell column, cell row, stride, anchor width and height in
//! input pixels). Rows run over the coarse map, then the fine map; within a map anchor by
//! anchor, then row-major over the cells. `train::yolo` trains and decodes them.

use tch::{Kind, Tensor, nn};

use super::ModelError;
use super::backbone::Backbone;
use super::darknet_tiny::DarkConv;
use super::layers::conv2d;
use super::seg_decoder::probe_feature_channels;

/// darknet's anchors for YOLOv3-tiny at 416 px: (width, height) in input pixels.
pub const ANCHORS: [[f64; 2]; 6] = [
    [10.0, 14.0],
    [23.0, 27.0],
    [37.0, 58.0],
    [81.0, 82.0],
    [135.0, 169.0],
    [344.0, 319.0],
];
/// Anchors of the coarse (stride 32) and the fine (stride 16) head.
pub const MASKS: [[usize; 3]; 2] = [[3, 4, 5], [0, 1, 2]];
/// Strides of the coarse and the fine head.
pub const STRIDES: [i64; 2] = [32, 16];
/// Anchors per cell of each head.
pub const ANCHORS_PER_CELL: i64 = 3;
/// Values per row before the class logits: tx, ty, tw, th, objectness.
pub const BOX_VALUES: i64 = 5;
/// Values per row after the class logits: cell column, cell row, stride, anchor w, anchor h.
pub const PLACE_VALUES: i64 = 5;
/// Number of COCO classes of the shipped heads.
pub const COCO_CLASSES: i64 = 80;
/// Objectness bias of fresh heads: sigmoid(-4.6) = 0.01, most cells being background.
const OBJECTNESS_PRIOR_BIAS: f64 = -4.6;
/// Side of the probing image.
const PROBE_PX: i64 = 64;

/// The two heads.
#[derive(Debug)]
pub struct YoloHead {
    coarse_conv: DarkConv,
    coarse_out: nn::Conv2D,
    lateral: DarkConv,
    fine_conv: DarkConv,
    fine_out: nn::Conv2D,
    classes: i64,
}

/// A 1x1 output convolution with bias; fresh ones start at the objectness prior.
fn output_conv(p: nn::Path, in_channels: i64, classes: i64) -> nn::Conv2D {
    let per_anchor = BOX_VALUES + classes;
    let mut conv = nn::conv2d(
        p,
        in_channels,
        ANCHORS_PER_CELL * per_anchor,
        1,
        Default::default(),
    );
    tch::no_grad(|| {
        let _ = conv.ws.g_mul_scalar_(0.01);
        if let Some(bs) = conv.bs.as_mut() {
            let _ = bs.zero_();
            for anchor in 0..ANCHORS_PER_CELL {
                let _ = bs.get(anchor * per_anchor + 4).fill_(OBJECTNESS_PRIOR_BIAS);
            }
        }
    });
    conv
}

impl YoloHead {
    /// Builds the heads under `p` for a stride-16 map of `fine_channels` and a stride-32 map
    /// of `coarse_channels`, with `classes` classes.
    pub fn new(p: nn::Path, fine_channels: i64, coarse_channels: i64, classes: i64) -> Self {
        let coarse = &p / "coarse";
        let fine = &p / "fine";
        Self {
            coarse_conv: DarkConv::new(&coarse / "conv", coarse_channels, 512, 3),
            coarse_out: output_conv(&coarse / "out", 512, classes),
            lateral: DarkConv::new(&p / "lateral", coarse_channels, 128, 1),
            fine_conv: DarkConv::new(&fine / "conv", 128 + fine_channels, 256, 3),
            fine_out: output_conv(&fine / "out", 256, classes),
            classes,
        }
    }

    /// Number of object classes.
    pub fn classes(&self) -> i64 {
        self.classes
    }

    /// The raw maps `[N, 3 (5 + C), H / 32, W / 32]` and `[N, 3 (5 + C), H / 16, W / 16]`
    /// from the stride-16 and stride-32 feature maps.
    pub fn maps(
        &self,
        fine: &Tensor,
        coarse: &Tensor,
        train: bool,
    ) -> Result<[Tensor; 2], ModelError> {
        let hidden = self.coarse_conv.forward_t(coarse, train)?;
        let coarse_out = conv2d(&self.coarse_out, &hidden, 1, 0, 1)?;
        let lateral = self.lateral.forward_t(coarse, train)?;
        let size = fine.size();
        let up = lateral.f_upsample_nearest2d([size[2], size[3]], None, None)?;
        let joined = Tensor::f_cat(&[up, fine.to_kind(lateral.kind())], 1)?;
        let hidden = self.fine_conv.forward_t(&joined, train)?;
        let fine_out = conv2d(&self.fine_out, &hidden, 1, 0, 1)?;
        Ok([coarse_out, fine_out])
    }

    /// The heads' predictions as rows (see the module documentation).
    pub fn forward_t(&self, features: &[Tensor], train: bool) -> Result<Tensor, ModelError> {
        let (fine, coarse) = stride_16_and_32(features)?;
        let maps = self.maps(fine, coarse, train)?;
        rows(&maps, self.classes)
    }
}

/// The stride-16 and stride-32 maps of a backbone's features (its last two).
fn stride_16_and_32(features: &[Tensor]) -> Result<(&Tensor, &Tensor), ModelError> {
    match features {
        [.., fine, coarse] => Ok((fine, coarse)),
        _ => Err(ModelError::Config {
            model: "YOLO head".to_owned(),
            reason: "the backbone gives fewer than two feature maps".to_owned(),
        }),
    }
}

/// The maps of both heads as rows `[N, P, 5 + C + 5]`.
pub fn rows(maps: &[Tensor; 2], classes: i64) -> Result<Tensor, ModelError> {
    let per_anchor = BOX_VALUES + classes;
    let mut parts = Vec::with_capacity(2);
    for (head, map) in maps.iter().enumerate() {
        let size = map.size();
        let (height, width) = (size[2], size[3]);
        let values = map
            .f_to_kind(Kind::Float)?
            .f_view([-1, ANCHORS_PER_CELL, per_anchor, height * width])?
            .f_permute([0, 1, 3, 2])?
            .f_reshape([-1, ANCHORS_PER_CELL * height * width, per_anchor])?;
        // Expanded to the batch of `values` (not a number), so a traced model takes any batch.
        let place = placement(head, height, width, map.device())?
            .f_unsqueeze(0)?
            .f_expand_as(&values.f_narrow(2, 0, PLACE_VALUES)?)?;
        parts.push(Tensor::f_cat(&[values, place], 2)?);
    }
    Ok(Tensor::f_cat(&parts, 1)?)
}

/// The constant columns of one head's rows `[3 H W, 5]`: cell column, cell row, stride,
/// anchor width, anchor height.
fn placement(
    head: usize,
    height: i64,
    width: i64,
    device: tch::Device,
) -> Result<Tensor, ModelError> {
    let float = (Kind::Float, device);
    let cells = height * width;
    let index = Tensor::f_arange(cells, float)?;
    let column = index.f_remainder(width)?;
    let row = index.f_div_scalar_mode(width, "floor")?;
    let mut per_anchor = Vec::with_capacity(3);
    for &anchor in &MASKS[head] {
        let [aw, ah] = ANCHORS[anchor];
        let constant =
            |value: f64| -> Result<Tensor, tch::TchError> { Tensor::f_full([cells], value, float) };
        per_anchor.push(Tensor::f_stack(
            &[
                column.shallow_clone(),
                row.shallow_clone(),
                constant(STRIDES[head] as f64)?,
                constant(aw)?,
                constant(ah)?,
            ],
            1,
        )?);
    }
    Ok(Tensor::f_cat(&per_anchor, 0)?)
}

/// A backbone with the YOLO heads: images `[N, 3, H, W]` to prediction rows.
pub struct YoloModel {
    /// The encoder.
    pub backbone: Box<dyn Backbone>,
    /// The heads.
    pub head: YoloHead,
}

impl YoloModel {
    /// Builds the heads under `p` (on the backbone's device) for `backbone`'s last two
    /// feature maps (strides 16 and 32) and `classes` classes.
    pub fn new(p: nn::Path, backbone: Box<dyn Backbone>, classes: i64) -> Result<Self, ModelError> {
        let channels = probe_feature_channels(backbone.as_ref(), PROBE_PX, p.device())?;
        let [.., fine, coarse] = channels[..] else {
            return Err(ModelError::Config {
                model: "YOLO head".to_owned(),
                reason: "the backbone gives fewer than two feature maps".to_owned(),
            });
        };
        let head = YoloHead::new(p, fine, coarse, classes);
        Ok(Self { backbone, head })
    }

    /// The prediction rows (batch-norm statistics update when `train`).
    pub fn forward_t(&self, images: &Tensor, train: bool) -> Result<Tensor, ModelError> {
        let out = self.backbone.forward_t(images, train)?;
        self.head.forward_t(&out.features, train)
    }
}

/// Prefix of the YOLO heads' keys in the shipped COCO weights file.
pub const COCO_HEAD_PREFIX: &str = "yolo.";

/// Copies the COCO weights of the heads' hidden layers (`coarse.conv`, `lateral`,
/// `fine.conv`) from the shipped file at `path` (keys under [`COCO_HEAD_PREFIX`]) into the
/// variables of `vs` under `prefix`; the output convolutions, which depend on the classes,
/// keep their fresh weights. Every hidden-layer variable must be found with its shape.
pub fn load_coco_neck(
    vs: &tch::nn::VarStore,
    prefix: &str,
    path: &std::path::Path,
) -> Result<usize, ModelError> {
    use super::weights::{WeightsError, read_weights};
    let file = read_weights(path)?;
    let mut copied = 0;
    let mut problems = Vec::new();
    for (name, mut var) in vs.variables() {
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        if rest.starts_with("coarse.out") || rest.starts_with("fine.out") {
            continue;
        }
        let key = format!("{COCO_HEAD_PREFIX}{rest}");
        match file.get(&key) {
            Some(source) if source.size() == var.size() => {
                tch::no_grad(|| var.f_copy_(source))?;
                copied += 1;
            }
            Some(source) => problems.push(format!(
                "{key} is {:?}, the model wants {:?}",
                source.size(),
                var.size()
            )),
            None => problems.push(format!("{key} is missing")),
        }
    }
    if !problems.is_empty() {
        return Err(WeightsError::Mismatch {
            path: path.to_owned(),
            summary: problems.join("; "),
        }
        .into());
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use tch::{Device, nn::VarStore};

    use super::*;
    use crate::model::darknet_tiny::DarknetTiny;

    #[test]
    fn rows_cover_both_maps_with_their_placement() {
        let vs = VarStore::new(Device::Cpu);
        let model =
            YoloModel::new(vs.root() / "yolo", Box::new(DarknetTiny::new(vs.root())), 2).unwrap();
        let images = Tensor::rand([2, 3, 64, 64], (Kind::Float, Device::Cpu));
        let out = model.forward_t(&images, false).unwrap();
        // 2x2 coarse cells and 4x4 fine cells, 3 anchors each; 5 + 2 + 5 values.
        assert_eq!(out.size(), vec![2, 3 * (4 + 16), 12]);
        let last = Vec::<f32>::try_from(out.get(1).get(-1).narrow(0, 7, 5)).unwrap();
        // The last row: fine map, anchor 2 (37 x 58), cell (3, 3), stride 16.
        assert_eq!(last, vec![3.0, 3.0, 16.0, 37.0, 58.0]);
        let first = Vec::<f32>::try_from(out.get(0).get(0).narrow(0, 7, 5)).unwrap();
        assert_eq!(first, vec![0.0, 0.0, 32.0, 81.0, 82.0]);
        // Fresh heads start near the objectness prior.
        let objectness = out.get(0).get(0).double_value(&[4]);
        assert!(
            (objectness - OBJECTNESS_PRIOR_BIAS).abs() < 0.5,
            "{objectness}"
        );
        let keys: Vec<String> = vs.variables().into_keys().collect();
        for key in [
            "yolo.coarse.out.bias",
            "yolo.lateral.bn.running_mean",
            "yolo.fine.conv.conv.weight",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} missing");
        }
    }
}
