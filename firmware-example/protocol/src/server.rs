//! The device side, transport-agnostic: received bytes in, encoded answer
//! frames out; the work itself is a [`Handler`]'s (the firmware's, over an
//! `engine::Model`).

use crate::{
    encode_answer, wire_len, Answer, Body, ClassifyAnswer, CounterUnit, Error, Event, Extensions,
    Failure, FrameReader, GenerateAnswer, InfoAnswer, Rejected, Request, SelftestAnswer,
    StatsAnswer, Status, FRAME_OVERHEAD, VERSION,
};

/// What a device does with requests. The [`Server`] checks frames, versions,
/// image shapes and expert indices before calling it, measures each call
/// with [`now`](Self::now), and answers.
pub trait Handler {
    /// What [`now`](Self::now) counts.
    fn unit(&self) -> CounterUnit;

    /// The counter (monotonic, wrapping at 2⁶⁴).
    fn now(&mut self) -> u64;

    /// Versions and model summary ([`InfoAnswer::max_request`] is filled in
    /// by the server from its buffer).
    fn info(&self) -> InfoAnswer<'_>;

    /// Classifies `pixels`, which have the model's shape.
    fn classify(&mut self, pixels: &[u8]) -> Result<ClassifyAnswer<'static>, Failure<'static>>;

    /// Draws an image from `expert` (below the model's expert count) and
    /// its style `style` (0 when the request has no style record) into the
    /// handler's own buffer, which [`generated`](Self::generated) then
    /// returns. A style the cluster does not have is the handler's to refuse
    /// ([`Status::STYLE_RANGE`]).
    fn generate(
        &mut self,
        expert: u8,
        style: u8,
        seed: u64,
        extensions: Extensions<'_>,
    ) -> Result<(), Failure<'static>>;

    /// The pixels of the last successful [`generate`](Self::generate).
    fn generated(&self) -> &[u8];

    /// Runs the built-in checks.
    fn selftest(&mut self) -> Result<SelftestAnswer<'static>, Failure<'static>>;

    /// Stack high-water mark and stack size in bytes (0 if not measured).
    fn stack(&mut self) -> (u32, u32) {
        (0, 0)
    }

    /// Ends an emulated run after this answer is sent. Only test builds
    /// honour it; the default refuses with [`Status::Unsupported`].
    fn shutdown(&mut self) -> Result<(), Failure<'static>> {
        Err(Failure::new(Status::Unsupported).text("shutdown is honoured only by test builds"))
    }
}

/// The device's protocol state: a [`FrameReader`] of `N` bytes (the largest
/// request it accepts: [`crate::request_capacity`] of the model's pixels)
/// and its counters.
///
/// ```
/// use device_protocol::*;
///
/// struct Fake([u8; 4]);
/// impl Handler for Fake {
///     fn unit(&self) -> CounterUnit { CounterUnit::None }
///     fn now(&mut self) -> u64 { 0 }
///     fn info(&self) -> InfoAnswer<'_> {
///         InfoAnswer { version: VERSION, revision: REVISION, max_request: 0,
///             method: Method::MixtureOfVaes, element_type: ElementType::Int8,
///             width: 2, height: 2, experts: 3, latent: 2, model_len: 0, model_crc: 0,
///             label_map: None, firmware: "fake" }
///     }
///     fn classify(&mut self, px: &[u8]) -> Result<ClassifyAnswer<'static>, Failure<'static>> {
///         let probabilities = [0, 0x3f80_0000, 0].into_iter().collect();
///         Ok(ClassifyAnswer { cluster: 1, label: None, confidence: 0x3f80_0000,
///             probabilities, extensions: Extensions::EMPTY })
///     }
///     fn generate(&mut self, e: u8, _: u8, _: u64, _: Extensions<'_>) -> Result<(), Failure<'static>> {
///         self.0 = [e; 4];
///         Ok(())
///     }
///     fn generated(&self) -> &[u8] { &self.0 }
///     fn selftest(&mut self) -> Result<SelftestAnswer<'static>, Failure<'static>> {
///         Ok(SelftestAnswer { passed: true, checks: 1, failures: 0, text: "" })
///     }
/// }
///
/// let mut server = Server::<{ request_capacity(4) }>::new();
/// let mut wire = [0u8; 64];
/// let n = encode_request(5, &Request::Generate(GenerateRequest {
///     expert: 2, seed: 1, extensions: Extensions::EMPTY }), &mut wire)?;
/// let mut out = [0u8; 64];
/// let mut answers = 0;
/// server.receive(&wire[..n], &mut Fake([0; 4]), &mut out, |bytes| {
///     let mut reader = FrameReader::<64>::new_synced();
///     let frame = reader.feed(&bytes[1..]).1.unwrap().unwrap();
///     assert_eq!(frame.id(), 5);
///     let answer = parse_answer(&frame).unwrap();
///     assert_eq!(answer.body, Body::Generate(GenerateAnswer { width: 2, height: 2, pixels: &[2; 4] }));
///     answers += 1;
/// });
/// assert_eq!(answers, 1);
/// # Ok::<(), device_protocol::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Server<const N: usize> {
    reader: FrameReader<N>,
    counters: Counters,
}

/// What `stats` reports, kept by the server.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    last_kind: u8,
    last_cycles: u64,
    requests: u32,
    rejected: u32,
    dropped: u32,
    /// Cost of the last answered request as a whole (`receive` only).
    last_total: u64,
    /// Counts spent in `receive` since the last answer.
    pending: u64,
    /// A `shutdown` was honoured: `receive` takes nothing more.
    stopped: bool,
}

/// What a request came to, before the answer borrows from the handler.
enum Outcome {
    /// A body owned by the answer.
    Done(Body<'static>),
    /// Refused.
    Failed(Failure<'static>),
    /// `info`: the handler's summary.
    Info,
    /// `generate`: the handler's image, of this shape.
    Generated(u16, u16),
}

impl<const N: usize> Default for Server<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Server<N> {
    /// A server that has not seen a delimiter yet (the boot banner before
    /// the host's first frame is skipped).
    pub const fn new() -> Self {
        Server {
            reader: FrameReader::new(),
            counters: Counters {
                last_kind: 0,
                last_cycles: 0,
                requests: 0,
                rejected: 0,
                dropped: 0,
                last_total: 0,
                pending: 0,
                stopped: false,
            },
        }
    }

    /// Whether a `shutdown` was honoured: [`receive`](Self::receive)
    /// ignores the bytes after its frame.
    pub const fn stopped(&self) -> bool {
        self.counters.stopped
    }

    /// Valid frames received.
    pub const fn requests(&self) -> u32 {
        self.counters.requests
    }

    /// Frames rejected (COBS, length, CRC, oversize).
    pub const fn rejected(&self) -> u32 {
        self.counters.rejected
    }

    /// Answers that did not fit in `out`, not even as an
    /// [`Status::Oversize`] failure.
    pub const fn dropped(&self) -> u32 {
        self.counters.dropped
    }

    /// Takes received bytes; for each answer, calls `send` with its encoded
    /// bytes (written in `out`, which should hold [`crate::wire_len`] of
    /// [`crate::answer_capacity`] for the model: never less than
    /// [`crate::MIN_ANSWER_BUFFER`] bytes).
    ///
    /// Also measures each request as a whole (`stats`'s `last_total`): the
    /// handler's counts spent in `receive` from the previous answer to this
    /// one's encoding, `send` excluded. A transport that calls `receive`
    /// with each chunk it reads thus measures the frame's decoding, the
    /// work and the answer's encoding, and not its own waiting; two counter
    /// reads per chunk and per answer are the measurement's own cost.
    pub fn receive<H: Handler>(
        &mut self,
        bytes: &[u8],
        handler: &mut H,
        out: &mut [u8],
        mut send: impl FnMut(&[u8]),
    ) {
        if bytes.is_empty() {
            return;
        }
        let mut since = handler.now();
        // Whether bytes after the last answer (a frame's start) were taken.
        let mut started = false;
        let mut rest = bytes;
        while !rest.is_empty() && !self.counters.stopped {
            let (used, event) = self.reader.feed(rest);
            rest = &rest[used..];
            let answered = match event {
                None => None,
                Some(event) => respond::<N, H>(&mut self.counters, event, handler, out),
            };
            match answered {
                None => started = true,
                Some(n) => {
                    let spent = handler.now().wrapping_sub(since);
                    let counters = &mut self.counters;
                    counters.last_total = counters.pending.wrapping_add(spent);
                    counters.pending = 0;
                    send(&out[..n]);
                    since = handler.now();
                    started = false;
                }
            }
        }
        if started {
            let spent = handler.now().wrapping_sub(since);
            self.counters.pending = self.counters.pending.wrapping_add(spent);
        }
    }

    /// Takes one received byte; returns the length of the answer written in
    /// `out` if that byte completed a request, or a damaged frame worth
    /// answering (see `PROTOCOL.md`, *Resynchronisation*).
    pub fn push<H: Handler>(&mut self, byte: u8, handler: &mut H, out: &mut [u8]) -> Option<usize> {
        let event = self.reader.push(byte)?;
        respond::<N, H>(&mut self.counters, event, handler, out)
    }
}

/// Answers a completed or rejected frame of a server of capacity `N`: the
/// length of the answer written in `out`, if any.
fn respond<const N: usize, H: Handler>(
    counters: &mut Counters,
    event: Event<'_>,
    handler: &mut H,
    out: &mut [u8],
) -> Option<usize> {
    let start = handler.now();
    let (id, kind, outcome) = match event {
        Err(rejected) => {
            counters.rejected = counters.rejected.saturating_add(1);
            let (id, kind, failure) = rejection_failure(rejected, N)?;
            (id, kind, Outcome::Failed(failure))
        }
        Ok(frame) => {
            counters.requests = counters.requests.saturating_add(1);
            let outcome = if frame.version() != VERSION {
                Outcome::Failed(
                    Failure::new(Status::VersionMismatch)
                        .with(VERSION.into(), frame.version().into()),
                )
            } else {
                match Request::parse(frame.kind(), frame.payload()) {
                    Ok(request) => dispatch(&request, handler, counters),
                    Err(Error::UnknownKind(_)) => {
                        Outcome::Failed(Failure::new(Status::UnknownKind))
                    }
                    Err(_) => Outcome::Failed(Failure::new(Status::Malformed)),
                }
            };
            (frame.id(), frame.kind(), outcome)
        }
    };
    let cycles = handler.now().wrapping_sub(start);
    counters.last_kind = kind;
    counters.last_cycles = cycles;
    let body = match outcome {
        Outcome::Done(body) => {
            counters.stopped |= body == Body::Shutdown;
            body
        }
        Outcome::Failed(failure) => Body::Failed {
            request: kind,
            failure,
        },
        Outcome::Info => {
            let mut info = handler.info();
            info.max_request = u16::try_from(N).unwrap_or(u16::MAX);
            Body::Info(info)
        }
        Outcome::Generated(width, height) => Body::Generate(GenerateAnswer {
            width,
            height,
            pixels: handler.generated(),
        }),
    };
    let unit = handler.unit();
    let answer = Answer { unit, cycles, body };
    let result = match encode_answer(id, &answer, out) {
        Ok(n) => Ok(n),
        Err(e) => {
            let failure = match e {
                Error::BufferTooSmall => Failure::new(Status::Oversize).with(
                    clamp(out.len()),
                    clamp(wire_len(FRAME_OVERHEAD + answer.payload_len())),
                ),
                // No text: the fallback must fit where the answer did not.
                _ => Failure::new(Status::Internal),
            };
            let body = Body::Failed {
                request: kind,
                failure,
            };
            encode_answer(id, &Answer { unit, cycles, body }, out)
        }
    };
    match result {
        Ok(n) => Some(n),
        Err(_) => {
            counters.dropped = counters.dropped.saturating_add(1);
            None
        }
    }
}

/// Checks a parsed request against the model and runs it.
fn dispatch<H: Handler>(request: &Request<'_>, handler: &mut H, counters: &Counters) -> Outcome {
    let info = handler.info();
    let (width, height, experts) = (info.width, info.height, info.experts);
    let result = match request {
        Request::Info => return Outcome::Info,
        Request::Classify(c) if (c.width, c.height) != (width, height) => {
            Err(Failure::new(Status::ImageSize)
                .with(shape(width, height), shape(c.width, c.height)))
        }
        Request::Classify(c) => handler.classify(c.pixels).map(Body::Classify),
        Request::Generate(g) if u16::from(g.expert) >= experts => {
            Err(Failure::new(Status::ExpertRange).with(experts.into(), g.expert.into()))
        }
        Request::Generate(g) => {
            match handler.generate(g.expert, g.style().unwrap_or(0), g.seed, g.extensions) {
                Ok(()) => return Outcome::Generated(width, height),
                Err(f) => Err(f),
            }
        }
        Request::Selftest => handler.selftest().map(Body::Selftest),
        Request::Stats => {
            let (stack_used, stack_size) = handler.stack();
            Ok(Body::Stats(StatsAnswer {
                last_kind: counters.last_kind,
                last_cycles: counters.last_cycles,
                stack_used,
                stack_size,
                requests: counters.requests,
                rejected: counters.rejected,
                last_total: counters.last_total,
            }))
        }
        Request::Shutdown => handler.shutdown().map(|()| Body::Shutdown),
    };
    match result {
        Ok(body) => Outcome::Done(body),
        Err(failure) => Outcome::Failed(failure),
    }
}

/// `width << 16 | height`, as [`Status::ImageSize`] reports shapes.
const fn shape(width: u16, height: u16) -> u32 {
    (width as u32) << 16 | height as u32
}

fn clamp(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Which rejected frames are answered, and how: only those whose header
/// reads as this version's and whose damage lies after it (a CRC mismatch
/// with a consistent length field, or a frame too large). Anything else
/// (line noise, a frame cut short) gets no answer: its id may be garbage.
fn rejection_failure(rejected: Rejected, capacity: usize) -> Option<(u16, u8, Failure<'static>)> {
    let header = rejected.header.filter(|h| h.version == VERSION)?;
    let failure = match rejected.error {
        Error::Crc => Failure::new(Status::BadCrc),
        Error::Oversize => Failure::new(Status::Oversize).with(
            clamp(capacity),
            clamp(FRAME_OVERHEAD + header.length as usize),
        ),
        _ => return None,
    };
    Some((header.id, header.kind, failure))
}
