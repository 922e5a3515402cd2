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
//!   `index_select` over the pixels of all K batches flattened together,
//!   with a precomputed index in which taps falling in the padding point at
//!   an all-zero row appended to them; the patches `[K, B·Ho·Wo, taps·Cin]`
//!   then meet the kernel `[K, taps·Cin, Cout]` in one matmul;
//! - a transposed convolution multiplies first, `[K, B·H·W, Cin] ×
//!   [K, Cin, taps·Cout]`, and scatters each of the taps' contributions to
//!   its output pixel with one `index_add` (taps landing outside the image go
//!   to a dump row that is then dropped);
//! - the last 3×3 convolution has a single output channel, so it too
//!   multiplies first (`[K, B·H·W, Cin] × [K, Cin, 9]`, nine numbers a pixel
//!   instead of an im2col of `9·Cin`) and then scatter-adds them to their
//!   output pixels like a transposed convolution. (Gathering and summing the
//!   nine instead took twice as long: candle's index ops copy row by row,
//!   and these rows are one number.)
//!
//! The indices depend only on the layer, K and the batch size; each layer
//! keeps the ones it has built. `index_select` and `index_add` are each
//! other's backward pass in candle, so gradients come for free. On the CPU
//! this runs a K = 15 training step several times faster than candle's own
//! `conv2d` / `conv_transpose2d` called once per VAE (measured layer by
//! layer in the ignored test `timings`).
//!
//! Memory: the transposed convolutions' products are `16·Cout` numbers per
//! input pixel, and since the weights are variables every intermediate
//! tensor stays alive as long as the decoder's output, so decoding many
//! codes at once is heavy (about 0.3 GB per VAE per 500 codes with the small
//! filters). [`ConvVaeStack::sample`] therefore decodes in detached chunks;
//! the trait's importance-sampled likelihood, which decodes up to 4096
//! codes per VAE at once, does not.

use std::collections::HashMap;
use std::sync::Mutex;

use candle_core::{Device, Result, Tensor, D};
use candle_nn::{Init, VarBuilder};

use super::vae::{split_posterior, Observation, VaeNets};
use crate::nn::layers::{Activation, Apply};
use crate::rng::Rng;

/// Side of the (square) images.
const SIDE: usize = 28;
/// Pixels of an image.
const PIXELS: usize = SIDE * SIDE;
/// Side of the decoder's first feature map (the dense layer's output).
const SEED_SIDE: usize = 7;
/// Codes per VAE that [`ConvVaeStack::sample`] decodes at a time.
const SAMPLE_CHUNK: usize = 256;

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

/// An index over the rows of all K VAEs' batches flattened together
/// (`[K·B·rows, C]`), built from the pattern of one image and cached per
/// `(K, B)`.
///
/// Entry `i` of image `b` of VAE `j` is `(j·B + b) · stride + pattern[i]`,
/// or the extra row `K·B·stride` (all zeros for a gather, the dump for a
/// scatter) where the pattern has none. The index runs over dimension 0,
/// with K folded in, because candle's CPU `index_add` (the scatter, and the
/// gather's backward pass) walks the dimensions before the indexed one
/// innermost: over `[K, rows, C]` it would jump between the K blocks at
/// every row, and it ran a K = 15 training step 2–3 times slower.
struct BatchIndex {
    pattern: Vec<Option<usize>>,
    stride: usize,
    built: Mutex<HashMap<(usize, usize), Tensor>>,
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

    /// The `u32` index for K batches of `b` images on `device`.
    fn get(&self, k: usize, b: usize, device: &Device) -> Result<Tensor> {
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = built.get(&(k, b)) {
            if t.device().same_device(device) {
                return Ok(t.clone());
            }
        }
        let extra = k * b * self.stride;
        if extra + 1 > u32::MAX as usize {
            candle_core::bail!("{k} batches of {b} images are too large for a u32 index");
        }
        let len = k * b * self.pattern.len();
        let mut index = Vec::with_capacity(len);
        for image in 0..k * b {
            let base = image * self.stride;
            index.extend(
                self.pattern
                    .iter()
                    .map(|p| p.map_or(extra, |p| base + p) as u32),
            );
        }
        let t = Tensor::from_vec(index, len, device)?;
        if built.len() >= Self::KEEP {
            built.clear();
        }
        built.insert((k, b), t.clone());
        Ok(t)
    }
}

/// The rows `[K, R, C]` of all VAEs as one `[K·R + 1, C]` whose last row
/// is zero (the padding taps' source), gathered by `index` over dimension 0
/// into `[n, C]`.
fn gather_rows(x: &Tensor, index: &Tensor) -> Result<Tensor> {
    let (k, r, c) = x.dims3()?;
    let zero = Tensor::zeros((1, c), x.dtype(), x.device())?;
    Tensor::cat(&[&x.reshape((k * r, c))?, &zero], 0)?.index_select(index, 0)
}

/// Every tap's products `[K, rows, taps·C]` added into `[K, out_rows, C]`
/// at the rows `index` names (over all VAEs' rows flattened together).
fn scatter_rows(products: &Tensor, index: &Tensor, out_rows: usize, c: usize) -> Result<Tensor> {
    let k = products.dim(0)?;
    let products = products.reshape((products.elem_count() / c, c))?;
    // One more row than the outputs of all VAEs: the dump of the taps that
    // fall outside the image, dropped by the narrow.
    Tensor::zeros((k * out_rows + 1, c), products.dtype(), products.device())?
        .index_add(index, &products, 0)?
        .narrow(0, 0, k * out_rows)?
        .reshape((k, out_rows, c))
}

/// VAEs `first..first + n` of a `[K, ..]` tensor (itself when that is all).
fn part(t: &Tensor, first: usize, n: usize) -> Result<Tensor> {
    if first == 0 && n == t.dim(0)? {
        Ok(t.clone())
    } else {
        t.narrow(0, first, n)
    }
}

/// K dense layers like [`crate::nn::layers::BatchedDense`] (same tensors
/// and initialization), of which a group of consecutive VAEs can run alone.
struct Dense {
    /// `[K, in, out]`.
    weight: Tensor,
    /// `[K, 1, out]`.
    bias: Tensor,
}

impl Dense {
    fn new(k: usize, inputs: usize, outputs: usize, vb: VarBuilder) -> Result<Self> {
        let init = default_init(inputs);
        Ok(Dense {
            weight: vb.get_with_hints((k, inputs, outputs), "weight", init)?,
            bias: vb.get_with_hints((k, 1, outputs), "bias", init)?,
        })
    }

    /// `act(x · W + b)` for `x: [n, B, in]`, run by VAEs `first..first + n`.
    fn forward(&self, x: &Tensor, first: usize, act: Activation) -> Result<Tensor> {
        let n = x.dim(0)?;
        let y = x.matmul(&part(&self.weight, first, n)?)?;
        act.bias_apply(&y, &part(&self.bias, first, n)?)
    }
}

/// How a convolution meets its kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ConvPlan {
    /// Gather input patches, then one matmul: kernel `[K, taps·Cin, Cout]`.
    /// Best when the output has fewer pixels than the input (stride 2).
    Im2col,
    /// One matmul to every tap's contribution, then scatter-add them to
    /// their output pixels (stride 1 only): kernel `[K, Cin, taps·Cout]`.
    /// Best when `Cout` is much smaller than `Cin` (the last layer: one
    /// channel).
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
        let mut pattern = Vec::with_capacity(side * side * taps);
        let stride_rows = match plan {
            ConvPlan::Im2col => {
                // For every output pixel and tap (tap-major within a
                // pixel): the input pixel read.
                for oh in 0..out_side {
                    for ow in 0..out_side {
                        for kh in 0..kernel {
                            for kw in 0..kernel {
                                let ih = shifted(oh * stride, kh, pad, side);
                                let iw = shifted(ow * stride, kw, pad, side);
                                pattern.push(ih.zip(iw).map(|(ih, iw)| ih * side + iw));
                            }
                        }
                    }
                }
                side * side
            }
            ConvPlan::MatmulFirst => {
                if stride != 1 {
                    candle_core::bail!("products-first convolutions have stride 1, not {stride}");
                }
                // For every input pixel and tap: the output pixel that
                // reads it (`ih = oh + kh - pad`).
                let back = |i: usize, k: usize| (i + pad).checked_sub(k).filter(|&o| o < out_side);
                for ih in 0..side {
                    for iw in 0..side {
                        for kh in 0..kernel {
                            for kw in 0..kernel {
                                let o = back(ih, kh).zip(back(iw, kw));
                                pattern.push(o.map(|(oh, ow)| oh * out_side + ow));
                            }
                        }
                    }
                }
                out_side * out_side
            }
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

    /// `act(conv(x) + bias)` for `x: [n, B·side², Cin]`, run by VAEs
    /// `first..first + n`.
    fn forward(&self, x: &Tensor, first: usize, act: Activation) -> Result<Tensor> {
        let (k, rows, _) = x.dims3()?;
        let weight = part(&self.weight, first, k)?;
        let b = rows / (self.side * self.side);
        let taps = self.kernel * self.kernel;
        let out_rows = b * self.out_side * self.out_side;
        let index = self.index.get(k, b, x.device())?;
        let y = match self.plan {
            ConvPlan::Im2col => gather_rows(x, &index)?
                .reshape((k, out_rows, taps * self.cin))?
                .matmul(&weight)?,
            ConvPlan::MatmulFirst => {
                scatter_rows(&x.matmul(&weight)?, &index, out_rows, self.cout)?
            }
        };
        act.bias_apply(&y, &part(&self.bias, first, k)?)
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
            side,
            out_side,
            index: BatchIndex::new(pattern, out_side * out_side),
        })
    }

    /// `act(conv_transpose(x) + bias)` for `x: [n, B·side², Cin]`, run by
    /// VAEs `first..first + n`.
    fn forward(&self, x: &Tensor, first: usize, act: Activation) -> Result<Tensor> {
        let (k, rows, _) = x.dims3()?;
        let weight = part(&self.weight, first, k)?;
        let b = rows / (self.side * self.side);
        let out_rows = b * self.out_side * self.out_side;
        let index = self.index.get(k, b, x.device())?;
        let y = scatter_rows(&x.matmul(&weight)?, &index, out_rows, self.cout)?;
        act.bias_apply(&y, &part(&self.bias, first, k)?)
    }
}

/// K convolutional VAEs of the same [`ConvShape`] with independent weights,
/// on 28×28 greyscale images with Bernoulli pixels.
pub struct ConvVaeStack {
    /// The shape of every VAE.
    pub shape: ConvShape,
    encoder: [BatchedConv2d; 4],
    posterior: Dense,
    seed: Dense,
    decoder: [BatchedConvTranspose2d; 2],
    output: BatchedConv2d,
    k: usize,
    /// VAEs run together; see [`ConvVaeStack::with_group`].
    group: usize,
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
        let posterior = Dense::new(k, f3, 2 * shape.latent, enc.pp("posterior"))?;
        let seed = Dense::new(k, shape.latent, SEED_SIDE * SEED_SIDE * f3, dec.pp("seed"))?;
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
            group: if vb.device().is_cpu() { 1 } else { k },
        })
    }

    /// Runs the VAEs `group` at a time (each group still one batched matmul
    /// per layer). The default is one at a time on the CPU, where a K = 15
    /// training step (B = 32, small filters, one thread as the trainer
    /// binary runs) took 210–250 ms that way against 580–650 ms with all 15
    /// at once (one VAE's tensors stay in cache), and all K at once
    /// elsewhere (a GPU wants few, large kernels).
    pub fn with_group(mut self, group: usize) -> Self {
        self.group = group.max(1);
        self
    }

    /// `f(first, n)` for groups of at most `self.group` consecutive VAEs,
    /// concatenated over dimension 0.
    fn by_groups(&self, k: usize, f: impl Fn(usize, usize) -> Result<Tensor>) -> Result<Tensor> {
        if k != self.k {
            candle_core::bail!("{k} batches for {} VAEs", self.k);
        }
        let group = self.group.clamp(1, k.max(1));
        if group >= k {
            return f(0, k);
        }
        let parts = (0..k)
            .step_by(group)
            .map(|first| f(first, group.min(k - first)))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&parts, 0)
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
        let h = self.by_groups(k, |first, n| {
            let mut h = x.narrow(0, first, n)?.reshape((n, b * PIXELS, 1))?;
            for layer in &self.encoder {
                h = layer.forward(&h, first, Activation::Relu)?;
            }
            // The last convolution leaves one pixel per image.
            let h = h.reshape((n, b, self.shape.filters[3]))?;
            self.posterior.forward(&h, first, Activation::Identity)
        })?;
        split_posterior(&h, self.shape.latent)
    }

    fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let (k, b, _) = z.dims3()?;
        let f3 = self.shape.filters[3];
        self.by_groups(k, |first, n| {
            // The dense layer's outputs are read pixel-major, channels last.
            let mut h = self
                .seed
                .forward(&z.narrow(0, first, n)?, first, Activation::Relu)?
                .reshape((n, b * SEED_SIDE * SEED_SIDE, f3))?;
            for layer in &self.decoder {
                h = layer.forward(&h, first, Activation::Relu)?;
            }
            self.output
                .forward(&h, first, Activation::Identity)?
                .reshape((n, b, PIXELS))
        })
    }

    /// The trait's sampling (the same draws), decoded `SAMPLE_CHUNK` codes
    /// at a time and detached: the weights are variables, so a decoded
    /// batch keeps every intermediate tensor for a backward pass that
    /// sampling never takes, about 0.3 GB per VAE for 500 codes with the
    /// small filters.
    fn sample(&self, n: usize, rng: &mut Rng, device: &Device) -> Result<Tensor> {
        let (k, l) = (self.k, self.shape.latent);
        let z = Tensor::from_vec(rng.normals(k * n * l), (k, n, l), device)?;
        let parts = (0..n)
            .step_by(SAMPLE_CHUNK)
            .map(|first| {
                let m = SAMPLE_CHUNK.min(n - first);
                Ok(self.decode(&z.narrow(1, first, m)?)?.detach())
            })
            .collect::<Result<Vec<_>>>()?;
        candle_nn::ops::sigmoid(&Tensor::cat(&parts, 1)?)
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
        let cout = layer.cout;
        let kernel = ((layer.weight.dim(2).unwrap() / cout) as f64).sqrt() as usize;
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
            let ours = layer
                .forward(x.as_tensor(), 0, Activation::Identity)
                .unwrap();
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
            let ours = layer
                .forward(x.as_tensor(), 0, Activation::Identity)
                .unwrap();
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
            // The same VAEs run all at once (the GPU default) and two at a
            // time compute the same (the default on the CPU is one at a time).
            let out = vaes.decode(&z).unwrap();
            for group in [k, 2] {
                let again = ConvVaeStack::new(k, shape.clone(), params.var_builder(&device))
                    .unwrap()
                    .with_group(group);
                assert_eq!(params.count(), k * vaes.parameters(), "no new tensors");
                assert_close(&again.decode(&z).unwrap(), &out, 1e-5, "decode by groups");
                let (mu2, logvar2) = again.encode(&x).unwrap();
                assert_close(&mu2, &mu, 1e-5, "means by groups");
                assert_close(&logvar2, &logvar, 1e-5, "log-variances by groups");
            }
        }
        // The paper's small network, counted by hand.
        let small = ConvShape::small(8).parameters();
        let encoder = (16 * 8 + 8) + (16 * 8 * 16 + 16) + (16 * 16 * 32 + 32) + (16 * 32 * 64 + 64);
        let encoder = encoder + 64 * 16 + 16;
        let decoder =
            (8 * 49 * 64 + 49 * 64) + (16 * 64 * 32 + 32) + (16 * 32 * 16 + 16) + (9 * 16 + 1);
        assert_eq!(small, encoder + decoder);
    }

    #[test]
    fn sampling_decodes_the_trait_draws_in_chunks() {
        let device = Device::Cpu;
        let (k, n, latent) = (2, SAMPLE_CHUNK + 44, 3);
        let params = Params::new(2);
        let shape = ConvShape {
            filters: [2, 3, 4, 5],
            latent,
        };
        let vaes = ConvVaeStack::new(k, shape, params.var_builder(&device)).unwrap();
        let sample = vaes.sample(n, &mut Rng::new(9, 0), &device).unwrap();
        let z = normals(&mut Rng::new(9, 0), &[k, n, latent]);
        let expected = candle_nn::ops::sigmoid(&vaes.decode(&z).unwrap()).unwrap();
        assert_close(&sample, &expected, 1e-6, "samples");
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
        for _ in 0..200 {
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
        eprintln!("200 steps in {:.2?}", start.elapsed());
    }

    /// CPU time of the whole process (all threads): with
    /// `RAYON_NUM_THREADS=1` this is the work done, whatever else the
    /// machine runs at the same time.
    fn cpu_time() -> std::time::Duration {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `t` is a valid timespec for the call to fill.
        unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
        std::time::Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    }

    /// Wall and process CPU time of `f`, each the median of `runs` after
    /// two warm-up runs.
    fn median_time(runs: usize, mut f: impl FnMut()) -> Timing {
        f();
        f();
        let (mut wall, mut cpu): (Vec<_>, Vec<_>) = (0..runs)
            .map(|_| {
                let (t, c) = (Instant::now(), cpu_time());
                f();
                (t.elapsed(), cpu_time() - c)
            })
            .unzip();
        wall.sort();
        cpu.sort();
        Timing {
            wall: wall[runs / 2],
            cpu: cpu[runs / 2],
        }
    }

    /// What [`median_time`] measures.
    struct Timing {
        wall: std::time::Duration,
        cpu: std::time::Duration,
    }

    impl std::fmt::Display for Timing {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "wall {:.1?} cpu {:.1?}", self.wall, self.cpu)
        }
    }

    /// One optimizer step like `vae_step`: ELBO, backward, Adam.
    fn step_time(k: usize, b: usize, shape: ConvShape, group: usize) -> Timing {
        let device = Device::Cpu;
        let params = Params::new(1);
        let vaes = ConvVaeStack::new(k, shape, params.var_builder(&device))
            .unwrap()
            .with_group(group);
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
    ) -> (Timing, Timing) {
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
                run(layer.forward(x.as_tensor(), 0, Activation::Relu).unwrap())
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
                run(layer.forward(x.as_tensor(), 0, Activation::Relu).unwrap())
            });
            let theirs = median_time(10, || {
                run(reference_conv(&layer, x.as_tensor(), 2, 1).relu().unwrap())
            });
            (ours, theirs)
        }
    }

    /// Timings for the report: `RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1
    /// cargo test --release -p trainer --lib conv::tests::timings --
    /// --ignored --nocapture` (one thread, as `main` sets them; the CPU
    /// times are the work done whatever else the machine runs).
    #[test]
    #[ignore]
    fn timings() {
        for (k, b, shape, name, group) in [
            (15, 32, ConvShape::small(16), "small", 1),
            (15, 32, ConvShape::small(16), "small", 15),
            (1, 32, ConvShape::small(16), "small", 1),
            (1, 32, ConvShape::big(16), "big", 1),
        ] {
            let t = step_time(k, b, shape, group);
            eprintln!("step K={k} B={b} {name}, {group} VAE(s) at a time: {t}");
        }
        let device = Device::Cpu;
        for group in [1, 15] {
            let params = Params::new(1);
            let vaes = ConvVaeStack::new(15, ConvShape::small(16), params.var_builder(&device))
                .unwrap()
                .with_group(group);
            let mut rng = Rng::new(3, 0);
            let decode = median_time(10, || {
                let z = normals(&mut rng, &[15, 500, 16]);
                vaes.decode(&z).unwrap();
            });
            eprintln!("decode K=15 N=500 small, {group} VAE(s) at a time: {decode}");
            let sample = median_time(10, || {
                vaes.sample(500, &mut rng, &device).unwrap();
            });
            eprintln!("sample K=15 N=500 small, {group} VAE(s) at a time: {sample}");
        }
        for (transposed, cin, cout, side) in [
            (false, 1, 8, 28),
            (false, 8, 16, 14),
            (true, 64, 32, 7),
            (true, 32, 16, 14),
        ] {
            let (ours, theirs) = layer_times(15, 32, transposed, cin, cout, side);
            let kind = if transposed { "transposed" } else { "conv" };
            eprintln!(
                "layer K=15 B=32 {kind} {cin}→{cout} side {side}: batched {ours}, candle per VAE {theirs}"
            );
        }
    }
}
