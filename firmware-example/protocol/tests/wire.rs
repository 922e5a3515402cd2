//! Every message kind against literal bytes: whole wire encodings for the
//! requests (computed independently with Python's zlib.crc32 and a
//! hand-written COBS, see PROTOCOL.md's example), payloads written out
//! field by field for the answers.

use device_protocol::*;

fn wire_of(id: u16, request: &Request<'_>) -> Vec<u8> {
    let mut out = [0u8; 64];
    let n = encode_request(id, request, &mut out).unwrap();
    out[..n].to_vec()
}

fn read_request(wire: &[u8]) -> (u16, Request<'static>) {
    let wire: &'static [u8] = Vec::leak(wire.to_vec());
    let reader: &'static mut FrameReader<64> = Box::leak(Box::new(FrameReader::new()));
    let (used, event) = reader.feed(wire);
    assert_eq!(used, 1, "the leading delimiter synchronises");
    assert!(event.is_none());
    let (used, event) = reader.feed(&wire[1..]);
    assert_eq!(used, wire.len() - 1);
    let frame = event.unwrap().unwrap();
    (frame.id(), parse_request(&frame).unwrap())
}

fn check_request(id: u16, request: Request<'_>, wire: &[u8]) {
    assert_eq!(wire_of(id, &request), wire);
    let (got_id, got) = read_request(wire);
    assert_eq!((got_id, got), (id, request));
}

#[test]
fn info_request() {
    check_request(
        0x0102,
        Request::Info,
        &[
            0x00, 0x05, 0x01, 0x02, 0x01, 0x01, 0x01, 0x05, 0x34, 0x2c, 0x20, 0xb9, 0x00,
        ],
    );
}

#[test]
fn classify_request() {
    let pixels = [0, 255, 128, 0];
    check_request(
        7,
        Request::Classify(ClassifyRequest {
            width: 2,
            height: 2,
            pixels: &pixels,
        }),
        &[
            0x00, 0x03, 0x01, 0x07, 0x03, 0x02, 0x08, 0x02, 0x02, 0x02, 0x02, 0x01, 0x03, 0xff,
            0x80, 0x05, 0x0c, 0x6d, 0x8a, 0xf0, 0x00,
        ],
    );
}

#[test]
fn generate_request() {
    check_request(
        0x1234,
        Request::Generate(GenerateRequest {
            expert: 3,
            seed: 0x5EED_0003,
            extensions: Extensions::EMPTY,
        }),
        &[
            0x00, 0x06, 0x01, 0x34, 0x12, 0x03, 0x09, 0x03, 0x03, 0x03, 0x03, 0xed, 0x5e, 0x01,
            0x01, 0x01, 0x05, 0x94, 0xae, 0x21, 0x9e, 0x00,
        ],
    );
}

#[test]
fn empty_requests() {
    check_request(
        1,
        Request::Selftest,
        &[
            0x00, 0x03, 0x01, 0x01, 0x02, 0x04, 0x01, 0x05, 0x6a, 0xf3, 0xf7, 0x40, 0x00,
        ],
    );
    check_request(
        2,
        Request::Stats,
        &[
            0x00, 0x03, 0x01, 0x02, 0x02, 0x05, 0x01, 0x05, 0x8d, 0xe3, 0x95, 0x06, 0x00,
        ],
    );
    check_request(
        3,
        Request::Shutdown,
        &[
            0x00, 0x03, 0x01, 0x03, 0x02, 0x7e, 0x01, 0x05, 0x8c, 0x4d, 0x51, 0x63, 0x00,
        ],
    );
}

#[test]
fn generate_request_with_extensions() {
    let payload = [
        3, 1, 0, 0, 0, 0, 0, 0, 0, /* tag */ 0x40, /* len */ 2, 0xAA, 0xBB,
    ];
    let Request::Generate(g) = Request::parse(0x03, &payload).unwrap() else {
        panic!()
    };
    assert_eq!(g.extensions.get(0x40), Some(&[0xAA, 0xBB][..]));
    let mut out = [0u8; 16];
    let n = Request::Generate(g).emit(&mut out).unwrap();
    assert_eq!(&out[..n], &payload);
    // An extension record running past the end is refused.
    assert_eq!(Request::parse(0x03, &payload[..12]), Err(Error::Invalid));
}

fn check_answer(kind: u8, answer: Answer<'_>, payload: &[u8]) {
    assert_eq!(answer.kind(), kind);
    assert_eq!(answer.payload_len(), payload.len());
    let mut out = [0u8; 128];
    let n = answer.emit(&mut out).unwrap();
    assert_eq!(&out[..n], payload);
    assert_eq!(Answer::parse(kind, payload).unwrap(), answer);
    // Every shorter payload is refused (no field is optional in revision 0),
    // but for a revision-0 device's `stats`, which lacks revision 1's
    // `last_total` (8 bytes) and reads as 0, and a revision-1 device's
    // `classify`, which lacks revision 2's style record (7 bytes) and reads
    // as no style...
    let style = matches!(&answer.body, Body::Classify(c) if c.style().is_some());
    let novelty = matches!(&answer.body, Body::Classify(c) if c.novelty().is_some());
    for cut in 0..payload.len() {
        // ... a model without a novelty section's answer (or a revision-2
        // device's), which lacks revision 3's novelty record (7 bytes) and
        // reads as no novelty ...
        if novelty && cut == payload.len() - 7 {
            let Body::Classify(old) = Answer::parse(kind, &payload[..cut]).unwrap().body else {
                panic!("not classify")
            };
            assert_eq!(old.novelty(), None);
            assert!(old.style().is_some());
            continue;
        }
        if style && cut == payload.len() - if novelty { 14 } else { 7 } {
            let Body::Classify(old) = Answer::parse(kind, &payload[..cut]).unwrap().body else {
                panic!("not classify")
            };
            assert_eq!(old.style(), None);
            assert_eq!(old.novelty(), None);
            continue;
        }
        if kind == 0x85 && cut == payload.len() - 8 {
            let Body::Stats(old) = Answer::parse(kind, &payload[..cut]).unwrap().body else {
                panic!("not stats")
            };
            assert_eq!(old.last_total, 0);
            continue;
        }
        assert!(
            Answer::parse(kind, &payload[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    // ... and a newer device's appended field is ignored (classify's must be
    // an extension record).
    let mut longer = payload.to_vec();
    longer.extend_from_slice(&[0x7F, 0x01, 0x00]);
    let parsed = Answer::parse(kind, &longer).unwrap();
    assert_eq!(parsed.kind(), kind);
}

const PREFIX_OK_CYCLES_443390: [u8; 10] = [0x00, 0x01, 0xfe, 0xc3, 0x06, 0, 0, 0, 0, 0];

#[test]
fn classify_answer() {
    let probabilities = [0.25f32, 0.75, 0.0].iter().map(|p| p.to_bits()).collect();
    let answer = Answer {
        unit: CounterUnit::Cycles,
        cycles: 443_390,
        body: Body::Classify(ClassifyAnswer {
            cluster: 1,
            label: Some(4),
            confidence: 0.75f32.to_bits(),
            probabilities,
            extensions: Extensions::EMPTY,
        }),
    };
    let mut payload = PREFIX_OK_CYCLES_443390.to_vec();
    payload.extend_from_slice(&[
        0x01, // cluster
        0x04, // label
        0x00, 0x00, 0x40, 0x3f, // confidence 0.75
        0x03, // K
        0x00, 0x00, 0x80, 0x3e, 0x00, 0x00, 0x40, 0x3f, 0x00, 0x00, 0x00, 0x00,
    ]);
    check_answer(0x82, answer.clone(), &payload);
    // The whole wire encoding, as Python computes it.
    let mut out = [0u8; 64];
    let n = encode_answer(7, &answer, &mut out).unwrap();
    assert_eq!(
        &out[..n],
        &[
            0x00, 0x03, 0x01, 0x07, 0x03, 0x82, 0x1d, 0x01, 0x05, 0x01, 0xfe, 0xc3, 0x06, 0x01,
            0x01, 0x01, 0x01, 0x03, 0x01, 0x04, 0x01, 0x04, 0x40, 0x3f, 0x03, 0x01, 0x03, 0x80,
            0x3e, 0x01, 0x03, 0x40, 0x3f, 0x01, 0x01, 0x01, 0x05, 0x53, 0xd4, 0xcd, 0x93, 0x00,
        ][..]
    );
    // No label: 0xFF.
    let mut no_label = payload.clone();
    no_label[11] = 0xFF;
    let Body::Classify(c) = Answer::parse(0x82, &no_label).unwrap().body else {
        panic!()
    };
    assert_eq!(c.label, None);
    // More probabilities than MAX_EXPERTS.
    let mut many = PREFIX_OK_CYCLES_443390.to_vec();
    many.extend_from_slice(&[0, 0xFF, 0, 0, 0, 0, 17]);
    many.extend_from_slice(&[0; 68]);
    assert_eq!(Answer::parse(0x82, &many), Err(Error::Invalid));
}

/// Revision 2: the style record (tag 0x01, `style: u8, confidence: f32`)
/// in a classify answer's extension area.
#[test]
fn classify_answer_with_style() {
    let probabilities = [0.25f32, 0.75, 0.0].iter().map(|p| p.to_bits()).collect();
    let answer = Answer {
        unit: CounterUnit::Cycles,
        cycles: 443_390,
        body: Body::Classify(ClassifyAnswer {
            cluster: 1,
            label: Some(4),
            confidence: 0.75f32.to_bits(),
            probabilities,
            extensions: Extensions::style_answer(1, 0.625f32.to_bits()),
        }),
    };
    let mut payload = PREFIX_OK_CYCLES_443390.to_vec();
    payload.extend_from_slice(&[
        0x01, // cluster
        0x04, // label
        0x00, 0x00, 0x40, 0x3f, // confidence 0.75
        0x03, // K
        0x00, 0x00, 0x80, 0x3e, 0x00, 0x00, 0x40, 0x3f, 0x00, 0x00, 0x00, 0x00, 0x01,
        0x05, // style record: tag, length
        0x01, // style
        0x00, 0x00, 0x20, 0x3f, // style confidence 0.625
    ]);
    check_answer(0x82, answer.clone(), &payload);
    let Body::Classify(c) = Answer::parse(0x82, &payload).unwrap().body else {
        panic!()
    };
    let style = c.style().unwrap();
    assert_eq!((style.style, style.confidence_f32()), (1, 0.625));
    // The whole wire encoding, as Python computes it.
    let mut out = [0u8; 64];
    let n = encode_answer(7, &answer, &mut out).unwrap();
    assert_eq!(
        &out[..n],
        &[
            0x00, 0x03, 0x01, 0x07, 0x03, 0x82, 0x24, 0x01, 0x05, 0x01, 0xfe, 0xc3, 0x06, 0x01,
            0x01, 0x01, 0x01, 0x03, 0x01, 0x04, 0x01, 0x04, 0x40, 0x3f, 0x03, 0x01, 0x03, 0x80,
            0x3e, 0x01, 0x03, 0x40, 0x3f, 0x01, 0x01, 0x01, 0x04, 0x01, 0x05, 0x01, 0x01, 0x07,
            0x20, 0x3f, 0xe7, 0xbe, 0xf9, 0x6f, 0x00,
        ][..]
    );
    // Another record after it is kept; the style is read all the same.
    let mut later = payload.clone();
    later.extend_from_slice(&[0x7e, 0x04, 0x00, 0x00, 0x80, 0x3f]);
    let Body::Classify(c) = Answer::parse(0x82, &later).unwrap().body else {
        panic!()
    };
    assert_eq!(c.style(), Some(style));
    assert_eq!(c.novelty(), None);
    assert_eq!(c.extensions.get(0x7e), Some(&[0x00, 0x00, 0x80, 0x3f][..]));
    // A revision-1 device's answer (no record) has no style.
    let old = &payload[..payload.len() - 7];
    let Body::Classify(c) = Answer::parse(0x82, old).unwrap().body else {
        panic!()
    };
    assert_eq!(c.style(), None);
    // A style record of another length, or twice: Invalid, both ways.
    let mut short = old.to_vec();
    short.extend_from_slice(&[0x01, 0x04, 0x01, 0x00, 0x00, 0x20]);
    assert_eq!(Answer::parse(0x82, &short), Err(Error::Invalid));
    let mut twice = payload.clone();
    twice.extend_from_slice(&payload[payload.len() - 7..]);
    assert_eq!(Answer::parse(0x82, &twice), Err(Error::Invalid));
    let mut bad = answer;
    if let Body::Classify(c) = &mut bad.body {
        c.extensions = Extensions::style_request(1);
    }
    assert_eq!(bad.emit(&mut out), Err(Error::Invalid));
}

/// Revision 3: the novelty record (tag 0x02, `score: f32, known: u8`)
/// after the style record, in the answer of a model with a novelty section.
#[test]
fn classify_answer_with_novelty() {
    let probabilities = [0.25f32, 0.75, 0.0].iter().map(|p| p.to_bits()).collect();
    let novelty = Novelty {
        score: 1.5f32.to_bits(),
        known: false,
    };
    let answer = Answer {
        unit: CounterUnit::Cycles,
        cycles: 443_390,
        body: Body::Classify(ClassifyAnswer {
            cluster: 1,
            label: Some(4),
            confidence: 0.75f32.to_bits(),
            probabilities,
            extensions: Extensions::classify_answer(1, 0.625f32.to_bits(), Some(novelty)),
        }),
    };
    let mut payload = PREFIX_OK_CYCLES_443390.to_vec();
    payload.extend_from_slice(&[
        0x01, // cluster
        0x04, // label
        0x00, 0x00, 0x40, 0x3f, // confidence 0.75
        0x03, // K
        0x00, 0x00, 0x80, 0x3e, 0x00, 0x00, 0x40, 0x3f, 0x00, 0x00, 0x00,
        0x00, // probabilities
        0x01, 0x05, // style record: tag, length
        0x01, // style
        0x00, 0x00, 0x20, 0x3f, // style confidence 0.625
        0x02, 0x05, // novelty record: tag, length
        0x00, 0x00, 0xc0, 0x3f, // score 1.5
        0x00, // not known
    ]);
    check_answer(0x82, answer.clone(), &payload);
    let Body::Classify(c) = Answer::parse(0x82, &payload).unwrap().body else {
        panic!()
    };
    assert_eq!(c.novelty(), Some(novelty));
    assert_eq!(c.novelty().unwrap().score_f32(), 1.5);
    assert_eq!(c.style().unwrap().confidence_f32(), 0.625);
    // The whole wire encoding, as Python computes it.
    let mut out = [0u8; 64];
    let n = encode_answer(7, &answer, &mut out).unwrap();
    assert_eq!(
        &out[..n],
        &[
            0x00, 0x03, 0x01, 0x07, 0x03, 0x82, 0x2b, 0x01, 0x05, 0x01, 0xfe, 0xc3, 0x06, 0x01,
            0x01, 0x01, 0x01, 0x03, 0x01, 0x04, 0x01, 0x04, 0x40, 0x3f, 0x03, 0x01, 0x03, 0x80,
            0x3e, 0x01, 0x03, 0x40, 0x3f, 0x01, 0x01, 0x01, 0x04, 0x01, 0x05, 0x01, 0x01, 0x05,
            0x20, 0x3f, 0x02, 0x05, 0x01, 0x03, 0xc0, 0x3f, 0x05, 0xbc, 0x58, 0x0f, 0x93, 0x00,
        ][..]
    );
    // Known: the last byte 1; an infinite score travels as its bits.
    let mut known = payload.clone();
    let last = known.len() - 1;
    known[last] = 1;
    known[last - 4..last].copy_from_slice(&f32::INFINITY.to_bits().to_le_bytes());
    let Body::Classify(c) = Answer::parse(0x82, &known).unwrap().body else {
        panic!()
    };
    let got = c.novelty().unwrap();
    assert!(got.known);
    assert_eq!(got.score_f32(), f32::INFINITY);
    // The novelty record alone (no style record before it), or before it:
    // read all the same.
    let base = &payload[..payload.len() - 14];
    let style_record = &payload[payload.len() - 14..payload.len() - 7];
    let novelty_record = &payload[payload.len() - 7..];
    for areas in [
        vec![novelty_record],
        vec![novelty_record, style_record],
        vec![novelty_record, &[0x7e, 0x00][..]],
    ] {
        let bytes = [&[base][..], &areas].concat().concat();
        let Body::Classify(c) = Answer::parse(0x82, &bytes).unwrap().body else {
            panic!()
        };
        assert_eq!(c.novelty(), Some(novelty), "{areas:?}");
    }
    // Refused: a known byte other than 0 or 1, another length, twice.
    let mut two = payload.clone();
    two[last] = 2;
    assert_eq!(Answer::parse(0x82, &two), Err(Error::Invalid));
    let short = [
        base,
        style_record,
        &[0x02, 0x04, 0x00, 0x00, 0xc0, 0x3f][..],
    ]
    .concat();
    assert_eq!(Answer::parse(0x82, &short), Err(Error::Invalid));
    let long = [
        base,
        style_record,
        &[0x02, 0x06, 0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00][..],
    ]
    .concat();
    assert_eq!(Answer::parse(0x82, &long), Err(Error::Invalid));
    let twice = [&payload[..], novelty_record].concat();
    assert_eq!(Answer::parse(0x82, &twice), Err(Error::Invalid));
    // ... and by emit: a novelty record of another length, or twice.
    for bad in [
        &[0x02, 0x04, 0x00, 0x00, 0xc0, 0x3f][..],
        &[0x02, 0x05, 0x00, 0x00, 0xc0, 0x3f, 0x07][..],
        &[novelty_record, novelty_record].concat(),
    ] {
        let mut a = answer.clone();
        if let Body::Classify(c) = &mut a.body {
            c.extensions = Extensions::new_checked(bad).unwrap();
        }
        assert_eq!(a.emit(&mut out), Err(Error::Invalid), "{bad:?}");
    }
    // In a generate request tag 0x02 is not the novelty record (a planned
    // temperature): skipped, whatever its length.
    let request = [3, 3, 0, 0xed, 0x5e, 0, 0, 0, 0, 0x02, 0x02, 0xAA, 0xBB];
    let Request::Generate(g) = Request::parse(0x03, &request).unwrap() else {
        panic!()
    };
    assert_eq!(g.style(), None);
}

/// Revision 2: a generate request's style record (tag 0x01, `style: u8`).
#[test]
fn generate_request_with_style() {
    let request = GenerateRequest {
        expert: 3,
        seed: 0x5EED_0003,
        extensions: Extensions::style_request(1),
    };
    assert_eq!(request.style(), Some(1));
    check_request(
        9,
        Request::Generate(request),
        &[
            0x00, 0x03, 0x01, 0x09, 0x03, 0x03, 0x0c, 0x03, 0x03, 0x03, 0x03, 0xed, 0x5e, 0x01,
            0x01, 0x01, 0x06, 0x01, 0x01, 0x01, 0x7c, 0x5e, 0x02, 0xd8, 0x00,
        ],
    );
    let payload = [3, 3, 0, 0xed, 0x5e, 0, 0, 0, 0, 0x01, 0x01, 0x01];
    let Request::Generate(g) = Request::parse(0x03, &payload).unwrap() else {
        panic!()
    };
    assert_eq!(g.style(), Some(1));
    // Without the record (a revision-1 host's request): no style.
    let Request::Generate(g) = Request::parse(0x03, &payload[..9]).unwrap() else {
        panic!()
    };
    assert_eq!(g.style(), None);
    // Refused: another length, twice.
    let wrong = [&payload[..9], &[0x01, 0x02, 1, 1][..]].concat();
    assert_eq!(Request::parse(0x03, &wrong), Err(Error::Invalid));
    let twice = [&payload[..], &[0x01, 0x01, 0x00][..]].concat();
    assert_eq!(Request::parse(0x03, &twice), Err(Error::Invalid));
    let bad = GenerateRequest {
        expert: 3,
        seed: 1,
        extensions: Extensions::style_answer(1, 0),
    };
    assert_eq!(
        Request::Generate(bad).emit(&mut [0u8; 32]),
        Err(Error::Invalid)
    );
}

#[test]
fn info_answer() {
    let answer = Answer {
        unit: CounterUnit::Microseconds,
        cycles: 0x0102,
        body: Body::Info(InfoAnswer {
            version: 1,
            revision: 0,
            max_request: 798,
            method: Method::MixtureOfVaes,
            element_type: ElementType::Int8,
            width: 28,
            height: 28,
            experts: 2,
            latent: 10,
            model_len: 564_688,
            model_crc: 0x1122_3344,
            label_map: Some(&[7, 2]),
            firmware: "rp2040 0.1",
        }),
    };
    let mut payload = vec![0x00, 0x03, 0x02, 0x01, 0, 0, 0, 0, 0, 0];
    payload.extend_from_slice(&[
        0x01, 0x00, // version, revision
        0x1e, 0x03, // max_request 798
        0x00, 0x01, // method, element type
        0x1c, 0x00, 0x1c, 0x00, // 28 x 28
        0x02, 0x00, 0x0a, 0x00, // experts, latent
        0xd0, 0x9d, 0x08, 0x00, // model_len 564688
        0x44, 0x33, 0x22, 0x11, // model_crc
        0x02, 0x07, 0x02, // label map
        0x0a,
    ]);
    payload.extend_from_slice(b"rp2040 0.1");
    check_answer(0x81, answer, &payload);
    // A label map of another length than experts is refused.
    let mut bad = payload.clone();
    bad[32] = 1;
    assert!(Answer::parse(0x81, &bad).is_err());
}

#[test]
fn generate_selftest_stats_shutdown_answers() {
    let pixels = [0, 1, 2, 3, 4, 255];
    let prefix = [0x00, 0x02, 0x10, 0x27, 0, 0, 0, 0, 0, 0]; // Ok, instructions, 10000
    let a = |body| Answer {
        unit: CounterUnit::Instructions,
        cycles: 10_000,
        body,
    };

    let mut p = prefix.to_vec();
    p.extend_from_slice(&[0x03, 0x00, 0x02, 0x00, 0, 1, 2, 3, 4, 255]);
    check_answer(
        0x83,
        a(Body::Generate(GenerateAnswer {
            width: 3,
            height: 2,
            pixels: &pixels,
        })),
        &p,
    );

    let mut p = prefix.to_vec();
    p.extend_from_slice(&[0x00, 0x05, 0x00, 0x02, 0x00, 0x04]);
    p.extend_from_slice(b"crc!");
    check_answer(
        0x84,
        a(Body::Selftest(SelftestAnswer {
            passed: false,
            checks: 5,
            failures: 2,
            text: "crc!",
        })),
        &p,
    );

    let mut p = prefix.to_vec();
    p.extend_from_slice(&[
        0x02, 0xfe, 0xc3, 0x06, 0, 0, 0, 0, 0, 0xd8, 0x11, 0, 0, 0xf8, 0xff, 0x03, 0, 3, 0, 0, 0,
        1, 0, 0, 0, 0x2a, 0xf2, 0x06, 0, 0, 0, 0, 0,
    ]);
    let stats = StatsAnswer {
        last_kind: 2,
        last_cycles: 443_390,
        stack_used: 4568,
        stack_size: 262_136,
        requests: 3,
        rejected: 1,
        last_total: 455_210,
    };
    check_answer(0x85, a(Body::Stats(stats)), &p);

    let p = prefix.to_vec();
    // Shutdown's payload is only the prefix: no shorter payload parses, no
    // appended field matters.
    check_answer(0xFE, a(Body::Shutdown), &p);
}

#[test]
fn failure_answers() {
    let answer = Answer {
        unit: CounterUnit::Cycles,
        cycles: 5,
        body: Body::Failed {
            request: 0x02,
            failure: Failure::new(Status::ImageSize)
                .with(28 << 16 | 28, 8 << 16 | 8)
                .text("8x8"),
        },
    };
    let p = [
        0x06, 0x01, 0x05, 0, 0, 0, 0, 0, 0, 0,    // ImageSize, cycles, 5
        0x02, // request kind
        0x1c, 0x00, 0x1c, 0x00, 0x08, 0x00, 0x08, 0x00, 0x03, b'8', b'x', b'8',
    ];
    check_answer(0x82, answer, &p);
    // An answer to a kind byte with the top bit set travels as 0xFF.
    let unknown = Answer {
        unit: CounterUnit::None,
        cycles: 0,
        body: Body::Failed {
            request: 0x85,
            failure: Failure::new(Status::UnknownKind),
        },
    };
    let p = [
        0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x85, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    check_answer(0xFF, unknown, &p);
    // Its request kind must match the frame's kind.
    assert_eq!(Answer::parse(0x82, &p), Err(Error::Invalid));
    // Status Ok in a failure does not emit; status Ok in kind 0xFF does not parse.
    let bad = Answer {
        unit: CounterUnit::None,
        cycles: 0,
        body: Body::Failed {
            request: 1,
            failure: Failure::new(Status::Ok),
        },
    };
    assert_eq!(bad.emit(&mut [0u8; 64]), Err(Error::Invalid));
    assert_eq!(Answer::parse(0xFF, &[0; 10]), Err(Error::UnknownKind(0xFF)));
    // A status this version does not know is kept.
    let mut newer = p;
    newer[0] = 200;
    let parsed = Answer::parse(0xFF, &newer).unwrap();
    assert_eq!(parsed.status(), Status::Other(200));
}

#[test]
fn version_mismatch_is_readable_across_versions() {
    // A device of a hypothetical version 2 refuses a version-1 request: its
    // frame has version byte 2, but a failure's layout is the same.
    let answer = Answer {
        unit: CounterUnit::None,
        cycles: 0,
        body: Body::Failed {
            request: 0x01,
            failure: Failure::new(Status::VersionMismatch).with(2, 1),
        },
    };
    let mut payload = [0u8; 32];
    let n = answer.emit(&mut payload).unwrap();
    let mut frame = [0u8; 64];
    let len = emit_frame(2, 9, 0x81, &mut frame, |p| {
        p[..n].copy_from_slice(&payload[..n]);
        Ok(n)
    })
    .unwrap();
    let frame = Frame::new_checked(&frame[..len]).unwrap();
    assert_eq!(parse_answer(&frame).unwrap(), answer);
    // An Ok answer of version 2 is not read.
    let ok = Answer {
        unit: CounterUnit::None,
        cycles: 0,
        body: Body::Shutdown,
    };
    let n = ok.emit(&mut payload).unwrap();
    let mut buf = [0u8; 64];
    let len = emit_frame(2, 9, 0xFE, &mut buf, |p| {
        p[..n].copy_from_slice(&payload[..n]);
        Ok(n)
    })
    .unwrap();
    assert_eq!(
        parse_answer(&Frame::new_checked(&buf[..len]).unwrap()),
        Err(Error::Version(2))
    );
    // And a request of version 2 is not parsed.
    assert_eq!(
        parse_request(&Frame::new_checked(&buf[..len]).unwrap()),
        Err(Error::Version(2))
    );
}

#[test]
fn request_errors() {
    assert_eq!(Request::parse(0x42, &[]), Err(Error::UnknownKind(0x42)));
    assert_eq!(Request::parse(0x82, &[]), Err(Error::UnknownKind(0x82)));
    assert_eq!(
        Request::parse(0x02, &[2, 0, 2, 0, 1, 2, 3]),
        Err(Error::Truncated)
    );
    assert_eq!(Request::parse(0x03, &[1, 2, 3]), Err(Error::Truncated));
    let bad = Request::Classify(ClassifyRequest {
        width: 3,
        height: 3,
        pixels: &[0; 8],
    });
    assert_eq!(bad.emit(&mut [0u8; 64]), Err(Error::Invalid));
    assert_eq!(Request::Info.kind() as u8, 1);
    let mut tiny = [0u8; 12];
    assert_eq!(
        encode_request(1, &Request::Info, &mut tiny),
        Err(Error::BufferTooSmall)
    );
}

#[test]
fn frame_checks() {
    let good = [0x01, 0x02, 0x01, 0x01, 0x00, 0x00, 0x34, 0x2c, 0x20, 0xb9];
    assert!(Frame::new_checked(&good[..]).is_ok());
    assert_eq!(Frame::new_checked(&good[..9]).unwrap_err(), Error::TooShort);
    let mut long = good;
    long[4] = 0xFF; // length field 255, 0 bytes of payload
    assert_eq!(Frame::new_checked(&long[..]).unwrap_err(), Error::Length);
    let mut crc = good;
    crc[9] ^= 1;
    assert_eq!(Frame::new_checked(&crc[..]).unwrap_err(), Error::Crc);
}

#[test]
fn sizes_for_the_default_model() {
    // 28×28, K = 10 (the default preset).
    assert_eq!(request_capacity(784), 798);
    assert_eq!(answer_capacity(784, 10), 808);
    assert_eq!(wire_len(798), 804);
    let probabilities = (0..10).map(|_| 0.1f32.to_bits()).collect();
    let a = Answer {
        unit: CounterUnit::Cycles,
        cycles: 443_390,
        body: Body::Classify(ClassifyAnswer {
            cluster: 9,
            label: Some(7),
            confidence: 0.1f32.to_bits(),
            probabilities,
            extensions: Extensions::EMPTY,
        }),
    };
    assert_eq!(a.payload_len(), 57);
    let mut out = [0u8; 128];
    let n = encode_answer(1, &a, &mut out).unwrap();
    assert!(n <= wire_len(67));
    println!("classify answer K=10: frame 67 bytes, wire {n} bytes");
    // Revision 2's style record: 7 bytes more, within answer_capacity.
    let mut a = a;
    if let Body::Classify(c) = &mut a.body {
        c.extensions = Extensions::style_answer(1, 0.5f32.to_bits());
    }
    assert_eq!(a.payload_len(), 64);
    let n = encode_answer(1, &a, &mut out).unwrap();
    assert!(n <= wire_len(74));
    assert!(74 <= answer_capacity(784, 10));
    // Revision 3's novelty record: 7 bytes more again.
    if let Body::Classify(c) = &mut a.body {
        let novelty = Novelty {
            score: 0.5f32.to_bits(),
            known: true,
        };
        c.extensions = Extensions::classify_answer(1, 0.5f32.to_bits(), Some(novelty));
    }
    assert_eq!(a.payload_len(), 71);
    let n = encode_answer(1, &a, &mut out).unwrap();
    assert!(n <= wire_len(81));
    assert!(81 <= answer_capacity(784, 10));
}
