//! kVAE's configuration as `trainer fit --method kvae` runs it (on MNIST
//! by default, on any image set's size)
//! (`config.json`), and its defaults.

use serde::{Deserialize, Serialize};

use super::{KVaeConfig, Observation, Pretrain, Scorer, VaeShape};
use crate::data::PIXELS;

/// A kVAE run on MNIST: the algorithm's configuration and the data limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KVaeFitConfig {
    /// The algorithm's configuration.
    #[serde(flatten)]
    pub kvae: KVaeConfig,
    /// Train on the first N training images only.
    pub limit: Option<usize>,
    /// The images' shape, from the training data (`kvae.vae.data` is its
    /// area); configurations from before other sizes were read are MNIST's.
    #[serde(default = "mnist_shape")]
    pub image: engine::ImageShape,
}

fn mnist_shape() -> engine::ImageShape {
    crate::data::IMAGE_SHAPE
}

impl Default for KVaeFitConfig {
    /// The authors' MNIST recipe, sized for two CPU cores: 15 VAEs 784-64-8,
    /// every VAE pretrained on all the data for 1,000 steps, then 20 rounds
    /// of 150 steps per VAE; discriminators 784-64-1 that persist and take
    /// one update of 32 real + 32 generated images per round; per-model
    /// normalised ratios; a VAE with no more than a batch of points stops
    /// training; a gate 784-64-15 distilled in 3 epochs; batch 32 per VAE,
    /// Adam 1e-3, seed 1.
    fn default() -> Self {
        KVaeFitConfig {
            kvae: KVaeConfig {
                k: 15,
                vae: VaeShape {
                    data: PIXELS,
                    latent: 8,
                    hidden: vec![64],
                    observation: Observation::Bernoulli,
                },
                pretrain: Pretrain::Full,
                pretrain_steps: 1000,
                rounds: 20,
                round_steps: 150,
                disc_hidden: vec![64],
                disc_steps: 1,
                disc_batch: 32,
                disc_noise: 0.0,
                scorer: Scorer::Discriminator,
                normalise: true,
                prior: false,
                min_share: 0.0,
                freeze_small: true,
                batch: 32,
                lr: 1e-3,
                gate_hidden: vec![64],
                gate_epochs: 3,
                seed: 1,
            },
            limit: None,
            image: mnist_shape(),
        }
    }
}

impl KVaeFitConfig {
    /// The loop's epochs: the pretraining, one per round, then the gate's.
    pub fn total_epochs(&self) -> usize {
        1 + self.kvae.rounds + self.kvae.gate_epochs
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
            c.pretrain_steps > 0,
            "--pretrain-steps must be at least 1 for --method kvae"
        );
        anyhow::ensure!(
            c.rounds == 0 || c.round_steps > 0,
            "--round-steps must be at least 1 when there are rounds"
        );
        anyhow::ensure!(c.disc_batch > 0, "--disc-batch must be positive");
        anyhow::ensure!(
            c.disc_noise >= 0.0 && c.disc_noise.is_finite(),
            "--disc-noise must be a non-negative number, got {}",
            c.disc_noise
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
            c.vae.data == self.image.pixels(),
            "the configuration's VAEs have {} inputs, its images {}x{}",
            c.vae.data,
            self.image.width,
            self.image.height
        );
        crate::export::check_engine_shape(
            self.image,
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

    fn image(&self) -> engine::ImageShape {
        self.image
    }

    fn set_image(&mut self, image: engine::ImageShape) {
        self.image = image;
        self.kvae.vae.data = image.pixels();
    }

    fn experts(&self) -> usize {
        self.kvae.k
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
            "kvae, {} VAEs {}-{:?}-{}, {} + {}x{} steps per VAE, {} gate epochs, seed {}",
            c.k,
            c.vae.data,
            c.vae.hidden,
            c.vae.latent,
            c.pretrain_steps,
            c.rounds,
            c.round_steps,
            c.gate_epochs,
            c.seed
        )
    }
}
