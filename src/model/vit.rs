//! Vision Transformer (Dosovitskiy et al., 2021, "An Image is Worth 16x16 Words") with
//! torchvision's state-dict key names, following `torchvision/models/vision_transformer.py`
//! (torchvision 0.28, BSD-3-Clause): `conv_proj`, `class_token`, `encoder.pos_embedding`,
//! `encoder.layers.encoder_layer_N.{ln_1, self_attention, ln_2, mlp.0, mlp.3}`, `encoder.ln`
//! and `heads.head`. Pre-norm blocks, LayerNorm epsilon 1e-6, exact (erf) GELU, dropout only
//! in training, and torchvision's initialisation.
//!
//! The named configurations are torchvision's `vit_b_16`, `vit_b_32`, `vit_l_16`, `vit_l_32`
//! and `vit_h_14` at 224 px, the same networks at the sizes of their SWAG end-to-end weights
//! (`vit_b_16_384`, `vit_l_16_512`, `vit_h_14_518`: longer position embeddings), and
//! `vit_tiny_16` (ViT-Ti/16 widths as in DeiT-Ti: hidden 192, 3 heads, MLP 768, in the same
//! key layout), which trains at a useful speed on a CPU. No pretrained weights are shipped;
//! the weight catalogue downloads torchvision's.
//!
//! ViT has a single scale: [`BackboneOutput::features`] holds one map at stride `patch_size`
//! (16), the patch tokens entering the last encoder block (after its `ln_1`) laid out as
//! `[N, hidden, H / 16, W / 16]`. The tokens *leaving* the last block are not used because the
//! class token (hence the embedding and the logits) does not depend on them, so Grad-CAM would
//! see zero gradients there; this is the layer pytorch-grad-cam's ViT recipe targets too. The
//! block's attention reads its input back from that map, so gradients of the embedding and
//! logits reach the returned tensor.
//!
//! Inputs whose sides are multiples of the patch size but differ from the configured size are
//! accepted: the positional embeddings of the patch grid are resized bicubically with aligned
//! corners, as torchvision's `interpolate_embeddings` does (here also for non-square grids).

use tch::{Tensor, nn, nn::Init};

use super::ModelError;
use super::backbone::{Backbone, BackboneInfo, BackboneOutput, Normalization};
use super::layers::{conv2d, flops, linear, packed_self_attention};

/// LayerNorm epsilon of torchvision's ViT.
const LN_EPS: f64 = 1e-6;

/// The shape of a Vision Transformer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VitConfig {
    /// Name used in projects and on the command line.
    pub name: &'static str,
    /// Square input size the positional embeddings are made for.
    pub image_size_px: i64,
    /// Side of the square patches (and stride of the patch projection).
    pub patch_size_px: i64,
    /// Number of encoder blocks.
    pub num_layers: i64,
    /// Attention heads per block.
    pub num_heads: i64,
    /// Token width.
    pub hidden_dim: i64,
    /// Width of the MLP inside each block.
    pub mlp_dim: i64,
    /// Dropout after the embeddings, the attention and the MLP layers (training only).
    pub dropout: f64,
    /// Dropout on the attention weights (training only).
    pub attention_dropout: f64,
}

impl VitConfig {
    /// torchvision's `vit_b_16`.
    pub const VIT_B_16: VitConfig = VitConfig {
        name: "vit_b_16",
        image_size_px: 224,
        patch_size_px: 16,
        num_layers: 12,
        num_heads: 12,
        hidden_dim: 768,
        mlp_dim: 3072,
        dropout: 0.0,
        attention_dropout: 0.0,
    };

    /// ViT-Ti/16 widths in torchvision's layout.
    pub const VIT_TINY_16: VitConfig = VitConfig {
        name: "vit_tiny_16",
        image_size_px: 224,
        patch_size_px: 16,
        num_layers: 12,
        num_heads: 3,
        hidden_dim: 192,
        mlp_dim: 768,
        dropout: 0.0,
        attention_dropout: 0.0,
    };

    /// torchvision's `vit_b_32`.
    pub const VIT_B_32: VitConfig = VitConfig {
        name: "vit_b_32",
        patch_size_px: 32,
        ..Self::VIT_B_16
    };

    /// torchvision's `vit_l_16`.
    pub const VIT_L_16: VitConfig = VitConfig {
        name: "vit_l_16",
        num_layers: 24,
        num_heads: 16,
        hidden_dim: 1024,
        mlp_dim: 4096,
        ..Self::VIT_B_16
    };

    /// torchvision's `vit_l_32`.
    pub const VIT_L_32: VitConfig = VitConfig {
        name: "vit_l_32",
        patch_size_px: 32,
        ..Self::VIT_L_16
    };

    /// torchvision's `vit_h_14`.
    pub const VIT_H_14: VitConfig = VitConfig {
        name: "vit_h_14",
        patch_size_px: 14,
        num_layers: 32,
        num_heads: 16,
        hidden_dim: 1280,
        mlp_dim: 5120,
        ..Self::VIT_B_16
    };

    /// `vit_b_16` at 384 px, the size of its SWAG end-to-end weights.
    pub const VIT_B_16_384: VitConfig = VitConfig {
        name: "vit_b_16_384",
        image_size_px: 384,
        ..Self::VIT_B_16
    };

    /// `vit_l_16` at 512 px, the size of its SWAG end-to-end weights.
    pub const VIT_L_16_512: VitConfig = VitConfig {
        name: "vit_l_16_512",
        image_size_px: 512,
        ..Self::VIT_L_16
    };

    /// `vit_h_14` at 518 px, the size of its SWAG end-to-end weights.
    pub const VIT_H_14_518: VitConfig = VitConfig {
        name: "vit_h_14_518",
        image_size_px: 518,
        ..Self::VIT_H_14
    };

    /// The named configurations.
    pub const NAMED: [VitConfig; 9] = [
        Self::VIT_TINY_16,
        Self::VIT_B_16,
        Self::VIT_B_16_384,
        Self::VIT_B_32,
        Self::VIT_L_16,
        Self::VIT_L_16_512,
        Self::VIT_L_32,
        Self::VIT_H_14,
        Self::VIT_H_14_518,
    ];

    /// The named configuration called `name`.
    pub fn by_name(name: &str) -> Option<VitConfig> {
        Self::NAMED.into_iter().find(|c| c.name == name)
    }

    /// Patches per side at the configured input size.
    fn grid_side(&self) -> i64 {
        self.image_size_px / self.patch_size_px
    }

    fn validate(&self) -> Result<(), ModelError> {
        let problem = if self.patch_size_px < 1 || self.image_size_px % self.patch_size_px != 0 {
            Some("the image size must be a positive multiple of the patch size")
        } else if self.image_size_px < self.patch_size_px {
            Some("the image size must be at least the patch size")
        } else if self.num_layers < 1 || self.num_heads < 1 || self.mlp_dim < 1 {
            Some("layers, heads and MLP width must be positive")
        } else if self.hidden_dim < 1 || self.hidden_dim % self.num_heads != 0 {
            Some("the hidden width must be a positive multiple of the number of heads")
        } else {
            None
        };
        match problem {
            Some(reason) => Err(ModelError::Config {
                model: self.name.to_owned(),
                reason: reason.to_owned(),
            }),
            None => Ok(()),
        }
    }
}

/// A fallible LayerNorm forward pass with ViT's epsilon (also DINOv2's).
pub(super) fn layer_norm(ln: &nn::LayerNorm, xs: &Tensor) -> Result<Tensor, tch::TchError> {
    xs.f_layer_norm(
        &ln.normalized_shape,
        ln.ws.as_ref(),
        ln.bs.as_ref(),
        LN_EPS,
        true,
    )
}

/// A LayerNorm over `dim` with ViT's epsilon.
pub(super) fn new_layer_norm(p: nn::Path, dim: i64) -> nn::LayerNorm {
    let config = nn::LayerNormConfig {
        eps: LN_EPS,
        ..Default::default()
    };
    nn::layer_norm(p, vec![dim], config)
}

/// `xavier_uniform_` as a tch initialiser for a `[fan_out, fan_in]` weight.
fn xavier_uniform(fan_in: i64, fan_out: i64) -> Init {
    let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// `nn.MultiheadAttention` with `batch_first=True` and packed input projections.
#[derive(Debug)]
struct SelfAttention {
    in_proj_weight: Tensor,
    in_proj_bias: Tensor,
    out_proj: nn::Linear,
    num_heads: i64,
    dropout: f64,
}

impl SelfAttention {
    fn new(p: nn::Path, config: &VitConfig) -> Result<Self, ModelError> {
        let dim = config.hidden_dim;
        // As `MultiheadAttention._reset_parameters`: Xavier-uniform packed projection, zero
        // biases; the output projection keeps `Linear`'s uniform(+-1/sqrt(fan_in)) weight.
        let in_proj_weight = p.f_var(
            "in_proj_weight",
            &[3 * dim, dim],
            xavier_uniform(dim, 3 * dim),
        )?;
        let in_proj_bias = p.f_var("in_proj_bias", &[3 * dim], Init::Const(0.0))?;
        let bound = 1.0 / (dim as f64).sqrt();
        let out_config = nn::LinearConfig {
            ws_init: Init::Uniform {
                lo: -bound,
                up: bound,
            },
            bs_init: Some(Init::Const(0.0)),
            bias: true,
        };
        let out_proj = nn::linear(&p / "out_proj", dim, dim, out_config);
        Ok(Self {
            in_proj_weight,
            in_proj_bias,
            out_proj,
            num_heads: config.num_heads,
            dropout: config.attention_dropout,
        })
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        let dim = xs.size3()?.2;
        let qkv = xs.f_linear(&self.in_proj_weight, Some(&self.in_proj_bias))?;
        flops::record(qkv.numel() as u64 * dim as u64);
        let dropout = if train { self.dropout } else { 0.0 };
        let ys = packed_self_attention(&qkv, self.num_heads, dropout)?;
        linear(&self.out_proj, &ys)
    }
}

/// One pre-norm encoder block (`EncoderBlock`).
#[derive(Debug)]
struct EncoderBlock {
    ln_1: nn::LayerNorm,
    self_attention: SelfAttention,
    ln_2: nn::LayerNorm,
    mlp_0: nn::Linear,
    mlp_3: nn::Linear,
    dropout: f64,
}

impl EncoderBlock {
    fn new(p: nn::Path, config: &VitConfig) -> Result<Self, ModelError> {
        let (dim, mlp_dim) = (config.hidden_dim, config.mlp_dim);
        // As `MLPBlock`: Xavier-uniform weights, biases ~ N(0, 1e-6).
        let mlp_config = |fan_in, fan_out| nn::LinearConfig {
            ws_init: xavier_uniform(fan_in, fan_out),
            bs_init: Some(Init::Randn {
                mean: 0.0,
                stdev: 1e-6,
            }),
            bias: true,
        };
        let mlp = &p / "mlp";
        Ok(Self {
            ln_1: new_layer_norm(&p / "ln_1", dim),
            self_attention: SelfAttention::new(&p / "self_attention", config)?,
            ln_2: new_layer_norm(&p / "ln_2", dim),
            mlp_0: nn::linear(&mlp / 0, dim, mlp_dim, mlp_config(dim, mlp_dim)),
            mlp_3: nn::linear(&mlp / 3, mlp_dim, dim, mlp_config(mlp_dim, dim)),
            dropout: config.dropout,
        })
    }

    /// Runs the block. With `grid` (`grid_h`, `grid_w`) the normalised patch tokens are laid
    /// out as an `[N, D, grid_h, grid_w]` map, which is returned and which the attention reads
    /// from, so gradients of the outputs reach it (Grad-CAM).
    fn forward_t(
        &self,
        input: &Tensor,
        train: bool,
        grid: Option<(i64, i64)>,
    ) -> Result<(Tensor, Option<Tensor>), tch::TchError> {
        let mut normed = layer_norm(&self.ln_1, input)?;
        let map = match grid {
            Some((grid_h, grid_w)) => {
                let (_, _, dim) = normed.size3()?;
                let map = normed
                    .f_narrow(1, 1, grid_h * grid_w)?
                    .f_permute([0, 2, 1])?
                    .f_reshape([-1, dim, grid_h, grid_w])?;
                let patches = map.f_flatten(2, 3)?.f_permute([0, 2, 1])?;
                normed = Tensor::f_cat(&[normed.f_narrow(1, 0, 1)?, patches], 1)?;
                Some(map)
            }
            None => None,
        };
        let xs = self.self_attention.forward_t(&normed, train)?;
        let xs = xs.f_dropout(self.dropout, train)?.f_add(input)?;
        let ys = layer_norm(&self.ln_2, &xs)?;
        let ys = linear(&self.mlp_0, &ys)?.f_gelu("none")?;
        let ys = ys.f_dropout(self.dropout, train)?;
        let ys = linear(&self.mlp_3, &ys)?.f_dropout(self.dropout, train)?;
        Ok((xs.f_add(&ys)?, map))
    }
}

/// A Vision Transformer with a class token.
#[derive(Debug)]
pub struct VisionTransformer {
    info: BackboneInfo,
    config: VitConfig,
    conv_proj: nn::Conv2D,
    class_token: Tensor,
    pos_embedding: Tensor,
    layers: Vec<EncoderBlock>,
    ln: nn::LayerNorm,
    head: Option<nn::Linear>,
}

impl VisionTransformer {
    /// The facts of the configuration `config`.
    pub fn info_for(config: &VitConfig) -> BackboneInfo {
        BackboneInfo {
            name: config.name,
            family: "VisionTransformer",
            input_size_px: u32::try_from(config.image_size_px).unwrap_or(0),
            normalization: Normalization::IMAGENET,
            embedding_dim: config.hidden_dim,
            pretrained: None,
        }
    }

    /// Builds the network under `p`; `classes` adds the `heads.head` linear classifier.
    pub fn new(p: nn::Path, config: VitConfig, classes: Option<i64>) -> Result<Self, ModelError> {
        config.validate()?;
        let (dim, patch) = (config.hidden_dim, config.patch_size_px);
        let fan_in = 3 * patch * patch;
        let conv_config = nn::ConvConfig {
            stride: patch,
            // torchvision: trunc_normal_(std=sqrt(1/fan_in)) cut at +-2, which is > 20 std here.
            ws_init: Init::Randn {
                mean: 0.0,
                stdev: (1.0 / fan_in as f64).sqrt(),
            },
            bs_init: Init::Const(0.0),
            ..Default::default()
        };
        let conv_proj = nn::conv2d(&p / "conv_proj", 3, dim, patch, conv_config);
        let class_token = p.f_var("class_token", &[1, 1, dim], Init::Const(0.0))?;
        let encoder = &p / "encoder";
        let seq = config.grid_side() * config.grid_side() + 1;
        let pos_embedding = encoder.f_var(
            "pos_embedding",
            &[1, seq, dim],
            Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
        )?;
        let blocks = &encoder / "layers";
        let layers = (0..config.num_layers)
            .map(|i| EncoderBlock::new(&blocks / format!("encoder_layer_{i}"), &config))
            .collect::<Result<Vec<_>, _>>()?;
        let ln = new_layer_norm(&encoder / "ln", dim);
        let head_config = nn::LinearConfig {
            ws_init: Init::Const(0.0),
            bs_init: Some(Init::Const(0.0)),
            bias: true,
        };
        let head = classes.map(|c| nn::linear(&p / "heads" / "head", dim, c, head_config));
        Ok(Self {
            info: Self::info_for(&config),
            config,
            conv_proj,
            class_token,
            pos_embedding,
            layers,
            ln,
            head,
        })
    }

    /// The configuration this network was built with.
    pub fn config(&self) -> &VitConfig {
        &self.config
    }

    /// Positional embeddings for a `grid_h x grid_w` patch grid (resized bicubically when it
    /// differs from the configured grid; the class token's embedding is kept as is).
    fn pos_embedding_for(&self, grid_h: i64, grid_w: i64) -> Result<Tensor, tch::TchError> {
        let side = self.config.grid_side();
        if (grid_h, grid_w) == (side, side) {
            return Ok(self.pos_embedding.shallow_clone());
        }
        let dim = self.config.hidden_dim;
        let token = self.pos_embedding.f_narrow(1, 0, 1)?;
        let grid = self
            .pos_embedding
            .f_narrow(1, 1, side * side)?
            .f_permute([0, 2, 1])?
            .f_reshape([1, dim, side, side])?
            .f_upsample_bicubic2d([grid_h, grid_w], true, None, None)?
            .f_reshape([1, dim, grid_h * grid_w])?
            .f_permute([0, 2, 1])?;
        Tensor::f_cat(&[token, grid], 1)
    }

    /// Checks the input shape and returns the batch size and the patch grid size.
    fn grid_for(&self, images: &Tensor) -> Result<(i64, i64, i64), ModelError> {
        let size = images.size();
        let (n, height_px, width_px) = match size.as_slice() {
            [n, 3, h, w] => (*n, *h, *w),
            _ => {
                return Err(ModelError::Torch(tch::TchError::Shape(format!(
                    "{} expects [N, 3, H, W] images, got {size:?}",
                    self.config.name
                ))));
            }
        };
        let patch = self.config.patch_size_px;
        if height_px < patch || width_px < patch || height_px % patch != 0 || width_px % patch != 0
        {
            return Err(ModelError::InputSize {
                model: self.config.name.to_owned(),
                height_px,
                width_px,
                reason: format!(
                    "both sides must be multiples of the patch size {patch} px (configured size {} px)",
                    self.config.image_size_px
                ),
            });
        }
        Ok((n, height_px / patch, width_px / patch))
    }
}

impl Backbone for VisionTransformer {
    fn info(&self) -> &BackboneInfo {
        &self.info
    }

    fn forward_t(&self, images: &Tensor, train: bool) -> Result<BackboneOutput, ModelError> {
        let (_, grid_h, grid_w) = self.grid_for(images)?;
        let (dim, patch) = (self.config.hidden_dim, self.config.patch_size_px);
        // [N, 3, H, W] -> [N, D, H/p, W/p] -> [N, H/p * W/p, D]
        let xs = conv2d(&self.conv_proj, images, patch, 0, 1)?
            .f_reshape([-1, dim, grid_h * grid_w])?
            .f_permute([0, 2, 1])?;
        // `expand_as` keeps the batch size symbolic when the model is traced (export).
        let class_token = self.class_token.f_expand_as(&xs.f_narrow(1, 0, 1)?)?;
        let xs = Tensor::f_cat(&[class_token, xs], 1)?;
        let mut xs = xs
            .f_add(&self.pos_embedding_for(grid_h, grid_w)?)?
            .f_dropout(self.config.dropout, train)?;
        let mut features = Vec::with_capacity(1);
        let last = self.layers.len().saturating_sub(1);
        for (index, layer) in self.layers.iter().enumerate() {
            let grid = (index == last).then_some((grid_h, grid_w));
            let (ys, map) = layer.forward_t(&xs, train, grid)?;
            xs = ys;
            features.extend(map);
        }
        let xs = layer_norm(&self.ln, &xs)?;
        // The class token after `encoder.ln`, as torchvision's forward before `heads`.
        let embedding = xs.f_select(1, 0)?;
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

    fn small() -> VitConfig {
        VitConfig {
            name: "vit_test",
            image_size_px: 32,
            patch_size_px: 8,
            num_layers: 2,
            num_heads: 2,
            hidden_dim: 16,
            mlp_dim: 32,
            dropout: 0.1,
            attention_dropout: 0.1,
        }
    }

    #[test]
    fn shapes_and_single_scale_features() {
        let vs = VarStore::new(Device::Cpu);
        let model = VisionTransformer::new(vs.root(), small(), Some(5)).unwrap();
        let images = Tensor::randn([2, 3, 32, 48], (Kind::Float, Device::Cpu));
        let out = model.forward_t(&images, true).unwrap();
        assert_eq!(out.embedding.size(), vec![2, 16]);
        assert_eq!(out.logits.unwrap().size(), vec![2, 5]);
        assert_eq!(out.features.len(), 1);
        assert_eq!(out.features[0].size(), vec![2, 16, 4, 6]);
    }

    #[test]
    fn bad_inputs_and_configs_are_errors() {
        let vs = VarStore::new(Device::Cpu);
        let model = VisionTransformer::new(vs.root(), small(), None).unwrap();
        let images = Tensor::zeros([1, 3, 33, 32], (Kind::Float, Device::Cpu));
        let err = model.forward_t(&images, false).unwrap_err();
        assert!(matches!(err, ModelError::InputSize { .. }), "{err}");
        assert!(err.to_string().contains("33x32"), "{err}");
        let bad = VitConfig {
            num_heads: 3,
            ..small()
        };
        let vs = VarStore::new(Device::Cpu);
        assert!(matches!(
            VisionTransformer::new(vs.root(), bad, None),
            Err(ModelError::Config { .. })
        ));
    }

    #[test]
    fn named_configs_are_found() {
        assert_eq!(VitConfig::by_name("vit_b_16"), Some(VitConfig::VIT_B_16));
        assert_eq!(VitConfig::by_name("vit_tiny_16").unwrap().hidden_dim, 192);
        assert!(VitConfig::by_name("vit_x").is_none());
    }
}
