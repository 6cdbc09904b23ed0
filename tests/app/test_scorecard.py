"""The scorecard never shows a stale result (another metric version or backend) as a score, and names the
backend and version of every value."""
from __future__ import annotations

from labeling import render


def _row(metric, value, *, stale, version="2.0", backend="opencv-dis"):
    return {"metric": metric, "value": value, "status": "ok", "reason": None, "backend": backend,
            "metric_version": version, "stale": stale, "triple_id": 0}


def test_stale_results_are_shown_as_stale_not_as_scores():
    html = render.scorecard([_row("motionx", 0.42, stale=False),
                             _row("aesscore", 0.91, stale=True, version="0.9", backend="laion-aesthetic-v1")])
    motion = html.split("MotionX</td>")[1].split("</tr>")[0]
    aes = html.split("AesScore</td>")[1].split("</tr>")[0]
    assert "42.0%" in motion and "opencv-dis, v2.0" in motion
    assert "stale" in aes and "91" not in aes and "laion-aesthetic-v1, v0.9" in aes


def test_a_current_result_wins_over_a_stale_one_of_the_same_metric():
    html = render.scorecard([_row("tsscore", 0.3, stale=True, version="1.0"),
                             _row("tsscore", 0.8, stale=False, version="1.1", backend="rapidocr")])
    ts = html.split("TSScore</td>")[1].split("</tr>")[0]
    assert "80.0%" in ts and "30.0%" not in ts and "rapidocr, v1.1" in ts
