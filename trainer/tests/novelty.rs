//! `trainer experiment novelty` end to end: a tiny flat run trained here,
//! then the quick measurement (the table's rows and cost rows), and the
//! refusals (a missing run directory, a run of another method).

mod common;

use common::{assert_one_line_error, data, stderr, trainer};

#[test]
fn novelty_quick_measures_a_tiny_run() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let out = tmp.path().join("out");
    let d = data();
    let (d, run_s, out_s) = (
        d.to_str().unwrap(),
        run.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let fit = trainer(&[
        "fit",
        "--limit",
        "600",
        "--ae-epochs",
        "1",
        "--pretrain-epochs",
        "1",
        "--epochs",
        "1",
        "--min-epoch-steps",
        "10",
        "--quiet",
        "--data",
        d,
        "--out",
        run_s,
    ]);
    assert!(fit.status.success(), "{}", stderr(&fit));
    let o = trainer(&[
        "experiment",
        "novelty",
        "--quick",
        "--run",
        run_s,
        "--data",
        d,
        "--out",
        out_s,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(out.join("novelty.md")).unwrap();
    for row in [
        "| MNIST test (known digits) | 300 |",
        "| uniform noise | 60 |",
        "| blank and near-blank",
        "| random strokes",
        "| shuffled-pixel MNIST",
        "| inverted MNIST",
        "| MNIST, 10×10 block cut out",
        "| letters A–Z",
        "| extra parameters |",
        "| extra multiply-adds per classification |",
    ] {
        assert!(md.contains(row), "{row:?} missing from\n{md}");
    }
    // The default arch: the Gaussian's 10 × (2 × 256 + 1) values, no
    // extra for the gate's own scores.
    assert!(md.contains("| 0 (+0.0%) | 0 (+0.0%) | 5,130 ("), "{md}");
    // AUROCs are within [0, 1].
    let line = md
        .lines()
        .find(|l| l.starts_with("| uniform noise"))
        .unwrap();
    let cells: Vec<f64> = line
        .split('|')
        .filter_map(|c| c.trim().parse::<f64>().ok())
        .collect();
    assert_eq!(cells.len(), 6, "{line}");
    assert!(cells[1..].iter().all(|a| (0.0..=1.0).contains(a)), "{line}");
}

#[test]
fn novelty_refuses_a_missing_run_and_another_method() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nothing-here");
    let o = trainer(&[
        "experiment",
        "novelty",
        "--quick",
        "--run",
        missing.to_str().unwrap(),
        "--out",
        tmp.path().join("out").to_str().unwrap(),
    ]);
    assert_one_line_error(&o, 1, &["nothing-here", "no such run directory"]);

    let kvae = tmp.path().join("kvae-run");
    std::fs::create_dir_all(&kvae).unwrap();
    std::fs::write(kvae.join("config.json"), r#"{"method": "kvae"}"#).unwrap();
    let o = trainer(&[
        "experiment",
        "novelty",
        "--quick",
        "--run",
        kvae.to_str().unwrap(),
        "--out",
        tmp.path().join("out").to_str().unwrap(),
    ]);
    assert_one_line_error(&o, 1, &["kvae-run", "not a flat mixture run"]);
}
