//! candle ops the trainer needs beyond candle's own: CPU kernels that fuse
//! what candle would run as a chain of element-wise ops.
//!
//! Each op is a candle custom op with a CPU forward pass and a backward pass
//! written by hand, so candle's autograd sees one node where it would
//! otherwise see four to ten, each with a full-size temporary, a memset and
//! an accumulation of its gradient. On other devices every function here
//! falls back to the plain candle ops it replaces.
//!
//! - [`input_linear`], [`matmul_no_lhs_grad`], [`matmul_t_no_lhs_grad`]
//!   (`input`): a dense layer on the image batch, without the batch's
//!   gradient.
//! - [`bias_act`] (`bias_act`): bias add and activation in one pass; the
//!   backward pass takes the activation's derivative from the saved output.
//! - [`output_nll`] (`output_nll`): the decoders' output layer, sigmoid and
//!   per-pixel likelihood summed over the pixels, one pass per image after
//!   the layer's matmul.
//! - [`backward`] (`sink`): `loss.backward()` with the weight gradients of
//!   these ops stored as they are, not added into zeroed buffers by candle.

mod bias_act;
mod input;
mod output_nll;
mod sink;

pub use bias_act::bias_act;
pub use input::{input_linear, matmul_no_lhs_grad, matmul_t_no_lhs_grad};
pub use output_nll::output_nll;
pub use sink::backward;

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, Layout, Result, Storage, Tensor};

/// The values of a contiguous f32 CPU storage.
fn f32_values<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(values) = storage else {
        bail!("{op}: f32 tensors only, got {:?}", storage.dtype())
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&values[start..end]),
        None => bail!("{op}: needs contiguous tensors"),
    }
}

/// Runs `f` on the f32 values of CPU tensors (each made contiguous first),
/// in the order given: one call for all of them, so a backward pass reads
/// its inputs without a closure per tensor.
pub(crate) fn with_values<'t, R>(
    tensors: impl IntoIterator<Item = &'t Tensor>,
    op: &str,
    f: impl FnOnce(&[&[f32]]) -> Result<R>,
) -> Result<R> {
    let tensors = tensors
        .into_iter()
        .map(|t| t.contiguous())
        .collect::<Result<Vec<_>>>()?;
    let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
    let values = guards
        .iter()
        .map(|(storage, layout)| match &**storage {
            Storage::Cpu(cpu) => f32_values(cpu, layout, op),
            _ => bail!("{op}: CPU tensors only"),
        })
        .collect::<Result<Vec<_>>>()?;
    f(&values)
}

/// Sum of `values` in 16 interleaved lanes, then the lanes pairwise: a fixed
/// order (so the same bits on every run), and one the compiler vectorizes.
fn lane_sum(values: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0f32; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a += v;
        }
    }
    for (a, v) in acc.iter_mut().zip(chunks.remainder()) {
        *a += v;
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] += acc[i + width];
        }
    }
    acc[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_sum_adds_everything_once() {
        for n in [0, 1, 15, 16, 17, 784, 1000] {
            let v: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
            let exact: f32 = (0..n).map(|i| (i % 7) as f32).sum();
            assert_eq!(lane_sum(&v), exact, "n = {n}");
        }
    }
}

/// Helpers for the ops' tests: each op is checked against the candle ops it
/// replaces, values and gradients.
#[cfg(test)]
pub(crate) mod check {
    use candle_core::{Device, Tensor, Var};

    use crate::rng::Rng;

    /// A variable of normal draws scaled by `scale`.
    pub fn var(rng: &mut Rng, shape: &[usize], scale: f32) -> Var {
        let n = shape.iter().product();
        let v = rng.normals(n).into_iter().map(|x| x * scale).collect();
        Var::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    pub fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// `a` and `b` agree to `tol` relative to the larger magnitude (or to
    /// `tol` absolutely near zero).
    pub fn assert_close(a: &Tensor, b: &Tensor, tol: f32, what: &str) {
        assert_eq!(a.dims(), b.dims(), "{what}: shapes");
        for (i, (x, y)) in values(a).iter().zip(values(b)).enumerate() {
            let scale = x.abs().max(y.abs()).max(1.0);
            assert!((x - y).abs() <= tol * scale, "{what}[{i}]: {x} vs {y}");
        }
    }

    /// The gradients of `Σ out ⊙ weights` (weights fixed, different for
    /// every element) with respect to `vars`, for outputs `ours` and
    /// `theirs` computed from the same variables.
    pub fn assert_same_gradients(
        ours: &Tensor,
        theirs: &Tensor,
        vars: &[&Var],
        rng: &mut Rng,
        tol: f32,
    ) {
        let weights =
            Tensor::from_vec(rng.normals(ours.elem_count()), ours.shape(), &Device::Cpu).unwrap();
        let g_ours = (ours * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g_theirs = (theirs * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for (i, v) in vars.iter().enumerate() {
            let a = g_ours.get(v.as_tensor()).expect("our gradient");
            let b = g_theirs.get(v.as_tensor()).expect("candle's gradient");
            assert_close(a, b, tol, &format!("gradient of variable {i}"));
        }
    }
}
