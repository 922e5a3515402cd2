//! Small helpers: files written atomically, jobs run on threads, and the
//! log of a sum of exponentials.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, flushed to disk, then renamed over `path`. A crash leaves
/// either the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = temp_path(path);
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("{}: cannot write", path.display()))
}

/// The temporary name used while writing `path`: hidden, same directory.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Appends one line to a text file, creating it if needed.
pub fn append_line(path: &Path, line: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
    writeln!(f, "{line}").with_context(|| format!("{}: cannot write", path.display()))
}

/// `f(0)`, …, `f(n − 1)`, the first on the calling thread and each other
/// one on a scoped thread of its own; the results come back in index order,
/// whatever the scheduling (so seeded jobs give the same results on any
/// number of cores). A job's panic is resumed on the caller.
pub fn in_parallel<R: Send>(n: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    std::thread::scope(|scope| {
        let f = &f;
        let others: Vec<_> = (1..n).map(|i| scope.spawn(move || f(i))).collect();
        let mut results = Vec::with_capacity(n);
        if n > 0 {
            results.push(f(0));
        }
        for h in others {
            results.push(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        results
    })
}

/// A candle error's message without the backtrace candle attaches to some
/// of them (`Error::WithBacktrace`): errors are one line.
pub fn candle_message(e: &candle_core::Error) -> String {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => candle_message(inner),
        other => other.to_string(),
    }
}

/// An error chain as one line, `outer: inner: …`, candle's backtraces left
/// out.
pub fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(|cause| match cause.downcast_ref::<candle_core::Error>() {
            Some(c) => candle_message(c),
            None => cause.to_string(),
        })
        .collect::<Vec<_>>()
        .join(": ")
        .replace('\n', " ")
}

/// `log Σ exp(v)`, stable (the largest term factored out); `-inf` for an
/// empty slice or one of `-inf` only.
///
/// ```
/// let v = [-1000.0, -1000.0];
/// assert!((trainer::util::log_sum_exp(&v) - (-1000.0 + 2f64.ln())).abs() < 1e-9);
/// assert_eq!(trainer::util::log_sum_exp(&[]), f64::NEG_INFINITY);
/// ```
pub fn log_sum_exp(v: &[f64]) -> f64 {
    let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candle_backtraces_stay_out_of_the_one_line() {
        let e = candle_core::Error::WithBacktrace {
            inner: Box::new(candle_core::Error::Msg("no CUDA-capable device".into())),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        assert!(e.to_string().len() > 100, "candle prints the backtrace");
        let e = anyhow::Error::from(e).context("--device cuda");
        let line = one_line(&e);
        assert_eq!(line, "--device cuda: no CUDA-capable device");
    }

    #[test]
    fn parallel_results_come_back_in_order() {
        assert_eq!(in_parallel(5, |i| i * i), vec![0, 1, 4, 9, 16]);
        assert!(in_parallel(0, |i| i).is_empty());
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.bin");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let bad = dir.path().join("no-such-dir").join("m.bin");
        let e = write_atomic(&bad, b"x").unwrap_err();
        assert!(format!("{e:#}").contains("cannot write"));
    }
}
