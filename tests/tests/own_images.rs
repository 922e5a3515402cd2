//! A set of one's own, end to end: a tiny folder of 8×8 PNGs (sub-folders
//! are labels) and the same images as a CSV are trained on by the trainer,
//! exported, and classified by `harness classify` through the engine.

use std::path::Path;
use std::process::{Command, Output};

use clap::Parser;
use trainer::data::fixtures;

const N: usize = 150;

fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .output()
        .expect("run harness")
}

/// `trainer fit` in this process (the trainer's binary belongs to another
/// package): the default method (label-free partition, pretraining, the
/// mixture) with 3 small experts and few epochs.
fn fit(data: &Path, run: &Path, export: &Path) {
    let args = [
        "trainer",
        "fit",
        "--experts",
        "3",
        "--gate-hidden",
        "16",
        "--decoder-hidden",
        "16",
        "--batch",
        "15",
        "--epochs",
        "2",
        "--shift",
        "0",
        "--quiet",
        "--data",
        data.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--export",
        export.to_str().unwrap(),
    ];
    let cli = trainer::cli::Cli::try_parse_from(args).unwrap();
    trainer::cli::run(cli).unwrap();
}

/// `harness classify` rows as (cluster, label) pairs.
fn classify(model: &Path, images: &Path, extra: &[&str]) -> Vec<(usize, String)> {
    let mut args = vec![
        "classify",
        "--model",
        model.to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = harness(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[1].parse().unwrap(), cells[2].to_string())
        })
        .collect()
}

/// Fraction of rows whose label is the image's kind.
fn accuracy(rows: &[(usize, String)], kinds: &[u8]) -> f64 {
    let right = rows
        .iter()
        .zip(kinds)
        .filter(|((_, l), k)| *l == k.to_string())
        .count();
    right as f64 / rows.len() as f64
}

#[test]
fn a_png_folder_and_a_csv_train_export_and_classify() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // The folder: <kind>/<index>.png; path order is kind, then index.
    let mut by_path: Vec<(String, u8)> = Vec::new();
    let mut csv = String::from("label");
    for p in 0..64 {
        csv.push_str(&format!(",pixel{p}"));
    }
    csv.push('\n');
    for i in 0..N {
        let (kind, px) = fixtures::toy(i);
        let path = root
            .join("png")
            .join(kind.to_string())
            .join(format!("{i:03}.png"));
        fixtures::write_png(&path, 8, 8, &px).unwrap();
        by_path.push((format!("{kind}/{i:03}"), kind));
        let cells: Vec<String> = px.iter().map(|v| v.to_string()).collect();
        csv.push_str(&format!("{kind},{}\n", cells.join(",")));
    }
    by_path.sort();
    let folder_kinds: Vec<u8> = by_path.iter().map(|p| p.1).collect();
    let csv_path = root.join("toy.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let csv_kinds: Vec<u8> = (0..N).map(|i| fixtures::toy(i).0).collect();

    for (data, kinds) in [(root.join("png"), &folder_kinds), (csv_path, &csv_kinds)] {
        let run = root.join(format!(
            "run-{}",
            data.file_name().unwrap().to_string_lossy()
        ));
        let model = run.join("model-export.bin");
        fit(&data, &run, &model);
        let report = std::fs::read_to_string(run.join("report.md")).unwrap();
        assert!(report.contains("of 8x8"), "{report}");
        assert!(report.contains("15 images held out"), "{report}");
        assert!(report.contains("Confusion matrix"), "{report}");
        // Every image, through the engine, in the set's order.
        let rows = classify(&model, &data, &[]);
        assert_eq!(rows.len(), N);
        let acc = accuracy(&rows, kinds);
        assert!(acc > 0.9, "{}: label map right on {acc}", data.display());
        // The int8 file and the harness's quantizer read the same sets.
        let int8 = root.join("q.bin");
        let o = harness(&[
            "quantize",
            "--model",
            run.join("model.bin").to_str().unwrap(),
            "--images",
            data.to_str().unwrap(),
            "--out",
            int8.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(accuracy(&classify(&int8, &data, &[]), kinds) > 0.9);
    }

    // One PNG; the polarity decision reaches stderr.
    let model = root.join("run-png").join("model-export.bin");
    let one = root.join("png").join("1").join("004.png");
    let rows = classify(&model, &one, &[]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, "1");
    let o = harness(&[
        "classify",
        "--model",
        model.to_str().unwrap(),
        "--images",
        one.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("polarity: inverted: light border"), "{err}");
    // --invert no on dark-on-light images: the model sees paper as ink.
    let wrong = classify(&model, &root.join("png"), &["--invert", "no"]);
    assert!(accuracy(&wrong, &folder_kinds) < 0.9);
    // An image of another size than the model's: one line, the file named.
    let big = root.join("big.png");
    image::GrayImage::new(28, 28).save(&big).unwrap();
    let o = harness(&[
        "classify",
        "--model",
        model.to_str().unwrap(),
        "--images",
        big.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("big.png: images are 28x28, expected 8x8 (the model's image size)"),
        "{err}"
    );
}

/// `--frame mnist`: MNIST test digits drawn three times larger, off centre,
/// dark on grey-white paper (as a scan), are framed back into 28×28 digits
/// and given the clusters of the digits classified directly (the faint
/// pixels under 1/8 of full ink become paper, so the bits may differ).
#[test]
fn frame_mnist_turns_scans_back_into_the_digits() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let model = root.join("firmware-example/models/default.bin");
    let mut digits =
        trainer::data::read_images(root.join("data/mnist/t10k-images-idx3-ubyte.gz")).unwrap();
    digits.truncate(20);
    let idx = dir.path().join("digits-idx3-ubyte");
    std::fs::write(&idx, trainer::data::encode_images(&digits)).unwrap();
    for i in 0..digits.n {
        let (w, h, scale, x0, y0) = (110usize, 92usize, 3usize, 5 + i, 2 * i % 7);
        let mut scan = vec![240u8; w * h];
        for (p, &v) in digits.image(i).iter().enumerate() {
            for d in 0..scale * scale {
                let (x, y) = (
                    x0 + (p % 28) * scale + d % scale,
                    y0 + (p / 28) * scale + d / scale,
                );
                scan[y * w + x] = (255 - v).min(240);
            }
        }
        let path = dir.path().join("scans").join(format!("{i:02}.png"));
        fixtures::write_png(&path, w as u32, h as u32, &scan).unwrap();
    }
    let run = |images: &Path, extra: &[&str]| {
        let mut args = vec![
            "classify",
            "--model",
            model.to_str().unwrap(),
            "--images",
            images.to_str().unwrap(),
            "--bits",
        ];
        args.extend_from_slice(extra);
        let o = harness(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let clusters = |csv: String| -> Vec<String> {
        csv.lines()
            .skip(1)
            .map(|l| l.split(',').nth(1).unwrap().to_string())
            .collect()
    };
    let direct = clusters(run(&idx, &[]));
    let framed = clusters(run(&dir.path().join("scans"), &["--frame", "mnist"]));
    assert_eq!(framed.len(), 20);
    let same = framed.iter().zip(&direct).filter(|(a, b)| a == b).count();
    eprintln!("--frame mnist: {same} of 20 scans in their digit's cluster");
    assert!(same >= 19, "{framed:?} vs {direct:?}");
    // Without framing, 100x90 scans are not the model's size: one line.
    let o = harness(&[
        "classify",
        "--model",
        model.to_str().unwrap(),
        "--images",
        dir.path().join("scans").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("images are 110x92, expected 28x28 (the model's image size)"),
        "{err}"
    );
}
