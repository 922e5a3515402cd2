//! The one-byte codes of the protocol: message kinds, answer status, the
//! unit of the cost counter, and the model summary's enumerations. Every code
//! a newer peer may send that this version does not know is kept as
//! `Other(u8)`, never an error, so that old hosts read new devices.

/// Request kinds (`0x01..=0x7E`). The answer to a request of kind `k` has
/// kind `k | 0x80` ([`answer_kind`]).
///
/// ```
/// use device_protocol::{answer_kind, Kind};
/// assert_eq!(Kind::Classify as u8, 0x02);
/// assert_eq!(answer_kind(Kind::Classify as u8), 0x82);
/// assert_eq!(Kind::from_u8(0x05), Some(Kind::Stats));
/// assert_eq!(Kind::from_u8(0x42), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// Protocol version, firmware version, model summary.
    Info = 0x01,
    /// Classify one image (u8 pixels).
    Classify = 0x02,
    /// Draw one image from an expert's decoder.
    Generate = 0x03,
    /// Run the firmware's built-in checks.
    Selftest = 0x04,
    /// Cost of the last request, stack high-water mark, counters.
    Stats = 0x05,
    /// End an emulated test run: honoured only by test builds (others answer
    /// [`Status::Unsupported`]).
    Shutdown = 0x7E,
}

impl Kind {
    /// The kind of a request byte, if this version knows it.
    pub const fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            0x01 => Kind::Info,
            0x02 => Kind::Classify,
            0x03 => Kind::Generate,
            0x04 => Kind::Selftest,
            0x05 => Kind::Stats,
            0x7E => Kind::Shutdown,
            _ => return None,
        })
    }
}

/// The kind byte of an answer to a request of kind byte `request`:
/// `request | 0x80`, or `0xFF` for a byte that has its top bit set already
/// (an answer sent to a device is refused with [`Status::UnknownKind`] in an
/// answer of kind `0xFF`; `0x7F` is never a request kind, so `0xFF` is
/// unambiguous).
///
/// ```
/// assert_eq!(device_protocol::answer_kind(0x01), 0x81);
/// assert_eq!(device_protocol::answer_kind(0x83), 0xFF);
/// ```
pub const fn answer_kind(request: u8) -> u8 {
    if request & 0x80 == 0 {
        request | 0x80
    } else {
        0xFF
    }
}

macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $val:expr,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $var,)*
            /// A code this version does not know (from a newer peer), kept as sent.
            Other(u8),
        }

        impl From<u8> for $name {
            fn from(v: u8) -> Self {
                match v {
                    $($val => $name::$var,)*
                    other => $name::Other(other),
                }
            }
        }

        impl From<$name> for u8 {
            fn from(v: $name) -> u8 {
                match v {
                    $($name::$var => $val,)*
                    $name::Other(other) => other,
                }
            }
        }
    };
}

code_enum! {
    /// The first byte of every answer's payload. `Ok` answers carry the body
    /// of their kind; every other status carries a [`crate::Failure`].
    ///
    /// ```
    /// use device_protocol::Status;
    /// assert_eq!(u8::from(Status::ImageSize), 6);
    /// assert_eq!(Status::from(6), Status::ImageSize);
    /// assert_eq!(Status::from(200), Status::Other(200));
    /// ```
    Status {
        /// Done; the body of the request's kind follows.
        Ok = 0,
        /// The request's CRC-32 did not match (answered only when its version
        /// byte and length field were right, so that the id is likely intact).
        BadCrc = 1,
        /// The payload does not parse as its kind (truncated, out of range).
        Malformed = 2,
        /// The device does not know the request's kind.
        UnknownKind = 3,
        /// The request's version byte is not the device's
        /// (`expected` = the device's, `got` = the request's).
        VersionMismatch = 4,
        /// The request was larger than the device's receive buffer, or the
        /// answer larger than its send buffer (`expected` = the capacity,
        /// `got` = the length).
        Oversize = 5,
        /// The image is not the model's shape (`expected` and `got`:
        /// `width << 16 | height`).
        ImageSize = 6,
        /// No such expert (`expected` = the number of experts, `got` = the index).
        ExpertRange = 7,
        /// The device cannot take the request now; try again.
        Busy = 8,
        /// The device knows the request but does not do it (a shutdown sent
        /// to a build that is not a test build).
        Unsupported = 9,
        /// The engine refused (its error in the text).
        Internal = 10,
    }
}

impl Status {
    /// Revision 2's status 11: no such style in the cluster (`expected` =
    /// the cluster's number of styles, `got` = the style asked for).
    /// `Other(11)`, not a variant of its own, so that adding it broke no
    /// exhaustive `match` of revision-1 code (an older reader sees the same
    /// `Other(11)`).
    ///
    /// ```
    /// use device_protocol::Status;
    /// assert_eq!(Status::from(11), Status::STYLE_RANGE);
    /// assert_eq!(u8::from(Status::STYLE_RANGE), 11);
    /// ```
    pub const STYLE_RANGE: Status = Status::Other(11);
}

code_enum! {
    /// What an answer's `cycles` count.
    ///
    /// ```
    /// use device_protocol::CounterUnit;
    /// assert_eq!(CounterUnit::from(3), CounterUnit::Microseconds);
    /// ```
    CounterUnit {
        /// Nothing was measured (`cycles` is 0).
        None = 0,
        /// Core clock cycles (RP2040: SysTick on the core clock).
        Cycles = 1,
        /// Retired instructions (emulators under `-icount`, RISC-V `minstret`).
        Instructions = 2,
        /// Microseconds (ESP32-C3: SYSTIMER).
        Microseconds = 3,
    }
}

code_enum! {
    /// How the model was trained ([`engine::Method`]).
    ///
    /// ```
    /// use device_protocol::Method;
    /// assert_eq!(Method::from(engine::Method::KVae), Method::KVae);
    /// ```
    Method {
        /// A gate routing to K VAE experts, trained jointly.
        MixtureOfVaes = 0,
        /// k VAEs trained competitively.
        KVae = 1,
    }
}

impl From<engine::Method> for Method {
    fn from(m: engine::Method) -> Self {
        match m {
            engine::Method::MixtureOfVaes => Method::MixtureOfVaes,
            engine::Method::KVae => Method::KVae,
        }
    }
}

code_enum! {
    /// The model's weights ([`engine::ElementType`]).
    ///
    /// ```
    /// use device_protocol::ElementType;
    /// assert_eq!(ElementType::from(engine::ElementType::Int8), ElementType::Int8);
    /// ```
    ElementType {
        /// f16 weights computed in f32.
        F16 = 0,
        /// int8 weights computed in integers.
        Int8 = 1,
    }
}

impl From<engine::ElementType> for ElementType {
    fn from(e: engine::ElementType) -> Self {
        match e {
            engine::ElementType::F16 => ElementType::F16,
            engine::ElementType::Int8 => ElementType::Int8,
        }
    }
}
