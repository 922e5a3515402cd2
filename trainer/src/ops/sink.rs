//! Weight gradients that skip candle's gradient store.
//!
//! candle's backward pass adds every gradient an op returns into its store:
//! the first time a tensor gets one, it allocates a zero tensor of its size
//! and adds the gradient to it. For the big weights (the encoders' and the
//! gate's first layers and the decoders' output layer, two million floats
//! in the blog preset) that is a memset and a full read-add-write of every
//! weight, on every step: about a quarter of a step, by `perf` (measured
//! with the batch cut in two slices, each with its own gradient store). A weight is used once per graph, so its gradient needs no adding
//! at all.
//!
//! [`backward`] runs `loss.backward()` with a collector on its thread; while
//! it runs, the ops of this module hand the gradients of their weights to
//! the collector ([`offer`]) instead of returning them to candle, and when
//! it is done they go into the store as they are (added, in the rare case
//! the store has one too). Outside [`backward`] the ops return them to
//! candle as usual, so a plain `loss.backward()` gives the same store.

use std::cell::RefCell;

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor};

thread_local! {
    /// `(weight, gradient)` pairs offered during [`backward`] on this thread.
    static COLLECTED: RefCell<Option<Vec<(Tensor, Tensor)>>> = const { RefCell::new(None) };
}

/// `loss.backward()`, with the weight gradients of this module's ops put
/// straight into the store instead of through candle's accumulation: the
/// same gradients, without a zeroed buffer and an addition per weight.
///
/// ```
/// # use candle_core::{Device, Tensor, Var};
/// let w = Var::from_vec(vec![1f32, 2.0, 3.0, 4.0], (2, 2), &Device::Cpu)?;
/// let x = Tensor::from_vec(vec![1f32, 0.0], (1, 2), &Device::Cpu)?;
/// let loss = trainer::ops::matmul_no_lhs_grad(&x, w.as_tensor())?.sum_all()?;
/// let grads = trainer::ops::backward(&loss)?;
/// let g = grads.get(w.as_tensor()).unwrap().flatten_all()?.to_vec1::<f32>()?;
/// assert_eq!(g, [1.0, 1.0, 0.0, 0.0]);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn backward(loss: &Tensor) -> Result<GradStore> {
    COLLECTED.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let grads = loss.backward();
    let collected = COLLECTED
        .with(|c| c.borrow_mut().take())
        .unwrap_or_default();
    let mut grads = grads?;
    for (weight, grad) in collected {
        let grad = match grads.remove(&weight) {
            Some(other) => (other + grad)?,
            None => grad,
        };
        grads.insert(&weight, grad);
    }
    Ok(grads)
}

/// The gradient of `weight` from an op's backward pass: kept for the store
/// when [`backward`] runs on this thread (and `None` returned to candle),
/// given back otherwise. Only a variable's gradient can wait until the end:
/// anything else (a reshaped weight, say) passes its gradient on during the
/// backward pass, so it is always given back.
pub(crate) fn offer(weight: &Tensor, grad: Tensor) -> Option<Tensor> {
    if !weight.is_variable() {
        return Some(grad);
    }
    COLLECTED.with(|c| match c.borrow_mut().as_mut() {
        Some(collected) => {
            collected.push((weight.clone(), grad));
            None
        }
        None => Some(grad),
    })
}
