//! Wire sizes of the default model's messages (28×28, K = 10) and the
//! host's cost of writing and reading them: `cargo run --release --example sizes`.

use std::hint::black_box;
use std::time::Instant;

use device_protocol::*;

fn main() {
    // An MNIST-like digit: 150 of 784 pixels inked.
    let digit: Vec<u8> = (0..784)
        .map(|i| {
            if i % 5 == 0 && i > 100 && i < 700 {
                200
            } else {
                0
            }
        })
        .collect();
    let request = Request::Classify(ClassifyRequest {
        width: 28,
        height: 28,
        pixels: &digit,
    });
    let mut wire = [0u8; wire_len(request_capacity(784))];
    let n = encode_request(1, &request, &mut wire).unwrap();
    println!(
        "classify request 28x28: frame {} bytes, wire {n} bytes",
        FRAME_OVERHEAD + request.payload_len()
    );

    let probabilities = (0..10).map(|k| (k as f32 / 45.0).to_bits()).collect();
    let answer = Answer {
        unit: CounterUnit::Cycles,
        cycles: 443_390,
        body: Body::Classify(ClassifyAnswer {
            cluster: 9,
            label: Some(7),
            confidence: 0.2f32.to_bits(),
            probabilities,
            extensions: Extensions::EMPTY,
        }),
    };
    let mut out = [0u8; 128];
    let m = encode_answer(1, &answer, &mut out).unwrap();
    println!(
        "classify answer K=10: frame {} bytes, wire {m} bytes",
        FRAME_OVERHEAD + answer.payload_len()
    );

    let rounds = 20_000;
    let t = Instant::now();
    for _ in 0..rounds {
        black_box(encode_request(1, black_box(&request), &mut wire).unwrap());
    }
    let encode = t.elapsed() / rounds;
    let mut reader = FrameReader::<{ request_capacity(784) }>::new();
    let t = Instant::now();
    for _ in 0..rounds {
        for &b in black_box(&wire[..n]) {
            if let Some(Ok(frame)) = reader.push(b) {
                black_box(parse_request(&frame).unwrap());
            }
        }
    }
    let decode = t.elapsed() / rounds;
    println!("host (x86_64): encode a classify request {encode:?}, read and parse it byte by byte {decode:?}");
}
