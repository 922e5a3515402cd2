//! The experiments' own loop over kVAE's steps (pretraining, rounds,
//! gate), with an observer for per-round figures. `trainer fit` runs kVAE
//! on the one training loop instead ([`super::method`]); moving the
//! experiments there too is still to do (they need conv VAEs, per-round
//! snapshots and no export in `method`).

use std::time::Instant;

use candle_core::{Device, Result};

use super::batching::{members, random_split, training_groups};
use super::config::{KVaeConfig, Pretrain};
use super::discriminators::{discriminator_accuracy, mean_accuracy, scorer_networks};
use super::gate::distill_gate;
use super::scoring::{reassign_round, Scorer};
use super::training::{adam, train_vaes, RoundContext, VaeBatches};
use super::vae::{VaeNets, VaeStack};
use crate::data::Points;
use crate::nn::layers::Gate;
use crate::nn::params::Params;
use crate::rng::Rng;

/// What happened in one round (round 0 is the pretraining).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RoundRecord {
    /// 0 for the pretraining, then 1..=rounds.
    pub round: usize,
    /// Mean negative ELBO of each VAE on its points in the last epoch.
    pub neg_elbo: Vec<f64>,
    /// Mean discriminator loss (real + generated cross-entropy) in the last
    /// tenth of step (b); `None` in round 0.
    pub disc_loss: Option<f64>,
    /// The discriminators' mean accuracy on real and on generated points
    /// after step (b) ([`mean_accuracy`]); `None` in round 0.
    pub disc_acc: Option<(f64, f64)>,
    /// Points that changed VAE in step (c).
    pub moved: usize,
    /// VAEs whose reassignment was undone by load balancing.
    pub held: usize,
    /// Points per VAE after the round.
    pub sizes: Vec<usize>,
    /// Seconds the round took.
    pub seconds: f64,
}

/// The state handed to an observer after the pretraining and each round.
pub struct Snapshot<'a> {
    /// Round just finished (0 = pretraining).
    pub round: usize,
    /// The VAEs.
    pub vaes: &'a dyn VaeNets,
    /// Current VAE of each training point.
    pub assignment: &'a [usize],
}

/// A kVAE trained by [`fit_nets`] (the experiments' loop; `trainer fit`
/// trains [`super::method::KVae`]).
pub struct FittedKVae {
    /// The configuration it was trained with.
    pub config: KVaeConfig,
    /// The k VAEs.
    pub vaes: Box<dyn VaeNets>,
    /// Their tensors (`encoder.*`, `decoder.*`).
    pub vae_params: Params,
    /// Final VAE of each training point.
    pub assignment: Vec<usize>,
    /// The distilled gate, if `gate_epochs > 0`.
    pub gate: Option<Gate>,
    /// One record per round, pretraining first.
    pub history: Vec<RoundRecord>,
}

/// Runs kVAE with dense VAEs of `cfg.vae` on `data`. `observe` sees the
/// state after the pretraining and after every round (for figures);
/// progress goes to stderr.
pub fn fit(
    data: &Points,
    cfg: &KVaeConfig,
    device: &Device,
    observe: &mut dyn FnMut(&Snapshot),
) -> Result<FittedKVae> {
    let vae_params = Params::new(cfg.seed);
    let vaes = VaeStack::new(cfg.k, cfg.vae.clone(), vae_params.var_builder(device))?;
    fit_nets(data, cfg, Box::new(vaes), vae_params, device, observe)
}

/// [`fit`] with VAEs of any kind (`vaes`, built by the caller on
/// `vae_params`; `cfg.vae` is then unused).
pub fn fit_nets(
    data: &Points,
    cfg: &KVaeConfig,
    vaes: Box<dyn VaeNets>,
    vae_params: Params,
    device: &Device,
    observe: &mut dyn FnMut(&Snapshot),
) -> Result<FittedKVae> {
    let k = cfg.k;
    let mut rng = Rng::new(cfg.seed, 0x4B5A);
    let mut vae_opt = adam(&vae_params, cfg.lr);
    let disc_params = Params::new(cfg.seed ^ 0xD15C);
    let disc = scorer_networks(
        cfg.scorer,
        k,
        data.dim,
        &cfg.disc_hidden,
        &disc_params,
        device,
    )?;
    let mut disc_opt = adam(&disc_params, cfg.lr);

    if cfg.pretrain == Pretrain::Partition {
        candle_core::bail!("kVAE's partition start runs in `trainer fit` only");
    }
    let started = Instant::now();
    let mut assignment = random_split(data.n, k, &mut rng);
    let full = cfg.pretrain == Pretrain::Full;
    let batches = VaeBatches {
        batch: cfg.batch,
        freeze_small: cfg.freeze_small,
    };
    let neg_elbo = train_vaes(
        vaes.as_ref(),
        &mut vae_opt,
        &training_groups(&assignment, k, full),
        cfg.pretrain_steps,
        batches,
        &mut RoundContext {
            data,
            rng: &mut rng,
            device,
        },
    )?;
    let mut history = vec![RoundRecord {
        round: 0,
        neg_elbo,
        disc_loss: None,
        disc_acc: None,
        moved: 0,
        held: 0,
        // With the full pretraining every VAE has seen every point.
        sizes: if full {
            vec![data.n; k]
        } else {
            members(&assignment, k).iter().map(Vec::len).collect()
        },
        seconds: started.elapsed().as_secs_f64(),
    }];
    eprintln!("kvae: pretraining: {}", round_line(&history[0]));
    observe(&Snapshot {
        round: 0,
        vaes: vaes.as_ref(),
        assignment: &assignment,
    });

    // Round R + 1 runs only step (a): the VAEs finish on the final assignment.
    for round in 1..=cfg.rounds + 1 {
        let started = Instant::now();
        let neg_elbo = if round == 1 {
            // The pretraining was step (a) of the first round.
            history[0].neg_elbo.clone()
        } else {
            train_vaes(
                vaes.as_ref(),
                &mut vae_opt,
                &members(&assignment, k),
                cfg.round_steps,
                batches,
                &mut RoundContext {
                    data,
                    rng: &mut rng,
                    device,
                },
            )?
        };
        if round > cfg.rounds {
            break;
        }
        let step = reassign_round(
            cfg,
            &disc,
            &mut disc_opt,
            vaes.as_ref(),
            &assignment,
            &mut RoundContext {
                data,
                rng: &mut rng,
                device,
            },
        )?;
        assignment = step.assignment;
        let disc_acc = match cfg.scorer {
            // On draws of their own, so that measuring changes no run.
            Scorer::Discriminator => Some(mean_accuracy(&discriminator_accuracy(
                &disc,
                vaes.as_ref(),
                data,
                256,
                &mut Rng::new(cfg.seed ^ 0xACC, round as u64),
                device,
            )?)),
            Scorer::Likelihood { .. } | Scorer::Classifier => None,
        };
        history.push(RoundRecord {
            round,
            neg_elbo,
            disc_loss: step.disc_loss,
            disc_acc,
            moved: step.moved,
            held: step.held,
            sizes: members(&assignment, k).iter().map(Vec::len).collect(),
            seconds: started.elapsed().as_secs_f64(),
        });
        eprintln!(
            "kvae: round {round}/{}: {}",
            cfg.rounds,
            round_line(&history[round])
        );
        observe(&Snapshot {
            round,
            vaes: vaes.as_ref(),
            assignment: &assignment,
        });
    }

    let gate = if cfg.gate_epochs > 0 {
        let (gate, agree) = distill_gate(data, &assignment, cfg, device)?;
        eprintln!(
            "kvae: gate distilled; it agrees with the assignment on {:.2}% of training points",
            100.0 * agree
        );
        Some(gate)
    } else {
        None
    };
    Ok(FittedKVae {
        config: cfg.clone(),
        vaes,
        vae_params,
        assignment,
        gate,
        history,
    })
}

fn round_line(r: &RoundRecord) -> String {
    let mean = r.neg_elbo.iter().sum::<f64>() / r.neg_elbo.len().max(1) as f64;
    let min = r.sizes.iter().min().copied().unwrap_or(0);
    let max = r.sizes.iter().max().copied().unwrap_or(0);
    let mut disc = r
        .disc_loss
        .map_or(String::new(), |d| format!(", discriminator loss {d:.3}"));
    if let Some((real, fake)) = r.disc_acc {
        disc.push_str(&format!(
            ", discriminator accuracy {:.0}% real / {:.0}% generated",
            100.0 * real,
            100.0 * fake
        ));
    }
    format!(
        "neg-ELBO {mean:.2}{disc}, moved {} points, {} VAEs held, sizes {min}..{max}, {:.1} s",
        r.moved, r.held, r.seconds
    )
}
