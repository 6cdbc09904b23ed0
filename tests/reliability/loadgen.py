"""Load and crash helpers shared by the reliability tests and bench/bench_annotators.py / bench_crash.py:
bulk items, the app as a subprocess (or forked from a pre-imported zygote), simulated annotators through
gradio_client or Gradio's plain HTTP API, and the checks that compare what clients were told with what DuckDB
holds."""
from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def add_bulk_images(ws, n: int, *, tag: str = "bulk") -> list[int]:
    """Insert n image rows in one statement, all pointing at an existing image file (distinct sha256)."""
    path, fmt, w, h = ws.query_one("SELECT path, format, width, height FROM images ORDER BY id LIMIT 1")
    with ws.transaction() as cur:
        cur.execute("INSERT INTO images (sha256, path, bytes, format, width, height, mode, source) "
                    "SELECT ? || '-' || i::VARCHAR, ?, 1, ?, ?, ?, 'RGB', ? FROM range(?) t(i)",
                    [f"{tag}-{uuid.uuid4().hex[:8]}", path, fmt, w, h, tag, n]).fetchall()
    return [r[0] for r in ws.query("SELECT id FROM images WHERE source = ? ORDER BY id", [tag])]


def wait_http(url: str, timeout: float = 180.0, proc: subprocess.Popen | None = None) -> float:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"app exited with {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(url + "gradio_api/info", timeout=2) as r:
                if r.status == 200:
                    return time.time() - t0
        except Exception:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


def start_app(workspace: Path, port: int, log: Path | None = None, extra: list[str] | None = None
              ) -> subprocess.Popen:
    """`python app.py --workspace W --port P` as a fresh process (what a user runs)."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, str(REPO / "app.py"), "--workspace", str(workspace), "--port",
                             str(port), "--no-demo", *(extra or [])], cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                            env=env)


_ZYGOTE = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[1])
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
import importlib.util
spec = importlib.util.spec_from_file_location("advfx_app_main", os.path.join(sys.argv[1], "app.py"))
app = importlib.util.module_from_spec(spec); spec.loader.exec_module(app)
import gradio, duckdb, labeling.ui, storage, curation.queue  # the slow imports, done once
signal.signal(signal.SIGCHLD, signal.SIG_IGN)                 # children are reaped automatically
print("ready", flush=True)
for line in sys.stdin:
    ws, port, log = line.rstrip("\n").split("\t")
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(fd, 1); os.dup2(fd, 2)
        devnull = os.open(os.devnull, os.O_RDONLY); os.dup2(devnull, 0)
        try:
            rc = app.main(["--workspace", ws, "--port", port, "--no-demo"])
        except BaseException:
            import traceback; traceback.print_exc(); rc = 1
        os._exit(rc or 0)
    print(pid, flush=True)
"""


class Zygote:
    """A process that has imported gradio and the app once and forks a fresh app process per request: each
    child runs app.main() in its own process with its own DuckDB connection (a crash-test trial costs the
    app's own start-up, not Python's import time). Children are killed by pid."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _ZYGOTE, str(REPO)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=REPO,
                                     env=dict(os.environ, GRADIO_ANALYTICS_ENABLED="False"))
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"zygote failed to start: {line!r}")

    def start(self, workspace: Path, port: int, log: Path) -> int:
        self.proc.stdin.write(f"{workspace}\t{port}\t{log}\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.terminate()
            self.proc.wait(timeout=10)


@dataclass
class Ack:
    annotator: str
    item_id: int
    value: str
    client_key: str
    event_id: int
    latency_s: float
    undo: bool = False


@dataclass
class LoadResult:
    acks: list[Ack] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    retries_sent: int = 0
    retries_duplicate: int = 0
    wall_s: float = 0.0

    def latencies_ms(self) -> list[float]:
        return sorted(1000 * a.latency_s for a in self.acks)


class HttpApi:
    """Gradio's documented HTTP API (POST /gradio_api/call/NAME, then the result from its SSE stream), with
    gradio_client's predict() signature. gradio_client polls its message queue every 50 ms, which adds
    about 100 ms to every call; a browser or a script on this API pays only the server's own time."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        import httpx

        self.base = url.rstrip("/") + "/gradio_api/call"
        self.http = httpx.Client(timeout=timeout)
        # one session per client, as a browser tab has: without it Gradio builds a fresh session state (a
        # config of every component, ~20 ms of server CPU) for every call
        self.session_hash = uuid.uuid4().hex

    def predict(self, *data: Any, api_name: str) -> Any:
        name = api_name.lstrip("/")
        r = self.http.post(f"{self.base}/{name}", json={"data": list(data), "session_hash": self.session_hash})
        r.raise_for_status()
        event_id = r.json()["event_id"]
        event, payload = None, None
        with self.http.stream("GET", f"{self.base}/{name}/{event_id}") as s:
            for line in s.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    payload = line[5:].strip()
                    break
        if event != "complete":
            raise RuntimeError(f"/{name} failed: {event}: {payload}")
        return json.loads(payload)[0]


def percentile(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(round(q / 100 * (len(sorted_vals) - 1)))))
    return sorted_vals[k]


def run_annotators(url: str, item_ids: list[int], *, annotators: int, per_annotator: int, seed: int = 0,
                   undo_every: int = 0, retry_every: int = 0, stop: threading.Event | None = None,
                   start_barrier: bool = True, res: LoadResult | None = None, client: str = "gradio_client",
                   pace_s: float = 0.0, name_prefix: str = "annotator") -> LoadResult:
    """`annotators` threads, each with its own client (gradio_client.Client, or HttpApi when client="http"),
    each labelling `per_annotator` items (good/bad on images drawn from item_ids) through /label with a fresh
    client_key per action; every `undo_every`-th action is an /undo; every `retry_every`-th label is re-sent
    with the same client_key (a client retry) and must come back as a duplicate. `pace_s` is a designer's
    cadence: each annotator starts an action every pace_s seconds (0: the next as soon as the last is
    acknowledged). Records every acknowledged action and its latency."""
    from gradio_client import Client

    if client not in ("gradio_client", "http"):
        raise ValueError(f"client must be gradio_client or http, not {client!r}")

    res = res if res is not None else LoadResult()
    lock = threading.Lock()
    barrier = threading.Barrier(annotators) if start_barrier else None
    stop = stop or threading.Event()

    def worker(k: int) -> None:
        name = f"{name_prefix}-{k:02d}"
        rng = random.Random(seed * 1000 + k)
        try:
            api = HttpApi(url) if client == "http" else Client(url, verbose=False)
        except Exception as exc:
            with lock:
                res.errors.append(f"{name}: connect: {exc}")
            return
        if barrier:
            try:
                barrier.wait(timeout=120)
            except threading.BrokenBarrierError:
                pass
        next_at = time.perf_counter() + rng.uniform(0, pace_s)   # spread the first actions over one period
        for i in range(per_annotator):
            if stop.is_set():
                return
            if pace_s:
                time.sleep(max(0.0, next_at - time.perf_counter()))
                next_at += pace_s
            key = f"{name}-{uuid.uuid4().hex}"
            try:
                if undo_every and i % undo_every == undo_every - 1:
                    t0 = time.perf_counter()
                    out = api.predict(name, "image", key, api_name="/undo")
                    dt = time.perf_counter() - t0
                    with lock:
                        if out:
                            res.acks.append(Ack(name, int(out["item_id"]), "undo", key, int(out["event_id"]), dt,
                                                undo=True))
                    continue
                item = rng.choice(item_ids)
                value = rng.choice(("good", "bad"))
                t0 = time.perf_counter()
                out = api.predict("image", item, value, name, [], None, key, api_name="/label")
                dt = time.perf_counter() - t0
                with lock:
                    res.acks.append(Ack(name, item, value, key, int(out["event_id"]), dt))
                if retry_every and i % retry_every == 0:
                    again = api.predict("image", item, value, name, [], None, key, api_name="/label")
                    with lock:
                        res.retries_sent += 1
                        res.retries_duplicate += int(bool(again.get("duplicate"))
                                                     and int(again["event_id"]) == int(out["event_id"]))
            except Exception as exc:
                with lock:
                    res.errors.append(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")
                if stop.is_set():
                    return

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(annotators)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    res.wall_s = time.perf_counter() - t0
    return res


def check_against_db(ws, res: LoadResult, annotators: list[str] | None = None) -> dict[str, Any]:
    """Compare acknowledged actions with DuckDB: lost events, duplicates, and the current-label view versus
    a replay of the event log."""
    names = annotators or sorted({a.annotator for a in res.acks})
    marks = ", ".join("?" for _ in names) or "NULL"
    ev = ws.query_dicts(f"SELECT id, item_kind, item_id, value, annotator, undoes, client_key FROM label_events "
                        f"WHERE annotator IN ({marks}) ORDER BY id", names)
    by_key = {e["client_key"]: e for e in ev}
    lost = [a for a in res.acks if a.client_key not in by_key or by_key[a.client_key]["id"] != a.event_id]
    dup_keys = len(ev) - len({e["client_key"] for e in ev})
    unacked = [e for e in ev if e["client_key"] not in {a.client_key for a in res.acks}]
    # replay: latest non-undone good/bad per (item, annotator)
    undone = {e["undoes"] for e in ev if e["value"] == "undo"}
    replay: dict[tuple[int, str], str] = {}
    for e in ev:
        if e["value"] in ("undo", "skip") or e["id"] in undone:
            continue
        replay[(e["item_id"], e["annotator"])] = (e["value"], e["id"])
    view = {(r["item_id"], r["annotator"]): (r["value"], r["event_id"]) for r in ws.query_dicts(
        f"SELECT item_id, annotator, value, event_id FROM current_labels WHERE item_kind = 'image' "
        f"AND annotator IN ({marks})", names)}
    mismatch = {k for k in set(replay) | set(view) if replay.get(k) != view.get(k)}
    return {"events": len(ev), "acked": len(res.acks), "lost": len(lost), "duplicate_keys": dup_keys,
            "unacknowledged_in_db": len(unacked), "current_view_mismatches": len(mismatch),
            "current_labels": len(view)}
