//! Bad bytes and bad inputs: every one gives a specific typed error, or a
//! model that still runs safely; nothing panics or reads out of bounds. And
//! what a valid model computes, checked against plain re-implementations of
//! `FORMAT.md`'s semantics.
//!
//! The subjects are models of the default shapes (gate 784→256→10, ten
//! decoders 10→32→784), written by the engine's writer from seeded weights
//! as `trainer fit --export` writes them: once with f16 weights and once
//! with int8 weights calibrated on random images. Small hand-built models
//! (16 pixels, 2 experts) carry the malformed descriptors.

use std::sync::OnceLock;

use engine::format::{Int8Layer, Int8Weights, Requant, HEADER_LEN};
use engine::rng::SplitMix64;
use engine::writer::{DenseF32, ModelSpec};
use engine::{
    crc32, Activation, ElementType, Error, Header, ImageShape, Layer, LayerDesc, LayerWeights,
    Layout, Likelihood, Method, Model, ModelFile, ModelRepr, Network, TensorRef, Weights,
    Workspace, FORMAT_VERSION, MAGIC, TWO_LEVEL_VERSION,
};
use proptest::prelude::*;
use serde::Serialize;

// ---------------------------------------------------------------------------
// Subjects
// ---------------------------------------------------------------------------

/// Random 28×28 images, about two thirds of the pixels blank like a digit's.
fn images(count: usize, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed);
    (0..count * 784)
        .map(|_| {
            let r = rng.next_u64();
            if r.is_multiple_of(3) {
                (r >> 8) as u8
            } else {
                0
            }
        })
        .collect()
}

fn default_spec() -> ModelSpec {
    engine::testing::random_spec(
        &[
            (784, 256, Activation::Relu),
            (256, 10, Activation::Identity),
        ],
        &[(10, 32, Activation::Relu), (32, 784, Activation::Sigmoid)],
        10,
        6,
    )
}

fn int8_bytes(spec: &ModelSpec, seed: u64) -> Vec<u8> {
    spec.to_int8_bytes(&spec.calibrate(&images(64, seed), seed))
        .expect("the writer accepts the model")
}

/// The f16 model of the default shapes (≈ 0.9 MiB).
fn f16_model() -> &'static [u8] {
    static M: OnceLock<Vec<u8>> = OnceLock::new();
    M.get_or_init(|| {
        default_spec()
            .to_bytes()
            .expect("the writer accepts the model")
    })
}

/// The int8 model of the default shapes (≈ 0.25 MiB).
fn int8_model() -> &'static [u8] {
    static M: OnceLock<Vec<u8>> = OnceLock::new();
    M.get_or_init(|| int8_bytes(&default_spec(), 7))
}

/// An int8 model with every activation as a hidden layer (signed codes
/// from identity and tanh, tables for tanh and sigmoid) and an odd latent.
fn varied_int8_model() -> &'static [u8] {
    static M: OnceLock<Vec<u8>> = OnceLock::new();
    M.get_or_init(|| {
        let spec = engine::testing::random_spec(
            &[
                (784, 24, Activation::Tanh),
                (24, 16, Activation::Sigmoid),
                (16, 12, Activation::Identity),
                (12, 3, Activation::Relu),
            ],
            &[
                (3, 20, Activation::Identity),
                (20, 16, Activation::Tanh),
                (16, 784, Activation::Sigmoid),
            ],
            3,
            9,
        );
        int8_bytes(&spec, 8)
    })
}

/// Small models of the default layout for the property tests (≈ 50 KiB).
fn small_spec() -> ModelSpec {
    engine::testing::random_spec(
        &[(784, 8, Activation::Relu), (8, 3, Activation::Identity)],
        &[(2, 8, Activation::Relu), (8, 784, Activation::Sigmoid)],
        3,
        5,
    )
}

fn small_f16_model() -> &'static [u8] {
    static M: OnceLock<Vec<u8>> = OnceLock::new();
    M.get_or_init(|| small_spec().to_bytes().unwrap())
}

fn small_int8_model() -> &'static [u8] {
    static M: OnceLock<Vec<u8>> = OnceLock::new();
    M.get_or_init(|| int8_bytes(&small_spec(), 3))
}

/// Both default models, named for messages.
fn subjects() -> [(&'static str, &'static [u8]); 2] {
    [("f16", f16_model()), ("int8", int8_model())]
}

fn digit() -> Vec<u8> {
    (0..784u32).map(|i| ((i * 37) % 256) as u8).collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Where the data section starts in a valid file.
fn data_start(bytes: &[u8]) -> usize {
    bytes.len() - ModelRepr::parse(bytes).unwrap().data().len()
}

/// Where the description ends (the zero padding starts) in a valid file:
/// its header and descriptors serialized again.
fn description_end(bytes: &[u8]) -> usize {
    let repr = ModelRepr::parse(bytes).unwrap();
    let gate: Vec<LayerDesc> = engine::format::descriptors(repr.gate()).collect();
    let decoders: Vec<Vec<LayerDesc>> = repr
        .decoders()
        .map(|d| engine::format::descriptors(d).collect())
        .collect();
    let decoders: Vec<&[LayerDesc]> = decoders.iter().map(Vec::as_slice).collect();
    let len = postcard::to_allocvec(&(repr.header(), &gate, &decoders))
        .unwrap()
        .len();
    assert_eq!(data_start(bytes), (HEADER_LEN + len).div_ceil(16) * 16);
    HEADER_LEN + len
}

// ---------------------------------------------------------------------------
// Reference implementations (FORMAT.md, "Semantics")
// ---------------------------------------------------------------------------

/// FORMAT.md's f16 dot product: element `i` into partial sum `i % 8`, the
/// partial sums combined pairwise, no fused multiply-add.
fn dot8(w: &[f32], x: &[f32]) -> f32 {
    let mut s = [0.0f32; 8];
    for (i, (&w, &x)) in w.iter().zip(x).enumerate() {
        s[i % 8] += w * x;
    }
    ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
}

/// An f16 network run one value at a time from its exact f32 weights
/// (`DenseF32::from_layer`): what every target computes. The activation is
/// the format's definition (`kernels::activate`, libm's `expf`/`tanhf`).
fn reference_f16(net: Network<'_>, input: &[f32]) -> Vec<f32> {
    let mut x = input.to_vec();
    for layer in net.layers() {
        assert!(matches!(layer.weights, LayerWeights::F16 { .. }));
        let l = DenseF32::from_layer(&layer);
        x = (0..l.outputs)
            .map(|o| {
                let row = &l.weights[o * l.inputs..(o + 1) * l.inputs];
                engine::kernels::activate(l.activation, dot8(row, &x) + l.bias[o])
            })
            .collect();
    }
    x
}

fn le_i32(bytes: &[u8], i: usize) -> i32 {
    i32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap())
}

fn le_f32(bytes: &[u8], i: usize) -> f32 {
    f32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap())
}

fn int8_of<'a>(layer: &Layer<'a>) -> Int8Layer<'a> {
    match layer.weights {
        LayerWeights::Int8(q) => q,
        LayerWeights::F16 { .. } => panic!("an f16 layer in an int8 network"),
    }
}

/// FORMAT.md's "Integer layers", written out plainly from the text (no
/// engine kernel): `input` holds the first layer's codes as integers; the
/// network's outputs are their real values. The only borrowed piece is the
/// f32 `activation` of an output layer without requantization.
fn reference_int8(net: Network<'_>, input: &[i32]) -> Vec<f32> {
    let layers: Vec<Layer<'_>> = net.layers().collect();
    assert_eq!(layers.len(), net.len());
    let mut x = input.to_vec();
    for (index, layer) in layers.iter().enumerate() {
        let last = index + 1 == layers.len();
        let q = int8_of(layer);
        let (n, m) = (layer.inputs, layer.outputs);
        assert_eq!(x.len(), n);
        // acc[o] = bias[o] + Σ_i w[o][i] · x[i], checked to fit an i32.
        let acc: Vec<i32> = (0..m)
            .map(|o| {
                let mut sum = le_i32(q.bias, o) as i64;
                for (i, &xi) in x.iter().enumerate() {
                    let at = match q.layout {
                        Layout::RowMajor => o * n + i,
                        Layout::ColumnMajor => i * m + o,
                    };
                    sum += q.weights[at] as i8 as i64 * xi as i64;
                }
                i32::try_from(sum).expect("the accumulator bound holds")
            })
            .collect();
        match q.requant {
            Some(r) => {
                let codes: Vec<i32> = acc
                    .iter()
                    .enumerate()
                    .map(|(o, &a)| {
                        let mult = le_i32(r.multipliers, o) as i128;
                        let v = (a as i128 * mult + (1i128 << (r.shift - 1))) >> r.shift;
                        let entry = |v: i128| r.table.unwrap()[(v.clamp(-256, 255) + 256) as usize];
                        match layer.activation {
                            Activation::Relu => v.clamp(0, 255) as i32,
                            Activation::Identity => v.clamp(-127, 127) as i32,
                            Activation::Sigmoid => entry(v) as i32,
                            Activation::Tanh => entry(v) as i8 as i32,
                        }
                    })
                    .collect();
                if last {
                    return codes.iter().map(|&c| c as f32 * r.output_scale).collect();
                }
                x = codes;
            }
            None => {
                assert!(last, "only a last layer may leave requantization out");
                return acc
                    .iter()
                    .enumerate()
                    .map(|(o, &a)| {
                        let v = a as f32 * le_f32(q.scales, o) * q.input_scale;
                        engine::kernels::activate(layer.activation, v)
                    })
                    .collect();
            }
        }
    }
    unreachable!("a validated network has layers")
}

/// The latent code of `z`: `clamp(floor(z / scale + 0.5), -127, 127)`,
/// non-finite `z` as 0.
fn latent_code(z: f32, scale: f32) -> i32 {
    if !z.is_finite() {
        return 0;
    }
    (z / scale + 0.5).floor().clamp(-127.0, 127.0) as i32
}

/// `to_pixels` from its definition: NaN as 0, clamped, rounded.
fn pixel(v: f32) -> u8 {
    let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
    (v * 255.0 + 0.5) as u8
}

/// The reference gate logits of a model for an image of bytes.
fn reference_logits(model: &Model<'_>, image: &[u8]) -> Vec<f32> {
    match model.element_type() {
        ElementType::F16 => {
            let x: Vec<f32> = image.iter().map(|&p| p as f32 / 255.0).collect();
            reference_f16(model.gate(), &x)
        }
        ElementType::Int8 => {
            let codes: Vec<i32> = image.iter().map(|&p| p as i32).collect();
            reference_int8(model.gate(), &codes)
        }
    }
}

/// The reference output of expert `k`'s decoder for latent `z`.
fn reference_decode(model: &Model<'_>, k: usize, z: &[f32]) -> Vec<f32> {
    let net = model.decoder(k).unwrap();
    match model.element_type() {
        ElementType::F16 => {
            let z: Vec<f32> = z
                .iter()
                .map(|&v| if v.is_finite() { v } else { 0.0 })
                .collect();
            reference_f16(net, &z)
        }
        ElementType::Int8 => {
            let scale = int8_of(&net.layers().next().unwrap()).input_scale;
            let codes: Vec<i32> = z.iter().map(|&v| latent_code(v, scale)).collect();
            reference_int8(net, &codes)
        }
    }
}

fn normal(seed: u64, n: usize) -> Vec<f32> {
    let mut z = vec![0.0f32; n];
    SplitMix64::new(seed).fill_normal(&mut z);
    z
}

/// Equal bits, or both NaN (a corrupted f16 weight may be a NaN of any
/// payload).
fn same(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || x.is_nan() && y.is_nan())
}

/// Checks classify, generate, generate_pixels and decode of one model
/// against the references, for `image` and expert `k` with `seed`.
fn check_reference<const N: usize>(
    model: &Model<'_>,
    ws: &mut Workspace<N>,
    image: &[u8],
    k: usize,
    seed: u64,
) {
    let what = model.element_type().name();
    let c = model.classify(ws, image).unwrap();
    let mut probabilities = reference_logits(model, image);
    engine::kernels::softmax(&mut probabilities);
    assert!(
        same(&c.probabilities, &probabilities),
        "{what} classify: {:?} != {probabilities:?}",
        c.probabilities
    );
    let z = normal(seed, model.latent());
    let reference = reference_decode(model, k, &z);
    let generated = model.generate(ws, k, seed).unwrap().to_vec();
    assert!(
        same(&generated, &reference),
        "{what} expert {k} seed {seed}"
    );
    let mut px = vec![0u8; model.pixels()];
    model.generate_pixels(ws, k, seed, &mut px).unwrap();
    let expected: Vec<u8> = reference.iter().map(|&v| pixel(v)).collect();
    assert_eq!(px, expected, "{what} pixels of expert {k} seed {seed}");
    let decoded = model.decode(ws, k, &z).unwrap().to_vec();
    assert!(same(&decoded, &reference), "{what} decode expert {k}");
    model.decode_pixels(ws, k, &z, &mut px).unwrap();
    assert_eq!(px, expected, "{what} decode_pixels of expert {k}");
}

// ---------------------------------------------------------------------------
// Frame helpers
// ---------------------------------------------------------------------------

/// Runs everything a parsed model offers and checks the results are sane.
fn exercise(model: &Model<'_>) {
    let mut ws = Workspace::<1024>::new();
    if model.workspace_len() > 1024 {
        let err = Error::WorkspaceTooSmall {
            needed: model.workspace_len(),
            have: 1024,
        };
        assert_eq!(model.classify(&mut ws, &vec![0; model.pixels()]), Err(err));
        return;
    }
    let c = model
        .classify(&mut ws, &vec![100; model.pixels()])
        .expect("a parsed model classifies");
    assert!(c.cluster < model.experts());
    let sum: f32 = c.probabilities.iter().sum();
    assert!((sum - 1.0).abs() < 1e-4, "probabilities sum to {sum}");
    for k in [0, model.experts() - 1] {
        let mut px = vec![0u8; model.pixels()];
        model
            .generate_pixels(&mut ws, k, 3, &mut px)
            .expect("a parsed model generates pixels");
        if model.pixels() > 1024 {
            continue;
        }
        let img = model
            .generate(&mut ws, k, 3)
            .expect("a parsed model generates");
        assert_eq!(img.len(), model.pixels());
        let expected: Vec<u8> = img.iter().map(|&v| pixel(v)).collect();
        assert_eq!(px, expected);
        // Finite weights give intensities in [0, 1]; a corrupted f16 weight
        // (or int8 scale of an unrequantized layer) may be NaN or infinite,
        // and then so may the output (see README). Requantized outputs are
        // codes of a validated scale: always finite.
        let last = model.decoder(k).unwrap().layers().last().unwrap();
        match last.weights {
            LayerWeights::Int8(Int8Layer {
                requant: Some(r), ..
            }) => {
                let bound = 255.0 * r.output_scale;
                assert!(img.iter().all(|v| v.abs() <= bound), "codes beyond 255");
            }
            _ => assert!(img.iter().all(|v| v.is_nan() || (-1e30..=1e30).contains(v))),
        }
    }
}

/// Recomputes body length and CRC so that the body decoder sees the bytes.
fn refresh_frame(bytes: &mut [u8]) {
    let body_len = (bytes.len() - HEADER_LEN) as u32;
    bytes[12..16].copy_from_slice(&body_len.to_le_bytes());
    let crc = crc32(&bytes[HEADER_LEN..]);
    bytes[16..20].copy_from_slice(&crc.to_le_bytes());
}

/// Parses the body behind a frame that was not checksummed.
fn parse_skip_crc(bytes: &[u8]) -> Result<Model<'_>, Error> {
    let file = ModelFile::new_checked_skip_crc(bytes)?;
    Ok(Model::from_repr(ModelRepr::parse_file(&file)?))
}

// ---------------------------------------------------------------------------
// The default models: frame, truncation, corruption
// ---------------------------------------------------------------------------

#[test]
fn the_subjects_run() {
    let f16 = Model::from_bytes(f16_model()).unwrap();
    assert_eq!(f16.element_type(), ElementType::F16);
    assert_eq!(f16.workspace_len(), 784);
    exercise(&f16);
    let int8 = Model::from_bytes(int8_model()).unwrap();
    assert_eq!(int8.element_type(), ElementType::Int8);
    // The gate's column-major first layer sums 256 outputs in i32.
    assert_eq!(int8.workspace_len(), 256);
    exercise(&int8);
    let varied = Model::from_bytes(varied_int8_model()).unwrap();
    exercise(&varied);
    assert_eq!(f16.parameters(), int8.parameters());
    let (a, b) = (f16_model().len(), int8_model().len());
    assert!(b < a * 2 / 3, "{b} vs {a} bytes");
}

#[test]
fn every_truncation_is_a_typed_error() {
    for (name, bytes) in subjects() {
        let desc_end = description_end(bytes);
        let start = data_start(bytes);
        let stride = 997;
        let mut checked = 0;
        let lengths = (0..bytes.len())
            .step_by(stride)
            .chain(HEADER_LEN..start + 20)
            .chain(bytes.len() - 64..bytes.len());
        for len in lengths {
            let cut = &bytes[..len];
            let err = Model::from_bytes(cut).unwrap_err();
            let needed = if len < HEADER_LEN {
                HEADER_LEN
            } else {
                bytes.len()
            };
            let expected = Error::Truncated {
                needed,
                available: len,
            };
            assert_eq!(err, expected, "{name}: length {len}");
            // The same prefix with a consistent frame reaches the body
            // decoder: the description incomplete is `Malformed`, the
            // padding incomplete `Truncated`, the data incomplete a tensor
            // outside it. (Checking the CRC costs a pass over the file, so
            // only some lengths go through `from_bytes`.)
            if len >= HEADER_LEN {
                let mut framed = cut.to_vec();
                let body_len = (len - HEADER_LEN) as u32;
                framed[12..16].copy_from_slice(&body_len.to_le_bytes());
                let err = parse_skip_crc(&framed).unwrap_err();
                let expected = if len < desc_end {
                    Error::Malformed
                } else if len < start {
                    Error::Truncated {
                        needed: start,
                        available: len,
                    }
                } else {
                    Error::InvalidModel("tensor outside the data section")
                };
                assert_eq!(err, expected, "{name}: framed length {len}");
                if checked % 16 == 0 {
                    refresh_frame(&mut framed);
                    assert_eq!(Model::from_bytes(&framed).unwrap_err(), err);
                }
                checked += 1;
            }
        }
        assert!(
            checked > bytes.len() / stride,
            "{name}: {checked} framed truncations"
        );
    }
}

#[test]
fn single_bit_flips_are_caught_by_the_frame() {
    for (name, bytes) in subjects() {
        let mut rng = SplitMix64::new(1);
        // Each try checksums the whole file; 300 keep this test fast.
        for _ in 0..300 {
            let bit = (rng.next_u64() % (8 * bytes.len() as u64)) as usize;
            let mut bad = bytes.to_vec();
            bad[bit / 8] ^= 1 << (bit % 8);
            let err = Model::from_bytes(&bad).unwrap_err();
            let ok = match bit / 8 {
                0..=7 => err == Error::BadMagic,
                8..=9 => {
                    let found = u16::from_le_bytes([bad[8], bad[9]]);
                    // Version 3 passes the frame; its description is not
                    // a version-2 one.
                    found == TWO_LEVEL_VERSION
                        || err
                            == Error::UnsupportedVersion {
                                found,
                                supported: TWO_LEVEL_VERSION,
                            }
                }
                10..=11 => err == Error::ReservedBits,
                12..=15 => matches!(err, Error::Truncated { .. } | Error::TrailingBytes { .. }),
                16..=19 => {
                    let stored = u32::from_le_bytes(bad[16..20].try_into().unwrap());
                    err == Error::ChecksumMismatch {
                        stored,
                        computed: crc32(&bytes[HEADER_LEN..]),
                    }
                }
                // CRC-32 detects every single-bit error in the body.
                _ => {
                    err == Error::ChecksumMismatch {
                        stored: u32::from_le_bytes(bytes[16..20].try_into().unwrap()),
                        computed: crc32(&bad[HEADER_LEN..]),
                    }
                }
            };
            assert!(ok, "{name}: bit {bit}: {err:?}");
        }
    }
}

/// Runs the bit-flip experiment on one model: `tries` corruptions, half of
/// them in the description (header and descriptors), half anywhere in the
/// body; every `reference_every`-th parsed model is also checked against
/// the reference implementation.
fn flips_behind_a_valid_checksum(name: &str, bytes: &[u8], seed: u64, tries: usize) {
    let description = HEADER_LEN..description_end(bytes);
    let mut rng = SplitMix64::new(seed);
    let (mut parsed, mut rejected) = (0, 0);
    let image = digit();
    let mut big = Box::new(Workspace::<1024>::new());
    let mut bad = bytes.to_vec();
    for i in 0..tries {
        bad.copy_from_slice(bytes);
        let flips = 1 + rng.next_u64() % 3;
        for _ in 0..flips {
            let at = if i % 2 == 0 {
                description.start + (rng.next_u64() % description.len() as u64) as usize
            } else {
                HEADER_LEN + (rng.next_u64() % (bytes.len() - HEADER_LEN) as u64) as usize
            };
            bad[at] ^= 1 << (rng.next_u64() % 8);
        }
        // The decoder behind the checksum; one try in 16 also refreshes the
        // CRC and checks that `from_bytes` agrees (the rest skip that pass).
        let checked = parse_skip_crc(&bad);
        if i % 16 == 0 {
            let mut framed = bad.clone();
            refresh_frame(&mut framed);
            let err = Model::from_bytes(&framed).err();
            assert_eq!(err, checked.as_ref().err().copied(), "{name}: try {i}");
        }
        match checked {
            Ok(model) => {
                parsed += 1;
                exercise(&model);
                let fits = model.workspace_len() <= 1024 && model.pixels() == 784;
                if fits && parsed % 8 == 0 {
                    let k = (i / 8) % model.experts();
                    check_reference(&model, &mut big, &image, k, i as u64);
                }
            }
            Err(e) => {
                rejected += 1;
                assert!(
                    matches!(
                        e,
                        Error::Malformed
                            | Error::InvalidModel(_)
                            | Error::Capacity { .. }
                            | Error::Truncated { .. }
                    ),
                    "{name}: {e:?}"
                );
            }
        }
    }
    // Both outcomes must actually occur, or the test proves little.
    let min = tries / 8;
    assert!(
        parsed > min && rejected > min,
        "{name}: {parsed} parsed, {rejected} rejected"
    );
}

#[test]
fn bit_flips_behind_a_valid_checksum_are_errors_or_safe_f16_models() {
    flips_behind_a_valid_checksum("f16", f16_model(), 2, 4000);
}

#[test]
fn bit_flips_behind_a_valid_checksum_are_errors_or_safe_int8_models() {
    flips_behind_a_valid_checksum("int8", int8_model(), 3, 4000);
    flips_behind_a_valid_checksum("varied int8", varied_int8_model(), 4, 2000);
}

#[test]
fn frame_fields_give_their_errors() {
    for (_, bytes) in subjects() {
        let mut bad = bytes.to_vec();
        bad[0] = b'm';
        assert_eq!(Model::from_bytes(&bad).unwrap_err(), Error::BadMagic);
        for version in [1, TWO_LEVEL_VERSION + 1, u16::MAX] {
            let mut bad = bytes.to_vec();
            bad[8..10].copy_from_slice(&version.to_le_bytes());
            assert_eq!(
                Model::from_bytes(&bad).unwrap_err(),
                Error::UnsupportedVersion {
                    found: version,
                    supported: TWO_LEVEL_VERSION
                }
            );
        }
        // A version-2 description under a version-3 frame is an error of
        // the description (the checksum covers the body only).
        let mut bad = bytes.to_vec();
        bad[8..10].copy_from_slice(&TWO_LEVEL_VERSION.to_le_bytes());
        assert!(matches!(
            Model::from_bytes(&bad).unwrap_err(),
            Error::Malformed | Error::InvalidModel(_) | Error::Capacity { .. }
        ));
        let mut bad = bytes.to_vec();
        bad[10] = 1;
        assert_eq!(Model::from_bytes(&bad).unwrap_err(), Error::ReservedBits);
        let mut bad = bytes.to_vec();
        bad[11] = 0x80;
        assert_eq!(Model::from_bytes(&bad).unwrap_err(), Error::ReservedBits);
        let mut bad = bytes.to_vec();
        bad.push(0);
        assert_eq!(
            Model::from_bytes(&bad).unwrap_err(),
            Error::TrailingBytes { extra: 1 }
        );
        let mut bad = bytes.to_vec();
        bad[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            Model::from_bytes(&bad).unwrap_err(),
            Error::Truncated {
                needed: HEADER_LEN + u32::MAX as usize,
                available: bytes.len()
            }
        );
        let mut bad = bytes.to_vec();
        bad[16] ^= 1;
        assert!(matches!(
            Model::from_bytes(&bad).unwrap_err(),
            Error::ChecksumMismatch { .. }
        ));
        // Skipping the CRC skips only the CRC.
        assert!(parse_skip_crc(&bad).is_ok());
    }
    assert_eq!(
        Model::from_bytes(b"").unwrap_err(),
        Error::Truncated {
            needed: 20,
            available: 0
        }
    );
    assert_eq!(
        Model::from_bytes(&MAGIC).unwrap_err(),
        Error::Truncated {
            needed: 20,
            available: 8
        }
    );
    assert_eq!(
        Model::from_bytes(b"MoVAE\r\n").unwrap_err(),
        Error::Truncated {
            needed: 20,
            available: 7
        }
    );
    assert_eq!(
        Model::from_bytes(b"not a model file at all").unwrap_err(),
        Error::BadMagic
    );
}

// ---------------------------------------------------------------------------
// Hand-built descriptors
// ---------------------------------------------------------------------------

/// A mirror of `Header` with unbounded vectors, for headers the engine must
/// refuse to decode (postcard encodes `Vec` and `heapless::Vec` alike).
#[derive(Serialize, Clone, Debug)]
struct RawHeader {
    method: Method,
    image: ImageShape,
    experts: u16,
    latent: u16,
    likelihood: Likelihood,
    mixture_weights: Vec<f32>,
    label_map: Option<Vec<u8>>,
    provenance: String,
}

/// A file in parts: header, descriptors and the data section.
#[derive(Clone, Debug)]
struct Parts {
    header: RawHeader,
    gate: Vec<LayerDesc>,
    decoders: Vec<Vec<LayerDesc>>,
    data: Vec<u8>,
}

/// Tensors at multiples of 16, as the writer places them.
#[derive(Default)]
struct Data(Vec<u8>);

impl Data {
    fn push(&mut self, bytes: &[u8]) -> TensorRef {
        while !self.0.len().is_multiple_of(16) {
            self.0.push(0);
        }
        let offset = self.0.len() as u32;
        self.0.extend_from_slice(bytes);
        TensorRef {
            offset,
            len: bytes.len() as u32,
        }
    }

    fn i32s(&mut self, values: impl IntoIterator<Item = i32>) -> TensorRef {
        let bytes: Vec<u8> = values.into_iter().flat_map(i32::to_le_bytes).collect();
        self.push(&bytes)
    }

    fn f32s(&mut self, values: impl IntoIterator<Item = f32>) -> TensorRef {
        let bytes: Vec<u8> = values.into_iter().flat_map(f32::to_le_bytes).collect();
        self.push(&bytes)
    }
}

/// f16 ±0.1, ±0.5, 0 in turn (binary16 bit patterns).
const F16_PATTERN: [u16; 5] = [0x2e66, 0xae66, 0x3800, 0xb800, 0x0000];

fn f16_layer(data: &mut Data, inputs: u32, outputs: u32, activation: Activation) -> LayerDesc {
    let values = |n: u32| -> Vec<u8> {
        (0..n as usize)
            .flat_map(|i| F16_PATTERN[i % 5].to_le_bytes())
            .collect()
    };
    LayerDesc {
        inputs,
        outputs,
        activation,
        weights: Weights::F16 {
            weights: data.push(&values(inputs * outputs)),
            bias: data.push(&values(outputs)),
        },
    }
}

/// A table of 512 codes: `i / 2` (unsigned) or `(i − 256) / 2` (signed).
fn table(activation: Activation) -> Vec<u8> {
    (0..512i32)
        .map(|i| match activation {
            Activation::Tanh => ((i - 256) / 2) as i8 as u8,
            _ => (i / 2) as u8,
        })
        .collect()
}

fn int8_layer(
    data: &mut Data,
    (inputs, outputs, activation): (u32, u32, Activation),
    layout: Layout,
    input_scale: f32,
    requant: bool,
) -> LayerDesc {
    let (n, m) = (inputs as usize, outputs as usize);
    let codes: Vec<u8> = (0..n * m).map(|j| (j * 37 % 251) as u8).collect();
    let requant = requant.then(|| Requant {
        multipliers: data.i32s((0..m).map(|o| (1 << 20) + 4099 * o as i32)),
        shift: 30,
        output_scale: if activation.unsigned_codes() {
            1.0 / 255.0
        } else {
            1.0 / 127.0
        },
        table: activation
            .uses_table()
            .then(|| data.push(&table(activation))),
    });
    LayerDesc {
        inputs,
        outputs,
        activation,
        weights: Weights::Int8(Int8Weights {
            layout,
            weights: data.push(&codes),
            scales: data.f32s((0..m).map(|o| 0.01 + 0.001 * o as f32)),
            bias: data.i32s((0..m).map(|o| (o as i32 % 7 - 3) * 3000)),
            input_scale,
            requant,
        }),
    }
}

fn small_header() -> RawHeader {
    RawHeader {
        method: Method::KVae,
        image: ImageShape {
            width: 4,
            height: 4,
        },
        experts: 2,
        latent: 2,
        likelihood: Likelihood::Gaussian { std: 0.1 },
        mixture_weights: vec![0.5, 0.5],
        label_map: Some(vec![3, 8]),
        provenance: String::from("robustness"),
    }
}

/// A small valid f16 model: 16 pixels, 2 experts, gate 16→2, decoders 2→16.
fn f16_parts() -> Parts {
    let mut data = Data::default();
    let gate = vec![f16_layer(&mut data, 16, 2, Activation::Identity)];
    let decoders = (0..2)
        .map(|_| vec![f16_layer(&mut data, 2, 16, Activation::Sigmoid)])
        .collect();
    Parts {
        header: small_header(),
        gate,
        decoders,
        data: data.0,
    }
}

/// A small valid int8 model: gate 16→4 (ReLU, row-major) → 2 (identity,
/// column-major, f32 logits); decoders 2→3 (tanh, row-major) → 16
/// (sigmoid, column-major).
fn int8_parts() -> Parts {
    let mut data = Data::default();
    let gate = vec![
        int8_layer(
            &mut data,
            (16, 4, Activation::Relu),
            Layout::RowMajor,
            1.0 / 255.0,
            true,
        ),
        int8_layer(
            &mut data,
            (4, 2, Activation::Identity),
            Layout::ColumnMajor,
            1.0 / 255.0,
            false,
        ),
    ];
    let decoders = (0..2)
        .map(|_| {
            vec![
                int8_layer(
                    &mut data,
                    (2, 3, Activation::Tanh),
                    Layout::RowMajor,
                    0.05,
                    true,
                ),
                int8_layer(
                    &mut data,
                    (3, 16, Activation::Sigmoid),
                    Layout::ColumnMajor,
                    1.0 / 127.0,
                    true,
                ),
            ]
        })
        .collect();
    Parts {
        header: small_header(),
        gate,
        decoders,
        data: data.0,
    }
}

/// The description with the mirror header, as the engine serializes it.
#[derive(Serialize)]
struct RawDescription<'a> {
    header: &'a RawHeader,
    gate: &'a [LayerDesc],
    decoders: &'a [Vec<LayerDesc>],
}

impl Parts {
    fn description(&self) -> Vec<u8> {
        postcard::to_allocvec(&RawDescription {
            header: &self.header,
            gate: &self.gate,
            decoders: &self.decoders,
        })
        .unwrap()
    }

    /// The file through `engine::format::emit` when the engine's `Header`
    /// can hold the header, else through the mirror.
    fn file(&self) -> Vec<u8> {
        let raw = postcard::to_allocvec(&self.header).unwrap();
        let Ok(header) = postcard::from_bytes::<Header<'_>>(&raw) else {
            return self.mirror_file();
        };
        let decoders: Vec<&[LayerDesc]> = self.decoders.iter().map(Vec::as_slice).collect();
        let len =
            engine::format::emitted_len(&header, &self.gate, &decoders, self.data.len()).unwrap();
        let mut out = vec![0u8; len];
        let n = engine::format::emit(&header, &self.gate, &decoders, &self.data, &mut out).unwrap();
        assert_eq!(n, len);
        out
    }

    /// The file from the mirror: frame, description, zero padding to a
    /// multiple of 16, data.
    fn mirror_file(&self) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN];
        out[..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&self.description());
        out.resize(out.len().div_ceil(16) * 16, 0);
        out.extend_from_slice(&self.data);
        refresh_frame(&mut out);
        out
    }

    fn all_layers_mut(&mut self) -> impl Iterator<Item = &mut LayerDesc> {
        self.gate
            .iter_mut()
            .chain(self.decoders.iter_mut().flatten())
    }
}

/// `p` after `edit`, which may add tensors to its data section.
fn edited(mut p: Parts, edit: impl FnOnce(&mut Parts, &mut Data)) -> Parts {
    let mut data = Data(std::mem::take(&mut p.data));
    edit(&mut p, &mut data);
    p.data = data.0;
    p
}

/// An edit of a layer descriptor.
type Edit = dyn Fn(&mut LayerDesc);
/// An edit of an f16 layer's weight and bias tensors.
type TensorEdit = dyn Fn(&mut TensorRef, &mut TensorRef);

fn q(desc: &mut LayerDesc) -> &mut Int8Weights {
    match &mut desc.weights {
        Weights::Int8(q) => q,
        Weights::F16 { .. } => panic!("not an int8 layer"),
    }
}

fn requant(desc: &mut LayerDesc) -> &mut Requant {
    q(desc).requant.as_mut().expect("a requantized layer")
}

/// `parts` gives `expected`, through `from_bytes` and behind the CRC.
#[track_caller]
fn check(parts: &Parts, expected: Error) {
    let bytes = parts.file();
    assert_eq!(
        Model::from_bytes(&bytes).unwrap_err(),
        expected,
        "{parts:?}"
    );
    assert_eq!(parse_skip_crc(&bytes).unwrap_err(), expected);
}

/// `parts` parses, runs, and matches the reference.
#[track_caller]
fn accept(parts: &Parts) {
    let bytes = parts.file();
    let model = Model::from_bytes(&bytes).unwrap();
    exercise(&model);
    let mut ws = Workspace::<64>::new();
    let image: Vec<u8> = (0..16).map(|i| (i * 17) as u8).collect();
    for k in 0..2 {
        check_reference(&model, &mut ws, &image, k, 5 + k as u64);
    }
}

#[test]
fn the_mirror_encodes_like_the_engine() {
    for parts in [f16_parts(), int8_parts()] {
        let bytes = parts.file();
        assert_eq!(parts.mirror_file(), bytes);
        let model = Model::from_bytes(&bytes).unwrap();
        assert_eq!(model.experts(), 2);
        assert_eq!(
            description_end(&bytes),
            HEADER_LEN + parts.description().len()
        );
        accept(&parts);
    }
    assert_eq!(
        Model::from_bytes(&int8_parts().file())
            .unwrap()
            .element_type(),
        ElementType::Int8
    );
}

#[test]
fn absurd_sizes_and_capacities_are_typed_errors() {
    for base in [f16_parts(), int8_parts()] {
        // Zero widths.
        let mut p = base.clone();
        p.gate[0].inputs = 0;
        check(&p, Error::InvalidModel("layer with zero width"));
        let mut p = base.clone();
        p.decoders[1][0].outputs = 0;
        check(&p, Error::InvalidModel("layer with zero width"));
        let mut p = base.clone();
        p.header.image.width = 0;
        check(&p, Error::InvalidModel("image has no pixels"));
        let mut p = base.clone();
        p.header.latent = 0;
        check(&p, Error::InvalidModel("latent size is zero"));
        // Experts: none, more than MAX_EXPERTS stated in the header only.
        let mut p = base.clone();
        p.header.experts = 17;
        check(
            &p,
            Error::Capacity {
                what: "experts",
                needed: 17,
                max: 16,
            },
        );
        let mut p = base.clone();
        p.header.experts = 0;
        check(&p, Error::InvalidModel("model has no experts"));
        let mut p = base.clone();
        p.header.mixture_weights.pop();
        check(
            &p,
            Error::InvalidModel("mixture weight count differs from expert count"),
        );
        let mut p = base.clone();
        p.header.label_map = Some(vec![1, 2, 3]);
        check(
            &p,
            Error::InvalidModel("label map length differs from expert count"),
        );
        let mut p = base.clone();
        p.header.label_map = None;
        accept(&p);
        for count in [1, 3] {
            let mut p = base.clone();
            p.decoders.resize(count, base.decoders[0].clone());
            check(
                &p,
                Error::InvalidModel("decoder count differs from expert count"),
            );
        }
        // Lists longer than their fixed capacity cannot be decoded at all.
        let mut p = base.clone();
        p.header.experts = 17;
        p.header.mixture_weights = vec![0.0; 17];
        p.decoders = vec![base.decoders[0].clone(); 17];
        check(&p, Error::Malformed);
        let mut p = base.clone();
        p.header.label_map = Some(vec![0; 17]);
        check(&p, Error::Malformed);
        // More layers than MAX_LAYERS, in the gate or a decoder.
        let five_layers = Error::Capacity {
            what: "layers",
            needed: 5,
            max: 4,
        };
        let mut p = base.clone();
        p.gate = vec![base.gate[0]; 5];
        check(&p, five_layers);
        let mut p = base.clone();
        p.decoders[1] = vec![base.decoders[1][0]; 5];
        check(&p, five_layers);
        let mut p = base.clone();
        p.decoders[0].clear();
        check(&p, Error::InvalidModel("network has no layers"));
        let mut p = base.clone();
        p.gate.clear();
        check(&p, Error::InvalidModel("network has no layers"));
        // Tensors outside the data section (and one whose end overflows u32).
        for t in [
            TensorRef {
                offset: base.data.len() as u32,
                len: 1,
            },
            TensorRef {
                offset: 0,
                len: base.data.len() as u32 + 1,
            },
            TensorRef {
                offset: u32::MAX,
                len: 2,
            },
            TensorRef {
                offset: u32::MAX - 1,
                len: u32::MAX,
            },
        ] {
            let mut p = base.clone();
            match &mut p.decoders[1][0].weights {
                Weights::F16 { bias, .. } => *bias = t,
                Weights::Int8(q) => q.bias = t,
            }
            check(&p, Error::InvalidModel("tensor outside the data section"));
        }
        // The data section holding more than the tensors is fine.
        let mut p = base.clone();
        p.data.extend_from_slice(&[0xAB; 37]);
        accept(&p);
    }
}

#[test]
fn f16_descriptor_errors() {
    let base = f16_parts();
    let set = |p: &mut Parts, f: &TensorEdit| {
        let Weights::F16 { weights, bias } = &mut p.gate[0].weights else {
            unreachable!()
        };
        f(weights, bias);
    };
    // inputs × outputs × 2 overflows usize, with tiny tensors. (On 64-bit
    // targets the element count fits and the byte count overflows; on
    // 32-bit ones the element count does.)
    let mut p = base.clone();
    p.gate[0].inputs = u32::MAX;
    p.gate[0].outputs = u32::MAX;
    let expected = if cfg!(target_pointer_width = "64") {
        "weight tensor length does not match its shape"
    } else {
        "layer size overflows"
    };
    check(&p, Error::InvalidModel(expected));
    // Large but representable shape, tensors too short.
    let mut p = base.clone();
    p.gate[0].inputs = 1 << 31;
    check(
        &p,
        Error::InvalidModel("weight tensor length does not match its shape"),
    );
    let bias = "bias tensor length does not match its shape";
    let weights = "weight tensor length does not match its shape";
    let cases: [(&TensorEdit, &str); 3] = [
        (&|_, b| b.len -= 2, bias),
        (&|_, b| b.len += 2, bias),
        (&|w, _| w.len -= 1, weights),
    ];
    for (edit, what) in cases {
        let mut p = base.clone();
        set(&mut p, edit);
        check(&p, Error::InvalidModel(what));
    }
    // f16 tensors need no alignment: an odd offset is accepted.
    let mut p = base.clone();
    p.data.push(0);
    set(&mut p, &|w, _| w.offset += 1);
    let bytes = p.file();
    Model::from_bytes(&bytes).unwrap();
    // Widths that do not chain; a gate that does not end in K logits.
    let p = edited(f16_parts(), |p, data| {
        p.gate = vec![
            f16_layer(data, 16, 5, Activation::Relu),
            f16_layer(data, 4, 2, Activation::Identity),
        ];
    });
    check(&p, Error::InvalidModel("layer widths do not chain"));
    let mut p = f16_parts();
    let mut data = Data(p.data.clone());
    p.gate = vec![f16_layer(&mut data, 16, 3, Activation::Identity)];
    p.decoders[1] = vec![
        f16_layer(&mut data, 2, 7, Activation::Tanh),
        f16_layer(&mut data, 7, 16, Activation::Sigmoid),
    ];
    p.data = data.0.clone();
    check(&p, Error::InvalidModel("network output width is wrong"));
    p.gate = vec![f16_layer(&mut data, 16, 2, Activation::Identity)];
    p.data = data.0;
    accept(&p);
    // An int8 layer among f16 ones, in the gate or in a decoder.
    let p = edited(f16_parts(), |p, data| {
        p.decoders[1] = vec![int8_layer(
            data,
            (2, 16, Activation::Relu),
            Layout::RowMajor,
            0.1,
            false,
        )];
    });
    check(&p, Error::InvalidModel("layers of different element types"));
    let p = edited(f16_parts(), |p, data| {
        p.gate = vec![
            f16_layer(data, 16, 4, Activation::Relu),
            int8_layer(
                data,
                (4, 2, Activation::Identity),
                Layout::RowMajor,
                0.1,
                false,
            ),
        ];
    });
    check(&p, Error::InvalidModel("layers of different element types"));
}

#[test]
fn int8_descriptor_errors() {
    let base = int8_parts();
    // More inputs than an int8 layer may have (checked before any tensor).
    for inputs in [65_536, u32::MAX] {
        let mut p = base.clone();
        p.gate[0].inputs = inputs;
        check(
            &p,
            Error::Capacity {
                what: "int8 layer inputs",
                needed: inputs as usize,
                max: 65_535,
            },
        );
    }
    let mut p = base.clone();
    p.gate[0].inputs = 65_535;
    check(
        &p,
        Error::InvalidModel("weight tensor length does not match its shape"),
    );
    // Tensor lengths.
    let cases: [(&Edit, &str); 4] = [
        (
            &|d| q(d).weights.len -= 1,
            "weight tensor length does not match its shape",
        ),
        (
            &|d| q(d).scales.len += 4,
            "scale tensor length does not match its shape",
        ),
        (
            &|d| q(d).bias.len -= 4,
            "bias tensor length does not match its shape",
        ),
        (
            &|d| requant(d).multipliers.len -= 4,
            "multiplier tensor length does not match its shape",
        ),
    ];
    for (edit, what) in cases {
        for net in 0..2 {
            let mut p = base.clone();
            edit(if net == 0 {
                &mut p.gate[0]
            } else {
                &mut p.decoders[1][0]
            });
            check(&p, Error::InvalidModel(what));
        }
    }
    // 32-bit tensors must be 4-byte aligned in the data section; the i8
    // weights and the table need not be.
    let misaligned: [&Edit; 3] = [
        &|d| q(d).scales.offset += 2,
        &|d| q(d).bias.offset += 1,
        &|d| requant(d).multipliers.offset += 3,
    ];
    for edit in misaligned {
        let mut p = base.clone();
        edit(&mut p.decoders[0][0]);
        check(&p, Error::InvalidModel("32-bit tensor not 4-byte aligned"));
    }
    let mut p = base.clone();
    q(&mut p.decoders[0][1]).weights.offset += 1;
    requant(&mut p.decoders[0][1])
        .table
        .as_mut()
        .unwrap()
        .offset += 3;
    Model::from_bytes(&p.file()).unwrap();
    // Biases within ±2^23 in accumulator units.
    for (bias, ok) in [
        (1 << 23, true),
        (-(1 << 23), true),
        ((1 << 23) + 1, false),
        (-(1 << 23) - 1, false),
        (i32::MAX, false),
        (i32::MIN, false),
    ] {
        let mut p = base.clone();
        let t = q(&mut p.decoders[1][1]).bias;
        let at = t.offset as usize + 4 * 7;
        p.data[at..at + 4].copy_from_slice(&i32::to_le_bytes(bias));
        if ok {
            accept(&p);
        } else {
            check(&p, Error::InvalidModel("int8 bias beyond 2^23"));
        }
    }
    // Scales.
    for bad in [0.0, -0.0, -1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut p = base.clone();
        q(&mut p.decoders[0][0]).input_scale = bad;
        check(&p, Error::InvalidModel("int8 input scale not positive"));
        let mut p = base.clone();
        q(&mut p.gate[1]).input_scale = bad;
        check(&p, Error::InvalidModel("int8 input scale not positive"));
        let mut p = base.clone();
        requant(&mut p.gate[0]).output_scale = bad;
        check(&p, Error::InvalidModel("int8 output scale not positive"));
    }
    let mut p = base.clone();
    q(&mut p.decoders[0][0]).input_scale = f32::from_bits(1); // tiny but positive
    requant(&mut p.decoders[0][1]).output_scale = f32::MAX;
    accept(&p);
    // Shifts.
    for (shift, ok) in [
        (0, false),
        (1, true),
        (31, true),
        (32, true),
        (33, true),
        (62, true),
        (63, false),
        (255, false),
    ] {
        let mut p = base.clone();
        requant(&mut p.decoders[1][0]).shift = shift;
        if ok {
            accept(&p);
        } else {
            check(
                &p,
                Error::InvalidModel("requantization shift outside 1..=62"),
            );
        }
    }
    // Tables: exactly 512 codes, exactly for sigmoid and tanh.
    for delta in [-1i64, 1] {
        let mut p = base.clone();
        let t = requant(&mut p.decoders[0][0]).table.as_mut().unwrap();
        t.len = (t.len as i64 + delta) as u32;
        check(&p, Error::InvalidModel("lookup table is not 512 codes"));
    }
    let mut p = base.clone();
    requant(&mut p.decoders[0][1]).table = None;
    check(&p, Error::InvalidModel("sigmoid or tanh without a table"));
    let mut p = base.clone();
    p.decoders[0][0].activation = Activation::Sigmoid;
    accept(&p);
    for activation in [Activation::Relu, Activation::Identity] {
        let mut p = base.clone();
        p.decoders[0][0].activation = activation;
        check(
            &p,
            Error::InvalidModel("lookup table on a clamping activation"),
        );
        let mut p = base.clone();
        let table = requant(&mut p.gate[0]).table.replace(TensorRef {
            offset: 0,
            len: 512,
        });
        assert!(table.is_none());
        p.gate[0].activation = activation;
        check(
            &p,
            Error::InvalidModel("lookup table on a clamping activation"),
        );
    }
    // Requantization may be left out only on a network's last layer.
    let mut p = base.clone();
    q(&mut p.gate[0]).requant = None;
    check(
        &p,
        Error::InvalidModel("int8 hidden layer without requantization"),
    );
    let mut p = base.clone();
    q(&mut p.decoders[1][0]).requant = None;
    check(
        &p,
        Error::InvalidModel("int8 hidden layer without requantization"),
    );
    // Left out on a decoder's last layer, the outputs are f32 values
    // (sigmoid(acc · scale · input_scale)); present on the gate's last
    // layer, the logits are codes' values.
    let mut p = base.clone();
    q(&mut p.decoders[0][1]).requant = None;
    accept(&p);
    let p = edited(base.clone(), |p, data| {
        q(&mut p.gate[1]).requant = Some(Requant {
            multipliers: data.i32s([1 << 22, 3 << 21]),
            shift: 31,
            output_scale: 0.25,
            table: None,
        });
    });
    accept(&p);
    // Widths that do not chain; a decoder that does not end in pixels.
    let p = edited(base.clone(), |p, data| {
        p.gate[1] = int8_layer(
            data,
            (5, 2, Activation::Identity),
            Layout::RowMajor,
            0.1,
            false,
        );
    });
    check(&p, Error::InvalidModel("layer widths do not chain"));
    let p = edited(base.clone(), |p, data| {
        p.decoders[1] = vec![int8_layer(
            data,
            (2, 15, Activation::Relu),
            Layout::RowMajor,
            0.1,
            true,
        )];
    });
    check(&p, Error::InvalidModel("network output width is wrong"));
    // f16 layers among int8 ones.
    let p = edited(base.clone(), |p, data| {
        p.decoders[1] = vec![f16_layer(data, 2, 16, Activation::Sigmoid)];
    });
    check(&p, Error::InvalidModel("layers of different element types"));
    let p = edited(base.clone(), |p, data| {
        p.gate[1] = f16_layer(data, 4, 2, Activation::Identity);
    });
    check(&p, Error::InvalidModel("layers of different element types"));
    // Every layout and activation combination the format allows runs and
    // matches the reference.
    for layout in [Layout::RowMajor, Layout::ColumnMajor] {
        let mut p = base.clone();
        for d in p.all_layers_mut() {
            q(d).layout = layout;
        }
        accept(&p);
    }
}

/// Patches byte `at` of the file and refreshes the frame.
fn patched(bytes: &[u8], at: usize, value: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] = value;
    refresh_frame(&mut out);
    out
}

/// Where `needle` occurs (exactly once) in `haystack`.
fn find_once(haystack: &[u8], needle: &[u8]) -> usize {
    let hits: Vec<usize> = haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hits.len(), 1, "{needle:?}");
    hits[0]
}

#[test]
fn undecodable_descriptions_are_malformed() {
    for base in [f16_parts(), int8_parts()] {
        let bytes = base.file();
        let header_len = postcard::to_allocvec(&base.header).unwrap().len();
        // Unknown method; unknown likelihood; a label-map option tag of 2.
        assert_eq!(
            Model::from_bytes(&patched(&bytes, HEADER_LEN, 2)).unwrap_err(),
            Error::Malformed
        );
        let h = &base.header;
        let prefix = postcard::to_allocvec(&(h.method, h.image, h.experts, h.latent)).unwrap();
        let at = HEADER_LEN + prefix.len();
        assert_eq!(bytes[at], 1, "Gaussian");
        assert_eq!(
            Model::from_bytes(&patched(&bytes, at, 2)).unwrap_err(),
            Error::Malformed
        );
        let at = HEADER_LEN + prefix.len() + 5 + 1 + 2 * 4;
        assert_eq!(bytes[at], 1, "Some(label map)");
        assert_eq!(
            Model::from_bytes(&patched(&bytes, at, 2)).unwrap_err(),
            Error::Malformed
        );
        // A provenance that is not UTF-8.
        let at = HEADER_LEN + header_len - 1;
        assert_eq!(bytes[at], b's');
        assert_eq!(
            Model::from_bytes(&patched(&bytes, at, 0xFF)).unwrap_err(),
            Error::Malformed
        );
        // Unknown activation and weight type in a decoder's layer.
        let desc = base.decoders[1][0];
        let at = find_once(
            &bytes[..description_end(&bytes)],
            &postcard::to_allocvec(&desc).unwrap(),
        );
        assert_eq!(
            Model::from_bytes(&patched(&bytes, at + 2, 4)).unwrap_err(),
            Error::Malformed
        );
        assert_eq!(
            Model::from_bytes(&patched(&bytes, at + 3, 2)).unwrap_err(),
            Error::Malformed
        );
        if let Weights::Int8(w) = desc.weights {
            // Unknown layout; an option tag of 2 for the requantization.
            assert_eq!(
                Model::from_bytes(&patched(&bytes, at + 4, 2)).unwrap_err(),
                Error::Malformed
            );
            let mut none = desc;
            q(&mut none).requant = None;
            let tag = at + postcard::to_allocvec(&none).unwrap().len() - 1;
            assert_eq!(bytes[tag], 1);
            assert_eq!(
                Model::from_bytes(&patched(&bytes, tag, 2)).unwrap_err(),
                Error::Malformed
            );
            assert!(w.requant.is_some());
        }
        // A varint beyond u32 (the fifth byte of u32::MAX's encoding).
        let mut p = base.clone();
        p.gate[0].inputs = u32::MAX;
        let wide = p.file();
        let at = HEADER_LEN + header_len + 1;
        assert_eq!(&wide[at..at + 5], &[0xFF, 0xFF, 0xFF, 0xFF, 0x0F]);
        assert_eq!(
            Model::from_bytes(&patched(&wide, at + 4, 0x1F)).unwrap_err(),
            Error::Malformed
        );
        // A body that is only the description, cut anywhere.
        let end = description_end(&bytes);
        for len in HEADER_LEN..end {
            let mut cut = bytes[..len].to_vec();
            refresh_frame(&mut cut);
            assert_eq!(
                Model::from_bytes(&cut).unwrap_err(),
                Error::Malformed,
                "{len}"
            );
        }
    }
}

#[test]
fn padding_before_the_data_is_checked() {
    for base in [f16_parts(), int8_parts()] {
        // A provenance length that leaves some padding.
        let mut p = base.clone();
        while (HEADER_LEN + p.description().len()).is_multiple_of(16) {
            p.header.provenance.push('x');
        }
        let bytes = p.file();
        let end = HEADER_LEN + p.description().len();
        let start = end.div_ceil(16) * 16;
        assert_eq!(data_start(&bytes), start);
        for at in end..start {
            let bad = patched(&bytes, at, 0x01);
            assert_eq!(
                Model::from_bytes(&bad).unwrap_err(),
                Error::InvalidModel("padding before the data is not zero")
            );
        }
        for len in end..start {
            let mut cut = bytes[..len].to_vec();
            refresh_frame(&mut cut);
            assert_eq!(
                Model::from_bytes(&cut).unwrap_err(),
                Error::Truncated {
                    needed: start,
                    available: len
                }
            );
        }
    }
}

#[test]
fn a_model_wider_than_the_workspace_is_a_typed_error() {
    // f16: every buffer holds a layer's width.
    let mut p = f16_parts();
    let mut data = Data::default();
    p.header.image = ImageShape {
        width: 64,
        height: 64,
    };
    p.gate = vec![f16_layer(&mut data, 4096, 2, Activation::Identity)];
    p.decoders = (0..2)
        .map(|_| vec![f16_layer(&mut data, 2, 4096, Activation::Sigmoid)])
        .collect();
    p.data = data.0;
    let bytes = p.file();
    let model = Model::from_bytes(&bytes).unwrap();
    let mut ws = Workspace::<1024>::new();
    let expected = Error::WorkspaceTooSmall {
        needed: 4096,
        have: 1024,
    };
    assert_eq!(model.classify(&mut ws, &[0; 4096]).unwrap_err(), expected);
    assert_eq!(
        model.classify_f32(&mut ws, &[0.0; 4096]).unwrap_err(),
        expected
    );
    assert_eq!(model.generate(&mut ws, 0, 1).unwrap_err(), expected);
    assert_eq!(model.decode(&mut ws, 0, &[0.0; 2]).unwrap_err(), expected);
    let mut px = [0u8; 4096];
    assert_eq!(
        model.generate_pixels(&mut ws, 0, 1, &mut px).unwrap_err(),
        expected
    );
    assert_eq!(
        model
            .decode_pixels(&mut ws, 0, &[0.0; 2], &mut px)
            .unwrap_err(),
        expected
    );
    // int8: the image is read in place and pixels written straight out, so
    // only the f32 image of `generate` and `decode` needs the width.
    let mut p = int8_parts();
    let mut data = Data::default();
    p.header.image = ImageShape {
        width: 64,
        height: 64,
    };
    p.gate = vec![int8_layer(
        &mut data,
        (4096, 2, Activation::Identity),
        Layout::RowMajor,
        1.0 / 255.0,
        false,
    )];
    p.decoders = (0..2)
        .map(|_| {
            vec![int8_layer(
                &mut data,
                (2, 4096, Activation::Sigmoid),
                Layout::RowMajor,
                0.05,
                true,
            )]
        })
        .collect();
    p.data = data.0;
    let bytes = p.file();
    let model = Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.workspace_len(), 1);
    let mut ws = Workspace::<1024>::new();
    let image: Vec<u8> = (0..4096).map(|i| (i % 7 * 40) as u8).collect();
    let c = model.classify(&mut ws, &image).unwrap();
    let mut logits = reference_logits(&model, &image);
    engine::kernels::softmax(&mut logits);
    assert_eq!(bits(&c.probabilities), bits(&logits));
    model.generate_pixels(&mut ws, 1, 9, &mut px).unwrap();
    let reference = reference_decode(&model, 1, &normal(9, 2));
    let expected_px: Vec<u8> = reference.iter().map(|&v| pixel(v)).collect();
    assert_eq!(&px[..], &expected_px[..]);
    let expected = Error::WorkspaceTooSmall {
        needed: 4096,
        have: 1024,
    };
    assert_eq!(model.generate(&mut ws, 0, 1).unwrap_err(), expected);
    assert_eq!(model.decode(&mut ws, 0, &[0.0; 2]).unwrap_err(), expected);
    // An f32 image for an int8 model is converted on the stack, up to 1024
    // pixels.
    assert_eq!(
        model.classify_f32(&mut ws, &[0.0; 4096]).unwrap_err(),
        Error::Capacity {
            what: "pixels of an f32 image for an int8 model",
            needed: 4096,
            max: 1024
        }
    );
    let mut tiny = Workspace::<0>::new();
    assert_eq!(
        model.classify(&mut tiny, &image).unwrap_err(),
        Error::WorkspaceTooSmall { needed: 1, have: 0 }
    );
}

// ---------------------------------------------------------------------------
// Arguments and results
// ---------------------------------------------------------------------------

#[test]
fn out_of_range_arguments_are_typed_errors() {
    for (_, bytes) in subjects() {
        let model = Model::from_bytes(bytes).unwrap();
        let need = model.workspace_len();
        let mut ws = Workspace::<784>::new();
        let mut small = Workspace::<255>::new();
        let too_small = |needed| Error::WorkspaceTooSmall { needed, have: 255 };
        if need > 255 {
            assert_eq!(
                model.classify(&mut small, &digit()).unwrap_err(),
                too_small(need)
            );
        }
        assert_eq!(
            model.generate(&mut small, 0, 0).unwrap_err(),
            too_small(784)
        );
        assert_eq!(
            model.classify(&mut ws, &digit()[..783]).unwrap_err(),
            Error::InputLength {
                expected: 784,
                found: 783
            }
        );
        assert_eq!(
            model.classify_f32(&mut ws, &[0.0; 785]).unwrap_err(),
            Error::InputLength {
                expected: 784,
                found: 785
            }
        );
        for expert in [10, 16, usize::MAX] {
            let err = Error::NoSuchExpert {
                expert,
                experts: 10,
            };
            assert_eq!(model.generate(&mut ws, expert, 0).unwrap_err(), err);
            assert_eq!(model.decode(&mut ws, expert, &[0.0; 10]).unwrap_err(), err);
            let mut px = [0u8; 784];
            assert_eq!(
                model
                    .generate_pixels(&mut ws, expert, 0, &mut px)
                    .unwrap_err(),
                err
            );
        }
        assert_eq!(
            model.decode(&mut ws, 0, &[0.0; 9]).unwrap_err(),
            Error::InputLength {
                expected: 10,
                found: 9
            }
        );
        let mut px = [0u8; 783];
        assert_eq!(
            model.generate_pixels(&mut ws, 0, 0, &mut px).unwrap_err(),
            Error::InputLength {
                expected: 784,
                found: 783
            }
        );
    }
}

#[test]
fn non_finite_inputs_have_defined_results() {
    for (name, bytes) in subjects() {
        let model = Model::from_bytes(bytes).unwrap();
        let mut ws = Workspace::<784>::new();
        let specials = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -3.5,
            7.0,
            -0.0,
            f32::MAX,
            f32::MIN_POSITIVE,
            0.5,
            0.7,
        ];
        let wild: Vec<f32> = (0..784).map(|i| specials[i % specials.len()]).collect();
        // NaN counts as 0; everything else is clamped to [0, 1]; an int8
        // model classifies the pixels of that.
        let sane: Vec<f32> = wild
            .iter()
            .map(|&v| if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) })
            .collect();
        let a = model.classify_f32(&mut ws, &wild).unwrap();
        let b = model.classify_f32(&mut ws, &sane).unwrap();
        assert_eq!(bits(&a.probabilities), bits(&b.probabilities), "{name}");
        assert_eq!(a.cluster, b.cluster);
        if model.element_type() == ElementType::Int8 {
            let px: Vec<u8> = wild.iter().map(|&v| pixel(v)).collect();
            let c = model.classify(&mut ws, &px).unwrap();
            assert_eq!(bits(&a.probabilities), bits(&c.probabilities), "{name}");
        }
        // Non-finite latent values count as 0.
        let z = [
            f32::NAN,
            1.0,
            f32::INFINITY,
            -1.0,
            f32::NEG_INFINITY,
            0.5,
            0.0,
            2.0,
            -2.0,
            1e30,
        ];
        let z_sane = [0.0, 1.0, 0.0, -1.0, 0.0, 0.5, 0.0, 2.0, -2.0, 1e30];
        let x = bits(model.decode(&mut ws, 4, &z).unwrap());
        let y = bits(model.decode(&mut ws, 4, &z_sane).unwrap());
        assert_eq!(x, y, "{name}");
        let img = model.decode(&mut ws, 4, &z).unwrap();
        assert!(img.iter().all(|v| (0.0..=1.0).contains(v)), "{name}");
        let reference = reference_decode(&model, 4, &z);
        assert_eq!(bits(img), bits(&reference), "{name}");
    }
}

#[test]
fn results_are_deterministic_and_equal_the_reference() {
    for (name, bytes) in subjects()
        .into_iter()
        .chain([("varied int8", varied_int8_model())])
    {
        // A second copy at an odd address: tensors are read unaligned.
        let mut shifted = vec![0u8; bytes.len() + 1];
        shifted[1..].copy_from_slice(bytes);
        let m1 = Model::from_bytes(bytes).unwrap();
        let m2 = Model::from_bytes(&shifted[1..]).unwrap();
        let mut ws1 = Workspace::<784>::new();
        let mut ws2 = Workspace::<1000>::new();
        let pics = images(4, 99);
        for image in std::iter::once(&digit()[..]).chain(pics.chunks(784)) {
            let c1 = m1.classify(&mut ws1, image).unwrap();
            let c2 = m2.classify(&mut ws2, image).unwrap();
            assert_eq!(bits(&c1.probabilities), bits(&c2.probabilities), "{name}");
            let mut probabilities = reference_logits(&m1, image);
            engine::kernels::softmax(&mut probabilities);
            assert_eq!(bits(&c1.probabilities), bits(&probabilities), "{name}");
            assert_eq!(c1.cluster, engine::kernels::argmax(&probabilities));
            assert_eq!(
                c1.label,
                m1.header().label_map.as_ref().map(|m| m[c1.cluster])
            );
        }
        let experts = m1.experts();
        for (k, seed) in [(0, 0u64), (3, 42), (9, u64::MAX), (1, 7)] {
            let k = k % experts;
            let g1 = bits(m1.generate(&mut ws1, k, seed).unwrap());
            let g2 = bits(m2.generate(&mut ws2, k, seed).unwrap());
            assert_eq!(g1, g2);
            let again = bits(m1.generate(&mut ws1, k, seed).unwrap());
            assert_eq!(g1, again);
            let z = normal(seed, m1.latent());
            let reference = reference_decode(&m1, k, &z);
            assert_eq!(g1, bits(&reference), "{name}: expert {k}, seed {seed}");
            check_reference(&m1, &mut ws1, &digit(), k, seed);
            // Unsigned codes of scale 1/255 are the pixels themselves.
            if let LayerWeights::Int8(q) = m1.decoder(k).unwrap().layers().last().unwrap().weights {
                let r = q.requant.unwrap();
                assert_eq!(r.output_scale, 1.0 / 255.0);
                let mut px = vec![0u8; 784];
                m1.generate_pixels(&mut ws1, k, seed, &mut px).unwrap();
                let codes: Vec<u8> = reference
                    .iter()
                    .map(|v| (v * 255.0).round() as u8)
                    .collect();
                assert_eq!(px, codes);
            }
        }
    }
}

/// The int8 model with every layer's layout flipped (its weights
/// transposed in the data section), and, with `drop_requant`, the decoders'
/// last layers without requantization.
fn rewritten(bytes: &[u8], drop_requant: bool) -> Vec<u8> {
    let repr = ModelRepr::parse(bytes).unwrap();
    let mut data = repr.data().to_vec();
    let mut flip = |mut d: LayerDesc, last: bool| -> LayerDesc {
        let (n, m) = (d.inputs as usize, d.outputs as usize);
        let w = q(&mut d);
        let at = w.weights.offset as usize;
        let old = data[at..at + n * m].to_vec();
        for o in 0..m {
            for i in 0..n {
                let (from, to) = match w.layout {
                    Layout::RowMajor => (o * n + i, i * m + o),
                    Layout::ColumnMajor => (i * m + o, o * n + i),
                };
                data[at + to] = old[from];
            }
        }
        w.layout = match w.layout {
            Layout::RowMajor => Layout::ColumnMajor,
            Layout::ColumnMajor => Layout::RowMajor,
        };
        if last && drop_requant {
            w.requant = None;
        }
        d
    };
    let gate: Vec<LayerDesc> = engine::format::descriptors(repr.gate())
        .map(|d| flip(d, false))
        .collect();
    let decoders: Vec<Vec<LayerDesc>> = repr
        .decoders()
        .map(|net| {
            let n = net.len();
            engine::format::descriptors(net)
                .enumerate()
                .map(|(i, d)| flip(d, i + 1 == n))
                .collect()
        })
        .collect();
    let decoders: Vec<&[LayerDesc]> = decoders.iter().map(Vec::as_slice).collect();
    let len = engine::format::emitted_len(repr.header(), &gate, &decoders, data.len()).unwrap();
    let mut out = vec![0u8; len];
    engine::format::emit(repr.header(), &gate, &decoders, &data, &mut out).unwrap();
    out
}

#[test]
fn int8_layouts_compute_the_same_bits() {
    for bytes in [int8_model(), varied_int8_model()] {
        let flipped = rewritten(bytes, false);
        let a = Model::from_bytes(bytes).unwrap();
        let b = Model::from_bytes(&flipped).unwrap();
        let (mut wa, mut wb) = (Workspace::<784>::new(), Workspace::<784>::new());
        let image = digit();
        let ca = a.classify(&mut wa, &image).unwrap();
        let cb = b.classify(&mut wb, &image).unwrap();
        assert_eq!(bits(&ca.probabilities), bits(&cb.probabilities));
        for k in 0..a.experts() {
            let ga = bits(a.generate(&mut wa, k, k as u64).unwrap());
            let gb = bits(b.generate(&mut wb, k, k as u64).unwrap());
            assert_eq!(ga, gb, "expert {k}");
            check_reference(&b, &mut wb, &image, k, k as u64);
        }
        // Decoders ending in f32 values: sigmoid of the dequantized sum.
        let unrequantized = rewritten(bytes, true);
        let c = Model::from_bytes(&unrequantized).unwrap();
        for k in 0..c.experts() {
            check_reference(&c, &mut wb, &image, k, 100 + k as u64);
        }
    }
}

/// A ReLU layer that is zero on every calibration input (a dead layer: no
/// weights, negative biases) is written as int8 all the same, and its
/// zeros reach the next layer: the decoder then draws sigmoid(bias).
#[test]
fn layers_dead_on_calibration_are_written_as_int8() {
    let mut spec = small_spec();
    for layer in
        core::iter::once(&mut spec.gate[0]).chain(spec.decoders.iter_mut().map(|d| &mut d[0]))
    {
        layer.weights.fill(0.0);
        layer.bias.fill(-1.0);
    }
    let model_bytes = int8_bytes(&spec, 4);
    let model = Model::from_bytes(&model_bytes).unwrap();
    let mut ws = Workspace::<784>::new();
    // The gate's logits are its last layer's biases.
    let c = model.classify(&mut ws, &digit()).unwrap();
    let biases = &spec.gate[1].bias;
    let total: f32 = biases.iter().map(|b| b.exp()).sum();
    for (p, b) in c.probabilities.iter().zip(biases) {
        assert!(
            (p - b.exp() / total).abs() < 0.01,
            "{:?} against biases {biases:?}",
            c.probabilities
        );
    }
    for k in 0..3 {
        let image = model.generate(&mut ws, k, 1).unwrap();
        for (o, &v) in image.iter().enumerate() {
            let b = spec.decoders[k][1].bias[o];
            let sigmoid = 1.0 / (1.0 + (-b).exp());
            assert!(
                (v - sigmoid).abs() < 0.01,
                "expert {k} pixel {o}: {v} against {sigmoid}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

fn small_models() -> [&'static [u8]; 2] {
    [small_f16_model(), small_int8_model()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary byte edits behind a fixed-up frame never panic, on an f16
    /// and an int8 model: in the description half of the time, anywhere in
    /// the body otherwise.
    #[test]
    fn arbitrary_edits_never_panic(
        edits in proptest::collection::vec((any::<bool>(), any::<usize>(), any::<u8>()), 1..8),
        seed in any::<u64>(),
        expert in 0usize..20,
        int8 in any::<bool>(),
    ) {
        let original = small_models()[int8 as usize];
        let end = description_end(original);
        let mut bytes = original.to_vec();
        let body = bytes.len() - HEADER_LEN;
        for (structural, at, v) in edits {
            let at = if structural {
                HEADER_LEN + at % (end - HEADER_LEN)
            } else {
                HEADER_LEN + at % body
            };
            bytes[at] = v;
        }
        refresh_frame(&mut bytes);
        let parsed = Model::from_bytes(&bytes);
        if let Ok(model) = &parsed {
            let mut ws = Workspace::<800>::new();
            let _ = model.classify(&mut ws, &vec![seed as u8; model.pixels()]);
            let _ = model.generate(&mut ws, expert, seed);
            let mut px = vec![0u8; model.pixels()];
            let _ = model.generate_pixels(&mut ws, expert, seed, &mut px);
            if model.workspace_len() <= 800 && model.pixels() <= 800 {
                exercise(model);
            }
        }
        drop(parsed);
    }

    /// A frame around arbitrary bytes, or a model's start followed by
    /// arbitrary bytes, never panics.
    #[test]
    fn arbitrary_bodies_never_panic(
        keep in any::<usize>(),
        tail in proptest::collection::vec(any::<u8>(), 0..600),
        int8 in any::<bool>(),
    ) {
        let original = small_models()[int8 as usize];
        let keep = HEADER_LEN + keep % (description_end(original) + 64 - HEADER_LEN);
        let mut bytes = original[..keep].to_vec();
        bytes.extend_from_slice(&tail);
        refresh_frame(&mut bytes);
        if let Ok(model) = Model::from_bytes(&bytes) {
            let mut ws = Workspace::<800>::new();
            let _ = model.classify(&mut ws, &vec![7; model.pixels()]);
            let _ = model.generate(&mut ws, 0, 1);
        }
        let mut only = MAGIC.to_vec();
        only.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        only.extend_from_slice(&[0; 10]);
        only.extend_from_slice(&tail);
        refresh_frame(&mut only);
        let _ = Model::from_bytes(&only);
    }

    /// Any f32 image gives a probability vector.
    #[test]
    fn any_f32_image_classifies(
        image in proptest::collection::vec(any::<f32>(), 784),
        int8 in any::<bool>(),
    ) {
        let model = Model::from_bytes(small_models()[int8 as usize]).unwrap();
        let mut ws = Workspace::<784>::new();
        let c = model.classify_f32(&mut ws, &image).unwrap();
        let sum: f32 = c.probabilities.iter().sum();
        prop_assert!((sum - 1.0).abs() < 1e-5);
        let mut px = vec![0u8; 784];
        engine::to_pixels(&image, &mut px);
        if int8 {
            let d = model.classify(&mut ws, &px).unwrap();
            prop_assert_eq!(bits(&c.probabilities), bits(&d.probabilities));
        }
    }

    /// Any latent vector decodes like the reference.
    #[test]
    fn any_latent_decodes_like_the_reference(
        z in proptest::collection::vec(any::<f32>(), 2),
        int8 in any::<bool>(),
        expert in 0usize..3,
    ) {
        let model = Model::from_bytes(small_models()[int8 as usize]).unwrap();
        let mut ws = Workspace::<784>::new();
        let out = model.decode(&mut ws, expert, &z).unwrap().to_vec();
        prop_assert!(same(&out, &reference_decode(&model, expert, &z)));
    }
}
