//! candle ops the trainer needs beyond candle's own: CPU kernels that fuse
//! what candle would run as a chain of element-wise ops.
//!
//! Each op is a candle custom op with a CPU forward pass and a backward pass
//! written by hand, so candle's autograd sees one node where it would
//! otherwise see four to ten, each with a full-size temporary, a memset and
//! an accumulation of its gradient. On other devices every function here
//! falls back to the plain candle ops it replaces; [`cpu_path`] decides, and
//! [`device_path`] runs the other devices' path on the CPU, so that tests
//! can compare the two (each op's tests do, values and gradients).
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

use std::cell::Cell;

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, Device, Layout, Result, Storage, Tensor};

thread_local! {
    /// Set while [`device_path`] runs on this thread.
    static DEVICE_PATH: Cell<bool> = const { Cell::new(false) };
}

/// Whether tensors on `device` take the CPU's path: the fused ops of this
/// module, the in-place Adam ([`crate::nn::adam`]) and the expert groups on
/// threads of their own. Elsewhere (CUDA), and on the CPU inside
/// [`device_path`], they take candle's plain ops, Adam's tensor ops and
/// the groups one after another.
pub fn cpu_path(device: &Device) -> bool {
    device.is_cpu() && !DEVICE_PATH.with(Cell::get)
}

/// Runs `f` with this thread's CPU tensors on the path of other devices
/// (see [`cpu_path`]): the code a GPU runs, run on the CPU, for tests.
pub fn device_path<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the flag, also when `f` panics.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            DEVICE_PATH.with(|d| d.set(self.0));
        }
    }
    let _restore = Restore(DEVICE_PATH.with(|d| d.replace(true)));
    f()
}

#[cfg(test)]
thread_local! {
    /// How many times a fused op or the in-place Adam ran on this thread.
    static FUSED_RUNS: Cell<usize> = const { Cell::new(0) };
}

/// Counts a run of a fused op (tests check that [`device_path`] runs none).
#[inline(always)]
pub(crate) fn count_fused() {
    #[cfg(test)]
    FUSED_RUNS.with(|c| c.set(c.get() + 1));
}

/// Fused ops and in-place Adam updates run on this thread so far.
#[cfg(test)]
pub(crate) fn fused_runs() -> usize {
    FUSED_RUNS.with(Cell::get)
}

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

/// A whole training step of the mixture (gate, expert groups, likelihood,
/// backward pass, Adam) on the other devices' path against the CPU path.
#[cfg(test)]
mod device_path_tests {
    use candle_core::{Device, Tensor};

    use super::check::{assert_close, both_paths, max_diff};
    use crate::methods::mixture::loss::{expert_losses, mixture_loss};
    use crate::methods::mixture::nets::{expert_group, Arch, Networks as Mixture};
    use crate::nn::adam::{Adam, AdamConfig};
    use crate::nn::layers::Activation;
    use crate::nn::likelihood::Likelihood;
    use crate::nn::params::Params;
    use crate::rng::Rng;

    /// Three steps from the same start: (each step's loss, final weights).
    fn train(arch: &Arch, likelihood: Likelihood) -> (Vec<f32>, Vec<(String, Tensor)>) {
        let dev = Device::Cpu;
        let params = Params::new(7);
        let model = Mixture::new(arch, params.var_builder(&dev)).unwrap();
        let mut adam = Adam::new(params.vars(), AdamConfig::with_lr(1e-2));
        let mut rng = Rng::new(8, 0);
        let (k, b, p) = (arch.experts, 6, arch.pixels);
        let mut losses = Vec::new();
        for _ in 0..3 {
            let x: Vec<f32> = (0..b * p).map(|_| rng.unit_f64() as f32).collect();
            let x = Tensor::from_vec(x, (b, p), &dev).unwrap();
            let eps = Tensor::from_vec(rng.normals(k * b * arch.latent), (k, b, arch.latent), &dev)
                .unwrap();
            let per_expert = (0..model.groups.len()).map(|g| {
                let (first, count) = expert_group(k, g);
                let eps = eps.narrow(0, first, count).unwrap();
                expert_losses(&model.groups[g], likelihood, &x, &eps)
                    .unwrap()
                    .total
            });
            let per_expert = Tensor::cat(&per_expert.collect::<Vec<_>>(), 0).unwrap();
            let logits = model.gate.forward(&x).unwrap();
            let loss = mixture_loss(&logits, &per_expert, 0.1).unwrap().loss;
            losses.push(loss.to_scalar::<f32>().unwrap());
            adam.step(&super::backward(&loss).unwrap()).unwrap();
        }
        let weights = params.vars().into_iter();
        (
            losses,
            weights
                .map(|(n, v)| (n, v.as_tensor().copy().unwrap()))
                .collect(),
        )
    }

    #[test]
    fn a_training_step_matches_on_both_paths() {
        for (act, likelihood) in [
            (Activation::Relu, Likelihood::Bernoulli),
            (Activation::Sigmoid, Likelihood::Gaussian { std: 0.5 }),
        ] {
            let arch = Arch {
                experts: 5,
                pixels: 50,
                latent: 3,
                gate_hidden: vec![16],
                encoder_hidden: 12,
                decoder_hidden: vec![9],
                act,
            };
            let ((loss_cpu, w_cpu), (loss_dev, w_dev)) = both_paths(|| train(&arch, likelihood));
            for (a, b) in loss_cpu.iter().zip(&loss_dev) {
                assert!(
                    (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                    "{act:?} loss {a} vs {b}"
                );
            }
            let mut worst = 0f32;
            for ((name, a), (_, b)) in w_cpu.iter().zip(&w_dev) {
                worst = worst.max(max_diff(a, b));
                assert_close(a, b, 1e-5, &format!("{act:?} {name}"));
            }
            eprintln!("{act:?}: losses {loss_cpu:?} / {loss_dev:?}, weights differ by {worst:e}");
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

    /// The largest difference of `a` and `b`, relative to the larger
    /// magnitude (absolute below 1): what [`assert_close`] bounds.
    pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims(), "shapes");
        values(a)
            .iter()
            .zip(values(b))
            .map(|(x, y)| (x - y).abs() / x.abs().max(y.abs()).max(1.0))
            .fold(0.0, f32::max)
    }

    /// `f()` on the CPU path and on the other devices' path
    /// ([`super::device_path`]), checking that the first ran fused ops (or
    /// the in-place Adam) and the second none.
    pub fn both_paths<R>(mut f: impl FnMut() -> R) -> (R, R) {
        let before = super::fused_runs();
        let cpu = f();
        assert!(super::fused_runs() > before, "the CPU path ran no fused op");
        let before = super::fused_runs();
        let device = super::device_path(&mut f);
        assert_eq!(
            super::fused_runs(),
            before,
            "the device path ran a fused op"
        );
        (cpu, device)
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
