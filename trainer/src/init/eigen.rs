//! Leading eigenvectors of a large sparse symmetric matrix whose spectrum lies
//! in `[-1, 1]` (a normalized graph affinity `D^-1/2 W D^-1/2`), by
//! Chebyshev-filtered block subspace iteration with Rayleigh–Ritz
//! (Zhou & Saad 2007), plus the dense tools it needs: cyclic Jacobi for small
//! symmetric eigenproblems and SVQB orthonormalization (Stathopoulos & Wu 2002).

use crate::linalg::jacobi;
use crate::rng::Rng;

/// A symmetric sparse matrix in compressed-row form.
#[derive(Debug, Clone)]
pub struct SparseSym {
    /// Number of rows (= columns).
    pub n: usize,
    /// Row `i`'s entries are `col[row_ptr[i]..row_ptr[i + 1]]`.
    pub row_ptr: Vec<usize>,
    pub col: Vec<u32>,
    pub val: Vec<f64>,
}

impl SparseSym {
    /// `y = A x` for a block of `p` vectors stored row-major (`n × p`).
    pub fn mul_block(&self, x: &[f64], y: &mut [f64], p: usize) {
        for i in 0..self.n {
            let yi = &mut y[i * p..(i + 1) * p];
            yi.fill(0.0);
            for e in self.row_ptr[i]..self.row_ptr[i + 1] {
                let j = self.col[e] as usize;
                let w = self.val[e];
                for (a, &b) in yi.iter_mut().zip(&x[j * p..(j + 1) * p]) {
                    *a += w * b;
                }
            }
        }
    }
}

/// `X^T Y` for row-major `n × p` blocks.
fn gram(x: &[f64], y: &[f64], p: usize) -> Vec<f64> {
    let mut g = vec![0.0; p * p];
    for (xi, yi) in x.chunks_exact(p).zip(y.chunks_exact(p)) {
        for a in 0..p {
            let xa = xi[a];
            for b in 0..p {
                g[a * p + b] += xa * yi[b];
            }
        }
    }
    g
}

/// `X Q` for a row-major `n × p` block and a `p × q` matrix.
fn times(x: &[f64], q: &[f64], p: usize, cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; x.len() / p * cols];
    for (xi, oi) in x.chunks_exact(p).zip(out.chunks_exact_mut(cols)) {
        for a in 0..p {
            let xa = xi[a];
            for (o, &qv) in oi.iter_mut().zip(&q[a * cols..(a + 1) * cols]) {
                *o += xa * qv;
            }
        }
    }
    out
}

/// Orthonormalizes the columns of `x` (SVQB: eigendecompose the Gram matrix,
/// scale by its inverse square root). Columns that have collapsed onto the
/// others are replaced with fresh random directions.
fn orthonormalize(x: &mut Vec<f64>, p: usize, rng: &mut Rng) {
    for _pass in 0..3 {
        let g = gram(x, x, p);
        let scale: Vec<f64> = (0..p)
            .map(|i| 1.0 / g[i * p + i].sqrt().max(1e-300))
            .collect();
        let mut gs = g.clone();
        for a in 0..p {
            for b in 0..p {
                gs[a * p + b] *= scale[a] * scale[b];
            }
        }
        let (vals, vecs) = jacobi(&gs, p);
        let max = vals[0].max(f64::MIN_POSITIVE);
        let mut q = vec![0.0; p * p];
        let mut degenerate = false;
        for a in 0..p {
            for b in 0..p {
                let lam = vals[b].max(1e-14 * max);
                q[a * p + b] = scale[a] * vecs[a * p + b] / lam.sqrt();
            }
            degenerate |= vals[a] < 1e-10 * max;
        }
        *x = times(x, &q, p, p);
        if degenerate {
            // Refill the weakest directions (the trailing columns) at random.
            for (b, &lam) in vals.iter().enumerate() {
                if lam < 1e-10 * max {
                    for row in x.chunks_exact_mut(p) {
                        row[b] = rng.normal();
                    }
                }
            }
            continue;
        }
        let off = gram(x, x, p)
            .iter()
            .enumerate()
            .map(|(i, v)| (v - f64::from(u8::from(i / p == i % p))).abs())
            .fold(0.0, f64::max);
        if off < 1e-12 {
            return;
        }
    }
}

/// Settings for [`top_eigenvectors`].
#[derive(Debug, Clone, Copy)]
pub struct EigenConfig {
    /// Extra vectors carried beyond the `k` wanted (faster, safer convergence).
    pub guard: usize,
    /// Degree of the Chebyshev filter applied between Rayleigh–Ritz steps.
    pub degree: usize,
    /// Stop when every wanted residual `‖A x − θ x‖` is below this.
    pub tol: f64,
    /// Upper bound on filter + Rayleigh–Ritz rounds.
    pub max_rounds: usize,
}

impl Default for EigenConfig {
    fn default() -> Self {
        Self {
            guard: 8,
            degree: 12,
            tol: 1e-6,
            max_rounds: 300,
        }
    }
}

/// The result of [`top_eigenvectors`].
#[derive(Debug, Clone)]
pub struct Eigen {
    /// The `k` largest eigenvalues, descending.
    pub values: Vec<f64>,
    /// Their eigenvectors, row-major `n × k` (orthonormal columns).
    pub vectors: Vec<f64>,
    /// Largest residual norm among the `k` pairs at the end.
    pub residual: f64,
    /// Rounds used.
    pub rounds: usize,
}

/// The `k` algebraically largest eigenpairs of `a`, whose spectrum must lie
/// in `[-1, 1]`.
pub fn top_eigenvectors(a: &SparseSym, k: usize, cfg: &EigenConfig, rng: &mut Rng) -> Eigen {
    let n = a.n;
    let p = (k + cfg.guard).min(n);
    assert!(
        k > 0 && k <= p,
        "top_eigenvectors: {k} eigenvectors of a {n} × {n} matrix"
    );
    let mut x: Vec<f64> = (0..n * p).map(|_| rng.normal()).collect();
    orthonormalize(&mut x, p, rng);
    let mut ax = vec![0.0; n * p];
    let mut values = vec![0.0; p];
    let mut residual = f64::INFINITY;
    let mut rounds = 0;
    while rounds < cfg.max_rounds {
        rounds += 1;
        // Rayleigh–Ritz on the current block.
        a.mul_block(&x, &mut ax, p);
        let h = gram(&x, &ax, p);
        let hs: Vec<f64> = (0..p * p)
            .map(|i| 0.5 * (h[i] + h[(i % p) * p + i / p]))
            .collect();
        let (theta, q) = jacobi(&hs, p);
        x = times(&x, &q, p, p);
        ax = times(&ax, &q, p, p);
        values.clone_from(&theta);
        residual = (0..k)
            .map(|c| {
                x.chunks_exact(p)
                    .zip(ax.chunks_exact(p))
                    .map(|(xi, ai)| (ai[c] - theta[c] * xi[c]).powi(2))
                    .sum::<f64>()
                    .sqrt()
            })
            .fold(0.0, f64::max);
        if residual < cfg.tol {
            break;
        }
        // Chebyshev filter damping [-1, cut], amplifying what lies above cut.
        let cut = theta[p - 1].min(theta[k - 1] - 1e-9);
        let (lo, hi) = (-1.0, cut);
        let e = (hi - lo) / 2.0;
        let c = (hi + lo) / 2.0;
        let mut prev = x.clone();
        let mut cur: Vec<f64> = ax
            .iter()
            .zip(&x)
            .map(|(axi, xi)| (axi - c * xi) / e)
            .collect();
        let mut tmp = vec![0.0; n * p];
        for _ in 1..cfg.degree.max(1) {
            a.mul_block(&cur, &mut tmp, p);
            for ((t, cu), pr) in tmp.iter_mut().zip(&cur).zip(&prev) {
                *t = 2.0 * (*t - c * cu) / e - pr;
            }
            std::mem::swap(&mut prev, &mut cur);
            std::mem::swap(&mut cur, &mut tmp);
        }
        x = cur;
        orthonormalize(&mut x, p, rng);
    }
    let vectors = x
        .chunks_exact(p)
        .flat_map(|row| row[..k].iter().copied())
        .collect();
    values.truncate(k);
    Eigen {
        values,
        vectors,
        residual,
        rounds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_diagonalizes_a_symmetric_matrix() {
        let mut r = Rng::from_state(4);
        let p = 7;
        let mut m = vec![0.0; p * p];
        for i in 0..p {
            for j in 0..=i {
                let v = r.normal();
                m[i * p + j] = v;
                m[j * p + i] = v;
            }
        }
        let (vals, vecs) = jacobi(&m, p);
        assert!(vals.windows(2).all(|w| w[0] >= w[1]));
        // M V = V diag(vals), and V is orthogonal.
        for i in 0..p {
            for c in 0..p {
                let mv: f64 = (0..p).map(|k| m[i * p + k] * vecs[k * p + c]).sum();
                assert!((mv - vals[c] * vecs[i * p + c]).abs() < 1e-10);
            }
        }
        let g = gram(&vecs, &vecs, p);
        for i in 0..p {
            for j in 0..p {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((g[i * p + j] - want).abs() < 1e-12);
            }
        }
        // Trace is preserved.
        let trace: f64 = (0..p).map(|i| m[i * p + i]).sum();
        assert!((vals.iter().sum::<f64>() - trace).abs() < 1e-10);
    }

    /// Normalized adjacency of the cycle graph C_n: every degree is 2, so
    /// A = W / 2, with eigenvalues cos(2πj/n).
    fn cycle(n: usize) -> SparseSym {
        let mut row_ptr = vec![0];
        let mut col = Vec::new();
        let mut val = Vec::new();
        for i in 0..n {
            col.push(((i + n - 1) % n) as u32);
            col.push(((i + 1) % n) as u32);
            val.extend([0.5, 0.5]);
            row_ptr.push(col.len());
        }
        SparseSym {
            n,
            row_ptr,
            col,
            val,
        }
    }

    #[test]
    fn cycle_graph_spectrum() {
        let n = 60;
        let a = cycle(n);
        let cfg = EigenConfig {
            tol: 1e-10,
            ..EigenConfig::default()
        };
        let eig = top_eigenvectors(&a, 5, &cfg, &mut Rng::from_state(1));
        let t = std::f64::consts::TAU / n as f64;
        let want = [1.0, t.cos(), t.cos(), (2.0 * t).cos(), (2.0 * t).cos()];
        for (got, want) in eig.values.iter().zip(want) {
            assert!((got - want).abs() < 1e-9, "{:?}", eig.values);
        }
        assert!(eig.residual < 1e-10);
        // The top eigenvector is constant (±1/√n).
        let first: Vec<f64> = eig.vectors.chunks_exact(5).map(|r| r[0]).collect();
        let s = 1.0 / (n as f64).sqrt();
        assert!(
            first.iter().all(|v| (v.abs() - s).abs() < 1e-6),
            "{first:?}"
        );
    }

    #[test]
    fn disconnected_components_give_indicator_eigenvectors() {
        // Two cycles of 30 and 50 nodes: eigenvalue 1 twice, its eigenspace
        // spanned by the components' (scaled) indicators.
        let (c1, c2) = (cycle(30), cycle(50));
        let mut row_ptr = c1.row_ptr.clone();
        let mut col = c1.col.clone();
        let mut val = c1.val.clone();
        for i in 0..50 {
            for e in c2.row_ptr[i]..c2.row_ptr[i + 1] {
                col.push(c2.col[e] + 30);
                val.push(c2.val[e]);
            }
            row_ptr.push(col.len());
        }
        let a = SparseSym {
            n: 80,
            row_ptr,
            col,
            val,
        };
        let eig = top_eigenvectors(&a, 2, &EigenConfig::default(), &mut Rng::from_state(2));
        assert!((eig.values[0] - 1.0).abs() < 1e-9 && (eig.values[1] - 1.0).abs() < 1e-9);
        // Within a component each eigenvector is constant.
        for c in 0..2 {
            let v: Vec<f64> = eig.vectors.chunks_exact(2).map(|r| r[c]).collect();
            assert!(v[..30].iter().all(|x| (x - v[0]).abs() < 1e-6));
            assert!(v[30..].iter().all(|x| (x - v[30]).abs() < 1e-6));
        }
    }
}
