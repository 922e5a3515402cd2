//! `trainer`: learn a mixture of generative experts on MNIST without labels,
//! export it as `model.bin`, evaluate it, sample from it, inspect it. The
//! command line lives in [`trainer::cli`].

use std::process::ExitCode;

use clap::Parser;

use trainer::cli::{run, Cli};

/// Tunes the process for candle's allocation pattern before any tensor exists.
fn tune_runtime() {
    // candle spreads element-wise ops over its own spin-barrier pool; on a
    // 2-core machine that is busy with anything else this costs up to 3x
    // (measured: trainer/README.md, "CANDLE_NUM_THREADS").
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    // Matmuls use rayon's pool; at this trainer's sizes (100-row batches,
    // layers of 10 to 1,280 units) a second gemm thread bought nothing
    // (blog preset: 4,922/4,951, 4,785/4,696, 4,394/4,382 samples/s with
    // two/one), and the trainer runs its two expert groups on threads of
    // its own instead, which a second pool thread only contends with (4,154
    // -4,258 against 5,216-5,912 samples/s, measured with the batch cut in
    // two slices, the way the work was shared before the groups).
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    // candle allocates a fresh buffer per op; by default glibc returns large
    // buffers to the OS after each free, so every step page-faults them back.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator thresholds; it is called before
    // any other thread exists, and invalid values are rejected by returning 0.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}

fn main() -> ExitCode {
    tune_runtime();
    // A bug must still end in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        eprintln!("error: internal error: {}", msg.replace('\n', " "));
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            // clap's first line names the flag and the problem; the usage
            // block after it is what `--help` shows.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("error: bad arguments");
            eprintln!("{first} (see trainer --help)");
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", trainer::util::one_line(&e));
            ExitCode::from(1)
        }
    }
}
