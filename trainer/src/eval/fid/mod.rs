//! Fréchet distance of generated digits to real ones (FID), measured in the
//! feature space of a small MNIST classifier trained once on the training
//! labels, for evaluation only.
//!
//! # How the number is computed (so runs compare)
//! 1. Images are 28×28 values in [0, 1]: real test images are bytes / 255;
//!    generated images are the decoders' outputs (Bernoulli means), not
//!    binarized.
//! 2. Features are the 64 activations after the ReLU of the classifier's
//!    penultimate layer ([`Classifier::features`]), with the weights committed
//!    in `trainer/assets/fid_classifier.safetensors` (architecture below).
//! 3. From `n` real and `m` generated feature vectors, means `μ_r, μ_g` and
//!    unbiased covariances (divided by `n − 1`) `Σ_r, Σ_g` in f64.
//! 4. `FID = |μ_r − μ_g|² + tr Σ_r + tr Σ_g − 2 tr (Σ_r^{1/2} Σ_g Σ_r^{1/2})^{1/2}`,
//!    square roots of the symmetric positive semi-definite matrices by the
//!    cyclic Jacobi eigendecomposition (`crate::linalg::jacobi`;
//!    negative rounding-error eigenvalues clamped to 0).
//!
//! The experiments use the 10,000 MNIST test images as the real set and
//! 10,000 generated images (fewer with `--quick`, which the tables say).
//! FID with other feature extractors (Inception) is not comparable to these.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Module, Result, Tensor, D};
use candle_nn::{Conv2d, Conv2dConfig, Linear, VarBuilder};

use crate::data::Points;
use crate::linalg::jacobi;
use crate::nn::adam::{Adam, AdamConfig};
use crate::nn::layers::dense;
use crate::nn::params::Params;
use crate::rng::Rng;

/// The committed classifier weights.
pub const WEIGHTS: &[u8] = include_bytes!("../../../assets/fid_classifier.safetensors");

/// Width of the feature layer.
pub const FEATURES: usize = 64;

/// `conv 5×5 (1→16, stride 2) → ReLU → conv 5×5 (16→32, stride 2) → ReLU →
/// dense 512→64 → ReLU (features) → dense 64→10 (digit logits)`.
pub struct Classifier {
    conv1: Conv2d,
    conv2: Conv2d,
    fc: Linear,
    out: Linear,
}

impl Classifier {
    /// The network with tensors `conv1.*`, `conv2.*`, `fc.*`, `out.*` under `vb`.
    pub fn new(vb: VarBuilder) -> Result<Self> {
        let cfg = Conv2dConfig {
            stride: 2,
            ..Default::default()
        };
        Ok(Classifier {
            conv1: candle_nn::conv2d(1, 16, 5, cfg, vb.pp("conv1"))?,
            conv2: candle_nn::conv2d(16, 32, 5, cfg, vb.pp("conv2"))?,
            fc: dense(512, FEATURES, vb.pp("fc"))?,
            out: dense(FEATURES, 10, vb.pp("out"))?,
        })
    }

    /// The committed classifier.
    pub fn committed(device: &Device) -> anyhow::Result<Self> {
        let tensors = candle_core::safetensors::load_buffer(WEIGHTS, device)?;
        Self::from_tensors(
            &tensors,
            Path::new("trainer/assets/fid_classifier.safetensors"),
            device,
        )
    }

    fn from_tensors(
        tensors: &HashMap<String, Tensor>,
        file: &Path,
        device: &Device,
    ) -> anyhow::Result<Self> {
        let params = Params::new(0);
        let net = Classifier::new(params.var_builder(device))?;
        params.load_from(tensors, file)?;
        Ok(net)
    }

    /// Feature vectors `[B, 64]` of images `[B, 784]` in [0, 1].
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        let b = x.dim(0)?;
        let h = self.conv1.forward(&x.reshape((b, 1, 28, 28))?)?.relu()?;
        let h = self.conv2.forward(&h)?.relu()?;
        self.fc.forward(&h.flatten_from(1)?)?.relu()
    }

    /// Digit logits `[B, 10]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.out.forward(&self.features(x)?)
    }

    /// Features of every point, as f64 rows, computed in chunks.
    pub fn features_of(&self, points: &Points, device: &Device) -> Result<Vec<Vec<f64>>> {
        let mut out = Vec::with_capacity(points.n);
        let mut start = 0;
        while start < points.n {
            let len = 1000.min(points.n - start);
            let f = self
                .features(&points.slice(start, len, device)?)?
                .to_vec2::<f32>()?;
            out.extend(
                f.into_iter()
                    .map(|r| r.into_iter().map(f64::from).collect::<Vec<f64>>()),
            );
            start += len;
        }
        Ok(out)
    }

    /// Fraction of `images` whose predicted digit is the label.
    pub fn accuracy(&self, images: &Points, labels: &[u8], device: &Device) -> Result<f64> {
        let mut right = 0;
        let mut start = 0;
        while start < images.n {
            let len = 1000.min(images.n - start);
            let pred = self
                .forward(&images.slice(start, len, device)?)?
                .argmax(D::Minus1)?
                .to_vec1::<u32>()?;
            right += pred
                .iter()
                .zip(&labels[start..start + len])
                .filter(|(p, l)| **p == u32::from(**l))
                .count();
            start += len;
        }
        Ok(right as f64 / images.n.max(1) as f64)
    }
}

/// Trains the classifier on labelled images (`epochs` passes, batch 100,
/// Adam 1e-3, ±2-pixel random shifts off), returning it and its tensors.
pub fn train_classifier(
    images: &Points,
    labels: &[u8],
    epochs: usize,
    seed: u64,
    device: &Device,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<(Classifier, Params)> {
    let params = Params::new(seed);
    let net = Classifier::new(params.var_builder(device))?;
    let mut opt = Adam::new(params.vars(), AdamConfig::with_lr(1e-3));
    let mut rng = Rng::new(seed, 0xF1D);
    let mut order: Vec<usize> = (0..images.n).collect();
    for epoch in 0..epochs {
        rng.shuffle(&mut order);
        let mut total = 0.0;
        let mut batches = 0;
        for chunk in order.chunks(100) {
            let x = images.gather(&[chunk.to_vec()], device)?.squeeze(0)?;
            let t: Vec<u32> = chunk.iter().map(|&i| u32::from(labels[i])).collect();
            let t = Tensor::from_vec(t, chunk.len(), device)?;
            let loss = candle_nn::loss::cross_entropy(&net.forward(&x)?, &t)?;
            opt.step(&loss.backward()?)?;
            total += f64::from(loss.to_scalar::<f32>()?);
            batches += 1;
        }
        progress(epoch, total / batches as f64);
    }
    Ok((net, params))
}

/// Mean and unbiased covariance of row vectors.
#[allow(clippy::needless_range_loop)] // symmetric fill: both triangles by index
pub fn mean_cov(rows: &[Vec<f64>]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = rows.len();
    let d = rows.first().map_or(0, Vec::len);
    let mut mean = vec![0.0; d];
    for r in rows {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += v;
        }
    }
    for m in &mut mean {
        *m /= n.max(1) as f64;
    }
    let mut cov = vec![vec![0.0; d]; d];
    for r in rows {
        let c: Vec<f64> = r.iter().zip(&mean).map(|(v, m)| v - m).collect();
        for i in 0..d {
            for j in i..d {
                cov[i][j] += c[i] * c[j];
            }
        }
    }
    let denom = (n.max(2) - 1) as f64;
    for i in 0..d {
        for j in i..d {
            let v = cov[i][j] / denom;
            cov[i][j] = v;
            cov[j][i] = v;
        }
    }
    (mean, cov)
}

/// Eigenvalues and eigenvectors (`vectors[i][k]`: component i of vector k)
/// of a symmetric matrix, by the cyclic Jacobi method of
/// [`crate::linalg::jacobi`].
fn symmetric_eigen(a: &[Vec<f64>]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = a.len();
    let (values, flat) = jacobi(&a.concat(), n);
    (values, flat.chunks(n.max(1)).map(<[f64]>::to_vec).collect())
}

/// The square root of a symmetric positive semi-definite matrix.
pub fn sqrt_psd(a: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let (values, vectors) = symmetric_eigen(a);
    let n = a.len();
    let roots: Vec<f64> = values.iter().map(|&l| l.max(0.0).sqrt()).collect();
    let mut out = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..n {
            out[i][j] = (0..n)
                .map(|k| vectors[i][k] * roots[k] * vectors[j][k])
                .sum();
        }
    }
    out
}

fn matmul(a: &[Vec<f64>], b: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = a.len();
    let m = b.first().map_or(0, Vec::len);
    (0..n)
        .map(|i| {
            (0..m)
                .map(|j| (0..b.len()).map(|k| a[i][k] * b[k][j]).sum())
                .collect()
        })
        .collect()
}

/// Fréchet distance between Gaussians fitted to two sets of feature rows.
pub fn frechet_distance(real: &[Vec<f64>], generated: &[Vec<f64>]) -> f64 {
    let (mr, sr) = mean_cov(real);
    let (mg, sg) = mean_cov(generated);
    let mean_term: f64 = mr.iter().zip(&mg).map(|(a, b)| (a - b) * (a - b)).sum();
    let root_r = sqrt_psd(&sr);
    let middle = matmul(&matmul(&root_r, &sg), &root_r);
    // Symmetrize away rounding before the eigendecomposition.
    let n = middle.len();
    let middle: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| 0.5 * (middle[i][j] + middle[j][i]))
                .collect()
        })
        .collect();
    let (values, _) = symmetric_eigen(&middle);
    let cross: f64 = values.iter().map(|&l| l.max(0.0).sqrt()).sum();
    let trace = |s: &[Vec<f64>]| (0..s.len()).map(|i| s[i][i]).sum::<f64>();
    mean_term + trace(&sr) + trace(&sg) - 2.0 * cross
}

/// FID of `generated` images against `real` ones with the committed
/// classifier's features.
pub fn fid(
    classifier: &Classifier,
    real_features: &[Vec<f64>],
    generated: &Points,
    device: &Device,
) -> Result<f64> {
    let g = classifier.features_of(generated, device)?;
    Ok(frechet_distance(real_features, &g))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_root_of_a_psd_matrix() {
        let s = sqrt_psd(&[vec![9.0, 0.0], vec![0.0, 4.0]]);
        assert!(
            (s[0][0] - 3.0).abs() < 1e-12 && (s[1][1] - 2.0).abs() < 1e-12 && s[0][1].abs() < 1e-12
        );
        // A non-diagonal case: the root squared gives the matrix back.
        let a = vec![
            vec![4.0, 1.0, 0.5],
            vec![1.0, 3.0, -1.0],
            vec![0.5, -1.0, 2.0],
        ];
        let r = sqrt_psd(&a);
        let back = matmul(&r, &r);
        for i in 0..3 {
            for j in 0..3 {
                assert!(
                    (back[i][j] - a[i][j]).abs() < 1e-9,
                    "{i},{j}: {}",
                    back[i][j]
                );
            }
        }
    }

    #[test]
    fn frechet_distance_of_gaussians_matches_the_closed_form() {
        // Diagonal covariances: FID = |Δμ|² + Σ (√a − √b)².
        let mut rng = Rng::new(1, 0);
        let draw = |rng: &mut Rng, mean: [f64; 3], sd: [f64; 3], n: usize| -> Vec<Vec<f64>> {
            (0..n)
                .map(|_| (0..3).map(|i| mean[i] + sd[i] * rng.normal()).collect())
                .collect()
        };
        let a = draw(&mut rng, [0.0, 1.0, 2.0], [1.0, 2.0, 0.5], 40_000);
        let b = draw(&mut rng, [1.0, 1.0, 0.0], [2.0, 2.0, 1.0], 40_000);
        let expected = 1.0 + 4.0 + 1.0 + 0.0 + 0.25;
        let got = frechet_distance(&a, &b);
        assert!((got - expected).abs() < 0.15, "{got} vs {expected}");
        assert!(frechet_distance(&a, &a).abs() < 1e-8);
    }
}
