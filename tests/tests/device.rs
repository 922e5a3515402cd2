//! `harness device` against `fw-host serve`: the boards' protocol handler
//! (`firmware_common::device`) run on the host, spoken to through a pipe.
//! What the device computes must be what `harness classify` and `harness
//! generate` compute, byte for byte.
//!
//! `fw-host` belongs to another Cargo workspace (`firmware-example/host`):
//! this test builds it with `cargo build --release --locked` into
//! `target/firmware/cargo`, as `.ci/firmware.sh` does (so under CI, which
//! runs that script first, the build is already done), or takes the binary
//! named by `FW_HOST`. Without a `cargo` to run it skips, saying so, except
//! under CI (`CI` set), where it fails.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .output()
        .expect("run harness")
}

/// The `fw-host` binary, built if need be; `None` (with a message) if it
/// cannot be built here.
fn fw_host() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FW_HOST") {
        return Some(PathBuf::from(path));
    }
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let target = root().join("target/firmware/cargo");
    let status = Command::new(cargo)
        .args(["build", "--release", "--locked", "--quiet"])
        .current_dir(root().join("firmware-example/host"))
        .env("CARGO_TARGET_DIR", &target)
        .status();
    match status {
        Ok(s) if s.success() => Some(target.join("release/fw-host")),
        Ok(s) => panic!("building fw-host failed ({s})"),
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: cannot run {cargo} to build fw-host ({e}); set FW_HOST=PATH");
            None
        }
        Err(e) => panic!("CI: cannot run {cargo} to build fw-host: {e}"),
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The first `n` MNIST test images as an IDX file in `dir`.
fn first_mnist_images(dir: &Path, n: usize) -> PathBuf {
    let gz = root().join("data/mnist/t10k-images-idx3-ubyte.gz");
    let mut idx = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(gz).unwrap())
        .read_to_end(&mut idx)
        .unwrap();
    let mut out = vec![0, 0, 8, 3];
    out.extend_from_slice(&(n as u32).to_be_bytes());
    out.extend_from_slice(&idx[8..16]);
    out.extend_from_slice(&idx[16..16 + n * 784]);
    let path = dir.join("first-images-idx3-ubyte");
    std::fs::write(&path, out).unwrap();
    path
}

const MODELS: [&str; 3] = [
    "firmware-example/models/default-int8.bin",
    "firmware-example/models/default.bin",
    // Two-level (version 3): clusters of styles.
    "firmware-example/models/hierarchical-int8.bin",
];

/// Splits a `harness classify --bits` CSV (the host's or the device's)
/// into its other columns, its three style columns and its three novelty
/// columns.
fn split_styles(device: &str) -> (String, Vec<String>, Vec<String>) {
    let mut host = String::new();
    let mut styles = Vec::new();
    let mut novelty = Vec::new();
    for line in device.lines() {
        let mut cols: Vec<&str> = line.rsplitn(7, ',').collect();
        cols.reverse();
        assert_eq!(cols.len(), 7, "{line}");
        host += cols[0];
        host.push('\n');
        styles.push(cols[1..4].join(","));
        novelty.push(cols[4..].join(","));
    }
    (host, styles, novelty)
}

/// What the engine says of each image's novelty: `novelty,known,bits`,
/// empty cells for a model without a novelty section.
fn engine_novelty(model: &str, images: &str) -> Vec<String> {
    let bytes = std::fs::read(model).unwrap();
    let model = engine::Model::from_bytes(&bytes).unwrap();
    let idx = std::fs::read(images).unwrap();
    let mut ws = engine::Workspace::<4096>::new();
    idx[16..]
        .chunks_exact(784)
        .map(
            |pixels| match model.classify(&mut ws, pixels).unwrap().novelty {
                Some(n) => format!("{:.6},{},{:08x}", n.score, n.known, n.score.to_bits()),
                None => ",,".to_string(),
            },
        )
        .collect()
}

/// What the engine says of each image's style: `style,confidence,bits`.
fn engine_styles(model: &str, images: &str) -> Vec<String> {
    let bytes = std::fs::read(model).unwrap();
    let model = engine::Model::from_bytes(&bytes).unwrap();
    let idx = std::fs::read(images).unwrap();
    let mut ws = engine::Workspace::<4096>::new();
    idx[16..]
        .chunks_exact(784)
        .map(|pixels| {
            let c = model.classify(&mut ws, pixels).unwrap();
            let p = c.style_confidence();
            format!("{},{p:.6},{:08x}", c.style, p.to_bits())
        })
        .collect()
}

#[test]
fn the_device_classifies_and_generates_what_the_harness_does() {
    let Some(fw) = fw_host() else { return };
    let dir = tempfile::tempdir().unwrap();
    let images = first_mnist_images(dir.path(), 100);
    let images = images.to_str().unwrap();
    for model in MODELS {
        let model = root().join(model);
        let model = model.to_str().unwrap();
        let spawn = format!("{} serve --banner --model {model}", fw.display());

        let host = harness(&["classify", "--model", model, "--images", images, "--bits"]);
        assert!(host.status.success(), "{}", stderr(&host));
        let device = harness(&[
            "device", "--spawn", &spawn, "classify", "--images", images, "--bits",
        ]);
        assert!(device.status.success(), "{}", stderr(&device));
        assert_eq!(String::from_utf8_lossy(&host.stdout).lines().count(), 101);
        // The device's CSV is the host's, the style columns included.
        assert_eq!(
            String::from_utf8_lossy(&device.stdout),
            String::from_utf8_lossy(&host.stdout),
            "{model}"
        );
        let (_, styles, novelty) = split_styles(&String::from_utf8_lossy(&device.stdout));
        // The style of each digit: the engine's, bit for bit (a flat
        // model's: 0, certain).
        assert_eq!(styles[0], "style,style_confidence,style_confidence_bits");
        assert_eq!(styles[1..], engine_styles(model, images)[..], "{model}");
        // Its novelty: the engine's (empty cells for a model without a
        // novelty section).
        assert_eq!(novelty[0], "novelty,known,novelty_bits");
        assert_eq!(novelty[1..], engine_novelty(model, images)[..], "{model}");
        if !model.contains("hierarchical") {
            assert!(styles[1..].iter().all(|s| s == "0,1.000000,3f800000"));
        }

        // The host's and the device's grids of expert 3, with `extra` flags.
        let grids = |extra: &[&str], name: &str| -> (Vec<u8>, Vec<u8>) {
            let (a, b) = (
                dir.path().join(format!("host{name}.png")),
                dir.path().join(format!("device{name}.png")),
            );
            let common = ["--expert", "3", "--count", "9", "--seed", "5"];
            let host = harness(
                &[
                    &["generate", "--model", model][..],
                    extra,
                    &common,
                    &["--out", a.to_str().unwrap()],
                ]
                .concat(),
            );
            assert!(host.status.success(), "{}", stderr(&host));
            let device = harness(
                &[
                    &["device", "--spawn", &spawn, "generate"][..],
                    extra,
                    &common,
                    &["--out", b.to_str().unwrap()],
                ]
                .concat(),
            );
            assert!(device.status.success(), "{}", stderr(&device));
            (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap())
        };
        let (a, b) = grids(&[], "");
        assert!(a.starts_with(b"\x89PNG"));
        assert!(a == b, "{model}: the PNGs differ");
        if model.contains("hierarchical") {
            // Style 1, asked for on both sides: the same grid, titled so.
            let (a, b) = grids(&["--style", "1"], "1");
            assert!(a == b, "{model}: style 1's PNGs differ");
        }
    }
}

/// A model with a novelty section (protocol revision 3's novelty record):
/// the device's `novelty`, `known` and `novelty_bits` columns are the
/// host's, for the f16 and the int8 file.
#[test]
fn the_device_answers_the_novelty_the_harness_computes() {
    let Some(fw) = fw_host() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (f16, int8) = common::novelty_models(dir.path());
    let mut pixels = common::blobs(30, 12);
    pixels.extend([0u8; 784]);
    pixels.extend([255u8; 784]);
    let images = common::idx_file(dir.path(), "images-idx3-ubyte", &pixels);
    let images = images.to_str().unwrap();
    for model in [f16, int8] {
        let model = model.to_str().unwrap();
        let spawn = format!("{} serve --model {model}", fw.display());
        let args = ["--images", images, "--invert", "no", "--bits"];
        let host = harness(&[&["classify", "--model", model][..], &args].concat());
        assert!(host.status.success(), "{}", stderr(&host));
        let device = harness(&[&["device", "--spawn", &spawn, "classify"][..], &args].concat());
        assert!(device.status.success(), "{}", stderr(&device));
        let (host, device) = (
            String::from_utf8_lossy(&host.stdout),
            String::from_utf8_lossy(&device.stdout),
        );
        assert_eq!(device, host, "{model}");
        let (_, _, novelty) = split_styles(&device);
        assert_eq!(novelty[1..], engine_novelty(model, images)[..], "{model}");
        assert!(
            novelty[1..].iter().any(|n| n.contains(",true,")),
            "{novelty:?}"
        );
        assert!(
            novelty[1..].iter().any(|n| n.contains(",false,")),
            "{novelty:?}"
        );
    }
}

#[test]
fn info_and_bench_talk_to_the_device() {
    let Some(fw) = fw_host() else { return };
    let model = root().join(MODELS[0]);
    let spawn = format!("{} serve --model {}", fw.display(), model.display());
    let o = harness(&["device", "--spawn", &spawn, "info"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("protocol version 1"), "{out}");
    assert!(out.contains("10 experts, latent 10, images 28x28"), "{out}");
    let o = harness(&["device", "--spawn", &spawn, "bench", "--count", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    for kind in ["info", "classify", "generate", "stats"] {
        assert!(out.contains(&format!("| {kind} | 3 |")), "{out}");
    }
    assert!(out.contains(" us |"), "{out}");
    // Revision 1: the whole request is measured, so the overhead is shown.
    assert!(out.contains("% of the work)"), "{out}");
}

#[test]
fn stats_and_soak_through_damage() {
    let Some(fw) = fw_host() else { return };
    let model = root().join(MODELS[0]);
    let spawn = format!(
        "{} serve --banner --model {}",
        fw.display(),
        model.display()
    );
    let o = harness(&["device", "--spawn", &spawn, "stats"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    // `info` (which the harness sends first) was the last request.
    assert!(out.starts_with("last request info (0x01)"), "{out}");
    assert!(out.contains("frames received 2, rejected 0"), "{out}");

    let mnist = root().join("data/mnist");
    let o = harness(&[
        "device",
        "--spawn",
        &spawn,
        "soak",
        "--images",
        mnist.to_str().unwrap(),
        "--first",
        "10",
        "--bytes",
        "200000",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("every one answered bit-identical"), "{out}");
    let damage: usize = out["soak: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(damage >= 200_000, "{out}");
}

fn assert_one_line_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure; stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "{err:?} does not mention {needle:?}");
}

#[test]
fn refusals_and_link_failures_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = harness(&["device", "--port", "/dev/no-such-tty", "info"]);
    assert_one_line_error(&o, "no such port /dev/no-such-tty");

    // A device that never answers.
    let o = harness(&[
        "device",
        "--spawn",
        "sleep 5",
        "--timeout-ms",
        "300",
        "info",
    ]);
    assert_one_line_error(
        &o,
        "no answer from `sleep 5` to info in 300 ms (--timeout-ms)",
    );

    // A device program that exits at once.
    let o = harness(&["device", "--spawn", "true", "info"]);
    assert_one_line_error(&o, "`true` exited (exit status: 0) without answering info");

    // A device of protocol version 2 answering the first request (id 1,
    // info) with its version-mismatch failure, and the same frame with its
    // CRC damaged.
    let mut frame = vec![2, 1, 0, 0x81];
    let payload = [
        4u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 2, 0, 0, 0, 1, 0, 0, 0, 0,
    ];
    frame.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    frame.extend_from_slice(&payload);
    frame.extend_from_slice(&engine::crc32(&frame).to_le_bytes());
    for (name, damage, needle) in [
        (
            "v2",
            false,
            "protocol version mismatch: the device speaks version 2, this harness 1",
        ),
        ("crc", true, "the answer to info failed its CRC-32"),
    ] {
        let mut frame = frame.clone();
        if damage {
            *frame.last_mut().unwrap() ^= 0x40;
        }
        let mut wire = vec![0u8; 64];
        let n = device_protocol::cobs::encode(&frame, &mut wire[1..]).unwrap();
        wire.truncate(n + 2);
        let answer = dir.path().join(format!("{name}.bin"));
        std::fs::write(&answer, &wire).unwrap();
        let script = dir.path().join(format!("{name}.sh"));
        std::fs::write(
            &script,
            format!("echo a banner\ncat {}\nexec sleep 3\n", answer.display()),
        )
        .unwrap();
        let o = harness(&[
            "device",
            "--spawn",
            &format!("sh {}", script.display()),
            "info",
        ]);
        assert_one_line_error(&o, needle);
    }

    let Some(fw) = fw_host() else { return };
    let spawn = format!(
        "{} serve --model {}",
        fw.display(),
        root().join(MODELS[0]).display()
    );
    let png = dir.path().join("x.png");
    let o = harness(&[
        "device",
        "--spawn",
        &spawn,
        "generate",
        "--expert",
        "10",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert_one_line_error(
        &o,
        "the device refused generate: expert 10 out of range (its model has 10 experts)",
    );
    assert!(!png.exists());
    // 8x8 images for a 28x28 model: refused by the harness before sending.
    let eight = dir.path().join("eight.npy");
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let header = "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 8, 8), }";
    let pad = 64 - (10 + header.len() + 1) % 64;
    let header = format!("{header}{}\n", " ".repeat(pad));
    npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
    npy.extend_from_slice(header.as_bytes());
    npy.extend_from_slice(&[0u8; 64]);
    std::fs::write(&eight, npy).unwrap();
    let o = harness(&[
        "device",
        "--spawn",
        &spawn,
        "classify",
        "--images",
        eight.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("8x8"), "{}", stderr(&o));
}

/// `--port` on a pseudo-terminal: the serial path (termios, the reader
/// thread, its read timeouts) with `fw-host serve` bridged to the pty's
/// master side, as a board sits behind /dev/ttyACM0.
#[cfg(unix)]
#[test]
fn a_device_on_a_pseudo_terminal_answers_through_port() {
    use serialport::SerialPort as _;
    use std::io::Write;
    use std::process::Stdio;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let Some(fw) = fw_host() else { return };
    let dir = tempfile::tempdir().unwrap();
    let images = first_mnist_images(dir.path(), 100);
    let model = root().join(MODELS[0]);
    let (master, slave) = serialport::TTYPort::pair().expect("a pseudo-terminal pair");
    let port = slave.name().expect("the pty's name");
    let mut child = Command::new(&fw)
        .args(["serve", "--banner", "--model", model.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut to_device, mut from_device) =
        (child.stdin.take().unwrap(), child.stdout.take().unwrap());
    let mut master_in = master.try_clone_native().unwrap();
    let mut master_out = master;
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let host_to_device = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while !stopping.load(Ordering::Relaxed) {
            match master_in.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if to_device.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                // EIO while no one has the terminal open: wait for the harness.
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
    });
    let device_to_host = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from_device.read(&mut buf) {
            if n == 0 || master_out.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });

    let o = harness(&["device", "--port", &port, "info"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("firmware fw-host"));
    let images = images.to_str().unwrap();
    let on_port = harness(&[
        "device", "--port", &port, "classify", "--images", images, "--bits",
    ]);
    assert!(on_port.status.success(), "{}", stderr(&on_port));
    let host = harness(&[
        "classify",
        "--model",
        model.to_str().unwrap(),
        "--images",
        images,
        "--bits",
    ]);
    // The same CSV, and the device's style columns (a flat model's).
    assert_eq!(
        String::from_utf8_lossy(&on_port.stdout),
        String::from_utf8_lossy(&host.stdout)
    );
    let (_, styles, _) = split_styles(&String::from_utf8_lossy(&on_port.stdout));
    assert!(styles[1..].iter().all(|s| s == "0,1.000000,3f800000"));

    stop.store(true, Ordering::Relaxed);
    host_to_device.join().unwrap();
    // The device's input is closed: it ends, and its output with it.
    assert!(child.wait().unwrap().success());
    device_to_host.join().unwrap();
    drop(slave);
}

#[test]
fn the_firmware_readme_shows_the_python_client_as_it_is() {
    let client = std::fs::read_to_string(root().join("examples/board_client.py")).unwrap();
    let readme = std::fs::read_to_string(root().join("firmware-example/README.md")).unwrap();
    assert!(
        readme.contains(&format!("```python\n{client}```")),
        "firmware-example/README.md must show examples/board_client.py verbatim"
    );
}
