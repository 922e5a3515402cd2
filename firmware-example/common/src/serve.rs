//! Serving the host protocol (`../PROTOCOL.md`) on a target's ports, written
//! once for every firmware: each [`Port`] (a UART, USB CDC, a QEMU serial
//! line) gets a [`Server`] of its own, so that a frame cut short on one port
//! never disturbs another, and all of them share one [`Device`] (one model,
//! one workspace: requests are answered one at a time, in the order their
//! last byte arrived; bytes that arrive meanwhile wait in the port's FIFO or
//! USB buffer).
//!
//! ```
//! use firmware_common::serve::{serve, Port};
//! use device_protocol::{encode_request, Request, Server, MIN_ANSWER_BUFFER};
//!
//! /// A port whose host sends one `info` request then `shutdown`.
//! struct Script { input: Vec<u8>, pos: usize, output: Vec<u8> }
//! impl Port for Script {
//!     fn read(&mut self, buf: &mut [u8]) -> usize {
//!         let n = buf.len().min(self.input.len() - self.pos).min(7);
//!         buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
//!         self.pos += n;
//!         n
//!     }
//!     fn write_all(&mut self, bytes: &[u8]) { self.output.extend_from_slice(bytes) }
//! }
//!
//! let mut input = vec![0u8; 64];
//! let n = encode_request(1, &Request::Info, &mut input).unwrap();
//! let m = encode_request(2, &Request::Shutdown, &mut input[n..]).unwrap();
//! input.truncate(n + m);
//! let mut port = Script { input, pos: 0, output: Vec::new() };
//!
//! let bytes = engine::testing::tiny_model_bytes();
//! let model = engine::Model::from_bytes(&bytes)?;
//! let mut ws = engine::Workspace::<784>::new();
//! let mut image = [0u8; 784];
//! let mut device = firmware_common::device::Device::new(&bytes, model, &mut ws, &mut image, Ticks(0), "doc")?
//!     .allow_shutdown(true);
//! let mut servers = [Server::<{ device_protocol::request_capacity(784) }>::new()];
//! let mut out = [0u8; MIN_ANSWER_BUFFER];
//! serve(&mut device, &mut [&mut port], &mut servers, &mut out);
//! assert!(device.shutdown_requested());
//! assert_eq!(port.output.iter().filter(|&&b| b == 0).count(), 4); // two frames, each delimited
//!
//! struct Ticks(u64);
//! impl firmware_common::Counter for Ticks {
//!     fn unit(&self) -> &'static str { "cycles" }
//!     fn hz(&self) -> Option<u32> { None }
//!     fn now(&mut self) -> u64 { self.0 += 1; self.0 }
//! }
//! # Ok::<(), engine::Error>(())
//! ```

use device_protocol::Server;

use crate::device::Device;
use crate::Counter;

/// A byte link to the host.
pub trait Port {
    /// Moves bytes already received into `buf` without waiting; returns how
    /// many (0: none yet).
    fn read(&mut self, buf: &mut [u8]) -> usize;

    /// Sends all of `bytes`, waiting for room as it must (and keeping the
    /// link serviced meanwhile: a USB port polls its device while it
    /// waits). A port whose host has gone may drop them: the protocol's
    /// host retries, the device must not hang.
    fn write_all(&mut self, bytes: &[u8]);

    /// Called once per turn of the serving loop, before [`read`](Self::read)
    /// (USB devices answer the bus here); nothing by default.
    fn poll(&mut self) {}
}

/// Bytes moved from a port per turn: one full-speed USB packet.
pub const CHUNK: usize = 64;

/// Serves `ports[i]` with `servers[i]` and `device` until the device accepts
/// a `shutdown` (a test build's end; on a board, never), answering into
/// `out` (at least [`device_protocol::wire_len`] of the model's
/// [`device_protocol::answer_capacity`]).
///
/// Ports without a server of their own (more ports than servers) are not
/// served.
pub fn serve<C: Counter, const N: usize, const R: usize>(
    device: &mut Device<'_, C, N>,
    ports: &mut [&mut dyn Port],
    servers: &mut [Server<R>],
    out: &mut [u8],
) {
    let mut chunk = [0u8; CHUNK];
    loop {
        for (port, server) in ports.iter_mut().zip(servers.iter_mut()) {
            port.poll();
            let n = port.read(&mut chunk);
            let received = chunk.get(..n).unwrap_or(&[]);
            server.receive(received, device, out, |answer| port.write_all(answer));
            if device.shutdown_requested() {
                return;
            }
        }
    }
}
