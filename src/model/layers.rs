//! Small building blocks shared by the CNN families: convolution + batch norm + activation
//! with fallible forward passes.

use tch::{Tensor, nn};

/// The activation applied after a [`ConvBn`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// No activation (linear bottleneck).
    Identity,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `max(x, 0)`.
    Relu,
    /// `x * sigmoid(x)` (Swish).
    Silu,
    /// `x * relu6(x + 3) / 6`.
    Hardswish,
    /// `relu6(x + 3) / 6`.
    Hardsigmoid,
    /// Gaussian error linear unit (exact, erf form).
    Gelu,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
}

impl Activation {
    /// Applies the activation.
    pub fn apply(self, xs: Tensor) -> Result<Tensor, tch::TchError> {
        match self {
            Activation::Identity => Ok(xs),
            Activation::Relu6 => xs.f_relu6(),
            Activation::Relu => xs.f_relu(),
            Activation::Silu => xs.f_silu(),
            Activation::Hardswish => xs.f_hardswish(),
            Activation::Hardsigmoid => xs.f_hardsigmoid(),
            Activation::Gelu => xs.f_gelu("none"),
            Activation::Sigmoid => xs.f_sigmoid(),
        }
    }

    /// Applies the activation to a tensor nothing else holds (a fresh convolution or norm
    /// output): ReLU and ReLU6 then overwrite it in place, as torchvision's `inplace=True`
    /// modules do, which saves allocating a second activation-sized tensor. Their gradients
    /// need only the output, so autograd is unaffected.
    pub fn apply_to_fresh(self, mut xs: Tensor) -> Result<Tensor, tch::TchError> {
        match self {
            Activation::Relu6 => xs.f_relu6_(),
            Activation::Relu => xs.f_relu_(),
            other => other.apply(xs),
        }
    }
}

/// Geometry of a 2-D convolution.
#[derive(Clone, Copy, Debug)]
pub struct ConvSpec {
    /// Input channels.
    pub in_channels: i64,
    /// Output channels.
    pub out_channels: i64,
    /// Square kernel size.
    pub kernel: i64,
    /// Stride in both directions.
    pub stride: i64,
    /// Channel groups (equal to the channels for a depthwise convolution).
    pub groups: i64,
}

impl ConvSpec {
    /// A `kernel x kernel` convolution with "same"-style symmetric padding.
    pub fn new(in_channels: i64, out_channels: i64, kernel: i64) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel,
            stride: 1,
            groups: 1,
        }
    }

    /// The same convolution with another stride.
    pub fn stride(mut self, stride: i64) -> Self {
        self.stride = stride;
        self
    }

    /// The same convolution in `groups` channel groups.
    pub fn groups(mut self, groups: i64) -> Self {
        self.groups = groups;
        self
    }

    /// The same convolution as a depthwise one.
    pub fn depthwise(mut self) -> Self {
        self.groups = self.in_channels;
        self
    }
}

/// Multi-head self-attention on packed projections: `qkv` is `[N, S, 3 * D]` (queries, keys
/// and values side by side, as a fused projection gives them), the result `[N, S, D]`
/// before the output projection. Scaled dot products with `dropout` on the attention
/// weights; the multiply-adds of Q K^T and (attention) V are counted.
pub fn packed_self_attention(
    qkv: &Tensor,
    heads: i64,
    dropout: f64,
) -> Result<Tensor, tch::TchError> {
    let (n, seq, width) = qkv.size3()?;
    let dim = width / 3;
    // [N, S, 3 * D] -> [3, N, heads, S, head_dim]
    let qkv = qkv
        .f_reshape([-1, seq, 3, heads, dim / heads])?
        .f_permute([2, 0, 3, 1, 4])?;
    let (q, k, v) = (qkv.f_get(0)?, qkv.f_get(1)?, qkv.f_get(2)?);
    let ys = Tensor::f_scaled_dot_product_attention(
        &q,
        &k,
        &v,
        None::<Tensor>,
        dropout,
        false,
        None,
        false,
    )?;
    // Each of the two products: N x heads x S x S x head_dim multiply-adds.
    flops::record(2 * (n * seq * seq * dim) as u64);
    // -1 keeps the batch size symbolic in a traced export.
    ys.f_transpose(1, 2)?.f_reshape([-1, seq, dim])
}

/// A bias-free convolution followed by batch norm and an activation, the way torchvision's
/// `Conv2dNormActivation` stores it (the conv and the norm under two key prefixes).
#[derive(Debug)]
pub struct ConvBn {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
    spec: ConvSpec,
    bn_eps: f64,
    activation: Activation,
}

impl ConvBn {
    /// Creates the conv under `conv_path` and the norm under `bn_path`.
    pub fn new(
        conv_path: nn::Path,
        bn_path: nn::Path,
        spec: ConvSpec,
        bn_eps: f64,
        activation: Activation,
    ) -> Self {
        let conv_config = nn::ConvConfig {
            stride: spec.stride,
            padding: (spec.kernel - 1) / 2,
            groups: spec.groups,
            bias: false,
            ..Default::default()
        };
        let conv = nn::conv2d(
            conv_path,
            spec.in_channels,
            spec.out_channels,
            spec.kernel,
            conv_config,
        );
        let bn_config = nn::BatchNormConfig {
            eps: bn_eps,
            ..Default::default()
        };
        let bn = nn::batch_norm2d(bn_path, spec.out_channels, bn_config);
        Self {
            conv,
            bn,
            spec,
            bn_eps,
            activation,
        }
    }

    /// torchvision layout: conv at `p.0`, norm at `p.1`.
    pub fn torchvision(p: nn::Path, spec: ConvSpec, activation: Activation) -> Self {
        Self::new(&p / 0, &p / 1, spec, 1e-5, activation)
    }

    /// Runs conv, norm and activation (batch statistics when `train`).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        let padding = (self.spec.kernel - 1) / 2;
        let ys = conv2d(&self.conv, xs, self.spec.stride, padding, self.spec.groups)?;
        let ys = batch_norm(&self.bn, &ys, train, self.bn_eps)?;
        self.activation.apply_to_fresh(ys)
    }
}

/// Running-statistics momentum of batch norm (PyTorch's default).
pub const BN_MOMENTUM: f64 = 0.1;

/// A fallible batch-norm forward pass over a tch `BatchNorm` built with epsilon `eps`.
pub fn batch_norm(
    bn: &nn::BatchNorm,
    xs: &Tensor,
    train: bool,
    eps: f64,
) -> Result<Tensor, tch::TchError> {
    batch_norm_with_momentum(bn, xs, train, eps, BN_MOMENTUM)
}

/// [`batch_norm`] with its own running-statistics momentum. Every batch-norm pass of the
/// backbones goes through here, where a study's recorder sees its input
/// ([`super::bn_statistics`]).
pub fn batch_norm_with_momentum(
    bn: &nn::BatchNorm,
    xs: &Tensor,
    train: bool,
    eps: f64,
    momentum: f64,
) -> Result<Tensor, tch::TchError> {
    super::bn_statistics::observe(xs, &bn.running_mean, &bn.running_var)?;
    xs.f_batch_norm(
        bn.ws.as_ref(),
        bn.bs.as_ref(),
        Some(&bn.running_mean),
        Some(&bn.running_var),
        train,
        momentum,
        eps,
        true,
    )
}

/// `xs` in the precision of `weight` (a shallow copy when it already is): layers follow their
/// weights, so a store converted in part (see [`crate::model::precision`]) runs as mixed
/// precision.
fn in_kind_of(xs: &Tensor, weight: &Tensor) -> Result<Tensor, tch::TchError> {
    if xs.kind() == weight.kind() {
        Ok(xs.shallow_clone())
    } else {
        xs.f_to_kind(weight.kind())
    }
}

/// A fallible 2-D convolution with symmetric padding; counts its multiply-adds.
pub fn conv2d(
    conv: &nn::Conv2D,
    xs: &Tensor,
    stride: i64,
    padding: i64,
    groups: i64,
) -> Result<Tensor, tch::TchError> {
    let xs = &in_kind_of(xs, &conv.ws)?;
    let ys = xs.f_conv2d(
        &conv.ws,
        conv.bs.as_ref(),
        [stride, stride],
        [padding, padding],
        [1, 1],
        groups,
    )?;
    // Every output element costs (input channels per group) x kernel area multiply-adds.
    let per_output: i64 = conv.ws.size().iter().skip(1).product();
    flops::record(ys.numel() as u64 * per_output as u64);
    Ok(ys)
}

/// A fallible linear layer forward pass; counts its multiply-adds.
pub fn linear(layer: &nn::Linear, xs: &Tensor) -> Result<Tensor, tch::TchError> {
    let xs = &in_kind_of(xs, &layer.ws)?;
    let ys = xs.f_linear(&layer.ws, layer.bs.as_ref())?;
    let in_features = layer.ws.size().get(1).copied().unwrap_or(0);
    flops::record(ys.numel() as u64 * in_features as u64);
    Ok(ys)
}

/// Counting multiply-adds of a forward pass (torchvision reports these as "GFLOPS").
/// Layers call [`flops::record`]; [`flops::count`] runs a closure with counting on.
pub mod flops {
    use std::cell::Cell;

    thread_local! {
        static MACS: Cell<Option<u64>> = const { Cell::new(None) };
    }

    /// Adds `macs` multiply-adds to the running count, if one is running on this thread.
    pub fn record(macs: u64) {
        MACS.with(|c| {
            if let Some(total) = c.get() {
                c.set(Some(total.saturating_add(macs)));
            }
        });
    }

    /// Runs `f` and returns its result with the multiply-adds recorded meanwhile.
    pub fn count<R>(f: impl FnOnce() -> R) -> (R, u64) {
        let outer = MACS.with(|c| c.replace(Some(0)));
        let result = f();
        let counted = MACS.with(|c| c.replace(outer)).unwrap_or(0);
        (result, counted)
    }
}

/// Global average pooling to `[N, C]`.
pub fn global_avg_pool(xs: &Tensor) -> Result<Tensor, tch::TchError> {
    xs.f_adaptive_avg_pool2d([1, 1])?.f_flatten(1, -1)
}

/// A [`ConvBn`] whose batch norm updates its running statistics with another momentum
/// (torchvision's MobileNetV3 uses `BatchNorm2d(eps=1e-3, momentum=0.01)`).
#[derive(Debug)]
pub struct ConvBnMomentum {
    conv_bn: ConvBn,
    momentum: f64,
}

impl ConvBnMomentum {
    /// Wraps `conv_bn`, replacing its batch-norm momentum by `momentum`.
    pub fn new(conv_bn: ConvBn, momentum: f64) -> Self {
        Self { conv_bn, momentum }
    }

    /// Runs conv, norm and activation (batch statistics when `train`).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, tch::TchError> {
        let c = &self.conv_bn;
        let padding = (c.spec.kernel - 1) / 2;
        let ys = conv2d(&c.conv, xs, c.spec.stride, padding, c.spec.groups)?;
        let ys = batch_norm_with_momentum(&c.bn, &ys, train, c.bn_eps, self.momentum)?;
        c.activation.apply_to_fresh(ys)
    }
}

/// torchvision's `_make_divisible`: rounds `channels` to the nearest multiple of `divisor`
/// (at least `divisor`), never going more than 10% below it.
pub fn make_divisible(channels: f64, divisor: i64) -> i64 {
    let rounded = ((channels + divisor as f64 / 2.0) as i64 / divisor * divisor).max(divisor);
    if (rounded as f64) < 0.9 * channels {
        rounded + divisor
    } else {
        rounded
    }
}

/// torchvision's `SqueezeExcitation`: the input scaled per channel by
/// `scale_activation(fc2(activation(fc1(avgpool(x)))))`, `fc1`/`fc2` being 1x1 convs with bias.
#[derive(Debug)]
pub struct SqueezeExcitation {
    fc1: nn::Conv2D,
    fc2: nn::Conv2D,
    activation: Activation,
    scale_activation: Activation,
}

impl SqueezeExcitation {
    /// Creates `fc1` and `fc2` under `p`.
    pub fn new(
        p: nn::Path,
        input_channels: i64,
        squeeze_channels: i64,
        activation: Activation,
        scale_activation: Activation,
    ) -> Self {
        let config = nn::ConvConfig::default();
        Self {
            fc1: nn::conv2d(&p / "fc1", input_channels, squeeze_channels, 1, config),
            fc2: nn::conv2d(&p / "fc2", squeeze_channels, input_channels, 1, config),
            activation,
            scale_activation,
        }
    }

    /// Scales the channels of `xs`.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor, tch::TchError> {
        let scale = xs.f_adaptive_avg_pool2d([1, 1])?;
        let scale = self.activation.apply(conv2d(&self.fc1, &scale, 1, 0, 1)?)?;
        let scale = self
            .scale_activation
            .apply(conv2d(&self.fc2, &scale, 1, 0, 1)?)?;
        scale.f_mul(xs)
    }
}

/// torchvision's `stochastic_depth` in "row" mode: in training, zeroes each sample's residual
/// branch with probability `p` and scales the survivors by `1 / (1 - p)`; identity otherwise.
pub fn stochastic_depth(xs: Tensor, p: f64, train: bool) -> Result<Tensor, tch::TchError> {
    if !train || p == 0.0 {
        return Ok(xs);
    }
    let survival_rate = 1.0 - p;
    let mut size = vec![1i64; xs.dim()];
    if let Some(first) = size.first_mut() {
        *first = xs.size().first().copied().unwrap_or(1);
    }
    let mut noise = Tensor::f_empty(size, (xs.kind(), xs.device()))?;
    let _ = noise.f_bernoulli_float_(survival_rate)?;
    if survival_rate > 0.0 {
        noise = noise.f_div_scalar(survival_rate)?;
    }
    xs.f_mul(&noise)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_divisible_matches_torchvision() {
        // Values checked against torchvision.models._utils._make_divisible.
        assert_eq!(make_divisible(72.0 / 4.0, 8), 24);
        assert_eq!(make_divisible(120.0 / 4.0, 8), 32);
        assert_eq!(make_divisible(672.0 / 4.0, 8), 168);
        assert_eq!(make_divisible(960.0 / 4.0, 8), 240);
        assert_eq!(make_divisible(3.0, 8), 8);
        assert_eq!(make_divisible(20.0, 8), 24);
    }

    #[test]
    fn stochastic_depth_is_identity_in_eval_and_drops_rows_in_training() {
        let xs = Tensor::ones([64, 2, 3, 3], (tch::Kind::Float, tch::Device::Cpu));
        let eval = stochastic_depth(xs.shallow_clone(), 0.5, false).unwrap();
        assert_eq!(eval.sum(tch::Kind::Double).double_value(&[]), 64.0 * 18.0);
        let train = stochastic_depth(xs, 0.5, true).unwrap();
        for row in 0..64 {
            let values = train.get(row).flatten(0, -1);
            let first = values.double_value(&[0]);
            assert!(first == 0.0 || first == 2.0, "row {row} scaled by {first}");
            assert_eq!(
                values.min().double_value(&[]),
                values.max().double_value(&[])
            );
        }
    }
}
