"""Scoring one video: `plan` says what the store lacks for the same (metric, version, params hash, video,
triple), `score_video` scores one video (-> list of result dicts, no database), `write_results` stores them.
`curation.executors.run_scoring` is the one runner (in process, a process pool or Ray) that the CLI, the
app's "Score this video" and the benchmark call.
"""
from __future__ import annotations

import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from metrics.config import NA, OK, MetricOutput
from metrics.registry import METRICS, Case, backend_keys, get_spec

from .jobs import Progress

if TYPE_CHECKING:  # score_video runs on scoring workers (Ray, a GPU box) that need no database driver
    from storage import Workspace

CACHED_STATUSES = (OK, NA)     # unavailable / error are retried on the next run


@dataclass
class Job:
    """One video and the cases (triples) it is scored against; plain data, picklable."""
    video_id: int
    video_path: str
    cases: list[dict[str, Any]]                       # triple_id, image_path, prompt, product
    todo: list[tuple[str, int, str]] = field(default_factory=list)   # (metric, triple_id, params_hash)


def _store():
    from storage import metric_results
    return metric_results


def plan(ws: Workspace, metrics: Iterable[str], *, configs: dict[str, Any] | None = None,
         force: bool = False, video_ids: Iterable[int] | None = None) -> tuple[list[Job], list[dict]]:
    """Jobs for every ingested video (or ``video_ids``) and the cached results that make work unneeded."""
    configs = configs or {}
    specs = [get_spec(m, configs.get(m)) for m in metrics]
    keys = backend_keys(ws.root)
    hashes = {s.name: s.params_hash(keys.get(s.name, "")) for s in specs}
    from storage import triples as triple_store, videos as video_store

    videos = video_store.scoring_rows(ws)
    if video_ids is not None:
        wanted = set(video_ids)
        videos = [v for v in videos if v["id"] in wanted]
    triples = triple_store.scoring_cases(ws)
    by_video: dict[int, list[dict]] = {}
    for t in triples:
        by_video.setdefault(t["video_id"], []).append(
            {"triple_id": t["id"], "image_path": t["image_path"], "prompt": t["prompt"], "product": t["product"]})
    jobs, cached = [], []
    for v in videos:
        cases = by_video.get(v["id"]) or [{"triple_id": 0, "image_path": v["image_path"], "prompt": v["prompt"],
                                           "product": v["image_product"]}]
        job = Job(v["id"], v["path"], cases)
        for s in specs:
            for tid in ([c["triple_id"] for c in cases] if s.per_triple else [0]):
                hit = None if force else _store().get_result(
                    ws, metric=s.name, version=s.version, params_hash=hashes[s.name], video_id=v["id"],
                    triple_id=tid)
                if hit and hit["status"] in CACHED_STATUSES:
                    cached.append(hit)
                else:
                    job.todo.append((s.name, tid, hashes[s.name]))
        jobs.append(job)
    return jobs, cached


def specs_of(todo: Iterable[tuple[str, int, str]], configs: dict[str, Any] | None = None) -> dict[str, Any]:
    configs = configs or {}
    return {m: get_spec(m, configs.get(m)) for m in dict.fromkeys(t[0] for t in todo)}


def decode_for(job: Job, specs: dict[str, Any], *, streamed: bool = True):
    """Decode the job's video once for every request of `specs`; with `streamed`, a metric that takes its
    frames through a sink (MotionX) gets them as they decode. Raises DecodeError / OSError."""
    from media.decode import decode_video

    requests = [r for s in specs.values() for r in s.requests()]
    sinks = {r: k for s in specs.values() for r, k in s.sinks().items()} if streamed else {}
    return decode_video(job.video_path, requests, sinks)


def error_result(job: Job, specs: dict[str, Any], metric: str, tid: int, ph: str, reason: str) -> dict[str, Any]:
    return {"metric": metric, "version": specs[metric].version, "params_hash": ph, "video_id": job.video_id,
            "triple_id": tid, "value": None, "status": "error", "reason": reason, "backend": None, "trace": None,
            "seconds": 0.0}


def score_video(job: Job, *, configs: dict[str, Any] | None = None, workspace: str | None = None,
                progress: Progress | None = None, cancel: threading.Event | None = None) -> list[dict[str, Any]]:
    """Score one video: decode it once for every metric it still needs, run each metric on each case.
    Never raises for a bad video or a failing metric: those become status "error" results. When `cancel`
    is set, the metrics not started yet are left out (the caller writes what is returned, then stops)."""
    from media.decode import DecodeError

    if not job.todo:
        return []
    specs = specs_of(job.todo, configs)
    t0 = time.perf_counter()
    try:
        video = decode_for(job, specs)
    except (DecodeError, OSError) as exc:
        return [error_result(job, specs, m, tid, ph, f"cannot decode video: {exc}") for m, tid, ph in job.todo]
    return score_decoded(job, video, job.todo, specs, decode_s=time.perf_counter() - t0, workspace=workspace,
                         progress=progress, cancel=cancel)


def score_decoded(job: Job, video: Any, todo: list[tuple[str, int, str]], specs: dict[str, Any], *,
                  decode_s: float, workspace: str | None = None, progress: Progress | None = None,
                  cancel: threading.Event | None = None, lane: bool = True) -> list[dict[str, Any]]:
    """Run `todo` (metric, triple, params hash) on an already decoded video. The one place a metric is run
    on a case, for every executor (the pipeline runs part of a video's metrics in one process and the rest
    in another, each through here)."""
    def rec(metric: str, tid: int, ph: str, out: MetricOutput, seconds: float) -> dict[str, Any]:
        return {"metric": metric, "version": specs[metric].version, "params_hash": ph, "video_id": job.video_id,
                "triple_id": tid, "value": out.value, "status": out.status, "reason": out.reason,
                "backend": out.backend, "trace": out.trace, "seconds": round(seconds, 4)}

    cases = {c["triple_id"]: Case(triple_id=c["triple_id"], image_path=c.get("image_path"), prompt=c.get("prompt"),
                                  product=c.get("product"), workspace=workspace) for c in job.cases}
    video_case = cases.get(job.cases[0]["triple_id"]) if job.cases else Case(workspace=workspace)
    # reference-free metrics first, then per case (product masks are shared between ProductScore and TSScore);
    # a metric fed by a sink (MotionX) last: its thread finishes the last frames beside the others
    streamed = {m for m, s in specs.items() if any(r in video.sinks for r in s.requests())}
    order = sorted(todo, key=lambda t: (t[0] in streamed, specs[t[0]].per_triple, t[1], METRICS.index(t[0])))

    say_lock = threading.Lock()
    n_done = [0]

    def run_one(metric: str, tid: int, ph: str) -> dict[str, Any] | None:
        if cancel is not None and cancel.is_set():
            return None
        case = cases.get(tid, video_case) if specs[metric].per_triple else video_case
        t1 = time.perf_counter()
        try:
            out = specs[metric].run(video, case)
        except Exception as exc:  # a metric bug or a bad reference image must not stop the run
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            out = MetricOutput.error(f"{metric} failed: {detail}")
        if out.trace is not None and isinstance(out.trace, dict):
            out.trace.setdefault("decode_s", round(decode_s, 4))
        if progress:
            with say_lock:           # the side lane reports too: callers need not be thread-safe
                n_done[0] += 1
                progress(n_done[0] / len(order),
                         f"  {metric} triple={tid}: {out.status} {'' if out.value is None else f'{out.value:.3f}'}")
        return rec(metric, tid, ph, out, time.perf_counter() - t1)

    beside = side_lane() if lane else frozenset()
    side = [t for t in order if t[0] in beside]
    main = [t for t in order if t[0] not in beside]
    if not side or not main:
        return [r for r in (run_one(*t) for t in order) if r is not None]
    done: dict[tuple[str, int, str], dict[str, Any] | None] = {}
    with ThreadPoolExecutor(1, thread_name_prefix="score-side-lane") as pool:
        lane_f = pool.submit(lambda: [(t, run_one(*t)) for t in side])
        for t in main:
            done[t] = run_one(*t)
        done.update(lane_f.result())
    return [r for r in (done[t] for t in order) if r is not None]


def side_lane() -> frozenset[str]:
    """Metrics that share nothing with the per-case SAM2 + OCR chain and run beside it on a thread: on a
    GPU machine the embedding metrics (their kernels fill the GPU while SAM2's tracking waits on the CPU
    that launches its own; AesScore and CLIPScore share one CLIP model, one after the other on the lane) and
    CRScore; on the CPU only CRScore (it waits on the MLLM endpoint; the embedders would compete with OCR for
    the cores). Results are the same either way."""
    from metrics.backends import torch_device

    if str(torch_device()).startswith("cuda"):
        return frozenset({"aesscore", "gmescore", "clipscore", "crscore"})
    return frozenset({"crscore"})


def write_results(ws: Workspace, results: Iterable[dict[str, Any]]) -> None:
    for r in results:
        _store().put_result(ws, metric=r["metric"], version=r["version"], params_hash=r["params_hash"],
                                video_id=r["video_id"], triple_id=r["triple_id"], value=r["value"],
                                status=r["status"], reason=r["reason"], backend=r["backend"], trace=r["trace"],
                                seconds=r["seconds"])


def report(ws: Workspace, jobs: list[Job], results: list[dict[str, Any]], metrics: list[str]) -> list[dict]:
    path_of = {j.video_id: j.video_path for j in jobs}
    image_of = {(j.video_id, c["triple_id"]): c.get("image_path") for j in jobs for c in j.cases}
    first_image = {j.video_id: (j.cases[0].get("image_path") if j.cases else None) for j in jobs}
    out = []
    for r in results:
        version = r.get("version", r.get("metric_version"))
        row = {"video": path_of.get(r["video_id"]),
               "image": image_of.get((r["video_id"], r["triple_id"]), first_image.get(r["video_id"]))
               if r["triple_id"] else first_image.get(r["video_id"]),
               "metric": r["metric"], "value": r["value"] if r["status"] == OK else None, "status": r["status"],
               "backend": r.get("backend"), "version": version, "video_id": r["video_id"],
               "triple_id": r["triple_id"]}
        if r["status"] != OK:
            row["reason"] = r.get("reason")
        out.append(row)
    order = {m: i for i, m in enumerate(metrics)}
    out.sort(key=lambda x: (x["video_id"], x["triple_id"], order.get(x["metric"], 99)))
    return out


__all__ = ["Job", "plan", "score_video", "score_decoded", "decode_for", "specs_of", "error_result", "write_results",
           "report"]
