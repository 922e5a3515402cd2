//! The mixture's configuration (`config.json`) and its two presets.

use serde::{Deserialize, Serialize};

use super::nets::Arch;
use crate::init::Clustering;
use crate::nn::layers::Activation;
use crate::nn::likelihood::Likelihood;

/// A named starting configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// The published method, as in the product's first design document.
    Blog,
    /// The tuned configuration: partition-based initialization, pretraining,
    /// Bernoulli experts, shift augmentation on the gate; ≤ 1 MiB export.
    Default,
    /// The default's model trained longer, for the best clusters within 15
    /// minutes on MNIST: the autoencoder's 20 passes uncapped, 20
    /// pretraining and 80 mixture epochs (`docs/measurements/clustering.md`).
    Long,
}

/// How the experts and gate start.
/// What an epoch trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Each expert on its part of the label-free partition, the gate to
    /// predict the part.
    Pretrain,
    /// The mixture-of-experts objective with the balancing term.
    Mixture,
    /// As `Pretrain`, on the gate's own argmax of the clean images.
    SelfTrain,
}

impl Phase {
    /// The phase's name in logs and `history.jsonl`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Pretrain => "pretrain",
            Phase::Mixture => "mixture",
            Phase::SelfTrain => "self-train",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// Random weights, straight into the mixture objective.
    Random,
    /// A label-free partition of the training set (autoencoder codes,
    /// clustered), then `pretrain_epochs` of gate cross-entropy + each expert
    /// on its cluster, then the mixture objective.
    Partition {
        /// Epochs of autoencoder training inside the partition step.
        ae_epochs: usize,
        /// Most autoencoder Adam steps: fewer passes than `ae_epochs` on a
        /// large set ([`crate::init::PartitionConfig::ae_passes`]; 0 = no
        /// cap, as configurations written before this field existed).
        #[serde(default)]
        ae_max_steps: usize,
        /// Most points used to build the clustering graph.
        max_points: usize,
        /// Epochs of pretraining on the partition.
        pretrain_epochs: usize,
        /// How the autoencoder codes are clustered (configurations written
        /// before this field existed used spectral clustering).
        #[serde(default)]
        cluster: Clustering,
        /// Whether the autoencoder of the partition sees the images
        /// straightened ([`crate::init::deskew`]); configurations written
        /// before this field existed did not.
        #[serde(default)]
        deskew: bool,
        /// Whether a partition try whose smallest part is under a quarter
        /// of an even share is mended ([`crate::init::splinter`]);
        /// configurations written before this field existed did not.
        #[serde(default)]
        mend_splinters: bool,
    },
}

/// Everything that defines a mixture run (saved as `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixtureConfig {
    /// The preset the run started from.
    pub preset: Preset,
    /// Network shapes.
    pub arch: Arch,
    /// Pixel likelihood of the experts.
    pub likelihood: Likelihood,
    /// Initialization.
    pub start: Start,
    /// Epochs of the mixture objective.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Adam learning rate (the first step's, under `lr_decay`).
    pub lr: f64,
    /// Whether the learning rate falls over the run: half a cosine from
    /// `lr` at the first step to 0 after the last, over all epochs
    /// ([`MixtureConfig::lr_at`]). Off in configurations from before this
    /// field.
    #[serde(default)]
    pub lr_decay: bool,
    /// Whether `lr_decay` lowers the experts' learning rate too, or only
    /// the gate's (and the two-level mixture's style gates'). The falling
    /// rate steadies the gate's clusters, but the experts' likelihood pays
    /// for it (MNIST seed 1: test log-likelihood −104.79 nats/image with a
    /// constant rate, −109.34 with all of it falling). On in configurations
    /// from before this field (they lowered every rate).
    #[serde(default = "decayed_before")]
    pub lr_decay_experts: bool,
    /// Weight of the importance-variance balancing term.
    pub balance: f64,
    /// Random seed (weights, noise, shuffling, augmentation, partition).
    pub seed: u64,
    /// Use only the first N training images.
    pub limit: Option<usize>,
    /// Random shift of the gate's input, in pixels (0 = none).
    pub shift: usize,
    /// Whether `shift` follows the images' size when the data is read
    /// ([`shift_for`]): the default preset's, off once `--shift` is given.
    /// A shift of 2 pixels is mild on 28×28 digits but a quarter of an 8×8
    /// image (measured on scikit-learn's 8×8 digits: test ACC 0.786 with
    /// 2, 0.819 with 1, 0.858 with 0), so the preset scales it with the side.
    #[serde(default)]
    pub shift_from_size: bool,
    /// Largest random rotation of the gate's input either way, degrees
    /// (0 = none; with `scale`, the input is resampled bilinearly:
    /// [`crate::data::augment`]). 0 in configurations from before this
    /// field.
    #[serde(default)]
    pub rotate: f64,
    /// Largest random change of the gate's input's size either way, as a
    /// fraction (0.1: 90%–110%; 0 = none). 0 in configurations from before
    /// this field.
    #[serde(default)]
    pub scale: f64,
    /// Fewest optimizer steps in an epoch: a set smaller than
    /// `min_epoch_steps × batch` images is passed over several times per
    /// epoch (each pass freshly shuffled), so that a schedule of epochs
    /// still trains a small set (1,797 images are 18 steps a pass at batch
    /// 100; one pass an epoch left the gate untrained). 0: an epoch is one
    /// pass (configurations from before this field).
    #[serde(default)]
    pub min_epoch_steps: usize,
    /// Self-training epochs after the mixture epochs: each relabels the
    /// training images with the gate's own argmax on the clean images, then
    /// trains like a pretraining epoch on those labels (each expert on its
    /// images, the gate by cross-entropy on its shifted input). 0: none
    /// (configurations from before this field).
    #[serde(default)]
    pub self_train_epochs: usize,
    /// The images' shape, from the training data (`arch.pixels` is its
    /// area); configurations from before other sizes were read are MNIST's.
    #[serde(default = "mnist_shape")]
    pub image: engine::ImageShape,
}

/// `lr_decay_experts` of configurations from before the field: under
/// `lr_decay` they lowered every rate.
fn decayed_before() -> bool {
    true
}

fn mnist_shape() -> engine::ImageShape {
    crate::data::IMAGE_SHAPE
}

/// The default preset's gate shift for images of this shape: 1/14 of the
/// shorter side in whole pixels, rounded down — 2 on MNIST's 28×28 (the
/// measured default), 1 on 16×16, none on 8×8.
pub fn shift_for(image: engine::ImageShape) -> usize {
    usize::from(image.width.min(image.height)) * 2 / 28
}

impl MixtureConfig {
    /// The gate's input augmentation.
    pub fn distortion(&self) -> crate::data::augment::Distortion {
        crate::data::augment::Distortion {
            shift: self.shift,
            rotate_deg: self.rotate,
            scale: self.scale,
        }
    }

    /// The preset's configuration.
    pub fn preset(p: Preset) -> Self {
        match p {
            Preset::Blog => MixtureConfig {
                preset: p,
                arch: Arch {
                    experts: 10,
                    pixels: 784,
                    latent: 10,
                    gate_hidden: vec![128],
                    encoder_hidden: 128,
                    decoder_hidden: vec![128],
                    act: Activation::Sigmoid,
                },
                likelihood: Likelihood::Gaussian { std: 0.5 },
                start: Start::Random,
                epochs: 30,
                batch: 100,
                lr: 1e-3,
                lr_decay: false,
                lr_decay_experts: true,
                balance: 0.1,
                seed: 0,
                limit: None,
                shift: 0,
                shift_from_size: false,
                rotate: 0.0,
                scale: 0.0,
                // The published method's epochs are passes over the data.
                min_epoch_steps: 0,
                self_train_epochs: 0,
                image: mnist_shape(),
            },
            Preset::Default => MixtureConfig {
                preset: p,
                arch: Arch {
                    experts: 10,
                    pixels: 784,
                    latent: 10,
                    gate_hidden: vec![256],
                    encoder_hidden: 128,
                    decoder_hidden: vec![32],
                    act: Activation::Relu,
                },
                likelihood: Likelihood::Bernoulli,
                start: Start::Partition {
                    ae_epochs: 20,
                    // MNIST's 20 passes cut to 10 (938 steps each): the
                    // 55 s saved pay for 8 more mixture epochs, +0.24 test
                    // ACC on seed 1 at the same wall time; sets of up to
                    // 32,000 images keep all 20 (clustering.md).
                    ae_max_steps: 10_000,
                    max_points: 20_000,
                    // The gate learns the partition for 10 epochs, not 3:
                    // with the falling learning rate, +0.6 test ACC on MNIST
                    // seed 1 from the deskewed start (clustering.md).
                    pretrain_epochs: 10,
                    // A Gaussian mixture on the UMAP embedding, not k-means:
                    // +0.5 test ACC on MNIST seeds 0/1/2 (clustering.md).
                    cluster: Clustering::UmapGmm,
                    // Straightened handwriting clusters better: partition
                    // ACC 0.9609 -> 0.9754 on MNIST seed 1 (init/README.md).
                    deskew: true,
                    // 8x8 digits: 10 of 12 seeds' partitions 0.84-0.87 -> 0.927-0.938
                    // (init/README.md); MNIST (K = 10) never takes the path.
                    mend_splinters: true,
                },
                // 16, not 8: MNIST seed 1 0.9777 -> 0.9801 with the
                // autoencoder's cap above (clustering.md).
                epochs: 16,
                batch: 100,
                // Twice Adam's usual 1e-3: MNIST seeds 0/1/2 0.9806 / 0.9801
                // / 0.9802 -> 0.9820 / 0.9820 / 0.9826, and better on each
                // of the five other side-by-side sets (clustering.md).
                lr: 2e-3,
                // Without it the mixture epochs' test ACC swings by up to
                // half a point from one epoch to the next (clustering.md).
                lr_decay: true,
                // The gate's rate falls, the experts' stays: MNIST seed 1
                // (clustering.md).
                lr_decay_experts: false,
                balance: 0.1,
                // The seed of the measured run (`bash bench/default-fit.sh`,
                // results/default-fit.md) and of the bundled models, so the
                // default command repeats it (on the same kind of CPU: other
                // gemm kernels round differently).
                seed: 1,
                limit: None,
                shift: 2,
                shift_from_size: true,
                // Small rotations and rescalings on top of the shifts: the
                // gate cannot fit the partition's wrong labels one by one
                // (data/augment.rs; clustering.md).
                rotate: 12.0,
                scale: 0.1,
                // One pass of a 20,000-image set: MNIST's epochs are its
                // 600-step passes; a 1,797-image set is passed over 11
                // times. 600 (the default until 2026-12-07) gave about a
                // point more on 20,000-image sets for twice their training
                // time, more than N2D's whole run (clustering.md).
                min_epoch_steps: 200,
                self_train_epochs: 0,
                image: mnist_shape(),
            },
            Preset::Long => {
                let mut c = Self::preset(Preset::Default);
                c.preset = p;
                c.epochs = 80;
                // The default's rate, 2e-3 (the gate's still falls to 0):
                // at 1e-3 MNIST seed 1 gave 0.9835, at 2e-3 0.9850; 3e-3
                // gave seed 0 0.9837 (clustering.md).
                if let Start::Partition {
                    ae_max_steps,
                    pretrain_epochs,
                    ..
                } = &mut c.start
                {
                    *ae_max_steps = 0;
                    *pretrain_epochs = 20;
                }
                c
            }
        }
    }

    /// Pretraining epochs (0 without a partition).
    pub fn pretrain_epochs(&self) -> usize {
        match self.start {
            Start::Random => 0,
            Start::Partition {
                pretrain_epochs, ..
            } => pretrain_epochs,
        }
    }

    /// What epoch `epoch` (0-based) of [`Self::total_epochs`] trains.
    pub fn phase(&self, epoch: usize) -> Phase {
        let pretrain = self.pretrain_epochs();
        if epoch < pretrain {
            Phase::Pretrain
        } else if epoch < pretrain + self.epochs {
            Phase::Mixture
        } else {
            Phase::SelfTrain
        }
    }

    /// Whether the run starts from the label-free partition.
    pub fn needs_partition(&self) -> bool {
        matches!(self.start, Start::Partition { .. })
    }

    /// The learning rate of step `step` (0-based) of epoch `epoch` (0-based)
    /// of a run with `steps` steps per epoch: `lr`, or under `lr_decay`
    /// `lr · (1 + cos(π·t)) / 2` where `t` is the share of the run's steps
    /// already taken. A function of the position only, so a resumed run
    /// follows the same schedule.
    pub fn lr_at(&self, epoch: usize, step: usize, steps: usize) -> f64 {
        if !self.lr_decay {
            return self.lr;
        }
        let total = (self.total_epochs() * steps).max(1) as f64;
        let t = ((epoch * steps + step) as f64 / total).min(1.0);
        self.lr * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0
    }

    /// The experts' learning rate at that step: [`Self::lr_at`]'s under
    /// `lr_decay_experts`, else the constant `lr`.
    pub fn experts_lr_at(&self, epoch: usize, step: usize, steps: usize) -> f64 {
        if self.lr_decay_experts {
            self.lr_at(epoch, step, steps)
        } else {
            self.lr
        }
    }

    /// All epochs: pretraining, mixture, then self-training.
    pub fn total_epochs(&self) -> usize {
        self.pretrain_epochs() + self.epochs + self.self_train_epochs
    }

    /// Checks values a user could get wrong, with one-line messages.
    pub fn validate(&self) -> anyhow::Result<()> {
        let a = &self.arch;
        if a.latent == 0
            || a.encoder_hidden == 0
            || a.gate_hidden.contains(&0)
            || a.decoder_hidden.contains(&0)
        {
            anyhow::bail!("layer widths and --latent must be positive");
        }
        // Only what is exported meets the engine: the gate and the decoders.
        if a.pixels != self.image.pixels() {
            anyhow::bail!(
                "the configuration's {} pixels are not its {}x{} images",
                a.pixels,
                self.image.width,
                self.image.height
            );
        }
        crate::export::check_engine_shape(
            self.image,
            a.latent,
            a.experts,
            &a.gate_hidden,
            &a.decoder_hidden,
            crate::export::ShapeFlags {
                experts: "--experts",
                latent: "--latent",
                gate: "--gate-hidden",
                decoder: "--decoder-hidden",
            },
        )?;
        if self.batch == 0 {
            anyhow::bail!("--batch must be positive");
        }
        if self.lr <= 0.0 || !self.lr.is_finite() {
            anyhow::bail!("--lr must be a positive number, got {}", self.lr);
        }
        if self.balance < 0.0 || !self.balance.is_finite() {
            anyhow::bail!("--balance must be >= 0, got {}", self.balance);
        }
        if self.shift > 8 {
            anyhow::bail!("--shift must be at most 8 pixels, got {}", self.shift);
        }
        if !(0.0..=45.0).contains(&self.rotate) {
            anyhow::bail!("--rotate must be 0 to 45 degrees, got {}", self.rotate);
        }
        if !(0.0..=0.5).contains(&self.scale) {
            anyhow::bail!("--scale must be 0 to 0.5, got {}", self.scale);
        }
        if self.limit == Some(0) {
            anyhow::bail!("--limit must be positive");
        }
        if let Likelihood::Gaussian { std } = self.likelihood {
            if std <= 0.0 || !std.is_finite() {
                anyhow::bail!("Gaussian std must be positive");
            }
        }
        Ok(())
    }
}

impl crate::train::MethodConfig for MixtureConfig {
    fn validate(&self) -> anyhow::Result<()> {
        MixtureConfig::validate(self)
    }

    fn limit(&self) -> Option<usize> {
        self.limit
    }

    fn image(&self) -> engine::ImageShape {
        self.image
    }

    fn set_image(&mut self, image: engine::ImageShape) {
        self.image = image;
        self.arch.pixels = image.pixels();
        if self.shift_from_size {
            self.shift = shift_for(image);
        }
    }

    fn experts(&self) -> usize {
        self.arch.experts
    }

    fn seed(&self) -> u64 {
        self.seed
    }

    fn run_name(&self) -> String {
        format!("{:?}", self.preset).to_lowercase()
    }

    fn describe(&self) -> String {
        format!("mixture, preset {:?}, seed {}", self.preset, self.seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::MethodConfig;

    fn shape(width: u16, height: u16) -> engine::ImageShape {
        engine::ImageShape { width, height }
    }

    #[test]
    fn the_learning_rate_falls_by_half_a_cosine_when_asked() {
        let mut c = MixtureConfig::preset(Preset::Default);
        c.lr_decay = false;
        assert_eq!(c.lr_at(5, 17, 600), c.lr);
        c.lr_decay = true;
        let epochs = c.total_epochs();
        assert_eq!(c.lr_at(0, 0, 600), c.lr);
        let half = c.lr_at(epochs / 2, if epochs % 2 == 1 { 300 } else { 0 }, 600);
        assert!((half - c.lr / 2.0).abs() < 1e-12, "{half}");
        let last = c.lr_at(epochs - 1, 599, 600);
        assert!(last > 0.0 && last < c.lr * 1e-5, "{last}");
        // Falling all the way, and never below 0 past the end.
        let mut prev = f64::INFINITY;
        for e in 0..epochs {
            let lr = c.lr_at(e, 0, 600);
            assert!(lr < prev);
            prev = lr;
        }
        assert_eq!(c.lr_at(epochs + 3, 0, 600), 0.0);
        // The default preset's experts keep the first rate; asked, they fall too.
        assert_eq!(c.experts_lr_at(epochs - 1, 599, 600), c.lr);
        c.lr_decay_experts = true;
        assert_eq!(c.experts_lr_at(epochs - 1, 599, 600), last);
    }

    #[test]
    fn old_configurations_keep_their_start_and_schedule() {
        // A config.json from before `deskew` and `lr_decay` existed.
        let mut v = serde_json::to_value(MixtureConfig::preset(Preset::Default)).unwrap();
        v.as_object_mut().unwrap().remove("lr_decay");
        v.as_object_mut().unwrap().remove("lr_decay_experts");
        v["start"]["partition"]
            .as_object_mut()
            .unwrap()
            .remove("deskew");
        v["start"]["partition"]
            .as_object_mut()
            .unwrap()
            .remove("mend_splinters");
        v["start"]["partition"]
            .as_object_mut()
            .unwrap()
            .remove("ae_max_steps");
        let c: MixtureConfig = serde_json::from_value(v).unwrap();
        assert!(!c.lr_decay);
        assert!(matches!(
            c.start,
            Start::Partition {
                deskew: false,
                mend_splinters: false,
                ae_max_steps: 0,
                ..
            }
        ));
        // One from before `lr_decay_experts`: its falling rate was every one's.
        let mut v = serde_json::to_value(MixtureConfig::preset(Preset::Default)).unwrap();
        v.as_object_mut().unwrap().remove("lr_decay_experts");
        let c: MixtureConfig = serde_json::from_value(v).unwrap();
        assert!(c.lr_decay && c.lr_decay_experts);
    }

    #[test]
    fn the_default_shift_follows_the_shorter_side() {
        assert_eq!(shift_for(shape(28, 28)), 2);
        assert_eq!(shift_for(shape(16, 16)), 1);
        assert_eq!(shift_for(shape(8, 8)), 0);
        assert_eq!(shift_for(shape(64, 13)), 0);
        let mut cfg = MixtureConfig::preset(Preset::Default);
        cfg.set_image(shape(8, 8));
        assert_eq!((cfg.shift, cfg.arch.pixels), (0, 64));
        cfg.set_image(shape(28, 28));
        assert_eq!(cfg.shift, 2);
    }

    #[test]
    fn a_chosen_shift_or_the_blog_preset_keeps_its_shift() {
        let mut cfg = MixtureConfig::preset(Preset::Default);
        cfg.shift = 2;
        cfg.shift_from_size = false;
        cfg.set_image(shape(8, 8));
        assert_eq!(cfg.shift, 2);
        let mut blog = MixtureConfig::preset(Preset::Blog);
        blog.set_image(shape(8, 8));
        assert_eq!(blog.shift, 0);
    }

    #[test]
    fn the_long_preset_is_the_default_model_trained_longer() {
        let long = MixtureConfig::preset(Preset::Long);
        assert_eq!(
            (long.preset, long.epochs, long.pretrain_epochs(), long.lr),
            (Preset::Long, 80, 20, 2e-3)
        );
        assert!(matches!(
            long.start,
            Start::Partition {
                ae_max_steps: 0,
                ..
            }
        ));
        // Everything else, the exported shapes included, is the default's.
        let mut default = MixtureConfig::preset(Preset::Default);
        default.preset = Preset::Long;
        default.epochs = 80;
        default.start = long.start.clone();
        assert_eq!(long, default);
    }

    #[test]
    fn self_training_epochs_follow_the_mixture_epochs() {
        let mut cfg = MixtureConfig::preset(Preset::Default);
        cfg.self_train_epochs = 2;
        let phases: Vec<Phase> = (0..cfg.total_epochs()).map(|e| cfg.phase(e)).collect();
        let mut want = vec![Phase::Pretrain; 10];
        want.extend([Phase::Mixture; 16]);
        want.extend([Phase::SelfTrain; 2]);
        assert_eq!(phases, want);
        // Older config.json files (no field) have none.
        let mut value = serde_json::to_value(&cfg).unwrap();
        value.as_object_mut().unwrap().remove("self_train_epochs");
        let old: MixtureConfig = serde_json::from_value(value).unwrap();
        assert_eq!((old.self_train_epochs, old.total_epochs()), (0, 26));
    }

    #[test]
    fn rotations_and_rescalings_are_bounded_and_absent_from_older_configurations() {
        let cfg = MixtureConfig::preset(Preset::Default);
        assert!(cfg.distortion().resamples());
        assert!(!MixtureConfig::preset(Preset::Blog).distortion().resamples());
        for (rotate, scale, flag) in [
            (46.0, 0.1, "--rotate"),
            (-1.0, 0.1, "--rotate"),
            (12.0, 0.6, "--scale"),
            (12.0, f64::NAN, "--scale"),
        ] {
            let bad = MixtureConfig {
                rotate,
                scale,
                ..cfg.clone()
            };
            let err = bad.validate().unwrap_err().to_string();
            assert!(err.contains(flag), "{err}");
        }
        let mut value = serde_json::to_value(&cfg).unwrap();
        value.as_object_mut().unwrap().remove("rotate");
        value.as_object_mut().unwrap().remove("scale");
        let old: MixtureConfig = serde_json::from_value(value).unwrap();
        assert!(!old.distortion().resamples());
    }

    #[test]
    fn configurations_from_before_the_rule_keep_their_shift() {
        let mut value = serde_json::to_value(MixtureConfig::preset(Preset::Default)).unwrap();
        value.as_object_mut().unwrap().remove("shift_from_size");
        let old: MixtureConfig = serde_json::from_value(value).unwrap();
        assert!(!old.shift_from_size);
        assert_eq!(old.shift, 2);
    }
}
