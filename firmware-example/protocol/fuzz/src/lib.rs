//! What the fuzz targets share: a fake device for the server, and the
//! round-trip checks the protocol promises.

use device_protocol::*;

/// A 4×3 "model" with 5 experts, answering from the request alone.
#[derive(Default)]
pub struct Fake {
    clock: u64,
    image: [u8; 12],
}

impl Handler for Fake {
    fn unit(&self) -> CounterUnit {
        CounterUnit::Cycles
    }
    fn now(&mut self) -> u64 {
        self.clock = self.clock.wrapping_add(7);
        self.clock
    }
    fn info(&self) -> InfoAnswer<'_> {
        InfoAnswer {
            version: VERSION,
            revision: REVISION,
            max_request: 0,
            method: Method::MixtureOfVaes,
            element_type: ElementType::F16,
            width: 4,
            height: 3,
            experts: 5,
            latent: 2,
            model_len: 0,
            model_crc: 0,
            label_map: Some(&[0, 1, 2, 3, 4]),
            firmware: "fuzz",
        }
    }
    fn classify(&mut self, pixels: &[u8]) -> Result<ClassifyAnswer<'static>, Failure<'static>> {
        assert_eq!(pixels.len(), 12, "the server checks the shape");
        let cluster = pixels[0] % 5;
        Ok(ClassifyAnswer {
            cluster,
            label: Some(cluster),
            confidence: 1.0f32.to_bits(),
            probabilities: (0..5).map(|k| u32::from(k == cluster)).collect(),
            // The style record, and for odd pixels[2] the novelty record
            // (revision 3).
            extensions: Extensions::classify_answer(
                pixels[1] % 2,
                0.5f32.to_bits(),
                (pixels[2] % 2 == 1).then_some(Novelty {
                    score: u32::from(pixels[3]) << 23,
                    known: pixels[3] < 127,
                }),
            ),
        })
    }
    fn generate(
        &mut self,
        expert: u8,
        style: u8,
        seed: u64,
        _: Extensions<'_>,
    ) -> Result<(), Failure<'static>> {
        assert!(expert < 5, "the server checks the expert");
        if style >= 2 {
            return Err(Failure::new(Status::STYLE_RANGE).with(2, style.into()));
        }
        self.image = [seed as u8 ^ expert ^ style; 12];
        Ok(())
    }
    fn generated(&self) -> &[u8] {
        &self.image
    }
    fn selftest(&mut self) -> Result<SelftestAnswer<'static>, Failure<'static>> {
        Ok(SelftestAnswer {
            passed: true,
            checks: 1,
            failures: 0,
            text: "ok",
        })
    }
}

/// A request parsed from bytes emits bytes that parse to the same request.
pub fn check_request(kind: u8, payload: &[u8]) {
    if let Ok(request) = Request::parse(kind, payload) {
        let mut out = vec![0u8; request.payload_len()];
        let n = request.emit(&mut out).expect("a parsed request emits");
        assert_eq!(Request::parse(kind, &out[..n]), Ok(request));
    }
}

/// An answer parsed from bytes emits bytes that parse to the same answer.
pub fn check_answer(kind: u8, payload: &[u8]) {
    if let Ok(answer) = Answer::parse(kind, payload) {
        assert_eq!(answer.kind(), kind);
        let mut out = vec![0u8; answer.payload_len()];
        let n = answer.emit(&mut out).expect("a parsed answer emits");
        assert_eq!(Answer::parse(kind, &out[..n]).as_ref(), Ok(&answer));
    }
}

/// Every answer the server sends is a valid frame holding a valid answer.
pub fn check_server_output(sent: &[u8]) {
    let mut reader = FrameReader::<{ MAX_FRAME }>::new();
    for &b in sent {
        if let Some(event) = reader.push(b) {
            let frame = event.expect("the server sends valid frames");
            parse_answer(&frame).expect("the server sends valid answers");
        }
    }
}
