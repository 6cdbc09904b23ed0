"""Throughput (images/s) and peak memory of every vision backend.

    python bench/bench_backends.py                       # CPU column -> bench/results/backends_cpu.{md,json}
    python bench/bench_backends.py --device cuda --batch 512   # GPU column -> backends_cuda.{md,json}

Random weights are used where checkpoints are absent (speed does not depend on the values). Each
measurement runs in its own process (clean peak memory) for about --seconds after one warm-up batch.
Images are uint8 RGB (--size, default 256x256) so the GPU path includes its on-device preprocessing.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CASES = ["ocr", "clip-b32", "clip-l14", "dinov2-s", "dinov2-b", "sam2-tiny", "classical-seg", "classical-emb"]


def _images(n, size, seed=0):
    import numpy as np
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    return [np.roll(base, i, axis=1) for i in range(n)]


def _poster(size):
    import numpy as np
    from PIL import Image
    p = REPO.parent / "shared/fieldmedia/images_ad/ste_poster_test_1.png"
    if p.exists():
        im = Image.open(p).convert("RGB")
        return np.asarray(im)
    from PIL import ImageDraw, ImageFont
    im = Image.new("RGB", (size, size), (240, 240, 240))
    ImageDraw.Draw(im).text((10, 10), "SUMMER SALE 50%", font=ImageFont.load_default(size=28), fill=(0, 0, 0))
    return np.asarray(im)


def run_case(case: str, device: str, batch: int, seconds: float, size: int) -> dict:
    import numpy as np
    os.environ["ADVFX_DEVICE"] = device
    torch = None
    try:
        import torch  # noqa: F401
        if device == "cpu":
            torch.set_num_threads(os.cpu_count() or 1)
    except ImportError:
        pass
    from metrics.backends import classical_seg, embed, sam2_seg
    note = ""
    if case == "ocr":
        from metrics.backends.ocr import RapidOCRBackend
        be = RapidOCRBackend()
        img = _poster(size)
        fn, items, per = (lambda xs: [be(x) for x in xs]), [img], 1
        note = f"real PP-OCR models, {img.shape[1]}x{img.shape[0]} poster"
    elif case.startswith("clip") or case.startswith("dinov2"):
        if case.startswith("clip"):
            arch = {"clip-b32": "ViT-B-32", "clip-l14": "ViT-L-14"}[case]
            try:
                be = embed.CLIPEmbedder(arch, device)
            except Exception:
                be = embed.CLIPEmbedder(arch, device, random_weights=True)
        else:
            name = {"dinov2-s": "vit_small_patch14_dinov2", "dinov2-b": "vit_base_patch14_dinov2"}[case]
            try:
                be = embed.DINOEmbedder(name, device)
            except Exception:
                be = embed.DINOEmbedder(name, device, random_weights=True)
        items = _images(batch, size)
        fn, per = (lambda xs: be.embed_images(xs, batch_size=batch)), batch
        note = f"{be.model_id}, {str(be.dtype).replace('torch.', '')}, batch {batch}, {size}px uint8 in"
    elif case == "sam2-tiny":
        try:
            be = sam2_seg.SAM2Segmenter("tiny", device)
            pred = be.predictor
        except Exception:
            from sam2.build_sam import build_sam2
            from sam2.sam2_image_predictor import SAM2ImagePredictor
            pred = SAM2ImagePredictor(build_sam2(sam2_seg.SAM2_SIZES["tiny"][1], None, device=device))
        img = _images(1, 512)[0]
        box = np.array([[100, 100, 400, 400]])

        def fn(xs):
            for x in xs:
                with torch.inference_mode(), (torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda")
                                              else _Null()):
                    pred.set_image(x)
                    pred.predict(box=box, multimask_output=False)
        items, per = [img], 1
        note = "set_image + one box predict, 512x512 in (SAM2 resizes to 1024)"
    elif case == "classical-seg":
        be = classical_seg.ClassicalSegmenter()
        img = _poster(size)
        fn, items, per = (lambda xs: [be.segment_image(x) for x in xs]), [img], 1
        note = f"GrabCut+saliency, {img.shape[1]}x{img.shape[0]} poster"
    elif case == "classical-emb":
        be = embed.ClassicalEmbedder()
        items = _images(16, size)
        fn, per = be.embed_images, 16
        note = f"classical-v1, {size}px"
    else:
        raise SystemExit(f"unknown case {case}")
    cuda = device.startswith("cuda")
    fn(items)  # warm-up
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    n, t0 = 0, time.perf_counter()
    while True:
        fn(items)
        n += per
        if cuda:
            torch.cuda.synchronize()
        el = time.perf_counter() - t0
        if el >= seconds:
            break
    rec = {"case": case, "device": device, "images": n, "seconds": round(el, 3), "images_per_s": round(n / el, 2),
           "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "note": note}
    if cuda:
        rec["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
    return rec


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=None, help="embedder batch (default 4 on CPU, 512 on CUDA)")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--only", default=None, help="comma-separated cases: " + ",".join(CASES))
    ap.add_argument("--out", default=str(REPO / "bench/results"))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    batch = a.batch or (512 if a.device.startswith("cuda") else 4)
    if a.child:
        print("RESULT " + json.dumps(run_case(a.child, a.device, batch, a.seconds, a.size)))
        return 0
    cases = a.only.split(",") if a.only else CASES
    rows = []
    for c in cases:
        t = time.perf_counter()
        p = subprocess.run([sys.executable, __file__, "--child", c, "--device", a.device, "--batch", str(batch),
                            "--seconds", str(a.seconds), "--size", str(a.size)], capture_output=True, text=True)
        line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line:
            rec = json.loads(line[7:])
        else:
            rec = {"case": c, "device": a.device, "error": (p.stderr.strip().splitlines() or ["?"])[-1][:300]}
        rec["wall_s"] = round(time.perf_counter() - t, 1)
        print(json.dumps(rec), flush=True)
        rows.append(rec)
    tag = "cuda" if a.device.startswith("cuda") else "cpu"
    gpu = ""
    try:
        import torch
        if tag == "cuda":
            gpu = torch.cuda.get_device_name(0)
    except Exception:
        pass
    meta = {"device": a.device, "gpu": gpu, "cpus": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(), "batch": batch, "seconds_per_case": a.seconds, "image_size": a.size,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load_average_at_end": [round(x, 1) for x in os.getloadavg()]}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"backends_{tag}.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    lines = [f"# Backend throughput ({tag})", "",
             f"{meta['date']}; device {a.device} {gpu}; {meta['cpus']} CPUs; batch {batch}; "
             f"~{a.seconds:g} s per case after a warm-up; random weights where checkpoints are absent. "
             f"Load average at the end: {meta['load_average_at_end']} (other jobs share this machine's CPUs, "
             "so CPU numbers are lower bounds).", "",
             "| backend | images/s | peak RSS MiB | peak GPU MiB | notes |", "|---|---:|---:|---:|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['case']} | error | | | {r['error']} |")
        else:
            lines.append(f"| {r['case']} | {r['images_per_s']:.2f} | {r['peak_rss_mib']:.0f} | "
                         f"{r.get('peak_gpu_mib', '')} | {r['note']} |")
    (out / f"backends_{tag}.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
