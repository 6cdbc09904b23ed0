"""`python -m curation score` options documented in docs/scale.md and never exercised elsewhere: --force,
--device, Ray on a cluster address (a head this test starts), and the local pool's retry of a video whose worker
process died."""
from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from storage import Workspace

from .loadgen import free_port

REPO = Path(__file__).resolve().parents[2]
VIDEOS = ("case00_a_smooth.mp4", "case16_a_diagonal_pan.mp4")   # both move: MotionX has a value for each


def cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curation", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def score_json(ws: Path, *args: str, env: dict | None = None) -> dict:
    p = cli("score", "--workspace", str(ws), "--metrics", "motionx", "--json", "--no-progress", *args, env=env)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def rows(ws: Path) -> list[dict]:
    with Workspace.open(ws) as w:
        return w.query_dicts("SELECT m.id, v.path, m.metric, m.value, m.status, m.reason, m.computed_at "
                             "FROM metric_results m JOIN videos v ON v.id = m.video_id ORDER BY v.path, m.metric")


@pytest.fixture()
def small_ws(tmp_path, demo_media) -> Path:
    """A workspace of two demo videos copied into this test's folder (a test may replace them: the demo media
    are shared by the whole session)."""
    media = tmp_path / "media"
    media.mkdir()
    for name in VIDEOS:
        shutil.copy(demo_media / "videos" / name, media / name)
    p = cli("ingest", "--workspace", str(tmp_path / "ws"), str(media), "--json")
    assert p.returncode == 0, p.stderr
    return tmp_path / "ws"


def test_force_rescores_cached_results_and_device_is_checked(small_ws):
    first = score_json(small_ws, "--executor", "sequential", "--device", "cpu")
    assert (first["scored"], first["fresh"], first["cached"], first["device"]) == (2, 2, 0, "cpu")
    before = rows(small_ws)
    assert [r["status"] for r in before] == ["ok", "ok"]

    cached = score_json(small_ws, "--executor", "sequential")
    assert (cached["scored"], cached["fresh"], cached["cached"]) == (0, 0, 2)
    assert rows(small_ws) == before                              # nothing written

    forced = score_json(small_ws, "--executor", "sequential", "--device", "cpu", "--force")
    assert (forced["scored"], forced["fresh"], forced["cached"]) == (2, 2, 0)
    after = rows(small_ws)
    assert len(after) == 2                                       # replaced, not duplicated
    for old, new in zip(before, after):
        assert new["path"] == old["path"] and new["id"] > old["id"] and new["computed_at"] > old["computed_at"]
        assert new["value"] == pytest.approx(old["value"], abs=1e-9)   # same video, same metric: same number

    # a device that does not exist here is refused before anything is scored, with a reason
    p = cli("score", "--workspace", str(small_ws), "--metrics", "motionx", "--force", "--device", "cuda",
            env={"CUDA_VISIBLE_DEVICES": ""})
    assert p.returncode == 2 and "--device cuda: no CUDA device is visible" in p.stderr
    p = cli("score", "--workspace", str(small_ws), "--metrics", "motionx", "--device", "tpu")
    assert p.returncode == 2 and "invalid choice: 'tpu'" in p.stderr
    assert rows(small_ws) == after


# -- Ray on a cluster address ------------------------------------------------------------------------------------
# Ray 2.60 turns token authentication on by itself once ~/.ray/auth_token exists (any earlier local ray.init
# writes it), and the head and a client can then disagree: both get this test's own mode and token.
RAY_ENV = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


@pytest.fixture()
def ray_head(tmp_path_factory):
    """A Ray head on 127.0.0.1 started from the venv (`ray start --head --block`, its own session so that
    teardown ends exactly the processes it started); yields its GCS address."""
    ray_bin = Path(sys.executable).with_name("ray")
    if not ray_bin.exists():
        pytest.fail(f"the ray command is missing from the venv ({ray_bin}); ray is in requirements.txt")
    port, agent_port = free_port(), free_port()
    temp = Path(f"/tmp/rt{os.getpid()}")          # short: Ray's unix socket paths must fit in 107 bytes
    proc = subprocess.Popen(
        [str(ray_bin), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
         f"--dashboard-agent-listen-port={agent_port}",
         "--num-cpus=3", "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats",
         f"--temp-dir={temp}"],
        cwd=tmp_path_factory.mktemp("ray_head"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, env={**os.environ, **RAY_ENV, "RAY_USAGE_STATS_ENABLED": "0"})
    out: list[str] = []
    started = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            out.append(line)
            if "Ray runtime started" in line:
                started.set()
    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + 180
        while not started.wait(0.5):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("ray start did not come up:\n" + "".join(out[-40:]))
        yield f"127.0.0.1:{port}"
    finally:
        _end_session(proc)
        shutil.rmtree(temp, ignore_errors=True)


def _session_pids(sid: int) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid:
                pids.append(int(d.name))
    return pids


def _end_session(proc: subprocess.Popen) -> None:
    sid = proc.pid                          # start_new_session: the session id is the leader's pid
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        for pid in _session_pids(sid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()
            if not _session_pids(sid):
                return
            time.sleep(0.2)


@pytest.mark.slow
def test_ray_executor_on_a_cluster_address_equals_the_local_executor(small_ws, ray_head, tmp_path):
    local_ws = tmp_path / "ws_local"
    shutil.copytree(small_ws, local_ws)
    ray_out = score_json(small_ws, "--executor", "ray", "--address", ray_head, env=RAY_ENV)
    assert (ray_out["executor"], ray_out["scored"], ray_out["errors"]) == ("ray", 2, 0)
    assert ray_out["workers"] == 3      # the CPUs of the head this test started (not a local instance)
    local_out = score_json(local_ws, "--executor", "local", "--workers", "2")
    assert (local_out["scored"], local_out["errors"]) == (2, 0)
    got, want = rows(small_ws), rows(local_ws)
    assert [(r["path"], r["status"]) for r in got] == [(r["path"], "ok") for r in want]
    for g, w in zip(got, want):
        # OpenCV's thread count changes the float summation order in the last digits (docs/scale.md)
        assert g["value"] == pytest.approx(w["value"], abs=1e-7)


# -- a worker process that dies -----------------------------------------------------------------------------------
class Fifo:
    """A video path that is a named pipe: the worker that opens it blocks in its decoder until this test acts,
    so the test knows which worker process holds which video, and can kill exactly that one."""

    def __init__(self, path: Path):
        self.path = path
        self.real = path.with_name(path.name + ".real")
        os.replace(path, self.real)
        os.mkfifo(path)
        self.fds: list[int] = []

    def wait_reader(self, parent: int, exclude: set[int], timeout: float = 120.0) -> int:
        """Hold the pipe's write end open (the reader then waits for data, never sees EOF) and return the pid
        of the parent's child process that has the pipe open."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.fds or self._readers(parent) - exclude:
                try:
                    self.fds.append(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
                except OSError as exc:
                    if exc.errno != errno.ENXIO:            # ENXIO: nobody has it open for reading yet
                        raise
            found = self._readers(parent) - exclude
            if found:
                return found.pop()
            time.sleep(0.05)
        raise AssertionError(f"no worker opened {self.path} within {timeout} s")

    def _readers(self, parent: int) -> set[int]:
        pids = set()
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) != parent:
                    continue
                for fd in (d / "fd").iterdir():
                    if os.readlink(fd) == str(self.path):
                        pids.add(int(d.name))
                        break
            except (OSError, ValueError):
                continue
        return pids

    def restore(self) -> None:
        os.replace(self.real, self.path)      # the next open of the path gets the real video

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()


def _start_score(ws: Path) -> tuple[subprocess.Popen, list[str], threading.Thread]:
    proc = subprocess.Popen([sys.executable, "-m", "curation", "score", "--workspace", str(ws), "--metrics",
                             "motionx", "--executor", "local", "--workers", "2", "--json", "--no-progress"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    t = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    t.start()
    return proc, lines, t


def _wait_line(lines: list[str], text: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in ln for ln in list(lines)):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"no stderr line with {text!r}:\n" + "".join(lines[-30:]))


@pytest.mark.slow
def test_a_worker_that_dies_is_replaced_and_its_video_retried_once(tmp_path, demo_media):
    """Two workers. The first pool's workers block in the decoder on two videos; one is killed: the pool is
    rebuilt and every job it held is retried. One video dies with its worker again on the retry: it is
    recorded as an error. The other two are scored as if nothing had happened."""
    media = tmp_path / "media"
    media.mkdir()
    names = {"a_dies_once.mp4": VIDEOS[0], "b_dies_twice.mp4": VIDEOS[1], "c_plain.mp4": "case20_a_zoom.mp4"}
    for name, src in names.items():            # file names order the video ids: the two pipes go out first
        shutil.copy(demo_media / "videos" / src, media / name)
    ws = tmp_path / "ws"
    assert cli("ingest", "--workspace", str(ws), str(media)).returncode == 0
    once, twice, plain = (str(media / n) for n in names)
    with Workspace.open(ws) as w:
        assert [p for p, in w.query("SELECT path FROM videos ORDER BY id")] == [once, twice, plain]
    pipe_once, pipe_twice = Fifo(Path(once)), Fifo(Path(twice))
    proc, lines, reader = _start_score(ws)
    try:
        w1 = pipe_once.wait_reader(proc.pid, set())
        w2 = pipe_twice.wait_reader(proc.pid, {w1})
        pipe_once.restore()                      # its retry will read the real video
        os.kill(w1, signal.SIGKILL)
        # the rebuilt pool: the second pipe blocks one worker again while the other scores the rest
        w3 = pipe_twice.wait_reader(proc.pid, {w1, w2})
        _wait_line(lines, f"{once}  (", proc)
        _wait_line(lines, f"{plain}  (", proc)
        os.kill(w3, signal.SIGKILL)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        pipe_once.close()
        pipe_twice.close()
    reader.join(10)
    assert proc.returncode == 0, "".join(lines[-30:])
    payload = json.loads(out)
    assert (payload["scored"], payload["errors"]) == (3, 1)
    got = {r["path"]: r for r in rows(ws)}
    assert got[twice]["status"] == "error" and got[twice]["value"] is None
    assert got[twice]["reason"].startswith("the worker process died while scoring this video")
    assert got[once]["status"] == "ok" and got[plain]["status"] == "ok"
    # each retried video was scored from its real file: the numbers of a plain sequential run
    ref_ws = tmp_path / "ref_ws"
    shutil.copytree(ws, ref_ws)
    forced = score_json(ref_ws, "--executor", "sequential", "--force", "--video-ids", "1,3")
    ref = {r["video"]: r["value"] for r in forced["results"]}
    for path in (once, plain):
        assert got[path]["value"] == pytest.approx(ref[path], abs=1e-7)
