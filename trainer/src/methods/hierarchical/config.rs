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

/// Everything that defines a two-level run (saved as `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HierarchicalConfig {
    /// The one-level mixture's settings: the gate (`arch.experts` digit
    /// experts), each style VAE's shapes, the schedule, the partition.
    pub mixture: MixtureConfig,
    /// Style experts S under each digit expert.
    pub styles: usize,
}

impl Default for HierarchicalConfig {
    fn default() -> Self {
        let mut mixture = MixtureConfig::preset(Preset::Default);
        mixture.arch.encoder_hidden = STYLE_ENCODER_HIDDEN;
        HierarchicalConfig {
            mixture,
            styles: DEFAULT_STYLES,
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
            anyhow::bail!(
                "--styles must be between 1 and {MAX_STYLES}, got {}",
                self.styles
            );
        }
        if self.mixture.arch.gate_hidden.is_empty() {
            anyhow::bail!(
                "--gate-hidden: the style gates read the gate's hidden layer, give it one"
            );
        }
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
            "hierarchical mixture, {} digit experts x {} styles, seed {}",
            self.mixture.arch.experts, self.styles, self.mixture.seed
        )
    }
}
