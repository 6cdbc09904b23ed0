"""SIGKILL the app at random moments while annotators write labels (20 trials on one workspace): every label
acknowledged to a client is in DuckDB after the restart, and the database opens cleanly every time.

Each trial is a separate app process running app.main() on the workspace; to keep 20 trials short the processes
are forked from a zygote that has already imported gradio (Python's import time dominates a cold start on 2
cores; bench/bench_crash.py --fresh uses cold `python app.py` starts)."""
from __future__ import annotations

import os
import random
import shutil
import signal
import threading
import time

import pytest

from storage import Workspace

from .loadgen import LoadResult, Zygote, add_bulk_images, free_port, run_annotators, wait_http

TRIALS = int(os.environ.get("ADVFX_CRASH_TRIALS", "20"))


def crash_trials(root, trials: int, *, seed: int = 0, log=None) -> dict:
    rng = random.Random(seed)
    zyg = Zygote()
    stats = {"trials": 0, "acked": 0, "lost": 0, "startup_s": [], "kill_after_s": [], "open_failures": 0}
    try:
        with Workspace.open(root) as ws:
            ids = [r[0] for r in ws.query("SELECT id FROM images ORDER BY id LIMIT 200")]
        for t in range(trials):
            port = free_port()
            pid = zyg.start(root, port, log or (root.parent / "app.log"))
            url = f"http://127.0.0.1:{port}/"
            stats["startup_s"].append(round(wait_http(url, 120), 2))
            stop = threading.Event()
            res = LoadResult()
            th = threading.Thread(target=run_annotators, args=(url, ids), kwargs=dict(
                annotators=3, per_annotator=10_000, seed=seed * 100 + t, undo_every=9, stop=stop,
                start_barrier=False, res=res))
            th.start()
            t0 = time.time()
            while not res.acks and time.time() - t0 < 60:      # clients connected and writing
                time.sleep(0.01)
            delay = rng.uniform(0.0, 1.0)
            time.sleep(delay)
            stats["kill_after_s"].append(round(delay, 2))
            os.kill(pid, signal.SIGKILL)
            stop.set()
            th.join(timeout=120)
            t0 = time.time()
            while os.path.exists(f"/proc/{pid}") and time.time() - t0 < 10:   # wait for the kernel to reap it
                time.sleep(0.05)
            try:
                with Workspace.open(root) as ws:          # opens cleanly (WAL replayed) ...
                    keys = {r[0] for r in ws.query("SELECT client_key FROM label_events")}
                    ws.query_one("SELECT count(*) FROM current_labels")
            except Exception:
                stats["open_failures"] += 1
                raise
            stats["trials"] += 1
            stats["acked"] += len(res.acks)
            stats["lost"] += sum(1 for a in res.acks if a.client_key not in keys)   # ... and loses no ack
    finally:
        zyg.close()
    return stats


@pytest.mark.slow
def test_sigkill_during_label_writes_loses_no_acknowledged_label(tmp_path, _demo_workspace_template):
    root = tmp_path / "ws"
    shutil.copytree(_demo_workspace_template, root)
    with Workspace.open(root) as ws:
        add_bulk_images(ws, 200)
    stats = crash_trials(root, TRIALS, seed=1, log=tmp_path / "app.log")
    print("crash trials:", stats)
    assert stats["trials"] == TRIALS and stats["open_failures"] == 0
    assert stats["lost"] == 0, stats
    assert stats["acked"] > TRIALS, stats                 # labels really were being written at the kills
