//! kVAE's configuration as `trainer fit --method kvae` runs it on MNIST
//! (`config.json`), and its defaults.

use serde::{Deserialize, Serialize};

use super::{KVaeConfig, Observation, Scorer, VaeShape};
use crate::data::PIXELS;

/// A kVAE run on MNIST: the algorithm's configuration and the data limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KVaeFitConfig {
    /// The algorithm's configuration.
    #[serde(flatten)]
    pub kvae: KVaeConfig,
    /// Train on the first N training images only.
    pub limit: Option<usize>,
}

impl Default for KVaeFitConfig {
    /// 15 VAEs 784-32-8 (one hidden layer each side), 3 pretraining
    /// epochs on a random split, 3 rounds of 1 epoch, discriminators
    /// 784-64-1 trained 150 steps a round, a gate 784-64-15 distilled in 3
    /// epochs; batch 64 per VAE, Adam 1e-3, seed 1.
    fn default() -> Self {
        KVaeFitConfig {
            kvae: KVaeConfig {
                k: 15,
                vae: VaeShape {
                    data: PIXELS,
                    latent: 8,
                    hidden: vec![32],
                    observation: Observation::Bernoulli,
                },
                pretrain_epochs: 3,
                rounds: 3,
                epochs_per_round: 1,
                disc_hidden: vec![64],
                disc_steps: 150,
                scorer: Scorer::Discriminator,
                prior: true,
                min_share: 0.2,
                batch: 64,
                lr: 1e-3,
                gate_hidden: vec![64],
                gate_epochs: 3,
                seed: 1,
            },
            limit: None,
        }
    }
}

impl KVaeFitConfig {
    /// All epochs: pretraining, the rounds' VAE epochs, gate distillation.
    pub fn total_epochs(&self) -> usize {
        let c = &self.kvae;
        c.pretrain_epochs + c.rounds * c.epochs_per_round + c.gate_epochs
    }
}

impl crate::train::MethodConfig for KVaeFitConfig {
    fn validate(&self) -> anyhow::Result<()> {
        let c = &self.kvae;
        anyhow::ensure!(
            (0.0..1.0).contains(&c.min_share),
            "--min-share must be in [0, 1), got {}",
            c.min_share
        );
        anyhow::ensure!(
            c.gate_epochs > 0,
            "--gate-epochs must be at least 1: the exported model needs a gate"
        );
        anyhow::ensure!(
            c.pretrain_epochs > 0,
            "--pretrain-epochs must be at least 1 for --method kvae (the VAEs start on a random split)"
        );
        anyhow::ensure!(
            c.rounds == 0 || c.epochs_per_round > 0,
            "--round-epochs must be at least 1 when there are rounds"
        );
        anyhow::ensure!(
            c.vae.latent > 0 && !c.vae.hidden.contains(&0) && !c.gate_hidden.contains(&0),
            "layer widths and --latent must be positive"
        );
        anyhow::ensure!(c.batch > 0, "--batch must be positive");
        anyhow::ensure!(
            c.lr > 0.0 && c.lr.is_finite(),
            "--lr must be a positive number, got {}",
            c.lr
        );
        anyhow::ensure!(
            c.vae.data == crate::data::PIXELS,
            "kVAE on MNIST needs VAEs of {} inputs, the configuration has {}",
            crate::data::PIXELS,
            c.vae.data
        );
        crate::export::check_engine_shape(
            crate::data::IMAGE_SHAPE,
            c.vae.latent,
            c.k,
            &c.gate_hidden,
            &c.vae.hidden,
            crate::export::ShapeFlags {
                experts: "--experts",
                latent: "--latent",
                gate: "--gate-hidden",
                decoder: "--hidden",
            },
        )?;
        if let Some(0) = self.limit {
            anyhow::bail!("--limit must be positive");
        }
        Ok(())
    }

    fn limit(&self) -> Option<usize> {
        self.limit
    }

    fn seed(&self) -> u64 {
        self.kvae.seed
    }

    fn run_name(&self) -> String {
        "kvae".into()
    }

    fn describe(&self) -> String {
        let c = &self.kvae;
        format!(
            "kvae, {} VAEs {}-{:?}-{}, {} + {}x{} + {} epochs, seed {}",
            c.k,
            c.vae.data,
            c.vae.hidden,
            c.vae.latent,
            c.pretrain_epochs,
            c.rounds,
            c.epochs_per_round,
            c.gate_epochs,
            c.seed
        )
    }
}
