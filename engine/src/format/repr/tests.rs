use super::*;
use crate::format::{emit, emitted_len, Layout, Method};
use crate::{Model, Workspace};

/// A complete version-2 file written out by hand: a 2×1 image, one expert,
/// latent 1, int8 weights. The gate is one column-major layer 2 → 1 with
/// `f32` logits; the decoder one row-major ReLU layer 1 → 2 with
/// requantization.
#[rustfmt::skip]
static TINY: [u8; 184] = [
    b'M', b'o', b'V', b'A', b'E', b'\r', b'\n', 0x1a, // magic
    0x02, 0x00, 0x00, 0x00, // version 2, reserved
    164, 0x00, 0x00, 0x00, // body length
    0x77, 0x21, 0x5b, 0x0f, // crc32 of the body
    // -- description (59 bytes) --
    0x00, // method: MixtureOfVaes
    0x02, 0x01, // image 2 × 1
    0x01, 0x01, // experts 1, latent 1
    0x00, // likelihood: Bernoulli
    0x01, 0x00, 0x00, 0x80, 0x3f, // mixture weights [1.0]
    0x01, 0x01, 0x07, // label map Some([7])
    0x01, b't', // provenance "t"
    0x01, // gate: one layer
    0x02, 0x01, 0x00, // 2 -> 1, Identity
    0x01, 0x01, // Int8, ColumnMajor
    0x00, 0x02, // weights at 0, 2 bytes
    0x10, 0x04, // scales at 16, 4 bytes
    0x20, 0x04, // bias at 32, 4 bytes
    0x81, 0x80, 0x80, 0x3b, // input scale 1/255
    0x00, // requant: None (f32 logits)
    0x01, 0x01, // one decoder of one layer
    0x01, 0x02, 0x01, // 1 -> 2, Relu
    0x01, 0x00, // Int8, RowMajor
    0x30, 0x02, // weights at 48, 2 bytes
    0x40, 0x08, // scales at 64, 8 bytes
    0x50, 0x08, // bias at 80, 8 bytes
    0x00, 0x00, 0x00, 0x3f, // input scale 0.5
    0x01, 0x60, 0x08, // requant: multipliers at 96, 8 bytes
    0x1f, // shift 31
    0x00, 0x00, 0x00, 0x3e, // output scale 0.125
    0x00, // no table
    0x00, // padding to file offset 80
    // -- data section (104 bytes) --
    0x01, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // gate weights [1, -1]
    0x00, 0x00, 0x00, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // gate scales [0.5]
    0x0a, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // gate bias [10]
    0x02, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // decoder weights [2, -3]
    0x00, 0x00, 0x80, 0x3e, 0x00, 0x00, 0x80, 0x3e, 0, 0, 0, 0, 0, 0, 0, 0, // scales [¼, ¼]
    0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, // bias [0, 1]
    0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x20, // multipliers [2^30, 2^29]
];

/// `TINY` with its body edited and the checksum fixed, so that the decoder
/// and the validation (not the CRC) see the change.
fn with_body(edit: impl FnOnce(&mut [u8])) -> [u8; 184] {
    let mut b = TINY;
    edit(&mut b[20..]);
    ModelFile::new_unchecked(&mut b[..]).fill_frame(164);
    b
}

#[test]
fn parses_literal_file() {
    let repr = ModelRepr::parse(&TINY).unwrap();
    let h = repr.header();
    assert_eq!(h.method, Method::MixtureOfVaes);
    assert_eq!(
        (h.image.width, h.image.height, h.experts, h.latent),
        (2, 1, 1, 1)
    );
    assert_eq!(h.label_map.as_deref(), Some(&[7u8][..]));
    assert_eq!(repr.element_type(), ElementType::Int8);
    let g = repr.gate().layers().next().unwrap();
    assert_eq!(
        (g.inputs, g.outputs, g.activation),
        (2, 1, Activation::Identity)
    );
    let LayerWeights::Int8(q) = g.weights else {
        panic!("int8 gate")
    };
    assert_eq!(q.layout, Layout::ColumnMajor);
    assert_eq!(q.requant, None);
    // Dequantized: code · scale, bias · scale · input scale.
    assert_eq!((g.weight(0, 0), g.weight(0, 1)), (0.5, -0.5));
    assert_eq!(g.bias(0), 10.0 * 0.5 / 255.0);
    let d = repr.decoder(0).unwrap().layers().next().unwrap();
    assert_eq!((d.weight(0, 0), d.weight(1, 0)), (0.5, -0.75));
    let LayerWeights::Int8(q) = d.weights else {
        panic!("int8 decoder")
    };
    let r = q.requant.unwrap();
    assert_eq!((r.shift, r.output_scale, r.table), (31, 0.125, None));
    assert_eq!(repr.parameters(), 3 + 4);
    assert_eq!(repr.max_width(), 2);
    assert_eq!(repr.data().len(), 104);
}

#[test]
fn emits_literal_file() {
    let repr = ModelRepr::parse(&TINY).unwrap();
    assert_eq!(repr.buffer_len(), TINY.len());
    let mut out = [0u8; 184];
    assert_eq!(repr.emit(&mut out).unwrap(), 184);
    assert_eq!(out, TINY);
    assert!(repr.emit(&mut [0u8; 100]).is_err());
    // From the parts, as the writer emits.
    let gate: heapless::Vec<LayerDesc, 4> = descriptors(repr.gate()).collect();
    let dec: heapless::Vec<LayerDesc, 4> = descriptors(repr.decoder(0).unwrap()).collect();
    let mut out = [0u8; 184];
    let n = emit(repr.header(), &gate, &[&dec[..]], repr.data(), &mut out).unwrap();
    assert_eq!((n, out), (184, TINY));
    assert_eq!(
        emitted_len(repr.header(), &gate, &[&dec[..]], 104).unwrap(),
        184
    );
}

#[test]
fn computes_the_documented_arithmetic() {
    let model = Model::from_bytes(&TINY).unwrap();
    let mut ws = Workspace::<2>::new();
    // Gate: sum = 10 + 1·255 − 1·0 = 265; logit = 265 · 0.5 · (1/255).
    let c = model.classify(&mut ws, &[255, 0]).unwrap();
    assert_eq!((c.cluster, c.label, c.confidence()), (0, Some(7), 1.0));
    // Decoder, z = 1.0: code floor(1/0.5 + 0.5) = 2; sums 0 + 2·2 = 4 and
    // 1 − 3·2 = −5; (4·2^30 + 2^30) >> 31 = 2, (−5·2^29 + 2^30) >> 31 = −1
    // → ReLU 0; values 2 · 0.125 and 0.
    assert_eq!(model.decode(&mut ws, 0, &[1.0]).unwrap(), &[0.25, 0.0]);
    let mut px = [9u8; 2];
    model.decode_pixels(&mut ws, 0, &[1.0], &mut px).unwrap();
    assert_eq!(px, [64, 0]);
    assert_eq!(model.workspace_len(), 1);
}

#[test]
fn rejects_inconsistent_bodies() {
    let body = |at: usize, v: u8| with_body(|b| b[at] = v);
    // K = 0
    assert_eq!(
        ModelRepr::parse(&body(3, 0)).unwrap_err(),
        Error::InvalidModel("model has no experts")
    );
    // K = 17
    assert!(matches!(
        ModelRepr::parse(&body(3, 17)).unwrap_err(),
        Error::Capacity {
            what: "experts",
            ..
        }
    ));
    // gate output width 2: does not match K (and its tensors)
    assert!(matches!(
        ModelRepr::parse(&body(18, 2)),
        Err(Error::InvalidModel(_))
    ));
    // unknown activation
    assert_eq!(
        ModelRepr::parse(&body(19, 9)).unwrap_err(),
        Error::Malformed
    );
    // five layers in the gate
    assert!(matches!(
        ModelRepr::parse(&body(16, 5)).unwrap_err(),
        Error::Capacity { what: "layers", .. } | Error::Malformed
    ));
    // gate scales at offset 17: misaligned 32-bit tensor
    assert_eq!(
        ModelRepr::parse(&body(24, 0x11)).unwrap_err(),
        Error::InvalidModel("32-bit tensor not 4-byte aligned")
    );
    // gate weights reaching past the data section
    assert_eq!(
        ModelRepr::parse(&body(22, 0x7f)).unwrap_err(),
        Error::InvalidModel("tensor outside the data section")
    );
    // non-zero padding
    assert_eq!(
        ModelRepr::parse(&body(59, 1)).unwrap_err(),
        Error::InvalidModel("padding before the data is not zero")
    );
    // the decoder's shift 0
    assert_eq!(
        ModelRepr::parse(&body(53, 0)).unwrap_err(),
        Error::InvalidModel("requantization shift outside 1..=62")
    );
    // the gate's bias beyond 2^23
    assert_eq!(
        ModelRepr::parse(&with_body(|b| b[60 + 32 + 3] = 0x01)).unwrap_err(),
        Error::InvalidModel("int8 bias beyond 2^23")
    );
    // the decoder's activation sigmoid, which needs a table
    assert_eq!(
        ModelRepr::parse(&body(37, 2)).unwrap_err(),
        Error::InvalidModel("sigmoid or tanh without a table")
    );
}

#[test]
fn checksum_and_truncation_are_caught() {
    let mut b = TINY;
    b[100] ^= 1;
    assert!(matches!(
        ModelRepr::parse(&b),
        Err(Error::ChecksumMismatch { .. })
    ));
    for n in 0..TINY.len() {
        assert!(ModelRepr::parse(&TINY[..n]).is_err(), "{n}");
    }
}
