//! Swin Transformer (Liu et al., 2021, "Hierarchical Vision Transformer using Shifted
//! Windows"; V2: Liu et al., 2022, "Scaling Up Capacity and Resolution") in torchvision's
//! state-dict layout, following `torchvision/models/swin_transformer.py` (torchvision 0.28,
//! BSD-3-Clause): `features.0.{0,2}` (4x4 patch conv, channels-last layer norm),
//! `features.{1,3,5,7}.B.{norm1, attn, norm2, mlp.0, mlp.3}` (blocks), `features.{2,4,6}`
//! (patch merging), `norm` and `head`. The attention's `relative_position_index` (and V2's
//! `relative_coords_table`) are buffers in torchvision's state dict; here they are
//! non-trainable variables under the same keys, so torchvision files load strictly.
//!
//! Windows of 7 (V1) or 8 (V2) tokens; inputs whose token grid is not a multiple of the
//! window are padded at the bottom and right as torchvision does, and a shift is skipped
//! where the window covers the whole (padded) map, so any input size works (multiples of 32
//! give exact strides). Stochastic depth (0.2 / 0.3 / 0.5 for T / S / B) acts in training
//! only. No pretrained weights are shipped; the weight catalogue offers torchvision's.
//!
//! Swin has no stride-2 map: [`BackboneOutput::features`] holds the outputs of the four
//! stages (strides 4, 8, 16, 32) as NCHW maps, the last one after the final `norm` (the map
//! the pooled embedding is the average of, as a CNN's last map for Grad-CAM).

use tch::{Tensor, nn, nn::Init};

use super::ModelError;
use super::backbone::{Backbone, BackboneInfo, BackboneOutput, Normalization};
use super::layers::{conv2d, flops, global_avg_pool, linear, stochastic_depth};

const LAYER_NORM_EPS: f64 = 1e-5;
const PATCH_SIZE: i64 = 4;
const MLP_RATIO: i64 = 4;
/// Width of V2's continuous position bias MLP.
const CPB_HIDDEN: i64 = 512;
/// The attention logit added between tokens of different regions of a shifted window.
const SHIFT_MASK_VALUE: f64 = -100.0;

/// Original Swin or Swin V2 (post-norm blocks, cosine attention, continuous position bias).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwinVersion {
    /// `swin_t`, `swin_s`, `swin_b`.
    V1,
    /// `swin_v2_t`, `swin_v2_s`, `swin_v2_b`.
    V2,
}

/// The shape of a Swin Transformer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SwinConfig {
    /// Name used in projects and on the command line (torchvision's builder name).
    pub name: &'static str,
    /// Original or V2.
    pub version: SwinVersion,
    /// Token width of the first stage (doubled by every patch merging).
    pub embed_dim: i64,
    /// Blocks per stage.
    pub depths: [i64; 4],
    /// Attention heads per stage.
    pub num_heads: [i64; 4],
    /// Side of the square attention window in tokens.
    pub window: i64,
    /// Stochastic depth of the last block (linearly less before it), training only.
    pub stochastic_depth: f64,
    /// Native square input size.
    pub input_size_px: u32,
}

impl SwinConfig {
    /// torchvision's six Swin builders.
    pub const NAMED: [SwinConfig; 6] = [
        Self::v1("swin_t", 96, [2, 2, 6, 2], [3, 6, 12, 24], 0.2),
        Self::v1("swin_s", 96, [2, 2, 18, 2], [3, 6, 12, 24], 0.3),
        Self::v1("swin_b", 128, [2, 2, 18, 2], [4, 8, 16, 32], 0.5),
        Self::v2("swin_v2_t", 96, [2, 2, 6, 2], [3, 6, 12, 24], 0.2),
        Self::v2("swin_v2_s", 96, [2, 2, 18, 2], [3, 6, 12, 24], 0.3),
        Self::v2("swin_v2_b", 128, [2, 2, 18, 2], [4, 8, 16, 32], 0.5),
    ];

    const fn v1(
        name: &'static str,
        embed_dim: i64,
        depths: [i64; 4],
        num_heads: [i64; 4],
        stochastic_depth: f64,
    ) -> Self {
        Self {
            name,
            version: SwinVersion::V1,
            embed_dim,
            depths,
            num_heads,
            window: 7,
            stochastic_depth,
            input_size_px: 224,
        }
    }

    const fn v2(
        name: &'static str,
        embed_dim: i64,
        depths: [i64; 4],
        num_heads: [i64; 4],
        stochastic_depth: f64,
    ) -> Self {
        Self {
            version: SwinVersion::V2,
            window: 8,
            input_size_px: 256,
            ..Self::v1(name, embed_dim, depths, num_heads, stochastic_depth)
        }
    }

    /// The named configuration called `name`.
    pub fn by_name(name: &str) -> Option<SwinConfig> {
        Self::NAMED.into_iter().find(|c| c.name == name)
    }

    /// Token width of the last stage (and of the embedding).
    pub fn last_dim(&self) -> i64 {
        self.embed_dim * 8
    }
}

fn new_layer_norm(p: nn::Path, dim: i64) -> nn::LayerNorm {
    let config = nn::LayerNormConfig {
        eps: LAYER_NORM_EPS,
        ..Default::default()
    };
    nn::layer_norm(p, vec![dim], config)
}

fn layer_norm(ln: &nn::LayerNorm, xs: &Tensor) -> Result<Tensor, tch::TchError> {
    xs.f_layer_norm(
        &ln.normalized_shape,
        ln.ws.as_ref(),
        ln.bs.as_ref(),
        LAYER_NORM_EPS,
        true,
    )
}

/// torchvision's initialisation of every Swin linear layer: N(0, 0.02) weights (truncated
/// at +-2, i.e. not at all in practice), zero biases.
fn new_linear(p: nn::Path, fan_in: i64, fan_out: i64, bias: bool) -> nn::Linear {
    let config = nn::LinearConfig {
        ws_init: Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        },
        bs_init: Some(Init::Const(0.0)),
        bias,
    };
    nn::linear(p, fan_in, fan_out, config)
}

/// torchvision's `relative_position_index`: for every (query, key) pair of a window, the row
/// of the bias table holding their relative offset.
fn relative_position_index(window: i64) -> Vec<i64> {
    let tokens = window * window;
    let mut index = Vec::with_capacity((tokens * tokens) as usize);
    for a in 0..tokens {
        for b in 0..tokens {
            let dh = a / window - b / window + window - 1;
            let dw = a % window - b % window + window - 1;
            index.push(dh * (2 * window - 1) + dw);
        }
    }
    index
}

/// V2's `relative_coords_table` `[1, 2w-1, 2w-1, 2]`: log-spaced relative offsets.
fn relative_coords_table(window: i64) -> Vec<f32> {
    let span = (window - 1) as f32;
    let log_spaced = |offset: i64| {
        let v = offset as f32 / span * 8.0;
        v.signum() * (v.abs() + 1.0).log2() / 3.0
    };
    let mut table = Vec::with_capacity(((2 * window - 1) * (2 * window - 1) * 2) as usize);
    for h in -(window - 1)..window {
        for w in -(window - 1)..window {
            table.push(log_spaced(h));
            table.push(log_spaced(w));
        }
    }
    table
}

/// Which of the three regions of a cyclically shifted axis of `len` tokens `i` falls in;
/// one region when there is no shift (torchvision's slices then cover the whole axis).
fn shift_region(i: i64, len: i64, window: i64, shift: i64) -> i64 {
    if shift == 0 || i < len - window {
        0
    } else if i < len - shift {
        1
    } else {
        2
    }
}

/// The attention mask of shifted windows `[windows, tokens, tokens]`: 0 within a region,
/// -100 across regions that the cyclic shift brought together.
fn shift_mask(
    (height, width): (i64, i64),
    window: i64,
    (shift_h, shift_w): (i64, i64),
    device: tch::Device,
) -> Result<Tensor, tch::TchError> {
    let mut region = Vec::with_capacity((height * width) as usize);
    for y in 0..height {
        for x in 0..width {
            let id = shift_region(y, height, window, shift_h) * 3
                + shift_region(x, width, window, shift_w);
            region.push(id as f32);
        }
    }
    let tokens = window * window;
    let region = Tensor::from_slice(&region)
        .f_view([height / window, window, width / window, window])?
        .f_permute([0, 2, 1, 3])?
        .f_reshape([-1, tokens])?;
    let differs = region
        .f_unsqueeze(1)?
        .f_sub(&region.f_unsqueeze(2)?)?
        .f_ne(0.0)?;
    differs
        .f_to_kind(tch::Kind::Float)?
        .f_mul_scalar(SHIFT_MASK_VALUE)?
        .f_to_device(device)
}

/// `F.normalize(xs, dim=-1)`.
fn l2_normalize(xs: &Tensor) -> Result<Tensor, tch::TchError> {
    let norm = xs
        .f_norm_scalaropt_dim(2.0, [-1], true)?
        .f_clamp_min(1e-12)?;
    xs.f_div(&norm)
}

/// How the attention scores of a version are made.
#[derive(Debug)]
enum PositionBias {
    /// V1: a learned table with a row per relative offset.
    Table(Tensor),
    /// V2: an MLP over log-spaced offsets, and a learned per-head temperature.
    Continuous {
        coords_table: Tensor,
        mlp_0: nn::Linear,
        mlp_2: nn::Linear,
        logit_scale: Tensor,
    },
}

/// `ShiftedWindowAttention` / `ShiftedWindowAttentionV2`.
#[derive(Debug)]
struct WindowAttention {
    qkv: nn::Linear,
    proj: nn::Linear,
    bias: PositionBias,
    relative_position_index: Tensor,
    num_heads: i64,
    window: i64,
    shift: i64,
}

impl WindowAttention {
    fn new(
        p: nn::Path,
        config: &SwinConfig,
        dim: i64,
        num_heads: i64,
        shift: i64,
    ) -> Result<Self, ModelError> {
        let window = config.window;
        let table_side = 2 * window - 1;
        let bias = match config.version {
            SwinVersion::V1 => PositionBias::Table(p.f_var(
                "relative_position_bias_table",
                &[table_side * table_side, num_heads],
                Init::Randn {
                    mean: 0.0,
                    stdev: 0.02,
                },
            )?),
            SwinVersion::V2 => {
                let coords = Tensor::from_slice(&relative_coords_table(window))
                    .f_view([1, table_side, table_side, 2])?
                    .f_to_device(p.device())?;
                let mlp = &p / "cpb_mlp";
                PositionBias::Continuous {
                    coords_table: p.add("relative_coords_table", coords, false),
                    mlp_0: new_linear(&mlp / 0, 2, CPB_HIDDEN, true),
                    mlp_2: new_linear(&mlp / 2, CPB_HIDDEN, num_heads, false),
                    logit_scale: p.f_var(
                        "logit_scale",
                        &[num_heads, 1, 1],
                        Init::Const(10f64.ln()),
                    )?,
                }
            }
        };
        let index = Tensor::from_slice(&relative_position_index(window)).f_to_device(p.device())?;
        Ok(Self {
            qkv: new_linear(&p / "qkv", dim, 3 * dim, true),
            proj: new_linear(&p / "proj", dim, dim, true),
            bias,
            relative_position_index: p.add("relative_position_index", index, false),
            num_heads,
            window,
            shift,
        })
    }

    /// The position bias `[1, heads, tokens, tokens]` added to the attention scores.
    fn position_bias(&self) -> Result<Tensor, tch::TchError> {
        let tokens = self.window * self.window;
        let table = match &self.bias {
            PositionBias::Table(table) => table.shallow_clone(),
            PositionBias::Continuous {
                coords_table,
                mlp_0,
                mlp_2,
                ..
            } => {
                let hidden = linear(mlp_0, coords_table)?.f_relu()?;
                linear(mlp_2, &hidden)?.f_view([-1, self.num_heads])?
            }
        };
        let index = self.relative_position_index.f_to_kind(tch::Kind::Int64)?;
        let bias = table
            .f_index_select(0, &index)?
            .f_view([tokens, tokens, -1])?
            .f_permute([2, 0, 1])?
            .f_unsqueeze(0)?;
        match &self.bias {
            PositionBias::Table(_) => Ok(bias),
            PositionBias::Continuous { .. } => bias.f_sigmoid()?.f_mul_scalar(16.0),
        }
    }

    /// Attention within (shifted) windows of a channels-last `[N, H, W, C]` map.
    fn forward(&self, xs: &Tensor) -> Result<Tensor, tch::TchError> {
        let (n, height, width, dim) = xs.size4()?;
        let window = self.window;
        let pad_bottom = (window - height % window) % window;
        let pad_right = (window - width % window) % window;
        let xs = xs.f_constant_pad_nd([0, 0, 0, pad_right, 0, pad_bottom])?;
        let (padded_h, padded_w) = (height + pad_bottom, width + pad_right);
        // No shift along an axis the window covers whole.
        let shift_h = if window >= padded_h { 0 } else { self.shift };
        let shift_w = if window >= padded_w { 0 } else { self.shift };
        let shifted = shift_h + shift_w > 0;
        let xs = if shifted {
            xs.f_roll([-shift_h, -shift_w], [1, 2])?
        } else {
            xs
        };
        let (rows, cols) = (padded_h / window, padded_w / window);
        let windows = rows * cols;
        let tokens = window * window;
        let xs = xs
            .f_view([n, rows, window, cols, window, dim])?
            .f_permute([0, 1, 3, 2, 4, 5])?
            .f_reshape([-1, tokens, dim])?;

        let head_dim = dim / self.num_heads;
        let qkv = match &self.bias {
            PositionBias::Table(_) => linear(&self.qkv, &xs)?,
            // V2 has no key bias: torchvision zeroes the middle third of the qkv bias.
            PositionBias::Continuous { .. } => {
                let bias = match &self.qkv.bs {
                    Some(bias) => Some(Tensor::f_cat(
                        &[
                            bias.f_narrow(0, 0, dim)?,
                            bias.f_narrow(0, dim, dim)?.f_zeros_like()?,
                            bias.f_narrow(0, 2 * dim, dim)?,
                        ],
                        0,
                    )?),
                    None => None,
                };
                let ys = xs.f_linear(&self.qkv.ws, bias.as_ref())?;
                flops::record(ys.numel() as u64 * dim as u64);
                ys
            }
        };
        let qkv = qkv
            .f_reshape([-1, tokens, 3, self.num_heads, head_dim])?
            .f_permute([2, 0, 3, 1, 4])?;
        let (q, k, v) = (qkv.f_get(0)?, qkv.f_get(1)?, qkv.f_get(2)?);
        let attn = match &self.bias {
            PositionBias::Table(_) => q
                .f_mul_scalar((head_dim as f64).powf(-0.5))?
                .f_matmul(&k.f_transpose(-2, -1)?)?,
            PositionBias::Continuous { logit_scale, .. } => {
                let scale = logit_scale.f_clamp_max(100f64.ln())?.f_exp()?;
                l2_normalize(&q)?
                    .f_matmul(&l2_normalize(&k)?.f_transpose(-2, -1)?)?
                    .f_mul(&scale)?
            }
        };
        let mut attn = attn.f_add(&self.position_bias()?)?;
        if shifted {
            let mask = shift_mask(
                (padded_h, padded_w),
                window,
                (shift_h, shift_w),
                attn.device(),
            )?
            .f_to_kind(attn.kind())?;
            attn = attn
                .f_view([-1, windows, self.num_heads, tokens, tokens])?
                .f_add(&mask.f_unsqueeze(1)?.f_unsqueeze(0)?)?
                .f_view([-1, self.num_heads, tokens, tokens])?;
        }
        let attn = attn.f_softmax(-1, attn.kind())?;
        let ys = attn
            .f_matmul(&v)?
            .f_transpose(1, 2)?
            .f_reshape([-1, tokens, dim])?;
        // Q K^T and (attention) V: each windows x heads x tokens^2 x head_dim multiply-adds.
        flops::record(2 * (n * windows * tokens * tokens * dim) as u64);
        let ys = linear(&self.proj, &ys)?
            .f_view([n, rows, cols, window, window, dim])?
            .f_permute([0, 1, 3, 2, 4, 5])?
            .f_reshape([n, padded_h, padded_w, dim])?;
        let ys = if shifted {
            ys.f_roll([shift_h, shift_w], [1, 2])?
        } else {
            ys
        };
        ys.f_narrow(1, 0, height)?
            .f_narrow(2, 0, width)?
            .f_contiguous()
    }
}

/// `SwinTransformerBlock` (pre-norm) / `SwinTransformerBlockV2` (norm after attention and
/// MLP, inside the residual branch).
#[derive(Debug)]
struct SwinBlock {
    version: SwinVersion,
    norm1: nn::LayerNorm,
    attn: WindowAttention,
    norm2: nn::LayerNorm,
    mlp_0: nn::Linear,
    mlp_3: nn::Linear,
    stochastic_depth_prob: f64,
}

impl SwinBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        let sd = |ys: Tensor| stochastic_depth(ys, self.stochastic_depth_prob, train);
        let mlp = |ys: &Tensor| -> Result<Tensor, tch::TchError> {
            let hidden = linear(&self.mlp_0, ys)?.f_gelu("none")?;
            linear(&self.mlp_3, &hidden)
        };
        match self.version {
            SwinVersion::V1 => {
                let xs = xs.f_add(&sd(self.attn.forward(&layer_norm(&self.norm1, xs)?)?)?)?;
                xs.f_add(&sd(mlp(&layer_norm(&self.norm2, &xs)?)?)?)
            }
            SwinVersion::V2 => {
                let xs = xs.f_add(&sd(layer_norm(&self.norm1, &self.attn.forward(xs)?)?)?)?;
                xs.f_add(&sd(layer_norm(&self.norm2, &mlp(&xs)?)?)?)
            }
        }
    }
}

/// `PatchMerging` (norm, then reduction) / `PatchMergingV2` (reduction, then norm): every
/// 2x2 neighbourhood of tokens becomes one of twice the width.
#[derive(Debug)]
struct PatchMerging {
    version: SwinVersion,
    reduction: nn::Linear,
    norm: nn::LayerNorm,
}

impl PatchMerging {
    fn new(p: nn::Path, version: SwinVersion, dim: i64) -> Self {
        let norm_dim = match version {
            SwinVersion::V1 => 4 * dim,
            SwinVersion::V2 => 2 * dim,
        };
        Self {
            version,
            reduction: new_linear(&p / "reduction", 4 * dim, 2 * dim, false),
            norm: new_layer_norm(&p / "norm", norm_dim),
        }
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor, tch::TchError> {
        let (_, height, width, _) = xs.size4()?;
        let xs = xs.f_constant_pad_nd([0, 0, 0, width % 2, 0, height % 2])?;
        let pick = |row: i64, col: i64| xs.f_slice(1, row, None, 2)?.f_slice(2, col, None, 2);
        let xs = Tensor::f_cat(&[pick(0, 0)?, pick(1, 0)?, pick(0, 1)?, pick(1, 1)?], -1)?;
        match self.version {
            SwinVersion::V1 => linear(&self.reduction, &layer_norm(&self.norm, &xs)?),
            SwinVersion::V2 => layer_norm(&self.norm, &linear(&self.reduction, &xs)?),
        }
    }
}

/// A Swin Transformer, V1 or V2.
#[derive(Debug)]
pub struct Swin {
    info: BackboneInfo,
    patch_conv: nn::Conv2D,
    patch_norm: nn::LayerNorm,
    stages: Vec<Vec<SwinBlock>>,
    /// The patch merging after every stage but the last.
    merges: Vec<PatchMerging>,
    norm: nn::LayerNorm,
    head: Option<nn::Linear>,
}

impl Swin {
    /// The facts of the configuration `config`.
    pub fn info_for(config: &SwinConfig) -> BackboneInfo {
        BackboneInfo {
            name: config.name,
            family: "Swin",
            input_size_px: config.input_size_px,
            normalization: Normalization::IMAGENET,
            embedding_dim: config.last_dim(),
            pretrained: None,
        }
    }

    /// Builds the network under `p`; `classes` adds the `head` linear classifier.
    pub fn new(p: nn::Path, config: SwinConfig, classes: Option<i64>) -> Result<Self, ModelError> {
        let f = &p / "features";
        let conv_config = nn::ConvConfig {
            stride: PATCH_SIZE,
            ..Default::default()
        };
        let patch_conv = nn::conv2d(&f / 0 / 0, 3, config.embed_dim, PATCH_SIZE, conv_config);
        let patch_norm = new_layer_norm(&f / 0 / 2, config.embed_dim);
        let total_blocks: i64 = config.depths.iter().sum();
        let (mut stages, mut merges) = (Vec::new(), Vec::new());
        let mut block_id = 0;
        for (stage_index, (&depth, &heads)) in
            config.depths.iter().zip(&config.num_heads).enumerate()
        {
            let dim = config.embed_dim << stage_index;
            let stage_path = &f / (2 * stage_index + 1);
            let mut stage = Vec::new();
            for i in 0..depth {
                let block = &stage_path / i;
                let shift = if i % 2 == 0 { 0 } else { config.window / 2 };
                let mlp = &block / "mlp";
                stage.push(SwinBlock {
                    version: config.version,
                    norm1: new_layer_norm(&block / "norm1", dim),
                    attn: WindowAttention::new(&block / "attn", &config, dim, heads, shift)?,
                    norm2: new_layer_norm(&block / "norm2", dim),
                    mlp_0: new_linear(&mlp / 0, dim, MLP_RATIO * dim, true),
                    mlp_3: new_linear(&mlp / 3, MLP_RATIO * dim, dim, true),
                    stochastic_depth_prob: config.stochastic_depth * block_id as f64
                        / (total_blocks - 1).max(1) as f64,
                });
                block_id += 1;
            }
            stages.push(stage);
            if stage_index + 1 < config.depths.len() {
                let merge = &f / (2 * stage_index + 2);
                merges.push(PatchMerging::new(merge, config.version, dim));
            }
        }
        let last_dim = config.last_dim();
        Ok(Self {
            info: Self::info_for(&config),
            patch_conv,
            patch_norm,
            stages,
            merges,
            norm: new_layer_norm(&p / "norm", last_dim),
            head: classes.map(|classes| new_linear(&p / "head", last_dim, classes, true)),
        })
    }
}

impl Backbone for Swin {
    fn info(&self) -> &BackboneInfo {
        &self.info
    }

    fn forward_t(&self, images: &Tensor, train: bool) -> Result<BackboneOutput, ModelError> {
        let xs = conv2d(&self.patch_conv, images, PATCH_SIZE, 0, 1)?.f_permute([0, 2, 3, 1])?;
        let mut xs = layer_norm(&self.patch_norm, &xs)?;
        let mut features = Vec::with_capacity(self.stages.len());
        for (index, stage) in self.stages.iter().enumerate() {
            for block in stage {
                xs = block.forward_t(&xs, train)?;
            }
            match self.merges.get(index) {
                Some(merge) => {
                    // The merge reads the returned map (a view), so gradients of the outputs
                    // reach it (Grad-CAM).
                    let map = xs.f_permute([0, 3, 1, 2])?;
                    xs = merge.forward(&map.f_permute([0, 2, 3, 1])?)?;
                    features.push(map);
                }
                None => {
                    xs = layer_norm(&self.norm, &xs)?.f_permute([0, 3, 1, 2])?;
                    features.push(xs.shallow_clone());
                }
            }
        }
        let embedding = global_avg_pool(&xs)?;
        let logits = match &self.head {
            Some(head) => Some(linear(head, &embedding)?),
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
    fn relative_position_index_matches_torchvision_corners() {
        let index = relative_position_index(7);
        assert_eq!(index.len(), 49 * 49);
        // Same token: offset (0, 0) is the centre row of the 13 x 13 table.
        assert_eq!(index[0], 6 * 13 + 6);
        // Query (0, 0), key (6, 6): offset (-6, -6), the first row.
        assert_eq!(index[48], 0);
        // Query (6, 6), key (0, 0): offset (6, 6), the last row.
        assert_eq!(index[48 * 49], 13 * 13 - 1);
    }

    #[test]
    fn shift_regions_follow_torchvision_slices() {
        // 14 tokens, window 7, shift 3: [0, 7) [7, 11) [11, 14).
        let regions: Vec<i64> = (0..14).map(|i| shift_region(i, 14, 7, 3)).collect();
        assert_eq!(regions, [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2]);
        assert!((0..14).all(|i| shift_region(i, 14, 7, 0) == 0));
    }

    #[test]
    fn runs_in_bfloat16_as_the_frozen_passes_do() {
        for name in ["swin_t", "swin_v2_t"] {
            let mut vs = VarStore::new(Device::Cpu);
            let model = Swin::new(vs.root(), SwinConfig::by_name(name).unwrap(), None).unwrap();
            vs.bfloat16();
            // 256 px shifts every stage's windows (the mask is used everywhere).
            let images = Tensor::randn([1, 3, 256, 256], (Kind::BFloat16, Device::Cpu));
            let out = tch::no_grad(|| model.forward_t(&images, false)).unwrap();
            assert_eq!(out.embedding.kind(), Kind::BFloat16, "{name}");
        }
    }

    #[test]
    fn the_logits_depend_on_every_returned_map() {
        let vs = VarStore::new(Device::Cpu);
        let model = Swin::new(vs.root(), SwinConfig::by_name("swin_t").unwrap(), Some(3)).unwrap();
        let images = Tensor::randn([1, 3, 64, 64], (Kind::Float, Device::Cpu))
            .permute([0, 2, 3, 1])
            .contiguous()
            .permute([0, 3, 1, 2])
            .set_requires_grad(true);
        let mut vs = vs;
        vs.freeze();
        let out = model.forward_t(&images, false).unwrap();
        let score = out.logits.unwrap().sum(Kind::Float);
        let grads = Tensor::run_backward(&[score], &out.features, false, false);
        assert_eq!(grads.len(), 4);
        for grad in grads {
            assert!(grad.abs().sum(Kind::Double).double_value(&[]) > 0.0);
        }
    }

    #[test]
    fn four_stage_maps_at_strides_4_to_32_also_for_padded_inputs() {
        for name in ["swin_t", "swin_v2_t"] {
            let vs = VarStore::new(Device::Cpu);
            let config = SwinConfig::by_name(name).unwrap();
            let model = Swin::new(vs.root(), config, Some(10)).unwrap();
            // 96 x 160: 24 x 40 tokens, padded to windows in every stage.
            let images = Tensor::randn([2, 3, 96, 160], (Kind::Float, Device::Cpu));
            let out = model.forward_t(&images, true).unwrap();
            let sizes: Vec<Vec<i64>> = out.features.iter().map(|f| f.size()).collect();
            assert_eq!(
                sizes,
                [
                    vec![2, 96, 24, 40],
                    vec![2, 192, 12, 20],
                    vec![2, 384, 6, 10],
                    vec![2, 768, 3, 5]
                ],
                "{name}"
            );
            assert_eq!(out.embedding.size(), [2, 768]);
            assert_eq!(out.logits.unwrap().size(), [2, 10]);
        }
    }
}
