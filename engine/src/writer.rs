//! Writing model files from f32 tensors (behind the `std` feature).
//!
//! The trainer fills a [`ModelSpec`] with its f32 weights; [`ModelSpec::to_bytes`]
//! quantizes them to f16 (round to nearest, ties to even), builds the
//! borrowed [`ModelRepr`] and emits it, then parses the result back so a
//! file that would not load is never written.

use std::string::String;
use std::vec::Vec;

use crate::format::{Activation, Header, ImageShape, Layer, Likelihood, Method, Mlp, ModelRepr};
use crate::Error;

/// One dense layer in f32, row-major `[outputs][inputs]` like candle's `Linear`.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseF32 {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// Activation after the layer.
    pub activation: Activation,
    /// `outputs * inputs` weights.
    pub weights: Vec<f32>,
    /// `outputs` biases.
    pub bias: Vec<f32>,
}

impl DenseF32 {
    /// Dequantizes a layer of a parsed model (exactly, f16 → f32).
    pub fn from_layer(layer: &Layer<'_>) -> Self {
        let decode = |b: &[u8]| {
            b.chunks_exact(2)
                .map(|p| crate::kernels::f16_to_f32(u16::from_le_bytes([p[0], p[1]])))
                .collect()
        };
        DenseF32 {
            inputs: layer.inputs as usize,
            outputs: layer.outputs as usize,
            activation: layer.activation,
            weights: decode(layer.weights),
            bias: decode(layer.bias),
        }
    }

    /// Dequantizes every layer of a network.
    pub fn from_mlp(mlp: &Mlp<'_>) -> Vec<Self> {
        mlp.layers.iter().map(Self::from_layer).collect()
    }
}

/// Everything needed to write a model file, with f32 tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// Training method.
    pub method: Method,
    /// Image geometry.
    pub image: ImageShape,
    /// Latent size of the decoders.
    pub latent: usize,
    /// Meaning of decoder outputs.
    pub likelihood: Likelihood,
    /// Prior weight of each expert; its length is the number of experts.
    pub mixture_weights: Vec<f32>,
    /// Optional digit label for each cluster.
    pub label_map: Option<Vec<u8>>,
    /// Free text recording how the model was made.
    pub provenance: String,
    /// Gate layers, input first; the last has K outputs (logits).
    pub gate: Vec<DenseF32>,
    /// One decoder per expert, input first.
    pub decoders: Vec<Vec<DenseF32>>,
}

fn quantize(values: &[f32], what: &'static str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(values.len() * 2);
    for &v in values {
        let h = half::f16::from_f32(v);
        if !h.is_finite() {
            return Err(Error::Unrepresentable(what));
        }
        out.extend_from_slice(&h.to_le_bytes());
    }
    Ok(out)
}

/// A layer's quantized weight and bias bytes.
type Quantized = (Vec<u8>, Vec<u8>);

fn to_u32(n: usize) -> Result<u32, Error> {
    u32::try_from(n).map_err(|_| Error::Unrepresentable("layer wider than 2^32"))
}

fn mlp<'q>(layers: &[DenseF32], q: &'q [Quantized]) -> Result<Mlp<'q>, Error> {
    let mut out = Mlp {
        layers: heapless::Vec::new(),
    };
    for (l, (w, b)) in layers.iter().zip(q) {
        let layer = Layer {
            inputs: to_u32(l.inputs)?,
            outputs: to_u32(l.outputs)?,
            activation: l.activation,
            weights: w,
            bias: b,
        };
        out.layers.push(layer).map_err(|_| Error::Capacity {
            what: "layers",
            needed: layers.len(),
            max: crate::MAX_LAYERS,
        })?;
    }
    Ok(out)
}

fn small<T: Copy, const N: usize>(
    v: &[T],
    what: &'static str,
) -> Result<heapless::Vec<T, N>, Error> {
    heapless::Vec::from_slice(v).map_err(|_| Error::Capacity {
        what,
        needed: v.len(),
        max: N,
    })
}

impl ModelSpec {
    /// Parses a model file back into f32 tensors (exact dequantization).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let repr = ModelRepr::parse(bytes)?;
        let h = &repr.header;
        Ok(ModelSpec {
            method: h.method,
            image: h.image,
            latent: h.latent as usize,
            likelihood: h.likelihood,
            mixture_weights: h.mixture_weights.to_vec(),
            label_map: h.label_map.as_ref().map(|m| m.to_vec()),
            provenance: h.provenance.into(),
            gate: DenseF32::from_mlp(&repr.gate),
            decoders: repr.decoders.iter().map(DenseF32::from_mlp).collect(),
        })
    }

    /// Quantizes to f16 and writes a complete, validated model file.
    ///
    /// ```
    /// # let bytes = engine::testing::tiny_model_bytes();
    /// let spec = engine::writer::ModelSpec::from_bytes(&bytes)?;
    /// assert_eq!(spec.to_bytes()?, &bytes[..]);
    /// # Ok::<(), engine::Error>(())
    /// ```
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let quantized = |layers: &[DenseF32]| -> Result<Vec<Quantized>, Error> {
            layers
                .iter()
                .map(|l| {
                    Ok((
                        quantize(&l.weights, "weight beyond f16 range")?,
                        quantize(&l.bias, "bias beyond f16 range")?,
                    ))
                })
                .collect()
        };
        let gate_q = quantized(&self.gate)?;
        let dec_q: Vec<_> = self
            .decoders
            .iter()
            .map(|d| quantized(d))
            .collect::<Result<_, _>>()?;
        let mut decoders = heapless::Vec::new();
        for (d, q) in self.decoders.iter().zip(&dec_q) {
            decoders.push(mlp(d, q)?).map_err(|_| Error::Capacity {
                what: "experts",
                needed: self.decoders.len(),
                max: crate::MAX_EXPERTS,
            })?;
        }
        let experts = self.mixture_weights.len();
        let repr = ModelRepr {
            header: Header {
                method: self.method,
                image: self.image,
                experts: u16::try_from(experts)
                    .map_err(|_| Error::Unrepresentable("too many experts"))?,
                latent: u16::try_from(self.latent)
                    .map_err(|_| Error::Unrepresentable("latent too large"))?,
                likelihood: self.likelihood,
                mixture_weights: small(&self.mixture_weights, "experts")?,
                label_map: self
                    .label_map
                    .as_deref()
                    .map(|m| small(m, "label map"))
                    .transpose()?,
                provenance: &self.provenance,
            },
            gate: mlp(&self.gate, &gate_q)?,
            decoders,
        };
        let mut out = std::vec![0u8; repr.buffer_len()?];
        let n = repr.emit(&mut out)?;
        out.truncate(n);
        ModelRepr::parse(&out)?;
        Ok(out)
    }
}
