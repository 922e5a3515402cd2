//! The two-level mixture's configuration (`config.json`): the one-level
//! mixture's, whose `arch.experts` are the digit experts, and the styles
//! of each.

use serde::{Deserialize, Serialize};

use crate::methods::mixture::{MixtureConfig, Preset};

/// Styles per digit expert unless `--styles` says otherwise: two, the
/// design document's example (a 7 with or without a stroke through it) and
/// the least split that can model it, at twice the flat model's decoders
/// (20 VAEs for 10 digit experts, about 0.7 MiB of int8 weights, within
/// the 1.5 MiB budget) and about the flat model's training time (each VAE's
/// encoder half as wide, [`STYLE_ENCODER_HIDDEN`]).
pub const DEFAULT_STYLES: usize = 2;

/// Encoder hidden width of the style VAEs by default: half the flat
/// default's 128, as there are twice as many encoders (encoders are not
/// exported; this keeps a step's cost near the flat model's).
pub const STYLE_ENCODER_HIDDEN: usize = 64;

/// Most styles per digit expert.
pub const MAX_STYLES: usize = 8;

/// Hidden units of each style gate by default (`pixels → 16 → S`): a
/// style gate runs beside the gate (`pixels → 256 → K`) on every
/// classification, so its cost is 16/256 of the gate's largest layer, about
/// 6% more multiply-adds per classification.
pub const STYLE_GATE_HIDDEN: usize = 16;

/// Everything that defines a two-level run (saved as `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HierarchicalConfig {
    /// The one-level mixture's settings: the gate (`arch.experts` digit
    /// experts), each style VAE's shapes, the schedule, the partition.
    pub mixture: MixtureConfig,
    /// Style experts S trained under each digit expert (with
    /// `auto_styles`, the most a digit expert keeps).
    pub styles: usize,
    /// Hidden units of each style gate (`pixels → style_hidden → S`).
    #[serde(default = "default_style_hidden")]
    pub style_hidden: usize,
    /// Whether each digit expert keeps only the styles that pay on held-out
    /// images (`--styles auto`, [`super::prune`]) rather than all `styles`.
    #[serde(default)]
    pub auto_styles: bool,
}

fn default_style_hidden() -> usize {
    STYLE_GATE_HIDDEN
}

impl Default for HierarchicalConfig {
    fn default() -> Self {
        let mut mixture = MixtureConfig::preset(Preset::Default);
        mixture.arch.encoder_hidden = STYLE_ENCODER_HIDDEN;
        HierarchicalConfig {
            mixture,
            styles: DEFAULT_STYLES,
            style_hidden: STYLE_GATE_HIDDEN,
            auto_styles: true,
        }
    }
}

impl HierarchicalConfig {
    /// VAEs in all: digit experts × styles.
    pub fn vaes(&self) -> usize {
        self.mixture.arch.experts * self.styles
    }
}

impl crate::train::MethodConfig for HierarchicalConfig {
    fn validate(&self) -> anyhow::Result<()> {
        self.mixture.validate()?;
        if self.styles == 0 || self.styles > MAX_STYLES {
            let flag = if self.auto_styles {
                "--max-styles"
            } else {
                "--styles"
            };
            anyhow::bail!(
                "{flag} must be between 1 and {MAX_STYLES}, got {}",
                self.styles
            );
        }
        if self.style_hidden == 0 {
            anyhow::bail!("--style-hidden must be at least 1");
        }
        // A style gate is a gate of S outputs with one hidden layer.
        crate::export::check_engine_shape(
            self.mixture.image,
            self.mixture.arch.latent,
            self.styles,
            &[self.style_hidden],
            &self.mixture.arch.decoder_hidden,
            crate::export::ShapeFlags {
                experts: "--styles",
                latent: "--latent",
                gate: "--style-hidden",
                decoder: "--decoder-hidden",
            },
        )?;
        if !self.mixture.needs_partition() || self.mixture.pretrain_epochs() == 0 {
            anyhow::bail!(
                "--pretrain-epochs must be positive: the styles start from the label-free partition"
            );
        }
        Ok(())
    }

    fn limit(&self) -> Option<usize> {
        self.mixture.limit
    }

    fn image(&self) -> engine::ImageShape {
        self.mixture.image
    }

    fn set_image(&mut self, image: engine::ImageShape) {
        crate::train::MethodConfig::set_image(&mut self.mixture, image);
    }

    fn experts(&self) -> usize {
        self.mixture.arch.experts
    }

    fn seed(&self) -> u64 {
        self.mixture.seed
    }

    fn run_name(&self) -> String {
        "hierarchical".into()
    }

    fn describe(&self) -> String {
        format!(
            "hierarchical mixture, {} digit experts x {} styles{}, seed {}",
            self.mixture.arch.experts,
            self.styles,
            if self.auto_styles {
                " (each keeps those that pay on held-out images)"
            } else {
                ""
            },
            self.mixture.seed
        )
    }
}
