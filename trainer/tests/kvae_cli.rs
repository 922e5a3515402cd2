//! `trainer fit --method kvae` end to end on a few hundred images, then the
//! exported file through `trainer inspect`.

use std::path::Path;
use std::process::Command;

/// `trainer fit --method kvae` with 4 VAEs, one round and short budgets on
/// `limit` images, plus `extra`, into `run`; panics with its stderr when it
/// fails.
fn fit_small_kvae(limit: &str, run: &Path, extra: &[&str]) {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist");
    let out = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args([
            "fit",
            "--method",
            "kvae",
            "--experts",
            "4",
            "--limit",
            limit,
        ])
        .args([
            "--rounds",
            "1",
            "--pretrain-steps",
            "20",
            "--round-steps",
            "10",
        ])
        .args(["--gate-epochs", "1", "--quiet", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(run)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn fit_method_kvae_exports_a_kvae_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist");
    let export = dir.path().join("kvae.bin");
    let run = dir.path().join("run");
    fit_small_kvae(
        "400",
        &run,
        &["--disc-steps", "10", "--export", export.to_str().unwrap()],
    );
    let bytes = std::fs::read(&export).unwrap();
    let model = engine::Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.header().method, engine::Method::KVae);
    assert_eq!(model.experts(), 4);
    let report = std::fs::read_to_string(dir.path().join("run/report.md")).unwrap();
    assert!(report.contains("engine and f32 model agree"), "{report}");
    assert!(dir.path().join("run/checkpoint.safetensors").exists());
    assert!(dir.path().join("run/model-int8.bin").exists());
    assert!(dir.path().join("run/samples.png").exists());

    // A bad option value is a one-line error, not a panic.
    let bad = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args([
            "fit",
            "--method",
            "kvae",
            "--min-share",
            "1.5",
            "--limit",
            "10",
        ])
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("--min-share") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn kvae_can_start_from_the_label_free_partition() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    fit_small_kvae("600", &run, &["--pretrain", "partition"]);
    // The partition is cached where the mixture caches it, one part per VAE.
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("partition.json")).unwrap())
            .unwrap();
    assert_eq!(p["k"], 4);
    assert_eq!(p["assignment"].as_array().unwrap().len(), 600);
    // The run records its start, so a resume takes the same one.
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    assert!(config.contains("\"pretrain\": \"partition\""), "{config}");
}

#[test]
fn kvae_takes_the_scoring_rule_warmup_and_sharpened_fakes() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    fit_small_kvae(
        "300",
        &run,
        &[
            "--score-rule",
            "confused",
            "--disc-warmup-epochs",
            "1",
            "--sharpen-fakes",
        ],
    );
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    for field in [
        r#""score_rule": "confused""#,
        r#""disc_warmup_epochs": 1"#,
        r#""sharpen_fakes": true"#,
    ] {
        assert!(config.contains(field), "{field} not in {config}");
    }
    let model = std::fs::read(run.join("model.bin")).unwrap();
    let text = String::from_utf8_lossy(&model);
    assert!(
        text.contains("score_rule=confused disc_warmup_epochs=1 sharpen_fakes=true"),
        "the model's provenance names the options"
    );
}
