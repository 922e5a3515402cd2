//! The description at the start of a body: header and layer descriptors,
//! postcard-encoded. Descriptors name their tensors by [`TensorRef`] into
//! the file's aligned data section; nothing here borrows tensor bytes.

use heapless::Vec;
use serde::{Deserialize, Serialize};

use super::MAX_EXPERTS;

/// How the mixture was trained. Inference is the same for both; tools show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    /// A gating network softly routes each image to K VAE experts, trained
    /// jointly with the mixture-of-experts loss.
    MixtureOfVaes,
    /// k VAEs trained competitively on reassigned points (kVAE); the gate is
    /// distilled from the final assignment.
    KVae,
}

/// What a decoder's output means.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Likelihood {
    /// Each output is the probability that a pixel is on.
    Bernoulli,
    /// Each output is the mean of a Gaussian with this fixed standard deviation.
    Gaussian {
        /// Standard deviation of every pixel.
        std: f32,
    },
}

/// Element-wise function applied after a dense layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// `x`
    Identity,
    /// `max(x, 0)`
    Relu,
    /// `1 / (1 + exp(-x))`
    Sigmoid,
    /// `tanh(x)`
    Tanh,
}

impl Activation {
    /// Whether an integer layer with this activation emits unsigned codes
    /// (`0..=255`) rather than signed ones (`-128..=127`): ReLU and sigmoid
    /// outputs are never negative.
    pub const fn unsigned_codes(self) -> bool {
        matches!(self, Activation::Relu | Activation::Sigmoid)
    }

    /// Whether an integer layer with this activation maps its requantized
    /// value through a lookup table (see [`Requant::table`]).
    pub const fn uses_table(self) -> bool {
        matches!(self, Activation::Sigmoid | Activation::Tanh)
    }
}

/// Image geometry; pixels are stored row-major, one byte each, scaled by 1/255.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    /// Pixels per row.
    pub width: u16,
    /// Rows.
    pub height: u16,
}

impl ImageShape {
    /// `width * height`.
    ///
    /// ```
    /// assert_eq!(engine::ImageShape { width: 28, height: 28 }.pixels(), 784);
    /// ```
    pub const fn pixels(&self) -> usize {
        self.width as usize * self.height as usize
    }
}

/// Everything about the model except its networks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header<'a> {
    /// Training method.
    pub method: Method,
    /// Input and output image geometry.
    pub image: ImageShape,
    /// Number of experts K.
    pub experts: u16,
    /// Latent size of every decoder.
    pub latent: u16,
    /// What decoder outputs mean.
    pub likelihood: Likelihood,
    /// Prior weight of each expert (share of the training data it took).
    pub mixture_weights: Vec<f32, MAX_EXPERTS>,
    /// Optional digit label per cluster, found after training by matching
    /// clusters to labelled data; never used in training.
    pub label_map: Option<Vec<u8, MAX_EXPERTS>>,
    /// Free text: tool, version, options and seed that produced the file.
    #[serde(borrow)]
    pub provenance: &'a str,
}

/// Where a tensor lies: `len` bytes from `offset`, both counted from the
/// start of the file's data section (which starts 16-byte aligned in the
/// file).
///
/// ```
/// let t = engine::TensorRef { offset: 16, len: 8 };
/// assert_eq!(t.end(), Some(24));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorRef {
    /// Byte offset in the data section.
    pub offset: u32,
    /// Length in bytes.
    pub len: u32,
}

impl TensorRef {
    /// `offset + len`, or `None` if that overflows.
    pub const fn end(&self) -> Option<u32> {
        self.offset.checked_add(self.len)
    }
}

/// How an integer layer's `i8` weight matrix is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// `[outputs][inputs]`: one row per output, a dot product each.
    RowMajor,
    /// `[inputs][outputs]`: one column per input, so that a zero input
    /// (a blank pixel) skips its whole column.
    ColumnMajor,
}

/// Turns an integer layer's accumulators into the codes of its outputs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Requant {
    /// `outputs` little-endian `i32` fixed-point multipliers `m[o]`.
    pub multipliers: TensorRef,
    /// Right shift after multiplying, `1..=62`:
    /// `v = (acc · m[o] + 2^(shift-1)) >> shift` in 64-bit arithmetic.
    pub shift: u8,
    /// Real value of one output code (`x = code · output_scale`).
    pub output_scale: f32,
    /// For sigmoid and tanh: 512 output codes, entry `v + 256` for
    /// `v` clamped to `-256..=255`. Absent for identity and ReLU, which clamp.
    pub table: Option<TensorRef>,
}

/// The tensors and scales of a layer with 8-bit integer weights.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Int8Weights {
    /// Order of the weight matrix.
    pub layout: Layout,
    /// `outputs × inputs` `i8` weights.
    pub weights: TensorRef,
    /// `outputs` little-endian `f32`: the real value of weight code 1 in
    /// each output row (per-output-channel quantization).
    pub scales: TensorRef,
    /// `outputs` little-endian `i32` biases in accumulator units
    /// (`bias / (scale[o] · input_scale)`), `|b| ≤ 2^23`.
    pub bias: TensorRef,
    /// Real value of one input code.
    pub input_scale: f32,
    /// `Some`: outputs are integer codes (required on every layer but a
    /// network's last). `None`: outputs are `f32`,
    /// `activation(acc as f32 · scale[o] · input_scale)`.
    pub requant: Option<Requant>,
}

/// A layer's tensors, by element type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Weights {
    /// IEEE binary16 weights and bias, computed in `f32`.
    F16 {
        /// `outputs × inputs` little-endian f16, row-major.
        weights: TensorRef,
        /// `outputs` little-endian f16.
        bias: TensorRef,
    },
    /// 8-bit integer weights, computed in integers.
    Int8(Int8Weights),
}

/// One dense layer: `out = activation(W · in + b)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LayerDesc {
    /// Input width.
    pub inputs: u32,
    /// Output width.
    pub outputs: u32,
    /// Function applied to each output.
    pub activation: Activation,
    /// The tensors.
    pub weights: Weights,
}

/// A model's element type: every layer of a file has the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    /// f16 weights, f32 arithmetic.
    F16,
    /// int8 weights, integer arithmetic.
    Int8,
}

impl ElementType {
    /// `"f16"` or `"int8"`.
    ///
    /// ```
    /// assert_eq!(engine::ElementType::Int8.name(), "int8");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            ElementType::F16 => "f16",
            ElementType::Int8 => "int8",
        }
    }
}

impl Weights {
    /// The element type of these tensors.
    pub const fn element_type(&self) -> ElementType {
        match self {
            Weights::F16 { .. } => ElementType::F16,
            Weights::Int8(_) => ElementType::Int8,
        }
    }
}

/// One cluster of a two-level model (format version 3), as the writer
/// describes it: `S` style weights, the style gate's layers (none when
/// `S = 1`) and `S` decoders.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ClusterDesc<'r> {
    /// Prior weight of each style within the cluster.
    pub style_weights: &'r [f32],
    /// The style gate: pixels to `S` logits; empty when `S = 1`.
    pub gate: &'r [LayerDesc],
    /// One decoder per style, style 0 first.
    pub decoders: &'r [&'r [LayerDesc]],
}

/// An extension section at the end of a version-3 description: a tag and
/// the section's bytes. A reader skips a section whose tag it does not
/// know; tags are strictly increasing in a file. One tag is defined:
/// [`NOVELTY_TAG`](super::NOVELTY_TAG), the novelty section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension<'a> {
    /// What the section holds.
    pub tag: u16,
    /// The section, in the encoding its tag defines.
    #[serde(borrow)]
    pub bytes: &'a [u8],
}
