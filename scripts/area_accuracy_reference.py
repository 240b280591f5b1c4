"""Reference numbers for app/metrics/area_accuracy.rs: Olofsson et al. (2014),
Remote Sensing of Environment 148: 42-57, equations 2-10 (stratified
estimator, map classes as strata), written out in numpy from the paper's
equations, on fixed inputs, and each proportion's 95 % Wilson score
interval at the effective sample size p(1-p)/SE^2 (the number of points the
estimate rests on where SE is 0), areas' intervals the proportions' times the
total. Writes tests/fixtures/area_accuracy/reference.json.

    python3 scripts/area_accuracy_reference.py
"""
import json
import pathlib

import numpy as np


Z = 1.96


def wilson(p, se, points):
    """[lo, hi] of the Wilson score interval at the effective sample size;
    None where the estimate rests on no point (not defined)."""
    if points == 0 or not np.isfinite(se) or not np.isfinite(p):
        return None
    p = min(max(p, 0.0), 1.0)
    n = p * (1 - p) / se**2 if se > 0 and 0 < p < 1 else float(points)
    d = 1 + Z**2 / n
    centre = (p + Z**2 / (2 * n)) / d
    half = Z / d * np.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return [float(max(centre - half, 0.0)), float(min(centre + half, 1.0))]


def estimate(strata, sample):
    """strata: {map class: mapped area}; sample: [(map, reference)]."""
    classes = sorted(set(strata) | {r for _, r in sample})
    k = len(classes)
    ix = {c: i for i, c in enumerate(classes)}
    area = np.array([strata.get(c, 0.0) for c in classes], dtype=np.float64)
    total = area.sum()
    w = area / total
    n = np.zeros((k, k))
    for m, r in sample:
        n[ix[m], ix[r]] += 1
    n_i = n.sum(axis=1)
    rate = np.divide(n, n_i[:, None], out=np.zeros_like(n), where=n_i[:, None] > 0)
    p = w[:, None] * rate  # eq. 4
    overall = np.trace(p)  # eq. 1
    users = np.diag(rate)  # eq. 2
    p_j = p.sum(axis=0)  # eq. 9
    producers = np.diag(p) / p_j  # eq. 3
    v_overall = np.sum(w**2 * users * (1 - users) / (n_i - 1))  # eq. 5
    v_users = users * (1 - users) / (n_i - 1)  # eq. 6
    se_p_j = np.sqrt(np.sum(w[:, None] ** 2 * rate * (1 - rate) / (n_i[:, None] - 1), axis=0))  # eq. 10
    n_hat_j = np.sum(area[:, None] * rate, axis=0)
    v_producers = np.zeros(k)
    for j in range(k):  # eq. 7
        own = area[j] ** 2 * (1 - producers[j]) ** 2 * users[j] * (1 - users[j]) / (n_i[j] - 1)
        others = sum(
            area[i] ** 2 * rate[i, j] * (1 - rate[i, j]) / (n_i[i] - 1) for i in range(k) if i != j
        )
        v_producers[j] = (own + producers[j] ** 2 * others) / n_hat_j[j] ** 2
    used = int(n.sum())
    overall_ci = wilson(overall, np.sqrt(v_overall), used)
    users_ci = [wilson(u, np.sqrt(v), m) for u, v, m in zip(users, v_users, n_i)]
    producers_ci = [wilson(a, np.sqrt(v), used) for a, v in zip(producers, v_producers)]
    p_j_ci = [wilson(a, s, used) for a, s in zip(p_j, se_p_j)]
    return {
        "classes": classes,
        "total_area": total,
        "error_matrix": p.tolist(),
        "overall": [overall, float(np.sqrt(v_overall)), overall_ci],
        "users": [[float(u), float(np.sqrt(v)), ci] for u, v, ci in zip(users, v_users, users_ci)],
        "producers": [[float(a), float(np.sqrt(v)), ci] for a, v, ci in zip(producers, v_producers, producers_ci)],
        "area_proportion": [[float(a), float(s), ci] for a, s, ci in zip(p_j, se_p_j, p_j_ci)],
        "area": [
            [float(a * total), float(s * total), None if ci is None else [ci[0] * total, ci[1] * total]]
            for a, s, ci in zip(p_j, se_p_j, p_j_ci)
        ],
    }


def main():
    cases = []
    # Four strata of very different size, counts in the style of a change map.
    strata = {1: 200000.0, 2: 150000.0, 3: 3200000.0, 4: 6450000.0}
    counts = [[66, 0, 1, 2], [0, 55, 0, 1], [5, 8, 153, 9], [4, 12, 11, 313]]
    sample = [(i + 1, j + 1) for i, row in enumerate(counts) for j, c in enumerate(row) for _ in range(c)]
    cases.append({"name": "four strata", "strata": strata, "sample": sample})
    # Five map classes in hectares, 40-80 points each, and a reference class
    # (6) the map does not have; seeded.
    rng = np.random.default_rng(7)
    strata = {c: float(a) for c, a in zip(range(1, 6), rng.uniform(50.0, 5000.0, 5).round(3))}
    sample = []
    for m in range(1, 6):
        for _ in range(int(rng.integers(40, 81))):
            r = m if rng.random() < 0.8 else int(rng.integers(1, 7))
            sample.append((m, r))
    cases.append({"name": "five strata, a reference-only class", "strata": strata, "sample": sample})
    # A tiny sample where the normal interval leaves [0, 1]: two strata of
    # three points, one of them all correct (SE 0).
    strata = {1: 900.0, 2: 100.0}
    sample = [(1, 1), (1, 1), (1, 1), (2, 2), (2, 1), (2, 1)]
    cases.append({"name": "six points", "strata": strata, "sample": sample})
    out = []
    for case in cases:
        out.append(
            {
                "name": case["name"],
                "strata": [[c, a] for c, a in case["strata"].items()],
                "sample": case["sample"],
                "expected": estimate(case["strata"], case["sample"]),
            }
        )
    path = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/area_accuracy/reference.json"
    path.write_text(json.dumps({"generator": "scripts/area_accuracy_reference.py", "numpy": np.__version__, "cases": out}, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
