//! A validated model and the two things it does: classify and generate.

use heapless::Vec;

use crate::format::{
    ElementType, Header, Int8Layer, Layer, LayerWeights, Layout, ModelRepr, Network, MAX_EXPERTS,
};
use crate::kernels::int8::{self, code_value, output_code, requantize};
use crate::kernels::{activate, activate_slice, argmax, dense_f16, f32_at, softmax};
use crate::rng::SplitMix64;
use crate::{Error, Workspace};

/// A parsed, validated model borrowing its weights from the file's bytes.
///
/// Construction checks everything once ([`Model::from_bytes`]); inference then
/// cannot fail on the model's account, only on the caller's arguments.
///
/// Models with f16 weights compute in `f32`; models with int8 weights
/// compute in integers (`FORMAT.md`, *Integer layers*). Both give the same
/// bits on every target.
#[derive(Debug, Clone)]
pub struct Model<'a> {
    repr: ModelRepr<'a>,
    /// [`Model::workspace_len`], computed once (it walks every layer).
    workspace_len: usize,
}

/// The gate's verdict on one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// The expert (cluster) with the highest probability.
    pub cluster: usize,
    /// The gate's softmax over experts.
    pub probabilities: Vec<f32, MAX_EXPERTS>,
    /// The digit label of `cluster`, if the model carries a label map.
    pub label: Option<u8>,
}

impl Classification {
    /// Probability of the chosen cluster.
    pub fn confidence(&self) -> f32 {
        self.probabilities.get(self.cluster).copied().unwrap_or(0.0)
    }
}

/// Where an integer network's last layer puts its outputs.
enum Dest<'o> {
    /// `f32` values in a slice of their own (the gate's logits).
    Values(&'o mut [f32]),
    /// `f32` values in the workspace's first buffer.
    Workspace,
    /// 8-bit pixels, as [`to_pixels`] makes them.
    Pixels(&'o mut [u8]),
}

impl<'a> Model<'a> {
    /// Parses and validates a complete model file (frame, checksum,
    /// description, shapes). Weights are not copied: the model borrows `bytes`.
    ///
    /// ```
    /// let bytes = engine::testing::tiny_model_bytes();
    /// let model = engine::Model::from_bytes(&bytes)?;
    /// assert_eq!(model.experts(), 3);
    /// assert!(engine::Model::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    /// # Ok::<(), engine::Error>(())
    /// ```
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        Ok(Self::from_repr(ModelRepr::parse(bytes)?))
    }

    /// Wraps an already validated description.
    pub fn from_repr(repr: ModelRepr<'a>) -> Self {
        let workspace_len = needed_workspace(&repr);
        Model {
            repr,
            workspace_len,
        }
    }

    /// The validated description.
    pub fn repr(&self) -> &ModelRepr<'a> {
        &self.repr
    }

    /// The header (method, shapes, label map, ...).
    pub fn header(&self) -> &Header<'a> {
        self.repr.header()
    }

    /// Whether the weights are f16 or int8.
    pub fn element_type(&self) -> ElementType {
        self.repr.element_type()
    }

    /// Number of experts K.
    pub fn experts(&self) -> usize {
        self.header().experts as usize
    }

    /// Latent size of the decoders.
    pub fn latent(&self) -> usize {
        self.header().latent as usize
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.header().image.pixels()
    }

    /// Total parameters in the gate and all decoders.
    pub fn parameters(&self) -> usize {
        self.repr.parameters()
    }

    /// The gate network.
    pub fn gate(&self) -> Network<'a> {
        self.repr.gate()
    }

    /// Expert `k`'s decoder.
    pub fn decoder(&self, k: usize) -> Result<Network<'a>, Error> {
        self.repr.decoder(k).ok_or(Error::NoSuchExpert {
            expert: k,
            experts: self.experts(),
        })
    }

    /// The `N` a [`Workspace<N>`] needs for [`classify`](Self::classify),
    /// [`generate_pixels`](Self::generate_pixels) and
    /// [`decode_pixels`](Self::decode_pixels). [`generate`](Self::generate)
    /// and [`decode`](Self::decode), which return `f32` images, need
    /// `N ≥ max(workspace_len, pixels)`.
    ///
    /// f16 models need the widest layer. Integer models need the widest
    /// column-major layer's outputs (its `i32` sums) and half the widest
    /// hidden or latent width (two buffers of 8-bit codes share the second
    /// buffer); the image itself is read in place and pixels are written
    /// straight to the caller's buffer.
    pub fn workspace_len(&self) -> usize {
        self.workspace_len
    }

    /// RAM needed at run time besides the file itself: a workspace of
    /// [`workspace_len`](Self::workspace_len), this struct and a
    /// [`Classification`] (the stack depth of the calls is measured by the
    /// firmware, see firmware-example/README.md).
    pub fn ram_bytes(&self) -> usize {
        2 * self.workspace_len() * 4
            + core::mem::size_of::<Self>()
            + core::mem::size_of::<Classification>()
    }

    fn check_workspace<const N: usize>(&self, needed: usize) -> Result<(), Error> {
        if N < needed {
            return Err(Error::WorkspaceTooSmall { needed, have: N });
        }
        Ok(())
    }

    /// Classifies an image of `pixels()` bytes (0 = background, 255 = ink).
    pub fn classify<const N: usize>(
        &self,
        ws: &mut Workspace<N>,
        image: &[u8],
    ) -> Result<Classification, Error> {
        self.check_workspace::<N>(self.workspace_len())?;
        self.check_len(image.len(), self.pixels())?;
        match self.element_type() {
            ElementType::F16 => {
                for (dst, &p) in ws.a.iter_mut().zip(image) {
                    *dst = p as f32 / 255.0;
                }
                Ok(self.verdict_f16(ws))
            }
            ElementType::Int8 => {
                let k = self.experts();
                let mut logits = [0.0f32; MAX_EXPERTS];
                let dest = Dest::Values(&mut logits[..k]);
                forward_int8(self.gate(), Source::Image(image), ws, dest);
                Ok(self.verdict(&logits[..k]))
            }
        }
    }

    /// Classifies an image given as intensities in `[0, 1]`.
    ///
    /// Inputs are sanitized first, so any `f32` is accepted: NaN becomes 0,
    /// values are clamped to `[0, 1]` (so ±∞ become 1 and 0). Integer
    /// models read pixels, so they classify [`to_pixels`] of the image
    /// (converted on the stack: images of more than 1,024 pixels get
    /// [`Error::Capacity`]).
    pub fn classify_f32<const N: usize>(
        &self,
        ws: &mut Workspace<N>,
        image: &[f32],
    ) -> Result<Classification, Error> {
        self.check_workspace::<N>(self.workspace_len())?;
        self.check_len(image.len(), self.pixels())?;
        match self.element_type() {
            ElementType::F16 => {
                for (dst, &p) in ws.a.iter_mut().zip(image) {
                    *dst = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
                }
                Ok(self.verdict_f16(ws))
            }
            ElementType::Int8 => {
                let mut px = [0u8; MAX_F32_IMAGE];
                let px = px.get_mut(..image.len()).ok_or(Error::Capacity {
                    what: "pixels of an f32 image for an int8 model",
                    needed: image.len(),
                    max: MAX_F32_IMAGE,
                })?;
                to_pixels(image, px);
                self.classify(ws, px)
            }
        }
    }

    /// The gate of an f16 model on the image already in `ws.a`.
    fn verdict_f16<const N: usize>(&self, ws: &mut Workspace<N>) -> Classification {
        let logits = forward_f16(self.gate(), ws);
        self.verdict(&logits[..self.experts().min(logits.len())])
    }

    fn verdict(&self, logits: &[f32]) -> Classification {
        let mut probabilities: Vec<f32, MAX_EXPERTS> = Vec::new();
        // k <= MAX_EXPERTS was validated, so this never truncates.
        for &v in logits {
            let _ = probabilities.push(v);
        }
        softmax(&mut probabilities);
        let cluster = argmax(&probabilities);
        let label = self
            .header()
            .label_map
            .as_ref()
            .and_then(|m| m.get(cluster).copied());
        Classification {
            cluster,
            probabilities,
            label,
        }
    }

    fn check_len(&self, found: usize, expected: usize) -> Result<(), Error> {
        if found != expected {
            return Err(Error::InputLength { expected, found });
        }
        Ok(())
    }

    /// Writes `z` (non-finite values as 0) into the workspace as the
    /// decoder's input: `f32` for f16 models, `i8` codes for integer ones.
    fn load_latent<const N: usize>(&self, decoder: Network<'_>, ws: &mut Workspace<N>, z: &[f32]) {
        match decoder.layers().next().map(|l| l.weights) {
            Some(LayerWeights::Int8(q)) => {
                let codes = ws.codes();
                for (dst, &v) in codes.iter_mut().zip(z) {
                    *dst = quantize_latent(v, q.input_scale) as u8;
                }
            }
            _ => {
                for (dst, &v) in ws.a.iter_mut().zip(z) {
                    *dst = if v.is_finite() { v } else { 0.0 };
                }
            }
        }
    }

    /// Decodes latent vector `z` with expert `k`'s decoder, returning the
    /// `pixels()` output intensities (Bernoulli probabilities or Gaussian means).
    /// Non-finite latent values are replaced by 0.
    pub fn decode<'w, const N: usize>(
        &self,
        ws: &'w mut Workspace<N>,
        expert: usize,
        z: &[f32],
    ) -> Result<&'w [f32], Error> {
        self.check_workspace::<N>(self.workspace_len().max(self.pixels()))?;
        let decoder = self.decoder(expert)?;
        self.check_len(z.len(), self.latent())?;
        self.load_latent(decoder, ws, z);
        Ok(self.run_decoder(decoder, ws))
    }

    fn run_decoder<'w, const N: usize>(
        &self,
        decoder: Network<'_>,
        ws: &'w mut Workspace<N>,
    ) -> &'w [f32] {
        match self.element_type() {
            ElementType::F16 => forward_f16(decoder, ws),
            ElementType::Int8 => {
                forward_int8(decoder, Source::Latent(self.latent()), ws, Dest::Workspace);
                &ws.a[..self.pixels().min(N)]
            }
        }
    }

    /// Draws a latent vector from N(0, I) with a [`SplitMix64`] seeded by
    /// `seed` and decodes it with expert `k`: the same seed gives the same
    /// image, bit for bit, on every target.
    pub fn generate<'w, const N: usize>(
        &self,
        ws: &'w mut Workspace<N>,
        expert: usize,
        seed: u64,
    ) -> Result<&'w [f32], Error> {
        self.check_workspace::<N>(self.workspace_len().max(self.pixels()))?;
        let decoder = self.decoder(expert)?;
        self.draw_latent(decoder, ws, seed);
        Ok(self.run_decoder(decoder, ws))
    }

    /// Like [`generate`](Self::generate), but writes 8-bit pixels
    /// ([`to_pixels`] of the intensities) to `out` (`pixels()` bytes), so an
    /// integer model needs no `f32` image buffer at all.
    pub fn generate_pixels<const N: usize>(
        &self,
        ws: &mut Workspace<N>,
        expert: usize,
        seed: u64,
        out: &mut [u8],
    ) -> Result<(), Error> {
        self.check_workspace::<N>(self.workspace_len())?;
        let decoder = self.decoder(expert)?;
        self.check_len(out.len(), self.pixels())?;
        self.draw_latent(decoder, ws, seed);
        self.decoder_pixels(decoder, ws, out);
        Ok(())
    }

    /// Like [`decode`](Self::decode), but writes 8-bit pixels to `out`.
    pub fn decode_pixels<const N: usize>(
        &self,
        ws: &mut Workspace<N>,
        expert: usize,
        z: &[f32],
        out: &mut [u8],
    ) -> Result<(), Error> {
        self.check_workspace::<N>(self.workspace_len())?;
        let decoder = self.decoder(expert)?;
        self.check_len(z.len(), self.latent())?;
        self.check_len(out.len(), self.pixels())?;
        self.load_latent(decoder, ws, z);
        self.decoder_pixels(decoder, ws, out);
        Ok(())
    }

    /// Runs `decoder` on the latent already in the workspace into `out`.
    fn decoder_pixels<const N: usize>(
        &self,
        decoder: Network<'_>,
        ws: &mut Workspace<N>,
        out: &mut [u8],
    ) {
        match self.element_type() {
            ElementType::F16 => to_pixels(forward_f16(decoder, ws), out),
            ElementType::Int8 => forward_int8(
                decoder,
                Source::Latent(self.latent()),
                ws,
                Dest::Pixels(out),
            ),
        }
    }

    /// Draws the decoder's input from N(0, I) with `SplitMix64(seed)`:
    /// `f32` values for f16 models; for integer models the same values,
    /// drawn a pair at a time (as `fill_normal` draws them), as `i8` codes.
    fn draw_latent<const N: usize>(&self, decoder: Network<'_>, ws: &mut Workspace<N>, seed: u64) {
        let latent = self.latent();
        let mut rng = SplitMix64::new(seed);
        match decoder.layers().next().map(|l| l.weights) {
            Some(LayerWeights::Int8(q)) => {
                let mut z = [0.0f32; 2];
                for pair in ws.codes()[..latent].chunks_mut(2) {
                    rng.fill_normal(&mut z[..pair.len()]);
                    for (c, &v) in pair.iter_mut().zip(&z) {
                        *c = quantize_latent(v, q.input_scale) as u8;
                    }
                }
            }
            _ => rng.fill_normal(&mut ws.a[..latent]),
        }
    }
}

/// `clamp(floor(z / scale + 0.5), -127, 127)`, NaN and ±∞ as 0.
fn quantize_latent(z: f32, scale: f32) -> i8 {
    if !z.is_finite() {
        return 0;
    }
    let q = libm::floorf(z / scale + 0.5);
    q.clamp(-127.0, 127.0) as i8
}

/// What [`Model::workspace_len`] documents, for a parsed model.
fn needed_workspace(repr: &ModelRepr<'_>) -> usize {
    workspace_need(
        repr.element_type(),
        repr.header().latent as usize,
        core::iter::once(repr.gate())
            .chain(repr.decoders())
            .map(|net| net.layers().map(|l| LayerWidths::of(&l))),
    )
}

/// One layer as the workspace sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerWidths {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// Whether an integer layer sums by columns (into `i32` slots).
    pub column_major: bool,
}

impl LayerWidths {
    /// A parsed layer's widths.
    fn of(layer: &Layer<'_>) -> Self {
        LayerWidths {
            inputs: layer.inputs,
            outputs: layer.outputs,
            column_major: match layer.weights {
                LayerWeights::Int8(q) => q.layout == Layout::ColumnMajor,
                LayerWeights::F16 { .. } => false,
            },
        }
    }
}

/// What [`Model::workspace_len`] documents, from the widths alone: the
/// networks (gate first, then the decoders) of a model of `element`
/// weights whose decoders read `latent` values. The parser
/// ([`needed_workspace`]) and the writer's shape check
/// (`writer::ModelShape`) both ask this one function.
pub(crate) fn workspace_need<N, L>(element: ElementType, latent: usize, networks: N) -> usize
where
    N: IntoIterator<Item = L>,
    L: IntoIterator<Item = LayerWidths>,
{
    let mut need = match element {
        ElementType::F16 => 0,
        ElementType::Int8 => latent.div_ceil(2),
    };
    for net in networks {
        let mut layers = net.into_iter().peekable();
        while let Some(layer) = layers.next() {
            let last = layers.peek().is_none();
            need = need.max(match element {
                ElementType::F16 => layer.inputs.max(layer.outputs),
                ElementType::Int8 => {
                    let sums = if layer.column_major { layer.outputs } else { 0 };
                    let codes = if last { 0 } else { layer.outputs.div_ceil(2) };
                    sums.max(codes)
                }
            });
        }
    }
    need
}

/// Largest image [`Model::classify_f32`] converts to pixels (on the stack)
/// for an integer model: larger images get [`Error::Capacity`] there.
///
/// ```
/// assert!(engine::MAX_F32_IMAGE >= 28 * 28);
/// ```
pub const MAX_F32_IMAGE: usize = 1024;

/// Runs an f16 network on the input already in `ws.a`; returns its output,
/// which lies in `ws.a` or `ws.b` depending on the layer count. Widths were
/// validated and the workspace checked, so every slice below is in bounds.
fn forward_f16<'w, const N: usize>(net: Network<'_>, ws: &'w mut Workspace<N>) -> &'w [f32] {
    let mut in_a = true;
    let mut width = net.inputs().min(N);
    for layer in net.layers() {
        let LayerWeights::F16 { weights, bias } = layer.weights else {
            break;
        };
        let (src, dst) = if in_a {
            (&ws.a, &mut ws.b)
        } else {
            (&ws.b, &mut ws.a)
        };
        let inputs = &src[..width.min(layer.inputs)];
        let outputs = layer.outputs.min(N);
        let out = &mut dst[..outputs];
        dense_f16(weights, bias, inputs, out);
        activate_slice(layer.activation, out);
        width = outputs;
        in_a = !in_a;
    }
    if in_a {
        &ws.a[..width]
    } else {
        &ws.b[..width]
    }
}

/// What an integer network reads first.
#[derive(Clone, Copy)]
enum Source<'i> {
    /// Pixel bytes, in place.
    Image(&'i [u8]),
    /// `i8` latent codes at the start of the workspace's code buffer.
    Latent(usize),
}

/// Runs an integer network: hidden layers write 8-bit codes into the two
/// halves of the workspace's second buffer in turn, column-major layers sum
/// into its first buffer, and the last layer writes to `dest`.
fn forward_int8<const N: usize>(
    net: Network<'_>,
    source: Source<'_>,
    ws: &mut Workspace<N>,
    mut dest: Dest<'_>,
) {
    let count = net.len();
    let half = 2 * N;
    // Which half holds the current input (the image is neither).
    let (mut input_half, mut width, mut signed) = match source {
        Source::Image(image) => (None, image.len(), false),
        Source::Latent(latent) => (Some(0), latent, true),
    };
    for (i, layer) in net.layers().enumerate() {
        let LayerWeights::Int8(q) = layer.weights else {
            return;
        };
        let last = i + 1 == count;
        let (acc, codes) = ws.int8_parts();
        let (h0, h1) = codes.split_at_mut(half);
        let (input, output): (&[u8], &mut [u8]) = match (input_half, source) {
            (None, Source::Image(image)) => (image, h0),
            (Some(0), _) => (&h0[..width.min(half)], h1),
            _ => (&h1[..width.min(half)], h0),
        };
        if last {
            finish(&layer, &q, input, signed, acc, &mut dest);
            return;
        }
        let out = &mut output[..layer.outputs.min(half)];
        let (activation, table) = (layer.activation, q.requant.and_then(|r| r.table));
        let (multipliers, shift) = q.requant.map_or((&[][..], 1), |r| (r.multipliers, r.shift));
        sums(&layer, &q, input, signed, acc, |o, sum| {
            if let Some(c) = out.get_mut(o) {
                let v = requantize(sum, int8::i32_at(multipliers, o), shift);
                *c = output_code(activation, v, table);
            }
        });
        input_half = Some(if input_half == Some(0) { 1 } else { 0 });
        width = layer.outputs;
        signed = !activation.unsigned_codes();
    }
}

/// Calls `emit(o, sum)` for every output of an integer layer, by rows or by
/// columns (the latter through `acc`).
fn sums(
    layer: &Layer<'_>,
    q: &Int8Layer<'_>,
    input: &[u8],
    signed: bool,
    acc: &mut [i32],
    mut emit: impl FnMut(usize, i32),
) {
    let input = &input[..layer.inputs.min(input.len())];
    match q.layout {
        Layout::RowMajor => rows(q, input, signed, layer.outputs, emit),
        Layout::ColumnMajor => {
            let outputs = layer.outputs.min(acc.len());
            let acc = &mut acc[..outputs];
            columns(q, input, signed, acc);
            for (o, &sum) in acc.iter().enumerate() {
                emit(o, sum);
            }
        }
    }
}

/// [`int8::rows`] on codes that are `i8` (`signed`) or `u8`.
#[inline(always)]
fn rows(
    q: &Int8Layer<'_>,
    input: &[u8],
    signed: bool,
    outputs: usize,
    emit: impl FnMut(usize, i32),
) {
    if signed {
        let x: &[i8] = bytemuck::cast_slice(input);
        int8::rows(q.weights, q.bias, x, outputs, emit);
    } else {
        int8::rows(q.weights, q.bias, input, outputs, emit);
    }
}

/// [`int8::columns`] on codes that are `i8` (`signed`) or `u8`.
#[inline(always)]
fn columns(q: &Int8Layer<'_>, input: &[u8], signed: bool, acc: &mut [i32]) {
    if signed {
        let x: &[i8] = bytemuck::cast_slice(input);
        int8::columns(q.weights, q.bias, x, acc);
    } else {
        int8::columns(q.weights, q.bias, input, acc);
    }
}

/// The real value of output `o` of an integer layer from its sum.
#[inline(always)]
fn value(layer: &Layer<'_>, q: &Int8Layer<'_>, o: usize, sum: i32) -> f32 {
    match q.requant {
        Some(r) => {
            let v = requantize(sum, int8::i32_at(r.multipliers, o), r.shift);
            let code = output_code(layer.activation, v, r.table);
            code_value(layer.activation, code) as f32 * r.output_scale
        }
        None => activate(
            layer.activation,
            sum as f32 * f32_at(q.scales, o) * q.input_scale,
        ),
    }
}

/// The last layer of a network into its destination. For
/// [`Dest::Workspace`] the `f32` values go into the workspace's first
/// buffer, which `acc` views as `i32`: each slot receives its value's bits
/// (a column-major layer first sums into the slots, then replaces each sum
/// by its value).
fn finish(
    layer: &Layer<'_>,
    q: &Int8Layer<'_>,
    input: &[u8],
    signed: bool,
    acc: &mut [i32],
    dest: &mut Dest<'_>,
) {
    match dest {
        Dest::Values(out) => sums(layer, q, input, signed, acc, |o, sum| {
            if let Some(v) = out.get_mut(o) {
                *v = value(layer, q, o, sum);
            }
        }),
        Dest::Pixels(out) => {
            // Unsigned codes of scale 1/255 are the pixels themselves:
            // to_pixels(c · (1/255)) == c for every c (tested).
            let direct = q
                .requant
                .filter(|r| layer.activation.unsigned_codes() && r.output_scale == 1.0 / 255.0);
            sums(layer, q, input, signed, acc, |o, sum| {
                if let Some(p) = out.get_mut(o) {
                    *p = match direct {
                        Some(r) => {
                            let v = requantize(sum, int8::i32_at(r.multipliers, o), r.shift);
                            output_code(layer.activation, v, r.table)
                        }
                        None => pixel(value(layer, q, o, sum)),
                    };
                }
            })
        }
        Dest::Workspace => {
            let input = &input[..layer.inputs.min(input.len())];
            let outputs = layer.outputs.min(acc.len());
            let slots = &mut acc[..outputs];
            match q.layout {
                Layout::RowMajor => rows(q, input, signed, outputs, |o: usize, sum: i32| {
                    if let Some(slot) = slots.get_mut(o) {
                        *slot = value(layer, q, o, sum).to_bits() as i32;
                    }
                }),
                Layout::ColumnMajor => {
                    columns(q, input, signed, slots);
                    for (o, slot) in slots.iter_mut().enumerate() {
                        *slot = value(layer, q, o, *slot).to_bits() as i32;
                    }
                }
            }
        }
    }
}

/// [`to_pixels`] of one value.
#[inline(always)]
fn pixel(v: f32) -> u8 {
    let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
    (v * 255.0 + 0.5) as u8
}

/// Converts intensities in `[0, 1]` to 8-bit pixels (rounded; NaN becomes 0).
///
/// ```
/// let mut px = [0u8; 3];
/// engine::to_pixels(&[0.0, 0.5, 2.0], &mut px);
/// assert_eq!(px, [0, 128, 255]);
/// ```
pub fn to_pixels(values: &[f32], out: &mut [u8]) {
    for (o, &v) in out.iter_mut().zip(values) {
        *o = pixel(v);
    }
}
