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

/// `n` 28×28 images (pixel `i` of the stack is `i · step mod 256`) and the
/// IDX file holding them.
fn images_file(dir: &Path, n: usize, step: usize) -> (trainer::data::Images, PathBuf) {
    let images = trainer::data::Images {
        n,
        rows: 28,
        cols: 28,
        pixels: (0..n * 784).map(|i| (i * step % 256) as u8).collect(),
    };
    let idx = dir.join("images-idx3-ubyte");
    std::fs::write(&idx, trainer::data::encode_images(&images)).unwrap();
    (images, idx)
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
        out.contains("gate: 784->3 Identity f16 (2355 parameters, 4710 bytes of tensors)"),
        "{out}"
    );
    // (784*3 + 3) + 3 * (2*784 + 784)
    assert!(
        out.contains("parameters 9411, f16 weights, RAM needed"),
        "{out}"
    );
}

#[test]
fn classify_prints_one_row_per_image() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let n = 25;
    let (images, idx) = images_file(dir.path(), n, 7);
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
    assert_eq!(
        lines[0],
        "index,cluster,label,confidence,style,style_confidence,novelty,known"
    );
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
        // A flat model: style 0, with probability 1; no novelty section:
        // empty novelty cells.
        assert_eq!(fields[4..], ["0", "1.000000", "", ""]);
    }
}

#[test]
fn classify_bits_appends_the_probabilities_bits() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let n = 4;
    let (images, idx) = images_file(dir.path(), n, 11);
    let run = |bits: bool| {
        let mut args = vec!["classify", "--model", model.to_str().unwrap()];
        args.extend(["--images", idx.to_str().unwrap()]);
        if bits {
            args.push("--bits");
        }
        let o = harness(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    let (plain, with_bits) = (run(false), run(true));
    let lines: Vec<&str> = with_bits.lines().collect();
    assert_eq!(
        lines[0],
        "index,cluster,label,confidence,probability_bits,style,style_confidence,style_confidence_bits,novelty,known,novelty_bits"
    );
    let bytes = std::fs::read(&model).unwrap();
    let m = engine::Model::from_bytes(&bytes).unwrap();
    let mut ws = engine::host::workspace();
    for (i, (line, plain)) in lines[1..].iter().zip(plain.lines().skip(1)).enumerate() {
        let c = m.classify(&mut ws, images.image(i)).unwrap();
        let hex: Vec<String> = c
            .probabilities
            .iter()
            .map(|p| format!("{:08x}", p.to_bits()))
            .collect();
        // The plain row's columns, `probability_bits` after `confidence`
        // (where it always was), the style confidence's bits after it, the
        // novelty's (empty: the model has no section) last.
        let plain: Vec<&str> = plain.split(',').collect();
        let (head, rest) = plain.split_at(4);
        let (style, novelty) = rest.split_at(2);
        assert_eq!(novelty, ["", ""]);
        assert_eq!(
            *line,
            format!(
                "{},{},{},{:08x},{},",
                head.join(","),
                hex.join(" "),
                style.join(","),
                c.style_confidence().to_bits(),
                novelty.join(",")
            )
        );
    }
}

#[test]
fn a_model_wider_than_the_host_workspace_is_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let wide = engine::testing::random_spec(
        &[
            (784, 4097, engine::Activation::Relu),
            (4097, 2, engine::Activation::Identity),
        ],
        &[(2, 784, engine::Activation::Sigmoid)],
        2,
        1,
    );
    let path = dir.path().join("wide.bin");
    std::fs::write(&path, wide.to_bytes().unwrap()).unwrap();
    let o = harness(&["inspect", "--model", path.to_str().unwrap()]);
    assert_one_line_error(
        &o,
        "wide.bin: model needs a workspace of 4097 values; the engine's host workspace holds 4096",
    );
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
    // 3×3 samples of 28×28, drawn 3× (84×84) with 2-pixel gaps, under a
    // title naming the expert, its digit (the tiny model's label map gives
    // expert 2 the digit 0) and the seeds.
    let title = "expert 2 → digit 0 · seeds 5–13";
    let layout = trainer::eval::pictures::labelled_layout(title, 9, 3, (28, 28), &[]);
    assert_eq!(layout.scale, 3);
    assert_eq!(layout.size.1, layout.top + 3 * 86 + 2);
    assert!(layout.top > 0, "no room for the title");
    assert_eq!(
        img.dimensions(),
        (layout.size.0 as u32, layout.size.1 as u32)
    );
    // The title is drawn: dark text on the white band above the grid.
    let band = (0..layout.top as u32).flat_map(|y| (0..img.width()).map(move |x| (x, y)));
    assert!(band
        .into_iter()
        .any(|(x, y)| img.get_pixel(x, y).0[0] < 128));
    // Sample 0 of the grid equals the engine's image for seed 5.
    let bytes = std::fs::read(&model).unwrap();
    let m = engine::Model::from_bytes(&bytes).unwrap();
    let mut ws = engine::Workspace::<784>::new();
    let mut px = [0u8; 784];
    engine::to_pixels(m.generate(&mut ws, 2, 5).unwrap(), &mut px);
    let (x0, y0) = (layout.left + 2, layout.top + 2);
    for (p, &v) in px.iter().enumerate() {
        let (x, y) = (x0 + 3 * (p % 28), y0 + 3 * (p / 28));
        assert_eq!(img.get_pixel(x as u32, y as u32).0[0], v);
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

/// A complete format-version-1 file: a 2×1 image, one expert, latent 1,
/// f16 tensors inside the postcard body (the version-1 layout).
#[rustfmt::skip]
const V1: [u8; 63] = [
    b'M', b'o', b'V', b'A', b'E', b'\r', b'\n', 0x1a, 0x01, 0x00, 0x00, 0x00, // magic, version 1
    43, 0x00, 0x00, 0x00, 0x4f, 0x33, 0x10, 0x49, // body length, crc32
    0x00, 0x02, 0x01, 0x01, 0x01, 0x00, // method, image 2x1, K 1, latent 1, Bernoulli
    0x01, 0x00, 0x00, 0x80, 0x3f, 0x01, 0x01, 0x07, 0x01, b't', // weights [1.0], labels [7], "t"
    0x01, 0x02, 0x01, 0x00, // gate: one layer 2 -> 1 Identity
    0x04, 0x00, 0x3c, 0x00, 0xbc, 0x02, 0x00, 0x38, // weights [1, -1], bias [0.5]
    0x01, 0x01, 0x01, 0x02, 0x02, // one decoder: one layer 1 -> 2 Sigmoid
    0x04, 0x00, 0x40, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, // weights [2, 0], bias [0, 0]
];

#[test]
fn version_1_files_are_named_and_upgraded_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.bin");
    std::fs::write(&old, V1).unwrap();
    let o = harness(&["inspect", "--model", old.to_str().unwrap()]);
    assert_one_line_error(&o, "version 1 is too old");
    assert!(stderr(&o).contains("harness upgrade"), "{}", stderr(&o));
    let new = dir.path().join("new.bin");
    let o = harness(&[
        "upgrade",
        "--model",
        old.to_str().unwrap(),
        "--out",
        new.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&new).unwrap();
    let model = engine::Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.header().label_map.as_deref(), Some(&[7u8][..]));
    // The same f16 weights, bit for bit.
    let before = engine::writer::ModelSpec::from_v1_bytes(&V1).unwrap();
    let after = engine::writer::ModelSpec::from_bytes(&bytes).unwrap();
    assert_eq!(before, after);
    assert_eq!(after.gate[0].weights, [1.0, -1.0]);
    // A current file is not upgraded again.
    let o = harness(&[
        "upgrade",
        "--model",
        new.to_str().unwrap(),
        "--out",
        dir.path().join("x.bin").to_str().unwrap(),
    ]);
    assert_one_line_error(&o, "unsupported model format version 2");
}

#[test]
fn quantize_writes_an_int8_model_that_classifies() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let images = dir.path().join("images.idx");
    let n = 20usize;
    let mut idx = vec![0, 0, 8, 3];
    for d in [n as u32, 28, 28] {
        idx.extend_from_slice(&d.to_be_bytes());
    }
    idx.extend((0..n * 784).map(|i| ((i * 37) % 256) as u8));
    std::fs::write(&images, &idx).unwrap();
    let out = dir.path().join("int8.bin");
    let o = harness(&[
        "quantize",
        "--model",
        model.to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = harness(&["inspect", "--model", out.to_str().unwrap()]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("gate: 784->3 Identity int8 by columns"),
        "{text}"
    );
    assert!(text.contains("int8 weights"), "{text}");
    let o = harness(&[
        "classify",
        "--model",
        out.to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8(o.stdout).unwrap().lines().count(), n + 1);
    // An int8 model is not quantized again.
    let o = harness(&[
        "quantize",
        "--model",
        out.to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
        "--out",
        dir.path().join("again.bin").to_str().unwrap(),
    ]);
    assert_one_line_error(&o, "already has int8 weights");
}
