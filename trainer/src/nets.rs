//! Network definitions: the gate (manager) and the K VAE experts.
//!
//! The experts are stored batched, in two groups ([`Experts`]): every tensor
//! of an expert is one slice of its group's stacked tensor, so one matmul
//! runs all of a group's encoders' first layers and 3-D batched matmuls run
//! the rest. The groups let a training step run the two halves of the
//! experts on two cores, each on the whole batch. The method (losses, balancing) lives in
//! [`crate::method`]; this module only maps inputs to outputs.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{Init, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use engine::writer::DenseF32;

use crate::ops::{self, input_linear, matmul_t_no_lhs_grad};

/// Element-wise function after a hidden layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Act {
    /// `max(x, 0)`
    Relu,
    /// `1 / (1 + exp(-x))`
    Sigmoid,
    /// `tanh(x)`
    Tanh,
}

impl Act {
    /// Applies the function.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Act::Relu => x.relu(),
            Act::Sigmoid => candle_nn::ops::sigmoid(x),
            Act::Tanh => x.tanh(),
        }
    }

    /// `self(y + bias)` with `bias` broadcast over rows: one fused pass on
    /// the CPU ([`ops::bias_act`]), candle's ops elsewhere ([`ops::cpu_path`]).
    pub fn bias_apply(self, y: &Tensor, bias: &Tensor) -> Result<Tensor> {
        if ops::cpu_path(y.device()) {
            ops::bias_act(y, bias, self.engine())
        } else {
            self.apply(&y.broadcast_add(bias)?)
        }
    }

    /// The engine's name for it.
    pub fn engine(self) -> engine::Activation {
        match self {
            Act::Relu => engine::Activation::Relu,
            Act::Sigmoid => engine::Activation::Sigmoid,
            Act::Tanh => engine::Activation::Tanh,
        }
    }
}

/// PyTorch's default for `nn.Linear`: weights and biases uniform in ±1/√fan_in.
fn default_init(fan_in: usize) -> Init {
    let b = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform { lo: -b, up: b }
}

/// A dense layer `[out, in]` (candle `Linear` layout) with PyTorch's init.
pub fn dense(inputs: usize, outputs: usize, vb: VarBuilder) -> Result<Linear> {
    let w = vb.get_with_hints((outputs, inputs), "weight", default_init(inputs))?;
    let b = vb.get_with_hints(outputs, "bias", default_init(inputs))?;
    Ok(Linear::new(w, Some(b)))
}

/// `act(x · Wᵀ + b)` for a [`dense`] layer. `images`: `x` is the image batch,
/// which needs no gradient (see [`crate::ops`]).
fn dense_act(l: &Linear, x: &Tensor, act: Act, images: bool) -> Result<Tensor> {
    let y = if images {
        matmul_t_no_lhs_grad(x, l.weight())?
    } else {
        x.matmul(&l.weight().t()?)?
    };
    match l.bias() {
        Some(b) => act.bias_apply(&y, b),
        None => act.apply(&y),
    }
}

fn to_dense(l: &Linear, activation: engine::Activation) -> Result<DenseF32> {
    let (outputs, inputs) = l.weight().dims2()?;
    let bias = match l.bias() {
        Some(b) => b.to_vec1::<f32>()?,
        None => vec![0.0; outputs],
    };
    Ok(DenseF32 {
        inputs,
        outputs,
        activation,
        weights: l.weight().flatten_all()?.to_vec1::<f32>()?,
        bias,
    })
}

/// K dense layers applied in one batched matmul: weights `[K, in, out]`,
/// biases `[K, 1, out]`; input `[K, B, in]`, output `[K, B, out]`.
#[derive(Debug, Clone)]
pub struct BatchedDense {
    weight: Tensor,
    bias: Tensor,
}

impl BatchedDense {
    /// K layers of `inputs → outputs`, each initialized like `nn.Linear`.
    pub fn new(k: usize, inputs: usize, outputs: usize, vb: VarBuilder) -> Result<Self> {
        Ok(BatchedDense {
            weight: vb.get_with_hints((k, inputs, outputs), "weight", default_init(inputs))?,
            bias: vb.get_with_hints((k, 1, outputs), "bias", default_init(inputs))?,
        })
    }

    /// `x[k] · W[k] + b[k]` for every k.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight)?.broadcast_add(&self.bias)
    }

    /// `act(x[k] · W[k] + b[k])` for every k.
    pub fn forward_act(&self, x: &Tensor, act: Act) -> Result<Tensor> {
        act.bias_apply(&x.matmul(&self.weight)?, &self.bias)
    }

    /// Layer `k` in the engine's row-major `[out][in]` layout.
    pub fn layer(&self, k: usize, activation: engine::Activation) -> Result<DenseF32> {
        let (_, inputs, outputs) = self.weight.dims3()?;
        Ok(DenseF32 {
            inputs,
            outputs,
            activation,
            weights: self.weight.get(k)?.t()?.flatten_all()?.to_vec1::<f32>()?,
            bias: self.bias.get(k)?.flatten_all()?.to_vec1::<f32>()?,
        })
    }
}

/// The manager: image → K logits (the softmax over experts is the method's).
#[derive(Debug, Clone)]
pub struct Gate {
    hidden: Vec<Linear>,
    out: Linear,
    act: Act,
}

impl Gate {
    /// `pixels → hidden[0] → … → k`, `act` after each hidden layer.
    pub fn new(
        pixels: usize,
        hidden: &[usize],
        k: usize,
        act: Act,
        vb: VarBuilder,
    ) -> Result<Self> {
        let mut layers = Vec::new();
        let mut width = pixels;
        for (i, &h) in hidden.iter().enumerate() {
            layers.push(dense(width, h, vb.pp(format!("fc{i}")))?);
            width = h;
        }
        Ok(Gate {
            hidden: layers,
            out: dense(width, k, vb.pp("logits"))?,
            act,
        })
    }

    /// Logits `[B, K]` for images `[B, pixels]` in `[0, 1]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let Some((first, rest)) = self.hidden.split_first() else {
            return input_linear(&self.out, x);
        };
        let mut h = dense_act(first, x, self.act, true)?;
        for l in rest {
            h = dense_act(l, &h, self.act, false)?;
        }
        self.out.forward(&h)
    }

    /// The layers for export (last one Identity: the engine applies softmax).
    pub fn export(&self) -> Result<Vec<DenseF32>> {
        let mut out = self
            .hidden
            .iter()
            .map(|l| to_dense(l, self.act.engine()))
            .collect::<Result<Vec<_>>>()?;
        out.push(to_dense(&self.out, engine::Activation::Identity)?);
        Ok(out)
    }
}

/// The K experts' encoders: image → (mean, variance) of q(z|x), batched.
///
/// The first layer of all K encoders is one `pixels → K·hidden` matmul.
#[derive(Debug, Clone)]
pub struct Encoders {
    k: usize,
    hidden: usize,
    first: Linear,
    head: BatchedDense,
    act: Act,
    latent: usize,
}

impl Encoders {
    /// K encoders `pixels → hidden → (latent mean, latent variance)`.
    pub fn new(
        k: usize,
        pixels: usize,
        hidden: usize,
        latent: usize,
        act: Act,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Encoders {
            k,
            hidden,
            first: dense(pixels, k * hidden, vb.pp("fc0"))?,
            head: BatchedDense::new(k, hidden, 2 * latent, vb.pp("head"))?,
            act,
            latent,
        })
    }

    /// Mean and variance `[K, B, latent]` for images `[B, pixels]`.
    /// The variance is `1e-5 + exp(s)` as in the published method.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let b = x.dim(0)?;
        let h = dense_act(&self.first, x, self.act, true)?;
        let h = h
            .reshape((b, self.k, self.hidden))?
            .transpose(0, 1)?
            .contiguous()?;
        let out = self.head.forward(&h)?;
        let mean = out.narrow(D::Minus1, 0, self.latent)?;
        let var = (out.narrow(D::Minus1, self.latent, self.latent)?.exp()? + 1e-5)?;
        Ok((mean, var))
    }
}

/// The K experts' decoders: latent `[K, B, latent]` → pixel logits `[K, B, pixels]`.
#[derive(Debug, Clone)]
pub struct Decoders {
    layers: Vec<BatchedDense>,
    act: Act,
}

impl Decoders {
    /// K decoders `latent → hidden[0] → … → pixels`.
    pub fn new(
        k: usize,
        latent: usize,
        hidden: &[usize],
        pixels: usize,
        act: Act,
        vb: VarBuilder,
    ) -> Result<Self> {
        let mut layers = Vec::new();
        let mut width = latent;
        for (i, &h) in hidden.iter().chain(std::iter::once(&pixels)).enumerate() {
            layers.push(BatchedDense::new(k, width, h, vb.pp(format!("fc{i}")))?);
            width = h;
        }
        Ok(Decoders { layers, act })
    }

    /// Pixel logits (a sigmoid turns them into Bernoulli probabilities or
    /// Gaussian means).
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let (h, weight, bias) = self.forward_hidden(z)?;
        h.matmul(weight)?.broadcast_add(bias)
    }

    /// The last hidden layer `[K, B, hidden]` and the output layer's weights
    /// `[K, hidden, out]` and bias `[K, 1, out]`: [`crate::method`] fuses
    /// the output layer with the likelihood ([`ops::output_nll`]).
    pub fn forward_hidden(&self, z: &Tensor) -> Result<(Tensor, &Tensor, &Tensor)> {
        let Some((last, hidden)) = self.layers.split_last() else {
            candle_core::bail!("a decoder has at least one layer");
        };
        let mut h = z.clone();
        for l in hidden {
            h = l.forward_act(&h, self.act)?;
        }
        Ok((h, &last.weight, &last.bias))
    }

    /// Number of decoders.
    pub fn count(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.weight.dims().first().copied())
            .unwrap_or(0)
    }

    /// Expert `k`'s decoder for export, ending in a sigmoid.
    pub fn export(&self, k: usize) -> Result<Vec<DenseF32>> {
        let last = self.layers.len() - 1;
        self.layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let act = if i < last {
                    self.act.engine()
                } else {
                    engine::Activation::Sigmoid
                };
                l.layer(k, act)
            })
            .collect()
    }
}

/// Shapes of a mixture of VAE experts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arch {
    /// Number of experts K.
    pub experts: usize,
    /// Pixels per image.
    pub pixels: usize,
    /// Latent size.
    pub latent: usize,
    /// Gate hidden widths.
    pub gate_hidden: Vec<usize>,
    /// Encoder hidden width.
    pub encoder_hidden: usize,
    /// Decoder hidden widths.
    pub decoder_hidden: Vec<usize>,
    /// Hidden activation everywhere.
    pub act: Act,
}

/// Some of the K experts, stored together: the encoders' first layers are
/// one matmul, the rest batched matmuls (see the module docs).
#[derive(Debug, Clone)]
pub struct Experts {
    /// Their encoders.
    pub encoders: Encoders,
    /// Their decoders.
    pub decoders: Decoders,
}

impl Experts {
    /// `k` experts of `arch`'s shapes.
    fn new(arch: &Arch, k: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Experts {
            encoders: Encoders::new(
                k,
                arch.pixels,
                arch.encoder_hidden,
                arch.latent,
                arch.act,
                vb.pp("encoder"),
            )?,
            decoders: Decoders::new(
                k,
                arch.latent,
                &arch.decoder_hidden,
                arch.pixels,
                arch.act,
                vb.pp("decoder"),
            )?,
        })
    }
}

/// How many groups the experts are stored in: two (one per core of a
/// training step, see `crate::train`) when there are at least two. Fixed,
/// not the number of cores, so that a seed gives the same model anywhere.
pub const EXPERT_GROUPS: usize = 2;

/// How many groups `k` experts make: [`EXPERT_GROUPS`], or fewer when
/// there are fewer experts (never zero).
pub fn expert_groups(k: usize) -> usize {
    EXPERT_GROUPS.min(k).max(1)
}

/// The experts of group `g` of `k`: `(first, count)`. The last groups get
/// the extra expert when `k` does not divide evenly.
pub fn expert_group(k: usize, g: usize) -> (usize, usize) {
    let groups = expert_groups(k);
    let first = g * k / groups;
    (first, (g + 1) * k / groups - first)
}

/// The whole model: a gate and K VAE experts (encoders + decoders), the
/// experts in [`EXPERT_GROUPS`] groups.
#[derive(Debug, Clone)]
pub struct Mixture {
    /// The manager.
    pub gate: Gate,
    /// The experts, group by group ([`expert_group`] says which).
    pub groups: Vec<Experts>,
}

impl Mixture {
    /// Builds (or, on a store that has them, fetches) every tensor:
    /// `gate.*`, `experts.<group>.encoder.*`, `experts.<group>.decoder.*`.
    pub fn new(arch: &Arch, vb: VarBuilder) -> Result<Self> {
        let k = arch.experts;
        let gate = Gate::new(arch.pixels, &arch.gate_hidden, k, arch.act, vb.pp("gate"))?;
        let groups = (0..expert_groups(k))
            .map(|g| Experts::new(arch, expert_group(k, g).1, vb.pp("experts").pp(g)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Mixture { gate, groups })
    }

    /// Pixel logits `[K, B, pixels]` of every expert's decoder for latent
    /// codes `z` `[K, B, latent]`.
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let mut first = 0;
        let mut parts = Vec::with_capacity(self.groups.len());
        for group in &self.groups {
            let count = group.decoders.count();
            parts.push(group.decoders.forward(&z.narrow(0, first, count)?)?);
            first += count;
        }
        Tensor::cat(&parts, 0)
    }

    /// Expert `e`'s decoder for export, ending in a sigmoid.
    pub fn export_decoder(&self, e: usize) -> Result<Vec<DenseF32>> {
        let mut first = 0;
        for group in &self.groups {
            let count = group.decoders.count();
            if e < first + count {
                return group.decoders.export(e - first);
            }
            first += count;
        }
        candle_core::bail!("no expert {e} (the model has {first})")
    }
}
