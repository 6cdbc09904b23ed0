"""Batch scoring at scale: parallel workers give the sequential results, a SIGKILLed run resumes without
redoing cached work, the Ray executor (local instance) gives the same results, and the bad-input corpus
scores to results or clear errors."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curation.executors import run_scoring
from storage import Workspace

REPO = Path(__file__).resolve().parents[2]
METRICS = ["motionx", "productscore", "aesscore"]      # fast on CPU; aesscore: unavailable without weights
REF_IDS = [1, 2, 3, 4, 5, 6]    # half the demo's videos: the executors are compared on these (CI time)


def _key(r):
    return (r["video_id"], r["triple_id"], r["metric"])


def _values(results):
    return {_key(r): (r["status"], r["value"]) for r in results}


def _same(a: dict, b: dict) -> None:
    """Same keys and statuses; values equal up to float summation order (OpenCV's thread count differs
    between a worker and the parent: last-digit differences, ~1e-10)."""
    assert a.keys() == b.keys()
    for k in a:
        assert a[k][0] == b[k][0], (k, a[k], b[k])
        if a[k][1] is None or b[k][1] is None:
            assert a[k][1] is b[k][1], (k, a[k], b[k])
        else:
            assert a[k][1] == pytest.approx(b[k][1], rel=1e-7, abs=1e-9), (k, a[k], b[k])


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="module")
def sequential(tmp_path_factory, _demo_workspace_template):
    root = _copy(_demo_workspace_template, tmp_path_factory.mktemp("seq") / "ws")
    with Workspace.open(root) as ws:
        out = run_scoring(ws, METRICS, video_ids=REF_IDS)
    assert out["scored"] == len(REF_IDS)
    return _values(out["results"])


def test_parallel_equals_sequential(sequential, tmp_path, _demo_workspace_template):
    root = _copy(_demo_workspace_template, tmp_path / "ws")
    with Workspace.open(root) as ws:
        out = run_scoring(ws, METRICS, executor="local", workers=2, video_ids=REF_IDS)
        assert out["scored"] == len(REF_IDS) and out["workers"] == 2 and out["cached"] == 0
        par = _values(out["results"])
        _same(par, sequential)                        # same statuses and values
        # the store holds exactly one row per key, written by this (the parent) process
        n = ws.query_one("SELECT count(*), count(DISTINCT (metric, video_id, triple_id)) FROM metric_results")
        assert n[0] == n[1] == len(sequential)
        again = run_scoring(ws, METRICS, executor="local", workers=2, video_ids=REF_IDS)
        n_cached = len([v for v in sequential.values() if v[0] in ("ok", "n/a")])   # unavailable is retried
        assert again["cached"] == n_cached and again["fresh"] == len(sequential) - n_cached


def test_pipeline_equals_sequential(sequential, tmp_path, _demo_workspace_template):
    """The pipeline (a decode process running MotionX, two 'GPU' processes (--gpu-procs 2) with two scoring
    threads each running the rest; here all on the CPU) stores what one-video-at-a-time scoring stores, one row
    per key."""
    root = _copy(_demo_workspace_template, tmp_path / "ws")
    with Workspace.open(root) as ws:
        out = run_scoring(ws, METRICS, executor="pipeline", device="cpu", video_ids=[1, 2, 3, 4], decoders=1,
                          gpu_threads=2, gpu_procs=2)
        assert out["scored"] == 4 and out["executor"] == "pipeline" and out["cached"] == 0
        assert out["gpu_procs"] == 2 and out["gpu_threads"] == 2 and out["decoders"] == 1   # the layout that ran
        _same(_values(out["results"]), {k: v for k, v in sequential.items() if k[0] in (1, 2, 3, 4)})
        n = ws.query_one("SELECT count(*), count(DISTINCT (metric, video_id, triple_id)) FROM metric_results")
        assert n[0] == n[1] == 4 * len(METRICS)
        backends = dict(ws.query("SELECT metric, any_value(backend) FROM metric_results GROUP BY metric"))
        assert backends["motionx"] and backends["productscore"]      # both halves ran their real backends


def test_pipeline_settings_repeat_each_gpu_per_gpu_procs(monkeypatch):
    """--gpu-procs N starts N GPU processes on each visible GPU; without it, one per 4 cores per GPU (at most
    4, at most one per 8 GiB of GPU memory); the decoders get the cores left over; the CPU gets one."""
    from curation import pipeline
    from curation.pipeline import default_settings

    monkeypatch.setattr(pipeline, "gpu_count", lambda: 2)
    monkeypatch.setattr(pipeline, "gpu_memory_gib", lambda: 139.8)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    s = default_settings("cuda", per_gpu=3)
    assert s.gpus == ["2", "2", "2", "5", "5", "5"] and s.per_gpu == 3
    assert s.decoders == 16 - 6 - 1
    one = default_settings("cuda", gpus=1, per_gpu=2)
    assert one.gpus == ["2", "2"] and one.decoders == 13
    assert default_settings("cuda").gpus == ["2", "2", "5", "5"]       # 16 cores, 2 GPUs: 2 each
    assert default_settings("cuda", gpus=1).gpus == ["2"] * 4          # 16 cores, 1 GPU: 4 (the cap)
    monkeypatch.setattr(os, "cpu_count", lambda: 128)
    assert default_settings("cuda", gpus=1).per_gpu == 4               # never more than 4
    monkeypatch.setattr(pipeline, "gpu_memory_gib", lambda: 16.0)
    assert default_settings("cuda", gpus=1).per_gpu == 2               # 16 GiB: 2
    monkeypatch.setattr(pipeline, "gpu_memory_gib", lambda: None)      # memory unknown: cores decide
    assert default_settings("cuda", gpus=1).per_gpu == 4
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert default_settings("cuda", gpus=1).per_gpu == 1               # small machines: one
    assert default_settings("cpu").gpus == [""]


def test_filters_limit_video_ids_model(tmp_path, _demo_workspace_template):
    root = _copy(_demo_workspace_template, tmp_path / "ws")
    with Workspace.open(root) as ws:
        model = ws.query_one("SELECT model FROM triples WHERE model IS NOT NULL ORDER BY id LIMIT 1")[0]
        want = {r[0] for r in ws.query("SELECT DISTINCT video_id FROM triples WHERE model = ?", [model])}
        out = run_scoring(ws, ["motionx"], model=model)
        assert {r["video_id"] for r in out["results"]} == want and out["scored"] == len(want)
        out = run_scoring(ws, ["motionx"], video_ids=[1, 2, 3], limit=2)
        assert out["scored"] == 2 - len(want & {1, 2})


def _children(pid: int) -> set[int]:
    try:
        kids = set()
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids |= {int(x) for x in f.read().split()}
        return kids
    except OSError:
        return set()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("executor", ["local", "pipeline"])
def test_sigkill_mid_run_then_resume(executor, tmp_path, _demo_workspace_template):
    """SIGKILL the CLI (2 workers, or the pipeline's decode and scoring processes) after a few videos are
    written; the restart scores exactly the rest."""
    root = _copy(_demo_workspace_template, tmp_path / "ws")
    cmd = [sys.executable, "-m", "curation", "score", "--workspace", str(root), "--metrics", "motionx",
           "--workers", "2", "--json", "--executor", executor, "--device", "cpu"]
    if executor == "pipeline":
        cmd[cmd.index("--workers") + 1] = "1"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen, workers = 0, set()
    deadline = time.time() + 240
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        workers |= _children(proc.pid)
        if re.search(r"\[\d+/12\]", line):
            seen += 1
            if seen == 3:
                workers |= _children(proc.pid)
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"run ended before the kill (saw {seen} videos)"
    # the workers notice their parent is gone and exit (nothing computes for a dead writer)
    t0 = time.time()
    while any(_alive(p) for p in workers) and time.time() - t0 < 10:
        time.sleep(0.2)
    assert workers and not any(_alive(p) for p in workers), "orphaned scoring workers"

    with Workspace.open(root) as ws:        # opens cleanly after the kill
        before = {(r[0], r[1]) for r in ws.query("SELECT video_id, triple_id FROM metric_results "
                                                 "WHERE status = 'ok'")}
    assert 3 <= len(before) < 12
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout)
    assert out["cached"] == len(before)                    # nothing finished before the kill was lost ...
    assert out["scored"] == 12 - len(before) == out["fresh"]  # ... or scored again
    with Workspace.open(root, read_only=True) as ws:
        rows = ws.query("SELECT video_id, count(*) FROM metric_results GROUP BY video_id")
    assert len(rows) == 12 and all(n == 1 for _, n in rows)


def test_ray_executor_on_local_instance(sequential, tmp_path, _demo_workspace_template):
    ray = pytest.importorskip("ray")
    root = _copy(_demo_workspace_template, tmp_path / "ws")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    try:
        with Workspace.open(root) as ws:
            out = run_scoring(ws, METRICS, executor="ray", video_ids=[1, 2, 3, 4])
    finally:
        ray.shutdown()
    assert out["scored"] == 4 and out["executor"] == "ray"
    got = _values(out["results"])
    _same(got, {k: v for k, v in sequential.items() if k[0] in (1, 2, 3, 4)})


@pytest.mark.parametrize("executor", ["local", "pipeline"])
def test_bad_input_corpus_scores_to_results_or_clear_errors(executor, tmp_path):
    """Every corpus video gets a result or status 'error' with a reason; the run finishes."""
    from curation.ingest import ingest
    from metrics.config import STATUSES

    from .corpus import build

    media, _ = build(tmp_path / "corpus")
    with Workspace.open(tmp_path / "ws") as ws:
        ingest(ws, [media, tmp_path / "corpus" / "manifest_dir" / "m.jsonl"])
        videos = {r[0]: r[1] for r in ws.query("SELECT id, path FROM videos")}
        assert len(videos) >= 6
        # a video that went bad on disk after ingest must not stop the run either
        bad = next(p for p in videos.values() if p.endswith("one_frame.mp4"))
        Path(bad).write_bytes(b"\x00" * 100)
        metrics = ["motionx", "productscore", "aesscore", "gmescore"]
        out = run_scoring(ws, metrics, executor=executor, workers=2 if executor == "local" else 1, device="cpu")
    res = out["results"]
    for vid in videos:
        mine = [r for r in res if r["video_id"] == vid]
        assert {r["metric"] for r in mine} == set(metrics), (videos[vid], mine)
        for r in mine:
            assert r["status"] in STATUSES
            if r["status"] != "ok":
                assert r["reason"], r
    broken = [r for r in res if r["video"] == bad]
    assert broken and all(r["status"] == "error" and "decode" in r["reason"] for r in broken)
