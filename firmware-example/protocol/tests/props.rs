//! Round trips (emit then parse gives the same repr; COBS and frames too)
//! and robustness (any bytes into the reader, the parsers and the server
//! never panic).

mod common;

use device_protocol::*;
use proptest::collection::vec;
use proptest::prelude::*;

fn any_text() -> impl Strategy<Value = String> {
    "[ -~é✓]{0,40}".prop_filter("at most 255 bytes", |s| s.len() <= 255)
}

/// Records of later versions: any tag but the style's and the novelty's
/// (whose lengths the parsers check).
fn any_ext() -> impl Strategy<Value = Vec<u8>> {
    let tag = any::<u8>().prop_filter("not a known tag", |&t| t != ext::STYLE && t != ext::NOVELTY);
    vec((tag, vec(any::<u8>(), 0..6)), 0..4).prop_map(|records| {
        let mut out = Vec::new();
        for (tag, value) in records {
            out.push(tag);
            out.push(value.len() as u8);
            out.extend(value);
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn cobs_round_trips(data in vec(any::<u8>(), 0..1200)) {
        let mut enc = vec![0u8; cobs::max_encoded_len(data.len())];
        let n = cobs::encode(&data, &mut enc).unwrap();
        prop_assert!(!enc[..n].contains(&0));
        let mut dec = vec![0u8; data.len()];
        let m = cobs::decode(&enc[..n], &mut dec).unwrap();
        prop_assert_eq!(&dec[..m], &data[..]);
    }

    #[test]
    fn requests_round_trip(
        id in any::<u16>(),
        which in 0u8..6,
        w in 0u16..40, h in 0u16..40,
        expert in any::<u8>(), seed in any::<u64>(),
        fill in any::<u8>(),
        ext in any_ext(),
    ) {
        let pixels: Vec<u8> = (0..w as usize * h as usize).map(|i| fill.wrapping_mul(i as u8)).collect();
        let ext = Extensions::new_checked(&ext).unwrap();
        let request = match which {
            0 => Request::Info,
            1 => Request::Classify(ClassifyRequest { width: w, height: h, pixels: &pixels }),
            2 => Request::Generate(GenerateRequest { expert, seed, extensions: ext }),
            3 => Request::Selftest,
            4 => Request::Stats,
            _ => Request::Shutdown,
        };
        let mut wire = vec![0u8; wire_len(FRAME_OVERHEAD + request.payload_len())];
        let n = encode_request(id, &request, &mut wire).unwrap();
        let mut reader = FrameReader::<{ MAX_FRAME }>::new();
        let mut seen = 0;
        for &b in &wire[..n] {
            if let Some(event) = reader.push(b) {
                let frame = event.unwrap();
                prop_assert_eq!(frame.id(), id);
                prop_assert_eq!(parse_request(&frame).unwrap(), request);
                seen += 1;
            }
        }
        prop_assert_eq!(seen, 1);
    }

    #[test]
    fn answers_round_trip(
        id in any::<u16>(),
        which in 0u8..7,
        unit in any::<u8>(),
        cycles in any::<u64>(),
        a in any::<u32>(), b in any::<u32>(),
        small in any::<u16>(),
        bytes in vec(any::<u8>(), 0..16),
        probs in vec(any::<u32>(), 0..=16),
        text in any_text(),
        ext in any_ext(),
        status in 1u8..=255,
        request in any::<u8>(),
    ) {
        // A classify answer's own records (style, and novelty when `b` is
        // odd) before the later versions' ones, when `a` says so.
        let novelty = (b & 1 == 1).then_some(Novelty { score: b, known: a & 4 == 0 });
        let own = Extensions::classify_answer(a as u8, b, novelty);
        let ext = if which == 1 && a & 2 == 2 { [own.as_bytes(), &ext].concat() } else { ext };
        let ext = Extensions::new_checked(&ext).unwrap();
        let experts = bytes.len() as u16;
        let body = match which {
            0 => Body::Info(InfoAnswer {
                version: a as u8, revision: b as u8, max_request: small,
                method: Method::from(a as u8), element_type: ElementType::from(b as u8),
                width: small, height: small ^ 0x55, experts, latent: small / 3,
                model_len: a, model_crc: b,
                label_map: if bytes.is_empty() || a & 1 == 0 { None } else { Some(&bytes) },
                firmware: &text,
            }),
            1 => Body::Classify(ClassifyAnswer {
                cluster: a as u8,
                label: Some(b as u8).filter(|&l| l != 0xFF),
                confidence: a,
                probabilities: probs.iter().copied().collect(),
                extensions: ext,
            }),
            2 => Body::Generate(GenerateAnswer { width: bytes.len() as u16, height: 1, pixels: &bytes }),
            3 => Body::Selftest(SelftestAnswer { passed: a & 1 == 1, checks: small, failures: b as u16, text: &text }),
            4 => Body::Stats(StatsAnswer {
                last_kind: a as u8, last_cycles: cycles ^ 1, stack_used: a, stack_size: b,
                requests: a ^ b, rejected: b.rotate_left(3), last_total: cycles.rotate_left(7),
            }),
            5 => Body::Shutdown,
            _ => Body::Failed {
                request,
                failure: Failure { status: Status::from(status), expected: a, got: b, text: &text },
            },
        };
        let answer = Answer { unit: CounterUnit::from(unit), cycles, body };
        let mut payload = vec![0u8; answer.payload_len()];
        prop_assert_eq!(answer.emit(&mut payload).unwrap(), payload.len());
        prop_assert_eq!(&Answer::parse(answer.kind(), &payload).unwrap(), &answer);
        // And on the wire.
        let mut wire = vec![0u8; wire_len(FRAME_OVERHEAD + payload.len())];
        let n = encode_answer(id, &answer, &mut wire).unwrap();
        let mut reader = FrameReader::<{ MAX_FRAME }>::new();
        let mut seen = 0;
        for &b in &wire[..n] {
            if let Some(event) = reader.push(b) {
                let frame = event.unwrap();
                prop_assert_eq!(frame.id(), id);
                prop_assert_eq!(&parse_answer(&frame).unwrap(), &answer);
                seen += 1;
            }
        }
        prop_assert_eq!(seen, 1);
    }

    #[test]
    fn any_bytes_never_panic(data in vec(any::<u8>(), 0..3000), kind in any::<u8>()) {
        // The reader, with buffers of several sizes (including under a header).
        let mut r3 = FrameReader::<3>::new();
        let mut r64 = FrameReader::<64>::new_synced();
        let mut r_max = FrameReader::<{ MAX_FRAME }>::new_synced();
        for &b in &data {
            let _ = r3.push(b);
            let _ = r64.push(b);
            if let Some(Ok(frame)) = r_max.push(b) {
                let _ = parse_request(&frame);
                let _ = parse_answer(&frame);
            }
        }
        let _ = Request::parse(kind, &data);
        let _ = Answer::parse(kind, &data);
        let _ = Frame::new_checked(&data[..]);
        let _ = cobs::decode(&data, &mut [0u8; 512]);
        let _ = Extensions::new_checked(&data).map(|e| e.iter().count());
        // The server, with a buffer for answers that is sometimes too small.
        let mut server = Server::<{ request_capacity(common::PIXELS) }>::new();
        let mut fake = common::Fake::new();
        let mut out = vec![0u8; (kind as usize) * 4];
        server.receive(&data, &mut fake, &mut out, |_| {});
    }

    #[test]
    fn feeding_chunks_equals_pushing_bytes(
        frames in vec((vec(any::<u8>(), 0..120), 0u8..4, any::<bool>()), 0..12),
        chunk in 1usize..70,
    ) {
        // Valid frames, frames cut short, garbage runs and frames too large
        // for the reader: `feed` (whole COBS blocks copied at once, in
        // chunks of any size) sees exactly the events `push` sees.
        let mut stream = Vec::new();
        let mut wire = [0u8; 512];
        for (i, (payload, how, sparse)) in frames.iter().enumerate() {
            // Sparse: mostly zeros, as a digit's pixels (runs of empty
            // COBS blocks).
            let payload: Vec<u8> = if *sparse {
                payload.iter().map(|&b| if b < 200 { 0 } else { b }).collect()
            } else {
                payload.clone()
            };
            let payload = &payload;
            let request = Request::Classify(ClassifyRequest { width: 1, height: payload.len() as u16, pixels: payload });
            let n = encode_request(i as u16, &request, &mut wire).unwrap();
            match how {
                0 => stream.extend_from_slice(&wire[..n]),
                1 => stream.extend_from_slice(&wire[..n / 2]),
                2 => stream.extend(payload.iter().copied()),
                _ => { stream.extend_from_slice(&wire[..n]); stream.extend_from_slice(&wire[1..n]); }
            }
        }
        type Seen = (Vec<Result<Vec<u8>, Rejected>>, u32);
        fn events<const N: usize>(stream: &[u8], chunk: Option<usize>) -> Seen {
            let mut reader = FrameReader::<N>::new();
            let mut seen = Vec::new();
            let mut record = |e: Event<'_>| seen.push(e.map(|f| f.inner().to_vec()));
            match chunk {
                None => for &b in stream {
                    if let Some(e) = reader.push(b) { record(e) }
                },
                Some(size) => for piece in stream.chunks(size) {
                    let mut rest = piece;
                    while !rest.is_empty() {
                        let (used, e) = reader.feed(rest);
                        if let Some(e) = e { record(e) }
                        rest = &rest[used..];
                    }
                },
            }
            (seen, reader.skipped())
        }
        prop_assert_eq!(events::<64>(&stream, None), events::<64>(&stream, Some(chunk)));
        prop_assert_eq!(events::<200>(&stream, None), events::<200>(&stream, Some(chunk)));
    }

    #[test]
    fn damaged_frames_are_rejected_not_misread(
        seed in any::<u64>(), flip in any::<usize>(), bit in 0u8..8,
    ) {
        // One bit flipped anywhere in a frame's bytes (not a delimiter):
        // never a valid frame with other content (CRC-32 catches every
        // single-bit error).
        let request = Request::Generate(GenerateRequest { expert: 1, seed, extensions: Extensions::EMPTY });
        let mut wire = [0u8; 64];
        let n = encode_request(0x4242, &request, &mut wire).unwrap();
        let i = 1 + flip % (n - 2);
        wire[i] ^= 1 << bit;
        let mut reader = FrameReader::<64>::new();
        for &b in &wire[..n] {
            if let Some(Ok(frame)) = reader.push(b) {
                prop_assert_eq!(parse_request(&frame).unwrap(), request);
            }
        }
    }
}
