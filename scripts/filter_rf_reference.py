#!/usr/bin/env python3
"""The classical peer of the evaluation spec, computed with scipy and
scikit-learn: a random forest (200 trees) on the standardised raw values plus
ilastik's multi-scale filter features of their first 10 principal components.
Writes the fixtures the Rust `filter-rf` classifier is tested against:

    python3 scripts/filter_rf_reference.py ../shared/data/sen1floods11_spain tests/fixtures/filter_rf

- `filter_bank.json`: a small deterministic two-channel image and scipy.ndimage's
  output for every filter of the bank (float64, reflect borders), so that our
  separable filters are checked to 1e-9 without any shared data;
- `protocol.json`: the training pixels of the protocol's seeds 0, 1, 2 (flat
  row-major indices with their class) and scikit-learn's scores of the raw-pixel
  forest and of the filter forest per seed, so that a test on the shared scene
  needs no numpy.

Needs numpy, scipy, scikit-learn, tifffile.
"""
import json
import sys
from pathlib import Path

import numpy as np
import scipy
import sklearn
import tifffile
from scipy import ndimage
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import cohen_kappa_score

GAUSSIAN = (0.7, 1.6, 3.5, 5.0)
LOG = (1.6, 3.5)
GRADIENT = (1.6, 3.5)
DOG = ((1.6, 0.7), (3.5, 1.6))


def filter_bank(image: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Every filter of the bank on one 2-D float64 image, in the Rust order."""
    out = [(f"gaussian {s}", ndimage.gaussian_filter(image, s, mode="reflect")) for s in GAUSSIAN]
    out += [(f"log {s}", ndimage.gaussian_laplace(image, s, mode="reflect")) for s in LOG]
    out += [
        (f"gradient {s}", ndimage.gaussian_gradient_magnitude(image, s, mode="reflect"))
        for s in GRADIENT
    ]
    out += [
        (
            f"dog {a}-{b}",
            ndimage.gaussian_filter(image, a, mode="reflect")
            - ndimage.gaussian_filter(image, b, mode="reflect"),
        )
        for a, b in DOG
    ]
    return out


def load_scene(src: Path):
    hand = tifffile.imread(src / "Spain_7370579_LabelHand.tif").astype(np.int64)
    s2 = tifffile.imread(src / "Spain_7370579_S2Hand.tif").astype(np.float64)
    s1 = tifffile.imread(src / "Spain_7370579_S1Hand.tif").astype(np.float64)
    if s2.shape[0] == 13:
        s2 = np.moveaxis(s2, 0, -1)
    if s1.shape[0] == 2:
        s1 = np.moveaxis(s1, 0, -1)
    raw = np.concatenate([s2 * 1e-4, s1], axis=-1)  # S2 reflectance, S1 in dB
    valid = np.isfinite(raw).all(-1)
    labels = np.where(hand < 0, 0, hand + 1)
    labels[~valid] = 0
    return raw, valid, labels


def protocol_train(labels: np.ndarray, seed: int) -> np.ndarray:
    flat = labels.ravel()
    train = np.zeros_like(flat, dtype=np.uint8)
    for k in np.unique(flat[flat > 0]):
        idx = np.flatnonzero(flat == k)
        n_k = idx.size
        n_train = min(200, max(10, (n_k + 99) // 100), n_k // 2)
        rng = np.random.default_rng([seed, int(k)])
        train[idx[rng.permutation(n_k)[:n_train]]] = k
    return train


def filter_features(raw: np.ndarray, valid: np.ndarray, train_flat: np.ndarray) -> np.ndarray:
    h, w, d = raw.shape
    x = raw.reshape(-1, d)
    fill = np.where(valid.ravel()[:, None], x, np.nanmean(x[valid.ravel()], axis=0))
    t = fill[train_flat > 0]
    std = (fill - t.mean(0)) / np.where(t.std(0) > 0, t.std(0), 1.0)
    n_comp = min(10, d)
    comps = PCA(n_components=n_comp).fit(std[valid.ravel()]).transform(std)
    columns = [std]
    for c in range(n_comp):
        img = comps[:, c].reshape(h, w)
        columns += [f.reshape(-1, 1) for _, f in filter_bank(img)]
    return np.concatenate(columns, axis=1)


def scores(truth: np.ndarray, pred: np.ndarray) -> dict:
    return {
        "oa": float((truth == pred).mean() * 100),
        "kappa": float(cohen_kappa_score(truth, pred) * 100),
    }


def main() -> None:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    versions = {"numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__}

    # Filter bank on a small image: smooth structure plus noise, not square,
    # smaller than the widest kernel (sigma 5 reaches 20 pixels) in one axis.
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:17, 0:29].astype(np.float64)
    image = np.sin(xx / 4.0) + np.cos(yy / 3.0) * 0.5 + rng.normal(0, 0.3, (17, 29))
    bank = {
        "generator": "scripts/filter_rf_reference.py",
        "versions": versions,
        "height": 17,
        "width": 29,
        "image": image.ravel().tolist(),
        "filters": [{"name": n, "values": f.ravel().tolist()} for n, f in filter_bank(image)],
    }
    (out / "filter_bank.json").write_text(json.dumps(bank))

    raw, valid, labels = load_scene(src)
    flat = labels.ravel()
    x_raw = raw.reshape(-1, raw.shape[-1])
    seeds = []
    for seed in (0, 1, 2):
        train = protocol_train(labels, seed)
        test_mask = (flat > 0) & (train == 0)
        rows = {}
        # The raw-pixel forest (standardised on the training pixels, as the spec's table).
        t = x_raw[train > 0]
        x_std = (np.where(valid.ravel()[:, None], x_raw, 0) - t.mean(0)) / t.std(0)
        rf = RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=-1)
        rf.fit(x_std[train > 0], train[train > 0])
        rows["rf"] = scores(flat[test_mask], rf.predict(x_std[test_mask]))
        feats = filter_features(raw, valid, train)
        frf = RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=-1)
        frf.fit(feats[train > 0], train[train > 0])
        rows["filter_rf"] = scores(flat[test_mask], frf.predict(feats[test_mask]))
        idx = np.flatnonzero(train)
        seeds.append(
            {
                "seed": seed,
                "train_index": idx.tolist(),
                "train_class": train[idx].tolist(),
                "test_pixels": int(test_mask.sum()),
                "sklearn": rows,
            }
        )
        print(f"seed {seed}: rf {rows['rf']}, filter-rf {rows['filter_rf']}, features {feats.shape[1]}")
    protocol = {
        "generator": "scripts/filter_rf_reference.py",
        "versions": versions,
        "data": "Sen1Floods11 Spain_7370579 (Bonafilia et al. 2020, CC BY 4.0)",
        "height": int(labels.shape[0]),
        "width": int(labels.shape[1]),
        "seeds": seeds,
    }
    (out / "protocol.json").write_text(json.dumps(protocol))


if __name__ == "__main__":
    main()
