//! The numerics of the YOLO heads ([`crate::model::yolo_head`]): the training loss of
//! YOLOv3 (each object is assigned to the anchor of the 6 whose shape overlaps it most, at
//! the cell holding its centre; squared error on the centre's sigmoid offset and on the log
//! size ratio, weighted by `2 - w h / image area`; binary cross-entropy on objectness, where
//! predictions overlapping an object by more than [`IGNORE_IOU`] are not counted as
//! background; binary cross-entropy on the classes), and decoding with class-aware greedy
//! non-maximum suppression written in tensor operations (an unrolled loop over the
//! candidates), so the same code traces into the exported TorchScript and runs in plain
//! libtorch without a `torchvision::nms` op.

use std::collections::HashMap;

use tch::{Device, Kind, Tensor};

use super::TrainError;
use super::detection::{Decoded, TruthBox, truth_boxes};
use crate::model::yolo_head::{ANCHORS, BOX_VALUES, MASKS, PLACE_VALUES, STRIDES};

/// Predictions overlapping an object by more than this are not background (`ignore_thresh`
/// of `yolov3-tiny.cfg`).
pub const IGNORE_IOU: f64 = 0.7;
/// Same-class boxes overlapping a better one by more than this are suppressed (darknet's
/// `nms` of 0.45).
pub const NMS_IOU: f64 = 0.45;
/// Candidates (box, class) taken into the suppression, best first.
pub const PRE_NMS: i64 = 300;
/// Largest `tw`, `th` decoded (e^8 times the anchor), so an untrained head cannot overflow.
const MAX_LOG_SCALE: f64 = 8.0;

/// The number of classes of YOLO prediction rows `[N, P, 5 + C + 5]`.
pub fn row_classes(rows: &Tensor) -> Result<i64, TrainError> {
    match rows.size()[..] {
        [_, _, f] if f > BOX_VALUES + PLACE_VALUES => Ok(f - BOX_VALUES - PLACE_VALUES),
        ref other => Err(TrainError::Source(format!(
            "YOLO predictions must be [N, P, 5 + C + 5], got {other:?}"
        ))),
    }
}

/// The rows' boxes in input pixels `[N, P, 4]` (x0, y0, x1, y1).
fn row_boxes(rows: &Tensor, classes: i64) -> Result<Tensor, TrainError> {
    let place = rows.f_narrow(2, BOX_VALUES + classes, PLACE_VALUES)?;
    let cell = place.f_narrow(2, 0, 2)?;
    let stride = place.f_narrow(2, 2, 1)?;
    let anchor = place.f_narrow(2, 3, 2)?;
    let centre = (rows.f_narrow(2, 0, 2)?.f_sigmoid()? + cell) * &stride;
    let size = rows
        .f_narrow(2, 2, 2)?
        .f_clamp_max(MAX_LOG_SCALE)?
        .f_exp()?
        * anchor;
    let half = size / 2.0;
    Ok(Tensor::f_cat(&[&centre - &half, &centre + &half], 2)?)
}

/// IoU of every box of `a` `[N, P, 4]` with every box of `b` `[N, Q, 4]`: `[N, P, Q]`.
fn pairwise_iou(a: &Tensor, b: &Tensor) -> Result<Tensor, TrainError> {
    let a = a.f_unsqueeze(2)?;
    let b = b.f_unsqueeze(1)?;
    let coord = |t: &Tensor, i: i64| t.f_select(3, i);
    let (ax0, ay0, ax1, ay1) = (coord(&a, 0)?, coord(&a, 1)?, coord(&a, 2)?, coord(&a, 3)?);
    let (bx0, by0, bx1, by1) = (coord(&b, 0)?, coord(&b, 1)?, coord(&b, 2)?, coord(&b, 3)?);
    let iw = (ax1.f_minimum(&bx1)? - ax0.f_maximum(&bx0)?).f_clamp_min(0.0)?;
    let ih = (ay1.f_minimum(&by1)? - ay0.f_maximum(&by0)?).f_clamp_min(0.0)?;
    let inter = iw * ih;
    let area_a = (&ax1 - &ax0).f_clamp_min(0.0)? * (&ay1 - &ay0).f_clamp_min(0.0)?;
    let area_b = (&bx1 - &bx0).f_clamp_min(0.0)? * (&by1 - &by0).f_clamp_min(0.0)?;
    let union = (area_a + area_b - &inter).f_clamp_min(1e-9)?;
    Ok(inter / union)
}

/// The anchor (index into [`ANCHORS`]) whose shape overlaps a `width` x `height` box most.
pub fn best_anchor(width: f64, height: f64) -> usize {
    let overlap = |[aw, ah]: [f64; 2]| {
        let inter = width.min(aw) * height.min(ah);
        inter / (width * height + aw * ah - inter)
    };
    let mut best = 0;
    for (i, &anchor) in ANCHORS.iter().enumerate() {
        if overlap(anchor) > overlap(ANCHORS[best]) {
            best = i;
        }
    }
    best
}

/// Where each row sits: (head, anchor within the head, cell column, cell row) to row index,
/// and each head's grid size (columns, rows).
struct Layout {
    rows: HashMap<(usize, usize, i64, i64), usize>,
    grid: [(i64, i64); 2],
}

fn layout(rows: &Tensor, classes: i64) -> Result<Layout, TrainError> {
    let place = rows
        .f_get(0)?
        .f_narrow(1, BOX_VALUES + classes, PLACE_VALUES)?
        .f_to_device(Device::Cpu)?
        .f_contiguous()?;
    let values = Vec::<f32>::try_from(place.f_flatten(0, -1)?)?;
    let mut index = HashMap::with_capacity(values.len() / PLACE_VALUES as usize);
    let mut grid = [(0i64, 0i64); 2];
    for (row, v) in values.chunks_exact(PLACE_VALUES as usize).enumerate() {
        let stride = v[2] as i64;
        let Some(head) = STRIDES.iter().position(|&s| s == stride) else {
            return Err(TrainError::Source(format!("unknown YOLO stride {stride}")));
        };
        let Some(anchor) = MASKS[head]
            .iter()
            .position(|&a| ANCHORS[a] == [f64::from(v[3]), f64::from(v[4])])
        else {
            return Err(TrainError::Source("unknown YOLO anchor".to_owned()));
        };
        let (column, cell_row) = (v[0] as i64, v[1] as i64);
        grid[head].0 = grid[head].0.max(column + 1);
        grid[head].1 = grid[head].1.max(cell_row + 1);
        index.insert((head, anchor, column, cell_row), row);
    }
    Ok(Layout { rows: index, grid })
}

/// One object's assignment: its row and what the row should predict.
struct Assigned {
    image: i64,
    row: i64,
    offset: [f32; 2],
    log_scale: [f32; 2],
    weight: f32,
    class: usize,
}

fn assign(truths: &[Vec<TruthBox>], layout: &Layout) -> Vec<Assigned> {
    let (columns, rows) = layout.grid[0];
    let image_area = (columns * STRIDES[0] * rows * STRIDES[0]) as f32;
    let mut assigned = Vec::new();
    for (image, boxes) in truths.iter().enumerate() {
        for truth in boxes.iter().filter(|t| !t.crowd) {
            let b = truth.bbox;
            let (w, h) = (b.x1 - b.x0, b.y1 - b.y0);
            if w < 1.0 || h < 1.0 {
                continue;
            }
            let anchor = best_anchor(f64::from(w), f64::from(h));
            let Some(head) = MASKS.iter().position(|m| m.contains(&anchor)) else {
                continue;
            };
            let within = MASKS[head].iter().position(|&a| a == anchor).unwrap_or(0);
            let stride = STRIDES[head] as f32;
            let (grid_w, grid_h) = layout.grid[head];
            let (cx, cy) = ((b.x0 + b.x1) / 2.0 / stride, (b.y0 + b.y1) / 2.0 / stride);
            let column = (cx.floor() as i64).clamp(0, grid_w - 1);
            let cell_row = (cy.floor() as i64).clamp(0, grid_h - 1);
            let Some(&row) = layout.rows.get(&(head, within, column, cell_row)) else {
                continue;
            };
            let [aw, ah] = ANCHORS[anchor];
            assigned.push(Assigned {
                image: image as i64,
                row: row as i64,
                offset: [cx - column as f32, cy - cell_row as f32],
                log_scale: [(w / aw as f32).ln(), (h / ah as f32).ln()],
                weight: 2.0 - w * h / image_area,
                class: truth.class,
            });
        }
    }
    assigned
}

/// The parts of the YOLO loss of a batch (each summed over the batch, divided by its size).
#[derive(Debug)]
pub struct YoloLoss {
    pub total: Tensor,
    pub boxes: Tensor,
    pub objectness: Tensor,
    pub classes: Tensor,
}

/// The loss of prediction `rows` `[N, P, 5 + C + 5]` against padded box `targets` `[N, M, 6]`
/// (input pixels).
pub fn yolo_loss(rows: &Tensor, targets: &Tensor) -> Result<YoloLoss, TrainError> {
    let classes = row_classes(rows)?;
    let rows = rows.f_to_kind(Kind::Float)?;
    let device = rows.device();
    let size = rows.size();
    let (n, p) = (size[0], size[1]);
    let truths = truth_boxes(targets)?;
    let layout = layout(&rows, classes)?;
    let assigned = assign(&truths, &layout);

    // Background: rows not assigned and not overlapping any object (crowds included) much.
    let m = truths.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut truth_boxes = vec![0f32; n as usize * m * 4];
    for (image, boxes) in truths.iter().enumerate() {
        for (j, t) in boxes.iter().enumerate() {
            let at = (image * m + j) * 4;
            truth_boxes[at..at + 4].copy_from_slice(&[t.bbox.x0, t.bbox.y0, t.bbox.x1, t.bbox.y1]);
        }
    }
    let truth_boxes = Tensor::f_from_slice(&truth_boxes)?
        .f_view([n, m as i64, 4])?
        .f_to_device(device)?;
    let overlap = tch::no_grad(|| -> Result<Tensor, TrainError> {
        let decoded = row_boxes(&rows, classes)?;
        let (best, _) = pairwise_iou(&decoded, &truth_boxes)?.f_max_dim(2, false)?;
        Ok(best)
    })?;
    let mut counted = overlap.f_le(IGNORE_IOU)?.f_to_kind(Kind::Float)?;
    let mut object = Tensor::f_zeros([n, p], (Kind::Float, device))?;
    let zero = rows.f_sum(Kind::Float)?.f_mul_scalar(0.0)?;
    let (mut boxes_loss, mut classes_loss) = (zero.shallow_clone(), zero.shallow_clone());
    if !assigned.is_empty() {
        let image = Tensor::f_from_slice(&assigned.iter().map(|a| a.image).collect::<Vec<_>>())?
            .f_to_device(device)?;
        let row = Tensor::f_from_slice(&assigned.iter().map(|a| a.row).collect::<Vec<_>>())?
            .f_to_device(device)?;
        let flat = &image * p + &row;
        let ones = Tensor::f_ones([assigned.len() as i64], (Kind::Float, device))?;
        object = object
            .f_flatten(0, -1)?
            .f_index_put(&[Some(&flat)], &ones, false)?
            .f_view([n, p])?;
        counted = counted
            .f_flatten(0, -1)?
            .f_index_put(&[Some(&flat)], &ones, false)?
            .f_view([n, p])?;
        let picked = rows.f_flatten(0, 1)?.f_index_select(0, &flat)?;
        let float_of = |values: Vec<f32>, width: i64| -> Result<Tensor, TrainError> {
            Ok(Tensor::f_from_slice(&values)?
                .f_view([-1, width])?
                .f_to_device(device)?)
        };
        let offset = float_of(assigned.iter().flat_map(|a| a.offset).collect(), 2)?;
        let log_scale = float_of(assigned.iter().flat_map(|a| a.log_scale).collect(), 2)?;
        let weight = float_of(assigned.iter().map(|a| a.weight).collect(), 1)?;
        let xy = (picked.f_narrow(1, 0, 2)?.f_sigmoid()? - offset).f_square()?;
        let wh = (picked.f_narrow(1, 2, 2)? - log_scale).f_square()?;
        boxes_loss = ((xy + wh) * weight).f_sum(Kind::Float)?;
        let mut wanted = vec![0f32; assigned.len() * classes as usize];
        for (i, a) in assigned.iter().enumerate() {
            if let Some(slot) = wanted.get_mut(i * classes as usize + a.class) {
                *slot = 1.0;
            }
        }
        let wanted = float_of(wanted, classes)?;
        classes_loss = picked
            .f_narrow(1, BOX_VALUES, classes)?
            .f_binary_cross_entropy_with_logits(
                &wanted,
                None::<&Tensor>,
                None::<&Tensor>,
                tch::Reduction::Sum,
            )?;
    }
    let objectness = rows.f_select(2, 4)?.f_binary_cross_entropy_with_logits(
        &object,
        Some(&counted),
        None::<&Tensor>,
        tch::Reduction::Sum,
    )?;
    let batch = n.max(1) as f64;
    let boxes_loss = boxes_loss / batch;
    let classes_loss = classes_loss / batch;
    let objectness = objectness / batch;
    let total = &boxes_loss + &objectness + &classes_loss;
    Ok(YoloLoss {
        total,
        boxes: boxes_loss,
        objectness,
        classes: classes_loss,
    })
}

/// Decodes prediction `rows` into at most `top_k` detections per image, best first: score =
/// objectness x class probability, the best [`PRE_NMS`] (box, class) pairs, then greedy
/// same-class suppression above [`NMS_IOU`]; suppressed and missing rows score 0. Tensor
/// operations only (traceable).
pub fn decode(rows: &Tensor, top_k: i64) -> Result<Decoded, TrainError> {
    let classes = row_classes(rows)?;
    let rows = rows.f_to_kind(Kind::Float)?;
    let p = rows.size()[1];
    let boxes = row_boxes(&rows, classes)?;
    let scores = rows.f_narrow(2, 4, 1)?.f_sigmoid()?
        * rows.f_narrow(2, BOX_VALUES, classes)?.f_sigmoid()?;
    let candidates = PRE_NMS.min(p * classes);
    let (best, index) = scores.f_flatten(1, -1)?.f_topk(candidates, 1, true, true)?;
    let row = index.f_div_scalar_mode(classes, "floor")?;
    let class = index.f_remainder(classes)?;
    let at = row.f_unsqueeze(2)?.f_expand([-1, candidates, 4], false)?;
    let picked = boxes.f_gather(1, &at, false)?;
    // suppresses[i, j]: candidate i (better) overlaps candidate j (worse) of its class.
    let same_class = class.f_unsqueeze(2)?.f_eq_tensor(&class.f_unsqueeze(1)?)?;
    let overlapping = pairwise_iou(&picked, &picked)?.f_gt(NMS_IOU)?;
    let later = Tensor::f_ones([candidates, candidates], (Kind::Bool, rows.device()))?
        .f_triu(1)?
        .f_unsqueeze(0)?;
    let suppresses = same_class
        .f_logical_and(&overlapping)?
        .f_logical_and(&later)?
        .f_to_kind(Kind::Float)?;
    let mut keep = best.f_ones_like()?;
    for i in 0..candidates {
        let kept = keep.f_narrow(1, i, 1)?;
        let hits = suppresses.f_select(1, i)? * kept;
        keep = keep.f_mul(&(hits.f_neg()? + 1.0))?;
    }
    let kept_scores = best * keep;
    let k = top_k.min(candidates);
    let (scores, order) = kept_scores.f_topk(k, 1, true, true)?;
    let at = order.f_unsqueeze(2)?.f_expand([-1, k, 4], false)?;
    Ok(Decoded {
        boxes: picked.f_gather(1, &at, false)?,
        scores,
        classes: class.f_gather(1, &order, false)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::loader::BOX_FIELDS;
    use crate::model::yolo_head::rows as make_rows;

    /// Raw maps for a 64 px input (2x2 coarse, 4x4 fine cells) and `classes`, all `fill`.
    fn maps(n: i64, classes: i64, fill: f64) -> [Tensor; 2] {
        let c = 3 * (5 + classes);
        [
            Tensor::full([n, c, 2, 2], fill, (Kind::Float, Device::Cpu)),
            Tensor::full([n, c, 4, 4], fill, (Kind::Float, Device::Cpu)),
        ]
    }

    /// Sets one row's raw values so it decodes to `bbox` with objectness and class logits.
    fn plant(map: &Tensor, anchor: usize, cell: (i64, i64), values: &[f64]) {
        for (i, v) in values.iter().enumerate() {
            let channel = anchor as i64 * (values.len() as i64) + i as i64;
            let _ = map.get(0).get(channel).get(cell.1).get(cell.0).fill_(*v);
        }
    }

    fn logit(p: f64) -> f64 {
        (p / (1.0 - p)).ln()
    }

    #[test]
    fn best_anchor_follows_the_shape() {
        assert_eq!(best_anchor(10.0, 14.0), 0);
        assert_eq!(best_anchor(300.0, 300.0), 5);
        assert_eq!(best_anchor(80.0, 80.0), 3);
    }

    #[test]
    fn a_planted_box_decodes_and_its_duplicate_is_suppressed() {
        let [coarse, fine] = maps(1, 2, -10.0);
        // Fine head (stride 16), anchor 1 (23 x 27) at cell (1, 2): centre (24, 40), box of
        // exactly the anchor's size; class 1 at 0.9 x objectness 0.9.
        let values = [0.0, 0.0, 0.0, 0.0, logit(0.9), -10.0, logit(0.9)];
        plant(&fine, 1, (1, 2), &values);
        // The same box from anchor 2 at a lower score: suppressed.
        let tw = (23.0f64 / 37.0).ln();
        let th = (27.0f64 / 58.0).ln();
        plant(
            &fine,
            2,
            (1, 2),
            &[0.0, 0.0, tw, th, logit(0.5), -10.0, logit(0.9)],
        );
        let rows = make_rows(&[coarse, fine], 2).unwrap();
        let decoded = decode(&rows, 5).unwrap();
        let scores = Vec::<f32>::try_from(decoded.scores.get(0)).unwrap();
        assert!((scores[0] - 0.81).abs() < 1e-4, "{scores:?}");
        assert!(scores[1] < 1e-3, "duplicate kept: {scores:?}");
        let b = Vec::<f32>::try_from(decoded.boxes.get(0).get(0)).unwrap();
        let want = [24.0 - 11.5, 40.0 - 13.5, 24.0 + 11.5, 40.0 + 13.5];
        for (got, want) in b.iter().zip(want) {
            assert!((got - want).abs() < 1e-3, "{b:?}");
        }
        assert_eq!(decoded.classes.get(0).int64_value(&[0]), 1);
    }

    #[test]
    fn the_loss_is_small_for_a_perfect_prediction_and_larger_otherwise() {
        let truth = [8.0f32, 20.0, 40.0, 60.0, 0.0, 1.0];
        let targets = Tensor::from_slice(&truth).view([1, 1, BOX_FIELDS as i64]);
        // 32 x 40 box: best anchor 2 (37 x 58, fine head) at cell (1, 2) of stride 16.
        assert_eq!(best_anchor(32.0, 40.0), 2);
        let (cx, cy) = (24.0f64 / 16.0, 40.0f64 / 16.0);
        let good = [
            logit(cx - 1.0),
            logit(cy - 2.0),
            (32.0f64 / 37.0).ln(),
            (40.0f64 / 58.0).ln(),
            12.0,
            12.0,
        ];
        let [coarse, fine] = maps(1, 1, -12.0);
        plant(&fine, 2, (1, 2), &good);
        let rows = make_rows(&[coarse, fine], 1).unwrap();
        let loss = yolo_loss(&rows, &targets).unwrap();
        let perfect = loss.total.double_value(&[]);
        assert!(perfect < 0.01, "{loss:?}");
        let [coarse, fine] = maps(1, 1, -12.0);
        let mut worse = good;
        worse[2] += 0.5;
        plant(&fine, 2, (1, 2), &worse);
        let rows = make_rows(&[coarse, fine], 1).unwrap();
        let loss = yolo_loss(&rows, &targets).unwrap();
        assert!(loss.boxes.double_value(&[]) > 0.2, "{loss:?}");
        // A missed object costs objectness.
        let [coarse, fine] = maps(1, 1, -12.0);
        let rows = make_rows(&[coarse, fine], 1).unwrap();
        let missed = yolo_loss(&rows, &targets).unwrap();
        assert!(missed.objectness.double_value(&[]) > 5.0, "{missed:?}");
    }
}
