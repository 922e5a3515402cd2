//! Unsupervised initial partition of the training images, used to initialize
//! the mixture (each expert pretrained on one part, the gate on the parts).
//!
//! Pipeline ([`initial_partition`]): optionally straighten the images
//! ([`deskew`]; the default preset does), train an autoencoder on all images
//! ([`autoencoder`]), embed every image as a short code, then cluster the codes
//! either by spectral clustering ([`spectral`]: k-NN graph on a random subset
//! of at most `max_points` codes, normalized affinity, leading eigenvectors by
//! a sparse eigensolver ([`eigen`]), k-means on the row-normalized embedding)
//! or by plain k-means on all codes ([`kmeans`]). Codes outside the graph get
//! the majority cluster of their nearest graph points ([`knn`]). Spectral
//! clustering is tried on several random subsets and the most evenly sized
//! result is kept. Labels are never used. Every random draw comes from
//! [`crate::rng::Rng`] seeded by `seed`, so a seed fixes the partition.
//!
//! Measured quality and time on MNIST: see `README.md` in this folder.

pub mod autoencoder;
pub mod cache;
pub mod deskew;
pub mod eigen;
pub mod kmeans;
pub mod knn;
pub mod spectral;
pub mod splinter;
#[cfg(test)]
mod testdata;
pub mod umap;

use anyhow::{ensure, Result};

use crate::rng::Rng;
use autoencoder::{Autoencoder, AutoencoderConfig};
use kmeans::KMeansConfig;
use spectral::SpectralConfig;
use umap::UmapConfig;

/// Bytes per image (28×28 grey levels).
pub use crate::data::PIXELS;

/// How the autoencoder codes are clustered (`--cluster` of `trainer fit`,
/// `cluster` in a run's `config.json`; configurations written before that
/// field existed used [`Clustering::Spectral`], the serde default).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Clustering {
    /// k-means on a UMAP embedding of up to `max_points` codes (autoencoder +
    /// UMAP + k-means).
    Umap,
    /// As `Umap`, then a full-covariance Gaussian mixture on the embedding
    /// (`linfa-clustering`, started from its own k-means): N2D's choice.
    #[value(name = "umap-gmm")]
    #[serde(rename = "umap-gmm")]
    UmapGmm,
    /// Spectral clustering of a k-NN graph on up to `max_points` codes.
    #[default]
    Spectral,
    /// k-means (k-means++ with restarts) on all codes.
    #[value(name = "kmeans")]
    KMeans,
}

/// Settings for [`initial_partition`].
#[derive(Debug, Clone)]
pub struct PartitionConfig {
    /// Number of parts (clusters).
    pub k: usize,
    /// Seed of every random draw (weights, shuffles, subsets, k-means).
    pub seed: u64,
    /// Autoencoder passes over all images (fewer when `ae_max_steps`
    /// caps them: [`PartitionConfig::ae_passes`]).
    pub ae_epochs: usize,
    /// Most autoencoder Adam steps (0 = no cap): the passes stop at the
    /// last whole one within it, so that a large set's start does not
    /// grow with its size.
    pub ae_max_steps: usize,
    /// Autoencoder hidden layer widths (encoder; the decoder mirrors them).
    pub ae_hidden: Vec<usize>,
    /// Autoencoder code width (the clustering space).
    pub code_dim: usize,
    /// Autoencoder batch size.
    pub ae_batch: usize,
    /// Autoencoder Adam step size.
    pub ae_lr: f64,
    /// Autoencoder augmentation: images shifted by up to this many pixels
    /// (0 = none; see [`AutoencoderConfig::shift`]).
    pub ae_shift: usize,
    /// The images' `(width, height)`, for `ae_shift` and `deskew`.
    pub image: (usize, usize),
    /// Straighten the images ([`deskew`]) before the autoencoder sees them.
    pub deskew: bool,
    /// Mend a UMAP try whose smallest part is a splinter ([`splinter`]):
    /// cluster into a few more parts and merge back. Off in `default()` (the
    /// behaviour before it existed, which kVAE's partition keeps); the
    /// mixture's default preset turns it on.
    pub mend_splinters: bool,
    /// Clustering of the codes.
    pub clustering: Clustering,
    /// Codes in the spectral graph (a random subset when there are more
    /// images); the rest are assigned by their nearest graph points.
    pub max_points: usize,
    /// Spectral clustering settings (graph neighbours, weighting, solver).
    pub spectral: SpectralConfig,
    /// Runs of the graph method (spectral or UMAP) on different random
    /// subsets (and, for UMAP, different random layouts); the one whose
    /// cluster sizes are most even (highest size entropy, no labels) is kept.
    pub tries: usize,
    /// UMAP settings (for [`Clustering::Umap`]).
    pub umap: UmapConfig,
    /// Graph points voting for each code outside the graph.
    pub assign_neighbours: usize,
    /// k-means restarts (for [`Clustering::KMeans`]).
    pub kmeans_restarts: usize,
}

impl PartitionConfig {
    /// The autoencoder's passes over `n` images: `ae_epochs`, or, when
    /// that many would take more than `ae_max_steps` Adam steps, the most
    /// whole passes within them (at least one).
    ///
    /// ```
    /// use trainer::init::PartitionConfig;
    /// let cfg = PartitionConfig { ae_epochs: 20, ae_max_steps: 10_000, ae_batch: 64, ..Default::default() };
    /// assert_eq!(cfg.ae_passes(60_000), 10); // 938 steps a pass
    /// assert_eq!(cfg.ae_passes(20_000), 20); // 313 steps a pass: 6,260 in all
    /// assert_eq!(cfg.ae_passes(1_000_000), 1);
    /// ```
    pub fn ae_passes(&self, n: usize) -> usize {
        if self.ae_max_steps == 0 {
            return self.ae_epochs;
        }
        self.ae_epochs
            .min((self.ae_max_steps / self.ae_steps_per_pass(n)).max(1))
    }

    /// Adam steps of one autoencoder pass over `n` images (the last batch
    /// may be short; at least one).
    fn ae_steps_per_pass(&self, n: usize) -> usize {
        n.div_ceil(self.ae_batch.max(1)).max(1)
    }
}

impl Default for PartitionConfig {
    fn default() -> Self {
        Self {
            k: 10,
            seed: 0,
            ae_epochs: 10,
            ae_max_steps: 0,
            ae_hidden: vec![500, 500],
            code_dim: 10,
            ae_batch: 64,
            ae_lr: 1e-3,
            ae_shift: 0,
            image: (28, 28),
            deskew: false,
            mend_splinters: false,
            clustering: Clustering::Spectral,
            max_points: 20_000,
            spectral: SpectralConfig::default(),
            tries: 4,
            umap: UmapConfig::default(),
            assign_neighbours: 10,
            kmeans_restarts: 10,
        }
    }
}

/// A partition of the images into `k` parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Part of each image, in `0..k`.
    pub assignment: Vec<usize>,
    /// Number of parts.
    pub k: usize,
}

impl Partition {
    /// Number of images in each part.
    pub fn sizes(&self) -> Vec<usize> {
        part_sizes(&self.assignment, self.k)
    }
}

/// Number of points in each part `0..k` of `assignment` (labels below `k`).
pub fn part_sizes(assignment: &[usize], k: usize) -> Vec<usize> {
    let mut sizes = vec![0; k];
    for &a in assignment {
        sizes[a] += 1;
    }
    sizes
}

/// Entropy (nats) of the size distribution: `ln k` when perfectly even.
pub fn size_entropy(assignment: &[usize], k: usize) -> f64 {
    let sizes = part_sizes(assignment, k);
    let n = assignment.len() as f64;
    sizes
        .iter()
        .filter(|&&s| s > 0)
        .map(|&s| {
            let p = s as f64 / n;
            -p * p.ln()
        })
        .sum()
}

/// Partitions the `n` images (row-major bytes of any one size) into `cfg.k`
/// parts without labels; `progress` receives one line per stage.
pub fn initial_partition(
    images: &[u8],
    n: usize,
    cfg: &PartitionConfig,
    progress: &dyn Fn(&str),
) -> Result<Partition> {
    ensure!(
        n > 0 && images.len().is_multiple_of(n),
        "partition: {} bytes is not {n} images",
        images.len()
    );
    ensure!(
        cfg.k >= 1 && n >= cfg.k,
        "partition: {n} images for {} parts",
        cfg.k
    );
    let rng = Rng::from_state(cfg.seed);
    let passes = cfg.ae_passes(n);
    if passes < cfg.ae_epochs {
        progress(&format!(
            "autoencoder: {passes} passes, not {}: {} steps at most ({} a pass)",
            cfg.ae_epochs,
            cfg.ae_max_steps,
            cfg.ae_steps_per_pass(n)
        ));
    }
    let ae_cfg = AutoencoderConfig {
        hidden: cfg.ae_hidden.clone(),
        code: cfg.code_dim,
        epochs: passes,
        batch: cfg.ae_batch,
        lr: cfg.ae_lr,
        shift: cfg.ae_shift,
        image: cfg.image,
    };
    let deskewed;
    let images = if cfg.deskew {
        let (w, h) = cfg.image;
        ensure!(
            images.len() == n * w * h,
            "partition: {} bytes is not {n} images of {w}×{h}",
            images.len()
        );
        deskewed = deskew::deskew_all(images, w, h);
        progress(&format!("{n} images deskewed"));
        &deskewed[..]
    } else {
        images
    };
    let ae = Autoencoder::train(images, n, &ae_cfg, &mut rng.fork(1), progress)?;
    let codes = ae.encode(images, n)?;
    let assignment = cluster_codes(&codes, ae.code_dim(), cfg, progress)?;
    Ok(Partition {
        assignment,
        k: cfg.k,
    })
}

/// Clusters `codes` (flat, `d` columns) by `cfg.clustering`; the second stage of
/// [`initial_partition`], public so that studies can reuse one autoencoder.
pub fn cluster_codes(
    codes: &[f32],
    d: usize,
    cfg: &PartitionConfig,
    progress: &dyn Fn(&str),
) -> Result<Vec<usize>> {
    ensure!(
        d > 0 && codes.len().is_multiple_of(d),
        "partition: codes not a multiple of {d}"
    );
    let n = codes.len() / d;
    ensure!(
        n >= cfg.k && cfg.k >= 1,
        "partition: {n} codes for {} parts",
        cfg.k
    );
    let rng = Rng::from_state(cfg.seed).fork(2);
    match cfg.clustering {
        Clustering::KMeans => {
            let km = kmeans::kmeans(
                codes,
                d,
                &KMeansConfig {
                    k: cfg.k,
                    restarts: cfg.kmeans_restarts,
                    max_iter: 300,
                },
                &mut rng.fork(0),
            );
            progress(&format!("k-means on {n} codes: inertia {:.1}", km.inertia));
            Ok(km.assignment)
        }
        Clustering::Umap | Clustering::UmapGmm => {
            let gmm = cfg.clustering == Clustering::UmapGmm;
            let m = graph_points(cfg, n, cfg.umap.neighbours)?;
            let ucfg = UmapConfig {
                dim: cfg.umap.dim.max(1),
                ..cfg.umap
            };
            Ok(most_even(cfg, "umap", progress, |t| {
                let mut r = rng.fork(200 + t as u64);
                let (subset, sub_codes) = random_subset(codes, d, m, &mut r);
                let embedding = umap::umap(&sub_codes, d, &ucfg, &mut r.fork(1));
                // k-means (then, for UmapGmm, a Gaussian mixture) into
                // `parts` parts; `draw` seeds k-means.
                let cluster = |parts: usize, draw: u64| -> (Vec<usize>, String) {
                    let km = kmeans::kmeans(
                        &embedding,
                        ucfg.dim,
                        &KMeansConfig {
                            k: parts,
                            restarts: cfg.kmeans_restarts,
                            max_iter: 300,
                        },
                        &mut r.fork(draw),
                    );
                    let mut what = format!("k-means inertia {:.1}", km.inertia);
                    let mut assignment = km.assignment;
                    if gmm {
                        match gaussian_mixture(&embedding, ucfg.dim, parts) {
                            Ok(g) => {
                                what += "; Gaussian mixture";
                                assignment = g;
                            }
                            Err(e) => {
                                what += &format!("; Gaussian mixture failed ({e}), k-means kept")
                            }
                        }
                    }
                    (assignment, what)
                };
                let (mut parts, clustered) = cluster(cfg.k, 2);
                let mut what = format!(
                    "{m} graph points, {} neighbours, {} dimensions, {} epochs; {clustered}",
                    ucfg.neighbours, ucfg.dim, ucfg.epochs
                );
                if cfg.mend_splinters && splinter::has_splinter(&parts, cfg.k) {
                    what += &mend_splinter(&mut parts, &sub_codes, d, cfg, |p| {
                        cluster(p, 10 + p as u64).0
                    });
                }
                (extend_to_all(codes, d, &subset, &parts, cfg), what)
            }))
        }
        Clustering::Spectral => {
            let m = graph_points(cfg, n, cfg.spectral.neighbours)?;
            Ok(most_even(cfg, "spectral", progress, |t| {
                let mut r = rng.fork(100 + t as u64);
                let (subset, sub_codes) = random_subset(codes, d, m, &mut r);
                let sc = spectral::spectral_clustering(&sub_codes, d, cfg.k, &cfg.spectral, &mut r);
                let what = format!(
                    "{m} graph points, eigen residual {:.1e} after {} rounds",
                    sc.residual, sc.rounds
                );
                (extend_to_all(codes, d, &subset, &sc.assignment, cfg), what)
            }))
        }
    }
}

/// Mends a partition `parts` of the rows of `codes` (`d` columns) whose
/// smallest part is a splinter ([`splinter`]): `cluster(p)` partitions them
/// into `p = k + 1`, `k + 2`, … parts, [`splinter::merge_smallest`] merges each
/// back to `k` along the codes' neighbour graph, and the most evenly sized of
/// these and `parts` is kept. Returns what it did, for the try's progress line.
fn mend_splinter(
    parts: &mut Vec<usize>,
    codes: &[f32],
    d: usize,
    cfg: &PartitionConfig,
    cluster: impl Fn(usize) -> Vec<usize>,
) -> String {
    let smallest = part_sizes(parts, cfg.k).into_iter().min().unwrap_or(0);
    let n = parts.len();
    let mut what = format!(
        "; its smallest part ({smallest} points) is under {:.0}% of an even share:",
        splinter::SPLINTER_SHARE * 100.0
    );
    // A splinter needs k >= 2 parts, so n >= 2 points: n - 1 >= 1.
    let neighbours = knn::knn(codes, codes, d, cfg.assign_neighbours.clamp(1, n - 1), true);
    let mut best = (size_entropy(parts, cfg.k), 0, None);
    for extra in 1..=splinter::EXTRA_PARTS {
        let over = cfg.k + extra;
        if over > n {
            break;
        }
        let merged = splinter::merge_smallest(&cluster(over), over, cfg.k, &neighbours);
        let evenness = size_entropy(&merged, cfg.k);
        what += &format!(
            " {over} parts merged back to {}, size entropy {evenness:.4};",
            cfg.k
        );
        if evenness > best.0 {
            best = (evenness, over, Some(merged));
        }
    }
    match best {
        (_, over, Some(merged)) => {
            *parts = merged;
            what + &format!(" kept the {over}-part one")
        }
        _ => what + " kept the first",
    }
}

/// The most likely component of each row of `points` (`d` columns) under a
/// `k`-component full-covariance Gaussian mixture fitted by
/// `linfa-clustering` (one run, started from its k-means, its fixed seed).
fn gaussian_mixture(points: &[f32], d: usize, k: usize) -> Result<Vec<usize>> {
    use linfa::traits::{Fit, Predict};
    let x = ndarray::Array2::from_shape_vec(
        (points.len() / d, d),
        points.iter().map(|&v| f64::from(v)).collect(),
    )?;
    let model = linfa_clustering::GaussianMixtureModel::params(k)
        .n_runs(1)
        .max_n_iterations(100)
        .fit(&linfa::DatasetBase::from(x.clone()))?;
    Ok(model.predict(&x).to_vec())
}

/// Runs `attempt` for tries `0..cfg.tries` (at least one), reports each with
/// its size entropy, and keeps the most evenly sized assignment (no labels).
/// The tries run on threads of their own (each is single-threaded and
/// seeded by its index, so the result does not depend on the scheduling);
/// they are reported in order.
fn most_even(
    cfg: &PartitionConfig,
    method: &str,
    progress: &dyn Fn(&str),
    attempt: impl Fn(usize) -> (Vec<usize>, String) + Sync,
) -> Vec<usize> {
    let tries = cfg.tries.max(1);
    let results = crate::util::in_parallel(tries, attempt);
    let mut best: Option<(f64, Vec<usize>)> = None;
    for (t, (assignment, what)) in results.into_iter().enumerate() {
        let evenness = size_entropy(&assignment, cfg.k);
        progress(&format!(
            "{method} try {}/{tries}: {what}, size entropy {evenness:.4} (max {:.4})",
            t + 1,
            (cfg.k as f64).ln()
        ));
        if best.as_ref().is_none_or(|(e, _)| evenness > *e) {
            best = Some((evenness, assignment));
        }
    }
    best.map(|(_, a)| a).unwrap_or_default()
}

/// How many codes go into a neighbour graph: `max_points`, or all of them.
fn graph_points(cfg: &PartitionConfig, n: usize, neighbours: usize) -> Result<usize> {
    let m = cfg.max_points.min(n);
    ensure!(
        m > neighbours && m >= cfg.k,
        "partition: {m} graph points is too few for {neighbours} neighbours"
    );
    Ok(m)
}

/// `m` codes drawn at random without replacement: their indices, and the
/// codes themselves as a flat matrix.
fn random_subset(codes: &[f32], d: usize, m: usize, rng: &mut Rng) -> (Vec<usize>, Vec<f32>) {
    let mut order: Vec<usize> = (0..codes.len() / d).collect();
    rng.shuffle(&mut order);
    order.truncate(m);
    let sub_codes = order
        .iter()
        .flat_map(|&i| codes[i * d..(i + 1) * d].iter().copied())
        .collect();
    (order, sub_codes)
}

/// Labels every code: graph points keep their cluster, the others take the
/// majority cluster of their `assign_neighbours` nearest graph points (ties to
/// the nearer neighbour).
fn extend_to_all(
    codes: &[f32],
    d: usize,
    subset: &[usize],
    sub_assignment: &[usize],
    cfg: &PartitionConfig,
) -> Vec<usize> {
    let n = codes.len() / d;
    let mut assignment = vec![usize::MAX; n];
    for (&i, &c) in subset.iter().zip(sub_assignment) {
        assignment[i] = c;
    }
    let rest: Vec<usize> = (0..n).filter(|&i| assignment[i] == usize::MAX).collect();
    if rest.is_empty() {
        return assignment;
    }
    let sub_codes: Vec<f32> = subset
        .iter()
        .flat_map(|&i| codes[i * d..(i + 1) * d].iter().copied())
        .collect();
    let queries: Vec<f32> = rest
        .iter()
        .flat_map(|&i| codes[i * d..(i + 1) * d].iter().copied())
        .collect();
    let votes_k = cfg.assign_neighbours.clamp(1, subset.len());
    let nb = knn::knn(&sub_codes, &queries, d, votes_k, false);
    for (q, &i) in rest.iter().enumerate() {
        let mut votes = vec![0usize; cfg.k];
        for &j in nb.of(q) {
            votes[sub_assignment[j as usize]] += 1;
        }
        let top = *votes.iter().max().expect("k >= 1");
        // Nearest neighbour among those of a top-voted cluster.
        let c = nb
            .of(q)
            .iter()
            .map(|&j| sub_assignment[j as usize])
            .find(|&c| votes[c] == top)
            .expect("some neighbour has the top vote");
        assignment[i] = c;
    }
    assignment
}

#[cfg(test)]
mod tests {
    use super::testdata::{agreement, blobs, rings, toy_images};
    use super::*;

    #[test]
    fn spectral_on_a_subset_labels_every_point() {
        let (codes, truth) = rings(&[1.0, 5.0], 600, 0.1, 4);
        let cfg = PartitionConfig {
            k: 2,
            max_points: 300,
            tries: 2,
            ..PartitionConfig::default()
        };
        let a = cluster_codes(&codes, 2, &cfg, &|_| {}).unwrap();
        assert_eq!(a.len(), 1200);
        assert_eq!(agreement(&a, &truth, 2), 1.0);
    }

    #[test]
    fn umap_tries_keep_the_most_even_result() {
        let (codes, truth) = blobs(&[[0.0, 0.0], [8.0, 0.0], [4.0, 7.0]], 150, 1.0, 3);
        let cfg = PartitionConfig {
            k: 3,
            clustering: Clustering::Umap,
            max_points: 300,
            tries: 3,
            ..PartitionConfig::default()
        };
        let lines = std::cell::RefCell::new(Vec::new());
        let a =
            cluster_codes(&codes, 2, &cfg, &|l| lines.borrow_mut().push(l.to_string())).unwrap();
        let lines = lines.into_inner();
        assert_eq!(lines.len(), 3, "one line per try: {lines:?}");
        // Each line ends "size entropy E (max M)"; the kept result is the max E.
        let best = lines
            .iter()
            .map(|l| {
                let e = l
                    .split("size entropy ")
                    .nth(1)
                    .expect("entropy in the line");
                e.split(' ').next().unwrap().parse::<f64>().unwrap()
            })
            .fold(f64::MIN, f64::max);
        assert!((size_entropy(&a, 3) - best).abs() < 5e-5, "{lines:?}");
        assert!(agreement(&a, &truth, 3) > 0.98);
        assert_eq!(a, cluster_codes(&codes, 2, &cfg, &|_| {}).unwrap());
    }

    #[test]
    fn a_gaussian_mixture_finds_the_blobs_and_repeats_itself() {
        let (codes, truth) = blobs(&[[0.0, 0.0], [8.0, 0.0], [4.0, 7.0]], 150, 1.0, 3);
        let g = gaussian_mixture(&codes, 2, 3).unwrap();
        assert!(agreement(&g, &truth, 3) > 0.98);
        // Deterministic: linfa's fixed seed.
        assert_eq!(g, gaussian_mixture(&codes, 2, 3).unwrap());
        // And as a clustering of the partition.
        let cfg = PartitionConfig {
            k: 3,
            clustering: Clustering::UmapGmm,
            max_points: 300,
            tries: 2,
            ..PartitionConfig::default()
        };
        let a = cluster_codes(&codes, 2, &cfg, &|_| {}).unwrap();
        assert_eq!(a.len(), 450);
        assert!(agreement(&a, &truth, 3) > 0.98);
    }

    #[test]
    fn a_splinter_is_mended_by_clustering_into_more_parts_and_merging() {
        // Three even blobs and a small one beside the first: the first
        // partition gives the small one a part and joins the second and third.
        let (mut codes, mut truth) = blobs(&[[0.0, 0.0], [8.0, 0.0], [4.0, 7.0]], 150, 1.0, 3);
        let (small, _) = blobs(&[[-3.5, 0.0]], 10, 0.3, 4);
        codes.extend(small);
        truth.extend([0; 10]);
        let cfg = PartitionConfig {
            k: 3,
            ..PartitionConfig::default()
        };
        let first: Vec<usize> = (0..460)
            .map(|i| match truth[i] {
                _ if i >= 450 => 2,
                0 => 0,
                _ => 1,
            })
            .collect();
        assert!(splinter::has_splinter(&first, 3));
        let mut parts = first.clone();
        // Into 4 parts: the truth with the small blob apart; 5 and 6: worse.
        let what = mend_splinter(&mut parts, &codes, 2, &cfg, |p| {
            (0..460)
                .map(|i| match (i >= 450, p) {
                    (true, _) => 3,
                    (false, 4) => truth[i],
                    (false, _) => i % 2,
                })
                .collect()
        });
        assert_eq!(agreement(&parts, &truth, 3), 1.0, "{what}");
        assert!(what.contains("kept the 4-part one"), "{what}");
        // Where no count does better, the first partition stays.
        let mut parts = first.clone();
        let what = mend_splinter(&mut parts, &codes, 2, &cfg, |_| vec![0; 460]);
        assert_eq!(parts, first);
        assert!(what.ends_with("kept the first"), "{what}");
    }

    #[test]
    fn kmeans_method_and_determinism() {
        let (codes, truth) = blobs(&[[0.0, 0.0], [8.0, 0.0], [4.0, 7.0]], 100, 1.0, 6);
        let cfg = PartitionConfig {
            k: 3,
            clustering: Clustering::KMeans,
            seed: 5,
            ..PartitionConfig::default()
        };
        let a = cluster_codes(&codes, 2, &cfg, &|_| {}).unwrap();
        assert!(agreement(&a, &truth, 3) > 0.98);
        assert_eq!(a, cluster_codes(&codes, 2, &cfg, &|_| {}).unwrap());
    }

    #[test]
    fn size_entropy_prefers_even_partitions() {
        let even = [0, 1, 2, 0, 1, 2];
        let skewed = [0, 0, 0, 0, 1, 2];
        assert!((size_entropy(&even, 3) - 3f64.ln()).abs() < 1e-12);
        assert!(size_entropy(&skewed, 3) < size_entropy(&even, 3));
    }

    #[test]
    fn end_to_end_on_toy_images_is_reproducible() {
        let n = 300;
        let (images, kinds) = toy_images(n, 4);
        let cfg = PartitionConfig {
            k: 3,
            seed: 1,
            ae_epochs: 15,
            ae_hidden: vec![64],
            code_dim: 4,
            ae_batch: 32,
            ae_lr: 3e-3,
            max_points: 200,
            // 20 (the default, for tens of thousands of points) is too dense a
            // graph for 200 points.
            spectral: SpectralConfig {
                neighbours: 10,
                ..SpectralConfig::default()
            },
            tries: 2,
            ..PartitionConfig::default()
        };
        let lines = std::cell::RefCell::new(Vec::new());
        let p = initial_partition(&images, n, &cfg, &|l| {
            lines.borrow_mut().push(l.to_string())
        })
        .unwrap();
        assert_eq!((p.k, p.assignment.len()), (3, n));
        let acc = agreement(&p.assignment, &kinds, 3);
        assert!(acc > 0.95, "agreement {acc}, sizes {:?}", p.sizes());
        assert_eq!(
            lines.borrow().len(),
            15 + 2,
            "one line per epoch and per try"
        );
        let again = initial_partition(&images, n, &cfg, &|_| {}).unwrap();
        assert_eq!(p, again);
    }

    #[test]
    fn rejects_wrong_sizes() {
        let cfg = PartitionConfig::default();
        let err = initial_partition(&[0u8; 100], 3, &cfg, &|_| {}).unwrap_err();
        assert!(err.to_string().contains("not 3 images"), "{err}");
        let err = initial_partition(&[0u8; 100], 1, &cfg, &|_| {}).unwrap_err();
        assert!(err.to_string().contains("1 images for 10 parts"), "{err}");
    }
}
