"""The scoring pipeline for a GPU machine: decoding in CPU worker processes, the GPU's models in one process per GPU.

    decode workers (CPU, xD)  --bounded queue, frames in shared memory-->  GPU process (xG, one per GPU,
      decode each video once,                                                K scoring threads, models loaded
      run the CPU metrics (MotionX's                                         once; the threads' calls to one
      optical flow, CRScore's endpoint)                                      once; a video's frames go to
                                                                                     each model in batches)
                    \\                                                          /
                     `------------ results -->  this process: the single DuckDB writer  <--'

Why: with one process per video (the `local` pool) every worker loads every model, and one video's decoding,
optical flow and pre-processing leave the GPU idle; here the GPU process only receives decoded frames, and its
threads keep several videos in flight so the GPU's work from one fills the gaps of another. The threads share
one interpreter, and the segmenter serialises its calls, so one process cannot keep a large GPU busy:
`per_gpu` starts several GPU processes on each GPU (each with its own models; the models of the four
metrics take a few GiB), and the GPU interleaves their work. Batching is per video (a video's frames through
the segmenter's encoder, the OCR detector, CLIP), not across videos.

Each video's results arrive in parts (its CPU metrics, its GPU metrics) and are written as each part arrives,
so a run killed at any moment keeps every finished part and the next `plan()` hands out only what is missing.
Every metric runs through `curation.scoring.score_decoded`, the one place a metric meets a case, so the results
equal those of `score_video` (tested on the CPU with a small batch). A process that dies breaks the pipeline:
it is rebuilt, and the videos in flight are retried once with what they still lack; a video in flight at two
breakages gets error results for the rest, and the run goes on.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing import shared_memory
from typing import Any, Callable

import numpy as np

from .scoring import Job, decode_for, error_result, score_decoded, specs_of

# Metrics that need no GPU model: MotionX (OpenCV optical flow, fed while the video decodes) and CRScore (an
# HTTP endpoint). They run in the decode workers, beside the decoding, never in the GPU process.
CPU_METRICS = frozenset({"motionx", "crscore"})
STOP = None
GRAPH_WARMUP = 3          # videos a GPU process scores on one thread first, recording its CUDA graphs


@dataclass
class Settings:
    gpus: list[str]                  # one GPU process per entry (CUDA_VISIBLE_DEVICES value; "" = CPU);
                                     # a GPU appears `per_gpu` times
    decoders: int                    # decode worker processes
    threads: int = 3                 # scoring threads per GPU process
    prefetch: int = 2                # decoded videos waiting per GPU thread (the bound on frames in memory)
    configs: dict[str, Any] | None = None
    workspace: str | None = None
    cpu_threads: int = 1             # OpenCV / BLAS threads per decode worker
    env: dict[str, str] = field(default_factory=dict)
    per_gpu: int = 1                 # GPU processes per GPU (for reports: len(set(gpus)) GPUs)
    gpu_cpu_threads: int | None = None   # CPU threads of each GPU process's libraries (torch, OpenCV, BLAS,
                                         # ONNX Runtime); None: the libraries' own default (every core)


# Measured on one H200 with 16 cores (bench/results/throughput_cuda.md, docs/scale.md): 1, 2 and 4 GPU
# processes (x 3 threads) gave 1,803, 2,284 and 2,440 videos an hour on 60 videos; 4 gave 3,782 over 386; 6 (x 2
# threads) reached the same steady rate as 4 (about 1.2 videos/s) with more memory (~5 GiB of GPU memory and
# ~4 GiB of host memory a process with the four metrics' models). Hence one process per 4 cores, at most 4.
CORES_PER_GPU_PROC = 4
GIB_PER_GPU_PROC = 8
MAX_GPU_PROCS = 4


def auto_per_gpu(cores: int, n_gpus: int, gpu_mem_gib: float | None) -> int:
    """GPU processes per GPU when none is asked for: as many as the cores (and the GPU's memory, where
    known) carry, at most MAX_GPU_PROCS (more gained nothing on the machine measured)."""
    per = max(1, min(MAX_GPU_PROCS, cores // (CORES_PER_GPU_PROC * max(1, n_gpus))))
    if gpu_mem_gib:
        per = max(1, min(per, int(gpu_mem_gib // GIB_PER_GPU_PROC)))
    return per


def default_settings(device: str, gpus: int | None = None, decoders: int | None = None,
                     threads: int | None = None, per_gpu: int | None = None, **kw: Any) -> Settings:
    """`per_gpu` GPU processes on each visible GPU (or on `gpus` of them; default `auto_per_gpu`, one on the
    CPU); the remaining cores decode (at least one). Imports no database driver: a scoring machine needs
    none (the writer is the caller)."""
    cores = os.cpu_count() or 1
    if device == "cuda":
        visible = [g.strip() for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
        n = gpus or gpu_count() or 1
        ids = (visible or [str(i) for i in range(n)])[:n]
        per = per_gpu or auto_per_gpu(cores, len(ids), gpu_memory_gib())
    else:
        ids = [""] * max(1, gpus or 1)
        per = per_gpu or 1
    per = max(1, int(per))
    ids = [g for g in ids for _ in range(per)]
    if decoders is None:
        decoders = max(1, cores - len(ids) - 1)
    return Settings(gpus=ids, decoders=max(1, int(decoders)), threads=max(1, int(threads or 3)), per_gpu=per,
                    **kw)


# -- frames through shared memory ----------------------------------------------------------------------------
def pack(video: Any, requests: list) -> dict[str, Any]:
    """The decoded video's header and the frames of `requests` in one shared-memory block (no pickling of
    frames through a pipe). The receiver copies them out and unlinks the block."""
    arrays = [(r, k, f) for r in dict.fromkeys(requests) for k, f in enumerate(video.get(r).frames)]
    size = sum(f.nbytes for _, _, f in arrays)
    shm = shared_memory.SharedMemory(create=True, size=max(1, size))
    layout, off = [], 0
    for r, k, f in arrays:
        np.ndarray(f.shape, f.dtype, buffer=shm.buf, offset=off)[...] = f
        layout.append((r, k, f.shape, f.dtype.str, off))
        off += f.nbytes
    samples = {r: {"indices": s.indices, "times": s.times, "source_size": s.source_size,
                   "n_source_frames": s.n_source_frames, "fps": s.fps, "nominal_fps": s.nominal_fps,
                   "n": len(s.frames)} for r in dict.fromkeys(requests) for s in [video.get(r)]}
    head = {"path": video.path, "n_frames": video.n_frames, "times": video.times, "width": video.width,
            "height": video.height, "fps": video.fps, "duration": video.duration}
    name = shm.name
    shm.close()
    return {"shm": name, "layout": layout, "samples": samples, "head": head}


def unpack(packet: dict[str, Any]) -> Any:
    from media.decode import DecodedVideo, SampledFrames

    shm = shared_memory.SharedMemory(name=packet["shm"])
    try:
        frames: dict[Any, list] = {r: [None] * meta["n"] for r, meta in packet["samples"].items()}
        for r, k, shape, dtype, off in packet["layout"]:
            frames[r][k] = np.ndarray(shape, np.dtype(dtype), buffer=shm.buf, offset=off).copy()
    finally:
        shm.close()
        shm.unlink()
    video = DecodedVideo(**packet["head"])
    for r, meta in packet["samples"].items():
        video.samples[r] = SampledFrames(request=r, indices=meta["indices"], times=meta["times"], frames=frames[r],
                                         source_size=meta["source_size"], n_source_frames=meta["n_source_frames"],
                                         fps=meta["fps"], nominal_fps=meta["nominal_fps"])
    return video


def discard(packet: dict[str, Any]) -> None:
    try:
        shm = shared_memory.SharedMemory(name=packet["shm"])
        shm.close()
        shm.unlink()
    except FileNotFoundError:
        pass


# -- the processes -------------------------------------------------------------------------------------------
def watch_parent(ppid: int) -> None:
    """Exit when the parent dies (e.g. SIGKILL of the CLI): orphaned workers must not keep computing."""
    while True:
        if os.getppid() != ppid:
            os._exit(1)
        time.sleep(0.5)


def gpu_memory_gib() -> float | None:
    """The smallest visible GPU's memory in GiB (None where unknown); reads the device properties, which
    allocates nothing on the GPU."""
    try:
        import torch
        if not torch.cuda.is_available():
            return None
        return min(torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count())) \
            / 2**30
    except Exception:
        return None


def gpu_count() -> int:
    """GPUs visible to this process (0 without torch or CUDA)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return 0
    try:
        import torch
        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except Exception:
        return 0


def _setup(env: dict[str, str], threads: int | None, ppid: int) -> None:
    # a SIGKILLed parent cannot stop its daemon children: they watch it and exit (nothing computes for a
    # writer that is gone, and no frames pile up in shared memory)
    threading.Thread(target=watch_parent, args=(ppid,), daemon=True, name="parent-watch").start()
    os.environ.update(env)
    if threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
            os.environ[var] = str(threads)
        try:
            import cv2
            cv2.setNumThreads(threads)
        except Exception:
            pass
        if "torch" in sys.modules:          # imported already (by the spawned main module): the env is too late
            sys.modules["torch"].set_num_threads(threads)


def _parts(todo) -> tuple[list, list]:
    cpu = [t for t in todo if t[0] in CPU_METRICS]
    return cpu, [t for t in todo if t[0] not in CPU_METRICS]


def _decode_worker(job_q, gpu_q, result_q, cfg: Settings, ppid: int) -> None:
    from media.decode import DecodeError

    _setup({**cfg.env, "CUDA_VISIBLE_DEVICES": ""}, cfg.cpu_threads, ppid)
    while True:
        job = job_q.get()
        if job is STOP:
            return
        cpu, gpu = _parts(job.todo)
        specs = specs_of(job.todo, cfg.configs)
        t0 = time.perf_counter()
        try:
            video = decode_for(job, specs)
        except (DecodeError, OSError) as exc:
            result_q.put(("part", job.video_id, [error_result(job, specs, *t, f"cannot decode video: {exc}")
                                                 for t in job.todo], 0.0))
            continue
        except Exception as exc:   # a decoder bug must not take the worker down
            reason = "cannot decode video: " + traceback.format_exception_only(type(exc), exc)[-1].strip()
            result_q.put(("part", job.video_id, [error_result(job, specs, *t, reason) for t in job.todo], 0.0))
            continue
        decode_s = time.perf_counter() - t0
        if gpu:
            gspecs = {m: specs[m] for m in dict.fromkeys(t[0] for t in gpu)}
            packet = pack(video, [r for s in gspecs.values() for r in s.requests()])
            gpu_q.put(("video", job, gpu, packet, decode_s))      # blocks while the GPU side is full
        if cpu:
            t1 = time.perf_counter()
            res = score_decoded(job, video, cpu, {m: specs[m] for m in dict.fromkeys(t[0] for t in cpu)},
                                decode_s=decode_s, workspace=cfg.workspace, lane=False)
            result_q.put(("part", job.video_id, res, time.perf_counter() - t1))
        elif video.feeder is not None:
            video.feeder.join()


def _gpu_worker(gpu_q, result_q, cfg: Settings, gpu: str, ppid: int) -> None:
    _setup({**cfg.env, "CUDA_VISIBLE_DEVICES": gpu}, cfg.gpu_cpu_threads, ppid)

    def serve(limit: int | None = None) -> bool:
        """Score videos off the queue (at most `limit`); False once the queue says stop."""
        served = 0
        while limit is None or served < limit:
            served += 1
            item = gpu_q.get()
            if item is STOP:
                gpu_q.put(STOP)            # for this process's other threads and the other GPU processes
                return False
            _, job, todo, packet, decode_s = item
            t0 = time.perf_counter()
            try:
                video = unpack(packet)
                specs = specs_of(todo, cfg.configs)
                res = score_decoded(job, video, todo, specs, decode_s=decode_s, workspace=cfg.workspace, lane=False)
            except Exception as exc:     # score_decoded does not raise for a metric; this is the last defence
                detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
                specs = specs_of(todo, cfg.configs)
                res = [error_result(job, specs, *t, f"scoring crashed: {detail}") for t in todo]
            result_q.put(("part", job.video_id, res, time.perf_counter() - t0))
        return True

    # the first videos on this thread alone, so the networks' CUDA graphs can be recorded (cuda_graphs.recording:
    # a capture fails, and fails other threads' work, when another thread launches CUDA work meanwhile)
    from metrics.backends.cuda_graphs import recording
    with recording():
        more = serve(GRAPH_WARMUP)
    if not more:
        return
    lanes = [threading.Thread(target=serve, name=f"gpu-lane-{i}", daemon=True) for i in range(cfg.threads)]
    for t in lanes:
        t.start()
    for t in lanes:
        t.join()


# -- the parent: hands out jobs, writes results, rebuilds after a crash ---------------------------------------
class _Broken(Exception):
    pass


def run_pipeline(todo: list[Job], sink: Callable[[Job, list[dict], float], None], cfg: Settings, *,
                 write: Callable[[list[dict]], None], cancel: threading.Event | None = None) -> None:
    """Score `todo` through the pipeline. `write(results)` stores a part as soon as it arrives; `sink(job,
    results, seconds)` is called once per video when all its parts are in (progress, the CLI's report)."""
    pending = {j.video_id: j for j in todo}
    got: dict[int, list[dict]] = {}
    attempts: dict[int, int] = {}
    order = [j.video_id for j in todo]
    while pending:
        left = [pending[v] for v in order if v in pending]
        try:
            _run_once(left, cfg, pending, got, sink, write, cancel)
            return
        except _Broken as exc:
            for vid in list(pending):
                job = pending[vid]
                if vid not in got:          # never reached a process: not in flight
                    continue
                attempts[vid] = attempts.get(vid, 0) + 1
                if attempts[vid] >= 2:
                    specs = specs_of(job.todo, cfg.configs)
                    res = [error_result(job, specs, *t, f"the pipeline broke twice while scoring this video ({exc})")
                           for t in job.todo]
                    write(res)
                    sink(job, got.pop(vid) + res, 0.0)
                    del pending[vid]
            if cancel is not None and cancel.is_set():
                return


def _run_once(jobs: list[Job], cfg: Settings, pending: dict[int, Job], got: dict[int, list[dict]], sink, write,
              cancel) -> None:
    ctx = mp.get_context("spawn")
    n_gpu_slots = len(cfg.gpus) * cfg.threads
    job_q = ctx.Queue()
    gpu_q = ctx.Queue(maxsize=max(1, n_gpu_slots * cfg.prefetch))
    result_q = ctx.Queue()
    me = os.getpid()
    procs = [ctx.Process(target=_gpu_worker, args=(gpu_q, result_q, cfg, g, me), name=f"advfx-gpu-{i}", daemon=True)
             for i, g in enumerate(cfg.gpus)]
    procs += [ctx.Process(target=_decode_worker, args=(job_q, gpu_q, result_q, cfg, me), name=f"advfx-decode-{i}",
                          daemon=True) for i in range(cfg.decoders)]
    for p in procs:
        p.start()
    window = cfg.decoders + n_gpu_slots * (cfg.prefetch + 1)
    feed = list(reversed(jobs))
    inflight: dict[int, int] = {}       # video id -> parts still to come
    t_start: dict[int, float] = {}
    try:
        while feed or inflight:
            if cancel is not None and cancel.is_set():
                feed.clear()
            while feed and len(inflight) < window:
                job = feed.pop()
                cpu, gpu = _parts(job.todo)
                inflight[job.video_id] = (1 if cpu else 0) + (1 if gpu else 0)
                got.setdefault(job.video_id, [])
                t_start[job.video_id] = time.perf_counter()
                job_q.put(job)
            if not inflight:
                break
            try:
                _, vid, res, _secs = result_q.get(timeout=1.0)
            except queue.Empty:
                dead = [p for p in procs if not p.is_alive()]
                if dead:
                    raise _Broken(f"{dead[0].name} exited with status {dead[0].exitcode}")
                continue
            job = pending[vid]
            write(res)
            got[vid].extend(res)
            done = {(r["metric"], r["triple_id"]) for r in res}
            job.todo = [t for t in job.todo if (t[0], t[1]) not in done]
            # a decode error answers every part at once
            inflight[vid] = 0 if not job.todo else inflight[vid] - 1
            if inflight[vid] <= 0:
                del inflight[vid]
                del pending[vid]
                sink(job, got.pop(vid), time.perf_counter() - t_start.pop(vid))
    finally:
        _shutdown(procs, job_q, gpu_q, cfg)


def _shutdown(procs, job_q, gpu_q, cfg: Settings) -> None:
    for _ in range(cfg.decoders):
        job_q.put(STOP)
    try:
        gpu_q.put(STOP, timeout=5)
    except queue.Full:
        pass
    deadline = time.time() + 30
    for p in procs:
        p.join(timeout=max(0.1, deadline - time.time()))
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join(5)
    while True:                          # frames nobody will score: free their shared memory
        try:
            item = gpu_q.get_nowait()
        except (queue.Empty, OSError, ValueError):
            break
        if item is not STOP:
            discard(item[3])


__all__ = ["run_pipeline", "Settings", "default_settings", "pack", "unpack", "CPU_METRICS"]
