//! Requests, host to device: one [`Request`] per kind, with symmetric
//! [`parse`](Request::parse) and [`emit`](Request::emit).

use crate::bytes::{Cursor, Writer};
use crate::ext::STYLE;
use crate::{Error, Extensions, Kind};

/// `classify`: one image, u8 pixels row-major (0 = paper, 255 = ink), of
/// the shape the host believes the model has (the device answers
/// [`Status::ImageSize`](crate::Status::ImageSize) if it has another).
///
/// Payload: `width: u16`, `height: u16`, `width × height` pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClassifyRequest<'a> {
    /// Pixels per row.
    pub width: u16,
    /// Rows.
    pub height: u16,
    /// `width × height` pixels.
    pub pixels: &'a [u8],
}

/// `generate`: draw one image from an expert's decoder.
///
/// Payload: `expert: u8`, `seed: u64`, then the extension area: revision
/// 2's style record ([`Extensions::style_request`]), later versions'
/// options (e.g. a temperature).
///
/// ```
/// use device_protocol::{Extensions, GenerateRequest, Request};
/// let g = GenerateRequest { expert: 3, seed: 7, extensions: Extensions::style_request(1) };
/// assert_eq!(g.style(), Some(1));
/// let mut buf = [0u8; 16];
/// let n = Request::Generate(g).emit(&mut buf)?;
/// assert_eq!(&buf[..n], &[3, 7, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x01, 0x01]);
/// assert_eq!(Request::parse(0x03, &buf[..n])?, Request::Generate(g));
/// # Ok::<(), device_protocol::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GenerateRequest<'a> {
    /// Expert (cluster) index.
    pub expert: u8,
    /// Seed of the latent draw (the engine's SplitMix64).
    pub seed: u64,
    /// Further fields of later versions: revision 2's style record (read
    /// it with [`style`](Self::style)).
    pub extensions: Extensions<'a>,
}

impl GenerateRequest<'_> {
    /// Revision 2: the style of the cluster to draw from, from the style
    /// record (`None`: no record, the device draws from style 0).
    pub fn style(&self) -> Option<u8> {
        match *self.extensions.get(STYLE)? {
            [style] => Some(style),
            _ => None,
        }
    }
}

/// A request, by kind. Payloads of `Info`, `Selftest`, `Stats` and
/// `Shutdown` are empty.
///
/// ```
/// use device_protocol::{ClassifyRequest, Request};
/// let pixels = [0u8, 255, 255, 0];
/// let req = Request::Classify(ClassifyRequest { width: 2, height: 2, pixels: &pixels });
/// let mut buf = [0u8; 16];
/// let n = req.emit(&mut buf)?;
/// assert_eq!(&buf[..n], &[2, 0, 2, 0, 0, 255, 255, 0]);
/// assert_eq!(Request::parse(0x02, &buf[..n])?, req);
/// # Ok::<(), device_protocol::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Request<'a> {
    /// Versions and model summary.
    Info,
    /// Classify an image.
    Classify(ClassifyRequest<'a>),
    /// Draw an image.
    Generate(GenerateRequest<'a>),
    /// Run the built-in checks.
    Selftest,
    /// Last request's cost, stack high-water mark.
    Stats,
    /// End an emulated run (test builds only).
    Shutdown,
}

impl<'a> Request<'a> {
    /// Its kind.
    pub const fn kind(&self) -> Kind {
        match self {
            Request::Info => Kind::Info,
            Request::Classify(_) => Kind::Classify,
            Request::Generate(_) => Kind::Generate,
            Request::Selftest => Kind::Selftest,
            Request::Stats => Kind::Stats,
            Request::Shutdown => Kind::Shutdown,
        }
    }

    /// Reads the payload of a frame of kind byte `kind`. Bytes after the
    /// fields of this version are ignored (a newer host's additions), except
    /// for `generate`, whose extension area must be well-formed.
    /// [`Error::UnknownKind`] for a kind this version does not know,
    /// [`Error::Truncated`] / [`Error::Invalid`] for a bad payload.
    pub fn parse(kind: u8, payload: &'a [u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(payload);
        Ok(match Kind::from_u8(kind).ok_or(Error::UnknownKind(kind))? {
            Kind::Info => Request::Info,
            Kind::Selftest => Request::Selftest,
            Kind::Stats => Request::Stats,
            Kind::Shutdown => Request::Shutdown,
            Kind::Classify => {
                let width = c.u16()?;
                let height = c.u16()?;
                let pixels = c.take(width as usize * height as usize)?;
                Request::Classify(ClassifyRequest {
                    width,
                    height,
                    pixels,
                })
            }
            Kind::Generate => {
                let expert = c.u8()?;
                let seed = c.u64()?;
                let extensions = Extensions::new_checked(c.rest())?;
                extensions.check_request()?;
                Request::Generate(GenerateRequest {
                    expert,
                    seed,
                    extensions,
                })
            }
        })
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub fn payload_len(&self) -> usize {
        match self {
            Request::Info | Request::Selftest | Request::Stats | Request::Shutdown => 0,
            Request::Classify(c) => 4 + c.pixels.len(),
            Request::Generate(g) => 9 + g.extensions.as_bytes().len(),
        }
    }

    /// Writes the payload; returns its length. [`Error::Invalid`] if a
    /// classify request's pixels are not `width × height`, or a generate
    /// request's style record is not of 1 byte or comes twice.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, Error> {
        let mut w = Writer::new(out);
        match self {
            Request::Info | Request::Selftest | Request::Stats | Request::Shutdown => {}
            Request::Classify(c) => {
                if c.pixels.len() != c.width as usize * c.height as usize {
                    return Err(Error::Invalid);
                }
                w.u16(c.width)?;
                w.u16(c.height)?;
                w.put(c.pixels)?;
            }
            Request::Generate(g) => {
                w.u8(g.expert)?;
                w.u64(g.seed)?;
                g.extensions.check_request()?;
                w.put(g.extensions.as_bytes())?;
            }
        }
        Ok(w.len())
    }
}
