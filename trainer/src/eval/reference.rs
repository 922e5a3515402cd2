//! A candle f32 forward pass of an exported model (its dequantized f16
//! weights), to cross-check the engine: same inputs, same layers, different
//! arithmetic.

use candle_core::{Device, Module, Tensor, D};
use candle_nn::Linear;
use engine::writer::{DenseF32, ModelSpec, TwoLevelSpec};
use engine::Activation;

/// The exported model as candle layers: a flat model's gate and decoders,
/// or a two-level model's with its style gates.
pub struct ReferenceModel {
    device: Device,
    gate: Vec<(Linear, Activation)>,
    /// Each cluster's style gate (empty for a cluster of one style).
    style_gates: Vec<Vec<(Linear, Activation)>>,
    /// Each cluster's decoders, style 0 first.
    decoders: Vec<Vec<Vec<(Linear, Activation)>>>,
    latent: usize,
    pixels: usize,
}

/// What the gate computes for a set of images, one row per image.
#[derive(Debug, Clone, Default)]
pub struct GateOutputs {
    /// The last hidden layer (the gate's last layer's input).
    pub hidden: Vec<Vec<f32>>,
    /// The softmax over clusters.
    pub probabilities: Vec<Vec<f32>>,
}

impl GateOutputs {
    /// Each image's cluster: the first argmax, as the engine decides.
    pub fn argmax(&self) -> Vec<usize> {
        self.probabilities
            .iter()
            .map(|p| engine::kernels::argmax(p))
            .collect()
    }
}

fn layers(spec: &[DenseF32], device: &Device) -> anyhow::Result<Vec<(Linear, Activation)>> {
    spec.iter()
        .map(|l| {
            let w = Tensor::from_slice(&l.weights, (l.outputs, l.inputs), device)?;
            let b = Tensor::from_slice(&l.bias, l.outputs, device)?;
            Ok((Linear::new(w, Some(b)), l.activation))
        })
        .collect()
}

fn forward(net: &[(Linear, Activation)], x: &Tensor) -> candle_core::Result<Tensor> {
    let mut h = x.clone();
    for (l, a) in net {
        h = l.forward(&h)?;
        h = match a {
            Activation::Identity => h,
            Activation::Relu => h.relu()?,
            Activation::Sigmoid => candle_nn::ops::sigmoid(&h)?,
            Activation::Tanh => h.tanh()?,
        };
    }
    Ok(h)
}

impl ReferenceModel {
    /// Builds the layers of `spec` on `device`.
    pub fn from_spec(spec: &ModelSpec, device: &Device) -> anyhow::Result<Self> {
        Self::from_two_level(&TwoLevelSpec::from(spec.clone()), device)
    }

    /// Builds the layers of a two-level `spec` (a flat one: clusters of one
    /// style) on `device`.
    pub fn from_two_level(spec: &TwoLevelSpec, device: &Device) -> anyhow::Result<Self> {
        Ok(ReferenceModel {
            device: device.clone(),
            gate: layers(&spec.model.gate, device)?,
            style_gates: spec
                .clusters
                .iter()
                .map(|c| layers(&c.gate, device))
                .collect::<anyhow::Result<_>>()?,
            decoders: spec
                .clusters
                .iter()
                .map(|c| {
                    c.decoders
                        .iter()
                        .map(|d| layers(d, device))
                        .collect::<anyhow::Result<_>>()
                })
                .collect::<anyhow::Result<_>>()?,
            latent: spec.model.latent,
            pixels: spec.model.image.pixels(),
        })
    }

    /// Number of experts (clusters).
    pub fn experts(&self) -> usize {
        self.decoders.len()
    }

    /// Styles of cluster `c` (0 for no such cluster).
    pub fn styles(&self, c: usize) -> usize {
        self.decoders.get(c).map_or(0, Vec::len)
    }

    /// The (cluster, style) of each of `n` images of bytes, as the engine
    /// decides them (engine/FORMAT.md): the gate's first argmax, then that
    /// cluster's style gate's first argmax (style 0 for a cluster of one
    /// style).
    pub fn classify(&self, images: &[u8], n: usize) -> anyhow::Result<Vec<(usize, usize)>> {
        let clusters: Vec<usize> = self
            .gate_probabilities(images, n)?
            .iter()
            .map(|p| engine::kernels::argmax(p))
            .collect();
        if self.style_gates.iter().all(Vec::is_empty) {
            return Ok(clusters.into_iter().map(|c| (c, 0)).collect());
        }
        let x: Vec<f32> = images.iter().map(|&p| p as f32 / 255.0).collect();
        let x = Tensor::from_slice(&x, (n, self.pixels), &self.device)?;
        let styles: Vec<Option<Vec<Vec<f32>>>> = self
            .style_gates
            .iter()
            .map(|g| {
                if g.is_empty() {
                    return Ok(None);
                }
                Ok(Some(forward(g, &x)?.to_vec2::<f32>()?))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(clusters
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let s = match styles.get(c) {
                    Some(Some(logits)) => engine::kernels::argmax(&logits[i]),
                    _ => 0,
                };
                (c, s)
            })
            .collect())
    }

    /// The gate's softmax for `n` images of bytes (pixel / 255).
    pub fn gate_probabilities(&self, images: &[u8], n: usize) -> anyhow::Result<Vec<Vec<f32>>> {
        if images.len() != n * self.pixels {
            anyhow::bail!(
                "{} bytes for {n} images of {} pixels",
                images.len(),
                self.pixels
            );
        }
        let x: Vec<f32> = images.iter().map(|&p| p as f32 / 255.0).collect();
        self.gate_probabilities_f32(&x, n)
    }

    /// The gate's softmax for `n` images of intensities in [0, 1].
    pub fn gate_probabilities_f32(
        &self,
        images: &[f32],
        n: usize,
    ) -> anyhow::Result<Vec<Vec<f32>>> {
        if images.len() != n * self.pixels {
            anyhow::bail!(
                "{} values for {n} images of {} pixels",
                images.len(),
                self.pixels
            );
        }
        let x = Tensor::from_slice(images, (n, self.pixels), &self.device)?;
        let p = candle_nn::ops::softmax(&forward(&self.gate, &x)?, D::Minus1)?;
        Ok(p.to_vec2()?)
    }

    /// The gate's last hidden layer (its last layer's input) and softmax
    /// for `n` images of bytes (pixel / 255), in batches of 2,000 images.
    /// A gate of one layer gives the pixels as its "hidden layer".
    pub fn gate_hidden(&self, images: &[u8], n: usize) -> anyhow::Result<GateOutputs> {
        if images.len() != n * self.pixels {
            anyhow::bail!(
                "{} bytes for {n} images of {} pixels",
                images.len(),
                self.pixels
            );
        }
        let (mut hidden, mut probabilities) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let last = self.gate.len().saturating_sub(1);
        for chunk in images.chunks(2000 * self.pixels.max(1)) {
            let rows = chunk.len() / self.pixels.max(1);
            let x: Vec<f32> = chunk.iter().map(|&p| p as f32 / 255.0).collect();
            let x = Tensor::from_slice(&x, (rows, self.pixels), &self.device)?;
            let h = forward(&self.gate[..last], &x)?;
            let logits = forward(&self.gate[last..], &h)?;
            hidden.extend(h.to_vec2::<f32>()?);
            probabilities.extend(candle_nn::ops::softmax(&logits, D::Minus1)?.to_vec2::<f32>()?);
        }
        Ok(GateOutputs {
            hidden,
            probabilities,
        })
    }

    /// Expert `expert`'s decoder output for latent `z` (style 0).
    pub fn decode(&self, expert: usize, z: &[f32]) -> anyhow::Result<Vec<f32>> {
        self.decode_style(expert, 0, z)
    }

    /// Cluster `cluster`'s style `style` decoder output for latent `z`.
    pub fn decode_style(
        &self,
        cluster: usize,
        style: usize,
        z: &[f32],
    ) -> anyhow::Result<Vec<f32>> {
        let net = self
            .decoders
            .get(cluster)
            .and_then(|c| c.get(style))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no cluster {cluster} style {style} (model has {} clusters, cluster {cluster} {} styles)",
                    self.decoders.len(),
                    self.styles(cluster)
                )
            })?;
        if z.len() != self.latent {
            anyhow::bail!("latent of length {}, model needs {}", z.len(), self.latent);
        }
        let z = Tensor::from_slice(z, (1, self.latent), &self.device)?;
        Ok(forward(net, &z)?.flatten_all()?.to_vec1()?)
    }
}
