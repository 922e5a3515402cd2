//! Arbitrary bytes as a request's kind and payload, in a frame made valid
//! (COBS, length, CRC), so that mutations reach the payload decoders and the
//! server's checks instead of dying at the CRC: nothing panics, what parses
//! round-trips, and the server answers every such frame once, validly
//! (but for oversize frames of another version, which get no answer).
#![no_main]

use device_protocol::*;
use device_protocol_fuzz::{check_answer, check_request, check_server_output, Fake};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, payload)) = data.split_first() else {
        return;
    };
    let Some((&version, payload)) = payload.split_first() else {
        return;
    };
    check_request(kind, payload);
    check_answer(kind, payload);
    if payload.len() > u16::MAX as usize - 16 {
        return;
    }
    let mut frame = vec![0u8; FRAME_OVERHEAD + payload.len()];
    let version = if version < 0xF0 { VERSION } else { version };
    let n = emit_frame(version, 0xABCD, kind, &mut frame, |p| {
        p[..payload.len()].copy_from_slice(payload);
        Ok(payload.len())
    })
    .expect("room for the frame");
    let mut wire = vec![0u8; wire_len(n)];
    let m = cobs::encode(&frame[..n], &mut wire[1..]).expect("room for the encoding");
    wire.truncate(m + 2);

    const N: usize = request_capacity(12);
    let mut server = Server::<N>::new();
    let mut out = [0u8; MIN_ANSWER_BUFFER];
    let mut sent = Vec::new();
    server.receive(&wire, &mut Fake::default(), &mut out, |b| {
        sent.extend_from_slice(b)
    });
    check_server_output(&sent);
    // Every well-framed request gets exactly one answer carrying its id.
    let mut reader = FrameReader::<{ MAX_FRAME }>::new();
    let mut answers = 0;
    for &b in &sent {
        if let Some(Ok(frame)) = reader.push(b) {
            assert_eq!(frame.id(), 0xABCD);
            answers += 1;
        }
    }
    // Exactly one, except for a frame too large for the server's buffer
    // with another version's byte: its header is not trusted (PROTOCOL.md,
    // Resynchronisation), so it gets none.
    let expected = if n > N && version != VERSION { 0 } else { 1 };
    assert_eq!(
        answers,
        expected,
        "kind {kind:#04x}, {} payload bytes",
        payload.len()
    );
});
