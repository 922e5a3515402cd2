#!/usr/bin/env python3
"""Scores of one `trainer fit` run for bench/n2d-side-by-side.sh, as one JSON line:

    python3 bench/side_by_side_scores.py RUN_DIR DATA_DIR

- partition_acc, partition_nmi: the label-free start (RUN_DIR/partition.json) against the training
  labels (DATA_DIR/train-labels-idx1-ubyte.gz; the run trained on all of DATA_DIR's training images)
- start_acc, start_nmi: the test set after the last pretraining epoch (metrics.jsonl: the gate trained
  on the partition, before the mixture stage)
- acc, nmi: the test set at the end, the engine on model.bin (report.md)
Labels only score. Needs numpy and scipy.
"""

import gzip
import json
import pathlib
import re
import struct
import sys

import numpy as np
from scipy.optimize import linear_sum_assignment


def read_labels(path):
    raw = gzip.open(path, "rb").read()
    (n,) = struct.unpack(">I", raw[4:8])
    return np.frombuffer(raw[8 : 8 + n], np.uint8).astype(np.int64)


def acc_nmi(truth, pred):
    k = int(max(truth.max(), pred.max())) + 1
    c = np.zeros((k, k))
    np.add.at(c, (pred, truth), 1)
    r, s = linear_sum_assignment(-c)
    acc = c[r, s].sum() / len(truth)
    # NMI with the arithmetic mean of the entropies (scikit-learn's default).
    p = c / c.sum()
    pi, pj = p.sum(1), p.sum(0)
    nz = p > 0
    mi = (p[nz] * np.log(p[nz] / np.outer(pi, pj)[nz])).sum()
    h = lambda q: -(q[q > 0] * np.log(q[q > 0])).sum()
    return round(float(acc), 4), round(float(mi / ((h(pi) + h(pj)) / 2)), 4)


def main():
    run, data = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    out = {}
    part = json.loads((run / "partition.json").read_text())
    truth = read_labels(data / "train-labels-idx1-ubyte.gz")
    assignment = np.array(part["assignment"], dtype=np.int64)
    if len(assignment) == len(truth):
        out["partition_acc"], out["partition_nmi"] = acc_nmi(truth, assignment)
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if l.strip()]
    pre = [l for l in lines if l.get("phase") == "pretrain" and "test_acc" in l]
    if pre:
        out["start_acc"], out["start_nmi"] = round(pre[-1]["test_acc"], 4), round(pre[-1]["test_nmi"], 4)
    m = re.search(r"test set, engine on model\.bin.*?ACC ([0-9.]+)\s+NMI ([0-9.]+)", (run / "report.md").read_text())
    if m:
        out["acc"], out["nmi"] = float(m.group(1)), float(m.group(2))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
