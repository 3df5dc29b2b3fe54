//! The numerics of the "objects as points" detector (CenterNet, Zhou et al. 2019): the
//! training targets drawn from boxes (a Gaussian peak per object centre, with the radius
//! rule of the authors' code, `gaussian_radius` with a minimum overlap of 0.7), the loss
//! (penalty-reduced focal loss on the heatmaps, L1 on size and offset at the centres), and
//! decoding (3x3 max-pool peaks, top K) with tensor operations only, so that the same code
//! traces into the exported TorchScript.

use tch::{Device, Kind, Tensor};

use super::TrainError;
use crate::data::boxes::PixelBox;
use crate::data::loader::BOX_FIELDS;
use crate::model::det_head::{BOX_CHANNELS, OUTPUT_STRIDE};

/// Weight of the size loss (the paper's 0.1).
const SIZE_WEIGHT: f64 = 0.1;
/// Weight of the offset loss.
const OFFSET_WEIGHT: f64 = 1.0;
/// Minimum overlap of the Gaussian radius rule.
const MIN_OVERLAP: f32 = 0.7;
/// The step of the tie-breaking pattern added to the heatmaps when choosing peaks (never to
/// the scores; at most 8 steps): larger than the rounding differences between runs, far
/// below any meaningful score difference.
const TIE_BREAK: f64 = 1e-6;
/// Detections kept per image when decoding (COCO's `maxDets`).
pub const TOP_K: i64 = 100;

/// One object of a batch's targets, in input pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TruthBox {
    pub bbox: PixelBox,
    pub class: usize,
    pub crowd: bool,
}

/// The boxes of each image of a padded targets tensor `[N, M, 6]` (see
/// [`crate::data::loader::BatchTensors`]).
pub fn truth_boxes(targets: &Tensor) -> Result<Vec<Vec<TruthBox>>, TrainError> {
    let size = targets.size();
    let (n, m) = match size[..] {
        [n, m, f] if f == BOX_FIELDS as i64 => (n as usize, m as usize),
        _ => {
            return Err(TrainError::Source(format!(
                "detection targets must be [N, M, {BOX_FIELDS}], got {size:?}"
            )));
        }
    };
    let values = Vec::<f32>::try_from(
        targets
            .f_to_device(Device::Cpu)?
            .f_to_kind(Kind::Float)?
            .f_flatten(0, -1)?,
    )?;
    Ok((0..n)
        .map(|image| {
            (0..m)
                .filter_map(|slot| {
                    let v = &values[(image * m + slot) * BOX_FIELDS..][..BOX_FIELDS];
                    (v[5] > 0.5).then(|| TruthBox {
                        bbox: PixelBox {
                            x0: v[0],
                            y0: v[1],
                            x1: v[2],
                            y1: v[3],
                        },
                        class: v[4].max(0.0) as usize,
                        crowd: v[5] > 1.5,
                    })
                })
                .collect()
        })
        .collect())
}

/// The radius of the Gaussian peak of a box of `height` x `width` output cells: the
/// largest shift of a corner that keeps an IoU of at least [`MIN_OVERLAP`] (the rule of
/// the CornerNet/CenterNet code, including its first root as written there).
pub fn gaussian_radius(height: f32, width: f32) -> f32 {
    let o = MIN_OVERLAP;
    let b1 = height + width;
    let c1 = width * height * (1.0 - o) / (1.0 + o);
    let r1 = (b1 + (b1 * b1 - 4.0 * c1).max(0.0).sqrt()) / 2.0;
    let b2 = 2.0 * (height + width);
    let c2 = (1.0 - o) * width * height;
    let r2 = (b2 + (b2 * b2 - 16.0 * c2).max(0.0).sqrt()) / 2.0;
    let a3 = 4.0 * o;
    let b3 = -2.0 * o * (height + width);
    let c3 = (o - 1.0) * width * height;
    let r3 = (b3 + (b3 * b3 - 4.0 * a3 * c3).max(0.0).sqrt()) / 2.0;
    r1.min(r2).min(r3)
}

/// Draws a Gaussian peak of `radius` cells at `(cx, cy)` into a `width`-wide heatmap plane,
/// keeping the larger value where peaks overlap.
fn draw_gaussian(plane: &mut [f32], width: usize, cx: usize, cy: usize, radius: usize) {
    let height = plane.len() / width.max(1);
    let sigma = (2 * radius + 1) as f32 / 6.0;
    let r = radius as i64;
    for dy in -r..=r {
        let y = cy as i64 + dy;
        if y < 0 || y >= height as i64 {
            continue;
        }
        for dx in -r..=r {
            let x = cx as i64 + dx;
            if x < 0 || x >= width as i64 {
                continue;
            }
            let g = (-((dx * dx + dy * dy) as f32) / (2.0 * sigma * sigma)).exp();
            let cell = &mut plane[y as usize * width + x as usize];
            *cell = cell.max(g);
        }
    }
}

/// The dense training targets of a batch for an output of `classes` x `height` x `width`.
struct DenseTargets {
    /// `[N, C, H, W]` Gaussian peaks.
    heatmap: Tensor,
    /// `[N, K]` flat cell index of each object's centre (K the most objects of an image).
    index: Tensor,
    /// `[N, K]` 1 for a real object, 0 for padding.
    mask: Tensor,
    /// `[N, 2, K]` width and height in cells.
    size: Tensor,
    /// `[N, 2, K]` sub-cell offset of the centre.
    offset: Tensor,
}

fn dense_targets(
    boxes: &[Vec<TruthBox>],
    classes: usize,
    height: usize,
    width: usize,
    device: Device,
) -> Result<DenseTargets, TrainError> {
    let n = boxes.len();
    let most = boxes.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let plane = height * width;
    let mut heatmap = vec![0.0f32; n * classes * plane];
    let (mut index, mut mask) = (vec![0i64; n * most], vec![0.0f32; n * most]);
    let (mut size, mut offset) = (vec![0.0f32; n * 2 * most], vec![0.0f32; n * 2 * most]);
    let stride = OUTPUT_STRIDE as f32;
    for (image, list) in boxes.iter().enumerate() {
        for (slot, b) in list.iter().enumerate() {
            if b.crowd || b.class >= classes {
                continue;
            }
            let (w, h) = (b.bbox.width() / stride, b.bbox.height() / stride);
            if w <= 0.0 || h <= 0.0 {
                continue;
            }
            let cx = ((b.bbox.x0 + b.bbox.x1) / 2.0 / stride).clamp(0.0, width as f32 - 1e-3);
            let cy = ((b.bbox.y0 + b.bbox.y1) / 2.0 / stride).clamp(0.0, height as f32 - 1e-3);
            let (ix, iy) = (cx.floor() as usize, cy.floor() as usize);
            let radius = gaussian_radius(h.ceil(), w.ceil()).max(0.0) as usize;
            let at = (image * classes + b.class) * plane;
            draw_gaussian(&mut heatmap[at..at + plane], width, ix, iy, radius);
            let k = image * most + slot;
            index[k] = (iy * width + ix) as i64;
            mask[k] = 1.0;
            let r = image * 2 * most + slot;
            size[r] = w;
            size[r + most] = h;
            offset[r] = cx - ix as f32;
            offset[r + most] = cy - iy as f32;
        }
    }
    let (n, c, k) = (n as i64, classes as i64, most as i64);
    let tensor = |values: &[f32], shape: &[i64]| -> Result<Tensor, TrainError> {
        Ok(Tensor::f_from_slice(values)?
            .f_view(shape)?
            .f_to_device(device)?)
    };
    Ok(DenseTargets {
        heatmap: tensor(&heatmap, &[n, c, height as i64, width as i64])?,
        index: Tensor::f_from_slice(&index)?
            .f_view([n, k])?
            .f_to_device(device)?,
        mask: tensor(&mask, &[n, k])?,
        size: tensor(&size, &[n, 2, k])?,
        offset: tensor(&offset, &[n, 2, k])?,
    })
}

/// The parts of the loss of a batch.
#[derive(Debug)]
pub struct DetectionLoss {
    pub total: Tensor,
    pub heatmap: Tensor,
    pub size: Tensor,
    pub offset: Tensor,
}

/// The number of classes of an output `[N, C + 4, H, W]`.
pub fn output_classes(output: &Tensor) -> Result<usize, TrainError> {
    match output.size()[..] {
        [_, c, _, _] if c > BOX_CHANNELS => Ok((c - BOX_CHANNELS) as usize),
        ref other => Err(TrainError::Source(format!(
            "a detection output must be [N, C + 4, H, W], got {other:?}"
        ))),
    }
}

/// The training loss of a detector's `output` against padded box `targets` `[N, M, 6]`:
/// the YOLO loss of prediction rows `[N, P, 5 + C + 5]` (see [`super::yolo`]), else the
/// "objects as points" loss of `[N, C + 4, H, W]` ([`detection_loss`]).
pub fn total_loss(output: &Tensor, targets: &Tensor) -> Result<Tensor, TrainError> {
    if output.dim() == 3 {
        return Ok(super::yolo::yolo_loss(output, targets)?.total);
    }
    Ok(detection_loss(output, targets)?.total)
}

/// The loss of `output` `[N, C + 4, H, W]` against padded box `targets` `[N, M, 6]`.
pub fn detection_loss(output: &Tensor, targets: &Tensor) -> Result<DetectionLoss, TrainError> {
    let classes = output_classes(output)?;
    let size = output.size();
    let (n, height, width) = (size[0], size[2], size[3]);
    let output = output.f_to_kind(Kind::Float)?;
    let boxes = truth_boxes(targets)?;
    let dense = dense_targets(
        &boxes,
        classes,
        height as usize,
        width as usize,
        output.device(),
    )?;
    let c = classes as i64;
    let pred = output
        .f_narrow(1, 0, c)?
        .f_sigmoid()?
        .f_clamp(1e-4, 1.0 - 1e-4)?;
    let gt = &dense.heatmap;
    let positive = gt.f_eq(1.0)?.f_to_kind(Kind::Float)?;
    let negative = positive.f_neg()?.f_add_scalar(1.0)?;
    let pos_loss = pred.f_log()? * (pred.f_neg()? + 1.0).f_pow_tensor_scalar(2)? * &positive;
    let neg_weight = (gt.f_neg()? + 1.0).f_pow_tensor_scalar(4)?;
    let neg_loss =
        (pred.f_neg()? + 1.0).f_log()? * pred.f_pow_tensor_scalar(2)? * neg_weight * negative;
    let objects = positive.f_sum(Kind::Float)?.f_clamp_min(1.0)?;
    let heatmap = (pos_loss.f_sum(Kind::Float)? + neg_loss.f_sum(Kind::Float)?).f_neg()? / &objects;
    let gather = |first: i64| -> Result<Tensor, TrainError> {
        let map = output.f_narrow(1, c + first, 2)?.f_reshape([n, 2, -1])?;
        let index = dense.index.f_unsqueeze(1)?.f_expand([n, 2, -1], false)?;
        Ok(map.f_gather(2, &index, false)?)
    };
    let mask = dense.mask.f_unsqueeze(1)?;
    let norm = mask.f_sum(Kind::Float)? * 2.0 + 1e-4;
    let l1 = |pred: Tensor, want: &Tensor| -> Result<Tensor, TrainError> {
        Ok(((pred - want) * &mask).f_abs()?.f_sum(Kind::Float)? / &norm)
    };
    let size_loss = l1(gather(0)?, &dense.size)?;
    let offset_loss = l1(gather(2)?, &dense.offset)?;
    let total = &heatmap + &size_loss * SIZE_WEIGHT + &offset_loss * OFFSET_WEIGHT;
    Ok(DetectionLoss {
        total,
        heatmap,
        size: size_loss,
        offset: offset_loss,
    })
}

/// Decoded detections of a batch, in input pixels: `boxes` `[N, K, 4]` (x0, y0, x1, y1),
/// `scores` `[N, K]` and `classes` `[N, K]` (int64), best first.
#[derive(Debug)]
pub struct Decoded {
    pub boxes: Tensor,
    pub scores: Tensor,
    pub classes: Tensor,
}

/// Decodes a detector's `output` into at most `top_k` detections per image, best first:
/// tensor operations only (traceable). YOLO prediction rows `[N, P, 5 + C + 5]` go through
/// [`super::yolo::decode`] (with suppression); an "objects as points" output `[N, C + 4,
/// H, W]` gives its `top_k` best peaks, no NMS.
pub fn decode(output: &Tensor, top_k: i64) -> Result<Decoded, TrainError> {
    if output.dim() == 3 {
        return super::yolo::decode(output, top_k);
    }
    let classes = output_classes(output)? as i64;
    let size = output.size();
    let (height, width) = (size[2], size[3]);
    let output = output.f_to_kind(Kind::Float)?;
    // The batch dimension stays free (-1 / flatten): the exported trace takes any batch.
    let heat = output.f_narrow(1, 0, classes)?.f_sigmoid()?;
    // Near-ties (plateaus at the borders of upsampled maps) are broken by a fixed pattern
    // that differs between any two cells of a 3x3 window, by a margin above float noise, so
    // the app and the exported file pick the same peaks.
    let cells = height * width;
    let float = (Kind::Float, output.device());
    let column = Tensor::f_arange(width, float)?
        .f_remainder(3)?
        .f_view([1, width])?;
    let row = Tensor::f_arange(height, float)?
        .f_remainder(3)?
        .f_view([height, 1])?;
    let order = row
        .f_mul_scalar(3.0)?
        .f_add(&column)?
        .f_mul_scalar(TIE_BREAK)?
        .f_view([1, 1, height, width])?;
    let ranked = heat.f_add(&order)?;
    let peaks = ranked.f_max_pool2d([3, 3], [1, 1], [1, 1], [1, 1], false)?;
    let keep = peaks.f_eq_tensor(&ranked)?.f_to_kind(Kind::Float)?;
    let k = top_k.min(classes * height * width);
    let (_, index) = ranked
        .f_mul(&keep)?
        .f_flatten(1, -1)?
        .f_topk(k, 1, true, true)?;
    let scores = heat.f_flatten(1, -1)?.f_gather(1, &index, false)?;
    let class = index.f_div_scalar_mode(cells, "floor")?;
    let cell = index.f_remainder(cells)?;
    let ys = cell
        .f_div_scalar_mode(width, "floor")?
        .f_to_kind(Kind::Float)?;
    let xs = cell.f_remainder(width)?.f_to_kind(Kind::Float)?;
    let pick = |first: i64| -> Result<Tensor, TrainError> {
        let map = output.f_narrow(1, classes + first, 2)?.f_flatten(2, -1)?;
        let at = cell.f_unsqueeze(1)?.f_expand([-1, 2, k], false)?;
        Ok(map.f_gather(2, &at, false)?)
    };
    let wh = pick(0)?;
    let off = pick(2)?;
    let cx = xs + off.f_select(1, 0)?;
    let cy = ys + off.f_select(1, 1)?;
    let half_w = wh.f_select(1, 0)?.f_clamp_min(0.0)? / 2.0;
    let half_h = wh.f_select(1, 1)?.f_clamp_min(0.0)? / 2.0;
    let stride = OUTPUT_STRIDE as f64;
    let boxes = Tensor::f_stack(
        &[
            (&cx - &half_w) * stride,
            (&cy - &half_h) * stride,
            (&cx + &half_w) * stride,
            (&cy + &half_h) * stride,
        ],
        2,
    )?;
    Ok(Decoded {
        boxes,
        scores,
        classes: class,
    })
}

/// Values per row of [`pack`]: `x0, y0, x1, y1` (input pixels), score, class index.
pub const PACKED_FIELDS: i64 = 6;

/// The decoded detections as one tensor `[N, K, 6]`: per row `x0, y0, x1, y1, score,
/// class` (the exported model's output).
pub fn pack(decoded: &Decoded) -> Result<Tensor, TrainError> {
    Ok(Tensor::f_cat(
        &[
            decoded.boxes.shallow_clone(),
            decoded.scores.f_unsqueeze(2)?,
            decoded.classes.f_to_kind(Kind::Float)?.f_unsqueeze(2)?,
        ],
        2,
    )?)
}

/// One decoded detection, in input pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectedBox {
    pub bbox: PixelBox,
    pub class: usize,
    pub score: f32,
}

/// The detections of each image of `decoded` with a score of at least `min_score`; rows
/// scored 0 (suppressed or padding) never count.
pub fn detections(decoded: &Decoded, min_score: f32) -> Result<Vec<Vec<DetectedBox>>, TrainError> {
    let size = decoded.scores.size();
    let (n, k) = (size[0] as usize, size[1] as usize);
    let cpu = |t: &Tensor, kind: Kind| {
        t.f_to_device(Device::Cpu)?
            .f_to_kind(kind)?
            .f_flatten(0, -1)
    };
    let boxes = Vec::<f32>::try_from(cpu(&decoded.boxes, Kind::Float)?)?;
    let scores = Vec::<f32>::try_from(cpu(&decoded.scores, Kind::Float)?)?;
    let classes = Vec::<i64>::try_from(cpu(&decoded.classes, Kind::Int64)?)?;
    Ok((0..n)
        .map(|image| {
            (0..k)
                .filter_map(|j| {
                    let at = image * k + j;
                    let b = &boxes[at * 4..at * 4 + 4];
                    (scores[at] >= min_score && scores[at] > 0.0).then(|| DetectedBox {
                        bbox: PixelBox {
                            x0: b[0],
                            y0: b[1],
                            x1: b[2],
                            y1: b[3],
                        },
                        class: classes[at].max(0) as usize,
                        score: scores[at],
                    })
                })
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(boxes: &[[f32; 6]], n: i64) -> Tensor {
        let m = (boxes.len() as i64 / n).max(1);
        let flat: Vec<f32> = boxes.iter().flatten().copied().collect();
        Tensor::from_slice(&flat).view([n, m, BOX_FIELDS as i64])
    }

    #[test]
    fn radius_matches_the_reference_rule() {
        // Values of CenterNet's gaussian_radius((h, w), 0.7), computed by hand from its code.
        let r = gaussian_radius(10.0, 10.0);
        assert!((r - 2.7332).abs() < 1e-3, "{r}");
        assert!(gaussian_radius(1.0, 1.0) < 1.0);
    }

    #[test]
    fn a_perfect_output_decodes_to_its_boxes_and_has_a_small_loss() {
        // One image of 64 px, two objects: class 1 at (8..24, 16..40), class 0 at (40..60, 4..20).
        let t = targets(
            &[
                [8.0, 16.0, 24.0, 40.0, 1.0, 1.0],
                [40.0, 4.0, 60.0, 20.0, 0.0, 1.0],
            ],
            1,
        );
        let boxes = truth_boxes(&t).unwrap();
        let dense = dense_targets(&boxes, 2, 16, 16, Device::Cpu).unwrap();
        // Logits that reproduce the dense targets exactly (heatmap through a logit).
        let heat = dense.heatmap.clamp(1e-6, 1.0 - 1e-6);
        let logits = (&heat / (heat.neg() + 1.0)).log();
        let mut size_map = Tensor::zeros([1, 2, 256], (Kind::Float, Device::Cpu));
        let mut off_map = Tensor::zeros([1, 2, 256], (Kind::Float, Device::Cpu));
        let index = dense.index.unsqueeze(1).expand([1, 2, -1], false);
        size_map = size_map.scatter(2, &index, &dense.size);
        off_map = off_map.scatter(2, &index, &dense.offset);
        let output = Tensor::cat(
            &[
                logits,
                size_map.view([1, 2, 16, 16]),
                off_map.view([1, 2, 16, 16]),
            ],
            1,
        );
        let loss = detection_loss(&output, &t).unwrap();
        assert!(loss.size.double_value(&[]) < 1e-6);
        assert!(loss.offset.double_value(&[]) < 1e-6);
        let found = detections(&decode(&output, 10).unwrap(), 0.5).unwrap();
        assert_eq!(found[0].len(), 2, "{:?}", found[0]);
        for truth in &boxes[0] {
            let best = found[0]
                .iter()
                .filter(|d| d.class == truth.class)
                .map(|d| d.bbox.iou(truth.bbox))
                .fold(0.0f32, f32::max);
            assert!(best > 0.99, "{truth:?}: IoU {best}");
        }
        // A worse heatmap costs more.
        let worse = output.shallow_clone() * 0.5;
        let worse_loss = detection_loss(&worse, &t).unwrap();
        assert!(worse_loss.heatmap.double_value(&[]) > loss.heatmap.double_value(&[]));
    }

    #[test]
    fn images_without_objects_and_crowd_boxes_give_no_positives() {
        let t = targets(&[[0.0; 6], [4.0, 4.0, 30.0, 30.0, 0.0, 2.0]], 2);
        let boxes = truth_boxes(&t).unwrap();
        assert!(boxes[0].is_empty() && boxes[1][0].crowd);
        let output = Tensor::zeros([2, 1 + 4, 8, 8], (Kind::Float, Device::Cpu));
        let loss = detection_loss(&output, &t).unwrap();
        assert!(loss.total.double_value(&[]).is_finite());
        assert_eq!(loss.size.double_value(&[]), 0.0);
    }
}
