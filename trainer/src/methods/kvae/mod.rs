//! kVAE: k VAEs trained competitively ("Clustering meets implicit generative
//! models"). Each VAE learns only the points assigned to it, and points move
//! to the generator most likely to have produced them.
//!
//! 1. **Pretrain**: every VAE on the whole data, each from its own seed (the
//!    authors' code), or on its part of a uniformly random split.
//! 2. **Rounds**: (a) train each VAE on its points for a fixed number of
//!    steps (the same for every VAE, whatever its cluster's size); (b) update
//!    discriminator D_j, which tells real points (drawn from all the data)
//!    from samples of VAE j; (c) move every point x to
//!    `argmax_j s_j(x)` with `s_j(x) = log((1 − D_j(x)) / D_j(x)) = −logit_j(x)`.
//!    `(1 − D_j)/D_j` estimates `p_gj(x)/p_d(x)`, so the argmax picks the
//!    generator most likely to have produced x.
//!
//! The recipe on MNIST follows the authors' code: the discriminators persist
//! across rounds and are deliberately undertrained (one minibatch of 32 real
//! and 32 generated images per round; trained longer they tell generated
//! images by their blur alone and call every real point "real"), and each
//! model's ratios are normalised over the training set,
//! `s_j(x) − logsumexp_i s_j(x_i)`, which lifts weaker generators so they can
//! compete. A VAE left with no more than a batch of points is no longer
//! trained. Optional levers, off by default: `log α_j` added to the scores,
//! holding a VAE's points when it would fall below a share of `n / k`, and
//! instance noise on the discriminators' inputs.
//! 3. **Gate**: a classifier for new inputs is distilled from the final
//!    assignment (cross-entropy); it is the gate of the exported model, whose
//!    decoders are the k VAEs' decoders (`engine::Method::KVae`).
//!
//! With an identity decoder and a constant encoder, step (a) moves each
//! decoder's offset to the mean of its points and step (c) (with the exact
//! density ratio) assigns each point to the nearest offset: k-means. The
//! tests in `trainer/tests/kvae_kmeans.rs` check both halves.
//!
//! One file per idea:
//!
//! | file | what it holds |
//! |---|---|
//! | [`config`] | [`KVaeConfig`], the authors' recipe ([`KVaeConfig::recipe`]), `trainer fit`'s [`config::KVaeFitConfig`] |
//! | [`vae`], [`conv`] | the K VAEs (dense and convolutional) behind [`VaeNets`] |
//! | [`batching`] | groups from an assignment, random splits, [`Batcher`] |
//! | [`training`] | step (a): the VAEs' steps, with a [`RoundContext`] |
//! | [`discriminators`](mod@discriminators) | step (b): discriminators or the generator classifier |
//! | [`scoring`] | step (c): [`Scorer`], normalisation, [`reassign`], [`reassign_round`] |
//! | [`gate`] | step 3: the distilled gate |
//! | [`export`] | the model file |
//! | [`method`] | kVAE as a [`crate::train::Method`] (`trainer fit --method kvae`) |
//! | [`run`] | the experiments' kVAE on the one loop, on any points and from any start, a given one included ([`run::train`]) |

pub mod batching;
pub mod config;
pub mod conv;
pub mod conv_disc;
pub mod discriminators;
pub mod export;
pub mod gate;
pub mod method;
pub mod run;
pub mod scoring;
pub mod training;
pub mod vae;

pub use batching::{members, random_split, shares, training_groups, vae_steps_per_epoch, Batcher};
pub use config::{DiscKind, KVaeConfig, KVaeFitConfig, Pretrain, ScoreRule, VaeKind};
pub use discriminators::{
    discriminator_accuracy, discriminators, mean_accuracy, scorer_networks, train_discriminators,
    train_generator_classifier, DiscTraining,
};
pub use export::to_spec;
pub use gate::{distill_gate, gate_predict};
pub use method::KVae;
pub use run::{no_images, RunOptions};
pub use scoring::{normalise_per_model, reassign, reassign_round, scores, Reassignment, Scorer};
pub use training::{train_vaes, vae_step, RoundContext, VaeBatches};
pub use vae::{VaeNets, VaeShape, VaeStack};
