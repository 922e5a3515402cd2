//! The validated view of a model file: header, networks and data section,
//! all borrowed from the file's bytes.

use super::desc::{
    Activation, ElementType, Extension, Header, Int8Weights, LayerDesc, Layout, Requant, TensorRef,
    Weights,
};
use super::emit::{data_start, file_len, write, Description};
use super::novelty::{self, NoveltyDesc, NoveltySection, NOVELTY_TAG};
use super::wire::{ModelFile, FORMAT_VERSION, HEADER_LEN, TWO_LEVEL_VERSION};
use super::{MAX_EXPERTS, MAX_EXTENSIONS, MAX_INT8_INPUTS, MAX_LAYERS, MAX_STYLES, TABLE_LEN};
use crate::Error;

/// The whole model as a file describes it, validated and borrowed: the
/// header, where each network's layer descriptors lie, and the data section.
///
/// It holds no decoded layers (a network's layers are decoded from the
/// description's bytes when it runs), so it is small: see
/// [`Model::ram_bytes`](crate::Model::ram_bytes).
///
/// [`parse`](Self::parse) and [`emit`](Self::emit) are inverses:
///
/// ```
/// use engine::ModelRepr;
/// let bytes = engine::testing::tiny_model_bytes();
/// let repr = ModelRepr::parse(&bytes)?;
/// let mut out = vec![0u8; repr.buffer_len()];
/// repr.emit(&mut out)?;
/// assert_eq!(&out[..], &bytes[..]);
/// # Ok::<(), engine::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ModelRepr<'a> {
    header: Header<'a>,
    /// The postcard description (header and all layer descriptors).
    description: &'a [u8],
    /// Offset in `description` of the gate's layer list, then of each
    /// decoder's (flat) or each cluster's record (two-level).
    networks: [u32; 1 + MAX_EXPERTS],
    data: &'a [u8],
    element: ElementType,
    structure: Structure,
    /// The novelty section, if the file has one (version 3 only).
    novelty: Option<NoveltySection<'a>>,
}

/// What the entries after the gate in [`ModelRepr::networks`] point at.
/// (A byte: the parsed view is no larger than version 2's. A cluster's
/// style count is read from its record, the extension list found by
/// skipping the clusters.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Structure {
    /// Version 2: one decoder per cluster.
    Flat,
    /// Version 3: a record per cluster (style weights, style gate,
    /// decoders).
    TwoLevel,
}

/// One network (the gate or a decoder) of a validated model.
#[derive(Debug, Clone, Copy)]
pub struct Network<'a> {
    /// Starts at the varint layer count.
    bytes: &'a [u8],
    data: &'a [u8],
}

/// A layer of a validated model with its tensors resolved to byte slices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layer<'a> {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// Function applied to each output.
    pub activation: Activation,
    /// The tensors.
    pub weights: LayerWeights<'a>,
}

/// A layer's tensors as byte slices of the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LayerWeights<'a> {
    /// f16 weights (`outputs × inputs`, row-major) and bias.
    F16 {
        /// Little-endian f16 weights.
        weights: &'a [u8],
        /// Little-endian f16 biases.
        bias: &'a [u8],
    },
    /// Integer weights and what turns their sums into outputs.
    Int8(Int8Layer<'a>),
}

/// An integer layer's tensors as byte slices of the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Int8Layer<'a> {
    /// Order of `weights`.
    pub layout: Layout,
    /// `i8` weights.
    pub weights: &'a [u8],
    /// `f32` weight scale per output row.
    pub scales: &'a [u8],
    /// `i32` bias per output row, in accumulator units.
    pub bias: &'a [u8],
    /// Real value of one input code.
    pub input_scale: f32,
    /// How accumulators become output codes (`None`: `f32` outputs).
    pub requant: Option<RequantLayer<'a>>,
}

/// Requantization of an integer layer, tensors resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequantLayer<'a> {
    /// `i32` multiplier per output row.
    pub multipliers: &'a [u8],
    /// Right shift, `1..=62`.
    pub shift: u8,
    /// Real value of one output code.
    pub output_scale: f32,
    /// [`TABLE_LEN`] output codes for sigmoid and tanh.
    pub table: Option<&'a [u8]>,
}

/// Reads a varint `u32` (a postcard sequence length).
fn take_len(bytes: &[u8]) -> Result<(usize, &[u8]), Error> {
    let (n, rest): (u32, &[u8]) = postcard::take_from_bytes(bytes).map_err(|_| Error::Malformed)?;
    Ok((n as usize, rest))
}

fn tensor(data: &[u8], t: TensorRef) -> Option<&[u8]> {
    data.get(t.offset as usize..t.end()? as usize)
}

/// The tensor, checked for its length (`count` elements of `size` bytes)
/// and, for elements wider than a byte, 4-byte alignment in the data section.
pub(super) fn checked_tensor<'a>(
    data: &'a [u8],
    t: TensorRef,
    count: usize,
    size: usize,
    what: &'static str,
) -> Result<&'a [u8], Error> {
    let bytes = tensor(data, t).ok_or(Error::InvalidModel("tensor outside the data section"))?;
    if count.checked_mul(size) != Some(bytes.len()) {
        return Err(Error::InvalidModel(what));
    }
    if size == 4 && !t.offset.is_multiple_of(4) {
        return Err(Error::InvalidModel("32-bit tensor not 4-byte aligned"));
    }
    Ok(bytes)
}

impl LayerDesc {
    /// Checks the descriptor against the data section and resolves it.
    /// `scan` also checks the values that bound the integer kernels (the
    /// biases): done once when parsing, not on every inference.
    fn resolve<'a>(&self, data: &'a [u8], scan: bool) -> Result<Layer<'a>, Error> {
        let (inputs, outputs) = (self.inputs as usize, self.outputs as usize);
        if inputs == 0 || outputs == 0 {
            return Err(Error::InvalidModel("layer with zero width"));
        }
        let count = inputs
            .checked_mul(outputs)
            .ok_or(Error::InvalidModel("layer size overflows"))?;
        let weights = match self.weights {
            Weights::F16 { weights, bias } => LayerWeights::F16 {
                weights: checked_tensor(
                    data,
                    weights,
                    count,
                    2,
                    "weight tensor length does not match its shape",
                )?,
                bias: checked_tensor(
                    data,
                    bias,
                    outputs,
                    2,
                    "bias tensor length does not match its shape",
                )?,
            },
            Weights::Int8(q) => LayerWeights::Int8(q.resolve(data, self, count, scan)?),
        };
        Ok(Layer {
            inputs,
            outputs,
            activation: self.activation,
            weights,
        })
    }
}

impl Int8Weights {
    fn resolve<'a>(
        &self,
        data: &'a [u8],
        layer: &LayerDesc,
        count: usize,
        scan: bool,
    ) -> Result<Int8Layer<'a>, Error> {
        let outputs = layer.outputs as usize;
        if layer.inputs as usize > MAX_INT8_INPUTS {
            return Err(Error::Capacity {
                what: "int8 layer inputs",
                needed: layer.inputs as usize,
                max: MAX_INT8_INPUTS,
            });
        }
        let weights = checked_tensor(
            data,
            self.weights,
            count,
            1,
            "weight tensor length does not match its shape",
        )?;
        let scales = checked_tensor(
            data,
            self.scales,
            outputs,
            4,
            "scale tensor length does not match its shape",
        )?;
        let bias = checked_tensor(
            data,
            self.bias,
            outputs,
            4,
            "bias tensor length does not match its shape",
        )?;
        // The accumulator bound (kernels::int8) rests on this.
        if scan
            && bias.chunks_exact(4).any(|b| {
                i32::from_le_bytes([b[0], b[1], b[2], b[3]]).unsigned_abs() > super::MAX_INT8_BIAS
            })
        {
            return Err(Error::InvalidModel("int8 bias beyond 2^23"));
        }
        if !(self.input_scale.is_finite() && self.input_scale > 0.0) {
            return Err(Error::InvalidModel("int8 input scale not positive"));
        }
        let requant = match self.requant {
            None => None,
            Some(r) => Some(r.resolve(data, layer.activation, outputs)?),
        };
        Ok(Int8Layer {
            layout: self.layout,
            weights,
            scales,
            bias,
            input_scale: self.input_scale,
            requant,
        })
    }
}

impl Requant {
    fn resolve<'a>(
        &self,
        data: &'a [u8],
        activation: Activation,
        outputs: usize,
    ) -> Result<RequantLayer<'a>, Error> {
        let multipliers = checked_tensor(
            data,
            self.multipliers,
            outputs,
            4,
            "multiplier tensor length does not match its shape",
        )?;
        if !(1..=62).contains(&self.shift) {
            return Err(Error::InvalidModel("requantization shift outside 1..=62"));
        }
        if !(self.output_scale.is_finite() && self.output_scale > 0.0) {
            return Err(Error::InvalidModel("int8 output scale not positive"));
        }
        let table = match (self.table, activation.uses_table()) {
            (Some(t), true) => Some(checked_tensor(
                data,
                t,
                TABLE_LEN,
                1,
                "lookup table is not 512 codes",
            )?),
            (None, false) => None,
            (Some(_), false) => {
                return Err(Error::InvalidModel("lookup table on a clamping activation"))
            }
            (None, true) => return Err(Error::InvalidModel("sigmoid or tanh without a table")),
        };
        Ok(RequantLayer {
            multipliers,
            shift: self.shift,
            output_scale: self.output_scale,
            table,
        })
    }
}

impl<'a> Network<'a> {
    /// The layers, input first, decoded one at a time from the description.
    pub fn layers(&self) -> Layers<'a> {
        let (count, rest) = take_len(self.bytes).unwrap_or((0, &[]));
        Layers {
            rest,
            left: count,
            data: self.data,
        }
    }

    /// Number of layers (read from the description without decoding them).
    pub fn len(&self) -> usize {
        take_len(self.bytes).map_or(0, |(n, _)| n)
    }

    /// Whether the network has no layers (never, in a validated model).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Input width.
    pub fn inputs(&self) -> usize {
        self.layers().next().map_or(0, |l| l.inputs)
    }

    /// Output width.
    pub fn outputs(&self) -> usize {
        self.layers().last().map_or(0, |l| l.outputs)
    }

    /// Parameters in all layers.
    pub fn parameters(&self) -> usize {
        self.layers().map(|l| l.parameters()).sum()
    }

    /// Multiply-adds in one forward pass.
    pub fn multiply_adds(&self) -> usize {
        self.layers().map(|l| l.inputs * l.outputs).sum()
    }

    /// Bytes of tensors (weights, biases, scales, tables) in all layers.
    pub fn tensor_bytes(&self) -> usize {
        self.layers().map(|l| l.tensor_bytes()).sum()
    }
}

/// Iterator over a [`Network`]'s layers.
#[derive(Debug, Clone)]
pub struct Layers<'a> {
    rest: &'a [u8],
    left: usize,
    data: &'a [u8],
}

impl<'a> Iterator for Layers<'a> {
    type Item = Layer<'a>;

    fn next(&mut self) -> Option<Layer<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The model was validated when it was parsed, so neither step fails;
        // if one did, the iteration would simply end.
        let (desc, rest): (LayerDesc, &[u8]) = postcard::take_from_bytes(self.rest).ok()?;
        self.rest = rest;
        desc.resolve(self.data, false).ok()
    }
}

impl Layer<'_> {
    /// Parameters (weights and biases).
    pub fn parameters(&self) -> usize {
        self.inputs * self.outputs + self.outputs
    }

    /// Bytes of this layer's tensors in the file.
    pub fn tensor_bytes(&self) -> usize {
        match self.weights {
            LayerWeights::F16 { weights, bias } => weights.len() + bias.len(),
            LayerWeights::Int8(q) => {
                q.weights.len()
                    + q.scales.len()
                    + q.bias.len()
                    + q.requant
                        .map_or(0, |r| r.multipliers.len() + r.table.map_or(0, <[u8]>::len))
            }
        }
    }

    /// The element type of this layer's weights.
    pub fn element_type(&self) -> ElementType {
        match self.weights {
            LayerWeights::F16 { .. } => ElementType::F16,
            LayerWeights::Int8(_) => ElementType::Int8,
        }
    }

    /// Weight `(o, i)` as f32 (dequantized for int8 layers); 0 out of range.
    pub fn weight(&self, o: usize, i: usize) -> f32 {
        if o >= self.outputs || i >= self.inputs {
            return 0.0;
        }
        match self.weights {
            LayerWeights::F16 { weights, .. } => {
                crate::kernels::f16_at(weights, o * self.inputs + i)
            }
            LayerWeights::Int8(q) => {
                let at = match q.layout {
                    Layout::RowMajor => o * self.inputs + i,
                    Layout::ColumnMajor => i * self.outputs + o,
                };
                let code = q.weights.get(at).map_or(0, |&b| b as i8);
                code as f32 * crate::kernels::f32_at(q.scales, o)
            }
        }
    }

    /// Bias `o` as f32 (dequantized for int8 layers); 0 out of range.
    pub fn bias(&self, o: usize) -> f32 {
        match self.weights {
            LayerWeights::F16 { bias, .. } => crate::kernels::f16_at(bias, o),
            LayerWeights::Int8(q) => {
                crate::kernels::i32_at(q.bias, o) as f32
                    * crate::kernels::f32_at(q.scales, o)
                    * q.input_scale
            }
        }
    }
}

impl<'a> ModelRepr<'a> {
    /// Validates the frame (including the checksum), decodes the description
    /// and checks every network against the header and the data section.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        Self::parse_file(&ModelFile::new_checked(bytes)?)
    }

    /// Decodes and validates the body of an already checked frame: a flat
    /// description for version 2, a two-level one for version 3.
    pub fn parse_file(file: &ModelFile<&'a [u8]>) -> Result<Self, Error> {
        let two_level = match file.version() {
            FORMAT_VERSION => false,
            TWO_LEVEL_VERSION => true,
            found => {
                return Err(Error::UnsupportedVersion {
                    found,
                    supported: TWO_LEVEL_VERSION,
                })
            }
        };
        let body = file.body_slice();
        let (header, mut rest): (Header<'a>, &[u8]) =
            postcard::take_from_bytes(body).map_err(|_| Error::Malformed)?;
        check_header(&header)?;
        let k = header.experts as usize;
        let mut networks = [0u32; 1 + MAX_EXPERTS];
        // Pass 1: find each network and the end of the description.
        networks[0] = offset(body, rest);
        rest = skip_network(rest)?;
        let (count, mut after) = take_len(rest)?;
        if count != k {
            return Err(Error::InvalidModel(if two_level {
                "cluster count differs from expert count"
            } else {
                "decoder count differs from expert count"
            }));
        }
        for slot in networks.iter_mut().skip(1).take(k) {
            *slot = offset(body, after);
            after = if two_level {
                skip_cluster(after)?.1
            } else {
                skip_network(after)?
            };
        }
        let structure = if two_level {
            after = skip_extensions(after)?;
            Structure::TwoLevel
        } else {
            Structure::Flat
        };
        let description = &body[..offset(body, after) as usize];
        // The data section starts at the first 16-byte boundary of the file.
        let start = data_start(description.len()) - HEADER_LEN;
        let padding = body.get(description.len()..start).ok_or(Error::Truncated {
            needed: HEADER_LEN + start,
            available: HEADER_LEN + body.len(),
        })?;
        if padding.iter().any(|&b| b != 0) {
            return Err(Error::InvalidModel("padding before the data is not zero"));
        }
        let repr = ModelRepr {
            element: ElementType::F16,
            header,
            description,
            networks,
            data: &body[start..],
            structure,
            novelty: None,
        };
        // Pass 2: every layer against the data section and its neighbours.
        let pixels = repr.header.image.pixels();
        let element = repr.gate().check(pixels, k, None)?;
        for c in 0..k {
            let styles = repr.styles(c);
            if let Some((_, gate)) = repr.cluster(c) {
                let gate = Network {
                    bytes: gate,
                    data: repr.data,
                };
                match styles {
                    1 if !gate.is_empty() => {
                        return Err(Error::InvalidModel("style gate on a cluster of one style"))
                    }
                    1 => {}
                    _ => {
                        gate.check(pixels, styles, Some(element))?;
                    }
                }
            }
            for s in 0..styles {
                let net = repr.decoder_of(c, s).ok_or(Error::Malformed)?;
                net.check(repr.header.latent as usize, pixels, Some(element))?;
            }
        }
        let novelty = repr.novelty_section(element)?;
        Ok(ModelRepr {
            element,
            novelty,
            ..repr
        })
    }

    /// Finds, checks and resolves the novelty section among the
    /// extensions (none in a flat model).
    fn novelty_section(&self, element: ElementType) -> Result<Option<NoveltySection<'a>>, Error> {
        let Some(section) = self.extensions().find(|e| e.tag == NOVELTY_TAG) else {
            return Ok(None);
        };
        let (desc, rest): (NoveltyDesc, &[u8]) =
            postcard::take_from_bytes(section.bytes).map_err(|_| Error::Malformed)?;
        if !rest.is_empty() {
            return Err(Error::Malformed);
        }
        // The gate's last hidden layer: the output of its last layer but one.
        let gate = self.gate();
        let hidden = gate.layers().nth(gate.len().wrapping_sub(2));
        let context = novelty::Context {
            element,
            clusters: self.header.experts as usize,
            hidden: hidden.map(|l| l.outputs),
            codes: match hidden.map(|l| l.activation.unsigned_codes()) {
                Some(false) => (-128, 127),
                _ => (0, 255),
            },
        };
        desc.resolve(self.data, &context).map(Some)
    }

    /// The novelty section, if the file has one: what
    /// [`Model::classify`](crate::Model::classify) needs to score how unlike
    /// the training images an input is.
    pub fn novelty(&self) -> Option<&NoveltySection<'a>> {
        self.novelty.as_ref()
    }

    /// Exact size of the file [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        file_len(self.description.len(), self.data.len())
    }

    /// Writes the complete file (frame, description, padding, data) into
    /// `out`, returning its length: the parsed bytes again, through the
    /// same path as [`format::emit`](super::emit).
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, Error> {
        write(
            &Description::Encoded(self.description, self.version()),
            self.data,
            out,
        )
    }

    /// The format version: [`FORMAT_VERSION`] for a flat model,
    /// [`TWO_LEVEL_VERSION`] for a two-level one.
    pub fn version(&self) -> u16 {
        match self.structure {
            Structure::Flat => FORMAT_VERSION,
            Structure::TwoLevel => TWO_LEVEL_VERSION,
        }
    }

    /// Whether this is a two-level model: some cluster has more than one
    /// style. (A flat model with a novelty section is a version-3 file whose
    /// clusters have one style each: not two-level.)
    pub fn is_two_level(&self) -> bool {
        (0..self.header.experts as usize).any(|c| self.styles(c) > 1)
    }

    /// Shapes and metadata.
    pub fn header(&self) -> &Header<'a> {
        &self.header
    }

    /// The element type of every layer.
    pub fn element_type(&self) -> ElementType {
        self.element
    }

    /// The gate: maps an image to K logits.
    pub fn gate(&self) -> Network<'a> {
        self.network(0)
    }

    /// Expert (cluster) `k`'s decoder, if there is one: of a two-level
    /// model, its style 0's.
    pub fn decoder(&self, k: usize) -> Option<Network<'a>> {
        self.decoder_of(k, 0)
    }

    /// The decoders, expert 0 first (of a two-level model, each cluster's
    /// style 0: [`networks`](Self::networks) has them all).
    pub fn decoders(&self) -> impl Iterator<Item = Network<'a>> + '_ {
        (0..self.header.experts as usize).filter_map(|k| self.decoder(k))
    }

    /// Number of styles of cluster `c`: 1 for every cluster of a flat model,
    /// 0 for a cluster that does not exist.
    pub fn styles(&self, c: usize) -> usize {
        match self.cluster(c) {
            _ if c >= self.header.experts as usize => 0,
            None => 1,
            Some((weights, _)) => weights.len() / 4,
        }
    }

    /// Prior weight of style `s` within cluster `c` (1 for the one style of
    /// a flat model's cluster); `None` if there is no such style.
    pub fn style_weight(&self, c: usize, s: usize) -> Option<f32> {
        if s >= self.styles(c) {
            return None;
        }
        match self.cluster(c) {
            None => Some(1.0),
            Some((weights, _)) => {
                let w = weights.get(4 * s..4 * s + 4)?;
                Some(f32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            }
        }
    }

    /// Cluster `c`'s style gate (pixels to `styles(c)` logits), if it has
    /// one: never in a flat model, nor for a cluster of one style.
    pub fn style_gate(&self, c: usize) -> Option<Network<'a>> {
        let (_, bytes) = self.cluster(c)?;
        let net = Network {
            bytes,
            data: self.data,
        };
        (!net.is_empty()).then_some(net)
    }

    /// Cluster `c`'s decoder of style `s`, if there is one.
    pub fn decoder_of(&self, c: usize, s: usize) -> Option<Network<'a>> {
        if s >= self.styles(c) {
            return None;
        }
        let Some((_, gate)) = self.cluster(c) else {
            return Some(self.network(1 + c));
        };
        // Skip the style gate and the decoders before style `s` (validated
        // when parsed, so these steps succeed).
        let (_, mut rest) = take_len(skip_network(gate).ok()?).ok()?;
        for _ in 0..s {
            rest = skip_network(rest).ok()?;
        }
        Some(Network {
            bytes: rest,
            data: self.data,
        })
    }

    /// Every network of the model: the gate, then each cluster's style
    /// gate (if any) and decoders.
    pub fn networks(&self) -> impl Iterator<Item = Network<'a>> + '_ {
        let clusters = (0..self.header.experts as usize).flat_map(move |c| {
            self.style_gate(c)
                .into_iter()
                .chain((0..self.styles(c)).filter_map(move |s| self.decoder_of(c, s)))
        });
        core::iter::once(self.gate()).chain(clusters)
    }

    /// The extension sections of a version-3 description, in tag order
    /// (none in a flat model). A reader skips the tags it does not know.
    pub fn extensions(&self) -> impl Iterator<Item = Extension<'a>> + 'a {
        // After the last cluster's record (validated, so skipping succeeds).
        let last = (self.header.experts as usize).saturating_sub(1);
        let list = match self.cluster(last) {
            Some((_, gate)) => skip_cluster_rest(gate).unwrap_or(&[]),
            None => &[],
        };
        let (count, mut rest) = take_len(list).unwrap_or((0, &[]));
        (0..count).map_while(move |_| {
            let (e, r): (Extension<'a>, &'a [u8]) = postcard::take_from_bytes(rest).ok()?;
            rest = r;
            Some(e)
        })
    }

    /// A two-level model's cluster `c`: its style weights' bytes and the
    /// description from its style gate on. `None` for a flat model.
    fn cluster(&self, c: usize) -> Option<(&'a [u8], &'a [u8])> {
        let Structure::TwoLevel = self.structure else {
            return None;
        };
        if c >= self.header.experts as usize {
            return None;
        }
        let at = *self.networks.get(c.checked_add(1)?)? as usize;
        let (s, rest) = take_len(self.description.get(at..)?).ok()?;
        let split = s.checked_mul(4)?;
        Some((rest.get(..split)?, rest.get(split..)?))
    }

    fn network(&self, i: usize) -> Network<'a> {
        let at = self.networks.get(i).copied().unwrap_or(0) as usize;
        Network {
            bytes: self.description.get(at..).unwrap_or(&[]),
            data: self.data,
        }
    }

    /// The tensor data section (16-byte aligned in the file).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Total parameters in every network.
    pub fn parameters(&self) -> usize {
        self.networks().map(|n| n.parameters()).sum()
    }

    /// Widest layer input or output anywhere in the model.
    pub fn max_width(&self) -> usize {
        self.networks()
            .flat_map(|n| n.layers())
            .map(|l| l.inputs.max(l.outputs))
            .max()
            .unwrap_or(0)
    }
}

impl Network<'_> {
    /// Checks a network's layers: count, widths, element types, and that
    /// only the last layer of an integer network may leave `requant` out.
    /// Returns the element type of its layers.
    fn check(
        &self,
        inputs: usize,
        outputs: usize,
        element: Option<ElementType>,
    ) -> Result<ElementType, Error> {
        let (count, mut rest) = take_len(self.bytes)?;
        if count == 0 {
            return Err(Error::InvalidModel("network has no layers"));
        }
        let mut width = inputs;
        let mut kind = element;
        for i in 0..count {
            let (desc, r): (LayerDesc, &[u8]) =
                postcard::take_from_bytes(rest).map_err(|_| Error::Malformed)?;
            rest = r;
            let layer = desc.resolve(self.data, true)?;
            if layer.inputs != width {
                return Err(Error::InvalidModel("layer widths do not chain"));
            }
            width = layer.outputs;
            let this = layer.element_type();
            if *kind.get_or_insert(this) != this {
                return Err(Error::InvalidModel("layers of different element types"));
            }
            if let LayerWeights::Int8(q) = layer.weights {
                if q.requant.is_none() && i + 1 < count {
                    return Err(Error::InvalidModel(
                        "int8 hidden layer without requantization",
                    ));
                }
            }
        }
        if width != outputs {
            return Err(Error::InvalidModel("network output width is wrong"));
        }
        Ok(kind.unwrap_or(ElementType::F16))
    }
}

fn check_header(h: &Header<'_>) -> Result<(), Error> {
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
    if h.label_map.as_ref().is_some_and(|m| m.len() != k) {
        return Err(Error::InvalidModel(
            "label map length differs from expert count",
        ));
    }
    Ok(())
}

/// Skips one network's layer list, checking only that it decodes and that
/// it has at most [`MAX_LAYERS`] layers.
fn skip_network(bytes: &[u8]) -> Result<&[u8], Error> {
    let (count, mut rest) = take_len(bytes)?;
    if count > MAX_LAYERS {
        return Err(Error::Capacity {
            what: "layers",
            needed: count,
            max: MAX_LAYERS,
        });
    }
    for _ in 0..count {
        let (_, r): (LayerDesc, &[u8]) =
            postcard::take_from_bytes(rest).map_err(|_| Error::Malformed)?;
        rest = r;
    }
    Ok(rest)
}

/// Skips one cluster's record of a version-3 description, checking its
/// counts (styles, decoders) and that its networks decode; returns its
/// number of styles and what follows.
fn skip_cluster(bytes: &[u8]) -> Result<(usize, &[u8]), Error> {
    let (styles, rest) = take_len(bytes)?;
    if styles == 0 {
        return Err(Error::InvalidModel("cluster has no styles"));
    }
    if styles > MAX_STYLES {
        return Err(Error::Capacity {
            what: "styles",
            needed: styles,
            max: MAX_STYLES,
        });
    }
    // `styles` f32 weights, 4 bytes each.
    let rest = rest.get(4 * styles..).ok_or(Error::Malformed)?;
    let (decoders, rest) = skip_cluster_networks(rest)?;
    if decoders != styles {
        return Err(Error::InvalidModel(
            "decoder count differs from style count",
        ));
    }
    Ok((styles, rest))
}

/// Skips a cluster's style gate and decoders; returns the decoder count and
/// what follows.
fn skip_cluster_networks(bytes: &[u8]) -> Result<(usize, &[u8]), Error> {
    let (decoders, mut rest) = take_len(skip_network(bytes)?)?;
    for _ in 0..decoders.min(MAX_STYLES + 1) {
        rest = skip_network(rest)?;
    }
    Ok((decoders, rest))
}

/// What follows a validated cluster record, from its style gate on.
fn skip_cluster_rest(bytes: &[u8]) -> Option<&[u8]> {
    skip_cluster_networks(bytes).ok().map(|(_, rest)| rest)
}

/// Skips the extension list of a version-3 description: at most
/// [`MAX_EXTENSIONS`] sections with strictly increasing tags.
fn skip_extensions(bytes: &[u8]) -> Result<&[u8], Error> {
    let (count, mut rest) = take_len(bytes)?;
    if count > MAX_EXTENSIONS {
        return Err(Error::Capacity {
            what: "extensions",
            needed: count,
            max: MAX_EXTENSIONS,
        });
    }
    let mut last: Option<u16> = None;
    for _ in 0..count {
        let (e, r): (Extension<'_>, &[u8]) =
            postcard::take_from_bytes(rest).map_err(|_| Error::Malformed)?;
        if last.is_some_and(|t| t >= e.tag) {
            return Err(Error::InvalidModel("extension tags not increasing"));
        }
        last = Some(e.tag);
        rest = r;
    }
    Ok(rest)
}

/// Where `rest` (a tail of `body`) starts in `body`.
fn offset(body: &[u8], rest: &[u8]) -> u32 {
    (body.len() - rest.len()) as u32
}

/// The descriptors of a validated network's layers (for re-emitting it).
pub fn descriptors<'a>(network: Network<'a>) -> impl Iterator<Item = LayerDesc> + 'a {
    let (count, mut rest) = take_len(network.bytes).unwrap_or((0, &[]));
    (0..count).map_while(move |_| {
        let (desc, r): (LayerDesc, &[u8]) = postcard::take_from_bytes(rest).ok()?;
        rest = r;
        Some(desc)
    })
}

#[cfg(test)]
mod tests;
