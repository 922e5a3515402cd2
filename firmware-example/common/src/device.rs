//! The device side of the host protocol (`../PROTOCOL.md`), written once for
//! every target: a [`device_protocol::Handler`] over an [`engine::Model`]
//! and a [`Workspace`], measured by the target's [`Counter`].
//!
//! A transport (a UART, USB CDC, the host tool's stdin/stdout) feeds the
//! received bytes to a [`device_protocol::Server`] with a [`Device`] as its
//! handler and sends what the server writes back; it stops after an answer
//! once [`Device::shutdown_requested`] is true. Nothing here allocates, and
//! no request reaches a panic: the server checks frames, image shapes and
//! expert indices, and every engine error becomes an [`Status::Internal`]
//! failure.
//!
//! ```
//! use device_protocol::{encode_request, FrameReader, Request, Server, parse_answer, Body};
//! use firmware_common::device::Device;
//!
//! let bytes = engine::testing::tiny_model_bytes();
//! let model = engine::Model::from_bytes(&bytes)?;
//! let mut ws = engine::Workspace::<784>::new();
//! let mut image = [0u8; 784];
//! let mut device = Device::new(&bytes, model, &mut ws, &mut image, Ticks(0), "doc")?;
//! let mut server = Server::<{ device_protocol::request_capacity(784) }>::new();
//!
//! let mut wire = [0u8; 16];
//! let n = encode_request(1, &Request::Info, &mut wire).unwrap();
//! let mut out = [0u8; device_protocol::MIN_ANSWER_BUFFER];
//! let mut experts = 0;
//! server.receive(&wire[..n], &mut device, &mut out, |answer| {
//!     let mut reader = FrameReader::<{ device_protocol::MIN_ANSWER_FRAME }>::new_synced();
//!     let frame = reader.feed(&answer[1..]).1.unwrap().unwrap();
//!     if let Body::Info(info) = parse_answer(&frame).unwrap().body {
//!         experts = info.experts;
//!     }
//! });
//! assert_eq!(experts, 3);
//!
//! struct Ticks(u64);
//! impl firmware_common::Counter for Ticks {
//!     fn unit(&self) -> &'static str { "cycles" }
//!     fn hz(&self) -> Option<u32> { None }
//!     fn now(&mut self) -> u64 { self.0 += 1; self.0 }
//! }
//! # Ok::<(), engine::Error>(())
//! ```

use device_protocol::{
    ClassifyAnswer, CounterUnit, Extensions, Failure, Handler, InfoAnswer, SelftestAnswer, Status,
    REVISION, VERSION,
};
use engine::{ElementType, Model, ModelFile, Workspace};

use crate::Counter;

/// A board's protocol handler: the model, its workspace, a buffer for
/// generated pixels, the target's counter, and the digits `selftest`
/// classifies again.
pub struct Device<'a, C: Counter, const N: usize> {
    model: Model<'a>,
    model_len: u32,
    model_crc: u32,
    bytes: &'a [u8],
    ws: &'a mut Workspace<N>,
    image: &'a mut [u8],
    counter: C,
    firmware: &'a str,
    digits: &'a [u8],
    allow_shutdown: bool,
    shutdown: bool,
    stack: Option<core::ops::Range<usize>>,
}

impl<'a, C: Counter, const N: usize> Device<'a, C, N> {
    /// A handler for `model` (parsed from `bytes`, the model file, which
    /// `info` summarises and `selftest` checks again), computing in `ws`,
    /// generating into `image` (at least the model's pixels), measured by
    /// `counter`; `firmware` is the name and version `info` reports (at
    /// most 255 bytes: longer is cut at a character boundary).
    ///
    /// Refuses a workspace or an image buffer too small for the model, so
    /// that no request can fail for lack of room.
    pub fn new(
        bytes: &'a [u8],
        model: Model<'a>,
        ws: &'a mut Workspace<N>,
        image: &'a mut [u8],
        counter: C,
        firmware: &'a str,
    ) -> Result<Self, engine::Error> {
        let needed = match model.element_type() {
            ElementType::F16 => model.workspace_len().max(model.pixels()),
            ElementType::Int8 => model.workspace_len(),
        };
        if N < needed {
            return Err(engine::Error::WorkspaceTooSmall { needed, have: N });
        }
        if image.len() < model.pixels() {
            return Err(engine::Error::Capacity {
                what: "pixels of a generated image",
                needed: model.pixels(),
                max: image.len(),
            });
        }
        let model_crc = ModelFile::new_checked_skip_crc(bytes)?.checksum();
        Ok(Device {
            model,
            model_len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            model_crc,
            bytes,
            ws,
            image,
            counter,
            firmware: truncate(firmware, 255),
            digits: &[],
            allow_shutdown: false,
            shutdown: false,
            stack: None,
        })
    }

    /// Digits for `selftest`: records of a label byte and one image of the
    /// model's shape ([`crate::digit_record`]), as the boot sequence takes.
    /// Records of another size are ignored (whole records are used).
    pub fn with_digits(mut self, digits: &'a [u8]) -> Self {
        self.digits = digits;
        self
    }

    /// Honour `shutdown` requests (test builds and the host tool only;
    /// every other build answers them [`Status::Unsupported`]).
    pub fn allow_shutdown(mut self, allow: bool) -> Self {
        self.allow_shutdown = allow;
        self
    }

    /// Report `stack`'s high-water mark in `stats` ([`crate::stack`]).
    ///
    /// # Safety
    /// `stack` must be readable memory for as long as the device lives: the
    /// stack region [`crate::stack::paint`] painted.
    pub unsafe fn with_stack(mut self, stack: core::ops::Range<usize>) -> Self {
        self.stack = Some(stack);
        self
    }

    /// Whether a `shutdown` was accepted: the transport sends its answer,
    /// then stops.
    pub fn shutdown_requested(&self) -> bool {
        self.shutdown
    }

    /// The model.
    pub fn model(&self) -> &Model<'a> {
        &self.model
    }

    /// The counter.
    pub fn counter(&mut self) -> &mut C {
        &mut self.counter
    }
}

/// The protocol's name for a [`Counter::unit`]: "cycles", "instructions"
/// and "us" are known; anything else is reported as not measured.
pub fn counter_unit(unit: &str) -> CounterUnit {
    match unit {
        "cycles" => CounterUnit::Cycles,
        "instructions" => CounterUnit::Instructions,
        "us" => CounterUnit::Microseconds,
        _ => CounterUnit::None,
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// An engine error as a failure: [`Status::Internal`], the error's kind as
/// text and its two numbers where it has them.
pub fn engine_failure(e: engine::Error) -> Failure<'static> {
    use engine::Error as E;
    let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let f = Failure::new(Status::Internal);
    match e {
        E::Truncated { needed, available } => f
            .with(clamp(needed), clamp(available))
            .text("engine: truncated"),
        E::BadMagic => f.text("engine: not a model file"),
        E::UnsupportedVersion { found, supported } => f
            .with(supported.into(), found.into())
            .text("engine: unsupported model format version"),
        E::ReservedBits => f.text("engine: reserved bits set"),
        E::ChecksumMismatch { stored, computed } => f
            .with(stored, computed)
            .text("engine: model checksum mismatch"),
        E::TrailingBytes { extra } => f.with(0, clamp(extra)).text("engine: trailing bytes"),
        E::Malformed => f.text("engine: malformed model description"),
        E::InvalidModel(what) => f.text(what),
        E::Capacity { what, needed, max } => f.with(clamp(max), clamp(needed)).text(what),
        E::WorkspaceTooSmall { needed, have } => f
            .with(clamp(needed), clamp(have))
            .text("engine: workspace too small"),
        E::InputLength { expected, found } => f
            .with(clamp(expected), clamp(found))
            .text("engine: input length"),
        E::NoSuchExpert { .. } => f.text("engine: no such expert"),
        E::NoSuchStyle { style, styles, .. } => Failure::new(Status::STYLE_RANGE)
            .with(clamp(styles), clamp(style))
            .text("engine: no such style"),
        _ => f.text("engine: refused"),
    }
}

/// [`Model::from_bytes`] in a frame of its own (a parsed description is
/// about 2 KiB of stack, freed before the digits are classified).
#[inline(never)]
fn model_checks(bytes: &[u8]) -> bool {
    Model::from_bytes(bytes).is_ok()
}

impl<C: Counter, const N: usize> Handler for Device<'_, C, N> {
    fn unit(&self) -> CounterUnit {
        counter_unit(self.counter.unit())
    }

    fn now(&mut self) -> u64 {
        self.counter.now()
    }

    fn stack(&mut self) -> (u32, u32) {
        let Some(stack) = self.stack.clone() else {
            return (0, 0);
        };
        // SAFETY: `with_stack`'s contract: the range is the painted stack,
        // readable memory.
        let used = unsafe { crate::stack::high_water(stack.start, stack.end) };
        let size = stack.end.saturating_sub(stack.start);
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        (clamp(used), clamp(size))
    }

    fn info(&self) -> InfoAnswer<'_> {
        let header = self.model.header();
        InfoAnswer {
            version: VERSION,
            revision: REVISION,
            max_request: 0,
            method: header.method.into(),
            element_type: self.model.element_type().into(),
            width: header.image.width,
            height: header.image.height,
            experts: header.experts,
            latent: header.latent,
            model_len: self.model_len,
            model_crc: self.model_crc,
            label_map: header.label_map.as_ref().map(|m| m.as_slice()),
            firmware: self.firmware,
        }
    }

    fn classify(&mut self, pixels: &[u8]) -> Result<ClassifyAnswer<'static>, Failure<'static>> {
        self.model
            .classify(self.ws, pixels)
            .map(|c| ClassifyAnswer::from_engine(&c))
            .map_err(engine_failure)
    }

    fn generate(
        &mut self,
        expert: u8,
        style: u8,
        seed: u64,
        _extensions: Extensions<'_>,
    ) -> Result<(), Failure<'static>> {
        let pixels = self.model.pixels();
        let image = self.image.get_mut(..pixels).ok_or(
            Failure::new(Status::Internal).text("the image buffer is smaller than the model's"),
        )?;
        let (expert, style) = (usize::from(expert), usize::from(style));
        let styles = self.model.styles(expert);
        if style >= styles {
            let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            return Err(Failure::new(Status::STYLE_RANGE)
                .with(clamp(styles), clamp(style))
                .text("no such style in the cluster"));
        }
        match self.model.element_type() {
            // The f32 image, then its pixels: what the host's engine computes.
            ElementType::F16 => {
                let values = self
                    .model
                    .generate_style(self.ws, expert, style, seed)
                    .map_err(engine_failure)?;
                engine::to_pixels(values, image);
                Ok(())
            }
            ElementType::Int8 => self
                .model
                .generate_pixels_style(self.ws, expert, style, seed, image)
                .map_err(engine_failure),
        }
    }

    fn generated(&self) -> &[u8] {
        self.image.get(..self.model.pixels()).unwrap_or(&[])
    }

    /// The boot sequence's checks again: the model file's CRC-32 and
    /// description (flash still intact), then every digit of
    /// [`with_digits`](Device::with_digits) classified, a failure if the
    /// engine refuses it or, with a label map, names it wrongly.
    fn selftest(&mut self) -> Result<SelftestAnswer<'static>, Failure<'static>> {
        let mut checks: u16 = 1;
        let mut failures: u16 = 0;
        let model_ok = model_checks(self.bytes);
        if !model_ok {
            failures += 1;
        }
        let record = 1 + self.model.pixels();
        let labelled = self.model.header().label_map.is_some();
        let mut misnamed = false;
        for digit in self.digits.chunks_exact(record) {
            checks = checks.saturating_add(1);
            let ok = match self.model.classify(self.ws, &digit[1..]) {
                Ok(c) => !labelled || c.label == Some(digit[0]),
                Err(_) => false,
            };
            if !ok {
                failures = failures.saturating_add(1);
                misnamed = true;
            }
        }
        let text = match (model_ok, misnamed) {
            (true, false) if labelled => {
                "model checksum and description; every digit named correctly"
            }
            (true, false) => {
                "model checksum and description; every digit classified (no label map)"
            }
            (false, _) => "the model file fails its checksum or description",
            (true, true) => "a digit was named wrongly or refused",
        };
        Ok(SelftestAnswer {
            passed: failures == 0,
            checks,
            failures,
            text,
        })
    }

    fn shutdown(&mut self) -> Result<(), Failure<'static>> {
        if self.allow_shutdown {
            self.shutdown = true;
            Ok(())
        } else {
            Err(Failure::new(Status::Unsupported).text("shutdown is honoured only by test builds"))
        }
    }
}

#[cfg(all(test, feature = "embed"))]
mod tests {
    use super::*;
    use device_protocol::{
        answer_capacity, encode_request, parse_answer, request_capacity, wire_len, Answer, Body,
        ClassifyRequest, Frame, FrameReader, GenerateRequest, Request, Server,
    };

    /// The f16 model the firmware runs besides the embedded (int8) one.
    static F16_MODEL: &[u8] = include_bytes!("../../models/default.bin");

    const SLOTS: usize = 784;
    const REQUEST: usize = request_capacity(784);
    const ANSWER: usize = answer_capacity(784, engine::MAX_EXPERTS);

    struct Steps(u64);
    impl Counter for Steps {
        fn unit(&self) -> &'static str {
            "cycles"
        }
        fn hz(&self) -> Option<u32> {
            None
        }
        fn now(&mut self) -> u64 {
            self.0 += 3;
            self.0
        }
    }

    /// Sends `request` through a server to `device`; returns the decoded
    /// answer frames (one, or none if the server answered nothing).
    fn ask<C: Counter>(
        server: &mut Server<REQUEST>,
        device: &mut Device<'_, C, SLOTS>,
        id: u16,
        request: &Request<'_>,
    ) -> Vec<Vec<u8>> {
        let mut wire = [0u8; wire_len(REQUEST)];
        let n = encode_request(id, request, &mut wire).unwrap();
        let mut out = [0u8; wire_len(ANSWER)];
        let mut frames = Vec::new();
        server.receive(&wire[..n], device, &mut out, |bytes| {
            let mut reader = FrameReader::<ANSWER>::new();
            for &b in bytes {
                if let Some(event) = reader.push(b) {
                    let frame = event.expect("a valid answer frame");
                    assert_eq!(frame.id(), id);
                    frames.push(frame.inner().to_vec());
                }
            }
        });
        frames
    }

    fn answer(frame: &[u8]) -> Answer<'_> {
        parse_answer(&Frame::new_checked(frame).unwrap()).unwrap()
    }

    /// Digits and a few synthetic images (blank, full, a ramp) to classify.
    fn images() -> Vec<Vec<u8>> {
        let mut all: Vec<Vec<u8>> = DIGITS_28
            .chunks_exact(785)
            .map(|r| r[1..].to_vec())
            .collect();
        all.push(vec![0; 784]);
        all.push(vec![255; 784]);
        all.push((0..784).map(|i| (i * 7 % 256) as u8).collect());
        all
    }

    static DIGITS_28: &[u8] = include_bytes!("../data/digits.bin");

    /// The two-level (version 3) int8 model: clusters of several styles.
    static TWO_LEVEL_MODEL: &[u8] = include_bytes!("../../models/hierarchical-int8.bin");

    fn models() -> [&'static [u8]; 3] {
        [crate::MODEL, F16_MODEL, TWO_LEVEL_MODEL]
    }

    #[test]
    fn classify_answers_equal_the_engine_bit_for_bit() {
        for bytes in models() {
            let model = Model::from_bytes(bytes).unwrap();
            let (mut ws, mut image) = (Workspace::<SLOTS>::new(), [0u8; 784]);
            let mut device =
                Device::new(bytes, model.clone(), &mut ws, &mut image, Steps(0), "test").unwrap();
            let mut server = Server::new();
            let mut reference = Workspace::<SLOTS>::new();
            for (i, pixels) in images().iter().enumerate() {
                let request = Request::Classify(ClassifyRequest {
                    width: 28,
                    height: 28,
                    pixels,
                });
                let frames = ask(&mut server, &mut device, i as u16, &request);
                let a = answer(&frames[0]);
                assert_eq!(a.unit, CounterUnit::Cycles);
                assert_eq!(a.cycles, 3, "one pair of counter reads");
                let expected = model.classify(&mut reference, pixels).unwrap();
                assert_eq!(
                    a.body,
                    Body::Classify(ClassifyAnswer::from_engine(&expected))
                );
                let Body::Classify(c) = a.body else {
                    unreachable!()
                };
                let bits: Vec<u32> = expected.probabilities.iter().map(|p| p.to_bits()).collect();
                assert_eq!(c.probabilities.as_slice(), bits.as_slice());
                assert_eq!(c.confidence, expected.confidence().to_bits());
                assert_eq!(c.label, expected.label);
                let style = c.style().unwrap();
                assert_eq!(usize::from(style.style), expected.style);
                assert_eq!(style.confidence, expected.style_confidence().to_bits());
                // Revision 3: the novelty record, exactly when the model
                // has a novelty section.
                assert_eq!(
                    c.novelty(),
                    expected.novelty.map(device_protocol::Novelty::from)
                );
                assert_eq!(c.novelty().is_some(), model.repr().novelty().is_some());
            }
        }
    }

    #[test]
    fn generate_answers_equal_the_engine() {
        for bytes in models() {
            let model = Model::from_bytes(bytes).unwrap();
            let (mut ws, mut image) = (Workspace::<SLOTS>::new(), [0u8; 784]);
            let mut device =
                Device::new(bytes, model.clone(), &mut ws, &mut image, Steps(0), "test").unwrap();
            let mut server = Server::new();
            let mut reference = Workspace::<SLOTS>::new();
            for expert in 0..model.experts() as u8 {
                let styles = model.styles(expert.into()) as u8;
                // No style record: style 0; then every style by its record.
                let styles = [None].into_iter().chain((0..styles).map(Some));
                for (style, seed) in styles.flat_map(|s| {
                    [0, 1, crate::SAMPLE_SEED + u64::from(expert), u64::MAX].map(|seed| (s, seed))
                }) {
                    let request = Request::Generate(GenerateRequest {
                        expert,
                        seed,
                        extensions: style.map_or(Extensions::EMPTY, Extensions::style_request),
                    });
                    let frames = ask(&mut server, &mut device, 9, &request);
                    let a = answer(&frames[0]);
                    // What `harness generate` writes: the f32 image's pixels.
                    let s = style.unwrap_or(0).into();
                    let values = model
                        .generate_style(&mut reference, expert.into(), s, seed)
                        .unwrap();
                    let mut expected = [0u8; 784];
                    engine::to_pixels(values, &mut expected);
                    let Body::Generate(g) = a.body else {
                        panic!("{:?}", a.body)
                    };
                    assert_eq!((g.width, g.height), (28, 28));
                    assert_eq!(
                        g.pixels,
                        &expected[..],
                        "expert {expert} style {style:?} seed {seed}"
                    );
                }
                // A style the cluster does not have.
                let request = Request::Generate(GenerateRequest {
                    expert,
                    seed: 0,
                    extensions: Extensions::style_request(model.styles(expert.into()) as u8),
                });
                let frames = ask(&mut server, &mut device, 10, &request);
                let (kind, f) = failure(&frames[0]);
                assert_eq!((kind, f.status), (0x03, Status::STYLE_RANGE));
                assert_eq!(f.expected as usize, model.styles(expert.into()));
            }
        }
    }

    fn failure(frame: &[u8]) -> (u8, Failure<'_>) {
        match answer(frame).body {
            Body::Failed { request, failure } => (request, failure),
            other => panic!("not a failure: {other:?}"),
        }
    }

    #[test]
    fn bad_requests_get_their_status() {
        let model = Model::from_bytes(crate::MODEL).unwrap();
        let experts = model.experts() as u32;
        let (mut ws, mut image) = (Workspace::<SLOTS>::new(), [0u8; 784]);
        let mut device =
            Device::new(crate::MODEL, model, &mut ws, &mut image, Steps(0), "test").unwrap();
        let mut server = Server::new();
        let pixels = [0u8; 27 * 28];
        let wrong = Request::Classify(ClassifyRequest {
            width: 27,
            height: 28,
            pixels: &pixels,
        });
        let frames = ask(&mut server, &mut device, 1, &wrong);
        let (request, f) = failure(&frames[0]);
        assert_eq!((request, f.status), (0x02, Status::ImageSize));
        assert_eq!((f.expected, f.got), (28 << 16 | 28, 27 << 16 | 28));
        for expert in [experts as u8, 255] {
            let request = Request::Generate(GenerateRequest {
                expert,
                seed: 0,
                extensions: Extensions::EMPTY,
            });
            let frames = ask(&mut server, &mut device, 2, &request);
            let (kind, f) = failure(&frames[0]);
            assert_eq!((kind, f.status), (0x03, Status::ExpertRange));
            assert_eq!((f.expected, f.got), (experts, expert.into()));
        }
        let frames = ask(&mut server, &mut device, 3, &Request::Shutdown);
        assert_eq!(failure(&frames[0]).1.status, Status::Unsupported);
        assert!(!device.shutdown_requested());
        // A classify request whose pixels fall short of its shape (no host
        // encoder writes one: framed by hand): malformed.
        let mut frame = vec![VERSION, 4, 0, 0x02];
        frame.extend_from_slice(&(4 + 10u16).to_le_bytes());
        frame.extend_from_slice(&[28, 0, 28, 0]);
        frame.extend_from_slice(&[0; 10]);
        frame.extend_from_slice(&engine::crc32(&frame).to_le_bytes());
        let mut wire = [0u8; 64];
        let n = device_protocol::cobs::encode(&frame, &mut wire[1..]).unwrap();
        let mut out = [0u8; wire_len(ANSWER)];
        let mut got = Vec::new();
        server.receive(&wire[..n + 2], &mut device, &mut out, |bytes| {
            got.extend_from_slice(bytes)
        });
        let mut reader = FrameReader::<ANSWER>::new();
        let mut frames = Vec::new();
        for &b in &got {
            if let Some(event) = reader.push(b) {
                frames.push(event.unwrap().inner().to_vec());
            }
        }
        assert_eq!(failure(&frames[0]).1.status, Status::Malformed);
        // The device still answers afterwards.
        let frames = ask(&mut server, &mut device, 5, &Request::Info);
        assert!(matches!(answer(&frames[0]).body, Body::Info(_)));
    }

    #[test]
    fn shutdown_is_honoured_when_allowed() {
        let model = Model::from_bytes(crate::MODEL).unwrap();
        let (mut ws, mut image) = (Workspace::<SLOTS>::new(), [0u8; 784]);
        let mut device = Device::new(crate::MODEL, model, &mut ws, &mut image, Steps(0), "t")
            .unwrap()
            .allow_shutdown(true);
        let frames = ask(&mut Server::new(), &mut device, 1, &Request::Shutdown);
        assert_eq!(answer(&frames[0]).body, Body::Shutdown);
        assert!(device.shutdown_requested());
    }

    #[test]
    fn info_selftest_and_stats() {
        for bytes in models() {
            let model = Model::from_bytes(bytes).unwrap();
            let (mut ws, mut image) = (Workspace::<SLOTS>::new(), [0u8; 784]);
            let mut device = Device::new(
                bytes,
                model.clone(),
                &mut ws,
                &mut image,
                Steps(0),
                "firmware-common test",
            )
            .unwrap()
            .with_digits(DIGITS_28);
            let mut server = Server::new();
            let frames = ask(&mut server, &mut device, 1, &Request::Info);
            let Body::Info(info) = answer(&frames[0]).body else {
                panic!()
            };
            assert_eq!((info.version, info.revision), (VERSION, REVISION));
            assert_eq!(info.max_request as usize, REQUEST);
            assert_eq!((info.width, info.height), (28, 28));
            assert_eq!(info.experts as usize, model.experts());
            assert_eq!(info.latent as usize, model.latent());
            assert_eq!(info.element_type, model.element_type().into());
            assert_eq!(info.model_len as usize, bytes.len());
            assert_eq!(
                info.model_crc,
                u32::from_le_bytes(bytes[16..20].try_into().unwrap())
            );
            assert_eq!(
                info.label_map,
                model.header().label_map.as_ref().map(|m| m.as_slice())
            );
            assert_eq!(info.firmware, "firmware-common test");
            let frames = ask(&mut server, &mut device, 2, &Request::Selftest);
            let Body::Selftest(s) = answer(&frames[0]).body else {
                panic!()
            };
            assert_eq!(
                (s.passed, s.checks, s.failures),
                (true, 1 + (DIGITS_28.len() / 785) as u16, 0),
                "{}",
                s.text
            );
            let frames = ask(&mut server, &mut device, 3, &Request::Stats);
            let Body::Stats(st) = answer(&frames[0]).body else {
                panic!()
            };
            assert_eq!((st.last_kind, st.requests, st.rejected), (0x04, 3, 0));
        }
    }

    #[test]
    fn a_corrupt_model_fails_its_selftest() {
        let mut bytes = crate::MODEL.to_vec();
        let model_len = bytes.len();
        // Flip a bit of the last tensor after parsing: as if flash decayed.
        let parsed = Model::from_bytes(crate::MODEL).unwrap();
        let (mut ws, mut image) = (Workspace::<SLOTS>::new(), [0u8; 784]);
        bytes[model_len - 1] ^= 1;
        let mut device = Device::new(&bytes, parsed, &mut ws, &mut image, Steps(0), "t").unwrap();
        let s = device.selftest().unwrap();
        assert!(!s.passed);
        assert_eq!((s.checks, s.failures), (1, 1));
    }

    #[test]
    fn buffers_too_small_are_refused_at_construction() {
        let model = Model::from_bytes(crate::MODEL).unwrap();
        let mut ws = Workspace::<SLOTS>::new();
        let mut image = [0u8; 783];
        let err = Device::new(
            crate::MODEL,
            model.clone(),
            &mut ws,
            &mut image,
            Steps(0),
            "t",
        );
        assert!(matches!(err, Err(engine::Error::Capacity { .. })));
        let f16 = Model::from_bytes(F16_MODEL).unwrap();
        let mut small = Workspace::<300>::new();
        let mut image = [0u8; 784];
        let err = Device::new(F16_MODEL, f16, &mut small, &mut image, Steps(0), "t");
        assert!(matches!(err, Err(engine::Error::WorkspaceTooSmall { .. })));
    }

    #[test]
    fn long_firmware_names_are_cut_on_a_character_boundary() {
        let name = "é".repeat(200);
        assert_eq!(truncate(&name, 255).len(), 254);
        assert_eq!(truncate("fw", 255), "fw");
    }

    #[test]
    fn stats_report_the_painted_stack_and_the_whole_request() {
        // A painted "stack" of 64 words whose top 10 words were used.
        let mut stack = [crate::stack::PAINT; 64];
        stack[54..].fill(0);
        let range = stack.as_ptr() as usize..stack.as_ptr() as usize + 256;
        let bytes = crate::MODEL;
        let model = Model::from_bytes(bytes).unwrap();
        let (mut ws, mut image) = (Workspace::<SLOTS>::new(), [0u8; 784]);
        let device = Device::new(bytes, model, &mut ws, &mut image, Steps(0), "test").unwrap();
        // SAFETY: `stack` outlives the device and is readable.
        let mut device = unsafe { device.with_stack(range) };
        let mut server = Server::new();
        let pixels = [0u8; 784];
        let request = Request::Classify(ClassifyRequest {
            width: 28,
            height: 28,
            pixels: &pixels,
        });
        ask(&mut server, &mut device, 1, &request);
        let frames = ask(&mut server, &mut device, 2, &Request::Stats);
        let Body::Stats(s) = answer(&frames[0]).body else {
            panic!("not stats")
        };
        assert_eq!((s.stack_used, s.stack_size), (40, 256));
        assert_eq!((s.last_kind, s.last_cycles), (0x02, 3));
        // receive's two reads around the chunk, the work's two: 3 apart each.
        assert_eq!(s.last_total, 9);
    }
}
