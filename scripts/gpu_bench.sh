#!/usr/bin/env bash
# Runs the model benchmark on a GPU machine that has the NVIDIA driver and
# CUDA's NVRTC but no Rust: one call checks the tiny fixture's forward
# parity and times Stage A and Stage B of the ImageNet-64 U-Net in each
# precision, sampling device memory with nvidia-smi.
#
# burn-cuda compiles its kernels (NVRTC) and autotunes them on first use,
# which took longer than 110 s for one U-Net forward on a fresh H100. Both
# caches are therefore kept in files: the script unpacks
# target/gpu/cubecl-cache.tar.gz when it was carried, and packs the caches
# into $OUT/cubecl-cache.tar.gz at the end, so the next session starts warm.
#
# Build here first (no GDAL is linked into this binary):
#   CUDARC_CUDA_VERSION=13000 cargo build --release --features cuda \
#       --bin unidiff-gpu-bench --target-dir target/cuda
#   mkdir -p target/gpu && strip -o /tmp/b target/cuda/release/unidiff-gpu-bench \
#       && gzip -9 -c /tmp/b > target/gpu/unidiff-gpu-bench.gz
# carry target/gpu to the GPU machine; there, from the repository root:
#   TOTAL_LIMIT=500 bash scripts/gpu_bench.sh "$OUT" "f16 f32"
set -uo pipefail

out="${1:-${OUT:-gpu-bench-out}}"
precisions="${2:-f16 f32 bf16}"
per_run_limit="${PER_RUN_LIMIT:-240}"
total_limit="${TOTAL_LIMIT:-540}"
mkdir -p "$out"
log="$out/runs.log"
bin="/tmp/unidiff-gpu-bench"
gunzip -c "${GZ:-target/gpu/unidiff-gpu-bench.gz}" > "$bin" && chmod +x "$bin"

cache="$PWD/target/gpu-cache"
mkdir -p "$cache/autotune" "$cache/compilation"
[ -f target/gpu/cubecl-cache.tar.gz ] && tar xzf target/gpu/cubecl-cache.tar.gz -C "$cache"
cat > cubecl.toml <<TOML
[autotune]
level = "${AUTOTUNE_LEVEL:-balanced}"
cache = { file = "$cache/autotune" }

[compilation]
cache = { file = "$cache/compilation" }
TOML

export CUDA_PATH="${CUDA_PATH:-/usr/local/cuda}"
nvrtc=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
    $(find / -name 'libnvrtc.so*' -not -path '*/stubs/*' -not -path '/proc/*' 2>/dev/null \
        | head -3 | xargs -r -n1 dirname); do
    if ls "$d"/libnvrtc.so* >/dev/null 2>&1; then nvrtc="$d"; break; fi
done
export LD_LIBRARY_PATH="${nvrtc}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

{
    date -u +%Y-%m-%dT%H:%M:%SZ
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    nvidia-smi | grep -o 'CUDA Version: [0-9.]*'
    echo "nvrtc: $nvrtc"
    ldd "$bin" | grep -i gdal || echo "no GDAL linked"
} | tee "$out/summary.txt"

# Runs the benchmark once with memory sampling; NAME is the output stem.
run_one() {
    local name="$1"; shift
    local left=$((total_limit - SECONDS - 20))
    if [ "$left" -lt 30 ]; then echo "$name skipped: time is up" | tee -a "$out/summary.txt"; return; fi
    [ "$left" -gt "$per_run_limit" ] && left=$per_run_limit
    local mem="/tmp/$name.mem"
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$mem" &
    local sampler=$!
    local t0=$SECONDS
    echo "=== $name ($*)" >> "$log"
    timeout "$left" "$bin" --backend cuda --json "$out/$name.json" "$@" 2>> "$log" > /dev/null
    local rc=$?
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
    local base peak
    base=$(head -1 "$mem"); peak=$(sort -n "$mem" | tail -1)
    echo "$name rc=$rc wall=$((SECONDS - t0))s peak_mib=$((peak - base))" | tee -a "$out/summary.txt"
}

for p in $precisions; do
    run_one "parity-$p" --precision "$p" --what parity
done
for p in $precisions; do
    run_one "stage-b-$p" --precision "$p" --what stage-b --batch-b 64 --block 11 --warmup 2 --iters 5
    run_one "stage-a-$p" --precision "$p" --what stage-a --batch-a 32 --warmup 2 --iters 4
done
grep -E '^(parity|stage [AB]:)' "$log" | tee -a "$out/summary.txt"
tar czf "$out/cubecl-cache.tar.gz" -C "$cache" . && ls -la "$out/cubecl-cache.tar.gz"
rm -f "$bin" cubecl.toml
