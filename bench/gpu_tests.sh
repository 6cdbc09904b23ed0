#!/usr/bin/env bash
# The CUDA-only tests, run on the device machine (its own torch; the other packages carried as wheels),
# their output written with the date, commit (.commit, written by the caller, else git) and GPU to
# $OUT/gpu_tests_cuda.txt, to be committed as
# bench/results/gpu_tests_cuda.txt. Usage there, on the machine that ran device_throughput.sh's two calls
# (packages in /tmp/site.gpu1, .gpu2), in a third call carrying .gpu3 (bench/device_carry.sh):
#   pip install --target /tmp/site.gpu3 .gpu3/*.whl; PYTHONPATH=/tmp/site.gpu1:/tmp/site.gpu2:/tmp/site.gpu3:$PWD \
#   ADVFX_MODELS=/tmp/tp/src ADVFX_SHARED=$PWD/.gpu3/fm bash bench/gpu_tests.sh
set -uo pipefail
OUT=${OUT:-bench/results}
FILES="tests/backends/test_cuda_graphs.py tests/backends/test_gpu_paths.py"
{
  echo "# CUDA-only tests: $FILES"
  echo "# date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit: $(cat .commit 2>/dev/null || git rev-parse --short HEAD 2>/dev/null)"
  echo "# gpu: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1);" \
       "torch $(python3 -c 'import torch; print(torch.__version__)')"
  python3 -m pytest $FILES -v -p no:cacheprovider -o addopts="" --timeout=600 2>&1
  echo "exit status: $?"
} | tee "$OUT/gpu_tests_cuda.txt"
