//! Batch-1 speed of the engine against candle's CPU forward pass of the same
//! weights, and against this machine's arithmetic floor.
//!
//! Run with `cargo bench -p harness --bench engine_vs_candle` (add a filter
//! such as `-- classify` to time a subset with criterion; the ratio table at
//! the end is always printed).
//!
//! Two realistic shapes are built with the engine's writer from seeded random
//! weights (PyTorch's default uniform ±1/√fan_in init), so no trained model is
//! needed:
//! - `default`: gate 784→256 (ReLU)→10, ten decoders 10→32 (ReLU)→784 (sigmoid);
//! - `blog`: gate 784→128 (sigmoid)→10, ten decoders 10→128 (sigmoid)→784 (sigmoid).
//!
//! candle gets the same weights dequantized from the written file (exactly
//! the values the engine reads as f16, upcast to f32) and one image or latent
//! vector at a time, already in f32 and already scaled (the engine converts
//! its u8 pixels itself, inside the timed call). Every candle call ends by
//! copying the result out, as the engine's result is readable on return.
//!
//! The floor: every f16 weight converted to f32 once, at the rate of the best
//! conversion this CPU has (16-lane `vcvtph2ps` with AVX-512, 8-lane with
//! F16C), plus every multiply-add done once, at the rate of unfused f32
//! multiply and add (16 lanes with AVX-512, else 8) with all operands in L1
//! and enough accumulators to hide latency. Both rates are measured below in
//! the same process as the engine.
//!
//! The ratio table times each contender in short batches, round-robin, and
//! reports each one's fastest batch: the machine is shared and noisy, other
//! work only adds time, and ratios of interleaved runs are what stays stable.

use std::hint::black_box;
use std::time::{Duration, Instant};

use candle_core::Device;
use criterion::Criterion;
use engine::rng::SplitMix64;
use engine::writer::ModelSpec;
use engine::{Activation, Model, Workspace};
use trainer::eval::reference::ReferenceModel;

/// A network as `(inputs, outputs, activation)` per layer.
type Shape = &'static [(usize, usize, Activation)];

struct Config {
    name: &'static str,
    gate: Shape,
    decoder: Shape,
}

const EXPERTS: usize = 10;

const CONFIGS: [Config; 2] = [
    Config {
        name: "default",
        gate: &[
            (784, 256, Activation::Relu),
            (256, 10, Activation::Identity),
        ],
        decoder: &[(10, 32, Activation::Relu), (32, 784, Activation::Sigmoid)],
    },
    Config {
        name: "blog",
        gate: &[
            (784, 128, Activation::Sigmoid),
            (128, 10, Activation::Identity),
        ],
        decoder: &[
            (10, 128, Activation::Sigmoid),
            (128, 784, Activation::Sigmoid),
        ],
    },
];

fn model_bytes(config: &Config, seed: u64) -> Vec<u8> {
    engine::testing::random_spec(config.gate, config.decoder, EXPERTS, seed)
        .to_bytes()
        .expect("writer accepts the benchmark model")
}

/// The same weights with int8 weights, calibrated on the test image and
/// shifted copies of it.
fn int8_bytes(config: &Config, seed: u64) -> Vec<u8> {
    let spec = engine::testing::random_spec(config.gate, config.decoder, EXPERTS, seed);
    let image = test_image();
    let images: Vec<u8> = (0..8)
        .flat_map(|s| {
            image
                .iter()
                .cycle()
                .skip(s * 28)
                .take(784)
                .copied()
                .collect::<Vec<_>>()
        })
        .collect();
    spec.to_int8_bytes(&spec.calibrate(&images, 1))
        .expect("writer quantizes the benchmark model")
}

/// The candle twin of a model file: its tensors dequantized exactly (the
/// trainer's reference forward pass, which the cross-check tests use too).
struct CandleModel(ReferenceModel);

impl CandleModel {
    fn from_file(bytes: &[u8]) -> anyhow::Result<Self> {
        let spec = ModelSpec::from_bytes(bytes).expect("benchmark model parses");
        Ok(CandleModel(ReferenceModel::from_spec(&spec, &Device::Cpu)?))
    }

    /// Gate probabilities for one image of intensities in [0, 1].
    fn classify(&self, image: &[f32]) -> anyhow::Result<Vec<f32>> {
        let mut p = self.0.gate_probabilities_f32(image, 1)?;
        Ok(p.pop().unwrap_or_default())
    }

    /// Expert `k`'s decoder on one latent vector.
    fn decode(&self, k: usize, z: &[f32]) -> anyhow::Result<Vec<f32>> {
        self.0.decode(k, z)
    }
}

/// A digit-like test image: a thick ring, so that activations are realistic.
fn test_image() -> Vec<u8> {
    (0..784)
        .map(|i| {
            let (r, c) = ((i / 28) as f32 - 13.5, (i % 28) as f32 - 13.5);
            let d = (r * r + c * c).sqrt();
            if (6.0..10.0).contains(&d) {
                255
            } else {
                0
            }
        })
        .collect()
}

/// The latent vector `engine` draws for `seed` (same RNG and Box–Muller).
fn latent(seed: u64, n: usize) -> Vec<f32> {
    let mut z = vec![0.0; n];
    SplitMix64::new(seed).fill_normal(&mut z);
    z
}

/// Checks that both sides compute the same function before timing them.
fn check_agreement(model: &Model<'_>, candle: &CandleModel, image: &[u8]) {
    let mut ws = Workspace::<1024>::new();
    let ours = model.classify(&mut ws, image).expect("engine classifies");
    let scaled: Vec<f32> = image.iter().map(|&p| p as f32 / 255.0).collect();
    let theirs = candle.classify(&scaled).expect("candle classifies");
    for (a, b) in ours.probabilities.iter().zip(&theirs) {
        assert!((a - b).abs() < 1e-4, "classify differs: {a} vs {b}");
    }
    let z = latent(7, model.latent());
    let ours = model.generate(&mut ws, 3, 7).expect("engine generates");
    let theirs = candle.decode(3, &z).expect("candle decodes");
    for (a, b) in ours.iter().zip(&theirs) {
        assert!((a - b).abs() < 1e-4, "generate differs: {a} vs {b}");
    }
}

/// The floor microbenchmarks: converting f16 to f32, and f32 multiply-adds,
/// each alone and at the best rate this CPU offers (the engine must do both).
mod floor {
    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::*;

    /// Converts every f16 in `src` to f32 once. Each result is folded into
    /// one of four registers with a bitwise XOR (the cheapest use that keeps
    /// the conversion from being optimized away), so the conversions alone
    /// set the pace.
    pub fn convert(src: &[u16]) -> u32 {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            return unsafe { convert_avx512(src) };
        }
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx") && std::is_x86_feature_detected!("f16c") {
            // SAFETY: the CPU has AVX and F16C (checked just above).
            return unsafe { convert_f16c(src) };
        }
        src.iter()
            .fold(0, |a, &h| a ^ engine::kernels::f16_to_f32(h).to_bits())
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx,f16c")]
    unsafe fn convert_f16c(src: &[u16]) -> u32 {
        let mut acc = [_mm256_setzero_ps(); 4];
        for c in src.chunks_exact(32) {
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: `c` holds 32 u16; lanes 8j..8j+8 are 16 readable bytes.
                let v = _mm256_cvtph_ps(_mm_loadu_si128(c.as_ptr().add(8 * j).cast()));
                *a = _mm256_xor_ps(*a, v);
            }
        }
        let v = _mm256_xor_ps(_mm256_xor_ps(acc[0], acc[1]), _mm256_xor_ps(acc[2], acc[3]));
        let mut lanes = [0u32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr().cast(), v);
        lanes.iter().fold(0, |a, &l| a ^ l)
    }

    /// As [`convert_f16c`], sixteen values per instruction.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn convert_avx512(src: &[u16]) -> u32 {
        let mut acc = [_mm512_setzero_si512(); 4];
        for c in src.chunks_exact(64) {
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: `c` holds 64 u16; lanes 16j..16j+16 are 32 readable bytes.
                let v = _mm512_cvtph_ps(_mm256_loadu_si256(c.as_ptr().add(16 * j).cast()));
                *a = _mm512_xor_si512(*a, _mm512_castps_si512(v));
            }
        }
        let v = _mm512_xor_si512(
            _mm512_xor_si512(acc[0], acc[1]),
            _mm512_xor_si512(acc[2], acc[3]),
        );
        let mut lanes = [0u32; 16];
        _mm512_storeu_si512(lanes.as_mut_ptr().cast(), v);
        lanes.iter().fold(0, |a, &l| a ^ l)
    }

    /// Rows and columns of the f32 weight block (16 KiB: stays in L1).
    pub const ROWS: usize = 32;
    /// Columns (inputs) per row.
    pub const COLS: usize = 128;

    /// `passes * ROWS * COLS` unfused f32 multiply-adds shaped like a dense
    /// layer whose weights are already f32 and in L1: eight rows at a time,
    /// eight independent 8-lane accumulators, one load of `x` per eight rows.
    pub fn multiply_add(w: &[f32], x: &[f32; COLS], passes: usize) -> f32 {
        assert_eq!(w.len(), ROWS * COLS);
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above); `w` has ROWS * COLS values.
            return unsafe { multiply_add_avx512(w, x, passes) };
        }
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU has AVX (checked just above); `w` has ROWS * COLS values.
            return unsafe { multiply_add_avx(w, x, passes) };
        }
        let mut total = 0.0;
        for _ in 0..passes {
            for row in w.chunks_exact(COLS) {
                let mut acc = [0.0f32; 8];
                for (i, (a, b)) in row.iter().zip(x).enumerate() {
                    acc[i % 8] += a * b;
                }
                total += acc.iter().sum::<f32>();
            }
        }
        total
    }

    /// As [`multiply_add_avx`] with 16-lane registers: the best rate the
    /// CPU multiplies and adds at, whatever order the engine must keep.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn multiply_add_avx512(w: &[f32], x: &[f32; COLS], passes: usize) -> f32 {
        let mut total = _mm512_setzero_ps();
        for _ in 0..passes {
            for block in w.chunks_exact(8 * COLS) {
                let mut acc = [_mm512_setzero_ps(); 8];
                for c in 0..COLS / 16 {
                    // SAFETY: `16c + 16 <= COLS`.
                    let xv = _mm512_loadu_ps(x.as_ptr().add(16 * c));
                    for (r, a) in acc.iter_mut().enumerate() {
                        // SAFETY: row `r` of the block holds COLS values.
                        let wv = _mm512_loadu_ps(block.as_ptr().add(r * COLS + 16 * c));
                        *a = _mm512_add_ps(*a, _mm512_mul_ps(wv, xv));
                    }
                }
                for a in acc {
                    total = _mm512_add_ps(total, a);
                }
            }
        }
        _mm512_reduce_add_ps(total)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx")]
    unsafe fn multiply_add_avx(w: &[f32], x: &[f32; COLS], passes: usize) -> f32 {
        let mut total = _mm256_setzero_ps();
        for _ in 0..passes {
            for block in w.chunks_exact(8 * COLS) {
                let mut acc = [_mm256_setzero_ps(); 8];
                for c in 0..COLS / 8 {
                    // SAFETY: `8c + 8 <= COLS`, and row `r` of the block
                    // holds COLS values.
                    let xv = _mm256_loadu_ps(x.as_ptr().add(8 * c));
                    for (r, a) in acc.iter_mut().enumerate() {
                        let wv = _mm256_loadu_ps(block.as_ptr().add(r * COLS + 8 * c));
                        *a = _mm256_add_ps(*a, _mm256_mul_ps(wv, xv));
                    }
                }
                for a in acc {
                    total = _mm256_add_ps(total, a);
                }
            }
        }
        let mut lanes = [0.0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), total);
        lanes.iter().sum()
    }
}

/// Everything timed for one model shape.
struct Subject<'a> {
    config: &'a Config,
    model: Model<'a>,
    int8: Model<'a>,
    candle: CandleModel,
    image: Vec<u8>,
    image_f32: Vec<f32>,
    z: Vec<f32>,
    gate_f16: Vec<u16>,
}

impl<'a> Subject<'a> {
    fn new(config: &'a Config, bytes: &'a [u8], int8: &'a [u8]) -> Self {
        let model = Model::from_bytes(bytes).expect("benchmark model loads");
        let int8 = Model::from_bytes(int8).expect("int8 benchmark model loads");
        let candle = CandleModel::from_file(bytes).expect("candle model builds");
        let image = test_image();
        check_agreement(&model, &candle, &image);
        let gate_f16 = model
            .gate()
            .layers()
            .flat_map(|l| {
                match l.weights {
                    engine::LayerWeights::F16 { weights, .. } => weights,
                    engine::LayerWeights::Int8(q) => q.weights,
                }
                .chunks_exact(2)
            })
            .map(|p| u16::from_le_bytes([p[0], p[1]]))
            .collect();
        Subject {
            config,
            image_f32: image.iter().map(|&p| p as f32 / 255.0).collect(),
            image,
            z: latent(7, model.latent()),
            model,
            int8,
            candle,
            gate_f16,
        }
    }

    fn engine_classify(&self, ws: &mut Workspace<1024>) -> usize {
        let c = self.model.classify(ws, black_box(&self.image));
        c.expect("engine classifies").cluster
    }

    fn int8_classify(&self, ws: &mut Workspace<1024>) -> usize {
        let c = self.int8.classify(ws, black_box(&self.image));
        c.expect("engine classifies").cluster
    }

    fn int8_generate(&self, ws: &mut Workspace<1024>, seed: u64, out: &mut [u8; 784]) -> u8 {
        let r = self
            .int8
            .generate_pixels(ws, black_box(3), black_box(seed), out);
        r.expect("engine generates");
        out[400]
    }

    fn engine_generate(&self, ws: &mut Workspace<1024>, seed: u64) -> f32 {
        let img = self.model.generate(ws, black_box(3), black_box(seed));
        img.expect("engine generates")[400]
    }

    fn candle_classify(&self) -> f32 {
        let p = self.candle.classify(black_box(&self.image_f32));
        p.expect("candle classifies")[0]
    }

    fn candle_generate(&self) -> f32 {
        let img = self.candle.decode(black_box(3), black_box(&self.z));
        img.expect("candle decodes")[400]
    }

    /// (weights and biases, multiply-adds) of one classification and one generation.
    fn work(&self) -> ((usize, usize), (usize, usize)) {
        let gate = self.model.gate();
        let dec = self.model.decoder(3).expect("expert 3 exists");
        (
            (gate.parameters(), gate.multiply_adds()),
            (dec.parameters(), dec.multiply_adds()),
        )
    }
}

fn criterion_benches(c: &mut Criterion, subjects: &[Subject<'_>]) {
    for s in subjects {
        let mut g = c.benchmark_group(format!("classify/{}", s.config.name));
        g.bench_function("engine", |b| {
            let mut ws = Workspace::<1024>::new();
            b.iter(|| s.engine_classify(&mut ws))
        });
        g.bench_function("candle", |b| b.iter(|| s.candle_classify()));
        g.finish();
        let mut g = c.benchmark_group(format!("generate/{}", s.config.name));
        g.bench_function("engine", |b| {
            let mut ws = Workspace::<1024>::new();
            let mut seed = 0u64;
            b.iter(|| {
                seed += 1;
                s.engine_generate(&mut ws, seed)
            })
        });
        g.bench_function("candle", |b| b.iter(|| s.candle_generate()));
        g.finish();
    }
    let s = &subjects[0];
    let mut g = c.benchmark_group("floor");
    g.bench_function("f16_to_f32/default_gate", |b| {
        b.iter(|| floor::convert(black_box(&s.gate_f16)))
    });
    g.bench_function("multiply_add/65536", |b| {
        let w = vec![0.5f32; floor::ROWS * floor::COLS];
        let x = [0.25f32; floor::COLS];
        b.iter(|| floor::multiply_add(black_box(&w), black_box(&x), 16))
    });
    g.finish();
}

/// Batches of calls to one contender, each lasting about `batch`; the
/// contenders' batches are interleaved by the caller. The machine is shared:
/// other work only ever adds time, so the fastest batch is the best estimate
/// of a call's own cost.
struct Timer {
    samples: Vec<f64>,
    calls: usize,
}

impl Timer {
    fn calibrate(mut f: impl FnMut(), batch: Duration) -> Self {
        let mut calls = 1;
        loop {
            let t = Instant::now();
            for _ in 0..calls {
                f();
            }
            if t.elapsed() >= batch / 4 || calls > 1 << 24 {
                let per = t.elapsed().as_secs_f64() / calls as f64;
                let calls = ((batch.as_secs_f64() / per.max(1e-12)) as usize).max(1);
                return Timer {
                    samples: Vec::new(),
                    calls,
                };
            }
            calls *= 2;
        }
    }

    fn round(&mut self, mut f: impl FnMut()) {
        let t = Instant::now();
        for _ in 0..self.calls {
            f();
        }
        self.samples
            .push(t.elapsed().as_secs_f64() / self.calls as f64);
    }

    /// Mean time per call in the fastest batch.
    fn best(&self) -> f64 {
        self.samples.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

fn ratio_table(subjects: &[Subject<'_>]) {
    // Short batches, so that many of them run within one scheduler slice
    // even when the machine is busy.
    const ROUNDS: usize = 1001;
    let batch = Duration::from_micros(100);
    // Floor rates, measured on the largest gate's weights (like the engine's, in L2).
    let big = subjects
        .iter()
        .max_by_key(|s| s.gate_f16.len())
        .expect("at least one subject");
    let w = vec![0.5f32; floor::ROWS * floor::COLS];
    let x = [0.25f32; floor::COLS];
    let passes = 16;
    let mut convert = Timer::calibrate(
        || {
            black_box(floor::convert(black_box(&big.gate_f16)));
        },
        batch,
    );
    let mut mac = Timer::calibrate(
        || {
            black_box(floor::multiply_add(black_box(&w), black_box(&x), passes));
        },
        batch,
    );
    let mut ws = Workspace::<1024>::new();
    let mut seed = 0u64;
    let mut pixels = [0u8; 784];
    let mut int8_timers: Vec<[Timer; 2]> = subjects
        .iter()
        .map(|s| {
            [
                Timer::calibrate(
                    || {
                        black_box(s.int8_classify(&mut ws));
                    },
                    batch,
                ),
                Timer::calibrate(
                    || {
                        seed += 1;
                        black_box(s.int8_generate(&mut ws, seed, &mut pixels));
                    },
                    batch,
                ),
            ]
        })
        .collect();
    let mut timers: Vec<[Timer; 4]> = subjects
        .iter()
        .map(|s| {
            [
                Timer::calibrate(
                    || {
                        black_box(s.engine_classify(&mut ws));
                    },
                    batch,
                ),
                Timer::calibrate(
                    || {
                        black_box(s.candle_classify());
                    },
                    batch,
                ),
                Timer::calibrate(
                    || {
                        seed += 1;
                        black_box(s.engine_generate(&mut ws, seed));
                    },
                    batch,
                ),
                Timer::calibrate(
                    || {
                        black_box(s.candle_generate());
                    },
                    batch,
                ),
            ]
        })
        .collect();
    for _ in 0..ROUNDS {
        convert.round(|| {
            black_box(floor::convert(black_box(&big.gate_f16)));
        });
        mac.round(|| {
            black_box(floor::multiply_add(black_box(&w), black_box(&x), passes));
        });
        for (s, t) in subjects.iter().zip(int8_timers.iter_mut()) {
            t[0].round(|| {
                black_box(s.int8_classify(&mut ws));
            });
            t[1].round(|| {
                seed += 1;
                black_box(s.int8_generate(&mut ws, seed, &mut pixels));
            });
        }
        for (s, t) in subjects.iter().zip(timers.iter_mut()) {
            t[0].round(|| {
                black_box(s.engine_classify(&mut ws));
            });
            t[1].round(|| {
                black_box(s.candle_classify());
            });
            t[2].round(|| {
                seed += 1;
                black_box(s.engine_generate(&mut ws, seed));
            });
            t[3].round(|| {
                black_box(s.candle_generate());
            });
        }
    }
    let per_convert = convert.best() / big.gate_f16.len() as f64;
    let per_mac = mac.best() / (passes * floor::ROWS * floor::COLS) as f64;
    let floor_time =
        |(params, macs): (usize, usize)| params as f64 * per_convert + macs as f64 * per_mac;
    let us = |s: f64| s * 1e6;
    println!();
    println!("engine vs candle 0.11 (batch 1, CPU) and vs the floor");
    println!("  CPU: {}", cpu_name());
    println!("  engine kernels: {}", engine::kernels::backend());
    println!(
        "  candle threads: {} (RAYON_NUM_THREADS sets it)",
        candle_core::utils::get_num_threads()
    );
    println!(
        "  floor rates: f16->f32 {:.3} ns/weight ({:.2} G/s), f32 multiply+add {:.4} ns ({:.2} G/s)",
        per_convert * 1e9,
        1e-9 / per_convert,
        per_mac * 1e9,
        1e-9 / per_mac
    );
    println!(
        "  fastest of {ROUNDS} interleaved batches of ~{} µs each",
        batch.as_micros()
    );
    println!();
    println!(
        "| model | call | engine f16 µs | candle µs | candle/engine | floor µs | engine/floor | engine int8 µs | f16/int8 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for ((s, t), q) in subjects.iter().zip(&timers).zip(&int8_timers) {
        let (classify_work, generate_work) = s.work();
        for (call, e, c, work, i) in [
            ("classify", &t[0], &t[1], classify_work, &q[0]),
            ("generate", &t[2], &t[3], generate_work, &q[1]),
        ] {
            let (e, c, f, i) = (e.best(), c.best(), floor_time(work), i.best());
            println!(
                "| {} | {call} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                s.config.name,
                us(e),
                us(c),
                c / e,
                us(f),
                e / f,
                us(i),
                e / i
            );
        }
    }
    println!(
        "int8: the same weights quantized (portable integer kernels; the test image has {} non-zero pixels of 784); \
         int8 generate writes 8-bit pixels",
        test_image().iter().filter(|&&p| p != 0).count()
    );
    println!();
    println!(
        "floor = (weights + biases) × f16->f32 time + multiply-adds × multiply+add time; \
         targets: candle/engine >= 1.5, engine/floor <= 1.5"
    );
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn main() {
    let files: Vec<Vec<u8>> = CONFIGS
        .iter()
        .enumerate()
        .map(|(i, c)| model_bytes(c, 1000 + i as u64))
        .collect();
    let int8_files: Vec<Vec<u8>> = CONFIGS
        .iter()
        .enumerate()
        .map(|(i, c)| int8_bytes(c, 1000 + i as u64))
        .collect();
    let subjects: Vec<Subject<'_>> = CONFIGS
        .iter()
        .zip(files.iter().zip(&int8_files))
        .map(|(c, (b, q))| Subject::new(c, b, q))
        .collect();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    criterion_benches(&mut c, &subjects);
    c.final_summary();
    ratio_table(&subjects);
}
