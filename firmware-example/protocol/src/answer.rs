//! Answers, device to host: a common prefix (status, counter unit, cost),
//! then the body of the request's kind, or a [`Failure`].

use heapless::Vec;

use crate::bytes::{Cursor, Writer};
use crate::ext::{NOVELTY, STYLE};
use crate::{answer_kind, CounterUnit, ElementType, Error, Extensions, Kind, Method, Status};
use engine::MAX_EXPERTS;

/// The `info` body: versions and a summary of the model the device runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InfoAnswer<'a> {
    /// The device's [`crate::VERSION`] (always that of the frame's version byte).
    pub version: u8,
    /// The device's [`crate::REVISION`]: which additions of this version it knows.
    pub revision: u8,
    /// Largest decoded request frame the device accepts, in bytes.
    pub max_request: u16,
    /// How the model was trained.
    pub method: Method,
    /// Its weights.
    pub element_type: ElementType,
    /// Image pixels per row.
    pub width: u16,
    /// Image rows.
    pub height: u16,
    /// Experts K.
    pub experts: u16,
    /// Latent size of the decoders.
    pub latent: u16,
    /// Size of the model file in bytes.
    pub model_len: u32,
    /// The model file's CRC-32 (its header's, over its body): which model it is.
    pub model_crc: u32,
    /// Digit label per cluster, if the model has a label map (`experts` bytes).
    pub label_map: Option<&'a [u8]>,
    /// Firmware name and version (at most 255 bytes of UTF-8).
    pub firmware: &'a str,
}

/// The `classify` body: the gate's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClassifyAnswer<'a> {
    /// Cluster (expert) with the highest probability.
    pub cluster: u8,
    /// Its digit label, if the model has a label map (never 255 on the wire's
    /// account: 255 means none).
    pub label: Option<u8>,
    /// Probability of the cluster, as `f32` bits (exactly the device's value).
    pub confidence: u32,
    /// The gate's softmax, K values as `f32` bits.
    pub probabilities: Vec<u32, MAX_EXPERTS>,
    /// Fields of later versions: revision 2's style record (read it with
    /// [`style`](Self::style)) and revision 3's novelty record
    /// ([`novelty`](Self::novelty)).
    pub extensions: Extensions<'a>,
}

/// A two-level model's verdict within the chosen cluster: the style record
/// (tag [`STYLE`](crate::ext::STYLE), `style: u8, confidence: f32`) of a
/// revision-2 `classify` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Style {
    /// The style of the cluster with the highest probability (0 in a flat
    /// model).
    pub style: u8,
    /// Its probability within the cluster, `p(style | cluster)`, as `f32`
    /// bits (exactly the device's value; 1.0 in a flat model).
    pub confidence: u32,
}

impl Style {
    /// [`confidence`](Self::confidence) as an `f32`.
    pub fn confidence_f32(&self) -> f32 {
        f32::from_bits(self.confidence)
    }
}

/// How unlike the model's training images the input is: the novelty
/// record (tag [`NOVELTY`](crate::ext::NOVELTY), `score: f32, known: u8`)
/// of a revision-3 `classify` answer from a model with a novelty section
/// (`engine::Novelty`'s `score` and `known`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Novelty {
    /// The score in threshold units (1 = at the threshold), as `f32` bits
    /// (exactly the device's value; `+∞` possible).
    pub score: u32,
    /// Whether the score is within the threshold (`score <= 1`).
    pub known: bool,
}

impl Novelty {
    /// [`score`](Self::score) as an `f32`.
    pub fn score_f32(&self) -> f32 {
        f32::from_bits(self.score)
    }
}

impl From<engine::Novelty> for Novelty {
    fn from(n: engine::Novelty) -> Self {
        Novelty {
            score: n.score.to_bits(),
            known: n.known,
        }
    }
}

impl ClassifyAnswer<'static> {
    /// The answer for an engine result.
    ///
    /// ```
    /// let bytes = engine::testing::tiny_model_bytes();
    /// let model = engine::Model::from_bytes(&bytes)?;
    /// let mut ws = engine::Workspace::<784>::new();
    /// let c = model.classify(&mut ws, &[0u8; 784])?;
    /// let a = device_protocol::ClassifyAnswer::from_engine(&c);
    /// assert_eq!(a.cluster as usize, c.cluster);
    /// assert_eq!(a.confidence_f32(), c.confidence());
    /// // A flat model's style: 0, certain.
    /// let style = a.style().unwrap();
    /// assert_eq!((style.style, style.confidence_f32()), (0, 1.0));
    /// // A model without a novelty section: no novelty record.
    /// assert_eq!(a.novelty(), None);
    /// # Ok::<(), engine::Error>(())
    /// ```
    pub fn from_engine(c: &engine::Classification) -> Self {
        ClassifyAnswer {
            cluster: c.cluster.min(255) as u8,
            label: c.label.filter(|&l| l != NO_LABEL),
            confidence: c.confidence().to_bits(),
            probabilities: c.probabilities.iter().map(|p| p.to_bits()).collect(),
            extensions: Extensions::classify_answer(
                c.style.min(255) as u8,
                c.style_confidence().to_bits(),
                c.novelty.map(Novelty::from),
            ),
        }
    }
}

impl ClassifyAnswer<'_> {
    /// [`confidence`](Self::confidence) as an `f32`.
    pub fn confidence_f32(&self) -> f32 {
        f32::from_bits(self.confidence)
    }

    /// The probabilities as `f32`s.
    pub fn probabilities_f32(&self) -> impl Iterator<Item = f32> + '_ {
        self.probabilities.iter().map(|&b| f32::from_bits(b))
    }

    /// Revision 2: the style within the cluster, from the style record
    /// (`None` from a revision-1 device, which sends none).
    pub fn style(&self) -> Option<Style> {
        match *self.extensions.get(STYLE)? {
            [style, a, b, c, d] => Some(Style {
                style,
                confidence: u32::from_le_bytes([a, b, c, d]),
            }),
            _ => None,
        }
    }

    /// Revision 3: the novelty score, from the novelty record (`None` from
    /// a device whose model has no novelty section, or of revision 2 or
    /// older, which sends none).
    pub fn novelty(&self) -> Option<Novelty> {
        match *self.extensions.get(NOVELTY)? {
            [a, b, c, d, known @ (0 | 1)] => Some(Novelty {
                score: u32::from_le_bytes([a, b, c, d]),
                known: known == 1,
            }),
            _ => None,
        }
    }
}

/// The `generate` body: the image, u8 pixels row-major.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GenerateAnswer<'a> {
    /// Pixels per row.
    pub width: u16,
    /// Rows.
    pub height: u16,
    /// `width × height` pixels ([`engine::to_pixels`] of the decoder's output).
    pub pixels: &'a [u8],
}

/// The `selftest` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SelftestAnswer<'a> {
    /// Whether every check passed.
    pub passed: bool,
    /// Checks run.
    pub checks: u16,
    /// Checks failed.
    pub failures: u16,
    /// What failed, or a summary (at most 255 bytes of UTF-8).
    pub text: &'a str,
}

/// The `stats` body. Its `cycles` in the [`Answer`] are those of the stats
/// request itself; `last_cycles` are those of the request before it, in the
/// same unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatsAnswer {
    /// Kind byte of the last request answered before this one (0: none).
    pub last_kind: u8,
    /// Its cost.
    pub last_cycles: u64,
    /// Stack high-water mark in bytes (0: not measured).
    pub stack_used: u32,
    /// Stack size in bytes (0: not known).
    pub stack_size: u32,
    /// Valid frames received since boot.
    pub requests: u32,
    /// Frames rejected since boot (COBS, length, CRC, oversize).
    pub rejected: u32,
    /// Revision 1: the device-side cost of the last request as a whole, in
    /// the same unit: from the call of [`crate::Server::receive`] that got
    /// its first byte to its answer encoded, the frame's decoding, checks
    /// and the answer's encoding included, the transport's waiting and
    /// sending not (0: not measured, or a revision-0 device).
    /// `last_total - last_cycles` is the protocol's overhead.
    pub last_total: u64,
}

/// What a refused request gets: the status and two numbers whose meaning the
/// status gives (see [`Status`]), and an optional text.
///
/// ```
/// use device_protocol::{Failure, Status};
/// let f = Failure::new(Status::ExpertRange).with(10, 12).text("expert 12 of 10");
/// assert_eq!((f.expected, f.got), (10, 12));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Failure<'a> {
    /// Why (never [`Status::Ok`]).
    pub status: Status,
    /// What the device expected (by status).
    pub expected: u32,
    /// What it got.
    pub got: u32,
    /// Detail (at most 255 bytes of UTF-8; may be empty).
    pub text: &'a str,
}

impl<'a> Failure<'a> {
    /// A failure with no detail.
    pub const fn new(status: Status) -> Failure<'static> {
        Failure {
            status,
            expected: 0,
            got: 0,
            text: "",
        }
    }

    /// With `expected` and `got`.
    pub const fn with(mut self, expected: u32, got: u32) -> Self {
        self.expected = expected;
        self.got = got;
        self
    }

    /// With a text.
    pub const fn text<'b>(self, text: &'b str) -> Failure<'b> {
        Failure {
            status: self.status,
            expected: self.expected,
            got: self.got,
            text,
        }
    }
}

/// An answer's body, by the kind of its request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Body<'a> {
    /// To `info`.
    Info(InfoAnswer<'a>),
    /// To `classify`.
    Classify(ClassifyAnswer<'a>),
    /// To `generate`.
    Generate(GenerateAnswer<'a>),
    /// To `selftest`.
    Selftest(SelftestAnswer<'a>),
    /// To `stats`.
    Stats(StatsAnswer),
    /// To `shutdown`: the device stops after sending it.
    Shutdown,
    /// Any request refused.
    Failed {
        /// The kind byte of the refused request.
        request: u8,
        /// Why.
        failure: Failure<'a>,
    },
}

/// An answer: what the work cost and its result.
///
/// Payload: `status: u8`, `unit: u8`, `cycles: u64`, then the body of the
/// request's kind if the status is `Ok`, else `request kind: u8`,
/// `expected: u32`, `got: u32`, `text: u8 length + UTF-8`. Readers ignore
/// bytes after the fields they know (except `classify`'s, whose extension area
/// must be well-formed), so that newer devices can append fields.
///
/// ```
/// use device_protocol::{Answer, Body, CounterUnit, Failure, Status};
/// let a = Answer {
///     unit: CounterUnit::Cycles,
///     cycles: 1000,
///     body: Body::Failed { request: 0x03, failure: Failure::new(Status::ExpertRange).with(10, 12) },
/// };
/// assert_eq!(a.kind(), 0x83);
/// let mut buf = [0u8; 32];
/// let n = a.emit(&mut buf)?;
/// assert_eq!(&buf[..n], &[7, 1, 0xe8, 3, 0, 0, 0, 0, 0, 0, 3, 10, 0, 0, 0, 12, 0, 0, 0, 0]);
/// assert_eq!(Answer::parse(0x83, &buf[..n])?, a);
/// # Ok::<(), device_protocol::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Answer<'a> {
    /// What `cycles` count.
    pub unit: CounterUnit,
    /// Device-side cost of the work, from the request's last byte to the
    /// answer's encoding.
    pub cycles: u64,
    /// The result.
    pub body: Body<'a>,
}

/// The label byte of a cluster without label.
const NO_LABEL: u8 = 0xFF;

impl<'a> Answer<'a> {
    /// Its status: `Ok` unless the body is [`Body::Failed`].
    pub const fn status(&self) -> Status {
        match &self.body {
            Body::Failed { failure, .. } => failure.status,
            _ => Status::Ok,
        }
    }

    /// The kind byte of its frame.
    pub const fn kind(&self) -> u8 {
        answer_kind(match &self.body {
            Body::Info(_) => Kind::Info as u8,
            Body::Classify(_) => Kind::Classify as u8,
            Body::Generate(_) => Kind::Generate as u8,
            Body::Selftest(_) => Kind::Selftest as u8,
            Body::Stats(_) => Kind::Stats as u8,
            Body::Shutdown => Kind::Shutdown as u8,
            Body::Failed { request, .. } => *request,
        })
    }

    /// Reads the payload of a frame of kind byte `kind`.
    /// [`Error::UnknownKind`] for a kind that is no answer of this version,
    /// [`Error::Truncated`] / [`Error::Invalid`] for a bad payload.
    pub fn parse(kind: u8, payload: &'a [u8]) -> Result<Self, Error> {
        if kind & 0x80 == 0 {
            return Err(Error::UnknownKind(kind));
        }
        let mut c = Cursor::new(payload);
        let status = Status::from(c.u8()?);
        let unit = CounterUnit::from(c.u8()?);
        let cycles = c.u64()?;
        let body = if status != Status::Ok {
            let request = c.u8()?;
            if answer_kind(request) != kind {
                return Err(Error::Invalid);
            }
            let failure = Failure {
                status,
                expected: c.u32()?,
                got: c.u32()?,
                text: c.short_str()?,
            };
            Body::Failed { request, failure }
        } else {
            match Kind::from_u8(kind & 0x7F).filter(|_| kind != 0xFF) {
                None => return Err(Error::UnknownKind(kind)),
                Some(Kind::Info) => Body::Info(parse_info(&mut c)?),
                Some(Kind::Classify) => {
                    let cluster = c.u8()?;
                    let label = Some(c.u8()?).filter(|&l| l != NO_LABEL);
                    let confidence = c.u32()?;
                    let k = c.u8()? as usize;
                    if k > MAX_EXPERTS {
                        return Err(Error::Invalid);
                    }
                    let mut probabilities = Vec::new();
                    for _ in 0..k {
                        probabilities.push(c.u32()?).map_err(|_| Error::Invalid)?;
                    }
                    let extensions = Extensions::new_checked(c.rest())?;
                    extensions.check_answer()?;
                    Body::Classify(ClassifyAnswer {
                        cluster,
                        label,
                        confidence,
                        probabilities,
                        extensions,
                    })
                }
                Some(Kind::Generate) => {
                    let width = c.u16()?;
                    let height = c.u16()?;
                    let pixels = c.take(width as usize * height as usize)?;
                    Body::Generate(GenerateAnswer {
                        width,
                        height,
                        pixels,
                    })
                }
                Some(Kind::Selftest) => {
                    let passed = match c.u8()? {
                        0 => false,
                        1 => true,
                        _ => return Err(Error::Invalid),
                    };
                    Body::Selftest(SelftestAnswer {
                        passed,
                        checks: c.u16()?,
                        failures: c.u16()?,
                        text: c.short_str()?,
                    })
                }
                Some(Kind::Stats) => Body::Stats(StatsAnswer {
                    last_kind: c.u8()?,
                    last_cycles: c.u64()?,
                    stack_used: c.u32()?,
                    stack_size: c.u32()?,
                    requests: c.u32()?,
                    rejected: c.u32()?,
                    // Revision 1; absent from a revision-0 device's answer.
                    last_total: if c.rest().is_empty() { 0 } else { c.u64()? },
                }),
                Some(Kind::Shutdown) => Body::Shutdown,
            }
        };
        Ok(Answer { unit, cycles, body })
    }

    /// Bytes [`emit`](Self::emit) writes (for a valid answer).
    pub fn payload_len(&self) -> usize {
        10 + match &self.body {
            Body::Info(i) => 24 + i.label_map.map_or(0, <[u8]>::len) + i.firmware.len(),
            Body::Classify(c) => 7 + 4 * c.probabilities.len() + c.extensions.as_bytes().len(),
            Body::Generate(g) => 4 + g.pixels.len(),
            Body::Selftest(s) => 6 + s.text.len(),
            Body::Stats(_) => 33,
            Body::Shutdown => 0,
            Body::Failed { failure, .. } => 10 + failure.text.len(),
        }
    }

    /// Writes the payload; returns its length. [`Error::Invalid`] for an
    /// answer that would not parse back the same (a failure with status
    /// `Ok`, a label of 255, an empty label map or one not of `experts`
    /// bytes, pixels that are not `width × height`, a classify answer's
    /// style or novelty record not of 5 bytes or twice, a novelty record's
    /// `known` byte not 0 or 1); [`Error::TooLong`] for a
    /// text over 255 bytes; [`Error::BufferTooSmall`].
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(out);
        w.u8(self.status().into())?;
        w.u8(self.unit.into())?;
        w.u64(self.cycles)?;
        match &self.body {
            Body::Info(i) => emit_info(&mut w, i)?,
            Body::Classify(c) => {
                if c.label == Some(NO_LABEL) {
                    return Err(Error::Invalid);
                }
                c.extensions.check_answer()?;
                w.u8(c.cluster)?;
                w.u8(c.label.unwrap_or(NO_LABEL))?;
                w.u32(c.confidence)?;
                w.u8(c.probabilities.len() as u8)?;
                for &p in &c.probabilities {
                    w.u32(p)?;
                }
                w.put(c.extensions.as_bytes())?;
            }
            Body::Generate(g) => {
                if g.pixels.len() != g.width as usize * g.height as usize {
                    return Err(Error::Invalid);
                }
                w.u16(g.width)?;
                w.u16(g.height)?;
                w.put(g.pixels)?;
            }
            Body::Selftest(s) => {
                w.u8(s.passed.into())?;
                w.u16(s.checks)?;
                w.u16(s.failures)?;
                w.short_str(s.text)?;
            }
            Body::Stats(s) => {
                w.u8(s.last_kind)?;
                w.u64(s.last_cycles)?;
                w.u32(s.stack_used)?;
                w.u32(s.stack_size)?;
                w.u32(s.requests)?;
                w.u32(s.rejected)?;
                w.u64(s.last_total)?;
            }
            Body::Shutdown => {}
            Body::Failed { request, failure } => {
                if failure.status == Status::Ok {
                    return Err(Error::Invalid);
                }
                w.u8(*request)?;
                w.u32(failure.expected)?;
                w.u32(failure.got)?;
                w.short_str(failure.text)?;
            }
        }
        Ok(w.len())
    }
}

fn parse_info<'a>(c: &mut Cursor<'a>) -> Result<InfoAnswer<'a>, Error> {
    let version = c.u8()?;
    let revision = c.u8()?;
    let max_request = c.u16()?;
    let method = Method::from(c.u8()?);
    let element_type = ElementType::from(c.u8()?);
    let width = c.u16()?;
    let height = c.u16()?;
    let experts = c.u16()?;
    let latent = c.u16()?;
    let model_len = c.u32()?;
    let model_crc = c.u32()?;
    let n = c.u8()? as usize;
    let label_map = match n {
        0 => None,
        n if n == experts as usize => Some(c.take(n)?),
        _ => return Err(Error::Invalid),
    };
    let firmware = c.short_str()?;
    Ok(InfoAnswer {
        version,
        revision,
        max_request,
        method,
        element_type,
        width,
        height,
        experts,
        latent,
        model_len,
        model_crc,
        label_map,
        firmware,
    })
}

fn emit_info(w: &mut Writer<'_>, i: &InfoAnswer<'_>) -> Result<(), Error> {
    w.u8(i.version)?;
    w.u8(i.revision)?;
    w.u16(i.max_request)?;
    w.u8(i.method.into())?;
    w.u8(i.element_type.into())?;
    w.u16(i.width)?;
    w.u16(i.height)?;
    w.u16(i.experts)?;
    w.u16(i.latent)?;
    w.u32(i.model_len)?;
    w.u32(i.model_crc)?;
    match i.label_map {
        None => w.u8(0)?,
        Some(m) if !m.is_empty() && m.len() == i.experts as usize => {
            w.u8(u8::try_from(m.len()).map_err(|_| Error::TooLong)?)?;
            w.put(m)?;
        }
        Some(_) => return Err(Error::Invalid),
    }
    w.short_str(i.firmware)
}
