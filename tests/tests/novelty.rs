//! The novelty score in the harness: `classify`'s `novelty` and `known`
//! columns (and `novelty_bits` with `--bits`) are the engine's
//! `Classification::novelty`, empty for a model without a novelty section;
//! `inspect` says whether a model has one.

mod common;

use std::process::{Command, Output};

fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .output()
        .expect("run harness")
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// The classify CSV of `model` on `images`, plain and with `--bits`.
fn classify(model: &str, images: &str) -> (String, String) {
    let args = [
        "classify", "--model", model, "--images", images, "--invert", "no",
    ];
    let plain = stdout(&harness(&args));
    let bits = stdout(&harness(&[&args[..], &["--bits"]].concat()));
    (plain, bits)
}

#[test]
fn classify_prints_the_engines_novelty_and_known() {
    let dir = tempfile::tempdir().unwrap();
    let (f16, int8) = common::novelty_models(dir.path());
    // Blobs like the calibration's, a blank frame and a full one.
    let mut pixels = common::blobs(40, 77);
    pixels.extend([0u8; 784]);
    pixels.extend([255u8; 784]);
    let images = common::idx_file(dir.path(), "images-idx3-ubyte", &pixels);
    for model in [&f16, &int8] {
        let (plain, bits) = classify(model.to_str().unwrap(), images.to_str().unwrap());
        let plain: Vec<&str> = plain.lines().collect();
        let bits: Vec<&str> = bits.lines().collect();
        assert_eq!(
            plain[0],
            "index,cluster,label,confidence,style,style_confidence,novelty,known"
        );
        assert_eq!(
            bits[0],
            "index,cluster,label,confidence,probability_bits,style,style_confidence,style_confidence_bits,novelty,known,novelty_bits"
        );
        assert_eq!((plain.len(), bits.len()), (43, 43));
        let bytes = std::fs::read(model).unwrap();
        let m = engine::Model::from_bytes(&bytes).unwrap();
        let mut ws = engine::host::workspace();
        let (mut known, mut novel) = (0, 0);
        for (i, image) in pixels.chunks_exact(784).enumerate() {
            let c = m.classify(&mut ws, image).unwrap();
            let n = c.novelty.expect("the model has a novelty section");
            let f: Vec<&str> = plain[i + 1].split(',').collect();
            assert_eq!(f.len(), 8, "{}", plain[i + 1]);
            assert_eq!(f[1], c.cluster.to_string());
            assert_eq!(f[6], format!("{:.6}", n.score), "image {i}");
            assert_eq!(f[7], n.known.to_string(), "image {i}");
            let b: Vec<&str> = bits[i + 1].split(',').collect();
            assert_eq!(b.len(), 11, "{}", bits[i + 1]);
            assert_eq!(b[8..10], f[6..8]);
            assert_eq!(b[10], format!("{:08x}", n.score.to_bits()), "image {i}");
            // The columns before them are those of a model without one.
            assert_eq!(f[4..6], ["0", "1.000000"]);
            if n.known {
                known += 1;
            } else {
                novel += 1;
            }
        }
        // The threshold is the median of such blobs' distances: both verdicts.
        assert!(
            known > 5 && novel > 5,
            "{model:?}: {known} known, {novel} not"
        );
    }
}

#[test]
fn a_model_without_a_section_has_empty_novelty_cells() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.bin");
    std::fs::write(&model, engine::testing::tiny_model_bytes()).unwrap();
    let images = common::idx_file(dir.path(), "images-idx3-ubyte", &common::blobs(5, 1));
    let (plain, bits) = classify(model.to_str().unwrap(), images.to_str().unwrap());
    let plain: Vec<&str> = plain.lines().collect();
    let bits: Vec<&str> = bits.lines().collect();
    assert!(plain[0].ends_with(",novelty,known"), "{}", plain[0]);
    assert!(
        bits[0].ends_with(",novelty,known,novelty_bits"),
        "{}",
        bits[0]
    );
    for (p, b) in plain[1..].iter().zip(&bits[1..]) {
        assert!(p.ends_with(",1.000000,,"), "{p}");
        assert_eq!(p.split(',').count(), 8, "{p}");
        assert!(b.ends_with(",3f800000,,,"), "{b}");
        assert_eq!(b.split(',').count(), 11, "{b}");
    }
}

#[test]
fn inspect_says_whether_the_model_has_a_novelty_score() {
    let dir = tempfile::tempdir().unwrap();
    let (f16, int8) = common::novelty_models(dir.path());
    let tiny = dir.path().join("tiny.bin");
    std::fs::write(&tiny, engine::testing::tiny_model_bytes()).unwrap();
    let inspect =
        |p: &std::path::Path| stdout(&harness(&["inspect", "--model", p.to_str().unwrap()]));
    let out = inspect(&f16);
    assert!(
        out.contains("novelty score: per cluster a Gaussian over the gate's last hidden layer (32 units, f32 means and weights), doubt threshold 1.0000"),
        "{out}"
    );
    let out = inspect(&int8);
    assert!(
        out.contains("(32 units, integer means and weights)"),
        "{out}"
    );
    let out = inspect(&tiny);
    assert!(
        out.contains("novelty score: none (this file has no novelty section)"),
        "{out}"
    );
}
