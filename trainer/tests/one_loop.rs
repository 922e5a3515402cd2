//! What the one training loop gives every method: flags checked against
//! the chosen method, configurations checked against the engine before any
//! work, checkpoints named by what tensors are, and exact resume (kVAE
//! included).

mod common;

use std::process::Output;

use common::{checkpoint_names, data, stderr, trainer};

/// A failure with exactly one line on stderr, which contains every `needle`.
fn one_line_error(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected a failure, got success");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} missing from: {err}");
    }
}

#[test]
fn a_flag_of_another_method_is_a_one_line_error_before_any_work() {
    // The data directory does not exist: the flags are refused first.
    let nowhere = "/nonexistent/mnist";
    let o = trainer(&["fit", "--method", "kvae", "--shift", "2", "--data", nowhere]);
    one_line_error(&o, &["--shift", "--method mixture", "kvae"]);
    let o = trainer(&["fit", "--rounds", "3", "--data", nowhere]);
    one_line_error(&o, &["--rounds", "--method kvae", "mixture"]);
    let o = trainer(&[
        "fit", "--method", "kvae", "--preset", "blog", "--data", nowhere,
    ]);
    one_line_error(&o, &["--preset", "--method mixture"]);
    let o = trainer(&["fit", "--prior", "--data", nowhere]);
    one_line_error(&o, &["--prior", "--method kvae"]);
    // kVAE's pretraining is sized in steps; the mixture's epochs flag is refused.
    let o = trainer(&[
        "fit",
        "--method",
        "kvae",
        "--pretrain-epochs",
        "3",
        "--data",
        nowhere,
    ]);
    one_line_error(&o, &["--pretrain-epochs", "--method mixture"]);
    // Shared flags are accepted by both (and then the data is missing).
    for method in ["mixture", "kvae"] {
        let o = trainer(&["fit", "--method", method, "--seed", "4", "--data", nowhere]);
        one_line_error(&o, &["/nonexistent/mnist"]);
    }
}

#[test]
fn help_shows_each_methods_options() {
    let o = trainer(&["fit", "--help"]);
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    let mixture = help.find("Mixture options").expect("a mixture section");
    let kvae = help.find("kVAE options").expect("a kVAE section");
    let shift = help.find("--shift").unwrap();
    let rounds = help.find("--rounds").unwrap();
    assert!(mixture < shift && shift < kvae && kvae < rounds, "{help}");
}

#[test]
fn a_model_the_engine_cannot_run_is_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let d = data();
    for (method, flag, value, needle) in [
        ("mixture", "--hidden", "5000", "5000"),
        ("mixture", "--gate-hidden", "64,64,64,64", "layers"),
        ("mixture", "--experts", "17", "--experts"),
        ("kvae", "--hidden", "4097", "4097"),
        ("kvae", "--experts", "40", "--experts"),
    ] {
        let o = trainer(&[
            "fit",
            "--method",
            method,
            flag,
            value,
            "--data",
            d.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
        ]);
        one_line_error(&o, &[needle]);
        assert!(
            !run.exists(),
            "{method} {flag} {value}: a run directory was made before the refusal"
        );
    }
}

#[test]
fn mixture_checkpoints_name_each_expert_not_its_thread() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let d = data();
    let o = trainer(&[
        "fit",
        "--preset",
        "blog",
        "--experts",
        "5",
        "--hidden",
        "16",
        "--limit",
        "200",
        "--epochs",
        "1",
        "--quiet",
        "--data",
        d.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let names = checkpoint_names(&run);
    assert!(!names.iter().any(|n| n.contains("experts.")), "{names:?}");
    for e in 0..5 {
        for part in ["encoder.fc0.weight", "decoder.fc1.bias"] {
            let n = format!("expert{e}.{part}");
            assert!(names.contains(&n), "{n} missing: {names:?}");
            assert!(names.contains(&format!("adam.m.{n}")), "moments of {n}");
        }
    }
}

/// Arguments of a small kVAE run; `extra` appended.
fn kvae_args<'a>(d: &'a str, run: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "fit",
        "--method",
        "kvae",
        "--experts",
        "3",
        "--hidden",
        "16",
        "--latent",
        "4",
        "--limit",
        "1500",
        "--batch",
        "16",
        "--pretrain-steps",
        "300",
        "--rounds",
        "2",
        "--round-steps",
        "60",
        "--disc-steps",
        "5",
        "--gate-epochs",
        "2",
        "--seed",
        "5",
        "--quiet",
        "--data",
        d,
        "--out",
        run,
    ];
    a.extend_from_slice(extra);
    a
}

#[cfg(unix)]
#[test]
fn kvae_resumes_from_a_checkpoint_to_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = data();
    let d = d.to_str().unwrap();
    let straight = dir.path().join("straight");
    let resumed = dir.path().join("resumed");

    let o = trainer(&kvae_args(d, straight.to_str().unwrap(), &[]));
    assert!(o.status.success(), "{}", stderr(&o));

    common::interrupt_after_first_epoch(&kvae_args(d, resumed.to_str().unwrap(), &[]), &resumed);
    assert!(!resumed.join("model.bin").exists());
    let names = checkpoint_names(&resumed);
    for prefix in ["encoder.", "decoder.", "disc.", "gate.", "adam.m.disc."] {
        assert!(
            names.iter().any(|n| n.starts_with(prefix)),
            "{prefix}: {names:?}"
        );
    }

    let o = trainer(&[
        "fit",
        "--resume",
        resumed.to_str().unwrap(),
        "--quiet",
        "--data",
        d,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(straight.join("model.bin")).unwrap(),
        std::fs::read(resumed.join("model.bin")).unwrap(),
        "the resumed kVAE run differs from the straight one"
    );
    // Every epoch is recorded once, the reassignments among them.
    let lines = std::fs::read_to_string(resumed.join("metrics.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The pretraining, two rounds, two gate epochs.
    assert_eq!(records.len(), 1 + 2 + 2);
    let reassigned = records
        .iter()
        .filter(|r| r["notes"]["reassignment"].is_u64())
        .count();
    assert_eq!(reassigned, 2);
    assert!(records.last().unwrap()["test_acc"].is_f64());
    // A kVAE-only flag on a resumed mixture, or a mixture flag on a resumed
    // kVAE run, is refused too.
    let o = trainer(&[
        "fit",
        "--resume",
        resumed.to_str().unwrap(),
        "--epochs",
        "9",
        "--data",
        d,
    ]);
    one_line_error(&o, &["--epochs", "--method mixture"]);
}

#[test]
fn kvae_takes_the_device_flag() {
    let o = trainer(&[
        "fit",
        "--method",
        "kvae",
        "--device",
        "tpu",
        "--data",
        "/nonexistent",
    ]);
    one_line_error(&o, &["--device"]);
}

#[test]
fn a_run_directory_from_before_the_one_loop_gets_a_one_line_hint() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    // What a trainer of 2026-12-01 left: a flat state with Adam's step
    // count, tensors named by expert group, lowercase enum names.
    std::fs::write(run.join("checkpoint.safetensors"), b"not read").unwrap();
    std::fs::write(
        run.join("state.json"),
        br#"{"epoch":2,"step_in_epoch":0,"adam_steps":1200,"sums":{}}"#,
    )
    .unwrap();
    std::fs::write(
        run.join("config.json"),
        br#"{"preset":"blog","arch":{"act":"sigmoid"},"likelihood":"bernoulli"}"#,
    )
    .unwrap();
    let d = data();
    let run = run.to_str().unwrap();
    for args in [
        vec!["fit", "--resume", run],
        vec!["export", "--run", run, "--out", "/nonexistent/m.bin"],
        vec!["eval", "--model", run],
    ] {
        let mut args = args.clone();
        args.extend(["--data", d.to_str().unwrap()]);
        let o = trainer(&args);
        one_line_error(&o, &["before 2026-12-02", "start a new run"]);
    }
}
