#!/usr/bin/env bash
# The CPU speed table of BENCHMARKS.md in one call: the three rows of the
# U-Net's CPU work for ours (target/release/unidiff-gpu-bench --backend cpu)
# and, when PyTorch is there, for guided-diffusion's UNetModel
# (../shared/bench/cpu_anchor.py), alternating, then the ratios.
#
#   bash scripts/bench_cpu.sh                       # ours only
#   PY=/path/to/python-with-torch GD_ROOT=DIR bash scripts/bench_cpu.sh
#
# THREADS (default: every core) sets both sides' thread count; ROUNDS
# (default 2) how many times the pair alternates.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${THREADS:-$(nproc)}"
ROUNDS="${ROUNDS:-2}"
OUT="${OUT:-out/bench_cpu}"
mkdir -p "$OUT"
[ -x target/release/unidiff-gpu-bench ] || cargo build --release --bin unidiff-gpu-bench
ANCHOR=../shared/bench/cpu_anchor.py
ADM64=tests/fixtures/adm64_config.json
TINY=tests/fixtures/adm_tiny/config.json
export RAYON_NUM_THREADS="$THREADS"

# name | our flags | the anchor's flags
ROWS=(
  "tiny U-Net, Stage B batch 64 -> output_blocks[8]|--config tiny --what stage-b --batch-b 64 --block 8|$TINY --what stage-b --batch-b 64 --block 8"
  "tiny U-Net, one Stage A step, batch 32|--config tiny --what stage-a --batch-a 32 --im2col|$TINY --what stage-a --batch-a 32"
  "ImageNet-64 U-Net, Stage B batch 4 -> output_blocks[11]|--config imagenet64 --what stage-b --batch-b 4 --block 11|$ADM64 --what stage-b --batch-b 4 --block 11"
)

median_of() { # file key
  python3 - "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
key = sys.argv[2]
part = d.get(key) or d.get(key.replace("-", "_")) or {}
t = part.get("batch_time") or part.get("step") or part
print(t.get("median_ms", "nan"))
PY
}

printf '| work | ours (ms) | PyTorch (ms) | ratio |\n|---|---|---|---|\n' > "$OUT/table.md"
for row in "${ROWS[@]}"; do
  IFS='|' read -r name ours theirs <<< "$row"
  key=$(echo "$ours" | grep -o 'stage-[ab]')
  best_ours=""; best_theirs=""
  for r in $(seq 1 "$ROUNDS"); do
    # shellcheck disable=SC2086
    target/release/unidiff-gpu-bench --backend cpu $ours --warmup 1 --iters 3 \
      --json "$OUT/ours_${r}.json" > /dev/null 2> "$OUT/ours_${r}.log"
    m=$(median_of "$OUT/ours_${r}.json" "$key")
    best_ours=$(python3 -c "print(min(float('$m'), float('${best_ours:-inf}')))")
    if [ -n "${PY:-}" ] && [ -n "${GD_ROOT:-}" ]; then
      # shellcheck disable=SC2086
      GD_ROOT="$GD_ROOT" "$PY" "$ANCHOR" $theirs --threads "$THREADS" --warmup 1 --iters 3 \
        --json "$OUT/torch_${r}.json" > /dev/null
      m=$(median_of "$OUT/torch_${r}.json" "$key")
      best_theirs=$(python3 -c "print(min(float('$m'), float('${best_theirs:-inf}')))")
    fi
  done
  ratio="—"
  [ -n "$best_theirs" ] && ratio=$(python3 -c "print(f'{$best_ours / $best_theirs:.2f}x')")
  theirs_ms="not run"
  [ -n "$best_theirs" ] && theirs_ms=$(printf '%.0f' "$best_theirs")
  printf '| %s | %.0f | %s | %s |\n' "$name" "$best_ours" "$theirs_ms" "$ratio" >> "$OUT/table.md"
done
echo "threads: $THREADS, $(date -u +%F), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
cat "$OUT/table.md"
