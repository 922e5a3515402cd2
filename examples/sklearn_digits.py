#!/usr/bin/env python3
"""scikit-learn's 1,797 real 8x8 handwritten digits as image folders, for
trying the trainer on a set of your own (docs/own-images.md).

    pip install scikit-learn pillow
    python3 examples/sklearn_digits.py OUT_DIR [--kmeans]

writes
    OUT_DIR/labelled/<digit>/<index>.png   sub-folder names are the labels
    OUT_DIR/flat/<index>.png               the same images, unlabelled

Each image is written as a scan would be: dark ink on white paper (the set's
0-16 intensities mapped to 255-0), so that `--invert auto` has something to
decide. With --kmeans it also prints the yardstick: k-means on the same
pixels (K = 10, 10 initialisations, seeds 0, 1, 2), fitted and scored on all
1,797 images, ACC (Hungarian one-to-one) and NMI. Labels only score.
"""

import argparse
import pathlib

import numpy as np
from PIL import Image
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.metrics import normalized_mutual_info_score
from scipy.optimize import linear_sum_assignment


def accuracy(labels, pred):
    k = max(labels.max(), pred.max()) + 1
    counts = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(labels, pred):
        counts[p, t] += 1
    rows, cols = linear_sum_assignment(-counts)
    return counts[rows, cols].sum() / len(labels)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=pathlib.Path)
    ap.add_argument("--kmeans", action="store_true", help="print the k-means yardstick")
    args = ap.parse_args()
    digits = load_digits()
    images = digits.images  # 1797 x 8 x 8, values 0-16
    labels = digits.target
    ink = np.rint(images * 255.0 / 16.0).astype(np.uint8)
    scan = 255 - ink
    for i, (img, label) in enumerate(zip(scan, labels)):
        for path in (args.out / "labelled" / str(label) / f"{i:04}.png", args.out / "flat" / f"{i:04}.png"):
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img, mode="L").save(path)
    print(f"wrote {len(labels)} images of 8x8 to {args.out}/labelled/<digit>/ and {args.out}/flat/")
    if args.kmeans:
        x = ink.reshape(len(ink), -1).astype(np.float64) / 255.0
        print("| k-means on the pixels (K = 10, 10 inits) | seed | ACC | NMI |")
        print("|---|---:|---:|---:|")
        for seed in (0, 1, 2):
            pred = KMeans(n_clusters=10, n_init=10, random_state=seed).fit_predict(x)
            print(f"| all 1,797 images | {seed} | {accuracy(labels, pred):.4f} | "
                  f"{normalized_mutual_info_score(labels, pred):.4f} |")


if __name__ == "__main__":
    main()
