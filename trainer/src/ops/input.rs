//! A dense layer applied to the training images.
//!
//! candle's `matmul` always computes the gradient of both operands, and for
//! the first layer of the gate and of the encoders the left operand is the
//! image batch, whose gradient nobody uses: `B × out × 784` multiply-adds per
//! layer per step, about a sixth of a step's matmul work for the blog preset
//! (and a tenth of the partition autoencoder's). The op here computes the
//! same product with the same call into candle's CPU backend (so the same
//! bits), and its backward pass gives the weights exactly the gradient
//! candle's `matmul` would (`xᵀ · grad`) and the images none.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use candle_nn::Linear;

/// `x · w` for 2-D `x` `[m, k]` and `w` `[k, n]` (or, with `rhs_t`, `x · wᵀ`
/// for `w` `[n, k]`, the layout of a `Linear` weight), with no gradient for
/// `x`.
struct MatmulNoLhsGrad {
    rhs_t: bool,
}

impl CustomOp2 for MatmulNoLhsGrad {
    fn name(&self) -> &'static str {
        "matmul-no-lhs-grad"
    }

    fn cpu_fwd(
        &self,
        lhs: &CpuStorage,
        lhs_l: &Layout,
        rhs: &CpuStorage,
        rhs_l: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        // `Tensor::t` is this layout change, without a tensor of its own.
        let rhs_l = if self.rhs_t {
            rhs_l.transpose(0, 1)?
        } else {
            rhs_l.clone()
        };
        let (m, k) = lhs_l.shape().dims2()?;
        let (k2, n) = rhs_l.shape().dims2()?;
        if k != k2 {
            candle_core::bail!("matmul-no-lhs-grad: [{m}, {k}] · [{k2}, {n}]");
        }
        // The very call `Tensor::matmul` makes for 2-D operands.
        let out = lhs.matmul(rhs, (1, m, n, k), lhs_l, &rhs_l)?;
        Ok((out, Shape::from((m, n))))
    }

    fn bwd(
        &self,
        lhs: &Tensor,
        rhs: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // candle's own `Op::Matmul` backward for the right operand, or its
        // transpose, straight in the weight's layout: no transposed node
        // whose gradient candle would accumulate once more.
        let rhs_grad = if self.rhs_t {
            grad.t()?.matmul(lhs)?
        } else {
            lhs.t()?.matmul(grad)?
        };
        Ok((None, super::sink::offer(rhs, rhs_grad)))
    }
}

/// `x.matmul(w)` for 2-D `x` that needs no gradient: the same values, the
/// same gradient for `w`, none for `x`. On devices other than the CPU, or
/// for other ranks, it is `x.matmul(w)`.
pub fn matmul_no_lhs_grad(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if !super::cpu_path(x.device()) || x.rank() != 2 || w.rank() != 2 {
        return x.matmul(w);
    }
    super::count_fused();
    x.apply_op2(w, MatmulNoLhsGrad { rhs_t: false })
}

/// `x.matmul(&w.t())` (a `Linear` layer's product, `w` `[out, in]`) for 2-D
/// `x` that needs no gradient: the same values, the gradient for `w` in
/// `w`'s own layout, none for `x`. On devices other than the CPU, or for
/// other ranks, it is `x.matmul(&w.t())`.
pub fn matmul_t_no_lhs_grad(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if !super::cpu_path(x.device()) || x.rank() != 2 || w.rank() != 2 {
        return x.matmul(&w.t()?);
    }
    super::count_fused();
    x.apply_op2(w, MatmulNoLhsGrad { rhs_t: true })
}

/// `l.forward(x)` for a batch of inputs `x` `[B, in]` that needs no
/// gradient: the same values, and the same gradients for the layer's weight
/// and bias. On devices other than the CPU it is `l.forward(x)`.
pub fn input_linear(l: &Linear, x: &Tensor) -> Result<Tensor> {
    if !super::cpu_path(x.device()) || x.rank() != 2 {
        return candle_core::Module::forward(l, x);
    }
    let y = matmul_t_no_lhs_grad(x, l.weight())?;
    match l.bias() {
        Some(b) => y.broadcast_add(b),
        None => Ok(y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Module, Var};

    fn bits(t: &Tensor) -> Vec<u32> {
        t.flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }

    #[test]
    fn same_values_and_weight_gradients_as_linear_and_no_input_gradient() {
        let dev = Device::Cpu;
        let mut rng = crate::rng::Rng::new(3, 0);
        let w = Var::from_vec(rng.normals(7 * 33), (7, 33), &dev).unwrap();
        let b = Var::from_vec(rng.normals(7), 7, &dev).unwrap();
        let x = Var::from_vec(rng.normals(5 * 33), (5, 33), &dev).unwrap();
        let l = Linear::new(w.as_tensor().clone(), Some(b.as_tensor().clone()));
        let ours = input_linear(&l, x.as_tensor()).unwrap();
        let theirs = l.forward(x.as_tensor()).unwrap();
        assert_eq!(bits(&ours), bits(&theirs));
        // A loss that weighs every output differently.
        let weights = Tensor::from_vec(rng.normals(5 * 7), (5, 7), &dev).unwrap();
        let g_ours = (candle_nn::ops::sigmoid(&ours).unwrap() * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g_theirs = (candle_nn::ops::sigmoid(&theirs).unwrap() * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for v in [&w, &b] {
            let a = g_ours.get(v.as_tensor()).expect("gradient");
            let e = g_theirs.get(v.as_tensor()).expect("gradient");
            assert_eq!(bits(a), bits(e));
        }
        assert!(g_ours.get(x.as_tensor()).is_none());
        assert!(g_theirs.get(x.as_tensor()).is_some());
    }

    /// On other devices the three functions are candle's `matmul` (and
    /// `Linear::forward`): the same values and weight gradients, and a
    /// gradient for the images too.
    #[test]
    fn the_device_path_matches_in_values_and_weight_gradients() {
        use crate::ops::check::{assert_same_gradients, both_paths, var};
        let mut rng = crate::rng::Rng::new(9, 0);
        let (m, k, n) = (6, 45, 13);
        let x = var(&mut rng, &[m, k], 1.0);
        let w = var(&mut rng, &[k, n], 1.0);
        let w_t = var(&mut rng, &[n, k], 1.0);
        let b = var(&mut rng, &[n], 1.0);
        let l = Linear::new(w_t.as_tensor().clone(), Some(b.as_tensor().clone()));
        let xt = x.as_tensor();
        /// A name, the function, the weights it takes.
        type Case<'a> = (&'a str, &'a dyn Fn() -> Tensor, Vec<&'a Var>);
        let cases: [Case; 3] = [
            (
                "matmul_no_lhs_grad",
                &|| matmul_no_lhs_grad(xt, w.as_tensor()).unwrap(),
                vec![&w],
            ),
            (
                "matmul_t_no_lhs_grad",
                &|| matmul_t_no_lhs_grad(xt, w_t.as_tensor()).unwrap(),
                vec![&w_t],
            ),
            (
                "input_linear",
                &|| input_linear(&l, xt).unwrap(),
                vec![&w_t, &b],
            ),
        ];
        for (name, f, weights) in cases {
            let (ours, theirs) = both_paths(f);
            // The same call into candle's CPU matmul: the same bits.
            assert_eq!(bits(&ours), bits(&theirs), "{name}");
            assert_same_gradients(&ours, &theirs, &weights, &mut rng, 1e-6);
            let g = theirs.sum_all().unwrap().backward().unwrap();
            assert!(
                g.get(xt).is_some(),
                "{name}: the device path's image gradient"
            );
            let g = ours.sum_all().unwrap().backward().unwrap();
            assert!(
                g.get(xt).is_none(),
                "{name}: no image gradient on the CPU path"
            );
        }
    }
}
