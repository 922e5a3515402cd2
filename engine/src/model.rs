//! A validated model and the two things it does: classify and generate.

use heapless::Vec;

use crate::format::{Header, Mlp, ModelRepr, MAX_EXPERTS};
use crate::kernels::{activate_slice, argmax, dense_f16, softmax};
use crate::rng::SplitMix64;
use crate::{Error, Workspace};

/// A parsed, validated model borrowing its weights from the file's bytes.
///
/// Construction checks everything once ([`Model::from_bytes`]); inference then
/// cannot fail on the model's account, only on the caller's arguments.
#[derive(Debug, Clone)]
pub struct Model<'a> {
    repr: ModelRepr<'a>,
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

impl<'a> Model<'a> {
    /// Parses and validates a complete model file (frame, checksum, body,
    /// shapes). Weights are not copied: the model borrows `bytes`.
    ///
    /// ```
    /// let bytes = engine::testing::tiny_model_bytes();
    /// let model = engine::Model::from_bytes(&bytes)?;
    /// assert_eq!(model.experts(), 3);
    /// assert!(engine::Model::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    /// # Ok::<(), engine::Error>(())
    /// ```
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        Ok(Model {
            repr: ModelRepr::parse(bytes)?,
        })
    }

    /// Wraps an already decoded description after validating it.
    pub fn from_repr(repr: ModelRepr<'a>) -> Result<Self, Error> {
        repr.validate()?;
        Ok(Model { repr })
    }

    /// The decoded description.
    pub fn repr(&self) -> &ModelRepr<'a> {
        &self.repr
    }

    /// The header (method, shapes, label map, ...).
    pub fn header(&self) -> &Header<'a> {
        &self.repr.header
    }

    /// Number of experts K.
    pub fn experts(&self) -> usize {
        self.repr.header.experts as usize
    }

    /// Latent size of the decoders.
    pub fn latent(&self) -> usize {
        self.repr.header.latent as usize
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.repr.header.image.pixels()
    }

    /// The gate network.
    pub fn gate(&self) -> &Mlp<'a> {
        &self.repr.gate
    }

    /// Expert `k`'s decoder.
    pub fn decoder(&self, k: usize) -> Result<&Mlp<'a>, Error> {
        self.repr.decoders.get(k).ok_or(Error::NoSuchExpert {
            expert: k,
            experts: self.experts(),
        })
    }

    /// The `N` a [`Workspace<N>`] needs for this model.
    pub fn workspace_len(&self) -> usize {
        self.repr.max_width()
    }

    /// RAM needed at run time besides the file itself: the workspace, plus
    /// this struct and a [`Classification`] (the stack depth of the calls is
    /// measured by the firmware, see firmware-example/README.md).
    pub fn ram_bytes(&self) -> usize {
        2 * self.workspace_len() * 4
            + core::mem::size_of::<Self>()
            + core::mem::size_of::<Classification>()
    }

    fn check_workspace<const N: usize>(&self) -> Result<(), Error> {
        let needed = self.workspace_len();
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
        self.check_workspace::<N>()?;
        self.check_len(image.len())?;
        for (dst, &p) in ws.a.iter_mut().zip(image) {
            *dst = p as f32 / 255.0;
        }
        self.classify_loaded(ws)
    }

    /// Classifies an image given as intensities in `[0, 1]`.
    ///
    /// Inputs are sanitized first, so any `f32` is accepted: NaN becomes 0,
    /// values are clamped to `[0, 1]` (so ±∞ become 1 and 0).
    pub fn classify_f32<const N: usize>(
        &self,
        ws: &mut Workspace<N>,
        image: &[f32],
    ) -> Result<Classification, Error> {
        self.check_workspace::<N>()?;
        self.check_len(image.len())?;
        for (dst, &p) in ws.a.iter_mut().zip(image) {
            *dst = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        }
        self.classify_loaded(ws)
    }

    fn check_len(&self, found: usize) -> Result<(), Error> {
        if found != self.pixels() {
            return Err(Error::InputLength {
                expected: self.pixels(),
                found,
            });
        }
        Ok(())
    }

    fn classify_loaded<const N: usize>(
        &self,
        ws: &mut Workspace<N>,
    ) -> Result<Classification, Error> {
        let k = self.experts();
        let logits = forward(&self.repr.gate, ws);
        let mut probabilities: Vec<f32, MAX_EXPERTS> = Vec::new();
        // k <= MAX_EXPERTS was validated, so this never truncates.
        for &v in logits.iter().take(k) {
            let _ = probabilities.push(v);
        }
        softmax(&mut probabilities);
        let cluster = argmax(&probabilities);
        let label = self
            .repr
            .header
            .label_map
            .as_ref()
            .and_then(|m| m.get(cluster).copied());
        Ok(Classification {
            cluster,
            probabilities,
            label,
        })
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
        self.check_workspace::<N>()?;
        let decoder = self.decoder(expert)?;
        if z.len() != self.latent() {
            return Err(Error::InputLength {
                expected: self.latent(),
                found: z.len(),
            });
        }
        for (dst, &v) in ws.a.iter_mut().zip(z) {
            *dst = if v.is_finite() { v } else { 0.0 };
        }
        Ok(forward(decoder, ws))
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
        self.check_workspace::<N>()?;
        let decoder = self.decoder(expert)?;
        let latent = self.latent();
        SplitMix64::new(seed).fill_normal(&mut ws.a[..latent]);
        Ok(forward(decoder, ws))
    }
}

/// Runs `mlp` on the input already in `ws.a`; returns its output, which
/// lies in `ws.a` or `ws.b` depending on the layer count. Widths were
/// validated against `N`, so every slice below is in bounds.
fn forward<'w, const N: usize>(mlp: &Mlp<'_>, ws: &'w mut Workspace<N>) -> &'w [f32] {
    let mut in_a = true;
    let mut width = mlp.inputs().min(N);
    for layer in &mlp.layers {
        let (src, dst) = if in_a {
            (&ws.a, &mut ws.b)
        } else {
            (&ws.b, &mut ws.a)
        };
        let inputs = &src[..width.min(layer.inputs as usize)];
        let outputs = (layer.outputs as usize).min(N);
        let out = &mut dst[..outputs];
        dense_f16(layer.weights, layer.bias, inputs, out);
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

/// Converts intensities in `[0, 1]` to 8-bit pixels (rounded; NaN becomes 0).
///
/// ```
/// let mut px = [0u8; 3];
/// engine::to_pixels(&[0.0, 0.5, 2.0], &mut px);
/// assert_eq!(px, [0, 128, 255]);
/// ```
pub fn to_pixels(values: &[f32], out: &mut [u8]) {
    for (o, &v) in out.iter_mut().zip(values) {
        let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
        *o = (v * 255.0 + 0.5) as u8;
    }
}
