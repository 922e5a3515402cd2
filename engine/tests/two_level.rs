//! Two-level models (format version 3): the writer's files read back and
//! compute what a plain f32 re-implementation of `FORMAT.md` computes; flat
//! models still go out as version 2; the frame's version rule; extension
//! sections are skipped; and malformed version-3 bytes (every truncation,
//! every single-byte change, hand-made bad descriptions) give typed errors
//! or models that run safely, never a panic.

use engine::format::{self, descriptors, ClusterDesc, Extension, LayerDesc};
use engine::rng::SplitMix64;
use engine::writer::{ClusterSpec, DenseF32, ModelSpec, TwoLevelSpec};
use engine::{
    crc32, Activation, Error, ImageShape, Likelihood, Method, Model, ModelFile, ModelRepr,
    Workspace, FORMAT_VERSION, TWO_LEVEL_VERSION,
};

const PIXELS: usize = 16;
const LATENT: usize = 4;
/// Styles of the test model's clusters.
const STYLES: [usize; 3] = [1, 3, 2];

/// Weights uniform in ±4/√inputs: logits far enough apart that most
/// decisions are clear of f16 and int8 rounding.
fn layers(rng: &mut SplitMix64, shape: &[(usize, usize, Activation)]) -> Vec<DenseF32> {
    engine::testing::random_layers(rng, shape, 4.0)
}

/// A 4×4-pixel model of three clusters of 1, 3 and 2 styles.
fn spec(styles: &[usize]) -> TwoLevelSpec {
    let mut rng = SplitMix64::new(25);
    let k = styles.len();
    let decoder = [
        (LATENT, 8, Activation::Relu),
        (8, PIXELS, Activation::Sigmoid),
    ];
    let model = ModelSpec {
        method: Method::MixtureOfVaes,
        image: ImageShape {
            width: 4,
            height: 4,
        },
        latent: LATENT,
        likelihood: Likelihood::Bernoulli,
        mixture_weights: vec![1.0 / k as f32; k],
        label_map: Some((0..k as u8).collect()),
        provenance: "engine/tests/two_level.rs".into(),
        gate: layers(
            &mut rng,
            &[(PIXELS, 8, Activation::Relu), (8, k, Activation::Identity)],
        ),
        decoders: Vec::new(),
    };
    let clusters = styles
        .iter()
        .map(|&s| ClusterSpec {
            style_weights: vec![1.0 / s as f32; s],
            gate: if s == 1 {
                Vec::new()
            } else {
                layers(
                    &mut rng,
                    &[(PIXELS, 6, Activation::Tanh), (6, s, Activation::Identity)],
                )
            },
            decoders: (0..s).map(|_| layers(&mut rng, &decoder)).collect(),
        })
        .collect();
    TwoLevelSpec {
        model,
        clusters,
        novelty: None,
    }
}

fn images(count: usize, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed);
    (0..count * PIXELS).map(|_| rng.next_u64() as u8).collect()
}

fn f16_bytes() -> Vec<u8> {
    spec(&STYLES)
        .to_bytes()
        .expect("the writer accepts the model")
}

fn int8_bytes() -> Vec<u8> {
    let spec = spec(&STYLES);
    spec.to_int8_bytes(&spec.calibrate(&images(64, 3), 3))
        .expect("the writer accepts the model")
}

/// A network in plain f32.
fn forward(net: &[DenseF32], input: &[f32]) -> Vec<f32> {
    let mut x = input.to_vec();
    let mut y = Vec::new();
    for l in net {
        l.forward(&x, &mut y);
        std::mem::swap(&mut x, &mut y);
    }
    x
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
    let e: Vec<f32> = logits.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b })
}

/// The f32 reference's classification: cluster and its probabilities,
/// style and its probabilities.
fn reference_classify(spec: &TwoLevelSpec, image: &[u8]) -> (Vec<f32>, usize, Vec<f32>, usize) {
    let x: Vec<f32> = image.iter().map(|&p| p as f32 / 255.0).collect();
    let p = softmax(&forward(&spec.model.gate, &x));
    let c = argmax(&p);
    let cluster = &spec.clusters[c];
    let q = if cluster.gate.is_empty() {
        vec![1.0]
    } else {
        softmax(&forward(&cluster.gate, &x))
    };
    let s = argmax(&q);
    (p, c, q, s)
}

fn normal(seed: u64) -> Vec<f32> {
    let mut z = vec![0.0; LATENT];
    SplitMix64::new(seed).fill_normal(&mut z);
    z
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// Whether the largest value of `p` leads the next by `margin`.
fn clear(p: &[f32], margin: f32) -> bool {
    let best = argmax(p);
    p.iter()
        .enumerate()
        .all(|(i, &v)| i == best || p[best] - v > margin)
}

/// Compares a model's classifications and images with the f32 reference
/// `spec`, within `tolerance` on every probability and pixel.
fn check_against(model: &Model<'_>, spec: &TwoLevelSpec, tolerance: f32) {
    let mut ws = Workspace::<64>::new();
    let mut decided = 0;
    for image in images(200, 9).chunks_exact(PIXELS) {
        let got = model.classify(&mut ws, image).unwrap();
        let (p, c, q, s) = reference_classify(spec, image);
        assert!(
            max_diff(&got.probabilities, &p) <= tolerance,
            "{got:?} {p:?}"
        );
        if clear(&p, 2.0 * tolerance) {
            assert_eq!(got.cluster, c);
            assert_eq!(got.label, Some(c as u8));
            assert!(max_diff(&got.style_probabilities, &q) <= tolerance);
            if clear(&q, 2.0 * tolerance) {
                assert_eq!(got.style, s);
                decided += 1;
            }
        }
        assert_eq!(got.style_probabilities.len(), model.styles(got.cluster));
        assert!(got.style < model.styles(got.cluster));
        assert_eq!(got.style_confidence(), got.style_probabilities[got.style]);
    }
    assert!(decided > 50, "only {decided} clear decisions");
    for (c, cluster) in spec.clusters.iter().enumerate() {
        for (s, decoder) in cluster.decoders.iter().enumerate() {
            for seed in 0..20 {
                let want = forward(decoder, &normal(seed));
                let got = model.generate_style(&mut ws, c, s, seed).unwrap();
                assert!(max_diff(got, &want) <= tolerance, "{c} {s} {seed}");
            }
        }
    }
}

#[test]
fn f16_round_trip_computes_the_f32_reference() {
    let bytes = f16_bytes();
    let file = ModelFile::new_checked(&bytes[..]).unwrap();
    assert_eq!(file.version(), TWO_LEVEL_VERSION);
    let model = Model::from_bytes(&bytes).unwrap();
    assert!(model.repr().is_two_level());
    assert_eq!(model.experts(), 3);
    assert_eq!(
        (0..4).map(|c| model.styles(c)).collect::<Vec<_>>(),
        [1, 3, 2, 0]
    );
    assert_eq!(model.repr().style_weight(1, 2), Some(1.0 / 3.0));
    assert_eq!(model.repr().style_weight(1, 3), None);
    assert_eq!(model.repr().extensions().count(), 0);
    // Any index is answered, none panics.
    for c in [3, usize::MAX] {
        assert_eq!(model.styles(c), 0);
        assert!(model.repr().style_gate(c).is_none());
        assert!(model.repr().decoder_of(c, 0).is_none());
        assert_eq!(model.repr().style_weight(c, 0), None);
    }
    assert!(model.repr().decoder_of(1, usize::MAX).is_none());
    assert!(model.style_decoder(0, usize::MAX).is_err());
    // The weights exactly as the file holds them (f16), computed in f32.
    let exact = TwoLevelSpec::from_bytes(&bytes).unwrap();
    assert_eq!(exact.to_bytes().unwrap(), bytes);
    check_against(&model, &exact, 1e-5);
    // And the f32 weights the file was written from, within f16's rounding.
    check_against(&model, &spec(&STYLES), 0.02);
    // Style 0 is what generate gives; a style too many is a typed error.
    let mut ws = Workspace::<64>::new();
    let a = model.generate(&mut ws, 1, 5).unwrap().to_vec();
    assert_eq!(a, model.generate_style(&mut ws, 1, 0, 5).unwrap());
    assert_eq!(
        model.generate_style(&mut ws, 1, 3, 5).unwrap_err(),
        Error::NoSuchStyle {
            cluster: 1,
            style: 3,
            styles: 3
        }
    );
    assert_eq!(
        model.generate_style(&mut ws, 3, 0, 5).unwrap_err(),
        Error::NoSuchExpert {
            expert: 3,
            experts: 3
        }
    );
    let mut px = [0u8; PIXELS];
    model
        .generate_pixels_style(&mut ws, 2, 1, 5, &mut px)
        .unwrap();
    let values = model.generate_style(&mut ws, 2, 1, 5).unwrap();
    let mut want = [0u8; PIXELS];
    engine::to_pixels(values, &mut want);
    assert_eq!(px, want);
    // The parsed view re-emits the file byte for byte.
    let repr = ModelRepr::parse(&bytes).unwrap();
    let mut out = vec![0u8; repr.buffer_len()];
    assert_eq!(repr.emit(&mut out).unwrap(), bytes.len());
    assert_eq!(out, bytes);
    // Every network counts: parameters of the gate, 2 style gates and 6
    // decoders.
    let per_decoder = LATENT * 8 + 8 + 8 * PIXELS + PIXELS;
    let gate = PIXELS * 8 + 8 + 8 * 3 + 3;
    let style_gates = 2 * (PIXELS * 6 + 6) + 6 * 3 + 3 + 6 * 2 + 2;
    assert_eq!(model.parameters(), gate + style_gates + 6 * per_decoder);
}

#[test]
fn int8_round_trip_is_near_the_f32_reference() {
    let bytes = int8_bytes();
    assert_eq!(ModelFile::new_checked(&bytes[..]).unwrap().version(), 3);
    let model = Model::from_bytes(&bytes).unwrap();
    assert_eq!(model.element_type(), engine::ElementType::Int8);
    assert_eq!(model.styles(1), 3);
    // Every style gate is an integer gate: column-major first layer, f32
    // logits from the last.
    for c in [1, 2] {
        let layers: Vec<_> = model.repr().style_gate(c).unwrap().layers().collect();
        let engine::LayerWeights::Int8(first) = layers[0].weights else {
            panic!("f16 layer in an int8 model")
        };
        assert_eq!(first.layout, engine::Layout::ColumnMajor);
        let engine::LayerWeights::Int8(last) = layers[1].weights else {
            panic!("f16 layer in an int8 model")
        };
        assert!(last.requant.is_none());
    }
    check_against(&model, &spec(&STYLES), 0.1);
    let exact = TwoLevelSpec::from_bytes(&bytes).unwrap();
    assert_eq!(exact.clusters.len(), 3);
    assert_eq!(exact.clusters[1].decoders.len(), 3);
}

#[test]
fn flat_models_stay_version_2_byte_for_byte() {
    let flat = spec(&[1, 1, 1]);
    let bytes = flat.to_bytes().unwrap();
    assert_eq!(
        ModelFile::new_checked(&bytes[..]).unwrap().version(),
        FORMAT_VERSION
    );
    let as_model_spec = ModelSpec {
        decoders: flat
            .clusters
            .iter()
            .map(|c| c.decoders[0].clone())
            .collect(),
        ..flat.model.clone()
    };
    assert_eq!(as_model_spec.to_bytes().unwrap(), bytes);
    let cal = flat.calibrate(&images(64, 3), 3);
    let int8 = flat.to_int8_bytes(&cal).unwrap();
    let flat_cal = as_model_spec.calibrate(&images(64, 3), 3);
    assert_eq!(as_model_spec.to_int8_bytes(&flat_cal).unwrap(), int8);
    // A version-2 file read as two-level gives clusters of one style and
    // writes the same bytes again.
    let tiny = engine::testing::tiny_model_bytes();
    let read = TwoLevelSpec::from_bytes(&tiny).unwrap();
    assert!(read.clusters.iter().all(|c| c.decoders.len() == 1));
    assert_eq!(read.to_bytes().unwrap(), &tiny[..]);
    // A flat model answers style 0 with probability 1.
    let model = Model::from_bytes(&tiny).unwrap();
    let c = model
        .classify(&mut Workspace::<784>::new(), &[9u8; 784])
        .unwrap();
    assert_eq!((c.style, &c.style_probabilities[..]), (0, &[1.0][..]));
    assert_eq!(c.style_confidence(), 1.0);
    assert_eq!((model.styles(2), model.styles(usize::MAX)), (1, 0));
    // ModelSpec does not silently drop styles.
    assert!(ModelSpec::from_bytes(&f16_bytes()).is_err());
}

/// `bytes` with the frame's version set to `version` and its checksum
/// recomputed.
fn relabelled(bytes: &[u8], version: u16) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[8..10].copy_from_slice(&version.to_le_bytes());
    refresh(&mut b);
    b
}

fn refresh(b: &mut [u8]) {
    let crc = crc32(&b[format::HEADER_LEN..]);
    b[16..20].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn the_frame_says_which_description_to_read() {
    let v3 = f16_bytes();
    // An engine that reads version 2 only stops at the frame.
    let err = ModelFile::new_checked_up_to(&v3[..], FORMAT_VERSION).unwrap_err();
    assert_eq!(
        err,
        Error::UnsupportedVersion {
            found: 3,
            supported: 2
        }
    );
    assert_eq!(
        err.to_string(),
        "unsupported model format version 3 (this engine reads version 2)"
    );
    // A version-2 file still passes such an engine's frame.
    let tiny = engine::testing::tiny_model_bytes();
    assert!(ModelFile::new_checked_up_to(&tiny[..], FORMAT_VERSION).is_ok());
    // Neither description is read as the other.
    assert!(Model::from_bytes(&relabelled(&v3, 2)).is_err());
    assert!(Model::from_bytes(&relabelled(&tiny, 3)).is_err());
    assert_eq!(
        Model::from_bytes(&relabelled(&v3, 4)).unwrap_err(),
        Error::UnsupportedVersion {
            found: 4,
            supported: 3
        }
    );
}

/// The parts of a parsed two-level file, to edit and emit again.
struct Parts {
    gate: Vec<LayerDesc>,
    weights: Vec<Vec<f32>>,
    style_gates: Vec<Vec<LayerDesc>>,
    decoders: Vec<Vec<Vec<LayerDesc>>>,
}

fn parts(repr: &ModelRepr<'_>) -> Parts {
    let k = repr.header().experts as usize;
    Parts {
        gate: descriptors(repr.gate()).collect(),
        weights: (0..k)
            .map(|c| {
                (0..repr.styles(c))
                    .map(|s| repr.style_weight(c, s).unwrap())
                    .collect()
            })
            .collect(),
        style_gates: (0..k)
            .map(|c| {
                repr.style_gate(c)
                    .map_or(vec![], |g| descriptors(g).collect())
            })
            .collect(),
        decoders: (0..k)
            .map(|c| {
                (0..repr.styles(c))
                    .map(|s| descriptors(repr.decoder_of(c, s).unwrap()).collect())
                    .collect()
            })
            .collect(),
    }
}

fn emit(repr: &ModelRepr<'_>, p: &Parts, extensions: &[Extension<'_>]) -> Vec<u8> {
    let decoders: Vec<Vec<&[LayerDesc]>> = p
        .decoders
        .iter()
        .map(|d| d.iter().map(Vec::as_slice).collect())
        .collect();
    let clusters: Vec<ClusterDesc<'_>> = (0..p.weights.len())
        .map(|c| ClusterDesc {
            style_weights: &p.weights[c],
            gate: &p.style_gates[c],
            decoders: &decoders[c],
        })
        .collect();
    let h = repr.header();
    let len = format::emitted_len_two_level(h, &p.gate, &clusters, extensions, repr.data().len())
        .unwrap();
    let mut out = vec![0u8; len];
    let n =
        format::emit_two_level(h, &p.gate, &clusters, extensions, repr.data(), &mut out).unwrap();
    assert_eq!(n, len);
    out
}

#[test]
fn extension_sections_are_skipped() {
    let bytes = f16_bytes();
    let repr = ModelRepr::parse(&bytes).unwrap();
    let p = parts(&repr);
    assert_eq!(emit(&repr, &p, &[]), bytes);
    let sections = [
        Extension {
            tag: 7,
            bytes: b"novelty?",
        },
        Extension { tag: 9, bytes: &[] },
    ];
    let with = emit(&repr, &p, &sections);
    let model = Model::from_bytes(&with).unwrap();
    assert_eq!(model.repr().extensions().collect::<Vec<_>>(), sections);
    let plain = Model::from_bytes(&bytes).unwrap();
    let mut ws = Workspace::<64>::new();
    for image in images(20, 4).chunks_exact(PIXELS) {
        let a = plain.classify(&mut ws, image).unwrap();
        assert_eq!(model.classify(&mut ws, image).unwrap(), a);
    }
    let mut out = vec![0u8; model.repr().buffer_len()];
    model.repr().emit(&mut out).unwrap();
    assert_eq!(out, with);
    // Tags strictly increase; at most MAX_EXTENSIONS sections.
    let backwards = [sections[1], sections[0]];
    assert_eq!(
        Model::from_bytes(&emit(&repr, &p, &backwards)).unwrap_err(),
        Error::InvalidModel("extension tags not increasing")
    );
    let many: Vec<Extension<'_>> = (0..17).map(|tag| Extension { tag, bytes: &[] }).collect();
    assert!(matches!(
        Model::from_bytes(&emit(&repr, &p, &many)).unwrap_err(),
        Error::Capacity {
            what: "extensions",
            ..
        }
    ));
}

#[test]
fn malformed_clusters_are_typed_errors() {
    let bytes = f16_bytes();
    let repr = ModelRepr::parse(&bytes).unwrap();
    let check = |edit: &dyn Fn(&mut Parts), expected: Error| {
        let mut p = parts(&repr);
        edit(&mut p);
        assert_eq!(
            Model::from_bytes(&emit(&repr, &p, &[])).unwrap_err(),
            expected
        );
    };
    check(
        &|p| {
            p.weights[0].clear();
            p.decoders[0].clear();
        },
        Error::InvalidModel("cluster has no styles"),
    );
    check(
        &|p| {
            p.weights[1] = vec![0.1; 17];
            let d = p.decoders[1][0].clone();
            p.decoders[1] = vec![d; 17];
        },
        Error::Capacity {
            what: "styles",
            needed: 17,
            max: 16,
        },
    );
    check(
        &|p| {
            p.decoders[1].pop();
        },
        Error::InvalidModel("decoder count differs from style count"),
    );
    check(
        &|p| p.style_gates[0] = p.style_gates[2].clone(),
        Error::InvalidModel("style gate on a cluster of one style"),
    );
    check(
        &|p| p.style_gates[2].clear(),
        Error::InvalidModel("network has no layers"),
    );
    // A style gate with as many outputs as another cluster's styles.
    check(
        &|p| p.style_gates[1] = p.style_gates[2].clone(),
        Error::InvalidModel("network output width is wrong"),
    );
    check(
        &|p| {
            p.weights.pop();
            p.style_gates.pop();
            p.decoders.pop();
        },
        Error::InvalidModel("cluster count differs from expert count"),
    );
    check(
        &|p| p.style_gates[1][0].inputs = 15,
        Error::InvalidModel("weight tensor length does not match its shape"),
    );
    // Mixing element types across networks.
    let int8 = int8_bytes();
    let int8_repr = ModelRepr::parse(&int8).unwrap();
    let int8_parts = parts(&int8_repr);
    // (its tensors may lie outside this file's data section: either way an
    // InvalidModel)
    let mut p = parts(&repr);
    p.style_gates[1] = int8_parts.style_gates[1].clone();
    assert!(matches!(
        Model::from_bytes(&emit(&repr, &p, &[])).unwrap_err(),
        Error::InvalidModel(_)
    ));
}

/// Runs everything a model offers on its every cluster and style.
fn exercise(model: &Model<'_>) {
    let mut ws = Workspace::<64>::new();
    if model.workspace_len() > 64 || model.pixels() != PIXELS || model.latent() > 64 {
        return;
    }
    for image in images(4, 1).chunks_exact(PIXELS) {
        if let Ok(c) = model.classify(&mut ws, image) {
            assert!(c.cluster < model.experts());
            assert!(c.style < model.styles(c.cluster));
        }
    }
    for c in 0..model.experts() {
        for s in 0..model.styles(c) {
            let _ = model.generate_style(&mut ws, c, s, 1);
        }
    }
}

#[test]
fn every_truncation_and_byte_change_is_an_error_or_a_safe_model() {
    for bytes in [f16_bytes(), int8_bytes()] {
        for n in 0..bytes.len() {
            assert!(Model::from_bytes(&bytes[..n]).is_err());
            // Also truncations that keep a valid frame (body length and
            // checksum rewritten), so the description itself is cut.
            if n >= format::HEADER_LEN {
                let mut cut = bytes[..n].to_vec();
                cut[12..16].copy_from_slice(&((n - format::HEADER_LEN) as u32).to_le_bytes());
                refresh(&mut cut);
                if let Ok(model) = Model::from_bytes(&cut) {
                    exercise(&model);
                }
            }
        }
        let mut accepted = 0;
        for at in format::HEADER_LEN..bytes.len() {
            for change in [0x01u8, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[at] ^= change;
                // The checksum catches the change ...
                assert!(Model::from_bytes(&bad).is_err());
                // ... and behind a valid one the description is checked.
                refresh(&mut bad);
                if let Ok(model) = Model::from_bytes(&bad) {
                    accepted += 1;
                    exercise(&model);
                }
            }
        }
        assert!(accepted > 0);
    }
}
