//! The kVAE experiments end to end on small data (`--quick`), and the
//! engine's agreement with the trainer on the exported kVAE model.

use std::path::Path;

use candle_core::Device;
use trainer::eval::fid::Classifier;
use trainer::experiments::{mnist, synthetic};
use trainer::methods::kvae::Points;

fn data_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")
}

#[test]
fn synthetic_quick_run_writes_tables_and_figures() {
    let dir = tempfile::tempdir().unwrap();
    let report =
        synthetic::run(dir.path(), &synthetic::Settings::quick(), 1, &Device::Cpu).unwrap();
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
}

#[test]
fn mnist_quick_run_exports_a_model_the_engine_agrees_with() {
    let dir = tempfile::tempdir().unwrap();
    let report = mnist::run(
        dir.path(),
        &data_dir(),
        None,
        &mnist::Settings::quick(),
        1,
        &Device::Cpu,
    )
    .unwrap();
    assert!(
        report.engine_agreement >= 0.99,
        "engine agrees on {}",
        report.engine_agreement
    );
    assert_eq!(report.fid.len(), 4);
    for row in &report.fid {
        // Generated digits are farther from the test set than real ones.
        assert!(
            row.fid.is_finite() && row.fid > report.real_fid,
            "{row:?} vs real {}",
            report.real_fid
        );
    }
    // Fifteen clusters of 500 test images: better than chance.
    assert!(
        report.kvae_clusters.nmi > 0.1,
        "{}",
        report.kvae_clusters.summary()
    );
    let bytes = std::fs::read(&report.model_file).unwrap();
    let model = engine::Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.header().method, engine::Method::KVae);
    assert_eq!(model.experts(), 15);
    for f in [
        "mnist.md",
        "mnist_kvae_samples.png",
        "mnist_big_samples.png",
    ] {
        assert!(dir.path().join(f).metadata().unwrap().len() > 100, "{f}");
    }
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
