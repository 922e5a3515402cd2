//! `trainer experiment novelty`: four candidate novelty scores (higher =
//! more novel) of a finished flat mixture run, measured on
//! out-of-distribution sets made in code ([`crate::eval::ood`]) against
//! the MNIST test set, with a threshold calibrated on training images only.
//!
//! | candidate | score of image x |
//! |---|---|
//! | 1 − max p | 1 − the gate's largest softmax probability |
//! | energy | −logsumexp of the gate's logits |
//! | Gaussian (gate hidden) | −log density of the gate's last hidden layer under the argmax cluster's diagonal Gaussian, fitted on training images grouped by the gate's argmax |
//! | expert −ELBO | the argmax cluster's VAE's negative ELBO (one draw) |
//! | Gaussian or 1 − max p | the larger of the two scores' ranks among the training scores (their empirical distribution functions): on a device, two thresholds |
//!
//! Each score's threshold is the 99th percentile of its training scores; the
//! tables give each set's AUROC against the test digits and the share
//! flagged, and what each score would add to a model file and to a
//! classification, computed from the model's shapes. Labels are never read.

use std::path::Path;

use anyhow::{bail, Context};
use candle_core::{Device, Tensor};

use crate::data::{batch_pixels, Images, Invert, Mnist};
use crate::eval::novelty::{auroc, empirical_cdf, percentile, share_above, DiagGaussians};
use crate::eval::ood;
use crate::methods::mixture::Mixture;
use crate::train::Method;

/// The percentile of training scores a threshold sits at.
pub const THRESHOLD_PERCENTILE: f64 = 99.0;

/// Each variance of the hidden-layer Gaussians is at least this share of
/// the mean variance of a unit over all training images: the export's.
pub use crate::export::novelty::VAR_FLOOR_SHARE;

/// Names of the candidates, in the tables' order (the last combines the
/// first and the third).
pub const CANDIDATES: [&str; 5] = [
    "1 − max p",
    "energy",
    "Gaussian (gate hidden)",
    "expert −ELBO",
    "Gaussian or 1 − max p",
];

/// Sizes of the measurement.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Images per out-of-distribution set.
    pub per_set: usize,
    /// Training images the Gaussians and thresholds are fitted on (`None`:
    /// all).
    pub train_images: Option<usize>,
    /// Test images (`None`: all).
    pub test_images: Option<usize>,
}

impl Settings {
    /// What the bench runs: 2,000 images per set (all 1,797 scikit-learn
    /// digits), all training and test images.
    pub fn full() -> Self {
        Settings {
            per_set: 2000,
            train_images: None,
            test_images: None,
        }
    }

    /// What the tests run.
    pub fn quick() -> Self {
        Settings {
            per_set: 60,
            train_images: Some(600),
            test_images: Some(300),
        }
    }
}

/// Restores the trained flat mixture of run directory `run` (its
/// `config.json`, `state.json` and checkpoint) on the CPU.
pub fn load_mixture(run: &Path) -> anyhow::Result<Mixture> {
    if !run.is_dir() {
        bail!("{}: no such run directory", run.display());
    }
    let method = crate::train::fit::run_method(run)?;
    if method != Mixture::NAME {
        bail!(
            "{}: a {method} run, not a flat mixture run",
            run.join("config.json").display()
        );
    }
    if !crate::train::has_checkpoint(run) {
        bail!(
            "{}: no finished run there (no {} and {})",
            run.display(),
            crate::train::CHECKPOINT,
            crate::train::STATE
        );
    }
    let cfg = crate::train::fit::read_config::<Mixture>(run)?;
    if cfg.arch.pixels != ood::PIXELS {
        bail!(
            "{}: a model of {} pixels, not MNIST's 28×28",
            run.display(),
            cfg.arch.pixels
        );
    }
    let mut mixture = Mixture::build(&cfg, 1, 0, None, &Device::Cpu)?;
    let st = run.join(crate::train::STATE);
    let text =
        std::fs::read_to_string(&st).with_context(|| format!("{}: cannot read", st.display()))?;
    let state: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", st.display()))?;
    let Some(method_state) = state.get("method").cloned() else {
        bail!("{}: not a training state", st.display());
    };
    let ck = run.join(crate::train::CHECKPOINT);
    let tensors = candle_core::safetensors::load(&ck, &Device::Cpu)
        .map_err(|e| anyhow::anyhow!("{}: cannot load checkpoint: {e}", ck.display()))?;
    mixture.restore(&tensors, method_state, &ck)?;
    Ok(mixture)
}

/// The gate's last hidden layer and logits of every image.
struct GateOut {
    hidden: Vec<Vec<f32>>,
    logits: Vec<Vec<f32>>,
}

impl GateOut {
    fn of(mixture: &Mixture, images: &Images) -> anyhow::Result<Self> {
        let p = ood::PIXELS;
        let all: Vec<usize> = (0..images.n).collect();
        let (mut hidden, mut logits) = (Vec::new(), Vec::new());
        for idx in all.chunks(1000) {
            let x = Tensor::from_vec(
                batch_pixels(&images.pixels, (p, 1), idx, 0, None),
                (idx.len(), p),
                &Device::Cpu,
            )?;
            let (h, l) = mixture.nets().gate.forward_hidden(&x)?;
            hidden.extend(h.to_vec2::<f32>()?);
            logits.extend(l.to_vec2::<f32>()?);
        }
        Ok(GateOut { hidden, logits })
    }

    /// The gate's choice (argmax of the logits) per image.
    fn argmax(&self) -> Vec<usize> {
        self.logits
            .iter()
            .map(|l| {
                l.iter()
                    .enumerate()
                    .fold(
                        (0, f32::NEG_INFINITY),
                        |b, (i, &v)| if v > b.1 { (i, v) } else { b },
                    )
                    .0
            })
            .collect()
    }
}

/// The first four candidates' scores of every image of `images`, in
/// [`CANDIDATES`]' order.
fn scores(
    mixture: &Mixture,
    gauss: &DiagGaussians,
    gate: &GateOut,
    images: &Images,
) -> anyhow::Result<Vec<Vec<f64>>> {
    let chosen = gate.argmax();
    let lse: Vec<f64> = gate
        .logits
        .iter()
        .map(|l| crate::util::log_sum_exp(&l.iter().map(|&v| v as f64).collect::<Vec<_>>()))
        .collect();
    let max_p = gate
        .logits
        .iter()
        .zip(&lse)
        .map(|(l, s)| 1.0 - (l.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64 - s).exp())
        .collect();
    let energy = lse.iter().map(|s| -s).collect();
    let gaussian = gate
        .hidden
        .iter()
        .zip(&chosen)
        .map(|(h, &c)| gauss.neg_log_density(c, h))
        .collect();
    let elbos = mixture.expert_elbos(&images.pixels, images.n, 1)?;
    let neg_elbo = elbos
        .iter()
        .zip(&chosen)
        .map(|(e, &c)| -(e[c] as f64))
        .collect();
    Ok(vec![max_p, energy, gaussian, neg_elbo])
}

/// Appends the combined candidate to `scores` (the first four): per image,
/// the larger of the ranks of its Gaussian and 1 − max p scores among the
/// training ones (`sorted_train`, each ascending).
fn add_combined(scores: &mut Vec<Vec<f64>>, sorted_train: &[Vec<f64>]) {
    let combined = scores[0]
        .iter()
        .zip(&scores[2])
        .map(|(&p, &g)| empirical_cdf(&sorted_train[0], p).max(empirical_cdf(&sorted_train[2], g)))
        .collect();
    scores.push(combined);
}

/// The out-of-distribution sets: name and images.
fn ood_sets(
    test: &Images,
    sklearn: Option<&Path>,
    n: usize,
    seed: u64,
) -> anyhow::Result<Vec<(String, Images)>> {
    let mut sets = vec![
        ("uniform noise".to_string(), ood::uniform_noise(n, seed)),
        (
            "blank and near-blank (0–5 pixels)".into(),
            ood::near_blank(n, seed),
        ),
        ("random strokes (1–4)".into(), ood::strokes(n, seed)),
        ("shuffled-pixel MNIST".into(), ood::shuffled(test, n, seed)),
        (
            "inverted MNIST (255 − x)".into(),
            ood::inverted(test, n, seed),
        ),
        (
            "MNIST, 10×10 block cut out".into(),
            ood::block_cut(test, n, seed),
        ),
        ("letters A–Z (DejaVu Sans)".into(), ood::letters(n, seed)),
    ];
    if let Some(dir) = sklearn {
        let framing = crate::data::framing::Framing {
            width: ood::SIDE,
            height: ood::SIDE,
            invert: Invert::Auto,
        };
        let mut set = crate::data::folder::read_folder(dir, Some(framing))?;
        set.images.truncate(n);
        sets.push((
            "scikit-learn 8×8 digits, framed to 28×28".into(),
            set.images,
        ));
    }
    Ok(sets)
}

/// Extra parameters and multiply-adds per classification of each
/// candidate, and the model's own (the gate's multiply-adds; the
/// parameters of the gate and the decoders, what `model.bin` holds).
struct Costs {
    params: [usize; 5],
    macs: [usize; 5],
    base_params: usize,
    base_macs: usize,
}

impl Costs {
    fn of(cfg: &crate::methods::mixture::MixtureConfig) -> Self {
        let a = &cfg.arch;
        let dense = |i: usize, o: usize| (i * o + o, i * o);
        let chain = |widths: &[usize]| {
            widths.windows(2).fold((0, 0), |(p, m), w| {
                let (dp, dm) = dense(w[0], w[1]);
                (p + dp, m + dm)
            })
        };
        let mut gate_w = vec![a.pixels];
        gate_w.extend(&a.gate_hidden);
        gate_w.push(a.experts);
        let (gate_p, gate_m) = chain(&gate_w);
        let mut dec_w = vec![a.latent];
        dec_w.extend(&a.decoder_hidden);
        dec_w.push(a.pixels);
        let (dec_p, dec_m) = chain(&dec_w);
        let (enc_p, enc_m) = chain(&[a.pixels, a.encoder_hidden, 2 * a.latent]);
        let hidden = a.gate_hidden.last().copied().unwrap_or(a.pixels);
        Costs {
            // Means and inverse variances per cluster (and one constant).
            // The combination: the Gaussian's, and a second threshold.
            params: [
                0,
                0,
                a.experts * (2 * hidden + 1),
                a.experts * enc_p,
                a.experts * (2 * hidden + 1) + 1,
            ],
            // (h − μ)², times 1/σ², summed.
            macs: [0, 0, 2 * hidden, enc_m + dec_m + a.pixels, 2 * hidden],
            base_params: gate_p + a.experts * dec_p,
            base_macs: gate_m,
        }
    }
}

/// Thousands separated by commas.
fn commas(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Runs the measurement on run `run` and MNIST in `data` (the
/// scikit-learn digit folder `sklearn` too, if given), writing nothing:
/// returns the markdown.
pub fn run(
    run: &Path,
    data: &Path,
    sklearn: Option<&Path>,
    settings: &Settings,
    seed: u64,
) -> anyhow::Result<String> {
    let mixture = load_mixture(run)?;
    let mut mnist = Mnist::load(data)?;
    if let Some(n) = settings.train_images {
        mnist.limit_train(n);
    }
    if let Some(n) = settings.test_images {
        mnist.test_images.truncate(n);
    }
    if (mnist.train_images.rows, mnist.train_images.cols) != (ood::SIDE, ood::SIDE) {
        bail!("{}: not 28×28 images", data.display());
    }
    let k = mixture.cfg().arch.experts;

    eprintln!("novelty: {} training images", mnist.train_images.n);
    let train_gate = GateOut::of(&mixture, &mnist.train_images)?;
    let gauss = DiagGaussians::fit(&train_gate.hidden, &train_gate.argmax(), k, VAR_FLOOR_SHARE);
    let mut train = scores(&mixture, &gauss, &train_gate, &mnist.train_images)?;
    let sorted_train: Vec<Vec<f64>> = train
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.sort_by(f64::total_cmp);
            s
        })
        .collect();
    add_combined(&mut train, &sorted_train);
    let thresholds: Vec<f64> = train
        .iter()
        .map(|s| percentile(s, THRESHOLD_PERCENTILE))
        .collect();
    let score_set = |images: &Images| -> anyhow::Result<Vec<Vec<f64>>> {
        let mut s = scores(&mixture, &gauss, &GateOut::of(&mixture, images)?, images)?;
        add_combined(&mut s, &sorted_train);
        Ok(s)
    };
    let test = score_set(&mnist.test_images)?;

    let mut md = format!(
        "Novelty candidates of the flat mixture in `{}` (K = {k}), higher = more novel. Thresholds: the {THRESHOLD_PERCENTILE}th percentile of each score on {} training images (no labels); the Gaussians of the gate's last hidden layer fitted on the same images grouped by the gate's choice, each variance at least {VAR_FLOOR_SHARE} × a unit's mean variance. AUROC: each set against the {} MNIST test images (ties half); flagged: share above the threshold. The expert's ELBO is one draw of its latent noise.\n\n",
        run.display(),
        commas(mnist.train_images.n),
        commas(mnist.test_images.n)
    );
    md.push_str("| set | images |");
    for c in CANDIDATES {
        md.push_str(&format!(" {c}: AUROC | flagged |"));
    }
    md.push_str("\n|---|---:|");
    md.push_str(&"---:|---:|".repeat(CANDIDATES.len()));
    md.push_str(&format!(
        "\n| MNIST test (known digits) | {} |",
        commas(mnist.test_images.n)
    ));
    for (s, t) in test.iter().zip(&thresholds) {
        md.push_str(&format!(" – | {:.1}% |", 100.0 * share_above(s, *t)));
    }
    md.push('\n');
    let sets = ood_sets(&mnist.test_images, sklearn, settings.per_set, seed)?;
    for (name, images) in &sets {
        eprintln!("novelty: {name}");
        let got = score_set(images)?;
        md.push_str(&format!("| {name} | {} |", commas(images.n)));
        for ((s, known), t) in got.iter().zip(&test).zip(&thresholds) {
            md.push_str(&format!(
                " {:.3} | {:.1}% |",
                auroc(known, s),
                100.0 * share_above(s, *t)
            ));
        }
        md.push('\n');
    }

    let costs = Costs::of(mixture.cfg());
    md.push_str(&format!(
        "\nCost of each candidate on a device, from the model's shapes: the model file holds the gate and the {k} decoders ({} parameters); a classification is the gate's {} multiply-adds.\n\n| | {} |\n|---|{}\n",
        commas(costs.base_params),
        commas(costs.base_macs),
        CANDIDATES.join(" | "),
        "---:|".repeat(CANDIDATES.len())
    ));
    let row = |label: &str, f: &dyn Fn(usize) -> String| {
        let cells: Vec<String> = (0..CANDIDATES.len()).map(f).collect();
        format!("| {label} | {} |\n", cells.join(" | "))
    };
    let pct = |x: usize, base: usize| 100.0 * x as f64 / base as f64;
    md.push_str(&row("extra parameters", &|i| {
        format!(
            "{} (+{:.1}%)",
            commas(costs.params[i]),
            pct(costs.params[i], costs.base_params)
        )
    }));
    md.push_str(&row("extra bytes, f16 / int8", &|i| {
        format!(
            "{} / {}",
            commas(2 * costs.params[i]),
            commas(costs.params[i])
        )
    }));
    md.push_str(&row("extra multiply-adds per classification", &|i| {
        format!(
            "{} (+{:.1}%)",
            commas(costs.macs[i]),
            pct(costs.macs[i], costs.base_macs)
        )
    }));
    md.push_str(&row("threshold (99th percentile, training)", &|i| {
        format!("{:.4}", thresholds[i])
    }));
    md.push_str("\nThe expert's −ELBO needs every expert's encoder in the file (any may be chosen) and, per classification, the chosen encoder, its decoder and one log-likelihood term per pixel (counted as one multiply-add each; a softplus each besides). The Gaussian needs a mean and an inverse variance per unit and cluster, and one constant per cluster. The combination's threshold on its rank is, on a device, one threshold per score (the scores at that rank among the training ones): flagged when either is passed.\n");
    md.push_str(&as_built(run, &mixture, &mnist, &sets)?);
    Ok(md)
}

/// The score as the product computes it (`engine/FORMAT.md`, *Novelty*):
/// the run's exported files' novelty sections, the f32 model's score
/// (the section's parameters on the f32 gate) and the engine's on
/// `model.bin` (f16) and `model-int8.bin`, per set; and what the section
/// adds to each file. Empty when the run's files have no section.
fn as_built(
    run: &Path,
    mixture: &Mixture,
    mnist: &Mnist,
    sets: &[(String, Images)],
) -> anyhow::Result<String> {
    use crate::export::novelty::engine_scores;
    use engine::writer::TwoLevelSpec;
    let read = |name: &str| {
        let path = run.join(name);
        std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))
    };
    let (f16, int8) = (read("model.bin")?, read("model-int8.bin")?);
    let spec = TwoLevelSpec::from_bytes(&f16)
        .map_err(|e| anyhow::anyhow!("{}: {e}", run.join("model.bin").display()))?;
    let Some(section) = spec.novelty.clone() else {
        return Ok(format!(
            "\n`{}` has no novelty section (exported with --no-novelty, or before the score existed): no as-built table.\n",
            run.join("model.bin").display()
        ));
    };
    // The f32 model's score: the section on the f32 gate's outputs.
    let reference = |images: &Images| -> anyhow::Result<Vec<engine::Novelty>> {
        let gate = GateOut::of(mixture, images)?;
        Ok(gate
            .hidden
            .iter()
            .zip(&gate.logits)
            .map(|(h, l)| {
                let mut p = l.clone();
                engine::kernels::softmax(&mut p);
                section.novelty(&p, h)
            })
            .collect())
    };
    let engine = |bytes: &[u8], images: &Images| -> anyhow::Result<Vec<engine::Novelty>> {
        Ok(engine_scores(bytes, &images.pixels, images.n)?
            .into_iter()
            .map(|n| n.unwrap_or(engine::Novelty::new(f32::NAN, f32::NAN, 1.0)))
            .collect())
    };
    let all = |images: &Images| -> anyhow::Result<[Vec<engine::Novelty>; 3]> {
        Ok([
            reference(images)?,
            engine(&f16, images)?,
            engine(&int8, images)?,
        ])
    };
    let score = |v: &[engine::Novelty]| -> Vec<f64> { v.iter().map(|n| n.score as f64).collect() };
    let flagged = |v: &[engine::Novelty]| {
        100.0 * v.iter().filter(|n| !n.known).count() as f64 / v.len().max(1) as f64
    };
    let known = all(&mnist.test_images)?;
    let mut md = format!(
        "\n### The score as built\n\nThe novelty section of `{}` and `model-int8.bin` (fitted by the export on the training images: per cluster a Gaussian over the gate's last hidden layer and a threshold on the doubt, both at one quantile; doubt threshold {:.4}): score = the larger of the two, in threshold units; flagged = score > 1. f32: the section on the f32 gate; f16 and int8: the engine on the files. AUROC of the score against the {} MNIST test images.\n\n| set | images | f32: AUROC | flagged | f16: AUROC | flagged | int8: AUROC | flagged |\n|---|---:|---:|---:|---:|---:|---:|---:|\n| MNIST test (known digits) | {} | – | {:.1}% | – | {:.1}% | – | {:.1}% |\n",
        run.join("model.bin").display(),
        section.doubt_threshold,
        commas(mnist.test_images.n),
        commas(mnist.test_images.n),
        flagged(&known[0]),
        flagged(&known[1]),
        flagged(&known[2]),
    );
    for (name, images) in sets {
        let got = all(images)?;
        md.push_str(&format!("| {name} | {} |", commas(images.n)));
        for (g, k) in got.iter().zip(&known) {
            md.push_str(&format!(
                " {:.3} | {:.1}% |",
                auroc(&score(k), &score(g)),
                flagged(g)
            ));
        }
        md.push('\n');
    }
    // What the section adds: the same model written without it (lengths
    // depend on the shapes only, so the int8 rewrite's calibration does not
    // matter).
    let without = TwoLevelSpec {
        novelty: None,
        ..spec.clone()
    };
    let plain_f16 = without.to_bytes()?.len();
    let pixels = mnist.train_images.rows * mnist.train_images.cols;
    let few = &mnist.train_images.pixels[..pixels * mnist.train_images.n.min(1000)];
    let plain_int8 = without.to_int8_bytes(&without.calibrate(few, 1))?.len();
    let row = |name: &str, with: usize, plain: usize| {
        format!(
            "| {name} | {} | {} | {} (+{:.1}%) |\n",
            commas(plain),
            commas(with),
            commas(with - plain.min(with)),
            100.0 * (with as f64 / plain as f64 - 1.0)
        )
    };
    md.push_str("\n| file | bytes without the section | with it | added |\n|---|---:|---:|---:|\n");
    md.push_str(&row("model.bin (f16)", f16.len(), plain_f16));
    md.push_str(&row("model-int8.bin", int8.len(), plain_int8));
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_group_thousands() {
        assert_eq!(commas(0), "0");
        assert_eq!(commas(999), "999");
        assert_eq!(commas(1000), "1,000");
        assert_eq!(commas(1234567), "1,234,567");
    }
}
