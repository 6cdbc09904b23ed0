"""The benchmark runner on a fixture with known scores, labels and pairwise judgements; set import and
drafting; agreement statistics and the Bradley-Terry fit."""
from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from curation import agreement
from curation.benchmark import run_benchmark
from curation.cli import main
from storage import Workspace, labels, report_store

from .conftest import MODEL_QUALITY, MODELS


def _judge(ws, fx, n=60, seed=0):
    """Pairwise judgements where GenA beats GenB beats GenC (prompt following) and the reverse for quality."""
    rng = random.Random(seed)
    by_model = {m: [t for t in fx.triples if t["model"] == m] for m in MODELS}
    rank = {"GenA": 0, "GenB": 1, "GenC": 2}
    for i in range(n):
        a, b = rng.sample(MODELS, 2)
        la, lb = rng.choice(by_model[a]), rng.choice(by_model[b])
        better_pf = "left" if rank[a] < rank[b] else "right"
        pf = better_pf if rng.random() < 0.85 else ("tie" if rng.random() < 0.5 else
                                                    ("right" if better_pf == "left" else "left"))
        aq = "right" if rank[a] < rank[b] else "left"
        labels.append_event(ws, item_kind="pair", item_id=i + 1, value="judged", annotator=f"u{i % 3}",
                            payload={"left_triple": la["triple_id"], "right_triple": lb["triple_id"],
                                     "left_model": a, "right_model": b, "prompt_following": pf, "ad_quality": aq})


def test_run_benchmark_writes_every_part(fx, tmp_path):
    out = tmp_path / "bench"
    with fx.open() as ws:
        _judge(ws, fx)
        progress = []
        s = run_benchmark(ws, out, model_types={"GenA": "Open-source", "GenB": "Open-source", "GenC": "Commercial"},
                          score=False, n_boot=200, progress=lambda f, m: progress.append(f))
    assert progress[-1] == 1.0 and progress == sorted(progress)
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.html", "radar.png", "radar.svg", "domains.md",
                 "domains.csv", "agreement.md", "agreement.json", "user_study.md", "user_study.json",
                 "user_study.png", "report.md", "summary.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert s["models"] == list(MODELS)
    # leaderboard: MotionX mean per model = mean over cases of the fixture's quality values, in %
    lb = {r["model"]: r for r in s["leaderboard"]}
    for m in MODELS:
        qs = {}
        for t in fx.triples:
            if t["model"] == m:
                qs.setdefault((t["image_id"],), []).append(t["quality"])
        exp = 100 * np.mean([np.mean(v) for v in qs.values()])
        assert lb[m]["motionx"]["pct"] == pytest.approx(exp)
        assert lb[m]["aesscore"]["pct"] is None and lb[m]["aesscore"]["status"] == "unavailable"
        assert lb[m]["crscore"]["status"] == "not scored"
        assert lb[m]["tsscore"]["n"] < lb[m]["motionx"]["n"] or lb[m]["tsscore"]["n"] == lb[m]["motionx"]["n"]
    assert [r["type"] for r in s["leaderboard"]] == ["Open-source", "Open-source", "Commercial"]
    md = (out / "leaderboard.md").read_text()
    assert "| Open-source | GenA | **" in md and "| Commercial | GenC |" in md
    assert "AesScore: unavailable for" in md and "CLIP ViT-L/14 weights not found" in md
    assert "CRScore: not scored" in md
    assert "n/a for" in md  # TSScore without text is n/a, shown with its reason
    with open(out / "leaderboard.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["model"] == "GenA" and rows[0]["MotionXScore mark"] == "best"
    assert rows[0]["AesScore status"] == "unavailable"
    # per-domain breakdown over the 6 domains
    assert len(s["domains"]) == 6
    order = []
    for t in fx.triples:
        if t["domain"] not in order:
            order.append(t["domain"])
    assert list(s["domains"]) == order  # taxonomy order, Electronics & Mobility first
    with open(out / "domains.csv", newline="") as f:
        assert {r["domain"] for r in csv.DictReader(f)} == set(s["domains"])
    # agreement: designers accepted exactly the videos with MotionX >= 0.5, so its AUC is 1
    a = s["agreement"]["metrics"]
    assert a["motionx"]["roc_auc"]["auc"] == pytest.approx(1.0)
    assert a["motionx"]["roc_auc"]["ci"][1] == pytest.approx(1.0)
    assert a["motionx"]["model_level"]["spearman"] == pytest.approx(1.0)
    assert a["motionx"]["model_level"]["kendall"] == pytest.approx(1.0)
    assert a["aesscore"]["roc_auc"]["auc"] is None and a["aesscore"]["roc_auc"]["reason"]
    assert 0.2 < a["productscore"]["roc_auc"]["auc"] < 0.8   # random values: near chance
    # user study
    us = s["user_study"]
    assert us["judgements"] == 60 and us["annotators"] == 3
    assert us["criteria"]["prompt_following"]["ranking"] == ["GenA", "GenB", "GenC"]
    assert us["criteria"]["ad_quality"]["ranking"] == ["GenC", "GenB", "GenA"]
    pf = us["criteria"]["prompt_following"]["models"]
    assert sum(pf[m]["n"] for m in MODELS) == 120
    assert pf["GenA"]["preference_rate"] > 0.5 > pf["GenC"]["preference_rate"]
    report_md = (out / "report.md").read_text()
    for title in ("## Leaderboard", "## Per-domain breakdown", "## Metric-designer agreement", "## User study"):
        assert title in report_md


def test_bradley_terry_recovers_strengths():
    rng = np.random.default_rng(0)
    true = {"a": 4.0, "b": 2.0, "c": 1.0, "d": 0.5}
    names = list(true)
    js = []
    for _ in range(3000):
        i, j = rng.choice(4, 2, replace=False)
        a, b = names[i], names[j]
        p = true[a] / (true[a] + true[b])
        js.append({"left_model": a, "right_model": b, "c": "left" if rng.random() < p else "right"})
    bt = agreement.bradley_terry(js, "c", prior=0.0)
    ratio = {m: bt[m] / bt["c"] for m in names}
    for m in names:
        assert ratio[m] == pytest.approx(true[m], rel=0.15)
    # an undefeated model keeps a finite strength with the prior; ties count half a win each
    bt2 = agreement.bradley_terry([{"left_model": "x", "right_model": "y", "c": "left"}] * 5
                                  + [{"left_model": "x", "right_model": "y", "c": "tie"}], "c")
    assert np.isfinite(bt2["x"]) and bt2["x"] > bt2["y"]
    t = agreement.preference_table([{"left_model": "x", "right_model": "y", "c": "tie"}], "c")
    assert t["x"]["preference_rate"] == 0.5 and t["x"]["ties"] == 1


def test_roc_auc_and_correlation_edge_cases():
    assert agreement.roc_auc([0.1, 0.2, 0.9, 0.8], [0, 0, 1, 1]) == 1.0
    assert agreement.roc_auc([0.5, 0.5], [0, 1]) == 0.5
    assert agreement.roc_auc([0.5, 0.6], [1, 1]) is None
    r = agreement.model_level_correlation({"a": ([0.5], [1]), "b": ([0.4], [0])})
    assert r["spearman"] is None and "at least 3 models" in r["reason"]


def test_set_import_make_set_and_cli(demo_workspace, demo_media, tmp_path, capsys):
    # draft a set from the demo workspace (4 per subcategory where available)
    set_file = tmp_path / "set.json"
    assert main(["bench", "make-set", "-w", str(demo_workspace), "--out", str(set_file), "--json"]) == 0
    drafted = json.loads(capsys.readouterr().out)
    data = json.loads(set_file.read_text())
    assert drafted["target"] == 176 and drafted["cases"] == len(data["cases"]) > 0
    # a set file naming the demo media: two cases, two models, model types
    rows = [json.loads(line) for line in (demo_media / "manifest.jsonl").read_text().splitlines()]
    vids = [r for r in rows if r["video"]][:4]
    cases = {}
    for r in vids:
        cases.setdefault(r["image"], {"id": f"c{len(cases) + 1}", "image": r["image"], "product": r["product"],
                                      "category": r["category"], "prompt": r["prompt"]})
    spec = {"name": "mini", "type_order": ["Open-source", "Commercial"],
            "model_types": {"DemoGen-A": "Open-source", "DemoGen-B": "Commercial"},
            "cases": list(cases.values()),
            "videos": [{"case": cases[r["image"]]["id"], "model": r["model"], "video": r["video"]} for r in vids]}
    spec_path = demo_media / "mini_set.json"
    spec_path.write_text(json.dumps(spec))
    try:
        assert main(["bench", "import", "-w", str(demo_workspace), str(spec_path), "--json"]) == 0
        imp = json.loads(capsys.readouterr().out)
        assert imp["name"] == "mini" and not imp["problems"]
        with Workspace.open(demo_workspace) as ws:
            trip = report_store.triples(ws, benchmark_set="mini")
            assert len(trip) == 4 and {t["model"] for t in trip} == {"DemoGen-A", "DemoGen-B"}
            assert report_store.get_benchmark_set(ws, "mini")["model_types"]["DemoGen-B"] == "Commercial"
        out = tmp_path / "mini_report"
        rc = main(["bench", "-w", str(demo_workspace), "--name", "mini", "--out", str(out), "--no-score",
                   "--bootstrap", "50", "--json"])
        s = json.loads(capsys.readouterr().out)
        assert rc == 0 and s["benchmark_set"] == "mini" and s["cases"] == 2
        assert [r["type"] for r in s["leaderboard"]] == ["Open-source", "Commercial"]
        assert all(r["motionx"]["status"] == "not scored" for r in s["leaderboard"])
        assert (out / "radar.svg").is_file()
        # several sets and no --name: a clear error
        assert main(["bench", "-w", str(demo_workspace), "--out", str(out), "--no-score"]) == 0  # only one named set
        capsys.readouterr()
        assert main(["bench", "-w", str(demo_workspace), "--name", "nope", "--out", str(out)]) == 2
        assert "no triples in benchmark set 'nope'" in capsys.readouterr().err
    finally:
        spec_path.unlink()


def test_quality_constants_are_consistent():
    assert set(MODEL_QUALITY) == set(MODELS)
    assert Path(__file__).with_name("paper_table3.json").is_file()
