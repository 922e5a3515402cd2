//! End-to-end tests of the `trainer` binary on small slices of the real MNIST.

mod common;

use std::path::Path;
use std::process::Output;

use common::{assert_one_line_error, data, metrics, stderr, trainer};

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "trainer failed: {}", stderr(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A tiny blog-style run: 4 experts, narrow layers, a few hundred images.
fn small_fit(out: &Path, epochs: &str, seed: &str, extra: &[&str]) -> Output {
    small_fit_on(&data(), out, epochs, seed, extra)
}

fn small_fit_on(d: &Path, out: &Path, epochs: &str, seed: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "fit",
        "--preset",
        "blog",
        "--experts",
        "4",
        "--hidden",
        "32",
        "--limit",
        "400",
        "--batch",
        "50",
        "--epochs",
        epochs,
        "--seed",
        seed,
        "--quiet",
        "--data",
        d.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    trainer(&args)
}

fn is_png(p: &Path) -> bool {
    std::fs::read(p)
        .map(|b| b.starts_with(b"\x89PNG"))
        .unwrap_or(false)
}

#[test]
fn fit_learns_exports_and_the_engine_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let export = dir.path().join("out").join("m.bin");
    ok(&small_fit(
        &run,
        "4",
        "3",
        &["--export", export.to_str().unwrap()],
    ));
    let m = metrics(&run);
    assert_eq!(m.len(), 4);
    let loss = |i: usize| m[i]["loss"].as_f64().unwrap();
    assert!(
        loss(3) < loss(0),
        "loss did not decrease: {} -> {}",
        loss(0),
        loss(3)
    );
    // The export is the run's model, parses with the engine, and more than
    // one expert takes test images.
    let bytes = std::fs::read(&export).unwrap();
    assert_eq!(bytes, std::fs::read(run.join("model.bin")).unwrap());
    let model = engine::Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.experts(), 4);
    assert!(model.header().label_map.is_some());
    let sizes: Vec<u64> = m[3]["test_sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(
        sizes.iter().filter(|&&s| s > 0).count() > 1,
        "one cluster took everything: {sizes:?}"
    );
    // No temporary file is left next to the export.
    let names: Vec<_> = std::fs::read_dir(export.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("m.bin")]);
    for f in [
        "loss.png",
        "samples/epoch-001.png",
        "samples/epoch-004.png",
        "samples.png",
        "confusion.png",
    ] {
        assert!(is_png(&run.join(f)), "{f} missing or not a PNG");
    }
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("| cluster | label | size |"), "{report}");
    assert!(report.contains("agree on"));

    // eval, sample and inspect on the exported file.
    let d = data();
    let out = ok(&trainer(&[
        "eval",
        "--model",
        export.to_str().unwrap(),
        "--data",
        d.to_str().unwrap(),
    ]));
    assert!(
        out.contains("on 10000 test images (engine, f16 weights)") && out.contains("ACC "),
        "{out}"
    );
    // On the run directory: its f32 model beside both exports.
    let out = ok(&trainer(&[
        "eval",
        "--model",
        run.to_str().unwrap(),
        "--data",
        d.to_str().unwrap(),
    ]));
    for row in ["| f32 |", "| f16 |", "| int8 |"] {
        assert!(out.contains(row), "{out}");
    }
    assert_eq!(std::fs::read(run.join("model.bin")).unwrap(), bytes);
    let grid = dir.path().join("grid.png");
    ok(&trainer(&[
        "sample",
        "--model",
        export.to_str().unwrap(),
        "--out",
        grid.to_str().unwrap(),
        "--per-expert",
        "3",
    ]));
    let img = image::open(&grid).unwrap();
    // 4 columns and 3 rows of 28-pixel tiles drawn 3× (84 pixels) with
    // 2-pixel gutters, under two lines of header (`cluster c`, `→ digit d`).
    assert_eq!(
        (img.width(), img.height()),
        (4 * 86 + 2, 8 + 2 * 18 + 3 * 86 + 2)
    );
    let out = ok(&trainer(&["inspect", export.to_str().unwrap()]));
    assert!(
        out.contains("experts 4")
            && out.contains("decoder 3: 10->32 Sigmoid f16, 32->784 Sigmoid f16"),
        "{out}"
    );
}

#[test]
fn same_seed_same_bytes_and_resume_continues_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    ok(&small_fit(&a, "2", "11", &[]));
    ok(&small_fit(&b, "1", "11", &[]));
    ok(&trainer(&[
        "fit",
        "--resume",
        b.to_str().unwrap(),
        "--epochs",
        "2",
        "--quiet",
        "--data",
        data().to_str().unwrap(),
    ]));
    let model_a = std::fs::read(a.join("model.bin")).unwrap();
    assert_eq!(
        model_a,
        std::fs::read(b.join("model.bin")).unwrap(),
        "resumed run differs from straight run"
    );
    assert_eq!(metrics(&b).len(), 2);
    ok(&small_fit(&c, "2", "12", &[]));
    assert_ne!(
        model_a,
        std::fs::read(c.join("model.bin")).unwrap(),
        "seed has no effect"
    );
    // A finished run directory is not overwritten by a new fit.
    let o = small_fit(&a, "1", "11", &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already holds a run"), "{}", stderr(&o));
}

#[cfg(unix)]
#[test]
fn ctrl_c_saves_a_checkpoint_and_resume_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let export = dir.path().join("m.bin");
    let d = data();
    common::interrupt_after_first_epoch(
        &[
            "fit",
            "--preset",
            "blog",
            "--experts",
            "3",
            "--hidden",
            "16",
            "--limit",
            "300",
            "--batch",
            "100",
            "--epochs",
            "100000",
            "--quiet",
            "--data",
            d.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--export",
            export.to_str().unwrap(),
        ],
        &run,
    );
    assert!(!export.exists(), "an interrupted run must not export");
    let done = metrics(&run).len();
    ok(&trainer(&[
        "fit",
        "--resume",
        run.to_str().unwrap(),
        "--epochs",
        &(done + 1).to_string(),
        "--quiet",
        "--data",
        d.to_str().unwrap(),
        "--export",
        export.to_str().unwrap(),
    ]));
    assert_eq!(metrics(&run).len(), done + 1);
    engine::Model::from_bytes(&std::fs::read(&export).unwrap()).unwrap();
}

#[test]
fn default_preset_pipeline_runs_on_a_slice() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let d = data();
    ok(&trainer(&[
        "fit",
        "--limit",
        "300",
        "--ae-epochs",
        "2",
        "--pretrain-epochs",
        "1",
        "--epochs",
        "1",
        "--encoder-hidden",
        "32",
        "--quiet",
        "--data",
        d.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]));
    let m = metrics(&run);
    assert_eq!(m.len(), 2);
    assert_eq!(m[0]["phase"], "pretrain");
    assert_eq!(m[1]["phase"], "mixture");
    // The weighted −ELBO splits into its reconstruction and KL parts.
    for r in &m {
        let t = &r["terms"];
        let term = |k: &str| t[k].as_f64().unwrap_or_else(|| panic!("no {k} in {t}"));
        let (elbo, recon, kl) = (term("elbo"), term("recon"), term("kl"));
        assert!(recon > 0.0 && kl > 0.0, "{t}");
        assert!((recon + kl - elbo).abs() < 1e-6 * elbo.abs(), "{t}");
    }
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("partition.json")).unwrap())
            .unwrap();
    assert_eq!(p["assignment"].as_array().unwrap().len(), 300);
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["start"]["partition"]["cluster"], "umap-gmm", "{cfg}");
    assert_eq!(cfg["start"]["partition"]["deskew"], true, "{cfg}");
    assert_eq!(cfg["start"]["partition"]["mend_splinters"], true, "{cfg}");
    assert_eq!(cfg["lr_decay"], true, "{cfg}");
    assert_eq!(cfg["lr_decay_experts"], false, "{cfg}");
    assert_eq!(cfg["min_epoch_steps"], 200, "{cfg}");
    let bytes = std::fs::read(run.join("model.bin")).unwrap();
    assert!(
        bytes.len() <= 1 << 20,
        "default model is {} bytes",
        bytes.len()
    );
    let model = engine::Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.experts(), 10);
    assert_eq!(model.header().likelihood, engine::Likelihood::Bernoulli);
}

#[test]
fn nan_loss_stops_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let d = data();
    // A learning rate of 1e30 overflows the weights after the first step.
    let o = trainer(&[
        "fit",
        "--pretrain-epochs",
        "0",
        "--lr",
        "1e30",
        "--limit",
        "300",
        "--hidden",
        "16",
        "--epochs",
        "3",
        "--quiet",
        "--data",
        d.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    assert_one_line_error(&o, 1, &["loss became NaN", "training stopped", "--lr"]);
    assert!(!run.join("model.bin").exists());
}

fn write_dir(dir: &Path, train_imgs: &[u8], train_labels: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("train-images-idx3-ubyte"), train_imgs).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), train_labels).unwrap();
    let test = trainer::data::Images {
        n: 1,
        rows: 28,
        cols: 28,
        pixels: vec![0; 784],
    };
    std::fs::write(
        dir.join("t10k-images-idx3-ubyte"),
        trainer::data::encode_images(&test),
    )
    .unwrap();
    std::fs::write(
        dir.join("t10k-labels-idx1-ubyte"),
        trainer::data::encode_labels(&[1]),
    )
    .unwrap();
}

#[test]
fn bad_inputs_give_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let fit = |data: &Path| small_fit_on(data, &dir.path().join("run"), "1", "0", &[]);
    let imgs = |n: usize, side: usize| {
        trainer::data::encode_images(&trainer::data::Images {
            n,
            rows: side,
            cols: side,
            pixels: vec![7; n * side * side],
        })
    };

    assert_one_line_error(
        &fit(&dir.path().join("nowhere")),
        1,
        &["nowhere: not found"],
    );

    let d = dir.path().join("truncated");
    let mut t = imgs(3, 28);
    t.truncate(t.len() - 5);
    write_dir(&d, &t, &trainer::data::encode_labels(&[1, 2, 3]));
    assert_one_line_error(&fit(&d), 1, &["train-images-idx3-ubyte", "truncated"]);

    let d = dir.path().join("magic");
    write_dir(
        &d,
        &trainer::data::encode_labels(&[1, 2, 3]),
        &trainer::data::encode_labels(&[1, 2, 3]),
    );
    assert_one_line_error(&fit(&d), 1, &["train-images-idx3-ubyte", "wrong IDX magic"]);

    let d = dir.path().join("count");
    write_dir(&d, &imgs(3, 28), &trainer::data::encode_labels(&[1, 2]));
    assert_one_line_error(&fit(&d), 1, &["3 images but", "2 labels"]);

    let d = dir.path().join("shape");
    write_dir(&d, &imgs(3, 20), &trainer::data::encode_labels(&[1, 2, 3]));
    assert_one_line_error(
        &fit(&d),
        1,
        &["t10k-images-idx3-ubyte: images are 28x28, expected 20x20"],
    );

    let d = dir.path().join("gzip");
    write_dir(&d, &imgs(3, 28), &trainer::data::encode_labels(&[1, 2, 3]));
    std::fs::remove_file(d.join("train-images-idx3-ubyte")).unwrap();
    std::fs::write(d.join("train-images-idx3-ubyte.gz"), b"not gzip at all").unwrap();
    assert_one_line_error(
        &fit(&d),
        1,
        &["train-images-idx3-ubyte.gz", "not a valid gzip file"],
    );

    let d = dir.path().join("few");
    write_dir(&d, &imgs(3, 28), &trainer::data::encode_labels(&[1, 2, 3]));
    assert_one_line_error(&fit(&d), 1, &["3 training images for 4 experts"]);

    // Flags.
    assert_one_line_error(&trainer(&["fit", "--epochs", "many"]), 2, &["--epochs"]);
    assert_one_line_error(&trainer(&["fit", "--frobnicate"]), 2, &["--frobnicate"]);
    assert_one_line_error(&trainer(&["fit", "--cluster", "dbscan"]), 2, &["--cluster"]);
    assert_one_line_error(
        &trainer(&[
            "fit",
            "--preset",
            "blog",
            "--cluster",
            "umap",
            "--data",
            data().to_str().unwrap(),
        ]),
        1,
        &["--cluster", "random weights"],
    );
    assert_one_line_error(&trainer(&["fit", "--deskew", "maybe"]), 2, &["--deskew"]);
    assert_one_line_error(&trainer(&["fit", "--rotate", "a bit"]), 2, &["--rotate"]);
    assert_one_line_error(
        &trainer(&["fit", "--scale", "2", "--data", data().to_str().unwrap()]),
        1,
        &["--scale must be 0 to 0.5"],
    );
    assert_one_line_error(&trainer(&["fit", "--lr-decay", "7"]), 2, &["--lr-decay"]);
    assert_one_line_error(
        &trainer(&["fit", "--mend-splinters", "perhaps"]),
        2,
        &["--mend-splinters"],
    );
    assert_one_line_error(
        &trainer(&[
            "fit",
            "--preset",
            "blog",
            "--mend-splinters",
            "off",
            "--data",
            data().to_str().unwrap(),
        ]),
        1,
        &["--mend-splinters", "random weights"],
    );
    assert_one_line_error(
        &trainer(&["fit", "--lr-decay-experts", "sometimes"]),
        2,
        &["--lr-decay-experts"],
    );
    assert_one_line_error(
        &trainer(&[
            "fit",
            "--preset",
            "blog",
            "--deskew",
            "on",
            "--data",
            data().to_str().unwrap(),
        ]),
        1,
        &["--deskew", "random weights"],
    );
    assert_one_line_error(
        &trainer(&["fit", "--lr=-1", "--data", data().to_str().unwrap()]),
        1,
        &["--lr"],
    );
    assert_one_line_error(
        &trainer(&["fit", "--resume", dir.path().to_str().unwrap()]),
        1,
        &["no checkpoint to resume"],
    );

    // Model files.
    let m = dir.path().join("bad.bin");
    std::fs::write(&m, b"definitely not a model").unwrap();
    assert_one_line_error(&trainer(&["inspect", m.to_str().unwrap()]), 1, &["bad.bin"]);
    assert_one_line_error(
        &trainer(&["inspect", "/no/such/model.bin"]),
        1,
        &["file not found"],
    );
}

#[test]
fn int8_export_and_re_export_without_training() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let export = dir.path().join("m8.bin");
    ok(&small_fit(
        &run,
        "1",
        "5",
        &["--export", export.to_str().unwrap(), "--weights", "int8"],
    ));
    // The export is the run directory's int8 file; model.bin stays f16.
    let int8 = std::fs::read(&export).unwrap();
    assert_eq!(int8, std::fs::read(run.join("model-int8.bin")).unwrap());
    let m = engine::Model::from_bytes(&int8).unwrap();
    assert_eq!(m.element_type(), engine::ElementType::Int8);
    let f16 = std::fs::read(run.join("model.bin")).unwrap();
    let f = engine::Model::from_bytes(&f16).unwrap();
    assert_eq!(f.element_type(), engine::ElementType::F16);
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("| int8 |"), "{report}");
    // A finished run exports again, without training, to the same bytes.
    let again = dir.path().join("again.bin");
    let out = ok(&trainer(&[
        "export",
        "--run",
        run.to_str().unwrap(),
        "--weights",
        "int8",
        "--out",
        again.to_str().unwrap(),
        "--data",
        data().to_str().unwrap(),
    ]));
    assert!(out.contains("| f16 |") && out.contains("| int8 |"), "{out}");
    assert_eq!(std::fs::read(&again).unwrap(), int8);
    // An unfinished run is refused with a one-line hint.
    let unfinished = dir.path().join("unfinished");
    ok(&small_fit(&unfinished, "1", "5", &[]));
    let config = unfinished.join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&text).unwrap();
    cfg["epochs"] = serde_json::json!(3);
    std::fs::write(&config, cfg.to_string()).unwrap();
    let o = trainer(&[
        "export",
        "--run",
        unfinished.to_str().unwrap(),
        "--out",
        dir.path().join("x.bin").to_str().unwrap(),
        "--data",
        data().to_str().unwrap(),
    ]);
    assert_one_line_error(&o, 1, &["stopped after epoch 1 of 3", "--resume"]);
    assert!(!dir.path().join("x.bin").exists());
}

#[test]
fn export_model_gives_an_older_file_a_novelty_score() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    ok(&small_fit(&run, "1", "5", &["--no-novelty"]));
    // Without a novelty score a flat model stays version 2.
    let old = std::fs::read(run.join("model.bin")).unwrap();
    let repr = engine::ModelRepr::parse(&old).unwrap();
    assert_eq!((repr.version(), repr.novelty().is_some()), (2, false));
    let new = dir.path().join("new.bin");
    let d = data();
    let export = |model: &Path, out: &Path, extra: &[&str]| {
        let mut args = vec![
            "export",
            "--model",
            model.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--data",
            d.to_str().unwrap(),
            "--quiet",
        ];
        args.extend_from_slice(extra);
        trainer(&args)
    };
    ok(&export(&run.join("model.bin"), &new, &[]));
    let bytes = std::fs::read(&new).unwrap();
    let repr = engine::ModelRepr::parse(&bytes).unwrap();
    assert_eq!(repr.version(), 3);
    assert!(repr.novelty().is_some());
    // The networks are the old file's, exactly.
    let (a, b) = (
        engine::writer::TwoLevelSpec::from_bytes(&old).unwrap(),
        engine::writer::TwoLevelSpec::from_bytes(&bytes).unwrap(),
    );
    assert_eq!((&a.model, &a.clusters), (&b.model, &b.clusters));
    // Without the score again: the old file, byte for byte.
    let plain = dir.path().join("plain.bin");
    ok(&export(&new, &plain, &["--no-novelty"]));
    assert_eq!(std::fs::read(&plain).unwrap(), old);
    // int8 weights are not quantized twice.
    let o = export(&run.join("model-int8.bin"), &dir.path().join("x.bin"), &[]);
    assert_one_line_error(
        &o,
        1,
        &["model-int8.bin", "int8 weights", "give the f16 file"],
    );
    // Neither a run nor a model: clap's usage error.
    let o = trainer(&[
        "export",
        "--out",
        dir.path().join("y.bin").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
