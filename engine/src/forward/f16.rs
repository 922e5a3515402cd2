//! Networks of f16 weights, computed in `f32`: the workspace's two buffers
//! hold `f32` values, each layer reading one and writing the other.

use super::{to_pixels, Input, LayerWidths, Output};
use crate::format::{LayerWeights, Network};
use crate::kernels::{activate_slice, dense_f16};
use crate::rng::SplitMix64;
use crate::Workspace;

/// [`super::run`] for an f16 network. Not inlined, so that the one dispatch
/// is one call per element type, not a copy of the pass in every `Model`
/// method.
#[inline(never)]
pub(super) fn run<'w, const N: usize>(
    net: Network<'_>,
    input: Input<'_>,
    ws: &'w mut Workspace<N>,
    output: Output<'_>,
) -> &'w [f32] {
    load(input, ws);
    let values = forward(net, ws);
    match output {
        Output::Logits(out) => {
            for (dst, &v) in out.iter_mut().zip(values) {
                *dst = v;
            }
            &[]
        }
        Output::Values => values,
        Output::Pixels(out) => {
            to_pixels(values, out);
            &[]
        }
    }
}

/// Writes the network's input into `ws.a` as `f32` values.
fn load<const N: usize>(input: Input<'_>, ws: &mut Workspace<N>) {
    match input {
        Input::Pixels(image) => {
            for (dst, &p) in ws.a.iter_mut().zip(image) {
                *dst = p as f32 / 255.0;
            }
        }
        Input::Intensities(image) => {
            for (dst, &p) in ws.a.iter_mut().zip(image) {
                *dst = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
            }
        }
        Input::Latent(z) => {
            for (dst, &v) in ws.a.iter_mut().zip(z) {
                *dst = if v.is_finite() { v } else { 0.0 };
            }
        }
        Input::Seed { seed, len } => {
            SplitMix64::new(seed).fill_normal(&mut ws.a[..len.min(N)]);
        }
    }
}

/// Runs an f16 network on the input already in `ws.a`; returns its output,
/// which lies in `ws.a` or `ws.b` depending on the layer count. Widths were
/// validated and the workspace checked, so every slice below is in bounds.
///
/// Not inlined: on the microcontrollers, the pass compiled on its own runs
/// as fast as before it moved here (`firmware-example/README.md`, cost
/// table).
#[inline(never)]
fn forward<'w, const N: usize>(net: Network<'_>, ws: &'w mut Workspace<N>) -> &'w [f32] {
    let mut in_a = true;
    let mut width = net.inputs().min(N);
    for layer in net.layers() {
        let LayerWeights::F16 { weights, bias } = layer.weights else {
            break;
        };
        let (src, dst) = if in_a {
            (&ws.a, &mut ws.b)
        } else {
            (&ws.b, &mut ws.a)
        };
        let inputs = &src[..width.min(layer.inputs)];
        let outputs = layer.outputs.min(N);
        let out = &mut dst[..outputs];
        dense_f16(weights, bias, inputs, out);
        activate_slice(layer.activation, out);
        width = outputs;
        in_a = !in_a;
    }
    if in_a {
        &ws.a[..width]
    } else {
        &ws.b[..width]
    }
}

/// [`super::workspace_need`] for f16 networks: the widest layer input or
/// output (each buffer holds one layer's `f32` values).
pub(super) fn workspace_need<N, L>(networks: N) -> usize
where
    N: IntoIterator<Item = L>,
    L: IntoIterator<Item = LayerWidths>,
{
    networks
        .into_iter()
        .flatten()
        .map(|layer| layer.inputs.max(layer.outputs))
        .fold(0, usize::max)
}

/// The gate's last hidden layer as the pass over `net` (of at least two
/// layers) just left it in `ws`: layer `i` writes `ws.b` when `i` is even,
/// so the last layer but one, `L − 2`, wrote `ws.b` when `L` is even. The
/// last layer wrote only its outputs into the other buffer.
pub(super) fn last_hidden<'w, const N: usize>(
    net: Network<'_>,
    ws: &'w Workspace<N>,
    units: usize,
) -> &'w [f32] {
    let buffer = if net.len().is_multiple_of(2) {
        &ws.b
    } else {
        &ws.a
    };
    &buffer[..units.min(N)]
}
