#!/usr/bin/env bash
# Every classifier of `run` on the evaluation protocol of the visible scene
# (evaluation.md; seeds 0-2), with the recommendation each run makes from
# its held-out training labels, and `sweep`'s suggested t: the numbers of
# docs/stage_b_head.md's "Reference classifier and recommendation" section.
# Needs ../shared/data and numpy + tifffile. Environment: BIN (default the
# debug build), OUT (default out/classifier_report), T (sweep, default 0,300).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-target/debug/unidiff-studio}"
OUT="${OUT:-out/classifier_report}"
T="${T:-0,300}"
DATA=../shared/data/sen1floods11_spain
mkdir -p "$OUT"
python3 scripts/protocol_split.py "$DATA" "$OUT/split"
for seed in 0 1 2; do
  "$BIN" sweep --hsi "$DATA/Spain_7370579_S2Hand.tif" --sar "$DATA/Spain_7370579_S1Hand.tif" \
    --train-labels "$OUT/split/train_seed$seed.npy" --test-labels "$OUT/split/test_seed$seed.npy" \
    --backbone tiny-random --seed "$seed" --t "$T" --out "$OUT/sweep_seed$seed" 2>&1 | grep '^\[ok\] t\|suggest'
  "$BIN" run --hsi "$DATA/Spain_7370579_S2Hand.tif" --sar "$DATA/Spain_7370579_S1Hand.tif" \
    --train-labels "$OUT/split/train_seed$seed.npy" --test-labels "$OUT/split/test_seed$seed.npy" \
    --backbone tiny-random --seed "$seed" --out "$OUT/run_seed$seed" 2>&1 | grep '^\[ok\] [dr]'
done
python3 - "$OUT" <<'PY'
import json, sys, statistics as st
out = sys.argv[1]
rows = {}
for seed in (0, 1, 2):
    r = json.load(open(f"{out}/run_seed{seed}/run.json"))
    for key, name in (("stage_b", "mlp"), ("random_forest", "rf"), ("filter_random_forest", "filter-rf")):
        m = r[key]["metrics"]
        rows.setdefault(name, []).append((m["oa"] * 100, m["kappa"] * 100))
    rec = r["recommendation"]
    held = {s["classifier"]: s["kappa"] for s in rec["scores"]}
    print(f"seed {seed}: recommended {rec['best']} on {rec['held_out_pixels']} held-out pixels; held-out kappa {held}")
    s = json.load(open(f"{out}/sweep_seed{seed}/sweep.json"))
    print(f"seed {seed}: sweep held-out kappa {[(x['t'], round(x['held_out_kappa'], 4)) for x in s['results']]}, test kappa {[(x['t'], round(x['kappa'], 4)) for x in s['results']]}, suggested {s['suggested_t']['t']}")
for name, v in rows.items():
    oa = [a for a, _ in v]; k = [b for _, b in v]
    print(f"{name}: OA {st.mean(oa):.2f} ± {st.stdev(oa):.2f}, kappa {st.mean(k):.2f} ± {st.stdev(k):.2f}")
PY
