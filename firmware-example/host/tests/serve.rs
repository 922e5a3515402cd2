//! `fw-host serve` as a host program sees it: a device on a pipe.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use device_protocol::{
    encode_request, parse_answer, Body, ClassifyRequest, CounterUnit, Extensions, FrameReader,
    GenerateRequest, Request, Status,
};

const MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/default-int8.bin");
const DIGITS: &[u8] = include_bytes!("../../common/data/digits.bin");

/// Runs `fw-host serve` on `requests` (already on the wire), closes its
/// input, and returns its whole stdout and whether it succeeded.
fn serve(args: &[&str], wire: &[u8]) -> (Vec<u8>, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fw-host"))
        .args(["serve", "--model", MODEL])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run fw-host");
    let mut stdin = child.stdin.take().unwrap();
    // The device may stop (shutdown) before it has read everything.
    let _ = stdin.write_all(wire);
    drop(stdin);
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    (out, child.wait().unwrap().success())
}

fn wire(requests: &[Request<'_>]) -> Vec<u8> {
    let mut all = Vec::new();
    for (id, r) in requests.iter().enumerate() {
        let mut buf = [0u8; 1024];
        let n = encode_request(id as u16, r, &mut buf).unwrap();
        all.extend_from_slice(&buf[..n]);
    }
    all
}

/// Decoded answer frames in stdout, in order (bytes before the first
/// delimiter, the banner, are skipped by the reader).
fn answers(stdout: &[u8]) -> Vec<Vec<u8>> {
    let mut reader = FrameReader::<{ device_protocol::MAX_FRAME }>::new();
    let mut frames = Vec::new();
    for &b in stdout {
        if let Some(event) = reader.push(b) {
            frames.push(event.expect("a valid frame").inner().to_vec());
        }
    }
    frames
}

#[test]
fn answers_on_stdout_until_shutdown() {
    let model_bytes = std::fs::read(MODEL).unwrap();
    let model = engine::Model::from_bytes(&model_bytes).unwrap();
    let digit = &DIGITS[1..785];
    let requests = [
        Request::Info,
        Request::Classify(ClassifyRequest {
            width: 28,
            height: 28,
            pixels: digit,
        }),
        Request::Generate(GenerateRequest {
            expert: 3,
            seed: 7,
            extensions: Extensions::EMPTY,
        }),
        Request::Selftest,
        Request::Shutdown,
        // Never answered: the device stopped.
        Request::Stats,
    ];
    let (stdout, ok) = serve(&["--banner"], &wire(&requests));
    assert!(ok);
    assert!(stdout.starts_with(b"fw-host serve: 10 experts, 28x28, int8 weights"));
    let frames = answers(&stdout);
    assert_eq!(frames.len(), 5);
    let parsed: Vec<_> = frames
        .iter()
        .map(|f| parse_answer(&device_protocol::Frame::new_checked(&f[..]).unwrap()).unwrap())
        .collect();
    assert!(parsed.iter().all(|a| a.unit == CounterUnit::Microseconds));
    let Body::Info(info) = &parsed[0].body else {
        panic!("{:?}", parsed[0])
    };
    assert_eq!((info.width, info.experts), (28, 10));
    assert!(info.firmware.starts_with("fw-host"));
    let mut ws = engine::Workspace::<784>::new();
    let c = model.classify(&mut ws, digit).unwrap();
    assert_eq!(
        parsed[1].body,
        Body::Classify(device_protocol::ClassifyAnswer::from_engine(&c))
    );
    let mut pixels = [0u8; 784];
    engine::to_pixels(model.generate(&mut ws, 3, 7).unwrap(), &mut pixels);
    let Body::Generate(g) = &parsed[2].body else {
        panic!()
    };
    assert_eq!(g.pixels, &pixels[..]);
    let Body::Selftest(s) = &parsed[3].body else {
        panic!()
    };
    assert!(s.passed && s.checks == 9, "{s:?}");
    assert_eq!(parsed[4].body, Body::Shutdown);
}

#[test]
fn ends_on_end_of_input_with_nothing_but_frames() {
    let (stdout, ok) = serve(&[], &wire(&[Request::Stats]));
    assert!(ok);
    assert_eq!(stdout.first(), Some(&0), "no banner without --banner");
    assert_eq!(answers(&stdout).len(), 1);
    let (stdout, ok) = serve(&[], &[]);
    assert!(ok && stdout.is_empty());
}

#[test]
fn a_wrong_image_is_refused_and_the_device_goes_on() {
    let pixels = [0u8; 64];
    let requests = [
        Request::Classify(ClassifyRequest {
            width: 8,
            height: 8,
            pixels: &pixels,
        }),
        Request::Info,
    ];
    let (stdout, ok) = serve(&[], &wire(&requests));
    assert!(ok);
    let frames = answers(&stdout);
    let first =
        parse_answer(&device_protocol::Frame::new_checked(&frames[0][..]).unwrap()).unwrap();
    assert_eq!(first.status(), Status::ImageSize);
    assert_eq!(frames.len(), 2);
}

#[test]
fn a_missing_model_is_one_line() {
    let o = Command::new(env!("CARGO_BIN_EXE_fw-host"))
        .args(["serve", "--model", "/nonexistent/model.bin"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("fw-host: /nonexistent/model.bin"), "{err}");
}
