//! Whether a model of a planned shape can be written and run: a check the
//! trainer makes before it trains, against the same limits the parser and
//! the inference code apply to a finished file.

use core::fmt;
use std::vec::Vec;

use crate::format::{DATA_ALIGN, MAX_EXPERTS, MAX_INT8_INPUTS, MAX_LAYERS, TABLE_LEN};
use crate::forward::{workspace_need, LayerWidths};
use crate::{ElementType, ImageShape, MAX_F32_IMAGE};

/// A model's shape without its weights: what is known before training.
///
/// The gate maps the image's pixels through `gate_hidden` to `experts`
/// logits; each of the `experts` decoders maps `latent` values through
/// `decoder_hidden` to the image's pixels. [`check`](Self::check) says
/// whether the engine can write and run such a model, with f16 weights and
/// with int8 weights, in a workspace of a given length.
///
/// ```
/// use engine::writer::{ModelShape, ShapeError};
/// use engine::{ElementType, ImageShape};
/// let mut shape = ModelShape {
///     image: ImageShape { width: 28, height: 28 },
///     latent: 10,
///     experts: 10,
///     gate_hidden: vec![256],
///     decoder_hidden: vec![32],
/// };
/// assert_eq!(shape.check(engine::host::WORKSPACE_LEN), Ok(()));
/// assert_eq!(shape.workspace_len(ElementType::F16), 784);
/// assert_eq!(shape.workspace_len(ElementType::Int8), 256);
///
/// shape.gate_hidden = vec![5000];
/// let err = shape.check(4096).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "a layer 5000 wide needs a workspace of 5000 values; the workspace holds 4096"
/// );
/// # let _: ShapeError = err;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelShape {
    /// Image geometry: the gate's input and every decoder's output.
    pub image: ImageShape,
    /// The decoders' input width.
    pub latent: usize,
    /// Number of experts K: the gate's output width and the decoder count.
    pub experts: usize,
    /// Widths of the gate's hidden layers, input side first.
    pub gate_hidden: Vec<usize>,
    /// Widths of each decoder's hidden layers, input side first.
    pub decoder_hidden: Vec<usize>,
}

/// A width of a [`ModelShape`], as a [`ShapeError::ZeroWidth`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// The image's pixel count.
    Image,
    /// The latent width.
    Latent,
    /// `gate_hidden[i]`.
    GateHidden(usize),
    /// `decoder_hidden[i]`.
    DecoderHidden(usize),
}

impl fmt::Display for Width {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Width::Image => f.write_str("the image's pixel count"),
            Width::Latent => f.write_str("the latent width"),
            Width::GateHidden(i) => write!(f, "gate_hidden[{i}]"),
            Width::DecoderHidden(i) => write!(f, "decoder_hidden[{i}]"),
        }
    }
}

/// Why the engine could not write or run a model of a [`ModelShape`].
///
/// Every variant displays as one line naming the limit and the offending
/// value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShapeError {
    /// The expert count is outside `1..=`[`MAX_EXPERTS`].
    Experts {
        /// The planned count.
        experts: usize,
    },
    /// A width is zero.
    ZeroWidth {
        /// Which one.
        width: Width,
    },
    /// A network has more than [`MAX_LAYERS`] layers.
    Layers {
        /// `"gate"` or `"decoder"`.
        network: &'static str,
        /// Its planned layer count (hidden layers and the output layer).
        layers: usize,
    },
    /// The latent width does not fit the header's 16 bits.
    Latent {
        /// The planned width.
        latent: usize,
    },
    /// A layer has more inputs than an integer layer may have
    /// ([`MAX_INT8_INPUTS`]).
    Int8Inputs {
        /// The layer's input width.
        inputs: usize,
    },
    /// Integer models classify `f32` images of at most [`MAX_F32_IMAGE`]
    /// pixels.
    F32Image {
        /// The image's pixel count.
        pixels: usize,
    },
    /// The model needs a longer workspace than the one given: every layer's
    /// width for f16 weights, [`ModelShape::workspace_len`] for int8, and
    /// the image's pixels for the calls that return `f32` images.
    Workspace {
        /// The element type that needs it.
        element: ElementType,
        /// Values per buffer needed.
        needed: usize,
        /// Values per buffer of the workspace.
        have: usize,
    },
    /// The tensors could exceed what a model file addresses.
    FileSize {
        /// The element type whose tensors are too large.
        element: ElementType,
        /// Bytes of tensors, alignment included, at the most.
        bytes: u64,
    },
}

/// Most bytes of tensors [`ModelShape::check`] accepts: a file's body
/// length and tensor offsets are `u32`, and 1 MiB is left to the
/// description (header, provenance text, layer descriptors).
pub const MAX_TENSOR_BYTES: u64 = u32::MAX as u64 - (1 << 20);

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ShapeError::Experts { experts } => write!(
                f,
                "a model of {experts} experts: the engine runs 1 to {MAX_EXPERTS}"
            ),
            ShapeError::ZeroWidth { width } => {
                write!(f, "{width} is 0: every width must be at least 1")
            }
            ShapeError::Layers { network, layers } => write!(
                f,
                "a {network} of {layers} layers: the engine runs at most {MAX_LAYERS} per network"
            ),
            ShapeError::Latent { latent } => write!(
                f,
                "a latent of {latent} values: a model file stores at most {}",
                u16::MAX
            ),
            ShapeError::Int8Inputs { inputs } => write!(
                f,
                "a layer of {inputs} inputs: int8 layers take at most {MAX_INT8_INPUTS}"
            ),
            ShapeError::F32Image { pixels } => write!(
                f,
                "an image of {pixels} pixels: int8 models classify f32 images of at most {MAX_F32_IMAGE}"
            ),
            ShapeError::Workspace {
                element: ElementType::F16,
                needed,
                have,
            } => write!(
                f,
                "a layer {needed} wide needs a workspace of {needed} values; the workspace holds {have}"
            ),
            ShapeError::Workspace {
                element: ElementType::Int8,
                needed,
                have,
            } => write!(
                f,
                "int8 weights need a workspace of {needed} values; the workspace holds {have}"
            ),
            ShapeError::FileSize { element, bytes } => write!(
                f,
                "{} tensors of up to {bytes} bytes: a model file holds at most {MAX_TENSOR_BYTES}",
                element.name()
            ),
        }
    }
}

impl std::error::Error for ShapeError {}

/// `(inputs, outputs)` of each layer from `input` through `hidden` to `output`.
fn layers(input: usize, hidden: &[usize], output: usize) -> Vec<(usize, usize)> {
    let widths: Vec<usize> = core::iter::once(input)
        .chain(hidden.iter().copied())
        .chain(core::iter::once(output))
        .collect();
    widths.windows(2).map(|w| (w[0], w[1])).collect()
}

impl ModelShape {
    /// `(inputs, outputs)` of each gate layer: pixels, `gate_hidden`, experts.
    ///
    /// ```
    /// # use engine::{writer::ModelShape, ImageShape};
    /// let shape = ModelShape {
    ///     image: ImageShape { width: 28, height: 28 },
    ///     latent: 10,
    ///     experts: 10,
    ///     gate_hidden: vec![256],
    ///     decoder_hidden: vec![32],
    /// };
    /// assert_eq!(shape.gate_layers(), [(784, 256), (256, 10)]);
    /// assert_eq!(shape.decoder_layers(), [(10, 32), (32, 784)]);
    /// ```
    pub fn gate_layers(&self) -> Vec<(usize, usize)> {
        layers(self.image.pixels(), &self.gate_hidden, self.experts)
    }

    /// `(inputs, outputs)` of each decoder layer: latent, `decoder_hidden`,
    /// pixels.
    pub fn decoder_layers(&self) -> Vec<(usize, usize)> {
        layers(self.latent, &self.decoder_hidden, self.image.pixels())
    }

    /// What [`Model::workspace_len`](crate::Model::workspace_len) will say
    /// of the model the writer makes of this shape with `element` weights
    /// (the same function computes both).
    pub fn workspace_len(&self, element: ElementType) -> usize {
        let widths = |gate: bool, net: Vec<(usize, usize)>| {
            net.into_iter()
                .enumerate()
                .map(move |(i, (inputs, outputs))| LayerWidths {
                    inputs,
                    outputs,
                    column_major: super::int8_layout(gate, i) == crate::Layout::ColumnMajor,
                })
        };
        // The decoders are alike, so one stands for all of them.
        let decoders = (self.experts > 0).then(|| widths(false, self.decoder_layers()));
        workspace_need(
            element,
            self.latent,
            core::iter::once(widths(true, self.gate_layers())).chain(decoders),
        )
    }

    /// Upper bound on the bytes of tensors (alignment padding included) of
    /// the writer's file of this shape with `element` weights.
    fn tensor_bytes(&self, element: ElementType) -> u64 {
        let pad = DATA_ALIGN as u64 - 1;
        let layer = |&(n, m): &(usize, usize)| -> u64 {
            let (n, m) = (n as u64, m as u64);
            let nm = n.saturating_mul(m);
            match element {
                // Weights and biases.
                ElementType::F16 => nm
                    .saturating_add(m)
                    .saturating_mul(2)
                    .saturating_add(2 * pad),
                // Weights; scales, biases and multipliers of 4 bytes; a table.
                ElementType::Int8 => nm
                    .saturating_add(m.saturating_mul(12))
                    .saturating_add(TABLE_LEN as u64 + 5 * pad),
            }
        };
        let net = |layers: Vec<(usize, usize)>| -> u64 {
            layers.iter().map(layer).fold(0, u64::saturating_add)
        };
        net(self.gate_layers())
            .saturating_add(net(self.decoder_layers()).saturating_mul(self.experts as u64))
    }

    /// Whether the engine can write a model of this shape (f16 and int8)
    /// and run it whole (classify, classify `f32` images, generate, decode)
    /// in a [`Workspace`](crate::Workspace) of `workspace_len` values.
    ///
    /// It refuses, in this order: an expert count outside
    /// `1..=`[`MAX_EXPERTS`], a zero width, a network of more than
    /// [`MAX_LAYERS`] layers, a latent beyond 16 bits, a layer of more than
    /// [`MAX_INT8_INPUTS`] inputs, an image of more than [`MAX_F32_IMAGE`]
    /// pixels, a model whose f16 or int8 form needs a longer workspace
    /// (or whose image is longer than it), and tensors over
    /// [`MAX_TENSOR_BYTES`].
    ///
    /// ```
    /// use engine::writer::{ModelShape, ShapeError, Width};
    /// let shape = ModelShape {
    ///     image: engine::ImageShape { width: 8, height: 8 },
    ///     latent: 2,
    ///     experts: 3,
    ///     gate_hidden: vec![64],
    ///     decoder_hidden: vec![],
    /// };
    /// assert_eq!(shape.check(64), Ok(()));
    /// assert!(matches!(shape.check(63), Err(ShapeError::Workspace { needed: 64, .. })));
    /// let zero = ModelShape { gate_hidden: vec![0], ..shape };
    /// assert_eq!(zero.check(64), Err(ShapeError::ZeroWidth { width: Width::GateHidden(0) }));
    /// ```
    pub fn check(&self, workspace_len: usize) -> Result<(), ShapeError> {
        if !(1..=MAX_EXPERTS).contains(&self.experts) {
            return Err(ShapeError::Experts {
                experts: self.experts,
            });
        }
        let zero = (self.image.pixels() == 0)
            .then_some(Width::Image)
            .or((self.latent == 0).then_some(Width::Latent))
            .or(self
                .gate_hidden
                .iter()
                .position(|&w| w == 0)
                .map(Width::GateHidden))
            .or(self
                .decoder_hidden
                .iter()
                .position(|&w| w == 0)
                .map(Width::DecoderHidden));
        if let Some(width) = zero {
            return Err(ShapeError::ZeroWidth { width });
        }
        let (gate, decoder) = (self.gate_layers(), self.decoder_layers());
        for (network, layers) in [("gate", gate.len()), ("decoder", decoder.len())] {
            if layers > MAX_LAYERS {
                return Err(ShapeError::Layers { network, layers });
            }
        }
        if u16::try_from(self.latent).is_err() {
            return Err(ShapeError::Latent {
                latent: self.latent,
            });
        }
        if let Some(&(inputs, _)) = gate.iter().chain(&decoder).find(|l| l.0 > MAX_INT8_INPUTS) {
            return Err(ShapeError::Int8Inputs { inputs });
        }
        let pixels = self.image.pixels();
        if pixels > MAX_F32_IMAGE {
            return Err(ShapeError::F32Image { pixels });
        }
        for element in [ElementType::F16, ElementType::Int8] {
            let needed = self.workspace_len(element).max(pixels);
            if needed > workspace_len {
                return Err(ShapeError::Workspace {
                    element,
                    needed,
                    have: workspace_len,
                });
            }
        }
        for element in [ElementType::F16, ElementType::Int8] {
            let bytes = self.tensor_bytes(element);
            if bytes > MAX_TENSOR_BYTES {
                return Err(ShapeError::FileSize { element, bytes });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::vec;

    fn shape(gate_hidden: Vec<usize>, decoder_hidden: Vec<usize>) -> ModelShape {
        ModelShape {
            image: ImageShape {
                width: 28,
                height: 28,
            },
            latent: 10,
            experts: 10,
            gate_hidden,
            decoder_hidden,
        }
    }

    #[test]
    fn each_refusal_names_its_limit_and_value() {
        let ok = shape(vec![256], vec![32]);
        let cases: [(ModelShape, usize, ShapeError, &str); 10] = [
            (
                ModelShape {
                    experts: 0,
                    ..ok.clone()
                },
                4096,
                ShapeError::Experts { experts: 0 },
                "a model of 0 experts: the engine runs 1 to 16",
            ),
            (
                ModelShape {
                    experts: 17,
                    ..ok.clone()
                },
                4096,
                ShapeError::Experts { experts: 17 },
                "a model of 17 experts: the engine runs 1 to 16",
            ),
            (
                shape(vec![256], vec![32, 0]),
                4096,
                ShapeError::ZeroWidth {
                    width: Width::DecoderHidden(1),
                },
                "decoder_hidden[1] is 0: every width must be at least 1",
            ),
            (
                ModelShape {
                    latent: 0,
                    ..ok.clone()
                },
                4096,
                ShapeError::ZeroWidth {
                    width: Width::Latent,
                },
                "the latent width is 0: every width must be at least 1",
            ),
            (
                shape(vec![1, 2, 3, 4], vec![32]),
                4096,
                ShapeError::Layers {
                    network: "gate",
                    layers: 5,
                },
                "a gate of 5 layers: the engine runs at most 4 per network",
            ),
            (
                ModelShape {
                    latent: 65_536,
                    ..ok.clone()
                },
                1 << 20,
                ShapeError::Latent { latent: 65_536 },
                "a latent of 65536 values: a model file stores at most 65535",
            ),
            (
                shape(vec![70_000], vec![32]),
                1 << 20,
                ShapeError::Int8Inputs { inputs: 70_000 },
                "a layer of 70000 inputs: int8 layers take at most 65535",
            ),
            (
                ModelShape {
                    image: ImageShape {
                        width: 33,
                        height: 32,
                    },
                    ..ok.clone()
                },
                4096,
                ShapeError::F32Image { pixels: 1056 },
                "an image of 1056 pixels: int8 models classify f32 images of at most 1024",
            ),
            (
                shape(vec![4097], vec![32]),
                4096,
                ShapeError::Workspace {
                    element: ElementType::F16,
                    needed: 4097,
                    have: 4096,
                },
                "a layer 4097 wide needs a workspace of 4097 values; the workspace holds 4096",
            ),
            (
                shape(vec![60_000, 60_000], vec![32]),
                1 << 20,
                ShapeError::FileSize {
                    element: ElementType::F16,
                    bytes: 7_296_045_190,
                },
                "f16 tensors of up to 7296045190 bytes: a model file holds at most 4293918719",
            ),
        ];
        for (shape, len, error, message) in cases {
            assert_eq!(shape.check(len), Err(error), "{shape:?}");
            assert_eq!(error.to_string(), message);
        }
        assert_eq!(ok.check(4096), Ok(()));
    }

    #[test]
    fn the_workspace_boundary_is_exact() {
        for (gate, decoder) in [(vec![4096], vec![32]), (vec![16], vec![4096])] {
            let wide = shape(gate.clone(), decoder.clone());
            assert_eq!(wide.workspace_len(ElementType::F16), 4096);
            assert_eq!(wide.check(4096), Ok(()));
            assert_eq!(
                wide.check(4095),
                Err(ShapeError::Workspace {
                    element: ElementType::F16,
                    needed: 4096,
                    have: 4095
                })
            );
            let wider = shape(
                gate.iter().map(|w| w + w / 4096).collect(),
                decoder.iter().map(|w| w + w / 4096).collect(),
            );
            assert!(matches!(
                wider.check(4096),
                Err(ShapeError::Workspace { needed: 4097, .. })
            ));
        }
    }

    #[test]
    fn int8_needs_are_those_of_the_parser() {
        // Gate 784→256 by columns (256 sums), hidden codes of 256 and 32
        // (halves: 128 and 16), latent 10 (5): the gate's sums win.
        let s = shape(vec![256], vec![32]);
        assert_eq!(s.workspace_len(ElementType::Int8), 256);
        // One gate layer, by columns, sums its 10 outputs; decoder codes of
        // 300 need 150; the latent 401 needs 201.
        let s = ModelShape {
            latent: 401,
            ..shape(vec![], vec![300])
        };
        assert_eq!(s.workspace_len(ElementType::Int8), 201);
        assert_eq!(s.workspace_len(ElementType::F16), 784);
    }
}
