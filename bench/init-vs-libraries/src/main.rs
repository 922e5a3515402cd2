//! The hand-written numerics of `trainer::init` against well-kept crates, on
//! the same input: MNIST autoencoder codes (cached by `partition_study
//! --codes`), a random subset of `--points` codes as the graph points, the
//! other codes as the queries that `extend_to_all` labels by a vote.
//!
//! - k-nearest neighbours: `init::knn::brute_force` (exact, two threads; what
//!   `init::knn` was before it took kiddo's tree for 10-wide codes),
//!   `init::knn::knn` (kiddo's tree, one query at a time, on two threads) and
//!   `kiddo`'s own batch queries;
//! - the eigen-solver: `init::eigen::top_eigenvectors` (Chebyshev-filtered
//!   subspace iteration) against `faer`'s Krylov–Schur
//!   `partial_self_adjoint_eigen`, on the normalized fuzzy graph of UMAP's
//!   spectral start (11 eigenpairs);
//! - k-means on the UMAP embedding: `init::kmeans` against
//!   `linfa-clustering`'s `KMeans` (both 10 runs, at most 300 iterations),
//!   and `linfa-clustering`'s Gaussian mixture (what N2D clusters with);
//! - UMAP itself: this program writes the graph points' codes, labels and
//!   `init::umap` embedding; `examples/umap_vs_umap_learn.py` embeds the same
//!   codes with umap-learn and scores both (trustworthiness, kNN recall,
//!   k-means ACC).
//!
//! Labels only score. Prints markdown tables.
//!
//! ```text
//! cargo run --release -p trainer --example partition_study -- --ae-epochs 20 --seeds 1 \
//!     --codes /tmp/codes --variants umap:10 --tries 1
//! cargo run --release --manifest-path bench/init-vs-libraries/Cargo.toml -- \
//!     --codes /tmp/codes/codes-seed1-e20-n60000-500-500.f32 --out /tmp/init-libs
//! ```

use std::io::Read;
use std::num::NonZero;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use clap::Parser;
use trainer::eval::metrics::evaluate;
use trainer::init::eigen::{top_eigenvectors, EigenConfig, SparseSym};
use trainer::init::kmeans::{kmeans, KMeansConfig};
use trainer::init::knn::{brute_force, knn};
use trainer::init::umap::{fuzzy_graph, umap, FuzzyGraph, UmapConfig};
use trainer::rng::Rng;

/// The code width of the partition autoencoder (the default preset's).
const D: usize = 10;

#[derive(Parser, Debug)]
#[command(about = "trainer::init's numerics against library crates, on cached MNIST codes")]
struct Args {
    /// Codes: little-endian f32, 10 per image, in the order of the labels.
    #[arg(long)]
    codes: PathBuf,
    /// MNIST training labels (gzipped IDX), to score.
    #[arg(long, default_value = "data/mnist/train-labels-idx1-ubyte.gz")]
    labels: PathBuf,
    /// Graph points (the default preset's `max_points`).
    #[arg(long, default_value_t = 20_000)]
    points: usize,
    /// Seed of the subset and of every random draw.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The most restarts of faer's Krylov–Schur solver. Its eigenvalues
    /// cluster at 1 on this graph, so it converges slowly: the first run,
    /// with 1,000, had not finished after 490 s and stopped the rows after
    /// it, and with 20 it had not finished after 14 minutes either. The table
    /// gives the residual it reached. 0 (the default) skips faer.
    #[arg(long, default_value_t = 0)]
    faer_restarts: usize,
    /// Where to write the subset's codes, labels and this crate's UMAP embedding.
    #[arg(long)]
    out: PathBuf,
}

/// CPU seconds of this process (user + system, all threads), from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let Some(at) = stat.rfind(')') else {
        return f64::NAN;
    };
    let fields: Vec<&str> = stat[at + 2..].split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (tick(11), tick(12)) {
        (Some(u), Some(s)) => (u + s) / 100.0,
        _ => f64::NAN,
    }
}

/// Runs `f`, returning its value, wall seconds and CPU seconds.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64, f64) {
    let (t, c) = (Instant::now(), cpu_seconds());
    let v = f();
    (v, t.elapsed().as_secs_f64(), cpu_seconds() - c)
}

fn read_labels(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut lab = Vec::new();
    flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut lab)?;
    ensure!(lab.len() >= 8, "{}: not an IDX file", path.display());
    Ok(lab[8..].to_vec())
}

fn write_f32(path: &Path, v: &[f32]) -> Result<()> {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).with_context(|| format!("{}: cannot write", path.display()))
}

/// `D^-1/2 W D^-1/2` of a fuzzy graph, as `init::umap`'s spectral start builds it.
fn normalized(graph: &FuzzyGraph) -> SparseSym {
    let n = graph.n;
    let mut degree = vec![0.0f64; n];
    for &(i, _, w) in &graph.edges {
        degree[i as usize] += w as f64;
    }
    let mut row_ptr = vec![0];
    let (mut col, mut val) = (Vec::new(), Vec::new());
    let mut e = 0;
    for i in 0..n {
        while e < graph.edges.len() && graph.edges[e].0 as usize == i {
            let (_, j, w) = graph.edges[e];
            col.push(j);
            val.push(w as f64 / (degree[i] * degree[j as usize]).sqrt().max(1e-300));
            e += 1;
        }
        row_ptr.push(col.len());
    }
    SparseSym {
        n,
        row_ptr,
        col,
        val,
    }
}

/// Largest `‖A x_c − λ_c x_c‖` over the pairs (vectors row-major `n × k`).
fn max_residual(a: &SparseSym, values: &[f64], vectors: &[f64], k: usize) -> f64 {
    let mut ax = vec![0.0; vectors.len()];
    a.mul_block(vectors, &mut ax, k);
    (0..k)
        .map(|c| {
            vectors
                .chunks_exact(k)
                .zip(ax.chunks_exact(k))
                .map(|(x, y)| (y[c] - values[c] * x[c]).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .fold(0.0, f64::max)
}

/// The `k` largest eigenpairs of `a` (spectrum in [-1, 1]) by faer's
/// Krylov–Schur solver on `(A + I) / 2`, whose largest-magnitude eigenvalues
/// are `a`'s largest; returns (values descending, vectors row-major `n × k`).
fn faer_top(a: &SparseSym, k: usize, tol: f64, restarts: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::matrix_free::eigen::{
        partial_self_adjoint_eigen, partial_self_adjoint_eigen_scratch, PartialEigenParams,
    };
    use faer::sparse::{SparseRowMat, SymbolicSparseRowMat};
    use faer::{Col, Mat, Par};
    let n = a.n;
    let mut row_ptr = vec![0usize];
    let (mut col, mut val) = (Vec::new(), Vec::new());
    for i in 0..n {
        for e in a.row_ptr[i]..a.row_ptr[i + 1] {
            col.push(a.col[e] as usize);
            val.push(0.5 * a.val[e]);
        }
        col.push(i);
        val.push(0.5);
        row_ptr.push(col.len());
    }
    let symbolic = SymbolicSparseRowMat::new_unsorted_checked(n, n, row_ptr, None, col);
    let b = SparseRowMat::new(symbolic, val);
    let op = b.as_ref();
    let mut r = Rng::from_state(seed);
    let mut v0 = Col::<f64>::from_fn(n, |_| r.normal());
    let norm = v0.norm_l2();
    v0 /= norm;
    let params = PartialEigenParams {
        max_restarts: restarts,
        ..Default::default()
    };
    let mut mem = MemBuffer::new(partial_self_adjoint_eigen_scratch(&op, k, Par::Seq, params));
    let mut vecs = Mat::<f64>::zeros(n, k);
    let mut mu = vec![0.0f64; k];
    partial_self_adjoint_eigen(
        vecs.as_mut(),
        &mut mu,
        &op,
        v0.as_ref(),
        tol,
        Par::Seq,
        MemStack::new(&mut mem),
        params,
    );
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&p, &q| mu[q].total_cmp(&mu[p]));
    let values = order.iter().map(|&c| 2.0 * mu[c] - 1.0).collect();
    let mut vectors = vec![0.0; n * k];
    for i in 0..n {
        for (c, &o) in order.iter().enumerate() {
            vectors[i * k + c] = vecs[(i, o)];
        }
    }
    (values, vectors)
}

/// The `k` nearest of each query among `reference` by kiddo's exact k-d tree
/// (batch query); with `self_excluded` the queries are the reference points
/// and each drops itself.
fn kiddo_knn(reference: &[f32], queries: &[f32], k: usize, self_excluded: bool) -> Vec<u32> {
    use kiddo::{ImmutableKdTree, SquaredEuclidean};
    let rows = |v: &[f32]| -> Vec<[f32; D]> {
        v.chunks_exact(D)
            .map(|c| c.try_into().expect("D columns"))
            .collect()
    };
    let (refs, qs) = (rows(reference), rows(queries));
    let tree: ImmutableKdTree<f32, D> = ImmutableKdTree::new_from_slice(&refs).expect("tree");
    let extra = usize::from(self_excluded);
    let results = tree
        .query_batch(&qs)
        .nearest_n::<SquaredEuclidean<f32>>(NonZero::new(k + extra).expect("k > 0"))
        .execute();
    let mut index = Vec::with_capacity(qs.len() * k);
    for (q, row) in results.iter().enumerate() {
        let mut got: Vec<u32> = row
            .iter()
            .map(|r| r.item)
            .filter(|&j| !self_excluded || j as usize != q)
            .collect();
        got.truncate(k);
        index.extend(got);
    }
    index
}

/// Share of exact neighbours (`truth`, `k` per row) found in `got`.
fn recall(truth: &[u32], got: &[u32], k: usize) -> f64 {
    let hits: usize = truth
        .chunks_exact(k)
        .zip(got.chunks_exact(k))
        .map(|(t, g)| t.iter().filter(|j| g.contains(j)).count())
        .sum();
    hits as f64 / truth.len() as f64
}

fn inertia(data: &[f32], assignment: &[usize], k: usize) -> f64 {
    let mut sums = vec![0.0f64; k * D];
    let mut counts = vec![0usize; k];
    for (x, &c) in data.chunks_exact(D).zip(assignment) {
        counts[c] += 1;
        for (s, &v) in sums[c * D..(c + 1) * D].iter_mut().zip(x) {
            *s += v as f64;
        }
    }
    data.chunks_exact(D)
        .zip(assignment)
        .map(|(x, &c)| {
            x.iter()
                .enumerate()
                .map(|(j, &v)| (v as f64 - sums[c * D + j] / counts[c].max(1) as f64).powi(2))
                .sum::<f64>()
        })
        .sum()
}

fn main() -> Result<()> {
    let args = Args::parse();
    let bytes = std::fs::read(&args.codes)
        .with_context(|| format!("{}: cannot read", args.codes.display()))?;
    let codes: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let n = codes.len() / D;
    let labels = read_labels(&args.labels)?;
    ensure!(labels.len() >= n, "{n} codes, {} labels", labels.len());
    let labels = &labels[..n];
    let m = args.points.min(n);

    // The graph points, drawn as `init` draws a try's subset.
    let mut rng = Rng::from_state(args.seed);
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    let (subset, rest) = order.split_at(m);
    let pick = |ix: &[usize]| -> Vec<f32> {
        ix.iter()
            .flat_map(|&i| codes[i * D..(i + 1) * D].iter().copied())
            .collect()
    };
    let (sub, queries) = (pick(subset), pick(rest));
    let sub_labels: Vec<u8> = subset.iter().map(|&i| labels[i]).collect();
    std::fs::create_dir_all(&args.out)?;
    write_f32(&args.out.join("codes.f32"), &sub)?;
    std::fs::write(args.out.join("labels.u8"), &sub_labels)?;

    println!(
        "{n} codes of {D} dimensions ({}), {m} graph points (seed {}), {} queries; {} threads.\n",
        args.codes.display(),
        args.seed,
        n - m,
        std::thread::available_parallelism().map_or(1, |t| t.get())
    );

    // 1. k-nearest neighbours.
    println!("| k-NN | task | wall (s) | CPU (s) | recall of the exact neighbours |");
    println!("|---|---|---:|---:|---:|");
    for (task, reference, qs, k, self_excluded) in [
        ("graph: 10 of each graph point", &sub, &sub, 10, true),
        (
            "vote: 10 graph points of each other code",
            &sub,
            &queries,
            10,
            false,
        ),
    ] {
        let (ours, w, c) = timed(|| brute_force(reference, qs, D, k, self_excluded));
        println!(
            "| `init::knn::brute_force` (the trainer's k-NN before kiddo) | {task} | {w:.2} | {c:.2} | 1 (exact) |"
        );
        let (tree, w, c) = timed(|| knn(reference, qs, D, k, self_excluded));
        println!(
            "| `init::knn` now (kiddo's tree, queries on threads) | {task} | {w:.2} | {c:.2} | {:.5} |",
            recall(&ours.index, &tree.index, k)
        );
        let (theirs, w, c) = timed(|| kiddo_knn(reference, qs, k, self_excluded));
        println!(
            "| `kiddo` 6 batch query | {task} | {w:.2} | {c:.2} | {:.5} |",
            recall(&ours.index, &theirs, k)
        );
    }

    // 2. The eigen-solver, on UMAP's spectral start.
    let graph = fuzzy_graph(&sub, D, 10);
    let a = normalized(&graph);
    let k = 11;
    println!(
        "\n| eigen-solver: 11 largest of the {m}-point fuzzy graph ({} entries) | wall (s) | CPU (s) | largest residual | eigenvalues |",
        a.val.len()
    );
    println!("|---|---:|---:|---:|---|");
    let (ours, w, c) = timed(|| {
        top_eigenvectors(
            &a,
            k,
            &EigenConfig::default(),
            &mut Rng::from_state(args.seed),
        )
    });
    let show = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.5}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "| `init::eigen` (Chebyshev subspace iteration, {} rounds) | {w:.2} | {c:.2} | {:.1e} | {} |",
        ours.rounds,
        max_residual(&a, &ours.values[..k], &ours.vectors, k),
        show(&ours.values[..k])
    );
    let tolerances: &[f64] = if args.faer_restarts == 0 {
        println!("| `faer` 0.24 Krylov–Schur | skipped (`--faer-restarts 0`) | – | – | – |");
        &[]
    } else {
        &[1e-6, 1e-9]
    };
    for &tol in tolerances {
        let ((values, vectors), w, c) =
            timed(|| faer_top(&a, k, tol, args.faer_restarts, args.seed));
        println!(
            "| `faer` 0.24 Krylov–Schur, tolerance {tol:.0e}, at most {} restarts | {w:.2} | {c:.2} | {:.1e} | {} |",
            args.faer_restarts,
            max_residual(&a, &values, &vectors, k),
            show(&values)
        );
    }

    // 3. UMAP (ours; umap-learn in the Python script), then k-means / GMM on it.
    let cfg = UmapConfig::default();
    let (embedding, w, c) = timed(|| umap(&sub, D, &cfg, &mut Rng::from_state(args.seed)));
    write_f32(&args.out.join("umap-init.f32"), &embedding)?;
    println!(
        "\n`init::umap` ({} neighbours, {} dimensions, {} epochs, min_dist {}): {w:.2} s wall, {c:.2} s CPU; written to {}.",
        cfg.neighbours,
        cfg.dim,
        cfg.epochs,
        cfg.min_dist,
        args.out.join("umap-init.f32").display()
    );
    println!("\n| clustering of the `init::umap` embedding, K = 10 | wall (s) | CPU (s) | inertia | ACC | NMI | ARI |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let kcfg = KMeansConfig {
        k: 10,
        restarts: 10,
        max_iter: 300,
    };
    let (km, w, c) = timed(|| kmeans(&embedding, D, &kcfg, &mut Rng::from_state(args.seed)));
    let e = evaluate(&km.assignment, &sub_labels, 10);
    println!(
        "| `init::kmeans` (k-means++, 10 restarts) | {w:.2} | {c:.2} | {:.1} | {:.4} | {:.4} | {:.4} |",
        inertia(&embedding, &km.assignment, 10),
        e.acc,
        e.nmi,
        e.ari
    );
    {
        use linfa::prelude::*;
        use linfa_clustering::{GaussianMixtureModel, KMeans};
        let x =
            ndarray::Array2::from_shape_vec((m, D), embedding.iter().map(|&v| v as f64).collect())?;
        let ds = linfa::DatasetBase::from(x.clone());
        let (pred, w, c) = timed(|| -> Result<Vec<usize>> {
            let model = KMeans::params(10)
                .n_runs(10)
                .max_n_iterations(300)
                .fit(&ds)?;
            Ok(model.predict(&x).to_vec())
        });
        let pred = pred?;
        let e = evaluate(&pred, &sub_labels, 10);
        println!(
            "| `linfa-clustering` 0.8 KMeans (k-means++, 10 runs) | {w:.2} | {c:.2} | {:.1} | {:.4} | {:.4} | {:.4} |",
            inertia(&embedding, &pred, 10),
            e.acc,
            e.nmi,
            e.ari
        );
        let (pred, w, c) = timed(|| -> Result<Vec<usize>> {
            let model = GaussianMixtureModel::params(10)
                .n_runs(1)
                .max_n_iterations(100)
                .fit(&ds)?;
            Ok(model.predict(&x).to_vec())
        });
        match pred {
            Ok(pred) => {
                let e = evaluate(&pred, &sub_labels, 10);
                println!(
                    "| `linfa-clustering` 0.8 Gaussian mixture (full covariance, 1 run) | {w:.2} | {c:.2} | {:.1} | {:.4} | {:.4} | {:.4} |",
                    inertia(&embedding, &pred, 10),
                    e.acc,
                    e.nmi,
                    e.ari
                );
            }
            Err(err) => println!(
                "| `linfa-clustering` 0.8 Gaussian mixture (full covariance, 1 run): failed, {err} | {w:.2} | {c:.2} | – | – | – | – |"
            ),
        }
    }
    Ok(())
}
