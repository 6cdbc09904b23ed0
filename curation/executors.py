"""Parallel scoring executors: a process pool on one machine and a Ray executor for a cluster.

Both map `curation.scoring.score_video` over the plain, picklable `Job`s of `curation.scoring.plan` and stream
the results back to this (the parent) process, which is the single DuckDB writer: each video's results are
written as soon as they arrive, so a run killed at any moment keeps everything finished before the kill, and
the next run's `plan()` only hands out what the store does not hold yet (nothing is scored twice).

    run_scoring(ws, metrics)                                   # in this process (the app, the benchmark)
    run_scoring(ws, metrics, executor="local", workers=None)   # processes; default workers: CPU count,
                                                               # or one per GPU when CUDA is available
    run_scoring(ws, metrics, executor="ray", address="auto")   # Ray cluster (or a local Ray instance)

It follows the job protocol (curation.jobs): progress(fraction, message), a cancel event checked between
videos (and between metrics in process), Cancelled raised after what was finished is written.

Workers never open the workspace. Ray workers must see the same media paths as the driver (shared or
identical file system): jobs carry paths, not bytes.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Iterable

from storage import Workspace, triples

from metrics.registry import METRICS

from .jobs import Cancelled, Progress, quiet
from .pipeline import gpu_count, watch_parent
from .scoring import Job, plan, report, score_video, write_results

REPO = Path(__file__).resolve().parents[1]
EXECUTORS = ("local", "ray", "sequential", "pipeline")
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


# -- devices and worker counts ------------------------------------------------------------------------------
def cuda_device_count() -> int:
    """GPUs visible to this process (0 without torch or CUDA). Does not create a CUDA context."""
    return gpu_count()


def resolve_device(device: str | None) -> str:
    """'auto' (default) -> 'cuda' when a GPU is visible, else 'cpu'."""
    device = (device or "auto").lower()
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda, got {device!r}")
    if device == "auto":
        return "cuda" if cuda_device_count() else "cpu"
    if device == "cuda" and not cuda_device_count():
        raise ValueError("--device cuda: no CUDA device is visible (check nvidia-smi / CUDA_VISIBLE_DEVICES)")
    return device


def default_workers(device: str = "cpu") -> int:
    """One worker per GPU with CUDA (the models of one worker fill a GPU; workers then never fight over one
    device's memory), else one per CPU core."""
    if device == "cuda":
        return max(1, cuda_device_count())
    return max(1, os.cpu_count() or 1)


# -- the worker side (runs in the pool processes) --------------------------------------------------------------
_WORKER: dict[str, Any] = {}


_watch_parent = watch_parent


def _init_worker(slots: Any, device: str, threads: int, ppid: int) -> None:
    slot = slots.get()
    _WORKER.update(slot=slot, device=device)
    if device == "cuda":
        gpus = [g.strip() for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
        n = len(gpus) or cuda_device_count() or 1
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[slot % n] if gpus else str(slot % n)
    else:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    for var in _THREAD_ENV:
        os.environ[var] = str(threads)
    try:
        import cv2
        cv2.setNumThreads(threads)
    except Exception:
        pass
    try:
        import torch
        torch.set_num_threads(threads)
    except Exception:
        pass
    threading.Thread(target=_watch_parent, args=(ppid,), daemon=True, name="parent-watch").start()


def _score_job(job: Job, configs: dict | None, workspace: str | None, progress: Progress | None = None,
               cancel: threading.Event | None = None) -> tuple[int, list[dict], float]:
    t0 = time.perf_counter()
    try:
        res = score_video(job, configs=configs, workspace=workspace, progress=progress, cancel=cancel)
    except Exception as exc:   # score_video does not raise for bad videos; this is a last line of defence
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        res = _error_results(job, f"scoring crashed: {detail}", configs)
    return job.video_id, res, time.perf_counter() - t0


def _error_results(job: Job, reason: str, configs: dict | None) -> list[dict[str, Any]]:
    from metrics.registry import get_spec
    configs = configs or {}
    out = []
    for metric, tid, ph in job.todo:
        out.append({"metric": metric, "version": get_spec(metric, configs.get(metric)).version, "params_hash": ph,
                    "video_id": job.video_id, "triple_id": tid, "value": None, "status": "error", "reason": reason,
                    "backend": None, "trace": None, "seconds": 0.0})
    return out


# -- the parent side -----------------------------------------------------------------------------------------
class _Progress:
    """One '[i/N] path' line per finished video, through the progress callback or above a tqdm bar (ETA) on
    stderr for the CLI."""

    def __init__(self, total: int, bar: bool, progress: Progress):
        self.total, self.done, self.progress = total, 0, progress
        self.bar = None
        if bar:
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit="video", file=sys.stderr, dynamic_ncols=True, smoothing=0.1,
                            desc="scoring", mininterval=0.5)

    def step(self, job: Job, results: list[dict], seconds: float) -> None:
        self.done += 1
        bad = sum(1 for r in results if r["status"] == "error")
        msg = f"[{self.done}/{self.total}] {job.video_path}  ({seconds:.1f} s{f', {bad} error(s)' if bad else ''})"
        if self.bar is not None:
            self.bar.write(msg, file=sys.stderr)
            self.bar.update(1)
        else:
            self.progress(self.done / self.total, msg)

    def within(self) -> Progress:
        """progress inside the video being scored in process (its metrics one by one)."""
        def say(fraction: float | None, message: str) -> None:
            if self.bar is None:
                self.progress((self.done + (fraction or 0.0)) / self.total, message)
        return say

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def select_videos(ws: Workspace, *, video_ids: Iterable[int] | None = None, model: str | None = None) -> list[int] | None:
    """Video ids matching the filters (None: no filter)."""
    ids: set[int] | None = set(int(v) for v in video_ids) if video_ids is not None else None
    if model:
        got = triples.video_ids_of_model(ws, model)
        ids = got if ids is None else ids & got
    return sorted(ids) if ids is not None else None


def run_scoring(ws: Workspace, metrics: Iterable[str] = METRICS, *, executor: str = "sequential",
                workers: int | None = None, address: str | None = None, device: str | None = None,
                configs: dict[str, Any] | None = None, force: bool = False, video_ids: Iterable[int] | None = None,
                model: str | None = None, limit: int | None = None, progress: Progress | None = None,
                cancel: threading.Event | None = None, bar: bool = False, ray_init: dict[str, Any] | None = None,
                gpus_per_task: float | None = None, decoders: int | None = None,
                gpu_threads: int | None = None, gpu_procs: int | None = None,
                gpu_cpu_threads: int | None = None) -> dict[str, Any]:
    """Score what the store lacks with the chosen executor; returns the CLI payload
    ``{"scored", "results", "fresh", "cached", "errors", "seconds", "executor", "workers", "device"}``.
    ``limit`` caps the number of videos scored in this run (videos needing work, in id order). The
    ``pipeline`` executor (curation.pipeline) uses ``workers`` GPUs (default: every visible one), fed by
    ``decoders`` CPU decode processes, ``gpu_procs`` GPU processes on each GPU (default: as many as the
    machine's cores and GPU memory carry, at most 4; see pipeline.auto_per_gpu), ``gpu_cpu_threads`` CPU
    threads for each GPU process's libraries (default theirs), ``gpu_threads``
    videos in flight in each GPU process. Raises
    Cancelled when `cancel` was set, after writing every video (and in process every metric) finished."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    say = progress or quiet
    metrics = list(metrics)
    device = resolve_device(device)
    ids = select_videos(ws, video_ids=video_ids, model=model)
    jobs, cached = plan(ws, metrics, configs=configs, force=force, video_ids=ids)
    todo = [j for j in jobs if j.todo]
    if limit is not None:
        todo = todo[:max(0, int(limit))]
    if workers is None:
        workers = default_workers(device) if executor not in ("sequential", "pipeline") else 1
        if executor == "pipeline" and device == "cuda":
            workers = max(1, cuda_device_count())
    workers = max(1, int(workers))
    t0 = time.perf_counter()
    tracker = _Progress(len(todo), bar, say)
    fresh: list[dict[str, Any]] = []
    layout: dict[str, Any] = {}           # the pipeline's process layout, as it ran (reports say what produced a rate)

    def sink(job: Job, results: list[dict], seconds: float) -> None:
        write_results(ws, results)            # the single writer: this process, as each video arrives
        fresh.extend(results)
        tracker.step(job, results, seconds)

    try:
        if not todo:
            pass
        elif executor == "pipeline":
            from .pipeline import default_settings, run_pipeline

            cfg = default_settings(device, gpus=workers, decoders=decoders, threads=gpu_threads, configs=configs,
                                   workspace=str(ws.root), per_gpu=gpu_procs, gpu_cpu_threads=gpu_cpu_threads)
            layout = {"gpu_procs": cfg.per_gpu, "gpu_threads": cfg.threads, "decoders": cfg.decoders,
                      "gpu_cpu_threads": cfg.gpu_cpu_threads}

            def done(job: Job, results: list[dict], seconds: float) -> None:
                fresh.extend(results)             # written part by part below, as each part arrives
                tracker.step(job, results, seconds)
            run_pipeline(todo, done, cfg, write=lambda res: write_results(ws, res), cancel=cancel)
        elif executor == "ray":
            workers = _run_ray(todo, sink, configs=configs, workspace=str(ws.root), address=address,
                               workers=workers, device=device, ray_init=ray_init, gpus_per_task=gpus_per_task,
                               cancel=cancel)
        elif executor == "sequential" or workers == 1 or len(todo) == 1:
            for job in todo:
                if cancel is not None and cancel.is_set():
                    break
                _, res, secs = _score_job(job, configs, str(ws.root), tracker.within(), cancel)
                sink(job, res, secs)
        else:
            _run_pool(todo, sink, configs=configs, workspace=str(ws.root), workers=min(workers, len(todo)),
                      device=device, cancel=cancel)
    finally:
        tracker.close()
    seconds = time.perf_counter() - t0
    n_err = sum(1 for r in fresh if r["status"] == "error")
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"scoring cancelled: {tracker.done} of {len(todo)} video(s) scored and stored "
                        f"({len(fresh)} result(s))")
    say(1.0, f"scored {len(todo)} video(s) in {seconds:.1f} s with {executor} x{workers} ({device}); "
        f"{len(cached)} result(s) from the cache; {n_err} error result(s)")
    scored_ids = {j.video_id for j in todo}
    shown = [j for j in jobs if j.video_id in scored_ids or not j.todo] if limit is not None else jobs
    shown_ids = {j.video_id for j in shown}
    cached_shown = [c for c in cached if c["video_id"] in shown_ids]
    return {"scored": len(todo), "results": report(ws, shown, fresh + cached_shown, metrics), "fresh": len(fresh),
            "cached": len(cached), "errors": n_err, "seconds": round(seconds, 3), "executor": executor,
            "workers": workers, "device": device, **layout, "videos_per_hour": round(3600 * len(todo) / seconds, 1)
            if todo and seconds > 0 else None}


def _run_pool(todo: list[Job], sink, *, configs, workspace: str, workers: int, device: str,
              cancel: threading.Event | None) -> None:
    """A spawn-context process pool (no forked DuckDB/CUDA state), a bounded window of jobs in flight, results
    written in completion order. A worker that dies (segfault in a decoder, OOM kill) breaks the pool: it is
    rebuilt and the jobs that were in flight are retried once; a job in flight at two breakages is recorded
    as an error for that video, and the run goes on. Cancel stops handing out jobs; those in flight finish."""
    ctx = mp.get_context("spawn")
    # OCR (TSScore) and decoding stay on the CPU even on a GPU machine, so each worker gets its share of cores
    threads = max(1, (os.cpu_count() or 1) // workers)
    queue_jobs = list(reversed(todo))
    attempts: dict[int, int] = {}
    while queue_jobs:
        slots = ctx.Queue()
        for i in range(workers):
            slots.put(i)
        pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                      initargs=(slots, device, threads, os.getpid()))
        inflight: dict[cf.Future, Job] = {}
        broken = False
        try:
            while queue_jobs or inflight:
                if cancel is not None and cancel.is_set():
                    queue_jobs.clear()
                while queue_jobs and len(inflight) < 2 * workers and not broken:
                    job = queue_jobs.pop()
                    try:
                        inflight[pool.submit(_score_job, job, configs, workspace)] = job
                    except cf.process.BrokenProcessPool:
                        queue_jobs.append(job)
                        broken = True
                if not inflight:
                    break
                done, _ = cf.wait(list(inflight), return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    job = inflight.pop(fut)
                    try:
                        _, res, secs = fut.result()
                    except cf.process.BrokenProcessPool:
                        broken = True
                        attempts[job.video_id] = attempts.get(job.video_id, 0) + 1
                        if attempts[job.video_id] >= 2:
                            sink(job, _error_results(job, "the worker process died while scoring this video "
                                                          "(crash or out of memory in decoding or a metric)",
                                                     configs), 0.0)
                        else:
                            queue_jobs.append(job)
                        continue
                    sink(job, res, secs)
                if broken and not inflight:
                    break
        finally:
            pool.shutdown(wait=not broken, cancel_futures=True)
            slots.close()
        if not broken:
            break


def _ray_score(job: Job, configs, workspace):
    return _score_job(job, configs, workspace)


def _run_ray(todo: list[Job], sink, *, configs, workspace: str, address: str | None, workers: int, device: str,
             ray_init: dict | None, gpus_per_task: float | None, cancel: threading.Event | None) -> int:
    """Fan out to Ray: remote tasks score videos, `ray.wait` hands each finished one back to the writer."""
    try:
        import ray
    except ImportError:
        raise RuntimeError("--executor ray needs the ray package: pip install 'ray>=2.40'") from None
    started = False
    if not ray.is_initialized():
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "ignore_reinit_error": True}
        if address:
            kw["address"] = address
            # ship the code (not media) to the cluster; media paths must be visible on the workers
            kw["runtime_env"] = {"working_dir": str(REPO),
                                 "excludes": [".venv/", ".git/", ".whl/", "workspace/", "test-artifacts/",
                                              "*.duckdb", "*.duckdb.wal", "bench/results/"]}
        else:
            kw["num_cpus"] = workers
            kw["runtime_env"] = {"env_vars": {"PYTHONPATH": os.pathsep.join(
                [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}}
        kw.update(ray_init or {})
        ray.init(**kw)
        started = True
    try:
        if gpus_per_task is None:
            gpus_per_task = 1.0 if device == "cuda" else 0.0
        remote = ray.remote(num_cpus=1, num_gpus=gpus_per_task, max_retries=1)(_ray_score)
        cluster_cpus = int(ray.cluster_resources().get("CPU", workers))
        window = max(2, 2 * cluster_cpus)
        configs_ref = ray.put(configs)
        pending: dict[Any, Job] = {}
        queue_jobs = list(reversed(todo))
        while queue_jobs or pending:
            if cancel is not None and cancel.is_set():
                queue_jobs.clear()
            while queue_jobs and len(pending) < window:
                job = queue_jobs.pop()
                pending[remote.remote(job, configs_ref, workspace)] = job
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                job = pending.pop(ref)
                try:
                    _, res, secs = ray.get(ref)
                except Exception as exc:   # worker crash, node loss after retries
                    reason = f"ray task failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                    res, secs = _error_results(job, reason, configs), 0.0
                sink(job, res, secs)
        return cluster_cpus
    finally:
        if started:
            ray.shutdown()


__all__ = ["run_scoring", "select_videos", "default_workers", "resolve_device", "cuda_device_count", "EXECUTORS"]
