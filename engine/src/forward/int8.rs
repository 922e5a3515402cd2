//! Networks of int8 weights, computed in integers (`FORMAT.md`, *Integer
//! layers*): the workspace's first buffer holds the `i32` sums of
//! column-major layers, its second two buffers of 8-bit codes, and the
//! image is read in place.

use super::{pixel, to_pixels, Input, LayerWidths, Output, MAX_F32_IMAGE};
use crate::format::{Int8Layer, Layer, LayerWeights, Layout, Network};
use crate::kernels::activate;
use crate::kernels::f32_at;
use crate::kernels::int8::{self, code_value, output_code, requantize};
use crate::rng::SplitMix64;
use crate::{Error, Workspace};

/// [`super::run`] for an integer network. Not inlined, so that the one dispatch
/// is one call per element type, not a copy of the pass in every `Model`
/// method.
#[inline(never)]
pub(super) fn run<'w, const N: usize>(
    net: Network<'_>,
    input: Input<'_>,
    ws: &'w mut Workspace<N>,
    mut output: Output<'_>,
) -> Result<&'w [f32], Error> {
    let source = match input {
        Input::Pixels(image) => Source::Image(image),
        Input::Intensities(image) => return intensities(net, image, ws, output),
        Input::Latent(z) => {
            let scale = input_scale(net);
            for (dst, &v) in ws.codes().iter_mut().zip(z) {
                *dst = quantize_latent(v, scale) as u8;
            }
            Source::Latent(z.len())
        }
        Input::Seed { seed, len } => {
            // The same values as `fill_normal` draws for an f16 network,
            // drawn a pair at a time, as codes.
            let scale = input_scale(net);
            let mut rng = SplitMix64::new(seed);
            let mut z = [0.0f32; 2];
            let codes = ws.codes();
            let len = len.min(codes.len());
            for pair in codes[..len].chunks_mut(2) {
                rng.fill_normal(&mut z[..pair.len()]);
                for (c, &v) in pair.iter_mut().zip(&z) {
                    *c = quantize_latent(v, scale) as u8;
                }
            }
            Source::Latent(len)
        }
    };
    let outputs = forward(net, source, ws, &mut output);
    Ok(match output {
        Output::Values => &ws.a[..outputs.min(N)],
        Output::Logits(_) | Output::Pixels(_) => &[],
    })
}

/// [`run`] on an image of intensities: integer networks read pixels, so
/// the image is converted to pixels on the stack first. Not inlined, so
/// that the buffer is on the stack only in this call.
#[inline(never)]
fn intensities<'w, const N: usize>(
    net: Network<'_>,
    image: &[f32],
    ws: &'w mut Workspace<N>,
    output: Output<'_>,
) -> Result<&'w [f32], Error> {
    let mut px = [0u8; MAX_F32_IMAGE];
    let px = px.get_mut(..image.len()).ok_or(Error::Capacity {
        what: "pixels of an f32 image for an int8 model",
        needed: image.len(),
        max: MAX_F32_IMAGE,
    })?;
    to_pixels(image, px);
    run(net, Input::Pixels(px), ws, output)
}

/// The scale of the codes the network's first layer reads.
fn input_scale(net: Network<'_>) -> f32 {
    match net.layers().next().map(|l| l.weights) {
        Some(LayerWeights::Int8(q)) => q.input_scale,
        _ => 1.0,
    }
}

/// `clamp(floor(z / scale + 0.5), -127, 127)`, NaN and ±∞ as 0.
fn quantize_latent(z: f32, scale: f32) -> i8 {
    if !z.is_finite() {
        return 0;
    }
    let q = libm::floorf(z / scale + 0.5);
    q.clamp(-127.0, 127.0) as i8
}

/// What an integer network reads first.
#[derive(Clone, Copy)]
enum Source<'i> {
    /// Pixel bytes, in place.
    Image(&'i [u8]),
    /// `i8` latent codes at the start of the workspace's code buffer.
    Latent(usize),
}

/// Runs an integer network: hidden layers write 8-bit codes into the two
/// halves of the workspace's second buffer in turn, column-major layers sum
/// into its first buffer, and the last layer writes to `dest`. Returns the
/// last layer's output width.
///
/// Not inlined: on the microcontrollers, the pass compiled on its own runs
/// as fast as before it moved here (`firmware-example/README.md`, cost
/// table).
#[inline(never)]
fn forward<const N: usize>(
    net: Network<'_>,
    source: Source<'_>,
    ws: &mut Workspace<N>,
    dest: &mut Output<'_>,
) -> usize {
    let count = net.len();
    let half = 2 * N;
    // Which half holds the current input (the image is neither).
    let (mut input_half, mut width, mut signed) = match source {
        Source::Image(image) => (None, image.len(), false),
        Source::Latent(latent) => (Some(0), latent, true),
    };
    for (i, layer) in net.layers().enumerate() {
        let LayerWeights::Int8(q) = layer.weights else {
            return 0;
        };
        let last = i + 1 == count;
        let (acc, codes) = ws.int8_parts();
        let (h0, h1) = codes.split_at_mut(half);
        let (input, output): (&[u8], &mut [u8]) = match (input_half, source) {
            (None, Source::Image(image)) => (image, h0),
            (Some(0), _) => (&h0[..width.min(half)], h1),
            _ => (&h1[..width.min(half)], h0),
        };
        if last {
            finish(&layer, &q, input, signed, acc, dest);
            return layer.outputs;
        }
        let out = &mut output[..layer.outputs.min(half)];
        let (activation, table) = (layer.activation, q.requant.and_then(|r| r.table));
        let (multipliers, shift) = q.requant.map_or((&[][..], 1), |r| (r.multipliers, r.shift));
        sums(&layer, &q, input, signed, acc, |o, sum| {
            if let Some(c) = out.get_mut(o) {
                let v = requantize(sum, int8::i32_at(multipliers, o), shift);
                *c = output_code(activation, v, table);
            }
        });
        input_half = Some(if input_half == Some(0) { 1 } else { 0 });
        width = layer.outputs;
        signed = !activation.unsigned_codes();
    }
    0
}

/// Calls `emit(o, sum)` for every output of an integer layer, by rows or by
/// columns (the latter through `acc`).
fn sums(
    layer: &Layer<'_>,
    q: &Int8Layer<'_>,
    input: &[u8],
    signed: bool,
    acc: &mut [i32],
    mut emit: impl FnMut(usize, i32),
) {
    let input = &input[..layer.inputs.min(input.len())];
    match q.layout {
        Layout::RowMajor => rows(q, input, signed, layer.outputs, emit),
        Layout::ColumnMajor => {
            let outputs = layer.outputs.min(acc.len());
            let acc = &mut acc[..outputs];
            columns(q, input, signed, acc);
            for (o, &sum) in acc.iter().enumerate() {
                emit(o, sum);
            }
        }
    }
}

/// [`int8::rows`] on codes that are `i8` (`signed`) or `u8`.
#[inline(always)]
fn rows(
    q: &Int8Layer<'_>,
    input: &[u8],
    signed: bool,
    outputs: usize,
    emit: impl FnMut(usize, i32),
) {
    if signed {
        let x: &[i8] = bytemuck::cast_slice(input);
        int8::rows(q.weights, q.bias, x, outputs, emit);
    } else {
        int8::rows(q.weights, q.bias, input, outputs, emit);
    }
}

/// [`int8::columns`] on codes that are `i8` (`signed`) or `u8`.
#[inline(always)]
fn columns(q: &Int8Layer<'_>, input: &[u8], signed: bool, acc: &mut [i32]) {
    if signed {
        let x: &[i8] = bytemuck::cast_slice(input);
        int8::columns(q.weights, q.bias, x, acc);
    } else {
        int8::columns(q.weights, q.bias, input, acc);
    }
}

/// The real value of output `o` of an integer layer from its sum.
#[inline(always)]
fn value(layer: &Layer<'_>, q: &Int8Layer<'_>, o: usize, sum: i32) -> f32 {
    match q.requant {
        Some(r) => {
            let v = requantize(sum, int8::i32_at(r.multipliers, o), r.shift);
            let code = output_code(layer.activation, v, r.table);
            code_value(layer.activation, code) as f32 * r.output_scale
        }
        None => activate(
            layer.activation,
            sum as f32 * f32_at(q.scales, o) * q.input_scale,
        ),
    }
}

/// The last layer of a network into its destination. For
/// [`Output::Values`] the `f32` values go into the workspace's first
/// buffer, which `acc` views as `i32`: each slot receives its value's bits
/// (a column-major layer first sums into the slots, then replaces each sum
/// by its value).
fn finish(
    layer: &Layer<'_>,
    q: &Int8Layer<'_>,
    input: &[u8],
    signed: bool,
    acc: &mut [i32],
    dest: &mut Output<'_>,
) {
    match dest {
        Output::Logits(out) => sums(layer, q, input, signed, acc, |o, sum| {
            if let Some(v) = out.get_mut(o) {
                *v = value(layer, q, o, sum);
            }
        }),
        Output::Pixels(out) => {
            // Unsigned codes of scale 1/255 are the pixels themselves:
            // to_pixels(c · (1/255)) == c for every c (tested).
            let direct = q
                .requant
                .filter(|r| layer.activation.unsigned_codes() && r.output_scale == 1.0 / 255.0);
            sums(layer, q, input, signed, acc, |o, sum| {
                if let Some(p) = out.get_mut(o) {
                    *p = match direct {
                        Some(r) => {
                            let v = requantize(sum, int8::i32_at(r.multipliers, o), r.shift);
                            output_code(layer.activation, v, r.table)
                        }
                        None => pixel(value(layer, q, o, sum)),
                    };
                }
            })
        }
        Output::Values => {
            let input = &input[..layer.inputs.min(input.len())];
            let outputs = layer.outputs.min(acc.len());
            let slots = &mut acc[..outputs];
            match q.layout {
                Layout::RowMajor => rows(q, input, signed, outputs, |o: usize, sum: i32| {
                    if let Some(slot) = slots.get_mut(o) {
                        *slot = value(layer, q, o, sum).to_bits() as i32;
                    }
                }),
                Layout::ColumnMajor => {
                    columns(q, input, signed, slots);
                    for (o, slot) in slots.iter_mut().enumerate() {
                        *slot = value(layer, q, o, *slot).to_bits() as i32;
                    }
                }
            }
        }
    }
}

/// [`super::workspace_need`] for integer networks: the widest column-major
/// layer's outputs (its `i32` sums) and half the widest hidden or latent
/// width (two buffers of 8-bit codes share the second buffer).
pub(super) fn workspace_need<N, L>(latent: usize, networks: N) -> usize
where
    N: IntoIterator<Item = L>,
    L: IntoIterator<Item = LayerWidths>,
{
    let mut need = latent.div_ceil(2);
    for net in networks {
        let mut layers = net.into_iter().peekable();
        while let Some(layer) = layers.next() {
            let last = layers.peek().is_none();
            let sums = if layer.column_major { layer.outputs } else { 0 };
            let codes = if last { 0 } else { layer.outputs.div_ceil(2) };
            need = need.max(sums.max(codes));
        }
    }
    need
}

/// The gate's last hidden layer's codes as the pass over `net` (of at least
/// two layers) just left them in `ws`, and whether they are signed: layer
/// `i` writes the first half of the code buffer when `i` is even (`forward`),
/// so the last layer but one, `L − 2`, wrote it when `L` is even. The last
/// layer sums into the other buffer and writes no codes.
pub(super) fn last_hidden<'w, const N: usize>(
    net: Network<'_>,
    ws: &'w Workspace<N>,
    units: usize,
) -> (&'w [u8], bool) {
    let count = net.len();
    let signed = net
        .layers()
        .nth(count.wrapping_sub(2))
        .is_some_and(|l| !l.activation.unsigned_codes());
    let half = 2 * N;
    let codes = ws.code_bytes();
    let start = if count.is_multiple_of(2) { 0 } else { half };
    let end = start + units.min(half);
    (&codes[start..end], signed)
}
