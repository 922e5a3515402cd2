#!/usr/bin/env python3
"""trainer::init's UMAP against umap-learn on the same codes: the second half of
`cargo run --release --manifest-path bench/init-vs-libraries/Cargo.toml -- --codes FILE --out DIR`, which writes
DIR/codes.f32 (the graph points' autoencoder codes, 10 float32 per point), DIR/labels.u8 and
DIR/umap-init.f32 (trainer::init::umap's embedding of them).

    python3 examples/umap_vs_umap_learn.py DIR [--seed 1]

Embeds the same codes with umap-learn at the settings init::umap uses (10 neighbours, 10
dimensions, min_dist 0, 200 epochs, spectral start), and scores both embeddings:
- trustworthiness at 10 neighbours (Venna & Kaski: are the embedding's neighbours neighbours in
  the codes?), over 2,000 random points, ranks among all points;
- kNN recall at 10: share of each point's 10 nearest codes that are among its 10 nearest in the
  embedding (all points);
- downstream: k-means (scikit-learn, K = 10, 10 inits) and a full-covariance Gaussian mixture
  (N2D's choice) on the embedding, ACC (Hungarian) and NMI against the labels (labels only score).
Prints a markdown table. Needs umap-learn, scikit-learn, scipy (the N2D environment of
bench/n2d-side-by-side.sh has them). umap-learn's time is of a second fit, after a small warm-up
fit that pays numba's compilation (also printed).
"""

import argparse
import pathlib
import time

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors

K = 10


def acc(labels, pred):
    k = max(labels.max(), pred.max()) + 1
    c = np.zeros((k, k))
    np.add.at(c, (pred, labels), 1)
    r, s = linear_sum_assignment(-c)
    return c[r, s].sum() / len(labels)


def neighbours(x, k):
    return NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)[:, 1:]


def trustworthiness(codes, emb, emb_nb, sample, k):
    n = len(codes)
    total = 0.0
    for i in sample:
        d = ((codes - codes[i]) ** 2).sum(1)
        d[i] = -1.0  # self first: rank 0
        rank = np.empty(n, np.int64)
        rank[np.argsort(d, kind="stable")] = np.arange(n)
        total += np.maximum(rank[emb_nb[i]] - k, 0).sum()
    return 1.0 - 2.0 / (len(sample) * k * (2 * n - 3 * k - 1)) * total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=pathlib.Path)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    codes = np.fromfile(a.dir / "codes.f32", np.float32).reshape(-1, 10)
    labels = np.fromfile(a.dir / "labels.u8", np.uint8).astype(np.int64)
    ours = np.fromfile(a.dir / "umap-init.f32", np.float32).reshape(len(codes), -1)

    import umap

    t = time.time()
    umap.UMAP(n_components=10, n_neighbors=10, min_dist=0.0, random_state=a.seed).fit(codes[:2000])
    warm = time.time() - t
    t, c = time.time(), time.process_time()
    theirs = umap.UMAP(n_components=10, n_neighbors=10, min_dist=0.0, random_state=a.seed).fit(codes).embedding_
    wall, cpu = time.time() - t, time.process_time() - c
    t, c = time.time(), time.process_time()
    free = umap.UMAP(n_components=10, n_neighbors=10, min_dist=0.0).fit(codes).embedding_
    wall_free, cpu_free = time.time() - t, time.process_time() - c

    code_nb = neighbours(codes, K)
    sample = np.random.default_rng(0).choice(len(codes), 2000, replace=False)
    print(f"{len(codes)} codes; umap-learn {umap.__version__ if hasattr(umap, '__version__') else ''}, "
          f"numba warm-up fit on 2,000 points: {warm:.1f} s.\n")
    print("| UMAP, 10 neighbours, 10 dimensions, min_dist 0 | wall (s) | CPU (s) | trustworthiness@10 | "
          "kNN recall@10 | k-means ACC | NMI | Gaussian mixture ACC | NMI |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = [
        ("`init::umap` (its time: `init_vs_libraries`)", ours, None, None),
        (f"umap-learn, random_state={a.seed} (single-threaded)", theirs, wall, cpu),
        ("umap-learn, no random_state (parallel)", free, wall_free, cpu_free),
    ]
    for name, emb, w, cp in rows:
        emb_nb = neighbours(emb, K)
        tw = trustworthiness(codes, emb, emb_nb, sample, K)
        rec = np.mean([len(set(p) & set(q)) for p, q in zip(code_nb, emb_nb)]) / K
        km = KMeans(10, n_init=10, random_state=0).fit_predict(emb)
        gm = GaussianMixture(10, covariance_type="full", random_state=0).fit(emb).predict(emb)
        ws = "–" if w is None else f"{w:.1f}"
        cs = "–" if cp is None else f"{cp:.1f}"
        print(f"| {name} | {ws} | {cs} | {tw:.4f} | {rec:.4f} | {acc(labels, km):.4f} | "
              f"{normalized_mutual_info_score(labels, km):.4f} | {acc(labels, gm):.4f} | "
              f"{normalized_mutual_info_score(labels, gm):.4f} |")


if __name__ == "__main__":
    main()
