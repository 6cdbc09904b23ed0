"""The job protocol: one scoring function for the CLI, the app and the benchmark; progress(fraction, message);
a cancel event that stops scoring after what finished is stored, including when a benchmark is cancelled."""
from __future__ import annotations

import threading

import pytest

from curation.benchmark import run_benchmark
from curation.executors import run_scoring
from curation.jobs import Cancelled
from storage import Workspace, metric_results


def _stored(ws) -> list[dict]:
    return [r for r in metric_results.latest_metric_results(ws)]


def test_cancelling_a_benchmark_stops_its_scoring(demo_workspace, tmp_path):
    cancel = threading.Event()
    seen: list[tuple[float, str]] = []

    def progress(fraction, message):
        seen.append((fraction, message))
        if "motionx" in message and "triple=" in message:    # the first video's MotionX is stored
            cancel.set()

    with Workspace.open(demo_workspace) as ws:
        n_videos = len(ws.query("SELECT id FROM videos"))
        assert n_videos >= 4
        with pytest.raises(Cancelled, match="cancelled"):
            run_benchmark(ws, tmp_path / "bench", metrics=["motionx"], n_boot=50, progress=progress,
                          cancel=cancel)
        stored = _stored(ws)
    # scoring stopped after one video (its result kept), not after scoring everything
    assert len({r["video_id"] for r in stored}) == 1 and stored[0]["status"] == "ok"
    assert not (tmp_path / "bench" / "leaderboard.md").exists()
    # the benchmark's progress covers the scoring part with fractions in order, inside its own range
    fracs = [f for f, _ in seen if f is not None]
    assert fracs == sorted(fracs) and 0.1 <= fracs[-1] < 0.6


def test_cancel_keeps_finished_metrics_of_the_video_in_progress(demo_workspace):
    """In process, cancel is checked between metrics: the metric running finishes and is stored, the rest of
    that video and every later video are left for the next run, which scores exactly those."""
    cancel = threading.Event()

    def progress(fraction, message):
        if "tsscore" in message:
            cancel.set()

    with Workspace.open(demo_workspace) as ws:
        with pytest.raises(Cancelled):
            run_scoring(ws, ["tsscore", "motionx"], video_ids=[1, 2], progress=progress, cancel=cancel)
        first = _stored(ws)
        assert {(r["video_id"], r["metric"]) for r in first} == {(1, "tsscore")} and first[0]["status"] == "ok"
        again = run_scoring(ws, ["tsscore", "motionx"], video_ids=[1, 2])
        after = {(r["video_id"], r["metric"]) for r in _stored(ws)}
    assert again["cached"] == 1 and again["fresh"] == 3
    assert after == {(v, m) for v in (1, 2) for m in ("tsscore", "motionx")}


def test_progress_fractions_rise_to_one(demo_workspace):
    seen: list[float] = []
    with Workspace.open(demo_workspace) as ws:
        out = run_scoring(ws, ["motionx"], video_ids=[1, 2, 3], progress=lambda f, m: seen.append(f))
    assert out["scored"] == 3 and seen == sorted(seen) and seen[-1] == 1.0
    # per video: one message from inside its scoring and one when it is stored
    assert len(seen) == 3 * 2 + 1 and seen[1] == pytest.approx(1 / 3)
