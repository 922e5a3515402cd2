//! The `harness` binary as a user runs it: outputs, and one-line errors on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .output()
        .expect("run harness")
}

fn tiny_model(dir: &Path) -> PathBuf {
    let path = dir.join("tiny.bin");
    std::fs::write(&path, engine::testing::tiny_model_bytes()).unwrap();
    path
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_one_line_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "{err:?} does not mention {needle:?}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn inspect_describes_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let o = harness(&["inspect", "--model", model.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("experts 3, latent 2"), "{out}");
    assert!(
        out.contains("label map (cluster -> digit) [7, 1, 0]"),
        "{out}"
    );
    assert!(
        out.contains("gate: 784->3 Identity (2355 parameters)"),
        "{out}"
    );
    // (784*3 + 3) + 3 * (2*784 + 784)
    assert!(out.contains("parameters 9411, RAM needed"), "{out}");
}

#[test]
fn classify_prints_one_row_per_image() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let n = 25;
    let images = trainer::data::Images {
        n,
        rows: 28,
        cols: 28,
        pixels: (0..n * 784).map(|i| (i * 7 % 256) as u8).collect(),
    };
    let idx = dir.path().join("images-idx3-ubyte");
    std::fs::write(&idx, trainer::data::encode_images(&images)).unwrap();
    let o = harness(&[
        "classify",
        "--model",
        model.to_str().unwrap(),
        "--images",
        idx.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "index,cluster,label,confidence");
    assert_eq!(lines.len(), n + 1);
    // The CSV agrees with the engine called directly.
    let bytes = std::fs::read(&model).unwrap();
    let m = engine::Model::from_bytes(&bytes).unwrap();
    let mut ws = engine::Workspace::<784>::new();
    for (i, line) in lines[1..].iter().enumerate() {
        let c = m.classify(&mut ws, images.image(i)).unwrap();
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields[0], i.to_string());
        assert_eq!(fields[1], c.cluster.to_string());
        assert_eq!(fields[2], c.label.unwrap().to_string());
        assert_eq!(fields[3], format!("{:.6}", c.confidence()));
    }
}

#[test]
fn generate_writes_a_png_grid() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let png = dir.path().join("grid.png");
    let o = harness(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--expert",
        "2",
        "--count",
        "9",
        "--seed",
        "5",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let img = image::open(&png).unwrap().to_luma8();
    // 3×3 samples of 28×28 with 2-pixel gaps.
    assert_eq!(img.dimensions(), (3 * 30 + 2, 3 * 30 + 2));
    // Sample 0 of the grid equals the engine's image for seed 5.
    let bytes = std::fs::read(&model).unwrap();
    let m = engine::Model::from_bytes(&bytes).unwrap();
    let mut ws = engine::Workspace::<784>::new();
    let mut px = [0u8; 784];
    engine::to_pixels(m.generate(&mut ws, 2, 5).unwrap(), &mut px);
    for (p, &v) in px.iter().enumerate() {
        assert_eq!(
            img.get_pixel(2 + (p % 28) as u32, 2 + (p / 28) as u32).0[0],
            v
        );
    }
}

#[test]
fn bad_models_give_one_line_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = engine::testing::tiny_model_bytes();
    let truncated = dir.path().join("truncated.bin");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let flipped = dir.path().join("flipped.bin");
    let mut f = good.to_vec();
    f[good.len() / 3] ^= 0x10;
    std::fs::write(&flipped, &f).unwrap();
    let text = dir.path().join("text.bin");
    std::fs::write(&text, "hello, this is not a model").unwrap();
    let missing = dir.path().join("missing.bin");

    for cmd in ["inspect", "classify"] {
        let run = |p: &Path| {
            let mut args = vec![cmd, "--model", p.to_str().unwrap()];
            if cmd == "classify" {
                args.extend(["--images", "unused"]);
            }
            harness(&args)
        };
        assert_one_line_error(&run(&truncated), "truncated model");
        assert_one_line_error(&run(&flipped), "checksum");
        assert_one_line_error(&run(&text), "bad magic");
        assert_one_line_error(&run(&missing), "missing.bin");
    }
    let model = tiny_model(dir.path());
    let o = harness(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--expert",
        "3",
        "--out",
        dir.path().join("x.png").to_str().unwrap(),
    ]);
    assert_one_line_error(&o, "no expert 3");
    let o = harness(&[
        "classify",
        "--model",
        model.to_str().unwrap(),
        "--images",
        model.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(!stderr(&o).contains("panicked"));
}
