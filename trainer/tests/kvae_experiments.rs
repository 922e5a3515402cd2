//! The kVAE experiments end to end on small data (`--quick`), and the
//! engine's agreement with the trainer on the exported kVAE model.

use std::path::Path;

use candle_core::Device;
use trainer::data::Points;
use trainer::eval::fid::Classifier;
use trainer::experiments::{fixed_point, mnist, synthetic};
use trainer::methods::kvae::{self, KVaeConfig, KVaeFitConfig, RunOptions, VaeShape};
use trainer::nn::likelihood::Observation;

fn data_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")
}

#[test]
fn synthetic_quick_run_writes_tables_and_figures() {
    let dir = tempfile::tempdir().unwrap();
    let settings = synthetic::Settings::quick();
    let report = synthetic::run(dir.path(), &settings, 1, &Device::Cpu).unwrap();
    assert_eq!(report.rows.len(), 3);
    for row in &report.rows {
        // 2-D densities of spread-out data: finite, and far from degenerate.
        assert!(
            row.log_likelihood.is_finite()
                && row.log_likelihood > -20.0
                && row.log_likelihood < 5.0,
            "{row:?}"
        );
    }
    // Even the quick run separates the five modes better than chance (NMI 0).
    assert!(
        report.kvae_clusters.nmi > 0.3,
        "{}",
        report.kvae_clusters.summary()
    );
    for f in [
        "synthetic.md",
        "synthetic_rounds.png",
        "synthetic_models.png",
    ] {
        assert!(dir.path().join(f).metadata().unwrap().len() > 100, "{f}");
    }
    assert!(
        report.markdown.contains("| (a) kVAE"),
        "{}",
        report.markdown
    );
    // Every model on the one loop: kVAE's rounds, the baselines' one epoch.
    for (tag, epochs) in [("kvae", 1 + settings.rounds), ("large", 1), ("bagging", 1)] {
        let run = dir.path().join(format!("run-{tag}"));
        assert_eq!(trainer::train::epochs_done(&run).unwrap(), epochs, "{tag}");
    }
}

#[test]
fn mnist_quick_run_writes_the_fair_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let settings = mnist::Settings::quick();
    let report = mnist::run(dir.path(), &data_dir(), &settings, 1, &Device::Cpu).unwrap();
    // (a)-(d) and kVAE with 10 VAEs, every VAE with the same steps.
    assert_eq!(report.generators.len(), 5);
    let names: Vec<&str> = report.generators.iter().map(|r| &r.model[..3]).collect();
    assert_eq!(names, ["(a)", "(b)", "(c)", "(d)", "(e)"]);
    for row in &report.generators {
        assert_eq!(row.steps_per_vae, settings.steps(), "{row:?}");
        // Generated digits are farther from the test set than real ones.
        assert!(
            row.fid.is_finite() && row.fid > report.real_fid,
            "{row:?} vs real {}",
            report.real_fid
        );
        // Bernoulli likelihoods of 784 pixels: negative, and not absurd.
        assert!(
            row.log_likelihood < 0.0 && row.log_likelihood > 784.0 * -2.0,
            "{row:?}"
        );
    }
    assert_eq!(report.generators[0].vaes, 15);
    assert_eq!(
        report.generators[0].parameters,
        15 * report.generators[1].parameters
    );
    // k-means and kVAE at K = 15, then at K = 10.
    let ks: Vec<usize> = report
        .clusters
        .iter()
        .map(|r| r.clusters.sizes.len())
        .collect();
    assert_eq!(ks, [15, 15, 10, 10]);
    // k-means on 1,500 images still finds digit structure.
    assert!(
        report.clusters[0].clusters.nmi > 0.3,
        "{:?}",
        report.clusters[0]
    );
    // One row per epoch of VAE training on the one loop (the pretraining,
    // then one a round), each with its purity and FID; a reassignment, with
    // the discriminators' accuracy, follows every epoch but the last.
    assert_eq!(report.rounds.len(), settings.rounds + 1);
    for (i, r) in report.rounds.iter().enumerate() {
        assert_eq!(r.round, i);
        assert!(r.train_purity > 0.1 && r.train_purity <= 1.0, "{r:?}");
        assert!(r.fid.is_some_and(f64::is_finite), "{r:?}");
        match r.disc_acc {
            Some((real, fake)) => {
                assert!(i < settings.rounds);
                assert!((0.0..=1.0).contains(&real) && (0.0..=1.0).contains(&fake));
            }
            None => assert_eq!(i, settings.rounds),
        }
    }
    // The runs went through the one loop: checkpoint and per-epoch records.
    let run = dir.path().join("run-kvae");
    assert!(trainer::train::has_checkpoint(&run));
    assert_eq!(
        trainer::train::epochs_done(&run).unwrap(),
        settings.rounds + 1 + settings.gate_epochs
    );
    // So did the baselines: one epoch each on their fixed assignment.
    for tag in ["single", "ensemble", "big"] {
        assert_eq!(
            trainer::train::epochs_done(&dir.path().join(format!("run-{tag}"))).unwrap(),
            1,
            "{tag}"
        );
    }
    for f in [
        "mnist.md",
        "mnist_kvae_samples.png",
        "mnist_kvae10_samples.png",
        "mnist_single_samples.png",
        "mnist_ensemble_samples.png",
        "mnist_big_samples.png",
        "mnist_rounds.png",
    ] {
        assert!(dir.path().join(f).metadata().unwrap().len() > 100, "{f}");
    }
    // The round-by-round picture: one chart of three panels (shares of the
    // images, the discriminators' accuracy, and the per-round FID, which the
    // quick run computes).
    let rounds = image::open(dir.path().join("mnist_rounds.png")).unwrap();
    assert_eq!((rounds.width(), rounds.height()), (900, 44 + 3 * 340));
    assert!(
        report.markdown.contains("| (a) kVAE") && report.markdown.contains("| round |"),
        "{}",
        report.markdown
    );
}

#[test]
fn committed_fid_classifier_recognizes_test_digits() {
    let mnist = trainer::data::Mnist::load(data_dir()).unwrap();
    let mut test = mnist.test_images.clone();
    test.truncate(2000);
    let points = Points::from_images(&test);
    let net = Classifier::committed(&Device::Cpu).unwrap();
    let acc = net
        .accuracy(&points, &mnist.test_labels[..2000], &Device::Cpu)
        .unwrap();
    // 0.976 on all 10,000 test images when trained; the first 2,000 are harder.
    assert!(acc > 0.95, "accuracy {acc}");
}

#[test]
fn fixed_point_quick_run_reassigns_the_true_partition_with_every_rule() {
    let dir = tempfile::tempdir().unwrap();
    let report = fixed_point::run(
        dir.path(),
        &data_dir(),
        &fixed_point::Settings::quick(),
        1,
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(report.purity_before, 1.0);
    // Three ratio rules for each of two discriminator trainings, and the
    // likelihood raw and normalised.
    assert_eq!(report.rows.len(), 8);
    for row in &report.rows {
        let purity = row.after.purity();
        assert!((0.0..=1.0).contains(&purity), "{row:?}");
        assert!((0.0..=1.0).contains(&row.moved), "{row:?}");
    }
    let md = std::fs::read_to_string(dir.path().join("fixed_point.md")).unwrap();
    assert!(md.contains("Purity before: 1.0000"), "{md}");
    assert!(md.contains("most confused"), "{md}");
    // The VAEs trained on the one loop: kVAE from the given true partition,
    // its pretraining epoch only, the partition untouched (purity 1 in the
    // loop's record of it).
    let run = dir.path().join("run-vaes");
    assert!(trainer::train::has_checkpoint(&run));
    assert_eq!(trainer::train::epochs_done(&run).unwrap(), 1);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["pretrain"], "given");
    assert_eq!(config["rounds"], 0);
    let records = trainer::train::curves::read_records(&run.join("metrics.jsonl"));
    assert_eq!(records.len(), 1);
    assert_eq!(records[&1].notes["train_purity"], 1.0);
}

/// A run from a given start: refused without one, or with one that does
/// not fit the points; otherwise its VAEs train on exactly that assignment.
#[test]
fn a_given_start_is_checked_and_kept() {
    let n = 20;
    let points = Points::new((0..2 * n).map(|i| i as f32 / 10.0).collect(), 2);
    let recipe = KVaeConfig::recipe();
    let cfg = KVaeFitConfig {
        kvae: KVaeConfig {
            k: 2,
            vae: VaeShape {
                data: 2,
                latent: 1,
                hidden: vec![4],
                observation: Observation::Real { std: Some(1.0) },
            },
            disc_hidden: vec![4],
            gate_hidden: vec![],
            batch: 4,
            ..recipe
        }
        .fixed_assignment(3),
        limit: None,
        image: kvae::no_images(2).image,
    };
    let dir = tempfile::tempdir().unwrap();
    let train = |start: Option<Vec<usize>>| {
        let opts = RunOptions {
            dir: dir.path().join("run"),
            resume: false,
            device: Device::Cpu,
            verbose: false,
            start,
        };
        kvae::run::train(
            &cfg,
            points.clone(),
            None,
            kvae::no_images(2),
            &opts,
            &mut |_, _| Ok(()),
        )
    };
    assert!(train(None).is_err());
    assert!(train(Some(vec![0; n - 1])).is_err());
    assert!(train(Some(vec![2; n])).is_err());
    let start: Vec<usize> = (0..n).map(|i| i % 2).collect();
    let (model, records) = train(Some(start.clone())).unwrap();
    assert_eq!(model.assignment(), &start[..]);
    assert_eq!(records.len(), 1);
    assert!(model.gate().is_none());
}
