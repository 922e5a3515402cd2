//! `trainer fit --method kvae` end to end on a few hundred images, then the
//! exported file through `trainer inspect`.

use std::process::Command;

#[test]
fn fit_method_kvae_exports_a_kvae_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist");
    let export = dir.path().join("kvae.bin");
    let out = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args([
            "fit",
            "--method",
            "kvae",
            "--experts",
            "4",
            "--limit",
            "400",
            "--rounds",
            "1",
        ])
        .args([
            "--pretrain-steps",
            "20",
            "--round-steps",
            "10",
            "--disc-steps",
            "10",
            "--gate-epochs",
            "1",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(dir.path().join("run"))
        .arg("--export")
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
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
