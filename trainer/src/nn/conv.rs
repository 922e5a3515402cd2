//! Batched 2-D convolutions: K convolutions (or transposed convolutions)
//! with independent weights run as one batched matmul, for the K VAEs of
//! [`crate::methods::kvae::conv`]. Every weight is a `[K, ·, ·]` tensor.
//! Activations are kept channels-last, `[K, B·H·W, C]`, so that a pixel's
//! channels are one matmul row:
//!
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

use std::collections::HashMap;
use std::sync::Mutex;

use candle_core::{Device, Result, Tensor, D};
use candle_nn::{Init, VarBuilder};

use super::layers::{part, Activation, Apply};

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

/// Where a square kernel reads: its size, stride and padding, and the side
/// of the (square) input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvGeometry {
    /// Kernel side.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub pad: usize,
    /// Input side.
    pub side: usize,
}

/// How a convolution meets its kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ConvPlan {
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
pub(crate) struct BatchedConv2d {
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
    pub(crate) fn new(
        k: usize,
        cin: usize,
        cout: usize,
        geometry: ConvGeometry,
        plan: ConvPlan,
        vb: VarBuilder,
    ) -> Result<Self> {
        let taps = geometry.kernel * geometry.kernel;
        let init = default_init(cin * taps);
        let shape = match plan {
            ConvPlan::Im2col => (k, taps * cin, cout),
            ConvPlan::MatmulFirst => (k, cin, taps * cout),
        };
        let weight = vb.get_with_hints(shape, "weight", init)?;
        let bias = vb.get_with_hints((k, 1, cout), "bias", init)?;
        Self::from_parts(weight, bias, plan, cin, geometry)
    }

    /// The layer for given tensors (`weight` laid out as `plan` says).
    pub(crate) fn from_parts(
        weight: Tensor,
        bias: Tensor,
        plan: ConvPlan,
        cin: usize,
        geometry: ConvGeometry,
    ) -> Result<Self> {
        let ConvGeometry {
            kernel,
            stride,
            pad,
            side,
        } = geometry;
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
    pub(crate) fn forward(&self, x: &Tensor, first: usize, act: Activation) -> Result<Tensor> {
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
pub(crate) struct BatchedConvTranspose2d {
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
    pub(crate) fn new(
        k: usize,
        cin: usize,
        cout: usize,
        geometry: ConvGeometry,
        vb: VarBuilder,
    ) -> Result<Self> {
        let taps = geometry.kernel * geometry.kernel;
        let init = default_init(cout * taps);
        let weight = vb.get_with_hints((k, cin, taps * cout), "weight", init)?;
        let bias = vb.get_with_hints((k, 1, cout), "bias", init)?;
        Self::from_parts(weight, bias, geometry)
    }

    /// The layer for given tensors.
    pub(crate) fn from_parts(weight: Tensor, bias: Tensor, geometry: ConvGeometry) -> Result<Self> {
        let ConvGeometry {
            kernel,
            stride,
            pad,
            side,
        } = geometry;
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
    pub(crate) fn forward(&self, x: &Tensor, first: usize, act: Activation) -> Result<Tensor> {
        let (k, rows, _) = x.dims3()?;
        let weight = part(&self.weight, first, k)?;
        let b = rows / (self.side * self.side);
        let out_rows = b * self.out_side * self.out_side;
        let index = self.index.get(k, b, x.device())?;
        let y = scatter_rows(&x.matmul(&weight)?, &index, out_rows, self.cout)?;
        act.bias_apply(&y, &part(&self.bias, first, k)?)
    }
}

#[cfg(test)]
/// Wall and CPU timings for the ignored `timings` tests.
pub(crate) mod timing {
    use std::time::Instant;

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
    pub(crate) fn median_time(runs: usize, mut f: impl FnMut()) -> Timing {
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
    pub(crate) struct Timing {
        wall: std::time::Duration,
        cpu: std::time::Duration,
    }

    impl std::fmt::Display for Timing {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "wall {:.1?} cpu {:.1?}", self.wall, self.cpu)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::timing::{median_time, Timing};
    use super::*;
    use crate::ops::check::{assert_close, assert_same_gradients, var};
    use crate::rng::Rng;

    /// A 4×4 kernel of stride 2 and padding 1 on `side × side` inputs.
    fn stride_two(side: usize) -> ConvGeometry {
        ConvGeometry {
            kernel: 4,
            stride: 2,
            pad: 1,
            side,
        }
    }

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
            let geometry = ConvGeometry {
                kernel,
                stride,
                pad,
                side,
            };
            let layer = BatchedConv2d::from_parts(
                w.as_tensor().clone(),
                bias.as_tensor().clone(),
                plan,
                cin,
                geometry,
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
                stride_two(side),
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
                stride_two(side),
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
                stride_two(side),
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
    /// cargo test --release -p trainer --lib nn::conv::tests::timings --
    /// --ignored --nocapture` (one thread, as `main` sets them).
    #[test]
    #[ignore]
    fn timings() {
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
