#!/usr/bin/env python3
"""The sparse-label protocol of the evaluation spec on the Sen1Floods11 scene:
writes train / test label arrays (uint8 H x W, 0 = no label) for seeds 0, 1, 2,
so that `unidiff-studio run --train-labels ... --test-labels ...` scores every
classifier on the same pixels as the scikit-learn peers.

    python3 scripts/protocol_split.py ../shared/data/sen1floods11_spain OUT_DIR

Needs numpy and tifffile (pip install numpy tifffile).
"""
import sys
from pathlib import Path

import numpy as np
import tifffile


def main() -> None:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    hand = tifffile.imread(src / "Spain_7370579_LabelHand.tif").astype(np.int64)
    s2 = tifffile.imread(src / "Spain_7370579_S2Hand.tif").astype(np.float64)
    s1 = tifffile.imread(src / "Spain_7370579_S1Hand.tif").astype(np.float64)
    # tifffile gives bands last for pixel-interleaved files, first otherwise.
    if s2.shape[0] == 13:
        s2 = np.moveaxis(s2, 0, -1)
    if s1.shape[0] == 2:
        s1 = np.moveaxis(s1, 0, -1)
    valid = np.isfinite(s2).all(-1) & np.isfinite(s1).all(-1)
    labels = np.where(hand < 0, 0, hand + 1)
    labels[~valid] = 0
    flat = labels.ravel()
    for seed in (0, 1, 2):
        train = np.zeros_like(flat, dtype=np.uint8)
        for k in np.unique(flat[flat > 0]):
            idx = np.flatnonzero(flat == k)
            n_k = idx.size
            n_train = min(200, max(10, (n_k + 99) // 100), n_k // 2)
            rng = np.random.default_rng([seed, int(k)])
            train[idx[rng.permutation(n_k)[:n_train]]] = k
        test = np.where(train > 0, 0, flat).astype(np.uint8)
        np.save(out / f"train_seed{seed}.npy", train.reshape(labels.shape))
        np.save(out / f"test_seed{seed}.npy", test.reshape(labels.shape))
        print(f"seed {seed}: {int((train > 0).sum())} train, {int((test > 0).sum())} test pixels")


if __name__ == "__main__":
    main()
