//! The server core with a fake device: every kind answered, every check
//! refused with its status, and a megabyte of random bytes with valid
//! requests interleaved, each answered correctly and nothing else answered
//! as valid.

mod common;

use common::*;
use device_protocol::*;

const N: usize = request_capacity(PIXELS);

fn exchange(server: &mut Server<N>, fake: &mut Fake, wire: &[u8]) -> Vec<(u16, u8, Vec<u8>)> {
    let mut sent = Vec::new();
    let mut out = [0u8; MIN_ANSWER_BUFFER];
    server.receive(wire, fake, &mut out, |bytes| sent.extend_from_slice(bytes));
    answers(&sent)
}

fn request_wire(id: u16, request: &Request<'_>) -> Vec<u8> {
    let mut out = vec![0u8; 2 * MAX_FRAME];
    let n = encode_request(id, request, &mut out).unwrap();
    out.truncate(n);
    out
}

fn answer_of(frames: &[(u16, u8, Vec<u8>)]) -> Answer<'_> {
    assert_eq!(frames.len(), 1, "{frames:?}");
    Answer::parse(frames[0].1, &frames[0].2).unwrap()
}

fn failure_of(frames: &[(u16, u8, Vec<u8>)]) -> Failure<'_> {
    match answer_of(frames).body {
        Body::Failed { failure, .. } => failure,
        other => panic!("not a failure: {other:?}"),
    }
}

#[test]
fn every_kind_is_answered() {
    let mut server = Server::<N>::new();
    let mut fake = Fake::new();

    let a = exchange(&mut server, &mut fake, &request_wire(1, &Request::Info));
    assert_eq!(a[0].0, 1);
    let info = answer_of(&a);
    assert_eq!((info.unit, info.cycles), (CounterUnit::Instructions, 100));
    let Body::Info(i) = info.body else { panic!() };
    assert_eq!(
        (i.width, i.height, i.experts, i.max_request),
        (WIDTH, HEIGHT, EXPERTS, N as u16)
    );
    assert_eq!((i.label_map, i.firmware), (Some(&LABELS[..]), "fake 0.1"));

    let pixels: [u8; PIXELS] = core::array::from_fn(|i| i as u8 * 7);
    let req = Request::Classify(ClassifyRequest {
        width: WIDTH,
        height: HEIGHT,
        pixels: &pixels,
    });
    let a = exchange(&mut server, &mut fake, &request_wire(2, &req));
    assert_eq!((a[0].0, a[0].1), (2, 0x82));
    assert_eq!(
        answer_of(&a).body,
        Body::Classify(expected_classify(&pixels))
    );

    let req = Request::Generate(GenerateRequest {
        expert: 4,
        seed: 99,
        extensions: Extensions::EMPTY,
    });
    let a = exchange(&mut server, &mut fake, &request_wire(3, &req));
    let image = expected_image(4, 99);
    assert_eq!(
        answer_of(&a).body,
        Body::Generate(GenerateAnswer {
            width: WIDTH,
            height: HEIGHT,
            pixels: &image
        })
    );

    let a = exchange(&mut server, &mut fake, &request_wire(4, &Request::Selftest));
    assert!(matches!(
        answer_of(&a).body,
        Body::Selftest(SelftestAnswer { passed: true, .. })
    ));

    let a = exchange(&mut server, &mut fake, &request_wire(5, &Request::Stats));
    let Body::Stats(s) = answer_of(&a).body else {
        panic!()
    };
    assert_eq!(s.last_kind, 0x04);
    assert_eq!(s.last_cycles, 100);
    // The selftest as a whole: `receive`'s two counter reads around the
    // chunk, the handler's two around the work (the fake's counter steps by
    // 100 a read); nothing of the chunk before it.
    assert_eq!(s.last_total, 300);
    assert_eq!(
        (s.stack_used, s.stack_size, s.requests, s.rejected),
        (4568, 262_136, 5, 0)
    );

    // Shutdown: refused by a non-test build, honoured by a test build.
    let a = exchange(&mut server, &mut fake, &request_wire(6, &Request::Shutdown));
    assert_eq!(failure_of(&a).status, Status::Unsupported);
    assert_eq!(a[0].1, 0xFE);
    fake.test_build = true;
    let a = exchange(&mut server, &mut fake, &request_wire(7, &Request::Shutdown));
    assert_eq!(answer_of(&a).body, Body::Shutdown);
    assert_eq!(fake.shutdowns, 1);
}

#[test]
fn refusals() {
    let mut server = Server::<N>::new();
    let mut fake = Fake::new();

    // Wrong image size: 28×28 to a 4×3 model.
    let big = [0u8; 784];
    let req = Request::Classify(ClassifyRequest {
        width: 28,
        height: 28,
        pixels: &big,
    });
    let a = exchange(&mut server, &mut fake, &request_wire(1, &req));
    // 798 bytes do not fit the device's 83-byte buffer: refused as oversize, with the id.
    assert_eq!(a[0].0, 1);
    let f = failure_of(&a);
    assert_eq!(
        (f.status, f.expected, f.got),
        (Status::Oversize, N as u32, 798)
    );
    let small = [0u8; 6];
    let req = Request::Classify(ClassifyRequest {
        width: 3,
        height: 2,
        pixels: &small,
    });
    let a = exchange(&mut server, &mut fake, &request_wire(2, &req));
    let f = failure_of(&a);
    assert_eq!(
        (f.status, f.expected, f.got),
        (Status::ImageSize, 4 << 16 | 3, 3 << 16 | 2)
    );

    // Expert out of range; a handler's own refusal (busy).
    let req = Request::Generate(GenerateRequest {
        expert: 5,
        seed: 1,
        extensions: Extensions::EMPTY,
    });
    let a = exchange(&mut server, &mut fake, &request_wire(3, &req));
    let f = failure_of(&a);
    assert_eq!((f.status, f.expected, f.got), (Status::ExpertRange, 5, 5));
    let req = Request::Generate(GenerateRequest {
        expert: 0,
        seed: u64::MAX,
        extensions: Extensions::EMPTY,
    });
    assert_eq!(
        failure_of(&exchange(&mut server, &mut fake, &request_wire(4, &req))).status,
        Status::Busy
    );
    // Revision 2: a style is passed to the handler; one the cluster does
    // not have is its refusal (StyleRange, expected = its styles).
    let req = Request::Generate(GenerateRequest {
        expert: 2,
        seed: 5,
        extensions: Extensions::style_request(1),
    });
    let a = exchange(&mut server, &mut fake, &request_wire(4, &req));
    let image = expected_style_image(2, 1, 5);
    assert_eq!(
        answer_of(&a).body,
        Body::Generate(GenerateAnswer {
            width: WIDTH,
            height: HEIGHT,
            pixels: &image,
        })
    );
    assert_ne!(image, expected_image(2, 5));
    let req = Request::Generate(GenerateRequest {
        expert: 2,
        seed: 5,
        extensions: Extensions::style_request(STYLES),
    });
    let a = exchange(&mut server, &mut fake, &request_wire(4, &req));
    let f = failure_of(&a);
    assert_eq!(
        (f.status, f.expected, f.got),
        (Status::STYLE_RANGE, STYLES.into(), STYLES.into())
    );

    // Unknown kind, malformed payload, other version: frames built by hand.
    let raw = |version: u8, kind: u8, payload: &[u8]| {
        let mut frame = [0u8; 64];
        let n = emit_frame(version, 0x5151, kind, &mut frame, |p| {
            p[..payload.len()].copy_from_slice(payload);
            Ok(payload.len())
        })
        .unwrap();
        let mut wire = vec![0u8; 80];
        let m = cobs::encode(&frame[..n], &mut wire[1..]).unwrap();
        wire.truncate(m + 2);
        wire
    };
    let a = exchange(&mut server, &mut fake, &raw(1, 0x42, &[]));
    assert_eq!((a[0].0, a[0].1), (0x5151, 0xC2));
    assert_eq!(failure_of(&a).status, Status::UnknownKind);
    let a = exchange(&mut server, &mut fake, &raw(1, 0x81, &[]));
    assert_eq!(a[0].1, 0xFF);
    assert_eq!(failure_of(&a).status, Status::UnknownKind);
    let a = exchange(&mut server, &mut fake, &raw(1, 0x03, &[1, 2]));
    assert_eq!(failure_of(&a).status, Status::Malformed);
    let a = exchange(&mut server, &mut fake, &raw(2, 0x01, &[]));
    assert_eq!(a[0].0, 0x5151);
    let f = failure_of(&a);
    assert_eq!(
        (f.status, f.expected, f.got),
        (Status::VersionMismatch, 1, 2)
    );

    // Bad CRC with a readable header: answered BadCrc with the id.
    let mut wire = request_wire(0x0909, &Request::Stats);
    let last = wire.len() - 2;
    wire[last] ^= 0x10;
    let a = exchange(&mut server, &mut fake, &wire);
    assert_eq!(a[0].0, 0x0909);
    assert_eq!(failure_of(&a).status, Status::BadCrc);

    // Truncated frame, length field lying, short garbage: no answer at all.
    let wire = request_wire(0x0A0A, &Request::Stats);
    let mut cut = wire[..wire.len() - 3].to_vec();
    cut.push(0);
    assert!(exchange(&mut server, &mut fake, &cut).is_empty());
    let mut frame = [0u8; 16];
    let n = emit_frame(1, 0x0B0B, 0x05, &mut frame, |_| Ok(0)).unwrap();
    frame[4] = 200; // length 200, and a CRC over these bytes
    let crc = engine::crc32(&frame[..6]);
    frame[6..10].copy_from_slice(&crc.to_le_bytes());
    let mut wire = vec![0u8; 20];
    let m = cobs::encode(&frame[..n], &mut wire[1..]).unwrap();
    wire.truncate(m + 2);
    assert!(exchange(&mut server, &mut fake, &wire).is_empty());
    assert!(exchange(&mut server, &mut fake, b"\0hello\r\n\0\0\0").is_empty());
    assert_eq!(server.dropped(), 0);
}

#[test]
fn small_answer_buffer_gives_oversize_failure() {
    let mut server = Server::<N>::new();
    let mut fake = Fake::new();
    let mut sent = Vec::new();
    // Room for a failure but not for the info answer (10 + 10 + 24 + 5 + 8 bytes + COBS).
    let mut out = [0u8; 45];
    server.receive(&request_wire(1, &Request::Info), &mut fake, &mut out, |b| {
        sent.extend_from_slice(b)
    });
    let a = answers(&sent);
    let f = failure_of(&a);
    assert_eq!((f.status, f.expected), (Status::Oversize, 45));
    // No room at all: dropped and counted.
    let mut tiny = [0u8; 8];
    server.receive(
        &request_wire(2, &Request::Info),
        &mut fake,
        &mut tiny,
        |_| panic!("nothing fits"),
    );
    assert_eq!(server.dropped(), 1);
}

/// A small deterministic generator (xorshift64*), so that the test needs no
/// dependency and reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn a_megabyte_of_garbage_with_requests_interleaved() {
    let mut rng = Rng(0x5EED_1234_5678_9ABC);
    let mut wire = b"target fake (boot banner)\r\nmodel 1234 bytes\r\n".to_vec();
    let mut expected = Vec::new(); // (id, answer payload)
    let mut fake_for_expectations = Fake::new();
    let mut id: u16 = 0;
    while wire.len() < 1 << 20 {
        // Garbage: random bytes (zeros included), 0 to 2000 of them.
        let garbage = rng.next() % 2000;
        for _ in 0..garbage {
            let r = rng.next();
            // Zeros as often as on a noisy line, and runs of text.
            wire.push(if r.is_multiple_of(13) {
                0
            } else {
                (r >> 8) as u8
            });
        }
        // Then a valid request, after a delimiter (senders lead with one).
        id = id.wrapping_add(1);
        let pixels: [u8; PIXELS] = core::array::from_fn(|_| rng.next() as u8);
        let request = match rng.next() % 3 {
            0 => Request::Classify(ClassifyRequest {
                width: WIDTH,
                height: HEIGHT,
                pixels: &pixels,
            }),
            1 => Request::Generate(GenerateRequest {
                expert: (rng.next() % EXPERTS as u64) as u8,
                seed: rng.next() >> 1,
                extensions: Extensions::EMPTY,
            }),
            _ => Request::Selftest,
        };
        wire.extend(request_wire(id, &request));
        let body = match request {
            Request::Classify(c) => Body::Classify(expected_classify(c.pixels)),
            Request::Generate(g) => {
                fake_for_expectations
                    .generate(g.expert, 0, g.seed, Extensions::EMPTY)
                    .unwrap();
                Body::Generate(GenerateAnswer {
                    width: WIDTH,
                    height: HEIGHT,
                    pixels: Vec::leak(fake_for_expectations.generated().to_vec()),
                })
            }
            _ => Body::Selftest(fake_for_expectations.selftest().unwrap()),
        };
        expected.push((id, body));
    }
    // Fed in slices of random sizes, as a UART callback would.
    let mut server = Server::<N>::new();
    let mut fake = Fake::new();
    let mut sent = Vec::new();
    let mut out = [0u8; MIN_ANSWER_BUFFER];
    let mut rest = &wire[..];
    while !rest.is_empty() {
        let take = (rng.next() % 300) as usize + 1;
        let (chunk, tail) = rest.split_at(take.min(rest.len()));
        server.receive(chunk, &mut fake, &mut out, |b| sent.extend_from_slice(b));
        rest = tail;
    }
    let got = answers(&sent);
    let mut valid = Vec::new();
    let mut failures = 0;
    for (id, kind, payload) in &got {
        let answer = Answer::parse(*kind, payload).unwrap();
        match answer.body {
            Body::Failed { failure, .. } => {
                // Garbage that happened to look like a damaged request.
                assert!(
                    matches!(failure.status, Status::BadCrc | Status::Oversize),
                    "{failure:?}"
                );
                failures += 1;
            }
            body => valid.push((*id, body.clone_static())),
        }
    }
    assert_eq!(valid.len(), expected.len(), "every request answered, once");
    for ((got_id, got), (want_id, want)) in valid.iter().zip(&expected) {
        assert_eq!(got_id, want_id);
        assert_eq!(got, want, "request {want_id}");
    }
    println!(
        "{} bytes, {} requests, all answered correctly; {} garbage frames rejected, {} of them answered as failures",
        wire.len(),
        expected.len(),
        server.rejected(),
        failures
    );
    assert!(server.rejected() > 1000);
}

trait CloneStatic {
    fn clone_static(&self) -> Body<'static>;
}

impl CloneStatic for Body<'_> {
    fn clone_static(&self) -> Body<'static> {
        match self {
            Body::Generate(g) => Body::Generate(GenerateAnswer {
                width: g.width,
                height: g.height,
                pixels: Vec::leak(g.pixels.to_vec()),
            }),
            Body::Classify(c) => Body::Classify(ClassifyAnswer {
                cluster: c.cluster,
                label: c.label,
                confidence: c.confidence,
                probabilities: c.probabilities.clone(),
                extensions: Extensions::new_checked(Vec::leak(c.extensions.as_bytes().to_vec()))
                    .unwrap(),
            }),
            Body::Selftest(s) => Body::Selftest(SelftestAnswer {
                passed: s.passed,
                checks: s.checks,
                failures: s.failures,
                text: String::leak(s.text.to_string()),
            }),
            other => panic!("unexpected {other:?}"),
        }
    }
}
