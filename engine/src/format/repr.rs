//! The decoded model description: header, gate and decoders.

use heapless::Vec;
use serde::{Deserialize, Serialize};

use super::wire::{ModelFile, HEADER_LEN};
use super::{MAX_EXPERTS, MAX_LAYERS};
use crate::Error;

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
    pub const fn pixels(&self) -> usize {
        self.width as usize * self.height as usize
    }
}

/// Everything about the model except its tensors.
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

/// One dense layer: `out = activation(W · in + b)`.
///
/// `weights` holds `outputs` rows of `inputs` little-endian f16 values
/// (row-major, the layout of PyTorch's and candle's `Linear`); `bias` holds
/// `outputs` f16 values. Both borrow the file's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer<'a> {
    /// Input width.
    pub inputs: u32,
    /// Output width.
    pub outputs: u32,
    /// Function applied to each output.
    pub activation: Activation,
    /// `outputs × inputs` f16 values, little-endian.
    #[serde(borrow, with = "serde_bytes")]
    pub weights: &'a [u8],
    /// `outputs` f16 values, little-endian.
    #[serde(borrow, with = "serde_bytes")]
    pub bias: &'a [u8],
}

impl<'a> Layer<'a> {
    /// Row `o` of the weight matrix as f16 bytes (`2 * inputs` bytes).
    ///
    /// Only meaningful on a validated layer; returns an empty slice otherwise.
    pub fn row(&self, o: usize) -> &'a [u8] {
        let n = 2 * self.inputs as usize;
        self.weights.get(o * n..(o + 1) * n).unwrap_or(&[])
    }

    /// Weight `(o, i)` as f32.
    pub fn weight(&self, o: usize, i: usize) -> f32 {
        crate::kernels::f16_at(self.row(o), i)
    }

    /// Bias `o` as f32.
    pub fn bias_at(&self, o: usize) -> f32 {
        crate::kernels::f16_at(self.bias, o)
    }

    /// Parameters in this layer.
    pub fn parameters(&self) -> usize {
        self.inputs as usize * self.outputs as usize + self.outputs as usize
    }

    fn validate(&self) -> Result<(), Error> {
        if self.inputs == 0 || self.outputs == 0 {
            return Err(Error::InvalidModel("layer with zero width"));
        }
        let w = (self.inputs as usize)
            .checked_mul(self.outputs as usize)
            .and_then(|n| n.checked_mul(2))
            .ok_or(Error::InvalidModel("layer size overflows"))?;
        if self.weights.len() != w {
            return Err(Error::InvalidModel(
                "weight tensor length does not match its shape",
            ));
        }
        if self.bias.len() != 2 * self.outputs as usize {
            return Err(Error::InvalidModel(
                "bias tensor length does not match its shape",
            ));
        }
        Ok(())
    }
}

/// A stack of dense layers, applied in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mlp<'a> {
    /// The layers, input first.
    #[serde(borrow)]
    pub layers: Vec<Layer<'a>, MAX_LAYERS>,
}

impl Mlp<'_> {
    /// Input width (0 for an empty stack).
    pub fn inputs(&self) -> usize {
        self.layers.first().map_or(0, |l| l.inputs as usize)
    }

    /// Output width (0 for an empty stack).
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, |l| l.outputs as usize)
    }

    /// Widest input or output of any layer.
    pub fn max_width(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.inputs.max(l.outputs) as usize)
            .max()
            .unwrap_or(0)
    }

    /// Parameters in all layers.
    pub fn parameters(&self) -> usize {
        self.layers.iter().map(Layer::parameters).sum()
    }

    /// Multiply-adds in one forward pass.
    pub fn multiply_adds(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.inputs as usize * l.outputs as usize)
            .sum()
    }

    fn validate(&self, inputs: usize, outputs: usize, what: &'static str) -> Result<(), Error> {
        if self.layers.is_empty() {
            return Err(Error::InvalidModel(what));
        }
        let mut width = inputs;
        for layer in &self.layers {
            layer.validate()?;
            if layer.inputs as usize != width {
                return Err(Error::InvalidModel("layer widths do not chain"));
            }
            width = layer.outputs as usize;
        }
        if width != outputs {
            return Err(Error::InvalidModel("network output width is wrong"));
        }
        Ok(())
    }
}

/// The whole model: header, gate and one decoder per expert.
///
/// [`parse`](Self::parse) and [`emit`](Self::emit) are inverses:
///
/// ```
/// use engine::ModelRepr;
/// let bytes = engine::testing::tiny_model_bytes();
/// let repr = ModelRepr::parse(&bytes)?;
/// let mut out = vec![0u8; repr.buffer_len()?];
/// repr.emit(&mut out)?;
/// assert_eq!(&out[..], &bytes[..]);
/// # Ok::<(), engine::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRepr<'a> {
    /// Shapes and metadata.
    #[serde(borrow)]
    pub header: Header<'a>,
    /// Maps an image (`pixels` inputs) to K logits.
    #[serde(borrow)]
    pub gate: Mlp<'a>,
    /// Expert k's decoder maps a latent vector to `pixels` outputs.
    #[serde(borrow)]
    pub decoders: Vec<Mlp<'a>, MAX_EXPERTS>,
}

impl<'a> ModelRepr<'a> {
    /// Validates the frame (including the checksum), decodes the body and
    /// checks that every shape is consistent.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        Self::parse_file(&ModelFile::new_checked(bytes)?)
    }

    /// Decodes and validates the body of an already checked frame.
    pub fn parse_file(file: &ModelFile<&'a [u8]>) -> Result<Self, Error> {
        let (repr, rest): (Self, &[u8]) =
            postcard::take_from_bytes(file.body_slice()).map_err(|_| Error::Malformed)?;
        if !rest.is_empty() {
            return Err(Error::TrailingBytes { extra: rest.len() });
        }
        repr.validate()?;
        Ok(repr)
    }

    /// Checks every invariant the inference code relies on.
    pub fn validate(&self) -> Result<(), Error> {
        let h = &self.header;
        let k = h.experts as usize;
        if k == 0 {
            return Err(Error::InvalidModel("model has no experts"));
        }
        if k > MAX_EXPERTS {
            return Err(Error::Capacity {
                what: "experts",
                needed: k,
                max: MAX_EXPERTS,
            });
        }
        if h.image.pixels() == 0 {
            return Err(Error::InvalidModel("image has no pixels"));
        }
        if h.latent == 0 {
            return Err(Error::InvalidModel("latent size is zero"));
        }
        if h.mixture_weights.len() != k {
            return Err(Error::InvalidModel(
                "mixture weight count differs from expert count",
            ));
        }
        if let Some(map) = &h.label_map {
            if map.len() != k {
                return Err(Error::InvalidModel(
                    "label map length differs from expert count",
                ));
            }
        }
        if self.decoders.len() != k {
            return Err(Error::InvalidModel(
                "decoder count differs from expert count",
            ));
        }
        self.gate
            .validate(h.image.pixels(), k, "gate has no layers")?;
        for d in &self.decoders {
            d.validate(h.latent as usize, h.image.pixels(), "decoder has no layers")?;
        }
        Ok(())
    }

    /// Exact size of the file [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> Result<usize, Error> {
        let body = postcard::experimental::serialized_size(self).map_err(|_| Error::Malformed)?;
        Ok(HEADER_LEN + body)
    }

    /// Writes the complete file (frame and body) into `out`, returning its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, Error> {
        self.validate()?;
        if out.len() < HEADER_LEN {
            return Err(Error::Unrepresentable("output buffer too small"));
        }
        let body_len = postcard::to_slice(self, &mut out[HEADER_LEN..])
            .map_err(|_| Error::Unrepresentable("output buffer too small"))?
            .len();
        let body_len32 =
            u32::try_from(body_len).map_err(|_| Error::Unrepresentable("body over 4 GiB"))?;
        ModelFile::new_unchecked(&mut out[..]).fill_frame(body_len32);
        Ok(HEADER_LEN + body_len)
    }

    /// Total parameters in the gate and all decoders.
    pub fn parameters(&self) -> usize {
        self.gate.parameters() + self.decoders.iter().map(Mlp::parameters).sum::<usize>()
    }

    /// Widest layer input or output anywhere in the model: the size each
    /// [`Workspace`](crate::Workspace) buffer needs.
    pub fn max_width(&self) -> usize {
        self.decoders
            .iter()
            .map(Mlp::max_width)
            .fold(self.gate.max_width(), usize::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A complete file written out by hand: 2×1 image, one expert, latent 1.
    static TINY: [u8; 63] = [
        b'M', b'o', b'V', b'A', b'E', b'\r', b'\n', 0x1a, // magic
        0x01, 0x00, 0x00, 0x00, // version 1, reserved
        43, 0x00, 0x00, 0x00, // body length
        0x4f, 0x33, 0x10, 0x49, // crc32 of the body
        0x00, // method: MixtureOfVaes
        0x02, 0x01, // image 2 × 1
        0x01, 0x01, // experts 1, latent 1
        0x00, // likelihood: Bernoulli
        0x01, 0x00, 0x00, 0x80, 0x3f, // mixture weights [1.0]
        0x01, 0x01, 0x07, // label map Some([7])
        0x01, b't', // provenance "t"
        0x01, // gate: one layer
        0x02, 0x01, 0x00, // 2 -> 1, Identity
        0x04, 0x00, 0x3c, 0x00, 0xbc, // weights [1.0, -1.0]
        0x02, 0x00, 0x38, // bias [0.5]
        0x01, 0x01, // one decoder of one layer
        0x01, 0x02, 0x02, // 1 -> 2, Sigmoid
        0x04, 0x00, 0x40, 0x00, 0x00, // weights [2.0, 0.0]
        0x04, 0x00, 0x00, 0x00, 0x00, // bias [0.0, 0.0]
    ];

    #[test]
    fn parses_literal_file() {
        let repr = ModelRepr::parse(&TINY).unwrap();
        assert_eq!(repr.header.method, Method::MixtureOfVaes);
        assert_eq!(
            repr.header.image,
            ImageShape {
                width: 2,
                height: 1
            }
        );
        assert_eq!(repr.header.mixture_weights.as_slice(), &[1.0]);
        assert_eq!(repr.header.label_map.as_deref(), Some(&[7u8][..]));
        assert_eq!(repr.header.provenance, "t");
        let g = &repr.gate.layers[0];
        assert_eq!(
            (g.weight(0, 0), g.weight(0, 1), g.bias_at(0)),
            (1.0, -1.0, 0.5)
        );
        let d = &repr.decoders[0].layers[0];
        assert_eq!(d.activation, Activation::Sigmoid);
        assert_eq!((d.weight(0, 0), d.weight(1, 0)), (2.0, 0.0));
        assert_eq!(repr.parameters(), 3 + 4);
        assert_eq!(repr.max_width(), 2);
    }

    #[test]
    fn emits_literal_file() {
        let repr = ModelRepr::parse(&TINY).unwrap();
        assert_eq!(repr.buffer_len().unwrap(), TINY.len());
        let mut out = [0u8; 63];
        assert_eq!(repr.emit(&mut out).unwrap(), 63);
        assert_eq!(out, TINY);
        assert!(repr.emit(&mut [0u8; 40]).is_err());
    }

    /// Rewrites the body and fixes the checksum, so the decoder itself is tested.
    fn with_body(edit: impl FnOnce(&mut [u8])) -> [u8; 63] {
        let mut b = TINY;
        edit(&mut b[20..]);
        let mut f = ModelFile::new_unchecked(&mut b[..]);
        f.fill_frame(43);
        b
    }

    #[test]
    fn rejects_inconsistent_bodies() {
        // gate output width 1 -> 2: does not match K and breaks the weight length
        let b = with_body(|body| body[18] = 0x02);
        assert!(matches!(ModelRepr::parse(&b), Err(Error::InvalidModel(_))));
        // K = 0
        let b = with_body(|body| body[3] = 0x00);
        assert_eq!(
            ModelRepr::parse(&b),
            Err(Error::InvalidModel("model has no experts"))
        );
        // K = 17 (one byte varint 0x11)
        let b = with_body(|body| body[3] = 0x11);
        assert!(matches!(
            ModelRepr::parse(&b),
            Err(Error::Capacity {
                what: "experts",
                ..
            })
        ));
        // unknown activation variant
        let b = with_body(|body| body[19] = 0x09);
        assert_eq!(ModelRepr::parse(&b), Err(Error::Malformed));
        // layer list longer than MAX_LAYERS
        let b = with_body(|body| body[16] = 0x05);
        assert_eq!(ModelRepr::parse(&b), Err(Error::Malformed));
    }
}
