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
    // The export carries a novelty section, so the file is version 3: read
    // it as a two-level spec (clusters of one style).
    let spec = engine::writer::TwoLevelSpec::from_bytes(&bytes).unwrap();
    let reference = ReferenceModel::from_two_level(&spec, &candle_core::Device::Cpu).unwrap();
    let test = trainer::data::read_images(data_dir().join("t10k-images-idx3-ubyte.gz")).unwrap();
    assert_eq!(test.n, 10_000);

    let probs = reference.gate_probabilities(&test.pixels, test.n).unwrap();
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
    }
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
