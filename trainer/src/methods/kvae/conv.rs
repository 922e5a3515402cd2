//! Convolutional VAEs for kVAE: the paper's MNIST VAE, with the number of
//! filters as a parameter ([`ConvShape`]).
//!
//! - Encoder: four 4×4 convolutions of stride 2 and padding 1, each followed
//!   by a ReLU (channels `1 → f0 → f1 → f2 → f3`, sides `28 → 14 → 7 → 3 →
//!   1`), then a dense layer `f3 → 2·latent` (mean and log-variance).
//! - Decoder: a dense layer `latent → 7·7·f3` and a ReLU, two 4×4 transposed
//!   convolutions of stride 2 and padding 1 with ReLUs (`7 → 14 → 28`,
//!   channels `f3 → f2 → f1`), then a 3×3 convolution of stride 1 and
//!   padding 1 to one channel: Bernoulli logits of the 784 pixels.
//!
//! There is no batch normalization: kVAE trains each VAE on batches drawn
//! from its own cluster only, and samples from it with no batch at all, so
//! batch statistics would differ between training and sampling (and between
//! VAEs holding different kinds of digits).
//!
//! All K VAEs run together, like the dense [`super::VaeStack`]: every weight
//! is a `[K, ·, ·]` tensor and every layer is one batched matmul over K.
//! Activations are kept channels-last, `[K, B·H·W, C]`, so that a pixel's
//! channels are one matmul row:
//!
//! - a convolution gathers its input patches (im2col) with one
//!   `index_select` over the flattened pixels, with a precomputed index in
//!   which taps falling in the padding point at an all-zero row appended to
//!   the input; the patches `[K, B·Ho·Wo, taps·Cin]` then meet the kernel
//!   `[K, taps·Cin, Cout]` in one matmul;
//! - a transposed convolution multiplies first, `[K, B·H·W, Cin] ×
//!   [K, Cin, taps·Cout]`, and scatters each of the taps' contributions to
//!   its output pixel with one `index_add` (taps landing outside the image go
//!   to a dump row that is then dropped);
//! - the last 3×3 convolution has a single output channel, so it too
//!   multiplies first (`[K, B·H·W, Cin] × [K, Cin, 9]`, nine numbers a pixel
//!   instead of an im2col of `9·Cin`) and then gathers and sums the nine
//!   taps of each output pixel.
//!
//! The indices depend only on the layer and the batch size; each layer
//! keeps the ones it has built. `index_select` and `index_add` are each
//! other's backward pass in candle, so gradients come for free. Compared
//! with candle's own `conv2d` / `conv_transpose2d` run once per VAE, see the
//! tests for the agreement and the report of the branch for the timings.

use std::collections::HashMap;
use std::sync::Mutex;

use candle_core::{Device, Result, Tensor, D};
use candle_nn::{Init, VarBuilder};

use super::vae::{split_posterior, Observation, VaeNets};
use crate::nn::layers::{Activation, Apply, BatchedDense};

/// Side of the (square) images.
const SIDE: usize = 28;
/// Pixels of an image.
const PIXELS: usize = SIDE * SIDE;
/// Side of the decoder's first feature map (the dense layer's output).
const SEED_SIDE: usize = 7;

/// Shape of each convolutional VAE.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConvShape {
    /// Channels after each of the encoder's four convolutions; the decoder
    /// starts from `filters[3]` and goes back through `filters[2]` and
    /// `filters[1]`.
    pub filters: [usize; 4],
    /// Latent dimension.
    pub latent: usize,
}

impl ConvShape {
    /// The small network: filters `[8, 16, 32, 64]`.
    pub fn small(latent: usize) -> Self {
        ConvShape {
            filters: [8, 16, 32, 64],
            latent,
        }
    }

    /// The big network: filters `[32, 64, 128, 256]`.
    pub fn big(latent: usize) -> Self {
        ConvShape {
            filters: [32, 64, 128, 256],
            latent,
        }
    }

    /// Weights and biases of one VAE (encoder and decoder).
    pub fn parameters(&self) -> usize {
        let [f0, f1, f2, f3] = self.filters;
        let l = self.latent;
        let conv = |taps: usize, cin: usize, cout: usize| taps * cin * cout + cout;
        let encoder = conv(16, 1, f0)
            + conv(16, f0, f1)
            + conv(16, f1, f2)
            + conv(16, f2, f3)
            + conv(1, f3, 2 * l);
        let seed = SEED_SIDE * SEED_SIDE * f3;
        let decoder = conv(1, l, seed) + conv(16, f3, f2) + conv(16, f2, f1) + conv(9, f1, 1);
        encoder + decoder
    }
}

/// PyTorch's default for convolutions (`kaiming_uniform(a = √5)`): weights
/// and biases uniform in ±1/√fan_in.
fn default_init(fan_in: usize) -> Init {
    let b = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform { lo: -b, up: b }
}

/// Output side of a convolution.
fn conv_side(n: usize, kernel: usize, stride: usize, pad: usize) -> usize {
    (n + 2 * pad - kernel) / stride + 1
}

/// Output side of a transposed convolution.
fn conv_transpose_side(n: usize, kernel: usize, stride: usize, pad: usize) -> usize {
    (n - 1) * stride + kernel - 2 * pad
}

/// `h + k - pad` when that lands in `0..n`: the input row a tap reads (or
/// the output row it writes).
fn shifted(h: usize, k: usize, pad: usize, n: usize) -> Option<usize> {
    (h + k).checked_sub(pad).filter(|&i| i < n)
}

/// An index over a flattened batch, built from the pattern of one image
/// and cached per batch size.
///
/// Entry `i` of image `b` is `b · stride + pattern[i]`, or the extra row
/// `B · stride` (all zeros for a gather, the dump for a scatter) where the
/// pattern has none.
struct BatchIndex {
    pattern: Vec<Option<usize>>,
    stride: usize,
    built: Mutex<HashMap<usize, Tensor>>,
}

impl BatchIndex {
    /// Batches of sizes that change all the time (the likelihood's chunks)
    /// would otherwise grow the cache without bound.
    const KEEP: usize = 16;

    fn new(pattern: Vec<Option<usize>>, stride: usize) -> Self {
        BatchIndex {
            pattern,
            stride,
            built: Mutex::new(HashMap::new()),
        }
    }

    /// The `u32` index for a batch of `b` images on `device`.
    fn get(&self, b: usize, device: &Device) -> Result<Tensor> {
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = built.get(&b) {
            if t.device().same_device(device) {
                return Ok(t.clone());
            }
        }
        let extra = b * self.stride;
        if extra + 1 > u32::MAX as usize {
            candle_core::bail!("a batch of {b} images is too large for a u32 index");
        }
        let mut index = Vec::with_capacity(b * self.pattern.len());
        for image in 0..b {
            let base = image * self.stride;
            index.extend(
                self.pattern
                    .iter()
                    .map(|p| p.map_or(extra, |p| base + p) as u32),
            );
        }
        let t = Tensor::from_vec(index, b * self.pattern.len(), device)?;
        if built.len() >= Self::KEEP {
            built.clear();
        }
        built.insert(b, t.clone());
        Ok(t)
    }
}

/// Appends one all-zero row along dimension 1 (the padding taps' source).
fn with_zero_row(x: &Tensor) -> Result<Tensor> {
    let (k, _, c) = x.dims3()?;
    let zero = Tensor::zeros((k, 1, c), x.dtype(), x.device())?;
    Tensor::cat(&[x, &zero], 1)
}

/// How a convolution meets its kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ConvPlan {
    /// Gather input patches, then one matmul: kernel `[K, taps·Cin, Cout]`.
    /// Best when the output has fewer pixels than the input (stride 2).
    Im2col,
    /// One matmul to every tap's contribution, then gather and sum them:
    /// kernel `[K, Cin, taps·Cout]`. Best when `Cout` is much smaller than
    /// `Cin` (the last layer: one channel).
    MatmulFirst,
}

/// K convolutions (square kernel, no dilation) run as one batched matmul:
/// input `[K, B·H·W, Cin]`, output `[K, B·Ho·Wo, Cout]`, both channels-last.
struct BatchedConv2d {
    weight: Tensor,
    bias: Tensor,
    plan: ConvPlan,
    cin: usize,
    cout: usize,
    kernel: usize,
    /// Input side.
    side: usize,
    /// Output side.
    out_side: usize,
    index: BatchIndex,
}

impl BatchedConv2d {
    /// K convolutions `cin → cout` of `side × side` inputs, initialized like
    /// PyTorch's `nn.Conv2d`.
    #[allow(clippy::too_many_arguments)]
    fn new(
        k: usize,
        cin: usize,
        cout: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
        side: usize,
        plan: ConvPlan,
        vb: VarBuilder,
    ) -> Result<Self> {
        let taps = kernel * kernel;
        let init = default_init(cin * taps);
        let shape = match plan {
            ConvPlan::Im2col => (k, taps * cin, cout),
            ConvPlan::MatmulFirst => (k, cin, taps * cout),
        };
        let weight = vb.get_with_hints(shape, "weight", init)?;
        let bias = vb.get_with_hints((k, 1, cout), "bias", init)?;
        Self::from_parts(weight, bias, plan, cin, kernel, stride, pad, side)
    }

    /// The layer for given tensors (`weight` laid out as `plan` says).
    #[allow(clippy::too_many_arguments)]
    fn from_parts(
        weight: Tensor,
        bias: Tensor,
        plan: ConvPlan,
        cin: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
        side: usize,
    ) -> Result<Self> {
        let cout = bias.dim(D::Minus1)?;
        let taps = kernel * kernel;
        let out_side = conv_side(side, kernel, stride, pad);
        // For every output pixel and tap (tap-major within a pixel): the
        // input pixel read, as a row of the input (im2col) or of the
        // per-tap products (matmul first).
        let mut pattern = Vec::with_capacity(out_side * out_side * taps);
        for oh in 0..out_side {
            for ow in 0..out_side {
                for kh in 0..kernel {
                    for kw in 0..kernel {
                        let ih = shifted(oh * stride, kh, pad, side);
                        let iw = shifted(ow * stride, kw, pad, side);
                        pattern.push(ih.zip(iw).map(|(ih, iw)| {
                            let pixel = ih * side + iw;
                            match plan {
                                ConvPlan::Im2col => pixel,
                                ConvPlan::MatmulFirst => pixel * taps + kh * kernel + kw,
                            }
                        }));
                    }
                }
            }
        }
        let stride_rows = match plan {
            ConvPlan::Im2col => side * side,
            ConvPlan::MatmulFirst => side * side * taps,
        };
        Ok(BatchedConv2d {
            weight,
            bias,
            plan,
            cin,
            cout,
            kernel,
            side,
            out_side,
            index: BatchIndex::new(pattern, stride_rows),
        })
    }

    /// `act(conv(x) + bias)` for `x: [K, B·side², Cin]`.
    fn forward(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        let (k, rows, _) = x.dims3()?;
        let b = rows / (self.side * self.side);
        let taps = self.kernel * self.kernel;
        let out_rows = b * self.out_side * self.out_side;
        let index = self.index.get(b, x.device())?;
        let y = match self.plan {
            ConvPlan::Im2col => with_zero_row(x)?
                .index_select(&index, 1)?
                .reshape((k, out_rows, taps * self.cin))?
                .matmul(&self.weight)?,
            ConvPlan::MatmulFirst => {
                let products = x
                    .matmul(&self.weight)?
                    .reshape((k, rows * taps, self.cout))?;
                with_zero_row(&products)?
                    .index_select(&index, 1)?
                    .reshape((k, out_rows, taps, self.cout))?
                    .sum(2)?
            }
        };
        act.bias_apply(&y, &self.bias)
    }
}

/// K transposed convolutions (square kernel, no dilation or output padding)
/// run as one batched matmul and one scatter-add: input `[K, B·H·W, Cin]`,
/// output `[K, B·Ho·Wo, Cout]`, both channels-last.
struct BatchedConvTranspose2d {
    /// `[K, Cin, taps·Cout]`, tap-major within a row.
    weight: Tensor,
    bias: Tensor,
    cout: usize,
    kernel: usize,
    side: usize,
    out_side: usize,
    index: BatchIndex,
}

impl BatchedConvTranspose2d {
    /// K transposed convolutions `cin → cout` of `side × side` inputs,
    /// initialized like PyTorch's `nn.ConvTranspose2d` (whose fan-in is
    /// `Cout · taps`: it reads the weight `[Cin, Cout, kh, kw]` as a
    /// convolution's).
    #[allow(clippy::too_many_arguments)]
    fn new(
        k: usize,
        cin: usize,
        cout: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
        side: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let taps = kernel * kernel;
        let init = default_init(cout * taps);
        let weight = vb.get_with_hints((k, cin, taps * cout), "weight", init)?;
        let bias = vb.get_with_hints((k, 1, cout), "bias", init)?;
        Self::from_parts(weight, bias, kernel, stride, pad, side)
    }

    /// The layer for given tensors.
    fn from_parts(
        weight: Tensor,
        bias: Tensor,
        kernel: usize,
        stride: usize,
        pad: usize,
        side: usize,
    ) -> Result<Self> {
        let cout = bias.dim(D::Minus1)?;
        let out_side = conv_transpose_side(side, kernel, stride, pad);
        // For every input pixel and tap: the output pixel it adds to.
        let mut pattern = Vec::with_capacity(side * side * kernel * kernel);
        for ih in 0..side {
            for iw in 0..side {
                for kh in 0..kernel {
                    for kw in 0..kernel {
                        let oh = shifted(ih * stride, kh, pad, out_side);
                        let ow = shifted(iw * stride, kw, pad, out_side);
                        pattern.push(oh.zip(ow).map(|(oh, ow)| oh * out_side + ow));
                    }
                }
            }
        }
        Ok(BatchedConvTranspose2d {
            weight,
            bias,
            cout,
            kernel,
            side,
            out_side,
            index: BatchIndex::new(pattern, out_side * out_side),
        })
    }

    /// `act(conv_transpose(x) + bias)` for `x: [K, B·side², Cin]`.
    fn forward(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        let (k, rows, _) = x.dims3()?;
        let b = rows / (self.side * self.side);
        let taps = self.kernel * self.kernel;
        let out_rows = b * self.out_side * self.out_side;
        let index = self.index.get(b, x.device())?;
        let products = x
            .matmul(&self.weight)?
            .reshape((k, rows * taps, self.cout))?;
        // One more row than the output: the dump of the taps that fall
        // outside the image, dropped by the narrow.
        let y = Tensor::zeros((k, out_rows + 1, self.cout), x.dtype(), x.device())?
            .index_add(&index, &products, 1)?
            .narrow(1, 0, out_rows)?;
        act.bias_apply(&y, &self.bias)
    }
}

/// K convolutional VAEs of the same [`ConvShape`] with independent weights,
/// on 28×28 greyscale images with Bernoulli pixels.
pub struct ConvVaeStack {
    /// The shape of every VAE.
    pub shape: ConvShape,
    encoder: [BatchedConv2d; 4],
    posterior: BatchedDense,
    seed: BatchedDense,
    decoder: [BatchedConvTranspose2d; 2],
    output: BatchedConv2d,
    k: usize,
}

impl ConvVaeStack {
    /// K VAEs whose tensors are `encoder.*` and `decoder.*` under `vb`.
    pub fn new(k: usize, shape: ConvShape, vb: VarBuilder) -> Result<Self> {
        let [f0, f1, f2, f3] = shape.filters;
        let enc = vb.pp("encoder");
        let dec = vb.pp("decoder");
        let conv = |i: usize, cin: usize, cout: usize, side: usize| {
            BatchedConv2d::new(
                k,
                cin,
                cout,
                4,
                2,
                1,
                side,
                ConvPlan::Im2col,
                enc.pp(format!("conv{i}")),
            )
        };
        let encoder = [
            conv(0, 1, f0, SIDE)?,
            conv(1, f0, f1, 14)?,
            conv(2, f1, f2, 7)?,
            conv(3, f2, f3, 3)?,
        ];
        let posterior = BatchedDense::new(k, f3, 2 * shape.latent, enc.pp("posterior"))?;
        let seed = BatchedDense::new(k, shape.latent, SEED_SIDE * SEED_SIDE * f3, dec.pp("seed"))?;
        let decoder = [
            BatchedConvTranspose2d::new(k, f3, f2, 4, 2, 1, SEED_SIDE, dec.pp("deconv0"))?,
            BatchedConvTranspose2d::new(k, f2, f1, 4, 2, 1, 2 * SEED_SIDE, dec.pp("deconv1"))?,
        ];
        let output = BatchedConv2d::new(
            k,
            f1,
            1,
            3,
            1,
            1,
            SIDE,
            ConvPlan::MatmulFirst,
            dec.pp("output"),
        )?;
        Ok(ConvVaeStack {
            shape,
            encoder,
            posterior,
            seed,
            decoder,
            output,
            k,
        })
    }
}

impl VaeNets for ConvVaeStack {
    fn k(&self) -> usize {
        self.k
    }

    fn data(&self) -> usize {
        PIXELS
    }

    fn latent(&self) -> usize {
        self.shape.latent
    }

    fn observation(&self) -> Observation {
        Observation::Bernoulli
    }

    fn parameters(&self) -> usize {
        self.shape.parameters()
    }

    fn encode(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (k, b, d) = x.dims3()?;
        if d != PIXELS {
            candle_core::bail!("convolutional VAEs read 28×28 images, not {d} values");
        }
        let mut h = x.reshape((k, b * PIXELS, 1))?;
        for layer in &self.encoder {
            h = layer.forward(&h, Activation::Relu)?;
        }
        // The last convolution leaves one pixel per image.
        let h = h.reshape((k, b, self.shape.filters[3]))?;
        split_posterior(&self.posterior.forward(&h)?, self.shape.latent)
    }

    fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let (k, n, _) = z.dims3()?;
        let f3 = self.shape.filters[3];
        // The dense layer's outputs are read pixel-major, channels last.
        let mut h = self.seed.forward_act(z, Activation::Relu)?.reshape((
            k,
            n * SEED_SIDE * SEED_SIDE,
            f3,
        ))?;
        for layer in &self.decoder {
            h = layer.forward(&h, Activation::Relu)?;
        }
        self.output
            .forward(&h, Activation::Identity)?
            .reshape((k, n, PIXELS))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use candle_core::{Device, Tensor};

    use super::*;
    use crate::nn::adam::{Adam, AdamConfig};
    use crate::nn::params::Params;
    use crate::ops::check::{assert_close, assert_same_gradients, var};
    use crate::rng::Rng;

    /// `[K, B·side², C]` channels-last → VAE `j`'s `[B, C, side, side]`.
    fn nchw(x: &Tensor, j: usize, side: usize) -> Tensor {
        let (_, rows, c) = x.dims3().unwrap();
        x.get(j)
            .unwrap()
            .reshape((rows / (side * side), side, side, c))
            .unwrap()
            .permute((0, 3, 1, 2))
            .unwrap()
            .contiguous()
            .unwrap()
    }

    /// candle's `[B, C, side, side]` outputs of every VAE (plus bias) →
    /// `[K, B·side², C]` channels-last.
    fn channels_last(outputs: Vec<Tensor>, bias: &Tensor) -> Tensor {
        let outputs: Vec<Tensor> = outputs
            .into_iter()
            .enumerate()
            .map(|(j, y)| {
                let (b, c, h, w) = y.dims4().unwrap();
                let bj = bias.get(j).unwrap().reshape((1, c, 1, 1)).unwrap();
                y.broadcast_add(&bj)
                    .unwrap()
                    .permute((0, 2, 3, 1))
                    .unwrap()
                    .reshape((b * h * w, c))
                    .unwrap()
            })
            .collect();
        Tensor::stack(&outputs, 0).unwrap()
    }

    /// [`BatchedConv2d`] computed by candle's `conv2d`, one VAE at a time.
    fn reference_conv(layer: &BatchedConv2d, x: &Tensor, stride: usize, pad: usize) -> Tensor {
        let (k, _, _) = x.dims3().unwrap();
        let (cin, cout, kernel) = (layer.cin, layer.cout, layer.kernel);
        let outputs = (0..k)
            .map(|j| {
                let w = layer.weight.get(j).unwrap();
                let w = match layer.plan {
                    ConvPlan::Im2col => w
                        .reshape((kernel, kernel, cin, cout))
                        .unwrap()
                        .permute((3, 2, 0, 1))
                        .unwrap(),
                    ConvPlan::MatmulFirst => w
                        .reshape((cin, kernel, kernel, cout))
                        .unwrap()
                        .permute((3, 0, 1, 2))
                        .unwrap(),
                };
                nchw(x, j, layer.side)
                    .conv2d(&w.contiguous().unwrap(), pad, stride, 1, 1)
                    .unwrap()
            })
            .collect();
        channels_last(outputs, &layer.bias)
    }

    /// [`BatchedConvTranspose2d`] computed by candle's `conv_transpose2d`,
    /// one VAE at a time.
    fn reference_conv_transpose(
        layer: &BatchedConvTranspose2d,
        x: &Tensor,
        stride: usize,
        pad: usize,
    ) -> Tensor {
        let (k, _, cin) = x.dims3().unwrap();
        let (cout, kernel) = (layer.cout, layer.kernel);
        let outputs = (0..k)
            .map(|j| {
                let w = layer
                    .weight
                    .get(j)
                    .unwrap()
                    .reshape((cin, kernel, kernel, cout))
                    .unwrap()
                    .permute((0, 3, 1, 2))
                    .unwrap()
                    .contiguous()
                    .unwrap();
                nchw(x, j, layer.side)
                    .conv_transpose2d(&w, pad, 0, stride, 1)
                    .unwrap()
            })
            .collect();
        channels_last(outputs, &layer.bias)
    }

    #[test]
    fn batched_convolutions_match_candle_per_vae() {
        let mut rng = Rng::new(5, 0);
        let (k, b) = (2, 3);
        // (plan, cin, cout, kernel, stride, pad, side): the encoder's
        // stride-2 layers on even and odd sides (7 → 3 leaves a row out),
        // and the decoder's 3×3 output layer with one and two channels.
        let convs = [
            (ConvPlan::Im2col, 1, 4, 4, 2, 1, 8),
            (ConvPlan::Im2col, 3, 5, 4, 2, 1, 7),
            (ConvPlan::Im2col, 3, 2, 4, 2, 1, 3),
            (ConvPlan::MatmulFirst, 4, 1, 3, 1, 1, 6),
            (ConvPlan::MatmulFirst, 3, 2, 3, 1, 1, 5),
        ];
        for (plan, cin, cout, kernel, stride, pad, side) in convs {
            let taps = kernel * kernel;
            let w_shape = match plan {
                ConvPlan::Im2col => vec![k, taps * cin, cout],
                ConvPlan::MatmulFirst => vec![k, cin, taps * cout],
            };
            let w = var(&mut rng, &w_shape, 0.5);
            let bias = var(&mut rng, &[k, 1, cout], 0.5);
            let x = var(&mut rng, &[k, b * side * side, cin], 1.0);
            let layer = BatchedConv2d::from_parts(
                w.as_tensor().clone(),
                bias.as_tensor().clone(),
                plan,
                cin,
                kernel,
                stride,
                pad,
                side,
            )
            .unwrap();
            let ours = layer.forward(x.as_tensor(), Activation::Identity).unwrap();
            let theirs = reference_conv(&layer, x.as_tensor(), stride, pad);
            let what = format!("{plan:?} {cin}→{cout} side {side}");
            assert_close(&ours, &theirs, 1e-5, &what);
            assert_same_gradients(&ours, &theirs, &[&x, &w, &bias], &mut rng, 1e-4);
        }
        // (cin, cout, side): the decoder's 4×4 stride-2 layers.
        for (cin, cout, side) in [(3, 2, 3), (2, 5, 4), (4, 3, 7)] {
            let w = var(&mut rng, &[k, cin, 16 * cout], 0.5);
            let bias = var(&mut rng, &[k, 1, cout], 0.5);
            let x = var(&mut rng, &[k, b * side * side, cin], 1.0);
            let layer = BatchedConvTranspose2d::from_parts(
                w.as_tensor().clone(),
                bias.as_tensor().clone(),
                4,
                2,
                1,
                side,
            )
            .unwrap();
            let ours = layer.forward(x.as_tensor(), Activation::Identity).unwrap();
            let theirs = reference_conv_transpose(&layer, x.as_tensor(), 2, 1);
            let what = format!("transposed {cin}→{cout} side {side}");
            assert_close(&ours, &theirs, 1e-5, &what);
            assert_same_gradients(&ours, &theirs, &[&x, &w, &bias], &mut rng, 1e-4);
        }
    }

    fn normals(rng: &mut Rng, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec(rng.normals(n), shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn shapes_and_parameter_count() {
        let device = Device::Cpu;
        let mut rng = Rng::new(3, 0);
        for shape in [
            ConvShape {
                filters: [2, 3, 4, 5],
                latent: 6,
            },
            ConvShape::small(8),
            ConvShape::big(16),
        ] {
            let k = 3;
            let params = Params::new(1);
            let vaes = ConvVaeStack::new(k, shape.clone(), params.var_builder(&device)).unwrap();
            assert_eq!(params.count(), k * vaes.parameters(), "{shape:?}");
            let x = Tensor::from_vec(
                (0..k * 5 * PIXELS)
                    .map(|_| rng.uniform(0.0, 1.0) as f32)
                    .collect(),
                (k, 5, PIXELS),
                &device,
            )
            .unwrap();
            let (mu, logvar) = vaes.encode(&x).unwrap();
            assert_eq!(mu.dims(), &[k, 5, shape.latent]);
            assert_eq!(logvar.dims(), &[k, 5, shape.latent]);
            let z = normals(&mut rng, &[k, 7, shape.latent]);
            assert_eq!(vaes.decode(&z).unwrap().dims(), &[k, 7, PIXELS]);
        }
        // The paper's small network, counted by hand.
        let small = ConvShape::small(8).parameters();
        let encoder = (16 * 8 + 8) + (16 * 8 * 16 + 16) + (16 * 16 * 32 + 32) + (16 * 32 * 64 + 64);
        let encoder = encoder + 64 * 16 + 16;
        let decoder =
            (8 * 49 * 64 + 49 * 64) + (16 * 64 * 32 + 32) + (16 * 32 * 16 + 16) + (9 * 16 + 1);
        assert_eq!(small, encoder + decoder);
    }

    /// Eight 28×28 binary images per VAE: bars and boxes at a few places.
    fn synthetic_images(k: usize, per_vae: usize) -> Tensor {
        let mut x = vec![0f32; k * per_vae * PIXELS];
        for j in 0..k {
            for i in 0..per_vae {
                let image = &mut x[(j * per_vae + i) * PIXELS..][..PIXELS];
                let at = 4 + 3 * i;
                for r in 0..SIDE {
                    for c in 0..SIDE {
                        let on = if j % 2 == 0 {
                            // Vertical bars.
                            (at..at + 3).contains(&c) && (4..24).contains(&r)
                        } else {
                            // Hollow boxes of growing size.
                            let (lo, hi) = (14 - i - 2, 14 + i + 2);
                            (r == lo || r == hi) && (lo..=hi).contains(&c)
                                || (c == lo || c == hi) && (lo..=hi).contains(&r)
                        };
                        image[r * SIDE + c] = if on { 1.0 } else { 0.0 };
                    }
                }
            }
        }
        Tensor::from_vec(x, (k, per_vae, PIXELS), &Device::Cpu).unwrap()
    }

    #[test]
    fn adam_lowers_the_negative_elbo() {
        let device = Device::Cpu;
        let (k, b) = (2, 8);
        let params = Params::new(7);
        let vaes = ConvVaeStack::new(k, ConvShape::small(4), params.var_builder(&device)).unwrap();
        let mut opt = Adam::new(params.vars(), AdamConfig::with_lr(2e-3));
        let x = synthetic_images(k, b);
        let mut rng = Rng::new(7, 1);
        let mut losses = Vec::new();
        let start = Instant::now();
        for _ in 0..300 {
            let eps = normals(&mut rng, &[k, b, 4]);
            let terms = vaes.elbo_terms(&x, &eps).unwrap();
            let per_vae = (terms.reconstruction + terms.kl).unwrap();
            let grads = per_vae.sum_all().unwrap().backward().unwrap();
            opt.step(&grads).unwrap();
            losses.push(per_vae.to_vec1::<f32>().unwrap());
        }
        let mean = |rows: &[Vec<f32>], j: usize| {
            rows.iter().map(|r| r[j]).sum::<f32>() / rows.len() as f32
        };
        for j in 0..k {
            let first = losses[0][j];
            let last = mean(&losses[losses.len() - 10..], j);
            eprintln!("VAE {j}: negative ELBO {first:.1} -> {last:.1}");
            assert!(last < 0.7 * first, "VAE {j}: {first} -> {last}");
        }
        eprintln!("300 steps in {:.2?}", start.elapsed());
    }

    /// Median of `runs` timings of `f` after two warm-up runs.
    fn median_time(runs: usize, mut f: impl FnMut()) -> std::time::Duration {
        f();
        f();
        let mut times: Vec<_> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect();
        times.sort();
        times[runs / 2]
    }

    /// One optimizer step like `vae_step`: ELBO, backward, Adam.
    fn step_time(k: usize, b: usize, shape: ConvShape) -> std::time::Duration {
        let device = Device::Cpu;
        let params = Params::new(1);
        let vaes = ConvVaeStack::new(k, shape, params.var_builder(&device)).unwrap();
        let mut opt = Adam::new(params.vars(), AdamConfig::with_lr(1e-3));
        let mut rng = Rng::new(2, 0);
        let x = Tensor::from_vec(
            (0..k * b * PIXELS)
                .map(|_| rng.uniform(0.0, 1.0) as f32)
                .collect(),
            (k, b, PIXELS),
            &device,
        )
        .unwrap();
        let latent = vaes.latent();
        median_time(10, || {
            let eps = normals(&mut rng, &[k, b, latent]);
            let terms = vaes.elbo_terms(&x, &eps).unwrap();
            let loss = (terms.reconstruction + terms.kl)
                .unwrap()
                .sum_all()
                .unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
        })
    }

    /// Forward and backward of one layer's sum, ours against candle's
    /// convolutions run per VAE, on the same weights.
    fn layer_times(
        k: usize,
        b: usize,
        transposed: bool,
        cin: usize,
        cout: usize,
        side: usize,
    ) -> (std::time::Duration, std::time::Duration) {
        let mut rng = Rng::new(4, 0);
        let x = var(&mut rng, &[k, b * side * side, cin], 1.0);
        let bias = var(&mut rng, &[k, 1, cout], 0.1);
        let run = |y: Tensor| {
            let g = y.sum_all().unwrap().backward().unwrap();
            assert!(g.get(x.as_tensor()).is_some());
        };
        if transposed {
            let w = var(&mut rng, &[k, cin, 16 * cout], 0.1);
            let layer = BatchedConvTranspose2d::from_parts(
                w.as_tensor().clone(),
                bias.as_tensor().clone(),
                4,
                2,
                1,
                side,
            )
            .unwrap();
            let ours = median_time(10, || {
                run(layer.forward(x.as_tensor(), Activation::Relu).unwrap())
            });
            let theirs = median_time(10, || {
                run(reference_conv_transpose(&layer, x.as_tensor(), 2, 1)
                    .relu()
                    .unwrap())
            });
            (ours, theirs)
        } else {
            let w = var(&mut rng, &[k, 16 * cin, cout], 0.1);
            let layer = BatchedConv2d::from_parts(
                w.as_tensor().clone(),
                bias.as_tensor().clone(),
                ConvPlan::Im2col,
                cin,
                4,
                2,
                1,
                side,
            )
            .unwrap();
            let ours = median_time(10, || {
                run(layer.forward(x.as_tensor(), Activation::Relu).unwrap())
            });
            let theirs = median_time(10, || {
                run(reference_conv(&layer, x.as_tensor(), 2, 1).relu().unwrap())
            });
            (ours, theirs)
        }
    }

    /// Timings for the report: `cargo test --release -p trainer --lib
    /// conv::tests::timings -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn timings() {
        for (k, b, shape, name) in [
            (15, 32, ConvShape::small(16), "small"),
            (1, 32, ConvShape::small(16), "small"),
            (1, 32, ConvShape::big(16), "big"),
        ] {
            eprintln!("step K={k} B={b} {name}: {:.2?}", step_time(k, b, shape));
        }
        let device = Device::Cpu;
        let params = Params::new(1);
        let vaes =
            ConvVaeStack::new(15, ConvShape::small(16), params.var_builder(&device)).unwrap();
        let mut rng = Rng::new(3, 0);
        let decode = median_time(10, || {
            let z = normals(&mut rng, &[15, 500, 16]);
            vaes.decode(&z).unwrap();
        });
        eprintln!("decode K=15 N=500 small: {decode:.2?}");
        for (transposed, cin, cout, side) in [
            (false, 1, 8, 28),
            (false, 8, 16, 14),
            (true, 64, 32, 7),
            (true, 32, 16, 14),
        ] {
            let (ours, theirs) = layer_times(15, 32, transposed, cin, cout, side);
            let kind = if transposed { "transposed" } else { "conv" };
            eprintln!(
                "layer K=15 B=32 {kind} {cin}→{cout} side {side}: batched {ours:.2?}, candle per VAE {theirs:.2?}"
            );
        }
    }
}
