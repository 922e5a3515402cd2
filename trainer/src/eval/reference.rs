//! A candle f32 forward pass of an exported model (its dequantized f16
//! weights), to cross-check the engine: same inputs, same layers, different
//! arithmetic.

use candle_core::{Device, Module, Tensor, D};
use candle_nn::Linear;
use engine::writer::{DenseF32, ModelSpec};
use engine::Activation;

/// The exported model as candle layers.
pub struct ReferenceModel {
    device: Device,
    gate: Vec<(Linear, Activation)>,
    decoders: Vec<Vec<(Linear, Activation)>>,
    latent: usize,
    pixels: usize,
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
        Ok(ReferenceModel {
            device: device.clone(),
            gate: layers(&spec.gate, device)?,
            decoders: spec
                .decoders
                .iter()
                .map(|d| layers(d, device))
                .collect::<anyhow::Result<_>>()?,
            latent: spec.latent,
            pixels: spec.image.pixels(),
        })
    }

    /// Number of experts.
    pub fn experts(&self) -> usize {
        self.decoders.len()
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

    /// Expert `expert`'s decoder output for latent `z`.
    pub fn decode(&self, expert: usize, z: &[f32]) -> anyhow::Result<Vec<f32>> {
        let net = self.decoders.get(expert).ok_or_else(|| {
            anyhow::anyhow!("no expert {expert} (model has {})", self.decoders.len())
        })?;
        if z.len() != self.latent {
            anyhow::bail!("latent of length {}, model needs {}", z.len(), self.latent);
        }
        let z = Tensor::from_slice(z, (1, self.latent), &self.device)?;
        Ok(forward(net, &z)?.flatten_all()?.to_vec1()?)
    }
}
