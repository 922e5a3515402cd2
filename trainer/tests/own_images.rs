//! `trainer fit` on image sets of one's own: every bad input of the data
//! readers is a one-line error naming the file, with a non-zero exit and no
//! model written; an unlabelled folder trains and says that nothing is
//! scored.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{assert_one_line_error, stderr, trainer};
use trainer::data::fixtures;

fn png(path: &Path, w: u32, h: u32, pixels: &[u8]) {
    fixtures::write_png(path, w, h, pixels).unwrap();
}

/// A run that fits in a second: the blog preset, 3 experts, narrow.
fn fit(data: &Path, out: &Path, extra: &[&str]) -> Output {
    let export = out.join("exported.bin");
    let mut args = vec![
        "fit",
        "--preset",
        "blog",
        "--experts",
        "3",
        "--hidden",
        "16",
        "--batch",
        "20",
        "--epochs",
        "2",
        "--quiet",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--export",
        export.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    trainer(&args)
}

fn assert_refused(o: &Output, run: &Path, needles: &[&str]) {
    assert_one_line_error(o, 1, needles);
    assert!(!run.join("exported.bin").exists(), "a model was written");
    assert!(!run.join("model.bin").exists(), "a model was written");
}

#[test]
fn bad_image_sets_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let run = root.join("run");
    let refused = |data: &PathBuf, extra: &[&str], needles: &[&str]| {
        assert_refused(&fit(data, &run, extra), &run, needles);
    };
    let folder = |name: &str, n: usize| {
        let d = root.join(name);
        for i in 0..n {
            png(&d.join(format!("{i:03}.png")), 8, 8, &fixtures::toy(i).1);
        }
        d
    };

    // An empty folder.
    let d = root.join("empty");
    std::fs::create_dir_all(&d).unwrap();
    refused(&d, &[], &["empty: no images found"]);
    // A truncated PNG, a zero-byte file, a file that is not an image.
    let d = folder("truncated", 6);
    let full = std::fs::read(d.join("003.png")).unwrap();
    std::fs::write(d.join("003.png"), &full[..full.len() / 2]).unwrap();
    refused(&d, &[], &["003.png: not a readable image"]);
    let d = folder("zero", 6);
    std::fs::write(d.join("002.png"), b"").unwrap();
    refused(&d, &[], &["002.png: empty file (0 bytes)"]);
    let d = folder("text", 6);
    std::fs::write(d.join("notes.txt"), b"my digits").unwrap();
    refused(&d, &[], &["notes.txt: not an image file"]);
    // Images of mixed sizes: the first odd one is named.
    let d = folder("mixed", 6);
    png(&d.join("004.png"), 9, 8, &[0; 72]);
    refused(&d, &[], &["004.png: image is 9x8, but", "000.png is 8x8"]);
    // Fewer images than experts.
    let d = folder("few", 2);
    refused(&d, &[], &["1 training images for 3 experts"]); // 2 less the held-out one

    // CSV: a ragged row, a non-number, a pixel over 255.
    let csv = |name: &str, text: &str| {
        let p = root.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let row = |i: usize| {
        let (l, px) = fixtures::toy(i);
        let cells: Vec<String> = px.iter().map(|v| v.to_string()).collect();
        format!("{l},{}\n", cells.join(","))
    };
    let good: String = (0..6).map(row).collect();
    let d = csv("ragged.csv", &format!("{good}1,2,3\n"));
    refused(
        &d,
        &[],
        &["ragged.csv: row 7, column 4: 3 cells, the first row has 65"],
    );
    let d = csv("word.csv", &good.replacen(",255,", ",ink,", 1));
    refused(
        &d,
        &[],
        &["word.csv: row 1, column", "\"ink\" is not an integer"],
    );
    let d = csv("over.csv", &good.replacen(",255,", ",256,", 1));
    refused(
        &d,
        &[],
        &["over.csv: row 1, column", "value 256 is over 255"],
    );
    let d = csv("zero.csv", "");
    refused(&d, &[], &["zero.csv: no images"]);

    // .npy of another dtype or rank; labels whose count differs.
    let npy = root.join("x.npy");
    trainer::data::npy::write::<i32>(&npy, &[6, 8, 8], &[0; 384]).unwrap();
    refused(&npy, &[], &["x.npy: dtype <i4 is not supported"]);
    trainer::data::npy::write::<u8>(&npy, &[6, 2, 8, 4], &[0; 384]).unwrap();
    refused(&npy, &[], &["x.npy: array of 4 dimensions"]);
    let pixels: Vec<u8> = (0..6).flat_map(|i| fixtures::toy(i).1).collect();
    trainer::data::npy::write::<u8>(&npy, &[6, 8, 8], &pixels).unwrap();
    let labels = root.join("y.npy");
    trainer::data::npy::write::<u8>(&labels, &[5], &[0; 5]).unwrap();
    refused(
        &npy,
        &["--labels", labels.to_str().unwrap()],
        &["x.npy has 6 images but", "y.npy has 5 labels"],
    );
    // A zero-byte IDX file.
    let idx = root.join("images-idx3-ubyte");
    std::fs::write(&idx, b"").unwrap();
    refused(&idx, &[], &["images-idx3-ubyte: truncated"]);
    // A missing path.
    refused(&root.join("nowhere"), &[], &["nowhere: not found"]);
    // Flags.
    let d = folder("flags", 6);
    refused(
        &d,
        &["--test-fraction", "1.5"],
        &["--test-fraction must be between 0 and 1"],
    );
    let o = fit(&d, &run, &["--size", "8by8"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--size"), "{}", stderr(&o));
}

#[test]
fn an_unlabelled_folder_trains_without_scores() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("flat");
    for i in 0..90 {
        png(&d.join(format!("{i:03}.png")), 8, 8, &fixtures::toy(i).1);
    }
    let run = dir.path().join("run");
    let o = fit(&d, &run, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("training images of 8x8"), "{report}");
    assert!(report.contains("9 images held out of"), "{report}");
    assert!(
        report.contains("no labels: clusters cannot be scored"),
        "{report}"
    );
    assert!(report.contains("model.bin has no label map"), "{report}");
    assert!(!report.contains("Confusion matrix"), "{report}");
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("data.json")).unwrap()).unwrap();
    assert_eq!(data["invert"], "auto");
    let bytes = std::fs::read(run.join("exported.bin")).unwrap();
    let model = engine::Model::from_bytes(&bytes).unwrap();
    assert_eq!(
        model.header().image,
        engine::ImageShape {
            width: 8,
            height: 8
        }
    );
    assert!(model.header().label_map.is_none());
    // A re-export reads the run's own data from data.json, untold.
    let again = dir.path().join("again.bin");
    let o = trainer(&[
        "export",
        "--run",
        run.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&again).unwrap(), bytes);
}

#[test]
fn npy_with_labels_and_a_separate_csv_test_set() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let n = 60;
    let pixels: Vec<u8> = (0..n).flat_map(|i| fixtures::toy(i).1).collect();
    let kinds: Vec<u8> = (0..n).map(|i| fixtures::toy(i).0).collect();
    let images = root.join("x.npy");
    trainer::data::npy::write::<u8>(&images, &[n as u64, 64], &pixels).unwrap();
    let labels = root.join("y.npy");
    trainer::data::npy::write::<u8>(&labels, &[n as u64], &kinds).unwrap();
    // The test set: 30 more toy images as a headerless CSV, label first.
    let csv: String = (n..n + 30)
        .map(|i| {
            let (kind, px) = fixtures::toy(i);
            let cells: Vec<String> = px.iter().map(|v| v.to_string()).collect();
            format!("{kind},{}\n", cells.join(","))
        })
        .collect();
    let test = root.join("test.csv");
    std::fs::write(&test, csv).unwrap();
    let run = root.join("run");
    let o = fit(
        &images,
        &run,
        &[
            "--labels",
            labels.to_str().unwrap(),
            "--test",
            test.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("60 training images of 8x8"), "{report}");
    assert!(
        report.contains(&format!("test images (30): {}", test.display())),
        "{report}"
    );
    assert!(
        report.contains("Confusion matrix (test set, engine)"),
        "{report}"
    );
    let bytes = std::fs::read(run.join("model.bin")).unwrap();
    let model = engine::Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.header().label_map.as_ref().map(|m| m.len()), Some(3));
    // trainer eval scores the model on the CSV, inverting it as the run did.
    let out = trainer(&[
        "eval",
        "--model",
        run.join("model.bin").to_str().unwrap(),
        "--data",
        test.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("on 30 test images") && text.contains("ACC "),
        "{text}"
    );
    assert!(text.contains("polarity: inverted"), "{text}");
}

/// `--frame mnist`: scans of single digits of different sizes and
/// polarities (MNIST test digits drawn 2 or 3 times larger on pages of
/// their own size, half dark on light) are framed into 28×28 and trained on.
#[test]
fn scans_of_any_size_are_framed_and_trained_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut digits =
        trainer::data::read_images(common::data().join("t10k-images-idx3-ubyte.gz")).unwrap();
    let labels =
        trainer::data::read_labels(common::data().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    digits.truncate(60);
    for (i, &label) in labels.iter().enumerate().take(digits.n) {
        let scale = 2 + i % 2;
        let (w, h) = (28 * scale + 7 + i % 5, 28 * scale + 3);
        let light = i % 2 == 0;
        let mut page = vec![if light { 235u8 } else { 20 }; w * h];
        for (p, &v) in digits.image(i).iter().enumerate() {
            for d in 0..scale * scale {
                let (x, y) = (
                    3 + (p % 28) * scale + d % scale,
                    1 + (p / 28) * scale + d / scale,
                );
                if v > 0 {
                    page[y * w + x] = if light { (255 - v).min(235) } else { v.max(20) };
                }
            }
        }
        let path = dir
            .path()
            .join("scans")
            .join(label.to_string())
            .join(format!("{i:02}.png"));
        png(&path, w as u32, h as u32, &page);
    }
    let run = dir.path().join("run");
    let o = fit(&dir.path().join("scans"), &run, &["--frame", "mnist"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("54 training images of 28x28"), "{report}");
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("data.json")).unwrap()).unwrap();
    assert_eq!(data["frame"], serde_json::json!([28, 28]));
    let bytes = std::fs::read(run.join("model.bin")).unwrap();
    let model = engine::Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.pixels(), 784);
    // Without --frame, the same folder is refused: its pages differ in size.
    let o = fit(&dir.path().join("scans"), &dir.path().join("run2"), &[]);
    assert_one_line_error(
        &o,
        1,
        &["image is", "every image of a set must have one size"],
    );
}
