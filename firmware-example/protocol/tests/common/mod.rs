//! A fake device for the server tests: a 4×3 "model" with 5 experts whose
//! answers are functions of the request, so that a test can check every
//! answer against its request.
#![allow(dead_code)]

use device_protocol::*;

pub const WIDTH: u16 = 4;
pub const HEIGHT: u16 = 3;
pub const PIXELS: usize = 12;
pub const EXPERTS: u16 = 5;

pub struct Fake {
    pub clock: u64,
    pub image: [u8; PIXELS],
    pub shutdowns: u32,
    pub test_build: bool,
}

impl Fake {
    pub fn new() -> Self {
        Fake {
            clock: 0,
            image: [0; PIXELS],
            shutdowns: 0,
            test_build: false,
        }
    }
}

/// The fake's classification: cluster = sum of pixels mod K, probabilities
/// one-hot on it.
pub fn expected_classify(pixels: &[u8]) -> ClassifyAnswer<'static> {
    let cluster = (pixels.iter().map(|&p| p as u32).sum::<u32>() % EXPERTS as u32) as u8;
    let probabilities = (0..EXPERTS as u8)
        .map(|k| if k == cluster { 1.0f32.to_bits() } else { 0 })
        .collect();
    ClassifyAnswer {
        cluster,
        label: if cluster == 0 {
            None
        } else {
            Some(9 - cluster)
        },
        confidence: 1.0f32.to_bits(),
        probabilities,
        extensions: Extensions::classify_answer(
            cluster % STYLES,
            0.75f32.to_bits(),
            // A novelty score for odd clusters (known for 1 only).
            (cluster % 2 == 1).then_some(Novelty {
                score: f32::from(cluster).to_bits(),
                known: cluster == 1,
            }),
        ),
    }
}

/// Styles of every cluster of the fake.
pub const STYLES: u8 = 2;

/// The fake's image for (expert, style, seed): style 0's is
/// [`expected_image`]'s.
pub fn expected_style_image(expert: u8, style: u8, seed: u64) -> [u8; PIXELS] {
    expected_image(expert, seed ^ (u64::from(style) * 0x55))
}

/// The fake's image for (expert, seed).
pub fn expected_image(expert: u8, seed: u64) -> [u8; PIXELS] {
    core::array::from_fn(|i| (seed as u8).wrapping_add(expert).wrapping_mul(i as u8 + 1))
}

pub const LABELS: [u8; 5] = [3, 1, 4, 1, 5];

impl Handler for Fake {
    fn unit(&self) -> CounterUnit {
        CounterUnit::Instructions
    }
    fn now(&mut self) -> u64 {
        self.clock += 100;
        self.clock
    }
    fn info(&self) -> InfoAnswer<'_> {
        InfoAnswer {
            version: VERSION,
            revision: REVISION,
            max_request: 0,
            method: Method::KVae,
            element_type: ElementType::Int8,
            width: WIDTH,
            height: HEIGHT,
            experts: EXPERTS,
            latent: 8,
            model_len: 1234,
            model_crc: 0xDEAD_BEEF,
            label_map: Some(&LABELS),
            firmware: "fake 0.1",
        }
    }
    fn classify(&mut self, pixels: &[u8]) -> Result<ClassifyAnswer<'static>, Failure<'static>> {
        assert_eq!(pixels.len(), PIXELS);
        Ok(expected_classify(pixels))
    }
    fn generate(
        &mut self,
        expert: u8,
        style: u8,
        seed: u64,
        _: Extensions<'_>,
    ) -> Result<(), Failure<'static>> {
        assert!(u16::from(expert) < EXPERTS);
        if seed == u64::MAX {
            return Err(Failure::new(Status::Busy));
        }
        if style >= STYLES {
            return Err(Failure::new(Status::STYLE_RANGE).with(STYLES.into(), style.into()));
        }
        self.image = expected_style_image(expert, style, seed);
        Ok(())
    }
    fn generated(&self) -> &[u8] {
        &self.image
    }
    fn selftest(&mut self) -> Result<SelftestAnswer<'static>, Failure<'static>> {
        Ok(SelftestAnswer {
            passed: true,
            checks: 3,
            failures: 0,
            text: "ok",
        })
    }
    fn stack(&mut self) -> (u32, u32) {
        (4568, 262136)
    }
    fn shutdown(&mut self) -> Result<(), Failure<'static>> {
        if self.test_build {
            self.shutdowns += 1;
            Ok(())
        } else {
            Err(Failure::new(Status::Unsupported))
        }
    }
}

/// Decodes every answer frame in `wire` (a host's reader).
pub fn answers(wire: &[u8]) -> Vec<(u16, u8, Vec<u8>)> {
    let mut reader = FrameReader::<{ MAX_FRAME }>::new();
    let mut out = Vec::new();
    for &b in wire {
        if let Some(event) = reader.push(b) {
            let frame = event.expect("the server sends only valid frames");
            out.push((frame.id(), frame.kind(), frame.payload().to_vec()));
        }
    }
    out
}
