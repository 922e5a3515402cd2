//! `trainer fit --method hierarchical` end to end on a few hundred images:
//! the two levels' shapes in the run's files, a loss that falls, exact
//! resume, the version-3 export and its agreement with the f32 model,
//! `--styles auto`, and the refusals (bad `--styles`, the flags elsewhere).

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

/// Self-training relabels with the argmax over all 4 × 2 VAEs (the experts
/// the pretraining targets index), and runs after the mixture epochs.
#[test]
fn self_training_epochs_follow_the_mixture_under_two_levels() {
    let dir = tempfile::tempdir().unwrap();
    let d = data();
    let run = dir.path().join("run");
    let mut args = small_args(d.to_str().unwrap(), run.to_str().unwrap());
    args.extend(["--self-train-epochs", "1"]);
    let o = trainer(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let phases: Vec<String> = metrics(&run)
        .iter()
        .map(|r| r["phase"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        phases,
        ["pretrain", "mixture", "mixture", "mixture", "self-train"]
    );
    let last = metrics(&run).pop().unwrap();
    let loss = last["loss"].as_f64().unwrap();
    assert!(loss.is_finite(), "{last}");
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

    // Checkpoint names: the gate, the style gates, 8 VAEs by index.
    let names = checkpoint_names(&straight);
    for n in [
        "gate.fc0.weight",
        "style.fc0.weight",
        "style.head.weight",
        "adam.m.style.head.bias",
    ] {
        assert!(names.iter().any(|x| x == n), "{n}: {names:?}");
    }
    for e in 0..8 {
        let n = format!("expert{e}.decoder.fc1.bias");
        assert!(names.contains(&n), "{n}: {names:?}");
    }
    // model.bin is version 3: 4 clusters of 2 styles, each with a style
    // gate of `pixels → 16 → 2`, f16 and int8.
    for file in ["model.bin", "model-int8.bin"] {
        let bytes = std::fs::read(straight.join(file)).unwrap();
        let model = engine::Model::from_bytes(&bytes).unwrap();
        assert_eq!(model.repr().version(), 3, "{file}");
        assert_eq!(model.experts(), 4);
        for c in 0..4 {
            assert_eq!(model.styles(c), 2, "{file} cluster {c}");
            let gate = model.repr().style_gate(c).unwrap();
            let shape: Vec<(usize, usize)> = gate.layers().map(|l| (l.inputs, l.outputs)).collect();
            assert_eq!(shape, vec![(784, 16), (16, 2)]);
        }
    }
    let report = std::fs::read_to_string(straight.join("report.md")).unwrap();
    for needle in [
        "## Styles",
        "expected negative ELBO",
        "(cluster, style) = f32's",
        "training, style 1",
    ] {
        assert!(report.contains(needle), "{needle}: {report}");
    }
    // The exported files give the f32 model's cluster and style on at
    // least 99.5% (f16) and 99% (int8) of the test images. This model is
    // barely trained (600 images, 3 epochs: test ACC about 0.2 with either
    // start), so its gate has many near-ties that int8 rounding flips:
    // 99.63% from the k-means start, 99.67% from the Gaussian mixture's on
    // one machine, 99.41% on another. A broken quantizer agrees far less.
    for (weights, least) in [("f16", 99.5), ("int8", 99.0)] {
        let agreement = style_agreement(&report, weights);
        assert!(agreement >= least, "{weights}: {agreement}% in {report}");
    }
    assert!(straight.join("styles.png").is_file());
    assert!(straight.join("samples.png").is_file());

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
    // Exported again from the checkpoint: the run's int8 file.
    let again = dir.path().join("m.bin");
    let o = trainer(&[
        "export",
        "--run",
        resumed.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
        "--weights",
        "int8",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(resumed.join("model-int8.bin")).unwrap()
    );
    // `trainer sample` draws one column per cluster, its styles beneath.
    let png = dir.path().join("s.png");
    let o = trainer(&[
        "sample",
        "--model",
        again.to_str().unwrap(),
        "--out",
        png.to_str().unwrap(),
        "--per-expert",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("per style"));
    assert!(png.is_file());
}

/// The `(cluster, style) = f32's` percentage of `weights`' row of the
/// report's weights table.
fn style_agreement(report: &str, weights: &str) -> f64 {
    let header = report
        .lines()
        .find(|l| l.starts_with("| weights |"))
        .expect("the weights table");
    let col = header
        .split('|')
        .position(|h| h.trim() == "(cluster, style) = f32's")
        .expect("the style agreement column");
    let row = report
        .lines()
        .find(|l| l.starts_with(&format!("| {weights} |")))
        .expect("the row");
    row.split('|')
        .nth(col)
        .unwrap()
        .trim()
        .trim_end_matches('%')
        .parse()
        .unwrap()
}

#[test]
fn styles_auto_holds_images_out_and_decides_per_digit_expert() {
    let dir = tempfile::tempdir().unwrap();
    let d = data();
    let d = d.to_str().unwrap();
    let run = dir.path().join("auto");
    let mut args = small_args(d, run.to_str().unwrap());
    let at = args.iter().position(|a| *a == "2").unwrap();
    args[at] = "auto";
    let o = trainer(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["auto_styles"], true);
    // 600 images, 30 held out: the style counts cover the other 570.
    let r = metrics(&run);
    let last = r.last().unwrap();
    let total: u64 = last["notes"]["style_counts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()))
        .sum();
    assert_eq!(total, 570);
    let kept: Vec<u64> = last["notes"]["styles_kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(kept.len(), 4);
    assert!(kept.iter().all(|&k| (1..=2).contains(&k)), "{kept:?}");
    // The file keeps what the decision kept.
    let bytes = std::fs::read(run.join("model.bin")).unwrap();
    let model = engine::Model::from_bytes(&bytes).unwrap();
    let styles: Vec<u64> = (0..4).map(|c| model.styles(c) as u64).collect();
    assert_eq!(styles, kept);
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        report.contains("30 training images were held out"),
        "{report}"
    );
}

#[test]
fn bad_styles_and_styles_elsewhere_are_refused_before_any_work() {
    let nowhere = "/nonexistent/mnist";
    // The shape checks need the images' size: they run after the data is
    // read, before any training (a run that passed them would stop after
    // an epoch of 100 images).
    let d = data();
    let out = tempfile::tempdir().unwrap();
    let hierarchical = |extra: &[&str]| {
        let mut args = vec![
            "fit",
            "--method",
            "hierarchical",
            "--data",
            d.to_str().unwrap(),
            "--limit",
            "100",
            "--ae-epochs",
            "1",
            "--epochs",
            "1",
            "--quiet",
            "--out",
            out.path().to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        trainer(&args)
    };
    assert_one_line_error(
        &hierarchical(&["--styles", "0"]),
        1,
        &["--styles", "between 1 and 8"],
    );
    assert_one_line_error(
        &hierarchical(&["--styles", "9"]),
        1,
        &["--styles", "between 1 and 8"],
    );
    assert_one_line_error(
        &hierarchical(&["--style-hidden", "0"]),
        1,
        &["--style-hidden"],
    );
    // Wider than the engine's workspace.
    assert_one_line_error(
        &hierarchical(&["--style-hidden", "100000"]),
        1,
        &["engine", "--style-hidden"],
    );
    let o = hierarchical(&["--styles", "many"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("auto"), "{}", stderr(&o));
    for method in ["mixture", "kvae"] {
        for flag in [["--styles", "3"], ["--style-hidden", "8"]] {
            let o = trainer(&[
                "fit", "--method", method, flag[0], flag[1], "--data", nowhere,
            ]);
            assert_one_line_error(&o, 1, &[flag[0], "--method hierarchical"]);
        }
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
