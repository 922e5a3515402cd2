//! Pinned bits: CRC-32s of what the writer writes and of what inference
//! returns, for the committed models (`firmware-example/models`, the
//! two-level `hierarchical*.bin` among them since they were trained), int8
//! files the writer makes from the f16 ones, the tiny test model and
//! seeded random specs of every activation. The figures were taken before
//! the forward passes moved out of `model.rs` and the emitting paths became
//! one (and equal what that code gave); a refactor of the engine or the
//! writer must leave every one of them as it is. Results are the same bits
//! on every target, so the figures hold on any host.

use engine::writer::TwoLevelSpec;
use engine::{crc32, Activation, ElementType, Model, ModelRepr, Workspace};
use std::fmt::Write;

/// CRC-32 of `f32` values' little-endian bits.
fn crc_f32(values: &[f32]) -> u32 {
    let bytes: Vec<u8> = values
        .iter()
        .flat_map(|v| v.to_bits().to_le_bytes())
        .collect();
    crc32(&bytes)
}

/// Classifies seeded images (and each expert's generated digit), as bytes
/// and as sanitized `f32` (NaN, ∞ and values outside `[0, 1]` among them),
/// generates and decodes with every expert (odd latents among them), then
/// re-emits and re-writes the file; appends the figures to `out`, and does
/// the same for the int8 file the writer makes from an f16 one.
fn digest(name: &str, bytes: &[u8], out: &mut String) {
    let model = Model::from_bytes(bytes).unwrap();
    let mut ws: Box<Workspace<2048>> = Box::new(Workspace::new());
    let p = model.pixels();
    let mut rng = engine::rng::SplitMix64::new(99);
    let mut acc = Vec::new();
    let mut images = Vec::new();
    for i in 0..20 {
        let img: Vec<u8> = (0..p)
            .map(|_| {
                let r = rng.next_unit();
                if i % 2 == 0 && r < 0.6 {
                    0
                } else {
                    (r * 256.0) as u8
                }
            })
            .collect();
        images.push(img);
    }
    for k in 0..model.experts() {
        let mut px = vec![0u8; p];
        model.generate_pixels(&mut *ws, k, 5, &mut px).unwrap();
        images.push(px);
    }
    for img in &images {
        let c = model.classify(&mut *ws, img).unwrap();
        acc.extend_from_slice(&(c.cluster as u32).to_le_bytes());
        acc.extend_from_slice(&crc_f32(&c.probabilities).to_le_bytes());
        acc.push(c.label.unwrap_or(255));
        if let Some(n) = c.novelty {
            for v in [n.distance, n.doubt, n.score] {
                acc.extend_from_slice(&v.to_bits().to_le_bytes());
            }
            acc.push(u8::from(n.known));
        }
        let f: Vec<f32> = img
            .iter()
            .enumerate()
            .map(|(i, &b)| match i % 97 {
                3 => f32::NAN,
                5 => f32::INFINITY,
                7 => -2.0,
                _ => b as f32 / 255.0 * 1.1 - 0.05,
            })
            .collect();
        let c = model.classify_f32(&mut *ws, &f).unwrap();
        acc.extend_from_slice(&(c.cluster as u32).to_le_bytes());
        acc.extend_from_slice(&crc_f32(&c.probabilities).to_le_bytes());
    }
    let l = model.latent();
    for k in 0..model.experts() {
        for seed in [0u64, 1, 42, u64::MAX] {
            let v = model.generate(&mut *ws, k, seed).unwrap().to_vec();
            acc.extend_from_slice(&crc_f32(&v).to_le_bytes());
            let mut px = vec![0u8; p];
            model.generate_pixels(&mut *ws, k, seed, &mut px).unwrap();
            acc.extend_from_slice(&crc32(&px).to_le_bytes());
        }
        for t in 0..4 {
            let z: Vec<f32> = (0..l)
                .map(|i| match (i + t) % 11 {
                    0 => f32::NAN,
                    1 => f32::NEG_INFINITY,
                    2 => 30.0,
                    _ => (rng.next_unit() - 0.5) * 4.0,
                })
                .collect();
            let v = model.decode(&mut *ws, k, &z).unwrap().to_vec();
            acc.extend_from_slice(&crc_f32(&v).to_le_bytes());
            let mut px = vec![0u8; p];
            model.decode_pixels(&mut *ws, k, &z, &mut px).unwrap();
            acc.extend_from_slice(&crc32(&px).to_le_bytes());
        }
    }
    writeln!(
        out,
        "{name}: infer {:08x} workspace {} ram {}",
        crc32(&acc),
        model.workspace_len(),
        model.ram_bytes()
    )
    .unwrap();
    // Flat files read as two-level ones of one style each write the same
    // bytes as `ModelSpec` (engine/tests/two_level.rs); version-3 files
    // (the hierarchical models) need the two-level writer.
    let spec = TwoLevelSpec::from_bytes(bytes).unwrap();
    let f16 = spec.to_bytes().unwrap();
    // Calibrating is the slow part: only f16 files are quantized.
    let int8 = (model.element_type() == ElementType::F16).then(|| {
        spec.to_int8_bytes(&spec.calibrate(&images.concat(), 7))
            .unwrap()
    });
    let repr = ModelRepr::parse(bytes).unwrap();
    let mut again = vec![0u8; repr.buffer_len()];
    assert_eq!(repr.emit(&mut again).unwrap(), bytes.len());
    assert_eq!(again, bytes, "{name}: ModelRepr::emit");
    writeln!(
        out,
        "{name}: file {:08x} to_bytes {:08x} ({}) to_int8 {} {:?}",
        crc32(bytes),
        crc32(&f16),
        f16.len(),
        int8.as_ref()
            .map_or("-".into(), |q| format!("{:08x} ({})", crc32(q), q.len())),
        model.element_type()
    )
    .unwrap();
    if let Some(int8) = int8 {
        digest(&format!("{name}/int8"), &int8, out);
    }
}

#[test]
fn writer_and_inference_bits_are_pinned() {
    use Activation::*;
    let mut out = String::new();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware-example/models");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        let bytes = std::fs::read(&path).unwrap();
        digest(
            path.file_name().unwrap().to_str().unwrap(),
            &bytes,
            &mut out,
        );
    }
    digest("tiny", &engine::testing::tiny_model_bytes(), &mut out);
    type Shape = &'static [(usize, usize, Activation)];
    let shapes: [(Shape, Shape); 3] = [
        (
            &[(784, 64, Relu), (64, 10, Identity)],
            &[(8, 64, Relu), (64, 784, Sigmoid)],
        ),
        (
            &[(784, 32, Tanh), (32, 16, Sigmoid), (16, 5, Identity)],
            &[(4, 32, Tanh), (32, 48, Identity), (48, 784, Relu)],
        ),
        (&[(784, 5, Identity)], &[(3, 784, Tanh)]),
    ];
    for (i, (gate, decoder)) in shapes.iter().enumerate() {
        for seed in [1u64, 2] {
            let experts = gate.last().unwrap().1;
            let spec = engine::testing::random_spec(gate, decoder, experts, seed);
            digest(
                &format!("random{i}/{seed}"),
                &spec.to_bytes().unwrap(),
                &mut out,
            );
        }
    }
    let expected = EXPECTED.trim_start();
    for (line, want) in out.lines().zip(expected.lines()) {
        assert_eq!(line, want, "every figure now:\n{out}");
    }
    assert_eq!(out.lines().count(), expected.lines().count());
}

/// The figures, one line per file: the inference digest, the workspace and
/// RAM the model needs, then the file's CRC and those of the f16 and (for
/// f16 files) int8 files the writer makes from it, with their lengths.
const EXPECTED: &str = "
default-int8.bin: infer 32b1c38e workspace 256 ram 2560
default-int8.bin: file 7732aa25 to_bytes 0baaa01a (952736) to_int8 - Int8
default.bin: infer 9d1a5122 workspace 784 ram 6784
default.bin: file 56d2305c to_bytes 56d2305c (952736) to_int8 7a7d8c57 (575064) F16
default.bin/int8: infer 630e47fb workspace 256 ram 2560
default.bin/int8: file 7a7d8c57 to_bytes 1cb80fac (952736) to_int8 - Int8
digits8x8-int8.bin: infer 0294f5b2 workspace 256 ram 2560
digits8x8-int8.bin: file 4913f698 to_bytes db8825c4 (88304) to_int8 - Int8
digits8x8.bin: infer 153493ec workspace 256 ram 2560
digits8x8.bin: file 3c34931c to_bytes 3c34931c (88304) to_int8 bd6a77c8 (63552) F16
digits8x8.bin/int8: infer dcf637b8 workspace 256 ram 2560
digits8x8.bin/int8: file bd6a77c8 to_bytes 5791cc39 (88304) to_int8 - Int8
hierarchical-int8.bin: infer 30723ead workspace 256 ram 2560
hierarchical-int8.bin: file 8b77be3c to_bytes fa0e8210 (1729904) to_int8 - Int8
hierarchical.bin: infer 5ab86578 workspace 784 ram 6784
hierarchical.bin: file 8dea1a8b to_bytes 8dea1a8b (1729904) to_int8 f47159fc (1061672) F16
hierarchical.bin/int8: infer 33b3e198 workspace 256 ram 2560
hierarchical.bin/int8: file f47159fc to_bytes 8a424ea9 (1729904) to_int8 - Int8
small-int8.bin: infer 24c455b6 workspace 16 ram 640
small-int8.bin: file fb8be2a2 to_bytes 4b863079 (133424) to_int8 - Int8
small.bin: infer 4f25b2df workspace 784 ram 6784
small.bin: file 232ec938 to_bytes 232ec938 (133424) to_int8 83108ece (104560) F16
small.bin/int8: infer 72f5c9ea workspace 16 ram 640
small.bin/int8: file 83108ece to_bytes 1edafbc1 (133424) to_int8 - Int8
tiny8x8-int8.bin: infer f39c3b8f workspace 32 ram 768
tiny8x8-int8.bin: file 69fa36df to_bytes 6d7df1a1 (54560) to_int8 - Int8
tiny8x8.bin: infer 30fdf07c workspace 64 ram 1024
tiny8x8.bin: file 3552cbb1 to_bytes 3552cbb1 (54560) to_int8 f0b76d3c (44128) F16
tiny8x8.bin/int8: infer 499ce7b2 workspace 32 ram 768
tiny8x8.bin/int8: file f0b76d3c to_bytes 0eba39ee (54560) to_int8 - Int8
tiny: infer 810b5d73 workspace 784 ram 6784
tiny: file 01a45364 to_bytes 01a45364 (18976) to_int8 a7425ba7 (37072) F16
tiny/int8: infer 2bfbd1a3 workspace 3 ram 536
tiny/int8: file a7425ba7 to_bytes 4ab5fc26 (18976) to_int8 - Int8
random0/1: infer 1270934d workspace 784 ram 6784
random0/1: file ac73471b to_bytes ac73471b (1132976) to_int8 a5cd92d3 (666416) F16
random0/1/int8: infer 43c52eba workspace 64 ram 1024
random0/1/int8: file a5cd92d3 to_bytes 40217bfc (1132976) to_int8 - Int8
random0/2: infer c66cb282 workspace 784 ram 6784
random0/2: file ec3c85ff to_bytes ec3c85ff (1132976) to_int8 a09c68c9 (666416) F16
random0/2/int8: infer 399b05ab workspace 64 ram 1024
random0/2/int8: file a09c68c9 to_bytes 7717ab73 (1132976) to_int8 - Int8
random1/1: infer eaef5aa2 workspace 784 ram 6784
random1/1: file fcf82b4c to_bytes fcf82b4c (453424) to_int8 2ed404f6 (279008) F16
random1/1/int8: infer 46c3bae5 workspace 32 ram 768
random1/1/int8: file 2ed404f6 to_bytes d49e0616 (453424) to_int8 - Int8
random1/2: infer b4a2f041 workspace 784 ram 6784
random1/2: file 91d371b9 to_bytes 91d371b9 (453424) to_int8 94d50efd (279008) F16
random1/2/int8: infer 1ba27a85 workspace 32 ram 768
random1/2/int8: file 94d50efd to_bytes 519e3f1c (453424) to_int8 - Int8
random2/1: infer 128f498d workspace 784 ram 6784
random2/1: file 2d1fd54f to_bytes 2d1fd54f (39408) to_int8 6292beb2 (65680) F16
random2/1/int8: infer c8909b15 workspace 5 ram 552
random2/1/int8: file 6292beb2 to_bytes c4caa126 (39408) to_int8 - Int8
random2/2: infer 28159bef workspace 784 ram 6784
random2/2: file b9df6fcd to_bytes b9df6fcd (39408) to_int8 b954999f (65680) F16
random2/2/int8: infer dbd7ad91 workspace 5 ram 552
random2/2/int8: file b954999f to_bytes 293c38c9 (39408) to_int8 - Int8
";
