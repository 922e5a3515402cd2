//! `trainer fit --method hierarchical` end to end on a few hundred images:
//! the two levels' shapes in the run's files, a loss that falls, exact
//! resume, and the refusals (`--export`, `--styles` elsewhere).

mod common;

use common::{assert_one_line_error, checkpoint_names, data, metrics, stderr, trainer};

/// Arguments of a small two-level run (4 digit experts × 2 styles, small
/// layers, short epochs) into `run`.
fn small_args<'a>(d: &'a str, run: &'a str) -> Vec<&'a str> {
    vec![
        "fit",
        "--method",
        "hierarchical",
        "--experts",
        "4",
        "--styles",
        "2",
        "--latent",
        "4",
        "--gate-hidden",
        "32",
        "--encoder-hidden",
        "16",
        "--decoder-hidden",
        "16",
        "--limit",
        "600",
        "--ae-epochs",
        "2",
        "--pretrain-epochs",
        "1",
        "--epochs",
        "3",
        "--min-epoch-steps",
        "20",
        "--batch",
        "50",
        "--seed",
        "3",
        "--quiet",
        "--data",
        d,
        "--out",
        run,
    ]
}

#[cfg(unix)]
#[test]
fn hierarchical_trains_two_levels_and_resumes_to_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = data();
    let d = d.to_str().unwrap();
    let straight = dir.path().join("straight");
    let o = trainer(&small_args(d, straight.to_str().unwrap()));
    assert!(o.status.success(), "{}", stderr(&o));

    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(straight.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["method"], "hierarchical");
    assert_eq!(config["styles"], 2);
    // One pretraining epoch, three of the mixture; each counts the
    // training images per (digit expert, style): 4 × 2, all 600.
    let r = metrics(&straight);
    assert_eq!(r.len(), 4);
    assert_eq!(r[0]["phase"], "pretrain");
    for rec in &r {
        let counts = rec["notes"]["style_counts"].as_array().unwrap();
        assert_eq!(counts.len(), 4);
        let mut total = 0;
        for row in counts {
            let row = row.as_array().unwrap();
            assert_eq!(row.len(), 2);
            total += row.iter().map(|v| v.as_u64().unwrap()).sum::<u64>();
        }
        assert_eq!(total, 600);
        assert!(rec["test_acc"].is_f64());
    }
    // The expected negative ELBO falls over the mixture's epochs.
    let elbo = |i: usize| r[i]["terms"]["elbo"].as_f64().unwrap();
    assert!(elbo(3) < elbo(1), "elbo {} then {}", elbo(1), elbo(3));
    assert!(r[1]["terms"]["balance"].is_f64());

    // Checkpoint names: the gate, the style head, 8 VAEs by index.
    let names = checkpoint_names(&straight);
    for n in ["gate.fc0.weight", "style.weight", "adam.m.style.bias"] {
        assert!(names.iter().any(|x| x == n), "{n}: {names:?}");
    }
    for e in 0..8 {
        let n = format!("expert{e}.decoder.fc1.bias");
        assert!(names.contains(&n), "{n}: {names:?}");
    }
    // model.bin is the flat view: 4 clusters, one decoder each.
    let bytes = std::fs::read(straight.join("model.bin")).unwrap();
    let model = engine::Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.experts(), 4);
    let report = std::fs::read_to_string(straight.join("report.md")).unwrap();
    for needle in [
        "## Styles",
        "expected negative ELBO",
        "flat view",
        "training, style 1",
    ] {
        assert!(report.contains(needle), "{needle}: {report}");
    }
    assert!(straight.join("styles.png").is_file());

    // Stopped after an epoch and resumed: the same model.
    let resumed = dir.path().join("resumed");
    common::interrupt_after_first_epoch(&small_args(d, resumed.to_str().unwrap()), &resumed);
    let o = trainer(&["fit", "--resume", resumed.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(straight.join("model.bin")).unwrap(),
        std::fs::read(resumed.join("model.bin")).unwrap(),
        "the resumed run differs from the straight one"
    );
    assert_eq!(metrics(&resumed).len(), 4);
    // A two-level run cannot be exported for the engine yet.
    let o = trainer(&[
        "export",
        "--run",
        resumed.to_str().unwrap(),
        "--out",
        dir.path().join("m.bin").to_str().unwrap(),
    ]);
    assert_one_line_error(&o, 1, &["two-level"]);
}

#[test]
fn export_and_styles_elsewhere_are_refused_before_any_work() {
    let nowhere = "/nonexistent/mnist";
    let o = trainer(&[
        "fit",
        "--method",
        "hierarchical",
        "--export",
        "/tmp/m.bin",
        "--data",
        nowhere,
    ]);
    assert_one_line_error(&o, 1, &["--export", "two-level"]);
    for method in ["mixture", "kvae"] {
        let o = trainer(&[
            "fit", "--method", method, "--styles", "3", "--data", nowhere,
        ]);
        assert_one_line_error(&o, 1, &["--styles", "--method hierarchical"]);
    }
    let o = trainer(&[
        "fit",
        "--method",
        "hierarchical",
        "--rounds",
        "2",
        "--data",
        nowhere,
    ]);
    assert_one_line_error(&o, 1, &["--rounds", "--method kvae"]);
}
