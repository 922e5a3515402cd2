//! The two-level mixture (`trainer fit --method hierarchical`): the gate
//! (top manager) routes an image to K digit experts, and each digit expert
//! is itself a mixture: its own style gate over S style VAEs. A style gate
//! reads the image (`pixels → 16 → S`, [`StyleGates`]), as the engine's
//! version-3 style gates do, so the trained networks are what the file
//! holds.
//!
//! [`StyleGates`]: crate::methods::mixture::nets::StyleGates
//!
//! It is the one-level mixture ([`crate::methods::mixture`]) with style
//! gates: the routing
//! logits `log p(c|x) + log p(s|x,c)` make the mixture-of-experts loss the
//! expected negative ELBO under the two-level routing, the balancing term
//! applies at both levels ([`crate::methods::mixture::loss::balance_slope`]),
//! and pretraining on the (cluster, style) of each image is the gate's
//! cross-entropy on the clusters plus each style gate's on its styles
//! (`−log p(c|x) − log p(s|x,c)`). [`loss`] writes the objective out
//! plainly and tests that training computes it.
//!
//! | file | what |
//! |---|---|
//! | [`config`] | `HierarchicalConfig` (`config.json`), the default styles |
//! | [`partition`] | the start: the label-free partition, each cluster split in styles |
//! | [`loss`] | the two-level objective, for reference |
//! | [`prune`] | `--styles auto`: the styles each digit expert keeps, on held-out images |
//!
//! The run's `model.bin` is a version-3 file (engine/FORMAT.md): each
//! cluster's kept styles with their decoders and style gate (a cluster
//! that keeps one style has no style gate); when every cluster keeps one
//! style it is a flat, version-2 file.

pub mod config;
pub mod loss;
pub mod partition;
pub mod prune;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use candle_core::Tensor;
use engine::writer::{ClusterSpec, TwoLevelSpec};
use serde::{Deserialize, Serialize};

use crate::methods::mixture::{export, Mixture};
use crate::train::{Data, EpochPlan, Method, RunContext, StepLoss, GRID_ROWS};
pub use config::HierarchicalConfig;
use prune::StyleDecision;

/// A two-level mixture being trained.
pub struct Hierarchical {
    cfg: HierarchicalConfig,
    inner: Mixture,
    /// The data the networks train on: the training images less the
    /// held-out ones (with `--styles auto`), the test images.
    fit: Data,
    /// Training images held out of training to decide the styles.
    held_out: crate::data::Split,
    /// Training images per (digit expert, style) under the routing's
    /// argmax, after the last epoch.
    style_counts: Vec<Vec<usize>>,
    /// Each digit expert's styles, decided after the last epoch (all of
    /// them without `--styles auto`, or before the last epoch ends).
    decisions: Vec<StyleDecision>,
}

/// The two-level mixture's part of `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HierarchicalState {
    mixture: serde_json::Value,
    style_counts: Vec<Vec<usize>>,
    #[serde(default)]
    decisions: Vec<StyleDecision>,
}

/// Latent draws per image and VAE in the held-out ELBOs.
const HELD_OUT_DRAWS: usize = 4;

/// The (digit expert, style) of each row of routing logits `[K·S]`: the
/// digit expert of the largest p(c|x) = Σ_s p(c|x)·p(s|x,c), then its style
/// of the largest p(s|x,c).
pub fn routes(logits: &[Vec<f32>], styles: usize) -> Vec<(usize, usize)> {
    logits
        .iter()
        .map(|row| {
            let mass = |c: &[f32]| c.iter().map(|v| v.exp()).sum::<f32>();
            let (c, group) = row
                .chunks(styles)
                .enumerate()
                .max_by(|a, b| mass(a.1).total_cmp(&mass(b.1)))
                .unwrap_or((0, &[]));
            let s = group
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(s, _)| s);
            (c, s)
        })
        .collect()
}

impl Hierarchical {
    fn styles(&self) -> usize {
        self.cfg.styles
    }

    /// Images per (digit expert, style) of `n` images.
    pub fn count_styles(&self, pixels: &[u8], n: usize) -> anyhow::Result<Vec<Vec<usize>>> {
        let (k, s) = (self.cfg.mixture.arch.experts, self.styles());
        let mut counts = vec![vec![0; s]; k];
        for (c, st) in routes(&self.inner.routing_logits(pixels, n)?, s) {
            counts[c][st] += 1;
        }
        Ok(counts)
    }

    /// The styles each digit expert keeps: [`prune::decide`] on the
    /// held-out images with `--styles auto`, all of them otherwise.
    fn decide_styles(&self) -> anyhow::Result<Vec<StyleDecision>> {
        let (k, s) = (self.cfg.mixture.arch.experts, self.styles());
        let counts = |c: usize| {
            self.style_counts
                .get(c)
                .cloned()
                .unwrap_or_else(|| vec![0; s])
        };
        if !self.cfg.auto_styles || self.held_out.n == 0 {
            return Ok((0..k)
                .map(|_| StyleDecision {
                    images: 0,
                    kept: (0..s).collect(),
                    dropped: Vec::new(),
                    kept_gain: None,
                })
                .collect());
        }
        let held = &self.held_out;
        let routes = routes(&self.inner.routing_logits(&held.pixels, held.n)?, s);
        let elbos = self
            .inner
            .expert_elbos(&held.pixels, held.n, HELD_OUT_DRAWS)?;
        Ok((0..k)
            .map(|c| {
                let rows: Vec<Vec<f32>> = routes
                    .iter()
                    .zip(&elbos)
                    .filter(|(r, _)| r.0 == c)
                    .map(|(_, e)| e[c * s..(c + 1) * s].to_vec())
                    .collect();
                prune::decide(&rows, &counts(c))
            })
            .collect())
    }

    /// The decisions in force: the last epoch's, or all styles before it.
    fn kept(&self, c: usize) -> Vec<usize> {
        self.decisions
            .get(c)
            .map_or_else(|| (0..self.styles()).collect(), |d| d.kept.clone())
    }

    /// Decoder samples of every VAE: `rows` rows, one column per VAE
    /// (`c·S + s`), row-major.
    fn vae_tiles(&self) -> anyhow::Result<Vec<Vec<f32>>> {
        self.inner.sample_tiles()
    }
}

impl Method for Hierarchical {
    type Config = HierarchicalConfig;
    const NAME: &'static str = "hierarchical";

    fn new(cfg: &HierarchicalConfig, data: &Data, ctx: &RunContext) -> anyhow::Result<Self> {
        // With `--styles auto`, the last 1/HELD_OUT_SHARE of the training
        // images decide the styles and are never trained on.
        let n = data.train.n;
        let held = if cfg.auto_styles {
            n / prune::HELD_OUT_SHARE
        } else {
            0
        };
        let train: Vec<usize> = (0..n - held).collect();
        let held_idx: Vec<usize> = (n - held..n).collect();
        let fit = Data {
            train: data.train.select(&train),
            test: data.test.clone(),
            image: data.image,
            class_names: data.class_names.clone(),
            train_source: data.train_source.clone(),
            test_source: data.test_source.clone(),
        };
        if ctx.verbose && held > 0 {
            println!(
                "styles: {held} training images held out to decide each digit expert's styles"
            );
        }
        let assignment = partition::partition(cfg, &fit.train, &ctx.run_dir, ctx.verbose)?;
        let inner = Mixture::build(
            &cfg.mixture,
            cfg.styles,
            cfg.style_hidden,
            Some(assignment),
            &ctx.device,
        )?;
        Ok(Hierarchical {
            cfg: cfg.clone(),
            inner,
            held_out: data.train.select(&held_idx),
            fit,
            style_counts: Vec::new(),
            decisions: Vec::new(),
        })
    }

    fn epochs(&self) -> usize {
        self.inner.epochs()
    }

    fn plan(&self, epoch: usize, _data: &Data) -> EpochPlan {
        self.inner.plan(epoch, &self.fit)
    }

    fn begin_epoch(&mut self, epoch: usize, _data: &Data) -> anyhow::Result<()> {
        self.inner.begin_epoch(epoch, &self.fit)
    }

    fn step(&mut self, epoch: usize, step: usize, _data: &Data) -> anyhow::Result<StepLoss> {
        self.inner.step(epoch, step, &self.fit)
    }

    fn end_epoch(
        &mut self,
        epoch: usize,
        _data: &Data,
    ) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
        let mut notes = self.inner.end_epoch(epoch, &self.fit)?;
        self.style_counts = self.count_styles(&self.fit.train.pixels, self.fit.train.n)?;
        notes.insert(
            "style_counts".into(),
            serde_json::to_value(&self.style_counts)?,
        );
        // The held-out ELBOs run every VAE on every held-out image several
        // times: once, after the last epoch, is all the export needs.
        if epoch + 1 == self.epochs() {
            self.decisions = self.decide_styles()?;
            let kept: Vec<usize> = self.decisions.iter().map(|d| d.kept.len()).collect();
            notes.insert("styles_kept".into(), serde_json::to_value(kept)?);
        }
        Ok(notes)
    }

    fn experts(&self) -> usize {
        self.cfg.mixture.arch.experts
    }

    fn parameters(&self) -> usize {
        self.inner.parameters()
    }

    fn predict(&self, pixels: &[u8], n: usize) -> anyhow::Result<Option<Vec<usize>>> {
        self.inner.predict(pixels, n)
    }

    /// One column per digit expert, its styles beneath: rows
    /// `s · GRID_ROWS / S ..` show style `s`.
    fn sample_tiles(&self) -> anyhow::Result<Vec<Vec<f32>>> {
        let (k, s) = (self.cfg.mixture.arch.experts, self.styles());
        let all = self.vae_tiles()?;
        let per_style = (GRID_ROWS / s).max(1);
        let mut tiles = Vec::with_capacity(k * s * per_style);
        for style in 0..s {
            for r in 0..per_style {
                for c in 0..k {
                    tiles.push(all[r * k * s + c * s + style].clone());
                }
            }
        }
        Ok(tiles)
    }

    fn report_notes(
        &self,
        data: &Data,
        run_dir: &Path,
        label_map: Option<&[u8]>,
    ) -> anyhow::Result<String> {
        let (k, s) = (self.cfg.mixture.arch.experts, self.styles());
        let mut r = self.inner.report_notes(data, run_dir, label_map)?;
        let headers: Vec<String> =
            crate::eval::pictures::cluster_headers(k, label_map, data.class_names.as_deref())
                .iter()
                .flat_map(|h| (0..s).map(move |st| format!("{h}\n· style {st}")))
                .collect();
        crate::eval::pictures::save_labelled_grid(
            &run_dir.join("styles.png"),
            "Decoder samples, one column per (cluster, style)",
            &self.vae_tiles()?,
            k * s,
            data.size(),
            &headers,
        )?;
        let test = self.count_styles(&data.test.pixels, data.test.n)?;
        let count = |part: &dyn Fn(&str) -> bool| -> usize {
            let vars = self.inner.params().vars();
            vars.iter()
                .filter(|(n, _)| part(n))
                .map(|(_, v)| v.elem_count())
                .sum()
        };
        let gate = count(&|n| n.starts_with("gate."));
        let style_gates = count(&|n| n.starts_with("style."));
        let decoders = count(&|n| n.contains(".decoder."));
        let kept: Vec<Vec<usize>> = (0..k).map(|c| self.kept(c)).collect();
        let vaes_kept: usize = kept.iter().map(Vec::len).sum();
        let _ = writeln!(
            r,
            "- parameters: {} trained (encoders included): gate {gate}, style gates {style_gates}, {} decoders {decoders}; model.bin holds the gate, the style gates of the digit experts that keep more than one style, and {vaes_kept} decoders",
            self.inner.parameters(),
            k * s,
        );
        let _ = writeln!(
            r,
            "\n## Styles ({s} trained per digit expert{})\n\n![decoder samples, one column per (cluster, style)](styles.png)\n",
            if self.cfg.auto_styles { ", each keeps those that pay on held-out images" } else { "" }
        );
        if self.cfg.auto_styles {
            let _ = writeln!(
                r,
                "`--styles auto`: {} training images were held out of training; on those routed to each digit expert, a style is dropped while removing it costs the held-out bound log Σ_s w_s exp(ELBO_s(x)) no more than {} nat per image (mean less two standard errors; {} latent draws per ELBO).\n\n| cluster | digit | held-out images | styles kept | cost of removing the cheapest kept style (nats/image ± s.e.) | dropped (style: cost ± s.e.) |\n|---:|---:|---:|---|---:|---|",
                self.held_out.n,
                prune::MARGIN_NATS,
                HELD_OUT_DRAWS
            );
            for (c, d) in self.decisions.iter().enumerate() {
                let digit = label_map
                    .and_then(|m| m.get(c))
                    .map_or("–".to_string(), |d| d.to_string());
                let gain = d
                    .kept_gain
                    .map_or("–".to_string(), |(m, se)| format!("{m:.2} ± {se:.2}"));
                let dropped: Vec<String> = d
                    .dropped
                    .iter()
                    .map(|(st, m, se)| format!("{st}: {m:.2} ± {se:.2}"))
                    .collect();
                let _ = writeln!(
                    r,
                    "| {c} | {digit} | {} | {:?} | {gain} | {} |",
                    d.images,
                    d.kept,
                    if dropped.is_empty() {
                        "–".to_string()
                    } else {
                        dropped.join(", ")
                    }
                );
            }
            let _ = writeln!(r);
        }
        if self.cfg.auto_styles {
            // The exported model: the dropped styles' prior mass moved to
            // the kept styles of the same digit expert.
            let mut prior = self
                .inner
                .routing_log_prior(&self.fit.train.pixels, self.fit.train.n)?;
            for (c, kept) in self.decisions.iter().map(|d| &d.kept).enumerate() {
                let group = &mut prior[c * s..(c + 1) * s];
                let mass: f64 = group.iter().map(|v| v.exp()).sum();
                let kept_mass: f64 = kept.iter().map(|&st| group[st].exp()).sum();
                for (st, v) in group.iter_mut().enumerate() {
                    *v = if kept.contains(&st) {
                        *v + (mass / kept_mass.max(1e-12)).ln()
                    } else {
                        f64::NEG_INFINITY
                    };
                }
            }
            let n = data.test.n.min(crate::methods::mixture::LIKELIHOOD_IMAGES);
            let ll = self.inner.log_likelihood(
                &data.test.pixels[..n * self.cfg.mixture.arch.pixels],
                n,
                &prior,
                crate::methods::mixture::LIKELIHOOD_SAMPLES,
            )?;
            let _ = writeln!(
                r,
                "Test log-likelihood of the kept styles only (the exported model; the same estimator as above, each dropped style's prior mass given to its digit expert's kept styles): {ll:.2} nats/image\n"
            );
        }
        let _ = writeln!(
            r,
            "Images per style under the routing's argmax (cluster of the largest p(c|x), then style of the largest p(s|x,c)), all {s} trained styles.\n"
        );
        let cols: String = ["training", "test"]
            .iter()
            .flat_map(|set| (0..s).map(move |st| format!(" {set}, style {st} |")))
            .collect();
        let _ = writeln!(
            r,
            "| cluster | digit |{cols}\n|{}",
            "---:|".repeat(2 * s + 2)
        );
        for c in 0..k {
            let digit = label_map
                .and_then(|m| m.get(c))
                .map_or("–".to_string(), |d| d.to_string());
            let row = |counts: &[Vec<usize>]| -> String {
                let none = vec![0; s];
                let v = counts.get(c).unwrap_or(&none);
                v.iter().map(|n| format!(" {n} |")).collect()
            };
            let _ = writeln!(
                r,
                "| {c} | {digit} |{}{}",
                row(&self.style_counts),
                row(&test)
            );
        }
        Ok(r)
    }

    /// The gate, and for each digit expert its kept styles: their decoders,
    /// their training shares, and its style gate's rows for them (none
    /// when it keeps one style).
    fn to_spec(&self, sizes: &[usize], label_map: Option<Vec<u8>>) -> anyhow::Result<TwoLevelSpec> {
        let n = sizes.iter().sum::<usize>().max(1) as f32;
        let weights: Vec<f32> = sizes.iter().map(|&s| s as f32 / n).collect();
        let s = self.styles();
        let nets = self.inner.nets();
        let kept: Vec<Vec<usize>> = (0..self.experts()).map(|c| self.kept(c)).collect();
        let provenance = format!(
            "{} hierarchical styles={s} style-hidden={} auto={} kept={:?}",
            export::provenance(&self.cfg.mixture),
            self.cfg.style_hidden,
            self.cfg.auto_styles,
            kept.iter().map(Vec::len).collect::<Vec<_>>()
        );
        let model =
            export::to_spec_with(nets, &self.cfg.mixture, &[], weights, label_map, provenance)?;
        let clusters = kept
            .iter()
            .enumerate()
            .map(|(c, kept)| -> anyhow::Result<ClusterSpec> {
                let counts = self.style_counts.get(c);
                let count = |st: usize| counts.and_then(|v| v.get(st)).copied().unwrap_or(0);
                let total = kept.iter().map(|&st| count(st)).sum::<usize>();
                let style_weights = kept
                    .iter()
                    .map(|&st| {
                        if total == 0 {
                            1.0 / kept.len() as f32
                        } else {
                            count(st) as f32 / total as f32
                        }
                    })
                    .collect();
                let gate = match (&nets.styles, kept.len()) {
                    (Some(g), 2..) => {
                        let mut layers = g.export(c)?;
                        if let Some(head) = layers.last_mut() {
                            keep_rows(head, kept);
                        }
                        layers
                    }
                    _ => Vec::new(),
                };
                let decoders = kept
                    .iter()
                    .map(|&st| nets.export_decoder(c * s + st))
                    .collect::<candle_core::Result<_>>()?;
                Ok(ClusterSpec {
                    style_weights,
                    gate,
                    decoders,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(TwoLevelSpec {
            model,
            clusters,
            novelty: None,
        })
    }

    fn checkpoint(&self) -> anyhow::Result<(HashMap<String, Tensor>, serde_json::Value)> {
        let (tensors, mixture) = self.inner.checkpoint()?;
        let state = HierarchicalState {
            mixture,
            style_counts: self.style_counts.clone(),
            decisions: self.decisions.clone(),
        };
        Ok((tensors, serde_json::to_value(state)?))
    }

    fn restore(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        state: serde_json::Value,
        file: &Path,
    ) -> anyhow::Result<()> {
        let state: HierarchicalState = serde_json::from_value(state).map_err(|e| {
            anyhow::anyhow!(
                "{}: not a hierarchical mixture's state: {e}",
                file.display()
            )
        })?;
        self.inner.restore(tensors, state.mixture, file)?;
        self.style_counts = state.style_counts;
        self.decisions = state.decisions;
        Ok(())
    }
}

/// Keeps the output rows `rows` (in that order) of a dense layer.
fn keep_rows(layer: &mut engine::writer::DenseF32, rows: &[usize]) {
    let w = layer.inputs;
    layer.weights = rows
        .iter()
        .flat_map(|&r| layer.weights[r * w..(r + 1) * w].to_vec())
        .collect();
    layer.bias = rows.iter().map(|&r| layer.bias[r]).collect();
    layer.outputs = rows.len();
}

#[cfg(test)]
mod tests {
    use super::routes;

    #[test]
    fn routes_pick_the_digit_expert_then_its_style() {
        let ln = |p: f32| p.ln();
        // p(c) = (0.55, 0.45); under c0 styles (0.4, 0.6), under c1 (0.9,
        // 0.1): the largest single entry is c1·s0 (0.405), but c0 wins the
        // top level, and then its style 1.
        let row = vec![ln(0.22), ln(0.33), ln(0.405), ln(0.045)];
        assert_eq!(routes(&[row], 2), vec![(0, 1)]);
    }
}
