//! `trainer fit`: the flags of every method, each applied to the chosen
//! method or refused with a one-line error naming the flag and the method.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use crate::init::Clustering;
use crate::methods::hierarchical::HierarchicalConfig;
use crate::methods::kvae::config::KVaeFitConfig;
use crate::methods::kvae::{Pretrain, Scorer};
use crate::methods::mixture::{MixtureConfig, Preset, Start};
use crate::methods::MethodName;
use crate::nn::layers::{parse_activation, Activation};
use crate::nn::likelihood::Likelihood;

/// `trainer fit` options.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// Training method.
    #[arg(long, value_enum, conflicts_with = "resume")]
    pub method: Option<MethodName>,
    /// Number of experts K (clusters): the mixture's experts, kVAE's VAEs.
    #[arg(long, conflicts_with = "resume")]
    pub experts: Option<usize>,
    /// Latent size of each expert.
    #[arg(long, conflicts_with = "resume")]
    pub latent: Option<usize>,
    /// Sets every hidden width at once (mixture: gate, encoders, decoders;
    /// kVAE: each VAE's one hidden layer).
    #[arg(long, conflicts_with = "resume")]
    pub hidden: Option<usize>,
    /// Gate hidden widths, comma-separated (e.g. 256 or 256,64).
    #[arg(long, value_delimiter = ',', conflicts_with = "resume")]
    pub gate_hidden: Option<Vec<usize>>,
    /// Epochs of pretraining on the initial partition (mixture only; 0 =
    /// start from random weights; kVAE's is --pretrain-steps).
    #[arg(long, conflicts_with = "resume")]
    pub pretrain_epochs: Option<usize>,
    /// Batch size (kVAE: points per VAE per step).
    #[arg(long, conflicts_with = "resume")]
    pub batch: Option<usize>,
    /// Adam learning rate (no weight decay).
    #[arg(long, conflicts_with = "resume")]
    pub lr: Option<f64>,
    /// Random seed: the same seed on the same machine gives the same model.bin.
    #[arg(long, conflicts_with = "resume")]
    pub seed: Option<u64>,
    /// Train on the first N training images only.
    #[arg(long, conflicts_with = "resume")]
    pub limit: Option<usize>,
    /// Run directory (default: a new `runs/<preset or method>-N`).
    #[arg(long, conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Also write the trained model to this file (atomically).
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Element type of the weights in the --export file: f16 (the default),
    /// or int8 (integer inference for microcontrollers without an FPU;
    /// calibrated on training images, no labels). The run directory gets both.
    #[arg(long, value_enum, default_value = "f16")]
    pub weights: crate::export::quantize::WeightType,
    /// Write no novelty score: by default the model files carry one,
    /// fitted on the training images, that says when an input looks like
    /// none of them (a flat model then stays a version-2 file, which
    /// engines older than the novelty score read).
    #[arg(long)]
    pub no_novelty: bool,
    /// Continue the run in this directory from its last checkpoint.
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    /// cpu, or cuda (needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress bars or per-epoch lines.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub mixture: MixtureArgs,
    #[command(flatten)]
    pub kvae: KVaeArgs,
    #[command(flatten)]
    pub hierarchical: HierarchicalArgs,
}

/// Options only the two-level mixture reads (it also reads the mixture's).
#[derive(Debug, Args)]
#[command(next_help_heading = "Hierarchical options (--method hierarchical)")]
pub struct HierarchicalArgs {
    /// Style VAEs under each digit expert: a number, or `auto` (trains 2 and
    /// keeps, per digit expert, the styles that raise the held-out ELBO by
    /// a clear margin) [default: auto].
    #[arg(long, conflicts_with = "resume", value_parser = parse_styles)]
    pub styles: Option<StylesArg>,
    /// With `--styles auto`: the most styles a digit expert keeps (each is
    /// trained with this many) [default: 2].
    #[arg(long, value_name = "N", conflicts_with = "resume")]
    pub max_styles: Option<usize>,
    /// Hidden units of each style gate (`pixels → N → styles`) [default: 16].
    #[arg(long, value_name = "N", conflicts_with = "resume")]
    pub style_hidden: Option<usize>,
}

/// `--styles`: a fixed number, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StylesArg {
    /// Every digit expert keeps this many.
    Fixed(usize),
    /// Each keeps those that pay.
    Auto,
}

fn parse_styles(s: &str) -> Result<StylesArg, String> {
    if s == "auto" {
        return Ok(StylesArg::Auto);
    }
    s.parse()
        .map(StylesArg::Fixed)
        .map_err(|_| format!("expected a number of styles or `auto`, got `{s}`"))
}

/// The images to train on: any image set (`trainer fit --help` lists them).
#[derive(Debug, Args)]
#[command(next_help_heading = "Data")]
pub struct DataArgs {
    /// The training images [default: data/mnist, or a resumed run's]:
    /// a directory of MNIST's IDX files (train-images-idx3-ubyte[.gz] and
    /// the rest); one IDX images file of any name (labels beside it by the
    /// -images- -> -labels- naming, or --labels); a folder of PNG, JPEG,
    /// BMP or PGM/PPM images, searched recursively (sub-folder names are
    /// labels when every image sits in one); a .csv with one image per row
    /// (pixels 0-255, optional header, optional first `label` column); a
    /// .npy of uint8 (0-255) or float32/float64 (0-1), N x H x W or
    /// N x (H*W). Labels are never used in training, only to score.
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// A separate test set, in any of the same forms [default: MNIST's t10k
    /// files in a directory of MNIST's files, else --test-fraction of --data].
    #[arg(long, value_name = "PATH")]
    pub test: Option<PathBuf>,
    /// Labels for an IDX or .npy images file (an IDX labels file or a 1-D .npy).
    #[arg(long, value_name = "PATH")]
    pub labels: Option<PathBuf>,
    /// Image size of a CSV or an N x (H*W) .npy whose rows are not square.
    #[arg(long, value_name = "WxH", value_parser = crate::data::parse_size)]
    pub size: Option<(usize, usize)>,
    /// Polarity: the model wants light ink on dark paper, as MNIST; `auto`
    /// inverts a set whose border pixels are mostly light (scans, most PNGs).
    #[arg(long, value_enum)]
    pub invert: Option<crate::data::Invert>,
    /// Share of --data held out (the same images every run) to score the
    /// model when there is no separate test set.
    #[arg(long, value_name = "FRACTION")]
    pub test_fraction: Option<f64>,
    /// `mnist`: frame every image the way MNIST's digits were (the ink's box
    /// into 20/28 of each side, centre of mass at the centre; engine::frame,
    /// as the page and the firmware), each image's polarity settled on its
    /// own and pixels under 1/8 of full ink taken for paper: for folders of
    /// scans or photos of single digits, of any sizes.
    #[arg(long, value_enum)]
    pub frame: Option<FrameArg>,
    /// With --frame mnist: the size to frame into [default: 28x28].
    #[arg(long, value_name = "WxH", value_parser = crate::data::parse_size, requires = "frame")]
    pub frame_size: Option<(usize, usize)>,
}

/// `--frame`: how images of any size are made one size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FrameArg {
    /// As they are (every image of a set must have one size).
    None,
    /// MNIST-style framing (see --frame).
    Mnist,
}

impl DataArgs {
    /// The data options these flags describe; `None` when no data flag was
    /// given (a resumed run then reads what it read before).
    pub fn options(&self) -> Option<crate::train::DataOptions> {
        let given = self.data.is_some()
            || self.test.is_some()
            || self.labels.is_some()
            || self.size.is_some()
            || self.invert.is_some()
            || self.test_fraction.is_some()
            || self.frame.is_some();
        if !given {
            return None;
        }
        let d = crate::train::DataOptions::default();
        Some(crate::train::DataOptions {
            data: self.data.clone().unwrap_or(d.data),
            test: self.test.clone(),
            labels: self.labels.clone(),
            size: self.size,
            invert: self.invert.unwrap_or(d.invert),
            test_fraction: self.test_fraction.unwrap_or(d.test_fraction),
            frame: match self.frame {
                Some(FrameArg::Mnist) => Some(self.frame_size.unwrap_or((28, 28))),
                _ => None,
            },
        })
    }
}

/// Options only the mixture reads.
#[derive(Debug, Args)]
#[command(
    next_help_heading = "Mixture options (--method mixture, the default; --method hierarchical too)"
)]
pub struct MixtureArgs {
    /// Starting configuration: `default` (tuned, ≤ 1 MiB export, about 4 minutes on MNIST), `long`
    /// (the same model trained longer: about 13 minutes on MNIST) or `blog` (the published method).
    #[arg(long, value_enum, conflicts_with = "resume")]
    pub preset: Option<Preset>,
    /// Encoder hidden width (encoders are not exported).
    #[arg(long, conflicts_with = "resume")]
    pub encoder_hidden: Option<usize>,
    /// Decoder hidden widths, comma-separated.
    #[arg(long, value_delimiter = ',', conflicts_with = "resume")]
    pub decoder_hidden: Option<Vec<usize>>,
    /// Hidden activation: relu, sigmoid or tanh.
    #[arg(long, value_parser = parse_activation, conflicts_with = "resume")]
    pub act: Option<Activation>,
    /// Pixel likelihood: `bernoulli`, or `gaussian:STD` (e.g. gaussian:0.5).
    #[arg(long, value_parser = parse_likelihood, conflicts_with = "resume")]
    pub likelihood: Option<Likelihood>,
    /// Epochs of the mixture objective (with --resume: the new total).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Autoencoder epochs inside the initial partition step.
    #[arg(long, conflicts_with = "resume")]
    pub ae_epochs: Option<usize>,
    /// Most Adam steps of that autoencoder: on a large set it makes fewer
    /// passes than --ae-epochs, the most whole ones within N steps (default
    /// preset: 10000, so 10 of MNIST's 938-step passes and all of a set of
    /// up to 32,000 images; 0 = no cap).
    #[arg(long, value_name = "N", conflicts_with = "resume")]
    pub ae_max_steps: Option<usize>,
    /// How the initial partition clusters the autoencoder codes.
    #[arg(long, value_enum, conflicts_with = "resume")]
    pub cluster: Option<Clustering>,
    /// Whether the initial partition's autoencoder sees the images
    /// straightened (moment-based deskewing; the model always sees them as
    /// they are) [default: on].
    #[arg(long, value_name = "on|off", value_parser = clap::builder::BoolishValueParser::new(),
          hide_possible_values = true, conflicts_with = "resume")]
    pub deskew: Option<bool>,
    /// Whether the initial partition mends a part under a quarter of an
    /// even share (clustering into up to K + 3 parts, merging the smallest
    /// into its most connected neighbour); off keeps a genuinely rare class
    /// apart [default: on].
    #[arg(long, value_name = "on|off", value_parser = clap::builder::BoolishValueParser::new(),
          hide_possible_values = true, conflicts_with = "resume")]
    pub mend_splinters: Option<bool>,
    /// Codes in the initial partition's graph (UMAP or spectral); the other
    /// images take the vote of their nearest graph codes [default: 20000].
    #[arg(long, value_name = "N", conflicts_with = "resume")]
    pub graph_points: Option<usize>,
    /// Whether the learning rate falls over the run (half a cosine from
    /// --lr to 0 across all epochs; with --resume and a new --epochs, the
    /// epochs still to come follow the new total's curve) [default: on; blog: off].
    #[arg(long, value_name = "on|off", value_parser = clap::builder::BoolishValueParser::new(),
          hide_possible_values = true, conflicts_with = "resume")]
    pub lr_decay: Option<bool>,
    /// Whether --lr-decay lowers the experts' learning rate too, or only
    /// the gate's (the experts' likelihood pays for a falling rate)
    /// [default: off; blog: on, without --lr-decay it does nothing].
    #[arg(long, value_name = "on|off", value_parser = clap::builder::BoolishValueParser::new(),
          hide_possible_values = true, conflicts_with = "resume")]
    pub lr_decay_experts: Option<bool>,
    /// Weight of the load-balancing term (variance of expert importance).
    #[arg(long, conflicts_with = "resume")]
    pub balance: Option<f64>,
    /// Random shift of the gate's input in pixels (augmentation; 0 = off).
    /// Default preset: 1/14 of the images' shorter side, rounded down (2 on
    /// 28×28, 1 on 16×16, 0 on 8×8).
    #[arg(long, conflicts_with = "resume")]
    pub shift: Option<usize>,
    /// Largest random rotation of the gate's input either way, in degrees
    /// (augmentation; 0 = off) [default: 12; blog: 0].
    #[arg(long, value_name = "DEGREES", conflicts_with = "resume")]
    pub rotate: Option<f64>,
    /// Largest random change of the gate's input's size either way, as a
    /// fraction (0.1: 90%-110%; 0 = off) [default: 0.1; blog: 0].
    #[arg(long, value_name = "FRACTION", conflicts_with = "resume")]
    pub scale: Option<f64>,
    /// Fewest optimizer steps per epoch: a smaller set is passed over
    /// several times per epoch (default preset: 200; blog: 0).
    #[arg(long, conflicts_with = "resume")]
    pub min_epoch_steps: Option<usize>,
    /// Self-training epochs after the mixture epochs: the gate's own argmax
    /// relabels the training images each epoch, then experts and gate train
    /// on those labels as in pretraining [default: 0].
    #[arg(long, value_name = "N", conflicts_with = "resume")]
    pub self_train_epochs: Option<usize>,
}

/// How kVAE's step (c) scores points, on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScorerArg {
    /// Discriminators' density-ratio estimate (the method).
    Discriminator,
    /// Importance-sampled VAE likelihood (64 samples): the perfect-discriminator limit.
    Likelihood,
    /// One K-way classifier of which VAE made a sample (trained --disc-steps per round).
    Classifier,
}

/// Options only kVAE reads.
#[derive(Debug, Args)]
#[command(next_help_heading = "kVAE options (--method kvae)")]
pub struct KVaeArgs {
    /// What the VAEs train on before the first reassignment [default: full].
    #[arg(long, value_enum, conflicts_with = "resume")]
    pub pretrain: Option<PretrainArg>,
    /// Optimizer steps of every VAE before the first reassignment [default: 1000].
    #[arg(long, conflicts_with = "resume")]
    pub pretrain_steps: Option<usize>,
    /// Reassignment rounds (update discriminators, reassign, train VAEs) [default: 20].
    #[arg(long, conflicts_with = "resume")]
    pub rounds: Option<usize>,
    /// Optimizer steps of every VAE after each reassignment, whatever its
    /// cluster's size [default: 150].
    #[arg(long, conflicts_with = "resume")]
    pub round_steps: Option<usize>,
    /// Discriminator updates per round; the discriminators persist across
    /// rounds [default: 1].
    #[arg(long, conflicts_with = "resume")]
    pub disc_steps: Option<usize>,
    /// Real and generated images per discriminator update (each) [default: 32].
    #[arg(long, conflicts_with = "resume")]
    pub disc_batch: Option<usize>,
    /// Std of Gaussian instance noise on the discriminators' training inputs [default: 0].
    #[arg(long, conflicts_with = "resume")]
    pub disc_noise: Option<f64>,
    /// Use raw density ratios, not normalised per model over the training set.
    #[arg(long, conflicts_with = "resume")]
    pub raw_ratios: bool,
    /// How scores choose a VAE: per-model normalised ratio, raw ratio, or
    /// −|1 − r| (the most confused discriminator) [default: normalised].
    #[arg(long, value_enum, conflicts_with_all = ["resume", "raw_ratios"])]
    pub score_rule: Option<crate::methods::kvae::ScoreRule>,
    /// Discriminators trained this many full epochs of the images before the
    /// first reassignment [default: 0].
    #[arg(long, conflicts_with = "resume")]
    pub disc_warmup_epochs: Option<usize>,
    /// Show the discriminators σ(2·logit) of the decoders as generated
    /// images (the authors' code), not the decoder means.
    #[arg(long, conflicts_with = "resume")]
    pub sharpen_fakes: bool,
    /// Add log α_j (the VAE's share of points) to the scores.
    #[arg(long, conflicts_with = "resume")]
    pub prior: bool,
    /// Load balancing: a VAE that would keep fewer than this share of n/k
    /// points keeps its previous points instead [default: 0 = off].
    #[arg(long, conflicts_with = "resume")]
    pub min_share: Option<f64>,
    /// Keep training a VAE left with no more than a batch of points.
    #[arg(long, conflicts_with = "resume")]
    pub train_small: bool,
    /// How points are scored for reassignment [default: discriminator].
    #[arg(long, value_enum, conflicts_with = "resume")]
    pub scorer: Option<ScorerArg>,
    /// Epochs of gate distillation [default: 3].
    #[arg(long, conflicts_with = "resume")]
    pub gate_epochs: Option<usize>,
}

/// `--pretrain`: where kVAE's VAEs start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PretrainArg {
    /// Every VAE on all the images, each from its own initial weights (the authors' code).
    Full,
    /// Each VAE on its part of a uniformly random split.
    RandomSplit,
    /// Each VAE on its part of the mixture's label-free partition (beyond the paper).
    Partition,
}

fn parse_likelihood(s: &str) -> Result<Likelihood, String> {
    if s == "bernoulli" {
        return Ok(Likelihood::Bernoulli);
    }
    if let Some(std) = s.strip_prefix("gaussian:") {
        let std: f32 = std.parse().map_err(|_| format!("bad std in {s:?}"))?;
        if std <= 0.0 || !std.is_finite() {
            return Err("the Gaussian std must be positive".into());
        }
        return Ok(Likelihood::Gaussian { std });
    }
    Err(format!("expected bernoulli or gaussian:STD, got {s:?}"))
}

impl MixtureArgs {
    /// The flags given on the command line, by name.
    fn given(&self) -> Vec<&'static str> {
        let flags = [
            ("--preset", self.preset.is_some()),
            ("--encoder-hidden", self.encoder_hidden.is_some()),
            ("--decoder-hidden", self.decoder_hidden.is_some()),
            ("--act", self.act.is_some()),
            ("--likelihood", self.likelihood.is_some()),
            ("--epochs", self.epochs.is_some()),
            ("--ae-epochs", self.ae_epochs.is_some()),
            ("--ae-max-steps", self.ae_max_steps.is_some()),
            ("--cluster", self.cluster.is_some()),
            ("--deskew", self.deskew.is_some()),
            ("--mend-splinters", self.mend_splinters.is_some()),
            ("--lr-decay", self.lr_decay.is_some()),
            ("--lr-decay-experts", self.lr_decay_experts.is_some()),
            ("--graph-points", self.graph_points.is_some()),
            ("--balance", self.balance.is_some()),
            ("--shift", self.shift.is_some()),
            ("--rotate", self.rotate.is_some()),
            ("--scale", self.scale.is_some()),
            ("--min-epoch-steps", self.min_epoch_steps.is_some()),
            ("--self-train-epochs", self.self_train_epochs.is_some()),
        ];
        flags.iter().filter(|f| f.1).map(|f| f.0).collect()
    }
}

impl KVaeArgs {
    /// The flags given on the command line, by name.
    fn given(&self) -> Vec<&'static str> {
        let flags = [
            ("--pretrain", self.pretrain.is_some()),
            ("--pretrain-steps", self.pretrain_steps.is_some()),
            ("--rounds", self.rounds.is_some()),
            ("--round-steps", self.round_steps.is_some()),
            ("--disc-steps", self.disc_steps.is_some()),
            ("--disc-batch", self.disc_batch.is_some()),
            ("--disc-noise", self.disc_noise.is_some()),
            ("--raw-ratios", self.raw_ratios),
            ("--score-rule", self.score_rule.is_some()),
            ("--disc-warmup-epochs", self.disc_warmup_epochs.is_some()),
            ("--sharpen-fakes", self.sharpen_fakes),
            ("--prior", self.prior),
            ("--min-share", self.min_share.is_some()),
            ("--train-small", self.train_small),
            ("--scorer", self.scorer.is_some()),
            ("--gate-epochs", self.gate_epochs.is_some()),
        ];
        flags.iter().filter(|f| f.1).map(|f| f.0).collect()
    }
}

impl HierarchicalArgs {
    /// The flags given, for [`FitArgs::check_flags_for`].
    fn given(&self) -> Vec<&'static str> {
        let flags = [
            ("--styles", self.styles.is_some()),
            ("--max-styles", self.max_styles.is_some()),
            ("--style-hidden", self.style_hidden.is_some()),
        ];
        flags.iter().filter(|f| f.1).map(|f| f.0).collect()
    }
}

impl FitArgs {
    /// The chosen method (the mixture unless `--method` says otherwise).
    pub fn method(&self) -> MethodName {
        self.method.unwrap_or_default()
    }

    /// Refuses a flag of another method than `method` (the chosen one, or
    /// a resumed run's).
    pub fn check_flags_for(&self, method: MethodName) -> anyhow::Result<()> {
        let styles = !self.hierarchical.given().is_empty();
        let (foreign, owner) = match method {
            MethodName::Mixture if styles => (self.hierarchical.given(), "hierarchical"),
            MethodName::Mixture | MethodName::Hierarchical => (self.kvae.given(), "kvae"),
            MethodName::Kvae if styles => (self.hierarchical.given(), "hierarchical"),
            MethodName::Kvae => {
                let mut given = self.mixture.given();
                if self.pretrain_epochs.is_some() {
                    given.insert(0, "--pretrain-epochs");
                }
                (given, "mixture")
            }
        };
        if let Some(flag) = foreign.first() {
            bail!(
                "{flag} applies to --method {owner}, not to --method {} (see trainer fit --help)",
                method.as_str()
            );
        }
        Ok(())
    }

    /// The mixture configuration these flags describe.
    pub fn mixture_config(&self) -> anyhow::Result<MixtureConfig> {
        let preset = self.mixture.preset.unwrap_or(Preset::Default);
        self.mixture_flags(MixtureConfig::preset(preset))
    }

    /// The two-level mixture's configuration these flags describe: the
    /// mixture's flags on its default (or on `--preset`), and `--styles`.
    pub fn hierarchical_config(&self) -> anyhow::Result<HierarchicalConfig> {
        let mut c = HierarchicalConfig::default();
        if let Some(p) = self.mixture.preset {
            c.mixture = MixtureConfig::preset(p);
        }
        c.mixture = self.mixture_flags(c.mixture)?;
        match (self.hierarchical.styles, self.hierarchical.max_styles) {
            (Some(StylesArg::Fixed(_)), Some(_)) => {
                bail!("--max-styles applies to --styles auto, not to a fixed number of styles")
            }
            (Some(StylesArg::Fixed(s)), None) => {
                c.styles = s;
                c.auto_styles = false;
            }
            (_, Some(m)) => c.styles = m,
            (_, None) => {}
        }
        if let Some(h) = self.hierarchical.style_hidden {
            c.style_hidden = h;
        }
        Ok(c)
    }

    /// `c` with the mixture's flags applied.
    fn mixture_flags(&self, mut c: MixtureConfig) -> anyhow::Result<MixtureConfig> {
        let m = &self.mixture;
        if let Some(v) = self.experts {
            c.arch.experts = v;
        }
        if let Some(v) = self.latent {
            c.arch.latent = v;
        }
        if let Some(h) = self.hidden {
            c.arch.gate_hidden = vec![h; c.arch.gate_hidden.len().max(1)];
            c.arch.encoder_hidden = h;
            c.arch.decoder_hidden = vec![h; c.arch.decoder_hidden.len().max(1)];
        }
        if let Some(v) = &self.gate_hidden {
            c.arch.gate_hidden = v.clone();
        }
        if let Some(v) = m.encoder_hidden {
            c.arch.encoder_hidden = v;
        }
        if let Some(v) = &m.decoder_hidden {
            c.arch.decoder_hidden = v.clone();
        }
        if let Some(v) = m.act {
            c.arch.act = v;
        }
        if let Some(v) = m.likelihood {
            c.likelihood = v;
        }
        if let Some(v) = m.epochs {
            c.epochs = v;
        }
        if let Some(v) = m.lr_decay {
            c.lr_decay = v;
        }
        if let Some(v) = m.lr_decay_experts {
            c.lr_decay_experts = v;
        }
        match self.pretrain_epochs {
            Some(0) => c.start = Start::Random,
            Some(p) => {
                // A preset without a partition takes the default preset's.
                if c.start == Start::Random {
                    c.start = MixtureConfig::preset(Preset::Default).start;
                }
                if let Start::Partition {
                    pretrain_epochs, ..
                } = &mut c.start
                {
                    *pretrain_epochs = p;
                }
            }
            None => {}
        }
        match &mut c.start {
            Start::Partition {
                cluster,
                ae_epochs,
                ae_max_steps,
                max_points,
                deskew,
                mend_splinters,
                ..
            } => {
                if let Some(v) = m.mend_splinters {
                    *mend_splinters = v;
                }
                if let Some(v) = m.cluster {
                    *cluster = v;
                }
                if let Some(v) = m.deskew {
                    *deskew = v;
                }
                if let Some(v) = m.ae_epochs {
                    *ae_epochs = v;
                }
                if let Some(v) = m.ae_max_steps {
                    *ae_max_steps = v;
                }
                if let Some(v) = m.graph_points {
                    if v < 2 * c.arch.experts {
                        bail!(
                            "--graph-points must be at least twice the experts ({}), got {v}",
                            2 * c.arch.experts
                        );
                    }
                    *max_points = v;
                }
            }
            Start::Random
                if m.cluster.is_some()
                    || m.ae_epochs.is_some()
                    || m.ae_max_steps.is_some()
                    || m.graph_points.is_some()
                    || m.deskew.is_some()
                    || m.mend_splinters.is_some() =>
            {
                bail!(
                    "--cluster, --ae-epochs, --ae-max-steps, --graph-points, --deskew and --mend-splinters shape the initial \
                     partition, which this configuration does not use (it starts from random \
                     weights; add --pretrain-epochs N to use one)"
                )
            }
            Start::Random => {}
        }
        if let Some(v) = self.batch {
            c.batch = v;
        }
        if let Some(v) = self.lr {
            c.lr = v;
        }
        if let Some(v) = m.balance {
            c.balance = v;
        }
        if let Some(v) = m.shift {
            c.shift = v;
            c.shift_from_size = false;
        }
        if let Some(v) = m.rotate {
            c.rotate = v;
        }
        if let Some(v) = m.scale {
            c.scale = v;
        }
        if let Some(v) = m.min_epoch_steps {
            c.min_epoch_steps = v;
        }
        if let Some(v) = m.self_train_epochs {
            c.self_train_epochs = v;
        }
        if let Some(v) = self.seed {
            c.seed = v;
        }
        c.limit = self.limit;
        Ok(c)
    }

    /// The kVAE configuration these flags describe.
    pub fn kvae_config(&self) -> anyhow::Result<KVaeFitConfig> {
        let mut cfg = KVaeFitConfig::default();
        let c = &mut cfg.kvae;
        let a = &self.kvae;
        if let Some(v) = self.experts {
            c.k = v;
        }
        if let Some(v) = self.latent {
            c.vae.latent = v;
        }
        if let Some(v) = self.hidden {
            c.vae.hidden = vec![v];
        }
        if let Some(v) = &self.gate_hidden {
            c.gate_hidden = v.clone();
        }
        if let Some(v) = self.batch {
            c.batch = v;
        }
        if let Some(v) = self.lr {
            c.lr = v;
        }
        if let Some(v) = self.seed {
            c.seed = v;
        }
        if let Some(v) = a.rounds {
            c.rounds = v;
        }
        if let Some(v) = a.pretrain {
            c.pretrain = match v {
                PretrainArg::Full => Pretrain::Full,
                PretrainArg::RandomSplit => Pretrain::RandomSplit,
                PretrainArg::Partition => Pretrain::Partition,
            };
        }
        if let Some(v) = a.pretrain_steps {
            c.pretrain_steps = v;
        }
        if let Some(v) = a.round_steps {
            c.round_steps = v;
        }
        if let Some(v) = a.disc_steps {
            c.disc_steps = v;
        }
        if let Some(v) = a.disc_batch {
            c.disc_batch = v;
        }
        if let Some(v) = a.disc_noise {
            c.disc_noise = v;
        }
        if a.raw_ratios {
            c.score_rule = crate::methods::kvae::ScoreRule::Raw;
        }
        if let Some(r) = a.score_rule {
            c.score_rule = r;
        }
        if let Some(w) = a.disc_warmup_epochs {
            c.disc_warmup_epochs = w;
        }
        if a.sharpen_fakes {
            c.sharpen_fakes = true;
        }
        if a.prior {
            c.prior = true;
        }
        if let Some(v) = a.min_share {
            c.min_share = v;
        }
        if a.train_small {
            c.freeze_small = false;
        }
        if let Some(s) = a.scorer {
            c.scorer = match s {
                ScorerArg::Discriminator => Scorer::Discriminator,
                ScorerArg::Likelihood => Scorer::Likelihood { samples: 64 },
                ScorerArg::Classifier => Scorer::Classifier,
            };
        }
        if let Some(v) = a.gate_epochs {
            c.gate_epochs = v;
        }
        cfg.limit = self.limit;
        Ok(cfg)
    }
}
