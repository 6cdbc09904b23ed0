"""`python -m curation score`: every ingested video, JSON shape, per-triple keys, cache, bad videos."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from curation.executors import run_scoring
from metrics import motionx
from metrics.motionx import MotionXConfig
from storage import Workspace, metric_results

REPO = Path(__file__).resolve().parents[2]


def cli(*args, env=None):
    import os
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([sys.executable, "-m", "curation", *args], cwd=REPO, capture_output=True, text=True,
                       timeout=600, env=e)
    return p


def test_score_cli_json_cache_and_rescore(demo_workspace, tmp_path):
    env = {"ADVFX_MODELS": str(tmp_path / "models"), "ADVFX_MLLM_BASE_URL": "", "ADVFX_MLLM_MODEL": ""}
    p = cli("score", "--workspace", str(demo_workspace), "--metrics", "motionx,aesscore,gmescore,crscore", "--json",
            env=env)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert "[1/12]" in p.stderr                          # progress goes to stderr
    assert out["scored"] == 12
    res = out["results"]
    with Workspace.open(demo_workspace, read_only=True) as ws:
        n_videos = ws.query_one("SELECT count(*) FROM videos")[0]
        n_triples = ws.query_one("SELECT count(*) FROM triples")[0]
    by = {m: [r for r in res if r["metric"] == m] for m in ("motionx", "aesscore", "gmescore", "crscore")}
    assert len(by["motionx"]) == n_videos and len(by["gmescore"]) == n_triples == len(by["crscore"])
    assert all(r["triple_id"] == 0 for r in by["motionx"] + by["aesscore"])
    for r in res:
        assert set(r) >= {"video", "image", "metric", "value", "status", "backend", "version"}
        if r["status"] == "ok":
            assert 0 <= r["value"] <= 1
        else:
            assert r["value"] is None and r["reason"]
    assert all(r["status"] == "ok" for r in by["motionx"])
    assert all(r["status"] == "unavailable" for r in by["aesscore"] + by["gmescore"] + by["crscore"])
    assert all(r["image"] and r["image"].endswith(".png") for r in by["gmescore"])
    static = next(r for r in by["motionx"] if r["video"].endswith("_static.mp4"))
    # the static video and the colour-change-only one (no displacement) are the two lowest, both near 0
    assert static["value"] < 0.01 and static["value"] <= sorted(r["value"] for r in by["motionx"])[1]

    # second run: everything ok comes from the store (unavailable results are retried)
    p2 = cli("score", "--workspace", str(demo_workspace), "--metrics", "motionx", "--json", env=env)
    assert json.loads(p2.stdout)["scored"] == 0 and "from the cache" in p2.stderr
    # changing a parameter re-scores, and the stored row carries version + params hash
    with Workspace.open(demo_workspace) as ws:
        again = run_scoring(ws, ["motionx"], configs={"motionx": MotionXConfig(p_left=0.5)}, progress=lambda f, m: None)
        assert again["scored"] == 12
        vid = ws.query_one("SELECT id FROM videos ORDER BY id LIMIT 1")[0]
        rows = ws.query("SELECT DISTINCT params_hash, metric_version FROM metric_results "
                        "WHERE metric = 'motionx' AND video_id = ?", [vid])
        assert len(rows) == 2 and {r[1] for r in rows} == {motionx.VERSION}
        full = metric_results.results_for_video(ws, vid, with_trace=True)
        mx = next(r for r in full if r["metric"] == "motionx")
        assert {"E", "E_smooth_norm", "tau", "active", "A", "S", "R"} <= set(mx["trace"])


def test_bad_video_and_video_without_triple(tmp_path, fieldmedia):
    from curation.ingest import ingest
    from media.encode import write_mp4
    import numpy as np

    media = tmp_path / "media"
    media.mkdir()
    frames = [np.full((64, 64, 3), 40 + 2 * t, np.uint8) for t in range(24)]
    write_mp4(media / "ok.mp4", frames)
    write_mp4(media / "broken.mp4", frames[::-1])
    with Workspace.open(tmp_path / "ws") as ws:
        ingest(ws, [media, fieldmedia / "videos_text" / "moviepy_testcard_title_overlay.mp4"])
        # the file goes bad after ingest (truncated on disk): scoring reports it and goes on
        data = (media / "broken.mp4").read_bytes()
        (media / "broken.mp4").write_bytes(data[:200])
        out = run_scoring(ws, ["motionx", "tsscore", "productscore"], progress=lambda f, m: None,
                          configs={"tsscore": __import__("metrics.tsscore", fromlist=["x"]).TSConfig(target_frames=4)})
    res = out["results"]
    broken = [r for r in res if r["video"].endswith("broken.mp4")]
    assert broken and all(r["status"] == "error" and r["value"] is None and "decode" in r["reason"] for r in broken)
    ok = {r["metric"]: r for r in res if r["video"].endswith("ok.mp4")}
    assert ok["motionx"]["status"] == "ok" and ok["productscore"]["status"] == "n/a"
    assert ok["tsscore"]["status"] == "n/a" and ok["tsscore"]["image"] is None     # no text anywhere
    card = {r["metric"]: r for r in res if r["video"].endswith("overlay.mp4")}
    assert card["tsscore"]["status"] == "ok" and card["tsscore"]["triple_id"] == 0   # first frame as reference


def test_cli_rejects_unknown_metric(demo_workspace):
    p = cli("score", "--workspace", str(demo_workspace), "--metrics", "motionx,nope")
    assert p.returncode == 2 and "unknown metric" in p.stderr


def test_side_lane_gives_the_same_results_in_the_same_order(demo_workspace, tmp_path, monkeypatch):
    # metrics that share nothing with the SAM2/OCR chain run on a thread beside it (on a GPU: AesScore,
    # GmeScore, CRScore); the results, and their order, are those of one lane
    import threading

    from curation import scoring

    monkeypatch.setenv("ADVFX_MODELS", str(tmp_path / "models"))
    ws = Workspace.open(demo_workspace)
    try:
        jobs, _ = scoring.plan(ws, ["motionx", "tsscore", "productscore", "aesscore", "gmescore", "crscore"])
    finally:
        ws.close()
    job = jobs[0]

    def run(lane):
        monkeypatch.setattr(scoring, "side_lane", lambda: frozenset(lane))
        where = {}
        res = scoring.score_video(job, progress=lambda f, m: where.setdefault(m.split()[0],
                                                                            threading.current_thread().name))
        for r in res:                                   # timings differ between runs
            r.pop("seconds")
            (r["trace"] or {}).pop("decode_s", None)
        return res, where

    one, where1 = run(())
    two, where2 = run(("aesscore", "gmescore", "crscore", "motionx"))
    assert one == two and len(one) == 6
    assert all(not where1[m].startswith("score-side-lane") for m in where1)
    assert {m for m, t in where2.items() if t.startswith("score-side-lane")} == {"aesscore", "gmescore",
                                                                                 "crscore", "motionx"}
