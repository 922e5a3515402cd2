//! Adam without weight decay, updated in place.
//!
//! candle-nn's `AdamW` builds about a dozen full-size temporaries per
//! parameter per step and defaults to weight decay 0.01; on the CPU this
//! version walks each parameter once, updating weights and moments in place.
//! Moments that fall below `f32::MIN_POSITIVE` are flushed to zero: denormal
//! arithmetic is slow on x86 and otherwise creeps in after many epochs.

use std::cell::RefCell;
use std::collections::HashMap;

use candle_core::{backprop::GradStore, CpuStorage, Layout, Result, Tensor, Var};

/// Adam's hyper-parameters.
#[derive(Debug, Clone, Copy)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator guard.
    pub eps: f64,
}

impl AdamConfig {
    /// PyTorch's defaults with learning rate `lr`.
    pub fn with_lr(lr: f64) -> Self {
        AdamConfig {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

struct Slot {
    name: String,
    /// This variable's learning rate ([`Adam::set_lr`], [`Adam::set_lr_of`]).
    lr: f64,
    var: Var,
    /// The moments on the host: the CPU path's.
    m: Vec<f32>,
    v: Vec<f32>,
    /// The moments of the tensor path ([`Adam::tensor_step`]), on the
    /// variable's device, from its first step on (`m` and `v` are then
    /// stale): a GPU step copies nothing to or from the host.
    on_device: Option<(Tensor, Tensor)>,
}

/// Adam over a fixed list of variables.
pub struct Adam {
    cfg: AdamConfig,
    step: u64,
    slots: Vec<Slot>,
}

struct FusedStep<'a> {
    /// Gradients to add to the one the op is applied with (the other
    /// stores', see [`Adam::step_sum`]).
    more: &'a [Tensor],
    m: RefCell<&'a mut [f32]>,
    v: RefCell<&'a mut [f32]>,
    hyper: Hyper,
}

fn flush(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE {
        0.0
    } else {
        x
    }
}

impl candle_core::InplaceOp2 for FusedStep<'_> {
    fn name(&self) -> &'static str {
        "fused-adam"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        grad: &CpuStorage,
        grad_l: &Layout,
    ) -> Result<()> {
        let (CpuStorage::F32(w), CpuStorage::F32(g)) = (dst, grad) else {
            candle_core::bail!("fused-adam: f32 tensors only");
        };
        let (Some((w0, w1)), Some((g0, g1))) =
            (dst_l.contiguous_offsets(), grad_l.contiguous_offsets())
        else {
            candle_core::bail!("fused-adam: contiguous tensors only");
        };
        let (w, g) = (&mut w[w0..w1], &g[g0..g1]);
        let mut m = self.m.borrow_mut();
        let mut v = self.v.borrow_mut();
        if m.len() != w.len() || g.len() != w.len() {
            candle_core::bail!("fused-adam: size mismatch");
        }
        let (m, v) = (&mut **m, &mut **v);
        crate::ops::with_values(self.more, self.name(), |more| {
            if more.iter().any(|g| g.len() != w.len()) {
                candle_core::bail!("fused-adam: size mismatch");
            }
            self.apply(w, g, more, m, v);
            Ok(())
        })
    }
}

impl FusedStep<'_> {
    /// The update of `w` and its moments from the gradient `g` plus the
    /// gradients in `more`.
    fn apply(&self, w: &mut [f32], g: &[f32], more: &[&[f32]], m: &mut [f32], v: &mut [f32]) {
        let hyper = self.hyper;
        // Elements `lo..` of the update: the same operations on every
        // element wherever the slice is cut, so the halves on two threads
        // give the bits of one pass.
        let part = |w: &mut [f32], m: &mut [f32], v: &mut [f32], lo: usize| {
            let g = &g[lo..lo + w.len()];
            match more {
                [] => hyper.update(w, g.iter().copied(), m, v),
                [g2] => hyper.update(w, g.iter().zip(&g2[lo..]).map(|(a, b)| a + b), m, v),
                _ => {
                    let sum =
                        (lo..lo + w.len()).map(|i| more.iter().fold(g[i - lo], |s, g| s + g[i]));
                    hyper.update(w, sum, m, v)
                }
            }
        };
        if w.len() >= PARALLEL_FROM {
            let mid = w.len() / 2;
            let (w0, w1) = w.split_at_mut(mid);
            let (m0, m1) = m.split_at_mut(mid);
            let (v0, v1) = v.split_at_mut(mid);
            std::thread::scope(|s| {
                s.spawn(|| part(w1, m1, v1, mid));
                part(w0, m0, v0, 0);
            });
        } else {
            part(w, m, v, 0);
        }
    }
}

/// Parameters with at least this many elements are updated by two threads
/// (a thread costs tens of microseconds; these updates take hundreds).
const PARALLEL_FROM: usize = 1 << 16;

/// The step's constants, apart from the op (which holds `RefCell`s and so
/// cannot be shared with a second thread).
#[derive(Clone, Copy)]
struct Hyper {
    lr_t: f32,
    beta1: f32,
    beta2: f32,
    eps_t: f32,
}

impl Hyper {
    /// The update itself, one pass over weights, gradient and moments.
    #[inline(always)]
    fn update(self, w: &mut [f32], g: impl Iterator<Item = f32>, m: &mut [f32], v: &mut [f32]) {
        let (b1, b2) = (self.beta1, self.beta2);
        for (((w, g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            *m = flush(b1 * *m + (1.0 - b1) * g);
            *v = flush(b2 * *v + (1.0 - b2) * g * g);
            *w -= self.lr_t * *m / (v.sqrt() + self.eps_t);
        }
    }
}

impl Adam {
    /// Adam over `vars` (name, variable), moments at zero.
    pub fn new(vars: Vec<(String, Var)>, cfg: AdamConfig) -> Self {
        let slots = vars
            .into_iter()
            .map(|(name, var)| {
                let n = var.elem_count();
                Slot {
                    name,
                    lr: cfg.lr,
                    var,
                    m: vec![0.0; n],
                    v: vec![0.0; n],
                    on_device: None,
                }
            })
            .collect();
        Adam {
            cfg,
            step: 0,
            slots,
        }
    }

    /// Sets the learning rate of the next steps (a schedule's), for every
    /// variable.
    pub fn set_lr(&mut self, lr: f64) {
        for slot in &mut self.slots {
            slot.lr = lr;
        }
    }

    /// Sets the learning rate of the next steps for the variables of the
    /// network built under the `VarBuilder` prefix `net` (names
    /// `net.…`), after [`set_lr`](Self::set_lr) gave the others theirs.
    pub fn set_lr_of(&mut self, net: &str, lr: f64) {
        let under = |name: &str| {
            name.strip_prefix(net)
                .is_some_and(|rest| rest.starts_with('.'))
        };
        for slot in self.slots.iter_mut().filter(|s| under(&s.name)) {
            slot.lr = lr;
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Applies one update from `grads` (variables without a gradient are left alone).
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step_sum(std::slice::from_ref(grads))
    }

    /// Applies one update from the sum of several gradient stores (parts of
    /// one batch's objective: the expert groups' stores, each holding some
    /// of the parameters, or the partition autoencoder's half-batches, each
    /// holding all), adding them inside the update's single pass.
    pub fn step_sum(&mut self, parts: &[GradStore]) -> Result<()> {
        self.step += 1;
        let t = self.step as f64;
        let c = &self.cfg;
        let bc1 = 1.0 - c.beta1.powf(t);
        let bc2 = 1.0 - c.beta2.powf(t);
        // Bias correction folded into the step size and epsilon:
        // w -= lr·m̂/(√v̂+ε) = (lr·√bc2/bc1)·m/(√v + ε·√bc2).
        let eps_t = (c.eps * bc2.sqrt()) as f32;
        for slot in &mut self.slots {
            let lr_t = (slot.lr * bc2.sqrt() / bc1) as f32;
            let grads = parts
                .iter()
                .filter_map(|g| g.get(slot.var.as_tensor()))
                .map(|g| g.contiguous())
                .collect::<Result<Vec<_>>>()?;
            let Some((g, more)) = grads.split_first() else {
                continue;
            };
            if crate::ops::cpu_path(slot.var.device()) {
                crate::ops::count_fused();
                if let Some((m, v)) = slot.on_device.take() {
                    // Only when a test switches paths.
                    slot.m = m.flatten_all()?.to_vec1()?;
                    slot.v = v.flatten_all()?.to_vec1()?;
                }
                let op = FusedStep {
                    more,
                    m: RefCell::new(&mut slot.m),
                    v: RefCell::new(&mut slot.v),
                    hyper: Hyper {
                        lr_t,
                        beta1: c.beta1 as f32,
                        beta2: c.beta2 as f32,
                        eps_t,
                    },
                };
                slot.var.as_tensor().inplace_op2(g, &op)?;
            } else {
                let g = more.iter().try_fold(g.clone(), |s, g| s + g)?;
                Self::tensor_step(slot, &g, c, lr_t as f64, eps_t as f64)?;
            }
        }
        Ok(())
    }

    /// The same update with tensor ops, for accelerators (and for the CPU
    /// inside [`crate::ops::device_path`]); the moments stay on the device.
    /// Moments are not flushed to zero here.
    fn tensor_step(
        slot: &mut Slot,
        g: &Tensor,
        c: &AdamConfig,
        lr_t: f64,
        eps_t: f64,
    ) -> Result<()> {
        let (m, v) = match slot.on_device.take() {
            Some(moments) => moments,
            None => {
                let (shape, dev) = (slot.var.shape(), slot.var.device());
                let m = Tensor::from_slice(&slot.m, shape, dev)?;
                (m, Tensor::from_slice(&slot.v, shape, dev)?)
            }
        };
        let m = ((m * c.beta1)? + (g * (1.0 - c.beta1))?)?;
        let v = ((v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
        let update = (&m / (v.sqrt()? + eps_t)?)?;
        slot.var.set(&(slot.var.as_tensor() - (update * lr_t)?)?)?;
        slot.on_device = Some((m, v));
        Ok(())
    }

    /// Moments as tensors named `adam.m.<var>` / `adam.v.<var>` (for checkpoints).
    pub fn state_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        let dev = candle_core::Device::Cpu;
        for s in &self.slots {
            let (m, v) = match &s.on_device {
                Some((m, v)) => (m.to_device(&dev)?, v.to_device(&dev)?),
                None => (
                    Tensor::from_slice(&s.m, s.var.shape(), &dev)?,
                    Tensor::from_slice(&s.v, s.var.shape(), &dev)?,
                ),
            };
            out.insert(format!("adam.m.{}", s.name), m);
            out.insert(format!("adam.v.{}", s.name), v);
        }
        Ok(out)
    }

    /// Restores moments saved by [`state_tensors`](Self::state_tensors) and the step count.
    pub fn load_state(&mut self, from: &HashMap<String, Tensor>, step: u64) -> anyhow::Result<()> {
        for s in &mut self.slots {
            for (kind, dst) in [("m", &mut s.m), ("v", &mut s.v)] {
                let key = format!("adam.{kind}.{}", s.name);
                let t = from
                    .get(&key)
                    .ok_or_else(|| anyhow::anyhow!("checkpoint lacks optimizer state {key}"))?;
                let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
                if v.len() != dst.len() {
                    anyhow::bail!("optimizer state {key} has the wrong size");
                }
                *dst = v;
            }
            s.on_device = None;
        }
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// A parameter big enough for two threads, updated from two gradient
    /// stores, gets exactly the bits of one sequential pass.
    #[test]
    fn two_threads_and_two_stores_give_the_bits_of_one_pass() {
        let dev = Device::Cpu;
        let n = 2 * PARALLEL_FROM + 3;
        let mut rng = crate::rng::Rng::new(4, 0);
        let (w0, g1, g2) = (rng.normals(n), rng.normals(n), rng.normals(n));
        let var = Var::from_vec(w0.clone(), n, &dev).unwrap();
        let mut adam = Adam::new(vec![("w".into(), var.clone())], AdamConfig::with_lr(0.01));
        // The gradient of Σ w·g is g, exactly.
        let store = |g: &[f32]| {
            let g = Tensor::from_slice(g, n, &dev).unwrap();
            (var.as_tensor() * g)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap()
        };
        adam.step_sum(&[store(&g1), store(&g2)]).unwrap();
        let (bc1, bc2) = (1.0 - 0.9f64, 1.0 - 0.999f64);
        let hyper = Hyper {
            lr_t: (0.01 * bc2.sqrt() / bc1) as f32,
            beta1: 0.9,
            beta2: 0.999,
            eps_t: (1e-8 * bc2.sqrt()) as f32,
        };
        let (mut w, mut m, mut v) = (w0, vec![0f32; n], vec![0f32; n]);
        hyper.update(
            &mut w,
            g1.iter().zip(&g2).map(|(a, b)| a + b),
            &mut m,
            &mut v,
        );
        let got = var.as_tensor().to_vec1::<f32>().unwrap();
        assert!(got.iter().zip(&w).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert_eq!(adam.slots[0].m, m);
    }

    /// The tensor-op update of other devices ([`crate::ops::device_path`]),
    /// run on the CPU, against the fused update: several steps from two
    /// gradient stores, a small parameter and one big enough for two
    /// threads; then the moments through a checkpoint into the other path.
    #[test]
    fn the_device_path_matches_the_fused_update() {
        use crate::ops::check::{assert_close, both_paths, max_diff};
        let dev = Device::Cpu;
        let shapes = [vec![3, 5], vec![PARALLEL_FROM + 7]];
        let mut rng = crate::rng::Rng::new(21, 0);
        let start: Vec<Vec<f32>> = shapes
            .iter()
            .map(|s| rng.normals(s.iter().product()))
            .collect();
        // Per step, per store, per parameter: the gradient (that of Σ w·g).
        let grads: Vec<Vec<Vec<Vec<f32>>>> = (0..4)
            .map(|_| {
                (0..2)
                    .map(|_| start.iter().map(|w| rng.normals(w.len())).collect())
                    .collect()
            })
            .collect();
        let run = || {
            let vars: Vec<Var> = start
                .iter()
                .zip(&shapes)
                .map(|(w, s)| Var::from_slice(w, s.as_slice(), &dev).unwrap())
                .collect();
            let named = vars.iter().enumerate();
            let named = named.map(|(i, v)| (format!("p{i}"), v.clone())).collect();
            let mut adam = Adam::new(named, AdamConfig::with_lr(0.01));
            for step in &grads {
                let stores: Vec<GradStore> = step
                    .iter()
                    .map(|gs| {
                        let terms = vars.iter().zip(gs).map(|(v, g)| {
                            let g = Tensor::from_slice(g, v.shape(), &dev).unwrap();
                            (v.as_tensor() * g).unwrap().sum_all().unwrap()
                        });
                        let loss = terms.reduce(|a, b| (a + b).unwrap()).unwrap();
                        loss.backward().unwrap()
                    })
                    .collect();
                adam.step_sum(&stores).unwrap();
            }
            let weights: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().copy().unwrap()).collect();
            (weights, adam)
        };
        let ((w_cpu, adam_cpu), (w_dev, mut adam_dev)) = both_paths(run);
        for (i, (a, b)) in w_cpu.iter().zip(&w_dev).enumerate() {
            eprintln!("weights p{i}: max difference {:e}", max_diff(a, b));
            assert_close(a, b, 2e-6, &format!("weights p{i}"));
        }
        let (s_cpu, s_dev) = (
            adam_cpu.state_tensors().unwrap(),
            adam_dev.state_tensors().unwrap(),
        );
        assert_eq!(s_cpu.len(), 4);
        for (name, a) in &s_cpu {
            eprintln!("{name}: max difference {:e}", max_diff(a, &s_dev[name]));
            assert_close(a, &s_dev[name], 2e-6, name);
        }
        // The device path's moments, checkpointed, restore into the CPU path.
        adam_dev.load_state(&s_dev, adam_dev.steps()).unwrap();
        assert!(adam_dev.slots.iter().all(|s| s.on_device.is_none()));
        assert_eq!(
            adam_dev.state_tensors().unwrap()["adam.v.p1"]
                .to_vec1::<f32>()
                .unwrap(),
            s_dev["adam.v.p1"].to_vec1::<f32>().unwrap()
        );
    }

    /// `set_lr_of` gives the variables under one prefix their own rate: a
    /// rate of 0 leaves them where they are, the others move by `set_lr`'s.
    #[test]
    fn a_prefix_takes_its_own_learning_rate() {
        let dev = Device::Cpu;
        let gate = Var::from_slice(&[1f32, -2.0], 2, &dev).unwrap();
        let expert = Var::from_slice(&[1f32, -2.0], 2, &dev).unwrap();
        // "gates.w" shares the letters, not the network.
        let other = Var::from_slice(&[1f32], 1, &dev).unwrap();
        let named = vec![
            ("gate.w".into(), gate.clone()),
            ("experts.w".into(), expert.clone()),
            ("gates.w".into(), other.clone()),
        ];
        let mut adam = Adam::new(named, AdamConfig::with_lr(0.1));
        adam.set_lr(0.05);
        adam.set_lr_of("gate", 0.0);
        let loss = [&gate, &expert, &other]
            .map(|v| v.as_tensor().sqr().unwrap().sum_all().unwrap())
            .into_iter()
            .reduce(|a, b| (a + b).unwrap())
            .unwrap();
        adam.step(&loss.backward().unwrap()).unwrap();
        assert_eq!(gate.as_tensor().to_vec1::<f32>().unwrap(), [1.0, -2.0]);
        // Adam's first step moves each weight by the rate, against its gradient.
        let moved = expert.as_tensor().to_vec1::<f32>().unwrap();
        assert!(
            (moved[0] - 0.95).abs() < 1e-6 && (moved[1] + 1.95).abs() < 1e-6,
            "{moved:?}"
        );
        let moved = other.as_tensor().to_vec1::<f32>().unwrap();
        assert!((moved[0] - 0.95).abs() < 1e-6, "{moved:?}");
    }

    /// The fused update matches a plain Adam written out in f64.
    #[test]
    fn matches_reference_adam() {
        let w0 = [0.5f32, -1.0, 2.0];
        let var = Var::from_slice(&w0, 3, &Device::Cpu).unwrap();
        let mut adam = Adam::new(vec![("w".into(), var.clone())], AdamConfig::with_lr(0.1));
        let (mut w, mut m, mut v) = ([0.5f64, -1.0, 2.0], [0.0f64; 3], [0.0f64; 3]);
        for t in 1..=5 {
            // loss = sum(w^2 * c) with c = (1, 2, 3)
            let c = Tensor::new(&[1f32, 2.0, 3.0], &Device::Cpu).unwrap();
            let loss = (var.as_tensor().sqr().unwrap() * c)
                .unwrap()
                .sum_all()
                .unwrap();
            adam.step(&loss.backward().unwrap()).unwrap();
            for i in 0..3 {
                let g = 2.0 * w[i] * (i as f64 + 1.0);
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.999 * v[i] + 0.001 * g * g;
                let mh = m[i] / (1.0 - 0.9f64.powi(t));
                let vh = v[i] / (1.0 - 0.999f64.powi(t));
                w[i] -= 0.1 * mh / (vh.sqrt() + 1e-8);
            }
        }
        let got = var.as_tensor().to_vec1::<f32>().unwrap();
        for i in 0..3 {
            assert!((got[i] as f64 - w[i]).abs() < 1e-5, "{got:?} vs {w:?}");
        }
        assert_ne!(got[0], w0[0]);
    }
}
