//! `web-serve`: builds the page's wasm (`web/`, for `wasm32-unknown-unknown`,
//! into `target/web`), then serves `web/www`, the wasm and a model file on
//! localhost. std only, one thread per connection, GET only.
//!
//! ```sh
//! cargo run --release -p web-serve -- --model model.bin   # then open the printed address
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "usage: web-serve [--model FILE] [--port N] [--build-only] [--no-build]
  --model FILE   model.bin the page loads at start (default: firmware-example/models/default.bin)
  --port N       port on 127.0.0.1 (default 8000; 0 picks a free one)
  --build-only   build the wasm, print its path and size, exit
  --no-build     serve the wasm already built";

/// The repository root (this crate lives in `web/serve`).
fn root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// Where the wasm build writes `web.wasm`.
fn wasm_path() -> PathBuf {
    root().join("target/web/wasm32-unknown-unknown/release/web.wasm")
}

struct Options {
    model: PathBuf,
    port: u16,
    build: bool,
    serve: bool,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut o = Options {
        model: root().join("firmware-example/models/default.bin"),
        port: 8000,
        build: true,
        serve: true,
    };
    let mut args = args.peekable();
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--model" => o.model = PathBuf::from(value()?),
            "--port" => o.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--build-only" => o.serve = false,
            "--no-build" => o.build = false,
            "-h" | "--help" => return Err(String::new()),
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let o = match parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if o.build {
        if let Err(e) = build_wasm() {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    if !o.serve {
        return ExitCode::SUCCESS;
    }
    if let Err(e) = std::fs::metadata(&o.model) {
        eprintln!("error: cannot read model {}: {e}", o.model.display());
        return ExitCode::FAILURE;
    }
    let listener = match TcpListener::bind(("127.0.0.1", o.port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on 127.0.0.1:{}: {e}", o.port);
            return ExitCode::FAILURE;
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(o.port);
    println!(
        "serving http://127.0.0.1:{port}/ (model {}); Ctrl-C stops",
        o.model.display()
    );
    let model = std::sync::Arc::new(o.model);
    for stream in listener.incoming().flatten() {
        let model = model.clone();
        std::thread::spawn(move || {
            let _ = respond(stream, &model);
        });
    }
    ExitCode::SUCCESS
}

/// `cargo build` of the wasm, with the size-minded settings the workspace
/// profile lacks (its release profile keeps debug info for the host tools).
fn build_wasm() -> Result<(), String> {
    // `cargo run` sets CARGO; an empty value counts as unset.
    let cargo = std::env::var("CARGO")
        .ok()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "cargo".into());
    // A fresh machine lacks the target; rustup adds it (a no-op once there).
    let _ = Command::new("rustup")
        .args(["target", "add", "wasm32-unknown-unknown"])
        .status();
    let status = Command::new(cargo)
        .current_dir(root())
        .args(["build", "--release", "-p", "web", "--lib"])
        .args([
            "--target",
            "wasm32-unknown-unknown",
            "--target-dir",
            "target/web",
        ])
        .args(["--config", "profile.release.debug=0"])
        .args(["--config", "profile.release.strip=true"])
        .args(["--config", "profile.release.lto=true"])
        .args(["--config", "profile.release.codegen-units=1"])
        .args(["--config", "profile.release.panic=\"abort\""])
        // The engine optimised for size: the two-level models' code took the
        // wasm from 145 to 157 KiB at opt-level 3, and "s" brings it to
        // 144 KiB (145 KiB with the page's style exports, results/web.md);
        // the page's calls stay far inside a frame (the browser test times
        // them), and no optimisation level changes the bits.
        .args(["--config", "profile.release.package.engine.opt-level=\"s\""])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("wasm build failed ({status})"));
    }
    let path = wasm_path();
    let len = std::fs::metadata(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    println!(
        "built {} ({len} bytes, {:.1} KiB)",
        path.display(),
        len as f64 / 1024.0
    );
    Ok(())
}

fn respond(stream: TcpStream, model: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // Skip the headers; GET has no body.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let www = root().join("web/www");
    let file = match path {
        "/" | "/index.html" => Some((www.join("index.html"), "text/html; charset=utf-8")),
        "/app.js" => Some((www.join("app.js"), "text/javascript; charset=utf-8")),
        "/style.css" => Some((www.join("style.css"), "text/css; charset=utf-8")),
        "/favicon.svg" => Some((www.join("favicon.svg"), "image/svg+xml")),
        "/web.wasm" => Some((wasm_path(), "application/wasm")),
        "/model.bin" => Some((model.to_path_buf(), "application/octet-stream")),
        _ => None,
    };
    let (status, kind, body) = match (method, file) {
        ("GET" | "HEAD", Some((file, kind))) => match std::fs::read(&file) {
            Ok(body) => ("200 OK", kind, body),
            Err(e) => (
                "404 Not Found",
                "text/plain",
                format!("{}: {e}\n", file.display()).into_bytes(),
            ),
        },
        ("GET" | "HEAD", None) => ("404 Not Found", "text/plain", b"not found\n".to_vec()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            b"GET only\n".to_vec(),
        ),
    };
    let mut out = stream;
    // Cross-origin isolation gives performance.now() its finest resolution.
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nCross-Origin-Opener-Policy: same-origin\r\n\
         Cross-Origin-Embedder-Policy: require-corp\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        out.write_all(&body)?;
    }
    out.flush()
}
