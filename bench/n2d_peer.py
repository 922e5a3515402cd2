"""N2D (McConville et al. 2019) as a user would assemble it from PyTorch + umap-learn + scikit-learn:
the yardstick for label-free clustering of small images.

This project's yardstick, written for it (first kept beside the project's issues, copied here on
2026-12-06 so that bench/n2d-side-by-side.sh can run it; unchanged below this paragraph).

Autoencoder D-500-500-2000-10 (ReLU, MSE, Adam 1e-3, batch 256), UMAP of the codes to 10 dims
(10 neighbours, min_dist 0), a Gaussian mixture with K full-covariance components.
Fits on the training images; scores on the test images when the directory has them, else on the
training images. Labels are read only to score.

Data: a directory with IDX files named like MNIST's (train-images-idx3-ubyte[.gz],
train-labels-idx1-ubyte[.gz], optional t10k-*), images of any size H x W.

usage: python n2d_peer.py DATA_DIR [--epochs 20] [--seed 0] [--k 10] [--threads 2]
set-up: python3 -m venv v && v/bin/pip install torch umap-learn scikit-learn scipy
prints one JSON line: acc (Hungarian), nmi, the seconds of each phase.
"""
import argparse, gzip, json, os, struct, time

import numpy as np
import torch
import umap
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import normalized_mutual_info_score
from sklearn.mixture import GaussianMixture


def read_idx(path):
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            raw = (gzip.open if p.endswith(".gz") else open)(p, "rb").read()
            magic, = struct.unpack(">I", raw[:4])
            nd = magic & 0xFF
            dims = struct.unpack(">" + "I" * nd, raw[4:4 + 4 * nd])
            return np.frombuffer(raw[4 + 4 * nd:], np.uint8).reshape(dims)
    return None


ap = argparse.ArgumentParser()
ap.add_argument("data"); ap.add_argument("--epochs", type=int, default=20); ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--k", type=int, default=10); ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(a.seed); np.random.seed(a.seed)
X = read_idx(f"{a.data}/train-images-idx3-ubyte"); y = read_idx(f"{a.data}/train-labels-idx1-ubyte")
Xt = read_idx(f"{a.data}/t10k-images-idx3-ubyte"); yt = read_idx(f"{a.data}/t10k-labels-idx1-ubyte")
if Xt is None: Xt, yt = X, y
X = X.reshape(len(X), -1).astype(np.float32) / 255; Xt = Xt.reshape(len(Xt), -1).astype(np.float32) / 255
t0 = time.time()
dims = [X.shape[1], 500, 500, 2000, 10]
def mlp(ds):
    layers = []
    for i, (p, q) in enumerate(zip(ds[:-1], ds[1:])):
        layers.append(torch.nn.Linear(p, q))
        if i < len(ds) - 2: layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)
enc, dec = mlp(dims), mlp(dims[::-1])
opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), 1e-3)
Xtr = torch.from_numpy(X)
for ep in range(a.epochs):
    perm = torch.randperm(len(Xtr))
    for i in range(0, len(Xtr), 256):
        xb = Xtr[perm[i:i + 256]]
        loss = ((dec(enc(xb)) - xb) ** 2).mean()
        opt.zero_grad(); loss.backward(); opt.step()
t_ae = time.time() - t0
with torch.no_grad(): H = enc(Xtr).numpy(); Ht = enc(torch.from_numpy(Xt)).numpy()
t1 = time.time()
um = umap.UMAP(n_components=10, n_neighbors=10, min_dist=0.0, random_state=a.seed).fit(H)
E = um.embedding_; Et = E if Xt is X else um.transform(Ht)
t_umap = time.time() - t1
t2 = time.time()
p = GaussianMixture(a.k, covariance_type="full", random_state=a.seed).fit(E).predict(Et)
t_gmm = time.time() - t2
out = {"n_train": len(X), "n_scored": len(Xt), "pixels": X.shape[1], "ae_epochs": a.epochs, "seed": a.seed}
if yt is not None:
    k = max(a.k, int(yt.max()) + 1)
    C = np.zeros((k, k))
    for q, t in zip(p, yt): C[q, t] += 1
    r, c = linear_sum_assignment(-C)
    out.update(acc=round(C[r, c].sum() / len(yt), 4), nmi=round(normalized_mutual_info_score(yt, p), 4))
out.update(ae_s=round(t_ae, 1), umap_s=round(t_umap, 1), gmm_s=round(t_gmm, 1), total_s=round(time.time() - t0, 1))
print(json.dumps(out))
