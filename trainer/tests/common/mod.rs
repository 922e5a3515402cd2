//! What the trainer's end-to-end tests share: the bundled data, running the
//! binary, and interrupting a run with Ctrl-C once an epoch has finished.
// Each test file uses its own subset of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The bundled MNIST.
pub fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")
}

/// Runs `trainer` with `args` to the end.
pub fn trainer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(args)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .expect("run trainer")
}

/// The run's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts that a run failed with exit `code` and one line on stderr,
/// `error: …` holding every needle, without a panic or a backtrace.
pub fn assert_one_line_error(o: &Output, code: i32, needles: &[&str]) {
    assert_eq!(o.status.code(), Some(code), "{}", stderr(o));
    let e = stderr(o);
    assert_eq!(e.trim_end().lines().count(), 1, "not one line: {e:?}");
    assert!(e.starts_with("error: "), "{e}");
    for n in needles {
        assert!(e.contains(n), "{e:?} lacks {n:?}");
    }
    assert!(!e.contains("panicked") && !e.contains("backtrace"), "{e}");
}

/// Starts `trainer` with `args`, sends it SIGINT (Ctrl-C) as soon as
/// `run/metrics.jsonl` exists (one epoch finished), and returns how it
/// ended; asserts that it stopped with code 130, naming `--resume`.
#[cfg(unix)]
pub fn interrupt_after_first_epoch(args: &[&str], run: &Path) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !run.join("metrics.jsonl").exists() {
        assert!(std::time::Instant::now() < deadline, "no epoch finished");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("--resume"), "{}", stderr(&out));
    assert!(run.join("checkpoint.safetensors").is_file());
    out
}

/// The tensor names in `run/checkpoint.safetensors`.
pub fn checkpoint_names(run: &Path) -> Vec<String> {
    let bytes = std::fs::read(run.join("checkpoint.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    header
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect()
}

/// The records of `run/metrics.jsonl`, one per epoch.
pub fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
