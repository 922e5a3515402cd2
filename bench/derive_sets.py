#!/usr/bin/env python3
"""The image sets of bench/n2d-side-by-side.sh, each written as a directory of MNIST-named IDX files
(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,
t10k-labels-idx1-ubyte.gz), which both the trainer (`trainer fit --data DIR`) and bench/n2d_peer.py read.

    python3 bench/derive_sets.py OUT_DIR [--mnist data/mnist] [--limit 20000]

writes OUT_DIR/<set>/ for
    digits8x8      scikit-learn's 1,797 real 8x8 digits (values 0-16 scaled to 0-255, ink bright as
                   in MNIST); no held-out part: the t10k files are the same 1,797 images, so both
                   methods fit on all of them and are scored on all of them
    inverted       MNIST, 255 - v (dark ink on white paper, as a scan)
    rescaled16     MNIST resampled to 16x16 (bilinear, scipy.ndimage.zoom, order 1)
    digits0to4     MNIST's digits 0-4 only (K = 5)
    thickened      MNIST with every stroke dilated by a 3x3 grey-level maximum filter
The derived MNIST sets keep the first --limit training images (after the 0-4 selection for
digits0to4) and all their test images. Labels are written only to score. Needs numpy, scipy and
scikit-learn (the N2D virtual environment has them).
"""

import argparse
import gzip
import pathlib
import struct

import numpy as np
from scipy import ndimage


def read_idx(path):
    raw = gzip.open(path, "rb").read()
    (magic,) = struct.unpack(">I", raw[:4])
    nd = magic & 0xFF
    dims = struct.unpack(">" + "I" * nd, raw[4 : 4 + 4 * nd])
    return np.frombuffer(raw[4 + 4 * nd :], np.uint8).reshape(dims)


def write_idx(path, array):
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb", compresslevel=6) as f:
        f.write(header + array.tobytes())


def write_set(out, name, train, train_labels, test, test_labels):
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    write_idx(d / "train-images-idx3-ubyte.gz", train)
    write_idx(d / "train-labels-idx1-ubyte.gz", train_labels)
    write_idx(d / "t10k-images-idx3-ubyte.gz", test)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", test_labels)
    h, w = train.shape[1:]
    print(f"{name}: {len(train)} training and {len(test)} test images of {w}x{h}, {len(np.unique(train_labels))} classes")


def rescale(images, size):
    zoom = (1, size / images.shape[1], size / images.shape[2])
    return np.clip(np.rint(ndimage.zoom(images.astype(np.float32), zoom, order=1)), 0, 255).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=pathlib.Path)
    ap.add_argument("--mnist", type=pathlib.Path, default=pathlib.Path("data/mnist"))
    ap.add_argument("--limit", type=int, default=20000, help="training images kept in each derived MNIST set")
    a = ap.parse_args()

    from sklearn.datasets import load_digits

    digits = load_digits()
    ink = np.rint(digits.images * 255.0 / 16.0).astype(np.uint8)
    write_set(a.out, "digits8x8", ink, digits.target, ink, digits.target)

    x = read_idx(a.mnist / "train-images-idx3-ubyte.gz")
    y = read_idx(a.mnist / "train-labels-idx1-ubyte.gz")
    xt = read_idx(a.mnist / "t10k-images-idx3-ubyte.gz")
    yt = read_idx(a.mnist / "t10k-labels-idx1-ubyte.gz")
    n = a.limit
    write_set(a.out, "inverted", 255 - x[:n], y[:n], 255 - xt, yt)
    write_set(a.out, "rescaled16", rescale(x[:n], 16), y[:n], rescale(xt, 16), yt)
    keep, keep_t = y < 5, yt < 5
    write_set(a.out, "digits0to4", x[keep][:n], y[keep][:n], xt[keep_t], yt[keep_t])
    thick = lambda im: ndimage.grey_dilation(im, size=(1, 3, 3))
    write_set(a.out, "thickened", thick(x[:n]), y[:n], thick(xt), yt)


if __name__ == "__main__":
    main()
