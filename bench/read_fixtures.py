#!/usr/bin/env python3
"""Fixtures and yardsticks for bench/read-speed.sh (numpy, pillow, pandas).

    python3 bench/read_fixtures.py write DIR     MNIST's 60,000 training images as PNGs in
                                                 DIR/png/<label>/<index>.png, and its first
                                                 42,000 as DIR/train.csv (Kaggle's layout:
                                                 a `label,pixel0..pixel783` header)
    python3 bench/read_fixtures.py png DIR/png   the yardstick a user would write: every PNG
                                                 decoded with Pillow into one uint8 array
    python3 bench/read_fixtures.py csv FILE      the same with pandas.read_csv
"""

import gzip
import pathlib
import sys

import numpy as np


def mnist(path):
    with gzip.open(path) as f:
        data = f.read()
    n, rows, cols = (int.from_bytes(data[4 * i:4 * i + 4], "big") for i in (1, 2, 3))
    return np.frombuffer(data, np.uint8, offset=16).reshape(n, rows, cols)


def write(out):
    from PIL import Image
    out = pathlib.Path(out)
    images = mnist("data/mnist/train-images-idx3-ubyte.gz")
    with gzip.open("data/mnist/train-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    for d in range(10):
        (out / "png" / str(d)).mkdir(parents=True, exist_ok=True)
    for i, (img, label) in enumerate(zip(images, labels)):
        Image.fromarray(img, mode="L").save(out / "png" / str(label) / f"{i:05}.png")
    rows = np.concatenate([labels[:42000, None], images[:42000].reshape(42000, -1)], axis=1)
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    np.savetxt(out / "train.csv", rows, fmt="%d", delimiter=",", header=header, comments="")
    print(f"wrote {len(images)} PNGs to {out}/png and 42000 rows to {out}/train.csv")


def read_png(folder):
    from PIL import Image
    paths = sorted(pathlib.Path(folder).rglob("*.png"))
    stack = np.stack([np.asarray(Image.open(p).convert("L")) for p in paths])
    print(f"{stack.shape[0]} images of {stack.shape[2]}x{stack.shape[1]}")


def read_csv(path):
    import pandas as pd
    frame = pd.read_csv(path, dtype=np.uint8)
    print(f"{len(frame)} rows of {frame.shape[1]} cells")


if __name__ == "__main__":
    {"write": write, "png": read_png, "csv": read_csv}[sys.argv[1]](sys.argv[2])
