//! The harness on two-level (format version 3) models: `classify`'s style
//! columns, `generate --style`, `inspect`'s tree. The expected values come
//! from the engine at test time, never from the committed placeholder
//! models' bits, which a trained model will replace.

use std::path::{Path, PathBuf};
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

/// The committed two-level models, f16 and int8.
fn two_level_models() -> [PathBuf; 2] {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware-example/models");
    [
        dir.join("hierarchical.bin"),
        dir.join("hierarchical-int8.bin"),
    ]
}

fn flat_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware-example/models/default.bin")
}

/// 40 28×28 images of several patterns, and the IDX file holding them.
fn images_file(dir: &Path) -> (trainer::data::Images, PathBuf) {
    let n = 40;
    let pixels = (0..n * 784)
        .map(|i| {
            let (k, p) = (i / 784, i % 784);
            let (x, y) = (p % 28, p / 28);
            // Strokes of varying slant and thickness, some noise.
            let centre = 14 + (y as i64 - 14) * (k as i64 % 7 - 3) / 6;
            let d = (x as i64 - centre).unsigned_abs() as usize;
            if d <= 1 + k % 4 && (4..24).contains(&y) {
                255
            } else {
                (p * (k + 3) * 37 % 256 / 8) as u8
            }
        })
        .collect();
    let images = trainer::data::Images {
        n,
        rows: 28,
        cols: 28,
        pixels,
    };
    let idx = dir.join("images-idx3-ubyte");
    std::fs::write(&idx, trainer::data::encode_images(&images)).unwrap();
    (images, idx)
}

#[test]
fn classify_style_columns_agree_with_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let (images, idx) = images_file(dir.path());
    for model in two_level_models() {
        let bytes = std::fs::read(&model).unwrap();
        let m = engine::Model::from_bytes(&bytes).unwrap();
        assert!(m.repr().is_two_level(), "{}", model.display());
        let mut ws = engine::host::workspace();
        let run = |bits: bool| {
            let mut args = vec!["classify", "--model", model.to_str().unwrap()];
            args.extend(["--images", idx.to_str().unwrap(), "--invert", "no"]);
            if bits {
                args.push("--bits");
            }
            stdout(&harness(&args))
        };
        let (plain, with_bits) = (run(false), run(true));
        let plain: Vec<&str> = plain.lines().collect();
        let with_bits: Vec<&str> = with_bits.lines().collect();
        assert_eq!(
            plain[0],
            "index,cluster,label,confidence,style,style_confidence,novelty,known"
        );
        assert_eq!(
            with_bits[0],
            "index,cluster,label,confidence,probability_bits,style,style_confidence,style_confidence_bits,novelty,known,novelty_bits"
        );
        assert_eq!((plain.len(), with_bits.len()), (images.n + 1, images.n + 1));
        for i in 0..images.n {
            let c = m.classify(&mut ws, images.image(i)).unwrap();
            let f: Vec<&str> = plain[i + 1].split(',').collect();
            assert_eq!(f[1], c.cluster.to_string());
            assert_eq!(f[4], c.style.to_string(), "image {i}");
            assert_eq!(f[5], format!("{:.6}", c.style_confidence()), "image {i}");
            assert!(c.style < m.styles(c.cluster));
            let b: Vec<&str> = with_bits[i + 1].split(',').collect();
            assert_eq!(b[5], c.style.to_string());
            assert_eq!(b[6], f[5]);
            assert_eq!(b[7], format!("{:08x}", c.style_confidence().to_bits()));
        }
    }
}

#[test]
fn classify_of_a_flat_model_answers_style_0_with_confidence_1() {
    let dir = tempfile::tempdir().unwrap();
    let (images, idx) = images_file(dir.path());
    let model = flat_model();
    let out = stdout(&harness(&[
        "classify",
        "--model",
        model.to_str().unwrap(),
        "--images",
        idx.to_str().unwrap(),
        "--bits",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), images.n + 1);
    let bytes = std::fs::read(&model).unwrap();
    let has_novelty = engine::ModelRepr::parse(&bytes)
        .unwrap()
        .novelty()
        .is_some();
    for line in &lines[1..] {
        // Style 0, certain (columns 6-8), then the novelty cells: empty
        // without a novelty section.
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f[5..8], ["0", "1.000000", "3f800000"], "{line}");
        assert_eq!(f.len(), 11, "{line}");
        assert_eq!(f[8..].iter().all(|c| !c.is_empty()), has_novelty, "{line}");
    }
}

#[test]
fn generate_draws_the_style_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    for model in two_level_models() {
        let bytes = std::fs::read(&model).unwrap();
        let m = engine::Model::from_bytes(&bytes).unwrap();
        let (cluster, style) = (m.experts() - 1, m.styles(m.experts() - 1) - 1);
        let png = dir.path().join("grid.png");
        let (c, s) = (cluster.to_string(), style.to_string());
        let o = harness(&[
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--expert",
            &c,
            "--style",
            &s,
            "--count",
            "4",
            "--seed",
            "3",
            "--out",
            png.to_str().unwrap(),
        ]);
        stdout(&o);
        let img = image::open(&png).unwrap().to_luma8();
        let mut title = format!("expert {cluster}");
        if let Some(d) = m.header().label_map.as_deref().map(|l| l[cluster]) {
            title += &format!(" → digit {d}");
        }
        title += &format!(" · style {style} · seeds 3–6");
        let layout = trainer::eval::pictures::labelled_layout(&title, 4, 2, (28, 28), &[]);
        assert_eq!(
            img.dimensions(),
            (layout.size.0 as u32, layout.size.1 as u32)
        );
        // Sample 0 is the engine's image of (cluster, style, seed 3).
        let mut ws = engine::host::workspace();
        let mut px = [0u8; 784];
        engine::to_pixels(
            m.generate_style(&mut ws, cluster, style, 3).unwrap(),
            &mut px,
        );
        let s = layout.scale;
        let (x0, y0) = (layout.left + 2, layout.top + 2);
        for (p, &v) in px.iter().enumerate() {
            let (x, y) = (x0 + s * (p % 28), y0 + s * (p / 28));
            assert_eq!(img.get_pixel(x as u32, y as u32).0[0], v);
        }
    }
}

#[test]
fn generate_with_a_style_out_of_range_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.png");
    let [model, _] = two_level_models();
    let bytes = std::fs::read(&model).unwrap();
    let m = engine::Model::from_bytes(&bytes).unwrap();
    let styles = m.styles(0);
    let flat = flat_model();
    for (path, style, range) in [
        (&model, styles, format!("styles 0-{}", styles - 1)),
        (&model, 99, format!("styles 0-{}", styles - 1)),
        (&flat, 1, "style 0 only".to_string()),
    ] {
        let s = style.to_string();
        let o = harness(&[
            "generate",
            "--model",
            path.to_str().unwrap(),
            "--expert",
            "0",
            "--style",
            &s,
            "--out",
            out.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success(), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(!err.contains("panicked"), "{err}");
        let want = format!(
            "error: {}: no style {style} in expert 0: it has {range}",
            path.display()
        );
        assert_eq!(err.trim_end(), want);
        assert!(!out.exists());
    }
}

#[test]
fn inspect_prints_the_tree() {
    for model in two_level_models() {
        let bytes = std::fs::read(&model).unwrap();
        let m = engine::Model::from_bytes(&bytes).unwrap();
        let repr = m.repr();
        let out = stdout(&harness(&["inspect", "--model", model.to_str().unwrap()]));
        assert!(out.starts_with("format version 3, "), "{out}");
        let total: usize = (0..m.experts()).map(|c| m.styles(c)).sum();
        assert!(
            out.contains(&format!("tree: {} clusters, {total} styles", m.experts())),
            "{out}"
        );
        let lines: Vec<&str> = out.lines().collect();
        for c in 0..m.experts() {
            let n = m.styles(c);
            let at = lines
                .iter()
                .position(|l| {
                    l.starts_with(&format!("cluster {c} "))
                        || l.starts_with(&format!("cluster {c}:"))
                })
                .unwrap_or_else(|| panic!("no cluster {c} in {out}"));
            let head = lines[at];
            if let Some(d) = m.header().label_map.as_deref().map(|l| l[c]) {
                assert!(head.contains(&format!("→ digit {d}")), "{head}");
            }
            let w = (m.header().mixture_weights[c] * 1000.0).round() / 1000.0;
            let plural = if n == 1 { "" } else { "s" };
            assert!(
                head.contains(&format!(": weight {w}, {n} style{plural}")),
                "{head}"
            );
            match repr.style_gate(c) {
                Some(gate) => {
                    assert_eq!(gate.outputs(), n);
                    let want = format!(
                        "({} parameters, {} bytes of tensors)",
                        gate.parameters(),
                        gate.tensor_bytes()
                    );
                    let line = lines[at + 1];
                    assert!(
                        line.starts_with(&format!("  style gate: {}->", m.pixels())),
                        "{line}"
                    );
                    assert!(line.contains(&format!("->{n} ")), "{line}");
                    assert!(line.ends_with(&want), "{line}");
                }
                None => assert_eq!(lines[at + 1], "  style gate: none (one style)"),
            }
            for s in 0..n {
                let line = lines[at + 2 + s];
                let w = (repr.style_weight(c, s).unwrap() * 1000.0).round() / 1000.0;
                let d = repr.decoder_of(c, s).unwrap();
                assert!(
                    line.starts_with(&format!("  style {s}: weight {w}, decoder: ")),
                    "{line}"
                );
                assert!(
                    line.ends_with(&format!(
                        "({} parameters, {} bytes of tensors)",
                        d.parameters(),
                        d.tensor_bytes()
                    )),
                    "{line}"
                );
            }
        }
        assert!(
            out.contains(&format!("parameters {}, ", m.parameters())),
            "{out}"
        );
    }
}

#[test]
fn inspect_of_a_flat_model_is_unchanged() {
    let model = flat_model();
    let bytes = std::fs::read(&model).unwrap();
    let m = engine::Model::from_bytes(&bytes).unwrap();
    let out = stdout(&harness(&["inspect", "--model", model.to_str().unwrap()]));
    assert_eq!(out, trainer::eval::host::describe(&m, bytes.len()));
    assert!(!out.contains("tree:") && !out.contains("style"), "{out}");
    // The flat listing: the file's version (3: the shipped flat model
    // carries a novelty section, an extension of the version-3
    // description; 2 without one), the gate, a decoder per cluster.
    let version = if m.repr().novelty().is_some() { 3 } else { 2 };
    assert!(
        out.starts_with(&format!("format version {version},")),
        "{out}"
    );
    for c in 0..m.experts() {
        assert!(out.contains(&format!("\ndecoder {c}: ")), "{out}");
    }
}
