//! A validated model and the two things it does: classify and generate.

use heapless::Vec;

use crate::format::{ElementType, Header, ModelRepr, Network, MAX_EXPERTS, MAX_STYLES};
use crate::forward::{self, Input, LayerWidths, Output};
use crate::kernels::{argmax, softmax};
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

/// The gate's verdict on one image (and, for a two-level model, the chosen
/// cluster's style gate's).
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// The expert (cluster) with the highest probability.
    pub cluster: usize,
    /// The gate's softmax over experts.
    pub probabilities: Vec<f32, MAX_EXPERTS>,
    /// The digit label of `cluster`, if the model carries a label map.
    pub label: Option<u8>,
    /// The style of `cluster` with the highest probability (0 in a flat
    /// model and in a cluster of one style).
    pub style: usize,
    /// The style gate's softmax over `cluster`'s styles, `p(s | cluster)`:
    /// `[1.0]` when the cluster has one style.
    pub style_probabilities: Vec<f32, MAX_STYLES>,
    /// How unlike the training images the input is, if the model carries
    /// a novelty section (`FORMAT.md`, *Novelty*); `None` for a model
    /// without one (every version-2 file).
    pub novelty: Option<Novelty>,
}

/// How unlike its training images a model finds an input: two scores in
/// units of their thresholds (1 = at the threshold, fitted by the trainer
/// so that about 1% of training images pass one of them).
///
/// ```
/// let n = engine::Novelty::new(0.5, 0.2, 0.4);
/// assert_eq!(n.doubt, 0.5);      // 0.2 / 0.4
/// assert_eq!(n.score, 0.5);      // the larger of the two
/// assert!(n.known);
/// assert!(!engine::Novelty::new(1.5, 0.0, 0.4).known);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Novelty {
    /// The chosen cluster's weighted squared distance over the gate's last
    /// hidden layer: how far the gate's view of the input lies from the
    /// cluster's training images.
    pub distance: f32,
    /// The gate's doubt, `1 − max p`, over its threshold: inputs between
    /// clusters, and blank ones.
    pub doubt: f32,
    /// The larger of the two (`+∞` if either is NaN).
    pub score: f32,
    /// Whether neither passes its threshold: `score <= 1`.
    pub known: bool,
}

impl Novelty {
    /// The scores of a `distance` (already in threshold units) and a doubt
    /// `1 − max p` under `doubt_threshold`.
    pub fn new(distance: f32, doubt: f32, doubt_threshold: f32) -> Self {
        let doubt = doubt / doubt_threshold;
        let score = if distance.is_nan() || doubt.is_nan() {
            f32::INFINITY
        } else {
            distance.max(doubt)
        };
        Novelty {
            distance,
            doubt,
            score,
            known: score <= 1.0,
        }
    }
}

impl Classification {
    /// Probability of the chosen cluster.
    pub fn confidence(&self) -> f32 {
        self.probabilities.get(self.cluster).copied().unwrap_or(0.0)
    }

    /// Probability of the chosen style within the chosen cluster (1 when
    /// the cluster has one style).
    pub fn style_confidence(&self) -> f32 {
        self.style_probabilities
            .get(self.style)
            .copied()
            .unwrap_or(0.0)
    }
}

/// A softmax over `logits` (at most `M` of them) and its first argmax.
fn softmax_of<const M: usize>(logits: &[f32]) -> (Vec<f32, M>, usize) {
    let mut probabilities: Vec<f32, M> = Vec::new();
    for &v in logits.iter().take(M) {
        let _ = probabilities.push(v);
    }
    softmax(&mut probabilities);
    let best = argmax(&probabilities);
    (probabilities, best)
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

    /// Number of experts K (the clusters of a two-level model).
    pub fn experts(&self) -> usize {
        self.header().experts as usize
    }

    /// Number of styles of cluster `cluster`: 1 for every cluster of a flat
    /// model, 0 for a cluster that does not exist.
    ///
    /// ```
    /// let bytes = engine::testing::tiny_model_bytes();
    /// let model = engine::Model::from_bytes(&bytes)?;
    /// assert_eq!((model.styles(0), model.styles(3)), (1, 0));
    /// # Ok::<(), engine::Error>(())
    /// ```
    pub fn styles(&self, cluster: usize) -> usize {
        self.repr.styles(cluster)
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

    /// Expert `k`'s decoder (of a two-level model, its style 0's).
    pub fn decoder(&self, k: usize) -> Result<Network<'a>, Error> {
        self.style_decoder(k, 0)
    }

    /// Cluster `cluster`'s decoder of style `style`.
    pub fn style_decoder(&self, cluster: usize, style: usize) -> Result<Network<'a>, Error> {
        if cluster >= self.experts() {
            return Err(Error::NoSuchExpert {
                expert: cluster,
                experts: self.experts(),
            });
        }
        self.repr
            .decoder_of(cluster, style)
            .ok_or(Error::NoSuchStyle {
                cluster,
                style,
                styles: self.styles(cluster),
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
        self.verdict(ws, Input::Pixels(image))
    }

    /// Classifies an image given as intensities in `[0, 1]`.
    ///
    /// Inputs are sanitized first, so any `f32` is accepted: NaN becomes 0,
    /// values are clamped to `[0, 1]` (so ±∞ become 1 and 0). Integer
    /// models read pixels, so they classify [`to_pixels`](crate::to_pixels)
    /// of the image (converted on the stack: images of more than 1,024
    /// pixels get [`Error::Capacity`]).
    pub fn classify_f32<const N: usize>(
        &self,
        ws: &mut Workspace<N>,
        image: &[f32],
    ) -> Result<Classification, Error> {
        self.check_workspace::<N>(self.workspace_len())?;
        self.check_len(image.len(), self.pixels())?;
        self.verdict(ws, Input::Intensities(image))
    }

    /// Runs the gate on `input` and turns its logits into a verdict.
    fn verdict<const N: usize>(
        &self,
        ws: &mut Workspace<N>,
        input: Input<'_>,
    ) -> Result<Classification, Error> {
        let mut logits = [0.0f32; MAX_EXPERTS];
        // k <= MAX_EXPERTS was validated, so this never truncates.
        let logits = &mut logits[..self.experts().min(MAX_EXPERTS)];
        self.run(self.gate(), input, ws, Output::Logits(logits))?;
        let (probabilities, cluster) = softmax_of(logits);
        // Before a style gate overwrites the workspace: the novelty reads
        // the gate's last hidden layer where the gate's pass left it.
        let novelty = self.repr.novelty().and_then(|section| {
            let distance = forward::novelty_distance(self.gate(), ws, section, cluster)?;
            let doubt = 1.0 - probabilities.get(cluster).copied().unwrap_or(0.0);
            Some(Novelty::new(distance, doubt, section.doubt_threshold))
        });
        // The chosen cluster's style gate on the same input, if it has one.
        // A cluster of one style (every cluster of a flat model) answers
        // style 0 with probability 1, the bits a softmax of one logit gives,
        // without a second network, an exponential or the style logits on
        // the flat path's stack.
        let (style_probabilities, style) = match self.repr.style_gate(cluster) {
            Some(gate) => self.style_verdict(gate, cluster, ws, input)?,
            None => {
                let mut one = Vec::new();
                let _ = one.push(1.0);
                (one, 0)
            }
        };
        let label = self
            .header()
            .label_map
            .as_ref()
            .and_then(|m| m.get(cluster).copied());
        Ok(Classification {
            cluster,
            probabilities,
            label,
            style,
            style_probabilities,
            novelty,
        })
    }

    /// Runs `cluster`'s style `gate` on `input`: `p(s | cluster)` and its
    /// first argmax. Out of line, so that its logits stay off the frame of a
    /// flat model's classification.
    #[inline(never)]
    fn style_verdict<const N: usize>(
        &self,
        gate: Network<'_>,
        cluster: usize,
        ws: &mut Workspace<N>,
        input: Input<'_>,
    ) -> Result<(Vec<f32, MAX_STYLES>, usize), Error> {
        let mut logits = [0.0f32; MAX_STYLES];
        // S <= MAX_STYLES was validated, so this never truncates.
        let logits = &mut logits[..self.styles(cluster).min(MAX_STYLES)];
        self.run(gate, input, ws, Output::Logits(logits))?;
        Ok(softmax_of(logits))
    }

    /// Runs one of this model's networks: the single place that hands
    /// inference to the forward passes of the model's element type.
    fn run<'w, const N: usize>(
        &self,
        net: Network<'_>,
        input: Input<'_>,
        ws: &'w mut Workspace<N>,
        output: Output<'_>,
    ) -> Result<&'w [f32], Error> {
        forward::run(self.element_type(), net, input, ws, output)
    }

    /// The decoders' input drawn from `seed`.
    fn seed(&self, seed: u64) -> Input<'static> {
        Input::Seed {
            seed,
            len: self.latent(),
        }
    }

    fn check_len(&self, found: usize, expected: usize) -> Result<(), Error> {
        if found != expected {
            return Err(Error::InputLength { expected, found });
        }
        Ok(())
    }

    /// Decodes latent vector `z` with expert `k`'s decoder, returning the
    /// `pixels()` output intensities (Bernoulli probabilities or Gaussian means).
    /// Non-finite latent values are replaced by 0.
    ///
    /// Of a two-level model, decodes with the cluster's style 0
    /// ([`decode_style`](Self::decode_style) takes a style).
    pub fn decode<'w, const N: usize>(
        &self,
        ws: &'w mut Workspace<N>,
        expert: usize,
        z: &[f32],
    ) -> Result<&'w [f32], Error> {
        self.decode_style(ws, expert, 0, z)
    }

    /// [`decode`](Self::decode) with cluster `cluster`'s decoder of style
    /// `style`.
    pub fn decode_style<'w, const N: usize>(
        &self,
        ws: &'w mut Workspace<N>,
        cluster: usize,
        style: usize,
        z: &[f32],
    ) -> Result<&'w [f32], Error> {
        self.decoded(ws, cluster, style, Input::Latent(z))
    }

    /// Runs cluster `cluster`'s decoder of style `style` on `input` (a
    /// latent vector, checked for its length, or a seed) into `f32` values.
    fn decoded<'w, const N: usize>(
        &self,
        ws: &'w mut Workspace<N>,
        cluster: usize,
        style: usize,
        input: Input<'_>,
    ) -> Result<&'w [f32], Error> {
        self.check_workspace::<N>(self.workspace_len().max(self.pixels()))?;
        let decoder = self.style_decoder(cluster, style)?;
        if let Input::Latent(z) = input {
            self.check_len(z.len(), self.latent())?;
        }
        self.run(decoder, input, ws, Output::Values)
    }

    /// Draws a latent vector from N(0, I) with a [`SplitMix64`] seeded by
    /// `seed` and decodes it with expert `k`: the same seed gives the same
    /// image, bit for bit, on every target. (Integer models draw the same
    /// values, a pair at a time, and quantize them to their decoder's
    /// input codes.)
    ///
    /// Of a two-level model, generates with the cluster's style 0
    /// ([`generate_style`](Self::generate_style) takes a style).
    ///
    /// [`SplitMix64`]: crate::rng::SplitMix64
    pub fn generate<'w, const N: usize>(
        &self,
        ws: &'w mut Workspace<N>,
        expert: usize,
        seed: u64,
    ) -> Result<&'w [f32], Error> {
        self.generate_style(ws, expert, 0, seed)
    }

    /// [`generate`](Self::generate) with cluster `cluster`'s decoder of
    /// style `style`: the same seed draws the same latent vector for every
    /// cluster and style.
    pub fn generate_style<'w, const N: usize>(
        &self,
        ws: &'w mut Workspace<N>,
        cluster: usize,
        style: usize,
        seed: u64,
    ) -> Result<&'w [f32], Error> {
        self.decoded(ws, cluster, style, self.seed(seed))
    }

    /// Like [`generate`](Self::generate), but writes 8-bit pixels
    /// ([`to_pixels`](crate::to_pixels) of the intensities) to `out`
    /// (`pixels()` bytes), so an integer model needs no `f32` image buffer
    /// at all.
    pub fn generate_pixels<const N: usize>(
        &self,
        ws: &mut Workspace<N>,
        expert: usize,
        seed: u64,
        out: &mut [u8],
    ) -> Result<(), Error> {
        self.generate_pixels_style(ws, expert, 0, seed, out)
    }

    /// [`generate_pixels`](Self::generate_pixels) with cluster `cluster`'s
    /// decoder of style `style`.
    pub fn generate_pixels_style<const N: usize>(
        &self,
        ws: &mut Workspace<N>,
        cluster: usize,
        style: usize,
        seed: u64,
        out: &mut [u8],
    ) -> Result<(), Error> {
        self.check_workspace::<N>(self.workspace_len())?;
        let decoder = self.style_decoder(cluster, style)?;
        self.check_len(out.len(), self.pixels())?;
        self.run(decoder, self.seed(seed), ws, Output::Pixels(out))?;
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
        self.run(decoder, Input::Latent(z), ws, Output::Pixels(out))?;
        Ok(())
    }
}

/// What [`Model::workspace_len`] documents, for a parsed model.
fn needed_workspace(repr: &ModelRepr<'_>) -> usize {
    forward::workspace_need(
        repr.element_type(),
        repr.header().latent as usize,
        repr.networks()
            .map(|net| net.layers().map(|l| LayerWidths::of(&l))),
    )
}
