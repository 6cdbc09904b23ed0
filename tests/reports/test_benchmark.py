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
from storage import Workspace, benchmark_sets, labels, triples

from curation.stats import DISPLAY

from .conftest import MODELS


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
            trip = triples.triples_with_media(ws, benchmark_set="mini")
            assert len(trip) == 4 and {t["model"] for t in trip} == {"DemoGen-A", "DemoGen-B"}
            assert benchmark_sets.get_benchmark_set(ws, "mini")["model_types"]["DemoGen-B"] == "Commercial"
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


def _paper_table_workspace(root: Path, media: Path, table: dict) -> None:
    """Two cases per model; per metric the two cases sit at the table value +/- 5 points, so the runner's
    mean over cases must land exactly on the table's number."""
    from curation.current import current_keys
    from storage import images, metric_results, prompts, taxonomy, triples, videos

    display_to_metric = {d: m for m, d in DISPLAY.items()}
    metrics = [display_to_metric[d] for d in table["metrics"]]
    with Workspace.open(root) as ws:
        cur = current_keys(ws)
        cat = taxonomy.taxonomy(ws)[0]["id"]
        cases = []
        for c in range(2):
            img = _media_rec(media, f"case{c}.png", f"paper case {c}")
            img.update(format="PNG", width=512, height=512, mode="RGB", has_alpha=False, category_id=cat,
                       product=f"Product {c}", source="fixture")
            image_id, _ = images.add_image(ws, img)
            prompt_id, _ = prompts.add_prompt(ws, f"case {c}: the product turns slowly", image_id=image_id)
            cases.append((image_id, prompt_id, +0.05 if c == 0 else -0.05))
        for k, row in enumerate(table["models"]):
            for image_id, prompt_id, offset in cases:
                vrec = _media_rec(media, f"v{k}_{image_id}.mp4", f"paper video {k} {image_id}")
                vrec.update(container="mp4", codec="h264", fps=16.0, frame_count=80, width=384, height=384,
                            duration=5.0, model=row["model"], source_image_id=image_id, prompt_id=prompt_id)
                video_id, _ = videos.add_video(ws, vrec)
                tid, _ = triples.add_triple(ws, video_id=video_id, image_id=image_id, prompt_id=prompt_id,
                                            model=row["model"], category_id=cat)
                for metric, pct in zip(metrics, row["values"]):
                    metric_results.put_result(ws, metric=metric, version=cur[metric]["version"],
                                              params_hash=cur[metric]["params_hash"], video_id=video_id,
                                              triple_id=tid, value=pct / 100 + offset, status="ok",
                                              backend=f"{metric}-backend")


def _media_rec(folder: Path, name: str, text: str) -> dict:
    import hashlib

    folder.mkdir(parents=True, exist_ok=True)
    payload = text.encode() * 50
    (folder / name).write_bytes(payload)
    return {"sha256": hashlib.sha256(payload).hexdigest(), "path": str(folder / name), "bytes": len(payload)}


def test_paper_table_through_the_benchmark_runner(tmp_path):
    """Table 3's shape and numbers (tests/reports/paper_table3.json) stored as per-video metric results: the
    real runner (aggregation over cases, leaderboard, marks, CSV and Markdown) must reproduce the table's
    values and put bold/underline where the file's hand-written `expected` says."""
    table = json.loads(Path(__file__).with_name("paper_table3.json").read_text(encoding="utf-8"))
    _paper_table_workspace(tmp_path / "ws", tmp_path / "media", table)
    types = {r["model"]: r["type"] for r in table["models"]}
    out = tmp_path / "bench"
    with Workspace.open(tmp_path / "ws") as ws:
        s = run_benchmark(ws, out, model_types=types, score=False, n_boot=20)
    assert s["cases"] == 2 and s["videos"] == 20 and not s["warnings"]
    by_model = {r["model"]: r for r in s["leaderboard"]}
    display_to_metric = {d: m for m, d in DISPLAY.items()}
    for row in table["models"]:
        got = by_model[row["model"]]
        assert got["type"] == row["type"]
        for d, pct in zip(table["metrics"], row["values"]):
            cell = got[display_to_metric[d]]
            assert cell["pct"] == pytest.approx(pct, abs=1e-9) and cell["n"] == 2, (row["model"], d)
    # grouped by type in the table's order: the six open-source models first, then the four commercial ones
    assert [r["type"] for r in s["leaderboard"]] == ["Open-source"] * 6 + ["Commercial"] * 4
    with open(out / "leaderboard.csv", newline="", encoding="utf-8") as f:
        rows = {r["model"]: r for r in csv.DictReader(f)}
    for d in table["metrics"]:
        exp = table["expected"][d]
        best = sorted(m for m, r in rows.items() if r[f"{d} mark"] == "best")
        second = sorted(m for m, r in rows.items() if r[f"{d} mark"] == "second")
        assert best == sorted(exp["best"]) and second == sorted(exp["second"]), d
    md = (out / "leaderboard.md").read_text(encoding="utf-8")
    veo = next(line for line in md.splitlines() if "| Veo 3 |" in line)
    assert [c.strip() for c in veo.split("|")[3:9]] == ["**53.06**", "**72.40**", "**80.36**", "**61.35**",
                                                         "**35.64**", "**73.75**"]
    ltx = next(line for line in md.splitlines() if "| LTX-Video |" in line)
    assert [c.strip() for c in ltx.split("|")[3:9]] == ["28.73", "52.66", "68.20", "50.47", "32.41", "50.25"]


def test_a_column_never_mixes_backends_or_versions(fx, tmp_path):
    """Stale rows (another version) are left out even when newer, and counted; a column whose models were
    scored by different backends is refused, naming them, unless allowed, and then its cells are marked."""
    from curation.benchmark import MixedBackends
    from curation.current import current_keys
    from storage import metric_results

    with fx.open() as ws:
        cur = current_keys(ws)
        gen_a = [t for t in fx.triples if t["model"] == "GenA"]
        for t in gen_a:     # newer rows of an older MotionX version: must not replace the current ones
            metric_results.put_result(ws, metric="motionx", version="0.9", params_hash="old", video_id=t["video_id"],
                                      value=0.0, status="ok", backend="flow")
        for t in fx.triples[:5]:   # CRScore only under an old version: stale, not shown
            metric_results.put_result(ws, metric="crscore", version="0.1", params_hash="old", video_id=t["video_id"],
                                      triple_id=t["triple_id"], value=0.9, status="ok", backend="mllm:old")
        s = run_benchmark(ws, tmp_path / "a", score=False, n_boot=50)
        lb = {r["model"]: r for r in s["leaderboard"]}
        exp = {}
        for t in gen_a:
            exp.setdefault(t["image_id"], []).append(t["quality"])
        assert lb["GenA"]["motionx"]["pct"] == pytest.approx(100 * np.mean([np.mean(v) for v in exp.values()]))
        assert s["stale"].get("crscore") == 5 and lb["GenA"]["crscore"]["pct"] is None
        assert any("CRScore: 5 stored result(s)" in w for w in s["warnings"])
        # the column names its backend and version in every file
        md = (tmp_path / "a" / "leaderboard.md").read_text()
        assert f"MotionXScore (flow, v{cur['motionx']['version']})" in md
        assert "flow, v" in (tmp_path / "a" / "leaderboard.html").read_text()

        # GenC's ProductScore re-scored by another backend under the current key: mixed
        for t in fx.triples:
            if t["model"] == "GenC":
                metric_results.put_result(ws, metric="productscore", version=cur["productscore"]["version"],
                                          params_hash=cur["productscore"]["params_hash"], video_id=t["video_id"],
                                          triple_id=t["triple_id"], value=0.5, status="ok", backend="dino-v2")
        with pytest.raises(MixedBackends) as err:
            run_benchmark(ws, tmp_path / "b", score=False, n_boot=50)
        assert "ProductScore" in str(err.value) and "dino-v2" in str(err.value) and "GenC" in str(err.value)
        assert "classical" in str(err.value) and "GenA, GenB" in str(err.value)
        s = run_benchmark(ws, tmp_path / "c", score=False, n_boot=50, allow_mixed=True)
    assert s["backends"]["productscore"]["mixed"] and not s["backends"]["motionx"]["mixed"]
    md = (tmp_path / "c" / "leaderboard.md").read_text()
    assert "†" in md and "different backends" in md
    rows = {r["model"]: r for r in csv.DictReader(open(tmp_path / "c" / "leaderboard.csv", encoding="utf-8"))}
    assert rows["GenC"]["ProductScore backend"].startswith("dino-v2") and \
        rows["GenA"]["ProductScore backend"].startswith("classical")


def test_a_metric_this_machine_cannot_compute_keeps_its_stored_key(workspace):
    """GmeScore scored on a GPU machine (GME weights there, none here) stays current here; an older metric
    version never does."""
    from curation.current import current_keys
    from metrics import gmescore
    from storage import metric_results

    ws = workspace
    assert current_keys(ws)["gmescore"]["source"] == "this machine"        # no GME here, nothing stored yet
    metric_results.put_result(ws, metric="gmescore", version="0.5", params_hash="older", video_id=1, triple_id=1,
                              value=0.4, status="ok", backend="gme-qwen2-vl-7b")
    assert current_keys(ws)["gmescore"]["params_hash"] != "older"
    metric_results.put_result(ws, metric="gmescore", version=gmescore.VERSION, params_hash="gpu-box", video_id=1,
                              triple_id=1, value=0.4, status="ok", backend="gme-qwen2-vl-7b")
    cur = current_keys(ws)["gmescore"]
    assert cur["source"] == "stored" and cur["params_hash"] == "gpu-box" and cur["backend_key"] == "gme-qwen2-vl-7b"
