//! Trainable parameters with seeded initialization, behind candle-nn's
//! `VarBuilder`, so networks are built the usual way (`vb.pp("gate")`) while
//! every initial value comes from [`crate::rng::Rng`]: the same seed gives
//! the same model (candle's own CPU generator cannot be seeded).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};

use crate::rng::Rng;

struct Inner {
    order: Vec<String>,
    vars: HashMap<String, Var>,
    rng: Rng,
}

/// The set of trainable tensors of a model, in creation order.
#[derive(Clone)]
pub struct Params {
    inner: Arc<Mutex<Inner>>,
}

fn fan_in_out(shape: &Shape) -> (usize, usize) {
    let dims = shape.dims();
    match dims.len() {
        0 => (1, 1),
        1 => (dims[0], dims[0]),
        n => (dims[n - 1], dims[n - 2]),
    }
}

fn draw(init: Init, shape: &Shape, rng: &mut Rng) -> Vec<f32> {
    let n = shape.elem_count();
    match init {
        Init::Const(c) => vec![c as f32; n],
        Init::Randn { mean, stdev } => (0..n)
            .map(|_| (mean + stdev * rng.normal()) as f32)
            .collect(),
        Init::Uniform { lo, up } => (0..n).map(|_| rng.uniform(lo, up) as f32).collect(),
        Init::Kaiming {
            dist,
            fan,
            non_linearity,
        } => {
            let (fi, fo) = fan_in_out(shape);
            let fan = match fan {
                candle_nn::init::FanInOut::FanIn => fi,
                candle_nn::init::FanInOut::FanOut => fo,
            };
            let std = non_linearity.gain() / (fan as f64).sqrt();
            match dist {
                candle_nn::init::NormalOrUniform::Uniform => {
                    let bound = 3f64.sqrt() * std;
                    (0..n).map(|_| rng.uniform(-bound, bound) as f32).collect()
                }
                candle_nn::init::NormalOrUniform::Normal => {
                    (0..n).map(|_| (std * rng.normal()) as f32).collect()
                }
            }
        }
    }
}

impl Params {
    /// An empty store whose initial values are drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        Params {
            inner: Arc::new(Mutex::new(Inner {
                order: Vec::new(),
                vars: HashMap::new(),
                rng: Rng::new(seed, 0x1217),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A `VarBuilder` creating (or returning) f32 variables in this store.
    pub fn var_builder(&self, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self.clone()), DType::F32, device.clone())
    }

    /// Every variable with its full name, in creation order.
    pub fn vars(&self) -> Vec<(String, Var)> {
        let inner = self.lock();
        inner
            .order
            .iter()
            .map(|n| (n.clone(), inner.vars[n].clone()))
            .collect()
    }

    /// The variable called `name`.
    pub fn get(&self, name: &str) -> Option<Var> {
        self.lock().vars.get(name).cloned()
    }

    /// Number of scalar parameters.
    pub fn count(&self) -> usize {
        self.lock().vars.values().map(|v| v.elem_count()).sum()
    }

    /// The tensors by name (for checkpoints).
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        self.vars()
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().clone()))
            .collect()
    }

    /// Overwrites every variable with the tensor of the same name in `from`.
    pub fn load_from(&self, from: &HashMap<String, Tensor>, file: &Path) -> anyhow::Result<()> {
        for (name, var) in self.vars() {
            let t = from.get(&name).ok_or_else(|| {
                anyhow::anyhow!("{}: checkpoint lacks tensor {name}", file.display())
            })?;
            if t.shape() != var.shape() {
                anyhow::bail!(
                    "{}: tensor {name} has shape {:?}, the model needs {:?}",
                    file.display(),
                    t.dims(),
                    var.dims()
                );
            }
            var.set(&t.to_device(var.device())?.to_dtype(DType::F32)?)?;
        }
        Ok(())
    }
}

impl SimpleBackend for Params {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let mut inner = self.lock();
        if let Some(v) = inner.vars.get(name) {
            if v.shape() != &s {
                candle_core::bail!("{name}: shape {:?} requested, {:?} exists", s, v.shape());
            }
            return Ok(v.as_tensor().clone());
        }
        let values = draw(h, &s, &mut inner.rng);
        let var = Var::from_tensor(&Tensor::from_vec(values, s, dev)?.to_dtype(dtype)?)?;
        inner.order.push(name.to_string());
        inner.vars.insert(name.to_string(), var.clone());
        Ok(var.as_tensor().clone())
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        match self.lock().vars.get(name) {
            Some(v) => Ok(v.as_tensor().clone()),
            None => candle_core::bail!("no variable {name}"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.lock().vars.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_values_and_reuse() {
        let make = |seed| {
            let p = Params::new(seed);
            let vb = p.var_builder(&Device::Cpu);
            let a = vb
                .pp("net")
                .get_with_hints((3, 4), "w", Init::Uniform { lo: -1.0, up: 1.0 })
                .unwrap();
            let again = vb.pp("net").get((3, 4), "w").unwrap();
            assert_eq!(a.to_vec2::<f32>().unwrap(), again.to_vec2::<f32>().unwrap());
            assert_eq!(p.vars()[0].0, "net.w");
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        assert_eq!(make(1), make(1));
        assert_ne!(make(1), make(2));
    }
}
