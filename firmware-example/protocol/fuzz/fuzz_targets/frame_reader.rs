//! Arbitrary bytes into the frame reader (three buffer sizes, byte by byte
//! and in slices) and the server: nothing panics, every frame yielded is
//! valid, slices and bytes agree, and what parses round-trips.
#![no_main]

use device_protocol::*;
use device_protocol_fuzz::{check_answer, check_request, check_server_output, Fake};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut small = FrameReader::<5>::new();
    let mut by_byte = FrameReader::<{ request_capacity(12) }>::new();
    let mut by_slice = FrameReader::<{ request_capacity(12) }>::new();
    let mut ids_byte = Vec::new();
    for &b in data {
        let _ = small.push(b);
        if let Some(event) = by_byte.push(b) {
            ids_byte.push(event.as_ref().map(|f| f.id()).map_err(|r| *r));
            if let Ok(frame) = event {
                let _ = parse_request(&frame);
                let _ = parse_answer(&frame);
                check_request(frame.kind(), frame.payload());
                check_answer(frame.kind(), frame.payload());
            }
        }
    }
    let mut ids_slice = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (used, event) = by_slice.feed(rest);
        assert!(used >= 1 && used <= rest.len());
        if let Some(event) = event {
            ids_slice.push(event.as_ref().map(|f| f.id()).map_err(|r| *r));
        }
        rest = &rest[used..];
    }
    assert_eq!(ids_byte, ids_slice);

    let mut server = Server::<{ request_capacity(12) }>::new();
    let mut out = [0u8; MIN_ANSWER_BUFFER];
    let mut sent = Vec::new();
    server.receive(data, &mut Fake::default(), &mut out, |b| {
        sent.extend_from_slice(b)
    });
    check_server_output(&sent);
});
