//! The mixture's networks: the gate ([`Gate`]) and the K VAE experts.
//!
//! The experts are stored batched, in two groups ([`Experts`]): every tensor
//! of an expert is one slice of its group's stacked tensor, so one matmul
//! runs all of a group's encoders' first layers and 3-D batched matmuls run
//! the rest. The groups let a training step run the two halves of the
//! experts on two cores, each on the whole batch ([`super::step`]); the
//! checkpoint names each expert's slice on its own
//! ([`super::checkpoint`]), so the grouping is not part of a run's files.

use candle_core::{Result, Tensor, D};
use candle_nn::{Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use engine::writer::DenseF32;

use crate::nn::layers::{dense, dense_act, Activation, BatchedDense, BatchedMlp, Gate};

/// The K experts' encoders: image → (mean, variance) of q(z|x), batched.
///
/// The first layer of all K encoders is one `pixels → K·hidden` matmul.
#[derive(Debug, Clone)]
pub struct Encoders {
    k: usize,
    hidden: usize,
    first: Linear,
    head: BatchedDense,
    act: Activation,
    latent: usize,
}

impl Encoders {
    /// K encoders `pixels → hidden → (latent mean, latent variance)`.
    pub fn new(
        k: usize,
        pixels: usize,
        hidden: usize,
        latent: usize,
        act: Activation,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Encoders {
            k,
            hidden,
            first: dense(pixels, k * hidden, vb.pp("fc0"))?,
            head: BatchedDense::new(k, hidden, 2 * latent, vb.pp("head"))?,
            act,
            latent,
        })
    }

    /// Mean and variance `[K, B, latent]` for images `[B, pixels]`.
    /// The variance is `1e-5 + exp(s)` as in the published method.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let h = hidden_per_expert(&self.first, x, self.k, self.hidden, self.act)?;
        let out = self.head.forward(&h)?;
        let mean = out.narrow(D::Minus1, 0, self.latent)?;
        let var = (out.narrow(D::Minus1, self.latent, self.latent)?.exp()? + 1e-5)?;
        Ok((mean, var))
    }
}

/// The hidden layers `[K, B, hidden]` of K networks whose first layers are
/// one `pixels → K·hidden` layer `first`, for images `x` `[B, pixels]`.
fn hidden_per_expert(
    first: &Linear,
    x: &Tensor,
    k: usize,
    hidden: usize,
    act: Activation,
) -> Result<Tensor> {
    let b = x.dim(0)?;
    dense_act(first, x, act, true)?
        .reshape((b, k, hidden))?
        .transpose(0, 1)?
        .contiguous()
}

/// Shapes of a mixture of VAE experts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arch {
    /// Number of experts K.
    pub experts: usize,
    /// Pixels per image.
    pub pixels: usize,
    /// Latent size.
    pub latent: usize,
    /// Gate hidden widths.
    pub gate_hidden: Vec<usize>,
    /// Encoder hidden width.
    pub encoder_hidden: usize,
    /// Decoder hidden widths.
    pub decoder_hidden: Vec<usize>,
    /// Hidden activation everywhere.
    pub act: Activation,
}

/// Some of the K experts, stored together: the encoders' first layers are
/// one matmul, the rest batched matmuls (see the module docs).
#[derive(Debug, Clone)]
pub struct Experts {
    /// Their encoders.
    pub encoders: Encoders,
    /// Their decoders.
    pub decoders: BatchedMlp,
}

impl Experts {
    /// `k` experts of `arch`'s shapes.
    fn new(arch: &Arch, k: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Experts {
            encoders: Encoders::new(
                k,
                arch.pixels,
                arch.encoder_hidden,
                arch.latent,
                arch.act,
                vb.pp("encoder"),
            )?,
            decoders: BatchedMlp::new(
                k,
                arch.latent,
                &arch.decoder_hidden,
                arch.pixels,
                arch.act,
                vb.pp("decoder"),
            )?,
        })
    }
}

/// The gate's `VarBuilder` prefix: its variables are `gate.…` (the
/// learning-rate schedule picks them out by it).
pub const GATE: &str = "gate";

/// The style gates' `VarBuilder` prefix (the two-level mixture's).
pub const STYLE: &str = "style";

/// The networks that route (the gate, the style gates): the schedule of
/// [`MixtureConfig::lr_at`](super::config::MixtureConfig::lr_at) is
/// theirs, the experts' may stay constant.
pub const ROUTING: [&str; 2] = [GATE, STYLE];

/// How many groups the experts are stored in: two (one per core of a
/// training step, see `crate::train`) when there are at least two. Fixed,
/// not the number of cores, so that a seed gives the same model anywhere.
pub const EXPERT_GROUPS: usize = 2;

/// How many groups `k` experts make: [`EXPERT_GROUPS`], or fewer when
/// there are fewer experts (never zero).
pub fn expert_groups(k: usize) -> usize {
    EXPERT_GROUPS.min(k).max(1)
}

/// The experts of group `g` of `k`: `(first, count)`. The last groups get
/// the extra expert when `k` does not divide evenly.
pub fn expert_group(k: usize, g: usize) -> (usize, usize) {
    let groups = expert_groups(k);
    let first = g * k / groups;
    (first, (g + 1) * k / groups - first)
}

/// The second level of a two-level mixture
/// ([`crate::methods::hierarchical`]): each of the gate's K experts is
/// itself a mixture of S style experts, picked by a style gate of its own
/// that reads the image: `pixels → hidden → S`, like the engine's
/// version-3 style gates (engine/FORMAT.md), so the trained networks are
/// exported as they are. The K first layers are one `pixels → K·hidden`
/// matmul and the K heads one batched matmul, as in [`Encoders`].
#[derive(Debug, Clone)]
pub struct StyleGates {
    /// Styles S of every digit expert.
    pub styles: usize,
    k: usize,
    hidden: usize,
    first: Linear,
    head: BatchedDense,
    act: Activation,
}

impl StyleGates {
    /// K style gates `pixels → hidden → styles`.
    pub fn new(
        k: usize,
        pixels: usize,
        hidden: usize,
        styles: usize,
        act: Activation,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(StyleGates {
            styles,
            k,
            hidden,
            first: dense(pixels, k * hidden, vb.pp("fc0"))?,
            head: BatchedDense::new(k, hidden, styles, vb.pp("head"))?,
            act,
        })
    }

    /// Style logits `[B, K, S]` for images `[B, pixels]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = hidden_per_expert(&self.first, x, self.k, self.hidden, self.act)?;
        self.head.forward(&h)?.transpose(0, 1)?.contiguous()
    }

    /// Digit expert `c`'s style gate for export: `pixels → hidden → S`
    /// logits.
    pub fn export(&self, c: usize) -> Result<Vec<DenseF32>> {
        let (_, pixels) = self.first.weight().dims2()?;
        let rows = |t: &Tensor| t.narrow(0, c * self.hidden, self.hidden);
        let weights = rows(self.first.weight())?.flatten_all()?.to_vec1::<f32>()?;
        let bias = match self.first.bias() {
            Some(b) => rows(b)?.to_vec1::<f32>()?,
            None => vec![0.0; self.hidden],
        };
        let first = DenseF32 {
            inputs: pixels,
            outputs: self.hidden,
            activation: self.act,
            weights,
            bias,
        };
        Ok(vec![
            first,
            self.head.layer(c, engine::Activation::Identity)?,
        ])
    }
}

/// The routing logits of a two-level mixture from its gate's logits `top`
/// `[B, K]` and its style gates' `style` `[B, K, S]`: `log p(c|x) +
/// log p(s|x,c)` at `c·S + s` (`[B, K·S]`), whose softmax is
/// `p(c|x)·p(s|x,c)`.
pub fn two_level_logits(top: &Tensor, style: &Tensor) -> Result<Tensor> {
    let (b, k, s) = style.dims3()?;
    let log_top = candle_nn::ops::log_softmax(top, D::Minus1)?.reshape((b, k, 1))?;
    let log_style = candle_nn::ops::log_softmax(style, D::Minus1)?;
    log_style.broadcast_add(&log_top)?.reshape((b, k * s))
}

/// The whole model: a gate and K VAE experts (encoders + decoders), the
/// experts in [`EXPERT_GROUPS`] groups; with [`StyleGates`], K·S experts
/// (expert `c·S + s` is style `s` of digit expert `c`).
#[derive(Debug, Clone)]
pub struct Networks {
    /// The manager.
    pub gate: Gate,
    /// The style gates of a two-level mixture (`None`: one level).
    pub styles: Option<StyleGates>,
    /// The experts, group by group ([`expert_group`] says which).
    pub groups: Vec<Experts>,
}

impl Networks {
    /// Builds (or, on a store that has them, fetches) every tensor:
    /// `gate.*`, `experts.<group>.encoder.*`, `experts.<group>.decoder.*`.
    pub fn new(arch: &Arch, vb: VarBuilder) -> Result<Self> {
        Self::with_styles(arch, 1, 0, vb)
    }

    /// [`Networks::new`] with `styles` style experts under each of the
    /// gate's experts (more than one: [`StyleGates`] of `style_hidden`
    /// hidden units, `style.*`, and `arch.experts × styles` VAEs).
    pub fn with_styles(
        arch: &Arch,
        styles: usize,
        style_hidden: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let k = arch.experts;
        let gate = Gate::new(arch.pixels, &arch.gate_hidden, k, arch.act, vb.pp(GATE))?;
        let styles = match styles {
            0 => candle_core::bail!("a digit expert has at least one style"),
            1 => None,
            s => Some(StyleGates::new(
                k,
                arch.pixels,
                style_hidden,
                s,
                arch.act,
                vb.pp(STYLE),
            )?),
        };
        let vaes = k * styles.as_ref().map_or(1, |h| h.styles);
        let groups = (0..expert_groups(vaes))
            .map(|g| Experts::new(arch, expert_group(vaes, g).1, vb.pp("experts").pp(g)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Networks {
            gate,
            styles,
            groups,
        })
    }

    /// Styles per digit expert (1 for a one-level mixture).
    pub fn style_count(&self) -> usize {
        self.styles.as_ref().map_or(1, |h| h.styles)
    }

    /// Number of VAE experts (K, or K·S with styles).
    pub fn vaes(&self) -> usize {
        self.groups.iter().map(|g| g.decoders.count()).sum()
    }

    /// Routing logits `[B, VAEs]` for gate inputs `[B, pixels]`: the gate's
    /// logits, or with styles `log p(c|x) + log p(s|x,c)` at `c·S + s`,
    /// whose softmax is the two-level routing `p(c|x)·p(s|x,c)` (the logits
    /// are already normalized: their softmax is their exponential).
    pub fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let Some(style) = &self.styles else {
            return self.gate.forward(x);
        };
        two_level_logits(&self.gate.forward(x)?, &style.forward(x)?)
    }

    /// Pixel logits `[K, B, pixels]` of every expert's decoder for latent
    /// codes `z` `[K, B, latent]`.
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let mut first = 0;
        let mut parts = Vec::with_capacity(self.groups.len());
        for group in &self.groups {
            let count = group.decoders.count();
            parts.push(group.decoders.forward(&z.narrow(0, first, count)?)?);
            first += count;
        }
        Tensor::cat(&parts, 0)
    }

    /// Expert `e`'s decoder for export, ending in a sigmoid.
    pub fn export_decoder(&self, e: usize) -> Result<Vec<DenseF32>> {
        let mut first = 0;
        for group in &self.groups {
            let count = group.decoders.count();
            if e < first + count {
                return group.decoders.export(e - first);
            }
            first += count;
        }
        candle_core::bail!("no expert {e} (the model has {first})")
    }
}
