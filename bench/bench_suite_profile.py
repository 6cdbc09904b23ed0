"""Where one video's scoring time goes: the whole suite without the MLLM (`score_video`, as the batch
scorer runs it) on the metrics benchmark's video, with a timer around each stage.

    python bench/bench_suite_profile.py [--device cpu|cuda] [--repeats 3] [--out bench/results/suite_profile_<device>]

Each timer covers one call of a real function (decode, SAM2's image and video steps, every PP-OCR
network call, the embedders) and waits for the GPU before it stops, so a stage is charged its own
kernels. Times are inclusive (SAM2 propagate contains the video state it builds); ms per video is the
median over the repeats of that stage's total in one video, after a warm-up video (model loading).
Writes <out>.json and <out>.md.
"""
from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TOTALS: dict[str, float] = collections.defaultdict(float)
CALLS: dict[str, int] = collections.defaultdict(int)


def _sync() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def timer(name, fn):
    """`fn` with its wall time (GPU work included) added to TOTALS[name(args)]."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        key = name(*args, **kwargs) if callable(name) else name
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _sync()
            TOTALS[key] += time.perf_counter() - t0
            CALLS[key] += 1
    return wrapped


def instrument() -> None:
    from media import decode
    from metrics import registry
    from metrics.backends import aesthetic, embed, ocr, sam2_seg

    decode.decode_video = timer("decode (one pass, MotionX flow streamed in)", decode.decode_video)
    registry.MetricSpec.run = timer(lambda spec, *a, **k: f"metric: {spec.name}", registry.MetricSpec.run)
    seg = sam2_seg.SAM2Segmenter
    seg.segment_image = timer("SAM2 image (box prompt)", seg.segment_image)
    seg.propagate = timer("SAM2 video: propagate (all of it)", seg.propagate)
    sam2_seg.sam2_video_state = timer("SAM2 video: state + batched image encoder", sam2_seg.sam2_video_state)
    ocr.RapidOCRBackend.__call__ = timer("OCR: pipeline calls (all of them)", ocr.RapidOCRBackend.__call__)
    ocr.TorchSession.__call__ = timer(lambda s, *a, **k: f"OCR network: {getattr(s, 'part', '?')}",
                                      ocr.TorchSession.__call__)
    for cls in (embed.CLIPEmbedder, embed.DINOEmbedder, embed.ClassicalEmbedder):
        cls.embed_images = timer(lambda self, *a, **k: f"embed images: {type(self).__name__}", cls.embed_images)
    embed.CLIPEmbedder.embed_texts = timer("embed texts: CLIPEmbedder", embed.CLIPEmbedder.embed_texts)
    aesthetic.AestheticScorer.score_images = timer("aesthetic head (with its CLIP)",
                                                   aesthetic.AestheticScorer.score_images)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    ap.add_argument("--cprofile", type=int, default=0, metavar="N",
                    help="also run one more video under cProfile and print its N costliest functions")
    args = ap.parse_args(argv)
    os.environ["ADVFX_DEVICE"] = args.device

    import tempfile

    from bench_metrics import make_media, suite_job
    from curation.scoring import score_video
    from metrics.backends import get_ocr

    instrument()
    job = suite_job(*make_media(Path(tempfile.mkdtemp(prefix="bench_profile_"))))
    eng = getattr(get_ocr(), "_engine", None)
    for part in ("text_det", "text_cls", "text_rec"):   # name the OCR sessions for their timers
        sess = getattr(getattr(eng, part, None), "session", None)
        if sess is not None:
            sess.part = part.split("_")[1]
    t0 = time.perf_counter()
    score_video(job)                                    # warm-up: model loading is not per-video time
    _sync()
    warmup = time.perf_counter() - t0
    per_run: list[dict[str, tuple[float, int]]] = []
    walls = []
    for _ in range(args.repeats):
        TOTALS.clear()
        CALLS.clear()
        t0 = time.perf_counter()
        res = score_video(job)
        _sync()
        walls.append(time.perf_counter() - t0)
        per_run.append({k: (TOTALS[k], CALLS[k]) for k in TOTALS})
    statuses = {r["metric"]: r["status"] for r in res}
    wall = statistics.median(walls)
    keys = sorted({k for r in per_run for k in r}, key=lambda k: (not k.startswith("metric"), k))
    rows = {k: {"ms": 1000 * statistics.median(r.get(k, (0.0, 0))[0] for r in per_run),
                "calls": statistics.median(r.get(k, (0.0, 0))[1] for r in per_run)} for k in keys}
    ocr = get_ocr()
    meta = {"device": args.device, "ocr_engine": f"{getattr(ocr, 'engine', '?')} on {getattr(ocr, 'device', '?')}",
            "cpus": os.cpu_count(), "repeats": args.repeats, "suite_wall_s": wall, "statuses": statuses,
            "warmup_video_s": round(warmup, 2), "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    from metrics.backends import get_segmenter

    graphs = [g.stats() for g in getattr(get_segmenter(), "graphs", [])]
    meta["cuda_graphs"] = graphs or "off"
    try:
        import torch
        if args.device == "cuda":
            meta["gpu"] = torch.cuda.get_device_name(0)
        meta["torch"] = torch.__version__
    except Exception:
        pass
    out = Path(args.out) if args.out else REPO / "bench" / "results" / f"suite_profile_{args.device}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2, default=str))
    lines = [f"# Where the suite's time goes ({args.device})", "",
             f"{meta['when']}; {meta.get('gpu', '')} {meta['cpus']} CPUs; OCR engine {meta['ocr_engine']}; "
             f"suite {wall:.3f} s per video (median of {args.repeats}); statuses {statuses}; first video "
             f"(model loading, CUDA graph recording) {warmup:.2f} s; CUDA graphs: {meta['cuda_graphs']}.", "",
             "| stage (inclusive) | calls per video | ms per video | share of the suite |",
             "|---|---:|---:|---:|"]
    for k, r in rows.items():
        lines.append(f"| {k} | {r['calls']:g} | {r['ms']:.1f} | {r['ms'] / 10 / wall:.0f} % |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if args.cprofile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.runcall(score_video, job)
        for order in ("tottime", "cumulative"):
            pstats.Stats(prof).strip_dirs().sort_stats(order).print_stats(args.cprofile)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
