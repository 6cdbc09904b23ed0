"""CLIPScore in the benchmark report: its own column after the six, headed "CLIPScore*" with the footnote that it
is not one of InnoAds-Bench's six metrics, never in the radar, and never GmeScore's values (results stored by
hand under the current keys, as the fixture stores the six)."""
from __future__ import annotations

import csv
import html
import json

import numpy as np
import pytest

from curation import report
from curation.benchmark import run_benchmark
from curation.current import current_keys
from storage import metric_results

from .conftest import MODELS

CLIP = {"GenA": 0.29, "GenB": 0.26, "GenC": 0.22}  # per model, every triple; below the fixture's GmeScores (0.30-0.34)
NOTE = "* not one of InnoAds-Bench's six metrics"


def _store_clipscore(ws, fx) -> None:
    cur = current_keys(ws)["clipscore"]
    for t in fx.triples:
        metric_results.put_result(ws, metric="clipscore", version=cur["version"], params_hash=cur["params_hash"],
                                  video_id=t["video_id"], triple_id=t["triple_id"], value=CLIP[t["model"]],
                                  status="ok", backend="clip-ViT-L-14-cosine")


def _gme_pct(fx, model: str) -> float:
    """The fixture's GmeScore for a model: mean over cases (source images) of 0.3 + 0.01 * (triple id % 5)."""
    per_case: dict[int, list[float]] = {}
    for t in fx.triples:
        if t["model"] == model:
            per_case.setdefault(t["image_id"], []).append(0.3 + 0.01 * (t["triple_id"] % 5))
    return 100 * float(np.mean([np.mean(v) for v in per_case.values()]))


def test_clipscore_has_its_own_marked_column_and_never_gmescores(fx, tmp_path):
    with fx.open() as ws:
        _store_clipscore(ws, fx)
        s = run_benchmark(ws, tmp_path / "a", score=False, n_boot=20)
        # GmeScore unavailable everywhere (no GME): its column says so; CLIPScore's values stay in their own
        cur = current_keys(ws)["gmescore"]
        for t in fx.triples:
            metric_results.put_result(ws, metric="gmescore", version=cur["version"], params_hash=cur["params_hash"],
                                      video_id=t["video_id"], triple_id=t["triple_id"], value=None,
                                      status="unavailable", reason="GME not found", backend="gme-qwen2-vl-7b")
        s2 = run_benchmark(ws, tmp_path / "b", score=False, n_boot=20)
    assert s["metrics"][-1] == "clipscore" and s["extra_metrics"] == ["clipscore"]
    lb = {r["model"]: r for r in s["leaderboard"]}
    for m in MODELS:
        assert lb[m]["clipscore"]["pct"] == pytest.approx(100 * CLIP[m])
        assert lb[m]["gmescore"]["pct"] == pytest.approx(_gme_pct(fx, m))
    lb2 = {r["model"]: r for r in s2["leaderboard"]}
    for m in MODELS:
        assert lb2[m]["gmescore"]["pct"] is None and lb2[m]["gmescore"]["status"] == "unavailable"
        assert lb2[m]["clipscore"]["pct"] == pytest.approx(100 * CLIP[m])

    for out, gme_missing in ((tmp_path / "a", False), (tmp_path / "b", True)):
        md = (out / "leaderboard.md").read_text(encoding="utf-8")
        head = [c.strip() for c in md.splitlines()[0].strip("|").split("|")]
        assert head[-2].startswith("CRScore") and head[-1] == "CLIPScore* (clip-ViT-L-14-cosine, v1.0)"
        assert not any(h.startswith("CLIPScore") for h in head[:-1])
        assert NOTE in md
        gena = next(line for line in md.splitlines() if "| GenA |" in line)
        cells = [c.strip() for c in gena.strip("|").split("|")]
        plain = [c.replace("**", "").replace("<u>", "").replace("</u>", "") for c in cells]
        assert cells[-1] == "**29.00**"          # GenA's is the best CLIPScore
        assert plain[-3] == ("unavailable" if gme_missing else f"{_gme_pct(fx, 'GenA'):.2f}")
        with open(out / "leaderboard.csv", newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = {r["model"]: r for r in reader}
            fields = reader.fieldnames
        assert "CLIPScore*" in fields and "CLIPScore" not in fields and "CLIPScore* status" in fields
        for m in MODELS:
            assert rows[m]["CLIPScore*"] == f"{100 * CLIP[m]:.2f}" and rows[m]["CLIPScore* status"] == "ok"
            assert rows[m]["GmeScore"] == ("" if gme_missing else f"{_gme_pct(fx, m):.2f}")
            assert rows[m]["GmeScore status"] == ("unavailable" if gme_missing else "ok")
        data = json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))
        assert data["metrics"][-1] == "CLIPScore" and data["extra"] == [False] * 6 + [True]
        # the radar has the paper's six axes only (matplotlib's SVG keeps each text as a comment)
        svg = (out / "radar.svg").read_text(encoding="utf-8")
        assert "GmeScore" in svg and "CRScore" in svg and "CLIPScore" not in svg
        dom = (out / "domains.md").read_text(encoding="utf-8")
        assert "| CLIPScore* |" in dom and NOTE in dom
        with open(out / "domains.csv", newline="", encoding="utf-8") as f:
            dom_rows = list(csv.DictReader(f))
        assert {r["metric"] for r in dom_rows} >= {"GmeScore", "CLIPScore*"}
        gme = [float(r["mean_pct"]) for r in dom_rows if r["metric"] == "GmeScore" and r["mean_pct"]]
        assert (not gme) if gme_missing else min(gme) >= 30.0        # never CLIPScore's values (22-29)
        assert "CLIPScore*" in (out / "agreement.md").read_text(encoding="utf-8")


def test_renderers_mark_extras_and_keep_them_out_of_the_radar(tmp_path):
    board = report.Leaderboard(metrics=["MotionXScore", "GmeScore", "CLIPScore"], extra=[False, False, True],
                               rows=[report.Row("M1", "Open", [50.0, 30.0, 28.0]),
                                     report.Row("M2", "Open", [40.0, None, 25.0], status=["", "unavailable", ""])])
    assert [board.label(j) for j in range(3)] == ["MotionXScore", "GmeScore", "CLIPScore*"]
    assert NOTE in report.to_markdown(board) and NOTE in html.unescape(report.to_html(board))
    assert report.to_csv(board).splitlines()[0].startswith("type,model,MotionXScore,GmeScore,CLIPScore*,")
    r = report.render_radar(board, None, tmp_path / "r.svg")
    assert r["axes"] == ["MotionXScore", "GmeScore"] and "CLIPScore" not in (tmp_path / "r.svg").read_text()
    back = report.Leaderboard.from_dict({"metrics": board.metrics, "extra": board.extra,
                                         "models": [{"model": "M1", "type": "Open", "values": [1, 2, 3]}]})
    assert back.label(2) == "CLIPScore*"


def test_scorecard_shows_clipscore_marked_after_the_six_never_as_gmescore():
    from labeling import render

    rows = [{"metric": "gmescore", "value": None, "status": "unavailable", "reason": "GME not found",
             "backend": "gme-qwen2-vl-7b", "metric_version": "2.0", "stale": False, "triple_id": 1},
            {"metric": "clipscore", "value": 0.287, "status": "ok", "reason": None, "backend": "clip-ViT-L-14-cosine",
             "metric_version": "1.0", "stale": False, "triple_id": 1}]
    card = render.scorecard(rows)
    assert list(render.METRIC_NAMES.values())[-1] == "CLIPScore*"
    assert card.index("CRScore</td>") < card.index("CLIPScore*</td>")
    gme = card.split("GmeScore</td>")[1].split("</tr>")[0]
    clip = card.split("CLIPScore*</td>")[1].split("</tr>")[0]
    assert "unavailable" in gme and "28.7" not in gme and "28.7%" in clip and "clip-ViT-L-14-cosine, v1.0" in clip
    assert "not one of the paper&#x27;s six" in card.split("CLIPScore*</td>")[0].rsplit("<td", 1)[1]   # tooltip
