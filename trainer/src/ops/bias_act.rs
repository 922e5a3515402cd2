//! `act(y + bias)` in one pass, for the hidden layers.
//!
//! candle runs a hidden layer's bias and activation as a broadcast add and a
//! unary op, and their backward passes as about six more full-size passes
//! (the sigmoid's alone builds `1 − s`, `(1 − s)·s` and the product with the
//! gradient), each into a fresh buffer. Here the forward pass is one pass
//! and the backward pass one more: the activation's derivative comes from
//! the saved output (`s(1 − s)`, `1 − t²`, `o > 0`), and the bias gradient is
//! summed in the same pass.

use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use engine::kernels::activate_slice;
use engine::Activation;

use super::{f32_values, with_values};

/// `y` is `[rows, n]` with `bias` `[n]`, or `[groups, rows, n]` with `bias`
/// `[groups, 1, n]`; returns `(groups, rows, n)`.
fn split(y: &Shape, bias: &Shape) -> Result<(usize, usize, usize)> {
    match (y.dims(), bias.dims()) {
        (&[rows, n], &[nb]) if nb == n => Ok((1, rows, n)),
        (&[groups, rows, n], &[gb, 1, nb]) if gb == groups && nb == n => Ok((groups, rows, n)),
        _ => bail!("bias-act: bias {bias:?} does not fit {y:?}"),
    }
}

struct BiasAct(Activation);

impl CustomOp2 for BiasAct {
    fn name(&self) -> &'static str {
        "bias-act"
    }

    fn cpu_fwd(
        &self,
        y: &CpuStorage,
        y_l: &Layout,
        bias: &CpuStorage,
        bias_l: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (groups, rows, n) = split(y_l.shape(), bias_l.shape())?;
        let y = f32_values(y, y_l, self.name())?;
        let bias = f32_values(bias, bias_l, self.name())?;
        let mut out = Vec::with_capacity(groups * rows * n);
        for (y_group, bias) in y.chunks_exact(rows * n).zip(bias.chunks_exact(n)) {
            for y_row in y_group.chunks_exact(n) {
                let start = out.len();
                out.extend(y_row.iter().zip(bias).map(|(y, b)| y + b));
                activate_slice(self.0, &mut out[start..]);
            }
        }
        Ok((CpuStorage::F32(out), y_l.shape().clone()))
    }

    fn bwd(
        &self,
        y: &Tensor,
        bias: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (groups, rows, n) = split(y.shape(), bias.shape())?;
        let act = self.0;
        let (dy, dbias) = with_values([res, grad], self.name(), |values| {
            let &[out, grad] = values else {
                bail!("bias-act: two tensors expected");
            };
            let mut dy = Vec::with_capacity(out.len());
            let mut dbias = vec![0f32; groups * n];
            let groups_out = out.chunks_exact(rows * n).zip(grad.chunks_exact(rows * n));
            for ((out, grad), dbias) in groups_out.zip(dbias.chunks_exact_mut(n)) {
                for (o, g) in out.chunks_exact(n).zip(grad.chunks_exact(n)) {
                    let start = dy.len();
                    dy.extend(o.iter().zip(g).map(|(&o, &g)| g * derivative(act, o)));
                    for (db, d) in dbias.iter_mut().zip(&dy[start..]) {
                        *db += d;
                    }
                }
            }
            Ok((dy, dbias))
        })?;
        let dy = Tensor::from_vec(dy, y.shape(), y.device())?;
        let dbias = Tensor::from_vec(dbias, bias.shape(), bias.device())?;
        Ok((Some(dy), Some(dbias)))
    }
}

/// The activation's derivative, from its output `o`.
#[inline(always)]
fn derivative(act: Activation, o: f32) -> f32 {
    match act {
        Activation::Identity => 1.0,
        // PyTorch's convention: 0 where the input was 0.
        Activation::Relu => {
            if o > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::Sigmoid => o * (1.0 - o),
        Activation::Tanh => 1.0 - o * o,
    }
}

/// `act(y + bias)` for `y` `[rows, n]` with `bias` `[n]`, or `y`
/// `[groups, rows, n]` with `bias` `[groups, 1, n]` (the batched experts):
/// the values of the activation of `y.broadcast_add(bias)` and gradients
/// for both `y` and `bias`. CPU only (`crate::nn::layers` falls back to candle ops
/// elsewhere).
pub fn bias_act(y: &Tensor, bias: &Tensor, act: Activation) -> Result<Tensor> {
    super::count_fused();
    y.contiguous()?.apply_op2(&bias.contiguous()?, BiasAct(act))
}

#[cfg(test)]
mod tests {
    use super::super::check::{assert_close, assert_same_gradients, both_paths, var};
    use super::*;
    use crate::nn::layers::{Activation, Apply};
    use crate::rng::Rng;

    fn reference(y: &Tensor, bias: &Tensor, act: Activation) -> Tensor {
        let z = y.broadcast_add(bias).unwrap();
        match act {
            Activation::Identity => z,
            Activation::Relu => z.relu().unwrap(),
            Activation::Sigmoid => candle_nn::ops::sigmoid(&z).unwrap(),
            Activation::Tanh => z.tanh().unwrap(),
        }
    }

    #[test]
    fn matches_candle_ops_in_values_and_gradients() {
        let mut rng = Rng::new(11, 0);
        let acts = [
            Activation::Identity,
            Activation::Relu,
            Activation::Sigmoid,
            Activation::Tanh,
        ];
        // A plain layer and a batch of three experts' layers; widths that are
        // not multiples of a vector's lanes.
        for (y_shape, bias_shape) in [(vec![5, 37], vec![37]), (vec![3, 4, 21], vec![3, 1, 21])] {
            for act in acts {
                let y = var(&mut rng, &y_shape, 3.0);
                let bias = var(&mut rng, &bias_shape, 1.0);
                let ours = bias_act(y.as_tensor(), bias.as_tensor(), act).unwrap();
                let theirs = reference(y.as_tensor(), bias.as_tensor(), act);
                assert_close(&ours, &theirs, 1e-6, &format!("{act:?} values"));
                assert_same_gradients(&ours, &theirs, &[&y, &bias], &mut rng, 1e-5);
            }
        }
    }

    /// [`Activation::bias_apply`](crate::nn::layers::Activation::bias_apply) on other devices
    /// (broadcast add, then candle's activation) against this op.
    #[test]
    fn the_device_path_matches_in_values_and_gradients() {
        let mut rng = Rng::new(12, 0);
        for (y_shape, bias_shape) in [(vec![5, 37], vec![37]), (vec![3, 4, 21], vec![3, 1, 21])] {
            for act in [Activation::Relu, Activation::Sigmoid, Activation::Tanh] {
                let y = var(&mut rng, &y_shape, 3.0);
                let bias = var(&mut rng, &bias_shape, 1.0);
                let (ours, theirs) =
                    both_paths(|| act.bias_apply(y.as_tensor(), bias.as_tensor()).unwrap());
                assert_close(&ours, &theirs, 1e-6, &format!("{act:?} values"));
                assert_same_gradients(&ours, &theirs, &[&y, &bias], &mut rng, 1e-5);
            }
        }
    }

    #[test]
    fn a_bias_that_does_not_fit_is_an_error() {
        let mut rng = Rng::new(1, 0);
        let y = var(&mut rng, &[2, 3, 4], 1.0);
        for bias_shape in [vec![4], vec![3, 1, 4], vec![2, 1, 5], vec![2, 4]] {
            let bias = var(&mut rng, &bias_shape, 1.0);
            let err = bias_act(y.as_tensor(), bias.as_tensor(), Activation::Relu).unwrap_err();
            assert!(err.to_string().contains("does not fit"), "{err}");
        }
    }
}
