//! Step 3: the gate of the exported model, a classifier distilled from
//! the final assignment by cross-entropy.

use candle_core::{Device, Result, Tensor};

use super::config::KVaeConfig;
use super::training::adam;
use crate::data::Points;
use crate::nn::layers::{Activation, Gate};
use crate::nn::params::Params;
use crate::rng::Rng;

/// Distills an assignment into a gate `data -> cfg.gate_hidden -> cfg.k`
/// by cross-entropy (`cfg.gate_epochs` epochs, batch `cfg.batch`, Adam
/// `cfg.lr`, seeded by `cfg.seed`). Returns the gate and its agreement with
/// the assignment on the training points.
pub fn distill_gate(
    data: &Points,
    assignment: &[usize],
    cfg: &KVaeConfig,
    device: &Device,
) -> Result<(Gate, f64)> {
    let (k, hidden, epochs, batch, lr, seed) = (
        cfg.k,
        &cfg.gate_hidden,
        cfg.gate_epochs,
        cfg.batch,
        cfg.lr,
        cfg.seed,
    );
    let params = Params::new(seed ^ 0x6A7E);
    let gate = Gate::new(
        data.dim,
        hidden,
        k,
        Activation::Relu,
        params.var_builder(device).pp("gate"),
    )?;
    let mut opt = adam(&params, lr);
    let mut rng = Rng::new(seed, 0x6A7E);
    let mut order: Vec<usize> = (0..data.n).collect();
    for _ in 0..epochs {
        rng.shuffle(&mut order);
        for chunk in order.chunks(batch) {
            let x = data.gather(&[chunk.to_vec()], device)?.squeeze(0)?;
            let t: Vec<u32> = chunk.iter().map(|&i| assignment[i] as u32).collect();
            let t = Tensor::from_vec(t, chunk.len(), device)?;
            let loss = candle_nn::loss::cross_entropy(&gate.forward(&x)?, &t)?;
            opt.step(&loss.backward()?)?;
        }
    }
    let pred = gate_predict(&gate, data, device)?;
    let agree =
        pred.iter().zip(assignment).filter(|(a, b)| a == b).count() as f64 / data.n.max(1) as f64;
    Ok((gate, agree))
}

/// The gate's argmax for every point (the trainer's assignment of new inputs).
pub fn gate_predict(gate: &Gate, data: &Points, device: &Device) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(data.n);
    let mut start = 0;
    while start < data.n {
        let len = 2048.min(data.n - start);
        out.extend(gate.classify(&data.slice(start, len, device)?)?);
        start += len;
    }
    Ok(out)
}
