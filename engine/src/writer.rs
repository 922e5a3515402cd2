//! Writing model files from f32 tensors (behind the `std` feature).
//!
//! The trainer fills a [`ModelSpec`] with its f32 weights and writes it
//! with [`ModelSpec::to_bytes`] (f16 weights, the design's default) or
//! [`ModelSpec::to_int8_bytes`] (8-bit integer weights, calibrated on
//! images by [`ModelSpec::calibrate`]). Either builds the descriptors and
//! the aligned data section, emits the file with [`format::emit`] (the
//! format's one emitting path), then parses it back, so a file that would
//! not load is never written.

use std::string::String;
use std::vec::Vec;

use crate::format::{
    self, Activation, Header, ImageShape, Int8Weights, LayerDesc, LayerWeights, Layout, Likelihood,
    Method, ModelRepr, Network, Requant, TensorRef, Weights, DATA_ALIGN, MAX_INT8_BIAS, TABLE_LEN,
};
use crate::kernels::f16_at;
use crate::rng::SplitMix64;
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
    /// The layer's weights and biases as f32: exact for f16 layers,
    /// dequantized (`code · scale`) for integer ones.
    pub fn from_layer(layer: &crate::Layer<'_>) -> Self {
        let (inputs, outputs) = (layer.inputs, layer.outputs);
        let (weights, bias) = match layer.weights {
            LayerWeights::F16 { weights, bias } => (
                (0..inputs * outputs).map(|i| f16_at(weights, i)).collect(),
                (0..outputs).map(|o| f16_at(bias, o)).collect(),
            ),
            LayerWeights::Int8(_) => (
                (0..outputs)
                    .flat_map(|o| (0..inputs).map(move |i| (o, i)))
                    .map(|(o, i)| layer.weight(o, i))
                    .collect(),
                (0..outputs).map(|o| layer.bias(o)).collect(),
            ),
        };
        DenseF32 {
            inputs,
            outputs,
            activation: layer.activation,
            weights,
            bias,
        }
    }

    /// Every layer of a network, as [`from_layer`](Self::from_layer) gives it.
    pub fn from_network(net: Network<'_>) -> Vec<Self> {
        net.layers().map(|l| Self::from_layer(&l)).collect()
    }

    /// `activation(W · x + b)` in f32 (calibration and reference use).
    pub fn forward(&self, x: &[f32], out: &mut Vec<f32>) {
        out.clear();
        for o in 0..self.outputs {
            let row = &self.weights[o * self.inputs..(o + 1) * self.inputs];
            let s: f32 = row.iter().zip(x).map(|(w, x)| w * x).sum();
            out.push(crate::kernels::activate(self.activation, s + self.bias[o]));
        }
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

/// What [`ModelSpec::to_int8_bytes`] needs to know about activations: for
/// every layer, the largest output magnitude seen on calibration inputs,
/// and the largest latent magnitude the decoders were fed.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// Largest `|output|` of each gate layer.
    pub gate: Vec<f32>,
    /// Largest `|output|` of each layer of each decoder.
    pub decoders: Vec<Vec<f32>>,
    /// Largest `|z|` among the latent draws.
    pub latent: f32,
}

/// The tensors of a file under construction, each at a multiple of
/// [`DATA_ALIGN`].
#[derive(Default)]
struct Data(Vec<u8>);

impl Data {
    fn push(&mut self, bytes: &[u8]) -> Result<TensorRef, Error> {
        while !self.0.len().is_multiple_of(DATA_ALIGN) {
            self.0.push(0);
        }
        let offset = u32::try_from(self.0.len())
            .map_err(|_| Error::Unrepresentable("tensors over 4 GiB"))?;
        self.0.extend_from_slice(bytes);
        Ok(TensorRef {
            offset,
            len: bytes.len() as u32,
        })
    }
}

fn f16_bytes(values: &[f32], what: &'static str) -> Result<Vec<u8>, Error> {
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

fn le_bytes<T: Copy, const W: usize>(values: &[T], f: impl Fn(T) -> [u8; W]) -> Vec<u8> {
    values.iter().flat_map(|&v| f(v)).collect()
}

fn to_u32(n: usize) -> Result<u32, Error> {
    u32::try_from(n).map_err(|_| Error::Unrepresentable("layer wider than 2^32"))
}

/// Step of the sigmoid and tanh tables' input grid: 512 entries cover
/// pre-activations in `[-8, 8)`, where sigmoid is within 3.4e-4 of 0 or 1.
pub const TABLE_STEP: f32 = 1.0 / 32.0;

/// The sigmoid or tanh table of a layer: entry `j` is the output code of
/// the pre-activation `(j − 256) · TABLE_STEP`.
fn table(activation: Activation) -> Vec<u8> {
    (0..TABLE_LEN)
        .map(|j| {
            let x = (j as f32 - 256.0) * TABLE_STEP;
            match activation {
                Activation::Tanh => libm::roundf(127.0 * libm::tanhf(x)) as i8 as u8,
                _ => libm::roundf(255.0 * crate::kernels::sigmoid(x)) as u8,
            }
        })
        .collect()
}

/// One f32 layer as an integer layer reading codes of `input_scale`.
/// `out_max` is the calibrated largest `|output|` (unused for tables and
/// for a final `f32` layer, `last_f32`).
fn int8_layer(
    l: &DenseF32,
    input_scale: f32,
    out_max: f32,
    layout: Layout,
    last_f32: bool,
    data: &mut Data,
) -> Result<(LayerDesc, f32), Error> {
    let (n, m) = (l.inputs, l.outputs);
    let mut scales = Vec::with_capacity(m);
    let mut codes = std::vec![0u8; n * m];
    let mut bias = Vec::with_capacity(m);
    for o in 0..m {
        let row = &l.weights[o * n..(o + 1) * n];
        let max = row.iter().fold(0.0f32, |a, w| a.max(w.abs()));
        // Large enough that the bias fits in 2^23 accumulator units.
        let floor = l.bias[o].abs() / (input_scale * MAX_INT8_BIAS as f32 * 0.99);
        let scale = (max / 127.0).max(floor).max(f32::MIN_POSITIVE);
        for (i, &w) in row.iter().enumerate() {
            let q = libm::roundf(w / scale).clamp(-127.0, 127.0) as i8 as u8;
            match layout {
                Layout::RowMajor => codes[o * n + i] = q,
                Layout::ColumnMajor => codes[i * m + o] = q,
            }
        }
        scales.push(scale);
        let b = libm::roundf(l.bias[o] / (scale * input_scale));
        bias.push(b.clamp(-(MAX_INT8_BIAS as f32), MAX_INT8_BIAS as f32) as i32);
    }
    if !scales.iter().all(|s| s.is_finite()) || !input_scale.is_finite() {
        return Err(Error::Unrepresentable("weights beyond int8 scale range"));
    }
    let (requant, output_scale) = if last_f32 {
        (None, 1.0)
    } else {
        let (output_scale, grid, table) = match l.activation {
            Activation::Relu => {
                let s = (out_max / 255.0).max(f32::MIN_POSITIVE);
                (s, s, None)
            }
            Activation::Identity => {
                let s = (out_max / 127.0).max(f32::MIN_POSITIVE);
                (s, s, None)
            }
            Activation::Sigmoid => (1.0 / 255.0, TABLE_STEP, Some(table(l.activation))),
            Activation::Tanh => (1.0 / 127.0, TABLE_STEP, Some(table(l.activation))),
        };
        // A layer whose outputs were zero (or nearly) on every calibration
        // input, a dead ReLU say, gets so fine a grid that one accumulator
        // unit is over 2^30 output codes, which no `i32` multiplier holds:
        // coarsen it to 2^29 codes per unit of the row of largest scale.
        // Only such layers change; a layer the writer wrote before keeps its
        // bytes.
        let largest = scales.iter().fold(0.0f64, |a, &s| a.max(s as f64)) * input_scale as f64;
        let (output_scale, grid) = if table.is_none() && largest / grid as f64 > (1u64 << 30) as f64
        {
            let s = (largest / (1u64 << 29) as f64) as f32;
            (s, s)
        } else {
            (output_scale, grid)
        };
        // Real multiplier per row: one accumulator unit in grid units.
        let real: Vec<f64> = scales
            .iter()
            .map(|&s| s as f64 * input_scale as f64 / grid as f64)
            .collect();
        let max = real.iter().fold(0.0f64, |a, &r| a.max(r));
        // The largest shift that keeps every multiplier below 2^31.
        let shift = if max > 0.0 {
            (((i32::MAX as f64) / max).log2().floor() as i64).clamp(1, 62)
        } else {
            62
        };
        let multipliers: Vec<i32> = real
            .iter()
            .map(|&r| (r * (1u64 << shift) as f64).round().min(i32::MAX as f64) as i32)
            .collect();
        if max * (1u64 << shift) as f64 > i32::MAX as f64 + 1.0 {
            return Err(Error::Unrepresentable(
                "requantization multiplier too large",
            ));
        }
        let requant = Requant {
            multipliers: data.push(&le_bytes(&multipliers, i32::to_le_bytes))?,
            shift: shift as u8,
            output_scale,
            table: table.map(|t| data.push(&t)).transpose()?,
        };
        (Some(requant), output_scale)
    };
    let weights = Int8Weights {
        layout,
        weights: data.push(&codes)?,
        scales: data.push(&le_bytes(&scales, f32::to_le_bytes))?,
        bias: data.push(&le_bytes(&bias, i32::to_le_bytes))?,
        input_scale,
        requant,
    };
    Ok((
        LayerDesc {
            inputs: to_u32(n)?,
            outputs: to_u32(m)?,
            activation: l.activation,
            weights: Weights::Int8(weights),
        },
        output_scale,
    ))
}

fn f16_layer(l: &DenseF32, data: &mut Data) -> Result<LayerDesc, Error> {
    Ok(LayerDesc {
        inputs: to_u32(l.inputs)?,
        outputs: to_u32(l.outputs)?,
        activation: l.activation,
        weights: Weights::F16 {
            weights: data.push(&f16_bytes(&l.weights, "weight beyond f16 range")?)?,
            bias: data.push(&f16_bytes(&l.bias, "bias beyond f16 range")?)?,
        },
    })
}

/// The layout [`ModelSpec::to_int8_bytes`] gives layer `index` of the gate
/// (`gate`) or of a decoder: the gate's first layer by columns, so that a
/// blank pixel skips its column; every other layer by rows.
fn int8_layout(gate: bool, index: usize) -> Layout {
    if gate && index == 0 {
        Layout::ColumnMajor
    } else {
        Layout::RowMajor
    }
}

/// The real value of one pixel code: what the gates' first layers read.
const IMAGE_SCALE: f32 = 1.0 / 255.0;

/// The decoders' input scale for latent values of magnitude up to `max`.
fn latent_scale(max: f32) -> f32 {
    (max / 127.0).max(f32::MIN_POSITIVE)
}

/// A network's layers as f16 descriptors, tensors pushed to `data`.
fn f16_network(layers: &[DenseF32], data: &mut Data) -> Result<Vec<LayerDesc>, Error> {
    layers.iter().map(|l| f16_layer(l, data)).collect()
}

/// A network's layers as integer descriptors reading codes of
/// `input_scale`, with the calibrated largest outputs `maxes`; a gate
/// (`gate`) reads pixels by columns and gives `f32` logits.
fn int8_network(
    layers: &[DenseF32],
    maxes: &[f32],
    input_scale: f32,
    gate: bool,
    data: &mut Data,
) -> Result<Vec<LayerDesc>, Error> {
    let mut scale = input_scale;
    let mut out = Vec::with_capacity(layers.len());
    for (i, (l, &max)) in layers.iter().zip(maxes).enumerate() {
        let last_gate = gate && i + 1 == layers.len();
        let layout = int8_layout(gate, i);
        let (desc, next) = int8_layer(l, scale, max, layout, last_gate, data)?;
        out.push(desc);
        scale = next;
    }
    Ok(out)
}

/// Largest `|output|` of each layer of a network reading `images`
/// (`pixels` bytes each).
fn image_maxes(layers: &[DenseF32], images: &[u8], pixels: usize) -> Vec<f32> {
    let mut maxes = std::vec![0.0f32; layers.len()];
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for img in images.chunks_exact(pixels.max(1)) {
        x.clear();
        x.extend(img.iter().map(|&p| p as f32 / 255.0));
        for (l, max) in layers.iter().zip(&mut maxes) {
            l.forward(&x, &mut y);
            *max = y.iter().fold(*max, |a, v| a.max(v.abs()));
            std::mem::swap(&mut x, &mut y);
        }
    }
    maxes
}

/// Largest `|output|` of each layer of each decoder on [`LATENT_DRAWS`]
/// latent vectors of `latent` values drawn from `seed` as `generate` draws
/// them, and the largest `|z|`.
fn latent_maxes(decoders: &[&[DenseF32]], latent: usize, seed: u64) -> (Vec<Vec<f32>>, f32) {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let mut largest = 0.0f32;
    let mut rng = SplitMix64::new(seed);
    let mut maxes: Vec<Vec<f32>> = decoders.iter().map(|d| std::vec![0.0; d.len()]).collect();
    let mut z = std::vec![0.0f32; latent];
    for _ in 0..LATENT_DRAWS {
        rng.fill_normal(&mut z);
        largest = z.iter().fold(largest, |a, v| a.max(v.abs()));
        for (d, maxes) in decoders.iter().zip(&mut maxes) {
            x.clear();
            x.extend_from_slice(&z);
            for (l, max) in d.iter().zip(maxes.iter_mut()) {
                l.forward(&x, &mut y);
                *max = y.iter().fold(*max, |a, v| a.max(v.abs()));
                std::mem::swap(&mut x, &mut y);
            }
        }
    }
    (maxes, largest)
}

mod legacy;
mod novelty;
mod shape;
mod two_level;

pub use novelty::NoveltySpec;
pub use shape::{ModelShape, ShapeError, Width, MAX_TENSOR_BYTES};
pub use two_level::{ClusterSpec, TwoLevelCalibration, TwoLevelSpec};

/// Latent draws used to calibrate the decoders (what `generate` feeds them).
const LATENT_DRAWS: usize = 4096;

impl ModelSpec {
    /// The model of a file as f32 tensors: exact for f16 files,
    /// dequantized for int8 ones.
    ///
    /// A version-3 file (two-level, or with a novelty section) is an error
    /// here: read it with [`TwoLevelSpec::from_bytes`], which keeps its
    /// styles and its novelty section.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let repr = ModelRepr::parse(bytes)?;
        if repr.version() == format::TWO_LEVEL_VERSION {
            return Err(Error::Unrepresentable(
                "a version-3 model: read it with TwoLevelSpec, which keeps its styles and novelty section",
            ));
        }
        Ok(Self::from_parts(
            repr.header(),
            DenseF32::from_network(repr.gate()),
            repr.decoders().map(DenseF32::from_network).collect(),
        ))
    }

    /// A spec from a parsed header and the networks' f32 layers.
    fn from_parts(h: &Header<'_>, gate: Vec<DenseF32>, decoders: Vec<Vec<DenseF32>>) -> Self {
        ModelSpec {
            method: h.method,
            image: h.image,
            latent: h.latent as usize,
            likelihood: h.likelihood,
            mixture_weights: h.mixture_weights.to_vec(),
            label_map: h.label_map.as_ref().map(|m| m.to_vec()),
            provenance: h.provenance.into(),
            gate,
            decoders,
        }
    }

    /// Reads a file of format version 1 (f16 tensors inside the postcard
    /// body) exactly, so that [`to_bytes`](Self::to_bytes) converts it to the
    /// current version with the same f16 weights (`harness upgrade`).
    pub fn from_v1_bytes(bytes: &[u8]) -> Result<Self, Error> {
        legacy::read(bytes)
    }

    fn header(&self) -> Result<Header<'_>, Error> {
        let small = |v: &[_], what| {
            heapless::Vec::from_slice(v).map_err(|_| Error::Capacity {
                what,
                needed: v.len(),
                max: format::MAX_EXPERTS,
            })
        };
        Ok(Header {
            method: self.method,
            image: self.image,
            experts: u16::try_from(self.mixture_weights.len())
                .map_err(|_| Error::Unrepresentable("too many experts"))?,
            latent: u16::try_from(self.latent)
                .map_err(|_| Error::Unrepresentable("latent too large"))?,
            likelihood: self.likelihood,
            mixture_weights: small(&self.mixture_weights, "experts")?,
            label_map: match &self.label_map {
                Some(m) => Some(heapless::Vec::from_slice(m).map_err(|_| Error::Capacity {
                    what: "label map",
                    needed: m.len(),
                    max: format::MAX_EXPERTS,
                })?),
                None => None,
            },
            provenance: &self.provenance,
        })
    }

    fn check_capacity(&self) -> Result<(), Error> {
        for net in core::iter::once(&self.gate).chain(&self.decoders) {
            if net.len() > format::MAX_LAYERS {
                return Err(Error::Capacity {
                    what: "layers",
                    needed: net.len(),
                    max: format::MAX_LAYERS,
                });
            }
        }
        if self.decoders.len() > format::MAX_EXPERTS {
            return Err(Error::Capacity {
                what: "experts",
                needed: self.decoders.len(),
                max: format::MAX_EXPERTS,
            });
        }
        Ok(())
    }

    /// Emits descriptors and data, then parses the result back.
    fn finish(
        &self,
        gate: Vec<LayerDesc>,
        decoders: Vec<Vec<LayerDesc>>,
        data: Data,
    ) -> Result<Vec<u8>, Error> {
        let header = self.header()?;
        let decoders: Vec<&[LayerDesc]> = decoders.iter().map(Vec::as_slice).collect();
        let mut out = std::vec![0u8; format::emitted_len(&header, &gate, &decoders, data.0.len())?];
        let n = format::emit(&header, &gate, &decoders, &data.0, &mut out)?;
        out.truncate(n);
        ModelRepr::parse(&out)?;
        Ok(out)
    }

    /// Quantizes to f16 (round to nearest, ties to even) and writes a
    /// complete, validated model file.
    ///
    /// ```
    /// # let bytes = engine::testing::tiny_model_bytes();
    /// let spec = engine::writer::ModelSpec::from_bytes(&bytes)?;
    /// assert_eq!(spec.to_bytes()?, &bytes[..]);
    /// # Ok::<(), engine::Error>(())
    /// ```
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        self.check_capacity()?;
        let mut data = Data::default();
        let gate = f16_network(&self.gate, &mut data)?;
        let decoders = self
            .decoders
            .iter()
            .map(|d| f16_network(d, &mut data))
            .collect::<Result<_, _>>()?;
        self.finish(gate, decoders, data)
    }

    /// Runs the f32 networks on calibration inputs and records the largest
    /// output magnitude of every layer: the gate on `images` (`pixels()`
    /// bytes each, no labels), each decoder on [`LATENT_DRAWS`] latent
    /// vectors drawn as `generate` draws them, from `seed`.
    pub fn calibrate(&self, images: &[u8], seed: u64) -> Calibration {
        let gate = image_maxes(&self.gate, images, self.image.pixels());
        let decoders: Vec<&[DenseF32]> = self.decoders.iter().map(Vec::as_slice).collect();
        let (decoders, latent) = latent_maxes(&decoders, self.latent, seed);
        Calibration {
            gate,
            decoders,
            latent,
        }
    }

    /// Quantizes to 8-bit integers and writes a complete, validated model
    /// file: per-output-row weight scales, `u8`/`i8` activation codes with
    /// the calibrated scales, sigmoid and tanh by table, the gate's first
    /// layer column-major (blank pixels skip their column) and its last
    /// layer's logits in `f32`. `FORMAT.md`, *Integer layers*, gives the
    /// arithmetic.
    ///
    /// ```
    /// use engine::{writer::ModelSpec, Model, Workspace};
    /// let spec = ModelSpec::from_bytes(&engine::testing::tiny_model_bytes())?;
    /// let images = vec![128u8; 4 * 784];
    /// let bytes = spec.to_int8_bytes(&spec.calibrate(&images, 1))?;
    /// let model = Model::from_bytes(&bytes)?;
    /// assert_eq!(model.element_type(), engine::ElementType::Int8);
    /// let c = model.classify(&mut Workspace::<784>::new(), &images[..784])?;
    /// assert!(c.cluster < 3);
    /// # Ok::<(), engine::Error>(())
    /// ```
    pub fn to_int8_bytes(&self, calibration: &Calibration) -> Result<Vec<u8>, Error> {
        self.check_capacity()?;
        if calibration.gate.len() != self.gate.len()
            || calibration.decoders.len() != self.decoders.len()
            || calibration
                .decoders
                .iter()
                .zip(&self.decoders)
                .any(|(c, d)| c.len() != d.len())
        {
            return Err(Error::Unrepresentable(
                "calibration does not match the model's layers",
            ));
        }
        let mut data = Data::default();
        let gate = int8_network(&self.gate, &calibration.gate, IMAGE_SCALE, true, &mut data)?;
        let latent_scale = latent_scale(calibration.latent);
        let decoders = self
            .decoders
            .iter()
            .zip(&calibration.decoders)
            .map(|(d, c)| int8_network(d, c, latent_scale, false, &mut data))
            .collect::<Result<_, _>>()?;
        self.finish(gate, decoders, data)
    }
}
