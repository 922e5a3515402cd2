//! The two-level mixture (`trainer fit --method hierarchical`): the gate
//! (top manager) routes an image to K digit experts, and each digit expert
//! is itself a mixture: its own style gate over S style VAEs. The style
//! gates read the gate's last hidden layer through one small dense layer,
//! so routing an image costs one gate pass and that head.
//!
//! It is the one-level mixture ([`crate::methods::mixture`]) with a
//! [`StyleHead`](crate::methods::mixture::nets::StyleHead): the routing
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
//!
//! The engine does not read two-level models yet: the run directory's
//! `model.bin` is the flat view the loop scores (the gate and, for each
//! digit expert, the decoder of its most used style), and `--export` is
//! refused.

pub mod config;
pub mod loss;
pub mod partition;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use candle_core::Tensor;
use engine::writer::ModelSpec;
use serde::{Deserialize, Serialize};

use crate::methods::mixture::{export, Mixture};
use crate::train::{Data, EpochPlan, Method, RunContext, StepLoss, GRID_ROWS};
pub use config::HierarchicalConfig;

/// A two-level mixture being trained.
pub struct Hierarchical {
    cfg: HierarchicalConfig,
    inner: Mixture,
    /// Training images per (digit expert, style) under the routing's
    /// argmax, after the last epoch.
    style_counts: Vec<Vec<usize>>,
}

/// The two-level mixture's part of `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HierarchicalState {
    mixture: serde_json::Value,
    style_counts: Vec<Vec<usize>>,
}

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

    /// The style of each digit expert that most training images take (0
    /// before any count).
    fn main_styles(&self) -> Vec<usize> {
        (0..self.cfg.mixture.arch.experts)
            .map(|c| {
                self.style_counts
                    .get(c)
                    .and_then(|row| row.iter().enumerate().max_by_key(|(_, n)| **n))
                    .map_or(0, |(s, _)| s)
            })
            .collect()
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
        let assignment = partition::partition(cfg, &data.train, &ctx.run_dir, ctx.verbose)?;
        let inner = Mixture::build(&cfg.mixture, cfg.styles, Some(assignment), &ctx.device)?;
        Ok(Hierarchical {
            cfg: cfg.clone(),
            inner,
            style_counts: Vec::new(),
        })
    }

    fn epochs(&self) -> usize {
        self.inner.epochs()
    }

    fn plan(&self, epoch: usize, data: &Data) -> EpochPlan {
        self.inner.plan(epoch, data)
    }

    fn begin_epoch(&mut self, epoch: usize, data: &Data) -> anyhow::Result<()> {
        self.inner.begin_epoch(epoch, data)
    }

    fn step(&mut self, epoch: usize, step: usize, data: &Data) -> anyhow::Result<StepLoss> {
        self.inner.step(epoch, step, data)
    }

    fn end_epoch(
        &mut self,
        epoch: usize,
        data: &Data,
    ) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
        let mut notes = self.inner.end_epoch(epoch, data)?;
        self.style_counts = self.count_styles(&data.train.pixels, data.train.n)?;
        notes.insert(
            "style_counts".into(),
            serde_json::to_value(&self.style_counts)?,
        );
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
        let head = count(&|n| n.starts_with("style."));
        let decoders = count(&|n| n.contains(".decoder."));
        let _ = writeln!(
            r,
            "- parameters: {} trained (encoders included); a two-level model for the engine would hold {} (gate {gate}, style head {head}, {} decoders {decoders}); model.bin's flat view {}",
            self.inner.parameters(),
            gate + head + decoders,
            k * s,
            gate + decoders / s
        );
        let _ = writeln!(
            r,
            "- model.bin is the flat view (the engine does not read two-level models yet): the gate and each cluster's most used style's decoder\n\n## Styles ({s} per digit expert)\n\n![decoder samples, one column per (cluster, style)](styles.png)\n\nImages per style under the routing's argmax (cluster of the largest p(c|x), then style of the largest p(s|x,c)).\n"
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

    fn to_spec(&self, sizes: &[usize], label_map: Option<Vec<u8>>) -> anyhow::Result<ModelSpec> {
        let n = sizes.iter().sum::<usize>().max(1) as f32;
        let weights: Vec<f32> = sizes.iter().map(|&s| s as f32 / n).collect();
        let s = self.styles();
        let main = self.main_styles();
        let decoders: Vec<usize> = main.iter().enumerate().map(|(c, m)| c * s + m).collect();
        let provenance = format!(
            "{} hierarchical styles={s} flat-view main-styles={main:?}",
            export::provenance(&self.cfg.mixture)
        );
        export::to_spec_with(
            self.inner.nets(),
            &self.cfg.mixture,
            &decoders,
            weights,
            label_map,
            provenance,
        )
    }

    fn checkpoint(&self) -> anyhow::Result<(HashMap<String, Tensor>, serde_json::Value)> {
        let (tensors, mixture) = self.inner.checkpoint()?;
        let state = HierarchicalState {
            mixture,
            style_counts: self.style_counts.clone(),
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
        Ok(())
    }
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
