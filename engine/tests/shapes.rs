//! `writer::ModelShape::check` against the engine itself: a shape passes
//! the check with a workspace of length N exactly when the writer writes
//! it (with f16 and with int8 weights) and every call of both models runs
//! in a `Workspace<N>`; and the check's workspace need is the parser's.

use engine::host::{self, HostError};
use engine::rng::SplitMix64;
use engine::writer::{ModelShape, ModelSpec, ShapeError};
use engine::{Activation, ElementType, Error, ImageShape, Model, Workspace};
use proptest::prelude::*;

/// The workspace of the property test.
const N: usize = 64;

/// Images with about a third of their pixels blank.
fn images(count: usize, pixels: usize, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed);
    (0..count * pixels)
        .map(|_| match rng.next_u64() {
            r if r % 3 == 0 => 0,
            r => (r >> 8) as u8,
        })
        .collect()
}

/// A spec of `shape` with seeded weights: hidden activations drawn from
/// all four, logits by identity, pixels by sigmoid.
fn spec_of(shape: &ModelShape, seed: u64) -> ModelSpec {
    let mut rng = SplitMix64::new(seed);
    let mut with = |layers: Vec<(usize, usize)>, last: Activation| {
        let n = layers.len();
        let all = [
            Activation::Relu,
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Identity,
        ];
        layers
            .into_iter()
            .enumerate()
            .map(|(i, (inputs, outputs))| {
                let activation = if i + 1 == n {
                    last
                } else {
                    all[(rng.next_u64() % 4) as usize]
                };
                (inputs, outputs, activation)
            })
            .collect::<Vec<_>>()
    };
    let gate = with(shape.gate_layers(), Activation::Identity);
    let decoder = with(shape.decoder_layers(), Activation::Sigmoid);
    let mut spec = engine::testing::random_spec(&gate, &decoder, shape.experts, seed);
    spec.image = shape.image;
    spec
}

/// Every call of `model` in a `Workspace<W>`, on `images`.
fn run_all<const W: usize>(model: &Model<'_>, images: &[u8]) -> Result<(), Error> {
    let mut ws = Box::new(Workspace::<W>::new());
    let p = model.pixels();
    for image in images.chunks_exact(p) {
        model.classify(&mut ws, image)?;
        let values: Vec<f32> = image.iter().map(|&v| v as f32 / 255.0).collect();
        model.classify_f32(&mut ws, &values)?;
    }
    let z: Vec<f32> = (0..model.latent()).map(|i| i as f32 * 0.25 - 1.0).collect();
    let mut px = vec![0u8; p];
    for k in 0..model.experts() {
        model.generate(&mut ws, k, k as u64)?;
        model.generate_pixels(&mut ws, k, k as u64, &mut px)?;
        model.decode(&mut ws, k, &z)?;
        model.decode_pixels(&mut ws, k, &z, &mut px)?;
    }
    Ok(())
}

/// Writes `shape` with f16 and int8 weights and runs both models whole in a
/// `Workspace<W>`; the first failure, named. Whenever a model is written,
/// its workspace need is the shape's.
fn write_and_run<const W: usize>(shape: &ModelShape, seed: u64) -> Result<(), String> {
    let spec = spec_of(shape, seed);
    let images = images(3, shape.image.pixels(), seed);
    let f16 = spec.to_bytes().map_err(|e| format!("f16 writer: {e}"))?;
    let int8 = spec
        .to_int8_bytes(&spec.calibrate(&images, seed))
        .map_err(|e| format!("int8 writer: {e}"))?;
    for (element, bytes) in [(ElementType::F16, f16), (ElementType::Int8, int8)] {
        let model = Model::from_bytes(&bytes).map_err(|e| format!("parser: {e}"))?;
        assert_eq!(model.element_type(), element);
        assert_eq!(
            model.workspace_len(),
            shape.workspace_len(element),
            "{element:?} {shape:?}"
        );
        run_all::<W>(&model, &images).map_err(|e| format!("{element:?} run: {e}"))?;
    }
    Ok(())
}

/// The check's verdict equals the engine's, and a workspace refusal is the
/// engine's workspace error.
fn agrees<const W: usize>(shape: &ModelShape, seed: u64) {
    let check = shape.check(W);
    let engine = write_and_run::<W>(shape, seed);
    assert_eq!(
        check.is_ok(),
        engine.is_ok(),
        "{shape:?}: check says {check:?}, the engine {engine:?}"
    );
    if let Err(ShapeError::Workspace { .. }) = check {
        let engine = engine.unwrap_err();
        assert!(
            engine.contains("workspace too small"),
            "{shape:?}: {engine}"
        );
    }
}

fn width() -> impl Strategy<Value = usize> {
    prop_oneof![6 => 1..=8usize, 3 => (N - 2)..=(N + 2), 1 => Just(0)]
}

/// Hidden widths: up to 3 layers, sometimes 4 (a network of 5 layers).
fn hidden() -> impl Strategy<Value = Vec<usize>> {
    use proptest::collection::vec;
    prop_oneof![9 => vec(width(), 0..=3), 1 => vec(width(), 4)]
}

fn shape() -> impl Strategy<Value = ModelShape> {
    (
        prop_oneof![9 => (1..=9u16, 1..=9u16), 1 => (0..=1u16, 0..=9u16)],
        prop_oneof![6 => 1..=4usize, 3 => (N - 2)..=(N + 2), 1 => Just(0)],
        prop_oneof![8 => 1..=3usize, 1 => Just(16), 1 => prop_oneof![Just(0), Just(17)]],
        hidden(),
        hidden(),
    )
        .prop_map(
            |((width, height), latent, experts, gate_hidden, decoder_hidden)| ModelShape {
                image: ImageShape { width, height },
                latent,
                experts,
                gate_hidden,
                decoder_hidden,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn check_accepts_exactly_what_the_engine_writes_and_runs(s in shape(), seed in 0..1000u64) {
        agrees::<N>(&s, seed);
    }
}

fn small(image: (u16, u16), latent: usize, gate: &[usize], decoder: &[usize]) -> ModelShape {
    ModelShape {
        image: ImageShape {
            width: image.0,
            height: image.1,
        },
        latent,
        experts: 2,
        gate_hidden: gate.to_vec(),
        decoder_hidden: decoder.to_vec(),
    }
}

#[test]
fn the_boundaries_of_a_small_workspace_hold() {
    let accepted = [
        small((8, 8), 2, &[N], &[3]),
        small((8, 8), N, &[3], &[N]),
        small((4, 4), 2, &[5, N, 5], &[N, 1, N]),
        small((8, 8), 2, &[1, 1, 1], &[1, 1, 1]),
    ];
    for s in &accepted {
        assert_eq!(s.check(N), Ok(()), "{s:?}");
    }
    let refused = [
        small((8, 8), 2, &[N + 1], &[3]),
        small((8, 8), N + 1, &[3], &[3]),
        small((4, 4), 2, &[3], &[N + 1]),
        small((5, 13), 2, &[3], &[3]),
        small((8, 8), 2, &[1, 1, 1, 1], &[3]),
        small((8, 8), 2, &[3], &[1, 1, 1, 1]),
    ];
    for s in &refused {
        assert!(s.check(N).is_err(), "{s:?}");
    }
    for (seed, s) in accepted.iter().chain(&refused).enumerate() {
        agrees::<N>(s, seed as u64);
    }
}

#[test]
fn int8_models_classify_f32_images_up_to_the_limit() {
    const W: usize = 2048;
    let at = small((32, 32), 2, &[4], &[4]);
    let over = small((25, 41), 2, &[4], &[4]);
    assert_eq!(at.check(W), Ok(()));
    assert_eq!(over.check(W), Err(ShapeError::F32Image { pixels: 1025 }));
    agrees::<W>(&at, 1);
    let engine = write_and_run::<W>(&over, 2).unwrap_err();
    assert!(
        engine.starts_with("Int8 run: model exceeds engine capacity: pixels of an f32 image"),
        "{engine}"
    );
}

/// The host's workspace holds a layer exactly [`host::WORKSPACE_LEN`] wide,
/// f16 or (the gate's first layer, by columns) int8, and not one wider.
#[test]
fn the_host_workspace_boundary_holds() {
    let len = host::WORKSPACE_LEN;
    let shape = |gate: usize, decoder: usize| ModelShape {
        image: ImageShape {
            width: 28,
            height: 28,
        },
        latent: 2,
        experts: 1,
        gate_hidden: vec![gate],
        decoder_hidden: vec![decoder],
    };
    let digits = images(2, 784, 3);
    for (gate, decoder) in [(len, 8), (8, len)] {
        let s = shape(gate, decoder);
        assert_eq!(s.check(len), Ok(()));
        let spec = spec_of(&s, 4);
        let mut files = vec![spec.to_bytes().unwrap()];
        if decoder == 8 {
            files.push(spec.to_int8_bytes(&spec.calibrate(&digits, 4)).unwrap());
        }
        for bytes in &files {
            let model = host::parse(bytes).unwrap();
            assert_eq!(model.workspace_len(), len);
            assert_eq!(host::predict(&model, &digits).unwrap().len(), 2);
            assert_eq!(host::sample_tiles(&model, 1, 0).unwrap().len(), 1);
        }

        let wider = shape(gate + gate / len, decoder + decoder / len);
        let err = wider.check(len).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a layer 4097 wide needs a workspace of 4097 values; the workspace holds 4096"
        );
        let bytes = spec_of(&wider, 5).to_bytes().unwrap();
        let err = host::parse(&bytes).unwrap_err();
        assert_eq!(err, HostError::TooWide { needed: len + 1 });
        assert_eq!(
            err.to_string(),
            "model needs a workspace of 4097 values; the engine's host workspace holds 4096"
        );
    }
}

/// Layers one unit wide, whose unit the calibration may never see active
/// (a dead ReLU): the int8 writer still writes them (found by the property
/// test above).
#[test]
fn layers_dead_on_calibration_are_written() {
    for (hidden, seed) in [(vec![8, 1, 1], 385), (vec![60, 1, 3], 0)] {
        let shape = ModelShape {
            image: ImageShape {
                width: 1,
                height: 1,
            },
            latent: N,
            experts: 1,
            gate_hidden: vec![],
            decoder_hidden: hidden,
        };
        assert_eq!(shape.check(N), Ok(()));
        for seed in seed..seed + 20 {
            agrees::<N>(&shape, seed);
        }
    }
}
