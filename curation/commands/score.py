"""python -m curation score --workspace W [--metrics motionx,tsscore,...] [--force] [--json]
    [--executor local|ray|sequential|pipeline] [--workers N] [--decoders N] [--gpu-threads N] [--gpu-procs N]
    [--address A] [--device auto|cpu|cuda] [--video-ids 1,2] [--model NAME] [--limit N]"""
from __future__ import annotations

import argparse
import sys

from storage import Workspace

from ..cli import add_workspace_arg, emit, parse_ids


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("score", help="compute the InnoAds-Bench video metrics for every ingested video")
    add_workspace_arg(p)
    p.add_argument("--metrics", default=None,
                   help="comma-separated subset of motionx,tsscore,productscore,aesscore,gmescore,crscore "
                        "and clipscore (not one of the paper's six) (default: all)")
    p.add_argument("--force", action="store_true", help="re-score even when the store has a result")
    p.add_argument("--json", action="store_true", help="print {scored, results} as JSON")
    _add_scale_args(p)
    return p


def _add_scale_args(p: argparse.ArgumentParser) -> None:
    """Parallel/Ray execution and subset filters (curation/executors.py; docs/scale.md)."""
    p.add_argument("--executor", choices=("local", "ray", "sequential", "pipeline"), default="local",
                   help="local: worker processes on this machine (default); ray: a Ray cluster (--address); "
                        "sequential: one process; pipeline: CPU decode processes feeding one GPU process per "
                        "GPU (the fastest on a GPU machine)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: CPU count; one per GPU when CUDA is available); with "
                        "--executor pipeline, the GPUs used (default every visible GPU)")
    p.add_argument("--decoders", type=int, default=None,
                   help="--executor pipeline: decode processes (default: the cores the GPU processes leave)")
    p.add_argument("--gpu-threads", type=int, default=None,
                   help="--executor pipeline: videos in flight in each GPU process (default 3)")
    p.add_argument("--gpu-procs", type=int, default=None,
                   help="--executor pipeline: GPU processes on each GPU, each with its own models (default: one per "
                        "4 cores, at most 4, one per 8 GiB of GPU memory; bench/results/throughput_cuda.md has "
                        "the measured rates)")
    p.add_argument("--address", default=None, help="Ray cluster address for --executor ray (e.g. auto, "
                   "ray://head:10001); default: start a local Ray instance")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where models run (default auto: cuda when a GPU is visible)")
    p.add_argument("--video-ids", default=None, help="comma-separated video ids to score (default: all)")
    p.add_argument("--model", default=None, help="only videos of this generator model (triples.model)")
    p.add_argument("--limit", type=int, default=None, help="score at most N videos that still need work")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _human(payload: dict) -> str:
    lines = [f"scored {payload['scored']} video(s)"]
    unavailable: dict[str, str] = {}        # a missing backend's reason is the same for every video: once
    for r in payload["results"]:
        val = "n/a" if r["status"] == "n/a" else (f"{100 * r['value']:.1f}%" if r["value"] is not None
                                                   else r["status"])
        extra = ""
        if r["status"] == "unavailable":
            unavailable.setdefault(r["metric"], r.get("reason") or "")
        elif r.get("reason") and r["status"] != "ok":
            extra = f"  ({r.get('reason')})"
        lines.append(f"{r['metric']:>12}  {val:>11}  {r['video']}"
                     f"{'  vs ' + r['image'] if r.get('image') else ''}{extra}")
    lines += [f"{m} unavailable: {why}" for m, why in unavailable.items()]
    return "\n".join(lines)


def _say(fraction: float | None, message: str) -> None:
    print(message, file=sys.stderr, flush=True)       # one line per video: logs keep "[i/N] path"


def run(args: argparse.Namespace) -> int:
    from metrics.registry import parse_metrics

    try:
        metrics = parse_metrics(args.metrics)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from ..executors import run_scoring
    from ..jobs import Cancelled

    try:
        video_ids = parse_ids(args.video_ids, "--video-ids")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with Workspace.open(args.workspace, create=False) as ws:
        try:
            payload = run_scoring(ws, metrics, executor=args.executor, workers=args.workers, address=args.address,
                                  device=args.device, force=args.force, video_ids=video_ids, model=args.model,
                                  limit=args.limit, bar=not args.no_progress, progress=_say,
                                  decoders=args.decoders, gpu_threads=args.gpu_threads,
                                  gpu_procs=args.gpu_procs)
        except (ValueError, RuntimeError, Cancelled) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    emit(args, payload, _human)
    return 0
