//! Layers shared by every method: dense layers with PyTorch's initialization,
//! K dense layers run as one batched matmul ([`BatchedDense`]), K MLPs side
//! by side ([`BatchedMlp`]: the mixture's decoders, kVAE's encoders,
//! decoders and discriminators), and the [`Gate`] (image → K logits).

use candle_core::{Module, Result, Tensor};
use candle_nn::{Init, Linear, VarBuilder};

use engine::writer::DenseF32;

use crate::ops::{self, input_linear, matmul_t_no_lhs_grad};

/// The element-wise function after a layer: the engine's own description,
/// which a model file records, applied here in candle.
pub use engine::Activation;

/// [`Activation`] on candle tensors.
pub trait Apply {
    /// Applies the function.
    fn apply(self, x: &Tensor) -> Result<Tensor>;

    /// `self(y + bias)` with `bias` broadcast over rows: one fused pass on
    /// the CPU ([`ops::bias_act`]), candle's ops elsewhere ([`ops::cpu_path`]).
    fn bias_apply(self, y: &Tensor, bias: &Tensor) -> Result<Tensor>;
}

impl Apply for Activation {
    fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Identity => Ok(x.clone()),
            Activation::Relu => x.relu(),
            Activation::Sigmoid => candle_nn::ops::sigmoid(x),
            Activation::Tanh => x.tanh(),
        }
    }

    fn bias_apply(self, y: &Tensor, bias: &Tensor) -> Result<Tensor> {
        if ops::cpu_path(y.device()) {
            ops::bias_act(y, bias, self)
        } else {
            self.apply(&y.broadcast_add(bias)?)
        }
    }
}

/// `--act`: a hidden layer's activation by name (`relu`, `sigmoid`, `tanh`).
pub fn parse_activation(s: &str) -> std::result::Result<Activation, String> {
    match s {
        "relu" => Ok(Activation::Relu),
        "sigmoid" => Ok(Activation::Sigmoid),
        "tanh" => Ok(Activation::Tanh),
        other => Err(format!("expected relu, sigmoid or tanh, got {other:?}")),
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
pub(crate) fn dense_act(l: &Linear, x: &Tensor, act: Activation, images: bool) -> Result<Tensor> {
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

/// Entries `first..first + n` of a `[K, ..]` tensor (itself when that is all).
pub(crate) fn part(t: &Tensor, first: usize, n: usize) -> Result<Tensor> {
    if first == 0 && n == t.dim(0)? {
        Ok(t.clone())
    } else {
        t.narrow(0, first, n)
    }
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
    pub fn forward_act(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        act.bias_apply(&x.matmul(&self.weight)?, &self.bias)
    }

    /// `act(x · W + b)` for `x: [n, B, in]`, run by layers `first..first + n`
    /// alone (a group of consecutive VAEs; all K when `n` is K).
    pub fn forward_group(&self, x: &Tensor, first: usize, act: Activation) -> Result<Tensor> {
        let n = x.dim(0)?;
        let y = x.matmul(&part(&self.weight, first, n)?)?;
        act.bias_apply(&y, &part(&self.bias, first, n)?)
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
    act: Activation,
}

impl Gate {
    /// `pixels → hidden[0] → … → k`, `act` after each hidden layer.
    pub fn new(
        pixels: usize,
        hidden: &[usize],
        k: usize,
        act: Activation,
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
        if self.hidden.is_empty() {
            return input_linear(&self.out, x);
        }
        Ok(self.forward_hidden(x)?.1)
    }

    /// The last hidden layer `[B, hidden]` (what a two-level mixture's
    /// style gates read) and the logits `[B, K]`; the gate needs a hidden
    /// layer.
    pub fn forward_hidden(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let Some((first, rest)) = self.hidden.split_first() else {
            candle_core::bail!("the gate has no hidden layer");
        };
        let mut h = dense_act(first, x, self.act, true)?;
        for l in rest {
            h = dense_act(l, &h, self.act, false)?;
        }
        let logits = self.out.forward(&h)?;
        Ok((h, logits))
    }

    /// The argmax of the logits of each row of `x` `[B, pixels]`: the
    /// cluster the gate picks.
    pub fn classify(&self, x: &Tensor) -> Result<Vec<usize>> {
        Ok(self
            .forward(x)?
            .argmax(candle_core::D::Minus1)?
            .to_vec1::<u32>()?
            .into_iter()
            .map(|c| c as usize)
            .collect())
    }

    /// [`Gate::classify`] of `n` images of 8-bit pixels (`n * pixels`
    /// bytes, scaled by 1/255 like the engine), 1,000 at a time.
    pub fn classify_images(
        &self,
        pixels: &[u8],
        n: usize,
        device: &candle_core::Device,
    ) -> Result<Vec<usize>> {
        let p = pixels.len() / n.max(1);
        let mut out = Vec::with_capacity(n);
        let all: Vec<usize> = (0..n).collect();
        for idx in all.chunks(1000) {
            let x = crate::data::images_tensor(pixels, p, idx, device)?;
            out.extend(self.classify(&x)?);
        }
        Ok(out)
    }

    /// The layers for export (last one Identity: the engine applies softmax).
    pub fn export(&self) -> Result<Vec<DenseF32>> {
        let mut out = self
            .hidden
            .iter()
            .map(|l| to_dense(l, self.act))
            .collect::<Result<Vec<_>>>()?;
        out.push(to_dense(&self.out, engine::Activation::Identity)?);
        Ok(out)
    }
}

/// K MLPs of the same shape side by side: input `[K, B, in]` → output
/// `[K, B, out]`, every layer a [`BatchedDense`] (the mixture's decoders:
/// latent → pixel logits).
#[derive(Debug, Clone)]
pub struct BatchedMlp {
    layers: Vec<BatchedDense>,
    act: Activation,
}

impl BatchedMlp {
    /// K MLPs `inputs → hidden[0] → … → outputs`.
    pub fn new(
        k: usize,
        inputs: usize,
        hidden: &[usize],
        outputs: usize,
        act: Activation,
        vb: VarBuilder,
    ) -> Result<Self> {
        let mut layers = Vec::new();
        let mut width = inputs;
        for (i, &h) in hidden.iter().chain(std::iter::once(&outputs)).enumerate() {
            layers.push(BatchedDense::new(k, width, h, vb.pp(format!("fc{i}")))?);
            width = h;
        }
        Ok(BatchedMlp { layers, act })
    }

    /// Pixel logits (a sigmoid turns them into Bernoulli probabilities or
    /// Gaussian means).
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let (h, weight, bias) = self.forward_hidden(z)?;
        h.matmul(weight)?.broadcast_add(bias)
    }

    /// The last hidden layer `[K, B, hidden]` and the output layer's weights
    /// `[K, hidden, out]` and bias `[K, 1, out]`: [`crate::methods::mixture::loss`] fuses
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
                    self.act
                } else {
                    engine::Activation::Sigmoid
                };
                l.layer(k, act)
            })
            .collect()
    }
}
