//! The novelty section (`FORMAT.md`, *Novelty*): the score against a plain
//! f32 reference, the round trip through the writer, the version rules
//! (older files report no score) and typed errors for bad sections.

use engine::format::{Gaussians, ModelFile, NoveltyDesc, NOVELTY_TAG};
use engine::rng::SplitMix64;
use engine::writer::{DenseF32, NoveltySpec, TwoLevelSpec};
use engine::Activation::{Identity, Relu};
use engine::{Error, Model, ModelRepr, Novelty, Workspace};

const GATE: &[(usize, usize, engine::Activation)] =
    &[(784, 64, Relu), (64, 32, Relu), (32, 4, Identity)];
const DECODER: &[(usize, usize, engine::Activation)] = &[(3, 784, engine::Activation::Sigmoid)];

/// Images: blobs of ink at random places, so that the gate's hidden layer
/// sees something like strokes.
fn images(count: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = SplitMix64::new(seed);
    (0..count)
        .map(|_| {
            let mut img = vec![0u8; 784];
            let (cx, cy) = (rng.next_unit() * 20.0 + 4.0, rng.next_unit() * 20.0 + 4.0);
            let r = rng.next_unit() * 6.0 + 2.0;
            for (i, p) in img.iter_mut().enumerate() {
                let (x, y) = ((i % 28) as f32, (i / 28) as f32);
                if (x - cx).powi(2) + (y - cy).powi(2) < r * r {
                    *p = (155.0 + rng.next_unit() * 100.0) as u8;
                }
            }
            img
        })
        .collect()
}

/// The gate's last hidden layer and its softmax, in plain f32.
fn reference_gate(gate: &[DenseF32], image: &[u8]) -> (Vec<f32>, Vec<f32>) {
    let mut x: Vec<f32> = image.iter().map(|&p| p as f32 / 255.0).collect();
    let mut out = Vec::new();
    let mut hidden = Vec::new();
    for (i, layer) in gate.iter().enumerate() {
        if i + 1 == gate.len() {
            hidden = x.clone();
        }
        layer.forward(&x, &mut out);
        std::mem::swap(&mut x, &mut out);
    }
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = x.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    (hidden, exp.iter().map(|e| e / sum).collect())
}

/// The trainer's calibration in miniature: per cluster (the gate's argmax)
/// the mean and variance of each hidden unit, a threshold per cluster at
/// the 90th percentile of its distances, the doubt's at the 90th.
fn fitted(gate: &[DenseF32], train: &[Vec<u8>]) -> NoveltySpec {
    let k = gate.last().unwrap().outputs;
    let rows: Vec<(Vec<f32>, Vec<f32>)> = train.iter().map(|i| reference_gate(gate, i)).collect();
    let argmax = |p: &[f32]| engine::kernels::argmax(p);
    let units = rows[0].0.len();
    let (mut means, mut vars) = (vec![vec![0.0f32; units]; k], vec![vec![0.0f32; units]; k]);
    for c in 0..k {
        let members: Vec<&Vec<f32>> = rows
            .iter()
            .filter(|r| argmax(&r.1) == c)
            .map(|r| &r.0)
            .collect();
        let n = members.len().max(1) as f32;
        for j in 0..units {
            let m = members.iter().map(|h| h[j]).sum::<f32>() / n;
            means[c][j] = m;
            vars[c][j] = (members.iter().map(|h| (h[j] - m).powi(2)).sum::<f32>() / n).max(1e-3);
        }
    }
    let ones = vec![1.0f32; k];
    let raw = NoveltySpec::from_gaussians(&means, &vars, &ones, 1.0);
    let pct = |mut v: Vec<f32>| {
        v.sort_by(f32::total_cmp);
        v.get((v.len() * 9) / 10).copied().unwrap_or(1.0).max(1e-3)
    };
    let thresholds: Vec<f32> = (0..k)
        .map(|c| {
            pct(rows
                .iter()
                .filter(|r| argmax(&r.1) == c)
                .map(|r| raw.distance(c, &r.0))
                .collect())
        })
        .collect();
    let doubt = pct(rows.iter().map(|r| 1.0 - r.1[argmax(&r.1)]).collect()).min(1.0);
    NoveltySpec::from_gaussians(&means, &vars, &thresholds, doubt)
}

fn spec_with_novelty() -> TwoLevelSpec {
    let model = engine::testing::random_spec(GATE, DECODER, 4, 7);
    let novelty = fitted(&model.gate, &images(400, 1));
    let mut spec = TwoLevelSpec::from(model);
    spec.novelty = Some(novelty);
    spec
}

fn int8_bytes(spec: &TwoLevelSpec) -> Vec<u8> {
    let calibration: Vec<u8> = images(200, 3).concat();
    spec.to_int8_bytes(&spec.calibrate(&calibration, 5))
        .unwrap()
}

fn novelty_of(bytes: &[u8], image: &[u8]) -> Option<Novelty> {
    let model = Model::from_bytes(bytes).unwrap();
    let mut ws = Workspace::<784>::new();
    model.classify(&mut ws, image).unwrap().novelty
}

#[test]
fn a_flat_model_with_a_section_is_version_3_and_scores_like_the_reference() {
    let spec = spec_with_novelty();
    let bytes = spec.to_bytes().unwrap();
    let repr = ModelRepr::parse(&bytes).unwrap();
    assert_eq!(
        repr.version(),
        3,
        "the section needs the version-3 description"
    );
    assert_eq!(
        repr.extensions().map(|e| e.tag).collect::<Vec<_>>(),
        [NOVELTY_TAG]
    );
    let section = repr.novelty().unwrap();
    assert_eq!(section.units, 32);
    assert!(matches!(section.gaussians, Gaussians::F32 { .. }));

    // The f16 file's weights, exactly, as the reference's.
    let read = TwoLevelSpec::from_bytes(&bytes).unwrap();
    let novelty = read.novelty.as_ref().unwrap();
    assert_eq!(
        novelty,
        spec.novelty.as_ref().unwrap(),
        "f32 values round-trip exactly"
    );
    let (mut known, mut novel) = (0, 0);
    for image in images(200, 2)
        .iter()
        .chain(&[vec![0u8; 784], vec![255u8; 784]])
    {
        let got = novelty_of(&bytes, image).unwrap();
        let (hidden, p) = reference_gate(&read.model.gate, image);
        let want = novelty.novelty(&p, &hidden);
        // The engine sums layers in another order than the plain reference.
        let close = |a: f32, b: f32| (a - b).abs() <= 1e-3 * a.abs().max(b.abs()).max(1.0);
        assert!(close(got.distance, want.distance), "{got:?} vs {want:?}");
        assert!(close(got.doubt, want.doubt), "{got:?} vs {want:?}");
        assert_eq!(got.score, got.distance.max(got.doubt));
        assert_eq!(got.known, got.score <= 1.0);
        if got.known {
            known += 1
        } else {
            novel += 1
        }
    }
    // Thresholds at the 90th percentile of images like these: most known.
    eprintln!("{known} known, {novel} novel");
    assert!(known > 150 && novel > 0, "{known} known, {novel} novel");
    // A blank frame and a full one are far from every blob cluster.
    assert!(!novelty_of(&bytes, &[255u8; 784]).unwrap().known);
}

#[test]
fn int8_scores_agree_with_f32_within_the_stated_tolerance() {
    let spec = spec_with_novelty();
    let f16 = spec.to_bytes().unwrap();
    let int8 = int8_bytes(&spec);
    let repr = ModelRepr::parse(&int8).unwrap();
    assert!(matches!(
        repr.novelty().unwrap().gaussians,
        Gaussians::Int8 { .. }
    ));
    let test = images(300, 9);
    let (mut same_known, mut errors) = (0, Vec::new());
    for image in &test {
        let a = novelty_of(&f16, image).unwrap();
        let b = novelty_of(&int8, image).unwrap();
        same_known += usize::from(a.known == b.known);
        errors.push((a.score - b.score).abs() / a.score.max(1.0));
    }
    errors.sort_by(f32::total_cmp);
    let median = errors[errors.len() / 2];
    eprintln!(
        "int8 vs f16: median relative error {median}, {same_known} of {} agree on known",
        test.len()
    );
    assert!(median < 0.05, "median relative error {median}");
    assert!(
        same_known * 100 >= 95 * test.len(),
        "{same_known} of {} agree",
        test.len()
    );
    // Dequantized, the section is close to the f32 one it came from.
    let back = TwoLevelSpec::from_bytes(&int8).unwrap().novelty.unwrap();
    assert_eq!(back.means.len(), 4);
    assert_eq!(
        back.doubt_threshold,
        spec.novelty.as_ref().unwrap().doubt_threshold
    );
    // And writing it again gives the same file.
    let again = TwoLevelSpec::from_bytes(&int8).unwrap();
    let calibration: Vec<u8> = images(200, 3).concat();
    let rewritten = again
        .to_int8_bytes(&again.calibrate(&calibration, 5))
        .unwrap();
    assert_eq!(
        ModelRepr::parse(&rewritten)
            .unwrap()
            .novelty()
            .unwrap()
            .units,
        32
    );
}

#[test]
fn files_without_a_section_report_no_score() {
    let spec = spec_with_novelty();
    let flat = TwoLevelSpec {
        novelty: None,
        ..spec.clone()
    };
    let v2 = flat.to_bytes().unwrap();
    assert_eq!(ModelRepr::parse(&v2).unwrap().version(), 2);
    assert_eq!(novelty_of(&v2, &images(1, 4)[0]), None);
    // Shipped files written before the section existed.
    for name in ["digits8x8.bin", "small-int8.bin", "tiny8x8.bin"] {
        let path = format!(
            "{}/../firmware-example/models/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&path).unwrap();
        let model = Model::from_bytes(&bytes).unwrap();
        let image = vec![0u8; model.pixels()];
        assert_eq!(novelty_of(&bytes, &image), None, "{name}");
    }
}

/// `bytes` with the novelty section's description replaced by `f(desc)`
/// (which must encode to the same length) and the checksum fixed.
fn tampered(bytes: &[u8], f: impl Fn(&mut NoveltyDesc)) -> Vec<u8> {
    let repr = ModelRepr::parse(bytes).unwrap();
    let section = repr.extensions().find(|e| e.tag == NOVELTY_TAG).unwrap();
    let at = section.bytes.as_ptr() as usize - bytes.as_ptr() as usize;
    let mut desc: NoveltyDesc = postcard::from_bytes(section.bytes).unwrap();
    f(&mut desc);
    let encoded = postcard::to_allocvec(&desc).unwrap();
    assert_eq!(encoded.len(), section.bytes.len(), "same length");
    let mut out = bytes.to_vec();
    out[at..at + encoded.len()].copy_from_slice(&encoded);
    fix_checksum(&mut out);
    out
}

fn fix_checksum(bytes: &mut [u8]) {
    let crc = engine::crc32(&bytes[engine::format::HEADER_LEN..]);
    bytes[16..20].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn the_shipped_default_models_carry_a_section() {
    for name in [
        "default.bin",
        "default-int8.bin",
        "hierarchical.bin",
        "hierarchical-int8.bin",
    ] {
        let path = format!(
            "{}/../firmware-example/models/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&path).unwrap();
        let repr = ModelRepr::parse(&bytes).unwrap();
        assert_eq!(repr.novelty().map(|s| s.units), Some(256), "{name}");
        // A blank frame is not a digit; noise neither.
        assert!(
            !novelty_of(&bytes, &[0u8; 784]).unwrap().known,
            "{name}: blank"
        );
        let mut rng = SplitMix64::new(5);
        let noise: Vec<u8> = (0..784).map(|_| (rng.next_unit() * 255.0) as u8).collect();
        assert!(!novelty_of(&bytes, &noise).unwrap().known, "{name}: noise");
    }
}

/// The one message for values that break the section's rules.
const VALUES: &str = "novelty values out of range (means finite, or in the hidden layer's codes; weights and scales finite, not negative)";

#[test]
fn bad_sections_are_typed_errors() {
    let spec = spec_with_novelty();
    let bytes = spec.to_bytes().unwrap();
    let invalid = |b: &[u8]| match Model::from_bytes(b) {
        Err(Error::InvalidModel(what)) => what,
        other => panic!("expected InvalidModel, got {other:?}"),
    };
    assert_eq!(
        invalid(&tampered(&bytes, |d| d.units = 33)),
        "novelty units differ from the gate's last hidden layer"
    );
    assert_eq!(
        invalid(&tampered(&bytes, |d| d.doubt_threshold = 0.0)),
        "novelty doubt threshold outside (0, 1]"
    );
    assert_eq!(
        invalid(&tampered(&bytes, |d| d.doubt_threshold = f32::NAN)),
        "novelty doubt threshold outside (0, 1]"
    );
    // Values the writer refuses to write (it parses what it wrote).
    let mut nan = spec.clone();
    nan.novelty.as_mut().unwrap().means[1][3] = f32::NAN;
    assert!(matches!(nan.to_bytes(), Err(Error::InvalidModel(VALUES))));
    let mut negative = spec.clone();
    negative.novelty.as_mut().unwrap().weights[0][0] = -1.0;
    assert!(matches!(
        negative.to_bytes(),
        Err(Error::InvalidModel(VALUES))
    ));
    let mut short = spec.clone();
    short.novelty.as_mut().unwrap().means.pop();
    assert!(matches!(short.to_bytes(), Err(Error::Unrepresentable(_))));
    // A gate of one layer has no hidden layer to score.
    let mut shallow = TwoLevelSpec::from(engine::testing::random_spec(
        &[(784, 4, Identity)],
        DECODER,
        4,
        1,
    ));
    shallow.novelty = spec.novelty.clone();
    assert!(matches!(shallow.to_bytes(), Err(Error::Unrepresentable(_))));
    // An int8 file's means beyond its codes.
    let int8 = int8_bytes(&spec);
    let repr = ModelRepr::parse(&int8).unwrap();
    let Gaussians::Int8 { means, .. } = repr.novelty().unwrap().gaussians else {
        panic!("int8 section");
    };
    let at = means.as_ptr() as usize - int8.as_ptr() as usize;
    let mut out = int8.clone();
    out[at..at + 2].copy_from_slice(&(-1i16).to_le_bytes());
    fix_checksum(&mut out);
    assert_eq!(invalid(&out), VALUES);
}

#[test]
fn every_corrupted_section_byte_is_an_error_or_a_model_that_classifies() {
    for bytes in [
        spec_with_novelty().to_bytes().unwrap(),
        int8_bytes(&spec_with_novelty()),
    ] {
        let repr = ModelRepr::parse(&bytes).unwrap();
        let section = repr.extensions().find(|e| e.tag == NOVELTY_TAG).unwrap();
        let at = section.bytes.as_ptr() as usize - bytes.as_ptr() as usize;
        let image = &images(1, 11)[0];
        for i in at..at + section.bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                fix_checksum(&mut b);
                assert!(ModelFile::new_checked(&b[..]).is_ok());
                if let Ok(model) = Model::from_bytes(&b) {
                    let mut ws = Workspace::<784>::new();
                    let c = model.classify(&mut ws, image).unwrap();
                    assert!(c.novelty.is_none_or(|n| n.known == (n.score <= 1.0)));
                }
            }
        }
    }
}
