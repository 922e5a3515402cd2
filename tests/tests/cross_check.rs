//! The engine (f16 weights, no_std kernels) against the trainer's own candle
//! forward pass of the same model file: a model is trained on a small slice
//! of MNIST, exported, and both run on all 10,000 test images.

use std::path::PathBuf;

use engine::Model;
use trainer::eval::reference::ReferenceModel;
use trainer::methods::mixture::{Mixture, MixtureConfig, Preset, Start};
use trainer::train::{fit, FitOptions};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")
}

/// A quickly trained model (random start, one epoch on 600 images), exported.
fn trained_model(dir: &std::path::Path, preset: Preset) -> Vec<u8> {
    let mut cfg = MixtureConfig::preset(preset);
    cfg.start = Start::Random;
    cfg.epochs = 1;
    cfg.limit = Some(600);
    cfg.seed = 3;
    let export = dir.join("model.bin");
    let opts = FitOptions {
        data: Some(trainer::train::DataOptions {
            data: data_dir(),
            ..Default::default()
        }),
        out: Some(dir.join("run")),
        resume: None,
        epochs: None,
        export: Some(export.clone()),
        weights: Default::default(),
        novelty: true,
        export_only: false,
        device: candle_core::Device::Cpu,
        verbose: false,
    };
    fit::<Mixture>(Some(cfg), &opts, |c, e| c.epochs = e).expect("training the test model");
    std::fs::read(&export).expect("exported model")
}

fn cross_check(preset: Preset) {
    let dir = tempfile::tempdir().unwrap();
    let bytes = trained_model(dir.path(), preset);
    let model = Model::from_bytes(&bytes).unwrap();
    let spec = engine::writer::TwoLevelSpec::from_bytes(&bytes).unwrap();
    let reference = ReferenceModel::from_two_level(&spec, &candle_core::Device::Cpu).unwrap();
    let test = trainer::data::read_images(data_dir().join("t10k-images-idx3-ubyte.gz")).unwrap();
    assert_eq!(test.n, 10_000);

    let gate = reference.gate_hidden(&test.pixels, test.n).unwrap();
    let probs = &gate.probabilities;
    let novelty = spec
        .novelty
        .as_ref()
        .expect("the export fits a novelty score");
    let (mut same_verdict, mut flagged, mut worst_score) = (0usize, 0usize, 0.0f32);
    let mut ws = engine::host::workspace();
    let mut agree = 0;
    let mut max_prob_diff = 0.0f32;
    let mut used = vec![false; model.experts()];
    for (i, p) in probs.iter().enumerate() {
        let c = model.classify(&mut ws, test.image(i)).unwrap();
        let reference_cluster = engine::kernels::argmax(p);
        agree += usize::from(c.cluster == reference_cluster);
        used[c.cluster] = true;
        for (a, b) in c.probabilities.iter().zip(p) {
            max_prob_diff = max_prob_diff.max((a - b).abs());
        }
        // The novelty score: the f16 file's, against the f32 reference of
        // the same weights and section.
        let ours = c.novelty.expect("a novelty score");
        let theirs = novelty.novelty(p, &gate.hidden[i]);
        same_verdict += usize::from(ours.known == theirs.known);
        flagged += usize::from(!ours.known);
        if c.cluster == reference_cluster {
            worst_score =
                worst_score.max((ours.score - theirs.score).abs() / theirs.score.max(1.0));
        }
    }
    let verdicts = same_verdict as f64 / test.n as f64;
    let flagged = flagged as f64 / test.n as f64;
    eprintln!(
        "{preset:?}: novelty verdict agreement {verdicts:.4}, {:.2}% of test digits flagged, worst relative score difference {worst_score:.2e}",
        100.0 * flagged
    );
    assert!(
        verdicts >= 0.995,
        "novelty verdicts agree on only {verdicts}"
    );
    assert!(worst_score < 1e-2, "novelty scores differ by {worst_score}");
    // 600 training images: the gate is sure of itself on them, so its doubt
    // threshold is low, and about 3-4% of test digits are flagged (the
    // default model, fitted on 60,000, flags about 1%: trainer/README.md).
    assert!(flagged <= 0.08, "{flagged} of the test digits flagged");
    let agreement = agree as f64 / test.n as f64;
    eprintln!("{preset:?}: argmax agreement {agreement:.4}, max probability difference {max_prob_diff:.2e}");
    assert!(
        agreement >= 0.999,
        "engine and candle agree on only {agreement}"
    );
    assert!(
        max_prob_diff < 1e-3,
        "probabilities differ by {max_prob_diff}"
    );
    assert!(
        used.iter().filter(|&&u| u).count() > 1,
        "every image went to one cluster"
    );

    let mut worst = 0.0f32;
    let mut z = vec![0.0f32; model.latent()];
    for expert in 0..model.experts() {
        for seed in 0..5u64 {
            engine::rng::SplitMix64::new(seed).fill_normal(&mut z);
            let ours = model.generate(&mut ws, expert, seed).unwrap().to_vec();
            let theirs = reference.decode(expert, &z).unwrap();
            assert_eq!(ours.len(), theirs.len());
            for (a, b) in ours.iter().zip(&theirs) {
                worst = worst.max((a - b).abs());
            }
        }
    }
    eprintln!("{preset:?}: worst generated pixel difference {worst:.2e}");
    assert!(worst < 1e-2, "generated pixels differ by {worst}");
}

#[test]
fn engine_matches_candle_default_architecture() {
    cross_check(Preset::Default);
}

#[test]
fn engine_matches_candle_blog_architecture() {
    cross_check(Preset::Blog);
}
