//! `harness device`: the host side of the device protocol
//! (`firmware-example/PROTOCOL.md`), over a serial port or a device
//! program's stdin/stdout (`fw-host serve`, which runs the boards' own
//! handler, `firmware_common::device`, on the host).
//!
//! Every failure is one line: no such port, permission denied (the
//! `dialout` group), no answer within the timeout, a protocol version
//! mismatch, an answer that fails its CRC-32, a request the device refused
//! (with its status and numbers).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use device_protocol::{
    answer_kind, encode_request, parse_answer, wire_len, Answer, Body, ClassifyAnswer,
    ClassifyRequest, CounterUnit, Error, Failure, Frame, FrameReader, InfoAnswer, Request,
    StatsAnswer, Status, MAX_FRAME, VERSION,
};

/// How to reach the device.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct LinkArgs {
    /// Serial port of the board (e.g. /dev/ttyACM0 for USB CDC, /dev/ttyUSB0
    /// for a USB-serial adapter on its UART).
    #[arg(long, value_name = "PATH", required_unless_present = "spawn")]
    pub port: Option<PathBuf>,
    /// Instead of a port: run COMMAND, one program and its arguments (as
    /// `sh -c "exec COMMAND"`: shell quoting applies), and talk to it over
    /// its stdin/stdout, e.g. "fw-host serve --model model.bin". Its
    /// stderr is the harness's; it gets end of input when the harness is
    /// done, and is killed a second later if still running.
    #[arg(long, value_name = "COMMAND", conflicts_with = "port")]
    pub spawn: Option<String>,
    /// Baud rate of the port (ignored by USB CDC devices and --spawn).
    #[arg(long, default_value_t = 115_200)]
    pub baud: u32,
    /// How long to wait for each answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub timeout_ms: u64,
}

/// A received chunk, the end of the stream (an empty chunk), or a read error.
type Chunk = std::io::Result<Vec<u8>>;

/// A connected device: requests out, answer frames in.
pub struct Device {
    /// "port /dev/ttyACM0" or "`COMMAND`", for messages.
    name: String,
    writer: Option<Box<dyn Write + Send>>,
    chunks: mpsc::Receiver<Chunk>,
    stop: Arc<AtomicBool>,
    child: Option<Child>,
    reader: Box<FrameReader<MAX_FRAME>>,
    pending: Vec<u8>,
    pos: usize,
    closed: bool,
    next_id: u16,
    timeout: Duration,
}

/// Reads `source` on a thread of its own, forwarding chunks, so that a
/// read can be waited for with a deadline whatever the source.
fn reader_thread(mut source: Box<dyn Read + Send>, stop: Arc<AtomicBool>) -> mpsc::Receiver<Chunk> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while !stop.load(Ordering::Relaxed) {
            match source.read(&mut buf) {
                Ok(0) => {
                    let _ = tx.send(Ok(Vec::new()));
                    return;
                }
                Ok(n) => {
                    if tx.send(Ok(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
                // A serial port's read timeout: look at `stop`, read again.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                            | std::io::ErrorKind::WouldBlock
                    ) => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    rx
}

impl Device {
    /// Opens the device `link` names.
    pub fn open(link: &LinkArgs) -> Result<Device> {
        let timeout = Duration::from_millis(link.timeout_ms);
        match (&link.port, &link.spawn) {
            (Some(port), _) => Device::port(port, link.baud, timeout),
            (None, Some(command)) => Device::spawn(command, timeout),
            (None, None) => bail!("give --port PATH or --spawn COMMAND"),
        }
    }

    /// A serial port.
    pub fn port(path: &std::path::Path, baud: u32, timeout: Duration) -> Result<Device> {
        let shown = path.display();
        if !path.exists() {
            bail!("no such port {shown} (is the board plugged in? `ls /dev/ttyACM* /dev/ttyUSB*`)");
        }
        let port = serialport::new(path.to_string_lossy(), baud)
            .timeout(Duration::from_millis(50))
            .open()
            .map_err(|e| match e.kind() {
                serialport::ErrorKind::Io(std::io::ErrorKind::NotFound) => {
                    anyhow!("no such port {shown}")
                }
                serialport::ErrorKind::Io(std::io::ErrorKind::PermissionDenied) => anyhow!(
                    "permission denied on {shown}: add yourself to the `dialout` group \
                     (`sudo usermod -aG dialout $USER`, then log in again)"
                ),
                serialport::ErrorKind::NoDevice => {
                    anyhow!("{shown} is busy or gone (another program has it open?): {e}")
                }
                _ => anyhow!("{shown}: cannot open as a serial port: {e}"),
            })?;
        let mut port = port;
        // USB CDC firmware often sends only while DTR is set; a pty refuses
        // modem lines, which is no matter.
        let _ = port.write_data_terminal_ready(true);
        let reading = port
            .try_clone()
            .map_err(|e| anyhow!("{shown}: cannot read: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let chunks = reader_thread(Box::new(reading), stop.clone());
        Ok(Device::new(
            format!("port {shown}"),
            Box::new(port),
            chunks,
            stop,
            None,
            timeout,
        ))
    }

    /// A device program: `command` run by `sh -c "exec command"`, spoken to
    /// on its stdin and stdout (its stderr is the harness's).
    pub fn spawn(command: &str, timeout: Duration) -> Result<Device> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("exec {command}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| anyhow!("cannot run `{command}`: {e}"))?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let chunks = reader_thread(Box::new(stdout), stop.clone());
        Ok(Device::new(
            format!("`{command}`"),
            Box::new(stdin),
            chunks,
            stop,
            Some(child),
            timeout,
        ))
    }

    fn new(
        name: String,
        writer: Box<dyn Write + Send>,
        chunks: mpsc::Receiver<Chunk>,
        stop: Arc<AtomicBool>,
        child: Option<Child>,
        timeout: Duration,
    ) -> Device {
        Device {
            name,
            writer: Some(writer),
            chunks,
            stop,
            child,
            reader: Box::new(FrameReader::new()),
            pending: Vec::new(),
            pos: 0,
            closed: false,
            next_id: 1,
            timeout,
        }
    }

    /// What the device is, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Why the device stopped talking: a device program's exit status.
    fn gone(&mut self) -> String {
        if let Some(child) = &mut self.child {
            let deadline = Instant::now() + Duration::from_millis(500);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = child.try_wait() {
                    return format!("{} exited ({status})", self.name);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            return format!("{} closed its output", self.name);
        }
        format!("{} closed", self.name)
    }

    /// The next frame the device sends, decoded (its CRC checked), before
    /// `deadline`.
    fn next_frame(&mut self, deadline: Instant, what: &str) -> Result<Vec<u8>> {
        loop {
            while self.pos < self.pending.len() {
                let byte = self.pending[self.pos];
                self.pos += 1;
                match self.reader.push(byte) {
                    Some(Ok(frame)) => return Ok(frame.inner().to_vec()),
                    Some(Err(rejected)) if rejected.error == Error::Crc => bail!(
                        "{}: the answer to {what} failed its CRC-32 (line noise, or a wrong baud rate?)",
                        self.name
                    ),
                    // Text or noise between frames: skipped, as the protocol says.
                    _ => {}
                }
            }
            self.pending.clear();
            self.pos = 0;
            if self.closed {
                let why = self.gone();
                bail!("{why} without answering {what}");
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(Ok(chunk)) if chunk.is_empty() => self.closed = true,
                Ok(Ok(chunk)) => self.pending = chunk,
                Ok(Err(e)) => bail!("{}: read: {e}", self.name),
                Err(mpsc::RecvTimeoutError::Timeout) => bail!(
                    "no answer from {} to {what} in {} ms (--timeout-ms)",
                    self.name,
                    self.timeout.as_millis()
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => self.closed = true,
            }
        }
    }

    /// Sends `request`; returns its answer's decoded frame (read it with
    /// [`answer`]) and the round trip. Answers to other requests (a late
    /// answer to an earlier one) are skipped.
    pub fn ask(&mut self, request: &Request<'_>) -> Result<(Vec<u8>, Duration)> {
        let what = kind_name(request.kind() as u8);
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let mut wire = vec![0u8; wire_len(MAX_FRAME)];
        let n = encode_request(id, request, &mut wire)
            .map_err(|e| anyhow!("cannot encode {what}: {e}"))?;
        self.exchange(id, request.kind() as u8, &wire[..n])
    }

    /// Sends a frame of any kind byte and payload, valid or not for the
    /// device (an unknown kind, a payload larger than it takes); returns its
    /// answer's decoded frame and the round trip.
    pub fn ask_raw(&mut self, kind: u8, payload: &[u8]) -> Result<(Vec<u8>, Duration)> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let mut frame = vec![0u8; payload.len() + device_protocol::FRAME_OVERHEAD];
        let n = device_protocol::emit_frame(VERSION, id, kind, &mut frame, |p| {
            p[..payload.len()].copy_from_slice(payload);
            Ok(payload.len())
        })
        .map_err(|e| anyhow!("cannot build a frame of kind {kind:#04x}: {e}"))?;
        let mut wire = vec![0u8; wire_len(n)];
        let m = device_protocol::cobs::encode(&frame[..n], &mut wire[1..])
            .map_err(|e| anyhow!("cannot encode a frame of kind {kind:#04x}: {e}"))?;
        // Delimiters before and after, as every sender's frames.
        wire[0] = 0;
        wire[1 + m] = 0;
        self.exchange(id, kind, &wire[..m + 2])
    }

    /// Sends `wire` (a frame of id `id`, request kind `kind`) and waits for
    /// its answer.
    fn exchange(&mut self, id: u16, kind: u8, wire: &[u8]) -> Result<(Vec<u8>, Duration)> {
        let what = kind_name(kind);
        let start = Instant::now();
        let written = match &mut self.writer {
            Some(w) => w.write_all(wire).and_then(|()| w.flush()),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        if let Err(e) = written {
            if self.child.is_some() {
                // A program that exited before reading fails the write
                // (broken pipe) or, a moment later, the read (end of file):
                // one message for both, so the user sees the exit either way.
                let why = self.gone();
                bail!("{why} without answering {what} (cannot send it: {e})");
            }
            bail!("{}: cannot send {what}: {e}", self.name);
        }
        let deadline = start + self.timeout;
        let expected = answer_kind(kind);
        loop {
            let frame = self.next_frame(deadline, what)?;
            let checked = Frame::new_checked(&frame[..])
                .map_err(|e| anyhow!("{}: unreadable answer: {e}", self.name))?;
            if checked.id() == id && checked.kind() == expected {
                return Ok((frame, start.elapsed()));
            }
        }
    }

    /// Sends `request` and reads its answer, a refusal being an error.
    pub fn request<T>(
        &mut self,
        request: &Request<'_>,
        read: impl FnOnce(&Answer<'_>) -> Result<T>,
    ) -> Result<(T, Duration)> {
        let (frame, round_trip) = self.ask(request)?;
        let a = answer(&frame, request.kind() as u8)?;
        Ok((read(&a)?, round_trip))
    }

    /// Sends `bytes` as they are (no frame): line noise for [`soak`].
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        let written = match &mut self.writer {
            Some(w) => w.write_all(bytes).and_then(|()| w.flush()),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        written.map_err(|e| anyhow!("{}: cannot send: {e}", self.name))
    }

    /// The device's `stats`.
    pub fn stats(&mut self) -> Result<StatsAnswer> {
        let (stats, _) = self.request(&Request::Stats, |a| match &a.body {
            Body::Stats(s) => Ok(*s),
            other => bail!("stats answered with {other:?}"),
        })?;
        Ok(stats)
    }

    /// The device's `info`, owned.
    pub fn info(&mut self) -> Result<DeviceInfo> {
        let (info, _) = self.request(&Request::Info, |a| match &a.body {
            Body::Info(i) => Ok(DeviceInfo::from(i)),
            other => bail!("info answered with {other:?}"),
        })?;
        if info.version != VERSION {
            bail!(
                "protocol version mismatch: the device speaks version {}, this harness {VERSION}",
                info.version
            );
        }
        Ok(info)
    }
}

impl Drop for Device {
    /// Closes the line; a device program gets end of input, and is killed
    /// if it has not exited within a second.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.writer = None;
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(1);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The name of a request kind, for messages.
pub fn kind_name(kind: u8) -> &'static str {
    match device_protocol::Kind::from_u8(kind) {
        Some(device_protocol::Kind::Info) => "info",
        Some(device_protocol::Kind::Classify) => "classify",
        Some(device_protocol::Kind::Generate) => "generate",
        Some(device_protocol::Kind::Selftest) => "selftest",
        Some(device_protocol::Kind::Stats) => "stats",
        Some(device_protocol::Kind::Shutdown) => "shutdown",
        _ => "a request",
    }
}

/// Reads an answer frame to a request of `kind`: a refusal is an error
/// naming the request, the status and its numbers.
pub fn answer(frame: &[u8], kind: u8) -> Result<Answer<'_>> {
    let checked = Frame::new_checked(frame).map_err(|e| anyhow!("unreadable answer: {e}"))?;
    let a = match parse_answer(&checked) {
        Ok(a) => a,
        Err(Error::Version(v)) => bail!(
            "protocol version mismatch: the device speaks version {v}, this harness {VERSION}"
        ),
        Err(e) => bail!("unreadable answer to {}: {e}", kind_name(kind)),
    };
    if let Body::Failed { failure, .. } = &a.body {
        bail!("{}", refusal(kind, failure));
    }
    Ok(a)
}

/// One line for a refused request.
pub fn refusal(kind: u8, f: &Failure<'_>) -> String {
    let what = kind_name(kind);
    let shape = |s: u32| format!("{}x{}", s >> 16, s & 0xFFFF);
    let text = if f.text.is_empty() {
        String::new()
    } else {
        format!(" ({})", f.text)
    };
    match f.status {
        Status::VersionMismatch => format!(
            "protocol version mismatch: the device speaks version {}, this harness {}",
            f.expected, f.got
        ),
        Status::ImageSize => format!(
            "the device refused {what}: its model takes {} images, these are {}",
            shape(f.expected),
            shape(f.got)
        ),
        Status::ExpertRange => format!(
            "the device refused {what}: expert {} out of range (its model has {} experts)",
            f.got, f.expected
        ),
        Status::BadCrc => format!(
            "the device received {what} with a bad CRC-32 (line noise, or a wrong baud rate?)"
        ),
        Status::Oversize => format!(
            "the device refused {what}: {} bytes, over its buffer of {}",
            f.got, f.expected
        ),
        Status::STYLE_RANGE => format!(
            "the device refused {what}: style {} out of range (its cluster has {} styles)",
            f.got, f.expected
        ),
        status => format!("the device refused {what}: {status:?}{text}"),
    }
}

/// An `info` answer, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Protocol version and revision.
    pub version: u8,
    /// See [`device_protocol::REVISION`].
    pub revision: u8,
    /// Largest request frame the device takes.
    pub max_request: u16,
    /// Training method.
    pub method: device_protocol::Method,
    /// Weights.
    pub element_type: device_protocol::ElementType,
    /// Image shape.
    pub width: u16,
    /// Image shape.
    pub height: u16,
    /// K.
    pub experts: u16,
    /// Latent size.
    pub latent: u16,
    /// Model file bytes.
    pub model_len: u32,
    /// Model file CRC-32.
    pub model_crc: u32,
    /// Digit per cluster.
    pub label_map: Option<Vec<u8>>,
    /// Firmware name and version.
    pub firmware: String,
}

impl From<&InfoAnswer<'_>> for DeviceInfo {
    fn from(i: &InfoAnswer<'_>) -> Self {
        DeviceInfo {
            version: i.version,
            revision: i.revision,
            max_request: i.max_request,
            method: i.method,
            element_type: i.element_type,
            width: i.width,
            height: i.height,
            experts: i.experts,
            latent: i.latent,
            model_len: i.model_len,
            model_crc: i.model_crc,
            label_map: i.label_map.map(<[u8]>::to_vec),
            firmware: i.firmware.to_string(),
        }
    }
}

impl DeviceInfo {
    /// The model's image shape.
    pub fn shape(&self) -> engine::ImageShape {
        engine::ImageShape {
            width: self.width,
            height: self.height,
        }
    }

    /// What `harness device info` prints.
    pub fn describe(&self) -> String {
        let labels = match &self.label_map {
            Some(m) => format!("{m:?}"),
            None => "none".into(),
        };
        format!(
            "firmware {}\nprotocol version {} revision {}, requests up to {} bytes\n\
             model {} bytes, CRC-32 {:08x}, {:?}, {:?} weights\n\
             {} experts, latent {}, images {}x{}\nlabel map (cluster -> digit) {labels}\n",
            self.firmware,
            self.version,
            self.revision,
            self.max_request,
            self.model_len,
            self.model_crc,
            self.method,
            self.element_type,
            self.experts,
            self.latent,
            self.width,
            self.height,
        )
    }
}

/// The unit of an answer's `cycles`, for tables.
pub fn unit_name(unit: CounterUnit) -> &'static str {
    match unit {
        CounterUnit::Cycles => "cycles",
        CounterUnit::Instructions => "instructions",
        CounterUnit::Microseconds => "us",
        _ => "(not measured)",
    }
}

/// Round trips and device-side costs of `count` requests of each kind
/// (classify sends `images` in turn, generate draws expert `k mod K` with seed `k`),
/// as a markdown table. After each request a `stats` asks the device what
/// the request cost as a whole (revision 1's `last_total`: the frame's
/// decoding, the work, the answer's encoding), so the table shows the
/// protocol's own share beside the work.
pub fn bench(
    dev: &mut Device,
    count: u32,
    images: &[Vec<u8>],
    info: &DeviceInfo,
) -> Result<String> {
    if images.is_empty() {
        bail!("no images to classify");
    }
    use device_protocol::{Extensions, GenerateRequest};
    let mut out = format!(
        "{}: {:?} weights, {}x{}, {} experts\n\n\
         | request | n | round trip mean | min | max | device work mean | whole request mean | protocol overhead |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
        dev.name(),
        info.element_type,
        info.width,
        info.height,
        info.experts
    );
    for kind in ["info", "classify", "generate", "stats"] {
        let mut trips = Vec::with_capacity(count as usize);
        let (mut work, mut whole, mut unit) = (0u64, 0u64, CounterUnit::None);
        for i in 0..count {
            let request = match kind {
                "info" => Request::Info,
                "classify" => Request::Classify(ClassifyRequest {
                    width: info.width,
                    height: info.height,
                    pixels: &images[i as usize % images.len()],
                }),
                "generate" => Request::Generate(GenerateRequest {
                    expert: (i % u32::from(info.experts.max(1))) as u8,
                    seed: i.into(),
                    extensions: Extensions::EMPTY,
                }),
                _ => Request::Stats,
            };
            let ((cycles, u), trip) = dev.request(&request, |a| Ok((a.cycles, a.unit)))?;
            let stats = dev.stats()?;
            work = work.saturating_add(cycles);
            whole = whole.saturating_add(stats.last_total);
            unit = u;
            trips.push(trip.as_secs_f64() * 1e3);
        }
        let n = trips.len() as f64;
        let mean = trips.iter().sum::<f64>() / n;
        let min = trips.iter().copied().fold(f64::INFINITY, f64::min);
        let max = trips.iter().copied().fold(0.0, f64::max);
        let (device, total, overhead) = if unit == CounterUnit::None {
            let none = "not measured".to_string();
            (none.clone(), none.clone(), none)
        } else if whole == 0 {
            let u = unit_name(unit);
            (
                format!("{:.1} {u}", work as f64 / n),
                "not measured".into(),
                "not measured".into(),
            )
        } else {
            let u = unit_name(unit);
            let extra = whole.saturating_sub(work) as f64 / n;
            let share = if work == 0 {
                String::new()
            } else {
                format!(" ({:.1}% of the work)", 100.0 * extra / (work as f64 / n))
            };
            (
                format!("{:.1} {u}", work as f64 / n),
                format!("{:.1} {u}", whole as f64 / n),
                format!("{extra:.1} {u}{share}"),
            )
        };
        out += &format!(
            "| {kind} | {count} | {mean:.3} ms | {min:.3} ms | {max:.3} ms | {device} | {total} | {overhead} |\n"
        );
    }
    Ok(out)
}

/// What `harness device stats` prints.
pub fn describe_stats(s: &StatsAnswer) -> String {
    let measured = |n: u64| {
        if n == 0 {
            "not measured".to_string()
        } else {
            n.to_string()
        }
    };
    let stack = if s.stack_size == 0 {
        "not measured".to_string()
    } else {
        format!("{} bytes of {}", s.stack_used, s.stack_size)
    };
    format!(
        "last request {} ({:#04x}): work {}, whole request {}\n\
         stack high-water {stack}\nframes received {}, rejected {}\n",
        kind_name(s.last_kind),
        s.last_kind,
        measured(s.last_cycles),
        measured(s.last_total),
        s.requests,
        s.rejected
    )
}

/// SplitMix64: the soak's damage, reproducible from its seed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Requests a device must refuse, each with its status: an unknown kind, a
/// classify of the wrong size, a generate of an expert out of range, a
/// frame larger than the device takes. Returns how many were refused.
fn probe_refusals(dev: &mut Device, info: &DeviceInfo, pixels: &[u8]) -> Result<usize> {
    // One column less: a wrong shape that still fits the device's buffer.
    let narrower = info.width.saturating_sub(1).max(1);
    let mut wrong = Vec::from(&narrower.to_le_bytes()[..]);
    wrong.extend_from_slice(&info.height.to_le_bytes());
    let n = usize::from(narrower) * usize::from(info.height);
    wrong.extend_from_slice(&pixels[..n.min(pixels.len())]);
    let mut generate = vec![u8::try_from(info.experts).unwrap_or(u8::MAX)];
    generate.extend_from_slice(&7u64.to_le_bytes());
    let oversize = vec![1u8; usize::from(info.max_request) + 1];
    let probes: [(u8, &[u8], Status); 4] = [
        (0x06, &[], Status::UnknownKind),
        (0x02, &wrong, Status::ImageSize),
        (0x03, &generate, Status::ExpertRange),
        (0x02, &oversize, Status::Oversize),
    ];
    for (kind, payload, want) in probes {
        let (frame, _) = dev.ask_raw(kind, payload)?;
        let checked =
            Frame::new_checked(&frame[..]).map_err(|e| anyhow!("unreadable answer: {e}"))?;
        match parse_answer(&checked).map(|a| a.body) {
            Ok(Body::Failed { failure, .. }) if failure.status == want => {}
            other => {
                bail!("a request of kind {kind:#04x} that must be refused {want:?} got {other:?}")
            }
        }
    }
    Ok(probes.len())
}

/// [`soak`]'s figures.
#[derive(Debug, Clone)]
pub struct SoakReport {
    /// Damaged bytes sent.
    pub damage_bytes: usize,
    /// Of which random bytes, cut frames, corrupted frames (pieces).
    pub pieces: [usize; 3],
    /// Valid requests sent between them, each answered correctly.
    pub requests: usize,
    /// Requests the device must refuse (unknown kind, wrong image size,
    /// expert out of range, a frame over its buffer), each refused with
    /// its status.
    pub refusals: usize,
    /// Frames the device counted as rejected, and as valid, during the soak.
    pub rejected: u32,
    /// Valid frames the device counted.
    pub received: u32,
    /// Wall time.
    pub seconds: f64,
    /// The device's stack high-water mark and stack size after the soak
    /// (`stats`, in the same session as all the work: 0 if not measured).
    pub stack: (u32, u32),
}

impl std::fmt::Display for SoakReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "soak: {} bytes of damage ({} random runs, {} cut frames, {} corrupted frames) \
             interleaved with {} classify requests, every one answered bit-identical to its \
             clean answer, and {} requests refused with the right status; the device rejected {} frames and took {} as valid, in {:.1} s; \
             stack high-water {} bytes of {}",
            self.damage_bytes,
            self.pieces[0],
            self.pieces[1],
            self.pieces[2],
            self.requests,
            self.refusals,
            self.rejected,
            self.received,
            self.seconds,
            self.stack.0,
            self.stack.1
        )
    }
}

/// Classifies every image of `images` on a clean line, then sends at least
/// `bytes` bytes of damage — runs of random bytes, valid frames cut short,
/// valid frames with one byte changed — each followed by a valid classify
/// request of the next image (cycling), and checks that each gets its
/// clean answer, bit for bit. Damage may draw failure answers (a bad
/// CRC-32 in a frame whose header survived): they carry the damaged
/// frame's id and are skipped by [`Device::ask`].
pub fn soak(
    dev: &mut Device,
    info: &DeviceInfo,
    images: &trainer::data::Images,
    bytes: usize,
    seed: u64,
) -> Result<SoakReport> {
    let start = Instant::now();
    let request = |i: usize| {
        Request::Classify(ClassifyRequest {
            width: info.width,
            height: info.height,
            pixels: images.image(i),
        })
    };
    let classify = |dev: &mut Device, i: usize| -> Result<ClassifyAnswer<'static>> {
        let (c, _) = dev.request(&request(i), |a| match &a.body {
            Body::Classify(c) => Ok(ClassifyAnswer {
                cluster: c.cluster,
                label: c.label,
                confidence: c.confidence,
                probabilities: c.probabilities.clone(),
                // The style record (revision 2) and the novelty record
                // (revision 3), so that the soak checks them too.
                extensions: match c.style() {
                    Some(s) => device_protocol::Extensions::classify_answer(
                        s.style,
                        s.confidence,
                        c.novelty(),
                    ),
                    None => device_protocol::Extensions::EMPTY,
                },
            }),
            other => bail!("classify answered with {other:?}"),
        })?;
        Ok(c)
    };
    let clean: Vec<ClassifyAnswer<'static>> = (0..images.n)
        .map(|i| classify(dev, i))
        .collect::<Result<_>>()?;
    let before = dev.stats()?;
    let mut rng = SplitMix(seed);
    let mut frame = vec![0u8; wire_len(MAX_FRAME)];
    let (mut sent, mut pieces, mut requests, mut refusals) = (0usize, [0usize; 3], 0usize, 0usize);
    while sent < bytes {
        let i = requests % images.n;
        let kind = rng.below(3);
        let damage: Vec<u8> = if kind == 0 {
            (0..1 + rng.below(4096)).map(|_| rng.next() as u8).collect()
        } else {
            let other = request(rng.below(images.n));
            let n = encode_request(rng.next() as u16, &other, &mut frame)
                .map_err(|e| anyhow!("cannot encode a request: {e}"))?;
            let mut f = frame[..n].to_vec();
            if kind == 1 {
                f.truncate(1 + rng.below(n - 1));
            } else {
                // Any byte but the leading delimiter, to any other value.
                let at = 1 + rng.below(n - 1);
                f[at] ^= 1 + rng.below(255) as u8;
            }
            f
        };
        pieces[kind] += 1;
        sent += damage.len();
        dev.send_raw(&damage)?;
        let got = classify(dev, i).map_err(|e| {
            anyhow!("after {sent} bytes of damage, request {requests} (image {i}): {e:#}")
        })?;
        if got != clean[i] {
            bail!(
                "after {sent} bytes of damage, image {i} was answered {got:?}, on a clean line {:?}",
                clean[i]
            );
        }
        requests += 1;
        if requests % 16 == 1 {
            refusals += probe_refusals(dev, info, images.image(i))
                .map_err(|e| anyhow!("after {sent} bytes of damage: {e:#}"))?;
        }
    }
    let after = dev.stats()?;
    Ok(SoakReport {
        damage_bytes: sent,
        pieces,
        requests,
        refusals,
        rejected: after.rejected.wrapping_sub(before.rejected),
        received: after.requests.wrapping_sub(before.requests),
        seconds: start.elapsed().as_secs_f64(),
        stack: (after.stack_used, after.stack_size),
    })
}
