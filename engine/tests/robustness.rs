//! Bad bytes and bad inputs: every one gives a specific typed error, or a
//! model that still runs safely; nothing panics or reads out of bounds.
//!
//! The subject is a model of the default shapes (gate 784→256→10, ten
//! decoders 10→32→784), written by the engine's writer from seeded weights,
//! as `trainer fit --export` would write it.

use engine::rng::SplitMix64;
use engine::{
    crc32, Activation, Error, ImageShape, Likelihood, Method, Model, ModelFile, ModelRepr,
    Workspace, FORMAT_VERSION, MAGIC,
};
use proptest::prelude::*;
use serde::Serialize;

const HEADER_LEN: usize = 20;

/// A model file of the default shapes (≈ 0.9 MiB).
fn default_model() -> Vec<u8> {
    engine::testing::random_spec(
        &[
            (784, 256, Activation::Relu),
            (256, 10, Activation::Identity),
        ],
        &[(10, 32, Activation::Relu), (32, 784, Activation::Sigmoid)],
        10,
        6,
    )
    .to_bytes()
    .expect("the writer accepts the model")
}

fn digit() -> Vec<u8> {
    (0..784u32).map(|i| ((i * 37) % 256) as u8).collect()
}

/// Runs everything a parsed model offers and checks the results are sane.
fn exercise(model: &Model<'_>) {
    let mut ws = Workspace::<1024>::new();
    if model.workspace_len() > 1024 {
        assert!(matches!(
            model.classify(&mut ws, &vec![0; model.pixels()]),
            Err(Error::WorkspaceTooSmall { .. })
        ));
        return;
    }
    let c = model
        .classify(&mut ws, &vec![100; model.pixels()])
        .expect("a parsed model classifies");
    assert!(c.cluster < model.experts());
    let sum: f32 = c.probabilities.iter().sum();
    assert!((sum - 1.0).abs() < 1e-4, "probabilities sum to {sum}");
    for k in [0, model.experts() - 1] {
        let img = model
            .generate(&mut ws, k, 3)
            .expect("a parsed model generates");
        assert_eq!(img.len(), model.pixels());
        // Finite weights give intensities in [0, 1]; a corrupted weight may
        // be NaN or infinite, and then so may the output (see README).
        assert!(img.iter().all(|v| v.is_nan() || (-1e30..=1e30).contains(v)));
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
    Model::from_repr(ModelRepr::parse_file(&file)?)
}

#[test]
fn the_subject_runs() {
    let bytes = default_model();
    let model = Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.workspace_len(), 784);
    exercise(&model);
}

#[test]
fn every_truncation_is_a_typed_error() {
    let bytes = default_model();
    let stride = 997;
    let mut checked = 0;
    for len in (0..bytes.len())
        .step_by(stride)
        .chain(bytes.len() - 64..bytes.len())
    {
        let cut = &bytes[..len];
        let err = Model::from_bytes(cut).unwrap_err();
        let expected = if len < HEADER_LEN {
            Error::Truncated {
                needed: HEADER_LEN,
                available: len,
            }
        } else {
            Error::Truncated {
                needed: bytes.len(),
                available: len,
            }
        };
        assert_eq!(err, expected, "length {len}");
        // The same prefix with a consistent frame reaches the body decoder,
        // which must find the body incomplete. (Checking the CRC costs a
        // pass over the file, so only some lengths go through `from_bytes`.)
        if len >= HEADER_LEN {
            let mut framed = cut.to_vec();
            let body_len = (len - HEADER_LEN) as u32;
            framed[12..16].copy_from_slice(&body_len.to_le_bytes());
            let err = parse_skip_crc(&framed).unwrap_err();
            assert!(
                matches!(err, Error::Malformed | Error::InvalidModel(_)),
                "length {len}: {err:?}"
            );
            if checked % 16 == 0 {
                refresh_frame(&mut framed);
                assert_eq!(Model::from_bytes(&framed).unwrap_err(), err);
            }
            checked += 1;
        }
    }
    assert!(
        checked > bytes.len() / stride,
        "{checked} framed truncations"
    );
}

#[test]
fn single_bit_flips_are_caught_by_the_frame() {
    let bytes = default_model();
    let mut rng = SplitMix64::new(1);
    // Each try checksums the whole 0.9 MiB file; 400 keep this test fast.
    for _ in 0..400 {
        let bit = (rng.next_u64() % (8 * bytes.len() as u64)) as usize;
        let mut bad = bytes.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let err = Model::from_bytes(&bad).unwrap_err();
        let ok = match bit / 8 {
            0..=7 => err == Error::BadMagic,
            8..=9 => matches!(err, Error::UnsupportedVersion { .. }),
            10..=11 => err == Error::ReservedBits,
            12..=15 => matches!(err, Error::Truncated { .. } | Error::TrailingBytes { .. }),
            // CRC-32 detects every single-bit error in the body.
            _ => matches!(err, Error::ChecksumMismatch { .. }),
        };
        assert!(ok, "bit {bit}: {err:?}");
    }
}

/// Byte offsets of the structure (header, and the length prefixes and
/// fields just before each tensor), where a flip changes more than a weight.
fn structural_offsets(bytes: &[u8]) -> Vec<usize> {
    let repr = ModelRepr::parse(bytes).unwrap();
    let base = bytes.as_ptr() as usize;
    let mut out: Vec<usize> = (HEADER_LEN..HEADER_LEN + 120).collect();
    let mlps = std::iter::once(&repr.gate).chain(repr.decoders.iter());
    for mlp in mlps {
        for layer in &mlp.layers {
            for t in [layer.weights, layer.bias] {
                let start = t.as_ptr() as usize - base;
                out.extend(start.saturating_sub(16)..start);
            }
        }
    }
    out
}

#[test]
fn bit_flips_behind_a_valid_checksum_are_errors_or_safe_models() {
    let bytes = default_model();
    let structure = structural_offsets(&bytes);
    let mut rng = SplitMix64::new(2);
    let (mut parsed, mut rejected) = (0, 0);
    for i in 0..4000 {
        let mut bad = bytes.clone();
        let flips = 1 + rng.next_u64() % 3;
        for _ in 0..flips {
            let at = if i % 2 == 0 {
                structure[(rng.next_u64() % structure.len() as u64) as usize]
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
            assert_eq!(err, checked.as_ref().err().copied());
        }
        match checked {
            Ok(model) => {
                parsed += 1;
                exercise(&model);
            }
            Err(e) => {
                rejected += 1;
                assert!(
                    matches!(
                        e,
                        Error::Malformed
                            | Error::InvalidModel(_)
                            | Error::Capacity { .. }
                            | Error::TrailingBytes { .. }
                    ),
                    "{e:?}"
                );
            }
        }
    }
    // Both outcomes must actually occur, or the test proves little.
    assert!(
        parsed > 500 && rejected > 500,
        "{parsed} parsed, {rejected} rejected"
    );
}

#[test]
fn frame_fields_give_their_errors() {
    let bytes = default_model();
    let mut bad = bytes.clone();
    bad[0] = b'm';
    assert_eq!(Model::from_bytes(&bad).unwrap_err(), Error::BadMagic);
    let mut bad = bytes.clone();
    bad[8..10].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    assert_eq!(
        Model::from_bytes(&bad).unwrap_err(),
        Error::UnsupportedVersion {
            found: FORMAT_VERSION + 1,
            supported: FORMAT_VERSION
        }
    );
    let mut bad = bytes.clone();
    bad[10] = 1;
    assert_eq!(Model::from_bytes(&bad).unwrap_err(), Error::ReservedBits);
    let mut bad = bytes.clone();
    bad.push(0);
    assert_eq!(
        Model::from_bytes(&bad).unwrap_err(),
        Error::TrailingBytes { extra: 1 }
    );
    let mut bad = bytes.clone();
    bad[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        Model::from_bytes(&bad).unwrap_err(),
        Error::Truncated { .. }
    ));
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
}

// A mirror of `ModelRepr` with unbounded vectors, to write bodies the engine
// must refuse (postcard encodes `Vec` and `heapless::Vec` the same way).
#[derive(Serialize, Clone)]
struct RawLayer {
    inputs: u32,
    outputs: u32,
    activation: Activation,
    weights: Vec<u8>,
    bias: Vec<u8>,
}

#[derive(Serialize, Clone)]
struct RawMlp {
    layers: Vec<RawLayer>,
}

#[derive(Serialize, Clone)]
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

#[derive(Serialize, Clone)]
struct RawModel {
    header: RawHeader,
    gate: RawMlp,
    decoders: Vec<RawMlp>,
}

fn dense(inputs: u32, outputs: u32, activation: Activation) -> RawLayer {
    RawLayer {
        inputs,
        outputs,
        activation,
        weights: vec![0x00; 2 * (inputs * outputs) as usize],
        bias: vec![0x00; 2 * outputs as usize],
    }
}

/// A small valid model (16 pixels, 2 experts) in raw form.
fn raw_model() -> RawModel {
    let decoder = RawMlp {
        layers: vec![dense(2, 16, Activation::Sigmoid)],
    };
    RawModel {
        header: RawHeader {
            method: Method::KVae,
            image: ImageShape {
                width: 4,
                height: 4,
            },
            experts: 2,
            latent: 2,
            likelihood: Likelihood::Gaussian { std: 0.1 },
            mixture_weights: vec![0.5, 0.5],
            label_map: None,
            provenance: String::new(),
        },
        gate: RawMlp {
            layers: vec![dense(16, 2, Activation::Identity)],
        },
        decoders: vec![decoder.clone(), decoder],
    }
}

fn frame(raw: &RawModel) -> Vec<u8> {
    let body = postcard::to_allocvec(raw).unwrap();
    let mut out = vec![0u8; HEADER_LEN];
    out.extend_from_slice(&body);
    out[..8].copy_from_slice(&MAGIC);
    out[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    refresh_frame(&mut out);
    out
}

#[test]
fn raw_mirror_encodes_like_the_engine() {
    let bytes = frame(&raw_model());
    let model = Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.experts(), 2);
    exercise(&model);
}

#[test]
fn absurd_sizes_and_capacities_are_typed_errors() {
    let check = |raw: RawModel, expected: Error| {
        let bytes = frame(&raw);
        assert_eq!(Model::from_bytes(&bytes).unwrap_err(), expected);
        assert_eq!(parse_skip_crc(&bytes).unwrap_err(), expected);
    };
    // inputs × outputs × 2 overflows usize, with tiny tensors.
    let mut raw = raw_model();
    raw.gate.layers[0] = RawLayer {
        inputs: u32::MAX,
        outputs: u32::MAX,
        activation: Activation::Identity,
        weights: vec![0; 4],
        bias: vec![0; 4],
    };
    check(raw, Error::InvalidModel("layer size overflows"));
    // Large but representable shape, tensors too short.
    let mut raw = raw_model();
    raw.gate.layers[0].inputs = 1 << 31;
    check(
        raw,
        Error::InvalidModel("weight tensor length does not match its shape"),
    );
    let mut raw = raw_model();
    raw.gate.layers[0].bias.pop();
    check(
        raw,
        Error::InvalidModel("bias tensor length does not match its shape"),
    );
    // Zero widths.
    let mut raw = raw_model();
    raw.gate.layers[0] = dense(0, 2, Activation::Identity);
    check(raw, Error::InvalidModel("layer with zero width"));
    let mut raw = raw_model();
    raw.header.image.width = 0;
    check(raw, Error::InvalidModel("image has no pixels"));
    let mut raw = raw_model();
    raw.header.latent = 0;
    check(raw, Error::InvalidModel("latent size is zero"));
    // Widths that do not chain.
    let mut raw = raw_model();
    raw.decoders[1].layers = vec![dense(3, 16, Activation::Sigmoid)];
    check(raw, Error::InvalidModel("layer widths do not chain"));
    // More experts than MAX_EXPERTS, stated in the header only.
    let mut raw = raw_model();
    raw.header.experts = 17;
    check(
        raw,
        Error::Capacity {
            what: "experts",
            needed: 17,
            max: 16,
        },
    );
    let mut raw = raw_model();
    raw.header.experts = 0;
    check(raw, Error::InvalidModel("model has no experts"));
    // Lists longer than their fixed capacity cannot be decoded at all.
    let mut raw = raw_model();
    raw.header.experts = 17;
    raw.header.mixture_weights = vec![0.0; 17];
    raw.decoders = vec![raw.decoders[0].clone(); 17];
    check(raw, Error::Malformed);
    let mut raw = raw_model();
    raw.gate.layers = vec![
        dense(16, 16, Activation::Relu),
        dense(16, 16, Activation::Relu),
        dense(16, 16, Activation::Relu),
        dense(16, 16, Activation::Relu),
        dense(16, 2, Activation::Identity),
    ];
    check(raw, Error::Malformed);
    // A model wider than the caller's workspace.
    let mut raw = raw_model();
    raw.header.image = ImageShape {
        width: 64,
        height: 64,
    };
    raw.gate.layers = vec![dense(4096, 2, Activation::Identity)];
    for d in &mut raw.decoders {
        d.layers = vec![dense(2, 4096, Activation::Sigmoid)];
    }
    let bytes = frame(&raw);
    let model = Model::from_bytes(&bytes).unwrap();
    let mut ws = Workspace::<1024>::new();
    let expected = Error::WorkspaceTooSmall {
        needed: 4096,
        have: 1024,
    };
    assert_eq!(model.classify(&mut ws, &[0; 4096]).unwrap_err(), expected);
    assert_eq!(model.generate(&mut ws, 0, 1).unwrap_err(), expected);
    assert_eq!(model.decode(&mut ws, 0, &[0.0; 2]).unwrap_err(), expected);
}

#[test]
fn out_of_range_arguments_are_typed_errors() {
    let bytes = default_model();
    let model = Model::from_bytes(&bytes).unwrap();
    let mut ws = Workspace::<784>::new();
    let mut small = Workspace::<783>::new();
    assert_eq!(
        model.classify(&mut small, &digit()).unwrap_err(),
        Error::WorkspaceTooSmall {
            needed: 784,
            have: 783
        }
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
    }
    assert_eq!(
        model.decode(&mut ws, 0, &[0.0; 9]).unwrap_err(),
        Error::InputLength {
            expected: 10,
            found: 9
        }
    );
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn non_finite_inputs_have_defined_results() {
    let bytes = default_model();
    let model = Model::from_bytes(&bytes).unwrap();
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
    ];
    let wild: Vec<f32> = (0..784).map(|i| specials[i % specials.len()]).collect();
    // NaN counts as 0; everything else is clamped to [0, 1].
    let sane: Vec<f32> = wild
        .iter()
        .map(|&v| if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) })
        .collect();
    let a = model.classify_f32(&mut ws, &wild).unwrap();
    let b = model.classify_f32(&mut ws, &sane).unwrap();
    assert_eq!(bits(&a.probabilities), bits(&b.probabilities));
    assert_eq!(a.cluster, b.cluster);
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
    assert_eq!(x, y);
    let img = model.decode(&mut ws, 4, &z).unwrap();
    assert!(img.iter().all(|v| (0.0..=1.0).contains(v)));
}

/// The model run with nothing but the definitions (`dot_f16`, `activate`),
/// one value at a time: what every target computes.
fn reference_forward(mlp: &engine::Mlp<'_>, input: &[f32]) -> Vec<f32> {
    let mut x = input.to_vec();
    for layer in &mlp.layers {
        x = (0..layer.outputs as usize)
            .map(|o| {
                let v = engine::kernels::dot_f16(layer.row(o), &x) + layer.bias_at(o);
                engine::kernels::activate(layer.activation, v)
            })
            .collect();
    }
    x
}

#[test]
fn results_are_deterministic_and_equal_the_reference() {
    let bytes = default_model();
    // A second copy at an odd address: weights are read unaligned.
    let mut shifted = vec![0u8; bytes.len() + 1];
    shifted[1..].copy_from_slice(&bytes);
    let m1 = Model::from_bytes(&bytes).unwrap();
    let m2 = Model::from_bytes(&shifted[1..]).unwrap();
    let mut ws1 = Workspace::<784>::new();
    let mut ws2 = Workspace::<1000>::new();
    let image = digit();
    let c1 = m1.classify(&mut ws1, &image).unwrap();
    let c2 = m2.classify(&mut ws2, &image).unwrap();
    assert_eq!(bits(&c1.probabilities), bits(&c2.probabilities));
    let scaled: Vec<f32> = image.iter().map(|&p| p as f32 / 255.0).collect();
    let mut logits = reference_forward(m1.gate(), &scaled);
    engine::kernels::softmax(&mut logits);
    assert_eq!(bits(&c1.probabilities), bits(&logits));
    for (k, seed) in [(0, 0u64), (3, 42), (9, u64::MAX)] {
        let g1 = bits(m1.generate(&mut ws1, k, seed).unwrap());
        let g2 = bits(m2.generate(&mut ws2, k, seed).unwrap());
        assert_eq!(g1, g2);
        let again = bits(m1.generate(&mut ws1, k, seed).unwrap());
        assert_eq!(g1, again);
        let mut z = [0.0f32; 10];
        SplitMix64::new(seed).fill_normal(&mut z);
        let reference = reference_forward(m1.decoder(k).unwrap(), &z);
        assert_eq!(g1, bits(&reference), "expert {k}, seed {seed}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary byte edits behind a fixed-up frame never panic.
    #[test]
    fn arbitrary_edits_never_panic(
        edits in proptest::collection::vec((0usize..2000, any::<u8>()), 1..8),
        seed in any::<u64>(),
        expert in 0usize..20,
    ) {
        let mut bytes = frame(&raw_model());
        let body = bytes.len() - HEADER_LEN;
        for (at, v) in edits {
            bytes[HEADER_LEN + at % body] = v;
        }
        refresh_frame(&mut bytes);
        let parsed = Model::from_bytes(&bytes);
        if let Ok(model) = &parsed {
            let mut ws = Workspace::<64>::new();
            let _ = model.classify(&mut ws, &[seed as u8; 16]);
            let _ = model.generate(&mut ws, expert, seed);
        }
        drop(parsed);
    }

    /// Any f32 image gives a probability vector.
    #[test]
    fn any_f32_image_classifies(image in proptest::collection::vec(any::<f32>(), 16)) {
        let bytes = frame(&raw_model());
        let model = Model::from_bytes(&bytes).unwrap();
        let mut ws = Workspace::<16>::new();
        let c = model.classify_f32(&mut ws, &image).unwrap();
        let sum: f32 = c.probabilities.iter().sum();
        prop_assert!((sum - 1.0).abs() < 1e-5);
    }
}
