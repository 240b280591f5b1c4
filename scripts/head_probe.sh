#!/usr/bin/env bash
# The Stage B head report (docs/stage_b_head.md) in one command: the
# evaluation protocol's split of the visible scene (seeds 0-2), then every
# head variant on the same diffusion features. Needs ../shared/data and
# numpy + tifffile (pip install numpy tifffile). Environment: T (default
# 300,0), SEEDS (0,1,2), STRIDE, BACKBONE (tiny-random or random), OUT
# (report folder).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-out/head_probe}"
mkdir -p "$OUT"
python3 scripts/protocol_split.py ../shared/data/sen1floods11_spain "$OUT/split"
cargo bench --profile test --bench head_probe -- "$OUT/split" "$OUT/report.json" | tee "$OUT/report.md"
