//! Output in whole lines, for sinks where each call is expensive (a
//! semihosting trap) or must not interleave with other output.

use core::fmt;

/// Collects text and hands it to `sink` a line at a time (or when `N` bytes
/// are pending).
pub struct LineBuffer<F: FnMut(&[u8]), const N: usize = 128> {
    buf: [u8; N],
    len: usize,
    sink: F,
}

impl<F: FnMut(&[u8]), const N: usize> LineBuffer<F, N> {
    /// An empty buffer in front of `sink`.
    pub const fn new(sink: F) -> Self {
        LineBuffer {
            buf: [0; N],
            len: 0,
            sink,
        }
    }

    /// Hands the pending bytes to the sink.
    pub fn flush(&mut self) {
        if self.len > 0 {
            (self.sink)(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl<F: FnMut(&[u8]), const N: usize> fmt::Write for LineBuffer<F, N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == N {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
            if b == b'\n' {
                self.flush();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fmt::Write;

    #[test]
    fn hands_over_whole_lines_and_full_buffers() {
        let mut seen: Vec<Vec<u8>> = Vec::new();
        {
            let mut lb = LineBuffer::<_, 4>::new(|b: &[u8]| seen.push(b.to_vec()));
            write!(lb, "ab\ncdefg").unwrap();
            lb.flush();
        }
        assert_eq!(
            seen,
            vec![b"ab\n".to_vec(), b"cdef".to_vec(), b"g".to_vec()]
        );
    }
}
