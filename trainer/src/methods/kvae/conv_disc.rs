//! The authors' convolutional discriminators for 28×28 images, and the
//! batch normalisation they and the convolutional VAEs share.
//!
//! Each of the k discriminators: three 4×4 convolutions of stride 2 and
//! padding 1 (channels `1 → 64 → 128 → 256`, sides `28 → 14 → 7 → 3`),
//! batch normalisation after the second and the third, leaky ReLU of slope
//! 0.3 after each, then a dense layer `3·3·256 → 1` (the logit of "real").
//! Weights are drawn from N(0, 0.01) (standard deviation 0.01) as in the
//! authors' code, biases start at 0; they train with Adam at
//! learning rate 5e-3 and β1 = 0.5 ([`adam_config`]). The k networks run
//! as one batched matmul per layer, like the VAEs ([`crate::nn::conv`]).

use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::data::{PIXELS, SIDE};
use crate::nn::adam::AdamConfig;
use crate::nn::conv::{BatchedConv2d, ConvGeometry, ConvPlan};
use crate::nn::layers::Activation;

/// Channels after each convolution.
const CHANNELS: [usize; 3] = [64, 128, 256];
/// Side of the last feature map.
const LAST_SIDE: usize = 3;
/// Slope of the leaky ReLU for negative inputs.
const LEAK: f64 = 0.3;

/// The discriminators' optimizer in the authors' code.
pub fn adam_config() -> AdamConfig {
    AdamConfig {
        beta1: 0.5,
        ..AdamConfig::with_lr(5e-3)
    }
}

/// Batch normalisation of K stacked networks' channels-last activations
/// `[K, B·H·W, C]`: every channel normalised over the batch's pixels, then
/// scaled and shifted by learned `γ`, `β` (`[K, 1, C]`). Statistics are
/// always the batch's own, in training and in sampling alike (the authors'
/// code normalises its sampling batches too); there are no running averages.
pub struct BatchNorm {
    gamma: Tensor,
    beta: Tensor,
}

impl BatchNorm {
    /// `γ = 1`, `β = 0` for K networks of `channels` channels, under `vb`.
    pub fn new(k: usize, channels: usize, vb: VarBuilder) -> Result<Self> {
        Ok(BatchNorm {
            gamma: vb.get_with_hints((k, 1, channels), "gamma", Init::Const(1.0))?,
            beta: vb.get_with_hints((k, 1, channels), "beta", Init::Const(0.0))?,
        })
    }

    /// Normalises `x: [n, rows, C]` of networks `first..first + n`.
    pub fn forward(&self, x: &Tensor, first: usize) -> Result<Tensor> {
        let n = x.dim(0)?;
        let mean = x.mean_keepdim(1)?;
        let centred = x.broadcast_sub(&mean)?;
        let std = (centred.sqr()?.mean_keepdim(1)? + 1e-5)?.sqrt()?;
        centred
            .broadcast_div(&std)?
            .broadcast_mul(&self.gamma.narrow(0, first, n)?)?
            .broadcast_add(&self.beta.narrow(0, first, n)?)
    }

    /// Learned numbers per network.
    pub fn parameters(channels: usize) -> usize {
        2 * channels
    }
}

/// `max(x, 0.3·x)`.
fn leaky_relu(x: &Tensor) -> Result<Tensor> {
    x.maximum(&x.affine(LEAK, 0.0)?)
}

/// k convolutional discriminators of 28×28 images.
pub struct ConvDiscriminators {
    convs: Vec<BatchedConv2d>,
    norms: Vec<Option<BatchNorm>>,
    /// `[K, 3·3·256, 1]`.
    weight: Tensor,
    /// `[K, 1, 1]`.
    bias: Tensor,
}

impl ConvDiscriminators {
    /// k discriminators whose tensors are `conv*`, `norm*` and `out.*`
    /// under `vb`.
    pub fn new(k: usize, vb: VarBuilder) -> Result<Self> {
        let normal = Init::Randn {
            mean: 0.0,
            stdev: 0.01,
        };
        let mut convs = Vec::new();
        let mut norms = Vec::new();
        let (mut cin, mut side) = (1, SIDE);
        for (i, &cout) in CHANNELS.iter().enumerate() {
            let vb = vb.pp(format!("conv{i}"));
            let weight = vb.get_with_hints((k, 16 * cin, cout), "weight", normal)?;
            let bias = vb.get_with_hints((k, 1, cout), "bias", Init::Const(0.0))?;
            let geometry = ConvGeometry {
                kernel: 4,
                stride: 2,
                pad: 1,
                side,
            };
            convs.push(BatchedConv2d::from_parts(
                weight,
                bias,
                ConvPlan::Im2col,
                cin,
                geometry,
            )?);
            norms.push(if i == 0 {
                None
            } else {
                Some(BatchNorm::new(k, cout, vb.pp("norm"))?)
            });
            cin = cout;
            side /= 2;
        }
        let features = LAST_SIDE * LAST_SIDE * CHANNELS[2];
        let out = vb.pp("out");
        Ok(ConvDiscriminators {
            convs,
            norms,
            weight: out.get_with_hints((k, features, 1), "weight", normal)?,
            bias: out.get_with_hints((k, 1, 1), "bias", Init::Const(0.0))?,
        })
    }

    /// Logits `[K, B, 1]` of `x: [K, B, 784]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (k, b, d) = x.dims3()?;
        if d != PIXELS {
            candle_core::bail!("convolutional discriminators read 28×28 images, not {d} values");
        }
        let mut h = x.reshape((k, b * PIXELS, 1))?;
        for (conv, norm) in self.convs.iter().zip(&self.norms) {
            h = conv.forward(&h, 0, Activation::Identity)?;
            if let Some(norm) = norm {
                h = norm.forward(&h, 0)?;
            }
            h = leaky_relu(&h)?;
        }
        let features = LAST_SIDE * LAST_SIDE * CHANNELS[2];
        h.contiguous()?
            .reshape((k, b, features))?
            .matmul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;
    use crate::nn::params::Params;

    #[test]
    fn logits_per_discriminator_and_image() {
        let params = Params::new(3);
        let disc = ConvDiscriminators::new(2, params.var_builder(&Device::Cpu)).unwrap();
        let x = Tensor::rand(0f32, 1f32, (2, 5, PIXELS), &Device::Cpu).unwrap();
        let y = disc.forward(&x).unwrap();
        assert_eq!(y.dims(), &[2, 5, 1]);
        let y: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        assert!(y.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn batch_norm_centres_and_scales_every_channel() {
        let params = Params::new(1);
        let bn = BatchNorm::new(1, 3, params.var_builder(&Device::Cpu)).unwrap();
        let x = Tensor::rand(-4f32, 9f32, (1, 50, 3), &Device::Cpu).unwrap();
        let y = bn.forward(&x, 0).unwrap();
        let mean: Vec<f32> = y
            .mean_keepdim(1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let var: Vec<f32> = y
            .sqr()
            .unwrap()
            .mean_keepdim(1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(mean.iter().all(|m| m.abs() < 1e-4), "{mean:?}");
        assert!(var.iter().all(|v| (v - 1.0).abs() < 1e-2), "{var:?}");
    }
}
